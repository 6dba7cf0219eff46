//! pprocess's raw loop: `active` gives the monitored channels, `ready` the
//! ones with a message, removing (and reporting) those that ended.

use core::borrow::Borrow;

use super::{Exchange, Slots, StoreData, TaskId};
use crate::channel::{Channel, Frame};
use crate::error::{Error, Result};
use crate::sys::{self, Deadline};

/// A channel that [`Exchange::ready`] took out of the exchange because it
/// ended (pprocess's `removed` list): it was closed and its process
/// collected (or, if it had not exited yet, it is collected later).
///
/// ```
/// use pprocess::exchange::{Growable, Removed};
/// use pprocess::{Error, Exchange, Options, StoreData, Channel, TaskId};
///
/// struct Discard;
/// impl StoreData for Discard {
///     fn store_data(&mut self, channel: &mut Channel, _: TaskId) -> pprocess::Result<()> {
///         channel.receive_vec().map(drop)
///     }
/// }
/// let mut exchange: Exchange<Growable, Discard> = Exchange::new(1, Options::default(), Discard);
/// let task = exchange.start(|_| Ok(()))?;
/// let mut removed: Vec<Removed> = Vec::new();
/// while exchange.unfinished() {
///     exchange.ready(-1)?;
///     removed.extend_from_slice(exchange.removed());
/// }
/// // The one channel ended normally after its task.
/// let [Removed { pid, task: last, why }] = removed[..] else { panic!("{removed:?}") };
/// assert!(pid > 0);
/// assert_eq!((last, why), (Some(task), Error::Closed));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Removed {
    /// The process at the other end (0 for a channel of no child, such as a
    /// connection to a persistent process).
    pub pid: sys::Pid,
    /// The last task the channel ran, if any.
    pub task: Option<TaskId>,
    /// How it ended: [`Error::Closed`] for a normal end, or why it broke.
    pub why: Error,
}

/// The channels one [`Exchange::ready`] call removed: as many as the
/// exchange held, with `alloc`; without it, at most 64 a call
/// (the others stay and are removed by the next call).
#[cfg(feature = "alloc")]
pub(super) type RemovedList = alloc::vec::Vec<Removed>;
#[cfg(not(feature = "alloc"))]
pub(super) type RemovedList = heapless::Vec<Removed, REMOVED_MAX>;

/// Without `alloc`, the most channels one [`Exchange::ready`] call removes.
#[cfg(not(feature = "alloc"))]
const REMOVED_MAX: usize = 64;

