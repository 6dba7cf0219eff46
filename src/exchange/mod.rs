//! Exchanges: many channels polled together under a concurrency limit
//! (pprocess's `Exchange`), and on top of them [`Queue`] (results as they
//! arrive), [`Map`] (results in start order) and [`pmap`].
//!
//! An exchange calls a [`StoreData`] handler for every message that arrives,
//! with the id of the task that sent it. Every message already written by a
//! process is stored before its hang-up is handled, and a process that dies
//! fails only its own task: the handler's [`StoreData::store_error`] gets the
//! pid and wait status, and the rest go on.
//!
//! Storage is either [`Fixed`] (at most `N` channels inline: no allocator,
//! usable from `#![no_std]`) or, with the `alloc` feature, [`Growable`]. The
//! waiting list, reused workers, `Queue`, `Map` and `pmap` need `alloc`.

#[cfg(feature = "alloc")]
mod args;
#[cfg(feature = "alloc")]
mod claims;
#[cfg(feature = "alloc")]
mod jobs;
#[cfg(feature = "alloc")]
mod managed;
mod ready;
#[cfg(feature = "alloc")]
pub mod records;
#[cfg(feature = "alloc")]
mod results;
#[cfg(feature = "alloc")]
mod schedule;
#[cfg(feature = "alloc")]
mod short;
mod slots;
mod task;
#[cfg(feature = "alloc")]
mod worker;

use core::borrow::{Borrow, BorrowMut};

use crate::channel::{Channel, Frame};
use crate::error::{Error, RemoteError, Result};
use crate::process::{self, Created, ForkCheck};
use crate::sys::{self, Deadline};
use crate::wire::ProtoError;

#[cfg(feature = "capi")] // for the C interface
pub(crate) use jobs::{Body, Key};
#[cfg(feature = "alloc")]
pub use managed::Managed;
pub use ready::Removed;
#[cfg(feature = "alloc")]
pub use results::{pmap, value_of, Map, MapStore, Outcome, Queue, QueueStore, Results, TaskError};
#[cfg(feature = "alloc")]
pub use slots::Growable;
pub use slots::{Fixed, Slots};
use slots::{Slot, Tasks};
pub use task::TaskId;

/// How an exchange runs its tasks (pprocess's `reuse`, `continuous` and
/// `autoclose` settings).
///
/// ```
/// use pprocess::{pmap, Options, RemoteError};
///
/// fn double(x: &[u8]) -> Result<Vec<u8>, RemoteError> {
///     Ok(vec![x[0] * 2])
/// }
/// // Two reused workers answer all eight tasks, in chunks.
/// let options = Options { reuse: true, ..Options::default() };
/// let inputs: Vec<[u8; 1]> = (1..=8).map(|i| [i]).collect();
/// let doubled: Vec<Vec<u8>> = pmap(double, &inputs, 2, options)?.collect::<Result<_, _>>()?;
/// assert_eq!(doubled.concat(), [2, 4, 6, 8, 10, 12, 14, 16]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Reuse worker processes: each runs its callable once per task, with a
    /// window of tasks queued in its socket that shrinks as the work runs
    /// out (needs `alloc`). Tasks go out in chunks, and a worker answers
    /// quick tasks in one write per chunk: while its next task is already
    /// queued, it holds the answers of tasks that took under 0.2 ms (for at
    /// most 0.2 ms), mirrored in memory shared with its creator, so that a
    /// worker that dies loses no answer it computed (only the task it died
    /// in fails). Nor does an answer wait for a long task after it: an
    /// exchange reads the answers of a worker silent for a millisecond
    /// from that memory. Every frame
    /// names its task, so results, errors and replies are charged to the
    /// task they belong to. The callable's receives see only messages sent
    /// to its own task; once it has sent its one result (without
    /// `continuous`), a receive that meets the next task instead fails with
    /// [`Error::Closed`]: no more will come for this task (pprocess's
    /// `MakeReusable` loop ends there). For request and reply, add
    /// `continuous`.
    pub reuse: bool,
    /// A task may send many messages; each is stored. Without it a task
    /// sends exactly one.
    pub continuous: bool,
    /// Channels taken out with [`Exchange::remove`] are handed back instead
    /// of closed (autoclose off). Channels that end by themselves are always
    /// closed: nothing is left to read from them.
    pub keep_removed: bool,
}

/// Receives what an exchange's tasks send (pprocess's `store_data`).
pub trait StoreData {
    /// A message from `task` is waiting on `channel`: receive it here.
    fn store_data(&mut self, channel: &mut Channel, task: TaskId) -> Result<()>;

    /// `task` failed instead of sending a result: its callable reported an
    /// error (`remote` holds its code and message), or its process ended
    /// ([`Error::PeerEnded`]) or closed ([`Error::Closed`]) without a result.
    fn store_error(&mut self, _task: TaskId, _error: Error, _remote: Option<&RemoteError>) {}

