//! Queue, Map and pmap: exchanges that keep their tasks' results (needs `alloc`).

use super::short::Short;
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::cell::OnceCell;
use core::fmt;

use super::{Exchange, Growable, Options, StoreData, TaskId};
use crate::channel::Channel;
use crate::error::{Error, RemoteError, Result};
use crate::os::Errno;

/// Why a task has no result: its callable's error, or how its process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskError {
    /// [`Error::Remote`] for a callable's error, [`Error::PeerEnded`] or
    /// [`Error::Closed`] for a process that ended without a result.
    pub error: Error,
    /// The callable's code and message, for [`Error::Remote`] (boxed: an
    /// outcome is moved about whole, and most carry none).
    pub remote: Option<Box<RemoteError>>,
}

impl From<Error> for TaskError {
    fn from(error: Error) -> TaskError {
        TaskError {
            error,
            remote: None,
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.remote {
            Some(remote) => write!(f, "task failed: {remote}"),
            None => write!(f, "task failed: {}", self.error),
        }
    }
}

impl core::error::Error for TaskError {}

/// A task's result: its message, or why there is none.
pub type Outcome = core::result::Result<Vec<u8>, TaskError>;

/// A task's result as a fixed-layout value (sent with
/// [`Channel::send_value`], or returned by a callable from
/// [`Exchange::manage_value`]): the task's failure, or
/// [`Error::WrongSize`] for a message of another size.
///
/// ```
/// use pprocess::exchange::value_of;
/// use pprocess::{Error, Options, Queue};
///
/// let mut queue = Queue::with_options(1, Options::default());
/// queue.start(|channel| Ok(channel.send_value(&7u32)?))?;
/// queue.start(|channel| Ok(channel.send(&[1, 2])?))?;
/// let outcomes: Vec<_> = queue.collect();
/// let values: Vec<_> = outcomes.into_iter().map(value_of::<u32>).collect();
/// assert!(values.contains(&Ok(7)));
/// // A message of 2 bytes is no u32:
/// let wrong = Error::WrongSize { expected: 4, actual: 2 };
/// assert!(values.iter().any(|v| matches!(v, Err(e) if e.error == wrong)));
/// # Ok::<(), pprocess::Error>(())
/// ```
pub fn value_of<T: bytemuck::Pod>(outcome: Outcome) -> core::result::Result<T, TaskError> {
    let bytes = outcome?;
    bytemuck::try_pod_read_unaligned(&bytes).map_err(|_| {
        TaskError::from(Error::WrongSize {
            expected: core::mem::size_of::<T>(),
            actual: bytes.len(),
        })
    })
}

fn failure(error: Error, remote: Option<&RemoteError>) -> Outcome {
    Err(TaskError {
        error,
        remote: remote.cloned().map(Box::new),
    })
}

/// A store handler that keeps results to be read back, in arrival order
/// ([`QueueStore`]) or in start order ([`MapStore`]).
pub trait Results: StoreData {
    /// The result to read next, if it is in. None also when a store that
    /// makes the outcome as it is shown ([`QueueStore`], for a small
    /// message) has no memory for it: the result stays.
    fn front(&self) -> Option<(TaskId, &Outcome)>;
    /// Takes the result [`Results::front`] shows (a store that keeps its
    /// results, [`MapStore`], hands out a copy and moves on). None when
    /// none is in, or when there is no memory for the outcome: the result
    /// then stays.
    fn pop_front(&mut self) -> Option<(TaskId, Outcome)>;
    /// The task whose result is read next, if results come in task order.
    fn next_task(&self) -> Option<TaskId>;
    /// The result of `task`, if it is in and was not taken.
    fn result_of(&self, task: TaskId) -> Option<&Outcome>;

    /// The result [`Results::front`] shows, as its message's bytes or the
    /// task's failure, without making an [`Outcome`] of it (a
    /// [`QueueStore`] keeps small messages inline and makes an outcome of
    /// one only when it is shown or taken as one).
    fn front_bytes(&self) -> Option<(TaskId, core::result::Result<&[u8], &TaskError>)> {
        self.front()
            .map(|(task, outcome)| (task, outcome.as_deref()))
    }

    /// Takes the result [`Results::front_bytes`] shows without handing it
    /// out (read its bytes first): its task, and its failure if it failed.
    fn skip_front(&mut self) -> Option<(TaskId, Option<TaskError>)> {
        self.pop_front()
            .map(|(task, outcome)| (task, outcome.err()))
    }

