//! Marks: what was taken from a connection, by the task each frame names,
//! for the layer monitoring it (an exchange charges every frame to the task
//! it names from these, whoever took it: its store handler, or the program
//! itself). The connection records them as it decodes and takes frames;
//! recording is off until the monitor turns it on.

#[cfg(feature = "alloc")]
use alloc::collections::VecDeque;

use super::{Conn, OutBuf};

/// What was taken from a monitored connection for the task its frames
/// named (see the module documentation).
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

/// The marks not yet collected, oldest first: the newest inline (usually
/// the only one), older ones in a queue. Without an allocator there are no
/// reused workers, so a connection is one task and its marks merge into
/// one.
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

impl<B: OutBuf> Conn<B> {
    /// Monitored (or not any more): record what is taken as marks. Either
    /// way, the marks not collected yet are forgotten.
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
}

#[cfg(test)]
mod tests {
    use super::super::tests::{next, take, Fixed};
    use super::*;
    use crate::wire::{Event, Kind, FLAG_END};

    fn mark(task: u64, messages: usize, end: bool, failed: bool) -> Option<Mark> {
        Some(Mark {
            task,
            messages,
            end,
            failed,
        })
    }

    #[test]
    fn nothing_is_recorded_until_marking_is_on() {
        let (mut peer, mut conn) = (Fixed::new(), Fixed::new());
        peer.send(Kind::Data, 0, 4, b"one").unwrap();
        take(&mut peer, &mut conn);
        assert_eq!(conn.take_mark(), None);
        conn.set_marking(true);
        peer.send(Kind::Data, 0, 4, b"two").unwrap();
        take(&mut peer, &mut conn);
        assert_eq!(conn.take_mark(), mark(4, 1, false, false));
        // Turning it off forgets what was not collected.
        peer.send(Kind::Data, 0, 4, b"three").unwrap();
        take(&mut peer, &mut conn);
        conn.set_marking(false);
        peer.send(Kind::Data, 0, 4, b"four").unwrap();
        take(&mut peer, &mut conn);
        assert_eq!(conn.take_mark(), None);
    }

    #[test]
    fn data_frames_merge_per_task_and_an_end_closes_a_mark() {
        let (mut peer, mut conn) = (Fixed::new(), Fixed::new());
        conn.set_marking(true);
        peer.send(Kind::Data, 0, 1, b"a").unwrap();
        peer.send(Kind::Data, 0, 1, b"b").unwrap();
        peer.send(Kind::Data, FLAG_END, 1, b"c").unwrap();
        peer.send(Kind::Data, 0, 1, b"d").unwrap();
        // Frames the connection does not take as data count nothing.
        peer.send(Kind::Args, 0, 9, b"args").unwrap();
        for _ in 0..5 {
            take(&mut peer, &mut conn);
        }
        #[cfg(feature = "alloc")]
        {
            assert_eq!(conn.take_mark(), mark(1, 3, true, false));
            assert_eq!(conn.take_mark(), mark(1, 1, false, false));
        }
        // One task per connection: every mark merges.
        #[cfg(not(feature = "alloc"))]
        assert_eq!(conn.take_mark(), mark(1, 4, true, false));
        assert_eq!(conn.take_mark(), None);
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn a_task_end_and_an_error_frame_are_marked_for_the_task_they_name() {
        let (mut peer, mut conn) = (Fixed::new(), Fixed::new());
        conn.set_marking(true);
        peer.send(Kind::Data, 0, 2, b"x").unwrap();
        peer.send(Kind::Stop, FLAG_END, 2, &[]).unwrap();
        peer.send(Kind::Data, 0, 3, b"y").unwrap();
        peer.send(Kind::Data, 0, 5, b"z").unwrap();
        let mut payload = [0u8; crate::wire::MAX_ERROR_PAYLOAD];
        let len = crate::wire::error_payload(&crate::RemoteError::new(1, "no"), &mut payload);
        peer.send(Kind::Error, 0, 5, &payload[..len]).unwrap();
        take(&mut peer, &mut conn);
        assert_eq!(next(&mut peer, &mut conn), Ok(Event::TaskEnd(2)));
        take(&mut peer, &mut conn);
        take(&mut peer, &mut conn);
        assert!(matches!(next(&mut peer, &mut conn), Ok(Event::Remote(_))));
        // The end merges into its task's open mark; the next task opens one.
        assert_eq!(conn.take_mark(), mark(2, 1, true, false));
        assert_eq!(conn.take_mark(), mark(3, 1, false, false));
        assert_eq!(conn.take_mark(), mark(5, 1, false, true));
        assert_eq!(conn.take_mark(), None);
    }
}