impl<S: Slots, H: StoreData> Exchange<S, H> {
    /// The channels monitored (pprocess's `active()`), in no particular
    /// order; [`Exchange::active_count`] is their number.
    pub fn active(&self) -> impl Iterator<Item = &Channel> + '_ {
        self.slots.slots().iter().map(|slot| slot.channel.borrow())
    }

    /// The channels monitored, mutably (the C ABI's pp_exchange_channels).
    #[cfg(feature = "capi")]
    pub(crate) fn active_mut(&mut self) -> impl Iterator<Item = &mut Channel> + '_ {
        self.slots.slots_mut().iter_mut().map(|slot| slot.channel())
    }

    /// The number of channels monitored: those [`Exchange::active`] gives.
    pub fn active_count(&self) -> usize {
        self.slots.slots().len()
    }

    /// Waits up to `timeout_ms` for channels with a message and returns
    /// them (pprocess's `ready`): receive the message from each yourself.
    ///
    /// A channel that ended is not returned: it is removed from the
    /// exchange, closed and its process collected, and reported by
    /// [`Exchange::removed`] until the next call (pprocess's `removed`).
    /// Every message a process wrote before it ended is returned first.
    /// A task that failed (its callable's error, or a process that ended
    /// without its result) goes to the handler's
    /// [`StoreData::store_error`].
    ///
    /// What you receive from them counts as the exchange's own store would:
    /// the next call charges each message to its task, so finished tasks
    /// make room for waiting ones and idle reused workers are told to stop.
    /// So pprocess's raw loop ends by itself:
    ///
    /// ```
    /// use pprocess::exchange::Growable;
    /// use pprocess::{Exchange, Options, StoreData, Channel, TaskId};
    ///
    /// struct Unused;
    /// impl StoreData for Unused {
    ///     fn store_data(&mut self, _: &mut Channel, _: TaskId) -> pprocess::Result<()> {
    ///         unreachable!("the loop receives every message itself")
    ///     }
    /// }
    /// let mut exchange: Exchange<Growable, Unused> = Exchange::new(2, Options::default(), Unused);
    /// for n in 1..=4u32 {
    ///     exchange.start(move |channel| Ok(channel.send_value(&n)?))?;
    /// }
    /// let (mut sum, mut ended) = (0, 0);
    /// while exchange.active_count() > 0 || exchange.waiting() > 0 {
    ///     for channel in exchange.ready(-1)? {
    ///         sum += channel.receive_value::<u32>()?;
    ///     }
    ///     // Never more than 64 at once without `alloc`, and here 2 at most.
    ///     assert!(exchange.removed().len() <= 2);
    ///     ended += exchange.removed().len();
    /// }
    /// assert_eq!((sum, ended), (10, 4));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ready(&mut self, timeout_ms: i32) -> Result<impl Iterator<Item = &mut Channel> + '_> {
        self.removed.clear();
        self.readying = true;
        let found = self.ready_rounds(timeout_ms);
        self.readying = false;
        found?;
        Ok(self
            .slots
            .slots_mut()
            .iter_mut()
            .filter(|slot| slot.ready)
            .map(|slot| slot.channel()))
    }

    /// The rounds of [`Exchange::ready`]: collects, polls and reads ahead
    /// until a channel has a message, one was removed, or the time is up.
    fn ready_rounds(&mut self, timeout_ms: i32) -> Result<()> {
        self.collect_all()?;
        let deadline = Deadline::after(timeout_ms);
        loop {
            let timeout_ms = if self.active_count() == 0 {
                0
            } else {
                deadline.remaining_ms()
            };
            self.slots.poll(timeout_ms)?;
            let mut found = false;
            let mut index = self.slots.slots().len();
            while index > 0 {
                index -= 1;
                if self.slots.slots()[index].ready {
                    found |= self.read_ahead(index)?;
                }
            }
            #[cfg(feature = "alloc")]
            self.dispatch()?;
            // Only ended channels were ready: wait again for a message.
            if found || self.active_count() == 0 || deadline.expired() || !self.removed.is_empty() {
                return Ok(());
            }
        }
    }

    /// The channels the last [`Exchange::ready`] call removed because they
    /// ended (pprocess's `removed`), until the next call; a [`Removed`]
    /// each.
    pub fn removed(&self) -> &[Removed] {
        &self.removed
    }

    /// True while the removed list has room (always, with `alloc`).
    pub(super) fn can_remove(&self) -> bool {
        #[cfg(not(feature = "alloc"))]
        return !self.removed.is_full();
        #[cfg(feature = "alloc")]
        true
    }

    /// Slot `index`'s channel ended with `why` during a ready call: note it
    /// in the removed list, then retire it.
    pub(super) fn remove_ended(&mut self, index: usize, why: Error) -> Result<()> {
        let slot = &self.slots.slots()[index];
        let removed = Removed {
            pid: slot.channel.borrow().pid(),
            task: slot.tasks.front().copied().or(slot.last_task),
            why,
        };
        // Out of memory: ENOMEM, before anything is removed.
        #[cfg(feature = "alloc")]
        self.removed.try_reserve(1)?;
        self.retire(index, why)?;
        #[cfg(feature = "alloc")]
        self.removed.push(removed);
        // Without alloc, `can_remove` checked for room.
        #[cfg(not(feature = "alloc"))]
        if self.removed.push(removed).is_err() {
            return Err(Error::Invalid);
        }
        Ok(())
    }

    /// Reads slot `index`'s frames up to its next message, which stays for
    /// the program to receive. Frames that are not messages are charged to
    /// their tasks (a task's end, its error). Returns whether the slot now
    /// has a message; a channel that ended is removed.
    fn read_ahead(&mut self, index: usize) -> Result<bool> {
        loop {
            let slot = &mut self.slots.slots_mut()[index];
            #[cfg(feature = "alloc")]
            if slot.channel().stashed_frame().is_some() {
                return Ok(true);
            }
            let frame = slot.channel().next_frame(Deadline::after(0));
            match frame {
                Ok(Frame::Ack) => {}
                Ok(Frame::Message(_)) => {
                    // Only once it is buffered whole: a peer stalled in the
                    // middle of a payload holds nobody up.
                    #[cfg(feature = "alloc")]
                    match slot.channel().buffer_payload() {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) if e == Error::from(sys::Errno::NOMEM) => return Err(e),
                        Err(e) => {
                            self.removal(index, e)?;
                            return Ok(false);
                        }
                    }
                    return Ok(true);
                }
                Ok(Frame::TaskEnd) | Err(Error::Remote { .. }) => {
                    if !self.collect(index, true)? {
                        return Ok(false);
                    }
                }
                Err(Error::TimedOut) => break,
                Err(e) => {
                    self.removal(index, e)?;
                    return Ok(false);
                }
            }
        }
        self.slots.slots_mut()[index].ready = false;
        Ok(false)
    }

    /// Removes slot `index`, which ended with `why`, when the removed list
    /// has room; otherwise it waits, not ready, for the next call.
    fn removal(&mut self, index: usize, why: Error) -> Result<()> {
        if self.can_remove() {
            self.remove_ended(index, why)
        } else {
            self.slots.slots_mut()[index].ready = false;
            Ok(())
        }
    }
}
