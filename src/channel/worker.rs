//! A channel inside a reused worker: the loop's frames (args, stop) are kept
//! for the loop, and a callable's receive sees only its own task's messages.

use alloc::vec::Vec;

use super::{Channel, Frame};
use crate::error::{Error, Result};
use crate::sys::Deadline;
use crate::wire::{self, Kind, FLAG_END};

/// A frame a reused worker's loop owns (args or stop) that a callable's
/// receive met while waiting for its own task's messages: kept for the loop.
#[derive(Debug)]
pub(super) enum LoopFrame {
    Args(u64, Vec<u8>),
    Stop,
}

/// The task a reused worker's callable is running.
#[derive(Clone, Copy, Debug)]
pub(super) struct WorkerTask {
    /// Its tag (the args frame's `task` field).
    pub(super) task: u64,
    /// Its one result went out (without `continuous`): nothing more will
    /// come for it, so a loop frame means "no more for this task".
    pub(super) answered: bool,
}

impl Channel {
    /// In a reused worker: flag the next message sent as the task's result
    /// and last message; returns whether the previous request was still open.
    pub(crate) fn set_end_next_send(&mut self, on: bool) -> bool {
        core::mem::replace(&mut self.end_next_send, on)
    }

    /// In a reused worker: the loop starts task `task` (the tag of its args
    /// frame); the callable's receives now see only that task's messages.
    pub(crate) fn begin_task(&mut self, task: u64) {
        self.task = task;
        self.worker = Some(WorkerTask {
            task,
            answered: false,
        });
    }

    /// In a reused worker: the callable returned; the loop reads again.
    pub(crate) fn end_task(&mut self) {
        self.worker = None;
    }

    /// In a reused worker's loop: the next task's tag and arguments, from
    /// what a callable's receive kept or from the socket. A message for a
    /// task that is over (a reply nobody received) is dropped on the way.
    /// [`Error::Closed`] when told to stop or at the end of the channel.
    pub(crate) fn next_args(&mut self) -> Result<(u64, Vec<u8>)> {
        loop {
            match self.loop_frames.pop_front() {
                Some(LoopFrame::Args(task, args)) => return Ok((task, args)),
                Some(LoopFrame::Stop) => return Err(self.end_on(Error::Closed)),
                None => {}
            }
            if let Some(e) = self.conn.end_error() {
                return Err(e);
            }
            if let Frame::Message(header) = self.read_frame(Deadline::after(-1))? {
                let payload = self.take_vec(header)?;
                match header.kind {
                    Kind::Args => return Ok((header.task, payload)),
                    Kind::Batch => self.keep_batch(&payload)?,
                    _ => {}
                }
            }
        }
    }

    /// A callable's [`Channel::next_frame`] in a reused worker: args and
    /// stop frames are kept for the loop and messages for other tasks are
    /// dropped; once the task has answered (or a stop came), a loop frame
    /// means no more will come for this task: [`Error::Closed`], not sticky.
    pub(super) fn next_task_frame(
        &mut self,
        worker: WorkerTask,
        deadline: Deadline,
    ) -> Result<Frame> {
        loop {
            let stopped = matches!(self.loop_frames.back(), Some(LoopFrame::Stop));
            if stopped || (worker.answered && !self.loop_frames.is_empty()) {
                return Err(Error::Closed);
            }
            let frame = match self.read_frame(deadline) {
                // The stream stays ended; the loop sees it after the
                // frames kept for it.
                Err(Error::Closed) if self.stopped => {
                    self.stopped = false;
                    self.loop_frames.push_back(LoopFrame::Stop);
                    continue;
                }
                other => other?,
            };
            match frame {
                Frame::Message(header) if header.kind == Kind::Args => {
                    let args = self.take_vec(header)?;
                    self.loop_frames
                        .push_back(LoopFrame::Args(header.task, args));
                }
                Frame::Message(header) if header.kind == Kind::Batch => {
                    let batch = self.take_vec(header)?;
                    self.keep_batch(&batch)?;
                }
                Frame::Message(header) if header.task != worker.task => {
                    self.take_vec(header)?;
                }
                other => return Ok(other),
            }
        }
    }

    /// In a reused worker: the tasks of a batch frame's payload are kept
    /// for the loop, in order, as if each had come in an args frame. A
    /// malformed batch ends the channel (a protocol error).
    fn keep_batch(&mut self, batch: &[u8]) -> Result<()> {
        let tasks = match wire::decode_batch(batch) {
            Ok(tasks) => tasks,
            Err(e) => return Err(self.end_on(Error::Protocol(e))),
        };
        for (task, args) in tasks {
            let args = super::try_copy(args)?;
            self.loop_frames.push_back(LoopFrame::Args(task, args));
        }
        Ok(())
    }

    /// In a reused worker: tells the exchange the current task is finished.
    pub(crate) fn send_task_end(&mut self) -> Result<()> {
        self.send_frame(Kind::Stop, FLAG_END, &[]).map(drop)
    }
}
