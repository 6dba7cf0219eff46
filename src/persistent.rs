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
//! there, the *keeper*, owns the socket and an outbox; the callable runs in
//! the keeper's child with an ordinary channel to the keeper, so it sends
//! (and fails) exactly as a callable given to [`start`](crate::start) does.
//! Everything the callable sends, error frames included, goes into the
//! outbox. The keeper sends the outbox to the connected client, each frame
//! asking for an acknowledgement, and drops an entry only when the client
//! acknowledges it. A client acknowledges a result when the program takes
//! it: a channel as it receives it, a [`Queue`] or [`Map`](crate::Map)
//! (see [`Exchange::connect`]) when [`Exchange::next_result`] or the
//! iterator hands it out, not when the queue reads it ahead. A
//! client that disconnects, is killed, or sends garbage takes nothing with
//! it: what it did not acknowledge goes to the next client, so a client that
//! stays connected receives every result exactly once. When the callable has
//! finished and the outbox is empty, the keeper closes the connection (the
//! client's receive reports [`Error::Closed`]), removes its socket file and
//! exits; its child has already been collected. A callable that sends
//! nothing still waits for one client, which sees that end at once, so a
//! collector never races the keeper's exit.
//!
//! One client is served at a time; others wait in the listen backlog and are
//! served in turn when the current one disconnects (or see
//! [`Error::Closed`] if the keeper finishes first). Clients only receive and
//! acknowledge: a client that sends a message or a malformed frame receives
//! an error frame with code `PP_EPROTO` and is disconnected, and the
//! callable's own receives never see anything. So is a client that starts a
//! frame and does not finish it within [`STALL_MS`]: the keeper never waits
//! for the rest of a frame, and goes on collecting the callable's results
//! meanwhile. Up to [`WINDOW`] results are in flight to a client at once;
//! the rest wait in the outbox until earlier ones are acknowledged.
//!
//! # Addresses and security
//!
//! An address is a filesystem path of at most 107 bytes (`sun_path`
//! less its NUL) (a relative path is resolved against the current directory, which
//! the keeper keeps). The socket file is made mode 0600 before anyone can
//! connect. A connecting process whose effective uid differs from the
//! keeper's is refused (`SO_PEERCRED`): it receives an error frame with code
//! `PP_EPERM` and is disconnected, and the keeper goes on serving; a client
//! likewise refuses a listener of another user ([`Error::Permission`]). An
//! existing file at the address is replaced only if it is a stale socket of
//! the same user (nobody listens: `ECONNREFUSED`); anything else — a live
//! listener, a regular file, a directory, a link — is left untouched and the
//! start fails with [`Error::Address`], as it does for an empty or too long
//! address.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::channel::{Channel, Frame};
use crate::error::{best_effort, code, Error, RemoteError, Result};
use crate::exchange::{Exchange, Options, Queue, Slots, StoreData, TaskId};
use crate::process::{self, Created, ForkCheck};
use crate::sys::{self, Deadline, Errno, Fd, Forked, Pid, PollFd, SocketPath, POLLIN};
use crate::wire::{Kind, FLAG_ACK_REQUESTED};

/// Results a keeper sends to its client before it waits for acknowledgements.
pub const WINDOW: usize = 32;

/// Bytes of unacknowledged results a keeper holds before it stops reading
/// its callable (whose sends then wait, as they do on a full socket).
pub const OUTBOX_BYTES: usize = 32 << 20;

/// Milliseconds a keeper gives a client to finish a frame it has started
/// sending (its acknowledgements are 16-byte frames written at once) before
/// it disconnects the client as stalled, so that the next one is served.
pub const STALL_MS: i32 = 500;

/// Connections waiting to be served, beyond the one being served.
const BACKLOG: i32 = 128;

/// Something usable as a persistent address: a path, as text or bytes.
pub trait AsAddress {
    /// The path's bytes (no NUL inside).
    fn address_bytes(&self) -> &[u8];
}

impl<T: AsAddress + ?Sized> AsAddress for &T {
    fn address_bytes(&self) -> &[u8] {
        (**self).address_bytes()
    }
}

