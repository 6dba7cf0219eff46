//! A channel: one end of a connected socket speaking the [`wire`](mod@crate::wire)
//! format, usually between a creator and a created process.
//!
//! Sends are synchronous writes into the kernel's socket buffer, so a frame
//! sent just before a process exits is still delivered. Receives read ahead
//! into a small buffer (one system call per small message) and never lose a
//! message: a buffer that is too small leaves it queued for the next call.

#[cfg(feature = "alloc")]
use alloc::{collections::VecDeque, vec::Vec};
use core::fmt;

use bytemuck::Pod;

use crate::error::{best_effort, Error, RemoteError, Result};
use crate::sys::{self, Child, Deadline, Errno, Fd, Pid, PollFd, WaitStatus, POLLIN};
use crate::wire::{
    self, Header, Kind, ProtoError, DEFAULT_MAX_MESSAGE, FLAG_ACK_REQUESTED, FLAG_END, HEADER_LEN,
    MAX_ERROR_PAYLOAD, MAX_MESSAGE_LIMIT,
};

/// Most bytes a corked channel holds back before writing them anyway.
#[cfg(feature = "alloc")]
const CORK_LIMIT: usize = 64 * 1024;

/// Bytes read ahead per system call; small frames arrive in one `read`.
const READ_AHEAD: usize = 1024;

// An error frame is read only once it is buffered whole (`read_header`).
const _: () = assert!(READ_AHEAD >= HEADER_LEN + MAX_ERROR_PAYLOAD);

/// How long a receive that saw the peer hang up waits for the peer process to
/// become waitable: the kernel closes a dying process's descriptors just
/// before its exit status can be collected.
const EXIT_GRACE_MS: i32 = 200;

/// Bytes read from the socket but not yet consumed.
struct ReadBuf {
    bytes: [u8; READ_AHEAD],
    start: usize,
    end: usize,
}

impl ReadBuf {
    fn new() -> ReadBuf {
        ReadBuf {
            bytes: [0; READ_AHEAD],
            start: 0,
            end: 0,
        }
    }

