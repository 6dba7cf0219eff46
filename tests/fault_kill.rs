//! Children killed while they send, through one exchange: each killed task is
//! reported as ended by its signal, every other task's result is intact,
//! nothing hangs.
//!
//! Kill points are random and cover every part of a frame: before the first
//! byte, inside the 16-byte header, inside the payload, between two pieces
//! of a frame written slowly. Half the victims kill themselves at an exact
//! byte offset; the other half are killed by the parent at a random moment
//! while they trickle a large frame out.
#![cfg(feature = "std")]

mod fork_contract;

mod hardening;

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hardening::wire_model::{frame, frame_for, DATA, ERROR, HEADER};
use hardening::{seed, Rng, Watchdog};
use pprocess::exchange::{CreatedTask, TaskError};
use pprocess::{exit, Channel, Error, Map, Options, Queue, RemoteError, TaskId};

const VICTIMS: usize = 1000;
const SURVIVORS: usize = 500;
const LIMIT: usize = 16;

/// What one task's process does.
#[derive(Clone, Copy, Debug)]
enum Plan {
    /// Sends its whole frame (`len` payload bytes) in pieces, then exits 0.
    Survive { len: usize },
    /// Writes the first `cut` bytes of its frame (`len` payload bytes), then
    /// kills itself.
    Suicide { len: usize, cut: usize },
    /// Writes the first `cut` bytes of a frame too long to finish, then
    /// trickles the rest until the parent kills it after `after_us`.
    Killed { cut: usize, after_us: u64 },
}

/// The payload task number `task` sends: its number, then bytes only it
/// would send.
fn payload(task: usize, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(task as u64 ^ 0x5eed);
    let mut bytes = rng.bytes(len.max(8));
    bytes[..8].copy_from_slice(&(task as u64).to_le_bytes());
    bytes.truncate(len.max(8));
    bytes
}

/// Writes `bytes` on the channel's socket in random pieces, with short
/// pauses, bypassing the channel's own framing.
fn write_pieces(ch: &Channel, bytes: &[u8], rng: &mut Rng) {
    let mut rest = bytes;
    while !rest.is_empty() {
        let piece = (rng.range(1, 4096) as usize).min(rest.len());
        // SAFETY: writing a valid buffer to this process's own socket.
        let n = unsafe { libc::write(ch.raw_fd(), rest.as_ptr().cast(), piece) };
        if n <= 0 {
            return; // the parent is gone: nothing left to do
        }
        rest = &rest[n as usize..];
        if rng.chance(1, 4) {
            std::thread::sleep(Duration::from_micros(rng.below(200)));
        }
    }
}

fn kill_self() -> ! {
    // SAFETY: killing this very process.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    unreachable!("SIGKILL cannot be caught");
}

/// The body of task number `task`'s process.
fn run_child(ch: Channel, task: usize, plan: Plan) -> ! {
    let mut rng = Rng::new(task as u64);
    match plan {
        Plan::Survive { len } => {
            write_pieces(&ch, &frame(DATA, 0, 1, &payload(task, len)), &mut rng);
            exit(ch, 0)
        }
        Plan::Suicide { len, cut } => {
            write_pieces(
                &ch,
                &frame(DATA, 0, 1, &payload(task, len))[..cut],
                &mut rng,
            );
            kill_self()
        }
        Plan::Killed { cut, .. } => {
            // Claims 1 MiB, writes `cut` bytes, then a byte at a time: the
            // parent kills it long before the frame could end.
            let mut whole = frame(DATA, 0, 1, &[]);
            whole[8..12].copy_from_slice(&(1u32 << 20).to_le_bytes());
            whole.resize(16 + (1 << 20), 0x5a);
            write_pieces(&ch, &whole[..cut], &mut rng);
            for byte in whole[cut..].chunks(1) {
                // SAFETY: writing a valid buffer to this process's own socket.
                unsafe { libc::write(ch.raw_fd(), byte.as_ptr().cast(), 1) };
                std::thread::sleep(Duration::from_micros(50));
            }
            kill_self() // not reached in time; keeps the task a victim regardless
        }
    }
}

