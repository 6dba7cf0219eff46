//! A stream's policy: how a connection that is not a plain channel's ends
//! and when it acknowledges what is taken from it. A plain connection
//! acknowledges each frame its sender asked about as it is taken, and a
//! bare end of stream is a clean end. A connection with a [`StreamPolicy`]
//! asks it first: it may hold an acknowledgement back until the program
//! has really taken what the frame carried, and may require an explicit
//! end frame. The hook is defined here and implemented by the layer that
//! owns the stream (a connection to a persistent process); a layer that
//! monitors the stream (an exchange) tells the policy what its store does
//! with the messages, without knowing whose policy it is.

use alloc::boxed::Box;
use core::fmt;

use super::{Conn, OutBuf};

/// How a connection ends and acknowledges (see the module documentation).
/// Each call that releases acknowledgements returns the newest frame
/// number to acknowledge: the wire's acknowledgements are cumulative, one
/// covers every frame before it.
pub(crate) trait StreamPolicy: fmt::Debug + Send + Sync {
    /// True when the stream ends only with an end frame: a bare end of
    /// stream is then [`Error::StreamBroken`](crate::Error::StreamBroken), never a clean end.
    fn ends_with_end_frame(&self) -> bool;

    /// True when a message held while its receiver waits for something
    /// else (an acknowledgement of its own) is acknowledged only once the
    /// program takes it (a peer that never waits for an acknowledgement),
    /// not as it arrives.
    fn acks_when_taken(&self) -> bool;

    /// The connection is monitored as task `task`, whose store keeps
    /// results for the program to take later (`keeps`) or hands each on as
    /// it receives it. Returns whether the connection's peer process must
    /// outlive the monitor (it is then never killed with it).
    fn monitored(&mut self, task: usize, keeps: bool) -> bool;

    /// Frame `seq`, which asked for an acknowledgement, was taken: true to
    /// hold its acknowledgement back, false to send it now.
    fn hold(&mut self, seq: u32) -> bool;

    /// The program took `count` results of task `task` (`usize::MAX`: all
    /// of them).
    fn taken(&mut self, task: usize, count: usize) -> Option<u32>;

    /// Everything held back is released; with `stop`, nothing more is held
    /// (the connection is no longer monitored).
    fn release(&mut self, stop: bool) -> Option<u32>;
}

impl<B: OutBuf> Conn<B> {
    /// From now on `policy` decides how the stream ends and when the frames
    /// taken are acknowledged.
    pub(crate) fn set_policy(&mut self, policy: Box<dyn StreamPolicy>) {
        self.policy = Some(policy);
    }

    /// True when a policy decides when what is taken is acknowledged.
    pub(crate) fn has_policy(&self) -> bool {
        self.policy.is_some()
    }

    /// Monitored as task `task` whose store keeps results (`keeps`): see
    /// [`StreamPolicy::monitored`]. False without a policy.
    pub(crate) fn monitored(&mut self, task: usize, keeps: bool) -> bool {
        self.policy
            .as_mut()
            .is_some_and(|policy| policy.monitored(task, keeps))
    }

    /// See [`StreamPolicy::acks_when_taken`]; false without a policy.
    pub(crate) fn acks_when_taken(&self) -> bool {
        self.policy
            .as_ref()
            .is_some_and(|policy| policy.acks_when_taken())
    }

    /// The program took `count` results of task `task`: queues the
    /// acknowledgement of those held back, if any. True when one was
    /// queued (the driver writes it).
    pub(crate) fn results_taken(&mut self, task: usize, count: usize) -> bool {
        let newest = self.policy.as_mut().and_then(|p| p.taken(task, count));
        self.ack_newest(newest)
    }

    /// Queues the acknowledgement of everything held back; with `stop`,
    /// holds nothing more. True when one was queued.
    pub(crate) fn release_receipts(&mut self, stop: bool) -> bool {
        let newest = self.policy.as_mut().and_then(|p| p.release(stop));
        self.ack_newest(newest)
    }

    /// True when the policy holds back the acknowledgement of frame `seq`,
    /// just taken.
    pub(super) fn holds_ack(&mut self, seq: u32) -> bool {
        self.policy.as_mut().is_some_and(|policy| policy.hold(seq))
    }

