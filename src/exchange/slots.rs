//! Where an exchange keeps its channels: inline and fixed ([`Fixed`], no
//! allocator) or growable with boxed channels whose addresses stay put
//! ([`Growable`], the C handles point at them).

use core::borrow::BorrowMut;

use crate::channel::Channel;
#[cfg(feature = "alloc")]
use crate::error::best_effort;
use crate::error::{Error, Result};
use crate::sys::{self, Deadline, PollFd, POLLIN, POLLOUT};

use super::TaskId;

/// Tasks one reused worker may have outstanding in its socket, at most (its
/// window shrinks as the work runs out: see the `jobs` module). Large
/// enough that a worker of tiny tasks sleeps and is woken rarely: each
/// window is a wake-up at most.
///
/// The window bounds what waits in one socket, not how many tasks a worker
/// runs.
#[cfg(feature = "alloc")]
pub(crate) const WINDOW: usize = 1024;

/// The tasks a slot is answering, oldest first: one, or a reused worker's
/// window. With an allocator they are on the heap, so a slot of one task
/// (most of them: an exchange may hold hundreds) stays small; without one
/// there are no reused workers, and the one task is inline.
#[derive(Debug, Default)]
pub(crate) struct Tasks {
    #[cfg(feature = "alloc")]
    queue: alloc::collections::VecDeque<TaskId>,
    #[cfg(not(feature = "alloc"))]
    queue: heapless::Deque<TaskId, 1>,
}

impl Tasks {
    /// The tasks of a new slot: `task`, if given. Out of memory: `ENOMEM`.
    pub(super) fn of(task: Option<TaskId>) -> Result<Tasks> {
        let mut tasks = Tasks::default();
        if let Some(task) = task {
            tasks.push_back(task)?;
        }
        Ok(tasks)
    }

    /// The most tasks a slot answers at once.
    #[cfg(feature = "alloc")]
    pub(super) const MOST: usize = WINDOW;
    #[cfg(not(feature = "alloc"))]
    pub(super) const MOST: usize = 1;

    /// Appends `task`: [`Error::Invalid`] when full, `ENOMEM` when there is
    /// no memory for it; nothing changes then.
    #[inline]
    pub(super) fn push_back(&mut self, task: TaskId) -> Result<()> {
        self.reserve()?;
        #[cfg(feature = "alloc")]
        {
            self.queue.push_back(task);
            Ok(())
        }
        #[cfg(not(feature = "alloc"))]
        self.queue.push_back(task).map_err(|_| Error::Invalid)
    }

    /// Makes room for one more task: [`Error::Invalid`] when full,
    /// `ENOMEM` when there is no memory for it.
    #[inline]
    pub(super) fn reserve(&mut self) -> Result<()> {
        if self.is_full() {
            return Err(Error::Invalid);
        }
        #[cfg(feature = "alloc")]
        super::reserve_one(&mut self.queue)?;
        Ok(())
    }

    /// Makes room for `count` more tasks (the caller checked that they
    /// fit [`Tasks::MOST`]): `ENOMEM` when there is no memory for them.
    #[cfg(feature = "alloc")]
    #[inline]
    pub(super) fn reserve_more(&mut self, count: usize) -> Result<()> {
        Ok(self.queue.try_reserve(count)?)
    }

    /// Appends `task` in room [`Tasks::reserve_more`] made.
    #[cfg(feature = "alloc")]
    #[inline]
    pub(super) fn push_reserved(&mut self, task: TaskId) {
        debug_assert!(self.queue.len() < Self::MOST, "beyond a slot's tasks");
        self.queue.push_back(task);
    }

    #[inline]
    pub(super) fn is_full(&self) -> bool {
        self.queue.len() >= Self::MOST
    }

    #[inline]
    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    #[inline]
    pub(super) fn front(&self) -> Option<&TaskId> {
        self.queue.front()
    }

    #[inline]
    pub(super) fn pop_front(&mut self) -> Option<TaskId> {
        self.queue.pop_front()
    }

    /// Drops the `count` oldest tasks.
    #[cfg(feature = "alloc")]
    #[inline]
    pub(super) fn drop_front(&mut self, count: usize) {
        self.queue.drain(..count.min(self.queue.len()));
    }