fn plans(rng: &mut Rng) -> Vec<Plan> {
    let mut plans = Vec::new();
    for i in 0..VICTIMS + SURVIVORS {
        let len = match rng.below(3) {
            0 => rng.range(8, 64),
            1 => rng.range(1000, 1100), // around the receiver's read-ahead
            _ => rng.range(8, 100_000),
        } as usize;
        let plan = if i < SURVIVORS {
            Plan::Survive { len }
        } else if i % 2 == 0 {
            let total = 16 + len;
            // Before anything, inside the header, inside the payload.
            let cut = match rng.below(4) {
                0 => 0,
                1 => rng.range(1, 15) as usize,
                _ => rng.range(16, total as u64 - 1) as usize,
            };
            Plan::Suicide { len, cut }
        } else {
            let cut = match rng.below(3) {
                0 => 0,
                1 => rng.range(1, 15) as usize,
                _ => rng.range(16, 5000) as usize,
            };
            Plan::Killed {
                cut,
                after_us: rng.range(0, 3000),
            }
        };
        plans.push(plan);
    }
    // Shuffle (Fisher-Yates) so victims and survivors interleave.
    for i in (1..plans.len()).rev() {
        plans.swap(i, rng.below(i as u64 + 1) as usize);
    }
    plans
}

#[test]
fn killed_senders_fail_alone_and_never_hang() {
    let _watchdog = Watchdog::new("the kill storm", Duration::from_secs(300));
    let started = Instant::now();
    let plans = plans(&mut Rng::new(seed("PP_KILL_SEED", 6)));

    // The parent's killer: kills each pid it is handed once its delay passed.
    let (to_killer, orders) = mpsc::channel::<(i32, u64)>();
    let killer = std::thread::spawn(move || {
        let mut killed = 0;
        for (pid, after_us) in orders {
            std::thread::sleep(Duration::from_micros(after_us));
            // SAFETY: kill has no memory-safety preconditions; the pid is a
            // child that cannot have been collected before this kill (it
            // never exits by itself).
            assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
            killed += 1;
        }
        killed
    });

    let mut queue = Queue::with_options(LIMIT, Options::default());
    let mut pids = BTreeMap::new();
    for (index, plan) in plans.iter().enumerate() {
        match queue.create().unwrap() {
            CreatedTask::Child(ch) => run_child(ch, index, *plan),
            CreatedTask::Parent { pid, task } => {
                assert_eq!(task.index(), index);
                pids.insert(task, pid);
                if let Plan::Killed { after_us, .. } = plan {
                    to_killer.send((pid, *after_us)).unwrap();
                }
            }
        }
    }
    let mut outcomes = BTreeMap::new();
    while let Ok((task, outcome)) = queue.next_result(-1) {
        assert!(
            outcomes.insert(task, outcome).is_none(),
            "task {task} twice"
        );
    }
    drop(to_killer);
    let externally_killed = killer.join().unwrap();
    drop(queue);

    let mut killed = 0;
    // Where the self-killed ones stopped: before a byte, in the header, in the payload.
    let mut cuts = [0; 3];
    for (task, plan) in plans.iter().enumerate() {
        let outcome = outcomes
            .get(&TaskId::new(task))
            .unwrap_or_else(|| panic!("task {task}: no outcome"));
        match (plan, outcome) {
            (Plan::Survive { len }, Ok(bytes)) => {
                assert!(
                    *bytes == payload(task, *len),
                    "task {task}: result corrupted"
                );
            }
            (
                Plan::Suicide { .. } | Plan::Killed { .. },
                Err(TaskError {
                    error: Error::PeerEnded { pid, status },
                    remote: None,
                }),
            ) if *pid == pids[&TaskId::new(task)] && status.signal() == Some(libc::SIGKILL) => {
                killed += 1;
                if let Plan::Suicide { cut, .. } = plan {
                    cuts[usize::from(*cut > 0) + usize::from(*cut >= 16)] += 1;
                }
            }
            (plan, outcome) => panic!("task {task} ({plan:?}): {outcome:?}"),
        }
    }
    assert_eq!(killed, VICTIMS);
    assert_eq!(externally_killed, VICTIMS / 2);
    eprintln!(
        "{killed} children killed: {} before their first byte, {} in the header, {} in the \
         payload, {externally_killed} by the parent while trickling a frame; \
         {SURVIVORS} results intact; {:?}",
        cuts[0],
        cuts[1],
        cuts[2],
        started.elapsed()
    );
}

