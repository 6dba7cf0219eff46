//! The encoder: frames queued to be written as the socket takes them, with
//! no I/O of its own (needs `alloc`).
//!
//! The caller writes [`Encoder::unwritten`] when its socket is writable and
//! reports what the kernel took with [`Encoder::written`], so a write cut
//! short resumes where it stopped.

use alloc::vec::Vec;

use super::Header;

/// Frames queued for writing (an outbox).
///
/// ```
/// use pprocess::wire::{Encoder, Header, Kind, HEADER_LEN};
///
/// let mut encoder = Encoder::default();
/// encoder.queue(&Header::new(Kind::Data, 0, 2, 1), b"hi");
/// encoder.queue(&Header::new(Kind::Data, 0, 2, 2), b"ok");
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
}

impl Encoder {
    /// Queues the frame `header` + `payload`, whatever its size, after what
    /// is queued.
    pub fn queue(&mut self, header: &Header, payload: &[u8]) {
        self.held.extend_from_slice(&header.encode());
        self.held.extend_from_slice(payload);
    }

    /// Keeps a batch frame of `count` tasks (tag, arguments) after what is
    /// queued, whatever its size, built in place (see [`Encoder::queue`]);
    /// `header` gives its payload length ([`super::batch_len`]).
    pub fn queue_batch<'a>(
        &mut self,
        header: &Header,
        count: u32,
        tasks: impl Iterator<Item = (u64, &'a [u8])>,
    ) {
        // One allocation at most: the header gives the payload's length.
        self.held
            .reserve(super::HEADER_LEN + header.length as usize);
        self.held.extend_from_slice(&header.encode());
        super::encode_batch(&mut self.held, count, tasks);
    }

    /// The held bytes not written yet.
    pub fn unwritten(&self) -> &[u8] {
        &self.held[self.sent..]
    }

    /// `n` more held bytes were written; once all are, the buffer is reused.
    pub fn written(&mut self, n: usize) {
        self.sent = self.sent.saturating_add(n).min(self.held.len());
        if self.sent == self.held.len() {
            self.held.clear();
            self.sent = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Kind, HEADER_LEN};
    use super::*;

    #[test]
    fn queued_frames_stay_in_order_and_resume_after_a_short_write() {
        let mut e = Encoder::default();
        e.queue(&Header::new(Kind::Data, 0, 3, 1), b"abc");
        let big = alloc::vec![7u8; 100_000];
        e.queue(&Header::new(Kind::Args, 0, big.len() as u32, 2), &big);
        assert_eq!(e.unwritten().len(), 2 * HEADER_LEN + 3 + big.len());
        assert_eq!(&e.unwritten()[HEADER_LEN..HEADER_LEN + 3], b"abc");
        assert_eq!(e.unwritten()[HEADER_LEN + 3 + 3], Kind::Args as u8);
        e.written(10);
        assert_eq!(e.unwritten().len(), 2 * HEADER_LEN + 3 + big.len() - 10);
        e.written(usize::MAX);
        assert!(e.unwritten().is_empty());
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
}
