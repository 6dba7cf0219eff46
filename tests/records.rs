//! pmap over fixed-size records through shared memory (`pprocess::records`):
//! results, per-record errors, and a worker killed in the middle of a chunk.

mod fork_contract;

use pprocess::records::{pmap_bytes, pmap_each, pmap_records};
use pprocess::{Error, RemoteError};

fn square(x: &u64) -> Result<u64, RemoteError> {
    Ok(x.wrapping_mul(*x))
}

#[test]
fn uniform_records_come_back_in_input_order() {
    let inputs: Vec<u64> = (0..100_000).collect();
    for workers in [1, 2, 3, 0] {
        let outputs = pmap_records(square, &inputs, workers).unwrap();
        assert_eq!(outputs.len(), inputs.len());
        assert!(outputs.iter().zip(&inputs).all(|(y, x)| *y == x * x));
    }
}

#[test]
fn skewed_records_come_back_in_input_order() {
    // Every 50th record takes 2 ms, the rest 20 µs.
    let inputs: Vec<u32> = (0..500).collect();
    let slow = |x: &u32| {
        let nap = if x.is_multiple_of(50) { 2000 } else { 20 };
        std::thread::sleep(std::time::Duration::from_micros(nap));
        Ok(u64::from(*x) + 1)
    };
    let outputs = pmap_records(slow, &inputs, 2).unwrap();
    assert_eq!(outputs, (1..=500).collect::<Vec<u64>>());
}

#[test]
fn empty_inputs_give_empty_outputs() {
    let outputs: Vec<u64> = pmap_records(square, &[], 4).unwrap();
    assert!(outputs.is_empty());
    let each = pmap_bytes(|_, _| Ok(()), &[], 8, 8, 2).unwrap();
    assert!(each.is_empty());
}

#[test]
fn one_byte_records_are_mapped() {
    let inputs: Vec<u8> = (0..=255).collect();
    let outputs = pmap_bytes(
        |input, output| {
            output[0] = input[0].wrapping_add(1);
            Ok(())
        },
        &inputs,
        1,
        1,
        2,
    )
    .unwrap();
    for (i, output) in outputs.into_iter().enumerate() {
        assert_eq!(output.unwrap(), [(i as u8).wrapping_add(1)]);
    }
}

#[test]
fn one_mebibyte_records_are_mapped() {
    const MIB: usize = 1 << 20;
    let count = 6;
    let inputs: Vec<u8> = (0..count * MIB).map(|i| (i / MIB) as u8).collect();
    let outputs = pmap_bytes(
        |input, output| {
            // Reverses the record, plus its first byte.
            for (o, i) in output.iter_mut().zip(input.iter().rev()) {
                *o = i.wrapping_add(input[0]);
            }
            Ok(())
        },
        &inputs,
        MIB,
        MIB,
        2,
    )
    .unwrap();
    assert_eq!(outputs.len(), count);
    for (k, output) in outputs.into_iter().enumerate() {
        let output = output.unwrap();
        assert_eq!(output.len(), MIB);
        assert!(output.iter().all(|&b| b == (2 * k) as u8), "record {k}");
    }
}

#[test]
fn a_failed_record_is_reported_at_its_index() {
    let inputs: Vec<u32> = (0..1000).collect();
    let picky = |x: &u32| match x {
        137 | 901 => Err(RemoteError::new(7, "no odd primes today")),
        _ => Ok(x * 2),
    };
    let each = pmap_each(picky, &inputs, 2).unwrap();
    for (i, outcome) in each.iter().enumerate() {
        match outcome {
            Ok(y) => assert_eq!(*y, 2 * i as u32),
            Err(failure) => {
                assert!(i == 137 || i == 901, "record {i} failed: {failure}");
                assert_eq!(failure.error, Error::Remote { code: 7 });
                let remote = failure.remote.as_deref().unwrap();
                assert_eq!(remote.message(), "no odd primes today");
            }
        }
    }
    assert_eq!(each.iter().filter(|o| o.is_err()).count(), 2);
    // The all-or-nothing call gives the first failure's error.
    assert_eq!(
        pmap_records(picky, &inputs, 2),
        Err(Error::Remote { code: 7 })
    );
}

#[test]
fn a_panicking_record_fails_alone() {
    let inputs: Vec<u32> = (0..100).collect();
    let each = pmap_each(
        |x: &u32| {
            assert!(*x != 42, "the answer");
            Ok(*x)
        },
        &inputs,
        2,
    )
    .unwrap();
    for (i, outcome) in each.iter().enumerate() {
        if i == 42 {
            let failure = outcome.as_ref().unwrap_err();
            assert_eq!(failure.remote.as_deref().unwrap().message(), "the answer");
        } else {
            assert_eq!(outcome.as_ref().unwrap(), &(i as u32));
        }
    }
}