    /// A message from `task` that is its whole result, as bytes: a handler
    /// that stores them as they are takes them here and returns true, and
    /// the message is taken. False (the default) hands it to
    /// [`StoreData::store_data`] instead, to receive from the channel. (An
    /// exchange offers the answers of reused workers here, so that tiny
    /// tasks cost no receive each; an error leaves the message queued.)
    ///
    /// ```
    /// use pprocess::exchange::{QueueStore, Results};
    /// use pprocess::{StoreData, TaskId};
    ///
    /// let mut store = QueueStore::default();
    /// let task = TaskId::new(3);
    /// assert!(store.store_message(task, b"answer")?); // a queue keeps bytes as they are
    /// assert_eq!(store.pop_front(), Some((task, Ok(b"answer".to_vec()))));
    /// # Ok::<(), pprocess::Error>(())
    /// ```
    #[cfg(feature = "alloc")]
    fn store_message(&mut self, _task: TaskId, _message: &[u8]) -> Result<bool> {
        Ok(false)
    }

    /// True for a handler that keeps results for the program to take later
    /// ([`Results`] such as [`QueueStore`] and [`MapStore`]): results from
    /// a persistent process ([`Exchange::connect`]) are then acknowledged
    /// when the program takes them ([`Exchange::next_result`]), not when
    /// they are stored. False (the default) for a handler that hands each
    /// message on as it receives it.
    #[cfg(feature = "alloc")]
    fn keeps_results(&self) -> bool {
        false
    }
}

/// The tag a reused worker's frames carry for `task` (0 means no task).
#[cfg(feature = "alloc")]
pub(crate) fn tag_of(task: TaskId) -> u64 {
    task.index() as u64 + 1
}

/// Room for one more element in `deque`, or `ENOMEM`
/// ([`Error::Os`]): a call to the allocator only when it
/// is full (a per-task hot path pays a comparison, not a call).
#[cfg(feature = "alloc")]
#[inline(always)]
pub(crate) fn reserve_one<T>(deque: &mut alloc::collections::VecDeque<T>) -> Result<()> {
    if deque.len() == deque.capacity() {
        deque.try_reserve(1)?;
    }
    Ok(())
}

/// The error of a task that failed with `remote`.
fn remote_failure(remote: Option<&RemoteError>) -> Error {
    let code = remote.map_or(crate::error::code::REMOTE, |r| r.code());
    Error::Remote { code }
}

/// How a task ended.
enum Ending {
    /// It sent what it had to.
    Done,
    /// It failed with the channel's last error frame: reported to the handler.
    Failed,
    /// It failed and the program received the error itself (after
    /// [`Exchange::ready`]): nothing to report.
    Seen,
}

/// How many processes an exchange runs at once (pprocess's `limit`).
///
/// A `usize` converts as before (`0` is [`Limit::Cores`], `n` is
/// [`Limit::Fixed`]); `None` is [`Limit::Unbounded`], as pprocess's
/// `limit=None`.
///
/// ```
/// use pprocess::exchange::Limit;
/// use pprocess::{number_of_cores, Options, Queue};
///
/// assert_eq!(Limit::from(None), Limit::Unbounded);
/// assert_eq!(Limit::from(3), Limit::Fixed(3));
/// assert_eq!(Limit::from(0), Limit::Cores);
/// assert_eq!(Limit::Fixed(3).get(), 3);
/// assert_eq!(Limit::Unbounded.get(), usize::MAX);
/// let queue = Queue::with_options(Limit::Unbounded, Options::default());
/// assert_eq!(queue.limit(), usize::MAX);
/// let queue = Queue::with_options(Limit::Cores, Options::default());
/// assert_eq!(queue.limit(), number_of_cores());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// No limit: every task starts at once (pprocess's `limit=None`), up to
    /// what the storage holds (a [`Fixed`] store's `N`).
    Unbounded,
    /// One process per processor ([`process::number_of_cores`]).
    Cores,
    /// At most this many (`0` means [`Limit::Cores`]).
    Fixed(usize),
}

impl From<usize> for Limit {
    fn from(limit: usize) -> Limit {
        match limit {
            0 => Limit::Cores,
            n => Limit::Fixed(n),
        }
    }
}

impl From<Option<usize>> for Limit {
    fn from(limit: Option<usize>) -> Limit {
        limit.map_or(Limit::Unbounded, Limit::from)
    }
}

impl Limit {
    /// The number of processes this limit allows ([`usize::MAX`] for none).
    pub fn get(self) -> usize {
        match self {
            Limit::Unbounded => usize::MAX,
            Limit::Cores | Limit::Fixed(0) => process::number_of_cores(),
            Limit::Fixed(n) => n,
        }
    }
}

/// Which side of [`Exchange::create`] this is.
// The channel stays inline (no allocator in no_std); this value is made
// once per created process.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum CreatedTask {
    /// In the new process: its channel to the creator.
    Child(Channel),
    /// In the creator: the new process and its task.
    Parent {
        /// The new process's id.
        pid: sys::Pid,
        /// Its task in the exchange.
        task: TaskId,
    },
}

