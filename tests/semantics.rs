//! pprocess's programming model, item by item (issue 13): reusable
//! callables by explicit handle, unbounded limits, ready loops that end by
//! themselves, maps that keep their results.

mod fork_contract;

use std::collections::BTreeSet;

use pprocess::{Channel, Limit, Options, Queue, RemoteError, TaskId};

fn reuse() -> Options {
    Options {
        reuse: true,
        ..Options::default()
    }
}

fn sorted_bytes(queue: &mut Queue) -> Vec<u8> {
    let mut got: Vec<u8> = queue.by_ref().map(|o| o.unwrap()[0]).collect();
    got.sort();
    got
}

/// Two closures of one type with different captures are two callables: with
/// reuse, neither runs in the other's worker. (Keyed by the closure's type,
/// every task ran the first closure: [0, 0, 0, 0].)
#[test]
fn closures_of_one_type_with_different_captures_keep_their_captures_under_reuse() {
    for limit in [1, 2, 4] {
        let mut queue = Queue::with_options(limit, reuse());
        for x in 0..4u8 {
            queue
                .start_with(move |ch, _| Ok(ch.send(&[x])?), &[])
                .unwrap();
        }
        assert_eq!(sorted_bytes(&mut queue), [0, 1, 2, 3], "limit {limit}");
    }
}

/// One handle, many calls: every task of it runs in the handle's workers,
/// at most `limit` processes however many tasks.
#[test]
fn a_managed_callable_runs_all_its_tasks_in_its_own_workers() {
    fn pid_of(ch: &mut Channel, args: &[u8]) -> Result<(), RemoteError> {
        let pid = std::process::id().to_le_bytes();
        Ok(ch.send(&[args, &pid].concat())?)
    }
    let mut queue = Queue::with_options(2, reuse());
    let managed = queue.manage(pid_of);
    for i in 0..40u8 {
        managed.call(&mut queue, &[i]).unwrap();
    }
    let mut seen = BTreeSet::new();
    let mut pids = BTreeSet::new();
    for outcome in queue.by_ref() {
        let bytes = outcome.unwrap();
        seen.insert(bytes[0]);
        pids.insert(u32::from_le_bytes(bytes[1..5].try_into().unwrap()));
    }
    assert_eq!(seen, (0..40).collect());
    assert!(pids.len() <= 2, "{} workers", pids.len());
}

/// Two handles of different callables at a limit of one: the second's
/// tasks wait for the first's idle worker to go, not forever.
#[test]
fn tasks_of_another_callable_start_when_the_limit_is_held_by_idle_workers() {
    let mut queue = Queue::with_options(1, reuse());
    let one = queue.manage_function(|_| Ok(vec![1]));
    let two = queue.manage_function(|_| Ok(vec![2]));
    for _ in 0..3 {
        one.call(&mut queue, &[]).unwrap();
        two.call(&mut queue, &[]).unwrap();
    }
    assert_eq!(sorted_bytes(&mut queue), [1, 1, 1, 2, 2, 2]);
}

/// A task that never ends by itself: says it is up, then follows its
/// channel until the creator goes (concurrency-sig's bottles followers).
fn follow(ch: &mut Channel, args: &[u8]) -> Result<(), RemoteError> {
    ch.send(args)?;
    while ch.receive_vec().is_ok() {}
    Ok(())
}

/// No limit (pprocess's `limit=None`): 9 never-ending followers all start.
/// (With 0 meaning one per core, those beyond the core count waited
/// forever.)
#[test]
fn an_unbounded_exchange_starts_every_never_ending_task() {
    for limit in [Limit::Unbounded, Limit::from(None)] {
        let continuous = Options {
            continuous: true,
            ..Options::default()
        };
        let mut queue = Queue::with_options(limit, continuous);
        for i in 0..9u8 {
            queue.start_with(follow, &[i]).unwrap();
        }
        assert_eq!(queue.active_count(), 9);
        assert_eq!(queue.waiting(), 0);
        let mut up: Vec<u8> = (0..9)
            .map(|_| queue.next_result(60_000).unwrap().1.unwrap()[0])
            .collect();
        up.sort();
        assert_eq!(up, (0..9).collect::<Vec<u8>>());
    }
}

/// One per core stays available by name, and a number still means itself.
#[test]
fn limits_by_name_and_by_number() {
    let cores = Queue::with_options(Limit::Cores, Options::default());
    assert_eq!(cores.limit(), pprocess::number_of_cores());
    assert_eq!(
        Queue::with_options(0, Options::default()).limit(),
        cores.limit()
    );
    assert_eq!(Queue::with_options(3, Options::default()).limit(), 3);
    let mut queue = Queue::with_options(None, Options::default());
    assert_eq!(queue.limit(), usize::MAX);
    queue.set_limit(2);
    assert_eq!(queue.limit(), 2);
    // A fixed store holds at most N: no limit means N.
    let fixed: pprocess::Exchange<pprocess::exchange::Fixed<4>, Nothing> =
        pprocess::Exchange::new(Limit::Unbounded, Options::default(), Nothing);
    assert_eq!(fixed.limit(), 4);
}

