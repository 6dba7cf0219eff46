//! A client's connection to a persistent process, as a channel kind: its
//! stream ends with an end frame, and when an exchange whose store keeps
//! results monitors it, each result is acknowledged when the program takes
//! it, not when the store receives it. A result stored and never taken (the
//! program died, or dropped the exchange) was never acknowledged, so the
//! keeper sends it again to its next client: nothing is lost.

use alloc::boxed::Box;
use alloc::collections::VecDeque;

use crate::channel::Channel;
use crate::sys::{Child, Fd};
use crate::wire::StreamPolicy;

/// A persistent stream's client end over the connected socket `fd`;
/// `keeper` is the keeper process if this process created it.
pub(super) fn client_channel(fd: Fd, keeper: Option<Child>) -> Channel {
    let mut channel = Channel::from_fd(fd, keeper);
    channel.set_policy(Box::new(Connection::default()));
    channel
}

/// The acknowledgements of a connection (see the module documentation).
#[derive(Debug, Default)]
struct Connection {
    /// Its task in an exchange whose store keeps results: its
    /// acknowledgements are held back meanwhile.
    task: Option<usize>,
    /// The frame numbers whose acknowledgement is held back, oldest first:
    /// one per result stored and not taken.
    held: VecDeque<u32>,
}

impl StreamPolicy for Connection {
    fn ends_with_end_frame(&self) -> bool {
        // The keeper ends every stream with an end frame: a bare end of
        // stream means it died.
        true
    }

    fn acks_when_taken(&self) -> bool {
        // The keeper never waits for an acknowledgement, and sends a result
        // never acknowledged to its next client.
        true
    }

    fn monitored(&mut self, task: usize, keeps: bool) -> bool {
        self.task = keeps.then_some(task);
        // The keeper serves other clients after this one: an exchange must
        // never kill it (a keeper this process created is collected once it
        // exits).
        true
    }

    fn hold(&mut self, seq: u32) -> bool {
        // Without memory to hold it, it is acknowledged now: the result is
        // stored all the same, only no longer sent again after a crash.
        self.task.is_some() && self.held.try_reserve(1).is_ok() && {
            self.held.push_back(seq);
            true
        }
    }

    fn taken(&mut self, task: usize, count: usize) -> Option<u32> {
        if self.task != Some(task) {
            return None;
        }
        let count = count.min(self.held.len());
        self.held.drain(..count).next_back()
    }

    fn release(&mut self, stop: bool) -> Option<u32> {
        if stop {
            self.task = None;
        }
        self.held.drain(..).next_back()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_released_as_they_are_taken_and_only_for_their_task() {
        let mut connection = Connection::default();
        assert!(!connection.hold(1), "not monitored: acknowledged at once");
        assert!(connection.monitored(7, true));
        for seq in 2..=5 {
            assert!(connection.hold(seq));
        }
        assert_eq!(connection.taken(8, 1), None);
        assert_eq!(connection.taken(7, 1), Some(2));
        assert_eq!(connection.taken(7, 2), Some(4));
        assert_eq!(connection.release(false), Some(5));
        assert_eq!(connection.release(false), None);
        assert!(connection.hold(6));
        assert_eq!(connection.release(true), Some(6));
        assert!(!connection.hold(7), "no longer monitored");
    }

    #[test]
    fn a_store_that_hands_results_on_holds_nothing_back() {
        let mut connection = Connection::default();
        assert!(connection.monitored(0, false));
        assert!(!connection.hold(1));
        assert_eq!(connection.taken(0, usize::MAX), None);
    }
}
