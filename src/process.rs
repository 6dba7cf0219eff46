//! Creating processes: [`create`] (fork-style) and [`start`] (run a callable
//! in a new process), plus [`exit`], [`waitall`] and [`number_of_cores`].

use crate::channel::Channel;
use crate::error::{Error, RemoteError, Result};
use crate::sys::{self, Forked};

/// Exit status of a created process whose callable returned an error.
pub const EXIT_CALLABLE_ERROR: i32 = 1;
/// Exit status of a created process whose callable panicked.
pub const EXIT_CALLABLE_PANIC: i32 = 101;

/// Which side of [`create`] this is, each with its end of the channel.
#[derive(Debug)]
pub enum Created {
    /// In the new process: the channel to the creator.
    Child(Channel),
    /// In the creator: the channel to the new process (its pid in [`Channel::pid`]).
    Parent(Channel),
}

/// Whether a forking call may go ahead while the process has other threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ForkCheck {
    /// Only with no other thread ([`Error::Threads`] otherwise), unless the
    /// program called [`allow_fork_with_threads`].
    Refuse,
    /// The caller took [`sys::fork_checked`]'s contract: an `unsafe` function of
    /// this crate whose `# Safety` states it, or a C caller (the header
    /// states it). Never made from a safe call's arguments.
    Accepted,
}

/// Lets every forking call of this crate ([`create`], [`start`], the
/// exchanges, queues, maps and [`pmap`](crate::pmap), the persistent calls)
/// fork while the process has other threads, from now on. Without it they
/// refuse with [`Error::Threads`] in that case.
///
/// # Safety
/// In the processes those calls create, only the forking thread exists, and
/// whatever another thread held at the fork (the lock of a `Mutex`, of
/// Rust's `stdout`, of a non-glibc allocator) stays held there. The caller
/// promises that every process created from now on, until it exits, touches
/// nothing another thread of the program could have held: its callable uses
/// its channel, memory no other thread was changing, and async-signal-safe
/// functions (glibc's `malloc` is safe: its fork handlers reset it).
///
/// ```
/// use pprocess::{allow_fork_with_threads, create_unchecked, exit, start, start_unchecked};
/// use pprocess::{Created, Error};
/// use std::sync::mpsc;
///
/// // Another thread, blocked until it is told to go.
/// let (go, wait) = mpsc::channel::<()>();
/// let other = std::thread::spawn(move || wait.recv());
/// assert_eq!(start(|channel| Ok(channel.send(b"hi")?)).err(), Some(Error::Threads));
///
/// // SAFETY: the new process only uses its channel, then exits.
/// let mut channel = unsafe { start_unchecked(|channel| Ok(channel.send(b"hi")?)) }?;
/// assert_eq!(channel.receive_vec()?, b"hi");
/// // SAFETY: the new process only exits (closing its channel).
/// match unsafe { create_unchecked() }? {
///     Created::Child(channel) => exit(channel, 0),
///     Created::Parent(mut channel) => assert!(channel.wait()?.success()),
/// }
/// // SAFETY: every process this program creates from now on only uses its
/// // channel and exits.
/// unsafe { allow_fork_with_threads() };
/// let mut channel = start(|channel| Ok(channel.send(b"hi")?))?;
/// assert_eq!(channel.receive_vec()?, b"hi");
///
/// go.send(()).unwrap();
/// other.join().unwrap().unwrap();
/// # Ok::<(), Error>(())
/// ```
pub unsafe fn allow_fork_with_threads() {
    sys::allow_threads();
}

/// [`Error::Threads`] unless forking now is sound under `check`.
pub(crate) fn fork_allowed(check: ForkCheck) -> Result<()> {
    match sys::fork_refused(check == ForkCheck::Accepted) {
        true => Err(Error::Threads),
        false => Ok(()),
    }
}

/// Forks under `check`: [`Error::Threads`] where that is refused.
pub(crate) fn fork(check: ForkCheck) -> Result<Forked> {
    sys::fork_checked(check == ForkCheck::Accepted)?.ok_or(Error::Threads)
}

