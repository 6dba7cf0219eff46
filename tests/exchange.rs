//! Exchanges, queues, maps, pmap, reuse and continuous tasks.

mod fork_contract;
mod hardening;

use std::collections::BTreeSet;

use hardening::Watchdog;

use pprocess::exchange::{Fixed, Growable, Results, TaskError};
use pprocess::{
    pmap, start, Channel, Error, Exchange, Map, Options, Outcome, Queue, RemoteError, StoreData,
    TaskId,
};

fn sleep_ms(ms: u64) {
    std::thread::sleep(std::time::Duration::from_millis(ms));
}

fn num(outcome: &Outcome) -> u64 {
    let bytes = outcome.as_ref().expect("task succeeded");
    u64::from_le_bytes(bytes[..8].try_into().unwrap())
}

/// Live (non-zombie) children of this process's parent: the caller's siblings.
fn live_siblings() -> usize {
    // SAFETY: getppid cannot fail.
    let parent = unsafe { libc::getppid() }.to_string();
    process_stats()
        .filter(|stat| {
            let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
            let mut fields = rest.split(' ');
            let state = fields.next();
            state != Some("Z") && fields.next() == Some(parent.as_str())
        })
        .count()
}

/// The `stat` line of every process (numeric /proc entries only: `self` and
/// `thread-self` would count the caller again).
fn process_stats() -> impl Iterator<Item = String> {
    std::fs::read_dir("/proc").unwrap().filter_map(|e| {
        let e = e.ok()?;
        e.file_name().to_str()?.parse::<u32>().ok()?;
        std::fs::read_to_string(e.path().join("stat")).ok()
    })
}

/// Runs `body` in a separate process so that its exchange's children are the
/// only children there, and returns what it sends back.
fn isolated(body: fn() -> Vec<u8>) -> Vec<u8> {
    let mut ch = start(move |ch| {
        let out = body();
        ch.send(&out)?;
        Ok(())
    })
    .unwrap();
    let out = ch.receive_vec().unwrap();
    assert!(ch.wait().unwrap().success());
    out
}

#[test]
fn the_limit_is_never_exceeded_seen_from_the_children() {
    for reuse in [false, true] {
        let body = if reuse { reuse_body } else { fresh_body };
        let max = isolated(body);
        let max = u64::from_le_bytes(max[..8].try_into().unwrap());
        assert!(max <= 3, "reuse={reuse}: {max} children alive at once");
        assert!(
            max >= 2,
            "reuse={reuse}: tasks 0 and 1 never ran at once ({max})"
        );
    }
    fn run(options: Options) -> Vec<u8> {
        let pipes = [pipe(), pipe()];
        let mut map = Map::with_options(3, options);
        for task in 0..12u8 {
            map.call(
                move |input| {
                    let count = match input[0] {
                        // Tasks 0 and 1 count while both surely run.
                        me @ (0 | 1) => meet(me.into(), pipes),
                        _ => {
                            sleep_ms(20);
                            live_siblings()
                        }
                    };
                    Ok((count as u64).to_le_bytes().to_vec())
                },
                &[task],
            )
            .unwrap();
        }
        let max = map.map(|o| num(&o)).max().unwrap();
        for fd in pipes.into_iter().flatten() {
            // SAFETY: closing this process's own pipe ends.
            unsafe { libc::close(fd) };
        }
        max.to_le_bytes().to_vec()
    }
    /// Task `me` (0 or 1) meets the other: it says it runs and waits for
    /// the other to say so, counts the live processes, then says it has
    /// counted and waits for the same: the other cannot end before this
    /// count. 0 if the other never came (30 s).
    fn meet(me: usize, pipes: [[i32; 2]; 2]) -> usize {
        let (mine, theirs) = (pipes[me], pipes[1 - me]);
        if !signal_and_wait(mine[1], theirs[0]) {
            return 0;
        }
        let count = live_siblings();
        match signal_and_wait(mine[1], theirs[0]) {
            true => count,
            false => 0,
        }
    }
    fn signal_and_wait(write_end: i32, read_end: i32) -> bool {
        let mut fd = libc::pollfd {
            fd: read_end,
            events: libc::POLLIN,
            revents: 0,
        };
        let mut byte = [1u8];
        // SAFETY: valid buffers and a pollfd, on this test's own pipes.
        unsafe {
            libc::write(write_end, byte.as_ptr().cast(), 1) == 1
                && libc::poll(&mut fd, 1, 30_000) == 1
                && libc::read(read_end, byte.as_mut_ptr().cast(), 1) == 1
        }
    }
    fn pipe() -> [i32; 2] {
        let mut fds = [0; 2];
        // SAFETY: pipe writes two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        fds
    }
    fn fresh_body() -> Vec<u8> {
        run(Options::default())
    }
    fn reuse_body() -> Vec<u8> {
        run(Options {
            reuse: true,
            ..Options::default()
        })
    }
}

