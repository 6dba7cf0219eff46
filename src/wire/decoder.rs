//! The decoder: bytes in, frames out, with no I/O of its own.
//!
//! The caller reads from its socket into [`Decoder::spare`] and reports how
//! much with [`Decoder::filled`]; [`Decoder::next_header`] then yields the next
//! frame's header once it is buffered (an error frame's once its small
//! payload is too), and keeps a partial header buffered until the rest
//! arrives. A data, args or batch message's payload follows its header: the caller
//! takes its buffered front with [`Decoder::payload_into`] and reads the rest
//! straight into its own buffer, or (with `alloc`) has the decoder collect it
//! across reads ([`Decoder::payload_spare`]), so that a loop serving many
//! peers never waits for one. Every header is validated before anything is
//! allocated for its payload.

#[cfg(feature = "alloc")]
use alloc::{collections::TryReserveError, vec::Vec};

use super::{Header, Kind, ProtoError, DEFAULT_MAX_MESSAGE, HEADER_LEN, MAX_ERROR_PAYLOAD};

/// Bytes read ahead: a small frame, and the frames behind it, arrive in one read.
pub const READ_AHEAD: usize = 1024;

// An error frame is yielded only once it is buffered whole.
const _: () = assert!(READ_AHEAD >= HEADER_LEN + MAX_ERROR_PAYLOAD);

/// What [`Decoder::next_header`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// A frame's header. A data, args or batch message's payload is pending until
    /// taken ([`Decoder::payload_into`], [`Decoder::payload_done`]); an error
    /// frame's payload is buffered whole (take it with
    /// [`Decoder::payload_into`] too).
    Header(Header),
    /// More bytes are needed: read into [`Decoder::spare`].
    More,
}

/// The receiving side of the wire format.
///
/// # Every call in one example
///
/// Four frames arrive in pieces, as from a socket; each payload is taken a
/// different way.
///
/// ```
/// use pprocess::wire::{Decoder, Header, Kind, Next, ProtoError, HEADER_LEN, READ_AHEAD};
///
/// let big = vec![7u8; 2 * READ_AHEAD]; // more than the read-ahead buffer holds
/// let mut stream = Vec::new();
/// for (seq, payload) in [(1, &b"hello"[..]), (2, &big[..]), (3, b"bye"), (4, b"lost")] {
///     stream.extend_from_slice(&Header::new(Kind::Data, 0, payload.len() as u32, seq).encode());
///     stream.extend_from_slice(payload);
/// }
/// let mut at = 0; // how much of the stream has "arrived"
/// let feed = |decoder: &mut Decoder, at: &mut usize, n: usize| {
///     let spare = decoder.spare();
///     let n = n.min(spare.len()).min(stream.len() - *at);
///     spare[..n].copy_from_slice(&stream[*at..*at + n]);
///     decoder.filled(n);
///     *at += n;
/// };
///
/// let mut decoder = Decoder::new();
/// decoder.set_max_message(1 << 20);
/// assert_eq!(decoder.max_message(), 1 << 20);
/// assert_eq!(decoder.next_header()?, Next::More); // nothing yet
/// feed(&mut decoder, &mut at, 10);
/// assert!(decoder.has_partial_frame() && !decoder.ready());
/// assert_eq!(decoder.buffered(), &stream[..10]);
/// assert_eq!(decoder.next_header()?, Next::More);
///
/// // The rest of the first frame, and the second one's header.
/// feed(&mut decoder, &mut at, HEADER_LEN + 5 - 10 + HEADER_LEN);
/// assert!(decoder.ready());
/// let Next::Header(first) = decoder.next_header()? else { unreachable!() };
/// assert_eq!(decoder.pending(), Some(first));
/// assert!(decoder.payload_complete());
/// assert_eq!(decoder.whole_payload(), Some(&b"hello"[..])); // in place,
/// decoder.skip_payload(); // then taken
///
/// // A payload larger than the read-ahead buffer is collected apart.
/// let Next::Header(second) = decoder.next_header()? else { unreachable!() };
/// assert_eq!(second.length as usize, big.len());
/// assert!(!decoder.payload_complete() && decoder.whole_payload().is_none());
/// loop {
///     let room = decoder.payload_spare().expect("memory for the payload");
///     let n = room.len().min(700);
///     if n == 0 {
///         break;
///     }
///     room[..n].copy_from_slice(&stream[at..at + n]);
///     at += n;
///     decoder.payload_filled(n);
/// }
/// assert_eq!(decoder.take_collected(), Some(big.clone()));
///
/// // Copied out into a buffer.
/// decoder.reserve(READ_AHEAD);
/// feed(&mut decoder, &mut at, READ_AHEAD);
/// let Next::Header(third) = decoder.next_header()? else { unreachable!() };
/// let mut buf = [0u8; 3];
/// assert_eq!(decoder.payload_into(&mut buf), 3);
/// assert_eq!(&buf, b"bye");
/// assert_eq!(decoder.payload_done(), Some(third));
///
/// // The stream ended: the pending message is forgotten.
/// let Next::Header(_fourth) = decoder.next_header()? else { unreachable!() };
/// decoder.abandon();
/// assert_eq!(decoder.pending(), None);
/// # Ok::<(), ProtoError>(())
/// ```
pub struct Decoder {
    bytes: [u8; READ_AHEAD],
    start: usize,
    end: usize,
    max_message: usize,
    /// A message whose header was yielded and whose payload is not taken.
    pending: Option<Header>,
    /// The pending payload collected across reads (sized to it once started).
    #[cfg(feature = "alloc")]
    partial: Vec<u8>,
    /// How much of `partial` is filled.
    #[cfg(feature = "alloc")]
    partial_have: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl core::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Decoder")
            .field("buffered", &(self.end - self.start))
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    /// A decoder accepting messages of up to [`DEFAULT_MAX_MESSAGE`] bytes.
    pub fn new() -> Decoder {
        Decoder {
            bytes: [0; READ_AHEAD],
            start: 0,
            end: 0,
            max_message: DEFAULT_MAX_MESSAGE,
            pending: None,
            #[cfg(feature = "alloc")]
            partial: Vec::new(),
            #[cfg(feature = "alloc")]
            partial_have: 0,
        }
    }

