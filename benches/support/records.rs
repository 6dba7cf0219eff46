//! The pmap rows (issue 14): `pp_pmap(..., PP_REUSE)` over shared-memory
//! records against the fork + `MAP_SHARED` static-slices floor, the
//! hand-written pipelined pool and Python's `Pool.map`; the typed Rust
//! `pmap_records`; the skewed and head-of-line workloads; and the rate by
//! worker count. `PP_BENCH_ONLY=pmap` runs only these.

use std::ffi::{c_int, c_void};
use std::hint::black_box;
use std::time::Duration;

use crate::raw;
use crate::report::{Row, Sample, Target, Unit};
use crate::{
    compare, expected_sum, raw_pipelined_pool, raw_pool, timed, tiny, Config, QUEUE_AHEAD,
};

/// A pp_function, as include/pprocess.h declares it.
type PpFunction =
    unsafe extern "C" fn(*const c_void, usize, *mut c_void, usize, *mut usize) -> c_int;

/// PP_REUSE from include/pprocess.h.
const PP_REUSE: u32 = 1;

/// An opaque pp_exchange handle.
#[repr(C)]
struct PpExchange {
    _opaque: [u8; 0],
}

extern "C" {
    // The C ABI of the crate this benchmark links (the `capi` feature).
    fn pp_queue_new(limit: usize, flags: u32, out: *mut *mut PpExchange) -> c_int;
    fn pp_exchange_call(
        ex: *mut PpExchange,
        function: Option<PpFunction>,
        input: *const c_void,
        input_len: usize,
        output_cap: usize,
    ) -> c_int;
    fn pp_exchange_next(
        ex: *mut PpExchange,
        buf: *mut c_void,
        cap: usize,
        len: *mut usize,
    ) -> c_int;
    fn pp_exchange_free(ex: *mut PpExchange);
    fn pp_pmap(
        function: Option<PpFunction>,
        inputs: *const c_void,
        input_size: usize,
        outputs: *mut c_void,
        output_size: usize,
        count: usize,
        limit: usize,
        flags: u32,
    ) -> c_int;
}

/// Reads the 8-byte record at `input`.
///
/// # Safety
/// `input` is valid for 8 bytes.
unsafe fn record(input: *const c_void) -> u64 {
    // SAFETY: per the caller.
    unsafe { input.cast::<u64>().read_unaligned() }
}

/// Writes an 8-byte answer and its length.
///
/// # Safety
/// `output` is valid for 8 bytes and `len` for a write.
unsafe fn answer(output: *mut c_void, len: *mut usize, value: u64) -> c_int {
    // SAFETY: per the caller.
    unsafe {
        output.cast::<u64>().write_unaligned(value);
        *len = 8;
    }
    0
}

/// The tiny task as a pp_function.
unsafe extern "C" fn tiny_record(
    input: *const c_void,
    _input_len: usize,
    output: *mut c_void,
    _cap: usize,
    len: *mut usize,
) -> c_int {
    // SAFETY: pmap passes 8-byte records and an 8-byte output.
    unsafe { answer(output, len, tiny(record(input))) }
}

/// Sleeps the record's microseconds; answers the record.
unsafe extern "C" fn nap_record(
    input: *const c_void,
    _input_len: usize,
    output: *mut c_void,
    _cap: usize,
    len: *mut usize,
) -> c_int {
    // SAFETY: pmap passes 8-byte records and an 8-byte output.
    let us = unsafe { record(input) };
    std::thread::sleep(Duration::from_micros(us));
    // SAFETY: as above.
    unsafe { answer(output, len, us) }
}

/// `pp_pmap(function, inputs, PP_REUSE)` into `outputs`, timed per record.
fn pp_records(function: PpFunction, inputs: &[u64], outputs: &mut [u64], workers: usize) -> Sample {
    let n = inputs.len();
    let (sample, rc) = timed(n, || {
        // SAFETY: `inputs` and `outputs` hold n 8-byte records each.
        unsafe {
            pp_pmap(
                Some(black_box(function)),
                inputs.as_ptr().cast(),
                8,
                outputs.as_mut_ptr().cast(),
                8,
                n,
                workers,
                PP_REUSE,
            )
        }
    });
    assert_eq!(rc, 0, "pp_pmap");
    sample
}

