//! The rest of pprocess's persistent API: persistent processes created by
//! an exchange, persistent starts obeying an exchange's limit, and
//! `close_streams`.

mod background;
mod fork_contract;

use background::*;
use pprocess::exchange::CreatedTask;
use pprocess::{
    close_streams, connect_persistent, exit, start_persistent, Channel, Error, Options, Queue,
    RemoteError,
};

/// The library's code for a closed channel, as C sees it.
const PP_ECLOSED: i32 = -1000;

#[test]
fn close_streams_points_the_standard_streams_at_dev_null() {
    let links = in_child(|| {
        close_streams()?;
        println!("this goes nowhere");
        let links: Vec<String> = (0..3)
            .map(|fd| std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap())
            .map(|target| target.display().to_string())
            .collect();
        Ok(links.join(",").into_bytes())
    });
    assert_eq!(
        String::from_utf8(links).unwrap(),
        "/dev/null,/dev/null,/dev/null"
    );
}

#[test]
fn an_exchange_creates_persistent_processes_and_collects_their_results() {
    let mut scratch = Scratch::new("create");
    let mut queue = Queue::with_options(2, Options::default());
    let mut tasks = Vec::new();
    for k in 0..3u32 {
        let path = scratch.path(&format!("task-{k}.socket"));
        match queue.create_persistent(&path).unwrap() {
            CreatedTask::Child(mut ch) => {
                for n in 0..4 {
                    if ch.send_value(&(k * 100 + n)).is_err() {
                        exit(ch, 1);
                    }
                }
                exit(ch, 0);
            }
            CreatedTask::Parent { pid, task } => {
                scratch.track(pid);
                tasks.push((task, pid, path));
            }
        }
    }
    let mut got = Vec::new();
    while let Ok((task, outcome)) = queue.next_result(TIMEOUT_MS) {
        got.push((task, num(&outcome.unwrap())));
    }
    for (k, (task, pid, path)) in tasks.into_iter().enumerate() {
        let mine: Vec<u32> = got.iter().filter(|r| r.0 == task).map(|r| r.1).collect();
        let k = k as u32;
        assert_eq!(mine, (0..4).map(|n| k * 100 + n).collect::<Vec<_>>());
        assert_finished(pid, &path);
    }
}

#[test]
fn start_persistent_on_an_exchange_waits_for_its_limit() {
    let mut scratch = Scratch::new("limit");
    let first = scratch.path("first.socket");
    let second = scratch.path("second.socket");
    let keeper = scratch.track(start_persistent(&first, numbers(0..3)).unwrap());
    let mut queue = Queue::with_options(1, Options::default());
    queue.connect(&first).unwrap();
    assert_eq!(queue.active_count(), 1);
    let other = scratch.track(queue.start_persistent(&second, numbers(5..7)).unwrap());
    // The start waited for the connection to end, as any start at the limit.
    assert_eq!(queue.active_count(), 0);
    let got: Vec<u32> = queue.by_ref().map(|r| num(&r.unwrap())).collect();
    assert_eq!(got, [0, 1, 2]);
    assert_finished(keeper, &first);
    let mut ch = connect_persistent(&second).unwrap();
    assert_eq!(collect(&mut ch), ((5..7).collect(), None));
    assert_finished(other, &second);
}

/// A background callable that answers each number a client sends with its
/// square, until it receives 0.
fn squares(ch: &mut Channel) -> Result<(), RemoteError> {
    loop {
        let n: u32 = ch.receive_value()?;
        if n == 0 {
            return Ok(());
        }
        ch.send_value(&(n * n))?;
    }
}

#[test]
fn a_background_callable_receives_what_a_client_sends() {
    let mut scratch = Scratch::new("two-way");
    let path = scratch.path("squares.socket");
    let keeper = scratch.track(start_persistent(&path, squares).unwrap());
    let mut ch = connect_persistent(&path).unwrap();
    for n in 1..=5u32 {
        ch.send_value(&n).unwrap();
        assert_eq!(ch.receive_value::<u32>().unwrap(), n * n);
    }
    ch.send_value(&0u32).unwrap();
    assert_eq!(ch.receive_vec_timeout(TIMEOUT_MS), Err(Error::Closed));
    assert_finished(keeper, &path);
}

