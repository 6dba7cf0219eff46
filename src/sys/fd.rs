//! Owned file descriptors and the registry that keeps created processes clean.
//!
//! Every descriptor the library opens is an [`Fd`]: it is close-on-exec from
//! birth, it is closed when dropped, and it is recorded in a process-wide
//! bitmap. Right after `fork`, the created process closes every recorded
//! descriptor except the ones it keeps ([`after_fork_in_child`]), so it never
//! holds a channel of its creator's other children.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Descriptors below this number are tracked. The library refuses a higher
/// one (`EMFILE`, see [`Fd::own`]): untracked, it would stay open in created
/// processes.
const TRACKED: usize = 65_536;
const WORDS: usize = TRACKED / 64;

static REGISTRY: [AtomicU64; WORDS] = [const { AtomicU64::new(0) }; WORDS];

/// One past the highest registry word ever used: a created process scans
/// only these instead of all 8 KiB.
static USED_WORDS: AtomicUsize = AtomicUsize::new(0);

/// Incremented in each created process: descriptors inherited from the creator
/// belong to an older epoch, were closed after `fork`, and must not be closed
/// again by a stale [`Fd`] value (the number may name a newer descriptor).
static EPOCH: AtomicU32 = AtomicU32::new(0);

/// Library descriptors being made or closed: between the system call that
/// returns one and its registration ([`Fd::own`], inside [`made`]), or
/// between its unregistration and its close (dropping an [`Fd`]).
static MAKING: AtomicU32 = AtomicU32::new(0);

/// True while a library fork is under way ([`forking`]): descriptors wait.
static FORKING: AtomicBool = AtomicBool::new(false);

/// Makes a descriptor with `make` (a system call returning it) and takes
/// ownership of it, as one step as far as library forks go: a process the
/// library forks meanwhile (from another thread, under fork's contract)
/// never inherits a descriptor the registry does not know yet, which it
/// could not close.
pub(super) fn made(make: impl FnOnce() -> super::Result<i32>) -> super::Result<Fd> {
    let _making = Making::start();
    Fd::own(make()?)
}

/// Makes two descriptors at once (a socket pair) as [`made`] makes one.
pub(super) fn made_pair(make: impl FnOnce() -> super::Result<[i32; 2]>) -> super::Result<(Fd, Fd)> {
    let _making = Making::start();
    let [a, b] = make()?;
    // Each is owned (or closed) before either can fail.
    let (a, b) = (Fd::own(a), Fd::own(b));
    Ok((a?, b?))
}

/// A descriptor being made or closed: counted in [`MAKING`] while it lives.
struct Making;

