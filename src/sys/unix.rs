//! UNIX-domain listening sockets and the files behind them: socket paths,
//! bind, listen, accept, connect, peer credentials, and the few file and
//! session calls a background process needs.

use core::ffi::CStr;

use super::{cvt, retry, Errno, Fd, Pid, Result};

/// A filesystem path for a UNIX socket, checked to fit `sun_path` with its
/// terminating NUL (at most 107 bytes on Linux).
#[derive(Clone)]
pub struct SocketPath {
    addr: libc::sockaddr_un,
    len: usize,
}

impl core::fmt::Debug for SocketPath {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("SocketPath").field(&self.as_cstr()).finish()
    }
}

impl SocketPath {
    /// The longest path that fits, in bytes.
    pub const MAX_LEN: usize = 107;

    /// A socket path from its bytes; `None` when it is empty, contains a NUL
    /// byte (Linux's abstract names are not supported) or is too long.
    pub fn new(path: &[u8]) -> Option<SocketPath> {
        // SAFETY: an all-zero sockaddr_un is valid (and NUL-terminates any
        // shorter path written into it).
        let mut addr: libc::sockaddr_un = unsafe { core::mem::zeroed() };
        if path.is_empty() || path.len() >= addr.sun_path.len() || path.contains(&0) {
            return None;
        }
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (dst, &src) in addr.sun_path.iter_mut().zip(path) {
            *dst = src as libc::c_char;
        }
        Some(SocketPath {
            addr,
            len: path.len(),
        })
    }

    /// The path as a C string.
    pub fn as_cstr(&self) -> &CStr {
        // SAFETY: sun_path holds `len` non-NUL bytes followed by zeros (see
        // `new`), so it is a NUL-terminated string inside the array.
        unsafe { CStr::from_ptr(self.addr.sun_path.as_ptr()) }
    }

    /// The path's bytes, without the NUL.
    pub fn as_bytes(&self) -> &[u8] {
        self.as_cstr().to_bytes()
    }

    /// The address and its length, as bind(2) and connect(2) take them.
    fn raw(&self) -> (*const libc::sockaddr, libc::socklen_t) {
        let len = core::mem::offset_of!(libc::sockaddr_un, sun_path) + self.len + 1;
        let ptr: *const libc::sockaddr_un = &self.addr;
        (ptr.cast(), len as libc::socklen_t)
    }
}

/// A new close-on-exec UNIX stream socket
/// ([socket(2)](https://man7.org/linux/man-pages/man2/socket.2.html)),
/// non-blocking if asked.
pub fn unix_socket(nonblocking: bool) -> Result<Fd> {
    let mut kind = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
    if nonblocking {
        kind |= libc::SOCK_NONBLOCK;
    }
    // SAFETY: socket has no memory-safety preconditions.
    super::fd::made(|| cvt(unsafe { libc::socket(libc::AF_UNIX, kind, 0) }))
}

/// [bind(2)](https://man7.org/linux/man-pages/man2/bind.2.html) to a path:
/// creates the socket file; `EADDRINUSE` if any file exists there.
pub fn bind(fd: &Fd, path: &SocketPath) -> Result<()> {
    let (addr, len) = path.raw();
    // SAFETY: `addr` points at a valid sockaddr_un of at least `len` bytes.
    cvt(unsafe { libc::bind(fd.raw(), addr, len) }).map(drop)
}

/// [listen(2)](https://man7.org/linux/man-pages/man2/listen.2.html).
pub fn listen(fd: &Fd, backlog: i32) -> Result<()> {
    // SAFETY: listen has no memory-safety preconditions.
    cvt(unsafe { libc::listen(fd.raw(), backlog) }).map(drop)
}

/// [accept4(2)](https://man7.org/linux/man-pages/man2/accept4.2.html): the
/// next connection as a close-on-exec socket, retried on `EINTR`.
pub fn accept(fd: &Fd) -> Result<Fd> {
    retry(|| {
        super::fd::made(|| {
            // SAFETY: null address pointers ask accept4 not to report the peer.
            cvt(unsafe {
                libc::accept4(
                    fd.raw(),
                    core::ptr::null_mut(),
                    core::ptr::null_mut(),
                    libc::SOCK_CLOEXEC,
                )
            })
        })
    })
}

