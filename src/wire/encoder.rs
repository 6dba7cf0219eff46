//! The encoder's corking: frames held back to be written together, with no
//! I/O of its own (needs `alloc`).
//!
//! While corked, [`Encoder::hold`] keeps frames (up to [`CORK_LIMIT`] bytes)
//! instead of letting the caller write them; the caller writes
//! [`Encoder::unwritten`] with one system call when it flushes, and reports
//! what the kernel took with [`Encoder::written`], so a write cut short
//! resumes where it stopped.

use alloc::vec::Vec;

use super::{Header, Kind, FLAG_END, HEADER_LEN};

/// Most bytes a corked encoder holds back before they must be written.
///
/// See the example on [`Encoder`].
pub const CORK_LIMIT: usize = 64 * 1024;

/// Frames held back for one write.
///
/// ```
/// use pprocess::wire::{Encoder, Header, Kind, CORK_LIMIT, FLAG_END, HEADER_LEN};
///
/// let mut encoder = Encoder::default();
/// let streamed = Header::new(Kind::Data, 0, 2, 1);
/// let answer = Header::new(Kind::Data, FLAG_END, 2, 2);
/// assert!(!encoder.hold(&answer, b"ok")); // not corked: the caller writes it
/// encoder.cork(true); // hold only the frames that end a task
/// assert!(encoder.is_corked());
/// assert!(!encoder.hold(&streamed, b"hi")); // mid-task: written at once
/// assert!(encoder.hold(&answer, b"ok"));
/// let huge = vec![0u8; CORK_LIMIT];
/// assert!(!encoder.hold(&Header::new(Kind::Data, FLAG_END, CORK_LIMIT as u32, 3), &huge));
/// encoder.uncork();
/// encoder.queue(&streamed, b"hi"); // an outbox keeps any frame
/// assert_eq!(encoder.unwritten().len(), 2 * (HEADER_LEN + 2));
///
/// // The socket took 30 bytes; the rest goes out next time.
/// encoder.written(30);
/// assert_eq!(encoder.unwritten().len(), 2 * (HEADER_LEN + 2) - 30);
/// let rest = encoder.unwritten().len();
/// encoder.written(rest);
/// assert!(encoder.unwritten().is_empty());
/// ```
#[derive(Debug, Default)]
pub struct Encoder {
    held: Vec<u8>,
    /// Bytes of `held` already written.
    sent: usize,
    corked: bool,
    /// Only a task's last frame (end-marked, or an error) is held; any other
    /// frame is written at once, after what is held.
    answers_only: bool,
}

impl Encoder {
    /// Holds every frame from now on (`answers_only`: only the frames that
    /// end a task).
    ///
    /// See the example on [`Encoder`].
    pub fn cork(&mut self, answers_only: bool) {
        self.corked = true;
        self.answers_only = answers_only;
    }

    /// Stops holding frames (what is held stays until written).
    ///
    /// See the example on [`Encoder`].
    pub fn uncork(&mut self) {
        self.corked = false;
    }

    /// True while frames are held back.
    ///
    /// See the example on [`Encoder`].
    pub fn is_corked(&self) -> bool {
        self.corked
    }

    /// Keeps the frame `header` + `payload` if corked and it fits: true. False
    /// when the caller must write it itself, after [`Encoder::unwritten`].
    ///
    /// See the example on [`Encoder`].
    pub fn hold(&mut self, header: &Header, payload: &[u8]) -> bool {
        if !self.corked {
            return false;
        }
        let ends_task = header.flags & FLAG_END != 0 || header.kind == Kind::Error;
        let fits = self.held.len() + HEADER_LEN + payload.len() <= CORK_LIMIT;
        if (self.answers_only && !ends_task) || !fits {
            return false;
        }
        self.held.extend_from_slice(&header.encode());
        self.held.extend_from_slice(payload);
        true
    }

    /// Keeps the frame `header` + `payload` whatever its size, after what is
    /// held: an outbox that the caller writes as the socket takes it.
    ///
    /// See the example on [`Encoder`].
    pub fn queue(&mut self, header: &Header, payload: &[u8]) {
        self.held.extend_from_slice(&header.encode());
        self.held.extend_from_slice(payload);
    }

