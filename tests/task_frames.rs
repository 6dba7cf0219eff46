//! Wire format v2: every frame names its task, so nothing is crossed or lost
//! between the tasks of a reused worker (issue 12, defects 2 to 5 and 8).
//! Each test fails on the version 1 engine, which filed a worker's frames by
//! queue order and let a callable's receive take the loop's own frames.

mod fork_contract;
mod hardening;

use std::collections::BTreeMap;
use std::time::Duration;

use hardening::Watchdog;
use pprocess::exchange::Growable;
use pprocess::{Channel, Error, Exchange, Map, Options, Queue, RemoteError, StoreData, TaskId};

fn reuse() -> Options {
    Options {
        reuse: true,
        ..Options::default()
    }
}

/// Defect 2: a task that sends its result and then fails. Its error is
/// charged to it; the next task on the same worker keeps its own answer.
#[test]
fn a_reused_tasks_error_after_its_result_is_charged_to_it_not_to_the_next_task() {
    let _watchdog = Watchdog::new("late error", Duration::from_secs(60));
    fn body(ch: &mut Channel, args: &[u8]) -> Result<(), RemoteError> {
        ch.send(args).map_err(RemoteError::from)?;
        if args == b"zero" {
            return Err(RemoteError::new(77, "after the result"));
        }
        Ok(())
    }
    let mut queue = Queue::with_options(1, reuse());
    let body = queue.manage(body);
    body.call(&mut queue, b"zero").unwrap();
    body.call(&mut queue, b"one").unwrap();
    let mut by_task: BTreeMap<TaskId, Vec<String>> = BTreeMap::new();
    while let Ok((task, outcome)) = queue.next_result(-1) {
        let text = match outcome {
            Ok(bytes) => String::from_utf8(bytes).unwrap(),
            Err(failure) => format!("error {}", failure.remote.map_or(0, |r| r.code())),
        };
        by_task.entry(task).or_default().push(text);
    }
    assert_eq!(
        by_task[&TaskId::new(1)],
        vec!["one".to_string()],
        "task 1: {by_task:?}"
    );
    assert_eq!(
        by_task[&TaskId::new(0)],
        vec!["zero".to_string(), format!("error {}", 77)],
        "task 0: {by_task:?}"
    );
}

/// Answers each task's request with a reply naming it, and keeps the
/// task's final result.
#[derive(Default)]
struct Replier {
    results: BTreeMap<TaskId, Vec<u8>>,
}

impl StoreData for Replier {
    fn store_data(&mut self, channel: &mut Channel, task: TaskId) -> pprocess::Result<()> {
        let message = channel.receive_vec()?;
        match message.strip_prefix(b"request ") {
            Some(what) => channel.send(&[b"reply to ", what].concat()),
            None => {
                self.results.insert(task, message);
                Ok(())
            }
        }
    }
}

/// Defect 3: with reuse and continuous, tasks pipelined to one worker each
/// send a request and receive the creator's reply: each gets its own reply,
/// never the next task's arguments.
#[test]
fn pipelined_reused_tasks_each_receive_their_own_reply() {
    let _watchdog = Watchdog::new("request and reply", Duration::from_secs(60));
    fn body(ch: &mut Channel, args: &[u8]) -> Result<(), RemoteError> {
        ch.send(&[b"request ", args].concat())
            .map_err(RemoteError::from)?;
        let reply = ch.receive_vec().map_err(RemoteError::from)?;
        ch.send(&[args, b" got ", &reply[..]].concat())
            .map_err(RemoteError::from)
    }
    let options = Options {
        reuse: true,
        continuous: true,
        ..Options::default()
    };
    let mut ex: Exchange<Growable, Replier> = Exchange::new(1, options, Replier::default());
    let body = ex.manage(body);
    for name in ["t0", "t1", "t2", "t3"] {
        body.call(&mut ex, name.as_bytes()).unwrap();
    }
    ex.finish().unwrap();
    let results: Vec<String> = ex
        .handler()
        .results
        .values()
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .collect();
    assert_eq!(
        results,
        ["t0", "t1", "t2", "t3"].map(|t| format!("{t} got reply to {t}"))
    );
}