impl AsAddress for str {
    fn address_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsAddress for [u8] {
    fn address_bytes(&self) -> &[u8] {
        self
    }
}

impl AsAddress for core::ffi::CStr {
    fn address_bytes(&self) -> &[u8] {
        self.to_bytes()
    }
}

impl AsAddress for alloc::string::String {
    fn address_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

#[cfg(feature = "std")]
impl AsAddress for std::ffi::OsStr {
    fn address_bytes(&self) -> &[u8] {
        std::os::unix::ffi::OsStrExt::as_bytes(self)
    }
}

#[cfg(feature = "std")]
impl AsAddress for std::path::Path {
    fn address_bytes(&self) -> &[u8] {
        self.as_os_str().address_bytes()
    }
}

#[cfg(feature = "std")]
impl AsAddress for std::path::PathBuf {
    fn address_bytes(&self) -> &[u8] {
        self.as_os_str().address_bytes()
    }
}

/// Checks an address: [`Error::Address`] if it cannot be a socket path.
fn socket_path(address: impl AsAddress) -> Result<SocketPath> {
    SocketPath::new(address.address_bytes()).ok_or(Error::Address)
}

/// A listening socket bound to a path, and that file's identity, so that
/// only this socket's own file is ever removed. Dropping it closes the
/// socket but leaves the file: every process forked while it exists holds a
/// copy, and only the keeper removes the file ([`Listener::remove`]).
struct Listener {
    fd: Fd,
    path: SocketPath,
    id: (u64, u64),
}

impl Listener {
    /// A socket listening at `path`, mode 0600, replacing a stale socket of
    /// this user. It is bound and listening under a temporary name beside
    /// `path` first and then linked into place, which fails atomically if
    /// anything is there: whatever a start finds at the address was already
    /// listening, so only a truly stale socket is replaced, and of several
    /// starts at one address exactly one wins.
    fn bind(path: SocketPath) -> Result<Listener> {
        let fd = sys::unix_socket(false)?;
        // No room for a temporary name, or none can be made in that
        // directory: bind in place, which also reports what is there.
        let Some(temp) = temp_beside(&path).filter(|temp| sys::bind(&fd, temp).is_ok()) else {
            return Listener::bind_in_place(fd, path);
        };
        // Nobody can connect before listen(2), and the file is private first.
        let ready = sys::chmod(&temp, 0o600).and_then(|()| sys::listen(&fd, BACKLOG));
        let published = ready
            .map_err(Error::from)
            .and_then(|()| publish(&temp, &path));
        // The temporary name goes either way; if it cannot, a stale socket
        // file is left, which a later start replaces.
        best_effort(sys::unlink(&temp));
        published?;
        let id = sys::lstat(&path)?.id;
        Ok(Listener { fd, path, id })
    }

    /// [`Listener::bind`] where no temporary name can be bound beside the
    /// address (too long, or a directory that takes no new files): bound in
    /// place, so a concurrent start may find it between bind and listen and
    /// take it for stale.
    fn bind_in_place(fd: Fd, path: SocketPath) -> Result<Listener> {
        match sys::bind(&fd, &path) {
            Err(Errno::ADDRINUSE) if is_stale(&path)?.is_some() => match sys::unlink(&path) {
                Ok(()) | Err(Errno::NOENT) => sys::bind(&fd, &path).map_err(|e| match e {
                    Errno::ADDRINUSE => Error::Address,
                    e => e.into(),
                })?,
                Err(e) => return Err(e.into()),
            },
            Err(Errno::ADDRINUSE) => return Err(Error::Address),
            other => other?,
        }
        let id = sys::lstat(&path)?.id;
        let listener = Listener { fd, path, id };
        let ready =
            sys::chmod(&listener.path, 0o600).and_then(|()| sys::listen(&listener.fd, BACKLOG));
        if let Err(e) = ready {
            listener.remove();
            return Err(e.into());
        }
        Ok(listener)
    }

