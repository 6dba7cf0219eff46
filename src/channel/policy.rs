//! A stream's policy: how a channel that is not a plain channel ends and
//! when it acknowledges what it takes. A plain channel acknowledges each
//! frame its sender asked about as it takes it, and a bare end of stream is
//! a clean end. A channel with a [`StreamPolicy`] (defined by the layer that
//! owns the stream, such as a connection to a persistent process) asks it
//! first: it may hold an acknowledgement back until the program has really
//! taken what the frame carried, and may require an explicit end frame. An
//! exchange monitoring the channel tells the policy what its store does
//! with the messages, without knowing whose policy it is.

use alloc::boxed::Box;
use core::fmt;

use super::Channel;

/// How a channel ends and acknowledges (see the module documentation). Each
/// call that releases acknowledgements returns the newest frame number to
/// acknowledge: the wire's acknowledgements are cumulative, one covers every
/// frame before it.
pub(crate) trait StreamPolicy: fmt::Debug + Send + Sync {
    /// True when the stream ends only with an end frame: a bare end of
    /// stream is then [`Error::StreamBroken`](crate::Error::StreamBroken), never a clean end.
    fn ends_with_end_frame(&self) -> bool;

    /// True when a message [`Channel::send_acked`] keeps while it waits is
    /// acknowledged only once the program takes it (a peer that never waits
    /// for an acknowledgement), not as it arrives.
    fn acks_when_taken(&self) -> bool;

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
    /// From now on `policy` decides how the stream ends and when the frames
    /// taken are acknowledged.
    pub(crate) fn set_policy(&mut self, policy: Box<dyn StreamPolicy>) {
        self.policy = Some(policy);
    }

    /// Monitored by an exchange as task `task` whose store keeps results
    /// (`keeps`): see [`StreamPolicy::monitored`]. False for a plain
    /// channel.
    pub(crate) fn monitored(&mut self, task: usize, keeps: bool) -> bool {
        self.policy
            .as_mut()
            .is_some_and(|policy| policy.monitored(task, keeps))
    }

    /// The program took `count` results of task `task`: acknowledges them
    /// if they were held back.
    pub(crate) fn results_taken(&mut self, task: usize, count: usize) {
        let newest = self.policy.as_mut().and_then(|p| p.taken(task, count));
        self.send_receipt(newest);
    }

    /// Acknowledges everything held back; with `stop`, holds nothing more.
    pub(crate) fn release_receipts(&mut self, stop: bool) {
        let newest = self.policy.as_mut().and_then(|p| p.release(stop));
        self.send_receipt(newest);
    }

    /// See [`StreamPolicy::acks_when_taken`]; false for a plain channel.
    pub(super) fn holds_stashed_acks(&self) -> bool {
        self.policy
            .as_ref()
            .is_some_and(|policy| policy.acks_when_taken())
    }

    fn send_receipt(&mut self, newest: Option<u32>) {
        if let Some(seq) = newest {
            self.send_ack(seq);
        }
    }
}

// A policy does not change what a channel may do across threads.
const _: fn() = || {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Channel>();
};