/// Records that kill their own worker with SIGKILL, each mid-chunk.
fn killed_mid_chunk(workers: usize, victims: &[u64]) {
    let inputs: Vec<u64> = (0..2000).collect();
    let deadly = |x: &u64| {
        if victims.contains(x) {
            // SAFETY: kill and getpid have no preconditions.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
        Ok(x * 3)
    };
    let each = pmap_each(deadly, &inputs, workers).unwrap();
    for (i, outcome) in each.iter().enumerate() {
        if victims.contains(&(i as u64)) {
            match &outcome.as_ref().unwrap_err().error {
                Error::PeerEnded { status, .. } => {
                    assert_eq!(status.signal(), Some(libc::SIGKILL))
                }
                other => panic!("record {i}: {other}"),
            }
        } else {
            assert_eq!(outcome.as_ref().unwrap(), &(3 * i as u64), "record {i}");
        }
    }
}

#[test]
fn a_worker_killed_mid_chunk_fails_exactly_one_record() {
    // Record 100 sits in the middle of the first chunk (0..500).
    killed_mid_chunk(2, &[100]);
}

#[test]
fn a_lone_worker_killed_mid_chunk_is_replaced() {
    killed_mid_chunk(1, &[3, 4, 1000, 1999]);
}

#[test]
fn a_record_queued_behind_a_slow_one_runs_in_an_idle_worker() {
    // Record 0 waits (up to 20 s) for record 1 to have run. Records 0 and
    // 1 start out in the same worker's chunk; the other worker, done with
    // the rest, must take record 1 rather than stay idle.
    let flag = std::env::temp_dir().join(format!("pp-records-flag-{}", std::process::id()));
    let _ = std::fs::remove_file(&flag);
    let inputs: Vec<u32> = (0..11).collect();
    let each = pmap_each(
        |x: &u32| {
            match x {
                0 => {
                    for _ in 0..2000 {
                        if flag.exists() {
                            return Ok(0);
                        }
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    return Err(RemoteError::new(1, "record 1 waited behind record 0"));
                }
                1 => std::fs::write(&flag, b"1").map_err(|_| RemoteError::new(2, "write"))?,
                _ => {}
            }
            Ok(*x)
        },
        &inputs,
        2,
    )
    .unwrap();
    let _ = std::fs::remove_file(&flag);
    let outputs: Vec<u32> = each.into_iter().map(|o| o.unwrap()).collect();
    assert_eq!(outputs, inputs);
}

/// "No limit" (`usize::MAX`, C's `PP_UNLIMITED`) shares records out among
/// one worker per processor, as 0 does: it never forks a process per record.
#[test]
fn no_limit_runs_one_worker_per_processor_not_one_per_record() {
    let inputs: Vec<u32> = (0..2_000).collect();
    let pids = pmap_records(|_: &u32| Ok(std::process::id()), &inputs, usize::MAX).unwrap();
    let mut distinct = pids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(!distinct.contains(&std::process::id()), "ran in workers");
    assert!(
        distinct.len() <= pprocess::number_of_cores(),
        "{} workers for {} records on {} processors",
        distinct.len(),
        inputs.len(),
        pprocess::number_of_cores()
    );
}

/// Skewed records in three workers, so that idle workers take blocks back
/// from busy ones while they claim, and one worker killed mid-chunk: each
/// record runs exactly once (the killed one not at all), logged by an
/// append of its index to a file the workers share.
#[test]
fn every_record_runs_once_while_idle_workers_take_blocks_back() {
    use std::io::{Read, Write};

    const COUNT: u64 = 6000;
    const VICTIM: u64 = 2500;
    let path = std::env::temp_dir().join(format!("pp-records-once-{}", std::process::id()));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let append = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let inputs: Vec<u64> = (0..COUNT).collect();
    let each = pmap_each(
        |x: &u64| {
            if *x == VICTIM {
                // SAFETY: kill and getpid have no preconditions.
                unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            }
            if x.is_multiple_of(97) {
                let start = std::time::Instant::now();
                while start.elapsed() < std::time::Duration::from_millis(2) {
                    std::hint::spin_loop();
                }
            }
            // One write of 8 bytes with O_APPEND: never interleaved.
            (&append)
                .write_all(&x.to_le_bytes())
                .map_err(|_| RemoteError::new(1, "log"))?;
            Ok(x + 1)
        },
        &inputs,
        3,
    )
    .unwrap();
    for (i, outcome) in each.iter().enumerate() {
        match i as u64 {
            VICTIM => assert!(matches!(
                outcome.as_ref().unwrap_err().error,
                Error::PeerEnded { .. }
            )),
            i => assert_eq!(outcome.as_ref().unwrap(), &(i + 1), "record {i}"),
        }
    }
    let mut bytes = Vec::new();
    (&log).read_to_end(&mut bytes).unwrap();
    let mut ran: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    ran.sort_unstable();
    let expected: Vec<u64> = (0..COUNT).filter(|&i| i != VICTIM).collect();
    assert_eq!(ran.len(), expected.len(), "records run more than once");
    assert_eq!(ran, expected);
}