    /// Lends the result [`Results::front_bytes`] shows to `f`, then takes
    /// it as [`Results::skip_front`] does: its task and what `f` returned.
    /// None (and `f` not called) when none is in.
    fn take_front_with<R>(
        &mut self,
        f: impl FnOnce(TaskId, core::result::Result<&[u8], &TaskError>) -> R,
    ) -> Option<(TaskId, R)>
    where
        Self: Sized,
    {
        let (task, result) = self.front_bytes()?;
        let value = f(task, result);
        self.skip_front()?;
        Some((task, value))
    }
}

impl<H: Results> Exchange<Growable, H> {
    /// Stores until the next result is in. [`Error::Done`] when every task
    /// has answered and every result was read.
    fn wait_front(&mut self, timeout_ms: i32) -> Result<()> {
        loop {
            if self.handler().front_bytes().is_some() {
                return Ok(());
            }
            let exhausted = self
                .handler()
                .next_task()
                .is_some_and(|next| next >= self.next_task);
            if exhausted || !self.unfinished() {
                return Err(Error::Done);
            }
            self.store_unacked(timeout_ms)?;
        }
    }

    /// The next result and its task, waiting up to `timeout_ms` for it
    /// (`-1` forever). [`Error::Done`] when there are no more.
    ///
    /// A result from a persistent process ([`Exchange::connect`]) is
    /// acknowledged here, as it is taken, not when it was stored: one left
    /// in the exchange when this process is killed or drops the exchange
    /// goes to the persistent process's next client. (Taking results
    /// through [`Exchange::handler_mut`] bypasses this: the persistent
    /// process then keeps them until [`Exchange::finish`].)
    pub fn next_result(&mut self, timeout_ms: i32) -> Result<(TaskId, Outcome)> {
        self.wait_front(timeout_ms)?;
        // A result is in: none taken means no memory to copy it out (it
        // stays for the next call).
        self.pop_result().ok_or(Error::from(Errno::NOMEM))
    }

    /// The next result, lent to `f` as its message's bytes (or its task's
    /// failure) and then taken, waiting as [`Exchange::next_result`] does:
    /// what `f` returns. A message is not copied out, so a program that
    /// reads many small results pays no allocation for them (a
    /// [`Queue`] keeps a message of up to 15 bytes inline).
    /// A store of the program's own that cannot take the result after `f`
    /// saw it ([`Results::skip_front`] returns None) keeps it: `ENOMEM`,
    /// and the next call lends it again.
    ///
    /// ```
    /// use pprocess::{Error, Options, Queue, TaskError};
    ///
    /// let mut queue = Queue::with_options(2, Options { reuse: true, ..Options::default() });
    /// let square = queue.manage_function(|x: &[u8]| Ok(vec![x[0] * x[0]]));
    /// for n in 1..=4u8 {
    ///     square.call(&mut queue, &[n])?;
    /// }
    /// let first_byte = |_task, result: Result<&[u8], &TaskError>| match result {
    ///     Ok(bytes) => Ok(bytes[0]),
    ///     Err(failure) => Err(failure.clone()),
    /// };
    /// let mut sum = 0;
    /// loop {
    ///     match queue.next_result_with(-1, first_byte) {
    ///         Ok(n) => sum += n?,
    ///         Err(Error::Done) => break, // every result was taken
    ///         Err(e) => return Err(e.into()),
    ///     }
    /// }
    /// assert_eq!(sum, 1 + 4 + 9 + 16);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_result_with<R>(
        &mut self,
        timeout_ms: i32,
        f: impl FnOnce(TaskId, core::result::Result<&[u8], &TaskError>) -> R,
    ) -> Result<R> {
        // The usual case, a result in, without the wait's call.
        if self.handler().front_bytes().is_none() {
            self.wait_front(timeout_ms)?;
        }
        // A result is in: none taken means no memory to take it.
        let taken = self.handler_mut().take_front_with(f);
        let (task, value) = taken.ok_or(Error::from(Errno::NOMEM))?;
        self.took_result(task);
        Ok(value)
    }