/// Creates a process connected to this one by a channel (pprocess's `create`).
///
/// Both processes continue from here; the new one gets [`Created::Child`] and
/// should finish with [`exit`]. Right after the fork the new process closes
/// every channel of its creator except its own, and buffered C stdio output is
/// flushed first so it is not printed twice.
///
/// A process with other threads is refused with [`Error::Threads`]: as with
/// fork(2), only the calling thread would exist in the new process, and
/// locks the others held would stay held there (see [`create_unchecked`]
/// and [`allow_fork_with_threads`]).
///
/// ```
/// use pprocess::{create, exit, Created};
///
/// match create()? {
///     Created::Child(mut channel) => {
///         let status = if channel.send(b"from the child").is_ok() { 0 } else { 1 };
///         exit(channel, status)
///     }
///     Created::Parent(mut channel) => {
///         assert_eq!(channel.receive_vec()?, b"from the child");
///         assert!(channel.wait()?.success());
///     }
/// }
/// # Ok::<(), pprocess::Error>(())
/// ```
pub fn create() -> Result<Created> {
    create_as(ForkCheck::Refuse)
}

/// [`create`] even while the process has other threads.
///
/// # Safety
/// The new process, until it exits, touches nothing another thread could
/// have held at the fork: see [`allow_fork_with_threads`] for the contract.
pub unsafe fn create_unchecked() -> Result<Created> {
    create_as(ForkCheck::Accepted)
}

/// [`create`] under `check`.
pub(crate) fn create_as(check: ForkCheck) -> Result<Created> {
    fork_allowed(check)?;
    sys::reap_orphans();
    sys::flush_stdio();
    #[cfg(feature = "std")]
    flush_rust_stdout();
    let (ours, mut theirs) = sys::socketpair()?;
    match fork(check)? {
        Forked::Child => {
            sys::after_fork_in_child(&mut [&mut theirs]);
            sys::forget_orphans();
            drop(ours); // already closed by after_fork_in_child; this is a no-op
            Ok(Created::Child(Channel::from_fd(theirs, None)))
        }
        Forked::Parent(child) => {
            drop(theirs);
            Ok(Created::Parent(Channel::from_fd(ours, Some(child))))
        }
    }
}

/// Flushes Rust's `stdout` before a fork, so that nothing it holds is
/// printed twice. A failure to write leaves the output where it was: the
/// program's next write reports it, as it would without the fork.
#[cfg(feature = "std")]
pub(crate) fn flush_rust_stdout() {
    use std::io::Write;
    let _unwritable = std::io::stdout().flush().is_err();
}

/// Runs `callable` in a new process and returns the creator's end of its
/// channel (pprocess's `start`).
///
/// The callable gets the new process's end. When it returns `Err`, the error
/// travels to the creator as an error frame (its receive fails with
/// [`Error::Remote`]); with the `std` feature a panic
/// does too. The new process then exits ([`EXIT_CALLABLE_ERROR`],
/// [`EXIT_CALLABLE_PANIC`] or 0); it never returns from here.
///
/// A process with other threads is refused with [`Error::Threads`], as by
/// [`create`] (see [`start_unchecked`]).
///
/// ```
/// use pprocess::{start, Error, RemoteError};
///
/// let mut channel = start(|channel| Ok(channel.send(b"done")?))?;
/// assert_eq!(channel.receive_vec()?, b"done");
///
/// // A callable's error is the creator's error.
/// let mut failing = start(|_| Err(RemoteError::new(7, "no")))?;
/// assert!(matches!(failing.receive_vec(), Err(Error::Remote { code: 7 })));
/// # Ok::<(), pprocess::Error>(())
/// ```
pub fn start<F>(callable: F) -> Result<Channel>
where
    F: FnOnce(&mut Channel) -> core::result::Result<(), RemoteError>,
{
    start_as(ForkCheck::Refuse, callable)
}

/// [`start`] even while the process has other threads.
///
/// # Safety
/// `callable`, run in the new process, touches nothing another thread could
/// have held at the fork: see [`allow_fork_with_threads`] for the contract.
pub unsafe fn start_unchecked<F>(callable: F) -> Result<Channel>
where
    F: FnOnce(&mut Channel) -> core::result::Result<(), RemoteError>,
{
    start_as(ForkCheck::Accepted, callable)
}

/// [`start`] under `check`.
pub(crate) fn start_as<F>(check: ForkCheck, callable: F) -> Result<Channel>
where
    F: FnOnce(&mut Channel) -> core::result::Result<(), RemoteError>,
{
    match create_as(check)? {
        Created::Parent(channel) => Ok(channel),
        Created::Child(mut channel) => {
            let status = run_callable(&mut channel, callable);
            exit(channel, status)
        }
    }
}

