//! A channel inside a reused worker: the view of its running task's
//! stream that the worker's loop (the exchange's `worker` module) hands to
//! the task's callable.
//!
//! The loop owns the loop: which task runs next, the tasks a batch frame
//! brought, the claims. The channel keeps no loop state of its own: while a
//! task runs, its connection's task filter ([`Conn::route`]) says whose each
//! message is. A callable's receive sees only its task's messages; the
//! loop's args and batch frames it reads past are held, whole, with the
//! other messages the channel read past (its connection's held messages),
//! where only the loop takes them; messages for tasks that are over are
//! dropped.
//!
//! [`Conn::route`]: crate::wire::Conn

use alloc::vec::Vec;

use super::{Channel, Frame};
use crate::error::{Error, Result};
use crate::sys::Deadline;
use crate::wire::{Header, Kind, Route, FLAG_END};

/// The most bytes a reused worker's loop keeps allocated for its next
/// frame's payload once a bigger one is over.
const KEEP_BYTES: usize = 1 << 16;

impl Channel {
    /// In a reused worker: task `task` runs from now on. Its frames name
    /// it, its callable's receives see only its messages, and with
    /// `end_mark` its first data frame carries the end mark (its one
    /// result).
    pub(crate) fn begin_task(&mut self, task: u64, end_mark: bool) {
        self.conn.run_task(Some(task));
        self.conn.set_end_next(end_mark);
    }

    /// In a reused worker: the task's callable returned; the loop reads
    /// again. Returns true when the end mark was due and never sent (the
    /// task sent no result).
    pub(crate) fn end_task(&mut self) -> bool {
        self.conn.run_task(None);
        self.conn.set_end_next(false)
    }

    /// In a reused worker's loop: the next args or batch frame, its
    /// payload in `payload` (whose allocation it reuses) and its header
    /// returned, from those a callable's receive kept or from the socket.
    /// A message for a task that is over (a reply nobody received) is
    /// dropped on the way. [`Error::Closed`] when told to stop (a stop
    /// frame ends the stream) or at the end of the channel.
    pub(crate) fn next_loop_frame(&mut self, payload: &mut Vec<u8>) -> Result<Header> {
        loop {
            let (held, acked) = self.conn.take_held_task();
            if acked {
                self.write_ack();
            }
            if let Some((header, kept)) = held {
                *payload = kept;
                return Ok(header);
            }
            if let Some(e) = self.conn.end_error() {
                return Err(e);
            }
            if let Frame::Message(header) = self.read_frame(Deadline::after(-1))? {
                self.take_into(header, payload)?;
                if header.kind.is_task() {
                    return Ok(header);
                }
            }
        }
    }

    /// Takes the pending message into `buf`, reusing its allocation (one
    /// that has grown past [`KEEP_BYTES`] is given back for a smaller
    /// message). An allocation that fails is `ENOMEM`, and the message
    /// stays queued.
    pub(super) fn take_into(&mut self, header: Header, buf: &mut Vec<u8>) -> Result<()> {
        let len = header.length as usize;
        if buf.capacity() > KEEP_BYTES && len <= KEEP_BYTES {
            *buf = Vec::new();
        }
        let dec = self.conn.decoder_mut();
        if let Some(message) = dec.take_collected() {
            *buf = message; // read ahead whole across poll rounds: no copy
        } else if let Some(whole) = dec.whole_payload() {
            buf.clear();
            buf.try_reserve(whole.len())?;
            buf.extend_from_slice(whole);
            dec.skip_payload();
        } else {
            // The length was checked against max_message before this
            // allocation. Every byte is overwritten: only bytes past the
            // last payload's are zeroed first.
            buf.truncate(len);
            buf.try_reserve(len - buf.len())?;
            buf.resize(len, 0);
            return self.take_payload(buf);
        }
        self.took(header);
        Ok(())
    }

    /// A callable's [`Channel::next_frame`] in a reused worker: the loop's
    /// frames are kept for it and messages for other tasks are dropped;
    /// once the task has answered, a loop frame means no more will come
    /// for this task: [`Error::Closed`] (a stop frame ends the stream).
    pub(super) fn next_task_frame(&mut self, deadline: Deadline) -> Result<Frame> {
        loop {
            if self.conn.answered() && self.conn.holds_task() {
                return Err(Error::Closed);
            }
            let frame = self.read_frame(deadline)?;
            let Frame::Message(header) = frame else {
                return Ok(frame);
            };
            match self.conn.route(&header) {
                Route::Receive => return Ok(frame),
                Route::Loop => {
                    self.conn.reserve_held()?;
                    let payload = self.take_vec(header)?;
                    self.conn.hold(header, payload);
                }
                Route::Skip => drop(self.take_vec(header)?),
            }
        }
    }

    /// In a reused worker: tells the exchange the current task is finished.
    pub(crate) fn send_task_end(&mut self) -> Result<()> {
        self.send_frame(Kind::Stop, FLAG_END, &[]).map(drop)
    }
}