/// A set of channels polled together, running at most `limit` processes.
///
/// Its [`StoreData`] handler receives every message with the id of the task
/// that sent it. With [`Fixed`] storage it needs no allocator:
///
/// ```
/// use pprocess::exchange::Fixed;
/// use pprocess::{Channel, Exchange, Options, StoreData, TaskId};
///
/// #[derive(Default)]
/// struct Sum(u32);
///
/// impl StoreData for Sum {
///     fn store_data(&mut self, channel: &mut Channel, _task: TaskId) -> pprocess::Result<()> {
///         self.0 += channel.receive_value::<u32>()?;
///         Ok(())
///     }
/// }
///
/// // At most 2 processes at a time, 4 channels held inline.
/// let mut exchange: Exchange<Fixed<4>, Sum> = Exchange::new(2, Options::default(), Sum(0));
/// for n in 1..=4u32 {
///     exchange.start(move |channel| Ok(channel.send_value(&(n * n))?))?;
/// }
/// exchange.finish()?;
/// assert_eq!(exchange.handler().0, 1 + 4 + 9 + 16);
/// # Ok::<(), pprocess::Error>(())
/// ```
///
/// # Every call in one example
///
/// The calls that start, add, store and finish tasks, with growable
/// storage, including the methods that have no example of their own.
///
/// ```
/// use pprocess::exchange::{CreatedTask, Growable, Limit};
/// use pprocess::{exit, Channel, Exchange, Options, StoreData, TaskId};
///
/// #[derive(Default)]
/// struct Log(Vec<(TaskId, u32)>);
///
/// impl StoreData for Log {
///     fn store_data(&mut self, channel: &mut Channel, task: TaskId) -> pprocess::Result<()> {
///         self.0.push((task, channel.receive_value::<u32>()?));
///         Ok(())
///     }
/// }
///
/// let mut exchange: Exchange<Growable, Log> = Exchange::new(1, Options::default(), Log::default());
/// assert_eq!((exchange.limit(), exchange.options()), (1, Options::default()));
/// assert_eq!(exchange.next_id(), TaskId::new(0));
/// let first = exchange.start(|channel| Ok(channel.send_value(&10u32)?))?;
/// assert!(exchange.busy()); // at its limit of one:
/// let second = exchange.start(|channel| Ok(channel.send_value(&20u32)?))?;
/// assert_eq!(exchange.waiting(), 1); // the second task waits to start
/// assert!(exchange.unfinished());
/// while exchange.waiting() > 0 || exchange.busy() {
///     exchange.store(-1)?; // stores 10, then starts and stores 20
/// }
///
/// exchange.set_limit(Limit::Unbounded);
/// let third = exchange.start_wait(|channel| Ok(channel.send_value(&30u32)?))?;
/// let fourth = match exchange.create()? {
///     CreatedTask::Child(mut channel) => {
///         let status = if channel.send_value(&40u32).is_ok() { 0 } else { 1 };
///         exit(channel, status)
///     }
///     CreatedTask::Parent { pid, task } => {
///         assert!(pid > 0);
///         task
///     }
/// };
/// // A channel made elsewhere: monitored as a task of its own.
/// let (mine, mut theirs) = Channel::pair()?;
/// theirs.send_value(&50u32)?;
/// let fifth = exchange.add(mine).map_err(|_| pprocess::Error::Busy)?;
/// let (mine, _theirs) = Channel::pair()?;
/// let fd = mine.raw_fd();
/// let sixth = exchange.add_wait(mine)?;
/// assert_eq!(exchange.active().count(), exchange.active_count());
/// exchange.wait()?; // below the limit: returns at once without one
/// exchange.remove(fd)?; // its task gets Error::Closed instead of a result
/// drop(theirs); // the fifth task's channel ends
/// exchange.finish()?;
///
/// let mut log = std::mem::take(&mut exchange.handler_mut().0);
/// log.sort();
/// assert_eq!(log, [(first, 10), (second, 20), (third, 30), (fourth, 40), (fifth, 50)]);
/// assert_eq!(sixth.index(), 5);
/// assert!(exchange.handler().0.is_empty() && !exchange.unfinished());
/// # Ok::<(), pprocess::Error>(())
/// ```
pub struct Exchange<S: Slots, H: StoreData> {
    slots: S,
    handler: H,
    limit: usize,
    options: Options,
    next_task: TaskId,
    /// Processes whose channel ended but that had not exited yet: collected
    /// by `finish` (they are exiting), killed and collected on drop.
    lingering: sys::Children<LINGERING>,
    /// Whether the processes of this exchange may be forked while the
    /// program has other threads (a C caller's exchange).
    fork: ForkCheck,
    #[cfg(feature = "alloc")]
    jobs: jobs::Jobs,
    /// A channel with an acknowledgement policy (a persistent connection)
    /// was monitored: taking a result may acknowledge it. Until then,
    /// [`Exchange::taken`] has nothing to do.
    #[cfg(feature = "alloc")]
    acks_taken: bool,
    /// The channels the last [`Exchange::ready`] removed.
    removed: ready::RemovedList,
    /// True during [`Exchange::ready`]: channels that end are noted in
    /// `removed`.
    readying: bool,
}

/// Processes an exchange holds to collect without `alloc`; beyond, it
/// waits for the oldest (see [`sys::Children::adopt`]).
const LINGERING: usize = 64;

impl<S: Slots, H: StoreData> Exchange<S, H> {
    /// An exchange running at most `limit` processes at once (a
    /// [`Limit`]: `0` is one per processor, `None` no limit; never more
    /// than the storage holds).
    pub fn new(limit: impl Into<Limit>, options: Options, handler: H) -> Self {
        let slots = S::default();
        Exchange {
            limit: limit.into().get().min(slots.capacity()),
            slots,
            handler,
            options,
            next_task: TaskId::new(0),
            lingering: sys::Children::new(),
            fork: ForkCheck::Refuse,
            #[cfg(feature = "alloc")]
            jobs: jobs::Jobs::default(),
            #[cfg(feature = "alloc")]
            acks_taken: false,
            removed: ready::RemovedList::new(),
            readying: false,
        }
    }