    /// Takes the result [`Results::front`] shows, acknowledging it if it
    /// came from a persistent process.
    pub(crate) fn pop_result(&mut self) -> Option<(TaskId, Outcome)> {
        let (task, outcome) = self.handler_mut().pop_front()?;
        self.took_result(task);
        Some((task, outcome))
    }

    /// The program took the result of `task`: acknowledged if it came from
    /// a persistent process.
    fn took_result(&mut self, task: TaskId) {
        // A store that reads results in task order keeps one per task.
        let one_per_task = self.handler().next_task().is_some();
        self.taken(task, one_per_task);
    }

    /// The next result as its bytes or its task's failure, without taking
    /// it or making an [`Outcome`] of it, waiting as
    /// [`Exchange::next_result`] does; [`Exchange::skip_result`] then takes
    /// it.
    #[cfg(feature = "capi")]
    pub(crate) fn peek_bytes(
        &mut self,
        timeout_ms: i32,
    ) -> Result<(TaskId, core::result::Result<&[u8], &TaskError>)> {
        self.wait_front(timeout_ms)?;
        self.handler().front_bytes().ok_or(Error::Done)
    }

    /// Takes the result [`Results::front_bytes`] shows, as
    /// [`Exchange::pop_result`] does, without making an [`Outcome`] of it:
    /// its task and its failure, if it failed.
    #[cfg(feature = "capi")]
    pub(crate) fn skip_result(&mut self) -> Option<(TaskId, Option<TaskError>)> {
        let (task, failure) = self.handler_mut().skip_front()?;
        self.took_result(task);
        Some((task, failure))
    }

    /// The next result without taking it, waiting as [`Exchange::next_result`] does.
    pub fn peek_result(&mut self, timeout_ms: i32) -> Result<(TaskId, &Outcome)> {
        self.wait_front(timeout_ms)?;
        // A result is in: none shown means no memory to copy it out.
        self.handler().front().ok_or(Error::from(Errno::NOMEM))
    }

    /// The result of task `task`, waiting only until that one is in. A
    /// [`Map`] keeps every result until it is dropped, so this works before,
    /// during and after iterating it. [`Error::Done`] if the task never
    /// started, or (in a queue, which keeps no result by task) always.
    ///
    /// ```
    /// use pprocess::{Map, Options, TaskId};
    ///
    /// let mut map = Map::with_options(2, Options::default());
    /// let double = map.manage_function(|x: &[u8]| Ok(vec![x[0] * 2]));
    /// let mut tasks = Vec::new();
    /// for n in 0..6u8 {
    ///     tasks.push(double.call(&mut map, &[n])?);
    /// }
    /// assert_eq!(map.get(tasks[4])?.as_deref().ok(), Some(&[8u8][..]));
    /// let all: Vec<Vec<u8>> = map.by_ref().collect::<Result<_, _>>()?;
    /// assert_eq!(all.concat(), [0, 2, 4, 6, 8, 10]);
    /// // Still there after the iteration: task 2's result, and tasks 3 to 5.
    /// assert_eq!(map.get(TaskId::new(2))?.as_deref().ok(), Some(&[4u8][..]));
    /// let some: Vec<u8> = map.range(tasks[3]..TaskId::new(6))?.map(|r| r.as_ref().unwrap()[0]).collect();
    /// assert_eq!(some, [6, 8, 10]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&mut self, task: TaskId) -> Result<&Outcome> {
        self.wait_for(task)?;
        self.handler().result_of(task).ok_or(Error::Done)
    }

    /// The results of the tasks in `tasks`, in task order, waiting until
    /// they are all in (the tutorial's `results[i*N:i*N+N]`).
    /// [`Error::Done`] if one never started (or in a queue).
    pub fn range(
        &mut self,
        tasks: core::ops::Range<TaskId>,
    ) -> Result<impl Iterator<Item = &Outcome> + '_> {
        let tasks = (tasks.start.index()..tasks.end.index()).map(TaskId::new);
        for task in tasks.clone() {
            self.wait_for(task)?;
        }
        let handler = self.handler();
        let all = tasks.clone().all(|task| handler.result_of(task).is_some());
        if !all {
            return Err(Error::Done);
        }
        Ok(tasks.filter_map(move |task| handler.result_of(task)))
    }

    /// Stores until the result of `task` is in; [`Error::Done`] if it never
    /// will be (never started, or not kept by task).
    fn wait_for(&mut self, task: TaskId) -> Result<()> {
        loop {
            if self.handler().result_of(task).is_some() {
                return Ok(());
            }
            let by_task = self.handler().next_task().is_some();
            if !by_task || task >= self.next_task || !self.unfinished() {
                return Err(Error::Done);
            }
            // Acknowledges what is stored (a wait for a task that may be
            // waiting for a connection to end): see Exchange::store.
            self.store(-1)?;
        }
    }
}

