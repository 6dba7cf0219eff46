//! The keeper: the process listening at a persistent address. It reads what
//! the callable sends into its [`Outbox`] and serves one client at a time,
//! never waiting for one: writes go out as far as the client's socket
//! buffer allows and resume when `poll` says there is room, reads take what
//! has arrived and keep a partial frame for later, and a client that leaves
//! a frame unfinished for [`STALL_MS`] is disconnected.

use alloc::vec::Vec;

use crate::channel::{error_payload, Channel};
use crate::error::{code, Error, RemoteError};
use crate::sys::{self, Deadline, Errno, Fd, PollFd, POLLIN, POLLOUT};
use crate::wire::{Header, Kind, ProtoError, HEADER_LEN, MAX_ERROR_PAYLOAD};

use super::listener::Listener;
use super::outbox::Outbox;
use super::{OUTBOX_BYTES, STALL_MS};

/// Bytes taken from a client's socket per read.
const READ_CHUNK: usize = 4096;

/// The keeper's life: serves results until the callable has finished and
/// every result is acknowledged (and a client has acknowledged something,
/// so that a callable that sends nothing still has its end seen), then
/// removes the socket file and exits.
pub(super) fn keep(listener: Listener, worker: Channel) -> ! {
    let mut keeper = Keeper {
        listener,
        worker: Some(worker),
        worker_failed: false,
        outbox: Outbox::new(),
        client: None,
    };
    #[cfg(feature = "std")]
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| keeper.run()));
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
        // A new connection's socket buffer has room for 16 bytes.
        let _ = sys::send_some(&fd, &[&end]);
    }
}

/// The client being served.
struct Client {
    fd: Fd,
    /// Bytes received and not yet taken as frames: at most a partial frame
    /// between reads.
    input: Vec<u8>,
    /// The client has started a frame it has not finished: it is
    /// disconnected when this passes ([`STALL_MS`] after the frame started,
    /// or after the last frame it finished).
    stall: Option<Deadline>,
}

/// The keeper's state.
struct Keeper {
    listener: Listener,
    /// The channel to the callable's process, until it ends.
    worker: Option<Channel>,
    /// The callable sent an error frame (its failure is reported already).
    worker_failed: bool,
    outbox: Outbox,
    client: Option<Client>,
}

impl Keeper {
    fn run(&mut self) {
        while !self.outbox.finished() {
            self.write_client();
            let mut fds = [PollFd::NONE; 3];
            let mut timeout = -1;
            if let Some(worker) = self
                .worker
                .as_ref()
                .filter(|_| self.outbox.bytes() < OUTBOX_BYTES)
            {
                fds[0] = PollFd::new(worker.fd(), POLLIN);
                if worker.has_buffered() {
                    timeout = 0;
                }
            }
            match &self.client {
                Some(client) => {
                    let mut events = POLLIN;
                    if self.outbox.pending().is_some() {
                        events |= POLLOUT;
                    }
                    fds[1] = PollFd::new(&client.fd, events);
                    if let (Some(stall), -1) = (client.stall, timeout) {
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
            if fds[1].ready_for(POLLIN) {
                self.read_client();
            }
            if self
                .client
                .as_ref()
                .and_then(|client| client.stall)
                .is_some_and(|stall| stall.expired())
            {
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

    /// Moves what the callable sent into the outbox, up to the byte limit.
    fn read_worker(&mut self) {
        while self.outbox.bytes() < OUTBOX_BYTES {
            let Some(worker) = &mut self.worker else {
                return;
            };
            match worker.receive_vec_timeout(0) {
                Ok(data) => self.outbox.push(Kind::Data, data),
                Err(Error::TimedOut) => return,
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
                let _ = sys::kill(worker.pid(), sys::SIGKILL);
                let _ = worker.wait();
            }
        }
        self.outbox.input_done();
        // A process that closed its channel but runs on is left to init.
        let _ = worker.try_wait();
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

    /// Takes what the client sent: acknowledgements, never waiting for the
    /// rest of a frame (a frame left unfinished starts the [`STALL_MS`]
    /// clock); disconnects a client that hung up or broke the protocol.
    fn read_client(&mut self) {
        let Some(client) = &mut self.client else {
            return;
        };
        let mut chunk = [0u8; READ_CHUNK];
        let mut hung_up = false;
        loop {
            match sys::read_now(&client.fd, &mut chunk) {
                Ok(0) => {
                    hung_up = true;
                    break;
                }
                Ok(n) => {
                    client.input.extend_from_slice(&chunk[..n]);
                    if n < chunk.len() {
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
        match self.take_frames() {
            Err(why) => self.drop_client(Some(why)),
            Ok(()) if hung_up => self.drop_client(None),
            Ok(()) => {}
        }
    }

    /// Handles the whole frames the client's input holds and keeps a partial
    /// one; an error says why the client is refused.
    fn take_frames(&mut self) -> Result<(), RemoteError> {
        let Some(client) = &mut self.client else {
            return Ok(());
        };
        let mut at = 0;
        let mut finished_frames = false;
        while let Some(bytes) = client.input[at..].first_chunk::<HEADER_LEN>() {
            let header = Header::decode(bytes, 0).map_err(|e| match e {
                ProtoError::TooLong { .. } => only_acknowledge(),
                e => RemoteError::from(Error::Protocol(e)),
            })?;
            if header.kind != Kind::Ack {
                return Err(only_acknowledge());
            }
            at += HEADER_LEN;
            finished_frames = true;
            if self.outbox.ack(header.seq).is_err() {
                return Err(RemoteError::new(
                    code::PROTO,
                    "acknowledgement of a frame never sent",
                ));
            }
        }
        client.input.drain(..at);
        if client.input.is_empty() {
            client.stall = None;
        } else if finished_frames || client.stall.is_none() {
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
            let _ = sys::send_some(&client.fd, &[&header, &payload[..len]]);
        }
        self.outbox.disconnect();
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
                let mut channel = Channel::from_fd(fd, 0);
                let _ = channel.send_error(&RemoteError::from(Error::Permission));
            }
        }
    }
}

/// What a client that sends anything but acknowledgements is told.
fn only_acknowledge() -> RemoteError {
    RemoteError::new(
        code::PROTO,
        "clients of a persistent process only acknowledge",
    )
}
