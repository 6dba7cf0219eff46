//! Processes: fork, wait, exit, signals.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

pub use super::child::{Child, Children, OwnedChild};
use super::{cvt, retry, Errno, Pid, Result, WaitStatus};

/// Which side of a [`fork`] this is.
#[derive(Debug)]
pub enum Forked {
    /// The new process.
    Child,
    /// The creator, with the new process's handle.
    Parent(Child),
}

/// [fork(2)](https://man7.org/linux/man-pages/man2/fork.2.html). The
/// creator gets a [`Child`] handle made right after the fork, so the new
/// process is named by a pidfd before anything else could collect it.
///
/// # Safety
/// In a process with other threads, only the calling thread exists in the
/// child, and whatever another thread held at the fork (the lock of a
/// `Mutex`, of Rust's `stdout`, of an allocator other than glibc's, which
/// its fork handlers make safe) stays held there for ever. The caller
/// promises that either no other thread exists (see [`other_threads`]), or
/// the child, until it exits or execs, touches nothing another thread could
/// have held: only async-signal-safe functions, its own channel, and
/// memory no other thread was changing.
pub unsafe fn fork() -> Result<Forked> {
    // No descriptor is half made (made but not registered) while it forks:
    // the new process closes every one it inherits but its own.
    let forked = super::fd::forking(|| {
        // SAFETY: fork has no memory-safety preconditions for the parent;
        // the child's obligations are the caller's (see # Safety).
        unsafe { libc::fork() }
    });
    match cvt(forked)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Child::new(pid))),
    }
}

/// Set by [`allow_threads`].
static THREADS_ALLOWED: AtomicBool = AtomicBool::new(false);

/// From now on, [`fork_checked`] forks in a process with other threads too.
/// Only for `process::allow_fork_with_threads`, whose caller took
/// [`fork`]'s contract for every fork to come.
pub(crate) fn allow_threads() {
    THREADS_ALLOWED.store(true, Ordering::Relaxed);
}

/// True when [`fork_checked`] would refuse: other threads exist, and
/// neither `contract_taken` nor [`allow_threads`] took [`fork`]'s contract.
pub(crate) fn fork_refused(contract_taken: bool) -> bool {
    !contract_taken && !THREADS_ALLOWED.load(Ordering::Relaxed) && other_threads()
}

/// [`fork`] where it is sound: `Ok(None)` (nothing forked) when
/// [`fork_refused`]. `contract_taken` is true only where the caller took
/// the contract: an `unsafe` function of this crate that states it, or a C
/// caller (the header states it).
pub(crate) fn fork_checked(contract_taken: bool) -> Result<Option<Forked>> {
    if fork_refused(contract_taken) {
        return Ok(None);
    }
    // SAFETY: no other thread exists (checked just above; only this thread
    // could start one, and it does not before the fork), or the caller took
    // the contract (`contract_taken`, `allow_threads`).
    unsafe { fork() }.map(Some)
}

/// True unless this process is sure it has no thread but the caller.
///
/// glibc's `__libc_single_threaded` answers at no cost while the process
/// has never had a second thread; otherwise the thread count of
/// `/proc/self/stat` decides (threads that have ended do not count). If
/// that cannot be read, other threads are assumed.
pub fn other_threads() -> bool {
    if libc_single_threaded() {
        return false;
    }
    thread_count() != Some(1)
}

/// glibc's `__libc_single_threaded` (`<sys/single_threaded.h>`, glibc
/// 2.32): true while the process has never had a second thread.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(super) fn libc_single_threaded() -> bool {
    extern "C" {
        static __libc_single_threaded: core::ffi::c_char;
    }
    // SAFETY: a plain read of a byte glibc keeps for this purpose.
    unsafe { __libc_single_threaded != 0 }
}

/// Without glibc's flag: not known, so the thread count decides.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(super) fn libc_single_threaded() -> bool {
    false
}