/// pp_pmap of the tiny task into `outputs`, a buffer the caller reuses.
fn pp_tiny(inputs: &[u64], outputs: &mut [u64], workers: usize) -> Sample {
    outputs.fill(0);
    pp_tiny_into(inputs, outputs, workers)
}

fn pp_tiny_into(inputs: &[u64], outputs: &mut [u64], workers: usize) -> Sample {
    let sample = pp_records(tiny_record, inputs, outputs, workers);
    assert_eq!(
        outputs.iter().fold(0, |a, &b| u64::wrapping_add(a, b)),
        expected_sum(inputs.len())
    );
    sample
}

/// pp_pmap of the tiny task into a buffer allocated for the call, as the
/// typed API's result is.
fn pp_tiny_fresh(inputs: &[u64], workers: usize) -> Sample {
    let (sample, ()) = timed(inputs.len(), || {
        let mut outputs = vec![0u64; inputs.len()];
        pp_tiny_into(inputs, &mut outputs, workers);
    });
    sample
}

/// The typed Rust API on the same records (the closure inlines `tiny`).
fn typed_tiny(inputs: &[u64], workers: usize) -> Sample {
    let (sample, outputs) = timed(inputs.len(), || {
        pprocess::pmap_records(|x: &u64| Ok(tiny(*x)), inputs, workers).expect("pmap_records")
    });
    assert_eq!(
        outputs.iter().fold(0, |a, &b| u64::wrapping_add(a, b)),
        expected_sum(inputs.len())
    );
    sample
}

/// The floor: an output mapping shared before the fork, `workers`
/// processes each calling the same function on a static slice, then waited
/// for. No messages, no schedule, no copy out.
fn floor(inputs: &[u64], workers: usize) -> Sample {
    let n = inputs.len();
    let function: PpFunction = black_box(tiny_record);
    let (sample, map) = timed(n, || {
        // SAFETY: a fresh anonymous shared mapping; checked below.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                n * 8,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(map, libc::MAP_FAILED, "mmap");
        let out = map.cast::<u64>();
        let mut pids = Vec::with_capacity(workers);
        for w in 0..workers {
            let (lo, hi) = (n * w / workers, n * (w + 1) / workers);
            // SAFETY: the benchmark is single-threaded; the child only
            // computes into the shared mapping and leaves with _exit.
            match unsafe { libc::fork() } {
                0 => {
                    let mut len = 0;
                    for (i, input) in inputs.iter().enumerate().take(hi).skip(lo) {
                        // SAFETY: i < n: inside the mapping.
                        unsafe {
                            function(
                                (input as *const u64).cast(),
                                8,
                                out.add(i).cast(),
                                8,
                                &mut len,
                            )
                        };
                    }
                    // SAFETY: _exit has no preconditions.
                    unsafe { libc::_exit(0) }
                }
                -1 => panic!("fork failed"),
                pid => pids.push(pid),
            }
        }
        for pid in pids {
            raw::waitpid(pid);
        }
        map
    });
    // SAFETY: the mapping holds n u64 written by the workers, who are gone.
    let outputs = unsafe { std::slice::from_raw_parts(map.cast::<u64>(), n) };
    assert_eq!(
        outputs.iter().fold(0, |a, &b| u64::wrapping_add(a, b)),
        expected_sum(n)
    );
    // SAFETY: the mapping is not used again.
    unsafe { libc::munmap(map, n * 8) };
    sample
}

/// The tiny task's inputs, and an output buffer of as many records.
fn tiny_inputs(cfg: &Config) -> (Vec<u64>, Vec<u64>) {
    let n = cfg.pmap_tasks;
    ((0..n as u64).collect(), vec![1; n])
}

fn millions(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else {
        n.to_string()
    }
}

