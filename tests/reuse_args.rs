//! A reused worker keeps each args or batch frame's payload in one buffer
//! that the next frame reuses, and hands each task a slice of it: every
//! task sees exactly its own arguments, whatever the sizes before it
//! (smaller, larger, empty, over the decoder's read-ahead, over the bytes
//! the worker keeps allocated between frames).

mod fork_contract;
mod hardening;

use std::time::Duration;

use hardening::Watchdog;
use pprocess::{Map, Options};

/// Task `index`'s argument bytes: a length that jumps up and down, and
/// bytes that name the task and their place.
fn args(index: u32) -> Vec<u8> {
    let len = match index % 97 {
        0 => 100_000, // more than a worker keeps allocated between frames
        1 => 0,
        n if n % 7 == 0 => 2_000 + (index as usize * 13) % 3_000, // over the read-ahead
        _ => (index as usize * 37) % 300,
    };
    (0..len)
        .map(|at| (index as usize).wrapping_mul(31).wrapping_add(at) as u8)
        .collect()
}

/// What a task answers for `input`: its length and a digest of its bytes.
fn digest(input: &[u8]) -> Vec<u8> {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for &byte in input {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut answer = (input.len() as u64).to_le_bytes().to_vec();
    answer.extend_from_slice(&hash.to_le_bytes());
    answer
}

#[test]
fn every_task_on_a_reused_worker_sees_exactly_its_own_arguments() {
    let _watchdog = Watchdog::new("reused arguments", Duration::from_secs(120));
    const TASKS: u32 = 3000;
    let reuse = Options {
        reuse: true,
        ..Options::default()
    };
    let mut map = Map::with_options(2, reuse);
    let echo = map.manage_function(|input: &[u8]| Ok(digest(input)));
    for index in 0..TASKS {
        echo.call(&mut map, &args(index)).unwrap();
    }
    let mut seen = 0;
    for (index, outcome) in map.by_ref().enumerate() {
        let answer = outcome.unwrap_or_else(|e| panic!("task {index}: {e:?}"));
        assert_eq!(answer, digest(&args(index as u32)), "task {index}");
        seen += 1;
    }
    assert_eq!(seen, TASKS);
}
