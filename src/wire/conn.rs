//! The connection core: one end of a pprocess stream as a state machine
//! without I/O (in the manner of rustls's connection core and quinn-proto).
//!
//! A [`Conn`] owns the frame numbers (the next one to send, the highest one
//! the peer acknowledged), the end state, the peer's last error, the
//! [`Decoder`] and the output buffer. It has no descriptor, no clock and
//! makes no system call:
//! - bytes in: the driver reads into [`Conn::spare`] and reports how many
//!   with [`Conn::filled`] (or the end of the stream with [`Conn::eof`]);
//! - events out: [`Conn::poll`] yields the next [`Event`];
//! - frames queued: [`Conn::send`], [`Conn::ack`], [`Conn::send_error`];
//! - output taken: the driver writes [`Conn::pending`] and reports how many
//!   bytes the socket took with [`Conn::written`].
//!
//! It also keeps the protocol state of a task's side of the stream: the
//! task this side's frames name ([`Conn::task`]: on a creator's side the
//! task of the last data frame taken, so that a reply goes to the task that
//! asked), the end mark a reused worker's one result carries, and, while a
//! reused worker runs a task, whose each message is ([`Route`]): the
//! task's, its loop's (args and batch frames) or an earlier task's.
//!
//! And it keeps what a driver would otherwise track beside it, each in its
//! own module: the messages read past and held for a later take, in order,
//! with their acknowledgements still due (`held`); what was taken, by the
//! task each frame names, for a layer that monitors the stream (`marks`);
//! and the hook through which the layer that owns a stream sets how it
//! ends and when what is taken is acknowledged (`policy`: the hook is
//! defined here and implemented above). The calls that may queue an
//! acknowledgement say so, and the driver writes it.
//!
//! The output buffer is an [`OutBuf`]: a fixed-capacity
//! [`heapless::Vec`] (no allocation; a frame that does not fit now is
//! [`Error::Busy`] until the driver has written what is pending) or, with
//! `alloc`, a growable [`Vec`].

use crate::error::{Error, RemoteError};

#[cfg(feature = "alloc")]
mod held;
mod marks;
#[cfg(feature = "alloc")]
mod policy;

pub(crate) use marks::Mark;
use marks::TakenByTask;
#[cfg(feature = "alloc")]
pub(crate) use policy::StreamPolicy;

#[cfg(feature = "alloc")]
use super::HEADER_LEN;
use super::{
    decode_error, Decoder, Header, Kind, Next, ProtoError, FLAG_ACK_REQUESTED, FLAG_END,
    MAX_ERROR_PAYLOAD, MAX_MESSAGE_LIMIT,
};

/// Storage for the frames a [`Conn`] has queued and the driver has not
/// written yet.
pub trait OutBuf {
    /// The bytes held.
    fn bytes(&self) -> &[u8];
    /// Appends every part, or nothing (false) when there is no room.
    fn append(&mut self, parts: &[&[u8]]) -> bool;
    /// Forgets every byte held.
    fn clear(&mut self);
}

impl<const N: usize> OutBuf for heapless::Vec<u8, N> {
    fn bytes(&self) -> &[u8] {
        self
    }

    fn append(&mut self, parts: &[&[u8]]) -> bool {
        let len: usize = parts.iter().map(|part| part.len()).sum();
        if self.len() + len > N {
            return false;
        }
        // Room was checked: every part fits.
        parts
            .iter()
            .all(|part| self.extend_from_slice(part).is_ok())
    }

    fn clear(&mut self) {
        heapless::Vec::clear(self);
    }
}

#[cfg(feature = "alloc")]
impl OutBuf for alloc::vec::Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }

    fn append(&mut self, parts: &[&[u8]]) -> bool {
        let len: usize = parts.iter().map(|part| part.len()).sum();
        if self.try_reserve(len).is_err() {
            return false;
        }
        for part in parts {
            self.extend_from_slice(part);
        }
        true
    }

    fn clear(&mut self) {
        alloc::vec::Vec::clear(self);
    }
}

/// What [`Conn::poll`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// More bytes are needed: read into [`Conn::spare`].
    More,
    /// A data, args or batch message. Its payload is pending: take it with
    /// [`Conn::payload_into`] (or the [`Decoder`]'s calls through
    /// [`Conn::decoder_mut`]), then call [`Conn::message_taken`].
    Message(Header),
    /// The peer acknowledged frame `seq` and every frame before it.
    Ack(u32),
    /// An error frame (its code and message: [`Conn::remote_error`]). If
    /// its sender asked, acknowledge it with [`Conn::acknowledge`] (now, or
    /// when the driver's policy says).
    Remote(Header),
    /// A reused worker's task `task` is finished (a stop frame with
    /// [`FLAG_END`]).
    TaskEnd(u64),
    /// A stop frame: no more tasks. The stream has ended.
    Stop,
    /// An end frame (the end of a persistent stream). The stream has ended;
    /// acknowledge the frame with [`Conn::acknowledge`] if its sender asked.
    End(Header),
}

/// Whose a message is, in a reused worker running a task
/// ([`Conn::route`]; reused workers need `alloc`).
#[cfg(feature = "alloc")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// The running task's receive takes it (any message, when no task runs).
    Receive,
    /// The worker's loop takes it: an args or batch frame.
    Loop,
    /// A message for a task that is over (a reply nobody received): dropped.
    Skip,
}

