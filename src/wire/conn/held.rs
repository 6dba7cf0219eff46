//! Held messages: those a receiver read past and holds, whole, for a later
//! take, oldest first. A side that waits for an acknowledgement holds the
//! messages that arrive meanwhile for its later receives; a reused worker
//! running a task holds the loop's frames (args, batch) the task's receives
//! read past, for the loop. While a task runs, the task filter
//! ([`Conn::route`]) says which held message a receive takes.
//!
//! A message is taken from the stream as it is held (its mark recorded,
//! its reply task set); its acknowledgement is sent then, or, under a
//! policy that acknowledges only what the program takes, when it leaves
//! the queue.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::{Conn, OutBuf, Route};
use crate::error::Error;
use crate::wire::Header;

/// One held message.
#[derive(Debug)]
pub(super) struct Held {
    header: Header,
    message: Vec<u8>,
    /// Its acknowledgement is still due (sent when it is taken).
    ack_due: bool,
}

/// The held messages, oldest first.
pub(super) type HeldQueue = VecDeque<Held>;

impl<B: OutBuf> Conn<B> {
    /// Makes room to hold one more message, before its payload is read
    /// (so that a failed allocation loses nothing): `ENOMEM` otherwise.
    pub(crate) fn reserve_held(&mut self) -> Result<(), Error> {
        Ok(self.held.try_reserve(1)?)
    }

    /// Holds `header`'s message, already taken (and acknowledged as it was),
    /// for later. Call [`Conn::reserve_held`] first.
    pub(crate) fn hold(&mut self, header: Header, message: Vec<u8>) {
        self.held.push_back(Held {
            header,
            message,
            ack_due: false,
        });
    }

    /// The pending message `header`, read whole into `message` while the
    /// driver waited for something else, is taken and held for a later
    /// receive. Its acknowledgement is queued now unless the stream policy
    /// acknowledges such messages only once the program takes them
    /// ([`Conn::take_held`]). True when one was queued (the driver writes
    /// it). Call [`Conn::reserve_held`] first.
    pub(crate) fn hold_taken(&mut self, header: Header, message: Vec<u8>) -> bool {
        let ack_due = self.acks_when_taken();
        self.took(header, false);
        let acked = !ack_due && self.ack_taken(header);
        self.held.push_back(Held {
            header,
            message,
            ack_due,
        });
        acked
    }

    /// True while any message is held.
    #[inline]
    pub(crate) fn has_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// True while a task frame (args, batch) is held for a reused worker's
    /// loop.
    pub(crate) fn holds_task(&self) -> bool {
        self.held.iter().any(|held| held.header.kind.is_task())
    }

    /// Where the oldest held message a receive takes is (see [`Route`]).
    #[inline]
    fn held_index(&self) -> Option<usize> {
        let receives = |held: &Held| self.route(&held.header) == Route::Receive;
        self.held.iter().position(receives)
    }

    /// The oldest held message a receive takes: its header and bytes.
    #[inline]
    pub(crate) fn held_message(&self) -> Option<(Header, &[u8])> {
        let held = &self.held[self.held_index()?];
        Some((held.header, &held.message))
    }

    /// Takes the oldest held message a receive takes, and queues its
    /// acknowledgement if that is still due (and the policy does not hold
    /// it back). Returns the message and whether an acknowledgement was
    /// queued.
    pub(crate) fn take_held(&mut self) -> Option<(Vec<u8>, bool)> {
        let held = self.held.remove(self.held_index()?)?;
        let acked = self.release_held(&held);
        Some((held.message, acked))
    }

    /// In a reused worker's loop: the oldest held task frame, its header
    /// and payload. The messages held before it were read past for tasks
    /// that are over: they are dropped (acknowledged if that was due).
    /// Returns it, if any, and whether an acknowledgement was queued.
    pub(crate) fn take_held_task(&mut self) -> (Option<(Header, Vec<u8>)>, bool) {
        let mut acked = false;
        while let Some(held) = self.held.pop_front() {
            if held.header.kind.is_task() {
                return (Some((held.header, held.message)), acked);
            }
            acked |= self.release_held(&held);
        }
        (None, acked)
    }

    /// `held` left the queue: queues its acknowledgement if it is due.
    fn release_held(&mut self, held: &Held) -> bool {
        held.ack_due && self.ack_taken(held.header)
    }
}

#[cfg(test)]
mod tests {
    use alloc::boxed::Box;