    /// The largest data, args or batch payload accepted.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// Sets the largest data, args or batch payload accepted.
    pub fn set_max_message(&mut self, max: usize) {
        self.max_message = max;
    }

    /// The bytes received and not yet decoded or taken.
    #[inline]
    pub fn buffered(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    /// Free space to read into: all of it, as the buffered bytes (at most
    /// the rest of a frame, usually) move to the front first, so that a
    /// read is never spent on the few bytes left behind them. Empty only
    /// when [`READ_AHEAD`] bytes are buffered. Report what was read with
    /// [`Decoder::filled`].
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.compact();
        }
        &mut self.bytes[self.end..]
    }

    /// `n` bytes were written at the front of [`Decoder::spare`] (more than
    /// it held counts as all of it).
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(READ_AHEAD);
    }

    #[inline]
    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    fn compact(&mut self) {
        self.bytes.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
    }

    /// Makes room so that `n` bytes (at most [`READ_AHEAD`]) fit buffered.
    pub fn reserve(&mut self, n: usize) {
        if self.start > 0 && READ_AHEAD - self.start < n {
            self.compact();
        }
    }

    /// The next frame's header, or [`Next::More`] while it (or an error
    /// frame's payload) is not buffered whole. With a message pending, its
    /// header again. A malformed header is an error, and stays buffered.
    #[inline(always)]
    pub fn next_header(&mut self) -> Result<Next, ProtoError> {
        if let Some(header) = self.pending {
            return Ok(Next::Header(header));
        }
        let Some(bytes) = self.buffered().first_chunk::<HEADER_LEN>() else {
            self.reserve(HEADER_LEN);
            return Ok(Next::More);
        };
        let header = Header::decode(bytes, self.max_message)?;
        let whole = HEADER_LEN + header.length as usize;
        if header.kind == Kind::Error && self.buffered().len() < whole {
            self.reserve(whole);
            return Ok(Next::More);
        }
        self.consume(HEADER_LEN);
        if header.kind.is_message() {
            self.pending = Some(header);
        }
        Ok(Next::Header(header))
    }

    /// True when [`Decoder::next_header`] would yield a header (or an error)
    /// without more bytes, or a pending payload is buffered whole.
    pub fn ready(&self) -> bool {
        if let Some(header) = self.pending {
            return self.payload_buffered(header);
        }
        let Some(bytes) = self.buffered().first_chunk::<HEADER_LEN>() else {
            return false;
        };
        match Header::decode(bytes, self.max_message) {
            Ok(h) => {
                h.kind != Kind::Error || self.buffered().len() >= HEADER_LEN + h.length as usize
            }
            Err(_) => true,
        }
    }

    /// True when bytes of a frame that has not arrived whole are buffered
    /// (no message pending).
    pub fn has_partial_frame(&self) -> bool {
        self.pending.is_none() && !self.buffered().is_empty() && !self.ready()
    }

    /// The pending message's header.
    #[inline]
    pub fn pending(&self) -> Option<Header> {
        self.pending
    }

    fn payload_buffered(&self, header: Header) -> bool {
        self.collected() + self.buffered().len() >= header.length as usize
    }

    fn collected(&self) -> usize {
        #[cfg(feature = "alloc")]
        return self.partial_have;
        #[cfg(not(feature = "alloc"))]
        0
    }

    /// Copies the front of a payload into `dst`: what was collected, then
    /// what is buffered, at most `dst.len()` bytes. Returns how many.
    pub fn payload_into(&mut self, dst: &mut [u8]) -> usize {
        #[cfg(feature = "alloc")]
        let done = self.collected_into(dst);
        #[cfg(not(feature = "alloc"))]
        let done = 0;
        let n = self.buffered().len().min(dst.len() - done);
        dst[done..done + n].copy_from_slice(&self.buffered()[..n]);
        self.consume(n);
        done + n
    }

    /// Copies the collected front of the payload into `dst`; returns how many.
    #[cfg(feature = "alloc")]
    fn collected_into(&mut self, dst: &mut [u8]) -> usize {
        if self.partial_have == 0 {
            return 0;
        }
        let done = core::mem::take(&mut self.partial_have).min(dst.len());
        dst[..done].copy_from_slice(&self.partial[..done]);
        if self.partial.capacity() > 64 * READ_AHEAD {
            self.partial = Vec::new(); // do not keep a large message's memory
        }
        done
    }

    /// The pending payload was taken whole: the next frame follows.
    #[inline]
    pub fn payload_done(&mut self) -> Option<Header> {
        self.pending.take()
    }

    /// Takes the buffered data frames marked [`FLAG_END`] alone, each
    /// whole, one after the other, while `take` accepts them: `take` sees
    /// each one's header and payload and returns false to leave it where
    /// it is. Stops as well at anything else (a frame of another kind or
    /// with other flags, one not buffered whole, a malformed header), which
    /// [`Decoder::next_header`] reads next. Takes nothing while a message
    /// is pending. Returns how many it took.
    ///
    /// ```
    /// use pprocess::wire::{Decoder, Header, Kind, FLAG_END};
    ///
    /// let mut decoder = Decoder::new();
    /// for (flags, payload) in [(FLAG_END, b"one"), (FLAG_END, b"two"), (0, b"new")] {
    ///     let header = Header::new(Kind::Data, flags, 3, 1).encode();
    ///     let spare = decoder.spare();
    ///     spare[..header.len()].copy_from_slice(&header);
    ///     spare[header.len()..header.len() + 3].copy_from_slice(payload);
    ///     decoder.filled(header.len() + 3);
    /// }
    /// let mut seen = Vec::new();
    /// assert_eq!(decoder.take_ended(|_, payload| { seen.push(payload.to_vec()); true }), 2);
    /// assert_eq!(seen, [b"one", b"two"]);
    /// // The third has no end mark: it stays, for next_header.
    /// assert!(decoder.ready());
    /// ```
    ///
    /// [`FLAG_END`]: crate::wire::FLAG_END
    pub fn take_ended(&mut self, take: impl FnMut(&Header, &[u8]) -> bool) -> usize {
        if self.pending.is_some() {
            return 0;
        }
        let (used, taken) = take_answers_in(self.buffered(), self.max_message, take);
        self.consume(used);
        taken
    }

    /// The first `used` buffered bytes were whole answers, taken by the
    /// caller's own [`take_answers_in`] (what [`Decoder::take_ended`] does
    /// in one call). Nothing while a message is pending.
    #[cfg(feature = "alloc")]
    pub(crate) fn took_answers(&mut self, used: usize) {
        if self.pending.is_none() {
            self.consume(used.min(self.buffered().len()));
        }
    }

    /// True when the frame in front is not buffered whole but fits the
    /// read-ahead buffer, so that reads into [`Decoder::spare`] complete it
    /// (there is room, or there will be once it is compacted). False for a
    /// frame buffered whole, a frame too big for the buffer (read apart),
    /// a header that is not one, and while a message is pending.
    ///
    /// ```
    /// use pprocess::wire::{Decoder, Header, Kind, READ_AHEAD};
    ///
    /// let mut decoder = Decoder::new();
    /// assert!(decoder.completes_in_buffer()); // nothing yet: read
    /// let header = Header::new(Kind::Data, 0, 2, 1).encode();
    /// decoder.spare()[..header.len()].copy_from_slice(&header);
    /// decoder.filled(header.len());
    /// assert!(decoder.completes_in_buffer()); // its payload is still to come
    /// decoder.spare()[..2].copy_from_slice(b"hi");
    /// decoder.filled(2);
    /// assert!(!decoder.completes_in_buffer()); // whole
    ///
    /// let mut decoder = Decoder::new();
    /// let big = Header::new(Kind::Data, 0, READ_AHEAD as u32, 1).encode();
    /// decoder.spare()[..big.len()].copy_from_slice(&big);
    /// decoder.filled(big.len());
    /// assert!(!decoder.completes_in_buffer()); // bigger than the buffer
    /// ```
    pub fn completes_in_buffer(&self) -> bool {
        if self.pending.is_some() {
            return false;
        }
        let Some(bytes) = self.buffered().first_chunk::<HEADER_LEN>() else {
            return true;
        };
        match Header::decode(bytes, self.max_message) {
            Ok(header) => {
                let whole = HEADER_LEN + header.length as usize;
                self.buffered().len() < whole && whole <= READ_AHEAD
            }
            Err(_) => false,
        }
    }

    /// True when the pending payload, not collected apart yet, fits the
    /// read-ahead buffer: the rest of it is best read into
    /// [`Decoder::spare`] (which then holds it whole at
    /// [`Decoder::payload_complete`]) rather than into
    /// [`Decoder::payload_spare`].
    ///
    /// ```
    /// use pprocess::wire::{Decoder, Header, Kind};
    ///
    /// let mut decoder = Decoder::new();
    /// let header = Header::new(Kind::Data, 0, 100, 1).encode();
    /// decoder.spare()[..header.len()].copy_from_slice(&header);
    /// decoder.filled(header.len());
    /// decoder.next_header()?;
    /// assert!(decoder.payload_fits_buffer() && !decoder.payload_complete());
    /// decoder.spare()[..100].fill(7);
    /// decoder.filled(100);
    /// assert!(decoder.payload_complete());
    /// # Ok::<(), pprocess::wire::ProtoError>(())
    /// ```
    pub fn payload_fits_buffer(&self) -> bool {
        let fits = |h: Header| h.length as usize <= READ_AHEAD;
        self.collected() == 0 && self.pending.is_some_and(fits)
    }

    /// Room for the rest of the pending payload, to read into without
    /// waiting (empty once it is collected whole); report what was read
    /// with [`Decoder::payload_filled`]. The room is allocated for the whole
    /// payload when collecting begins: an allocation that fails is an error
    /// (nothing is lost; call again later), never an abort.
    #[cfg(feature = "alloc")]
    pub fn payload_spare(&mut self) -> Result<&mut [u8], TryReserveError> {
        let Some(header) = self.pending else {
            return Ok(&mut []);
        };
        let len = header.length as usize;
        if self.partial_have == 0 {
            if self.buffered().len() >= len {
                return Ok(&mut []); // already buffered whole
            }
            // The length was validated against the maximum in `next`.
            self.partial.clear();
            self.partial.try_reserve_exact(len)?;
            self.partial.resize(len, 0);
        }
        let n = self.buffered().len().min(len - self.partial_have);
        let have = self.partial_have;
        self.partial[have..have + n].copy_from_slice(&self.bytes[self.start..self.start + n]);
        self.consume(n);
        self.partial_have += n;
        Ok(&mut self.partial[self.partial_have..])
    }

    /// `n` bytes were written at the front of [`Decoder::payload_spare`].
    #[cfg(feature = "alloc")]
    pub fn payload_filled(&mut self, n: usize) {
        self.partial_have = (self.partial_have + n).min(self.partial.len());
    }

    /// The pending payload as a vector without a copy, when it was collected
    /// whole by [`Decoder::payload_spare`]; the message is then taken.
    #[cfg(feature = "alloc")]
    #[inline]
    pub fn take_collected(&mut self) -> Option<Vec<u8>> {
        let len = self.pending?.length as usize;
        if len == 0 || self.partial_have != len {
            return None;
        }
        self.partial_have = 0;
        self.pending = None;
        Some(core::mem::take(&mut self.partial))
    }

    /// The pending payload, when it is in the read-ahead buffer whole (take
    /// it with [`Decoder::skip_payload`] once copied).
    #[inline]
    pub fn whole_payload(&self) -> Option<&[u8]> {
        let len = self.pending?.length as usize;
        if self.collected() > 0 {
            return None;
        }
        self.buffered().get(..len)
    }

    /// The payload [`Decoder::whole_payload`] showed was taken.
    #[inline]
    pub fn skip_payload(&mut self) {
        if self.whole_payload().is_some() {
            let len = self.pending.take().map_or(0, |h| h.length as usize);
            self.consume(len);
        }
    }

    /// True when the pending message's payload is buffered whole.
    #[inline]
    pub fn payload_complete(&self) -> bool {
        self.pending.is_some_and(|h| self.payload_buffered(h))
    }

    /// Forgets the pending message (the stream ended).
    pub fn abandon(&mut self) {
        self.pending = None;
        #[cfg(feature = "alloc")]
        {
            self.partial_have = 0;
        }
    }
}

