//! Processes this process created and still owns: a [`Child`] handle that
//! names its process by a pidfd, [`OwnedChild`], the owner of one (its wait
//! status, its collection, at most once and never forgotten), and
//! [`Children`], a set of them collected later that never drops one.
//!
//! A pid alone does not name a process for long: once the program's own
//! `waitpid` has collected a process, the kernel may give its pid to another
//! of the program's children, which a `waitpid(pid)` of the library would
//! then collect in its place. A pidfd names one process for its whole life,
//! so a [`Child`] made right after `fork` waits for, signals and collects
//! only the process the library created ([waitid(2)] with `P_PIDFD`, Linux
//! 5.4+). Where pidfds are unavailable it falls back to the pid.
//!
//! [waitid(2)]: https://man7.org/linux/man-pages/man2/waitid.2.html

use super::{cvt, retry, Deadline, Errno, Fd, Pid, Result, WaitStatus};

/// A process this process created, named by a pidfd where the kernel has
/// them (its pid otherwise). Dropping the handle does not collect the
/// process: hand it to a [`Children`] set for that.
#[derive(Debug)]
pub struct Child {
    pid: Pid,
    pidfd: Option<Fd>,
}

impl Child {
    /// The handle of `pid`, a child just created by this process (before
    /// anything could have collected it).
    pub(super) fn new(pid: Pid) -> Child {
        Child {
            pid,
            pidfd: pidfd_open(pid).ok(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The pidfd naming the process, where the kernel gave one.
    pub fn pidfd(&self) -> Option<&Fd> {
        self.pidfd.as_ref()
    }

    /// Collects the process once it has ended: with `block == false`,
    /// `Ok(None)` while it runs. [`Errno::CHILD`] when it is no longer this
    /// process's to collect (the program collected it itself).
    pub fn wait(&self, block: bool) -> Result<Option<WaitStatus>> {
        if let Some(pidfd) = &self.pidfd {
            match waitid_pidfd(pidfd, block) {
                Err(Errno::INVAL) => {} // no P_PIDFD (Linux < 5.4): by pid
                other => return other,
            }
        }
        super::waitpid(self.pid, block)
    }

    /// [`Child::wait`] for at most `timeout_ms` milliseconds (`-1`:
    /// forever): `Ok(None)` if the process still runs then. Sleeps in `poll`
    /// on the pidfd, or in short naps without one.
    pub fn wait_timeout(&self, timeout_ms: i32) -> Result<Option<WaitStatus>> {
        if timeout_ms < 0 {
            return self.wait(true);
        }
        let deadline = Deadline::after(timeout_ms);
        loop {
            if let Some(status) = self.wait(false)? {
                return Ok(Some(status));
            }
            if deadline.expired() {
                return Ok(None);
            }
            match &self.pidfd {
                Some(fd) => {
                    super::wait_readable(fd, deadline.remaining_ms())?;
                }
                None => super::sleep_ms(deadline.remaining_ms().clamp(0, 5) as u32),
            }
        }
    }

    /// Sends `signal` to the process
    /// ([pidfd_send_signal(2)](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html)):
    /// never to another process that got its pid after it was collected.
    pub fn kill(&self, signal: i32) -> Result<()> {
        match &self.pidfd {
            // SAFETY: pidfd_send_signal takes a descriptor, a signal number, a
            // siginfo pointer that may be null, and flags.
            Some(fd) => cvt(unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.raw(),
                    signal,
                    core::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            })
            .map(drop),
            None => super::kill(self.pid, signal),
        }
    }

    /// Kills the process (if it still runs) and collects it. `Ok(())` also
    /// when the program collected it itself: it is gone either way.
    pub fn kill_and_collect(&self) -> Result<Option<WaitStatus>> {
        if self.wait(false)?.is_none() {
            match self.kill(super::SIGKILL) {
                // ESRCH: it ended meanwhile; the wait below collects it.
                Ok(()) | Err(Errno(libc::ESRCH)) => {}
                Err(e) => return Err(e),
            }
        }
        match self.wait(true) {
            Err(Errno::CHILD) => Ok(None),
            other => other,
        }
    }
}

/// A created process and its wait status once collected: what a channel to
/// a process it created holds. It collects the process at most once (later
/// waits give the same status), and on drop hands a process that still runs
/// to the deferred reaping ([`reap_later`](super::reap_later)), so that none
/// is left a zombie and none is collected twice.
#[derive(Debug)]
pub struct OwnedChild {
    /// The process, until [`OwnedChild::disown`] hands it on.
    child: Option<Child>,
    /// Its status, once collected.
    status: Option<WaitStatus>,
}

impl OwnedChild {
    /// Owns `child`, not collected yet.
    pub fn new(child: Child) -> OwnedChild {
        OwnedChild {
            child: Some(child),
            status: None,
        }
    }

    /// The process id (0 once disowned).
    pub fn pid(&self) -> Pid {
        self.child.as_ref().map_or(0, Child::pid)
    }

    /// The pidfd naming the process, where the kernel gave one.
    pub fn pidfd(&self) -> Option<&Fd> {
        self.child.as_ref().and_then(Child::pidfd)
    }

    /// The process still to collect: none once collected or disowned.
    fn running(&self) -> Option<&Child> {
        self.child.as_ref().filter(|_| self.status.is_none())
    }

    /// Collects the process once it has ended (see [`Child::wait`]); the
    /// status collected before, if any.
    pub fn wait(&mut self, block: bool) -> Result<Option<WaitStatus>> {
        if let Some(child) = self.running() {
            self.status = child.wait(block)?;
        }
        Ok(self.status)
    }

    /// [`OwnedChild::wait`] for at most `timeout_ms` milliseconds (`-1`:
    /// forever): `Ok(None)` if the process still runs then.
    pub fn wait_timeout(&mut self, timeout_ms: i32) -> Result<Option<WaitStatus>> {
        if let Some(child) = self.running() {
            self.status = child.wait_timeout(timeout_ms)?;
        }
        Ok(self.status)
    }

    /// Kills the process if it still runs and collects it (see
    /// [`Child::kill_and_collect`]); its status is kept.
    pub fn kill_and_collect(&mut self) -> Result<()> {
        if let Some(child) = self.running() {
            self.status = child.kill_and_collect()?;
        }
        Ok(())
    }

    /// Hands the collection of the process to the caller: it is returned
    /// unless it was collected already, and this owner forgets it.
    pub fn disown(&mut self) -> Option<Child> {
        let child = self.child.take();
        child.filter(|_| self.status.is_none())
    }
}

impl Drop for OwnedChild {
    fn drop(&mut self) {
        if let Some(child) = self.disown() {
            // Still running: collected once it ends. Ended or not ours any
            // more (an error): nothing is left to collect.
            if let Ok(None) = child.wait(false) {
                super::reap_later(child);
            }
        }
    }
}

/// [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html):
/// a descriptor that names `pid` and becomes readable when it ends
/// (close-on-exec).
fn pidfd_open(pid: Pid) -> Result<Fd> {
    super::fd::made(|| {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
        let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
        Ok(fd as i32)
    })
}

/// `waitid(P_PIDFD, pidfd, WEXITED)`, as a `waitpid` status.
fn waitid_pidfd(pidfd: &Fd, block: bool) -> Result<Option<WaitStatus>> {
    let flags = libc::WEXITED | if block { 0 } else { libc::WNOHANG };
    // SAFETY: an all-zero siginfo_t is a valid value (a plain C struct).
    let mut info: libc::siginfo_t = unsafe { core::mem::zeroed() };
    // SAFETY: `info` is a valid siginfo_t to write; the id is a descriptor.
    retry(|| {
        cvt(unsafe { libc::waitid(libc::P_PIDFD, pidfd.raw() as libc::id_t, &mut info, flags) })
    })?;
    // SAFETY: waitid filled `info` for a child-state change (SIGCHLD
    // layout), or left it zeroed when WNOHANG found nothing.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    // The encoding of waitpid(2)'s status (see <bits/waitstatus.h>).
    let raw = match info.si_code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_DUMPED => (status & 0x7f) | 0x80,
        _ => status & 0x7f,
    };
    Ok(Some(WaitStatus(raw)))
}

/// The oldest process of a full [`Children`] set, taken out of it by
/// [`Children::try_adopt`].
#[derive(Debug)]
pub struct Oldest(Option<Child>);

impl Oldest {
    /// Waits for the process to end and collects it; an error means it is
    /// no longer this process's to collect: gone either way. (Nothing to do
    /// when the set had no process at all: then only memory was short.)
    pub fn collect(self) {
        if let Some(child) = self.0 {
            let _collected_or_gone = child.wait(true);
        }
    }
}

/// Where a [`Children`] set keeps its processes: growable with `alloc`, at
/// most `N` inline without it.
#[cfg(feature = "alloc")]
type List<const N: usize> = alloc::vec::Vec<Child>;
#[cfg(not(feature = "alloc"))]
type List<const N: usize> = heapless::Vec<Child, N>;

/// Processes to collect once they end. Nothing is ever dropped: the set
/// grows with `alloc`; when it cannot (`N` held without `alloc`, or
/// allocation failed), [`Children::adopt`] first collects the processes
/// that have ended, and then waits for the oldest to end.
#[derive(Debug, Default)]
pub struct Children<const N: usize> {
    list: List<N>,
}

impl<const N: usize> Children<N> {
    /// An empty set.
    pub const fn new() -> Self {
        Children { list: List::new() }
    }

