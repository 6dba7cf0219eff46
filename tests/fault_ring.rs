//! Reused workers answer through a shared-memory ring (issue 20): workers
//! killed at random instants, ended with `_exit` or stopped with SIGSTOP
//! lose no answer they published. Exactly the tasks they died in fail, each
//! reported once; the tasks they held and never started run elsewhere. Each
//! test also checks that the answers came through the ring.

mod fork_contract;
mod hardening;

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hardening::{Rng, Watchdog};
use pprocess::channel::answer_paths;
use pprocess::exchange::TaskError;
use pprocess::{Channel, Error, Options, Queue, RemoteError, TaskId};

const TASKS: usize = 200_000;

/// A task's state, written by the worker running it, in memory shared with
/// the workers.
const STARTED: u8 = 1;
const ANSWERED: u8 = 2;

/// Memory the test and its workers share: a state byte per task, and the
/// pid of the worker that started a task last.
struct Shared {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is only accessed through atomics.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

impl Shared {
    fn new(tasks: usize) -> Shared {
        let len = tasks + 8;
        // SAFETY: an anonymous shared mapping; failure is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED);
        Shared {
            ptr: ptr.cast(),
            len,
        }
    }

    fn state(&self, task: usize) -> &AtomicU8 {
        assert!(task + 8 <= self.len);
        // SAFETY: in the mapping, which lives as long as `self`; any byte is
        // a valid AtomicU8.
        unsafe { AtomicU8::from_ptr(self.ptr.add(8 + task)) }
    }

