//! A channel: one end of a connected socket speaking the [`wire`](mod@crate::wire)
//! format, usually between a creator and a created process.
//!
//! Sends are synchronous writes into the kernel's socket buffer, so a frame
//! sent just before a process exits is still delivered. Receives read ahead
//! into a small buffer (one system call per small message) and never lose a
//! message: a buffer that is too small leaves it queued for the next call.
//!
//! A [`Channel`] is a blocking driver of three parts: its socket (the
//! descriptor, the outbox mode an exchange sets so that a send never waits
//! for it, and the shared-memory ring a reused worker answers through:
//! `socket`, `ring`), a [`Conn`] (the protocol without I/O: frame numbers,
//! acknowledgements, the end state, the task its frames name, a reused
//! task's end mark and filter, the messages read past and held for a later
//! receive, the marks an exchange monitoring the channel collects, and a
//! persistent connection's stream policy) and the created process, if any.
//! The channel moves the bytes the connection asks for and waits; the
//! connection decides what they mean. A reused worker's loop keeps its own
//! state (the exchange's `worker` module).

#[cfg(feature = "alloc")]
use alloc::vec::Vec;
use core::fmt;

use bytemuck::Pod;

use crate::error::{best_effort, Error, RemoteError, Result};
use crate::sys::{self, Child, Deadline, Errno, Fd, OwnedChild, Pid, WaitStatus};
#[cfg(feature = "alloc")]
use crate::wire::StreamPolicy;
use crate::wire::{
    error_payload, Conn, Event, Header, Kind, Mark, ProtoError, FLAG_ACK_REQUESTED,
    MAX_ERROR_PAYLOAD, READ_AHEAD,
};

#[cfg(feature = "alloc")]
mod ring;
mod socket;
#[cfg(feature = "alloc")]
mod worker;

#[cfg(feature = "alloc")]
pub use ring::{answer_paths, wake_barriers};
#[cfg(feature = "alloc")]
pub(crate) use ring::{Ring, Sleep, CLAIM_WORDS};
use socket::Socket;

/// A channel's output not written yet: acknowledgements, and (with
/// `alloc`) the frames an outbox holds. Without an allocator there is no
/// outbox, and every write empties it: one acknowledgement fits.
#[cfg(feature = "alloc")]
type Out = Vec<u8>;
#[cfg(not(feature = "alloc"))]
type Out = heapless::Vec<u8, { crate::wire::HEADER_LEN }>;

/// How long a receive that saw the peer hang up waits for the peer process to
/// become waitable: the kernel closes a dying process's descriptors just
/// before its exit status can be collected.
const EXIT_GRACE_MS: i32 = 200;

/// What [`Channel::next_frame`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A data or args message, now pending.
    Message(Header),
    /// An acknowledgement (recorded).
    Ack,
    /// A reused worker's marker: the current task is finished.
    TaskEnd,
}

/// One end of a pprocess channel.
///
/// Messages are byte strings (or fixed-layout values, [`Channel::send_value`])
/// that arrive whole and in order; a receive waits for the next one.
///
/// ```
/// use pprocess::start;
///
/// let mut channel = start(|channel| {
///     let mut buf = [0u8; 64];
///     let n = channel.receive(&mut buf)?;
///     channel.send(&buf[..n].to_ascii_uppercase())?;
///     Ok(())
/// })?;
/// channel.send(b"hello")?;
/// assert_eq!(channel.receive_vec()?, b"HELLO");
/// assert!(channel.wait()?.success());
/// # Ok::<(), pprocess::Error>(())
/// ```
///
/// # Every call in one example
///
/// A [`Channel::pair`] shows the calls without a process; a process made by
/// [`start`](crate::start) adds its [`pid`](Channel::pid) and the waits.
///
/// ```
/// use pprocess::{start, Channel, Error, RemoteError};
///
/// let (mut left, mut right) = Channel::pair()?;
/// assert_eq!(left.pid(), 0); // no process behind a pair
/// assert!(left.raw_fd() >= 0);
/// assert_eq!(right.max_message(), pprocess::wire::DEFAULT_MAX_MESSAGE);
///
/// left.send(b"bytes")?;
/// left.send_value(&7u64)?;
/// left.flush()?; // nothing was held back: writes nothing
/// assert!(right.wait_readable(1000)?);
/// let mut buf = [0u8; 16];
/// let n = right.receive_timeout(&mut buf, 1000)?;
/// assert_eq!(&buf[..n], b"bytes");
/// assert!(right.has_buffered()); // the value came with the first read
/// assert_eq!(right.receive_value::<u64>()?, 7);
/// assert!(!right.has_buffered());
/// assert_eq!(right.receive_vec_timeout(0), Err(Error::TimedOut));
///
/// left.set_max_message(4)?;
/// assert!(matches!(left.send(b"too long"), Err(Error::TooBig { .. })));
/// left.send_error(&RemoteError::new(42, "no such key"))?;
/// let mut small = [0u8; 4];
/// assert_eq!(right.receive(&mut small), Err(Error::Remote { code: 42 }));
/// assert_eq!(right.remote_error().map(|e| e.message()), Some("no such key"));
/// left.close();
/// assert_eq!(right.receive_vec(), Err(Error::Closed));
/// assert!(right.is_ended());
///
/// let mut echo = start(|channel| {
///     let message = channel.receive_vec()?;
///     Ok(channel.send(&message)?)
/// })?;
/// assert!(echo.pid() > 0);
/// echo.send_acked(b"echo")?; // returns once the process has taken it
/// assert_eq!(echo.receive_vec()?, b"echo");
/// let status = echo.wait_timeout(-1)?;
/// assert!(status.success());
/// assert_eq!(echo.try_wait()?, Some(status));
/// assert_eq!(echo.wait()?, status); // collected once, same status
/// # Ok::<(), pprocess::Error>(())
/// ```
pub struct Channel {
    /// The socket, the outbox mode and a reused worker's answer ring: the
    /// bytes in and out (see `socket`).
    socket: Socket,
    /// The protocol without I/O: frame numbers, acknowledgements, the end
    /// state, the decoder (a partial frame, a pending message), the peer's
    /// last error, the output not written yet (acknowledgements; in an
    /// outbox, the frames the socket has not taken), the messages held for
    /// a later receive, the marks of a monitoring exchange and the stream
    /// policy. The channel writes a frame's payload itself when it can (no
    /// copy).
    conn: Conn<Out>,
    /// The created process, seen from its creator: it owns the pid, the
    /// wait status and the collection; the channel only forwards.
    process: Option<OwnedChild>,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("fd", &self.socket.fd.raw())
            .field("pid", &self.pid())
            .field("ended", &self.conn.end_error())
            .finish_non_exhaustive()
    }
}

