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

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::claims::Claims;
use super::jobs::Body;
use crate::channel::{try_copy, Channel};
use crate::error::{Error, Result};
use crate::process;
use crate::wire::{self, Kind};

/// Runs tasks from `channel` with `body` until told to stop; returns the
/// exit status.
///
/// Each task is claimed first (its creator may have taken it back: it is
/// then skipped). What the callable sends goes through the worker's ring
/// (see `channel::ring`), visible to the creator at once: no answer is held
/// back, and none is lost if the worker dies afterwards.
pub(super) fn work(channel: &mut Channel, body: &Body, continuous: bool) -> i32 {
    let mut batch = VecDeque::new();
    // How many tasks came before this one (its claim word's place).
    let mut index = 0;
    loop {
        let (task, args) = match next_task(channel, &mut batch) {
            Ok(next) => next,
            Err(Error::Closed) => return 0, // told to stop
            Err(_) => return 1,
        };
        index += 1;
        if !Claims::new(channel.claim_words()).claim(index - 1, task) {
            continue; // taken back by the creator: it runs elsewhere
        }
        // Without `continuous` the task's one message carries the end mark.
        channel.begin_task(task, !continuous);
        let outcome = process::call_guarded(channel, |channel| body(channel, &args));
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

/// The next task's tag and arguments: the next of the last batch frame's
/// (`batch`), or from the next args or batch frame. A malformed batch is a
/// protocol error.
fn next_task(
    channel: &mut Channel,
    batch: &mut VecDeque<(u64, Vec<u8>)>,
) -> Result<(u64, Vec<u8>)> {
    loop {
        if let Some(next) = batch.pop_front() {
            return Ok(next);
        }
        let (header, payload) = channel.next_loop_frame()?;
        if header.kind == Kind::Args {
            return Ok((header.task, payload));
        }
        let tasks = wire::decode_batch(&payload).map_err(Error::Protocol)?;
        for (task, args) in tasks {
            batch.try_reserve(1)?;
            batch.push_back((task, try_copy(args)?));
        }
    }
}
