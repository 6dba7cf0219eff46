//! The waiting list and reused workers (needs `alloc`).
//!
//! A task that cannot start because the exchange is at its limit waits here.
//! With [`Options::reuse`](super::Options::reuse), tasks go to worker
//! processes in chunks: a worker's new tasks travel in one batch frame (an
//! args frame for a single task), one frame and one write per chunk. Each
//! worker runs its callable once per task and keeps tasks queued in its
//! socket, so throughput is not one round trip per task. It answers through
//! a ring in memory shared with this process (see [`work`](super::worker::work) and
//! `channel::ring`): no system call per answer, and every answer published
//! arrives even if the worker dies. A task started while every worker is busy waits for
//! the next chunk, which goes out when results come in. How many is sized
//! like OpenMP's guided schedule: the tasks outstanding (waiting or queued)
//! ÷ (2 × the limit), at least one and at most [`WINDOW`] (and
//! [`WINDOW_BYTES`] of arguments), so windows are full while much waits and
//! shrink to one task at the end. At the limit, the least loaded worker's
//! window is filled in one run of tasks. When no task waits and a worker is idle,
//! the tasks another worker of its callable has queued but not started are
//! taken back and given to it ([`Exchange::take_back_for_idle`], decided by
//! a claim word per task: see `exchange::claims`). Results come back in the
//! order a worker received its tasks, so each is matched to its task
//! exactly; a task taken back is skipped by its old worker and sends
//! nothing there. When a worker
//! dies, the answers it computed still arrive, its current task fails and
//! the tasks it never started go back to the front of the waiting list.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::rc::Rc;
use core::borrow::{Borrow, BorrowMut};
use core::sync::atomic::Ordering;

use super::args::Args;
use super::claims::Claims;
use super::schedule::{self, Load};
use super::slots::{Slot, Slots, Tasks, WINDOW};
use super::{Exchange, StoreData, TaskId};
use crate::channel::{Channel, Ring, CLAIM_WORDS as CLAIM_RING};
use crate::error::{best_effort, Error, RemoteError, Result};
use crate::process::{self, Created};
use crate::wire::{self, DEFAULT_MAX_MESSAGE};

// A word is offered again only after the worker is done with the task it
// held: a window of tasks, and as many taken back, fit the ring.
const _: () = assert!(CLAIM_RING >= 2 * WINDOW);

/// Argument bytes a worker may have queued. With the batch frame's 12
/// bytes per task, a full window (at most 44 KiB) stays below a socket
/// buffer, so the creator never blocks writing tasks while the worker
/// writes results.
pub(crate) const WINDOW_BYTES: usize = 32 * 1024;

/// A reused worker's callable: runs once per task with the task's arguments.
pub(crate) type Body = dyn Fn(&mut Channel, &[u8]) -> core::result::Result<(), RemoteError>;

/// A callable run once in a process of its own.
type Once = Box<dyn FnOnce(&mut Channel) -> core::result::Result<(), RemoteError>>;

/// Which callable a worker runs: tasks go only to workers of their callable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    /// A Rust callable bound by [`Exchange::manage`], by the address of
    /// its body (alive while any task or worker of it is).
    Managed(usize),
    /// A C parallel-aware callable, by address.
    #[cfg(feature = "capi")]
    Callable(usize),
    /// A C plain function, by address and output capacity.
    #[cfg(feature = "capi")]
    Function(usize, usize),
}

/// A task waiting for a process: its id and input. Its callable is its
/// run's (see [`Run`]). Five plain words, no enum (see `exchange::short`):
/// built in registers and stored as words where it lies.
struct Job {
    task: TaskId,
    /// Its input.
    args: Args,
}

/// Waiting jobs in a row with one callable (from its `start` to the next
/// run's). A program that calls one callable many times has one run, so a
/// job carries no callable of its own (and no reference count is touched
/// per task).
struct Run {
    /// Reused workers of this key run them; None: a process of its own
    /// (a run of one job).
    key: Option<Key>,
    /// The callable, called with each job's arguments.
    body: Rc<Body>,
    /// The number of its first job (see [`Jobs::first`]): a run holds the
    /// jobs up to the next run's first (the last run, to the end of the
    /// list), so that a job that joins the last run writes nothing here.
    start: u64,
}

/// A callable of one task, run once in a process of its own, as a body
/// (its input is empty).
fn once(callable: Once) -> Rc<Body> {
    let callable = core::cell::Cell::new(Some(callable));
    Rc::new(move |channel: &mut Channel, _: &[u8]| {
        // Called once, in the task's process.
        let callable = callable.take().ok_or(Error::Invalid)?;
        callable(channel)
    })
}