/// Hands the whole frames at the start of `bytes` that are a task's one
/// result (see [`Header::decode_answer`]) to `take`, in order, until one is
/// anything else, is cut short, or `take` refuses it. Returns how many
/// bytes those frames took and how many there were. The one reading of
/// answers, for the decoder's buffer ([`Decoder::take_ended`]) and for a
/// creator that reads a reused worker's ring in place.
pub(crate) fn take_answers_in(
    bytes: &[u8],
    max_message: usize,
    mut take: impl FnMut(&Header, &[u8]) -> bool,
) -> (usize, usize) {
    let (mut used, mut taken) = (0, 0);
    while let Some(rest) = bytes.get(used..) {
        let Some(head) = rest.first_chunk::<HEADER_LEN>() else {
            break;
        };
        let Some(header) = Header::decode_answer(head, max_message) else {
            break;
        };
        let whole = HEADER_LEN + header.length as usize;
        let Some(payload) = rest.get(HEADER_LEN..whole) else {
            break;
        };
        if !take(&header, payload) {
            break;
        }
        used += whole;
        taken += 1;
    }
    (used, taken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Kind, FLAG_END};

    fn frame(kind: Kind, task: u64, payload: &[u8]) -> ([u8; HEADER_LEN], &[u8]) {
        let header = Header::new(kind, 0, payload.len() as u32, 1).for_task(task);
        (header.encode(), payload)
    }

    fn feed(d: &mut Decoder, mut bytes: &[u8]) -> usize {
        let mut total = 0;
        while !bytes.is_empty() {
            let spare = d.spare();
            let n = spare.len().min(bytes.len());
            if n == 0 {
                break;
            }
            spare[..n].copy_from_slice(&bytes[..n]);
            d.filled(n);
            bytes = &bytes[n..];
            total += n;
        }
        total
    }

    /// Once a frame is taken, the next read gets all the free space: the
    /// rest of a frame left behind it moves to the front first.
    #[test]
    fn a_read_gets_all_the_free_space() {
        let (h, payload) = frame(Kind::Data, 1, &[5; 100]);
        let mut d = Decoder::new();
        feed(&mut d, &h);
        feed(&mut d, payload);
        feed(&mut d, &h[..10]); // the start of the next frame
        assert!(matches!(d.next_header(), Ok(Next::Header(_))));
        d.skip_payload();
        assert_eq!(d.buffered(), &h[..10]);
        assert_eq!(d.spare().len(), READ_AHEAD - 10);
        assert_eq!(d.buffered(), &h[..10]);
    }

    #[test]
    fn a_header_fed_a_byte_at_a_time_is_yielded_once_whole() {
        let (h, _) = frame(Kind::Data, 9, b"hello");
        let mut d = Decoder::new();
        for b in &h[..HEADER_LEN - 1] {
            assert_eq!(d.next_header(), Ok(Next::More));
            assert!(!d.ready());
            feed(&mut d, &[*b]);
        }
        assert!(d.has_partial_frame());
        feed(&mut d, &h[HEADER_LEN - 1..]);
        let Ok(Next::Header(header)) = d.next_header() else {
            panic!("no header");
        };
        assert_eq!(
            (header.kind, header.task, header.length),
            (Kind::Data, 9, 5)
        );
        assert_eq!(d.pending(), Some(header));
        assert!(!d.ready(), "payload not here yet");
        feed(&mut d, b"hel");
        assert!(!d.ready());
        feed(&mut d, b"lo");
        assert!(d.ready());
        let mut dst = [0u8; 5];
        assert_eq!(d.payload_into(&mut dst), 5);
        assert_eq!(&dst, b"hello");
        assert_eq!(d.payload_done(), Some(header));
        assert_eq!(d.next_header(), Ok(Next::More));
    }

    #[test]
    fn an_error_frame_waits_for_its_whole_payload() {
        let mut payload = 5i32.to_le_bytes().to_vec();
        payload.extend_from_slice(b"bad");
        let (h, p) = frame(Kind::Error, 0, &payload);
        let mut d = Decoder::new();
        feed(&mut d, &h);
        feed(&mut d, &p[..4]);
        assert_eq!(d.next_header(), Ok(Next::More));
        feed(&mut d, &p[4..]);
        let Ok(Next::Header(header)) = d.next_header() else {
            panic!("no header");
        };
        assert_eq!(header.kind, Kind::Error);
        assert_eq!(d.pending(), None, "an error frame is not a message");
        let mut dst = [0u8; 7];
        assert_eq!(d.payload_into(&mut dst), 7);
        assert_eq!(crate::wire::decode_error(&dst), Ok((5, "bad")));
    }

    #[test]
    fn frames_behind_each_other_come_out_in_order() {
        let mut bytes = Vec::new();
        for (i, kind) in [Kind::Data, Kind::Ack, Kind::Args, Kind::Stop]
            .iter()
            .enumerate()
        {
            let payload = [i as u8; 3];
            let len = if matches!(kind, Kind::Data | Kind::Args) {
                3
            } else {
                0
            };
            let header = Header::new(*kind, FLAG_END, len as u32, i as u32).for_task(i as u64);
            bytes.extend_from_slice(&header.encode());
            bytes.extend_from_slice(&payload[..len]);
        }
        let mut d = Decoder::new();
        assert_eq!(feed(&mut d, &bytes), bytes.len());
        let mut seen = Vec::new();
        while let Ok(Next::Header(h)) = d.next_header() {
            seen.push((h.kind, h.task));
            if d.pending().is_some() {
                let mut dst = [0u8; 3];
                assert_eq!(d.payload_into(&mut dst), 3);
                assert_eq!(dst, [h.task as u8; 3]);
                d.payload_done();
            }
        }
        assert_eq!(
            seen,
            vec![
                (Kind::Data, 0),
                (Kind::Ack, 1),
                (Kind::Args, 2),
                (Kind::Stop, 3)
            ]
        );
    }

    #[test]
    fn a_bad_header_is_an_error_before_any_allocation() {
        let mut d = Decoder::new();
        d.set_max_message(10);
        let (h, _) = frame(Kind::Data, 0, &[0; 11]);
        feed(&mut d, &h);
        assert_eq!(
            d.next_header(),
            Err(ProtoError::TooLong {
                length: 11,
                max: 10
            })
        );
        assert!(d.ready(), "the error is there to read");
        let mut d = Decoder::new();
        feed(&mut d, &[0u8; HEADER_LEN]);
        assert_eq!(d.next_header(), Err(ProtoError::BadMagic));
    }

    #[test]
    fn a_large_payload_is_collected_across_reads_without_a_copy_out() {
        let payload: Vec<u8> = (0..5000).map(|i| i as u8).collect();
        let (h, p) = frame(Kind::Data, 3, &payload);
        let mut d = Decoder::new();
        feed(&mut d, &h);
        feed(&mut d, &p[..100]);
        assert!(matches!(d.next_header(), Ok(Next::Header(_))));
        let mut rest = &p[100..];
        while !rest.is_empty() {
            let spare = d.payload_spare().unwrap();
            let n = spare.len().min(rest.len()).min(777);
            spare[..n].copy_from_slice(&rest[..n]);
            d.payload_filled(n);
            rest = &rest[n..];
        }
        assert!(d.payload_spare().unwrap().is_empty());
        assert!(d.ready());
        assert_eq!(d.take_collected(), Some(payload));
        assert_eq!(d.pending(), None);
    }
}
