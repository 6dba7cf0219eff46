//! Persistent and background processes: work that runs on after the program
//! that started it has exited, reachable at a UNIX-socket address, whose
//! results a later, different process collects (pprocess's
//! `create_persistent`, `start_persistent`, `connect_persistent`,
//! `BackgroundCallable`, `BackgroundQueue`, `PersistentQueue` and
//! `PersistentExchange`).
//!
//! # Quick start
//!
//! ```
//! use pprocess::{connect_persistent, start_persistent, Error};
//!
//! # let dir = std::env::temp_dir().join(format!("pp-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! let address = dir.join("squares.socket");
//! // A detached background process computes; this program could exit now.
//! start_persistent(&address, |channel| {
//!     for n in 1..=3u32 {
//!         channel.send_value(&(n * n))?;
//!     }
//!     Ok(())
//! })?;
//!
//! // Later, from this or any other process of the same user:
//! let mut channel = connect_persistent(&address)?;
//! let mut squares = Vec::new();
//! loop {
//!     match channel.receive_value::<u32>() {
//!         Ok(square) => squares.push(square),
//!         Err(Error::Closed) => break, // every result delivered
//!         Err(e) => return Err(e.into()),
//!     }
//! }
//! assert_eq!(squares, [1, 4, 9]);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How it works
//!
//! [`start_persistent`] binds and listens at the address *before* it forks,
//! so a connection made as soon as it returns succeeds. The process listening
//! there, the *keeper* (`keeper.rs`), owns the socket and an outbox
//! (`outbox.rs`, a state machine without I/O); the callable runs in the
//! keeper's child with an ordinary channel to the keeper, so it sends (and
//! fails) exactly as a callable given to [`start`](crate::start) does.
//! Everything the callable sends, error frames included, goes into the
//! outbox. The keeper sends the outbox to the connected client, each frame
//! asking for an acknowledgement, and drops an entry only when the client
//! acknowledges it. A client acknowledges a result when the program takes
//! it: a channel as it receives it, a [`Queue`](crate::Queue) or
//! [`Map`](crate::Map) (see [`Exchange::connect`]) when
//! [`Exchange::next_result`] or the iterator hands it out, not when the
//! queue reads it ahead. A client that disconnects, is killed, or sends
//! garbage takes nothing with it: what it did not acknowledge goes to the
//! next client, so a client that stays connected receives every result
//! exactly once. An acknowledgement of a frame the keeper has not written
//! whole to that client is a protocol error and releases nothing.
//!
//! When the callable has finished and every result is acknowledged, the
//! keeper removes its socket file, ends the stream with an end frame (the
//! client's receive reports [`Error::Closed`]) and exits; its child has
//! already been collected. A stream that stops without its end frame was cut
//! off (the keeper died): the client's receive reports [`Error::StreamBroken`]
//! (`PP_EPEER`), never a clean end. A callable that sends nothing waits for
//! a client to acknowledge the end frame, so a collector never races the
//! keeper's exit, and a connection that acknowledges nothing (such as a
//! start's look at a live address) is not taken for the collector.
//!
//! One client is served at a time; others wait in the listen backlog and are
//! served in turn when the current one disconnects (or get the end frame if
//! the keeper finishes first). A client has a full channel: what it sends
//! (data frames) goes to the callable, whose receives take it
//! (`inbox.rs`). The keeper passes a client's message on at once and keeps
//! it until the callable's channel acknowledges it, which it does as the
//! callable receives it; only then is the client acknowledged (so a
//! client's [`Channel::send_acked`] returns once the callable has the
//! message). A message outlives the client that sent it, and what the
//! callable never takes before it finishes is reported as an error result
//! with code `PP_ECLOSED`, never dropped silently. A client that sends
//! anything else (args, stop, end or error frames, or garbage) receives an
//! error frame with code `PP_EPROTO` and is disconnected. The keeper never
//! waits for a peer: it writes as much of a frame as the client's (or the
//! callable's) socket takes and the rest when `poll` says there is room,
//! keeps a partial frame from the client for later, and disconnects a client
//! that stops sending in the middle of a frame for 500 ms, going on
//! collecting the callable's results meanwhile. Up to 32 results are
//! in flight to a client at once; the rest wait in the outbox until earlier
//! ones are acknowledged. The outbox holds at most 32 MiB of results (each
//! counting about 64 bytes of bookkeeping besides its payload), and as much
//! of the client's messages the callable has not taken: past that, the
//! keeper stops reading that side.
//!
//! # Addresses and security
//!
//! An address is a filesystem path of at most 107 bytes (`sun_path` less
//! its NUL; a relative path is resolved against the current directory, which
//! the keeper keeps). The socket file is mode 0600 from the instant it
//! exists: the mode is set on the socket before it is bound, never by path,
//! and it is bound in a private directory beside the address and then
//! linked into place (`listener.rs`). A connecting process whose effective
//! uid differs from the keeper's is refused (`SO_PEERCRED`): it receives an
//! error frame with code `PP_EPERM` and is disconnected, and the keeper goes
//! on serving; a client likewise refuses a listener of another user
//! ([`Error::Permission`]), and refuses a symbolic link at the address
//! ([`Error::Address`]). An existing file at the address is replaced only if
//! it is a stale socket of the same user (nobody listens: `ECONNREFUSED`);
//! anything else — a live listener, a regular file, a directory, a link — is
//! left untouched and the start fails with [`Error::Address`], as it does
//! for an empty or too long address. The keeper closes every descriptor it
//! inherited from its starter.