/// A reused worker, kept in its slot.
pub(crate) struct Worker {
    key: Key,
    body: Rc<Body>,
    /// The slot's tasks, oldest first.
    queued: VecDeque<Queued>,
    /// How many tasks were sent to the worker.
    sent: u64,
    bytes: usize,
    /// The newest of these tasks not sent yet (see [`Exchange::send_chunks`]).
    unsent: usize,
    /// Their entries' bytes in a batch frame's payload.
    unsent_len: usize,
    stopping: bool,
}

/// A task queued for a reused worker.
struct Queued {
    /// The task (also in the slot's tasks: here to be sent with its
    /// arguments).
    task: TaskId,
    /// Its arguments (for sending, and requeueing).
    args: Args,
    /// Its place among the tasks given to the worker (its claim word, see
    /// `exchange::claims`, offered as it was queued).
    index: u64,
}

impl core::fmt::Debug for Worker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Worker")
            .field("key", &self.key)
            .field("queued", &self.queued.len())
            .field("stopping", &self.stopping)
            .finish()
    }
}

impl Worker {
    /// A new worker of `key` running `body`, with no task yet.
    fn new(key: Key, body: Rc<Body>) -> Worker {
        Worker {
            key,
            body,
            queued: VecDeque::new(),
            sent: 0,
            bytes: 0,
            unsent: 0,
            unsent_len: 0,
            stopping: false,
        }
    }

    /// The `count` oldest tasks are finished: forget their arguments.
    pub(super) fn tasks_done(&mut self, count: usize) {
        let count = count.min(self.queued.len());
        for queued in self.queued.drain(..count) {
            self.bytes -= queued.args.len();
        }
    }

    /// What the scheduler sees of it; `passed`: see [`Worker::claims_room`].
    fn load(&self, passed: Option<u64>) -> Load<Key> {
        Load {
            key: self.key,
            stopping: self.stopping,
            queued: self.queued.len(),
            bytes: self.bytes,
            claims_free: self.claims_room(passed) > 0,
        }
    }

    /// How many more tasks have a claim word of their own. A word is
    /// offered again only when its last place is a ring of claims behind
    /// the next place, and two places must keep theirs: the oldest task
    /// still unfinished (dead-worker recovery reads its word) and the place
    /// the worker has not passed yet, `passed` (it may still claim or skip
    /// it, after tasks taken back left gaps in the places). None: no claim
    /// words, no bound.
    fn claims_room(&self, passed: Option<u64>) -> usize {
        let next = self.sent + self.unsent as u64;
        let front = self.queued.front().map(|queued| queued.index);
        // A worker that says it passed what it was not sent is not believed.
        let passed = passed.map(|passed| passed.min(next));
        let oldest = match (front, passed) {
            (Some(front), Some(passed)) => front.min(passed),
            (Some(oldest), None) | (None, Some(oldest)) => oldest,
            (None, None) => return usize::MAX,
        };
        let held = next.saturating_sub(oldest);
        (CLAIM_RING as u64).saturating_sub(held) as usize
    }

    /// How many more tasks it may hold in a `window` of tasks, by their
    /// count and their claim words (their bytes are checked one by one).
    fn room(&self, window: usize, passed: Option<u64>) -> usize {
        let by_count = window.saturating_sub(self.queued.len());
        by_count.min(self.claims_room(passed))
    }
}

/// How many places the reused worker of `slot` has passed, as it says in
/// its ring (None without one: no claim words).
fn passed<C: Borrow<Channel>>(slot: &Slot<C>) -> Option<u64> {
    let word = slot.channel.borrow().claims_passed()?;
    Some(word.load(Ordering::Acquire))
}

/// What the scheduler sees of slot `slot`'s reused worker, if it has one.
fn load_of<C: Borrow<Channel>>(slot: &Slot<C>) -> Option<Load<Key>> {
    slot.worker.as_ref().map(|worker| worker.load(passed(slot)))
}

/// The claims of slot `slot`'s reused worker and its tasks' units (place
/// and tag), oldest first, from the `skip`-th on.
fn units<C: Borrow<Channel>>(
    slot: &Slot<C>,
    skip: usize,
) -> Option<(
    Claims<'_>,
    impl DoubleEndedIterator<Item = (u64, u64)> + ExactSizeIterator + '_,
)> {
    let worker = slot.worker.as_ref()?;
    let claims = Claims::new(slot.channel.borrow().claim_words());
    let units = worker.queued.iter();
    let units = units.map(|queued| (queued.index, super::tag_of(queued.task)));
    Some((claims, units.skip(skip)))
}

