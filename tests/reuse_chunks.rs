//! Reused workers get their tasks in chunks (one batch frame carries a
//! worker's new tasks) and answer each task as soon as it has run: every
//! task runs once and gets its own result, whatever the mix of quick and
//! slow tasks, and a worker killed in the middle of a chunk fails only the
//! task it was running (issue 14).

mod fork_contract;
mod hardening;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hardening::Watchdog;
use pprocess::{Channel, Error, Map, Options, RemoteError, TaskError};

fn reuse() -> Options {
    Options {
        reuse: true,
        ..Options::default()
    }
}

/// A log that each task appends its index to (one small `O_APPEND` write:
/// whole, whichever process writes it).
fn log_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("pp-chunks-{name}-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn log_task(path: &Path, index: u32) -> Result<(), RemoteError> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|_| RemoteError::new(1, "log"))?;
    file.write_all(&index.to_le_bytes())
        .map_err(|_| RemoteError::new(1, "log"))
}

/// How many times each of `n` tasks ran, from the log.
fn runs(path: &Path, n: usize) -> Vec<usize> {
    let log = std::fs::read(path).unwrap();
    let _ = std::fs::remove_file(path);
    let mut runs = vec![0; n];
    for entry in log.chunks_exact(4) {
        runs[u32::from_le_bytes(entry.try_into().unwrap()) as usize] += 1;
    }
    runs
}

/// Runs `tasks` inputs (a little-endian index) through a map of two reused
/// workers whose body sleeps `pause(index)` and answers the index times 3;
/// checks each result and that each task ran once.
fn check_each_task_once(name: &str, tasks: u32, pause: fn(u32) -> Duration) {
    let log = log_path(name);
    let path = log.clone();
    let body = move |ch: &mut Channel, input: &[u8]| -> Result<(), RemoteError> {
        let index = u32::from_le_bytes(input.try_into().unwrap());
        log_task(&path, index)?;
        std::thread::sleep(pause(index));
        ch.send(&(index * 3).to_le_bytes())
            .map_err(RemoteError::from)
    };
    let mut map = Map::with_options(2, reuse());
    for index in 0..tasks {
        map.start_with(body.clone(), &index.to_le_bytes()).unwrap();
    }
    for (task, outcome) in map.by_ref().enumerate() {
        let bytes = outcome.unwrap_or_else(|e| panic!("{name}: task {task}: {e:?}"));
        assert_eq!(
            bytes,
            (task as u32 * 3).to_le_bytes(),
            "{name}: task {task}"
        );
    }
    let runs = runs(&log, tasks as usize);
    let wrong: Vec<_> = runs.iter().enumerate().filter(|r| *r.1 != 1).collect();
    assert!(wrong.is_empty(), "{name}: (task, runs) {wrong:?}");
}

#[test]
fn uniform_tiny_tasks_on_reused_workers_each_run_once_with_their_own_result() {
    let _watchdog = Watchdog::new("uniform chunks", Duration::from_secs(120));
    check_each_task_once("uniform", 5000, |_| Duration::ZERO);
}

#[test]
fn skewed_tasks_on_reused_workers_each_run_once_with_their_own_result() {
    let _watchdog = Watchdog::new("skewed chunks", Duration::from_secs(120));
    // Every 50th task takes 2 ms, the rest nothing.
    check_each_task_once("skewed", 2000, |index| match index % 50 {
        0 => Duration::from_millis(2),
        _ => Duration::ZERO,
    });
}

/// Task `VICTIM` kills its worker while the tasks after it in its chunk wait
/// in that worker: only the victim fails (its worker was killed), every
/// other task is answered, and none runs twice (the tasks the dead worker
/// never started run elsewhere once; those it answered are kept).
#[test]
fn a_worker_killed_mid_chunk_fails_only_its_running_task_and_loses_no_answer() {
    const TASKS: u32 = 3000;
    const VICTIM: u32 = 1700;
    let _watchdog = Watchdog::new("killed mid-chunk", Duration::from_secs(120));
    let log = log_path("killed");
    let path = log.clone();
    let body = move |ch: &mut Channel, input: &[u8]| -> Result<(), RemoteError> {
        let index = u32::from_le_bytes(input.try_into().unwrap());
        log_task(&path, index)?;
        if index == VICTIM {
            // SAFETY: killing this very process.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
        ch.send(input).map_err(RemoteError::from)
    };
    let mut map = Map::with_options(2, reuse());
    for index in 0..TASKS {
        map.start_with(body.clone(), &index.to_le_bytes()).unwrap();
    }
    for (task, outcome) in map.by_ref().enumerate() {
        match outcome {
            Err(TaskError {
                error: Error::PeerEnded { status, .. },
                ..
            }) if task == VICTIM as usize => {
                assert_eq!(status.signal(), Some(libc::SIGKILL));
            }
            Ok(bytes) if task != VICTIM as usize => {
                assert_eq!(bytes, (task as u32).to_le_bytes(), "task {task}");
            }
            other => panic!("task {task}: {other:?}"),
        }
    }
    let runs = runs(&log, TASKS as usize);
    let wrong: Vec<_> = runs.iter().enumerate().filter(|r| *r.1 != 1).collect();
    assert!(wrong.is_empty(), "(task, runs) {wrong:?}");
}

/// Tasks started while every worker is busy are not written one by one:
/// they wait, and go out in chunks when results come in. (Before chunks,
/// each start wrote its task to a worker at once, in a frame and a write of
/// its own, as far as the worker's window allowed.)
#[test]
fn tasks_started_while_every_worker_is_busy_wait_to_go_out_in_chunks() {
    let _watchdog = Watchdog::new("deferred starts", Duration::from_secs(60));
    fn echo(ch: &mut Channel, input: &[u8]) -> Result<(), RemoteError> {
        ch.send(input).map_err(RemoteError::from)
    }
    let mut map = Map::with_options(2, reuse());
    for index in 0..200u32 {
        map.start_with(echo, &index.to_le_bytes()).unwrap();
    }
    // Two workers started, one task each; nothing has been collected yet.
    assert_eq!(map.active_count(), 2);
    assert_eq!(map.waiting(), 198);
    for (task, outcome) in map.by_ref().enumerate() {
        assert_eq!(outcome.unwrap(), (task as u32).to_le_bytes(), "task {task}");
    }
    assert_eq!(map.waiting(), 0);
}