/// A reused worker's body: input `[1, ..]` makes it die in the middle of its
/// answer's frame; any other input is echoed.
fn echo_or_die(ch: &mut Channel, input: &[u8]) -> Result<(), RemoteError> {
    if input[0] == 1 {
        // Flagged as a task's last result, naming the task (started in
        // input order: task i's frames carry i + 1).
        let task = u32::from_le_bytes(input[2..6].try_into().unwrap());
        let whole = frame_for(DATA, 2, 1, u64::from(task) + 1, &[7; 5000]);
        // Answers a batching worker holds go first, as the channel would send them.
        ch.flush().map_err(RemoteError::from)?;
        let cut = 1 + usize::from(input[1]) * 19 % (whole.len() - 1);
        // SAFETY: writing a valid buffer to this process's own socket.
        unsafe { libc::write(ch.raw_fd(), whole.as_ptr().cast(), cut) };
        kill_self();
    }
    ch.send(input).map_err(RemoteError::from)
}

/// A reused worker's body: input `[1, ..]` kills it at once, with the
/// answers it holds unwritten; any other input is echoed.
fn echo_or_die_holding(ch: &mut Channel, input: &[u8]) -> Result<(), RemoteError> {
    match input[0] {
        1 => kill_self(),
        // SAFETY: ends this process at once, without flushing anything.
        2 => unsafe { libc::_exit(3) },
        _ => ch.send(input).map_err(RemoteError::from),
    }
}

/// The callable of [`start_killers`]' tasks.
type Body = fn(&mut Channel, &[u8]) -> Result<(), RemoteError>;

/// Starts 2,000 `body` tasks in a map of reused workers; one in `one_in`
/// kills its worker (input `[1, ..]`). Returns the map and the inputs, by task.
fn start_killers(limit: usize, body: Body, one_in: u64, seed_value: u64) -> (Map, Vec<Vec<u8>>) {
    let mut rng = Rng::new(seed("PP_KILL_SEED", seed_value));
    let options = Options {
        reuse: true,
        ..Options::default()
    };
    let mut map = Map::with_options(limit, options);
    let mut inputs = Vec::new();
    let echo = map.manage(body);
    for i in 0..2000u32 {
        let die = rng.chance(1, one_in);
        let mut input = vec![u8::from(die), rng.next_u64() as u8];
        input.extend_from_slice(&i.to_le_bytes());
        echo.call(&mut map, &input).unwrap();
        inputs.push(input);
    }
    (map, inputs)
}

/// Checks that every task of `map` started by [`start_killers`] with a
/// `[0, ..]` input echoed it and every task with `[1, ..]` was killed, and
/// nothing else; returns how many were killed.
fn only_the_killers_failed(map: &mut Map, inputs: &[Vec<u8>]) -> usize {
    let mut deaths = 0;
    for (task, outcome) in map.by_ref().enumerate() {
        let input = &inputs[task];
        match outcome {
            Ok(bytes) if input[0] == 0 => assert_eq!(bytes, *input, "task {task}"),
            Err(TaskError {
                error: Error::PeerEnded { status, .. },
                ..
            }) if input[0] == 1 && status.signal() == Some(libc::SIGKILL) => deaths += 1,
            other => panic!("task {task} ({input:?}): {other:?}"),
        }
    }
    let expected = inputs.iter().filter(|i| i[0] == 1).count();
    assert_eq!(deaths, expected);
    deaths
}

#[test]
fn killed_reused_workers_fail_only_their_current_task() {
    let _watchdog = Watchdog::new("killed reused workers", Duration::from_secs(300));
    let (mut map, inputs) = start_killers(4, echo_or_die, 10, 7);
    let deaths = only_the_killers_failed(&mut map, &inputs);
    eprintln!("{deaths} reused workers killed mid-frame, every other task intact");
}

/// Regression: a worker that died after answering a task, when the exchange
/// next tried to hand it a task, was retired at once: its answer, already in
/// its socket, was lost (that task reported as killed) and the task it died
/// in ran again, killing a second worker.
#[test]
fn a_dead_workers_earlier_answers_are_kept() {
    fn echo_or_die_now(ch: &mut Channel, input: &[u8]) -> Result<(), RemoteError> {
        if input[0] == 1 {
            kill_self();
        }
        ch.send(input).map_err(RemoteError::from)
    }
    let options = Options {
        reuse: true,
        ..Options::default()
    };
    let mut map = Map::with_options(1, options);
    let echo = map.manage(echo_or_die_now);
    echo.call(&mut map, &[0, 0]).unwrap();
    echo.call(&mut map, &[1, 1]).unwrap();
    // The worker answers task 0 and dies in task 1; then a task is added.
    std::thread::sleep(Duration::from_millis(200));
    echo.call(&mut map, &[0, 2]).unwrap();
    let outcomes: Vec<_> = map.by_ref().collect();
    assert_eq!(outcomes[0], Ok(vec![0, 0]));
    assert!(
        matches!(outcomes[1], Err(TaskError { error: Error::PeerEnded { status, .. }, .. })
            if status.signal() == Some(libc::SIGKILL)),
        "{:?}",
        outcomes[1]
    );
    assert_eq!(outcomes[2], Ok(vec![0, 2]));
}

