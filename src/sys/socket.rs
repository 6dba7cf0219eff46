//! Socket creation.

use super::{cvt, Fd, Result};

/// A connected pair of close-on-exec UNIX stream sockets
/// ([socketpair(2)](https://man7.org/linux/man-pages/man2/socketpair.2.html)).
pub fn socketpair() -> Result<(Fd, Fd)> {
    super::fd::made_pair(|| {
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
        Ok(fds)
    })
}
