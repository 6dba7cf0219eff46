//! The rest of pprocess's persistent API: persistent processes created by
//! an exchange, persistent starts obeying an exchange's limit, and
//! `close_streams`.

mod background;

use background::*;
use pprocess::exchange::Spawned;
use pprocess::{close_streams, connect_persistent, exit, Options, Queue};

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
            Spawned::Child(mut ch) => {
                for n in 0..4 {
                    if ch.send_value(&(k * 100 + n)).is_err() {
                        exit(ch, 1);
                    }
                }
                exit(ch, 0);
            }
            Spawned::Parent { pid, task } => {
                scratch.track(pid);
                tasks.push((task, pid, path));
            }
        }
    }
    let mut got: Vec<(usize, u32)> = Vec::new();
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
    let keeper = scratch.track(pprocess::start_persistent(&first, numbers(0..3)).unwrap());
    let mut queue = Queue::with_options(1, Options::default());
    queue.connect(&first).unwrap();
    assert_eq!(queue.active(), 1);
    let other = scratch.track(queue.start_persistent(&second, numbers(5..7)).unwrap());
    // The start waited for the connection to end, as any start at the limit.
    assert_eq!(queue.active(), 0);
    let got: Vec<u32> = queue.by_ref().map(|r| num(&r.unwrap())).collect();
    assert_eq!(got, [0, 1, 2]);
    assert_finished(keeper, &first);
    let mut ch = connect_persistent(&second).unwrap();
    assert_eq!(collect(&mut ch), ((5..7).collect(), None));
    assert_finished(other, &second);
}