/// Regression: a created process killed in the middle of a frame was a
/// protocol error (`Truncated`), not a process that ended by its signal.
#[test]
fn a_child_killed_mid_frame_is_reported_with_its_signal() {
    let mut ch = pprocess::start(|ch| {
        let whole = frame(DATA, 0, 1, &[1; 100]);
        // SAFETY: writing a valid buffer to this process's own socket.
        unsafe { libc::write(ch.raw_fd(), whole.as_ptr().cast(), 50) };
        kill_self()
    })
    .unwrap();
    match ch.receive_vec() {
        Err(Error::PeerEnded { pid, status }) => {
            assert_eq!(pid, ch.pid());
            assert_eq!(status.signal(), Some(libc::SIGKILL));
        }
        other => panic!("{other:?}"),
    }
    // A process that exits normally in mid-frame still broke the protocol.
    let mut ch = pprocess::start(|ch| {
        let whole = frame(DATA, 0, 1, &[1; 100]);
        // SAFETY: writing a valid buffer to this process's own socket.
        unsafe { libc::write(ch.raw_fd(), whole.as_ptr().cast(), 10) };
        Ok(())
    })
    .unwrap();
    assert_eq!(
        ch.receive_vec(),
        Err(Error::Protocol(pprocess::wire::ProtoError::Truncated))
    );
}

/// With a stalled child's partial frame already in `queue`: starts a task
/// that answers 0.1 s later and checks that its answer comes first. Returns
/// its task id.
fn talker_answers_first(queue: &mut Queue) -> TaskId {
    // Let the partial frame arrive alone, so an exchange store serves it
    // before the talker has anything to say.
    assert_eq!(queue.next_result(300).unwrap_err(), Error::TimedOut);
    let talker = queue
        .start(|ch| {
            std::thread::sleep(Duration::from_millis(100));
            Ok(ch.send(b"spoken")?)
        })
        .unwrap();
    // Within the 20 s the call waits at most (no duration is asserted).
    let (task, outcome) = queue.next_result(20_000).unwrap();
    assert_eq!((task, outcome), (talker, Ok(b"spoken".to_vec())));
    talker
}

/// Regression: serving a channel whose peer had sent only part of a frame
/// header blocked the whole exchange until that peer sent more or died.
#[test]
fn a_child_stalled_mid_header_holds_up_no_other_result() {
    let _watchdog = Watchdog::new("a stalled header", Duration::from_secs(60));
    let mut queue = Queue::with_options(2, Options::default());
    let stalled = queue
        .start(|ch| {
            let whole = frame(DATA, 0, 1, &[7; 8]);
            // SAFETY: writing a valid buffer to this process's own socket.
            unsafe { libc::write(ch.raw_fd(), whole.as_ptr().cast(), 5) };
            // Stall until the queue is dropped (which kills this process).
            std::thread::sleep(Duration::from_secs(120));
            Ok(())
        })
        .unwrap();
    let talker = talker_answers_first(&mut queue);
    assert_eq!(queue.next_result(100).unwrap_err(), Error::TimedOut);
    assert_ne!(stalled, talker);
}

/// Regression: a zero-timeout read that found an error frame's header read
/// its payload with a blocking read, so a peer that stalled after the header
/// blocked the whole exchange; now the frame stays buffered until it is whole.
#[test]
fn a_child_stalled_mid_error_frame_holds_up_no_other_result() {
    let _watchdog = Watchdog::new("a stalled error frame", Duration::from_secs(60));
    let mut payload = 7i32.to_le_bytes().to_vec();
    payload.extend_from_slice(b"stalled in the middle");
    let whole = frame(ERROR, 0, 1, &payload);
    let mut queue = Queue::with_options(2, Options::default());
    let stalled = queue
        .start(move |ch| {
            // The header and part of the payload, then the rest much later.
            let cut = HEADER + 5;
            // SAFETY: writing a valid buffer to this process's own socket.
            unsafe { libc::write(ch.raw_fd(), whole.as_ptr().cast(), cut) };
            std::thread::sleep(Duration::from_millis(1500));
            // SAFETY: as above.
            unsafe { libc::write(ch.raw_fd(), whole[cut..].as_ptr().cast(), whole.len() - cut) };
            std::thread::sleep(Duration::from_secs(120));
            Ok(())
        })
        .unwrap();
    talker_answers_first(&mut queue);
    // The stalled frame, once whole, is that task's failure.
    let (task, outcome) = queue.next_result(20_000).unwrap();
    assert_eq!(task, stalled);
    let failure = outcome.unwrap_err();
    assert_eq!(failure.error, Error::Remote { code: 7 });
    assert_eq!(failure.remote.unwrap().message(), "stalled in the middle");
}