    /// The task `index` places from the front, if there are that many.
    #[cfg(feature = "alloc")]
    #[inline]
    pub(super) fn get(&self, index: usize) -> Option<TaskId> {
        self.queue.get(index).copied()
    }

    #[cfg(feature = "alloc")]
    #[inline]
    pub(super) fn pop_back(&mut self) -> Option<TaskId> {
        self.queue.pop_back()
    }

    #[inline]
    pub(super) fn iter(&self) -> impl DoubleEndedIterator<Item = &TaskId> + '_ {
        self.queue.iter()
    }
}

/// One monitored channel and the tasks it is answering, oldest first.
#[derive(Debug)]
pub(crate) struct Slot<C> {
    pub(super) channel: C,
    pub(super) tasks: Tasks,
    /// Messages stored for the oldest task.
    pub(super) results: usize,
    /// The task finished last.
    pub(super) last_task: Option<TaskId>,
    /// Set by the last poll: something (data or the end) can be read.
    pub(super) ready: bool,
    #[cfg(feature = "alloc")]
    pub(super) worker: Option<super::jobs::Worker>,
}

impl<C: BorrowMut<Channel>> Slot<C> {
    /// A slot for `channel`, answering `tasks` (see [`Tasks::of`]).
    pub(super) fn new(channel: C, tasks: Tasks) -> Slot<C> {
        let mut channel = channel;
        channel.borrow_mut().set_marking(true);
        #[cfg(feature = "alloc")]
        channel.borrow_mut().set_outbox(true);
        Slot {
            channel,
            tasks,
            results: 0,
            last_task: None,
            ready: false,
            #[cfg(feature = "alloc")]
            worker: None,
        }
    }

    pub(super) fn channel(&mut self) -> &mut Channel {
        self.channel.borrow_mut()
    }

    /// True when a frame naming `tag` belongs to the task in front: a reused
    /// worker's frames name it, any other channel is its own task.
    pub(super) fn front_named(&self, tag: u64) -> bool {
        let Some(&front) = self.tasks.front() else {
            return false;
        };
        #[cfg(feature = "alloc")]
        if self.worker.is_some() {
            return tag == super::tag_of(front);
        }
        let _ = (front, tag);
        true
    }

    /// The task in front is over: taken off and remembered as the last
    /// one, and (a reused worker's) its arguments forgotten. Returns it and
    /// how many messages were stored for it.
    pub(super) fn finish_front(&mut self) -> Option<(TaskId, usize)> {
        let task = self.tasks.pop_front()?;
        self.last_task = Some(task);
        #[cfg(feature = "alloc")]
        if let Some(worker) = &mut self.worker {
            worker.tasks_done(1);
        }
        Some((task, core::mem::take(&mut self.results)))
    }

    /// The `count` oldest tasks of a reused worker are over, each with its
    /// one result stored: [`Slot::finish_front`] `count` times, in one go.
    #[cfg(feature = "alloc")]
    pub(super) fn finish_answered(&mut self, count: usize) {
        let count = count.min(self.tasks.len());
        if count == 0 {
            return;
        }
        self.last_task = self.tasks.get(count - 1);
        self.tasks.drop_front(count);
        if let Some(worker) = &mut self.worker {
            worker.tasks_done(count);
        }
        self.results = 0;
    }

    /// True when the channel holds a frame it already read ahead.
    pub(super) fn buffered(&self) -> bool {
        self.channel.borrow().has_buffered()
    }
}

