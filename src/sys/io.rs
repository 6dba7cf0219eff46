//! Reads and writes that retry `EINTR` and finish partial transfers.

use super::{cvt, retry, Fd, Result};

/// One `read(2)`, retried on `EINTR`. Returns the byte count; `0` is end of file.
pub fn read(fd: &Fd, buf: &mut [u8]) -> Result<usize> {
    retry(|| {
        // SAFETY: `buf` is a valid writable region of `buf.len()` bytes.
        let n = cvt(unsafe { libc::read(fd.raw(), buf.as_mut_ptr().cast(), buf.len()) })?;
        Ok(n as usize)
    })
}

/// One `recv(2)` with `MSG_DONTWAIT`, retried on `EINTR`: the bytes already
/// queued on the socket, [`Errno::AGAIN`](super::Errno::AGAIN) if there are
/// none yet, `0` at end of stream. Never blocks, whatever the socket's mode.
pub fn read_now(fd: &Fd, buf: &mut [u8]) -> Result<usize> {
    retry(|| {
        // SAFETY: `buf` is a valid writable region of `buf.len()` bytes.
        let n = unsafe {
            libc::recv(
                fd.raw(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        Ok(cvt(n)? as usize)
    })
}

/// Writes every byte of `parts`, in order, with `sendmsg(2)` and
/// `MSG_NOSIGNAL` (a closed peer is `EPIPE`, never `SIGPIPE`). Usually one
/// system call; partial writes and `EINTR` continue where they stopped.
pub fn send_vectored(fd: &Fd, parts: &[&[u8]]) -> Result<()> {
    send_parts(fd, parts, libc::MSG_NOSIGNAL)
}

/// One `sendmsg(2)` of `parts` with `MSG_DONTWAIT | MSG_NOSIGNAL`, retried
/// on `EINTR`: how many bytes the socket took, `0` when its buffer is full.
/// Never blocks; the caller resumes from where it stopped.
pub fn send_some(fd: &Fd, parts: &[&[u8]]) -> Result<usize> {
    let mut iov = [libc::iovec {
        iov_base: core::ptr::null_mut(),
        iov_len: 0,
    }; 2];
    assert!(parts.len() <= iov.len(), "send_some takes at most 2 parts");
    for (slot, part) in iov.iter_mut().zip(parts) {
        *slot = libc::iovec {
            iov_base: part.as_ptr() as *mut libc::c_void,
            iov_len: part.len(),
        };
    }
    // SAFETY: an all-zero msghdr is valid; its iovecs point into `parts`,
    // borrowed for the duration of the call.
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = parts.len() as _;
    let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
    // SAFETY: `msg` describes `parts.len()` valid, readable iovecs.
    match retry(|| cvt(unsafe { libc::sendmsg(fd.raw(), &msg, flags) })) {
        Ok(sent) => Ok(sent as usize),
        Err(super::Errno::AGAIN) => Ok(0),
        Err(e) => Err(e),
    }
}

/// Writes `parts` with `sendmsg(2)` and `flags` until every byte is written
/// or a call fails.
fn send_parts(fd: &Fd, parts: &[&[u8]], flags: libc::c_int) -> Result<()> {
    const MAX_PARTS: usize = 4;
    assert!(
        parts.len() <= MAX_PARTS,
        "send_vectored takes at most 4 parts"
    );
    let mut skip = 0usize; // bytes already sent
    loop {
        let mut iov = [libc::iovec {
            iov_base: core::ptr::null_mut(),
            iov_len: 0,
        }; MAX_PARTS];
        let mut count = 0;
        let mut offset = skip;
        for part in parts {
            if offset >= part.len() {
                offset -= part.len();
                continue;
            }
            let rest = &part[offset..];
            offset = 0;
            iov[count] = libc::iovec {
                iov_base: rest.as_ptr() as *mut libc::c_void,
                iov_len: rest.len(),
            };
            count += 1;
        }
        if count == 0 {
            return Ok(());
        }
        // SAFETY: an all-zero msghdr is valid; we fill in the iovec array, which
        // points into `parts`, borrowed for the duration of the call.
        let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = count as _;
        let sent = retry(|| {
            // SAFETY: `msg` describes `count` valid, readable iovecs.
            cvt(unsafe { libc::sendmsg(fd.raw(), &msg, flags) })
        })?;
        skip += sent as usize;
    }
}