/// The task a reused worker runs, seen from its stream.
#[derive(Clone, Copy, Debug)]
struct Running {
    /// Its tag (its args frame's `task` field).
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    task: u64,
    /// Its one result (the data frame with the end mark) went out.
    answered: bool,
}

/// One end of a pprocess stream, without I/O: bytes go in
/// ([`Conn::spare`], [`Conn::filled`]), events come out ([`Conn::poll`]),
/// frames are queued ([`Conn::send`]) and output is taken
/// ([`Conn::pending`], [`Conn::written`]).
///
/// Two connections, with the driver's part played by copying bytes:
///
/// ```
/// use pprocess::wire::{Conn, Event, Kind, FLAG_ACK_REQUESTED};
/// use pprocess::{Error, RemoteError};
///
/// // Without allocation: at most 256 bytes of frames queued at once.
/// let mut left: Conn<heapless::Vec<u8, 256>> = Conn::new();
/// let mut right: Conn<heapless::Vec<u8, 256>> = Conn::new();
/// let carry = |from: &mut Conn<heapless::Vec<u8, 256>>, to: &mut Conn<heapless::Vec<u8, 256>>| {
///     let n = from.pending().len().min(to.spare().len());
///     to.spare()[..n].copy_from_slice(&from.pending()[..n]);
///     to.filled(n);
///     from.written(n);
/// };
///
/// let seq = left.send(Kind::Data, FLAG_ACK_REQUESTED, 0, b"hello")?;
/// assert_eq!(right.poll()?, Event::More);
/// carry(&mut left, &mut right);
/// let Event::Message(header) = right.poll()? else { unreachable!() };
/// let mut buf = [0u8; 5];
/// assert_eq!(right.payload_into(&mut buf), 5);
/// assert_eq!(&buf, b"hello");
/// right.message_taken(true); // acknowledged, as its sender asked
/// assert_eq!(header.seq, seq);
///
/// carry(&mut right, &mut left);
/// assert_eq!(left.poll()?, Event::Ack(seq));
/// assert_eq!(left.acked(), seq);
///
/// right.send_error(&RemoteError::new(7, "no"), FLAG_ACK_REQUESTED)?;
/// carry(&mut right, &mut left);
/// let Event::Remote(header) = left.poll()? else { unreachable!() };
/// left.acknowledge(header)?; // a driver may hold it back instead
/// assert_eq!(left.remote_error().map(|e| (e.code(), e.message())), Some((7, "no")));
///
/// // A frame the driver writes itself, payload and all (no copy).
/// let header = left.header(Kind::Data, 0, 0, 3)?;
/// assert_eq!(header.seq, left.next_seq() - 1);
/// assert!(!left.has_buffered() && !left.mid_frame());
/// assert!(left.decoder().buffered().is_empty());
/// assert_eq!(left.pending().len(), 24); // the acknowledgement, queued
///
/// // The peer hung up between frames: a clean end, and sticky.
/// assert_eq!(left.eof(), Error::Closed);
/// assert_eq!(left.poll(), Err(Error::Closed));
/// assert_eq!(left.end_error(), Some(Error::Closed));
/// # Ok::<(), Error>(())
/// ```
///
/// A growable output buffer (any [`OutBuf`]), a relay's side that records
/// any acknowledgement, a payload taken in place through the decoder, an
/// acknowledgement the driver sends when its own policy says, and an end
/// the driver decided on:
///
/// ```
/// use pprocess::wire::{Conn, Event, Kind, OutBuf, FLAG_ACK_REQUESTED};
/// use pprocess::Error;
///
/// fn growable<B: OutBuf + Default>() -> Conn<B> {
///     Conn::new()
/// }
/// let mut sender: Conn<Vec<u8>> = growable();
/// let mut relay: Conn<Vec<u8>> = Conn::new();
/// relay.accept_any_ack(); // its peer's acks number frames relayed for others
/// sender.send(Kind::Data, FLAG_ACK_REQUESTED, 0, &[7u8; 1000])?;
/// relay.spare()[..sender.pending().len()].copy_from_slice(sender.pending());
/// relay.filled(sender.pending().len());
/// sender.written(sender.pending().len());
///
/// let Event::Message(header) = relay.poll()? else { unreachable!() };
/// let payload = relay.decoder_mut().whole_payload().map(<[u8]>::to_vec);
/// assert_eq!(payload.as_deref(), Some(&[7u8; 1000][..]));
/// relay.message_taken(false); // its policy acknowledges later
/// assert!(relay.pending().is_empty());
/// relay.ack(header.seq)?;
/// assert_eq!(relay.pending().len(), 24); // one header, no payload
///
/// assert_eq!(relay.end(Error::Closed), Error::Closed);
/// assert_eq!(relay.poll(), Err(Error::Closed));
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug)]
pub struct Conn<B> {
    dec: Decoder,
    out: B,
    /// Bytes at the front of `out` already written.
    sent: usize,
    next_seq: u32,
    /// The highest frame number the peer acknowledged.
    acked: u32,
    /// Acknowledgements of frames this side never sent are refused.
    check_acks: bool,
    /// Why the stream ended (end of stream or a malformed frame); sticky.
    ended: Option<Error>,
    remote: Option<RemoteError>,
    /// The task this side's frames name (see [`Conn::task`]).
    task: u64,
    /// The next data frame carries the end mark ([`FLAG_END`]).
    end_next: bool,
    /// In a reused worker: the task it runs.
    running: Option<Running>,
    /// What was taken, by task, for the layer monitoring the connection
    /// (see `marks`).
    marks: TakenByTask,
    /// How the stream ends and when what is taken is acknowledged, if not
    /// as a plain channel's (see `policy`).
    #[cfg(feature = "alloc")]
    policy: Option<alloc::boxed::Box<dyn StreamPolicy>>,
    /// Messages read past and held for a later take (see `held`).
    #[cfg(feature = "alloc")]
    held: held::HeldQueue,
}

