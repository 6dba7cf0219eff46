//! Issue 20's defects 2 and 3 in reused workers: a task that never started
//! does not fail with the worker that held it, and a worker's frame naming a
//! task it was not given is a protocol error for that worker alone.

mod fork_contract;
mod hardening;

use std::time::Duration;

use hardening::wire_model::{frame_for, ERROR};
use hardening::Watchdog;
use pprocess::exchange::TaskError;
use pprocess::{Channel, Error, Options, Queue, TaskId};

fn reuse() -> Options {
    Options {
        reuse: true,
        ..Options::default()
    }
}

/// Every outcome of `queue`, by task, each task at most once (a second
/// outcome for a task fails the test).
fn outcomes_by_task(queue: &mut Queue) -> Vec<(TaskId, Result<Vec<u8>, TaskError>)> {
    let mut all: Vec<(TaskId, Result<Vec<u8>, TaskError>)> = Vec::new();
    while let Ok((task, outcome)) = queue.next_result(30_000) {
        assert!(
            all.iter().all(|(t, _)| *t != task),
            "task {task} has a second outcome: {outcome:?} after {all:?}"
        );
        all.push((task, outcome));
    }
    all.sort_by_key(|(task, _)| *task);
    all
}

/// Defect 2, as the issue saw it: limit 1, tasks A, B and C; A answers, the
/// program takes A's answer and kills the worker while B and C wait in its
/// socket, never started. Only the task a worker dies in may fail: B and C
/// run on a new worker. (Before: B failed with `PeerEnded` though it never
/// started.)
#[test]
fn tasks_a_worker_never_started_survive_its_death_between_tasks() {
    let _watchdog = Watchdog::new("death between tasks", Duration::from_secs(120));
    let mut queue = Queue::with_options(1, reuse());
    let body = queue.manage(|channel: &mut Channel, input: &[u8]| {
        if input != b"A" {
            return Ok(channel.send(input)?);
        }
        // Task A answers with its worker's pid, then runs on.
        channel.send(&std::process::id().to_le_bytes())?;
        // Between tasks from now on: answered, B not started. Killed by
        // the program (or, should that fail, gone after a minute).
        for _ in 0..600 {
            std::thread::sleep(Duration::from_millis(100));
        }
        // SAFETY: ends this process without unwinding into the caller.
        unsafe { libc::_exit(9) }
    });
    let a = body.call(&mut queue, b"A").unwrap();
    let b = body.call(&mut queue, b"B").unwrap();
    let c = body.call(&mut queue, b"C").unwrap();
    let (task, outcome) = queue.next_result(30_000).unwrap();
    assert_eq!(task, a);
    let pid = i32::from_le_bytes(outcome.unwrap()[..4].try_into().unwrap());
    // SAFETY: kill(2) of the worker this queue created (still unreaped:
    // the queue collects it once it sees its channel end).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let rest = outcomes_by_task(&mut queue);
    assert_eq!(
        rest,
        vec![(b, Ok(b"B".to_vec())), (c, Ok(b"C".to_vec()))],
        "the tasks the dead worker never started run elsewhere, once"
    );
}

/// Defect 2 with a worker that ends itself with `_exit` right after its
/// answer: the tasks queued behind it never started, and run on another.
#[test]
fn tasks_queued_behind_a_worker_that_exits_after_answering_run_elsewhere() {
    let _watchdog = Watchdog::new("exit between tasks", Duration::from_secs(120));
    let mut queue = Queue::with_options(1, reuse());
    let body = queue.manage(|channel: &mut Channel, input: &[u8]| {
        channel.send(input)?;
        if input[0] == 0 {
            // SAFETY: ends this process at once, after its answer went out.
            unsafe { libc::_exit(3) };
        }
        Ok(())
    });
    // Every tenth task exits its worker after answering.
    let inputs: Vec<[u8; 2]> = (0..100u8).map(|i| [u8::from(i % 10 != 9), i]).collect();
    for input in &inputs {
        body.call(&mut queue, input).unwrap();
    }
    let all = outcomes_by_task(&mut queue);
    assert_eq!(all.len(), inputs.len());
    for (task, outcome) in all {
        assert_eq!(
            outcome.as_deref(),
            Ok(&inputs[task.index()][..]),
            "task {task}"
        );
    }
}

/// Writes `forged` on the worker's own socket, past its channel, then waits
/// for its creator to retire it (or a minute).
fn forge_and_wait(channel: &Channel, forged: &[u8]) {
    // SAFETY: writing a valid buffer to this process's own socket.
    let n = unsafe { libc::write(channel.raw_fd(), forged.as_ptr().cast(), forged.len()) };
    assert_eq!(n, forged.len() as isize);
    std::thread::sleep(Duration::from_secs(60));
}

/// Defect 3: a reused worker writes a frame naming a task of another worker
/// (an error frame for task 0, which the other worker is answering). It is
/// a protocol error for the forging worker alone: its own task fails with
/// it, and task 0 keeps its one, real outcome. (Before: the frame was
/// credited to task 0, which got a forged error besides its result.)
#[test]
fn a_frame_naming_another_workers_task_fails_only_the_forging_worker() {
    let _watchdog = Watchdog::new("forged task tag", Duration::from_secs(120));
    let mut queue = Queue::with_options(2, reuse());
    let body = queue.manage(|channel: &mut Channel, input: &[u8]| {
        if input == b"forge" {
            // Task 0's tag (task + 1), on this worker's own socket.
            let mut payload = 77i32.to_le_bytes().to_vec();
            payload.extend_from_slice(b"forged");
            forge_and_wait(channel, &frame_for(ERROR, 0, 1, 1, &payload));
        }
        channel.send(input)?;
        Ok(())
    });
    // Two workers: task 0 is still the first's when task 1 starts the second.
    let real = body.call(&mut queue, b"real").unwrap();
    let forger = body.call(&mut queue, b"forge").unwrap();
    let all = outcomes_by_task(&mut queue);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0], (real, Ok(b"real".to_vec())));
    assert_eq!(all[1].0, forger);
    let error = all[1].1.as_ref().unwrap_err().error;
    assert!(matches!(error, Error::Protocol(_)), "{error:?}");
}

/// Defect 3 for a tag no task of the exchange has: the worker that wrote it
/// is retired with a protocol error; every other task is answered once.
#[test]
fn a_frame_naming_a_task_never_given_fails_only_its_worker() {
    let _watchdog = Watchdog::new("unknown task tag", Duration::from_secs(120));
    let mut queue = Queue::with_options(2, reuse());
    let body = queue.manage(|channel: &mut Channel, input: &[u8]| {
        if input == b"forge" {
            // A data frame naming task 8, which no task of this queue is.
            forge_and_wait(channel, &frame_for(1, 2, 1, 9, b"not yours"));
        }
        channel.send(input)?;
        Ok(())
    });
    let mut inputs: Vec<Vec<u8>> = (0..7u8).map(|i| vec![i]).collect();
    inputs.push(b"forge".to_vec());
    for input in &inputs {
        body.call(&mut queue, input).unwrap();
    }
    let all = outcomes_by_task(&mut queue);
    assert_eq!(all.len(), inputs.len(), "{all:?}");
    for (task, outcome) in all {
        match outcome {
            Ok(bytes) => assert_eq!(bytes, inputs[task.index()], "task {task}"),
            Err(e) if inputs[task.index()] == b"forge" => {
                assert!(matches!(e.error, Error::Protocol(_)), "{e:?}")
            }
            Err(e) => panic!("task {task}: {e:?}"),
        }
    }
}