impl Channel {
    /// A channel over a connected stream socket; `child` is the peer
    /// process this side created, if any.
    pub(crate) fn from_fd(fd: Fd, child: Option<Child>) -> Channel {
        Channel {
            socket: Socket::new(fd),
            conn: Conn::new(),
            process: child.map(OwnedChild::new),
        }
    }

    /// A connected pair of channels in this process (no process is created):
    /// what one end sends, the other receives. Useful to hand one end to a
    /// process created later, to test a protocol, or to drive a channel from
    /// your own event loop. Fails with the OS error if the sockets cannot
    /// be made.
    pub fn pair() -> Result<(Channel, Channel)> {
        let (a, b) = sys::socketpair()?;
        Ok((Channel::from_fd(a, None), Channel::from_fd(b, None)))
    }

    /// The created process's id, seen from its creator; 0 on the created side.
    pub fn pid(&self) -> Pid {
        self.process.as_ref().map_or(0, OwnedChild::pid)
    }

    /// The socket descriptor, for the caller's own poll or epoll loop.
    /// It stays owned by the channel. With `std`, [`AsFd`] and [`AsRawFd`]
    /// give it the standard way; this is the call for `no_std` builds.
    ///
    /// [`AsFd`]: std::os::fd::AsFd
    /// [`AsRawFd`]: std::os::fd::AsRawFd
    pub fn raw_fd(&self) -> i32 {
        self.socket.fd.raw()
    }

    pub(crate) fn fd(&self) -> &Fd {
        &self.socket.fd
    }

    /// The pidfd of the created process, if it has one: a descriptor this
    /// channel owns besides its socket.
    #[cfg(feature = "alloc")]
    pub(crate) fn child_fd(&self) -> Option<&Fd> {
        self.process.as_ref().and_then(OwnedChild::pidfd)
    }

    /// The largest message this side sends or accepts, in bytes.
    pub fn max_message(&self) -> usize {
        self.conn.max_message()
    }

    /// Sets the largest message this side sends or accepts (1 byte to 4 GiB - 1);
    /// [`Error::Invalid`] outside that range, and the limit stays as it was.
    pub fn set_max_message(&mut self, max: usize) -> Result<()> {
        self.conn.set_max_message(max)
    }

    /// The code and message of the last error frame received.
    pub fn remote_error(&self) -> Option<&RemoteError> {
        self.conn.remote_error()
    }

    /// In a reused worker: what it sends goes through `ring`, shared
    /// with its creator (made before the fork).
    #[cfg(feature = "alloc")]
    pub(crate) fn answer_through(&mut self, ring: Ring) {
        self.socket.answers_out = Some(ring::Writer::new(ring));
    }

    /// In a reused worker's creator: the worker's answers come through
    /// `ring` (made before the fork) besides the socket.
    #[cfg(feature = "alloc")]
    pub(crate) fn answers_from(&mut self, mut ring: Ring) {
        // Processes forked from here on (other workers, persistent
        // keepers) have no use for it: they do not get it.
        ring.keep_from_forks();
        self.socket.answers_in = Some(ring::Reader::new(ring));
    }

    /// The claim words of the ring shared with a reused worker, on either
    /// side (none without a ring): the creator's and the worker's
    /// scheduler use them to agree on who runs each task.
    #[cfg(feature = "alloc")]
    pub(crate) fn claim_words(&self) -> &[core::sync::atomic::AtomicU64] {
        self.socket.ring().map_or(&[], Ring::claims)
    }

    /// The word, beside the claim words, in which a reused worker says how
    /// many places it has passed (claimed or skipped): the creator offers
    /// a word again only once the worker is past its last place. None
    /// without a ring.
    #[cfg(feature = "alloc")]
    pub(crate) fn claims_passed(&self) -> Option<&core::sync::atomic::AtomicU64> {
        self.socket.ring().map(Ring::passed)
    }

    /// [`Channel::claim_words`] and [`Channel::claims_passed`] in one look
    /// at the ring: a reused worker's loop needs both once per task.
    #[cfg(feature = "alloc")]
    pub(crate) fn claim_ring(
        &self,
    ) -> (
        &[core::sync::atomic::AtomicU64],
        Option<&core::sync::atomic::AtomicU64>,
    ) {
        match self.socket.ring() {
            Some(ring) => (ring.claims(), Some(ring.passed())),
            None => (&[], None),
        }
    }

    /// Before this side sleeps on many channels, the first step: true
    /// when there is something to read without the socket; otherwise a
    /// reused worker's creator asks the worker to wake it, and `sleep`
    /// notes that it must be settled ([`Sleep::settle`], with
    /// [`Channel::ring_is_light`]) before [`Channel::ring_ready`] looks
    /// again.
    #[cfg(feature = "alloc")]
    #[inline]
    pub(crate) fn ask_wakeup(&self, sleep: &mut Sleep) -> bool {
        self.socket.ask_wakeup(sleep)
    }