    /// Lets this exchange fork while the program has other threads: for an
    /// exchange of a C caller, who took the header's contract (Rust callers
    /// use [`process::allow_fork_with_threads`]).
    #[cfg(feature = "capi")]
    pub(crate) fn accept_fork_contract(&mut self) {
        self.fork = ForkCheck::Accepted;
    }

    /// How this exchange's forks treat other threads.
    #[cfg(feature = "alloc")]
    pub(crate) fn fork_check(&self) -> ForkCheck {
        self.fork
    }

    /// The store handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The store handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// The options this exchange was made with.
    pub fn options(&self) -> Options {
        self.options
    }

    /// The most processes run at once ([`usize::MAX`] for
    /// [`Limit::Unbounded`] with growable storage).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Changes the limit (never more than the storage holds). Processes
    /// already running keep running.
    pub fn set_limit(&mut self, limit: impl Into<Limit>) {
        self.limit = limit.into().get().min(self.slots.capacity());
    }

    /// True when as many channels are monitored as the limit allows.
    pub fn busy(&self) -> bool {
        self.active_count() >= self.limit
    }

    /// True while channels are monitored or tasks wait to start.
    pub fn unfinished(&self) -> bool {
        self.active_count() > 0 || self.waiting() > 0
    }

    /// Tasks waiting to start: because the exchange is at its limit, or, for
    /// reused workers, for the next chunk of tasks to be written to a worker.
    pub fn waiting(&self) -> usize {
        #[cfg(feature = "alloc")]
        return self.jobs.waiting();
        #[cfg(not(feature = "alloc"))]
        0
    }

    /// The id the next task started or added will get.
    pub fn next_id(&self) -> TaskId {
        self.next_task
    }

    #[cfg(feature = "alloc")]
    fn new_task(&mut self) -> TaskId {
        let task = self.next_task;
        self.next_task = task.next();
        task
    }

    /// Monitors `channel` as a new task (its results get the returned id),
    /// even beyond the limit. A full [`Fixed`] store hands the channel back.
    ///
    /// A channel to a persistent process (from [`connect_persistent`] or the
    /// creator's side of [`create_persistent`]) is monitored as
    /// [`Exchange::connect`] does: its results are acknowledged when the
    /// program takes them, and its keeper is never killed (a keeper this
    /// process created is collected once it exits).
    ///
    /// [`connect_persistent`]: crate::connect_persistent
    /// [`create_persistent`]: crate::create_persistent
    pub fn add(&mut self, channel: impl Into<S::Held>) -> core::result::Result<TaskId, S::Held> {
        let task = self.next_task;
        #[cfg_attr(not(feature = "alloc"), allow(unused_mut))]
        let mut held = channel.into();
        #[cfg(feature = "alloc")]
        {
            self.adopt(held.borrow_mut(), task);
            self.acks_taken |= held.borrow().has_policy();
        }
        // Out of memory for the slot: handed back, as when full.
        let Ok(tasks) = Tasks::of(Some(task)) else {
            return Err(held);
        };
        match self.slots.push(Slot::new(held, tasks)) {
            Ok(()) => {
                self.next_task = self.next_task.next();
                Ok(task)
            }
            #[cfg_attr(not(feature = "alloc"), allow(unused_mut))]
            Err(mut slot) => {
                // Handed back: it acknowledges as usual again.
                #[cfg(feature = "alloc")]
                slot.channel.borrow_mut().release_receipts(true);
                Err(slot.channel)
            }
        }
    }

    /// Tells `channel`'s receipts (a connection to a persistent process
    /// has them) that it is monitored as `task`, and whether the handler
    /// [keeps results](StoreData::keeps_results); a peer process that must
    /// outlive the exchange is handed to the collection of orphans instead
    /// of being killed with it.
    #[cfg(feature = "alloc")]
    fn adopt(&mut self, channel: &mut Channel, task: TaskId) {
        if channel.monitored(task.index(), self.handler.keeps_results()) {
            if let Some(child) = channel.disown() {
                sys::reap_later(child);
            }
        }
    }

    /// Stores results until the exchange is below its limit, then adds
    /// `channel` (pprocess's `add_wait`), acknowledging the results from
    /// persistent processes stored meanwhile as [`Exchange::wait`] does.
    pub fn add_wait(&mut self, channel: impl Into<S::Held>) -> Result<TaskId> {
        self.wait_below_limit()?;
        self.add(channel).map_err(|_| Error::Busy)
    }

    fn wait_below_limit(&mut self) -> Result<()> {
        while self.busy() {
            #[cfg(feature = "alloc")]
            self.ack_stored();
            self.store_unacked(-1)?;
        }
        Ok(())
    }

