//! The few C ABI calls the Rust tests make, declared as a C program does:
//! the `pp_*` functions are the C libraries' exports (the `capi` feature,
//! which the tests enable), never Rust API.
#![allow(dead_code, non_camel_case_types)]
// each test binary uses a part
// Without `capi` (the published crate) nothing declares or links these.
#![cfg(feature = "capi")]

use core::ffi::{c_int, c_void};

/// The opaque channel handle of `include/pprocess.h`.
#[repr(C)]
pub struct pp_channel {
    _private: [u8; 0],
}

/// A callable for `pp_start`.
pub type pp_callable =
    Option<unsafe extern "C" fn(channel: *mut pp_channel, arg: *const c_void, len: usize) -> c_int>;

extern "C" {
    pub fn pp_start(
        callable: pp_callable,
        arg: *const c_void,
        arg_len: usize,
        out: *mut *mut pp_channel,
    ) -> c_int;
    pub fn pp_send(ch: *mut pp_channel, data: *const c_void, len: usize) -> c_int;
    pub fn pp_receive(ch: *mut pp_channel, buf: *mut c_void, cap: usize, len: *mut usize) -> c_int;
    pub fn pp_receive_alloc(ch: *mut pp_channel, data: *mut *mut c_void, len: *mut usize) -> c_int;
    pub fn pp_free(data: *mut c_void);
    pub fn pp_channel_wait(ch: *mut pp_channel, status: *mut c_int) -> c_int;
    pub fn pp_channel_close(ch: *mut pp_channel);
}