struct Nothing;

impl pprocess::StoreData for Nothing {
    fn store_data(&mut self, ch: &mut Channel, _task: pprocess::TaskId) -> pprocess::Result<()> {
        ch.receive_vec().map(drop)
    }
}

/// A handler for loops that receive every message themselves.
struct Unused;

impl pprocess::StoreData for Unused {
    fn store_data(&mut self, _: &mut Channel, task: pprocess::TaskId) -> pprocess::Result<()> {
        panic!("task {task}: the loop receives every message itself")
    }
}

/// pprocess's raw loop (`tests/start_indexer.py`): `while exchange.active():
/// for channel in exchange.ready(): channel.receive()`. Every channel
/// `ready` gives has a message (an ended one is removed, not given: its
/// receive used to fail with the end), the loop ends by itself, and each
/// ended channel is reported once in `removed`, its process collected.
#[test]
fn a_ready_loop_receives_only_messages_and_ends_with_every_channel_removed() {
    for options in [Options::default(), reuse()] {
        let mut ex: pprocess::Exchange<pprocess::exchange::Growable, Unused> =
            pprocess::Exchange::new(3, options, Unused);
        let echo = ex.manage(|ch, args| Ok(ch.send(args)?));
        for i in 0..8u8 {
            echo.call(&mut ex, &[i]).unwrap();
        }
        let started: BTreeSet<u32> = ex.active().map(|ch| ch.pid() as u32).collect();
        assert_eq!(started.len(), ex.active_count());
        let (mut got, mut removed) = (Vec::new(), Vec::new());
        while ex.active_count() > 0 || ex.waiting() > 0 {
            for ch in ex.ready(-1).unwrap() {
                got.push(ch.receive_vec().expect("a ready channel has a message")[0]);
            }
            removed.extend_from_slice(ex.removed());
        }
        got.sort();
        assert_eq!(got, (0..8).collect::<Vec<u8>>(), "{options:?}");
        let pids: BTreeSet<u32> = removed.iter().map(|r| r.pid as u32).collect();
        assert_eq!(pids.len(), removed.len(), "each removed once");
        assert!(started.is_subset(&pids));
        assert!(removed.iter().all(|r| r.why == pprocess::Error::Closed));
        if !options.reuse {
            let tasks: BTreeSet<TaskId> = removed.iter().filter_map(|r| r.task).collect();
            assert_eq!(tasks, (0..8).map(TaskId::new).collect());
        }
        ex.finish().unwrap();
        for pid in pids {
            // SAFETY: waitpid on a pid we created; WNOHANG never blocks.
            let rc = unsafe { libc::waitpid(pid as i32, std::ptr::null_mut(), libc::WNOHANG) };
            assert_eq!(rc, -1, "process {pid} was collected");
        }
    }
}

/// A map keeps its results until it is dropped: `get` and `range` (the
/// tutorial's `results[i*N:i*N+N]`) work before, during and after
/// iteration, and iterating by reference consumes nothing. (The iteration
/// took each result: `get` after it was `Done`.)
#[test]
fn a_map_keeps_its_results_for_get_and_range_before_during_and_after_iteration() {
    let mut map = pprocess::Map::with_options(3, Options::default());
    let square = map.manage_function(|x: &[u8]| Ok(vec![x[0] * x[0]]));
    for n in 0..9u8 {
        square.call(&mut map, &[n]).unwrap();
    }
    let byte = |outcome: &pprocess::Outcome| outcome.as_ref().unwrap()[0];
    let id = TaskId::new;
    // Before: one result, and a row of three.
    assert_eq!(byte(map.get(id(8)).unwrap()), 64);
    let row: Vec<u8> = map.range(id(3)..id(6)).unwrap().map(byte).collect();
    assert_eq!(row, [9, 16, 25]);
    // During: after two results were read, all are still there.
    let first: Vec<u8> = map.by_ref().take(2).map(|o| o.unwrap()[0]).collect();
    assert_eq!(first, [0, 1]);
    assert_eq!(byte(map.get(id(0)).unwrap()), 0);
    // After: the rest read, then every row again.
    let rest: Vec<u8> = map.by_ref().map(|o| o.unwrap()[0]).collect();
    assert_eq!(rest, [4, 9, 16, 25, 36, 49, 64]);
    for i in 0..3 {
        let row: Vec<u8> = map
            .range(id(i * 3)..id(i * 3 + 3))
            .unwrap()
            .map(byte)
            .collect();
        let expected: Vec<u8> = (i * 3..i * 3 + 3).map(|n| (n * n) as u8).collect();
        assert_eq!(row, expected);
    }
    assert_eq!(
        map.get(id(9)).err(),
        Some(pprocess::Error::Done),
        "never started"
    );
    assert!(map.range(id(8)..id(10)).is_err(), "task 9 never started");
    assert_eq!(map.next(), None, "each result is yielded once");
}

