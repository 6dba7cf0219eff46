//! A property test of the exchange against a model of pprocess's semantics
//! (issue 13): random sequences of operations (start, call by handle, add,
//! ready, remove, store, finish; reuse on and off; tasks that answer, fail
//! or die) on one exchange. Every task gets exactly one outcome, at the
//! task it belongs to: its own result, its own failure, or (only for a task
//! unfinished when a channel was removed) `Closed`; every removed channel is
//! reported once; every process ends and is collected.
//!
//! A second test runs the same model without a fork: each task is a channel
//! of [`Channel::pair`] added to the exchange, and the test plays the peer
//! (it answers, fails or hangs up at random points between the exchange's
//! operations), so the exchange's bookkeeping is checked on its own, in one
//! process, with every interleaving decided by the seed.
//!
//! The seed comes from `PP_MODEL_SEED` (a failure prints it); `PP_MODEL_CASES`
//! sets how many cases run.
#![cfg(feature = "std")]

mod fork_contract;
mod hardening;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hardening::{children, seed, Rng, Watchdog};
use pprocess::exchange::Growable;
use pprocess::{start, Channel, Error, Exchange, Managed, Options, RemoteError, StoreData, TaskId};

/// What a task does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    /// Sends its task id.
    Answer,
    /// Fails with a remote error whose code is 100 plus its task id.
    Fail,
    /// Its process exits without a word.
    Die,
}

/// How a task ended, as the program saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    /// The message it sent (its task id), and whether the handler got it
    /// (false: the program received it after `ready`).
    Result(u64),
    Failed(Error, Option<i32>),
}

/// The handler: every message and failure, by the task it is charged to.
#[derive(Default)]
struct Log {
    seen: Vec<(TaskId, Seen)>,
}

impl StoreData for Log {
    fn store_data(&mut self, channel: &mut Channel, task: TaskId) -> pprocess::Result<()> {
        let id: u64 = channel.receive_value()?;
        self.seen.push((task, Seen::Result(id)));
        Ok(())
    }

    fn store_error(&mut self, task: TaskId, error: Error, remote: Option<&RemoteError>) {
        self.seen
            .push((task, Seen::Failed(error, remote.map(RemoteError::code))));
    }
}

/// The body every task runs: `args` is its plan and id.
fn body(ch: &mut Channel, args: &[u8]) -> Result<(), RemoteError> {
    let id = u64::from_le_bytes(args[1..9].try_into().unwrap());
    match args[0] {
        0 => Ok(ch.send_value(&id)?),
        1 => Err(RemoteError::new(100 + id as i32, "planned failure")),
        // SAFETY: _exit ends this created process at once.
        _ => unsafe { libc::_exit(3) },
    }
}

fn args(plan: Plan, id: TaskId) -> Vec<u8> {
    let mut args = vec![plan as u8];
    args.extend_from_slice(&(id.index() as u64).to_le_bytes());
    args
}

/// The model: what each task was started to do, and whether a channel
/// removal could have cut it short.
#[derive(Default)]
struct Model {
    plans: BTreeMap<TaskId, Plan>,
    /// Tasks unfinished when some channel was removed.
    cut: BTreeSet<TaskId>,
    /// Outcomes seen, by task.
    outcomes: BTreeMap<TaskId, Seen>,
}

impl Model {
    fn started(&mut self, task: TaskId, plan: Plan) {
        assert!(self.plans.insert(task, plan).is_none(), "task {task} twice");
    }

    /// Takes the outcomes the handler logged, and checks each.
    fn take(&mut self, log: &mut Log) {
        for (task, seen) in log.seen.drain(..) {
            self.record(task, seen);
        }
    }

    fn record(&mut self, task: TaskId, seen: Seen) {
        if std::env::var_os("PP_MODEL_TRACE").is_some() {
            eprintln!("  task {task}: {seen:?}");
        }
        let plan = *self
            .plans
            .get(&task)
            .unwrap_or_else(|| panic!("unknown task {task}"));
        let right = match (&seen, plan) {
            (Seen::Result(id), Plan::Answer) => *id == task.index() as u64,
            (Seen::Failed(Error::Remote { .. }, code), Plan::Fail) => {
                *code == Some(100 + task.index() as i32)
            }
            (Seen::Failed(Error::PeerEnded { .. } | Error::Closed, _), Plan::Die) => true,
            (Seen::Failed(Error::Closed, _), _) => self.cut.contains(&task),
            _ => false,
        };
        assert!(right, "task {task} ({plan:?}) got {seen:?}");
        if let Some(before) = self.outcomes.insert(task, seen.clone()) {
            panic!("task {task} ({plan:?}) got {seen:?} after {before:?}");
        }
    }

