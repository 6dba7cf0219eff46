//! Persistent and background processes: pp_create_persistent, pp_start_persistent,
//! pp_connect, pp_exchange_connect, pp_exchange_start_persistent.