impl<B: OutBuf + Default> Default for Conn<B> {
    fn default() -> Conn<B> {
        Conn::new()
    }
}

impl<B: OutBuf + Default> Conn<B> {
    /// A connection accepting messages of up to
    /// [`DEFAULT_MAX_MESSAGE`](super::DEFAULT_MAX_MESSAGE) bytes, whose first
    /// frame is number 1.
    pub fn new() -> Conn<B> {
        Conn {
            dec: Decoder::new(),
            out: B::default(),
            sent: 0,
            next_seq: 1,
            acked: 0,
            check_acks: true,
            ended: None,
            remote: None,
            task: 0,
            end_next: false,
            running: None,
            marks: TakenByTask::default(),
            #[cfg(feature = "alloc")]
            policy: None,
            #[cfg(feature = "alloc")]
            held: held::HeldQueue::new(),
        }
    }
}

impl<B: OutBuf> Conn<B> {
    /// The largest message this side sends or accepts, in bytes.
    pub fn max_message(&self) -> usize {
        self.dec.max_message()
    }

    /// Sets the largest message this side sends or accepts (1 byte to
    /// 4 GiB - 1); [`Error::Invalid`] otherwise.
    pub fn set_max_message(&mut self, max: usize) -> Result<(), Error> {
        if max == 0 || max > MAX_MESSAGE_LIMIT {
            return Err(Error::Invalid);
        }
        self.dec.set_max_message(max);
        Ok(())
    }

    /// The frames this side's peer acknowledges are numbered by someone
    /// else (a relay): acknowledgements are recorded, never refused.
    pub fn accept_any_ack(&mut self) {
        self.check_acks = false;
    }

    /// Room to read the next bytes of the stream into.
    pub fn spare(&mut self) -> &mut [u8] {
        self.dec.spare()
    }

    /// `n` bytes were read into [`Conn::spare`].
    pub fn filled(&mut self, n: usize) {
        self.dec.filled(n);
    }

    /// True when a frame can be polled without reading more bytes.
    pub fn has_buffered(&self) -> bool {
        self.dec.ready()
    }

    /// True in the middle of a frame: part of a header, or a message whose
    /// payload is not taken yet.
    pub fn mid_frame(&self) -> bool {
        self.dec.has_partial_frame() || self.dec.pending().is_some()
    }

    /// The decoder, to look at what is buffered.
    pub fn decoder(&self) -> &Decoder {
        &self.dec
    }

    /// The decoder, for the payload calls [`Conn`] does not wrap (collecting
    /// a large payload across reads, taking it in place).
    pub fn decoder_mut(&mut self) -> &mut Decoder {
        &mut self.dec
    }

    /// The peer's stream ended (a read returned 0 or the connection was
    /// reset): [`Error::Closed`] between frames, a truncated-frame
    /// [`Error::Protocol`] in the middle of one. Recorded as the end.
    pub fn eof(&mut self) -> Error {
        if let Some(e) = self.ended {
            return e;
        }
        let why = match self.mid_frame() {
            true => Error::Protocol(ProtoError::Truncated),
            false => Error::Closed,
        };
        self.end_on(why)
    }

    /// The next event (see [`Event`]). A malformed frame, an
    /// acknowledgement of a frame never sent, or the end of the stream ends
    /// the connection: every later call returns the same error.
    pub fn poll(&mut self) -> Result<Event, Error> {
        if let Some(header) = self.dec.pending() {
            return Ok(Event::Message(header));
        }
        if let Some(e) = self.ended {
            return Err(e);
        }
        let header = match self.dec.next_header() {
            Ok(Next::Header(header)) => header,
            Ok(Next::More) => return Ok(Event::More),
            Err(e) => return Err(self.end_on(Error::Protocol(e))),
        };
        match header.kind {
            Kind::Data | Kind::Args | Kind::Batch => Ok(Event::Message(header)),
            Kind::Ack => {
                // Acks are cumulative: an old one changes nothing, and one
                // for a frame not sent yet is a lie.
                let last_sent = self.next_seq.wrapping_sub(1);
                if self.check_acks && (last_sent.wrapping_sub(header.seq) as i32) < 0 {
                    let e = Error::Protocol(ProtoError::BadAck(header.seq));
                    return Err(self.end_on(e));
                }
                if (header.seq.wrapping_sub(self.acked) as i32) > 0 {
                    self.acked = header.seq;
                }
                Ok(Event::Ack(header.seq))
            }
            Kind::Error => {
                let mut payload = [0u8; MAX_ERROR_PAYLOAD];
                let payload = &mut payload[..header.length as usize];
                // Buffered whole with its header (`Decoder::next_header`).
                self.dec.payload_into(payload);
                let (code, message) = match decode_error(payload) {
                    Ok(parts) => parts,
                    Err(e) => return Err(self.end_on(Error::Protocol(e))),
                };
                self.remote = Some(RemoteError::new(code, message));
                self.marks.record(header.task, 0, false, true);
                Ok(Event::Remote(header))
            }
            Kind::Stop if header.flags & FLAG_END != 0 => {
                self.marks.record(header.task, 0, true, false);
                Ok(Event::TaskEnd(header.task))
            }
            Kind::Stop => {
                self.end_on(Error::Closed);
                Ok(Event::Stop)
            }
            Kind::End => {
                self.end_on(Error::Closed);
                Ok(Event::End(header))
            }
        }
    }