#[test]
fn the_waiting_list_drains_in_order() {
    let mut map = Map::with_options(2, Options::default());
    for i in 0..20u64 {
        map.start_with(
            |ch, arg| {
                ch.send(arg)?;
                Ok(())
            },
            &i.to_le_bytes(),
        )
        .unwrap();
    }
    assert_eq!(map.active_count(), 2);
    assert_eq!(map.waiting(), 18);
    assert!(map.busy() && map.unfinished());
    let got: Vec<u64> = map.by_ref().map(|o| num(&o)).collect();
    assert_eq!(got, (0..20).collect::<Vec<_>>());
    map.finish().unwrap();
    assert!(!map.unfinished());
    assert_eq!(map.active_count(), 0);
}

fn shuffled_delay(input: &[u8]) -> Result<Vec<u8>, RemoteError> {
    let n = u64::from_le_bytes(input.try_into().unwrap());
    sleep_ms((n * 7) % 10 * 3);
    Ok((n * n).to_le_bytes().to_vec())
}

#[test]
fn map_keeps_start_order_despite_shuffled_durations() {
    for reuse in [false, true] {
        let inputs: Vec<[u8; 8]> = (0..30u64).map(u64::to_le_bytes).collect();
        let options = Options {
            reuse,
            ..Options::default()
        };
        let map = pmap(shuffled_delay, &inputs, 4, options).unwrap();
        let got: Vec<u64> = map.map(|o| num(&o)).collect();
        let want: Vec<u64> = (0..30u64).map(|n| n * n).collect();
        assert_eq!(got, want, "reuse={reuse}");
    }
}

#[test]
fn map_indexing_waits_only_for_the_result_asked_for() {
    // Waiting for task 0, which never ends, would be a hang.
    let _watchdog = Watchdog::new("map.get(1)", std::time::Duration::from_secs(120));
    let mut map = Map::with_options(4, Options::default());
    map.call(
        |_| loop {
            std::thread::park();
        },
        &[],
    )
    .unwrap();
    let second = map.call(|_| Ok(vec![1]), &[]).unwrap();
    assert_eq!(second, TaskId::new(1));
    assert_eq!(map.get(second).unwrap().as_ref().unwrap(), &[1]);
    assert_eq!(map.get(TaskId::new(7)), Err(Error::Done));
    // Dropping the map kills task 0's process and collects it.
}

#[test]
fn queue_yields_every_result_exactly_once() {
    let mut queue = Queue::with_options(3, Options::default());
    for i in 0..40u64 {
        queue
            .call(move |_| Ok(i.to_le_bytes().to_vec()), &[])
            .unwrap();
    }
    let mut seen = Vec::new();
    for outcome in queue.by_ref() {
        seen.push(num(&outcome));
    }
    seen.sort();
    assert_eq!(seen, (0..40).collect::<Vec<_>>());
    assert_eq!(queue.next_result(0).unwrap_err(), Error::Done);
}

fn worker_pid(input: &[u8]) -> Result<Vec<u8>, RemoteError> {
    let mut out = input.to_vec();
    out.extend_from_slice(&std::process::id().to_le_bytes());
    Ok(out)
}

#[test]
fn reuse_runs_many_tasks_in_few_workers() {
    for limit in [1usize, 3] {
        let inputs: Vec<[u8; 8]> = (0..500u64).map(u64::to_le_bytes).collect();
        let options = Options {
            reuse: true,
            ..Options::default()
        };
        let map = pmap(worker_pid, &inputs, limit, options).unwrap();
        let mut pids = BTreeSet::new();
        for (i, outcome) in map.enumerate() {
            let bytes = outcome.unwrap();
            assert_eq!(u64::from_le_bytes(bytes[..8].try_into().unwrap()), i as u64);
            pids.insert(u32::from_le_bytes(bytes[8..12].try_into().unwrap()));
        }
        assert!(pids.len() <= limit, "limit {limit}: {} workers", pids.len());
    }
}

