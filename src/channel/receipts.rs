//! Receipts: a channel whose acknowledgements someone else decides on. A
//! channel acknowledges each frame its sender asked about as it takes it;
//! one with [`Receipts`] asks them first, and they may hold the
//! acknowledgement back until the program has really taken what the frame
//! carried (a connection to a persistent process does, so that results
//! stored and never taken go to its next client). An exchange monitoring
//! the channel tells them what its store does with the messages, without
//! knowing who they are.

use alloc::boxed::Box;
use core::fmt;

use super::Channel;

/// Decides when the frames a channel takes are acknowledged (see the
/// module documentation). Each call that releases acknowledgements returns
/// the newest frame number to acknowledge: the wire's acknowledgements are
/// cumulative, one covers every frame before it.
pub(crate) trait Receipts: fmt::Debug + Send + Sync {
    /// The channel is monitored by an exchange as task `task`, whose store
    /// keeps results for the program to take later (`keeps`) or hands each
    /// on as it receives it. Returns whether the channel's peer process
    /// must outlive the exchange (it is then never killed with it).
    fn monitored(&mut self, task: usize, keeps: bool) -> bool;

    /// Frame `seq`, which asked for an acknowledgement, was taken: true to
    /// hold its acknowledgement back, false to send it now.
    fn hold(&mut self, seq: u32) -> bool;

    /// The program took `count` results of task `task` (`usize::MAX`: all
    /// of them).
    fn taken(&mut self, task: usize, count: usize) -> Option<u32>;

    /// Everything held back is released; with `stop`, nothing more is held
    /// (the channel is no longer monitored).
    fn release(&mut self, stop: bool) -> Option<u32>;
}

impl Channel {
    /// From now on `receipts` decide when the frames taken are acknowledged.
    pub(crate) fn set_receipts(&mut self, receipts: Box<dyn Receipts>) {
        self.receipts = Some(receipts);
    }

    /// Monitored by an exchange as task `task` whose store keeps results
    /// (`keeps`): see [`Receipts::monitored`]. False for a channel without
    /// receipts.
    pub(crate) fn monitored(&mut self, task: usize, keeps: bool) -> bool {
        self.receipts
            .as_mut()
            .is_some_and(|receipts| receipts.monitored(task, keeps))
    }

    /// The program took `count` results of task `task`: acknowledges them
    /// if they were held back.
    pub(crate) fn results_taken(&mut self, task: usize, count: usize) {
        let newest = self.receipts.as_mut().and_then(|r| r.taken(task, count));
        self.send_receipt(newest);
    }

    /// Acknowledges everything held back; with `stop`, holds nothing more.
    pub(crate) fn release_receipts(&mut self, stop: bool) {
        let newest = self.receipts.as_mut().and_then(|r| r.release(stop));
        self.send_receipt(newest);
    }

    fn send_receipt(&mut self, newest: Option<u32>) {
        if let Some(seq) = newest {
            self.send_ack(seq);
        }
    }
}

// Receipts do not change what a channel may do across threads.
const _: fn() = || {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Channel>();
};
