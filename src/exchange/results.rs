//! Queue, Map and pmap: exchanges that keep their tasks' results (needs `alloc`).

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;

use super::{Exchange, Growable, Options, StoreData, TaskId};
use crate::channel::Channel;
use crate::error::{Error, RemoteError, Result};

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

fn failure(error: Error, remote: Option<&RemoteError>) -> Outcome {
    Err(TaskError {
        error,
        remote: remote.cloned().map(Box::new),
    })
}

/// A store handler that keeps results to be read back, in arrival order
/// ([`QueueStore`]) or in start order ([`MapStore`]).
pub trait Results: StoreData {
    /// The result to read next, if it is in.
    fn front(&self) -> Option<(TaskId, &Outcome)>;
    /// Takes the result [`Results::front`] shows.
    fn pop_front(&mut self) -> Option<(TaskId, Outcome)>;
    /// The task whose result is read next, if results come in task order.
    fn next_task(&self) -> Option<TaskId>;
    /// The result of `task`, if it is in and was not taken.
    fn result_of(&self, task: TaskId) -> Option<&Outcome>;
}

impl<H: Results> Exchange<Growable, H> {
    /// Stores until the next result is in. [`Error::Done`] when every task
    /// has answered and every result was read.
    fn wait_front(&mut self, timeout_ms: i32) -> Result<()> {
        loop {
            if self.handler().front().is_some() {
                return Ok(());
            }
            let exhausted = self
                .handler()
                .next_task()
                .is_some_and(|next| next >= self.next_task);
            if exhausted || !self.unfinished() {
                return Err(Error::Done);
            }
            self.store_ahead(timeout_ms)?;
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
        self.pop_result().ok_or(Error::Done)
    }

    /// Takes the result [`Results::front`] shows, acknowledging it if it
    /// came from a persistent process.
    pub(crate) fn pop_result(&mut self) -> Option<(TaskId, Outcome)> {
        let (task, outcome) = self.handler_mut().pop_front()?;
        // A store that reads results in task order keeps one per task.
        let one_per_task = self.handler().next_task().is_some();
        self.taken(task, one_per_task);
        Some((task, outcome))
    }

    /// The next result without taking it, waiting as [`Exchange::next_result`] does.
    pub fn peek_result(&mut self, timeout_ms: i32) -> Result<(TaskId, &Outcome)> {
        self.wait_front(timeout_ms)?;
        self.handler().front().ok_or(Error::Done)
    }

    /// The result of task `task`, waiting only until that one is in.
    /// [`Error::Done`] if it was already taken, never started, or (in a
    /// queue) is not kept by task.
    pub fn get(&mut self, task: TaskId) -> Result<&Outcome> {
        loop {
            if self.handler().result_of(task).is_some() {
                break;
            }
            let taken = self.handler().next_task().is_none_or(|next| task < next);
            if taken || task >= self.next_task || !self.unfinished() {
                return Err(Error::Done);
            }
            // Acknowledges what is stored (a wait for a task that may be
            // waiting for a connection to end): see Exchange::store.
            self.store(-1)?;
        }
        self.handler().result_of(task).ok_or(Error::Done)
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

/// Keeps results in arrival order.
#[derive(Debug, Default)]
pub struct QueueStore {
    results: VecDeque<(TaskId, Outcome)>,
}

impl StoreData for QueueStore {
    fn keeps_results(&self) -> bool {
        true
    }

    fn store_data(&mut self, channel: &mut Channel, task: TaskId) -> Result<()> {
        // Out of memory: ENOMEM, and the message stays queued.
        self.results.try_reserve(1)?;
        let message = channel.receive_vec()?;
        self.results.push_back((task, Ok(message)));
        Ok(())
    }

    fn store_error(&mut self, task: TaskId, error: Error, remote: Option<&RemoteError>) {
        self.results.push_back((task, failure(error, remote)));
    }
}

impl Results for QueueStore {
    fn front(&self) -> Option<(TaskId, &Outcome)> {
        self.results.front().map(|(task, outcome)| (*task, outcome))
    }

    fn pop_front(&mut self) -> Option<(TaskId, Outcome)> {
        self.results.pop_front()
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
pub type Queue = Exchange<Growable, QueueStore>;

impl Queue {
    /// A queue running at most `limit` processes (0: one per processor).
    pub fn with_options(limit: usize, options: Options) -> Queue {
        Exchange::new(limit, options, QueueStore::default())
    }
}

impl Iterator for Queue {
    type Item = Outcome;

    fn next(&mut self) -> Option<Outcome> {
        next_outcome(self)
    }
}

/// Keeps results by task, for reading in start order.
#[derive(Debug, Default)]
pub struct MapStore {
    results: Vec<Option<Outcome>>,
    next: usize,
}

impl MapStore {
    fn put(&mut self, task: TaskId, outcome: Outcome) {
        if self.results.len() <= task {
            self.results.resize_with(task + 1, || None);
        }
        self.results[task] = Some(outcome);
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

    fn store_error(&mut self, task: TaskId, error: Error, remote: Option<&RemoteError>) {
        self.put(task, failure(error, remote));
    }
}

impl Results for MapStore {
    fn front(&self) -> Option<(TaskId, &Outcome)> {
        self.result_of(self.next)
            .map(|outcome| (self.next, outcome))
    }

    fn pop_front(&mut self) -> Option<(TaskId, Outcome)> {
        let outcome = self.results.get_mut(self.next)?.take()?;
        self.next += 1;
        Some((self.next - 1, outcome))
    }

    fn next_task(&self) -> Option<TaskId> {
        Some(self.next)
    }

    fn result_of(&self, task: TaskId) -> Option<&Outcome> {
        self.results.get(task)?.as_ref()
    }
}

/// An exchange whose results come out in the order their tasks were started
/// (pprocess's `Map`). Each task sends one message; [`Exchange::get`] reads
/// any task's result, waiting only for that one.
///
/// ```
/// use pprocess::{Map, Options, RemoteError};
///
/// fn shout(word: &[u8]) -> Result<Vec<u8>, RemoteError> {
///     Ok(word.to_ascii_uppercase())
/// }
/// let mut map = Map::with_options(2, Options::default());
/// for word in ["one", "two", "three"] {
///     map.call(shout, word.as_bytes())?;
/// }
/// // Task 2's result, waiting for it only; then all of them in start order.
/// assert_eq!(map.get(2)?.as_deref().ok(), Some(&b"THREE"[..]));
/// let words: Vec<Vec<u8>> = map.collect::<Result<_, _>>()?;
/// assert_eq!(words, [&b"ONE"[..], b"TWO", b"THREE"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type Map = Exchange<Growable, MapStore>;

impl Map {
    /// A map running at most `limit` processes (0: one per processor).
    pub fn with_options(limit: usize, options: Options) -> Map {
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
/// once (0: one per processor), and returns the [`Map`] that yields the
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
pub fn pmap<F, I>(function: F, inputs: I, limit: usize, options: Options) -> Result<Map>
where
    F: Fn(&[u8]) -> core::result::Result<Vec<u8>, RemoteError> + Clone + 'static,
    I: IntoIterator,
    I::Item: AsRef<[u8]>,
{
    let mut map = Map::with_options(limit, options);
    for input in inputs {
        map.call(function.clone(), input.as_ref())?;
    }
    Ok(map)
}
