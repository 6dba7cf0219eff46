//! Exchanges: pp_exchange_*, pp_queue_new, pp_map_new, pp_pmap.