    /// Copies the front of the pending message's payload into `dst` (at most
    /// its length); returns how many bytes. Call again after more bytes
    /// arrive until the payload is whole.
    pub fn payload_into(&mut self, dst: &mut [u8]) -> usize {
        self.dec.payload_into(dst)
    }

    /// The pending message was taken whole; with `acknowledge`, an
    /// acknowledgement is queued if its sender asked for one (a driver whose
    /// policy holds it back passes false and calls [`Conn::ack`] later).
    /// Returns its header.
    pub fn message_taken(&mut self, acknowledge: bool) -> Option<Header> {
        let header = self.dec.pending()?;
        self.took(header, acknowledge);
        Some(header)
    }

    /// `header`'s message was taken whole (the pending one, or one the
    /// decoder handed over collected): as [`Conn::message_taken`]. A data
    /// message taken when no reused worker's task runs makes its task the
    /// one this side's frames name: a reply goes to the task that asked.
    /// A data message is marked for its task (see `set_marking`).
    #[inline]
    pub(crate) fn took(&mut self, header: Header, acknowledge: bool) {
        self.dec.payload_done();
        if header.kind == Kind::Data {
            if self.running.is_none() {
                self.task = header.task;
            }
            let end = header.flags & FLAG_END != 0;
            self.marks.record(header.task, 1, end, false);
        }
        if acknowledge {
            // No room: lost with a peer that never reads (see `acknowledge`).
            let _ = self.acknowledge(header);
        }
    }

    /// `header`'s frame (a message, or an error frame) was taken: queues
    /// its acknowledgement if its sender asked for one, unless the stream
    /// policy holds it back (see `set_policy`). True when one was queued:
    /// the driver writes it.
    pub(crate) fn ack_taken(&mut self, header: Header) -> bool {
        if header.flags & FLAG_ACK_REQUESTED == 0 {
            return false;
        }
        #[cfg(feature = "alloc")]
        if self.holds_ack(header.seq) {
            return false;
        }
        // No room: lost with a peer that never reads (see `acknowledge`).
        self.ack(header.seq).is_ok()
    }

    /// True when a bare end of stream is a cut, not a clean end (the
    /// stream policy says so; see `set_policy`).
    pub(crate) fn ends_with_end_frame(&self) -> bool {
        #[cfg(feature = "alloc")]
        return self
            .policy
            .as_ref()
            .is_some_and(|policy| policy.ends_with_end_frame());
        #[cfg(not(feature = "alloc"))]
        false
    }

    /// The task this side's frames name (the header's `task` field), as
    /// the driver passes it to [`Conn::header`] and [`Conn::send`].
    pub(crate) fn task(&self) -> u64 {
        self.task
    }

    /// From now on this side's frames name task `task`.
    pub(crate) fn reply_to(&mut self, task: u64) {
        self.task = task;
    }

    /// With `on`, the next data frame numbered carries the end mark: its
    /// task's one result. Returns the previous setting (true: the mark
    /// was never sent).
    #[cfg(feature = "alloc")]
    pub(crate) fn set_end_next(&mut self, on: bool) -> bool {
        core::mem::replace(&mut self.end_next, on)
    }

    /// In a reused worker: task `task` runs from now on (`None`: none
    /// does, the loop reads). Its frames name it, and [`Conn::route`] says
    /// whose each message is.
    #[cfg(feature = "alloc")]
    pub(crate) fn run_task(&mut self, task: Option<u64>) {
        self.running = task.map(|task| Running {
            task,
            answered: false,
        });
        if let Some(task) = task {
            self.task = task;
        }
    }

    /// The task a reused worker runs, if any.
    #[cfg(feature = "alloc")]
    pub(crate) fn running(&self) -> Option<u64> {
        self.running.map(|running| running.task)
    }

    /// True once the running task's one result went out: nothing more
    /// will come for it, so a loop frame means no more for this task.
    #[cfg(feature = "alloc")]
    pub(crate) fn answered(&self) -> bool {
        self.running.is_some_and(|running| running.answered)
    }

    /// Whose the message `header` is (see [`Route`]).
    #[cfg(feature = "alloc")]
    pub(crate) fn route(&self, header: &Header) -> Route {
        match (self.running, header.kind) {
            (None, _) => Route::Receive,
            (Some(_), kind) if kind.is_task() => Route::Loop,
            (Some(running), _) if header.task == running.task => Route::Receive,
            _ => Route::Skip,
        }
    }

    /// Queues one frame of `kind` for `task` with the next frame number;
    /// returns that number. [`Error::TooBig`] for a data, args or batch
    /// payload over the maximum message size, [`Error::Busy`] when the
    /// output buffer has no room for it now (write [`Conn::pending`] first).
    pub fn send(
        &mut self,
        kind: Kind,
        flags: u16,
        task: u64,
        payload: &[u8],
    ) -> Result<u32, Error> {
        let seq = self.next_seq;
        let (end_next, running) = (self.end_next, self.running);
        let header = self.header(kind, flags, task, payload.len())?;
        if let Err(e) = self.queue(&header, payload) {
            // Not sent: the number is not taken, the end mark still due.
            (self.next_seq, self.end_next, self.running) = (seq, end_next, running);
            return Err(e);
        }
        Ok(seq)
    }