    fn ack_newest(&mut self, newest: Option<u32>) -> bool {
        // No room: lost with a peer that never reads (see `acknowledge`).
        newest.is_some_and(|seq| self.ack(seq).is_ok())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use alloc::vec::Vec;

    use super::super::tests::{next, read, Fixed};
    use super::*;
    use crate::wire::{Event, Kind, FLAG_ACK_REQUESTED};

    /// A policy for tests: a stream that ends with an end frame, whose
    /// messages held while waiting are acknowledged when taken, and which,
    /// with `holds`, holds every acknowledgement until results are taken.
    #[derive(Debug, Default)]
    pub(crate) struct Rule {
        pub(crate) holds: bool,
        held: Vec<u32>,
    }

    impl StreamPolicy for Rule {
        fn ends_with_end_frame(&self) -> bool {
            true
        }

        fn acks_when_taken(&self) -> bool {
            true
        }

        fn monitored(&mut self, task: usize, keeps: bool) -> bool {
            task == 7 && keeps
        }

        fn hold(&mut self, seq: u32) -> bool {
            if self.holds {
                self.held.push(seq);
            }
            self.holds
        }

        fn taken(&mut self, _task: usize, count: usize) -> Option<u32> {
            let count = count.min(self.held.len());
            self.held.drain(..count).next_back()
        }

        fn release(&mut self, _stop: bool) -> Option<u32> {
            self.held.drain(..).next_back()
        }
    }

    /// Sends `count` data frames asking for an acknowledgement from `peer`
    /// and takes them on `conn`; returns how many acknowledgements `conn`
    /// queued as it took them.
    fn take_acked(peer: &mut Fixed, conn: &mut Fixed, count: usize) -> usize {
        for _ in 0..count {
            peer.send(Kind::Data, FLAG_ACK_REQUESTED, 0, b"r").unwrap();
        }
        (0..count)
            .filter(|_| {
                let (header, _) = read(peer, conn);
                conn.took(header, false);
                conn.ack_taken(header)
            })
            .count()
    }

    #[test]
    fn without_a_policy_what_is_taken_is_acknowledged_at_once() {
        let (mut peer, mut conn) = (Fixed::new(), Fixed::new());
        assert!(!conn.ends_with_end_frame() && !conn.acks_when_taken());
        assert!(!conn.monitored(7, true));
        assert_eq!(take_acked(&mut peer, &mut conn, 2), 2);
        assert_eq!(next(&mut conn, &mut peer), Ok(Event::Ack(1)));
        assert_eq!(next(&mut conn, &mut peer), Ok(Event::Ack(2)));
        // A frame that asked for nothing gets nothing.
        peer.send(Kind::Data, 0, 0, b"r").unwrap();
        let (header, _) = read(&mut peer, &mut conn);
        assert!(!conn.ack_taken(header));
        assert!(!conn.results_taken(0, 1) && !conn.release_receipts(true));
        assert!(conn.pending().is_empty());
    }

    #[test]
    fn a_policy_holds_acknowledgements_until_results_are_taken() {
        let (mut peer, mut conn) = (Fixed::new(), Fixed::new());
        conn.set_policy(Box::new(Rule {
            holds: true,
            ..Rule::default()
        }));
        assert!(conn.ends_with_end_frame() && conn.acks_when_taken());
        assert!(conn.monitored(7, true) && !conn.monitored(7, false));
        assert_eq!(take_acked(&mut peer, &mut conn, 3), 0);
        assert!(conn.pending().is_empty(), "all three held");
        // Taking two acknowledges both at once: acknowledgements are
        // cumulative.
        assert!(conn.results_taken(7, 2));
        assert_eq!(next(&mut conn, &mut peer), Ok(Event::Ack(2)));
        assert!(conn.pending().is_empty());
        assert!(conn.release_receipts(false));
        assert_eq!(next(&mut conn, &mut peer), Ok(Event::Ack(3)));
        assert!(!conn.release_receipts(true), "nothing left to release");
        assert_eq!(peer.acked(), 3);
    }
}
