//! The C heap, for memory handed to C callers and released with `pp_free`.

/// `malloc(3)`; `None` when out of memory. Zero bytes still returns a unique pointer.
pub fn malloc(len: usize) -> Option<core::ptr::NonNull<u8>> {
    // SAFETY: malloc has no preconditions; a null result is handled.
    core::ptr::NonNull::new(unsafe { libc::malloc(len.max(1)) }.cast())
}

/// `free(3)` of a pointer from [`malloc`] (or null).
///
/// # Safety
/// `ptr` must be null or come from [`malloc`] and not have been freed.
pub unsafe fn free(ptr: *mut u8) {
    // SAFETY: the caller guarantees `ptr` is null or a live malloc allocation.
    unsafe { libc::free(ptr.cast()) }
}