    /// A channel is being removed: every task without an outcome may be cut.
    fn removing(&mut self) {
        let open: Vec<TaskId> = self
            .plans
            .keys()
            .filter(|task| !self.outcomes.contains_key(task))
            .copied()
            .collect();
        self.cut.extend(open);
    }
}

/// A peer of the no-fork case: it carries out `plan` for task `task` on its
/// end of the pair, then hangs up, as a created process sends and exits.
/// Its send may fail only when `model` says a removal cut the task short
/// (the exchange closed its end).
fn act(model: &Model, (mut peer, task, plan): (Channel, TaskId, Plan)) {
    let id = task.index() as u64;
    let sent = match plan {
        Plan::Answer => peer.send_value(&id),
        Plan::Fail => peer.send_error(&RemoteError::new(100 + id as i32, "planned failure")),
        Plan::Die => Ok(()),
    };
    if let Err(e) = sent {
        assert!(model.cut.contains(&task), "task {task}'s peer: {e}");
    }
    drop(peer);
}

fn plan(rng: &mut Rng) -> Plan {
    match rng.below(10) {
        0 => Plan::Fail,
        1 => Plan::Die,
        _ => Plan::Answer,
    }
}

/// `store` with `timeout_ms`, and the outcomes it logged checked.
fn store(ex: &mut Exchange<Growable, Log>, model: &mut Model, timeout_ms: i32) {
    match ex.store(timeout_ms) {
        Ok(_) | Err(Error::TimedOut) => {}
        Err(e) => panic!("store: {e}"),
    }
    model.take(ex.handler_mut());
}

/// Removes a channel picked at random (the exchange closes it): every task
/// without an outcome may be cut short.
fn remove_one(rng: &mut Rng, ex: &mut Exchange<Growable, Log>, model: &mut Model) {
    let k = rng.below(ex.active_count() as u64) as usize;
    let fd = ex.active().nth(k).unwrap().raw_fd();
    model.take(ex.handler_mut());
    model.removing();
    assert!(ex.remove(fd).unwrap().is_none(), "autoclose");
    model.take(ex.handler_mut());
}

/// Finishes the exchange and checks that every task got its outcome.
fn finish(mut ex: Exchange<Growable, Log>, model: &mut Model, case: u64) {
    ex.finish().unwrap();
    model.take(ex.handler_mut());
    assert_eq!(ex.active_count(), 0);
    drop(ex);
    let missing: Vec<_> = model
        .plans
        .keys()
        .filter(|task| !model.outcomes.contains_key(task))
        .collect();
    assert!(
        missing.is_empty(),
        "case {case}: no outcome for tasks {missing:?}"
    );
}

fn run_case(rng: &mut Rng, case: u64) {
    let options = Options {
        reuse: rng.chance(1, 2),
        ..Options::default()
    };
    let limit = rng.range(1, 4) as usize;
    let mut ex: Exchange<Growable, Log> = Exchange::new(limit, options, Log::default());
    let handle: Managed = ex.manage(body);
    let mut model = Model::default();
    let mut removed_pids = BTreeSet::new();
    let steps = rng.range(5, 30);
    let trace = std::env::var_os("PP_MODEL_TRACE").is_some();
    if trace {
        eprintln!("{options:?} limit {limit}");
    }
    for _ in 0..steps {
        let op = rng.below(10);
        if trace {
            eprintln!(
                "op {op} next task {} active {}",
                ex.next_id(),
                ex.active_count()
            );
        }
        match op {
            // Starts: by handle, bound per task, or a channel added.
            0..=2 => {
                let plan = plan(rng);
                let task = ex.next_id();
                model.started(task, plan);
                assert_eq!(handle.call(&mut ex, &args(plan, task)).unwrap(), task);
            }
            3 => {
                let plan = plan(rng);
                let task = ex.next_id();
                model.started(task, plan);
                assert_eq!(ex.start_with(body, &args(plan, task)).unwrap(), task);
            }
            4 => {
                let plan = plan(rng);
                let task = ex.next_id();
                let a = args(plan, task);
                let channel = start(move |ch| body(ch, &a)).unwrap();
                model.started(task, plan);
                assert_eq!(ex.add(channel).ok(), Some(task));
            }
            // The raw loop: receive from each ready channel.
            5 | 6 => {
                let mut got = Vec::new();
                for ch in ex.ready(if rng.chance(1, 2) { 0 } else { 50 }).unwrap() {
                    got.push(
                        ch.receive_value::<u64>()
                            .expect("a ready channel has a message"),
                    );
                }
                for r in ex.removed() {
                    assert!(removed_pids.insert(r.pid), "pid {} removed twice", r.pid);
                }
                model.take(ex.handler_mut());
                for id in got {
                    model.record(TaskId::new(id as usize), Seen::Result(id));
                }
            }
            7 => store(&mut ex, &mut model, if rng.chance(1, 2) { 0 } else { 50 }),
            8 if ex.active_count() > 0 => remove_one(rng, &mut ex, &mut model),
            _ => {
                ex.wait().unwrap();
                model.take(ex.handler_mut());
            }
        }
    }
    finish(ex, &mut model, case);
    // Every process ends: the ones still exiting are collected here, and
    // none is left.
    pprocess::waitall().unwrap();
    assert_eq!(children(), 0, "case {case}: processes left");
}

