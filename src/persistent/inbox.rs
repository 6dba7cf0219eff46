//! The keeper's inbox: messages clients sent to the callable, until the
//! callable takes them, as a state machine without I/O.
//!
//! Each message is queued on the callable's connection ([`Inbox::next`],
//! [`Inbox::queued_as`]) as a data frame asking for an acknowledgement,
//! which the callable's channel sends as the callable receives it. Only then
//! is the message dropped, and the client that sent it, if it asked,
//! acknowledged. A message outlives the client that sent it: what the
//! callable has not taken when it finishes is counted ([`Inbox::untaken`])
//! and reported, never silently dropped. The keeper queues a message only
//! once the connection has written the one before, so a callable that does
//! not receive never holds the keeper up, and nothing is copied twice.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// A message on its way to the callable.
struct Inbound {
    payload: Vec<u8>,
    /// Its frame number on the callable's connection, once queued there.
    seq: Option<u32>,
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
    /// Messages at the front queued on the callable's connection.
    queued: usize,
}

impl Inbox {
    pub(super) fn new() -> Inbox {
        Inbox {
            queue: VecDeque::new(),
            bytes: 0,
            queued: 0,
        }
    }

    /// Adds a message from the current client; `client_seq` is its frame
    /// number if the client asked for an acknowledgement.
    pub(super) fn push(&mut self, payload: Vec<u8>, client_seq: Option<u32>) {
        self.bytes += Inbox::cost(&payload);
        self.queue.push_back(Inbound {
            payload,
            seq: None,
            client_seq,
        });
    }

    /// Bytes of the messages not yet taken, each counted with its
    /// bookkeeping ([`Inbox::cost`]), so that a flood of empty messages is
    /// bounded as a flood of large ones is.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// What one message holds: its payload and its entry (at least a frame
    /// header's worth).
    fn cost(payload: &[u8]) -> usize {
        core::mem::size_of::<Inbound>().max(crate::wire::HEADER_LEN) + payload.len()
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

    /// The payload of the next message to queue on the callable's
    /// connection, if any.
    pub(super) fn next(&self) -> Option<&[u8]> {
        Some(&self.queue.get(self.queued)?.payload)
    }

    /// The message [`Inbox::next`] gave was queued as frame `seq`.
    pub(super) fn queued_as(&mut self, seq: u32) {
        if let Some(message) = self.queue.get_mut(self.queued) {
            message.seq = Some(seq);
            self.queued += 1;
        }
    }

    /// The callable acknowledged frame `seq` and every one before it (it
    /// took those messages): drops them, and returns the newest frame
    /// number to acknowledge to the current client, if any of them asked.
    pub(super) fn acked(&mut self, seq: u32) -> Option<u32> {
        let mut client_ack = None;
        while let Some(Inbound {
            seq: Some(sent), ..
        }) = self.queue.front()
        {
            if (seq.wrapping_sub(*sent) as i32) < 0 {
                break;
            }
            if let Some(message) = self.queue.pop_front() {
                client_ack = message.client_seq.or(client_ack);
                self.bytes -= Inbox::cost(&message.payload);
                self.queued -= 1;
            }
        }
        client_ack
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::HEADER_LEN;

    /// Queues every message, numbering them from `first`; returns how many.
    fn queue_all(inbox: &mut Inbox, first: u32) -> u32 {
        let mut seq = first;
        while inbox.next().is_some() {
            inbox.queued_as(seq);
            seq += 1;
        }
        seq - first
    }

    #[test]
    fn messages_are_queued_in_order_once_each() {
        let mut inbox = Inbox::new();
        inbox.push(vec![7; 30], None);
        inbox.push(vec![8; 2], Some(5));
        assert_eq!(inbox.next(), Some(&[7; 30][..]));
        inbox.queued_as(1);
        assert_eq!(inbox.next(), Some(&[8; 2][..]));
        inbox.queued_as(2);
        assert_eq!(inbox.next(), None);
        assert_eq!(inbox.acked(2), Some(5));
        assert_eq!(inbox.untaken(), 0);
    }

    #[test]
    fn a_message_is_dropped_only_when_the_callable_takes_it() {
        let mut inbox = Inbox::new();
        inbox.push(vec![1], Some(3));
        inbox.push(vec![2], None);
        inbox.push(vec![3], Some(9));
        // Not queued yet: an acknowledgement releases nothing.
        assert_eq!(inbox.acked(3), None);
        assert_eq!(inbox.untaken(), 3);
        assert_eq!(queue_all(&mut inbox, 1), 3);
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
        queue_all(&mut inbox, 1);
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