/// The number of threads of this process: field 20 of `/proc/self/stat`
/// ([proc_pid_stat(5)](https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html)).
fn thread_count() -> Option<usize> {
    let fd = super::fd::made(|| {
        // SAFETY: a NUL-terminated path and flags; the result is checked.
        cvt(unsafe {
            libc::open(
                c"/proc/self/stat".as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        })
    })
    .ok()?;
    let mut buf = [0u8; 1024];
    let len = super::read(&fd, &mut buf).ok()?;
    let text = buf.get(..len)?;
    // The command name (field 2) is in parentheses and may hold anything:
    // fields are counted from the last ')'.
    let after = &text[text.iter().rposition(|&b| b == b')')? + 1..];
    let field = after
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty())
        .nth(20 - 3)?;
    core::str::from_utf8(field).ok()?.parse().ok()
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

/// [kill(2)](https://man7.org/linux/man-pages/man2/kill.2.html) to the
/// process group `pgid` (a group leader's pid): every process in it. A
/// `pgid` of 1 or less (this process's own group, or every process) is
/// `EINVAL`.
pub fn kill_group(pgid: Pid, signal: i32) -> Result<()> {
    if pgid <= 1 {
        return Err(Errno::INVAL);
    }
    // SAFETY: kill has no memory-safety preconditions; -pgid names the group.
    cvt(unsafe { libc::kill(-pgid, signal) }).map(drop)
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

/// Processes whose channel was closed while they still ran, collected
/// later; 256 at most without `alloc` (see [`Children::adopt`] for what
/// happens beyond).
static ORPHANS: Orphans = Orphans {
    locked: AtomicBool::new(false),
    set: UnsafeCell::new(Children::new()),
};

/// The orphan set behind a spin lock (no `std` mutex in `no_std`): it is
/// held only to add or sweep, never across a blocking wait.
struct Orphans {
    locked: AtomicBool,
    set: UnsafeCell<Children<256>>,
}

// SAFETY: `set` is only reached through `Orphans::with`, which holds the
// lock (or, in a new process, runs with no other thread).
unsafe impl Sync for Orphans {}

impl Orphans {
    fn with<R>(&self, f: impl FnOnce(&mut Children<256>) -> R) -> R {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        struct Unlock<'a>(&'a AtomicBool);
        impl Drop for Unlock<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _unlock_on_return = Unlock(&self.locked);
        // SAFETY: the lock is held until `_unlock_on_return` drops, so this
        // is the only reference to the set.
        f(unsafe { &mut *self.set.get() })
    }
}

/// Remembers `child`, whose channel was closed while it still ran, so that
/// [`reap_orphans`] collects it once it ends. Nothing is dropped: see
/// [`Children::adopt`].
pub fn reap_later(child: Child) {
    let mut child = child;
    while let Err((back, oldest)) = ORPHANS.with(|set| set.try_adopt(child)) {
        child = back;
        oldest.collect(); // outside the lock: it may wait
    }
}

/// Collects every remembered process that has ended, without waiting.
pub fn reap_orphans() {
    ORPHANS.with(|set| set.collect_ended());
}

/// In a newly created process: forgets the creator's remembered processes,
/// which are not this one's. The lock is not waited for: another thread of
/// the creator may have held it at the fork, and none runs here.
pub fn forget_orphans() {
    // Read first: a page nobody wrote stays shared after fork.
    // SAFETY: this process has a single thread (it was just forked), so
    // nothing else reaches the set while it is read and replaced.
    let set = unsafe { &mut *ORPHANS.set.get() };
    if ORPHANS.locked.load(Ordering::Relaxed) {
        // Another thread of the creator was changing the set at the fork:
        // it may be half-changed, so let go of it without a drop.
        core::mem::forget(core::mem::replace(set, Children::new()));
        ORPHANS.locked.store(false, Ordering::Release);
    } else if !set.is_empty() {
        // The creator's handles are stale here: their descriptors were
        // closed after the fork, and dropping them closes nothing.
        set.forget();
    }
}

/// Sleeps for `ms` milliseconds (0 yields the processor).
pub fn sleep_ms(ms: u32) {
    // SAFETY: poll with no descriptors only sleeps; a null array is allowed
    // when nfds is 0.
    unsafe { libc::poll(core::ptr::null_mut(), 0, ms as i32) };
}
