//! The keeper: the process listening at a persistent address. It reads what
//! the callable sends into its [`Outbox`], passes what clients send to the
//! callable through its [`Inbox`], and serves one client at a time, never
//! waiting for a peer: writes go out as far as the socket buffer allows and
//! resume when `poll` says there is room, reads take what has arrived and
//! keep a partial frame for later, and a client that stops sending in the
//! middle of a frame for [`STALL_MS`] is disconnected.

use alloc::vec::Vec;

use crate::channel::{try_copy, Channel};
use crate::error::{best_effort, code, Error, RemoteError};
use crate::sys::{self, Deadline, Errno, Fd, PollFd, POLLIN, POLLOUT};
use crate::wire::{
    error_payload, Header, Kind, DEFAULT_MAX_MESSAGE, FLAG_ACK_REQUESTED, HEADER_LEN, MAX_ERROR_PAYLOAD,
};

use super::inbox::Inbox;
use super::listener::Listener;
use super::outbox::Outbox;
use super::{OUTBOX_BYTES, STALL_MS};

/// Bytes taken from a client's socket per read.
const READ_CHUNK: usize = 64 * 1024;

/// Bytes of clients' messages the callable has not taken beyond which the
/// keeper stops reading the client (whose sends then wait, as on a full
/// socket).
pub(super) const INBOX_BYTES: usize = OUTBOX_BYTES;