    /// True when the set holds no process.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Keeps `child` to collect later.
    pub fn adopt(&mut self, child: Child) {
        let mut child = child;
        while let Err((back, oldest)) = self.try_adopt(child) {
            child = back;
            oldest.collect();
        }
    }

    /// Keeps `child` to collect later if there is room, after collecting
    /// the processes that have ended if need be. Otherwise hands it back
    /// with the oldest process of the set, taken out, for the caller to
    /// [collect](Oldest::collect) (its channel was closed first, so it is
    /// the likeliest to be ending) before trying again.
    pub fn try_adopt(&mut self, child: Child) -> core::result::Result<(), (Child, Oldest)> {
        let child = match self.try_push(child) {
            Ok(()) => return Ok(()),
            Err(back) => back,
        };
        self.collect_ended();
        let child = match self.try_push(child) {
            Ok(()) => return Ok(()),
            Err(back) => back,
        };
        let oldest = (!self.list.is_empty()).then(|| self.list.remove(0));
        Err((child, Oldest(oldest)))
    }

    #[cfg(feature = "alloc")]
    fn try_push(&mut self, child: Child) -> core::result::Result<(), Child> {
        match self.list.try_reserve(1) {
            Ok(()) => {
                self.list.push(child);
                Ok(())
            }
            Err(_) => Err(child),
        }
    }

