//! Processes: fork, wait, exit, signals.

use core::fmt;

use super::{cvt, poll, retry, Deadline, Errno, Fd, PollFd, Result, POLLIN};

/// A process id.
pub type Pid = i32;

/// Which side of a [`fork`] this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// The new process.
    Child,
    /// The creator, with the new process's id.
    Parent(Pid),
}

/// [fork(2)](https://man7.org/linux/man-pages/man2/fork.2.html).
///
/// # Threads
/// Like fork(2) itself: in a multi-threaded program only the calling thread
/// exists in the child, and locks held by other threads (the allocator's, a
/// `Mutex`) stay locked there. pprocess's model is fork-without-exec, so call
/// it from single-threaded programs, or make sure the child only touches state
/// no other thread could hold.
pub fn fork() -> Result<Forked> {
    // SAFETY: fork has no memory-safety preconditions for the parent; the
    // child continues with a copy of this thread (see the doc comment).
    match cvt(unsafe { libc::fork() })? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// A raw status from `waitpid`, decoded.
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

/// [waitpid(2)](https://man7.org/linux/man-pages/man2/waitpid.2.html) on one
/// process. With `block == false`, `Ok(None)` means it is still running.
/// A pid of 0 or less (a process group, or any child) is `EINVAL`.
pub fn waitpid(pid: Pid, block: bool) -> Result<Option<WaitStatus>> {
    if pid <= 0 {
        return Err(Errno::INVAL);
    }
    let flags = if block { 0 } else { libc::WNOHANG };
    let mut status = 0;
    // SAFETY: `status` is a valid int to write.
    let ret = retry(|| cvt(unsafe { libc::waitpid(pid, &mut status, flags) }))?;
    Ok((ret != 0).then_some(WaitStatus(status)))
}

/// [waitpid(2)](https://man7.org/linux/man-pages/man2/waitpid.2.html) with a
/// timeout in milliseconds (`-1`: forever): `Ok(None)` if `pid` is still
/// running when it passes. Sleeps in `poll` on a pidfd (Linux 5.3+), or in
/// short naps where pidfds are unavailable.
pub fn waitpid_timeout(pid: Pid, timeout_ms: i32) -> Result<Option<WaitStatus>> {
    if timeout_ms < 0 {
        return waitpid(pid, true);
    }
    let deadline = Deadline::after(timeout_ms);
    let pidfd = pidfd_open(pid);
    loop {
        if let Some(status) = waitpid(pid, false)? {
            return Ok(Some(status));
        }
        if deadline.expired() {
            return Ok(None);
        }
        match &pidfd {
            Ok(fd) => {
                poll(&mut [PollFd::new(fd, POLLIN)], deadline.remaining_ms())?;
            }
            Err(_) => sleep_ms(deadline.remaining_ms().clamp(0, 5) as u32),
        }
    }
}

/// [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html):
/// a descriptor that becomes readable when `pid` ends (close-on-exec).
fn pidfd_open(pid: Pid) -> Result<Fd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    Ok(Fd::own(fd as i32))
}

/// Blocks until any child ends; `Ok(None)` when there are no children left.
pub fn wait_any() -> Result<Option<(Pid, WaitStatus)>> {
    let mut status = 0;
    // SAFETY: `status` is a valid int to write.
    match retry(|| cvt(unsafe { libc::waitpid(-1, &mut status, 0) })) {
        Ok(pid) => Ok(Some((pid, WaitStatus(status)))),
        Err(Errno::CHILD) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `_exit(2)`: ends the process at once, without running exit handlers or
/// flushing stdio buffers inherited from the creator.
pub fn exit_now(status: i32) -> ! {
    // SAFETY: _exit has no preconditions and does not return.
    unsafe { libc::_exit(status) }
}

/// The signal that cannot be caught.
pub const SIGKILL: i32 = libc::SIGKILL;

/// [kill(2)](https://man7.org/linux/man-pages/man2/kill.2.html) to one
/// process: a pid of 0 or less (a process group, or every process) is
/// `EINVAL`.
pub fn kill(pid: Pid, signal: i32) -> Result<()> {
    if pid <= 0 {
        return Err(Errno::INVAL);
    }
    // SAFETY: kill has no memory-safety preconditions.
    cvt(unsafe { libc::kill(pid, signal) }).map(drop)
}

/// The calling process's id.
pub fn getpid() -> Pid {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

/// The number of online processors (at least 1).
pub fn number_of_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

/// Processes whose channel was closed while they still ran; collected later.
static ORPHANS: [core::sync::atomic::AtomicI32; 256] =
    [const { core::sync::atomic::AtomicI32::new(0) }; 256];

/// Remembers `pid` so that [`reap_orphans`] collects it once it ends. If the
/// list is full the process is left to `waitall`.
pub fn reap_later(pid: Pid) {
    use core::sync::atomic::Ordering;
    for slot in &ORPHANS {
        if slot
            .compare_exchange(0, pid, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
    }
}

/// Collects every remembered process that has ended, without waiting.
pub fn reap_orphans() {
    use core::sync::atomic::Ordering;
    for slot in &ORPHANS {
        let pid = slot.load(Ordering::Relaxed);
        if pid > 0 && !matches!(waitpid(pid, false), Ok(None)) {
            slot.store(0, Ordering::Relaxed);
        }
    }
}

/// Forgets every remembered process: in a new child they are not its own,
/// and after `waitall` they are already collected.
pub fn forget_orphans() {
    use core::sync::atomic::Ordering;
    for slot in &ORPHANS {
        // Read first: a page nobody wrote stays shared after fork.
        if slot.load(Ordering::Relaxed) != 0 {
            slot.store(0, Ordering::Relaxed);
        }
    }
}

/// Sleeps for `ms` milliseconds (0 yields the processor).
pub fn sleep_ms(ms: u32) {
    // SAFETY: poll with no descriptors only sleeps; a null array is allowed
    // when nfds is 0.
    unsafe { libc::poll(core::ptr::null_mut(), 0, ms as i32) };
}
