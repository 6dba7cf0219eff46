//! Socket creation.

use super::{cvt, Fd, Result};

/// A connected pair of close-on-exec UNIX stream sockets
/// ([socketpair(2)](https://man7.org/linux/man-pages/man2/socketpair.2.html)).
pub fn socketpair() -> Result<(Fd, Fd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // Each is owned (or closed) before either can fail.
    let (a, b) = (Fd::own(fds[0]), Fd::own(fds[1]));
    Ok((a?, b?))
}