/// Yields each result once, in the handler's order; a failure of the
/// exchange itself ends up as a failed outcome.
fn next_outcome<H: Results>(exchange: &mut Exchange<Growable, H>) -> Option<Outcome> {
    match exchange.next_result(-1) {
        Ok((_, outcome)) => Some(outcome),
        Err(Error::Done) => None,
        Err(e) => Some(Err(e.into())),
    }
}

/// Keeps results in arrival order. A reused worker's answer of up to 15
/// bytes ([`StoreData::store_message`]) is kept inline, in no memory of its
/// own, until it is taken or shown as an [`Outcome`];
/// [`Results::front_bytes`] and [`Results::skip_front`] read and take any
/// result without making one.
///
/// ```
/// use pprocess::exchange::{QueueStore, Results};
/// use pprocess::{Options, Queue};
///
/// let mut queue = Queue::with_options(1, Options::default());
/// queue.start(|channel| Ok(channel.send(b"hello")?))?;
/// queue.finish()?;
/// let store: &mut QueueStore = queue.handler_mut();
/// let (task, bytes) = store.front_bytes().expect("one result");
/// assert_eq!(bytes, Ok(&b"hello"[..]));
/// assert_eq!(store.skip_front(), Some((task, None))); // taken, never copied out
/// assert!(store.front_bytes().is_none());
/// # Ok::<(), pprocess::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct QueueStore {
    /// The results in arrival order: each task with its short message
    /// inline, or [`Short::ELSEWHERE`] for an outcome kept in `whole`.
    /// Plain words, so that a result is stored where it lies, never built
    /// apart and copied (see `exchange::short`).
    results: VecDeque<(TaskId, Short)>,
    /// The longer messages and the failures, in arrival order.
    whole: VecDeque<Outcome>,
    /// The front result as an outcome, once [`Results::front`] showed it.
    shown: OnceCell<Outcome>,
}

impl QueueStore {
    /// Keeps `outcome` as task `task`'s result.
    fn keep_whole(&mut self, task: TaskId, outcome: Outcome) {
        self.whole.push_back(outcome);
        self.results.push_back((task, Short::ELSEWHERE));
    }

    /// Room for one more result kept whole: `ENOMEM` when there is none.
    fn reserve_whole(&mut self) -> Result<()> {
        super::reserve_one(&mut self.results)?;
        super::reserve_one(&mut self.whole)
    }
}

impl StoreData for QueueStore {
    fn keeps_results(&self) -> bool {
        true
    }

    fn store_data(&mut self, channel: &mut Channel, task: TaskId) -> Result<()> {
        // Out of memory: ENOMEM, and the message stays queued.
        self.reserve_whole()?;
        let message = channel.receive_vec()?;
        self.keep_whole(task, Ok(message));
        Ok(())
    }

    // Per answer, in the ring's pass: `always`, because in a program that
    // also uses the library's other stores the compiler kept it a call.
    #[inline(always)]
    fn store_message(&mut self, task: TaskId, message: &[u8]) -> Result<bool> {
        // Out of memory: ENOMEM, before anything is kept.
        let Some(short) = Short::new(message) else {
            self.reserve_whole()?;
            let copy = crate::channel::try_copy(message)?;
            self.keep_whole(task, Ok(copy));
            return Ok(true);
        };
        super::reserve_one(&mut self.results)?;
        self.results.push_back((task, short));
        Ok(true)
    }

    fn store_error(&mut self, task: TaskId, error: Error, remote: Option<&RemoteError>) {
        self.keep_whole(task, failure(error, remote));
    }
}

impl Results for QueueStore {
    fn front(&self) -> Option<(TaskId, &Outcome)> {
        let (task, short) = self.results.front()?;
        if short.is_elsewhere() {
            return Some((*task, self.whole.front()?));
        }
        // Shown as an outcome: copied out once, kept until taken.
        if self.shown.get().is_none() {
            let copy = crate::channel::try_copy(short.bytes());
            // Out of memory: nothing shown, the result stays.
            let _ = self.shown.set(Ok(copy.ok()?));
        }
        Some((*task, self.shown.get()?))
    }

