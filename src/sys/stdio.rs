//! C stdio buffers across `fork` and `_exit`.
//!
//! A created process inherits its creator's stdio buffers and leaves with
//! `_exit`, which flushes nothing: its creator flushes the output streams
//! just before the `fork` (or the output would be printed twice), and the
//! created process flushes again before it exits (or its own output would be
//! lost).
//!
//! # The flushing rule (glibc)
//!
//! Never wait for a stream's lock: another thread may hold it for as long as
//! it likes (a thread blocked in `fgets(stdin)` holds stdin's lock until a
//! line arrives, and `fflush(NULL)` would wait for it with it, so a fork
//! would never return).
//! - With one thread, every stream holding output is flushed (nothing else
//!   can hold a lock).
//! - With other threads, the list of streams is walked under glibc's list
//!   lock (`_IO_list_lock`, the lock `fflush(NULL)` and `fopen`/`fclose`
//!   take, held only briefly by them), and each stream is flushed only if its
//!   own lock is free (`ftrylockfile`). A stream another thread holds at that
//!   instant (reading, or in the middle of writing) is skipped: output it had
//!   buffered may then be written by both processes. Streams only read from
//!   hold no output and lose nothing by being skipped.
//! - In a created process of a multi-threaded program, glibc's `fork` has
//!   reset every stream's lock, so its flush before `_exit` finds them free.
//!
//! With another libc, `fflush(NULL)` is called (it may wait for a lock
//! another thread holds).

#[cfg(all(target_os = "linux", target_env = "gnu"))]
use core::ffi::{c_char, c_int, c_long, c_void};

/// Flushes the C stdio streams that hold output, so buffered output is
/// neither lost nor duplicated across `fork` and `_exit`, never waiting for
/// a lock another thread holds (see the [module documentation](self) for
/// the precise rule).
///
/// Looking first is worth it around a `fork`: a flush locks every stream,
/// and after a `fork` the first write to each page costs a copy-on-write
/// fault, in the creator and in the new process alike. (A new process rarely
/// has output to flush: its creator flushed every stream right before the
/// `fork`.)
pub fn flush_stdio() {
    flush_output();
}

/// [`flush_stdio`] with glibc: walks the list of streams.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn flush_output() {
    extern "C" {
        /// glibc's list of open streams (exported since glibc 2.2.5).
        static _IO_list_all: *mut File;
        /// Locks and unlocks that list (exported since glibc 2.2.5; what
        /// `fflush(NULL)`, `fopen` and `fclose` take).
        fn _IO_list_lock();
        fn _IO_list_unlock();
        fn ftrylockfile(stream: *mut File) -> c_int;
        fn funlockfile(stream: *mut File);
        fn fflush_unlocked(stream: *mut File) -> c_int;
    }

    let threads = !super::proc::libc_single_threaded();
    if threads {
        // SAFETY: takes glibc's stream-list lock, released below; nothing in
        // between waits for another lock.
        unsafe { _IO_list_lock() };
    }
    // SAFETY: the list is stable while it is walked: with one thread nothing
    // else changes it, with others its lock is held. Each entry is a live
    // `FILE` whose head `File` describes. A stream's buffer is read (and
    // flushed) only while this thread holds its lock, or with one thread.
    // The walk is bounded in case the list is corrupt.
    let mut file = unsafe { _IO_list_all };
    for _ in 0..65_536 {
        if file.is_null() {
            break;
        }
        // SAFETY: see above; `ftrylockfile` never waits.
        let locked = !threads || unsafe { ftrylockfile(file) } == 0;
        if locked {
            // SAFETY: see above.
            let stream = unsafe { &*file };
            // A wide-oriented stream keeps its output elsewhere: assume some.
            if stream.mode > 0 || stream.write_ptr > stream.write_base {
                // SAFETY: this thread holds the stream (or is the only one).
                unsafe { fflush_unlocked(file) };
            }
            if threads {
                // SAFETY: the lock taken by `ftrylockfile` above.
                unsafe { funlockfile(file) };
            }
        }
        // SAFETY: see above.
        file = unsafe { (*file).chain };
    }
    if threads {
        // SAFETY: the lock taken above.
        unsafe { _IO_list_unlock() };
    }
}

/// [`flush_stdio`] with another libc: `fflush(NULL)`.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn flush_output() {
    // SAFETY: fflush(NULL) flushes all open output streams; no pointer is
    // read.
    unsafe { libc::fflush(core::ptr::null_mut()) };
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