/// Dead-worker recovery for slot `slot` (see `exchange::claims`): how many
/// of its oldest tasks its reused worker started (only they may fail); the
/// others are taken back from it, and [`Jobs::requeue`] sends them to
/// other workers. Without a worker: every task (it runs in the process).
pub(super) fn started<C: Borrow<Channel>>(slot: &Slot<C>) -> usize {
    match units(slot, 0) {
        Some((claims, units)) => claims.recover(units),
        None => slot.tasks.len(),
    }
}

/// The waiting list: the jobs, oldest first, and their callables, as runs.
pub(crate) struct Jobs {
    waiting: VecDeque<Job>,
    /// The jobs' callables, oldest first.
    runs: VecDeque<Run>,
    /// The number of the first job: jobs are numbered as they join the
    /// list, from the middle of the `u64` range (a job put back at the
    /// front takes the number before the first), so that a run's extent
    /// is a difference of numbers.
    first: u64,
}

impl Default for Jobs {
    fn default() -> Jobs {
        Jobs {
            waiting: VecDeque::new(),
            runs: VecDeque::new(),
            first: u64::MAX / 2,
        }
    }
}

impl Jobs {
    pub(super) fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// The first job's callable.
    fn front_run(&self) -> Option<&Run> {
        self.runs.front()
    }

    /// How many jobs run `at` holds (the first run starts at the first
    /// job, whatever its `start` says).
    fn run_len(&self, at: usize) -> usize {
        let end = self.first + self.waiting.len() as u64;
        let end = self.runs.get(at + 1).map_or(end, |next| next.start);
        let start = match (at, self.runs.get(at)) {
            (0, _) => self.first,
            (_, Some(run)) => run.start,
            (_, None) => end,
        };
        end.saturating_sub(start) as usize
    }

    /// Makes room for one more job of `key` at the back (`ENOMEM`
    /// otherwise), so that [`Jobs::push_back`] cannot fail half-done; true
    /// when it joins the last run (see [`Jobs::push_back`]).
    // Per task: `always`, because a program that also uses other parts of
    // the library (the C ABI, pmap) got it as a call otherwise.
    #[inline(always)]
    fn reserve_one(&mut self, key: Option<Key>) -> Result<bool> {
        super::reserve_one(&mut self.waiting)?;
        let joins = key.is_some() && self.runs.back().is_some_and(|run| run.key == key);
        if !joins {
            super::reserve_one(&mut self.runs)?;
        }
        Ok(joins)
    }

    /// Appends a job. The caller made room, and says whether the job
    /// `joins` the last run ([`Jobs::reserve_one`]).
    // Per task: `always`, as for `reserve_one`.
    #[inline(always)]
    fn push_back(
        &mut self,
        task: TaskId,
        args: Args,
        joins: bool,
        key: Option<Key>,
        body: &Rc<Body>,
    ) {
        if !joins {
            self.runs.push_back(Run {
                key,
                body: body.clone(),
                start: self.first + self.waiting.len() as u64,
            });
        }
        self.waiting.push_back(Job { task, args });
    }

    pub(super) fn push_once(&mut self, task: TaskId, callable: Once) {
        let body = once(callable);
        self.push_back(task, Args::default(), false, None, &body);
    }

    /// Takes the `count` oldest jobs out (all of the first run, as the
    /// caller checked), oldest first.
    fn take_front(&mut self, count: usize) -> alloc::collections::vec_deque::Drain<'_, Job> {
        let count = count.min(self.waiting.len());
        self.first += count as u64;
        // The runs they emptied go.
        while self
            .runs
            .get(1)
            .is_some_and(|next| next.start <= self.first)
        {
            self.runs.pop_front();
        }
        if count == self.waiting.len() {
            self.runs.clear();
        }
        self.waiting.drain(..count)
    }

    /// Takes `task` out of the list (a task whose start failed); false
    /// when it is not there.
    fn remove(&mut self, task: TaskId) -> bool {
        let Some(index) = self.waiting.iter().position(|job| job.task == task) else {
            return false;
        };
        self.waiting.remove(index);
        // The jobs after it move up by one; a run left empty goes.
        let number = self.first + index as u64;
        for run in self.runs.iter_mut().filter(|run| run.start > number) {
            run.start -= 1;
        }
        let mut at = 0;
        while at < self.runs.len() {
            match self.run_len(at) {
                0 => drop(self.runs.remove(at)),
                _ => at += 1,
            }
        }
        true
    }

    /// The newest `count` tasks of a worker's slot, taken back from it (see
    /// [`started`]), go back to the front of the waiting list, in their
    /// order.
    pub(super) fn requeue<C>(&mut self, slot: &mut Slot<C>, count: usize) {
        for _ in 0..count {
            self.take_back_newest(slot);
        }
    }

    /// The newest task of a worker's slot goes back to the front of the
    /// waiting list; false when it has none.
    fn take_back_newest<C>(&mut self, slot: &mut Slot<C>) -> bool {
        let Some(worker) = &mut slot.worker else {
            return false;
        };
        let (Some(task), Some(Queued { args, .. })) =
            (slot.tasks.pop_back(), worker.queued.pop_back())
        else {
            return false;
        };
        worker.bytes -= args.len();
        if worker.unsent > 0 {
            worker.unsent -= 1;
            worker.unsent_len -= wire::ENTRY_HEADER + args.len();
        }
        // It takes the number before the first.
        let after = self.first;
        self.first -= 1;
        self.waiting.push_front(Job { task, args });
        let key = Some(worker.key);
        match self.runs.front_mut() {
            // (The first run starts at the first job.)
            Some(run) if run.key == key => {}
            front => {
                if let Some(run) = front {
                    run.start = after; // now the second run
                }
                self.runs.push_front(Run {
                    key,
                    body: worker.body.clone(),
                    start: self.first,
                });
            }
        }
        true
    }
}

