//! Queue, Map and pmap: exchanges that keep their tasks' results (needs `alloc`).

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
    /// The callable's code and message, for [`Error::Remote`].
    pub remote: Option<RemoteError>,
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
        remote: remote.cloned(),
    })
}

/// Keeps results in arrival order.
#[derive(Debug, Default)]
pub struct QueueStore {
    results: VecDeque<(TaskId, Outcome)>,
}

impl StoreData for QueueStore {
    fn store_data(&mut self, channel: &mut Channel, task: TaskId) -> Result<()> {
        let message = channel.receive_vec()?;
        self.results.push_back((task, Ok(message)));
        Ok(())
    }

    fn store_error(&mut self, task: TaskId, error: Error, remote: Option<&RemoteError>) {
        self.results.push_back((task, failure(error, remote)));
    }
}

/// An exchange whose results come out in the order they arrive
/// (pprocess's `Queue`); iterate it for every result exactly once.
pub type Queue = Exchange<Growable, QueueStore>;

impl Queue {
    /// A queue running at most `limit` processes (0: one per processor).
    pub fn with_options(limit: usize, options: Options) -> Queue {
        Exchange::new(limit, options, QueueStore::default())
    }

    /// The next result and its task, waiting up to `timeout_ms` for one
    /// (`-1` forever). [`Error::Done`] when every task has answered.
    pub fn next_result(&mut self, timeout_ms: i32) -> Result<(TaskId, Outcome)> {
        loop {
            if let Some(result) = self.handler_mut().results.pop_front() {
                return Ok(result);
            }
            if !self.unfinished() {
                return Err(Error::Done);
            }
            self.store(timeout_ms)?;
        }
    }

    /// The length and task of the next result without taking it, waiting as
    /// [`Queue::next_result`] does.
    pub fn peek_result(&mut self, timeout_ms: i32) -> Result<&(TaskId, Outcome)> {
        while self.handler().results.is_empty() {
            if !self.unfinished() {
                return Err(Error::Done);
            }
            self.store(timeout_ms)?;
        }
        self.handler().results.front().ok_or(Error::Done)
    }
}

impl Iterator for Queue {
    type Item = Outcome;

    fn next(&mut self) -> Option<Outcome> {
        match self.next_result(-1) {
            Ok((_, outcome)) => Some(outcome),
            Err(Error::Done) => None,
            Err(e) => Some(Err(e.into())),
        }
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
    fn store_data(&mut self, channel: &mut Channel, task: TaskId) -> Result<()> {
        let message = channel.receive_vec()?;
        self.put(task, Ok(message));
        Ok(())
    }

    fn store_error(&mut self, task: TaskId, error: Error, remote: Option<&RemoteError>) {
        self.put(task, failure(error, remote));
    }
}

/// An exchange whose results come out in the order their tasks were started
/// (pprocess's `Map`). Each task sends one message.
pub type Map = Exchange<Growable, MapStore>;

impl Map {
    /// A map running at most `limit` processes (0: one per processor).
    pub fn with_options(limit: usize, options: Options) -> Map {
        Exchange::new(limit, options, MapStore::default())
    }

    /// The result of task `index`, waiting only until that one is in.
    /// [`Error::Done`] if that task was already taken by iteration or never
    /// started.
    pub fn get(&mut self, index: TaskId) -> Result<&Outcome> {
        self.wait_for(index, -1)?;
        self.handler().results[index].as_ref().ok_or(Error::Done)
    }

    /// Waits up to `timeout_ms` until task `index` has its result.
    fn wait_for(&mut self, index: TaskId, timeout_ms: i32) -> Result<()> {
        loop {
            let store = self.handler();
            if store.results.get(index).is_some_and(Option::is_some) {
                return Ok(());
            }
            if index < store.next || index >= self.next_task || !self.unfinished() {
                return Err(Error::Done);
            }
            self.store(timeout_ms)?;
        }
    }

    /// The next result in start order, waiting up to `timeout_ms` for it.
    pub fn next_result(&mut self, timeout_ms: i32) -> Result<(TaskId, Outcome)> {
        let index = self.handler().next;
        self.wait_for(index, timeout_ms)?;
        let store = self.handler_mut();
        store.next += 1;
        store.results[index]
            .take()
            .map(|outcome| (index, outcome))
            .ok_or(Error::Done)
    }
}

impl Iterator for Map {
    type Item = Outcome;

    fn next(&mut self) -> Option<Outcome> {
        match self.next_result(-1) {
            Ok((_, outcome)) => Some(outcome),
            Err(Error::Done) => None,
            Err(e) => Some(Err(e.into())),
        }
    }
}

/// Calls `function` on every input in other processes, at most `limit` at
/// once (0: one per processor), and returns the [`Map`] that yields the
/// outputs in input order (pprocess's `pmap`). With [`Options::reuse`] the
/// work runs in `limit` reused, pipelined workers.
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