mod address;
mod client;
mod connection;
mod inbox;
mod keeper;
mod link;
mod listener;
mod outbox;

use crate::channel::Channel;
use crate::error::{best_effort, code, Error, RemoteError, Result};
use crate::exchange::{CreatedTask, Exchange, Slots, StoreData};
use crate::process::{self, Created, ForkCheck};
use crate::sys::{self, Fd, Forked, Pid};

use address::socket_path;
pub use address::AsAddress;
use client::connect_fd;
pub use client::{connect_persistent, ConnectError};
use connection::client_channel;
use keeper::keep;
use listener::Listener;

/// Results a keeper sends to its client before it waits for their
/// acknowledgements (the unacknowledged results in flight on a connection).
pub(crate) const RESULTS_IN_FLIGHT: usize = 32;

/// Bytes of unacknowledged results a keeper holds before it stops reading
/// its callable (whose sends then wait, as they do on a full socket); the
/// same bound applies to the clients' messages the callable has not taken,
/// beyond which the keeper stops reading the client. Each result or message
/// counts its payload and its bookkeeping (about 64 bytes, more than its
/// frame header), so a flood of empty messages is bounded as large ones are:
/// a keeper holds at most about twice this for each direction.
pub(crate) const OUTBOX_BYTES: usize = 32 << 20;

/// Milliseconds a keeper waits for more of a frame a client has started
/// sending (an acknowledgement is a header-only frame written at once; a
/// message may take several writes, each of which restarts the clock)
/// before it disconnects the client as stalled, so that the next one is
/// served.
pub(crate) const STALL_MS: i32 = 500;

/// Runs `callable` in a detached background process listening at `address`
/// (pprocess's `start_persistent` and `BackgroundCallable`) and returns the
/// pid of the process that listens there.
///
/// The background process is in a new session (`setsid`), is not a child of
/// the caller (nobody needs to wait for it), and has standard input, output
/// and error on `/dev/null`, so the callable's prints go nowhere instead of
/// failing. It keeps the current directory. The callable gets a channel on
/// which it sends results (and reports failure by returning `Err`, or with a
/// panic) as it would in [`start`](crate::start), and receives what clients
/// send (see the [module documentation](self)). The process lingers until a client has acknowledged every result, then
/// removes the socket file and exits. The caller may exit at once: collect the
/// results later with [`connect_persistent`] or [`Exchange::connect`].
///
/// The address is listening when this returns. Errors: [`Error::Address`]
/// (see the [module documentation](self)); an OS error if the socket or a
/// process cannot be made; [`Error::Threads`] in a process with other
/// threads, as for [`create`](crate::create).
pub fn start_persistent<F>(address: impl AsAddress, callable: F) -> Result<Pid>
where
    F: FnOnce(&mut Channel) -> core::result::Result<(), RemoteError>,
{
    start_persistent_as(ForkCheck::Refuse, address, callable)
}