impl<S: Slots, H: StoreData> Exchange<S, H> {
    /// Queues a task of `body` and starts what the limit allows.
    /// [`Error::TooBig`] for arguments a reused worker could not be sent
    /// (over the maximum message size), before anything is queued or started.
    pub(crate) fn start_keyed(&mut self, key: Key, body: &Rc<Body>, args: &[u8]) -> Result<TaskId> {
        if self.options.reuse && args.len() > DEFAULT_MAX_MESSAGE {
            return Err(Error::TooBig {
                size: args.len(),
                capacity: DEFAULT_MAX_MESSAGE,
            });
        }
        // Out of memory: ENOMEM, before the task exists.
        let args = Args::copy(args)?;
        let key = self.options.reuse.then_some(key);
        let joins = self.jobs.reserve_one(key)?;
        let task = self.new_task();
        self.jobs.push_back(task, args, joins, key, body);
        // Every worker of `key` is busy and no process may start (or an
        // older task of `key` waits, at the limit: this one cannot start
        // before it): the task goes out with others in the next chunk,
        // when results come in (every wait dispatches first), not in a
        // frame and a write of its own now.
        let waits_behind = joins && self.busy();
        if waits_behind || key.is_some_and(|key| !self.could_start(key)) {
            return Ok(task);
        }
        self.dispatch_new(task)
    }

    /// Whether a reused task of `key` could start now: a new process may
    /// start, or a worker of `key` has nothing to do.
    fn could_start(&self, key: Key) -> bool {
        !self.busy()
            || self.slots.slots().iter().any(|slot| {
                slot.tasks.is_empty() && slot.worker.as_ref().is_some_and(|w| w.key == key)
            })
    }

    /// [`Exchange::dispatch`] after queueing `task`: when it fails before
    /// `task` started (no process could be created, say), `task` is taken
    /// back, so a failed start leaves no trace and a retry runs it once.
    pub(super) fn dispatch_new(&mut self, task: TaskId) -> Result<TaskId> {
        let Err(e) = self.dispatch() else {
            return Ok(task);
        };
        if !self.jobs.remove(task) {
            // It started: the failure was another task's, which waits for
            // the next attempt.
            return Ok(task);
        }
        if self.next_task == task.next() {
            self.next_task = task;
        }
        Err(e)
    }

    /// Starts waiting tasks, first come first served, as far as the limit
    /// and the workers' windows allow; lets idle workers go when no task waits.
    pub(super) fn dispatch(&mut self) -> Result<()> {
        // Moving a task from the waiting list to a worker leaves what is
        // outstanding as it was: the window, sized when a reused task is
        // first met, holds until a process starts.
        let mut window = None;
        while let (Some(job), Some(run)) = (self.jobs.waiting.front(), self.jobs.front_run()) {
            let index = match run.key {
                None if self.busy() => break,
                None => None,
                // An idle worker first, then a new one while below the limit,
                // then the least loaded worker's window, filled in one run
                // at the limit (the guided window is its share of the work).
                Some(key) => {
                    let window = *window.get_or_insert_with(|| self.window());
                    match self.worker_for(key, job.args.len(), window) {
                        Some(index) if self.busy() => Some((index, key, window, usize::MAX)),
                        Some(index) if self.slots.slots()[index].tasks.is_empty() => {
                            Some((index, key, window, 1))
                        }
                        _ if !self.busy() => None,
                        Some(index) => Some((index, key, window, 1)),
                        None => {
                            // At the limit with no worker of this callable:
                            // idle workers of other callables make room.
                            self.stop_idle_workers();
                            break;
                        }
                    }
                }
            };
            match index {
                Some((index, key, window, run)) => self.send_run(index, key, window, run)?,
                None => {
                    self.spawn()?;
                    window = None;
                }
            }
        }
        self.send_chunks()?;
        if self.jobs.waiting.is_empty() {
            if self.take_back_for_idle() {
                // The tasks taken back go to the idle workers.
                return self.dispatch();
            }
            self.stop_idle_workers();
        }
        Ok(())
    }

