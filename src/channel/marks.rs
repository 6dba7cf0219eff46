//! Marks: what was taken from a channel monitored by an exchange, by task,
//! so that the exchange charges every frame to the task it names, whoever
//! received it.

#[cfg(feature = "alloc")]
use alloc::collections::VecDeque;

use super::Channel;

/// What was taken from a channel monitored by an exchange, for the task a
/// frame names: the exchange charges every frame to its task from these,
/// whoever received it (its store handler, or the program after
/// [`Exchange::ready`](crate::exchange::Exchange::ready)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mark {
    /// The task the frames named.
    pub(crate) task: u64,
    /// Messages taken.
    pub(crate) messages: usize,
    /// The task ended (its last frame was taken).
    pub(crate) end: bool,
    /// The task failed: an error frame was taken (it ends the task).
    pub(crate) failed: bool,
}

/// The marks not yet collected by the exchange, oldest first: the newest
/// inline (usually the only one), older ones in a queue. Without an
/// allocator there are no reused workers, so a channel is one task and its
/// marks merge into one.
#[derive(Debug, Default)]
pub(super) struct TakenByTask {
    on: bool,
    #[cfg(feature = "alloc")]
    older: VecDeque<Mark>,
    last: Option<Mark>,
}

impl TakenByTask {
    #[inline]
    pub(super) fn record(&mut self, task: u64, messages: usize, end: bool, failed: bool) {
        if !self.on {
            return;
        }
        let merge = |mark: &mut Mark| {
            mark.messages += messages;
            mark.end |= end;
            mark.failed |= failed;
        };
        match &mut self.last {
            Some(mark) if mark.task == task && !mark.end && !mark.failed => merge(mark),
            #[cfg(not(feature = "alloc"))]
            Some(mark) => merge(mark),
            last => {
                let mark = Mark {
                    task,
                    messages,
                    end,
                    failed,
                };
                #[cfg(feature = "alloc")]
                if let Some(older) = last.replace(mark) {
                    self.older.push_back(older);
                }
                #[cfg(not(feature = "alloc"))]
                {
                    *last = Some(mark);
                }
            }
        }
    }

    #[inline]
    fn take(&mut self) -> Option<Mark> {
        #[cfg(feature = "alloc")]
        if let Some(mark) = self.older.pop_front() {
            return Some(mark);
        }
        self.last.take()
    }
}

impl Channel {
    /// Monitored by an exchange (or not): record what is taken as marks for it.
    pub(crate) fn set_marking(&mut self, on: bool) {
        self.marks = TakenByTask {
            on,
            ..TakenByTask::default()
        };
    }

    /// The oldest mark not yet collected.
    #[inline]
    pub(crate) fn take_mark(&mut self) -> Option<Mark> {
        self.marks.take()
    }

    /// On a creator's side: what is sent from now on goes to task `task`.
    pub(crate) fn reply_to(&mut self, task: u64) {
        self.conn.reply_to(task);
    }
}