#[test]
fn send_acked_returns_once_the_callable_has_taken_the_message() {
    let mut scratch = Scratch::new("acked");
    let path = scratch.path("echo.socket");
    let keeper = scratch.track(
        start_persistent(&path, |ch| {
            let message = ch.receive_vec()?;
            ch.send(&message)?;
            Ok(())
        })
        .unwrap(),
    );
    let mut ch = connect_persistent(&path).unwrap();
    ch.send_acked(b"hello").unwrap();
    assert_eq!(ch.receive_vec_timeout(TIMEOUT_MS).unwrap(), b"hello");
    assert_eq!(ch.receive_vec_timeout(TIMEOUT_MS), Err(Error::Closed));
    assert_finished(keeper, &path);
}

#[test]
fn what_a_client_sent_reaches_the_callable_after_the_client_left() {
    let mut scratch = Scratch::new("left");
    let path = scratch.path("squares.socket");
    let keeper = scratch.track(start_persistent(&path, squares).unwrap());
    let mut first = connect_persistent(&path).unwrap();
    first.send_value(&7u32).unwrap();
    drop(first);
    let mut second = connect_persistent(&path).unwrap();
    second.send_value(&0u32).unwrap();
    assert_eq!(collect(&mut second), (vec![49], None));
    assert_finished(keeper, &path);
}

#[test]
fn what_the_callable_never_took_is_reported() {
    let mut scratch = Scratch::new("untaken");
    let path = scratch.path("deaf.socket");
    let keeper = scratch.track(start_persistent(&path, numbers(0..1)).unwrap());
    let mut ch = connect_persistent(&path).unwrap();
    ch.send_value(&5u32).unwrap();
    let (got, end) = collect(&mut ch);
    assert_eq!(got, [0]);
    assert_eq!(end, Some(Error::Remote { code: PP_ECLOSED }));
    let message = ch.remote_error().unwrap().message();
    assert!(
        message.contains("without receiving 1 messages"),
        "{message}"
    );
    assert_eq!(ch.receive_vec_timeout(TIMEOUT_MS), Err(Error::Closed));
    assert_finished(keeper, &path);
}

/// A callable that sends 0, 1 and 2, receives once, then sends 3 (issue
/// 20's reproduction of the loss in `send_acked`).
fn three_then_one(ch: &mut Channel) -> Result<(), RemoteError> {
    for n in 0..3u32 {
        ch.send_value(&n)?;
    }
    ch.receive_vec()?;
    ch.send_value(&3u32)?;
    Ok(())
}

/// A client that connects, waits until a result has arrived (so that
/// `send_acked` meets it while it waits), sends with `send_acked`, takes
/// `take` results and leaves.
fn acked_client(path: &std::path::Path, take_count: usize) -> Vec<u32> {
    let mut ch = connect_persistent(path).unwrap();
    assert!(ch.wait_readable(TIMEOUT_MS).unwrap());
    ch.send_acked(b"go").unwrap();
    let got = take(&mut ch, take_count);
    drop(ch);
    got
}

#[test]
fn results_stashed_by_send_acked_go_to_the_next_client_unless_taken() {
    let mut scratch = Scratch::new("stash");
    let path = scratch.path("stash.socket");
    let keeper = scratch.track(start_persistent(&path, three_then_one).unwrap());
    assert_eq!(acked_client(&path, 0), []);
    let mut second = connect_persistent(&path).unwrap();
    assert_eq!(collect(&mut second), (vec![0, 1, 2, 3], None));
    assert_finished(keeper, &path);
}

#[test]
fn a_stashed_result_is_acknowledged_when_the_program_takes_it() {
    let mut scratch = Scratch::new("stash-take");
    let path = scratch.path("stash.socket");
    let keeper = scratch.track(start_persistent(&path, three_then_one).unwrap());
    assert_eq!(acked_client(&path, 1), [0]);
    let mut second = connect_persistent(&path).unwrap();
    assert_eq!(collect(&mut second), (vec![1, 2, 3], None));
    assert_finished(keeper, &path);
}