/// Storage for an exchange's slots: [`Fixed`] or [`Growable`], the first
/// type parameter of an [`Exchange`](super::Exchange). The trait is sealed:
/// only this crate implements it.
///
/// A channel given to or taken from an exchange is held as `S::Held`:
/// inline (`Channel`) in a `Fixed<N>`, boxed (`Box<Channel>`, its address
/// stays put) in a `Growable`.
///
/// ```
/// use pprocess::exchange::{Fixed, Growable, Slots};
/// use pprocess::{Channel, Exchange, Options, Result, TaskId};
///
/// struct Nothing;
/// impl pprocess::StoreData for Nothing {
///     fn store_data(&mut self, channel: &mut Channel, _: TaskId) -> Result<()> {
///         channel.receive_vec().map(drop)
///     }
/// }
/// // Code generic over the storage names the trait as a bound.
/// fn idle<S: Slots>(exchange: &Exchange<S, Nothing>) -> bool {
///     exchange.active_count() == 0
/// }
/// let fixed: Exchange<Fixed<4>, Nothing> = Exchange::new(2, Options::default(), Nothing);
/// let growable: Exchange<Growable, Nothing> = Exchange::new(2, Options::default(), Nothing);
/// assert!(idle(&fixed) && idle(&growable));
/// ```
///
/// No other storage can be written:
///
/// ```compile_fail,E0277
/// #[derive(Default)]
/// struct Mine;
/// impl pprocess::exchange::Slots for Mine {}
/// ```
pub trait Slots: sealed::Storage {}

impl<const N: usize> Slots for Fixed<N> {}

#[cfg(feature = "alloc")]
impl Slots for Growable {}

/// The sealed part of [`Slots`]: a public trait in a private module, so
/// that no other crate can implement it.
///
/// Its methods deal in the crate-private [`Slot`]: code outside the crate
/// reaches them only through a `Slots` bound, can neither name nor build a
/// slot, and never sees an exchange's storage (hence `private_interfaces`
/// is allowed here and on the two implementations).
#[allow(private_interfaces)]
pub(super) mod sealed {
    use core::borrow::BorrowMut;

    use super::Slot;
    use crate::channel::Channel;
    use crate::error::Result;

    /// How an exchange's storage holds its slots.
    pub trait Storage: Default {
        /// How a channel is held: inline, or boxed.
        type Held: BorrowMut<Channel> + From<Channel>;
        /// The slots, in no particular order.
        fn slots(&self) -> &[Slot<Self::Held>];
        /// The slots, mutably.
        fn slots_mut(&mut self) -> &mut [Slot<Self::Held>];
        /// Adds a slot; a full store hands it back.
        // A slot holds its channel (and its read-ahead buffer) inline so that
        // `Fixed` needs no allocator; handing it back is the heapless convention.
        #[allow(clippy::result_large_err)]
        fn push(&mut self, slot: Slot<Self::Held>) -> core::result::Result<(), Slot<Self::Held>>;
        /// Removes slot `index`, moving the last one into its place.
        fn swap_remove(&mut self, index: usize) -> Slot<Self::Held>;
        /// How many slots fit at most.
        fn capacity(&self) -> usize;
        /// Polls every slot's channel and sets its `ready` flag.
        fn poll(&mut self, timeout_ms: i32) -> Result<usize>;
    }
}

/// Polls `slots` using `fds` (exactly as long) as the kernel's array. A slot
/// with a buffered message or an ended channel is ready without waiting.
/// Frames waiting to be written go out as their sockets take them, in the
/// same rounds: no write waits for one peer.
fn poll_slots<C: BorrowMut<Channel>>(
    slots: &mut [Slot<C>],
    fds: &mut [PollFd],
    timeout_ms: i32,
) -> Result<usize> {
    let deadline = Deadline::after(timeout_ms);
    loop {
        let mut waiting = false;
        for (slot, fd) in slots.iter_mut().zip(fds.iter_mut()) {
            let channel = slot.channel.borrow();
            let events = if channel.wants_write() {
                POLLIN | POLLOUT
            } else {
                POLLIN
            };
            *fd = PollFd::new(channel.fd(), events);
            waiting |= channel.has_buffered() || channel.is_ended();
        }
        // About to sleep: reused workers are asked to wake this process
        // when they publish an answer, and their rings looked at once more
        // (see `channel::ring`).
        #[cfg_attr(not(feature = "alloc"), allow(unused_mut))]
        let mut timeout = match waiting {
            true => 0,
            false => deadline.remaining_ms(),
        };
        #[cfg(feature = "alloc")]
        if timeout != 0 {
            timeout = nap(slots, timeout);
        }
        sys::poll(fds, timeout)?;
        let mut ready = 0;
        let mut wrote = false;
        for (slot, fd) in slots.iter_mut().zip(fds.iter()) {
            let channel = slot.channel.borrow_mut();
            // (Only with `alloc` is anything ever waiting to be written.)
            let writable = fd.ready_for(POLLOUT);
            wrote |= writable;
            #[cfg(feature = "alloc")]
            if writable {
                // A peer gone: its end is read next.
                best_effort(channel.poll_flush());
            }
            slot.ready = fd.ready_for(POLLIN) || channel.has_buffered() || channel.is_ended();
            ready += usize::from(slot.ready);
        }
        if ready > 0 || !wrote || deadline.expired() {
            return Ok(ready);
        }
    }
}