/// [`start_persistent`] under `check`.
pub(crate) fn start_persistent_as<F>(
    check: ForkCheck,
    address: impl AsAddress,
    callable: F,
) -> Result<Pid>
where
    F: FnOnce(&mut Channel) -> core::result::Result<(), RemoteError>,
{
    let (mut listener, notify, mut reply) = prepare(check, address)?;
    match fork_keeping(check, &mut [&mut listener.fd, &mut reply]) {
        Err(e) => {
            listener.remove();
            Err(e)
        }
        Ok(Forked::Parent(intermediate)) => {
            drop(reply);
            let answer = await_keeper(listener, notify);
            // The intermediate process exits as soon as the keeper exists;
            // collecting it fails only if the program collected it itself,
            // and then it is gone as wanted.
            best_effort(intermediate.wait(true));
            answer
        }
        Ok(Forked::Child) => {
            // The intermediate process: a new session, then the keeper in it,
            // which init adopts when this one leaves.
            let forked = sys::setsid()
                .map_err(Error::from)
                .and_then(|_| fork_keeping(check, &mut [&mut listener.fd, &mut reply]));
            match forked {
                Ok(Forked::Parent(_)) => sys::exit_now(0),
                Ok(Forked::Child) => {}
                Err(e) => give_up(listener, reply, e),
            }
            // The keeper.
            if let Err(e) = sys::stdio_to_dev_null() {
                give_up(listener, reply, e.into());
            }
            let worker = match spawn_worker() {
                Ok(Created::Parent(worker)) => worker,
                Ok(Created::Child(mut channel)) => {
                    let status = process::run_callable(&mut channel, callable);
                    process::exit(channel, status)
                }
                Err(e) => give_up(listener, reply, e),
            };
            close_all_but_keepers(&listener, &reply, &worker);
            report(reply, sys::getpid());
            keep(listener, worker)
        }
    }
}

/// Creates a process whose channel survives disconnection (pprocess's
/// `create_persistent`, fork-style).
///
/// In the new process this returns [`Created::Child`] with a channel to its
/// keeper, which listens at `address`: send results on it (they are kept
/// until a client acknowledges them) and finish with [`exit`](crate::exit).
/// In the creator it returns [`Created::Parent`] with a channel already
/// connected to `address`, as [`connect_persistent`] gives, whose
/// [`pid`](Channel::pid) is the keeper's: receive from it, or drop it and
/// connect again later, from this or another process. The keeper is the
/// creator's child (collect it with [`Channel::wait`] or
/// [`waitall`](crate::waitall) once the results are delivered); the new
/// process is the keeper's child and keeps the creator's standard streams.
/// See [`start_persistent`] for the keeper's life, and the
/// [module documentation](self) for addresses. [`Error::Threads`] in a
/// process with other threads, as for [`create`](crate::create).
///
/// # The persistent calls in one example
///
/// ```
/// use pprocess::exchange::CreatedTask;
/// use pprocess::persistent::close_streams;
/// use pprocess::{connect_persistent, create_persistent, exit, start_persistent};
/// use pprocess::{Created, Error, Options, Queue};
///
/// # let dir = std::env::temp_dir().join(format!("pp-doc-calls-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// // This code goes on in a new process whose channel a keeper holds.
/// let created = dir.join("created.socket");
/// match create_persistent(&created)? {
///     Created::Child(mut channel) => {
///         let sent = close_streams().and_then(|()| channel.send(b"created"));
///         exit(channel, if sent.is_ok() { 0 } else { 1 })
///     }
///     Created::Parent(mut channel) => {
///         assert_eq!(channel.receive_vec()?, b"created");
///         assert_eq!(channel.receive_vec(), Err(Error::Closed)); // all delivered
///         assert!(channel.wait()?.success()); // the keeper, a child of ours
///     }
/// }
///
/// // start_persistent, then connect_persistent (or Queue::background).
/// let started = dir.join("started.socket");
/// start_persistent(&started, |channel| Ok(channel.send(b"started")?))?;
/// let mut channel = connect_persistent(&started)?;
/// assert_eq!(channel.receive_vec()?, b"started");
/// let background = dir.join("background.socket");
/// start_persistent(&background, |channel| {
///     channel.send(b"one")?;
///     Ok(channel.send(b"two")?)
/// })?;
/// let results: Vec<Vec<u8>> = Queue::background(&background)?.collect::<Result<_, _>>()?;
/// assert_eq!(results, [b"one", b"two"]);
///
/// // The same through an exchange; an address may be given as text.
/// let text = dir.join("exchange.socket").to_str().unwrap().to_owned();
/// let mut queue = Queue::with_options(2, Options::default());
/// queue.start_persistent(text.as_str(), |channel| Ok(channel.send(b"from a queue")?))?;
/// queue.connect(text.as_str())?;
/// assert_eq!(queue.next().unwrap()?, b"from a queue");
/// match queue.create_persistent(dir.join("exchange-created.socket"))? {
///     CreatedTask::Child(mut channel) => {
///         let sent = channel.send(b"created by a queue");
///         exit(channel, if sent.is_ok() { 0 } else { 1 })
///     }
///     CreatedTask::Parent { pid, .. } => assert!(pid > 0),
/// }
/// assert_eq!(queue.next().unwrap()?, b"created by a queue");
/// queue.finish()?;
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn create_persistent(address: impl AsAddress) -> Result<Created> {
    create_persistent_as(ForkCheck::Refuse, address)
}