    /// The program took a result of `task`: tells the channels' receipts
    /// (a persistent process's connection acknowledges it then), with every
    /// result of that task stored before it when `all` (a store that keeps
    /// one result per task, whose result replaced the earlier ones).
    #[cfg(feature = "alloc")]
    pub(crate) fn taken(&mut self, task: TaskId, all: bool) {
        #[cfg(feature = "alloc")]
        if !self.acks_taken {
            return;
        }
        let count = if all { usize::MAX } else { 1 };
        for slot in self.slots.slots_mut() {
            slot.channel().results_taken(task.index(), count);
        }
    }

    /// Releases what every channel's receipts hold back (the results stored
    /// from persistent processes and not taken yet are acknowledged). Before
    /// a wait for channels to end: a persistent process ends its connection
    /// only once every result is acknowledged.
    #[cfg(feature = "alloc")]
    fn ack_stored(&mut self) {
        for slot in self.slots.slots_mut() {
            slot.channel().release_receipts(false);
        }
    }

    /// Stops monitoring the channel whose descriptor is `fd` (see
    /// [`Channel::raw_fd`]). It is closed (autoclose), or handed back with
    /// [`Options::keep_removed`]. A task of it still without its result gets
    /// [`Error::Closed`] in its place. [`Error::Invalid`] if no such channel
    /// is monitored.
    pub fn remove(&mut self, fd: i32) -> Result<Option<S::Held>> {
        let index = self
            .slots
            .slots()
            .iter()
            .position(|slot| slot.channel.borrow().raw_fd() == fd)
            .ok_or(Error::Invalid)?;
        self.remove_at(index)
    }