/// The keeper's life: serves results until the callable has finished and
/// every result is acknowledged (and a client has acknowledged something,
/// so that a callable that sends nothing still has its end seen), then
/// removes the socket file and exits.
pub(super) fn keep(listener: Listener, mut worker: Channel) -> ! {
    // The inbox numbers the frames written to the callable, and checks its
    // acknowledgements itself.
    worker.acks_checked_elsewhere();
    let mut keeper = Keeper {
        listener,
        worker: Some(worker),
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
        let mut fds = [PollFd::new(listening, POLLIN)];
        if !matches!(sys::poll(&mut fds, 0), Ok(1)) {
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

/// The client being served.
struct Client {
    fd: Fd,
    /// Bytes received and not yet taken as frames: at most a partial frame
    /// between reads.
    input: Vec<u8>,
    /// The client is in the middle of a frame: it is disconnected when this
    /// passes ([`STALL_MS`] after the last bytes it sent).
    stall: Option<Deadline>,
}

/// The keeper's state.
struct Keeper {
    listener: Listener,
    /// The channel to the callable's process, until it ends.
    worker: Option<Channel>,
    /// The callable sent an error frame (its failure is reported already).
    worker_failed: bool,
    /// Writing to the callable's channel failed: its process is gone.
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
                    if worker.has_buffered() {
                        timeout = 0;
                    }
                }
                if self.inbox.pending().is_some() && !self.worker_unwritable {
                    events |= POLLOUT;
                }
                // Not watched at all while there is nothing to do with it,
                // so that its hang-up does not wake the loop in vain.
                if events != 0 {
                    fds[0] = PollFd::new(worker.fd(), events);
                }
            }
            let reading = self.inbox.bytes() < INBOX_BYTES;
            match &self.client {
                Some(client) => {
                    let mut events = if reading { POLLIN } else { 0 };
                    if self.outbox.pending().is_some() {
                        events |= POLLOUT;
                    }
                    fds[1] = PollFd::new(&client.fd, events);
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
            if fds[1].ready_for(if reading { POLLIN } else { 0 }) {
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

    /// Writes clients' messages to the callable, as far as its socket
    /// buffer allows.
    fn write_worker(&mut self) {
        let Some(worker) = self.worker.as_ref().filter(|_| !self.worker_unwritable) else {
            return;
        };
        while let Some((header, payload)) = self.inbox.pending() {
            match sys::send_some(worker.fd(), &[header, payload]) {
                Ok(0) => return, // full: poll says when there is room
                Ok(n) => self.inbox.wrote(n),
                Err(_) => {
                    // Its process is gone: its end is read next, and what it
                    // never took is reported then.
                    self.worker_unwritable = true;
                    return;
                }
            }
        }
    }

    /// Drops the clients' messages the callable has taken (its channel
    /// acknowledged them) and acknowledges them to the client that sent
    /// them, if it asked and is still connected.
    fn release_taken(&mut self) {
        if let Some(worker) = &self.worker {
            if let Some(client_seq) = self.inbox.acked(worker.acked()) {
                self.outbox.ack_client(client_seq);
            }
        }
    }

    /// Moves what the callable sent into the outbox, up to the byte limit.
    fn read_worker(&mut self) {
        while self.outbox.bytes() < OUTBOX_BYTES {
            let Some(worker) = &mut self.worker else {
                return;
            };
            // Never waits: a callable stopped in the middle of a frame
            // holds nobody up, and the next poll round resumes its frame.
            match worker.receive_vec_now() {
                Ok(data) => self.outbox.push(Kind::Data, data),
                Err(Error::TimedOut) => return self.release_taken(),
                Err(Error::Remote { code }) => {
                    let remote = worker.remote_error().cloned();
                    let remote = remote.unwrap_or_else(|| RemoteError::new(code, ""));
                    self.worker_failed = true;
                    self.push_error(&remote);
                }
                Err(e) => return self.worker_ended(e),
            }
        }
    }

    fn push_error(&mut self, error: &RemoteError) {
        let mut payload = [0u8; MAX_ERROR_PAYLOAD];
        let len = error_payload(error, &mut payload);
        self.outbox.push(Kind::Error, payload[..len].to_vec());
    }

    /// The callable's channel ended with `why`: a process that died without
    /// reporting an error gets an error result naming it; a process that
    /// broke the protocol is stopped.
    fn worker_ended(&mut self, why: Error) {
        self.release_taken();
        let Some(mut worker) = self.worker.take() else {
            return;
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
                // Not collected here: the drop below hands it on.
                best_effort(worker.kill_and_collect());
            }
        }
        self.report_untaken();
        self.outbox.input_done();
        // A process that closed its channel but runs on is left to init
        // (the keeper exits without waiting for it): an error here has
        // nobody to go to.
        best_effort(worker.try_wait());
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

    /// Writes what the outbox has for the client, as far as its socket
    /// buffer allows.
    fn write_client(&mut self) {
        let Some(client) = &self.client else {
            return;
        };
        while let Some((header, payload)) = self.outbox.pending() {
            match sys::send_some(&client.fd, &[header, payload]) {
                Ok(0) => return, // full: poll says when there is room
                Ok(n) => self.outbox.wrote(n),
                Err(_) => break,
            }
        }
        if self.outbox.pending().is_some() {
            // It hung up: take the acknowledgements it sent before it went
            // (they precede the end of its stream).
            self.read_client();
            self.drop_client(None);
        }
    }

    /// Takes what the client sent (acknowledgements, and messages for the
    /// callable), never waiting for the rest of a frame (a client that stops
    /// in the middle of one for [`STALL_MS`] is disconnected); disconnects a
    /// client that hung up or broke the protocol.
    fn read_client(&mut self) {
        let Some(client) = &mut self.client else {
            return;
        };
        let mut chunk = [0u8; READ_CHUNK];
        let mut hung_up = false;
        let mut progressed = false;
        loop {
            match sys::read_now(&client.fd, &mut chunk) {
                Ok(0) => {
                    hung_up = true;
                    break;
                }
                Ok(n) => {
                    progressed = true;
                    if client.input.try_reserve(n).is_err() {
                        // No memory for what it sends: it is refused with
                        // ENOMEM (what it sent and had acknowledged is
                        // kept; the rest it knows is not delivered).
                        let why = RemoteError::from(Error::from(Errno::NOMEM));
                        return self.drop_client(Some(why));
                    }
                    client.input.extend_from_slice(&chunk[..n]);
                    if n < chunk.len() || client.input.len() > READ_CHUNK * 16 {
                        break;
                    }
                }
                Err(Errno::AGAIN) => break,
                Err(_) => {
                    hung_up = true;
                    break;
                }
            }
        }
        let taken = self.take_frames(progressed);
        self.report_untaken();
        match taken {
            Err(why) => self.drop_client(Some(why)),
            Ok(()) if hung_up => self.drop_client(None),
            Ok(()) => {}
        }
    }

    /// Handles the whole frames the client's input holds and keeps a partial
    /// one; an error says why the client is refused.
    fn take_frames(&mut self, progressed: bool) -> Result<(), RemoteError> {
        let Some(client) = &mut self.client else {
            return Ok(());
        };
        let mut at = 0;
        while let Some(bytes) = client.input[at..].first_chunk::<HEADER_LEN>() {
            let header = Header::decode(bytes, DEFAULT_MAX_MESSAGE)
                .map_err(|e| RemoteError::from(Error::Protocol(e)))?;
            match header.kind {
                Kind::Ack => {
                    at += HEADER_LEN;
                    if self.outbox.ack(header.seq).is_err() {
                        return Err(RemoteError::new(
                            code::PROTO,
                            "acknowledgement of a frame never sent",
                        ));
                    }
                }
                Kind::Data => {
                    let end = at + HEADER_LEN + header.length as usize;
                    let Some(payload) = client.input.get(at + HEADER_LEN..end) else {
                        break; // the rest has not arrived yet
                    };
                    let asked = header.flags & FLAG_ACK_REQUESTED != 0;
                    // No memory for it: the client is refused with ENOMEM.
                    let payload = try_copy(payload).map_err(RemoteError::from)?;
                    self.inbox.push(payload, asked.then_some(header.seq));
                    at = end;
                }
                _ => {
                    return Err(RemoteError::new(
                        code::PROTO,
                        "clients of a persistent process send messages and acknowledgements",
                    ))
                }
            }
        }
        client.input.drain(..at);
        if client.input.is_empty() {
            client.stall = None;
        } else if progressed || client.stall.is_none() {
            client.stall = Some(Deadline::after(STALL_MS));
        }
        Ok(())
    }

    /// Disconnects the client, telling it why if it broke the protocol
    /// (`why`, unless a frame to it is half written); what it did not
    /// acknowledge goes to the next client.
    fn drop_client(&mut self, why: Option<RemoteError>) {
        let Some(client) = self.client.take() else {
            return;
        };
        if let (Some(why), false) = (why, self.outbox.mid_frame()) {
            let mut payload = [0u8; MAX_ERROR_PAYLOAD];
            let len = error_payload(&why, &mut payload);
            let header = Header::new(Kind::Error, 0, len as u32, 0).encode();
            // Without waiting: a client that does not read may have a full
            // socket buffer, and it is being disconnected anyway.
            best_effort(sys::send_some(&client.fd, &[&header, &payload[..len]]));
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
                    fd,
                    input: Vec::new(),
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