/// [`create_persistent`] under `check`.
pub(crate) fn create_persistent_as(check: ForkCheck, address: impl AsAddress) -> Result<Created> {
    let (mut listener, notify, mut reply) = prepare(check, address)?;
    match fork_keeping(check, &mut [&mut listener.fd, &mut reply]) {
        Err(e) => {
            listener.remove();
            Err(e)
        }
        Ok(Forked::Parent(keeper)) => {
            drop(reply);
            let path = listener.path.clone();
            if let Err(e) = await_keeper(listener, notify) {
                // The keeper reported its failure and exits: collect it.
                best_effort(keeper.wait(true));
                return Err(e);
            }
            match connect_fd(&path) {
                Ok(fd) => Ok(Created::Parent(client_channel(fd, Some(keeper)))),
                Err(e) => {
                    // The keeper serves on at the address (another client
                    // may collect); it is this process's child, so it is
                    // collected once it ends, never left a zombie.
                    sys::reap_later(keeper);
                    Err(e)
                }
            }
        }
        Ok(Forked::Child) => {
            let worker = match spawn_worker() {
                Ok(Created::Parent(worker)) => worker,
                Ok(child @ Created::Child(_)) => return Ok(child),
                Err(e) => give_up(listener, reply, e),
            };
            close_all_but_keepers(&listener, &reply, &worker);
            report(reply, 0);
            // Let go of the creator's standard streams: a pipe reader waiting
            // for their end should not wait for the keeper. If they cannot
            // be replaced the keeper keeps them: the reader then waits for
            // the keeper too, nothing worse.
            best_effort(sys::stdio_to_dev_null());
            keep(listener, worker)
        }
    }
}

/// Binds the listener and makes the pair of sockets on which the keeper
/// reports that it runs; flushes output before the fork that follows, which
/// `check` allows.
fn prepare(check: ForkCheck, address: impl AsAddress) -> Result<(Listener, Fd, Fd)> {
    process::fork_allowed(check)?;
    let listener = Listener::bind(socket_path(address)?)?;
    let (ours, theirs) = match sys::socketpair() {
        Ok(pair) => pair,
        Err(e) => {
            listener.remove();
            return Err(e.into());
        }
    };
    sys::reap_orphans();
    sys::flush_stdio();
    #[cfg(feature = "std")]
    process::flush_rust_stdout();
    Ok((listener, ours, theirs))
}

/// `fork`, keeping `keep` (and no other library descriptor) in the new
/// process. Unlike [`process::create`] it flushes nothing: it runs in forked
/// processes too, where another thread of the original program may have held
/// a stdio lock at the fork.
fn fork_keeping(check: ForkCheck, keep: &mut [&mut Fd]) -> Result<Forked> {
    let forked = process::fork(check)?;
    if matches!(forked, Forked::Child) {
        sys::after_fork_in_child(keep);
        sys::forget_orphans();
    }
    Ok(forked)
}

/// In the keeper: the process that runs the callable, with a channel to it.
fn spawn_worker() -> Result<Created> {
    let (ours, mut theirs) = sys::socketpair()?;
    // The keeper has a single thread.
    Ok(match fork_keeping(ForkCheck::Refuse, &mut [&mut theirs])? {
        Forked::Child => Created::Child(Channel::from_fd(theirs, None)),
        Forked::Parent(child) => Created::Parent(Channel::from_fd(ours, Some(child))),
    })
}

