//! The keeper's inbox: messages clients sent to the callable, until the
//! callable takes them, as a state machine without I/O.
//!
//! Each message is written to the callable's channel as a data frame asking
//! for an acknowledgement, which the callable's channel sends as the
//! callable receives it. Only then is the message dropped, and the client
//! that sent it, if it asked, acknowledged. A message outlives the client
//! that sent it: what the callable has not taken when it finishes is
//! counted ([`Inbox::untaken`]) and reported, never silently dropped. The
//! keeper writes the frames as far as the callable's socket buffer allows
//! ([`Inbox::pending`], [`Inbox::wrote`]), so a callable that does not
//! receive never holds the keeper up.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::wire::{Header, Kind, FLAG_ACK_REQUESTED, HEADER_LEN};

/// A message on its way to the callable.
struct Inbound {
    header: [u8; HEADER_LEN],
    payload: Vec<u8>,
    /// Its frame number on the callable's channel.
    seq: u32,
    /// The sending client's frame number, if it asked for an
    /// acknowledgement and is still connected.
    client_seq: Option<u32>,
}

/// The keeper's inbox (see the [module documentation](self)).
pub(super) struct Inbox {
    /// Messages not yet taken by the callable, oldest first.
    queue: VecDeque<Inbound>,
    /// What `queue` holds, each message counted as [`Inbox::cost`].
    bytes: usize,
    /// Messages at the front written whole to the callable.
    written: usize,
    /// Bytes of the next message already written.
    done: usize,
    /// The next frame number on the callable's channel.
    next_seq: u32,
}

impl Inbox {
    pub(super) fn new() -> Inbox {
        Inbox {
            queue: VecDeque::new(),
            bytes: 0,
            written: 0,
            done: 0,
            next_seq: 1,
        }
    }

    /// Adds a message from the current client; `client_seq` is its frame
    /// number if the client asked for an acknowledgement.
    pub(super) fn push(&mut self, payload: Vec<u8>, client_seq: Option<u32>) {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        let header = Header::new(Kind::Data, FLAG_ACK_REQUESTED, payload.len() as u32, seq);
        self.bytes += Inbox::cost(&payload);
        self.queue.push_back(Inbound {
            header: header.encode(),
            payload,
            seq,
            client_seq,
        });
    }

    /// Bytes of the messages not yet taken, each counted with its
    /// bookkeeping ([`Inbox::cost`]), so that a flood of empty messages is
    /// bounded as a flood of large ones is.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// What one message holds: its payload and its entry (the frame header
    /// included).
    fn cost(payload: &[u8]) -> usize {
        core::mem::size_of::<Inbound>() + payload.len()
    }

    /// Messages the callable has not taken.
    pub(super) fn untaken(&self) -> usize {
        self.queue.len()
    }

    /// The current client left: the messages it sent still go to the
    /// callable, but nobody is left to acknowledge them to.
    pub(super) fn forget_client(&mut self) {
        for message in &mut self.queue {
            message.client_seq = None;
        }
    }

    /// The bytes to write to the callable now, as the rest of a frame's
    /// header and the rest of its payload; `None` when everything is
    /// written.
    pub(super) fn pending(&self) -> Option<(&[u8], &[u8])> {
        let message = self.queue.get(self.written)?;
        let header = &message.header[self.done.min(HEADER_LEN)..];
        let payload = &message.payload[self.done.saturating_sub(HEADER_LEN)..];
        Some((header, payload))
    }

    /// The callable's socket took `n` bytes of what [`Inbox::pending`] gave.
    pub(super) fn wrote(&mut self, n: usize) {
        let Some(message) = self.queue.get(self.written) else {
            return;
        };
        self.done += n;
        if self.done >= HEADER_LEN + message.payload.len() {
            self.written += 1;
            self.done = 0;
        }
    }

    /// The callable acknowledged frame `seq` and every one before it (it
    /// took those messages): drops them, and returns the newest frame
    /// number to acknowledge to the current client, if any of them asked.
    /// An acknowledgement of a frame not written whole releases nothing.
    pub(super) fn acked(&mut self, seq: u32) -> Option<u32> {
        let mut client_ack = None;
        while self.written > 0 {
            let Some(message) = self.queue.front() else {
                break;
            };
            if (seq.wrapping_sub(message.seq) as i32) < 0 {
                break;
            }
            client_ack = message.client_seq.or(client_ack);
            self.bytes -= Inbox::cost(&message.payload);
            self.queue.pop_front();
            self.written -= 1;
        }
        client_ack
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_all(inbox: &mut Inbox, piece: usize) -> usize {
        let mut frames = 0;
        while let Some((header, payload)) = inbox.pending() {
            let n = (header.len() + payload.len()).min(piece);
            let whole = header.len() + payload.len() == n;
            inbox.wrote(n);
            frames += usize::from(whole);
        }
        frames
    }

    #[test]
    fn messages_are_written_in_pieces_and_numbered() {
        let mut inbox = Inbox::new();
        inbox.push(vec![7; 30], None);
        inbox.push(vec![8; 2], Some(5));
        let (header, payload) = inbox.pending().unwrap();
        assert_eq!((header.len(), payload.len()), (HEADER_LEN, 30));
        let decoded = Header::decode(header.try_into().unwrap(), usize::MAX).unwrap();
        assert_eq!((decoded.kind, decoded.seq), (Kind::Data, 1));
        assert!(decoded.flags & FLAG_ACK_REQUESTED != 0);
        inbox.wrote(HEADER_LEN + 4);
        let (header, payload) = inbox.pending().unwrap();
        assert_eq!((header.len(), payload.len()), (0, 26));
        inbox.wrote(26);
        assert_eq!(write_all(&mut inbox, 3), 1);
        assert!(inbox.pending().is_none());
    }

    #[test]
    fn a_message_is_dropped_only_when_the_callable_takes_it() {
        let mut inbox = Inbox::new();
        inbox.push(vec![1], Some(3));
        inbox.push(vec![2], None);
        inbox.push(vec![3], Some(9));
        // Not written yet: an acknowledgement releases nothing.
        assert_eq!(inbox.acked(3), None);
        assert_eq!(inbox.untaken(), 3);
        write_all(&mut inbox, usize::MAX);
        assert_eq!(inbox.acked(1), Some(3));
        assert_eq!(inbox.acked(2), None);
        assert_eq!(inbox.untaken(), 1);
        assert_eq!(inbox.bytes(), Inbox::cost(&[3]));
        assert_eq!(inbox.acked(3), Some(9));
        assert_eq!(inbox.untaken(), 0);
    }

    #[test]
    fn a_client_that_left_is_not_acknowledged_but_its_messages_stay() {
        let mut inbox = Inbox::new();
        inbox.push(vec![1, 2], Some(4));
        inbox.forget_client();
        assert_eq!(inbox.untaken(), 1);
        write_all(&mut inbox, usize::MAX);
        assert_eq!(inbox.acked(1), None);
        assert_eq!(inbox.untaken(), 0);
    }

    #[test]
    fn empty_messages_count_against_the_bound() {
        let mut inbox = Inbox::new();
        let mut admitted = 0usize;
        while inbox.bytes() < super::super::keeper::INBOX_BYTES && admitted < 4 << 20 {
            inbox.push(Vec::new(), None);
            admitted += 1;
        }
        assert!(inbox.bytes() >= super::super::keeper::INBOX_BYTES);
        assert!(admitted * HEADER_LEN <= super::super::keeper::INBOX_BYTES);
    }
}