/// `n` tiny tasks through a C queue with PP_REUSE at limit 2, as a C
/// program calls them (`pp_exchange_call`, then `pp_exchange_next` into its
/// own buffer once [`QUEUE_AHEAD`] wait): the reused-worker row through
/// the C ABI, which the Python package also uses.
fn c_reused_queue(n: usize) -> Sample {
    let (sample, sum) = timed(n, || {
        let mut queue = std::ptr::null_mut();
        // SAFETY: a valid out-pointer.
        assert_eq!(unsafe { pp_queue_new(2, PP_REUSE, &mut queue) }, 0);
        let (mut sum, mut taken) = (0u64, 0usize);
        let take = |sum: &mut u64| {
            let (mut got, mut len) = (0u64, 0usize);
            // SAFETY: the queue is live; `got` holds 8 bytes.
            let rc = unsafe { pp_exchange_next(queue, (&raw mut got).cast(), 8, &mut len) };
            assert!(rc >= 0 && len == 8, "pp_exchange_next: {rc}");
            *sum = sum.wrapping_add(got);
        };
        for x in 0..n as u64 {
            // SAFETY: the queue is live; the input is 8 readable bytes.
            let rc = unsafe {
                pp_exchange_call(
                    queue,
                    Some(black_box(tiny_record)),
                    (&raw const x).cast(),
                    8,
                    8,
                )
            };
            assert!(rc >= 0, "pp_exchange_call: {rc}");
            while x as usize + 1 - taken > QUEUE_AHEAD {
                take(&mut sum);
                taken += 1;
            }
        }
        while taken < n {
            take(&mut sum);
            taken += 1;
        }
        // SAFETY: the queue is live and not used again.
        unsafe { pp_exchange_free(queue) };
        sum
    });
    assert_eq!(sum, expected_sum(n));
    sample
}

/// The reused-worker row through the C ABI, against the pipelined pool.
pub fn c_reuse_queue(cfg: &Config) -> Row {
    let n = cfg.reuse_tasks;
    compare(
        format!(
            "reused workers through the C ABI (pp_exchange_call, pp_exchange_next), {n} tiny tasks, limit 2, vs pipelined pool"
        ),
        Unit::Rate,
        None,
        cfg.reuse_reps,
        || c_reused_queue(n),
        || raw_pipelined_pool(n, 2),
    )
}

/// pp_pmap against the floor, the hand-written pool and the typed Rust API
/// (2 workers); returns the rows and pp_pmap's own samples (for Python).
pub fn tiny_rows(cfg: &Config) -> Vec<Row> {
    let (inputs, mut outputs) = tiny_inputs(cfg);
    let n = inputs.len();
    let name = format!("pp_pmap PP_REUSE, {} tiny tasks, 2 workers", millions(n));
    vec![
        compare(
            format!("{name} vs fork + MAP_SHARED floor"),
            Unit::Rate,
            Some(Target::AtMost(2.0)),
            cfg.reps,
            || pp_tiny(&inputs, &mut outputs, 2),
            || floor(&inputs, 2),
        ),
        compare(
            format!("{name} vs hand-written pipelined pool"),
            Unit::Rate,
            None,
            cfg.pmap_pool_reps,
            || pp_tiny(&inputs, &mut outputs, 2),
            || raw_pool(n, 2),
        ),
        compare(
            format!(
                "typed Rust pmap_records vs pp_pmap into a new buffer, {} tiny tasks, 2 workers",
                millions(n)
            ),
            Unit::Rate,
            Some(Target::AtMost(1.1)),
            cfg.reps,
            || typed_tiny(&inputs, 2),
            || pp_tiny_fresh(&inputs, 2),
        ),
    ]
}

/// The Python row: pp_pmap's samples against Pool.map's (default chunks)
/// on as many tasks.
pub fn python_row(cfg: &Config, pp: &Row, python: &[f64]) -> Option<Row> {
    (!python.is_empty()).then(|| Row {
        section: "python",
        workload: format!(
            "pp_pmap PP_REUSE, {} tiny tasks, 2 workers vs Pool(2).map (default chunks)",
            millions(cfg.pmap_tasks)
        ),
        unit: pp.unit,
        ours: pp.ours.clone(),
        theirs: python
            .iter()
            .map(|&secs| Sample { secs, allocs: 0.0 })
            .collect(),
        target: Some(Target::AtLeast(10.0)),
    })
}

