//! Answers a reused worker holds back (a chunk's answers go out in one
//! write): they arrive while a long task after them runs, and as soon as
//! they are sent when no task follows. (Deaths with answers held are in
//! `fault_kill.rs`.)

mod fork_contract;

use std::collections::BTreeSet;

use pprocess::{Channel, Options, Queue, TaskId};

fn sleep_ms(ms: u64) {
    std::thread::sleep(std::time::Duration::from_millis(ms));
}

/// A worker holds the answers of quick tasks while the next task of its
/// chunk runs; when that task is long, its creator reads the held answers
/// from the worker's journal instead of waiting for the long task to end.
/// (Without that, tasks 0 to 99 here would wait 5 s for task 100.)
#[test]
fn answers_held_before_a_long_task_arrive_while_it_runs() {
    const LONG: usize = 100;
    let options = Options {
        reuse: true,
        ..Options::default()
    };
    // The long task runs until this test has seen every answer before it
    // (or a minute, so that a failing run ends).
    let seen_all = std::env::temp_dir().join(format!("pp-held-{}", std::process::id()));
    let _ = std::fs::remove_file(&seen_all);
    let flag = seen_all.clone();
    let mut queue = Queue::with_options(1, options);
    let body = queue.manage_function(move |x: &[u8]| {
        if x[0] == 1 {
            for _ in 0..600 {
                if flag.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        Ok(x[1..].to_vec())
    });
    for i in 0..150u32 {
        let input: Vec<u8> = [u8::from(i as usize == LONG)]
            .into_iter()
            .chain(i.to_le_bytes())
            .collect();
        body.call(&mut queue, &input).unwrap();
    }
    // Every task before the long one is answered while it runs.
    let mut seen = BTreeSet::new();
    while seen.len() < LONG {
        let (task, outcome) = queue
            .next_result(30_000)
            .unwrap_or_else(|e| panic!("after {} answers: {e}", seen.len()));
        assert_eq!(outcome.unwrap(), (task.index() as u32).to_le_bytes());
        seen.insert(task);
    }
    assert_eq!(seen, (0..LONG).map(TaskId::new).collect());
    std::fs::write(&seen_all, b"").unwrap();
    let rest: Vec<usize> = queue
        .by_ref()
        .map(|outcome| outcome.unwrap().len())
        .collect();
    assert_eq!(rest, vec![4; 50]);
    std::fs::remove_file(&seen_all).unwrap();
}

/// A reused task's answer that no queued task follows goes out when it is
/// sent, not when its callable returns: a callable that runs on after its
/// answer (cleanup, say) does not hold it back. (Regression: answers were
/// held from the send until the callable returned, however long that
/// took, and the creator looks at a worker's journal only while it has a
/// task queued behind the current one.)
#[test]
fn a_reused_tasks_answer_arrives_while_its_callable_runs_on() {
    let go = std::env::temp_dir().join(format!("pp-answer-go-{}", std::process::id()));
    let _ = std::fs::remove_file(&go);
    let options = Options {
        reuse: true,
        ..Options::default()
    };
    let mut queue = Queue::with_options(1, options);
    let seen = go.clone();
    let body = queue.manage(move |channel: &mut Channel, x: &[u8]| {
        channel.send(x)?;
        // Runs on until its creator has the answer (at most 20 s).
        for _ in 0..2000 {
            if seen.exists() {
                break;
            }
            sleep_ms(10);
        }
        Ok(())
    });
    let task = body.call(&mut queue, b"answer").unwrap();
    let got = queue.next_result(10_000);
    std::fs::write(&go, b"").unwrap();
    let (id, outcome) = got.expect("the answer arrives while the callable runs on");
    assert_eq!((id, outcome.unwrap()), (task, b"answer".to_vec()));
    assert!(queue.next().is_none());
    let _ = std::fs::remove_file(&go);
}

/// A process created while reused workers run does not get their journals
/// (they are shared with their creator only), and a copy of the exchange
/// it inherited unmaps nothing when dropped there: memory of its own that
/// the kernel placed where a journal is in its creator stays intact.
#[test]
fn a_created_process_gets_no_journal_and_its_own_memory_survives_a_dropped_copy() {
    const REGIONS: usize = 64;
    const LEN: usize = 18 * 4096; // a ring's size
    let go = std::env::temp_dir().join(format!("pp-journal-fork-{}", std::process::id()));
    let _ = std::fs::remove_file(&go);
    let options = Options {
        reuse: true,
        ..Options::default()
    };
    let mut queue = Queue::with_options(2, options);
    let flag = go.clone();
    // Two workers, each busy until the check below is done.
    let body = queue.manage_function(move |x: &[u8]| {
        for _ in 0..600 {
            if flag.exists() {
                break;
            }
            sleep_ms(100);
        }
        Ok(x.to_vec())
    });
    body.call(&mut queue, b"a").unwrap();
    body.call(&mut queue, b"b").unwrap();
    match pprocess::create().unwrap() {
        pprocess::Created::Child(ch) => {
            // Memory of its own, likely where the journals are mapped in
            // the creator (the holes they leave here).
            let regions: Vec<*mut u8> = (0..REGIONS)
                .map(|i| {
                    // SAFETY: a fresh private anonymous mapping.
                    let p = unsafe {
                        libc::mmap(
                            std::ptr::null_mut(),
                            LEN,
                            libc::PROT_READ | libc::PROT_WRITE,
                            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                            -1,
                            0,
                        )
                    };
                    assert_ne!(p, libc::MAP_FAILED);
                    // SAFETY: `p` maps LEN writable bytes.
                    unsafe { std::ptr::write_bytes(p.cast::<u8>(), i as u8, LEN) };
                    p.cast()
                })
                .collect();
            drop(queue);
            // Still mapped and intact (a read of an unmapped page would
            // kill this process with SIGSEGV).
            let intact = regions.iter().enumerate().all(|(i, &p)| {
                // SAFETY: `p` maps LEN bytes this process wrote above.
                let bytes = unsafe { std::slice::from_raw_parts(p, LEN) };
                bytes.iter().all(|&b| b == i as u8)
            });
            pprocess::exit(ch, if intact { 0 } else { 3 });
        }
        pprocess::Created::Parent(mut ch) => {
            let status = ch.wait().unwrap();
            std::fs::write(&go, b"").unwrap();
            assert!(status.success(), "the created process: {status}");
        }
    }
    let mut answers: Vec<Vec<u8>> = queue.by_ref().map(|outcome| outcome.unwrap()).collect();
    answers.sort();
    assert_eq!(answers, [b"a".to_vec(), b"b".to_vec()]);
    let _ = std::fs::remove_file(&go);
}
