//! The keeper: the process listening at a persistent address. It reads what
//! the callable sends into its [`Outbox`], passes what clients send to the
//! callable through its [`Inbox`], and serves one client at a time, never
//! waiting for a peer: each peer is a [`Link`], a socket driving a
//! [`Conn`](crate::wire::Conn), whose writes go out as far as the socket
//! buffer allows and resume when `poll` says there is room, and whose reads
//! take what has arrived and keep a partial frame for later. A client that
//! stops sending in the middle of a frame for [`STALL_MS`] is disconnected.

use crate::channel::{cut_short, hang_up, Channel};
use crate::error::{best_effort, code, Error, RemoteError};
use crate::sys::{self, Deadline, Fd, OwnedChild, PollFd, POLLIN, POLLOUT};
use crate::wire::{error_payload, Event, Header, Kind, FLAG_ACK_REQUESTED, MAX_ERROR_PAYLOAD};

use super::inbox::Inbox;
use super::link::{Incoming, Link};
use super::listener::Listener;
use super::outbox::Outbox;
use super::{OUTBOX_BYTES, STALL_MS};

/// Bytes of clients' messages the callable has not taken beyond which the
/// keeper stops reading the client (whose sends then wait, as on a full
/// socket).
pub(super) const INBOX_BYTES: usize = OUTBOX_BYTES;

/// The keeper's life: serves results until the callable has finished and
/// every result is acknowledged (and a client has acknowledged something,
/// so that a callable that sends nothing still has its end seen), then
/// removes the socket file and exits.
pub(super) fn keep(listener: Listener, worker: Channel) -> ! {
    let (fd, process) = worker.into_parts();
    let mut keeper = Keeper {
        listener,
        worker: Some(Worker {
            link: Link::new(fd),
            process,
        }),
        worker_failed: false,
        worker_unwritable: false,
        outbox: Outbox::new(),
        inbox: Inbox::new(),
        client: None,
    };
    // A panic in the loop ends the keeper as its end does: the socket file
    // is removed below, and clients see the stream end.
    #[cfg(feature = "std")]
    best_effort(std::panic::catch_unwind(std::panic::AssertUnwindSafe(
        || keeper.run(),
    )));
    #[cfg(not(feature = "std"))]
    keeper.run();
    // The file goes first, so that nobody connects to a keeper that is
    // leaving, and a client that sees the end finds the address free; then
    // the client still connected and those waiting are told that everything
    // was delivered.
    Listener::remove_file(&keeper.listener.path, keeper.listener.id);
    keeper.outbox.close();
    keeper.write_client();
    drop(keeper.client.take());
    end_waiting_clients(&keeper.listener.fd);
    sys::exit_now(0)
}

/// Tells every client waiting in the listen backlog that the stream has
/// ended (an end frame), so that it does not take the keeper's exit for a
/// crash.
fn end_waiting_clients(listening: &Fd) {
    let end = Header::new(Kind::End, 0, 0, 1).encode();
    loop {
        if !matches!(sys::wait_readable(listening, 0), Ok(true)) {
            return;
        }
        let Ok(fd) = sys::accept(listening) else {
            return;
        };
        // A new connection's socket buffer has room for a header-only frame; one that
        // is gone already needs no end.
        best_effort(sys::send_some(&fd, &[&end]));
    }
}

/// The callable's process and the link to it.
struct Worker {
    link: Link,
    process: Option<OwnedChild>,
}

/// The client being served.
struct Client {
    link: Link,
    /// The client is in the middle of a frame: it is disconnected when this
    /// passes ([`STALL_MS`] after the last bytes it sent).
    stall: Option<Deadline>,
}

/// The keeper's state.
struct Keeper {
    listener: Listener,
    /// The link to the callable's process, until it ends.
    worker: Option<Worker>,
    /// The callable sent an error frame (its failure is reported already).
    worker_failed: bool,
    /// Writing to the callable's link failed: its process is gone.
    worker_unwritable: bool,
    outbox: Outbox,
    inbox: Inbox,
    client: Option<Client>,
}