/// Every 50th task sleeps 2 ms, the rest 20 µs; against the ideal, the
/// serial time (the same calls in this process) over the workers.
pub fn skewed(cfg: &Config) -> Row {
    let n = cfg.skewed_tasks;
    let inputs: Vec<u64> = (0..n)
        .map(|i| if i % 50 == 0 { 2000 } else { 20 })
        .collect();
    let workers = 2;
    compare(
        format!("skewed: {n} tasks (every 50th 2 ms, the rest 20 µs), 2 workers vs serial ÷ 2"),
        Unit::Latency,
        Some(Target::AtMost(1.25)),
        cfg.reps.min(5),
        || {
            let mut outputs = vec![0u64; n];
            let sample = pp_records(nap_record, &inputs, &mut outputs, workers);
            assert_eq!(outputs, inputs);
            Sample {
                secs: sample.secs * n as f64,
                ..sample
            }
        },
        || {
            let (serial, ()) = timed(1, || {
                let (mut out, mut len) = (0u64, 0usize);
                for x in &inputs {
                    // SAFETY: 8-byte input and output.
                    unsafe {
                        nap_record(
                            (x as *const u64).cast(),
                            8,
                            (&mut out as *mut u64).cast(),
                            8,
                            &mut len,
                        )
                    };
                }
            });
            Sample {
                secs: serial.secs / workers as f64,
                allocs: 0.0,
            }
        },
    )
}

/// `[1500 ms, 10 × 150 ms]` on 2 workers against the 1.5 s optimum (a
/// tenth of each in short mode).
pub fn head_of_line(cfg: &Config) -> Row {
    let scale = if cfg.short { 10 } else { 1 };
    let mut inputs = vec![1_500_000 / scale];
    inputs.extend([150_000 / scale; 10]);
    let optimum = 1.5 / scale as f64;
    compare(
        format!(
            "head-of-line: [{} ms, 10 × {} ms], 2 workers vs {optimum} s",
            1500 / scale,
            150 / scale
        ),
        Unit::Latency,
        Some(Target::AtMost(1.15)),
        3,
        || {
            let mut outputs = vec![0u64; inputs.len()];
            let sample = pp_records(nap_record, &inputs, &mut outputs, 2);
            Sample {
                secs: sample.secs * inputs.len() as f64,
                ..sample
            }
        },
        || Sample {
            secs: optimum,
            allocs: 0.0,
        },
    )
}

/// The head-of-line case through a reused-worker Map (`pmap` with
/// `Options::reuse`, tasks sent as messages in guided windows).
pub fn head_of_line_reused(cfg: &Config) -> Row {
    let scale = if cfg.short { 10 } else { 1 };
    let mut inputs = vec![(1_500_000 / scale as u64).to_le_bytes()];
    inputs.extend([(150_000 / scale as u64).to_le_bytes(); 10]);
    let optimum = 1.5 / scale as f64;
    let options = pprocess::Options {
        reuse: true,
        ..pprocess::Options::default()
    };
    compare(
        format!(
            "head-of-line, reused workers (Map): [{} ms, 10 × {} ms], 2 workers vs {optimum} s",
            1500 / scale,
            150 / scale
        ),
        Unit::Latency,
        Some(Target::AtMost(1.15)),
        3,
        || {
            let (sample, done) = timed(1, || {
                let nap = |x: &[u8]| {
                    let us = u64::from_le_bytes(x.try_into().expect("8 bytes"));
                    std::thread::sleep(Duration::from_micros(us));
                    Ok(x.to_vec())
                };
                pprocess::pmap(nap, &inputs, 2, options)
                    .expect("pmap")
                    .filter(Result::is_ok)
                    .count()
            });
            assert_eq!(done, inputs.len());
            sample
        },
        || Sample {
            secs: optimum,
            allocs: 0.0,
        },
    )
}

/// pp_pmap against the floor with 1, 2, 4, … workers, up to the processors
/// present.
pub fn scaling(cfg: &Config) -> Vec<Row> {
    let (inputs, mut outputs) = tiny_inputs(cfg);
    let cpus = raw::online_cpus();
    let mut rows = Vec::new();
    let mut workers = 1;
    while workers <= cpus {
        rows.push(compare(
            format!(
                "pp_pmap PP_REUSE, {} tiny tasks, {workers} workers vs floor",
                millions(inputs.len())
            ),
            Unit::Rate,
            None,
            cfg.reps,
            || pp_tiny(&inputs, &mut outputs, workers),
            || floor(&inputs, workers),
        ));
        workers *= 2;
    }
    rows
}