    /// True when a reused worker's ring holds answers to read.
    #[cfg(feature = "alloc")]
    #[inline]
    pub(crate) fn ring_ready(&self) -> bool {
        self.socket.ring_ready()
    }

    /// True when a reused worker publishes to this creator without a
    /// fence of its own: a sleep needs the barrier (see [`Sleep::settle`]).
    #[cfg(feature = "alloc")]
    #[inline]
    pub(crate) fn ring_is_light(&self) -> bool {
        self.socket.ring_is_light()
    }

    /// Writes what an outbox still holds, if anything: what it held when
    /// the channel stopped being monitored goes out before anything sent
    /// later, and before a read that waits for the peer.
    pub(crate) fn send_held(&mut self) -> Result<()> {
        match self.conn.pending().is_empty() {
            true => Ok(()),
            false => self.write_out(&[], &[]),
        }
    }

    /// Writes what the socket takes now of the frames held back, without
    /// waiting; true once none is left. A peer gone is its end (what was
    /// held is dropped).
    #[cfg(feature = "alloc")]
    pub(crate) fn poll_flush(&mut self) -> Result<bool> {
        while !self.conn.pending().is_empty() {
            match self.socket.write_now(self.conn.pending()) {
                Ok(0) => return Ok(false),
                Ok(n) => self.conn.written(n),
                Err(e) => {
                    self.conn.written(usize::MAX);
                    return Err(match e {
                        Errno::PIPE | Errno::CONNRESET => self.peer_gone(),
                        e => e.into(),
                    });
                }
            }
        }
        Ok(true)
    }

    /// True while frames wait to be written.
    pub(crate) fn wants_write(&self) -> bool {
        !self.conn.pending().is_empty()
    }

    /// Monitored by an exchange (or not any more): sends never wait for the
    /// socket (see `socket`). Leaving it writes what the socket
    /// takes now; the rest goes before anything sent later.
    #[cfg(feature = "alloc")]
    pub(crate) fn set_outbox(&mut self, on: bool) {
        self.socket.outbox = on;
        if !on {
            // A peer gone shows at the next receive, which reads its end.
            best_effort(self.poll_flush());
        }
    }

    /// Writes the frames this channel has not written yet, if any (a
    /// channel monitored by an exchange queues what its socket does not
    /// take at once). Frames go out in the order they were sent, so code
    /// that writes to [`Channel::raw_fd`] itself flushes first.
    #[cfg(feature = "alloc")]
    pub fn flush(&mut self) -> Result<()> {
        self.send_held()
    }

    /// True when a message can be taken without reading the socket.
    pub fn has_buffered(&self) -> bool {
        #[cfg(feature = "alloc")]
        if self.conn.has_held() {
            return true;
        }
        #[cfg(feature = "alloc")]
        if self.socket.ring_ready() {
            return true;
        }
        self.conn.has_buffered()
    }

    /// Reads what has arrived of the pending message's payload, without
    /// waiting; true once all of it is buffered, so that a receive takes it
    /// without a system call. An exchange serves a message only then: a
    /// peer that stalls in the middle of a payload holds nobody up, and the
    /// next poll rounds resume where this one stopped.
    #[cfg(feature = "alloc")]
    #[inline]
    pub(crate) fn buffer_payload(&mut self) -> Result<bool> {
        if self.conn.decoder().payload_complete() {
            return Ok(true);
        }
        self.collect_payload()
    }