/// In the keeper: closes every descriptor but its own (see
/// [`sys::close_all_except`]): the listener, the reply to its creator, and
/// the channel to its callable's process with that process's pidfd.
fn close_all_but_keepers(listener: &Listener, reply: &Fd, worker: &Channel) {
    match worker.child_fd() {
        Some(pidfd) => sys::close_all_except(&[&listener.fd, reply, worker.fd(), pidfd]),
        None => sys::close_all_except(&[&listener.fd, reply, worker.fd()]),
    }
}

/// In the creator: waits for the keeper's word (its pid, 0, or a failure's
/// code). A failed start leaves no socket file behind.
fn await_keeper(listener: Listener, notify: Fd) -> Result<Pid> {
    let answer = match Channel::from_fd(notify, None).receive_value::<i32>() {
        Ok(value) if value >= 0 => Ok(value),
        Ok(code @ -133..=-1) => Err(Error::Os(-code)),
        Ok(code::PANIC) => Err(Error::Panic),
        Ok(code) => Err(Error::Remote { code }),
        Err(e) => Err(e),
    };
    if answer.is_err() {
        listener.remove();
    }
    answer
}

/// In the intermediate process or the keeper: tells the creator.
fn report(reply: Fd, value: i32) {
    // If the creator is gone there is nobody left to tell.
    best_effort(Channel::from_fd(reply, None).send_value(&value));
}

/// In the intermediate process or the keeper: reports a failure to start,
/// removes the socket file, and exits.
fn give_up(listener: Listener, reply: Fd, error: Error) -> ! {
    listener.remove();
    report(reply, error.code());
    sys::exit_now(1)
}

impl<S: Slots, H: StoreData> Exchange<S, H> {
    /// Runs `callable` in a background process listening at `address`
    /// (pprocess's `PersistentExchange.start` and `manage(address, ...)`),
    /// once the exchange is below its limit (as every start does; see
    /// [`Exchange::wait`]), exactly as [`start_persistent`] does, and returns
    /// its pid. The exchange does not monitor it: collect its results with
    /// [`Exchange::connect`], from this exchange or another, in this process
    /// or a later one.
    pub fn start_persistent<F>(&mut self, address: impl AsAddress, callable: F) -> Result<Pid>
    where
        F: FnOnce(&mut Channel) -> core::result::Result<(), RemoteError>,
    {
        self.wait()?;
        start_persistent_as(self.fork_check(), address, callable)
    }

    /// Creates a process whose channel survives disconnection, monitored by
    /// this exchange (pprocess's `PersistentExchange.create`), once the
    /// exchange is below its limit. The new process gets [`CreatedTask::Child`]
    /// with its channel to its keeper, as [`create_persistent`] gives it
    /// (send results, finish with [`exit`](crate::exit)); the creator gets
    /// the keeper's pid and the connection's task, whose results this
    /// exchange stores as it does for [`Exchange::connect`]. The keeper is
    /// never killed by the exchange, and is collected once it exits; the
    /// results this process does not take go to the address's next client.
    pub fn create_persistent(&mut self, address: impl AsAddress) -> Result<CreatedTask> {
        self.wait()?;
        match create_persistent_as(self.fork_check(), address)? {
            Created::Child(channel) => Ok(CreatedTask::Child(channel)),
            Created::Parent(channel) => {
                let pid = channel.pid();
                let task = self.add(channel).map_err(|_| Error::Busy)?;
                Ok(CreatedTask::Parent { pid, task })
            }
        }
    }
}

/// Detaches this process from the streams it shares with its creator
/// (pprocess's `close_streams`): flushes standard output, then points
/// standard input, output and error at `/dev/null`. They stay open, so later
/// prints succeed and go nowhere, and no other file takes their numbers; a
/// reader waiting for the end of the creator's pipe is no longer held up by
/// this process. A background process started with [`start_persistent`] has
/// this done already; a process from [`create_persistent`] keeps the
/// creator's streams until it calls this.
pub fn close_streams() -> Result<()> {
    sys::flush_stdio();
    #[cfg(feature = "std")]
    {
        use std::io::Write;
        // Output that cannot be written now is lost with the streams, as
        // it would be at the program's exit.
        process::flush_rust_stdout();
        best_effort(std::io::stderr().flush());
    }
    sys::stdio_to_dev_null().map_err(Error::from)
}