/// Defect 4: pprocess's own reusable pattern (MakeReusable: send a result,
/// then receive further parameters until none come). The engine's loop
/// hands out the parameters, so the callable's receive says "no more for
/// this task" and every task gets its own result.
#[test]
fn pprocess_reusable_pattern_gives_every_task_its_own_result() {
    let _watchdog = Watchdog::new("MakeReusable", Duration::from_secs(60));
    fn times_ten(args: &[u8]) -> Vec<u8> {
        (u32::from_le_bytes(args.try_into().unwrap()) * 10)
            .to_le_bytes()
            .to_vec()
    }
    fn reusable(ch: &mut Channel, args: &[u8]) -> Result<(), RemoteError> {
        ch.send(&times_ten(args)).map_err(RemoteError::from)?;
        loop {
            match ch.receive_vec() {
                Ok(more) => ch.send(&times_ten(&more)).map_err(RemoteError::from)?,
                Err(Error::Closed) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }
    let mut map = Map::with_options(1, reuse());
    let reusable = map.manage(reusable);
    for i in 0..6u32 {
        reusable.call(&mut map, &i.to_le_bytes()).unwrap();
    }
    let results: Vec<u32> = map
        .by_ref()
        .map(|outcome| u32::from_le_bytes(outcome.unwrap().try_into().unwrap()))
        .collect();
    assert_eq!(results, vec![0, 10, 20, 30, 40, 50]);
}

/// Records every outcome by task.
#[derive(Default)]
struct Outcomes {
    results: Vec<(TaskId, Vec<u8>)>,
    failed: Vec<(TaskId, Error)>,
}

impl StoreData for Outcomes {
    fn store_data(&mut self, channel: &mut Channel, task: TaskId) -> pprocess::Result<()> {
        let message = channel.receive_vec()?;
        self.results.push((task, message));
        Ok(())
    }

    fn store_error(&mut self, task: TaskId, error: Error, _: Option<&RemoteError>) {
        self.failed.push((task, error));
    }
}

/// Defect 5: a reused worker removed (autoclose off) while tasks are
/// queued in its socket. Its tasks stay with it (they fail in the exchange
/// with `Closed`): none runs twice and none is answered twice.
#[test]
fn a_removed_workers_queued_tasks_run_once() {
    let _watchdog = Watchdog::new("removed worker", Duration::from_secs(60));
    let log = std::env::temp_dir().join(format!("pp-removed-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let log_path = log.clone();
    let body = move |ch: &mut Channel, args: &[u8]| -> Result<(), RemoteError> {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|_| RemoteError::new(1, "log"))?;
        file.write_all(args)
            .map_err(|_| RemoteError::new(1, "log"))?;
        ch.send(args).map_err(RemoteError::from)
    };
    let options = Options {
        reuse: true,
        keep_removed: true,
        ..Options::default()
    };
    let mut ex: Exchange<Growable, Outcomes> = Exchange::new(1, options, Outcomes::default());
    let body = ex.manage(body);
    for name in ["a", "b", "c"] {
        body.call(&mut ex, name.as_bytes()).unwrap();
    }
    let fd = ex.ready(0).unwrap().map(|ch| ch.raw_fd()).next();
    let fd = fd.unwrap_or_else(|| {
        // Not ready yet: its one channel is the worker.
        let mut fds = Vec::new();
        for ch in ex.ready(-1).unwrap() {
            fds.push(ch.raw_fd());
        }
        fds[0]
    });
    let mut removed = ex.remove(fd).unwrap().expect("handed back");
    ex.finish().unwrap();
    // How many tasks were queued to the worker when it was removed depends on
    // the dispatch window (guided: maybe one, maybe all three). Those tasks
    // stay with it and fail in the exchange with `Closed`; the exchange runs
    // the others in a new worker.
    let mut stayed: Vec<TaskId> = ex.handler().failed.iter().map(|f| f.0).collect();
    stayed.sort();
    assert!(
        ex.handler().failed.iter().all(|f| f.1 == Error::Closed),
        "{:?}",
        ex.handler().failed
    );
    assert!(!stayed.is_empty(), "the removed worker had its first task");
    // The removed worker runs what was queued in its socket: its answers
    // come on the channel handed back.
    let mut answers = Vec::new();
    while answers.len() < stayed.len() {
        answers.push(removed.receive_vec().unwrap());
    }
    drop(removed);
    let names = [b"a", b"b", b"c"];
    let expected: Vec<Vec<u8>> = stayed.iter().map(|&t| names[t.index()].to_vec()).collect();
    answers.sort();
    assert_eq!(
        answers, expected,
        "the removed worker answers its own tasks"
    );
    let mut done: Vec<TaskId> = ex.handler().results.iter().map(|r| r.0).collect();
    done.sort();
    for &(task, ref message) in &ex.handler().results {
        assert_eq!(message.as_slice(), names[task.index()], "task {task}");
    }
    let mut all: Vec<TaskId> = stayed.iter().chain(&done).copied().collect();
    all.sort();
    assert_eq!(
        all,
        (0..3).map(TaskId::new).collect::<Vec<_>>(),
        "every task answered once: {stayed:?} + {done:?}"
    );
    let mut ran = std::fs::read_to_string(&log).unwrap().into_bytes();
    let _ = std::fs::remove_file(&log);
    ran.sort();
    assert_eq!(ran, b"abc", "each task runs once");
}

/// Defect 8, with reuse: a loop over [`Exchange::ready`] that receives the
/// results itself ends: what it received finishes the tasks, so waiting
/// tasks start and idle workers are told to stop.
#[test]
fn a_ready_loop_over_reused_workers_ends() {
    let _watchdog = Watchdog::new("ready loop", Duration::from_secs(60));
    fn echo(ch: &mut Channel, args: &[u8]) -> Result<(), RemoteError> {
        ch.send(args).map_err(RemoteError::from)
    }
    let mut ex: Exchange<Growable, Outcomes> = Exchange::new(2, reuse(), Outcomes::default());
    let echo = ex.manage(echo);
    for i in 0..8u8 {
        echo.call(&mut ex, &[i]).unwrap();
    }
    let mut got = Vec::new();
    while ex.unfinished() {
        for ch in ex.ready(-1).unwrap() {
            match ch.receive_vec() {
                Ok(message) => got.push(message[0]),
                Err(Error::Closed) => {}
                Err(e) => panic!("{e}"),
            }
        }
    }
    got.sort();
    assert_eq!(got, (0..8).collect::<Vec<u8>>());
    ex.finish().unwrap();
    assert!(ex.handler().failed.is_empty(), "{:?}", ex.handler().failed);
}

/// Defect 8, without reuse: results the program received itself after
/// [`Exchange::ready`] count, so finishing reports no task as closed.
#[test]
fn results_received_after_ready_are_not_reported_as_missing() {
    let _watchdog = Watchdog::new("ready results", Duration::from_secs(60));
    let mut ex: Exchange<Growable, Outcomes> =
        Exchange::new(4, Options::default(), Outcomes::default());
    for i in 0..4u8 {
        ex.start(move |ch| ch.send(&[i]).map_err(RemoteError::from))
            .unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 4 {
        for ch in ex.ready(-1).unwrap() {
            if let Ok(message) = ch.receive_vec_timeout(0) {
                got.push(message[0]);
            }
        }
    }
    ex.finish().unwrap();
    got.sort();
    assert_eq!(got, vec![0, 1, 2, 3]);
    assert!(ex.handler().failed.is_empty(), "{:?}", ex.handler().failed);
}

/// Replies to each request with 4 MiB, far more than a socket buffer holds.
#[derive(Default)]
struct BigReplier {
    stored: Vec<(TaskId, Vec<u8>)>,
}

impl StoreData for BigReplier {
    fn store_data(&mut self, channel: &mut Channel, task: TaskId) -> pprocess::Result<()> {
        let message = channel.receive_vec()?;
        if message == b"request" {
            channel.send(&vec![7u8; 4 << 20])?;
        }
        self.stored.push((task, message));
        Ok(())
    }
}

/// The exchange's event loop never blocks writing to one peer: a reply far
/// larger than a socket buffer, to a child that does not read, goes out as
/// that child's socket takes it, and other tasks' results are stored
/// meanwhile. (Before, the reply was one blocking write: the exchange hung
/// until the child read.)
#[test]
fn a_large_reply_to_a_peer_that_does_not_read_holds_up_nobody() {
    let _watchdog = Watchdog::new("non-reading peer", Duration::from_secs(60));
    let mut ex: Exchange<Growable, BigReplier> =
        Exchange::new(2, Options::default(), BigReplier::default());
    let deaf = ex
        .start(|ch| {
            ch.send(b"request").map_err(RemoteError::from)?;
            // Never reads; killed when the exchange is dropped.
            std::thread::sleep(Duration::from_secs(120));
            Ok(())
        })
        .unwrap();
    while ex.handler().stored.is_empty() {
        ex.store(-1).unwrap();
    }
    let talker = ex
        .start(|ch| ch.send(b"spoken").map_err(RemoteError::from))
        .unwrap();
    while ex.handler().stored.len() < 2 {
        ex.store(-1).unwrap();
    }
    assert_eq!(
        ex.handler().stored,
        vec![(deaf, b"request".to_vec()), (talker, b"spoken".to_vec())]
    );
}