    #[cfg(not(feature = "alloc"))]
    fn try_push(&mut self, child: Child) -> core::result::Result<(), Child> {
        self.list.push(child)
    }

    /// Collects every process of the set that has ended, without waiting;
    /// returns whether any left the set. A process the program collected
    /// itself leaves the set too.
    pub fn collect_ended(&mut self) -> bool {
        let before = self.list.len();
        // Collected, or an error: not this process's to collect any more.
        self.list
            .retain(|child| matches!(child.wait(false), Ok(None)));
        self.list.len() < before
    }

    /// Waits for every process of the set to end and collects it.
    pub fn collect_all(&mut self) {
        while let Some(child) = self.list.pop() {
            // An error means it is not ours to collect any more: gone.
            let _collected_or_gone = child.wait(true);
        }
    }

    /// Kills every process of the set that still runs, and collects all.
    pub fn kill_all(&mut self) {
        while let Some(child) = self.list.pop() {
            // An error means it is not ours to collect any more: gone.
            let _collected_or_gone = child.kill_and_collect();
        }
    }

    /// Empties the set without collecting anything: in a newly created
    /// process, whose creator's children are not its own.
    pub fn forget(&mut self) {
        self.list.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::super::proc::{fork, Forked};
    use super::*;

    /// A new process that exits at once with `code`.
    fn exiting(code: i32) -> Child {
        // SAFETY: the new process only calls _exit, which is
        // async-signal-safe.
        match unsafe { fork() }.expect("fork") {
            Forked::Child => super::super::exit_now(code),
            Forked::Parent(child) => child,
        }
    }

    #[test]
    fn an_owned_child_is_collected_once_and_keeps_its_status() {
        let mut owned = OwnedChild::new(exiting(3));
        let status = owned.wait(true).unwrap().expect("collected");
        assert_eq!(status.exit_code(), Some(3));
        // Again: the same status, not ECHILD from a second collection.
        assert_eq!(owned.wait(true), Ok(Some(status)));
        assert_eq!(owned.wait_timeout(0), Ok(Some(status)));
        assert_eq!(owned.kill_and_collect(), Ok(()));
        assert!(owned.disown().is_none(), "nothing is left to collect");
    }

    #[test]
    fn a_disowned_child_is_the_new_owners_to_collect() {
        let mut owned = OwnedChild::new(exiting(0));
        let child = owned.disown().expect("not collected yet");
        assert_eq!(owned.pid(), 0);
        drop(owned); // collects nothing, and hands nothing on
        assert!(child.wait(true).unwrap().expect("collected").success());
    }
}