/// Issue 12, defect 7: a child that sent a data frame's header and part of
/// its payload, then stalled, held up the whole exchange in a blocking read
/// of the rest (other tasks' results were not handed out). Now the payload
/// is read as it arrives, across poll rounds, and served once whole.
#[test]
fn a_child_stalled_mid_payload_holds_up_no_other_result() {
    let _watchdog = Watchdog::new("a stalled payload", Duration::from_secs(60));
    // Within the read-ahead buffer, and far beyond it.
    for len in [100, 200_000] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let whole = frame(DATA, 0, 1, &payload);
        let mut queue = Queue::with_options(2, Options::default());
        let stalled = queue
            .start(move |ch| {
                let cut = HEADER + 10;
                // SAFETY: writing a valid buffer to this process's own socket.
                unsafe { libc::write(ch.raw_fd(), whole.as_ptr().cast(), cut) };
                std::thread::sleep(Duration::from_millis(1500));
                write_all(ch, &whole[cut..]);
                std::thread::sleep(Duration::from_secs(120));
                Ok(())
            })
            .unwrap();
        talker_answers_first(&mut queue);
        // The stalled message, once whole, is that task's result.
        let (task, outcome) = queue.next_result(20_000).unwrap();
        assert_eq!(task, stalled);
        assert_eq!(outcome.unwrap(), payload, "{len} bytes");
    }
}

/// Writes all of `bytes` on the channel's socket, bypassing its framing.
fn write_all(ch: &Channel, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writing a valid buffer to this process's own socket.
        let n = unsafe { libc::write(ch.raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

/// A worker killed while it holds the answers of the quick tasks before
/// the one it dies in (a chunk's answers go out in one write) loses none of
/// them: they are mirrored in memory shared with the creator, which reads
/// them from there. Exactly the tasks that killed their workers fail.
/// (Regression: with the old `batch` option those answers were lost, and
/// their tasks failed with the worker.)
#[test]
fn killed_workers_lose_no_answer_they_held() {
    let _watchdog = Watchdog::new("killed workers holding answers", Duration::from_secs(300));
    for (limit, seed_value) in [(1, 11), (2, 12), (3, 13)] {
        let (mut map, inputs) = start_killers(limit, echo_or_die_holding, 50, seed_value);
        let deaths = only_the_killers_failed(&mut map, &inputs);
        eprintln!("limit {limit}: {deaths} workers killed holding answers, none lost");
    }
}

/// The same for a worker that ends itself with `_exit`, which writes nothing
/// it held: every answer it computed arrives, only its task fails.
#[test]
fn a_worker_that_exits_abruptly_loses_no_answer_it_held() {
    let _watchdog = Watchdog::new("abrupt exits", Duration::from_secs(120));
    let options = Options {
        reuse: true,
        ..Options::default()
    };
    let mut map = Map::with_options(1, options);
    let echo = map.manage(echo_or_die_holding);
    // One worker at a time; every 37th task exits, most of them after
    // quick tasks of the same chunk whose answers it holds.
    let exits = |i: u32| i % 37 == 36;
    let inputs: Vec<Vec<u8>> = (0..400u32)
        .map(|i| {
            [u8::from(exits(i)) * 2]
                .into_iter()
                .chain(i.to_le_bytes())
                .collect()
        })
        .collect();
    for input in &inputs {
        echo.call(&mut map, input).unwrap();
    }
    for (task, outcome) in map.by_ref().enumerate() {
        match outcome {
            Ok(bytes) => assert_eq!(bytes, inputs[task], "task {task}"),
            Err(TaskError {
                error: Error::PeerEnded { status, .. },
                ..
            }) if exits(task as u32) => assert_eq!(status.exit_code(), Some(3)),
            other => panic!("task {task}: {other:?}"),
        }
    }
}
