//! A reused worker's loop, in the worker process: one task per args frame
//! (or entry of a batch frame) until a stop frame or the end of its
//! channel.
//!
//! The loop's state is the loop's: the tasks a batch frame brought and not
//! run yet, and each task's place among those sent (its claim word). The
//! callable gets the worker's channel as the view of its task
//! (`&mut Channel`, the signature every callable has): while the task runs,
//! the channel's connection filters its frames (see `channel::worker`), so
//! the callable's receives see only its task's messages, the loop's own
//! frames they read past wait for the loop, and what it sends names its
//! task. No field of `Channel` exists for the loop.

use alloc::vec::Vec;
use core::ops::Range;
use core::sync::atomic::Ordering;

use super::claims::Claims;
use super::jobs::Body;
use crate::channel::Channel;
use crate::error::{Error, Result};
use crate::process;
use crate::wire::{self, Kind, ProtoError};

/// Runs tasks from `channel` with `body` until told to stop; returns the
/// exit status.
///
/// Each task is claimed first (its creator may have taken it back: it is
/// then skipped). What the callable sends goes through the worker's ring
/// (see `channel::ring`), visible to the creator at once: no answer is held
/// back, and none is lost if the worker dies afterwards.
pub(super) fn work(channel: &mut Channel, body: &Body, continuous: bool) -> i32 {
    let mut tasks = Tasks::default();
    // How many tasks came before this one (its claim word's place).
    let mut index = 0;
    loop {
        let (task, args) = match tasks.next(channel) {
            Ok(next) => next,
            Err(Error::Closed) => return 0, // told to stop
            Err(_) => return 1,
        };
        index += 1;
        let (words, passed) = channel.claim_ring();
        let claimed = Claims::new(words).claim(index - 1, task);
        // Past this place: its word may be offered again.
        if let Some(passed) = passed {
            passed.store(index, Ordering::Release);
        }
        if !claimed {
            continue; // taken back by the creator: it runs elsewhere
        }
        // Without `continuous` the task's one message carries the end mark.
        channel.begin_task(task, !continuous);
        let args = &tasks.payload[args];
        let outcome = process::call_guarded(channel, |channel| body(channel, args));
        let unanswered = channel.end_task();
        let sent = match outcome {
            Err(error) => channel.send_error(&error),
            Ok(()) if continuous || unanswered => channel.send_task_end(),
            Ok(()) => Ok(()),
        };
        if sent.is_err() {
            return 1;
        }
    }
}

/// The tasks of the last args or batch frame: its payload, kept whole in
/// one buffer that the next frame reuses, and the next task's place in it.
/// A task's arguments are a slice of the payload: no copy, no allocation
/// per task.
#[derive(Default)]
struct Tasks {
    payload: Vec<u8>,
    next: Next,
}

/// Where the next task of [`Tasks::payload`] is.
#[derive(Default)]
enum Next {
    /// Taken, every one: the next task comes in the next frame.
    #[default]
    Taken,
    /// An args frame's one task (its tag): the whole payload.
    Args(u64),
    /// A batch frame's entry at this offset (`wire::entry_at`).
    Batch(usize),
}

impl Tasks {
    /// The next task's tag and where its arguments lie in the payload:
    /// the next of the last batch frame's, or from the next args or batch
    /// frame. A malformed batch is a protocol error.
    fn next(&mut self, channel: &mut Channel) -> Result<(u64, Range<usize>)> {
        loop {
            match self.next {
                Next::Args(task) => {
                    self.next = Next::Taken;
                    return Ok((task, 0..self.payload.len()));
                }
                Next::Batch(at) if at < self.payload.len() => {
                    // Checked whole by `decode_batch`: an entry is never cut short.
                    let (task, args) = wire::entry_at(&self.payload, at)
                        .ok_or(Error::Protocol(ProtoError::BadBatch))?;
                    self.next = Next::Batch(args.end);
                    return Ok((task, args));
                }
                Next::Batch(_) | Next::Taken => {}
            }
            // Until the next frame is read whole (and checked), no task.
            self.next = Next::Taken;
            let header = channel.next_loop_frame(&mut self.payload)?;
            self.next = if header.kind == Kind::Args {
                Next::Args(header.task)
            } else {
                wire::decode_batch(&self.payload).map_err(Error::Protocol)?;
                Next::Batch(wire::FIRST_ENTRY)
            };
        }
    }
}