/// [connect(2)](https://man7.org/linux/man-pages/man2/connect.2.html) to a
/// path: `ENOENT` when no file is there, `ECONNREFUSED` when nobody listens.
pub fn connect(fd: &Fd, path: &SocketPath) -> Result<()> {
    let (addr, len) = path.raw();
    // SAFETY: `addr` points at a valid sockaddr_un of at least `len` bytes.
    match cvt(unsafe { libc::connect(fd.raw(), addr, len) }) {
        // Interrupted after the kernel queued the connection: it completes.
        Err(Errno::INTR) => wait_connected(fd),
        other => other.map(drop),
    }
}

/// Finishes a connect(2) that a signal interrupted.
fn wait_connected(fd: &Fd) -> Result<()> {
    let mut fds = [super::PollFd::new(fd, libc::POLLOUT)];
    super::poll(&mut fds, -1)?;
    let mut error: libc::c_int = 0;
    let mut len = core::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `error` and `len` are valid for the int getsockopt writes.
    cvt(unsafe {
        libc::getsockopt(
            fd.raw(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut error as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    match error {
        0 => Ok(()),
        e => Err(Errno(e)),
    }
}

/// Who is at the other end of a connected UNIX socket, as the kernel
/// recorded it when the connection was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The peer's process id.
    pub pid: Pid,
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
}

/// The peer's credentials (`SO_PEERCRED`, see
/// [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html)).
pub fn peer_credentials(fd: &Fd) -> Result<Credentials> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = core::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for the ucred getsockopt writes.
    cvt(unsafe {
        libc::getsockopt(
            fd.raw(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    })?;
    Ok(Credentials {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// The calling process's effective user id
/// ([geteuid(2)](https://man7.org/linux/man-pages/man2/geteuid.2.html)).
pub fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// What [`lstat`] found at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// The file is a socket (not a link to one: links are not followed).
    pub socket: bool,
    /// The file is a symbolic link (which is not followed).
    pub link: bool,
    /// The file's owner.
    pub uid: u32,
    /// The file's mode bits (`st_mode`, type included).
    pub mode: u32,
    /// Device and inode: the file's identity.
    pub id: (u64, u64),
}

/// [lstat(2)](https://man7.org/linux/man-pages/man2/lstat.2.html): what is
/// at `path`, without following a symbolic link.
pub fn lstat(path: &SocketPath) -> Result<FileInfo> {
    // SAFETY: an all-zero stat is valid storage for lstat to fill.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: the path is NUL-terminated and `st` is writable.
    cvt(unsafe { libc::lstat(path.as_cstr().as_ptr(), &mut st) })?;
    Ok(file_info(&st))
}

fn file_info(st: &libc::stat) -> FileInfo {
    FileInfo {
        socket: st.st_mode & libc::S_IFMT == libc::S_IFSOCK,
        link: st.st_mode & libc::S_IFMT == libc::S_IFLNK,
        uid: st.st_uid,
        mode: st.st_mode,
        id: (st.st_dev, st.st_ino),
    }
}

/// [fchmod(2)](https://man7.org/linux/man-pages/man2/fchmod.2.html) on a
/// socket not yet bound: Linux gives the socket file that [`bind`] creates
/// this mode (less the umask), so the file is private from its first
/// instant, with no path-based `chmod` that a swapped name could redirect.
pub fn fchmod(fd: &Fd, mode: u32) -> Result<()> {
    // SAFETY: fchmod has no memory-safety preconditions.
    cvt(unsafe { libc::fchmod(fd.raw(), mode as libc::mode_t) }).map(drop)
}

/// [mkdtemp(3)](https://man7.org/linux/man-pages/man3/mkdtemp.3.html): a
/// new directory of mode 0700 named `prefix` followed by six random
/// characters, made atomically (it fails rather than use anything already
/// there). Returns its path, or `EINVAL` when the name would not fit a
/// socket path.
pub fn mkdtemp(prefix: &[u8]) -> Result<SocketPath> {
    let mut template = [0u8; 108];
    let len = prefix.len() + 6;
    if len >= template.len() || prefix.contains(&0) {
        return Err(Errno::INVAL);
    }
    template[..prefix.len()].copy_from_slice(prefix);
    template[prefix.len()..len].fill(b'X');
    // SAFETY: `template` is a writable, NUL-terminated buffer that ends in
    // the six X's mkdtemp replaces in place.
    let made = unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) };
    if made.is_null() {
        return Err(super::last_errno());
    }
    SocketPath::new(&template[..len]).ok_or(Errno::INVAL)
}

/// [rmdir(2)](https://man7.org/linux/man-pages/man2/rmdir.2.html).
pub fn rmdir(path: &SocketPath) -> Result<()> {
    // SAFETY: the path is NUL-terminated.
    cvt(unsafe { libc::rmdir(path.as_cstr().as_ptr()) }).map(drop)
}

/// Opens what is at `path` itself, without following a symbolic link
/// (`O_PATH | O_NOFOLLOW`, see
/// [open(2)](https://man7.org/linux/man-pages/man2/open.2.html)), and
/// returns it with what it is: a link is opened as the link.
pub fn open_nofollow(path: &SocketPath) -> Result<(Fd, FileInfo)> {
    let fd = retry(|| {
        super::fd::made(|| {
            // SAFETY: the path is NUL-terminated.
            cvt(unsafe {
                libc::open(
                    path.as_cstr().as_ptr(),
                    libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                )
            })
        })
    })?;
    // SAFETY: an all-zero stat is valid storage for fstat to fill.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: `fd` is open and `st` is writable.
    cvt(unsafe { libc::fstat(fd.raw(), &mut st) })?;
    Ok((fd, file_info(&st)))
}

/// [connect(2)](https://man7.org/linux/man-pages/man2/connect.2.html) to
/// the socket file `file` was opened on (with [`open_nofollow`]), through
/// its `/proc/self/fd` name: the connection reaches that very file, even if
/// its path was changed meanwhile.
pub fn connect_opened(fd: &Fd, file: &Fd) -> Result<()> {
    let mut name = [0u8; 32];
    let prefix = b"/proc/self/fd/";
    name[..prefix.len()].copy_from_slice(prefix);
    let mut len = prefix.len();
    let mut digits = [0u8; 10];
    let mut n = file.raw() as u32;
    let mut count = 0;
    loop {
        digits[count] = b'0' + (n % 10) as u8;
        count += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &digit in digits[..count].iter().rev() {
        name[len] = digit;
        len += 1;
    }
    let path = SocketPath::new(&name[..len]).ok_or(Errno::INVAL)?;
    connect(fd, &path)
}

/// [link(2)](https://man7.org/linux/man-pages/man2/link.2.html): a second
/// name for `from`; fails with `EEXIST`, atomically, if `to` exists.
pub fn link(from: &SocketPath, to: &SocketPath) -> Result<()> {
    // SAFETY: both paths are NUL-terminated.
    cvt(unsafe { libc::link(from.as_cstr().as_ptr(), to.as_cstr().as_ptr()) }).map(drop)
}

/// [unlink(2)](https://man7.org/linux/man-pages/man2/unlink.2.html).
pub fn unlink(path: &SocketPath) -> Result<()> {
    // SAFETY: the path is NUL-terminated.
    cvt(unsafe { libc::unlink(path.as_cstr().as_ptr()) }).map(drop)
}

/// [setsid(2)](https://man7.org/linux/man-pages/man2/setsid.2.html): a new
/// session and process group led by the caller, with no controlling terminal.
pub fn setsid() -> Result<Pid> {
    // SAFETY: setsid has no memory-safety preconditions.
    cvt(unsafe { libc::setsid() })
}

/// Points standard input, output and error at `/dev/null` (open + dup2):
/// the descriptors stay open, so writes to them succeed and go nowhere, and
/// no later descriptor can take their numbers.
pub fn stdio_to_dev_null() -> Result<()> {
    let null = retry(|| {
        super::fd::made(|| {
            // SAFETY: the path is a NUL-terminated literal.
            cvt(unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) })
        })
    })?;
    for target in 0..=2 {
        // SAFETY: dup2 has no memory-safety preconditions; `target` is a
        // standard stream this process gives up.
        retry(|| cvt(unsafe { libc::dup2(null.raw(), target) }))?;
    }
    Ok(())
}
