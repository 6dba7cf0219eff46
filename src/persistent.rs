//! Persistent and background processes: listeners at UNIX-socket addresses
//! that survive disconnection and keep results until a client acknowledges them.