/// Before sleeping on `slots` for up to `timeout_ms`: each reused worker
/// is asked for a wake-up, then one fence (and one barrier for the workers
/// that publish without fences) for them all, then their rings are looked
/// at again. Returns how long the poll may sleep: 0 when there is
/// something to read at once, less than `timeout_ms` when the workers may
/// not wake this process (see `channel::ring`'s `Sleep::settle`).
#[cfg(feature = "alloc")]
fn nap<C: BorrowMut<Channel>>(slots: &[Slot<C>], timeout_ms: i32) -> i32 {
    let mut sleep = crate::channel::Sleep::default();
    let channels = || slots.iter().map(|slot| slot.channel.borrow());
    if channels().any(|channel| channel.ask_wakeup(&mut sleep)) {
        return 0;
    }
    if !sleep.asked() {
        return timeout_ms;
    }
    let nap = sleep.settle(|| channels().any(Channel::ring_is_light), timeout_ms);
    match channels().any(Channel::ring_ready) {
        true => 0,
        false => nap,
    }
}

/// At most `N` channels, held inline: no allocator needed.
pub struct Fixed<const N: usize> {
    slots: heapless::Vec<Slot<Channel>, N>,
    fds: [PollFd; N],
}

impl<const N: usize> Default for Fixed<N> {
    fn default() -> Self {
        Fixed {
            slots: heapless::Vec::new(),
            fds: [PollFd::NONE; N],
        }
    }
}

#[allow(private_interfaces)] // see `sealed`
impl<const N: usize> sealed::Storage for Fixed<N> {
    type Held = Channel;

    fn slots(&self) -> &[Slot<Channel>] {
        &self.slots
    }

    fn slots_mut(&mut self) -> &mut [Slot<Channel>] {
        &mut self.slots
    }

    #[allow(clippy::result_large_err)]
    fn push(&mut self, slot: Slot<Channel>) -> core::result::Result<(), Slot<Channel>> {
        self.slots.push(slot)
    }

    fn swap_remove(&mut self, index: usize) -> Slot<Channel> {
        self.slots.swap_remove(index)
    }

    fn capacity(&self) -> usize {
        N
    }

    fn poll(&mut self, timeout_ms: i32) -> Result<usize> {
        let len = self.slots.len();
        poll_slots(&mut self.slots, &mut self.fds[..len], timeout_ms)
    }
}

/// Any number of channels, each boxed so its address never changes.
#[cfg(feature = "alloc")]
#[derive(Default)]
pub struct Growable {
    slots: alloc::vec::Vec<Slot<alloc::boxed::Box<Channel>>>,
    fds: alloc::vec::Vec<PollFd>,
}

#[cfg(feature = "alloc")]
#[allow(private_interfaces)] // see `sealed`
impl sealed::Storage for Growable {
    type Held = alloc::boxed::Box<Channel>;

    fn slots(&self) -> &[Slot<Self::Held>] {
        &self.slots
    }

    fn slots_mut(&mut self) -> &mut [Slot<Self::Held>] {
        &mut self.slots
    }

    #[allow(clippy::result_large_err)]
    fn push(&mut self, slot: Slot<Self::Held>) -> core::result::Result<(), Slot<Self::Held>> {
        self.slots.push(slot);
        Ok(())
    }

    fn swap_remove(&mut self, index: usize) -> Slot<Self::Held> {
        self.slots.swap_remove(index)
    }

    fn capacity(&self) -> usize {
        usize::MAX
    }

    fn poll(&mut self, timeout_ms: i32) -> Result<usize> {
        self.fds.resize(self.slots.len(), PollFd::NONE);
        poll_slots(&mut self.slots, &mut self.fds, timeout_ms)
    }
}
