//! The plain values of the system's interface that every layer names: an
//! error number, a process id, a wait status. No call and no `unsafe`: the
//! calls that produce them live in `sys`, one layer up, and `error` (the
//! bottom layer) holds them without naming `sys`.

use core::fmt;

/// An error number (`errno`) reported by a failed system call.
///
/// [`Error::Os`](crate::Error::Os) holds one; the constants name the ones
/// the library meets:
///
/// ```
/// use pprocess::{connect_persistent, Errno, Error};
///
/// let nowhere = std::env::temp_dir().join(format!("pp-doc-nowhere-{}", std::process::id()));
/// match connect_persistent(&nowhere).map_err(Error::from) {
///     Err(Error::Os(errno)) => assert_eq!(Errno(errno), Errno::NOENT),
///     other => panic!("connected to nothing: {other:?}"),
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// `EINTR`: interrupted by a signal handler.
    pub const INTR: Errno = Errno(libc::EINTR);
    /// `ECHILD`: no such child process.
    pub const CHILD: Errno = Errno(libc::ECHILD);
    /// `EINVAL`: invalid argument.
    pub const INVAL: Errno = Errno(libc::EINVAL);
    /// `EPIPE`: the peer closed its end.
    pub const PIPE: Errno = Errno(libc::EPIPE);
    /// `ECONNRESET`: the peer reset the connection.
    pub const CONNRESET: Errno = Errno(libc::ECONNRESET);
    /// `ENOMEM`: out of memory.
    pub const NOMEM: Errno = Errno(libc::ENOMEM);
    /// `ENOENT`: no such file.
    pub const NOENT: Errno = Errno(libc::ENOENT);
    /// `EADDRINUSE`: a file already exists at a socket's address.
    pub const ADDRINUSE: Errno = Errno(libc::EADDRINUSE);
    /// `EEXIST`: a file already exists at the path.
    pub const EXIST: Errno = Errno(libc::EEXIST);
    /// `ECONNREFUSED`: nobody listens at a socket's address.
    pub const CONNREFUSED: Errno = Errno(libc::ECONNREFUSED);
    /// `EAGAIN`: a non-blocking call found nothing to do yet.
    pub const AGAIN: Errno = Errno(libc::EAGAIN);
}

/// A process id.
pub type Pid = i32;

/// A raw status from `waitpid`, decoded.
///
/// ```
/// use pprocess::{start, Pid, WaitStatus};
///
/// let mut channel = start(|_| Ok(()))?;
/// let pid: Pid = channel.pid();
/// assert!(pid > 0);
/// let status: WaitStatus = channel.wait()?;
/// assert!(status.success() && status.exit_code() == Some(0) && status.signal().is_none());
/// assert_eq!(status.to_string(), "exited with status 0");
/// // Raw statuses as waitpid(2) gives them:
/// assert_eq!(WaitStatus(9).signal(), Some(9));
/// assert_eq!(WaitStatus(9).to_string(), "killed by signal 9");
/// assert_eq!(WaitStatus(1 << 8).exit_code(), Some(1));
/// # Ok::<(), pprocess::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct WaitStatus(pub i32);

impl WaitStatus {
    /// The exit code, if the process exited normally.
    pub fn exit_code(self) -> Option<i32> {
        libc::WIFEXITED(self.0).then(|| libc::WEXITSTATUS(self.0))
    }

    /// The signal number, if a signal ended the process.
    pub fn signal(self) -> Option<i32> {
        libc::WIFSIGNALED(self.0).then(|| libc::WTERMSIG(self.0))
    }

    /// True for a normal exit with status 0.
    pub fn success(self) -> bool {
        self.exit_code() == Some(0)
    }
}

impl fmt::Debug for WaitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for WaitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.exit_code(), self.signal()) {
            (Some(code), _) => write!(f, "exited with status {code}"),
            (_, Some(sig)) => write!(f, "killed by signal {sig}"),
            _ => write!(f, "wait status {:#x}", self.0),
        }
    }
}
