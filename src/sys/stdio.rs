//! C stdio buffers across `fork` and `_exit`.
//!
//! A created process inherits its creator's stdio buffers and leaves with
//! `_exit`, which flushes nothing: its creator flushes every stream just
//! before the `fork` (or the output would be printed twice), and the created
//! process flushes again before it exits (or its own output would be lost).

#[cfg(all(target_os = "linux", target_env = "gnu"))]
use core::ffi::{c_char, c_int, c_long, c_void};

/// Flushes every C stdio stream (`fflush(NULL)`), so buffered output is
/// neither lost nor duplicated across `fork` and `_exit`; skipped when no
/// stream holds output.
///
/// Looking first is worth it around a `fork`: `fflush(NULL)` locks every
/// stream, and after a `fork` the first write to each page costs a
/// copy-on-write fault, in the creator and in the new process alike. (A new
/// process rarely has output to flush: its creator flushed every stream
/// right before the `fork`.)
pub fn flush_stdio() {
    if output_may_be_buffered() {
        // SAFETY: fflush(NULL) flushes all open output streams; no pointer
        // is read.
        unsafe { libc::fflush(core::ptr::null_mut()) };
    }
}

/// The head of glibc's `FILE` (`struct _IO_FILE` of
/// `<bits/types/struct_FILE.h>`, a layout fixed by glibc's ABI), up to
/// `_mode`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[repr(C)]
struct File {
    flags: c_int,
    read_ptr: *mut c_char,
    read_end: *mut c_char,
    read_base: *mut c_char,
    write_base: *mut c_char,
    write_ptr: *mut c_char,
    write_end: *mut c_char,
    buf_base: *mut c_char,
    buf_end: *mut c_char,
    save_base: *mut c_char,
    backup_base: *mut c_char,
    save_end: *mut c_char,
    markers: *mut c_void,
    chain: *mut File,
    fileno: c_int,
    flags2: c_int,
    old_offset: c_long,
    cur_column: u16,
    vtable_offset: i8,
    shortbuf: [c_char; 1],
    lock: *mut c_void,
    offset: i64,
    codecvt: *mut c_void,
    wide_data: *mut c_void,
    freeres_list: *mut File,
    freeres_buf: *mut c_void,
    pad5: usize,
    mode: c_int,
}

/// True unless the process is sure that no C stdio stream holds output.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn output_may_be_buffered() -> bool {
    extern "C" {
        /// glibc's list of open streams (exported since glibc 2.2.5).
        static _IO_list_all: *mut File;
    }

    if !super::proc::libc_single_threaded() {
        // Another thread may be opening or closing streams: only
        // fflush(NULL), which takes the list's lock, may walk the list.
        return true;
    }
    // SAFETY: with one thread, nothing changes the list or its streams while
    // it is walked; each entry is a live `FILE` whose head `File` describes.
    // A stream is read, never written. The walk is bounded in case the list
    // is corrupt.
    let mut file = unsafe { _IO_list_all };
    for _ in 0..65_536 {
        if file.is_null() {
            return false;
        }
        // SAFETY: see above.
        let stream = unsafe { &*file };
        // A wide-oriented stream keeps its output elsewhere: assume some.
        if stream.mode > 0 || stream.write_ptr > stream.write_base {
            return true;
        }
        file = stream.chain;
    }
    true
}

/// True unless the process is sure that no C stdio stream holds output.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn output_may_be_buffered() -> bool {
    true
}

#[cfg(all(
    test,
    target_os = "linux",
    target_env = "gnu",
    target_pointer_width = "64"
))]
mod tests {
    use super::File;
    use core::mem::offset_of;

    /// `File` lines up with `struct _IO_FILE` on 64-bit glibc (the offsets
    /// C's `offsetof` gives).
    #[test]
    fn file_head_matches_glibc() {
        assert_eq!(offset_of!(File, write_base), 32);
        assert_eq!(offset_of!(File, write_ptr), 40);
        assert_eq!(offset_of!(File, chain), 104);
        assert_eq!(offset_of!(File, lock), 136);
        assert_eq!(offset_of!(File, mode), 192);
    }
}