    fn last_pid(&self) -> &AtomicI32 {
        // SAFETY: the page-aligned start of the mapping.
        unsafe { AtomicI32::from_ptr(self.ptr.cast()) }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

fn reuse() -> Options {
    Options {
        reuse: true,
        ..Options::default()
    }
}

/// Every outcome of `queue`, by task; a task reported twice fails the test.
fn outcomes(queue: &mut Queue, tasks: usize) -> Vec<Option<Result<Vec<u8>, TaskError>>> {
    let mut all: Vec<Option<Result<Vec<u8>, TaskError>>> = vec![None; tasks];
    while let Ok((task, outcome)) = queue.next_result(60_000) {
        assert!(all[task.index()].is_none(), "task {task} reported twice");
        all[task.index()] = Some(outcome);
    }
    all
}

/// The answer of task `i`.
fn square(i: u64) -> Vec<u8> {
    (i * i).to_le_bytes().to_vec()
}

/// Starts `TASKS` tasks whose body records its progress in `shared` and
/// checks every outcome: an answer published is never lost, each task is
/// reported once, and a task fails only as `dead` says and only if it was
/// not answered. (A task whose worker died after claiming it and before
/// its body's first store shows no progress, so "not answered" is what can
/// be checked here; that a task never started does not fail is checked
/// exactly in `reuse_defects.rs`.) Returns how many failed.
fn run_checked(
    shared: &Arc<Shared>,
    body_extra: fn(&Shared, usize),
    dead: fn(&Error, usize) -> bool,
) -> usize {
    let ring_before = answer_paths().0;
    let mut queue = Queue::with_options(2, reuse());
    let memory = shared.clone();
    let body = queue.manage(move |channel: &mut Channel, input: &[u8]| {
        let task = u64::from_le_bytes(input.try_into().unwrap()) as usize;
        memory.state(task).store(STARTED, Ordering::SeqCst);
        // SAFETY: getpid(2) has no preconditions.
        let pid = unsafe { libc::getpid() };
        memory.last_pid().store(pid, Ordering::Relaxed);
        body_extra(&memory, task);
        channel
            .send(&square(task as u64))
            .map_err(RemoteError::from)?;
        memory.state(task).store(ANSWERED, Ordering::SeqCst);
        Ok(())
    });
    for task in 0..TASKS as u64 {
        body.call(&mut queue, &task.to_le_bytes()).unwrap();
    }
    let all = outcomes(&mut queue, TASKS);
    let mut failed = 0;
    for (task, outcome) in all.into_iter().enumerate() {
        let state = shared.state(task).load(Ordering::SeqCst);
        match outcome {
            Some(Ok(bytes)) => assert_eq!(bytes, square(task as u64), "task {task}"),
            Some(Err(e)) if state != ANSWERED && dead(&e.error, task) => failed += 1,
            other => panic!("task {task} (state {state}): {other:?}"),
        }
    }
    let through_ring = answer_paths().0 - ring_before;
    assert!(
        through_ring as usize >= (TASKS - failed) / 2,
        "only {through_ring} answers came through the ring"
    );
    failed
}

fn killed(error: &Error, _: usize) -> bool {
    matches!(error, Error::PeerEnded { status, .. } if status.signal() == Some(libc::SIGKILL))
}

fn nothing(_: &Shared, _: usize) {}

#[test]
fn workers_killed_at_random_instants_lose_no_published_answer() {
    let _watchdog = Watchdog::new("random kills", Duration::from_secs(600));
    let shared = Arc::new(Shared::new(TASKS));
    let done = Arc::new(AtomicBool::new(false));
    let killer = {
        let (shared, done) = (shared.clone(), done.clone());
        std::thread::spawn(move || {
            let mut rng = Rng::new(hardening::seed("PP_RING_KILL_SEED", 20));
            let mut kills = 0;
            while !done.load(Ordering::Relaxed) && kills < 200 {
                std::thread::sleep(Duration::from_micros(rng.range(200, 5000)));
                let pid = shared.last_pid().swap(0, Ordering::Relaxed);
                // SAFETY: kill(2) of a worker of this test (a pid that the
                // queue has not collected yet: it swapped in since).
                if pid > 0 && unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                    kills += 1;
                }
            }
            kills
        })
    };
    let failed = run_checked(&shared, nothing, killed);
    done.store(true, Ordering::Relaxed);
    let kills = killer.join().unwrap();
    assert!(failed <= kills, "{failed} failures for {kills} kills");
    eprintln!("{kills} workers killed, {failed} tasks failed with them, no answer lost");
}

#[test]
fn workers_that_exit_mid_task_lose_no_published_answer() {
    let _watchdog = Watchdog::new("exits", Duration::from_secs(600));
    fn exits(task: usize) -> bool {
        task % 9973 == 17
    }
    fn exit_some(_: &Shared, task: usize) {
        if exits(task) {
            // SAFETY: ends the worker at once, in the middle of its task.
            unsafe { libc::_exit(3) };
        }
    }
    fn exited(error: &Error, task: usize) -> bool {
        exits(task)
            && matches!(error, Error::PeerEnded { status, .. } if status.exit_code() == Some(3))
    }
    let shared = Arc::new(Shared::new(TASKS));
    let failed = run_checked(&shared, exit_some, exited);
    assert_eq!(failed, (0..TASKS).filter(|&t| exits(t)).count());
}

/// A worker stopped with SIGSTOP in a task, holding queued tasks it has not
/// started: they run on the other worker. Once every other task is in, the
/// stopped worker is continued and answers its own.
#[test]
fn the_tasks_a_stopped_worker_holds_run_elsewhere() {
    let _watchdog = Watchdog::new("stopped worker", Duration::from_secs(300));
    const STOPPER: u64 = 5;
    let shared = Arc::new(Shared::new(1));
    let memory = shared.clone();
    let mut queue = Queue::with_options(2, reuse());
    let body = queue.manage(move |channel: &mut Channel, input: &[u8]| {
        let task = u64::from_le_bytes(input.try_into().unwrap());
        if task == STOPPER {
            // SAFETY: getpid(2) and kill(2) of this very process.
            unsafe {
                memory.last_pid().store(libc::getpid(), Ordering::SeqCst);
                libc::kill(libc::getpid(), libc::SIGSTOP);
            }
        }
        Ok(channel.send(&square(task))?)
    });
    let tasks = 2000u64;
    for task in 0..tasks {
        body.call(&mut queue, &task.to_le_bytes()).unwrap();
    }
    let mut seen: Vec<TaskId> = Vec::new();
    while seen.len() < tasks as usize - 1 {
        let (task, outcome) = queue
            .next_result(60_000)
            .expect("no task waits behind the stopped one");
        assert_eq!(outcome.unwrap(), square(task.index() as u64), "task {task}");
        seen.push(task);
    }
    assert!(!seen.contains(&TaskId::new(STOPPER as usize)));
    let pid = shared.last_pid().load(Ordering::SeqCst);
    // SAFETY: kill(2) of the stopped worker of this queue.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    let (task, outcome) = queue.next_result(60_000).unwrap();
    assert_eq!(
        (task, outcome.unwrap()),
        (TaskId::new(STOPPER as usize), square(STOPPER))
    );
    assert!(queue.next().is_none());
}

/// The answer of task `i` in `answers_of_every_size_arrive_whole_and_in_place`:
/// its size cycles through small ones (several to a read of the
/// read-ahead buffer), ones just over that buffer, and ones near or over
/// the ring's size (which go through the socket behind a marker).
fn sized_answer(i: u64) -> Vec<u8> {
    const SIZES: [usize; 8] = [8, 700, 1_000, 1_500, 3_000, 20_000, 70_000, 40];
    let size = SIZES[i as usize % SIZES.len()] + i as usize % 13;
    (0..size).map(|at| (i as usize * 31 + at) as u8).collect()
}

#[test]
fn answers_of_every_size_arrive_whole_and_in_place() {
    let _watchdog = Watchdog::new("answers of every size", Duration::from_secs(120));
    const TASKS: u64 = 3_000;
    let mut queue = Queue::with_options(2, reuse());
    let answer = queue
        .manage_function(|x: &[u8]| Ok(sized_answer(u64::from_le_bytes(x.try_into().unwrap()))));
    let (ring_before, marked_before) = answer_paths();
    for i in 0..TASKS {
        answer.call(&mut queue, &i.to_le_bytes()).unwrap();
    }
    // The workers run ahead while nothing is taken: their rings fill, and
    // the answers behind go through their sockets.
    std::thread::sleep(Duration::from_millis(300));
    let mut seen = vec![false; TASKS as usize];
    while let Ok((task, outcome)) = queue.next_result(60_000) {
        let i = task.index() as u64;
        assert!(
            !std::mem::replace(&mut seen[i as usize], true),
            "task {i} twice"
        );
        assert!(outcome.unwrap() == sized_answer(i), "task {i}'s answer");
    }
    assert!(seen.iter().all(|&s| s), "an answer is missing");
    let (ring, marked) = answer_paths();
    assert!(
        ring > ring_before && marked > marked_before,
        "both paths ran"
    );
}

/// True where the kernel offers membarrier(2)'s global expedited barrier:
/// reused workers then publish without a fence of their own.
fn barriers_offered() -> bool {
    const QUERY: libc::c_int = 0;
    const GLOBAL_EXPEDITED: libc::c_long = 1 << 1;
    // SAFETY: membarrier's query touches no memory.
    let offered = unsafe { libc::syscall(libc::SYS_membarrier, QUERY, 0u32, 0 as libc::c_int) };
    offered > 0 && offered & GLOBAL_EXPEDITED != 0
}

/// The wake-up handshake under load: the creator keeps a few tasks in
/// flight (so the worker stays) and waits for each answer alone, so it goes
/// to sleep on the worker's socket while the worker is publishing,
/// thousands of times. A lost wake-up leaves it asleep with the answer
/// published: the wait times out.
#[test]
fn a_creator_that_sleeps_for_every_answer_is_woken_every_time() {
    let _watchdog = Watchdog::new("sleeping creator", Duration::from_secs(120));
    const TASKS: u64 = 20_000;
    const IN_FLIGHT: u64 = 4;
    let mut queue = Queue::with_options(1, reuse());
    // Answers at once or after a short spin, so the worker publishes at
    // every instant of the creator's way to sleep.
    let echo = queue.manage_function(|x: &[u8]| {
        let i = u64::from_le_bytes(x.try_into().unwrap());
        for _ in 0..(i % 7) * 300 {
            std::hint::spin_loop();
        }
        Ok(x.to_vec())
    });
    let (ring_before, _) = answer_paths();
    let barriers_before = pprocess::channel::wake_barriers();
    for i in 0..TASKS + IN_FLIGHT {
        if i < TASKS {
            echo.call(&mut queue, &i.to_le_bytes()).unwrap();
        }
        if i < IN_FLIGHT {
            continue;
        }
        let oldest = i - IN_FLIGHT;
        match queue.next_result(10_000) {
            Ok((task, outcome)) => {
                assert_eq!(task.index() as u64, oldest);
                assert_eq!(outcome.unwrap(), oldest.to_le_bytes());
            }
            Err(e) => panic!("task {oldest}: {e} (a lost wake-up)"),
        }
    }
    assert!(answer_paths().0 >= ring_before + TASKS, "through the ring");
    if barriers_offered() {
        let barriers = pprocess::channel::wake_barriers() - barriers_before;
        assert!(
            barriers > 1_000,
            "the worker publishes without a fence ({barriers} barriers)"
        );
    }
}