/// Runs a callable in the created process and reports its failure.
/// Returns the exit status.
pub(crate) fn run_callable<F>(channel: &mut Channel, callable: F) -> i32
where
    F: FnOnce(&mut Channel) -> core::result::Result<(), RemoteError>,
{
    match call_guarded(channel, callable) {
        Ok(()) => 0,
        Err(error) => {
            // If the creator is gone there is nobody left to tell: the exit
            // status below still says the callable failed.
            let _creator_gone = channel.send_error(&error).is_err();
            if error.code() == crate::error::code::PANIC {
                EXIT_CALLABLE_PANIC
            } else {
                EXIT_CALLABLE_ERROR
            }
        }
    }
}

/// Calls `callable`; with the `std` feature a panic becomes a remote error
/// with code `PP_EPANIC` and the panic's message.
pub(crate) fn call_guarded<F>(
    channel: &mut Channel,
    callable: F,
) -> core::result::Result<(), RemoteError>
where
    F: FnOnce(&mut Channel) -> core::result::Result<(), RemoteError>,
{
    guarded(|| callable(&mut *channel))
}

/// Runs `body`; with the `std` feature a panic becomes a remote error with
/// code `PP_EPANIC` and the panic's message (without it, a panic is the
/// program's panic handler's business).
pub(crate) fn guarded<R>(
    body: impl FnOnce() -> core::result::Result<R, RemoteError>,
) -> core::result::Result<R, RemoteError> {
    #[cfg(feature = "std")]
    {
        // The error (a few hundred bytes) is kept apart, so that what
        // passes through the unwinding guard is as small as `R`: a reused
        // worker runs this once per task, and a large value would be
        // copied with a call to `memcpy` each time.
        let mut failed = None;
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            body().map_err(|error| failed = Some(error)).ok()
        }));
        match caught {
            Ok(Some(value)) => Ok(value),
            // No value: the error was kept (the only way to None).
            Ok(None) => {
                Err(failed.unwrap_or_else(|| RemoteError::new(crate::error::code::PANIC, "")))
            }
            Err(payload) => {
                let text = payload
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| {
                        payload
                            .downcast_ref::<std::string::String>()
                            .map(|s| s.as_str())
                    })
                    .unwrap_or("callable panicked");
                Err(RemoteError::new(crate::error::code::PANIC, text))
            }
        }
    }
    #[cfg(not(feature = "std"))]
    body()
}

/// Ends a created process (pprocess's `exit`): everything already sent stays
/// deliverable, C stdio is flushed, the channel is closed, and the process
/// exits with `status` at once, without running the creator's exit handlers.
///
/// Rust's `std::io::stdout` is not flushed here: another thread of the
/// creator may have held its lock at the fork, and flushing would then hang.
/// It is line-buffered, so end printed lines with a newline (or flush).
pub fn exit(channel: Channel, status: i32) -> ! {
    drop(channel);
    sys::flush_stdio();
    sys::exit_now(status)
}

/// Waits for every child process of this process to end (pprocess's
/// `waitall`); returns how many were collected. Channels whose process was
/// collected here report `ECHILD` from [`Channel::wait`].
///
/// ```
/// use pprocess::process::{EXIT_CALLABLE_ERROR, EXIT_CALLABLE_PANIC};
/// use pprocess::{number_of_cores, start, waitall, RemoteError};
///
/// assert!(number_of_cores() >= 1);
/// let mut failing = start(|_| Err(RemoteError::new(1, "no")))?;
/// assert_eq!(failing.wait()?.exit_code(), Some(EXIT_CALLABLE_ERROR));
/// let mut panicking = start(|_| panic!("a panic in the new process"))?;
/// assert_eq!(panicking.wait()?.exit_code(), Some(EXIT_CALLABLE_PANIC));
///
/// // Two processes whose channels are closed without a wait:
/// start(|_| Ok(()))?.close();
/// start(|_| Ok(()))?.close();
/// assert!(waitall()? <= 2); // some may have been collected already
/// assert_eq!(waitall()?, 0); // none is left
/// # Ok::<(), pprocess::Error>(())
/// ```
pub fn waitall() -> Result<usize> {
    let mut count = 0;
    while sys::wait_any()?.is_some() {
        count += 1;
    }
    // Every remembered process was collected above: the sweep lets go of them.
    sys::reap_orphans();
    Ok(count)
}

/// The number of online processors (pprocess's `get_number_of_cores`).
pub fn number_of_cores() -> usize {
    sys::number_of_cpus()
}