    /// Queues an error frame with `flags`; returns its frame number.
    pub fn send_error(&mut self, error: &RemoteError, flags: u16) -> Result<u32, Error> {
        let mut payload = [0u8; MAX_ERROR_PAYLOAD];
        let len = error_payload(error, &mut payload);
        self.send(Kind::Error, flags, 0, &payload[..len])
    }

    /// Queues an acknowledgement of `header`'s frame if its sender asked
    /// for one ([`Error::Busy`] without room: a peer that reads gets the
    /// next, cumulative, acknowledgement).
    pub fn acknowledge(&mut self, header: Header) -> Result<(), Error> {
        match header.flags & FLAG_ACK_REQUESTED {
            0 => Ok(()),
            _ => self.ack(header.seq),
        }
    }

    /// Numbers a frame of `kind` for `task` with a payload of `len` bytes
    /// that the driver writes itself (after [`Conn::pending`]), without
    /// copying it into the output buffer; returns its header. A data frame
    /// carries the end mark if it is due (see `set_end_next`). Errors as
    /// for [`Conn::send`] but for [`Error::Busy`].
    pub fn header(
        &mut self,
        kind: Kind,
        flags: u16,
        task: u64,
        len: usize,
    ) -> Result<Header, Error> {
        let max = self.max_message();
        if kind.is_message() && len > max {
            return Err(Error::TooBig {
                size: len,
                capacity: max,
            });
        }
        let mut flags = flags;
        if kind == Kind::Data && core::mem::take(&mut self.end_next) {
            flags |= FLAG_END;
            if let Some(running) = &mut self.running {
                running.answered = true;
            }
        }
        let header = Header::new(kind, flags, len as u32, self.next_seq).for_task(task);
        self.next_seq = self.next_seq.wrapping_add(1);
        Ok(header)
    }

    /// The driver found the stream ended with `e` (the peer process died,
    /// or a rule of its own): recorded as the end, as [`Conn::eof`] does.
    pub fn end(&mut self, e: Error) -> Error {
        self.end_on(e)
    }

    /// Queues an acknowledgement of the peer's frame `seq` (and every one
    /// before it); it takes no frame number.
    pub fn ack(&mut self, seq: u32) -> Result<(), Error> {
        self.queue(&Header::new(Kind::Ack, 0, 0, seq), &[])
    }

    /// The queued bytes not written yet.
    pub fn pending(&self) -> &[u8] {
        &self.out.bytes()[self.sent..]
    }

    /// The driver wrote `n` bytes of [`Conn::pending`]; once all are, the
    /// buffer is reused.
    pub fn written(&mut self, n: usize) {
        self.sent = self.sent.saturating_add(n).min(self.out.bytes().len());
        if self.sent == self.out.bytes().len() {
            self.out.clear();
            self.sent = 0;
        }
    }

    /// The number the next frame sent gets.
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// The highest frame number the peer has acknowledged (0: none yet).
    pub fn acked(&self) -> u32 {
        self.acked
    }

    /// The code and message of the last error frame received.
    pub fn remote_error(&self) -> Option<&RemoteError> {
        self.remote.as_ref()
    }

    /// Why the stream ended, once it has.
    pub fn end_error(&self) -> Option<Error> {
        self.ended
    }

    /// Queues `header` and `payload` behind what is pending.
    fn queue(&mut self, header: &Header, payload: &[u8]) -> Result<(), Error> {
        match self.out.append(&[&header.encode(), payload]) {
            true => Ok(()),
            false => Err(Error::Busy),
        }
    }

    /// Records `e` as the end and forgets a pending message.
    fn end_on(&mut self, e: Error) -> Error {
        self.dec.abandon();
        self.ended = Some(e);
        e
    }
}

#[cfg(feature = "alloc")]
impl Conn<alloc::vec::Vec<u8>> {
    /// Queues one batch frame of `count` tasks (tag, arguments), built in
    /// place behind what is pending (no copy of the arguments but this
    /// one); its header names the first task. `len` is its payload's length
    /// ([`batch_len`](super::batch_len) of the tasks' arguments: the caller
    /// sums it as it walks them). Returns its frame number.
    /// [`Error::TooBig`] over the maximum message size, [`Error::Busy`]
    /// when no memory is left for it.
    pub(crate) fn send_batch<'a, I>(
        &mut self,
        count: u32,
        len: usize,
        tasks: I,
    ) -> Result<u32, Error>
    where
        I: Iterator<Item = (u64, &'a [u8])> + Clone,
    {
        debug_assert_eq!(
            len,
            super::batch_len(tasks.clone().map(|(_, args)| args.len())),
            "a batch's length"
        );
        let first = tasks.clone().next().map_or(0, |(task, _)| task);
        let seq = self.next_seq;
        let header = self.header(Kind::Batch, 0, first, len)?;
        if self.out.try_reserve(HEADER_LEN + len).is_err() {
            self.next_seq = seq; // not sent: the number is not taken
            return Err(Error::Busy);
        }
        self.out.extend_from_slice(&header.encode());
        super::encode_batch(&mut self.out, count, tasks);
        Ok(seq)
    }
}