    fn pop_front(&mut self) -> Option<(TaskId, Outcome)> {
        let (_, short) = self.results.front()?;
        let outcome = if short.is_elsewhere() {
            self.whole.pop_front()?
        } else {
            match self.shown.take() {
                Some(shown) => shown,
                // Out of memory: None, and the result stays.
                None => Ok(crate::channel::try_copy(short.bytes()).ok()?),
            }
        };
        let (task, _) = self.results.pop_front()?;
        Some((task, outcome))
    }

    fn front_bytes(&self) -> Option<(TaskId, core::result::Result<&[u8], &TaskError>)> {
        let (task, short) = self.results.front()?;
        if short.is_elsewhere() {
            return Some((*task, self.whole.front()?.as_deref()));
        }
        Some((*task, Ok(short.bytes())))
    }

    fn skip_front(&mut self) -> Option<(TaskId, Option<TaskError>)> {
        let (task, short) = self.results.pop_front()?;
        if self.shown.get().is_some() {
            self.shown.take(); // (an empty cell is left as it is: no write)
        }
        if short.is_elsewhere() {
            return Some((task, self.whole.pop_front()?.err()));
        }
        Some((task, None))
    }

    fn take_front_with<R>(
        &mut self,
        f: impl FnOnce(TaskId, core::result::Result<&[u8], &TaskError>) -> R,
    ) -> Option<(TaskId, R)> {
        // Taken first, then lent from here: the front is looked at once.
        let (task, short) = self.results.pop_front()?;
        if self.shown.get().is_some() {
            self.shown.take(); // (an empty cell is left as it is: no write)
        }
        if !short.is_elsewhere() {
            return Some((task, f(task, Ok(short.bytes()))));
        }
        // The two deques hold the same results in the same order.
        let whole = self.whole.pop_front()?;
        Some((task, f(task, whole.as_deref())))
    }

    fn next_task(&self) -> Option<TaskId> {
        None
    }

    fn result_of(&self, _task: TaskId) -> Option<&Outcome> {
        None
    }
}

/// An exchange whose results come out in the order they arrive
/// (pprocess's `Queue`); iterate it for every result exactly once.
///
/// ```
/// use pprocess::{Options, Queue};
///
/// let mut queue = Queue::with_options(3, Options::default());
/// for n in 1..=3u8 {
///     queue.start(move |channel| Ok(channel.send(&[n * 10])?))?;
/// }
/// // Each result once, in whatever order the processes finished.
/// let mut results: Vec<u8> = queue.map(|outcome| outcome.map(|bytes| bytes[0])).collect::<Result<_, _>>()?;
/// results.sort();
/// assert_eq!(results, [10, 20, 30]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Results one at a time, with a task that fails:
///
/// ```
/// use pprocess::exchange::{QueueStore, Results};
/// use pprocess::{Error, Options, Outcome, Queue, RemoteError, TaskError, TaskId};
///
/// let mut queue: Queue = Queue::with_options(2, Options::default());
/// let good = queue.start(|channel| Ok(channel.send(b"ok")?))?;
/// let bad = queue.start(|_| Err(RemoteError::new(3, "failed")))?;
/// let mut outcomes: Vec<(TaskId, Outcome)> = Vec::new();
/// for _ in 0..2 {
///     let (task, peeked) = {
///         let (task, outcome) = queue.peek_result(-1)?; // not taken
///         (task, outcome.clone())
///     };
///     assert_eq!(queue.next_result(-1)?, (task, peeked.clone())); // taken
///     outcomes.push((task, peeked));
/// }
/// assert_eq!(queue.next_result(-1), Err(Error::Done)); // once both have ended
/// let store: &QueueStore = queue.handler();
/// assert!(store.front().is_none()); // every result was taken
///
/// outcomes.sort_by_key(|(task, _)| *task);
/// assert_eq!(outcomes[0], (good, Ok(b"ok".to_vec())));
/// assert_eq!(outcomes[1].0, bad);
/// let failure: &TaskError = outcomes[1].1.as_ref().unwrap_err();
/// assert_eq!(failure.error, Error::Remote { code: 3 });
/// assert_eq!(failure.remote.as_ref().map(|r| r.message()), Some("failed"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type Queue = Exchange<Growable, QueueStore>;

