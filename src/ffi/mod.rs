//! The C ABI (`include/pprocess.h`): the only place with `extern "C"`,
//! `#[no_mangle]` and raw pointers from C.
//!
//! Conventions: every export runs inside `guard`, which turns a panic into
//! `PP_EPANIC`; pointers are checked for NULL (`handle`, `bytes`) and a
//! NULL gives `PP_EINVAL`; functions return `0`, a count or a pid on success,
//! `-errno` for OS failures and `PP_E*` codes (≤ -1000) for library
//! conditions; outputs are written only on success.
//!
//! Exports take raw pointers from C by design; each one checks them through
//! the helpers below, and the header documents what C must pass.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use core::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::channel::Channel;
use crate::error::{best_effort, Error, Result};

mod base;
mod channel;
mod exchange;
mod persistent;
mod pmap;
mod status;

use base::PP_EPANIC;
use channel::pp_callable;

/// A channel handle: one end of a pprocess channel (opaque to C).
#[allow(non_camel_case_types)]
pub struct pp_channel {
    _private: [u8; 0],
}

/// Hands a channel to C as an owned handle.
fn channel_into_handle(channel: Channel) -> *mut pp_channel {
    Box::into_raw(Box::new(channel)).cast()
}

/// Borrows the channel behind a C handle; NULL is `PP_EINVAL`.
///
/// # Safety
/// As for [`handle`]: a non-NULL `ptr` came from this library and is live.
unsafe fn channel<'a>(ptr: *const pp_channel) -> Result<&'a mut Channel> {
    // SAFETY: pp_channel handles are Box<Channel> pointers (channel_into_handle).
    unsafe { handle(ptr.cast_mut().cast::<Channel>()) }
}

/// Takes back ownership of a channel handle; NULL gives `None`.
///
/// # Safety
/// A non-NULL `ptr` came from this library, is live, and is not used again.
unsafe fn channel_from_handle(ptr: *mut pp_channel) -> Option<Box<Channel>> {
    // SAFETY: per the caller, a Box<Channel> pointer given up here.
    (!ptr.is_null()).then(|| unsafe { Box::from_raw(ptr.cast::<Channel>()) })
}

/// Runs an export's body; a panic becomes `PP_EPANIC`.
fn guard(body: impl FnOnce() -> Result<c_int>) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => value,
        Ok(Err(e)) => e.code(),
        Err(_) => PP_EPANIC,
    }
}

/// Runs a `void` export's body; a panic is swallowed (there is no way to report it).
fn guard_void(body: impl FnOnce()) {
    best_effort(catch_unwind(AssertUnwindSafe(body)));
}

/// Borrows the object behind a C handle; NULL is `PP_EINVAL`.
///
/// # Safety
/// A non-NULL `ptr` must come from this library and be live, with no other
/// borrow in use (C handles are not shared between threads without locking).
unsafe fn handle<'a, T>(ptr: *mut T) -> Result<&'a mut T> {
    // SAFETY: the caller guarantees a non-NULL pointer is live and unaliased.
    unsafe { ptr.as_mut() }.ok_or(Error::Invalid)
}

/// Borrows `len` bytes at `ptr`; NULL is allowed only for `len == 0`.
///
/// # Safety
/// A non-NULL `ptr` must be valid for reads of `len` bytes.
unsafe fn bytes<'a>(ptr: *const c_void, len: usize) -> Result<&'a [u8]> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(Error::Invalid)
        };
    }
    // SAFETY: non-NULL and, per the caller, valid for `len` bytes.
    Ok(unsafe { core::slice::from_raw_parts(ptr.cast(), len) })
}

/// Borrows `len` writable bytes at `ptr`; NULL is allowed only for `len == 0`.
///
/// # Safety
/// A non-NULL `ptr` must be valid for writes of `len` bytes.
unsafe fn bytes_mut<'a>(ptr: *mut c_void, len: usize) -> Result<&'a mut [u8]> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&mut [])
        } else {
            Err(Error::Invalid)
        };
    }
    // SAFETY: non-NULL and, per the caller, valid for writes of `len` bytes.
    Ok(unsafe { core::slice::from_raw_parts_mut(ptr.cast(), len) })
}