    /// Closes the socket and removes its file, if the file at the path is
    /// still the one this socket created.
    fn remove(self) {
        if sys::lstat(&self.path).is_ok_and(|file| file.socket && file.id == self.id) {
            // Leaving: a file that cannot be removed is a stale socket,
            // which the next start at this address replaces.
            best_effort(sys::unlink(&self.path));
        }
    }
}

/// Links the listening socket at `temp` to `path`, replacing a stale socket
/// of this user found there (only if the file is still the one found stale).
fn publish(temp: &SocketPath, path: &SocketPath) -> Result<()> {
    for _ in 0..8 {
        match sys::link(temp, path) {
            Ok(()) => return Ok(()),
            Err(Errno::EXIST) => match is_stale(path)? {
                Some(stale) if sys::lstat(path).is_ok_and(|file| file.id == stale) => {
                    match sys::unlink(path) {
                        Ok(()) | Err(Errno::NOENT) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Some(_) => continue, // replaced meanwhile: look again
                None => return Err(Error::Address),
            },
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Address)
}

/// A private name in `path`'s directory for binding before publishing, or
/// `None` if it would not fit a socket path.
fn temp_beside(path: &SocketPath) -> Option<SocketPath> {
    static COUNTER: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
    let bytes = path.as_bytes();
    let dir = bytes
        .iter()
        .rposition(|&b| b == b'/')
        .map_or(0, |slash| slash + 1);
    let n = COUNTER.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    let name = alloc::format!(".pp-{}-{n}", sys::getpid());
    SocketPath::new(&[&bytes[..dir], name.as_bytes()].concat())
}

/// The identity of `path` if it is a socket of this user that nobody listens
/// at (or `Some` of nothing when it vanished meanwhile); `None` otherwise.
fn is_stale(path: &SocketPath) -> Result<Option<(u64, u64)>> {
    let file = match sys::lstat(path) {
        Ok(file) => file,
        Err(Errno::NOENT) => return Ok(Some((0, 0))), // gone meanwhile: try again
        Err(e) => return Err(e.into()),
    };
    if !file.socket || file.uid != sys::geteuid() {
        return Ok(None);
    }
    // Non-blocking, so that a listener with a full backlog cannot hold us up.
    let probe = sys::unix_socket(true)?;
    Ok((sys::connect(&probe, path) == Err(Errno::CONNREFUSED)).then_some(file.id))
}

/// Connects to `path` and checks that the listener is this user's.
fn connect_fd(path: &SocketPath) -> Result<Fd> {
    let fd = sys::unix_socket(false)?;
    sys::connect(&fd, path)?;
    if sys::peer_credentials(&fd)?.uid != sys::geteuid() {
        return Err(Error::Permission);
    }
    Ok(fd)
}

/// Connects to the persistent process listening at `address` (pprocess's
/// `connect_persistent`). Receive its results from the returned channel:
/// each is acknowledged as it is received, and the channel reports
/// [`Error::Closed`] once every result has been delivered and the process has
/// finished. Several clients may connect at once; they are served one after
/// the other.
///
/// Errors: [`Error::Address`] for an unusable address; `ENOENT`
/// ([`Error::Os`]) when nothing is at the address, `ECONNREFUSED` when
/// nobody listens there (the work finished and was collected, or its process
/// died); [`Error::Permission`] when the listener belongs to another user.
pub fn connect_persistent(address: impl AsAddress) -> Result<Channel> {
    let path = socket_path(address)?;
    Ok(Channel::from_fd(connect_fd(&path)?, None))
}

/// Runs `callable` in a detached background process listening at `address`
/// (pprocess's `start_persistent` and `BackgroundCallable`) and returns the
/// pid of the process that listens there.
///
/// The background process is in a new session (`setsid`), is not a child of
/// the caller (nobody needs to wait for it), and has standard input, output
/// and error on `/dev/null`, so the callable's prints go nowhere instead of
/// failing. It keeps the current directory. The callable gets a channel on
/// which it sends results (and reports failure by returning `Err`, or with a
/// panic) as it would in [`start`](crate::start); its receives see nothing.
/// The process lingers until a client has acknowledged every result, then
/// removes the socket file and exits. The caller may exit at once: collect the
/// results later with [`connect_persistent`] or [`Exchange::connect`].
///
/// The address is listening when this returns. Errors: [`Error::Address`]
/// (see the [module documentation](self)); an OS error if the socket or a
/// process cannot be made.
///
/// A process with other threads is refused with [`Error::Threads`], as by
/// [`create`](crate::create).
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
            // collecting it cannot fail but for a program that collected it
            // itself, and then it is gone as wanted.
            let _collected_or_gone = intermediate.wait(true);
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
/// [module documentation](self) for addresses.
///
/// A process with other threads is refused with [`Error::Threads`], as by
/// [`create`](crate::create).
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
                let _collected_or_gone = keeper.wait(true);
                return Err(e);
            }
            let channel = Channel::from_fd(connect_fd(&path)?, Some(keeper));
            Ok(Created::Parent(channel))
        }
        Ok(Forked::Child) => {
            let worker = match spawn_worker() {
                Ok(Created::Parent(worker)) => worker,
                Ok(child @ Created::Child(_)) => return Ok(child),
                Err(e) => give_up(listener, reply, e),
            };
            report(reply, 0);
            // Let go of the creator's standard streams: a pipe reader waiting
            // for their end should not wait for the keeper.
            // If they cannot be replaced the keeper keeps them: a pipe reader
            // then waits for the keeper too, nothing worse.
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

/// The keeper's life: serves results until the callable has finished and
/// every result is acknowledged (and at least one client has connected, so
/// that a callable that sends nothing still has its end seen), then removes
/// the socket file and exits.
fn keep(listener: Listener, worker: Channel) -> ! {
    let mut keeper = Keeper {
        listener,
        worker: Some(worker),
        worker_failed: false,
        outbox: VecDeque::new(),
        bytes: 0,
        client: None,
        sent: 0,
        served: false,
        stall: None,
    };
    // A panic in the loop ends the keeper as its end does: the socket file
    // is removed below, and clients see the connection end (a result not
    // acknowledged is then reported by their end of stream).
    #[cfg(feature = "std")]
    best_effort(std::panic::catch_unwind(std::panic::AssertUnwindSafe(
        || keeper.run(),
    )));
    #[cfg(not(feature = "std"))]
    keeper.run();
    let Keeper {
        listener, client, ..
    } = keeper;
    // The file goes first, so that nobody connects to a keeper that is leaving.
    listener.remove();
    drop(client);
    sys::exit_now(0)
}

/// One result of the callable.
enum Item {
    Data(Vec<u8>),
    Error(alloc::boxed::Box<RemoteError>),
}

/// A result waiting for its acknowledgement.
struct Entry {
    item: Item,
    /// Its frame number on the current client's connection, once sent.
    seq: Option<u32>,
}

/// The keeper's state.
struct Keeper {
    listener: Listener,
    /// The channel to the callable's process, until it ends.
    worker: Option<Channel>,
    /// The callable sent an error frame (its failure is reported already).
    worker_failed: bool,
    /// Unacknowledged results, oldest first.
    outbox: VecDeque<Entry>,
    /// Data bytes in the outbox.
    bytes: usize,
    /// The client being served.
    client: Option<Channel>,
    /// Entries at the front of the outbox sent to the client (in flight).
    sent: usize,
    /// A client has been accepted (and so will see, or has seen, the end).
    served: bool,
    /// The client has started a frame it has not finished: it is
    /// disconnected when this passes ([`STALL_MS`] after the frame started).
    stall: Option<Deadline>,
}

impl Keeper {
    fn run(&mut self) {
        while self.worker.is_some() || !self.outbox.is_empty() || !self.served {
            self.send_window();
            let mut fds = [PollFd::NONE; 3];
            let mut timeout = -1;
            if let Some(worker) = self.worker.as_ref().filter(|_| self.bytes < OUTBOX_BYTES) {
                fds[0] = PollFd::new(worker.fd(), POLLIN);
                if worker.has_buffered() {
                    timeout = 0;
                }
            }
            match &self.client {
                Some(client) => {
                    fds[1] = PollFd::new(client.fd(), POLLIN);
                    if client.has_buffered() {
                        timeout = 0;
                    } else if let (Some(stall), -1) = (self.stall, timeout) {
                        timeout = stall.remaining_ms();
                    }
                }
                None => fds[2] = PollFd::new(&self.listener.fd, POLLIN),
            }
            if sys::poll(&mut fds, timeout).is_err() {
                sys::sleep_ms(10); // ENOMEM: try again shortly
                continue;
            }
            if fds[0].ready() || timeout == 0 {
                self.read_worker();
            }
            if fds[1].ready() || timeout == 0 {
                self.read_client();
            }
            if self.stall.is_some_and(|stall| stall.expired()) {
                self.drop_client(Some(RemoteError::new(
                    code::PROTO,
                    "a frame was started and not finished in time",
                )));
            }
            if fds[2].ready() {
                self.accept();
            }
        }
    }

    fn push(&mut self, item: Item) {
        if let Item::Data(data) = &item {
            self.bytes += data.len();
        }
        self.outbox.push_back(Entry { item, seq: None });
    }

    /// Moves what the callable sent into the outbox, up to the byte limit.
    fn read_worker(&mut self) {
        while self.bytes < OUTBOX_BYTES {
            let Some(worker) = &mut self.worker else {
                return;
            };
            match worker.receive_vec_timeout(0) {
                Ok(data) => self.push(Item::Data(data)),
                Err(Error::TimedOut) => return,
                Err(Error::Remote { code }) => {
                    let remote = worker.remote_error().cloned();
                    let remote = remote.unwrap_or_else(|| RemoteError::new(code, ""));
                    self.worker_failed = true;
                    self.push(Item::Error(remote.into()));
                }
                Err(e) => return self.worker_ended(e),
            }
        }
    }

    /// The callable's channel ended with `why`: a process that died without
    /// reporting an error gets an error result naming it; a process that
    /// broke the protocol is stopped.
    fn worker_ended(&mut self, why: Error) {
        let Some(mut worker) = self.worker.take() else {
            return;
        };
        match why {
            Error::Closed => {}
            Error::PeerEnded { .. } => {
                if !self.worker_failed {
                    self.push(Item::Error(RemoteError::from(why).into()));
                }
            }
            _ => {
                self.push(Item::Error(RemoteError::from(why).into()));
                // Not collected here: the drop below hands it on.
                let _left_to_channel_drop = worker.kill_and_collect();
            }
        }
        // A process that closed its channel but runs on is left to init
        // (the keeper exits without waiting for it): an error here has
        // nobody to go to.
        let _left_to_init = worker.try_wait();
    }

    /// Sends results to the client until [`WINDOW`] are in flight.
    fn send_window(&mut self) {
        let Some(client) = &mut self.client else {
            return;
        };
        while self.sent < self.outbox.len().min(WINDOW) {
            let entry = &mut self.outbox[self.sent];
            let sent = match &entry.item {
                Item::Data(data) => client.send_frame(Kind::Data, FLAG_ACK_REQUESTED, data),
                Item::Error(error) => client.send_error_frame(error, FLAG_ACK_REQUESTED),
            };
            match sent {
                Ok(seq) => {
                    entry.seq = Some(seq);
                    self.sent += 1;
                }
                Err(_) => {
                    // It hung up: read the acknowledgements it sent before it
                    // went (they precede the end of its stream), then let go.
                    self.read_client();
                    return self.drop_client(None);
                }
            }
        }
    }

    /// Reads the client's acknowledgements, never waiting for the rest of
    /// a frame (a frame left unfinished starts the [`STALL_MS`] clock);
    /// disconnects a client that hung up or sent anything else.
    fn read_client(&mut self) {
        let mut finished_frames = false;
        loop {
            let Some(client) = &mut self.client else {
                return;
            };
            let why = match client.next_frame(Deadline::after(0)) {
                Ok(Frame::Ack) => {
                    finished_frames = true;
                    self.release_acknowledged();
                    continue;
                }
                Err(Error::TimedOut) => {
                    if !client.has_partial_frame() {
                        self.stall = None;
                    } else if finished_frames || self.stall.is_none() {
                        self.stall = Some(Deadline::after(STALL_MS));
                    }
                    return;
                }
                Err(e @ Error::Protocol(_)) => Some(RemoteError::from(e)),
                Ok(Frame::Message(_) | Frame::TaskEnd) | Err(Error::Remote { .. }) => {
                    Some(RemoteError::new(
                        code::PROTO,
                        "clients of a persistent process only acknowledge",
                    ))
                }
                Err(_) => None, // hung up
            };
            return self.drop_client(why);
        }
    }

    /// Drops the results the client has acknowledged (an acknowledgement
    /// covers every frame before it too).
    fn release_acknowledged(&mut self) {
        let Some(client) = &self.client else {
            return;
        };
        let acked = client.acked();
        while let Some(Entry { seq: Some(seq), .. }) = self.outbox.front() {
            if (acked.wrapping_sub(*seq) as i32) < 0 {
                break;
            }
            if let Some(Entry {
                item: Item::Data(data),
                ..
            }) = self.outbox.pop_front()
            {
                self.bytes -= data.len();
            }
            self.sent -= 1;
        }
    }

    /// Disconnects the client, telling it why if there is a reason; what it
    /// did not acknowledge goes to the next client.
    fn drop_client(&mut self, why: Option<RemoteError>) {
        if let Some(mut client) = self.client.take() {
            if let Some(why) = why {
                // Without waiting: a client that does not read may have a
                // full socket buffer.
                client.send_error_now(&why);
            }
        }
        for entry in &mut self.outbox {
            entry.seq = None;
        }
        self.sent = 0;
        self.stall = None;
    }

    /// Accepts the next connection; a peer of another user is told and
    /// disconnected.
    fn accept(&mut self) {
        let Ok(fd) = sys::accept(&self.listener.fd) else {
            return; // it gave up meanwhile, or no descriptor is left: later
        };
        let mut channel = Channel::from_fd(fd, None);
        match sys::peer_credentials(channel.fd()) {
            Ok(peer) if peer.uid == sys::geteuid() => {
                self.client = Some(channel);
                self.served = true;
            }
            _ => {
                // A last word to a refused peer, which is dropped either way.
                best_effort(channel.send_error(&RemoteError::from(Error::Permission)));
            }
        }
    }
}

impl<S: Slots, H: StoreData> Exchange<S, H> {
    /// Connects to the persistent process at `address` and monitors the
    /// connection as a new task (pprocess's `PersistentExchange.connect`),
    /// once the exchange is below its limit: every result the process sends
    /// is stored for that task, and the task ends when the process has
    /// delivered everything. Errors as for [`connect_persistent`].
    ///
    /// A [`Queue`] gets every result; a [`Map`](crate::Map) keeps one result
    /// per task, so use it only for processes that send one.
    ///
    /// With a queue or map (a handler that
    /// [keeps results](crate::StoreData::keeps_results)), a result is
    /// acknowledged when the program takes it ([`Exchange::next_result`],
    /// the iterator), not when the exchange stores it: results stored but
    /// not taken when this process dies or drops the exchange go to the
    /// persistent process's next client. At most [`WINDOW`] of them wait in
    /// the exchange; the rest stay with the persistent process until earlier
    /// ones are taken, and its connection ends only once every result is
    /// acknowledged. So the calls that wait for connections to end —
    /// [`Exchange::finish`], and [`Exchange::wait`], [`Exchange::add_wait`]
    /// or this one at the limit — acknowledge every result stored so far
    /// instead of waiting forever (those results are then the program's
    /// alone). A result taken through [`Exchange::handler_mut`] is not
    /// acknowledged, nor is one received from a channel of
    /// [`Exchange::ready`]: take results with [`Exchange::next_result`]. With
    /// any other handler, a result is acknowledged as it is received.
    pub fn connect(&mut self, address: impl AsAddress) -> Result<TaskId> {
        let channel = connect_persistent(address)?;
        self.add_connection(channel)
    }

    /// Runs `callable` in a background process listening at `address`
    /// (pprocess's `PersistentExchange.start` and `manage(address, ...)`),
    /// exactly as [`start_persistent`] does, and returns its pid. The
    /// exchange does not monitor it: collect its results with
    /// [`Exchange::connect`], from this exchange or another, in this process
    /// or a later one.
    pub fn start_persistent<F>(&mut self, address: impl AsAddress, callable: F) -> Result<Pid>
    where
        F: FnOnce(&mut Channel) -> core::result::Result<(), RemoteError>,
    {
        start_persistent_as(self.fork_check(), address, callable)
    }
}

impl Queue {
    /// A queue collecting the results of the persistent process at
    /// `address` (pprocess's `BackgroundQueue`): a queue of limit 1 that has
    /// [connected](Exchange::connect) to it. Iterate it for the results:
    /// each is acknowledged as the iterator hands it out, so the ones this
    /// process has not taken yet when it dies go to the next client.
    pub fn background(address: impl AsAddress) -> Result<Queue> {
        let mut queue = Queue::with_options(1, Options::default());
        queue.connect(address)?;
        Ok(queue)
    }
}