impl Keeper {
    fn run(&mut self) {
        while !self.outbox.finished() {
            self.write_worker();
            self.write_client();
            let mut fds = [PollFd::NONE; 3];
            let mut timeout = -1;
            let room = self.outbox.bytes() < OUTBOX_BYTES;
            if let Some(worker) = &self.worker {
                let mut events = 0;
                if room {
                    events |= POLLIN;
                    if worker.link.conn.has_buffered() {
                        timeout = 0;
                    }
                }
                if !worker.link.conn.pending().is_empty() && !self.worker_unwritable {
                    events |= POLLOUT;
                }
                // Not watched at all while there is nothing to do with it,
                // so that its hang-up does not wake the loop in vain.
                if events != 0 {
                    fds[0] = PollFd::new(&worker.link.fd, events);
                }
            }
            let reading = self.inbox.bytes() < INBOX_BYTES;
            match &self.client {
                Some(client) => {
                    let mut events = if reading { POLLIN } else { 0 };
                    if !client.link.conn.pending().is_empty() {
                        events |= POLLOUT;
                    }
                    if reading && client.link.conn.has_buffered() {
                        timeout = 0;
                    }
                    fds[1] = PollFd::new(&client.link.fd, events);
                    if let (Some(stall), -1, true) = (client.stall, timeout, reading) {
                        timeout = stall.remaining_ms();
                    }
                }
                None => fds[2] = PollFd::new(&self.listener.fd, POLLIN),
            }
            if sys::poll(&mut fds, timeout).is_err() {
                sys::sleep_ms(10); // ENOMEM: try again shortly
                continue;
            }
            if room && (fds[0].ready_for(POLLIN) || timeout == 0) {
                self.read_worker();
            }
            // A hang-up is read even while the inbox is full, to let go.
            if fds[1].ready_for(if reading { POLLIN } else { 0 }) || (reading && timeout == 0) {
                self.read_client();
            }
            let stalled = self.client.as_ref().and_then(|client| client.stall);
            if reading && stalled.is_some_and(|stall| stall.expired()) {
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

    /// Queues clients' messages on the callable's link, one once the one
    /// before is written, and writes them as far as its socket buffer allows.
    fn write_worker(&mut self) {
        let Some(worker) = self.worker.as_mut().filter(|_| !self.worker_unwritable) else {
            return;
        };
        loop {
            match worker.link.flush() {
                Ok(true) => {}
                Ok(false) => return, // full: poll says when there is room
                Err(_) => {
                    // Its process is gone: its end is read next, and what it
                    // never took is reported then.
                    self.worker_unwritable = true;
                    return;
                }
            }
            let Some(payload) = self.inbox.next() else {
                return;
            };
            match worker
                .link
                .conn
                .send(Kind::Data, FLAG_ACK_REQUESTED, 0, payload)
            {
                Ok(seq) => self.inbox.queued_as(seq),
                Err(_) => return, // no memory now: the next round
            }
        }
    }

    /// Moves what the callable sent into the outbox, up to the byte limit;
    /// the clients' messages it took are released.
    fn read_worker(&mut self) {
        while self.outbox.bytes() < OUTBOX_BYTES {
            let Some(worker) = &mut self.worker else {
                return;
            };
            // Never waits: a callable stopped in the middle of a frame
            // holds nobody up, and the next poll round resumes its frame.
            match worker.link.next() {
                Ok(None) => return,
                Ok(Some(Incoming::Message(header, payload))) => {
                    if header.flags & FLAG_ACK_REQUESTED != 0 {
                        // Lost only with the callable: its end is read next.
                        best_effort(worker.link.conn.ack(header.seq));
                    }
                    self.outbox.push(Kind::Data, payload);
                }
                Ok(Some(Incoming::Event(Event::Ack(seq)))) => {
                    if let Some(client_seq) = self.inbox.acked(seq) {
                        self.ack_client(client_seq);
                    }
                }
                Ok(Some(Incoming::Event(Event::Remote(header)))) => {
                    // Lost only with the callable: its end is read next.
                    best_effort(worker.link.conn.acknowledge(header));
                    let remote = worker.link.conn.remote_error().cloned();
                    let remote = remote.unwrap_or_else(|| RemoteError::new(code::PROTO, ""));
                    self.worker_failed = true;
                    self.push_error(&remote);
                }
                Ok(Some(Incoming::Event(Event::Stop | Event::End(_)))) => {
                    return self.worker_ended(Error::Closed)
                }
                Ok(Some(Incoming::Event(_))) => {}
                Err(e) => return self.worker_ended(e),
            }
        }
    }

    fn push_error(&mut self, error: &RemoteError) {
        let mut payload = [0u8; MAX_ERROR_PAYLOAD];
        let len = error_payload(error, &mut payload);
        self.outbox.push(Kind::Error, payload[..len].to_vec());
    }

    /// The callable's link ended with `why`: a process that died without
    /// reporting an error gets an error result naming it; a process that
    /// broke the protocol is stopped.
    fn worker_ended(&mut self, why: Error) {
        let Some(mut worker) = self.worker.take() else {
            return;
        };
        let answered = worker.link.conn.remote_error().is_some();
        let why = match why {
            Error::Closed => hang_up(worker.process.as_mut(), answered),
            Error::Protocol(crate::wire::ProtoError::Truncated) => {
                cut_short(worker.process.as_mut(), answered)
            }
            other => other,
        };
        match why {
            Error::Closed => {}
            Error::PeerEnded { .. } => {
                if !self.worker_failed {
                    self.push_error(&RemoteError::from(why));
                }
            }
            _ => {
                self.push_error(&RemoteError::from(why));
                if let Some(process) = &mut worker.process {
                    // Not collected here: the drop below hands it on.
                    best_effort(process.kill_and_collect());
                }
            }
        }
        self.report_untaken();
        self.outbox.input_done();
        // A process that closed its link but runs on is left to init (the
        // keeper exits without waiting for it): an error here has nobody to
        // go to.
        if let Some(process) = &mut worker.process {
            best_effort(process.wait(false));
        }
    }

    /// Once the callable has finished: reports what clients sent and it
    /// never took as an error result (with code `PP_ECLOSED`), so that
    /// nothing a client sent is dropped silently.
    fn report_untaken(&mut self) {
        let untaken = self.inbox.untaken();
        if self.worker.is_some() || untaken == 0 {
            return;
        }
        let mut message = alloc::string::String::new();
        // Formatting into a String cannot fail.
        best_effort(core::fmt::Write::write_fmt(
            &mut message,
            format_args!("the callable finished without receiving {untaken} messages clients sent"),
        ));
        self.push_error(&RemoteError::new(code::CLOSED, &message));
        self.inbox = Inbox::new();
    }

    /// Acknowledges the client's frame `seq` (and every one before it): the
    /// callable took those messages.
    fn ack_client(&mut self, seq: u32) {
        if let Some(client) = &mut self.client {
            // No memory: the next acknowledgement covers this one.
            best_effort(client.link.conn.ack(seq));
        }
    }

    /// Queues what the outbox has for the client, one frame once the one
    /// before is written, and writes it as far as its socket buffer allows.
    fn write_client(&mut self) {
        let Some(client) = &mut self.client else {
            return;
        };
        loop {
            match client.link.flush() {
                Ok(true) => self.outbox.written(),
                Ok(false) => return, // full: poll says when there is room
                Err(_) => break,
            }
            let Some((kind, payload)) = self.outbox.next() else {
                return;
            };
            match client.link.conn.send(kind, FLAG_ACK_REQUESTED, 0, payload) {
                Ok(seq) => self.outbox.queued_as(seq),
                Err(_) => return, // no memory now: the next round
            }
        }
        // It hung up: take the acknowledgements it sent before it went
        // (they precede the end of its stream).
        self.read_client();
        self.drop_client(None);
    }

    /// Takes what the client sent (acknowledgements, and messages for the
    /// callable), never waiting for the rest of a frame (a client that stops
    /// in the middle of one for [`STALL_MS`] is disconnected); disconnects a
    /// client that hung up or broke the protocol.
    fn read_client(&mut self) {
        let mut progressed = false;
        let ended = loop {
            let Some(client) = &mut self.client else {
                return;
            };
            let incoming = match client.link.next() {
                Ok(Some(incoming)) => incoming,
                Ok(None) => break None,
                Err(Error::Closed | Error::Protocol(crate::wire::ProtoError::Truncated)) => {
                    break Some(None); // hung up, maybe in the middle of a frame
                }
                Err(e) => break Some(Some(RemoteError::from(e))),
            };
            progressed = true;
            match incoming {
                Incoming::Event(Event::Ack(seq)) => {
                    if self.outbox.ack(seq).is_err() {
                        break Some(Some(RemoteError::new(
                            code::PROTO,
                            "acknowledgement of a frame never sent",
                        )));
                    }
                }
                Incoming::Message(header, payload) if header.kind == Kind::Data => {
                    let asked = header.flags & FLAG_ACK_REQUESTED != 0;
                    self.inbox.push(payload, asked.then_some(header.seq));
                    // Past the bound: the rest waits in the socket.
                    if self.inbox.bytes() >= INBOX_BYTES {
                        break None;
                    }
                }
                _ => {
                    break Some(Some(RemoteError::new(
                        code::PROTO,
                        "clients of a persistent process send messages and acknowledgements",
                    )))
                }
            }
        };
        self.report_untaken();
        match ended {
            Some(why) => self.drop_client(why),
            None => {
                if let Some(client) = &mut self.client {
                    if !client.link.conn.mid_frame() {
                        client.stall = None;
                    } else if progressed || client.stall.is_none() {
                        client.stall = Some(Deadline::after(STALL_MS));
                    }
                }
            }
        }
    }

    /// Disconnects the client, telling it why if it broke the protocol
    /// (`why`, queued after any frame half written to it); what it did not
    /// acknowledge goes to the next client.
    fn drop_client(&mut self, why: Option<RemoteError>) {
        let Some(mut client) = self.client.take() else {
            return;
        };
        if let Some(why) = why {
            // Without waiting: a client that does not read may have a full
            // socket buffer, and it is being disconnected anyway.
            if client.link.conn.send_error(&why, 0).is_ok() {
                best_effort(client.link.flush());
            }
        }
        self.outbox.disconnect();
        self.inbox.forget_client();
    }

    /// Accepts the next connection; a peer of another user is told and
    /// disconnected.
    fn accept(&mut self) {
        let Ok(fd) = sys::accept(&self.listener.fd) else {
            return; // it gave up meanwhile, or no descriptor is left: later
        };
        match sys::peer_credentials(&fd) {
            Ok(peer) if peer.uid == sys::geteuid() => {
                self.client = Some(Client {
                    link: Link::new(fd),
                    stall: None,
                });
                self.outbox.connect();
            }
            _ => {
                let mut channel = Channel::from_fd(fd, None);
                // A last word to a refused peer, which is dropped either way.
                best_effort(channel.send_error(&RemoteError::from(Error::Permission)));
            }
        }
    }
}