/// Borrows `count` input records of `input_size` bytes and `count` output
/// records of `output_size` bytes (pp_pmap's arrays); sizes whose product
/// overflows are `PP_EINVAL`.
///
/// # Safety
/// `inputs` and `outputs` are valid for `count` records of their size (or
/// NULL when that is 0 bytes), and `outputs` is not otherwise borrowed.
unsafe fn records<'a>(
    inputs: *const c_void,
    input_size: usize,
    outputs: *mut c_void,
    output_size: usize,
    count: usize,
) -> Result<(&'a [u8], &'a mut [u8])> {
    let total_in = input_size.checked_mul(count).ok_or(Error::Invalid)?;
    let total_out = output_size.checked_mul(count).ok_or(Error::Invalid)?;
    // SAFETY: the caller passes `count` records of each size.
    unsafe { Ok((bytes(inputs, total_in)?, bytes_mut(outputs, total_out)?)) }
}

/// Writes an output parameter; NULL is `PP_EINVAL`.
///
/// # Safety
/// A non-NULL `ptr` must be valid for a write of `T`.
unsafe fn write_out<T>(ptr: *mut T, value: T) -> Result<()> {
    // SAFETY: the caller guarantees a non-NULL pointer is writable.
    let slot = unsafe { ptr.as_mut() }.ok_or(Error::Invalid)?;
    *slot = value;
    Ok(())
}

/// Bytes on the C heap, freed on drop unless [released](CHeap::release)
/// to the C caller (who frees them with pp_free).
struct CHeap {
    ptr: core::ptr::NonNull<u8>,
    len: usize,
}

impl CHeap {
    /// `len` zeroed bytes; `ENOMEM` when the heap has no room.
    fn new(len: usize) -> Result<CHeap> {
        let ptr = crate::sys::malloc(len).ok_or(Error::from(crate::sys::Errno::NOMEM))?;
        // SAFETY: a fresh allocation of at least `len` bytes.
        unsafe { core::ptr::write_bytes(ptr.as_ptr(), 0, len) };
        Ok(CHeap { ptr, len })
    }

    /// A copy of `data` on the C heap; `ENOMEM` when there is no room.
    fn copy_of(data: &[u8]) -> Result<CHeap> {
        let mut copy = CHeap::new(data.len())?;
        copy.as_mut().copy_from_slice(data);
        Ok(copy)
    }

    /// Hands the bytes to the C caller: their address and length.
    fn release(self) -> (*mut c_void, usize) {
        let this = core::mem::ManuallyDrop::new(self);
        (this.ptr.as_ptr().cast(), this.len)
    }
}

impl AsMut<[u8]> for CHeap {
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` holds `len` initialized bytes owned by this value.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for CHeap {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from sys::malloc and was not released.
        unsafe { crate::sys::free(self.ptr.as_ptr()) }
    }
}

/// Writes a remote error's code and message to optional C outputs.
fn write_remote(
    remote: &crate::error::RemoteError,
    code: *mut c_int,
    message: *mut *const core::ffi::c_char,
) -> Result<()> {
    // SAFETY: the outputs are NULL (skipped) or writable, per the contract.
    unsafe {
        if !code.is_null() {
            write_out(code, remote.code())?;
        }
        if !message.is_null() {
            write_out(message, remote.message_cstr().as_ptr())?;
        }
    }
    Ok(())
}

/// Checks that an output parameter is not NULL before any work is done.
fn require<T>(ptr: *mut T) -> Result<()> {
    if ptr.is_null() {
        Err(Error::Invalid)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::base::PP_ECLOSED;
    use super::*;

    #[test]
    fn c_codes_match_the_rust_table() {
        let header = include_str!("../../include/pprocess.h");
        for (name, value) in crate::error::ALL_CODES {
            let line = format!("#define PP_E{name} ({value})");
            assert!(header.contains(&line), "header lacks `{line}`");
        }
    }

    #[test]
    fn guard_turns_a_panic_into_pp_epanic() {
        assert_eq!(guard(|| panic!("boom")), PP_EPANIC);
        assert_eq!(guard(|| Err(Error::Closed)), PP_ECLOSED);
        assert_eq!(guard(|| Ok(7)), 7);
    }
}