#[test]
fn continuous_tasks_send_many_results() {
    for reuse in [false, true] {
        let options = Options {
            reuse,
            continuous: true,
            ..Options::default()
        };
        let mut queue = Queue::with_options(2, options);
        for task in 0..6u8 {
            queue
                .start_with(
                    |ch, arg| {
                        for k in 0..=arg[0] {
                            ch.send(&[arg[0], k])?;
                        }
                        Ok(())
                    },
                    &[task],
                )
                .unwrap();
        }
        let mut got: Vec<(u8, u8)> = queue
            .map(|o| {
                let b = o.unwrap();
                (b[0], b[1])
            })
            .collect();
        got.sort();
        let want: Vec<(u8, u8)> = (0..6u8)
            .flat_map(|t| (0..=t).map(move |k| (t, k)))
            .collect();
        assert_eq!(got, want, "reuse={reuse}");
    }
}

fn die_on_seven(input: &[u8]) -> Result<Vec<u8>, RemoteError> {
    if input[0] == 7 {
        // SAFETY: killing our own process.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    sleep_ms(2);
    Ok(input.to_vec())
}

#[test]
fn a_killed_worker_fails_only_its_own_task() {
    for reuse in [false, true] {
        let inputs: Vec<[u8; 1]> = (0..40u8).map(|i| [i]).collect();
        let options = Options {
            reuse,
            ..Options::default()
        };
        let map = pmap(die_on_seven, &inputs, 3, options).unwrap();
        for (i, outcome) in map.enumerate() {
            if i == 7 {
                match outcome {
                    Err(TaskError {
                        error: Error::PeerEnded { status, .. },
                        ..
                    }) => assert_eq!(status.signal(), Some(libc::SIGKILL)),
                    other => panic!("reuse={reuse}: task 7 gave {other:?}"),
                }
            } else {
                assert_eq!(outcome.unwrap(), vec![i as u8], "reuse={reuse} task {i}");
            }
        }
    }
}

#[test]
fn a_function_error_is_that_tasks_outcome() {
    fn odd_fails(input: &[u8]) -> Result<Vec<u8>, RemoteError> {
        if input[0] % 2 == 1 {
            Err(RemoteError::new(input[0] as i32, "odd input"))
        } else {
            Ok(input.to_vec())
        }
    }
    for reuse in [false, true] {
        let inputs: Vec<[u8; 1]> = (0..10u8).map(|i| [i]).collect();
        let options = Options {
            reuse,
            ..Options::default()
        };
        for (i, outcome) in pmap(odd_fails, &inputs, 2, options).unwrap().enumerate() {
            if i % 2 == 1 {
                let err = outcome.unwrap_err();
                assert_eq!(err.error, Error::Remote { code: i as i32 });
                assert_eq!(err.remote.unwrap().message(), "odd input");
            } else {
                assert_eq!(outcome.unwrap(), vec![i as u8]);
            }
        }
    }
}

/// Calls 12 tasks of `odd_fails_or_grows` in `exchange` and takes every
/// result with `next_result_with`, lent to `check`: what it returned, in
/// order. Then nothing is left.
fn lend_all<H: Results>(
    exchange: &mut Exchange<Growable, H>,
    check: &mut impl FnMut(TaskId, Result<&[u8], &TaskError>) -> u8,
) -> Vec<u8> {
    let f = exchange.manage_function(odd_fails_or_grows);
    for n in 0..12u8 {
        f.call(exchange, &[n]).unwrap();
    }
    let mut order = Vec::new();
    while let Ok(n) = exchange.next_result_with(-1, &mut *check) {
        order.push(n);
    }
    assert_eq!(exchange.next_result_with(-1, |_, _| ()), Err(Error::Done));
    assert_eq!(
        exchange.next_result(0),
        Err(Error::Done),
        "a result left behind"
    );
    order
}

/// Task `input[0]`'s answer: its error when odd, else a message whose
/// length grows with it (small ones kept inline, larger ones whole).
fn odd_fails_or_grows(input: &[u8]) -> Result<Vec<u8>, RemoteError> {
    match input[0] % 2 {
        1 => Err(RemoteError::new(input[0] as i32, "odd input")),
        _ => Ok(vec![input[0]; 1 + usize::from(input[0]) * 10]),
    }
}

#[test]
fn next_result_with_lends_each_result_once_and_takes_it() {
    for (reuse, map) in [(false, false), (true, false), (true, true)] {
        let options = Options {
            reuse,
            ..Options::default()
        };
        let mut seen = BTreeSet::new();
        let mut check = |task: TaskId, result: Result<&[u8], &TaskError>| {
            let n = task.index() as u8;
            match result {
                Ok(bytes) => assert_eq!(bytes, vec![n; 1 + usize::from(n) * 10]),
                Err(failure) => {
                    assert_eq!(n % 2, 1, "task {n} failed: {failure}");
                    assert_eq!(failure.error, Error::Remote { code: i32::from(n) });
                }
            }
            assert!(seen.insert(n), "task {n} lent twice");
            n
        };
        let order = match map {
            true => lend_all(&mut Map::with_options(2, options), &mut check),
            false => lend_all(&mut Queue::with_options(2, options), &mut check),
        };
        if map {
            // A map lends them in start order.
            assert_eq!(order, (0..12).collect::<Vec<u8>>());
        }
        assert_eq!(seen.len(), 12, "reuse {reuse}, map {map}: {order:?}");
    }
}

#[test]
fn a_panicking_task_reports_its_message() {
    let mut queue = Queue::with_options(1, Options::default());
    queue.call(|_| panic!("task panicked"), &[]).unwrap();
    let err = queue.next().unwrap().unwrap_err();
    assert_eq!(err.remote.unwrap().message(), "task panicked");
}

/// A store handler that sums u64 messages per task.
#[derive(Default)]
struct Sum {
    total: u64,
    messages: usize,
    failed: Vec<TaskId>,
}

impl StoreData for Sum {
    fn store_data(&mut self, channel: &mut Channel, _task: TaskId) -> pprocess::Result<()> {
        self.total += channel.receive_value::<u64>()?;
        self.messages += 1;
        Ok(())
    }

    fn store_error(&mut self, task: TaskId, _error: Error, _remote: Option<&RemoteError>) {
        self.failed.push(task);
    }
}

#[test]
fn a_fixed_exchange_needs_no_allocator_for_its_channels() {
    let mut ex: Exchange<Fixed<4>, Sum> = Exchange::new(2, Options::default(), Sum::default());
    assert_eq!(ex.limit(), 2);
    for i in 1..=10u64 {
        // create: fork-style inside the exchange, waiting below the limit.
        if let pprocess::exchange::CreatedTask::Child(mut ch) = ex.create().unwrap() {
            ch.send_value(&i).unwrap();
            pprocess::exit(ch, 0);
        }
        assert!(ex.active_count() <= 2);
    }
    ex.finish().unwrap();
    assert_eq!(ex.handler().total, 55);
    assert_eq!(ex.handler().messages, 10);
    assert!(ex.handler().failed.is_empty());
    // The storage holds 4: a fifth add hands the channel back.
    for _ in 0..4 {
        ex.add(start(|_| Ok(())).unwrap()).unwrap();
    }
    let extra = start(|_| Ok(())).unwrap();
    assert!(ex.add(extra).is_err());
    assert!(ex.busy());
    ex.finish().unwrap();
    // Tasks that ended without a message are reported.
    assert_eq!(ex.handler().failed.len(), 4);
}

#[test]
fn ready_returns_channels_with_data_and_remove_detaches() {
    let mut ex: Exchange<Growable, Sum> = Exchange::new(4, Options::default(), Sum::default());
    let quiet = start(|ch| {
        let mut b = [0u8; 1];
        let _ = ch.receive(&mut b);
        Ok(())
    })
    .unwrap();
    let quiet_fd = quiet.raw_fd();
    let talker = start(|ch| {
        ch.send_value(&5u64)?;
        let mut b = [0u8; 1];
        let _ = ch.receive(&mut b);
        Ok(())
    })
    .unwrap();
    let talker_fd = talker.raw_fd();
    ex.add(quiet).unwrap();
    ex.add(talker).unwrap();
    assert_eq!(ex.active_count(), 2);
    let ready: Vec<i32> = ex.ready(5000).unwrap().map(|ch| ch.raw_fd()).collect();
    assert_eq!(ready, vec![talker_fd]);
    assert_eq!(ex.ready(0).unwrap().count(), 1, "still unread");
    assert_eq!(ex.store(5000).unwrap(), 1);
    assert_eq!(ex.handler().total, 5);
    assert_eq!(ex.store(0), Err(Error::TimedOut));
    // Autoclose: the removed channel is closed, so the quiet child ends.
    assert_eq!(ex.remove(quiet_fd).unwrap().map(|ch| ch.raw_fd()), None);
    assert_eq!(
        ex.remove(quiet_fd).unwrap_err(),
        Error::Invalid,
        "removed already"
    );
    assert_eq!(ex.active_count(), 1);
    // It had sent nothing: its task is reported in its place.
    assert_eq!(ex.handler().failed, vec![TaskId::new(0)]);
    drop(ex);
}

#[test]
fn keep_removed_hands_channels_back() {
    let options = Options {
        keep_removed: true,
        ..Options::default()
    };
    let mut ex: Exchange<Growable, Sum> = Exchange::new(2, options, Sum::default());
    let ch = start(|ch| {
        ch.send_value(&9u64)?;
        Ok(())
    })
    .unwrap();
    let fd = ch.raw_fd();
    ex.add(ch).unwrap();
    let mut back = ex.remove(fd).unwrap().expect("handed back");
    assert_eq!(back.receive_value::<u64>().unwrap(), 9);
    // A channel that ends by itself has nothing left: the exchange closes it.
    // (Its socket, by inode: other tests open and close descriptors
    // meanwhile, so neither the count nor the number proves anything.)
    let ended = start(|_| Ok(())).unwrap();
    let link = format!("/proc/self/fd/{}", ended.raw_fd());
    let socket = std::fs::read_link(&link).unwrap();
    ex.add(ended).unwrap();
    ex.finish().unwrap();
    assert_ne!(std::fs::read_link(&link).ok(), Some(socket), "still open");
}

#[test]
fn messages_sent_before_exit_are_all_stored() {
    let options = Options {
        continuous: true,
        ..Options::default()
    };
    let mut ex: Exchange<Growable, Sum> = Exchange::new(4, options, Sum::default());
    for _ in 0..4 {
        ex.start(|ch| {
            for _ in 0..50 {
                ch.send_value(&1u64)?;
            }
            Ok(())
        })
        .unwrap();
    }
    ex.finish().unwrap();
    assert_eq!(ex.handler().total, 200);
    assert!(ex.handler().failed.is_empty());
}

/// Regression: a message a channel kept aside during `send_acked` (it
/// arrived before the acknowledgement) made an exchange spin on that channel
/// and then fail the task, instead of storing the message first.
#[test]
fn an_exchange_stores_a_message_kept_aside_by_send_acked() {
    match pprocess::create().unwrap() {
        pprocess::Created::Child(mut ch) => {
            ch.send(b"early").unwrap();
            let mut buf = [0u8; 8];
            let _ = ch.receive(&mut buf); // acknowledges "go"
            std::thread::sleep(std::time::Duration::from_millis(300));
            ch.send(b"late").unwrap();
            pprocess::exit(ch, 0)
        }
        pprocess::Created::Parent(mut ch) => {
            ch.send_acked(b"go").unwrap(); // keeps "early" aside
            let mut queue = Queue::with_options(1, Options::default());
            queue.add(ch).unwrap();
            let got: Vec<_> = queue.by_ref().collect();
            assert_eq!(got, vec![Ok(b"early".to_vec()), Ok(b"late".to_vec())]);
        }
    }
}

#[test]
fn batched_answers_reach_their_tasks() {
    let options = Options {
        reuse: true,
        ..Options::default()
    };
    // Many tiny tasks: answers go back in batches, each to its task.
    let inputs: Vec<[u8; 8]> = (0..20_000u64).map(u64::to_le_bytes).collect();
    let map = pmap(worker_pid, &inputs, 2, options).unwrap();
    for (i, outcome) in map.enumerate() {
        let bytes = outcome.unwrap();
        assert_eq!(u64::from_le_bytes(bytes[..8].try_into().unwrap()), i as u64);
    }
    // A lone task is answered although no task follows it: a worker never
    // holds an answer while it waits for input.
    let mut queue = Queue::with_options(2, options);
    let task = queue.call(|x| Ok(x.to_vec()), b"alone").unwrap();
    assert_eq!(
        queue.next_result(10_000).unwrap(),
        (task, Ok(b"alone".to_vec()))
    );
    // Continuous tasks: every message of every task, in order per task.
    let options = Options {
        continuous: true,
        ..options
    };
    let mut queue = Queue::with_options(2, options);
    let echo = queue.manage_function(|x| Ok(x.to_vec()));
    for t in 0..50u8 {
        echo.call(&mut queue, &[t]).unwrap();
    }
    let mut seen: Vec<u8> = queue.by_ref().map(|o| o.unwrap()[0]).collect();
    seen.sort();
    assert_eq!(seen, (0..50).collect::<Vec<_>>());
}

/// A batching worker holds only a task's answer back: a message streamed in
/// the middle of a task goes out at once, also when the task then waits.
/// (Regression: every frame a task sent was held, so a task that sent and
/// then waited for its creator's reaction kept its message to itself.)
#[test]
fn a_batching_worker_streams_mid_task_messages_at_once() {
    let options = Options {
        reuse: true,
        continuous: true,
        ..Options::default()
    };
    let go = std::env::temp_dir().join(format!("pp-batch-go-{}", std::process::id()));
    let _ = std::fs::remove_file(&go);
    let mut queue = Queue::with_options(1, options);
    let flag = go.clone();
    queue
        .start_with(
            move |ch, _| {
                ch.send(b"early")?;
                // Wait (up to a minute) until the creator has seen "early".
                for _ in 0..600 {
                    if flag.exists() || ch.wait_readable(100).unwrap_or(false) {
                        break;
                    }
                }
                ch.send(b"late")?;
                Ok(())
            },
            &[0],
        )
        .unwrap();
    // Held back, "early" would arrive only after the task's minute is up.
    let (_, early) = queue.next_result(20_000).unwrap();
    assert_eq!(early, Ok(b"early".to_vec()));
    std::fs::write(&go, b"").unwrap();
    let (_, late) = queue.next_result(20_000).unwrap();
    assert_eq!(late, Ok(b"late".to_vec()));
    let _ = std::fs::remove_file(&go);
}

/// A process made by [`Exchange::create`] inherits a copy of the exchange,
/// whose descriptors were closed at the fork: there they name no descriptor
/// (`-1`, so every call on them fails with `EBADF` instead of reaching a
/// newer descriptor that got the same number), and dropping the copy touches
/// neither the creator's other children nor the created process's own.
#[test]
fn an_exchange_inherited_across_a_fork_names_no_descriptor_and_kills_nobody() {
    let mut ex: Exchange<Growable, Sum> = Exchange::new(4, Options::default(), Sum::default());
    ex.start(|ch| {
        sleep_ms(300);
        ch.send_value(&1u64)?;
        Ok(())
    })
    .unwrap();
    if let pprocess::exchange::CreatedTask::Child(mut ch) = ex.create().unwrap() {
        let inherited: Vec<i32> = ex.active().map(|c| c.raw_fd()).collect();
        // New descriptors take the numbers freed at the fork.
        let mut own = start(|ch| {
            let v: u64 = ch.receive_value()?;
            ch.send_value(&v)?;
            Ok(())
        })
        .unwrap();
        drop(ex);
        let own_alive = own.send_value(&20u64).is_ok() && own.receive_value::<u64>() == Ok(20);
        let ok = inherited.len() == 1 && inherited[0] == -1 && own_alive;
        ch.send_value(&if ok { 2u64 } else { 1000 }).unwrap();
        pprocess::exit(ch, 0);
    }
    ex.finish().unwrap();
    assert!(ex.handler().failed.is_empty(), "{:?}", ex.handler().failed);
    assert_eq!(
        ex.handler().total,
        3,
        "the sibling answered 1, the created process 2"
    );
}