    fn available(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Moves the unread bytes to the front when fewer than `n` more fit
    /// behind them.
    fn make_room(&mut self, n: usize) {
        if self.start > 0 && READ_AHEAD - self.start < n {
            self.bytes.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// One read from `fd` into the free space; `Ok(0)` at end of stream.
    /// With `block == false` it takes only what is already queued
    /// ([`Errno::AGAIN`] when nothing is).
    fn fill(&mut self, fd: &Fd, block: bool) -> sys::Result<usize> {
        if self.end == READ_AHEAD {
            self.bytes.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let free = &mut self.bytes[self.end..];
        let n = if block {
            sys::read(fd, free)?
        } else {
            sys::read_now(fd, free)?
        };
        self.end += n;
        Ok(n)
    }
}

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
pub struct Channel {
    fd: Fd,
    /// The created process, seen from its creator.
    child: Option<Child>,
    /// The created process's status, once collected.
    status: Option<WaitStatus>,
    max_message: usize,
    next_seq: u32,
    /// The highest frame number the peer acknowledged.
    acked: u32,
    rbuf: ReadBuf,
    /// A message whose header was read but whose payload was not.
    pending: Option<Header>,
    /// Why the channel ended (end of stream or a malformed frame); sticky.
    ended: Option<Error>,
    remote: Option<RemoteError>,
    /// Mark the next data frame sent as the last result of a task.
    end_next_send: bool,
    /// A persistent stream: it ends with an end frame, and a bare end of
    /// stream is [`Error::Cut`].
    expects_end: bool,
    /// Messages that arrived while `send_acked` waited for its ack.
    #[cfg(feature = "alloc")]
    stash: VecDeque<Vec<u8>>,
    /// Frames held back by [`Channel::cork`] until [`Channel::flush`].
    #[cfg(feature = "alloc")]
    held: Vec<u8>,
    #[cfg(feature = "alloc")]
    corked: bool,
    /// Corked by [`Channel::cork_answers`]: only a task's last frame (end
    /// mark or error) is held; any other frame writes what is held first.
    #[cfg(feature = "alloc")]
    answers_only: bool,
    /// Hold acknowledgements back until [`Channel::ack_deferred`] instead of
    /// sending them as frames are received.
    #[cfg(feature = "alloc")]
    defer_acks: bool,
    /// Frame numbers received with an acknowledgement requested whose
    /// acknowledgement is held back, oldest first.
    #[cfg(feature = "alloc")]
    deferred: VecDeque<u32>,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("fd", &self.fd.raw())
            .field("pid", &self.pid())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Channel {
    /// A channel over a connected stream socket; `child` is the peer
    /// process this side created, if any.
    pub(crate) fn from_fd(fd: Fd, child: Option<Child>) -> Channel {
        Channel {
            fd,
            child,
            status: None,
            max_message: DEFAULT_MAX_MESSAGE,
            next_seq: 1,
            acked: 0,
            rbuf: ReadBuf::new(),
            pending: None,
            ended: None,
            remote: None,
            end_next_send: false,
            expects_end: false,
            #[cfg(feature = "alloc")]
            stash: VecDeque::new(),
            #[cfg(feature = "alloc")]
            held: Vec::new(),
            #[cfg(feature = "alloc")]
            corked: false,
            #[cfg(feature = "alloc")]
            answers_only: false,
            #[cfg(feature = "alloc")]
            defer_acks: false,
            #[cfg(feature = "alloc")]
            deferred: VecDeque::new(),
        }
    }

    /// A connected pair of channels in this process (no process is created):
    /// what one end sends, the other receives. Useful to hand one end to a
    /// process created later, to test a protocol, or to drive a channel from
    /// your own event loop.
    pub fn pair() -> Result<(Channel, Channel)> {
        let (a, b) = sys::socketpair()?;
        Ok((Channel::from_fd(a, None), Channel::from_fd(b, None)))
    }

    /// Makes this a persistent stream's client end: the stream ends with an
    /// end frame, and one that stops without it was cut off
    /// ([`Error::Cut`]).
    #[cfg(feature = "alloc")]
    pub(crate) fn expect_end(&mut self) {
        self.expects_end = true;
    }

    /// True for a persistent stream's client end (see
    /// [`Channel::expect_end`]).
    pub(crate) fn is_persistent(&self) -> bool {
        self.expects_end
    }

    /// The created process's id, seen from its creator; 0 on the created side.
    pub fn pid(&self) -> Pid {
        self.child.as_ref().map_or(0, Child::pid)
    }

    /// The socket descriptor, for the caller's own poll or epoll loop.
    /// It stays owned by the channel.
    pub fn raw_fd(&self) -> i32 {
        self.fd.raw()
    }

    pub(crate) fn fd(&self) -> &Fd {
        &self.fd
    }

    /// The pidfd of the created process, if it has one: a descriptor this
    /// channel owns besides its socket.
    #[cfg(feature = "alloc")]
    pub(crate) fn child_fd(&self) -> Option<&Fd> {
        self.child.as_ref().and_then(Child::pidfd)
    }

    /// The largest message this side sends or accepts, in bytes.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// Sets the largest message this side sends or accepts (1 byte to 4 GiB - 1).
    pub fn set_max_message(&mut self, max: usize) -> Result<()> {
        if max == 0 || max > MAX_MESSAGE_LIMIT {
            return Err(Error::Invalid);
        }
        self.max_message = max;
        Ok(())
    }

    /// The code and message of the last error frame received.
    pub fn remote_error(&self) -> Option<&RemoteError> {
        self.remote.as_ref()
    }

    /// Holds the frames sent from now on (up to [`CORK_LIMIT`] bytes) until
    /// [`Channel::flush`] writes them with one system call.
    #[cfg(feature = "alloc")]
    pub(crate) fn cork(&mut self) {
        self.corked = true;
        self.answers_only = false;
    }

    /// A reused worker's [`Channel::cork`]: holds back only the frames that
    /// end a task (end-marked message, task end, error). A message sent in
    /// the middle of a task is written at once, with what is held before it,
    /// so that streamed results and request/reply exchanges are not delayed.
    #[cfg(feature = "alloc")]
    pub(crate) fn cork_answers(&mut self) {
        self.corked = true;
        self.answers_only = true;
    }

    /// Writes the frames held back, if any, and goes on holding new ones
    /// back if it did: a read that has to wait for the peer sends them
    /// first, so a corked channel never waits for an answer to what it holds.
    fn send_held(&mut self) -> Result<()> {
        #[cfg(feature = "alloc")]
        if !self.held.is_empty() {
            let corked = self.corked;
            self.flush()?;
            self.corked = corked;
        }
        Ok(())
    }

    /// Writes the frames held back and stops holding them.
    #[cfg(feature = "alloc")]
    pub(crate) fn flush(&mut self) -> Result<()> {
        self.corked = false;
        if self.held.is_empty() {
            return Ok(());
        }
        let held = core::mem::take(&mut self.held);
        let sent = self.write_all(&[&held]);
        self.held = held; // keep the allocation for the next batch
        self.held.clear();
        sent
    }

    /// True when a message can be taken without reading the socket.
    pub fn has_buffered(&self) -> bool {
        #[cfg(feature = "alloc")]
        if !self.stash.is_empty() {
            return true;
        }
        self.pending.is_some() || self.frame_buffered()
    }

    /// True when the read-ahead buffer holds the next frame's header and,
    /// for an error frame, its payload too (an error frame is taken whole:
    /// see [`Channel::read_header`]). A malformed header counts: reading it
    /// reports the error.
    fn frame_buffered(&self) -> bool {
        let available = self.rbuf.available();
        let Some(bytes) = available.first_chunk::<HEADER_LEN>() else {
            return false;
        };
        match Header::decode(bytes, self.max_message) {
            Ok(header) => header.kind != Kind::Error || available.len() >= whole_len(header),
            Err(_) => true,
        }
    }

    /// Sends `data` as one message.
    pub fn send(&mut self, data: &[u8]) -> Result<()> {
        let flags = if self.end_next_send { FLAG_END } else { 0 };
        self.send_frame(Kind::Data, flags, data)?;
        self.end_next_send = false;
        Ok(())
    }

    /// In a reused worker: flag the next message sent as the task's result
    /// and last message; returns whether the previous request was still open.
    #[cfg(feature = "alloc")]
    pub(crate) fn set_end_next_send(&mut self, on: bool) -> bool {
        core::mem::replace(&mut self.end_next_send, on)
    }

    /// In a reused worker: tells the exchange the current task is finished.
    #[cfg(feature = "alloc")]
    pub(crate) fn send_task_end(&mut self) -> Result<()> {
        self.send_frame(Kind::Stop, FLAG_END, &[]).map(drop)
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
    /// `alloc` feature: one call, one meaning, in every feature set).
    #[cfg(feature = "alloc")]
    pub fn send_acked(&mut self, data: &[u8]) -> Result<()> {
        let seq = self.send_frame(Kind::Data, FLAG_ACK_REQUESTED, data)?;
        while (self.acked.wrapping_sub(seq) as i32) < 0 {
            let Frame::Message(header) = self.next_frame(Deadline::after(-1))? else {
                continue; // an acknowledgement: check it
            };
            let mut message = try_vec(header.length as usize)?;
            self.take_payload(&mut message)?;
            self.stash
                .try_reserve(1)
                .map_err(|_| Error::from(Errno::NOMEM))?;
            self.stash.push_back(message);
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
        if matches!(kind, Kind::Data | Kind::Args) && payload.len() > self.max_message {
            return Err(Error::TooBig {
                size: payload.len(),
                capacity: self.max_message,
            });
        }
        let seq = self.next_seq;
        self.write_frame(Header::new(kind, flags, payload.len() as u32, seq), payload)?;
        self.next_seq = seq.wrapping_add(1);
        Ok(seq)
    }

    /// Writes one frame as given.
    fn write_frame(&mut self, header: Header, payload: &[u8]) -> Result<()> {
        #[cfg(feature = "alloc")]
        if self.corked {
            let ends_task = header.flags & FLAG_END != 0 || header.kind == Kind::Error;
            let hold = !self.answers_only || ends_task;
            if hold && self.held.len() + HEADER_LEN + payload.len() <= CORK_LIMIT {
                self.held.extend_from_slice(&header.encode());
                self.held.extend_from_slice(payload);
                return Ok(());
            }
            self.flush()?;
            self.corked = true;
        }
        self.write_all(&[&header.encode(), payload])
    }

    /// Writes `parts` in order; a closed peer becomes how it ended.
    fn write_all(&mut self, parts: &[&[u8]]) -> Result<()> {
        match sys::send_vectored(&self.fd, parts) {
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
        if let Some(message) = self.stash.front() {
            let len = message.len();
            let capacity = buf.len();
            let dst = buf.get_mut(..len).ok_or(Error::TooBig {
                size: len,
                capacity,
            })?;
            dst.copy_from_slice(message);
            self.stash.pop_front();
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
        let queued = self.stash.front().map(|m| m.len());
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
        if let Some(message) = self.stash.pop_front() {
            return Ok(message);
        }
        // The length was checked against max_message before this
        // allocation; one that fails leaves the message queued.
        self.receive_into(timeout_ms, try_vec)
    }

    /// Receives one message into a buffer that `make` allocates for its
    /// length (timeout as in [`Channel::receive_timeout`]). When `make`
    /// fails (out of memory), so does this, and the message stays queued.
    #[cfg(feature = "alloc")]
    pub(crate) fn receive_into<B: AsMut<[u8]>>(
        &mut self,
        timeout_ms: i32,
        make: impl FnOnce(usize) -> Result<B>,
    ) -> Result<B> {
        if let Some(message) = self.stash.front() {
            let mut buf = make(message.len())?;
            buf.as_mut().copy_from_slice(message);
            self.stash.pop_front();
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
        if self.has_buffered() || self.ended.is_some() {
            return Ok(true);
        }
        let mut fds = [PollFd::new(&self.fd, POLLIN)];
        Ok(sys::poll(&mut fds, timeout_ms)? > 0)
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
    pub(crate) fn stashed_frame(&self) -> Option<Frame> {
        let message = self.stash.front()?;
        Some(Frame::Message(Header::new(
            Kind::Data,
            0,
            message.len() as u32,
            0,
        )))
    }

    /// Reads one frame: a data or args message (left pending for
    /// [`Channel::take_payload`]), an acknowledgement or a task-end marker.
    pub(crate) fn next_frame(&mut self, deadline: Deadline) -> Result<Frame> {
        if let Some(header) = self.pending {
            return Ok(Frame::Message(header));
        }
        if let Some(e) = self.ended {
            return Err(e);
        }
        let header = match self.read_header(deadline) {
            Ok(header) => header,
            Err(e) => return Err(self.end_on(e)),
        };
        match header.kind {
            Kind::Ack => {
                self.acked = header.seq;
                Ok(Frame::Ack)
            }
            Kind::Data | Kind::Args => {
                self.pending = Some(header);
                Ok(Frame::Message(header))
            }
            Kind::Stop if header.flags & FLAG_END != 0 => Ok(Frame::TaskEnd),
            Kind::Error => {
                let mut payload = [0u8; MAX_ERROR_PAYLOAD];
                let payload = &mut payload[..header.length as usize];
                self.read_payload(payload)?;
                let (code, message) = match wire::decode_error(payload) {
                    Ok(parts) => parts,
                    Err(e) => return Err(self.end_on(Error::Protocol(e))),
                };
                self.remote = Some(RemoteError::new(code, message));
                self.acknowledge(header);
                Err(Error::Remote { code })
            }
            Kind::Stop => Err(self.end_on(Error::Closed)),
            Kind::End => {
                // At once, even when acknowledgements are held back: the
                // stream ends only after every frame before it was
                // acknowledged, so this one covers nothing held.
                if header.flags & FLAG_ACK_REQUESTED != 0 {
                    self.send_ack(header.seq);
                }
                Err(self.end_on(Error::Closed))
            }
        }
    }

    /// Reads the payload of the pending message into `dst` (exactly its
    /// length) and acknowledges it if the sender asked.
    pub(crate) fn take_payload(&mut self, dst: &mut [u8]) -> Result<()> {
        let Some(header) = self.pending else {
            return Err(Error::Invalid);
        };
        debug_assert_eq!(dst.len(), header.length as usize);
        self.read_payload(dst)?;
        self.pending = None;
        self.acknowledge(header);
        Ok(())
    }

    /// Reads and validates the next frame header. An error frame's header
    /// is taken only once its (small) payload is buffered too, so that a
    /// read with a deadline, a zero-timeout one above all, never blocks in
    /// the middle of one: a peer that stalls after an error frame's header
    /// holds nobody up, and its bytes stay buffered until the rest arrives.
    /// (A data or args message that has started arriving is read to its end.)
    fn read_header(&mut self, deadline: Deadline) -> Result<Header> {
        let mut needed = HEADER_LEN;
        loop {
            self.rbuf.make_room(needed);
            while self.rbuf.available().len() < needed {
                // No time left: take what is queued without a `poll` first.
                let remaining = deadline.remaining_ms();
                if remaining != 0 {
                    self.send_held()?;
                }
                if remaining > 0 {
                    let mut fds = [PollFd::new(&self.fd, POLLIN)];
                    if sys::poll(&mut fds, remaining)? == 0 {
                        return Err(Error::TimedOut);
                    }
                }
                match self.rbuf.fill(&self.fd, remaining != 0) {
                    Err(Errno::AGAIN) => return Err(Error::TimedOut),
                    Ok(0) | Err(Errno::CONNRESET) if !self.rbuf.available().is_empty() => {
                        return Err(self.cut_short())
                    }
                    Ok(0) | Err(Errno::CONNRESET) => return Err(self.peer_gone()),
                    Ok(_) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let mut bytes = [0u8; HEADER_LEN];
            bytes.copy_from_slice(&self.rbuf.available()[..HEADER_LEN]);
            let header = Header::decode(&bytes, self.max_message).map_err(Error::Protocol)?;
            if header.kind == Kind::Error && self.rbuf.available().len() < whole_len(header) {
                // At most HEADER_LEN + MAX_ERROR_PAYLOAD bytes: it fits.
                needed = whole_len(header);
                continue;
            }
            self.rbuf.consume(HEADER_LEN);
            return Ok(header);
        }
    }

    /// Fills `dst` from the read-ahead buffer, then straight from the socket.
    fn read_payload(&mut self, dst: &mut [u8]) -> Result<()> {
        // A payload that fits the read-ahead buffer is read through it: the
        // read that completes it brings the frames behind it too, where a
        // read of just its rest would cost a system call per buffer refill.
        if dst.len() <= READ_AHEAD {
            self.rbuf.make_room(dst.len());
            while self.rbuf.available().len() < dst.len() {
                self.send_held()?;
                match self.rbuf.fill(&self.fd, true) {
                    Ok(0) | Err(Errno::CONNRESET) => {
                        let why = self.cut_short();
                        return Err(self.end_on(why));
                    }
                    Ok(_) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            dst.copy_from_slice(&self.rbuf.available()[..dst.len()]);
            self.rbuf.consume(dst.len());
            return Ok(());
        }
        let buffered = self.rbuf.available().len().min(dst.len());
        dst[..buffered].copy_from_slice(&self.rbuf.available()[..buffered]);
        self.rbuf.consume(buffered);
        self.send_held()?;
        let rest = &mut dst[buffered..];
        match sys::read_exact(&self.fd, rest) {
            Ok(n) if n == rest.len() => Ok(()),
            Ok(_) | Err(Errno::CONNRESET) => {
                let why = self.cut_short();
                Err(self.end_on(why))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Records `e` as the channel's end when it is final (end of stream, a
    /// malformed frame); timeouts and OS errors pass through unrecorded.
    fn end_on(&mut self, e: Error) -> Error {
        if matches!(
            e,
            Error::Closed | Error::PeerEnded { .. } | Error::Cut | Error::Protocol(_)
        ) {
            self.pending = None;
            self.ended = Some(e);
        }
        e
    }

    /// The peer hung up: [`Error::Cut`] on a persistent stream (which ends
    /// with an end frame, not a hang-up), [`Error::PeerEnded`] when the
    /// created process ended abnormally without sending an error frame
    /// first, [`Error::Closed`] otherwise.
    fn peer_gone(&mut self) -> Error {
        if self.expects_end {
            return Error::Cut;
        }
        if let (Some(child), None) = (&self.child, self.status) {
            // Wakes the moment the process becomes waitable (a pidfd poll).
            // An error leaves the status unknown: the hang-up is then news
            // enough (`Closed`).
            if let Ok(Some(status)) = child.wait_timeout(EXIT_GRACE_MS) {
                self.status = Some(status);
            }
        }
        // After an error frame the process has answered: its exit code
        // (the callable's failure status) is no further news. A signal is.
        let failed = match self.status {
            Some(status) if status.signal().is_some() => true,
            Some(status) => !status.success() && self.remote.is_none(),
            None => false,
        };
        match self.status {
            Some(status) if failed => Error::PeerEnded {
                pid: self.pid(),
                status,
            },
            _ => Error::Closed,
        }
    }

    /// The peer hung up in the middle of a frame: [`Error::PeerEnded`] when
    /// the created process was killed or failed (it died mid-send, as when it
    /// dies between frames), a truncated-frame protocol error otherwise.
    fn cut_short(&mut self) -> Error {
        match self.peer_gone() {
            ended @ Error::PeerEnded { .. } => ended,
            _ => Error::Protocol(ProtoError::Truncated),
        }
    }

    /// Why the channel ended, once it has.
    #[cfg(feature = "capi")]
    pub(crate) fn end_error(&self) -> Option<Error> {
        self.ended
    }

    /// True while a message's header is read but its payload is not.
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// True once the channel has ended (end of stream or a malformed frame).
    pub fn is_ended(&self) -> bool {
        self.ended.is_some()
    }

    /// Sends an args frame (a task for a reused worker).
    #[cfg(feature = "alloc")]
    pub(crate) fn send_args(&mut self, args: &[u8]) -> Result<()> {
        self.send_frame(Kind::Args, 0, args).map(drop)
    }

    /// Waits for the created process to end and returns its status
    /// (collected at most once; later calls return the same status).
    pub fn wait(&mut self) -> Result<WaitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let child = self.child.as_ref().ok_or(Error::Invalid)?;
        let status = child.wait(true)?.ok_or(Error::from(Errno::CHILD))?;
        self.status = Some(status);
        Ok(status)
    }

    /// [`Channel::wait`] for at most `timeout_ms` milliseconds (`-1`:
    /// forever, `0`: just look): [`Error::TimedOut`] if the process is still
    /// running then.
    pub fn wait_timeout(&mut self, timeout_ms: i32) -> Result<WaitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let child = self.child.as_ref().ok_or(Error::Invalid)?;
        let status = child.wait_timeout(timeout_ms)?.ok_or(Error::TimedOut)?;
        self.status = Some(status);
        Ok(status)
    }

    /// Hands the collection of the created process to the caller: the
    /// channel forgets it (its drop no longer defers it) and returns it.
    pub(crate) fn disown(&mut self) -> Option<Child> {
        self.child.take()
    }

    /// Kills the created process if it still runs and collects it: for a
    /// peer that broke the protocol, or one left running when its owner
    /// goes. Its status is kept; a process that is gone already (collected
    /// by the program itself) is no error.
    pub(crate) fn kill_and_collect(&mut self) -> Result<()> {
        if let (Some(child), None) = (&self.child, self.status) {
            self.status = child.kill_and_collect()?;
        }
        Ok(())
    }

    /// The created process's status if it has ended, without waiting.
    pub fn try_wait(&mut self) -> Result<Option<WaitStatus>> {
        if let (Some(child), None) = (&self.child, self.status) {
            self.status = child.wait(false)?;
        }
        Ok(self.status)
    }

    /// Closes the channel. A created process that is still running is
    /// collected later (by the next create, or [`waitall`](crate::waitall)).
    pub fn close(self) {}

    /// Sends an acknowledgement of a received frame if its sender asked for
    /// one (data, args and error frames alike), or holds it back (see
    /// [`Channel::defer_acks`]).
    fn acknowledge(&mut self, header: Header) {
        if header.flags & FLAG_ACK_REQUESTED == 0 {
            return;
        }
        #[cfg(feature = "alloc")]
        if self.defer_acks {
            self.deferred.push_back(header.seq);
            return;
        }
        self.send_ack(header.seq);
    }

    /// Sends an acknowledgement of frame `seq`.
    fn send_ack(&mut self, seq: u32) {
        // The peer may already be gone; the frame itself was received, and
        // a failed write shows again at the next send or receive.
        best_effort(self.write_frame(Header::new(Kind::Ack, 0, 0, seq), &[]));
    }

    /// From now on, holds back the acknowledgements of the frames received
    /// until [`Channel::ack_deferred`] sends them: a store that keeps what
    /// it receives for the program acknowledges a message when the program
    /// takes it, so that a process killed with messages still stored loses
    /// none (its peer sends them again to the next client).
    #[cfg(feature = "alloc")]
    pub(crate) fn defer_acks(&mut self) {
        self.defer_acks = true;
    }

    /// Sends every acknowledgement held back and stops holding them back.
    #[cfg(feature = "alloc")]
    pub(crate) fn stop_deferring_acks(&mut self) {
        self.ack_deferred(usize::MAX);
        self.defer_acks = false;
    }

    /// Acknowledges the `count` oldest frames whose acknowledgement is held
    /// back (all of them if fewer), with one acknowledgement of the newest
    /// of them: the wire's acknowledgements are cumulative, each covers every
    /// frame before it.
    #[cfg(feature = "alloc")]
    pub(crate) fn ack_deferred(&mut self, count: usize) {
        let count = count.min(self.deferred.len());
        let newest = self.deferred.drain(..count).next_back();
        if let Some(seq) = newest {
            self.send_ack(seq);
        }
    }

    /// The highest frame number the peer has acknowledged (0: none yet).
    #[cfg(feature = "alloc")]
    pub(crate) fn acked(&self) -> u32 {
        self.acked
    }

    /// Sends an error frame with `flags`; returns its frame number.
    pub(crate) fn send_error_frame(&mut self, error: &RemoteError, flags: u16) -> Result<u32> {
        let mut payload = [0u8; MAX_ERROR_PAYLOAD];
        let len = error_payload(error, &mut payload);
        self.send_frame(Kind::Error, flags, &payload[..len])
    }
}

/// An error frame's payload for `error` in `payload`; returns its length.
pub(crate) fn error_payload(error: &RemoteError, payload: &mut [u8; MAX_ERROR_PAYLOAD]) -> usize {
    let message = error.message().as_bytes();
    payload[..4].copy_from_slice(&error.code().to_le_bytes());
    payload[4..4 + message.len()].copy_from_slice(message);
    4 + message.len()
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
    let mut copy = Vec::new();
    copy.try_reserve_exact(bytes.len())?;
    copy.extend_from_slice(bytes);
    Ok(copy)
}

/// A frame's length on the wire: its header and its payload.
fn whole_len(header: Header) -> usize {
    HEADER_LEN + header.length as usize
}

impl Drop for Channel {
    fn drop(&mut self) {
        if let (Some(child), None) = (self.child.take(), self.status) {
            // Still running: collected once it ends. Ended or not ours any
            // more (an error): nothing is left to collect.
            if let Ok(None) = child.wait(false) {
                sys::reap_later(child);
            }
        }
    }
}