impl Queue {
    /// A queue running at most `limit` processes (a [`Limit`](super::Limit):
    /// `0` is one per processor, `None` no limit).
    pub fn with_options(limit: impl Into<super::Limit>, options: Options) -> Queue {
        Exchange::new(limit, options, QueueStore::default())
    }
}

impl Iterator for Queue {
    type Item = Outcome;

    fn next(&mut self) -> Option<Outcome> {
        next_outcome(self)
    }
}

/// Keeps results by task, for reading in start order; every result stays
/// until the store is dropped. The store handler of [`Map`], which is
/// `Exchange<Growable, MapStore>`; read it through [`Results`].
///
/// ```
/// use pprocess::exchange::{Growable, MapStore, Results};
/// use pprocess::{Exchange, Options, TaskId};
///
/// let mut map: Exchange<Growable, MapStore> = Exchange::new(2, Options::default(), MapStore::default());
/// for n in 1..=3u8 {
///     map.start(move |channel| Ok(channel.send(&[n * 10])?))?;
/// }
/// map.finish()?;
/// // Every result is kept by task id, whichever finished first.
/// let store: &MapStore = map.handler();
/// assert_eq!(store.result_of(TaskId::new(1)), Some(&Ok(vec![20])));
/// assert_eq!(store.front(), Some((TaskId::new(0), &Ok(vec![10]))));
/// # Ok::<(), pprocess::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct MapStore {
    results: Vec<Option<Outcome>>,
    next: usize,
}

impl MapStore {
    fn put(&mut self, task: TaskId, outcome: Outcome) {
        let index = task.index();
        if self.results.len() <= index {
            self.results.resize_with(index + 1, || None);
        }
        self.results[index] = Some(outcome);
    }
}

impl StoreData for MapStore {
    fn keeps_results(&self) -> bool {
        true
    }

    fn store_data(&mut self, channel: &mut Channel, task: TaskId) -> Result<()> {
        let message = channel.receive_vec()?;
        self.put(task, Ok(message));
        Ok(())
    }

    fn store_message(&mut self, task: TaskId, message: &[u8]) -> Result<bool> {
        let message = crate::channel::try_copy(message)?;
        self.put(task, Ok(message));
        Ok(true)
    }

    fn store_error(&mut self, task: TaskId, error: Error, remote: Option<&RemoteError>) {
        self.put(task, failure(error, remote));
    }
}

impl Results for MapStore {
    fn front(&self) -> Option<(TaskId, &Outcome)> {
        let task = TaskId::new(self.next);
        self.result_of(task).map(|outcome| (task, outcome))
    }

    fn pop_front(&mut self) -> Option<(TaskId, Outcome)> {
        // Kept until the map is dropped: get and range still see it. Out of
        // memory for the copy: None, and it stays the next.
        let outcome = match self.results.get(self.next)?.as_ref()? {
            Ok(message) => Ok(crate::channel::try_copy(message).ok()?),
            Err(failure) => Err(failure.clone()),
        };
        self.next += 1;
        Some((TaskId::new(self.next - 1), outcome))
    }

    fn skip_front(&mut self) -> Option<(TaskId, Option<TaskError>)> {
        // Kept until the map is dropped, so nothing is copied out.
        let outcome = self.results.get(self.next)?.as_ref()?;
        let failure = outcome.as_ref().err().cloned();
        self.next += 1;
        Some((TaskId::new(self.next - 1), failure))
    }

    fn next_task(&self) -> Option<TaskId> {
        Some(TaskId::new(self.next))
    }

    fn result_of(&self, task: TaskId) -> Option<&Outcome> {
        self.results.get(task.index())?.as_ref()
    }
}