/// One case without forks: tasks are added pairs whose peers this test
/// plays; the peers act between the exchange's operations, and all of them
/// before a call that waits for every task.
fn run_case_without_forks(rng: &mut Rng, case: u64) {
    let limit = rng.range(1, 4) as usize;
    let mut ex: Exchange<Growable, Log> = Exchange::new(limit, Options::default(), Log::default());
    let mut model = Model::default();
    // Peers that have not acted yet, with their task and plan.
    let mut peers: Vec<(Channel, TaskId, Plan)> = Vec::new();
    let mut removed = 0;
    let steps = rng.range(5, 40);
    for _ in 0..steps {
        match rng.below(10) {
            0..=2 => {
                let plan = plan(rng);
                let (ours, theirs) = Channel::pair().unwrap();
                let task = ex.add(ours).expect("a growable exchange adds");
                model.started(task, plan);
                peers.push((theirs, task, plan));
            }
            3 | 4 if !peers.is_empty() => {
                let k = rng.below(peers.len() as u64) as usize;
                act(&model, peers.swap_remove(k));
            }
            5 => {
                let mut got = Vec::new();
                for ch in ex.ready(0).unwrap() {
                    match ch.receive_value::<u64>() {
                        Ok(id) => got.push(id),
                        // A ready channel may hold its peer's error or end:
                        // the exchange charges it (collected below).
                        Err(Error::Remote { .. } | Error::Closed) => {}
                        Err(e) => panic!("receive: {e}"),
                    }
                }
                removed += ex.removed().len();
                model.take(ex.handler_mut());
                for id in got {
                    model.record(TaskId::new(id as usize), Seen::Result(id));
                }
            }
            6 | 7 => store(&mut ex, &mut model, 0),
            8 if ex.active_count() > 0 => remove_one(rng, &mut ex, &mut model),
            _ => {
                for peer in peers.drain(..) {
                    act(&model, peer);
                }
                ex.wait().unwrap();
                model.take(ex.handler_mut());
            }
        }
    }
    for peer in peers.drain(..) {
        act(&model, peer);
    }
    eprintln!("  {removed} channels removed by ready");
    finish(ex, &mut model, case);
}

#[test]
fn random_operations_on_added_pairs_match_the_model_without_forks() {
    let _watchdog = Watchdog::new("exchange model without forks", Duration::from_secs(120));
    let first = seed("PP_MODEL_SEED", 13);
    let cases = seed("PP_MODEL_CASES", 200);
    for case in first..first + cases {
        let mut rng = Rng::new(case);
        eprintln!("case {case} (PP_MODEL_SEED={case} PP_MODEL_CASES=1 reruns it)");
        run_case_without_forks(&mut rng, case);
    }
}

#[test]
fn random_exchange_operations_match_the_model() {
    let _watchdog = Watchdog::new("exchange model", Duration::from_secs(240));
    let first = seed("PP_MODEL_SEED", 13);
    let cases = seed("PP_MODEL_CASES", 60);
    for case in first..first + cases {
        let mut rng = Rng::new(case);
        eprintln!("case {case} (PP_MODEL_SEED={case} PP_MODEL_CASES=1 reruns it)");
        run_case(&mut rng, case);
    }
}
