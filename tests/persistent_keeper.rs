//! The keeper's protocol with its clients: a stream ends with an explicit
//! end frame (a keeper that dies is never taken for a complete delivery),
//! an acknowledgement of a frame never sent is refused, and no client can
//! hold the keeper up.

mod background;

use background::*;
use pprocess::{connect_persistent, start_persistent, Error, Queue};

/// Kills a keeper (the test's stand-in for a crash).
fn kill(pid: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    eventually(&format!("process {pid} dies"), || !alive(pid));
}

#[test]
fn a_killed_keeper_is_an_error_not_the_end_of_the_results() {
    let mut scratch = Scratch::new("killed");
    let path = scratch.path("task.socket");
    let keeper = scratch.track(start_persistent(&path, numbers(0..5)).unwrap());
    let mut ch = connect_persistent(&path).unwrap();
    assert_eq!(take(&mut ch, 2), [0, 1]);
    kill(keeper);
    // What was already on its way still arrives; then the cut is reported.
    let (rest, end) = collect(&mut ch);
    assert!(rest.len() <= 3, "{rest:?}");
    assert_eq!(end, Some(Error::Cut));
    assert_eq!(Error::Cut.code(), PP_EPEER);
}

#[test]
fn a_background_queue_reports_a_killed_keeper() {
    let mut scratch = Scratch::new("killed-queue");
    let path = scratch.path("task.socket");
    let keeper = scratch.track(start_persistent(&path, numbers(0..5)).unwrap());
    let mut queue = Queue::background(&path).unwrap();
    let first: Vec<_> = queue.by_ref().take(2).map(|r| num(&r.unwrap())).collect();
    assert_eq!(first, [0, 1]);
    kill(keeper);
    let rest: Vec<_> = queue.collect();
    let failure = rest.last().expect("an outcome for the cut").as_ref();
    assert_eq!(failure.err().map(|e| e.error), Some(Error::Cut), "{rest:?}");
}