    /// When no task waits: the tasks a busy worker has queued but not
    /// started go back to the waiting list if a worker of the same callable
    /// is idle, so that no worker holds tasks while another has none (see
    /// `schedule::gives_back_for_idle` and `exchange::claims`). True if any
    /// went back.
    fn take_back_for_idle(&mut self) -> bool {
        let mut moved = false;
        for index in 0..self.slots.slots().len() {
            let slots = self.slots.slots();
            let Some(load) = load_of(&slots[index]) else {
                continue;
            };
            let workers = slots.iter().map(load_of);
            if !schedule::gives_back_for_idle(&load, workers) {
                continue;
            }
            // The newest first, down to (not including) the oldest, which
            // is running or about to: the worker starts them in order.
            let slot = &mut self.slots.slots_mut()[index];
            let taken = units(slot, 1).map_or(0, |(claims, units)| {
                claims.take_back_newest(units, usize::MAX)
            });
            self.jobs.requeue(slot, taken);
            moved |= taken > 0;
        }
        moved
    }

    /// The least loaded worker of `key` with room in a `window` of tasks
    /// for a task of `len` argument bytes.
    fn worker_for(&self, key: Key, len: usize, window: usize) -> Option<usize> {
        let workers = self.slots.slots().iter();
        let loads = workers.map(load_of);
        schedule::worker_for(loads, &key, len, window, WINDOW_BYTES)
    }

    /// Gives worker `index`, chosen for the first waiting job (a reused
    /// task of `key`), that job and up to `run - 1` more waiting tasks of
    /// `key` in a row, as long as its `window` accepts them. They go out
    /// with the worker's other new tasks in one message
    /// ([`Exchange::send_chunks`]).
    fn send_run(&mut self, index: usize, key: Key, window: usize, run: usize) -> Result<()> {
        let slot = &mut self.slots.slots_mut()[index];
        let passed = passed(slot);
        let Some(worker) = &mut slot.worker else {
            return Err(Error::Invalid);
        };
        // `worker_for` chose this worker for the first: it has room. The
        // run's jobs are all of one callable.
        let of_key = match self.jobs.front_run() {
            Some(front) if front.key == Some(key) => self.jobs.run_len(0),
            // The first job was not this worker's to take: a scheduler
            // bug, reported rather than looped on.
            _ => return Err(Error::Invalid),
        };
        let run = run
            .min(worker.room(window, passed))
            .min(Tasks::MOST - slot.tasks.len())
            .min(of_key);
        // Room first, for them all: out of memory, they all stay waiting.
        slot.tasks.reserve_more(run)?;
        worker.queued.try_reserve(run)?;
        // The waiting tasks it takes: as many as the run and the window's
        // bytes allow (the first always: the window had room for it).
        let (mut bytes, mut given) = (worker.bytes, 0);
        for job in self.jobs.waiting.range(..run) {
            let len = job.args.len();
            if given > 0 && bytes + len > WINDOW_BYTES {
                break;
            }
            bytes += len;
            given += 1;
        }
        if given == 0 {
            return Err(Error::Invalid); // no run at all: a scheduler bug
        }
        // Each moves out whole, its arguments with it: nothing is left
        // behind to drop. It takes the next place among those sent to the
        // worker, whose claim word offers it (it may be taken back until
        // the worker starts it); it goes out with the worker's other new
        // tasks ([`Exchange::send_chunks`]).
        let claims = Claims::new(slot.channel.borrow().claim_words());
        let places = worker.sent + worker.unsent as u64..;
        for (place, Job { task, args }) in places.zip(self.jobs.take_front(given)) {
            // Two lines of words on (16 places), once per line of 8.
            if place % 8 == 0 {
                claims.prefetch(place + 16);
            }
            claims.offer(place, super::tag_of(task));
            slot.tasks.push_reserved(task);
            worker.queued.push_back(Queued {
                task,
                args,
                index: place,
            });
        }
        worker.unsent_len += given * wire::ENTRY_HEADER + (bytes - worker.bytes);
        worker.bytes = bytes;
        worker.unsent += given;
        Ok(())
    }

