//! The system layer: every `libc` call of the crate lives below this module.
//!
//! Each public function is a thin, safe wrapper over one system call (or a loop
//! of them that retries `EINTR` and finishes partial transfers). Return values
//! become [`Result`] in exactly one place, `cvt`, and descriptors become
//! owned [`Fd`] values the moment the kernel hands them out, so an early `?`
//! never leaks one.
//!
//! The module is crate-private: `fork` and `after_fork_in_child` are sound
//! only as the process module uses them. Some calls serve only the
//! persistent module (feature `alloc`) or the C ABI (feature `capi`); the
//! full build, which `cargo test` and clippy make, checks that each is used.
#![cfg_attr(not(feature = "capi"), allow(dead_code, unused_imports))]

#[cfg(feature = "alloc")]
mod barrier;
mod child;
mod fd;
mod io;
#[cfg(feature = "alloc")]
mod mem;
mod mman;
mod poll;
mod proc;
mod socket;
mod stdio;
mod time;
mod unix;

pub use crate::os::{Errno, Pid, WaitStatus};
#[cfg(all(test, feature = "alloc"))]
pub(crate) use barrier::refuse_barriers_in_this_thread;
#[cfg(feature = "alloc")]
pub use barrier::{barrier_in_joined, join_barriers};
pub use fd::{after_fork_in_child, close_all_except, Fd};
pub use io::{read, read_now, send_some, send_vectored};
#[cfg(feature = "alloc")]
pub use mem::try_copy;
#[cfg(feature = "capi")]
pub use mem::{free, malloc};
pub use mman::{prefetch_for_write, NotInherited, SharedMap};
pub use poll::{poll, wait_readable, PollFd, POLLIN, POLLOUT};
pub(crate) use proc::{allow_threads, fork_checked, fork_refused};
pub use proc::{
    exit_now, forget_orphans, getpid, kill, kill_group, number_of_cpus, reap_later, reap_orphans,
    sleep_ms, wait_any, waitpid, Child, Children, Forked, OwnedChild, SIGKILL,
};
pub use socket::socketpair;
pub use stdio::flush_stdio;
pub use time::Deadline;
pub use unix::{
    accept, bind, connect, connect_opened, fchmod, geteuid, link, listen, lstat, mkdtemp,
    open_nofollow, peer_credentials, rmdir, setsid, stdio_to_dev_null, unix_socket, unlink,
    SocketPath,
};

/// The calling thread's current `errno`.
fn last_errno() -> Errno {
    // SAFETY: __errno_location always returns a valid pointer to the calling
    // thread's errno.
    Errno(unsafe { *libc::__errno_location() })
}

/// The result of a system call wrapper.
pub type Result<T> = core::result::Result<T, Errno>;

/// Converts the `-1`-on-error convention of libc into a [`Result`].
fn cvt<T: Copy + PartialEq + From<i8>>(ret: T) -> Result<T> {
    if ret == T::from(-1) {
        Err(last_errno())
    } else {
        Ok(ret)
    }
}

/// Calls `f` until it does not fail with `EINTR`.
fn retry<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
    loop {
        match f() {
            Err(Errno::INTR) => continue,
            other => return other,
        }
    }
}

impl Errno {
    /// The system's text for this error number
    /// ([strerror(3)](https://man7.org/linux/man-pages/man3/strerror.3.html)):
    /// defined here, with the system's calls, for a type defined below
    /// every layer (the `os` module).
    pub(crate) fn text(self) -> &'static core::ffi::CStr {
        // SAFETY: glibc and musl return a pointer to a static, NUL-terminated
        // string for every value (a generic "Unknown error" text for unknown
        // ones); it is never freed, so a 'static borrow is sound.
        unsafe { core::ffi::CStr::from_ptr(libc::strerror(self.0)) }
    }
}