/// Found by the model test: a result the program received after `ready`,
/// then its channel removed, is its task's result; the task used to be
/// reported `Closed` as well (remove did not charge what was received).
#[test]
fn a_result_received_after_ready_is_not_reported_missing_when_its_channel_is_removed() {
    #[derive(Default)]
    struct Failures(Vec<(pprocess::TaskId, pprocess::Error)>);
    impl pprocess::StoreData for Failures {
        fn store_data(&mut self, _: &mut Channel, _: pprocess::TaskId) -> pprocess::Result<()> {
            unreachable!("the program receives every message itself")
        }
        fn store_error(
            &mut self,
            task: pprocess::TaskId,
            e: pprocess::Error,
            _: Option<&RemoteError>,
        ) {
            self.0.push((task, e));
        }
    }
    for by_task in [false, true] {
        let mut ex: pprocess::Exchange<pprocess::exchange::Growable, Failures> =
            pprocess::Exchange::new(1, Options::default(), Failures::default());
        // It answers, then stays until its channel is closed.
        let task = ex
            .start_with(
                |ch, _| {
                    ch.send(b"answer")?;
                    while ch.receive_vec().is_ok() {}
                    Ok(())
                },
                &[],
            )
            .unwrap();
        let mut fd = None;
        while fd.is_none() {
            for ch in ex.ready(-1).unwrap() {
                assert_eq!(ch.receive_vec().unwrap(), b"answer");
                fd = Some(ch.raw_fd());
            }
        }
        let removed = match by_task {
            true => ex.remove_task(task),
            false => ex.remove(fd.unwrap()),
        };
        assert!(removed.unwrap().is_none());
        ex.finish().unwrap();
        assert_eq!(ex.handler().0, [], "by task: {by_task}");
    }
}

/// Typed messages: a function of `Pod` values, bound once, called with
/// values, its results read as values; a wrong-sized argument fails only
/// its task, with `WrongSize`.
#[test]
fn managed_functions_of_pod_values_take_and_give_values() {
    use pprocess::exchange::value_of;
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C)]
    struct Point {
        x: i32,
        y: i32,
    }
    for reuse in [false, true] {
        let options = Options {
            reuse,
            ..Options::default()
        };
        let mut map = pprocess::Map::with_options(2, options);
        let norm1 =
            map.manage_value(|p: Point| Ok(u64::from(p.x.unsigned_abs() + p.y.unsigned_abs())));
        for i in 0..5 {
            norm1
                .call_value(&mut map, &Point { x: -i, y: 2 * i })
                .unwrap();
        }
        norm1.call(&mut map, &[1, 2, 3]).unwrap(); // not a Point
        let got: Vec<_> = map.by_ref().map(value_of::<u64>).collect();
        for (i, outcome) in got[..5].iter().enumerate() {
            assert_eq!(outcome.as_ref().ok(), Some(&(3 * i as u64)));
        }
        let wrong = got[5].as_ref().unwrap_err();
        assert_eq!(
            wrong.remote.as_ref().map(|r| r.code()),
            Some(
                pprocess::Error::WrongSize {
                    expected: 8,
                    actual: 3
                }
                .code()
            )
        );
    }
}

/// A channel is an `AsFd`/`AsRawFd`: the exchange's channels can be
/// watched by the caller's own poll, and removed by their descriptor.
#[test]
fn channels_are_as_fd_and_removed_by_descriptor_or_task() {
    use std::os::fd::{AsFd, AsRawFd};
    let mut ex: pprocess::Exchange<pprocess::exchange::Growable, Unused> =
        pprocess::Exchange::new(None, Options::default(), Unused);
    let stay = |ch: &mut Channel, _: &[u8]| {
        while ch.receive_vec().is_ok() {}
        Ok(())
    };
    let first = ex.start_with(stay, &[]).unwrap();
    ex.start_with(stay, &[]).unwrap();
    let fds: Vec<i32> = ex.active().map(|ch| ch.as_fd().as_raw_fd()).collect();
    assert_eq!(fds.len(), 2);
    assert!(ex.active().all(|ch| ch.as_raw_fd() == ch.raw_fd()));
    ex.remove_task(first).unwrap();
    assert_eq!(ex.active_count(), 1);
    let last = ex.active().next().unwrap().as_raw_fd();
    ex.remove(last).unwrap();
    assert_eq!(ex.active_count(), 0);
    assert_eq!(ex.remove_task(first).unwrap_err(), pprocess::Error::Invalid);
}