/// An exchange whose results come out in the order their tasks were started
/// (pprocess's `Map`). Each task sends one message; [`Exchange::get`] reads
/// any task's result, waiting only for that one, and [`Exchange::range`]
/// several. The map keeps every result until it is dropped: iterating it
/// (which yields a copy of each result, in start order) consumes nothing,
/// and `get` and `range` work before, during and after.
///
/// ```
/// use pprocess::{Map, Options, RemoteError};
///
/// fn shout(word: &[u8]) -> Result<Vec<u8>, RemoteError> {
///     Ok(word.to_ascii_uppercase())
/// }
/// let mut map = Map::with_options(2, Options::default());
/// let mut tasks = Vec::new();
/// for word in ["one", "two", "three"] {
///     tasks.push(map.call(shout, word.as_bytes())?);
/// }
/// // The third task's result, waiting for it only; then all of them in
/// // start order.
/// assert_eq!(map.get(tasks[2])?.as_deref().ok(), Some(&b"THREE"[..]));
/// let words: Vec<Vec<u8>> = map.collect::<Result<_, _>>()?;
/// assert_eq!(words, [&b"ONE"[..], b"TWO", b"THREE"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type Map = Exchange<Growable, MapStore>;

impl Map {
    /// A map running at most `limit` processes (a [`Limit`](super::Limit):
    /// `0` is one per processor, `None` no limit).
    pub fn with_options(limit: impl Into<super::Limit>, options: Options) -> Map {
        Exchange::new(limit, options, MapStore::default())
    }
}

impl Iterator for Map {
    type Item = Outcome;

    fn next(&mut self) -> Option<Outcome> {
        next_outcome(self)
    }
}

/// Calls `function` on every input in other processes, at most `limit` at
/// once (a [`Limit`](super::Limit): `0` is one per processor, `None` no
/// limit), and returns the [`Map`] that yields the
/// outputs in input order (pprocess's `pmap`). With [`Options::reuse`] the
/// work runs in `limit` reused, pipelined workers.
///
/// ```
/// use pprocess::{pmap, Options, RemoteError};
///
/// fn square(x: &[u8]) -> Result<Vec<u8>, RemoteError> {
///     Ok(vec![x[0] * x[0]])
/// }
/// let inputs: Vec<[u8; 1]> = (0..6).map(|i| [i]).collect();
/// let squares = pmap(square, &inputs, 3, Options::default())?
///     .map(|outcome| outcome.map(|bytes| bytes[0]))
///     .collect::<Result<Vec<u8>, _>>()?;
/// assert_eq!(squares, [0, 1, 4, 9, 16, 25]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn pmap<F, I>(
    function: F,
    inputs: I,
    limit: impl Into<super::Limit>,
    options: Options,
) -> Result<Map>
where
    F: Fn(&[u8]) -> core::result::Result<Vec<u8>, RemoteError> + 'static,
    I: IntoIterator,
    I::Item: AsRef<[u8]>,
{
    let mut map = Map::with_options(limit, options);
    let function = map.manage_function(function);
    for input in inputs {
        function.call(&mut map, input.as_ref())?;
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each result once, in arrival order, its own bytes, whether it is
    /// shown and taken as an outcome, taken alone, or read as bytes and
    /// skipped; messages on both sides of the inline size, and a failure.
    #[test]
    fn a_queue_store_hands_out_each_result_once_however_it_is_read() {
        let sizes = [0, 1, 8, Short::MAX, Short::MAX + 1, 100, 7, Short::MAX, 3];
        let message = |i: usize| vec![i as u8 + 1; sizes[i]];
        for reading in 0..3 {
            let mut store = QueueStore::default();
            for i in 0..sizes.len() {
                assert_eq!(store.store_message(TaskId::new(i), &message(i)), Ok(true));
            }
            let failed = TaskId::new(sizes.len());
            store.store_error(failed, Error::Closed, None);
            for i in 0..sizes.len() {
                let task = TaskId::new(i);
                assert_eq!(store.front_bytes(), Some((task, Ok(&message(i)[..]))));
                match (reading + i) % 3 {
                    0 => {
                        let shown = store.front().map(|(t, o)| (t, o.clone()));
                        assert_eq!(shown, Some((task, Ok(message(i)))));
                        assert_eq!(store.pop_front(), Some((task, Ok(message(i)))));
                    }
                    1 => assert_eq!(store.pop_front(), Some((task, Ok(message(i))))),
                    _ => assert_eq!(store.skip_front(), Some((task, None))),
                }
            }
            let closed = TaskError::from(Error::Closed);
            assert_eq!(store.front_bytes(), Some((failed, Err(&closed))));
            assert_eq!(store.skip_front(), Some((failed, Some(closed))));
            assert_eq!(store.front(), None);
            assert_eq!(store.pop_front(), None);
        }
    }
}