    use super::super::policy::tests::Rule;
    use super::super::tests::{next, read, Fixed};
    use crate::wire::{Event, Kind, FLAG_ACK_REQUESTED};

    /// Reads the next message `peer` sent into `conn` and holds it as a
    /// side waiting for an acknowledgement does; returns whether an
    /// acknowledgement was queued.
    fn hold_next(peer: &mut Fixed, conn: &mut Fixed) -> bool {
        let (header, payload) = read(peer, conn);
        conn.reserve_held().unwrap();
        conn.hold_taken(header, payload.to_vec())
    }

    fn send_three(peer: &mut Fixed) {
        for (task, message) in [(1, b"one"), (2, b"two"), (3, b"six")] {
            peer.send(Kind::Data, FLAG_ACK_REQUESTED, task, message)
                .unwrap();
        }
    }

    #[test]
    fn held_messages_are_taken_in_order_and_acknowledged_as_they_arrive() {
        let (mut peer, mut conn) = (Fixed::new(), Fixed::new());
        send_three(&mut peer);
        assert!((0..3).all(|_| hold_next(&mut peer, &mut conn)));
        assert_eq!(conn.task(), 3, "replies go to the last message's task");
        for seq in 1..=3 {
            assert_eq!(next(&mut conn, &mut peer), Ok(Event::Ack(seq)));
        }
        assert!(conn.has_held());
        assert_eq!(
            conn.held_message().map(|(h, m)| (h.seq, m)),
            Some((1, &b"one"[..]))
        );
        assert_eq!(conn.take_held(), Some((b"one".to_vec(), false)));
        assert_eq!(conn.take_held(), Some((b"two".to_vec(), false)));
        assert_eq!(conn.take_held(), Some((b"six".to_vec(), false)));
        assert_eq!(conn.take_held(), None);
        assert!(!conn.has_held() && conn.pending().is_empty());
    }

    #[test]
    fn under_a_policy_a_held_message_is_acknowledged_only_when_taken() {
        let (mut peer, mut conn) = (Fixed::new(), Fixed::new());
        conn.set_policy(Box::new(Rule::default()));
        send_three(&mut peer);
        assert!((0..3).all(|_| !hold_next(&mut peer, &mut conn)));
        assert!(conn.pending().is_empty(), "nothing acknowledged yet");
        assert_eq!(conn.take_held(), Some((b"one".to_vec(), true)));
        assert_eq!(next(&mut conn, &mut peer), Ok(Event::Ack(1)));
        assert_eq!(conn.take_held(), Some((b"two".to_vec(), true)));
        assert_eq!(next(&mut conn, &mut peer), Ok(Event::Ack(2)));
        assert_eq!(peer.acked(), 2, "the third is still held, unacknowledged");
        assert!(conn.pending().is_empty());
    }

    #[test]
    fn a_running_task_takes_its_own_and_the_loop_its_frames() {
        let (mut peer, mut conn) = (Fixed::new(), Fixed::new());
        conn.set_policy(Box::new(Rule::default()));
        conn.run_task(Some(5));
        peer.send(Kind::Data, FLAG_ACK_REQUESTED, 4, b"old")
            .unwrap();
        peer.send(Kind::Args, 0, 6, b"next").unwrap();
        peer.send(Kind::Data, 0, 5, b"mine").unwrap();
        hold_next(&mut peer, &mut conn);
        let (args, payload) = read(&mut peer, &mut conn);
        conn.took(args, false);
        conn.hold(args, payload.to_vec());
        hold_next(&mut peer, &mut conn);
        assert!(conn.holds_task());
        // The task's receive skips what is not its own.
        assert_eq!(conn.held_message().map(|(h, _)| h.task), Some(5));
        assert_eq!(conn.take_held(), Some((b"mine".to_vec(), false)));
        assert_eq!(conn.take_held(), None, "nothing else is the task's");
        // The loop drops the message of a task that is over, acknowledged
        // as was due, and gets its frame.
        conn.run_task(None);
        let (task, acked) = conn.take_held_task();
        assert_eq!(
            task.map(|(h, m)| (h.kind, h.task, m)),
            Some((Kind::Args, 6, b"next".to_vec()))
        );
        assert!(acked);
        assert_eq!(next(&mut conn, &mut peer), Ok(Event::Ack(1)));
        assert!(!conn.has_held() && !conn.holds_task());
        assert_eq!(conn.take_held_task(), (None, false));
    }
}