impl Making {
    fn start() -> Making {
        loop {
            while FORKING.load(Ordering::SeqCst) {
                pause();
            }
            MAKING.fetch_add(1, Ordering::SeqCst);
            if !FORKING.load(Ordering::SeqCst) {
                return Making;
            }
            MAKING.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Making {
    fn drop(&mut self) {
        MAKING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `fork` (the system call) once no descriptor is being made, and
/// keeps new ones from being made until it returns (one library fork at a
/// time). In the new process, only this thread exists and nothing is being
/// made.
pub(super) fn forking<T>(fork: impl FnOnce() -> T) -> T {
    while FORKING
        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        pause();
    }
    while MAKING.load(Ordering::SeqCst) != 0 {
        pause();
    }
    let forked = fork();
    FORKING.store(false, Ordering::SeqCst);
    forked
}

/// Lets other threads run while this one waits (a fork or a system call).
fn pause() {
    // SAFETY: sched_yield has no preconditions.
    unsafe { libc::sched_yield() };
}

fn slot(raw: i32) -> Option<(usize, u64)> {
    let n = usize::try_from(raw).ok().filter(|&n| n < TRACKED)?;
    Some((n / 64, 1u64 << (n % 64)))
}

/// An owned file descriptor, closed on drop.
#[derive(Debug)]
pub struct Fd {
    raw: i32,
    epoch: u32,
}

impl Fd {
    /// Takes ownership of a descriptor the kernel just returned. One the
    /// registry cannot track (65,536 or above) is closed again and refused
    /// with `EMFILE`, as if the process had no descriptor left: the registry
    /// never drops one silently.
    pub(super) fn own(raw: i32) -> super::Result<Fd> {
        let Some((word, bit)) = slot(raw) else {
            // SAFETY: the kernel just returned `raw` to the caller, who hands
            // it over; nothing else uses it.
            unsafe { libc::close(raw) };
            return Err(super::Errno(libc::EMFILE));
        };
        REGISTRY[word].fetch_or(bit, Ordering::Relaxed);
        if USED_WORDS.load(Ordering::Relaxed) <= word {
            USED_WORDS.fetch_max(word + 1, Ordering::Relaxed);
        }
        Ok(Fd {
            raw,
            epoch: EPOCH.load(Ordering::Relaxed),
        })
    }

    /// The raw descriptor number, borrowed; `-1` for one inherited across a
    /// fork (closed there, so its number may name a newer descriptor: every
    /// call on it fails with `EBADF` instead of touching that one).
    pub fn raw(&self) -> i32 {
        if self.epoch == EPOCH.load(Ordering::Relaxed) {
            self.raw
        } else {
            -1
        }
    }

    /// The descriptor borrowed for as long as this `Fd` is.
    #[cfg(feature = "std")]
    pub fn borrow(&self) -> std::os::fd::BorrowedFd<'_> {
        // SAFETY: an `Fd` owns an open descriptor, closed only when it is
        // dropped, which the borrow's lifetime rules out.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(self.raw) }
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        if self.epoch != EPOCH.load(Ordering::Relaxed) {
            return; // inherited across fork and already closed there
        }
        // Unregistered and closed as one step as far as library forks go:
        // a process forked in between would keep it open.
        let _closing = Making::start();
        if let Some((word, bit)) = slot(self.raw) {
            REGISTRY[word].fetch_and(!bit, Ordering::Relaxed);
        }
        // SAFETY: we own `raw` (this epoch opened it and nothing else closes it).
        // close(2) is not retried on EINTR: on Linux the descriptor is gone either way.
        unsafe { libc::close(self.raw) };
    }
}

/// In a freshly created process: closes every library descriptor inherited
/// from the creator except those in `keep`, which stay owned by this process.
pub fn after_fork_in_child(keep: &mut [&mut Fd]) {
    let epoch = EPOCH.fetch_add(1, Ordering::Relaxed) + 1;
    let used = USED_WORDS.load(Ordering::Relaxed);
    // Runs of consecutive numbers are closed with one system call each: a
    // creator's channels are usually made in a row, so its hundredth child
    // closes its ninety-nine siblings' descriptors in one call, not two
    // hundred.
    let mut run: Option<(u32, u32)> = None;
    for (word, cell) in REGISTRY[..used].iter().enumerate() {
        // Read before writing: untouched pages of the registry stay shared
        // with the creator instead of being copied.
        if cell.load(Ordering::Relaxed) == 0 {
            continue;
        }
        let mut bits = cell.swap(0, Ordering::Relaxed);
        while bits != 0 {
            let raw = (word * 64) as u32 + bits.trailing_zeros();
            bits &= bits - 1;
            if keep.iter().any(|fd| fd.raw as u32 == raw) {
                continue;
            }
            run = match run {
                Some((first, last)) if last + 1 == raw => Some((first, raw)),
                Some((first, last)) => {
                    close_range(first, last);
                    Some((raw, raw))
                }
                None => Some((raw, raw)),
            };
        }
    }
    if let Some((first, last)) = run {
        close_range(first, last);
    }
    for fd in keep.iter_mut() {
        fd.epoch = epoch;
        if let Some((word, bit)) = slot(fd.raw) {
            REGISTRY[word].fetch_or(bit, Ordering::Relaxed);
        }
    }
}

/// Closes every descriptor of this process from 3 up, library or not,
/// except those in `keep` (and standard input, output and error): a
/// detached background process holds only its own descriptors, not a file,
/// lock or pipe its starter happened to have open
/// ([close_range(2)](https://man7.org/linux/man-pages/man2/close_range.2.html),
/// or one close(2) per number on kernels without it).
pub fn close_all_except(keep: &[&Fd]) {
    let mut kept = [0u32; 8];
    assert!(keep.len() <= kept.len(), "close_all_except keeps at most 8");
    for (slot, fd) in kept.iter_mut().zip(keep) {
        *slot = fd.raw as u32;
    }
    let kept = &mut kept[..keep.len()];
    kept.sort_unstable();
    let mut first = 3u32;
    for &fd in kept.iter() {
        if fd >= first {
            close_range(first, fd - 1);
            first = fd + 1;
        }
    }
    close_range(first, u32::MAX);
}

/// Closes the descriptors `first..=last` (none when `first > last`).
fn close_range(first: u32, last: u32) {
    if first > last {
        return;
    }
    // SAFETY: close_range has no memory-safety preconditions; the caller
    // gives up every descriptor in the range (none is used by an `Fd` it
    // keeps: in a created process, every one in the range is a library
    // descriptor inherited from the creator).
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if ret == 0 {
        return;
    }
    // Without close_range (Linux before 5.9, or a seccomp filter that
    // refuses it): one close per number. A range with an end is closed to
    // its end; an open-ended one up to the descriptor limit.
    let last = match last {
        u32::MAX => {
            // SAFETY: sysconf has no memory-safety preconditions.
            let max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) }.clamp(0, 1 << 20) as u32;
            max.saturating_sub(1)
        }
        last => last,
    };
    for raw in first..=last {
        // SAFETY: as above: every descriptor in the range is given up.
        unsafe { libc::close(raw as i32) };
    }
}