    /// How many tasks a reused worker may hold now: the guided schedule's
    /// share of what is outstanding (see the module documentation).
    fn window(&self) -> usize {
        let queued: usize = self
            .slots
            .slots()
            .iter()
            .filter(|slot| slot.worker.is_some())
            .map(|slot| slot.tasks.len())
            .sum();
        let outstanding = self.jobs.waiting.len() + queued;
        schedule::chunk(outstanding, self.limit(), WINDOW)
    }

    /// Writes each worker's new tasks as one message (a batch frame, or an
    /// args frame for one task), as far as its socket takes it now (the rest
    /// goes out in the next poll rounds). A worker that is gone gets none:
    /// they wait for another, and it is retired by the next store, which
    /// reads the results it sent before it died.
    fn send_chunks(&mut self) -> Result<()> {
        let mut index = self.slots.slots().len();
        while index > 0 {
            index -= 1;
            let slot = &mut self.slots.slots_mut()[index];
            let Some(worker) = &mut slot.worker else {
                continue;
            };
            let unsent = core::mem::take(&mut worker.unsent);
            let len = wire::FIRST_ENTRY + core::mem::take(&mut worker.unsent_len);
            if unsent == 0 && !slot.channel.borrow().wants_write() {
                continue; // nothing new, nothing held
            }
            // Each new task was offered in its claim word as it was queued.
            let first = worker.queued.len() - unsent;
            let sent = match unsent {
                0 => Ok(()),
                1 => match worker.queued.back() {
                    Some(queued) => slot
                        .channel
                        .borrow_mut()
                        .send_args(super::tag_of(queued.task), queued.args.bytes()),
                    None => Err(Error::Invalid),
                },
                _ => {
                    let new = worker.queued.range(first..);
                    let tasks = new.map(|q| (super::tag_of(q.task), q.args.bytes()));
                    // At most the window's tasks: the count fits a u32.
                    let count = unsent as u32;
                    slot.channel.borrow_mut().send_batch(count, len, tasks)
                }
            };
            let sent = sent.and_then(|()| slot.channel().poll_flush().map(drop));
            let Err(e) = sent else {
                if let Some(worker) = &mut slot.worker {
                    worker.sent += unsent as u64;
                }
                continue;
            };
            // Not sent: the new tasks wait for another worker, in order.
            self.jobs.requeue(slot, unsent);
            match (e, &mut slot.worker) {
                (Error::Closed | Error::PeerEnded { .. }, Some(worker)) => worker.stopping = true,
                _ => self.retire(index, e)?,
            }
        }
        Ok(())
    }

    /// Starts a process for the first waiting job: its own process for a
    /// one-off task, or a new worker that then gets the task.
    fn spawn(&mut self) -> Result<()> {
        if self.jobs.waiting.is_empty() {
            return Err(Error::Invalid);
        }
        // A reused worker answers through a ring in memory shared with
        // this process, which also holds its tasks' claim words.
        let reused = self.jobs.front_run().is_some_and(|run| run.key.is_some());
        let ring = reused.then(Ring::new).transpose()?;
        let channel = match process::create_as(self.fork_check())? {
            Created::Child(mut channel) => {
                if let Some(ring) = ring {
                    channel.answer_through(ring);
                }
                self.run_first_job(channel)
            }
            Created::Parent(mut channel) => {
                if let Some(ring) = ring {
                    channel.answers_from(ring);
                }
                channel
            }
        };
        let (Some(job), Some(run)) = (self.jobs.waiting.front(), self.jobs.front_run()) else {
            return Err(Error::Invalid);
        };
        match run.key {
            None => {
                let task = job.task;
                let monitored = self.monitor_new(channel.into(), Some(task));
                if monitored.is_ok() {
                    self.jobs.take_front(1); // started; else it starts later
                }
                monitored
            }
            Some(key) => {
                let mut slot = Slot::new(channel.into(), Tasks::default());
                slot.worker = Some(Worker::new(key, run.body.clone()));
                self.monitor(slot)?; // failing, the task stays waiting
                self.send_run(self.active_count() - 1, key, 1, 1)
            }
        }
    }