    /// Stops monitoring the channel of task `task` (the channel it ran on,
    /// or runs on: for a reused worker, with the other tasks queued in it),
    /// as [`Exchange::remove`] does. [`Error::Invalid`] if no monitored
    /// channel has run it.
    ///
    /// ```
    /// use pprocess::{Options, Queue};
    ///
    /// let mut queue = Queue::with_options(2, Options::default());
    /// let task = queue.start(|channel| {
    ///     let _ = channel.receive_vec(); // waits until its channel closes
    ///     Ok(())
    /// })?;
    /// queue.remove_task(task)?; // closed: its task fails with Closed
    /// let outcome = queue.next().unwrap();
    /// assert_eq!(outcome.unwrap_err().error, pprocess::Error::Closed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove_task(&mut self, task: TaskId) -> Result<Option<S::Held>> {
        let index = self
            .slots
            .slots()
            .iter()
            .position(|slot| slot.tasks.iter().any(|&t| t == task) || slot.last_task == Some(task))
            .ok_or(Error::Invalid)?;
        self.remove_at(index)
    }

    /// Removes slot `index` (see [`Exchange::remove`]), first charging what
    /// the program received from it after [`Exchange::ready`]: a result it
    /// took is its task's, not a missing one.
    fn remove_at(&mut self, index: usize) -> Result<Option<S::Held>> {
        if !self.collect(index, false)? {
            return Ok(None); // it broke the protocol, and was retired
        }
        let channel = self.detach(index, Error::Closed, false);
        if self.options.keep_removed {
            Ok(Some(channel))
        } else {
            Ok(None)
        }
    }

    /// Waits up to `timeout_ms` for messages and stores each ready
    /// channel's next one (pprocess's `store`); then starts waiting tasks the
    /// limit allows. Returns how many channels were served;
    /// [`Error::TimedOut`] if the time passed with nothing to serve.
    ///
    /// A wait without end (`timeout_ms < 0`) first acknowledges the results
    /// stored from persistent processes, as [`Exchange::wait`] does: such a
    /// connection ends only once its results are acknowledged, so a loop
    /// `while exchange.active_count() > 0 { exchange.store(-1)?; }` would otherwise
    /// wait forever.
    pub fn store(&mut self, timeout_ms: i32) -> Result<usize> {
        #[cfg(feature = "alloc")]
        if timeout_ms < 0 {
            self.ack_stored();
        }
        self.store_unacked(timeout_ms)
    }

    /// [`Exchange::store`] that acknowledges nothing: the read-ahead of
    /// [`Exchange::next_result`] and of the waits that acknowledge first.
    pub(crate) fn store_unacked(&mut self, timeout_ms: i32) -> Result<usize> {
        self.collect_all()?;
        if self.active_count() == 0 {
            return Ok(0);
        }
        let deadline = Deadline::after(timeout_ms);
        let mut served = 0;
        loop {
            if self.slots.poll(deadline.remaining_ms())? > 0 {
                let mut index = self.slots.slots().len();
                while index > 0 {
                    index -= 1;
                    if self.slots.slots()[index].ready {
                        served += 1;
                        // Serve what the channel already read ahead, too,
                        // without polling again.
                        while self.serve(index)? && self.slots.slots()[index].buffered() {}
                    }
                }
            }
            #[cfg(feature = "alloc")]
            self.dispatch()?;
            if served > 0 || self.active_count() == 0 {
                return Ok(served);
            }
            if deadline.expired() {
                return Err(Error::TimedOut);
            }
        }
    }

    /// Reads the next frame of slot `index` and stores it, finishes its
    /// task, or retires the slot when its channel has ended. Returns whether
    /// the slot is still there.
    fn serve(&mut self, index: usize) -> Result<bool> {
        #[cfg(feature = "alloc")]
        if self.serve_answers(index)? && !self.slots.slots()[index].buffered() {
            return Ok(true);
        }
        let slot = &mut self.slots.slots_mut()[index];
        // No second poll: the last one found this channel ready. The read
        // does not wait, so a peer stalled mid-header holds nobody up; the
        // bytes it sent stay buffered until the rest arrives.
        // A message kept by `send_acked` is buffered too (`has_buffered`),
        // but not in the socket: take it first, or this spins.
        #[cfg(feature = "alloc")]
        let stashed = slot.channel().stashed_frame();
        #[cfg(not(feature = "alloc"))]
        let stashed = None;
        let frame = match stashed {
            Some(frame) => Ok(frame),
            None => slot.channel().next_frame(Deadline::after(0)),
        };
        match frame {
            Ok(Frame::Ack) | Err(Error::TimedOut) => Ok(true),
            Ok(Frame::TaskEnd) | Err(Error::Remote { .. }) => self.collect(index, true),
            Ok(Frame::Message(header)) => {
                // Served only once it is buffered whole: a peer stalled in
                // the middle of a payload holds nobody up.
                #[cfg(feature = "alloc")]
                match slot.channel().buffer_payload() {
                    Ok(true) => {}
                    Ok(false) => return Ok(true),
                    // Out of memory: the message stays, for a later call.
                    Err(e) if e == Error::from(sys::Errno::NOMEM) => return Err(e),
                    Err(e) => return self.retire(index, e).map(|()| false),
                }
                let Some(task) = self.task_of(index, header.task) else {
                    // A message nobody asked for: a misbehaving peer.
                    let why = match self.slots.slots()[index].tasks.is_empty() {
                        true => Error::Invalid,
                        false => Error::Protocol(ProtoError::UnknownTask(header.task)),
                    };
                    return self.retire(index, why).map(|()| false);
                };
                let slot = &mut self.slots.slots_mut()[index];
                // What the handler sends goes to the task that asked.
                slot.channel().reply_to(header.task);
                let stored = self.handler.store_data(slot.channel(), task);
                if let Err(e) = stored {
                    return match e {
                        Error::Closed | Error::PeerEnded { .. } | Error::Protocol(_) => {
                            self.retire(index, e).map(|()| false)
                        }
                        other => Err(other),
                    };
                }
                if slot.channel().has_pending() {
                    // The handler did not receive the message: it would be
                    // offered again forever.
                    return Err(Error::Invalid);
                }
                self.collect(index, true)
            }
            Err(e) => self.retire(index, e).map(|()| false),
        }
    }

    /// Stores the answers of slot `index`'s reused worker that come
    /// straight from its ring: each frame that is the one whole result of
    /// the task in front goes to [`StoreData::store_message`] and finishes
    /// that task, without the generic path's steps per frame. Stops at
    /// anything else (an error, a marker, a frame of another task, a second
    /// message, a handler that takes no bytes), which the generic path
    /// serves next; what it takes leaves no mark to collect (and every mark
    /// was collected before a serve). Returns whether it stored any.
    #[cfg(feature = "alloc")]
    fn serve_answers(&mut self, index: usize) -> Result<bool> {
        if self.options.continuous {
            return Ok(false);
        }
        let slot = &mut self.slots.slots_mut()[index];
        // While a message came already for the task in front, the next one
        // is not its one answer.
        if slot.worker.is_none() || slot.results != 0 {
            return Ok(false);
        }
        let (handler, tasks) = (&mut self.handler, &slot.tasks);
        let mut answered = 0;
        // Each answer is the one of the next task in order, or it stops.
        let take = |tag: u64, message: &[u8]| {
            let next = tasks.get(answered).filter(|&task| tag_of(task) == tag);
            let Some(task) = next else {
                return Ok(false);
            };
            let stored = handler.store_message(task, message)?;
            answered += usize::from(stored);
            Ok(stored)
        };
        let taken = slot.channel.borrow_mut().take_answers(take);
        // Each task answered has its one result stored: finished, as
        // `finish_task` finishes a task that ended with its results (those
        // before an error too).
        slot.finish_answered(answered);
        taken.map(|_| answered > 0)
    }

    /// The task a frame of slot `index` naming `tag` belongs to: a reused
    /// worker's frames name one of the tasks this slot gave it, in flight
    /// or (a late frame, such as an error after a task's one result) the
    /// one it finished last; a tag of any other task (another worker's,
    /// one taken back) is None, a protocol error for this worker alone.
    /// Any other channel is its own task.
    fn task_of(&self, index: usize, tag: u64) -> Option<TaskId> {
        let slot = &self.slots.slots()[index];
        #[cfg(feature = "alloc")]
        if slot.worker.is_some() {
            let task = TaskId::new(usize::try_from(tag.checked_sub(1)?).ok()?);
            // The usual case first: the task in front.
            let given = slot.tasks.front() == Some(&task)
                || slot.last_task == Some(task)
                || slot.tasks.iter().any(|&t| t == task);
            return given.then_some(task);
        }
        let _ = tag;
        slot.tasks.front().copied()
    }

    /// Charges what was taken from slot `index`'s channel (by the handler
    /// or by the program) to the tasks the frames named: counts results,
    /// finishes tasks, and reports failures when `report` (those the
    /// program received itself were seen). Returns whether the slot is
    /// still there.
    fn collect(&mut self, index: usize, report: bool) -> Result<bool> {
        while let Some(mark) = self.slots.slots_mut()[index].channel().take_mark() {
            // The usual case first: messages of the task in front.
            let slot = &mut self.slots.slots_mut()[index];
            if !mark.failed && slot.front_named(mark.task) {
                slot.results += mark.messages;
                if mark.end {
                    self.finish_task(index, Ending::Done);
                }
                continue;
            }
            let Some(task) = self.task_of(index, mark.task) else {
                if self.slots.slots()[index].tasks.is_empty() {
                    continue; // a channel whose task is over: nothing to charge
                }
                let why = Error::Protocol(ProtoError::UnknownTask(mark.task));
                return self.retire(index, why).map(|()| false);
            };
            let slot = &mut self.slots.slots_mut()[index];
            let current = slot.tasks.front() == Some(&task);
            if current {
                slot.results += mark.messages;
            }
            match (mark.failed, current) {
                (true, true) if report => self.finish_task(index, Ending::Failed),
                (true, true) => self.finish_task(index, Ending::Seen),
                (true, false) if report => {
                    // A late error: the task had finished (its one result came).
                    let remote = slot.channel().remote_error().cloned();
                    self.handler.store_error(
                        task,
                        remote_failure(remote.as_ref()),
                        remote.as_ref(),
                    );
                }
                (false, true) if mark.end => self.finish_task(index, Ending::Done),
                _ => {}
            }
        }
        Ok(true)
    }

    /// Collects every slot's marks (what the program received after
    /// [`Exchange::ready`]), retires the channels whose end it received,
    /// and starts the tasks that made room for.
    fn collect_all(&mut self) -> Result<()> {
        let mut index = self.slots.slots().len();
        while index > 0 {
            index -= 1;
            if self.collect(index, false)? {
                let channel = self.slots.slots_mut()[index].channel();
                if let Some(why) = channel.end_error().filter(|_| !channel.has_buffered()) {
                    match self.readying {
                        false => self.retire(index, why)?,
                        true if self.can_remove() => self.remove_ended(index, why)?,
                        true => {} // the removed list is full: the next call
                    }
                }
            }
        }
        #[cfg(feature = "alloc")]
        self.dispatch()?;
        Ok(())
    }

    /// The oldest task of slot `index` is finished, as `ending` says.
    fn finish_task(&mut self, index: usize, ending: Ending) {
        let slot = &mut self.slots.slots_mut()[index];
        let Some((task, results)) = slot.finish_front() else {
            return;
        };
        match ending {
            Ending::Failed => {
                let remote = slot.channel().remote_error().cloned();
                self.handler
                    .store_error(task, remote_failure(remote.as_ref()), remote.as_ref())
            }
            Ending::Done if results == 0 && !self.options.continuous => {
                self.handler.store_error(task, Error::Closed, None)
            }
            Ending::Done | Ending::Seen => {}
        }
    }

    /// Takes slot `index` out of the exchange: reports its unfinished task
    /// as failed with `why` (unless it already has its result and ended
    /// normally), and returns the channel. The tasks a reused worker never
    /// started go to other workers when `requeue` (it is gone: they can
    /// run nowhere else); otherwise they stay in its socket with the
    /// channel and fail here with [`Error::Closed`], so none runs twice.
    fn detach(&mut self, index: usize, why: Error, requeue: bool) -> S::Held {
        let mut slot = self.slots.swap_remove(index);
        slot.channel().set_marking(false);
        #[cfg(feature = "alloc")]
        slot.channel().set_outbox(false);
        // Dead-worker recovery (see `exchange::claims`): the tasks a reused
        // worker never started, by their claim words, go to other workers;
        // only one it started fails (even one that died between tasks).
        #[cfg(feature = "alloc")]
        let started = match requeue {
            true => jobs::started(&slot),
            false => slot.tasks.len(),
        };
        #[cfg(not(feature = "alloc"))]
        let started = slot.tasks.len();
        let unstarted = slot.tasks.len() - started;
        let front = match started {
            0 => None,
            _ => slot.tasks.pop_front(),
        };
        if let Some(task) = front {
            let abnormal = !matches!(why, Error::Closed);
            let silent = slot.results == 0 && !self.options.continuous;
            if abnormal || silent {
                self.handler.store_error(task, why, None);
            }
            #[cfg(feature = "alloc")]
            if let Some(worker) = &mut slot.worker {
                worker.tasks_done(1);
            }
        }
        #[cfg(not(feature = "alloc"))]
        let _ = (requeue, unstarted); // no reused workers
        #[cfg(feature = "alloc")]
        {
            self.jobs.requeue(&mut slot, unstarted);
            while let Some(task) = slot.tasks.pop_front() {
                self.handler.store_error(task, Error::Closed, None);
            }
            // Its stored results can no longer be matched to it when taken;
            // and a channel handed back acknowledges as usual.
            slot.channel().release_receipts(true);
        }
        slot.channel
    }

    /// Slot `index`'s channel ended with `why`: detach it, collect its
    /// process, and close it (an ended channel has nothing left to read).
    fn retire(&mut self, index: usize, why: Error) -> Result<()> {
        let mut channel = self.detach(index, why, true);
        let channel = channel.borrow_mut();
        if !matches!(why, Error::Closed | Error::PeerEnded { .. }) {
            // It broke the protocol or the socket failed: it is no use now.
            channel.kill_and_collect()
        } else if matches!(channel.try_wait(), Ok(None)) {
            // It closed its end, so it is exiting, just not fast enough (or
            // runs on without its channel): collect it later, not now. (A
            // channel of no child of ours, such as a connection to a
            // persistent process, has none to collect.)
            self.lingering.collect_ended();
            if let Some(child) = channel.disown() {
                self.lingering.adopt(child);
            }
            Ok(())
        } else {
            Ok(())
        }
    }

    /// Stores results until the exchange is below its limit (pprocess's
    /// `wait`). Results from persistent processes stored meanwhile are
    /// acknowledged (see [`Exchange::connect`]).
    pub fn wait(&mut self) -> Result<()> {
        self.wait_below_limit()
    }

    /// Stores results until every task has finished and every process has
    /// been collected (pprocess's `finish`); idle reused workers are told to
    /// exit and collected too. Results from persistent processes stored and
    /// not yet taken are acknowledged (see [`Exchange::connect`]).
    pub fn finish(&mut self) -> Result<()> {
        while self.unfinished() {
            #[cfg(feature = "alloc")]
            self.ack_stored();
            self.store_unacked(-1)?;
        }
        self.lingering.collect_all();
        Ok(())
    }

    /// Creates a process monitored by this exchange, once it is below its
    /// limit (pprocess's `Exchange.create`). The new process gets
    /// [`CreatedTask::Child`] with its channel (finish with [`process::exit`]);
    /// the creator gets the pid and task id, and what the new process sends
    /// is stored by this exchange.
    pub fn create(&mut self) -> Result<CreatedTask> {
        self.wait_below_limit()?;
        match process::create_as(self.fork)? {
            Created::Child(channel) => Ok(CreatedTask::Child(channel)),
            Created::Parent(channel) => {
                let pid = channel.pid();
                let task = self.next_task;
                self.monitor_new(channel.into(), Some(task))?;
                self.next_task = self.next_task.next();
                Ok(CreatedTask::Parent { pid, task })
            }
        }
    }

    /// Runs `callable` in a new process as a task of this exchange
    /// (pprocess's `start`). At the limit, the task waits in the waiting list
    /// and starts as others finish (so this needs `alloc`;
    /// [`Exchange::start_wait`] is the call without a waiting list).
    #[cfg(feature = "alloc")]
    pub fn start<F>(&mut self, callable: F) -> Result<TaskId>
    where
        F: FnOnce(&mut Channel) -> core::result::Result<(), RemoteError> + 'static,
    {
        let task = self.new_task();
        self.jobs.push_once(task, alloc::boxed::Box::new(callable));
        self.dispatch_new(task)
    }

    /// Stores results until the exchange is below its limit, then runs
    /// `callable` in a new process as a task of this exchange (the
    /// [`Exchange::add_wait`] of [`Exchange::start`]): it has started when
    /// this returns. Needs no allocator.
    pub fn start_wait<F>(&mut self, callable: F) -> Result<TaskId>
    where
        F: FnOnce(&mut Channel) -> core::result::Result<(), RemoteError>,
    {
        self.wait_below_limit()?;
        let channel = process::start_as(self.fork, callable)?;
        let task = self.next_task;
        self.monitor_new(channel.into(), Some(task))?;
        self.next_task = self.next_task.next();
        Ok(task)
    }

    /// Monitors the channel of a process just created for this exchange.
    /// The storage has room (the callers waited until below the limit, which
    /// the storage holds); should it not, the process is killed and
    /// collected and the call fails with [`Error::Busy`]: nothing runs
    /// unmonitored.
    fn monitor(&mut self, slot: Slot<S::Held>) -> Result<()> {
        #[cfg(feature = "alloc")]
        {
            self.acks_taken |= slot.channel.borrow().has_policy();
        }
        self.slots.push(slot).map_err(|mut slot| {
            crate::error::best_effort(slot.channel.borrow_mut().kill_and_collect());
            Error::Busy
        })
    }

    /// Monitors `channel` in a new slot answering `task`: [`Exchange::monitor`],
    /// or `ENOMEM` (its process killed and collected) when there is no
    /// memory for the slot.
    fn monitor_new(&mut self, mut channel: S::Held, task: Option<TaskId>) -> Result<()> {
        match Tasks::of(task) {
            Ok(tasks) => self.monitor(Slot::new(channel, tasks)),
            Err(e) => {
                crate::error::best_effort(channel.borrow_mut().kill_and_collect());
                Err(e)
            }
        }
    }
}

impl<S: Slots, H: StoreData> Drop for Exchange<S, H> {
    /// Closes every channel and collects every process: processes still
    /// running (unfinished tasks, idle reused workers) are killed first.
    fn drop(&mut self) {
        while let Some(last) = self.slots.slots().len().checked_sub(1) {
            let slot = self.slots.swap_remove(last);
            let mut channel = slot.channel;
            // A drop cannot report: a process that cannot be collected here
            // is handed to the deferred reaping by the channel's own drop.
            let _left_to_channel_drop = channel.borrow_mut().kill_and_collect();
        }
        self.lingering.kill_all();
    }
}
