//! `pprocess::testing::in_new_process`: a `#[test]` calls pmap through it
//! (and gets `Error::Threads` without it); a body that fails fails the
//! test with its message and exit status; a body that hangs is killed with
//! the processes it created when its timeout passes, and nothing is left
//! unreaped. The failing and hanging bodies are ignored tests of this
//! binary, run by the tests below in a process of their own.

mod common;

use std::process::Command;
use std::time::Duration;

use pprocess::testing::{in_new_process, in_new_process_within};
use pprocess::{pmap, pmap_records, start, Error, Options, RemoteError};

fn squares(inputs: &[u64]) -> pprocess::Result<Vec<u64>> {
    pmap_records(|x: &u64| Ok(x * x), inputs, 3)
}

#[test]
fn pmap_in_a_test_needs_the_helper_and_works_through_it() {
    // The harness runs this test on a thread of its own.
    assert_eq!(squares(&[1, 2, 3]), Err(Error::Threads));
    let refused = Error::Threads.to_string();
    assert!(
        refused.contains("pprocess::testing::in_new_process"),
        "{refused}"
    );

    in_new_process(|| {
        assert_eq!(squares(&(0..100).collect::<Vec<_>>()).unwrap()[99], 99 * 99);
        let inputs = (0..10u8).map(|i| vec![i]);
        let doubled: Vec<u8> = pmap(
            |x: &[u8]| Ok::<_, RemoteError>(vec![x[0] * 2]),
            inputs,
            4,
            Options::default(),
        )
        .unwrap()
        .map(|outcome| outcome.unwrap()[0])
        .collect();
        assert_eq!(doubled, (0..10).map(|i| i * 2).collect::<Vec<u8>>());
    });
}

#[test]
fn a_body_returning_a_result_may_use_the_question_mark() {
    in_new_process(|| -> pprocess::Result<()> {
        let mut channel = start(|channel| Ok(channel.send(b"from a worker")?))?;
        assert_eq!(channel.receive_vec()?, b"from a worker");
        assert!(channel.wait()?.success());
        Ok(())
    });
}

/// Runs this binary's ignored test `name` alone, as `cargo test` would;
/// its exit status and output.
fn run_ignored(name: &str) -> (bool, String) {
    let output = common::run(
        Command::new(std::env::current_exe().unwrap()).args([
            name,
            "--exact",
            "--include-ignored",
            "--nocapture",
        ]),
        Duration::from_secs(300),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
#[ignore = "fails on purpose: run by a_failing_body_fails_its_test_with_the_message_and_status"]
fn body_that_panics() {
    in_new_process::<()>(|| {
        let from_workers = squares(&[6, 7]).unwrap();
        panic!("the workers answered {from_workers:?}");
    });
}

#[test]
fn a_failing_body_fails_its_test_with_the_message_and_status() {
    let (passed, output) = run_ignored("body_that_panics");
    assert!(!passed, "{output}");
    for expected in [
        "test body_that_panics failed in its own process (exit status: 101)",
        "the workers answered [36, 49]",
        "test result: FAILED. 0 passed; 1 failed",
    ] {
        assert!(output.contains(expected), "no {expected:?} in:\n{output}");
    }
}

#[test]
#[ignore = "hangs on purpose: run by a_body_past_its_timeout_is_killed_with_its_processes"]
fn body_that_hangs() {
    let failed = std::panic::catch_unwind(|| {
        in_new_process_within::<()>(Duration::from_secs(2), || {
            let worker = start(|_| loop {
                std::thread::park();
            })
            .unwrap();
            println!("worker pid {}", worker.pid());
            loop {
                std::thread::park();
            }
        })
    });
    // Every process this thread started was waited for.
    let children = std::fs::read_to_string("/proc/thread-self/children").unwrap();
    println!("children left: [{}]", children.trim());
    std::panic::resume_unwind(failed.expect_err("the hung body passed"));
}

#[test]
fn a_body_past_its_timeout_is_killed_with_its_processes() {
    let (passed, output) = run_ignored("body_that_hangs");
    assert!(!passed, "{output}");
    for expected in [
        "test body_that_hangs: still running after 2s: killed with every process it created \
         (signal: 9 (SIGKILL))",
        "children left: []",
    ] {
        assert!(output.contains(expected), "no {expected:?} in:\n{output}");
    }
    let worker = output
        .split_once("worker pid ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no worker pid in:\n{output}"));
    // Killed: gone, or a zombie until its new parent reaps it.
    let state = std::fs::read_to_string(format!("/proc/{worker}/stat")).unwrap_or_default();
    let state = state.rsplit_once(") ").map_or("", |(_, rest)| &rest[..1]);
    assert!(
        state.is_empty() || state == "Z",
        "worker {worker} is in state {state}"
    );
}

#[test]
fn a_thread_that_is_no_test_cannot_be_run_again() {
    let thread = std::thread::Builder::new()
        .name("no_test_has_this_name".into())
        .spawn(|| in_new_process(|| {}))
        .unwrap();
    let payload = thread.join().expect_err("it passed");
    let message = payload.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("its own process ran no test of that name"),
        "{message}"
    );
}