/// An error frame's payload for `error` in `payload`; returns its length.
///
/// ```
/// use pprocess::wire::{decode_error, error_payload, MAX_ERROR_PAYLOAD};
/// use pprocess::RemoteError;
///
/// let mut payload = [0u8; MAX_ERROR_PAYLOAD];
/// let len = error_payload(&RemoteError::new(3, "bad"), &mut payload);
/// assert_eq!(decode_error(&payload[..len]), Ok((3, "bad")));
/// ```
pub fn error_payload(error: &RemoteError, payload: &mut [u8; MAX_ERROR_PAYLOAD]) -> usize {
    let message = error.message().as_bytes();
    payload[..4].copy_from_slice(&error.code().to_le_bytes());
    payload[4..4 + message.len()].copy_from_slice(message);
    4 + message.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::HEADER_LEN;

    pub(super) type Fixed = Conn<heapless::Vec<u8, 512>>;

    /// Moves what `from` has pending into `to`, `piece` bytes at a time at
    /// most per read; returns the bytes moved.
    pub(super) fn carry(from: &mut Fixed, to: &mut Fixed, piece: usize) -> usize {
        let n = from.pending().len().min(to.spare().len()).min(piece);
        to.spare()[..n].copy_from_slice(&from.pending()[..n]);
        to.filled(n);
        from.written(n);
        n
    }

    /// Polls `conn` for the next event that is not `More`, feeding it one
    /// byte at a time from `from`.
    pub(super) fn next(from: &mut Fixed, to: &mut Fixed) -> Result<Event, Error> {
        loop {
            match to.poll()? {
                Event::More => assert_eq!(carry(from, to, 1), 1, "a frame was expected"),
                event => return Ok(event),
            }
        }
    }

    #[test]
    fn messages_cross_byte_by_byte_and_are_acknowledged_when_taken() {
        let (mut a, mut b) = (Fixed::new(), Fixed::new());
        let one = a.send(Kind::Data, FLAG_ACK_REQUESTED, 0, b"one").unwrap();
        let two = a.send(Kind::Args, 0, 9, b"two!").unwrap();
        assert_eq!((one, two), (1, 2));
        let Event::Message(h) = next(&mut a, &mut b).unwrap() else {
            panic!("a message")
        };
        assert_eq!((h.kind, h.length, h.seq), (Kind::Data, 3, 1));
        // Still pending until taken: polling again gives it again.
        assert_eq!(b.poll().unwrap(), Event::Message(h));
        let mut buf = [0u8; 3];
        let mut got = 0;
        while got < 3 {
            got += b.payload_into(&mut buf[got..]);
            if got < 3 {
                carry(&mut a, &mut b, 1);
            }
        }
        assert_eq!(&buf, b"one");
        assert_eq!(b.message_taken(true), Some(h));
        let Event::Message(h2) = next(&mut a, &mut b).unwrap() else {
            panic!("a message")
        };
        assert_eq!((h2.kind, h2.task), (Kind::Args, 9));
        // Only the first asked for an acknowledgement.
        assert_eq!(b.pending().len(), HEADER_LEN);
        assert_eq!(next(&mut b, &mut a).unwrap(), Event::Ack(1));
        assert_eq!(a.acked(), 1);
    }

    #[test]
    fn an_ack_of_a_frame_never_sent_ends_the_connection() {
        let (mut a, mut b) = (Fixed::new(), Fixed::new());
        b.ack(5).unwrap();
        let e = Error::Protocol(ProtoError::BadAck(5));
        assert_eq!(next(&mut b, &mut a), Err(e));
        assert_eq!(a.poll(), Err(e), "sticky");
        // A relay's peer acknowledges frames numbered elsewhere.
        let (mut a, mut b) = (Fixed::new(), Fixed::new());
        a.accept_any_ack();
        b.ack(5).unwrap();
        assert_eq!(next(&mut b, &mut a), Ok(Event::Ack(5)));
        assert_eq!(a.acked(), 5);
    }

    #[test]
    fn error_stop_and_end_frames() {
        let (mut a, mut b) = (Fixed::new(), Fixed::new());
        a.send_error(&RemoteError::new(-4, "worse"), FLAG_ACK_REQUESTED)
            .unwrap();
        a.send(Kind::Stop, FLAG_END, 3, &[]).unwrap();
        a.send(Kind::End, FLAG_ACK_REQUESTED, 0, &[]).unwrap();
        let Ok(Event::Remote(header)) = next(&mut a, &mut b) else {
            panic!("an error frame")
        };
        b.acknowledge(header).unwrap();
        assert_eq!(b.remote_error().unwrap().code(), -4);
        assert_eq!(b.remote_error().unwrap().message(), "worse");
        assert_eq!(next(&mut a, &mut b), Ok(Event::TaskEnd(3)));
        let Ok(Event::End(end)) = next(&mut a, &mut b) else {
            panic!("the end")
        };
        b.acknowledge(end).unwrap();
        assert_eq!(b.end_error(), Some(Error::Closed));
        assert_eq!(b.poll(), Err(Error::Closed));
        assert_eq!(b.end(Error::StreamBroken), Error::StreamBroken);
        // The error and the end were acknowledged, as asked.
        assert_eq!(next(&mut b, &mut a), Ok(Event::Ack(1)));
        assert_eq!(next(&mut b, &mut a), Ok(Event::Ack(3)));
    }

    #[test]
    fn a_stop_frame_ends_the_stream() {
        let (mut a, mut b) = (Fixed::new(), Fixed::new());
        a.send(Kind::Stop, 0, 0, &[]).unwrap();
        assert_eq!(next(&mut a, &mut b), Ok(Event::Stop));
        assert_eq!(b.poll(), Err(Error::Closed));
    }

    #[test]
    fn the_end_of_the_stream_mid_frame_is_a_truncation() {
        let (mut a, mut b) = (Fixed::new(), Fixed::new());
        a.send(Kind::Data, 0, 0, b"cut").unwrap();
        carry(&mut a, &mut b, HEADER_LEN - 1);
        assert_eq!(b.poll(), Ok(Event::More));
        assert!(b.mid_frame() && !b.has_buffered());
        let e = Error::Protocol(ProtoError::Truncated);
        assert_eq!(b.eof(), e);
        assert_eq!(b.poll(), Err(e));
        // A pending message whose payload never came is cut too.
        let (mut a, mut b) = (Fixed::new(), Fixed::new());
        a.send(Kind::Data, 0, 0, b"cut").unwrap();
        carry(&mut a, &mut b, HEADER_LEN);
        assert!(matches!(b.poll(), Ok(Event::Message(_))));
        assert_eq!(b.eof(), e);
    }

    #[test]
    fn garbage_is_a_protocol_error_before_anything_is_allocated() {
        let mut b = Fixed::new();
        b.spare()[..HEADER_LEN].fill(0xff);
        b.filled(HEADER_LEN);
        assert_eq!(b.poll(), Err(Error::Protocol(ProtoError::BadMagic)));
        let mut b = Fixed::new();
        b.set_max_message(4).unwrap();
        let big = Header::new(Kind::Data, 0, 5, 1).encode();
        b.spare()[..HEADER_LEN].copy_from_slice(&big);
        b.filled(HEADER_LEN);
        let e = ProtoError::TooLong { length: 5, max: 4 };
        assert_eq!(b.poll(), Err(Error::Protocol(e)));
        assert_eq!(b.set_max_message(0), Err(Error::Invalid));
    }

    #[test]
    fn a_full_output_buffer_is_busy_until_written_and_loses_nothing() {
        let mut a: Conn<heapless::Vec<u8, 64>> = Conn::new();
        assert_eq!(a.send(Kind::Data, 0, 0, &[1; 30]), Ok(1));
        assert_eq!(a.send(Kind::Data, 0, 0, &[2; 30]), Err(Error::Busy));
        assert_eq!(a.next_seq(), 2, "a refused frame takes no number");
        a.written(10);
        assert_eq!(a.pending().len(), HEADER_LEN + 20);
        a.written(HEADER_LEN + 20);
        assert!(a.pending().is_empty());
        assert_eq!(a.send(Kind::Data, 0, 0, &[2; 30]), Ok(2));
        a.set_max_message(8).unwrap();
        assert!(matches!(
            a.send(Kind::Data, 0, 0, &[0; 9]),
            Err(Error::TooBig { size: 9, .. })
        ));
    }

    /// Reads the message `from` sent into `to`, payload and all: returns
    /// its header and payload, the message still to be taken.
    pub(super) fn read(from: &mut Fixed, to: &mut Fixed) -> (Header, heapless::Vec<u8, 64>) {
        let Ok(Event::Message(header)) = next(from, to) else {
            panic!("a message")
        };
        let (mut buf, len) = ([0u8; 64], header.length as usize);
        let mut got = to.payload_into(&mut buf[..len]);
        while got < len {
            assert_eq!(carry(from, to, 1), 1, "the payload was expected");
            got += to.payload_into(&mut buf[got..len]);
        }
        (header, heapless::Vec::from_slice(&buf[..len]).unwrap())
    }

    /// Reads the message `from` sent into `to` and takes it whole.
    pub(super) fn take(from: &mut Fixed, to: &mut Fixed) -> Header {
        let (header, _) = read(from, to);
        assert_eq!(to.message_taken(true), Some(header));
        header
    }

    #[test]
    fn a_reply_names_the_task_of_the_message_taken_last() {
        let (mut creator, mut process) = (Fixed::new(), Fixed::new());
        creator.send(Kind::Data, 0, 7, b"for 7").unwrap();
        creator.send(Kind::Data, 0, 9, b"for 9").unwrap();
        assert_eq!(process.task(), 0);
        take(&mut creator, &mut process);
        assert_eq!(process.task(), 7);
        take(&mut creator, &mut process);
        let task = process.task();
        process.send(Kind::Data, 0, task, b"re").unwrap();
        assert_eq!(take(&mut process, &mut creator).task, 9);
        process.reply_to(4);
        assert_eq!(process.task(), 4);
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn a_reused_tasks_one_result_carries_the_end_mark_once() {
        let (mut creator, mut worker) = (Fixed::new(), Fixed::new());
        worker.run_task(Some(5));
        assert_eq!((worker.running(), worker.task()), (Some(5), 5));
        assert!(!worker.set_end_next(true));
        worker.send(Kind::Error, 0, 5, &[0; 4]).unwrap(); // not a data frame
        assert!(!worker.answered());
        worker.send(Kind::Data, 0, 5, b"result").unwrap();
        assert!(worker.answered());
        worker.send(Kind::Data, 0, 5, b"more").unwrap();
        assert!(!worker.set_end_next(false), "the mark went out");
        let bytes = worker.pending();
        let first = Header::decode(bytes[..HEADER_LEN].try_into().unwrap(), 64).unwrap();
        assert_eq!(first.flags & FLAG_END, 0);
        let result = &bytes[HEADER_LEN + 4..];
        let result = Header::decode(result[..HEADER_LEN].try_into().unwrap(), 64).unwrap();
        assert_eq!((result.flags & FLAG_END, result.task), (FLAG_END, 5));
        let more = &bytes[2 * HEADER_LEN + 4 + 6..];
        let more = Header::decode(more[..HEADER_LEN].try_into().unwrap(), 64).unwrap();
        assert_eq!(more.flags & FLAG_END, 0);
        // A frame that finds no room keeps the mark due.
        let mut full: Conn<heapless::Vec<u8, 24>> = Conn::new();
        full.set_end_next(true);
        assert_eq!(full.send(Kind::Data, 0, 0, b"x"), Err(Error::Busy));
        assert!(full.set_end_next(false), "still due");
        worker.run_task(None);
        assert_eq!(worker.running(), None);
        assert!(!worker.answered());
        let _ = &mut creator;
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn a_running_task_receives_its_own_messages_and_the_loop_its_frames() {
        let (mut creator, mut worker) = (Fixed::new(), Fixed::new());
        creator.send(Kind::Args, 0, 1, b"a1").unwrap();
        creator.send(Kind::Data, 0, 1, b"m1").unwrap();
        creator.send(Kind::Batch, 0, 2, b"b").unwrap();
        creator.send(Kind::Data, 0, 3, b"m3").unwrap();
        let routes = |worker: &mut Fixed, creator: &mut Fixed| {
            let mut seen = heapless::Vec::<(Kind, u64, Route), 4>::new();
            for _ in 0..4 {
                let header = take(creator, worker);
                seen.push((header.kind, header.task, worker.route(&header)))
                    .unwrap();
            }
            seen
        };
        // No task runs: every message is the receiver's.
        let seen = routes(&mut worker, &mut creator);
        assert!(seen.iter().all(|&(_, _, route)| route == Route::Receive));
        assert_eq!(worker.task(), 3, "replies go to the last data frame's task");
        creator.send(Kind::Args, 0, 1, b"a1").unwrap();
        creator.send(Kind::Data, 0, 1, b"m1").unwrap();
        creator.send(Kind::Batch, 0, 2, b"b").unwrap();
        creator.send(Kind::Data, 0, 3, b"m3").unwrap();
        worker.run_task(Some(1));
        let seen = routes(&mut worker, &mut creator);
        let expected = [
            (Kind::Args, 1, Route::Loop),
            (Kind::Data, 1, Route::Receive),
            (Kind::Batch, 2, Route::Loop),
            (Kind::Data, 3, Route::Skip),
        ];
        assert_eq!(&seen[..], &expected[..]);
        assert_eq!(worker.task(), 1, "a running task's frames name it");
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn a_growable_buffer_takes_any_frame() {
        let mut a: Conn<alloc::vec::Vec<u8>> = Conn::new();
        let big = alloc::vec![7u8; 100_000];
        a.send(Kind::Data, 0, 0, &big).unwrap();
        a.send(Kind::Data, 0, 0, &big).unwrap();
        assert_eq!(a.pending().len(), 2 * (HEADER_LEN + big.len()));
    }

    #[cfg(feature = "alloc")]
    /// A fresh connection's first batch (a new reused worker's first task,
    /// 8 argument bytes as `manage_value` of a u64 sends) is built in the
    /// room `send_batch` reserved with `try_reserve`: nothing is allocated
    /// past it (infallibly, aborting where `Error::Busy` is promised).
    #[test]
    fn a_first_batch_is_built_in_the_room_reserved_for_it() {
        for n in [8usize, 9, 15] {
            let mut a: Conn<alloc::vec::Vec<u8>> = Conn::new();
            let args = alloc::vec![5u8; n];
            let tasks: [(u64, &[u8]); 1] = [(1, &args)];
            let len = crate::wire::batch_len(tasks.iter().map(|(_, args)| args.len()));
            a.send_batch(1, len, tasks.iter().copied()).unwrap();
            assert_eq!(a.out.len(), HEADER_LEN + len);
            assert_eq!(
                a.out.capacity(),
                HEADER_LEN + len,
                "{n} bytes: grew past try_reserve's room"
            );
        }
    }

    #[test]
    fn a_batch_is_one_frame_naming_its_first_task() {
        let mut a: Conn<alloc::vec::Vec<u8>> = Conn::new();
        let mut b: Conn<alloc::vec::Vec<u8>> = Conn::new();
        let tasks: [(u64, &[u8]); 2] = [(3, b"ab"), (4, b"c")];
        let len = crate::wire::batch_len(tasks.iter().map(|(_, args)| args.len()));
        assert_eq!(a.send_batch(2, len, tasks.iter().copied()), Ok(1));
        let n = a.pending().len();
        b.spare()[..n].copy_from_slice(a.pending());
        b.filled(n);
        a.written(usize::MAX);
        assert!(a.pending().is_empty());
        let Ok(Event::Message(header)) = b.poll() else {
            panic!("a batch")
        };
        assert_eq!((header.kind, header.task, header.seq), (Kind::Batch, 3, 1));
        let payload = b.decoder_mut().whole_payload().unwrap();
        let back: alloc::vec::Vec<_> = crate::wire::decode_batch(payload).unwrap().collect();
        assert_eq!(back, tasks);
        a.set_max_message(4).unwrap();
        assert!(matches!(
            a.send_batch(2, len, tasks.iter().copied()),
            Err(Error::TooBig { .. })
        ));
        assert_eq!(a.next_seq(), 2, "a refused batch takes no number");
    }
}
