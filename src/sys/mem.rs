//! The C heap, for memory handed to C callers and released with `pp_free`;
//! and a copy into the Rust heap that reports a failed allocation.

/// `malloc(3)`; `None` when out of memory. Zero bytes still returns a unique pointer.
#[cfg(feature = "capi")]
pub fn malloc(len: usize) -> Option<core::ptr::NonNull<u8>> {
    // SAFETY: malloc has no preconditions; a null result is handled.
    core::ptr::NonNull::new(unsafe { libc::malloc(len.max(1)) }.cast())
}

/// `free(3)` of a pointer from [`malloc`] (or null).
///
/// # Safety
/// `ptr` must be null or come from [`malloc`] and not have been freed.
#[cfg(feature = "capi")]
pub unsafe fn free(ptr: *mut u8) {
    // SAFETY: the caller guarantees `ptr` is null or a live malloc allocation.
    unsafe { libc::free(ptr.cast()) }
}

/// A copy of `bytes` in a new vector, or `None` when the allocation fails
/// (where `to_vec` would abort). One allocation of exactly the length and
/// one copy: cheaper than `try_reserve_exact` on an empty vector, which goes
/// through the vector's general growth path.
#[cfg(feature = "alloc")]
pub fn try_copy(bytes: &[u8]) -> Option<alloc::vec::Vec<u8>> {
    let len = bytes.len();
    if len == 0 {
        return Some(alloc::vec::Vec::new());
    }
    let layout = core::alloc::Layout::array::<u8>(len).ok()?;
    // SAFETY: the layout's size is nonzero (len > 0).
    let ptr = unsafe { alloc::alloc::alloc(layout) };
    if ptr.is_null() {
        return None;
    }
    // SAFETY: `ptr` is a fresh allocation of `len` bytes, so it is valid for
    // writes and cannot overlap `bytes`, which is valid for `len` reads.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, len) };
    // SAFETY: `ptr` was allocated by the global allocator with the layout of
    // `len` bytes (so capacity `len`), and all `len` bytes are initialized.
    Some(unsafe { alloc::vec::Vec::from_raw_parts(ptr, len, len) })
}