    /// Keeps a batch frame of `count` tasks (tag, arguments) after what is
    /// held, whatever its size, built in place (see [`Encoder::queue`]);
    /// `header` gives its payload length ([`super::batch_len`]).
    ///
    /// See the example on [`decode_batch`](super::decode_batch).
    pub fn queue_batch<'a>(
        &mut self,
        header: &Header,
        count: u32,
        tasks: impl Iterator<Item = (u64, &'a [u8])>,
    ) {
        self.held.extend_from_slice(&header.encode());
        super::encode_batch(&mut self.held, count, tasks);
    }

    /// The held bytes not written yet.
    ///
    /// See the example on [`Encoder`].
    pub fn unwritten(&self) -> &[u8] {
        &self.held[self.sent..]
    }

    /// `n` more held bytes were written; once all are, the buffer is reused.
    ///
    /// See the example on [`Encoder`].
    pub fn written(&mut self, n: usize) {
        self.sent = (self.sent + n).min(self.held.len());
        if self.sent == self.held.len() {
            self.held.clear();
            self.sent = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corked_frames_are_held_in_order_and_resume_after_a_short_write() {
        let mut e = Encoder::default();
        let data = Header::new(Kind::Data, 0, 3, 1);
        assert!(!e.hold(&data, b"abc"), "not corked");
        e.cork(false);
        assert!(e.hold(&data, b"abc"));
        assert!(e.hold(&Header::new(Kind::Ack, 0, 0, 2), &[]));
        assert_eq!(e.unwritten().len(), 2 * HEADER_LEN + 3);
        assert_eq!(&e.unwritten()[HEADER_LEN..HEADER_LEN + 3], b"abc");
        e.written(10);
        assert_eq!(e.unwritten().len(), 2 * HEADER_LEN + 3 - 10);
        e.written(1000);
        assert!(e.unwritten().is_empty());
    }

    #[test]
    fn answers_only_holds_just_what_ends_a_task() {
        let mut e = Encoder::default();
        e.cork(true);
        assert!(!e.hold(&Header::new(Kind::Data, 0, 1, 1), b"x"));
        assert!(e.hold(&Header::new(Kind::Data, FLAG_END, 1, 2), b"y"));
        assert!(e.hold(&Header::new(Kind::Error, 0, 4, 3), &[0; 4]));
    }

    #[test]
    fn a_queued_frame_of_any_size_goes_after_what_is_held() {
        let mut e = Encoder::default();
        e.cork(false);
        assert!(e.hold(&Header::new(Kind::Data, 0, 1, 1), b"a"));
        let big = alloc::vec![7u8; CORK_LIMIT];
        e.queue(&Header::new(Kind::Args, 0, big.len() as u32, 2), &big);
        assert_eq!(e.unwritten().len(), 2 * HEADER_LEN + 1 + CORK_LIMIT);
        assert_eq!(e.unwritten()[HEADER_LEN], b'a');
        assert_eq!(e.unwritten()[HEADER_LEN + 1 + 3], Kind::Args as u8);
    }

    #[test]
    fn a_queued_batch_is_one_frame_with_every_task() {
        let mut e = Encoder::default();
        let tasks: [(u64, &[u8]); 2] = [(3, b"ab"), (4, b"c")];
        let len = super::super::batch_len(tasks.iter().map(|t| t.1.len()));
        let header = Header::new(Kind::Batch, 0, len as u32, 1).for_task(3);
        e.queue_batch(&header, 2, tasks.iter().copied());
        let bytes = e.unwritten();
        assert_eq!(bytes.len(), HEADER_LEN + len);
        let decoded = Header::decode(bytes[..HEADER_LEN].try_into().unwrap(), len).unwrap();
        assert_eq!(decoded, header);
        let back: Vec<_> = super::super::decode_batch(&bytes[HEADER_LEN..])
            .unwrap()
            .collect();
        assert_eq!(back, tasks);
    }

    #[test]
    fn nothing_beyond_the_limit_is_held() {
        let mut e = Encoder::default();
        e.cork(false);
        let big = alloc::vec![0u8; CORK_LIMIT];
        assert!(!e.hold(&Header::new(Kind::Data, 0, big.len() as u32, 1), &big));
        assert!(e.unwritten().is_empty());
    }
}