    /// In a new process: runs the first waiting job and exits. A function
    /// call or a worker runs where it lies, nothing popped or freed: every
    /// page this process writes is first copied from its creator.
    fn run_first_job(&mut self, mut channel: Channel) -> ! {
        let options = self.options;
        let status = match (self.jobs.waiting.front(), self.jobs.front_run()) {
            (
                Some(job),
                Some(Run {
                    key: None, body, ..
                }),
            ) => process::run_callable(&mut channel, |channel| body(channel, job.args.bytes())),
            (Some(_), Some(Run { body, .. })) => {
                super::worker::work(&mut channel, &**body, options.continuous)
            }
            // `spawn` checked that there is a job.
            _ => process::EXIT_CALLABLE_ERROR,
        };
        process::exit(channel, status)
    }

    /// Tells every worker without tasks to exit.
    fn stop_idle_workers(&mut self) {
        for slot in self.slots.slots_mut() {
            let idle = slot.tasks.is_empty();
            if let Some(worker) = slot.worker.as_mut().filter(|w| idle && !w.stopping) {
                worker.stopping = true;
                // A worker that is already gone is retired by the next store.
                best_effort(slot.channel.borrow_mut().send_stop());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A creator's slot of a reused worker holding tasks 0..`count`, each
    /// offered in its claim word (the last `unsent` not sent yet).
    fn slot(count: usize, unsent: usize) -> Slot<Channel> {
        let (mut creator, _worker) = Channel::pair().unwrap();
        creator.answers_from(Ring::new().unwrap());
        let mut slot = Slot::new(creator, Tasks::default());
        let body: Rc<Body> = Rc::new(|_: &mut Channel, _: &[u8]| Ok(()));
        let mut worker = Worker::new(Key::Managed(0), body);
        let claims = Claims::new(slot.channel.claim_words());
        // Each task is offered in its place as it is queued; the last
        // `unsent` are not sent yet.
        for task in 0..count {
            let id = TaskId::new(task);
            slot.tasks.push_back(id).unwrap();
            let args = Args::copy(&[task as u8]).unwrap();
            claims.offer(task as u64, super::super::tag_of(id));
            worker.queued.push_back(Queued {
                task: id,
                args,
                index: task as u64,
            });
            worker.bytes += 1;
            if task + unsent < count {
                worker.sent += 1;
            } else {
                worker.unsent += 1;
                worker.unsent_len += wire::ENTRY_HEADER + 1;
            }
        }
        slot.worker = Some(worker);
        slot
    }

    /// The worker's side of the claim words (the same memory).
    fn claim(slot: &Slot<Channel>, task: usize) -> bool {
        let claims = Claims::new(slot.channel.claim_words());
        claims.claim(task as u64, super::super::tag_of(TaskId::new(task)))
    }

    fn waiting(jobs: &Jobs) -> Vec<usize> {
        jobs.waiting.iter().map(|job| job.task.index()).collect()
    }

    /// Each waiting job's callable, as the runs say.
    fn run_keys(jobs: &Jobs) -> Vec<Option<Key>> {
        let runs = jobs.runs.iter().enumerate();
        runs.flat_map(|(at, run)| core::iter::repeat_n(run.key, jobs.run_len(at)))
            .collect()
    }

    #[test]
    fn every_waiting_job_keeps_its_callable_through_every_change_to_the_list() {
        let body: Rc<Body> = Rc::new(|_: &mut Channel, _: &[u8]| Ok(()));
        let (a, b) = (Some(Key::Managed(1)), Some(Key::Managed(2)));
        let mut jobs = Jobs::default();
        let mut model = alloc::collections::VecDeque::new();
        let next = core::cell::Cell::new(100);
        let push = |jobs: &mut Jobs, model: &mut alloc::collections::VecDeque<_>, key| {
            let task = next.replace(next.get() + 1);
            let joins = jobs.reserve_one(key).unwrap();
            jobs.push_back(TaskId::new(task), Args::default(), joins, key, &body);
            model.push_back((task, key));
        };
        let check = |jobs: &Jobs, model: &alloc::collections::VecDeque<(usize, Option<Key>)>| {
            assert_eq!(waiting(jobs), model.iter().map(|m| m.0).collect::<Vec<_>>());
            assert_eq!(
                run_keys(jobs),
                model.iter().map(|m| m.1).collect::<Vec<_>>()
            );
            assert_eq!(
                jobs.front_run().map(|run| run.key),
                model.front().map(|m| m.1)
            );
        };
        for key in [a, a, a, b, b, None, a, a] {
            push(&mut jobs, &mut model, key);
        }
        check(&jobs, &model);
        assert_eq!(jobs.runs.len(), 4, "runs of one callable in a row are one");
        drop(jobs.take_front(2));
        model.drain(..2);
        check(&jobs, &model);
        // A start that failed takes its task out, wherever it is.
        for at in [1, 2, 0] {
            let (task, _) = model.remove(at).unwrap();
            assert!(jobs.remove(TaskId::new(task)));
            check(&jobs, &model);
        }
        assert!(!jobs.remove(TaskId::new(1)), "not there");
        drop(jobs.take_front(model.len()));
        model.clear();
        check(&jobs, &model);
        assert!(jobs.runs.is_empty());
        // Tasks a worker gives back go to the front, in their order.
        push(&mut jobs, &mut model, a);
        let mut slot = slot(4, 0);
        jobs.requeue(&mut slot, 3);
        for task in [1, 2, 3].into_iter().rev() {
            model.push_front((task, Some(Key::Managed(0))));
        }
        check(&jobs, &model);
        drop(jobs.take_front(3));
        model.drain(..3);
        check(&jobs, &model);
    }

    /// A claim word is offered again only once the worker is past its
    /// last place and the oldest unfinished task keeps its word: after
    /// tasks taken back left a gap the worker has not skipped yet, the gap
    /// still holds its words.
    #[test]
    fn a_claim_word_is_offered_again_only_once_the_worker_is_past_its_place() {
        let ring = CLAIM_RING as u64;
        let body: Rc<Body> = Rc::new(|_: &mut Channel, _: &[u8]| Ok(()));
        let mut worker = Worker::new(Key::Managed(0), body);
        assert_eq!(worker.claims_room(None), usize::MAX); // no claim words
        assert_eq!(worker.claims_room(Some(0)), CLAIM_RING);
        // Places 0..ring+5 sent; none queued (all answered or taken back).
        worker.sent = ring + 5;
        // The worker is still at place 5: places 5.. hold their words.
        assert_eq!(worker.claims_room(Some(5)), 0);
        assert_eq!(worker.claims_room(Some(15)), 10);
        assert_eq!(worker.claims_room(Some(ring + 5)), CLAIM_RING);
        // A worker that says it passed what it was never sent.
        assert_eq!(worker.claims_room(Some(u64::MAX)), CLAIM_RING);
        // The oldest unfinished task, at place 10, keeps its word even
        // though the worker is past it (it claimed it and runs it).
        let args = Args::copy(&[1]).unwrap();
        let task = TaskId::new(7);
        worker.queued.push_back(Queued {
            task,
            args,
            index: 10,
        });
        assert_eq!(worker.claims_room(Some(ring + 5)), 5);
        assert_eq!(worker.claims_room(Some(8)), 3);
        assert_eq!(worker.room(2, Some(ring + 5)), 1); // its window: 1 more
    }

    #[test]
    fn a_dead_workers_unstarted_tasks_go_back_in_order_and_only_the_started_one_stays() {
        let mut slot = slot(5, 1);
        assert!(claim(&slot, 0));
        assert_eq!(started(&slot), 1);
        // Taken back: the worker, were it alive, would skip them.
        assert!(!claim(&slot, 1) && !claim(&slot, 3));
        let mut jobs = Jobs::default();
        jobs.requeue(&mut slot, 4);
        assert_eq!(waiting(&jobs), [1, 2, 3, 4]);
        assert_eq!(
            slot.tasks.iter().map(|t| t.index()).collect::<Vec<_>>(),
            [0]
        );
        let worker = slot.worker.as_ref().unwrap();
        assert_eq!(
            (worker.queued.len(), worker.bytes, worker.unsent),
            (1, 1, 0)
        );
    }

    #[test]
    fn a_worker_that_died_between_tasks_started_none_of_its_queue() {
        // Issue 20's defect 2: the front task never started, so it fails
        // nowhere; it goes to another worker with the rest.
        let slot = slot(3, 0);
        assert_eq!(started(&slot), 0);
        assert!(!claim(&slot, 0));
    }

    #[test]
    fn a_worker_still_running_keeps_every_task_it_started() {
        // A worker cut off alive (it broke the protocol) may have started
        // more than the front task: those are not run a second time.
        let slot = slot(4, 0);
        assert!(claim(&slot, 0) && claim(&slot, 1));
        assert_eq!(started(&slot), 2);
        assert!(!claim(&slot, 2));
    }

    #[test]
    fn an_idle_worker_gets_every_queued_task_but_the_oldest() {
        let mut slot = slot(4, 0);
        let taken = units(&slot, 1).map_or(0, |(claims, units)| {
            claims.take_back_newest(units, usize::MAX)
        });
        assert_eq!(taken, 3, "the oldest may be starting: it stays");
        assert!(claim(&slot, 0) && !claim(&slot, 1));
        let mut jobs = Jobs::default();
        jobs.requeue(&mut slot, taken);
        assert_eq!(waiting(&jobs), [1, 2, 3]);
    }
}
