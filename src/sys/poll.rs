//! `poll(2)` over borrowed descriptors.

use super::{cvt, Deadline, Errno, Fd, Result};

/// Readable data (or a hang-up) is waiting.
pub const POLLIN: i16 = libc::POLLIN;
/// Writing would not block: the socket buffer has room.
pub const POLLOUT: i16 = libc::POLLOUT;

/// One entry of a poll set: a `pollfd` that borrows its descriptor, laid out
/// exactly like `struct pollfd` so a slice goes straight to the kernel.
#[repr(transparent)]
#[derive(Clone, Copy, Debug)]
pub struct PollFd(libc::pollfd);

impl PollFd {
    /// An entry that watches nothing (a negative descriptor is ignored by poll).
    pub const NONE: PollFd = PollFd(libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    });

    /// Watches `fd` for `events` (usually [`POLLIN`]).
    pub fn new(fd: &Fd, events: i16) -> PollFd {
        PollFd(libc::pollfd {
            fd: fd.raw(),
            events,
            revents: 0,
        })
    }

    /// True when the last [`poll`] found data, a hang-up or an error here.
    pub fn ready(&self) -> bool {
        self.0.revents != 0
    }

    /// True when the last [`poll`] found one of `events` here, or a hang-up
    /// or an error (which the next read or write reports).
    pub fn ready_for(&self, events: i16) -> bool {
        self.0.revents & (events | libc::POLLHUP | libc::POLLERR) != 0
    }
}

/// Waits until `fd` has something to read (or its peer is gone), or
/// `timeout_ms` passes (`-1`: forever, `0`: just look). Returns whether it
/// has.
pub fn wait_readable(fd: &Fd, timeout_ms: i32) -> Result<bool> {
    Ok(poll(&mut [PollFd::new(fd, POLLIN)], timeout_ms)? > 0)
}

/// Waits until an entry is ready or `timeout_ms` passes (`-1`: forever).
/// Returns the number of ready entries; `EINTR` resumes with the time left.
pub fn poll(fds: &mut [PollFd], timeout_ms: i32) -> Result<usize> {
    let deadline = Deadline::after(timeout_ms);
    loop {
        // SAFETY: PollFd is repr(transparent) over pollfd, so the slice is a
        // valid array of `fds.len()` pollfd structures.
        let ret = cvt(unsafe {
            libc::poll(
                fds.as_mut_ptr().cast(),
                fds.len() as libc::nfds_t,
                deadline.remaining_ms(),
            )
        });
        match ret {
            Err(Errno::INTR) => continue,
            other => return other.map(|n| n as usize),
        }
    }
}