    /// [`Channel::buffer_payload`]'s reads.
    #[cfg(feature = "alloc")]
    fn collect_payload(&mut self) -> Result<bool> {
        // A payload that fits the read-ahead buffer is read through it, as
        // [`Channel::read_payload`] reads one: the read that completes it
        // brings the frames behind it too, where a read of just its rest
        // would cost a system call more per buffer refill.
        if self.conn.decoder().payload_fits_buffer() {
            while !self.conn.decoder().payload_complete() {
                match self.fill(false) {
                    Ok(0) | Err(Errno::CONNRESET) => return Err(self.cut_short_here()),
                    Ok(_) => {}
                    Err(Errno::AGAIN) => return Ok(false),
                    Err(e) => return Err(e.into()),
                }
            }
            return Ok(true);
        }
        loop {
            let spare = self.conn.decoder_mut().payload_spare()?;
            if spare.is_empty() {
                return Ok(true);
            }
            match self.socket.read(spare, false) {
                Ok(0) | Err(Errno::CONNRESET) => return Err(self.cut_short_here()),
                Ok(n) => self.conn.decoder_mut().payload_filled(n),
                Err(Errno::AGAIN) => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sends `data` as one message. A message longer than
    /// [`Channel::max_message`] fails with [`Error::TooBig`] and nothing is
    /// sent; a peer that has gone fails it with [`Error::Closed`],
    /// [`Error::PeerEnded`] (a created process that died) or [`Error::StreamBroken`];
    /// other failures are OS errors.
    pub fn send(&mut self, data: &[u8]) -> Result<()> {
        self.send_frame(Kind::Data, 0, data).map(drop)
    }

    /// Takes the pending message into a new vector. An allocation that
    /// fails is `ENOMEM`, and the message stays queued.
    #[cfg(feature = "alloc")]
    fn take_vec(&mut self, header: Header) -> Result<Vec<u8>> {
        let mut message = Vec::new();
        self.take_into(header, &mut message)?;
        Ok(message)
    }

    /// In an exchange: tells a reused worker there are no more tasks.
    #[cfg(feature = "alloc")]
    pub(crate) fn send_stop(&mut self) -> Result<()> {
        self.send_frame(Kind::Stop, 0, &[]).map(drop)
    }

    /// Sends a fixed-layout value as one message of `size_of::<T>()` bytes.
    pub fn send_value<T: Pod>(&mut self, value: &T) -> Result<()> {
        self.send(bytemuck::bytes_of(value))
    }

    /// Sends `data` and waits until the peer has received it. Messages the
    /// peer sends meanwhile are kept for later receives (so this needs the
    /// `alloc` feature: one call, one meaning, in every feature set). They
    /// are acknowledged as they arrive on a plain channel (so two peers may
    /// both wait in `send_acked`), and only once the program takes them on
    /// a connection to a persistent process, whose keeper never waits for
    /// an acknowledgement: one never taken goes to its next client.
    #[cfg(feature = "alloc")]
    pub fn send_acked(&mut self, data: &[u8]) -> Result<()> {
        let seq = self.send_frame(Kind::Data, FLAG_ACK_REQUESTED, data)?;
        while (self.conn.acked().wrapping_sub(seq) as i32) < 0 {
            let Frame::Message(header) = self.next_frame(Deadline::after(-1))? else {
                continue; // an acknowledgement: check it
            };
            self.conn.reserve_held()?;
            let mut message = try_vec(header.length as usize)?;
            self.read_payload(&mut message)?;
            if self.conn.hold_taken(header, message) {
                self.write_ack();
            }
        }
        Ok(())
    }

    /// Sends an error frame: the peer's next receive fails with
    /// [`Error::Remote`] and it can read `error` with [`Channel::remote_error`].
    pub fn send_error(&mut self, error: &RemoteError) -> Result<()> {
        self.send_error_frame(error, 0).map(drop)
    }

    /// Sends one frame with the next frame number; returns that number.
    /// Data and args payloads are bounded by the maximum message size.
    pub(crate) fn send_frame(&mut self, kind: Kind, flags: u16, payload: &[u8]) -> Result<u32> {
        self.send_frame_for(self.conn.task(), kind, flags, payload)
    }

    /// [`Channel::send_frame`] naming task `task`.
    fn send_frame_for(&mut self, task: u64, kind: Kind, flags: u16, payload: &[u8]) -> Result<u32> {
        #[cfg(feature = "alloc")]
        if self.socket.outbox {
            let seq = self.conn.send(kind, flags, task, payload)?;
            return self.poll_flush().map(|_| seq);
        }
        let header = self.conn.header(kind, flags, task, payload.len())?;
        self.write_frame_out(&header, payload)?;
        Ok(header.seq)
    }

    /// Writes what the connection holds (it goes first), then `header` and
    /// `payload`, waiting for the socket; a closed peer becomes how it
    /// ended. What was held is written or lost with the peer: either way
    /// it is not held any more.
    fn write_out(&mut self, header: &[u8], payload: &[u8]) -> Result<()> {
        let sent = self.socket.write(&[self.conn.pending(), header, payload]);
        self.written(sent)
    }

    /// [`Channel::write_out`] of one whole frame: when nothing is held, as
    /// a frame (a reused worker's answer, through its ring's direct path).
    fn write_frame_out(&mut self, header: &Header, payload: &[u8]) -> Result<()> {
        if !self.conn.pending().is_empty() {
            return self.write_out(&header.encode(), payload);
        }
        let sent = self.socket.write_frame(header, payload);
        self.written(sent)
    }

    /// After a write of everything held and more: nothing is held any
    /// more, and a closed peer becomes how it ended.
    fn written(&mut self, sent: sys::Result<()>) -> Result<()> {
        self.conn.written(usize::MAX);
        match sent {
            Ok(()) => Ok(()),
            Err(Errno::PIPE | Errno::CONNRESET) => Err(self.peer_gone()),
            Err(e) => Err(e.into()),
        }
    }

    /// Receives one message into `buf`, waiting as long as it takes.
    /// Returns its length. A message longer than `buf` fails with
    /// [`Error::TooBig`] (its size in `size`) and stays queued.
    pub fn receive(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.receive_timeout(buf, -1)
    }

    /// [`Channel::receive`], giving up with [`Error::TimedOut`] when no
    /// message starts within `timeout_ms` (`-1` waits forever, `0` polls).
    /// A message that has started arriving is always read to its end.
    pub fn receive_timeout(&mut self, buf: &mut [u8], timeout_ms: i32) -> Result<usize> {
        #[cfg(feature = "alloc")]
        if let Some(message) = self.kept_message() {
            let len = message.len();
            let capacity = buf.len();
            let dst = buf.get_mut(..len).ok_or(Error::TooBig {
                size: len,
                capacity,
            })?;
            dst.copy_from_slice(message);
            self.unstash();
            return Ok(len);
        }
        let header = self.next_header(Deadline::after(timeout_ms))?;
        let len = header.length as usize;
        let capacity = buf.len();
        let dst = buf.get_mut(..len).ok_or(Error::TooBig {
            size: len,
            capacity,
        })?;
        self.take_payload(dst)?;
        Ok(len)
    }

    /// Receives a fixed-layout value sent with [`Channel::send_value`].
    /// A message of another size fails with [`Error::WrongSize`] and stays queued.
    pub fn receive_value<T: Pod>(&mut self) -> Result<T> {
        let mut value = T::zeroed();
        let expected = core::mem::size_of::<T>();
        #[cfg(feature = "alloc")]
        let queued = self.kept_message().map(<[u8]>::len);
        #[cfg(not(feature = "alloc"))]
        let queued = None;
        let actual = match queued {
            Some(len) => len,
            None => self.next_header(Deadline::after(-1))?.length as usize,
        };
        if actual != expected {
            return Err(Error::WrongSize { expected, actual });
        }
        self.receive(bytemuck::bytes_of_mut(&mut value))?;
        Ok(value)
    }

    /// Receives one message into a new vector.
    #[cfg(feature = "alloc")]
    pub fn receive_vec(&mut self) -> Result<Vec<u8>> {
        self.receive_vec_timeout(-1)
    }

    /// [`Channel::receive_vec`] with a timeout, as in [`Channel::receive_timeout`].
    #[cfg(feature = "alloc")]
    pub fn receive_vec_timeout(&mut self, timeout_ms: i32) -> Result<Vec<u8>> {
        if let Some(message) = self.unstash() {
            return Ok(message);
        }
        let header = self.next_header(Deadline::after(timeout_ms))?;
        self.take_vec(header)
    }

    /// Receives one message into a buffer that `make` allocates for its
    /// length (timeout as in [`Channel::receive_timeout`]). When `make`
    /// fails (out of memory), so does this, and the message stays queued.
    #[cfg(feature = "capi")]
    pub(crate) fn receive_into<B: AsMut<[u8]>>(
        &mut self,
        timeout_ms: i32,
        make: impl FnOnce(usize) -> Result<B>,
    ) -> Result<B> {
        if let Some(message) = self.kept_message() {
            let mut buf = make(message.len())?;
            buf.as_mut().copy_from_slice(message);
            self.unstash();
            return Ok(buf);
        }
        let header = self.next_header(Deadline::after(timeout_ms))?;
        let mut buf = make(header.length as usize)?;
        self.take_payload(buf.as_mut())?;
        Ok(buf)
    }

    /// Waits until a message (or the end of the channel) can be received
    /// without blocking, or `timeout_ms` passes. Returns whether it can.
    pub fn wait_readable(&self, timeout_ms: i32) -> Result<bool> {
        let deadline = Deadline::after(timeout_ms);
        loop {
            if self.has_buffered() || self.is_ended() {
                return Ok(true);
            }
            // A reused worker's creator may have to look at its ring again
            // before the deadline (see `Socket::nap`).
            let remaining = deadline.remaining_ms();
            let Some(nap) = self.socket.nap(remaining) else {
                return Ok(true);
            };
            if self.socket.wait_readable(nap)? {
                return Ok(true);
            }
            if nap == remaining || deadline.expired() {
                return Ok(false);
            }
        }
    }

    /// The header of the next data or args message, read if need be. Acks,
    /// error frames and stop frames are handled on the way.
    pub(crate) fn next_header(&mut self, deadline: Deadline) -> Result<Header> {
        loop {
            if let Frame::Message(header) = self.next_frame(deadline)? {
                return Ok(header);
            }
        }
    }

    /// A message kept by [`Channel::send_acked`], as the frame
    /// [`Channel::next_frame`] would have given for it: it is received first
    /// (every receive takes it from the stash).
    #[cfg(feature = "alloc")]
    #[inline]
    pub(crate) fn stashed_frame(&self) -> Option<Frame> {
        let (header, _) = self.conn.held_message()?;
        Some(Frame::Message(header))
    }

    /// The oldest kept message a receive takes (in a reused worker, one
    /// for its task: see `worker`).
    #[cfg(feature = "alloc")]
    fn kept_message(&self) -> Option<&[u8]> {
        self.conn.held_message().map(|(_, message)| message)
    }

    /// Takes the oldest kept message a receive takes and acknowledges it
    /// now that the program has it, if that is still due.
    #[cfg(feature = "alloc")]
    fn unstash(&mut self) -> Option<Vec<u8>> {
        let (message, acked) = self.conn.take_held()?;
        if acked {
            self.write_ack();
        }
        Some(message)
    }

    /// Reads one frame: a data or args message (left pending for
    /// [`Channel::take_payload`]), an acknowledgement or a task-end marker.
    pub(crate) fn next_frame(&mut self, deadline: Deadline) -> Result<Frame> {
        if let Some(header) = self.conn.decoder().pending() {
            return Ok(Frame::Message(header));
        }
        if let Some(e) = self.conn.end_error() {
            return Err(e);
        }
        #[cfg(feature = "alloc")]
        if self.conn.running().is_some() {
            return self.next_task_frame(deadline);
        }
        self.read_frame(deadline)
    }

    /// Reads one frame from the socket (see [`Channel::next_frame`]).
    #[inline]
    fn read_frame(&mut self, deadline: Deadline) -> Result<Frame> {
        let event = match self.read_event(deadline) {
            Ok(event) => event,
            Err(e) => return Err(self.end_on(e)),
        };
        match event {
            Event::Ack(_) => Ok(Frame::Ack),
            Event::Message(header) => Ok(Frame::Message(header)),
            Event::TaskEnd(_) => Ok(Frame::TaskEnd),
            Event::Remote(header) => {
                self.acknowledge(header);
                let code = self.conn.remote_error().map_or(0, RemoteError::code);
                Err(Error::Remote { code })
            }
            // The connection records the end: no more tasks.
            Event::Stop => Err(self.end_on(Error::Closed)),
            Event::End(header) => {
                // At once, even when acknowledgements are held back: the
                // stream ends only after every frame before it was
                // acknowledged, so this one covers nothing held.
                if header.flags & FLAG_ACK_REQUESTED != 0 {
                    self.send_ack(header.seq);
                }
                Err(self.end_on(Error::Closed))
            }
            // `read_event` reads until there is an event.
            Event::More => Err(Error::TimedOut),
        }
    }

    /// Reads the payload of the pending message into `dst` (exactly its
    /// length) and acknowledges it if the sender asked.
    pub(crate) fn take_payload(&mut self, dst: &mut [u8]) -> Result<()> {
        let Some(header) = self.conn.decoder().pending() else {
            return Err(Error::Invalid);
        };
        debug_assert_eq!(dst.len(), header.length as usize);
        self.read_payload(dst)?;
        self.took(header);
        Ok(())
    }

    /// The pending message (`header`) was taken: acknowledges it if asked,
    /// and the connection records its mark and (on a creator's side) sends
    /// replies to its task.
    #[inline]
    fn took(&mut self, header: Header) {
        self.conn.took(header, false);
        self.acknowledge(header);
    }

    /// Reads until the connection has the next event (a frame: see
    /// [`Conn::poll`]). An error frame's header
    /// is taken only once its (small) payload is buffered too, so that a
    /// read with a deadline, a zero-timeout one above all, never blocks in
    /// the middle of one: a peer that stalls after an error frame's header
    /// holds nobody up, and its bytes stay buffered until the rest arrives.
    /// (A data or args message that has started arriving is read to its end.)
    fn read_event(&mut self, deadline: Deadline) -> Result<Event> {
        loop {
            match self.conn.poll()? {
                Event::More => {}
                event => return Ok(event),
            }
            // No time left: take what is queued without a `poll` first.
            let remaining = deadline.remaining_ms();
            if remaining != 0 {
                self.send_held()?;
            }
            if remaining > 0 {
                // A reused worker's creator may sleep less than the time
                // left, then read its ring (see `Socket::nap`).
                let nap = self.socket.nap(remaining);
                let woken = match nap {
                    Some(nap) => self.socket.wait_readable(nap)?,
                    None => true,
                };
                if !woken && nap == Some(remaining) {
                    return Err(Error::TimedOut);
                }
            }
            // After a poll, a read that does not wait: the bytes the poll
            // saw may all be a reused worker's wake-ups (skipped), and a
            // waiting read would then outlast the deadline.
            match self.fill(remaining < 0) {
                Err(Errno::AGAIN) if remaining > 0 => continue,
                Err(Errno::AGAIN) => return Err(Error::TimedOut),
                Ok(0) | Err(Errno::CONNRESET) if !self.conn.decoder().buffered().is_empty() => {
                    return Err(self.cut_short())
                }
                Ok(0) | Err(Errno::CONNRESET) => return Err(self.peer_gone()),
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// One read from the socket into the decoder; `Ok(0)` at end of stream.
    /// With `block == false` it takes only what is already queued
    /// ([`Errno::AGAIN`] when nothing is).
    fn fill(&mut self, block: bool) -> sys::Result<usize> {
        let n = self.socket.read(self.conn.spare(), block)?;
        self.conn.filled(n);
        Ok(n)
    }

    /// Fills `dst` with the pending payload: what the decoder holds, then
    /// the rest from the socket.
    fn read_payload(&mut self, dst: &mut [u8]) -> Result<()> {
        let mut done = self.conn.payload_into(dst);
        if done == dst.len() {
            return Ok(());
        }
        self.send_held()?;
        // A payload that fits the read-ahead buffer is read through it: the
        // read that completes it brings the frames behind it too, where a
        // read of just its rest would cost a system call per buffer refill.
        if dst.len() <= READ_AHEAD {
            self.conn.decoder_mut().reserve(dst.len() - done);
            while done < dst.len() {
                match self.fill(true) {
                    Ok(0) | Err(Errno::CONNRESET) => return Err(self.cut_short_here()),
                    Ok(_) => done += self.conn.payload_into(&mut dst[done..]),
                    Err(e) => return Err(e.into()),
                }
            }
            return Ok(());
        }
        while done < dst.len() {
            match self.socket.read(&mut dst[done..], true) {
                Ok(0) | Err(Errno::CONNRESET) => return Err(self.cut_short_here()),
                Ok(n) => done += n,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The stream ended in the middle of a frame: the error, recorded as
    /// the channel's end.
    fn cut_short_here(&mut self) -> Error {
        let why = self.cut_short();
        self.end_on(why)
    }

    /// Records `e` as the channel's end when it is final (end of stream, a
    /// malformed frame); timeouts and OS errors pass through unrecorded.
    fn end_on(&mut self, e: Error) -> Error {
        if matches!(
            e,
            Error::Closed | Error::PeerEnded { .. } | Error::StreamBroken | Error::Protocol(_)
        ) {
            self.conn.end(e);
        }
        e
    }

    /// The peer hung up: [`Error::StreamBroken`] on a persistent stream (which ends
    /// with an end frame, not a hang-up), [`Error::PeerEnded`] when the
    /// created process ended abnormally without sending an error frame
    /// first, [`Error::Closed`] otherwise.
    fn peer_gone(&mut self) -> Error {
        if self.conn.ends_with_end_frame() {
            return Error::StreamBroken;
        }
        hang_up(self.process.as_mut(), self.conn.remote_error().is_some())
    }

    /// The peer hung up in the middle of a frame: [`Error::PeerEnded`] when
    /// the created process was killed or failed (it died mid-send, as when it
    /// dies between frames), a truncated-frame protocol error otherwise.
    fn cut_short(&mut self) -> Error {
        match self.conn.ends_with_end_frame() {
            true => Error::Protocol(ProtoError::Truncated),
            false => cut_short(self.process.as_mut(), self.conn.remote_error().is_some()),
        }
    }

    /// Why the channel ended, once it has.
    pub(crate) fn end_error(&self) -> Option<Error> {
        self.conn.end_error()
    }

    /// True while a message's header is read but its payload is not.
    pub(crate) fn has_pending(&self) -> bool {
        self.conn.decoder().pending().is_some()
    }

    /// True once the channel has ended (end of stream or a malformed frame).
    pub fn is_ended(&self) -> bool {
        self.conn.end_error().is_some()
    }

    /// Sends an args frame: task `task` for a reused worker.
    #[cfg(feature = "alloc")]
    pub(crate) fn send_args(&mut self, task: u64, args: &[u8]) -> Result<()> {
        self.send_frame_for(task, Kind::Args, 0, args).map(drop)
    }

    /// Sends one batch frame: `count` tasks (tag, arguments) for a reused
    /// worker, in the order it runs them, `len` payload bytes in all
    /// ([`batch_len`](crate::wire::batch_len)), built in place: no copy of
    /// the arguments but the socket's. [`Error::TooBig`] over the maximum
    /// message size.
    #[cfg(feature = "alloc")]
    pub(crate) fn send_batch<'a, I>(&mut self, count: u32, len: usize, tasks: I) -> Result<()>
    where
        I: Iterator<Item = (u64, &'a [u8])> + Clone,
    {
        // What is held goes first; the batch is written after it.
        self.conn.send_batch(count, len, tasks)?;
        if self.socket.outbox {
            self.poll_flush().map(drop)
        } else {
            self.send_held()
        }
    }

    /// The socket and the created process, for a driver of its own (the
    /// keeper drives its callable's stream without blocking).
    #[cfg(feature = "alloc")]
    pub(crate) fn into_parts(self) -> (Fd, Option<OwnedChild>) {
        (self.socket.fd, self.process)
    }

    /// The created process, for the calls on it: [`Error::Invalid`] on a
    /// channel of no process this side created.
    fn process(&mut self) -> Result<&mut OwnedChild> {
        self.process.as_mut().ok_or(Error::Invalid)
    }

    /// Waits for the created process to end and returns its status
    /// (collected at most once; later calls return the same status).
    /// [`Error::Invalid`] on a channel of no process this side created (a
    /// [`Channel::pair`], or the created side).
    pub fn wait(&mut self) -> Result<WaitStatus> {
        let status = self.process()?.wait(true)?;
        status.ok_or(Error::from(Errno::CHILD))
    }

    /// [`Channel::wait`] for at most `timeout_ms` milliseconds (`-1`:
    /// forever, `0`: just look): [`Error::TimedOut`] if the process is still
    /// running then.
    pub fn wait_timeout(&mut self, timeout_ms: i32) -> Result<WaitStatus> {
        let status = self.process()?.wait_timeout(timeout_ms)?;
        status.ok_or(Error::TimedOut)
    }

    /// Hands the collection of the created process to the caller: the
    /// channel forgets it (its drop no longer defers it) and returns it,
    /// unless it was collected already.
    pub(crate) fn disown(&mut self) -> Option<Child> {
        self.process.as_mut().and_then(OwnedChild::disown)
    }

    /// Kills the created process if it still runs and collects it: for a
    /// peer that broke the protocol, or one left running when its owner
    /// goes. Its status is kept; a process that is gone already (collected
    /// by the program itself) is no error.
    pub(crate) fn kill_and_collect(&mut self) -> Result<()> {
        match &mut self.process {
            Some(process) => Ok(process.kill_and_collect()?),
            None => Ok(()),
        }
    }

    /// The created process's status if it has ended, without waiting;
    /// `None` while it runs, and on a channel of no process this side created.
    pub fn try_wait(&mut self) -> Result<Option<WaitStatus>> {
        match &mut self.process {
            Some(process) => Ok(process.wait(false)?),
            None => Ok(None),
        }
    }

    /// Closes the channel. A created process that is still running is
    /// collected later (by the next create, or [`waitall`](crate::waitall)).
    pub fn close(self) {}

    /// Sends an acknowledgement of a received frame if its sender asked for
    /// one (data, args and error frames alike), unless the connection's
    /// stream policy holds it back.
    fn acknowledge(&mut self, header: Header) {
        if self.conn.ack_taken(header) {
            self.write_ack();
        }
    }

    /// Sends an acknowledgement of frame `seq` (queued by the connection,
    /// then written as any frame is).
    fn send_ack(&mut self, seq: u32) {
        // Room was made by the last write: nothing is held but in an outbox.
        if self.conn.ack(seq).is_ok() {
            self.write_ack();
        }
    }

    /// Writes an acknowledgement the connection just queued. The peer may
    /// already be gone; the frame itself was received, and a failed write
    /// shows again at the next send or receive.
    fn write_ack(&mut self) {
        #[cfg(feature = "alloc")]
        if self.socket.outbox {
            best_effort(self.poll_flush());
            return;
        }
        best_effort(self.send_held());
    }

    /// From now on `policy` decides how the stream ends and when the frames
    /// taken are acknowledged (see [`StreamPolicy`]).
    #[cfg(feature = "alloc")]
    pub(crate) fn set_policy(&mut self, policy: alloc::boxed::Box<dyn StreamPolicy>) {
        self.conn.set_policy(policy);
    }

    /// True when a policy decides when what is taken is acknowledged (a
    /// persistent connection's): only then may taking a result send an
    /// acknowledgement.
    #[cfg(feature = "alloc")]
    pub(crate) fn has_policy(&self) -> bool {
        self.conn.has_policy()
    }

    /// Monitored by an exchange as task `task` whose store keeps results
    /// (`keeps`): see [`StreamPolicy::monitored`]. False for a plain
    /// channel.
    #[cfg(feature = "alloc")]
    pub(crate) fn monitored(&mut self, task: usize, keeps: bool) -> bool {
        self.conn.monitored(task, keeps)
    }

    /// The program took `count` results of task `task`: acknowledges them
    /// if they were held back.
    #[cfg(feature = "alloc")]
    pub(crate) fn results_taken(&mut self, task: usize, count: usize) {
        if self.conn.results_taken(task, count) {
            self.write_ack();
        }
    }

    /// Acknowledges everything held back; with `stop`, holds nothing more.
    #[cfg(feature = "alloc")]
    pub(crate) fn release_receipts(&mut self, stop: bool) {
        if self.conn.release_receipts(stop) {
            self.write_ack();
        }
    }

    /// Monitored by an exchange (or not): the connection records what is
    /// taken as marks for it.
    pub(crate) fn set_marking(&mut self, on: bool) {
        self.conn.set_marking(on);
    }

    /// The oldest mark not yet collected.
    #[inline]
    pub(crate) fn take_mark(&mut self) -> Option<Mark> {
        self.conn.take_mark()
    }

    /// On a creator's side: what is sent from now on goes to task `task`.
    pub(crate) fn reply_to(&mut self, task: u64) {
        self.conn.reply_to(task);
    }

    /// Sends an error frame with `flags`; returns its frame number.
    pub(crate) fn send_error_frame(&mut self, error: &RemoteError, flags: u16) -> Result<u32> {
        let mut payload = [0u8; MAX_ERROR_PAYLOAD];
        let len = error_payload(error, &mut payload);
        self.send_frame(Kind::Error, flags, &payload[..len])
    }
}

/// The peer of a stream to `process` (if this side created one) hung up:
/// [`Error::PeerEnded`] when the process ended abnormally without sending
/// an error frame first (`answered`), [`Error::Closed`] otherwise. Waits up
/// to [`EXIT_GRACE_MS`] for the process to become waitable: the kernel
/// closes a dying process's descriptors just before its status can be
/// collected.
pub(crate) fn hang_up(process: Option<&mut OwnedChild>, answered: bool) -> Error {
    let Some(process) = process else {
        return Error::Closed;
    };
    // Wakes the moment the process becomes waitable (a pidfd poll). An
    // error leaves the status unknown: the hang-up is then news enough
    // (`Closed`).
    let status = process.wait_timeout(EXIT_GRACE_MS).ok().flatten();
    // After an error frame the process has answered: its exit code (the
    // callable's failure status) is no further news. A signal is.
    match status {
        Some(status) if status.signal().is_some() || (!status.success() && !answered) => {
            Error::PeerEnded {
                pid: process.pid(),
                status,
            }
        }
        _ => Error::Closed,
    }
}

/// The peer of a stream to `process` hung up in the middle of a frame:
/// [`Error::PeerEnded`] when the process was killed or failed (see
/// [`hang_up`]), a truncated-frame protocol error otherwise.
pub(crate) fn cut_short(process: Option<&mut OwnedChild>, answered: bool) -> Error {
    match hang_up(process, answered) {
        ended @ Error::PeerEnded { .. } => ended,
        _ => Error::Protocol(ProtoError::Truncated),
    }
}

/// A zeroed vector of `len` bytes, or `ENOMEM` ([`Error::Os`]) when the
/// allocation fails (instead of the abort of `vec!`).
#[cfg(feature = "alloc")]
pub(crate) fn try_vec(len: usize) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(len)?;
    bytes.resize(len, 0);
    Ok(bytes)
}

/// A copy of `bytes`, or `ENOMEM` ([`Error::Os`]) when the allocation
/// fails (instead of the abort of `to_vec`).
#[cfg(feature = "alloc")]
pub(crate) fn try_copy(bytes: &[u8]) -> Result<Vec<u8>> {
    sys::try_copy(bytes).ok_or(Error::from(Errno::NOMEM))
}

// A stream policy does not change what a channel may do across threads.
const _: fn() = || {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Channel>();
};

/// The channel's socket, for the caller's own poll or epoll loop; it stays
/// owned by the channel.
///
/// ```
/// use std::os::fd::{AsFd, AsRawFd};
///
/// let (a, _b) = pprocess::Channel::pair()?;
/// assert_eq!(a.as_fd().as_raw_fd(), a.as_raw_fd());
/// # Ok::<(), pprocess::Error>(())
/// ```
#[cfg(feature = "std")]
impl std::os::fd::AsFd for Channel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.socket.fd.borrow()
    }
}

/// The channel's socket descriptor (see [`AsFd`](std::os::fd::AsFd)).
#[cfg(feature = "std")]
impl std::os::fd::AsRawFd for Channel {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.socket.fd.raw()
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;
    use crate::wire::HEADER_LEN;

    fn frame(seq: u32, payload: &[u8]) -> Vec<u8> {
        let header = Header::new(Kind::Data, 0, payload.len() as u32, seq);
        let mut bytes = header.encode().to_vec();
        bytes.extend_from_slice(payload);
        bytes
    }

    /// A small payload that arrived in part is completed by a read through
    /// the read-ahead buffer, which brings the frame behind it too: one
    /// read, where reading just the payload's rest would leave that frame
    /// for another.
    #[test]
    fn a_small_payload_is_completed_through_the_read_ahead_buffer() {
        let (sender, mut receiver) = Channel::pair().unwrap();
        let (first, second) = (frame(1, &[1; 64]), frame(2, &[2; 64]));
        let (head, rest) = first.split_at(HEADER_LEN + 10);
        sys::send_vectored(&sender.socket.fd, &[head]).unwrap();
        let Ok(Frame::Message(header)) = receiver.next_frame(Deadline::after(0)) else {
            panic!("no header");
        };
        assert_eq!(header.length, 64);
        // Its rest has not arrived: not buffered, and no wait for it.
        assert!(!receiver.buffer_payload().unwrap());
        sys::send_vectored(&sender.socket.fd, &[rest, &second]).unwrap();
        assert!(receiver.buffer_payload().unwrap());
        let buffered = receiver.conn.decoder().buffered().len();
        assert_eq!(buffered, 64 + second.len(), "the next frame came with it");
        let mut buf = [0; 64];
        assert_eq!(receiver.receive(&mut buf), Ok(64));
        assert_eq!(buf, [1; 64]);
        assert_eq!(receiver.receive(&mut buf), Ok(64));
        assert_eq!(buf, [2; 64]);
    }
}
