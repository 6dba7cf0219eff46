//! Creating processes: [`create`] (fork-style) and [`start`] (run a callable
//! in a new process), plus [`exit`], [`waitall`] and [`number_of_cores`].

use crate::channel::Channel;
use crate::error::{RemoteError, Result};
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

/// Creates a process connected to this one by a channel (pprocess's `create`).
///
/// Both processes continue from here; the new one gets [`Created::Child`] and
/// should finish with [`exit`]. Right after the fork the new process closes
/// every channel of its creator except its own, and buffered C stdio output is
/// flushed first so it is not printed twice. As with fork(2), only the
/// calling thread exists in the new process: call it from a single-threaded
/// program.
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
    sys::reap_orphans();
    sys::flush_stdio();
    #[cfg(feature = "std")]
    {
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
    let (mut ours, mut theirs) = sys::socketpair()?;
    match sys::fork()? {
        Forked::Child => {
            sys::after_fork_in_child(&mut [&mut theirs]);
            sys::forget_orphans();
            drop(ours); // already closed by after_fork_in_child; this is a no-op
            Ok(Created::Child(Channel::from_fd(theirs, 0)))
        }
        Forked::Parent(pid) => {
            drop(theirs);
            let _ = &mut ours;
            Ok(Created::Parent(Channel::from_fd(ours, pid)))
        }
    }
}

/// Runs `callable` in a new process and returns the creator's end of its
/// channel (pprocess's `start`).
///
/// The callable gets the new process's end. When it returns `Err`, the error
/// travels to the creator as an error frame (its receive fails with
/// [`Error::Remote`](crate::Error::Remote)); with the `std` feature a panic
/// does too. The new process then exits ([`EXIT_CALLABLE_ERROR`],
/// [`EXIT_CALLABLE_PANIC`] or 0); it never returns from here.
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
    match create()? {
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
            // If the creator is gone there is nobody left to tell.
            let _ = channel.send_error(&error);
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
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or_else(|payload| {
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
        })
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
pub fn waitall() -> Result<usize> {
    let mut count = 0;
    while sys::wait_any()?.is_some() {
        count += 1;
    }
    sys::forget_orphans();
    Ok(count)
}

/// The number of online processors (pprocess's `get_number_of_cores`).
pub fn number_of_cores() -> usize {
    sys::number_of_cpus()
}
