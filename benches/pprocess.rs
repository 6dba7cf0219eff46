//! `cargo bench`: every workload through pprocess and through a hand-written
//! libc baseline doing the same system calls, alternating in the same run,
//! plus Python multiprocessing as a peer and the memory figures (issue 5).
//!
//! Results go to stdout and to `target/bench/`: `results.md`, `results.csv`
//! and `throughput.svg`. Ratios are pprocess time / baseline time: below 1
//! pprocess is faster. Environment:
//! - `PP_BENCH_SHORT=1`: fewer operations and repetitions (under a minute);
//! - `PP_BENCH_ONLY=group,...`: only these groups (see [`GROUPS`]);
//!   `scaling` is the pmap rows by worker count alone (what
//!   `benches/scaling.sh` runs on a many-core machine);
//! - `PP_BENCH_OUT=dir`: write the files there instead of `target/bench/`;
//! - `PP_BENCH_SIDE=pprocess` or `baseline`: one side only, for profiling.

#[path = "support/raw.rs"]
mod raw;
// The pmap rows call pp_pmap, the C ABI: linked with the `capi` feature
// (the dev-dependency turns it on; the published crate has none).
#[cfg(feature = "capi")]
#[path = "support/records.rs"]
mod records;
#[path = "support/report.rs"]
mod report;

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use pprocess::exchange::Growable;
use pprocess::{pmap, Channel, Error, Exchange, Options, RemoteError, StoreData, TaskId};
use raw::{Conn, Msg};
use report::{Row, Sample, Table, Target, Unit};

// ---------------------------------------------------------------- allocations

/// Counts every allocation of this process (a forked child counts its own).
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds GlobalAlloc::alloc's contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from System.alloc with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds GlobalAlloc::realloc's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ------------------------------------------------------------ timing helpers

/// Times `f`, which performs `ops` operations; also counts its allocations.
fn timed<R>(ops: usize, f: impl FnOnce() -> R) -> (Sample, R) {
    let allocs = ALLOCS.load(Ordering::Relaxed);
    let start = Instant::now();
    let result = f();
    let secs = start.elapsed().as_secs_f64();
    let allocs = ALLOCS.load(Ordering::Relaxed) - allocs;
    let sample = Sample {
        secs: secs / ops as f64,
        allocs: allocs as f64 / ops as f64,
    };
    (sample, result)
}

/// Runs both sides `reps` times, alternating which goes first.
fn compare(
    name: impl Into<String>,
    unit: Unit,
    target: Option<Target>,
    reps: usize,
    mut ours: impl FnMut() -> Sample,
    mut theirs: impl FnMut() -> Sample,
) -> Row {
    let name = name.into();
    // PP_BENCH_SIDE=pprocess or =baseline runs one side only (for profiling).
    let side = std::env::var("PP_BENCH_SIDE").unwrap_or_default();
    let mut ours = || (side != "baseline").then(&mut ours);
    let mut theirs = || (side != "pprocess").then(&mut theirs);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for rep in 0..reps {
        if rep % 2 == 0 {
            a.extend(ours());
            b.extend(theirs());
        } else {
            b.extend(theirs());
            a.extend(ours());
        }
    }
    let row = Row {
        section: "baseline",
        workload: name,
        unit,
        ours: a,
        theirs: b,
        target,
    };
    eprintln!(
        "  {:<44} ratio {:.2}  ({:.2} us vs {:.2} us per op)",
        row.workload,
        row.ratio(),
        row.ours_median() * 1e6,
        row.theirs_median() * 1e6
    );
    row
}

// ------------------------------------------------------------------ settings

struct Config {
    short: bool,
    reps: usize,
    round_trips: usize,
    stream_bytes: usize,
    spawns: usize,
    fork_tasks: usize,
    reuse_tasks: usize,
    reuse_reps: usize,
    fan_children: usize,
    fan_messages: usize,
    py_round_trips: usize,
    py_tasks_chunk1: usize,
    py_tasks_default: usize,
    /// Tiny tasks of the pmap rows (issue 14's 4M).
    pmap_tasks: usize,
    /// Repetitions against the hand-written pool (seconds each at 4M).
    pmap_pool_reps: usize,
    skewed_tasks: usize,
}

impl Config {
    fn from_env() -> Config {
        let short = std::env::var("PP_BENCH_SHORT").is_ok_and(|v| !v.is_empty() && v != "0");
        if short {
            Config {
                short,
                reps: 3,
                round_trips: 5_000,
                stream_bytes: 32 << 20,
                spawns: 100,
                fork_tasks: 500,
                reuse_tasks: 100_000,
                reuse_reps: 3,
                fan_children: 256,
                fan_messages: 100,
                py_round_trips: 2_000,
                py_tasks_chunk1: 5_000,
                py_tasks_default: 100_000,
                pmap_tasks: 1_000_000,
                pmap_pool_reps: 3,
                skewed_tasks: 1_000,
            }
        } else {
            Config {
                short,
                reps: 7,
                round_trips: 50_000,
                stream_bytes: 256 << 20,
                spawns: 500,
                fork_tasks: 5_000,
                reuse_tasks: 1_000_000,
                reuse_reps: 5,
                fan_children: 256,
                fan_messages: 1_000,
                py_round_trips: 20_000,
                py_tasks_chunk1: 50_000,
                py_tasks_default: 1_000_000,
                pmap_tasks: 4_000_000,
                pmap_pool_reps: 5,
                skewed_tasks: 5_000,
            }
        }
    }
}

/// The tiny task of the map workloads.
fn tiny(x: u64) -> u64 {
    x.wrapping_mul(x) ^ 0x9e37_79b9
}

/// What every map must add up to.
fn expected_sum(n: usize) -> u64 {
    (0..n as u64).map(tiny).fold(0, u64::wrapping_add)
}

fn le_u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().expect("an 8-byte result"))
}

// ----------------------------------------------------------------- ping-pong

const SMALL: usize = 64;

/// Where the two processes of a ping-pong run.
#[derive(Clone, Copy)]
enum Cpus {
    Apart,
    Together,
}

impl Cpus {
    /// (parent's CPU, child's CPU).
    fn pins(self) -> (Option<usize>, Option<usize>) {
        match self {
            Cpus::Apart => (Some(0), Some(1)),
            Cpus::Together => (Some(0), Some(0)),
        }
    }

    fn ping_pong_name(self, acked: bool) -> String {
        let cpus = match self {
            Cpus::Apart => "different CPUs",
            Cpus::Together => "one CPU",
        };
        let acked = if acked { " (send_acked)" } else { "" };
        format!("64 B ping-pong{acked}, {cpus}")
    }
}

/// The child side: echo every message back until an empty one.
fn pp_echo(ch: &mut Channel, cpu: Option<usize>, acked: bool) -> Result<(), RemoteError> {
    raw::pin(cpu);
    let mut buf = [0u8; SMALL];
    loop {
        let n = ch.receive(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if acked {
            ch.send_acked(&buf[..n])?;
        } else {
            ch.send(&buf[..n])?;
        }
    }
}

fn pp_ping_pong(rounds: usize, cpus: Cpus, acked: bool) -> Sample {
    let (ours, theirs) = cpus.pins();
    let mut ch = pprocess::start(move |ch| pp_echo(ch, theirs, acked)).expect("start");
    raw::pin(ours);
    let msg = [7u8; SMALL];
    let mut buf = [0u8; SMALL];
    let mut round = |ch: &mut Channel| {
        if acked {
            ch.send_acked(&msg).expect("send_acked");
        } else {
            ch.send(&msg).expect("send");
        }
        assert_eq!(ch.receive(&mut buf).expect("receive"), SMALL);
    };
    for _ in 0..rounds / 20 {
        round(&mut ch); // warm up
    }
    let (sample, ()) = timed(rounds, || (0..rounds).for_each(|_| round(&mut ch)));
    ch.send(&[]).expect("stop");
    assert!(ch.wait().expect("wait").success());
    raw::pin(None);
    sample
}

/// The baseline's child side: echo, acknowledging each way when `acked`.
fn raw_echo(conn: &mut Conn, cpu: Option<usize>, acked: bool) {
    raw::pin(cpu);
    let mut buf = [0u8; SMALL];
    loop {
        match conn.recv(&mut buf) {
            Msg::Data(0) | Msg::Eof => return,
            Msg::Data(n) if acked => {
                conn.send_ack();
                conn.send(&buf[..n]);
                assert_eq!(conn.recv(&mut buf), Msg::Ack);
            }
            Msg::Data(n) => conn.send(&buf[..n]),
            Msg::Ack => panic!("unexpected ack"),
        }
    }
}

fn raw_ping_pong(rounds: usize, cpus: Cpus, acked: bool) -> Sample {
    let (ours, theirs) = cpus.pins();
    let (pid, mut conn) = raw::spawn(&[], |conn| raw_echo(conn, theirs, acked));
    raw::pin(ours);
    let msg = [7u8; SMALL];
    let mut buf = [0u8; SMALL];
    let mut round = |conn: &mut Conn| {
        conn.send(&msg);
        if acked {
            assert_eq!(conn.recv(&mut buf), Msg::Ack);
        }
        assert_eq!(conn.recv(&mut buf), Msg::Data(SMALL));
        if acked {
            conn.send_ack();
        }
    };
    for _ in 0..rounds / 20 {
        round(&mut conn);
    }
    let (sample, ()) = timed(rounds, || (0..rounds).for_each(|_| round(&mut conn)));
    conn.send(&[]);
    raw::waitpid(pid);
    raw::pin(None);
    sample
}

fn ping_pong(cfg: &Config, cpus: Cpus, acked: bool) -> Row {
    let n = cfg.round_trips;
    compare(
        cpus.ping_pong_name(acked),
        Unit::Latency,
        Some(Target::AtMost(1.10)),
        cfg.reps,
        || pp_ping_pong(n, cpus, acked),
        || raw_ping_pong(n, cpus, acked),
    )
}

// ---------------------------------------------------------------- throughput

fn pp_stream(size: usize, count: usize) -> Sample {
    let data = vec![0x5au8; size];
    let mut buf = vec![0u8; size];
    let mut ch = pprocess::start(|ch| {
        for _ in 0..count {
            ch.send(&data)?;
        }
        Ok(())
    })
    .expect("start");
    let (sample, ()) = timed(count, || {
        for _ in 0..count {
            assert_eq!(ch.receive(&mut buf).expect("receive"), size);
        }
    });
    assert!(ch.wait().expect("wait").success());
    sample
}

fn raw_stream(size: usize, count: usize) -> Sample {
    let data = vec![0x5au8; size];
    let mut buf = vec![0u8; size];
    let (pid, mut conn) = raw::spawn(&[], |conn| (0..count).for_each(|_| conn.send(&data)));
    let (sample, ()) = timed(count, || {
        for _ in 0..count {
            assert_eq!(conn.recv(&mut buf), Msg::Data(size));
        }
    });
    raw::waitpid(pid);
    sample
}

fn throughput(cfg: &Config, size: usize) -> Row {
    let count = (cfg.stream_bytes / size).max(4);
    compare(
        format!(
            "one-way throughput, {} messages",
            report::human_bytes(size as f64)
        ),
        Unit::Throughput(size as f64),
        Some(Target::AtMost(1.10)),
        cfg.reps,
        || pp_stream(size, count),
        || raw_stream(size, count),
    )
}

// ------------------------------------------------------------- spawn latency

fn pp_spawn(n: usize) -> Sample {
    let mut buf = [0u8; 8];
    timed(n, || {
        for _ in 0..n {
            let mut ch = pprocess::start(|ch| Ok(ch.send(&[1])?)).expect("start");
            assert_eq!(ch.receive(&mut buf).expect("receive"), 1);
            assert!(ch.wait().expect("wait").success());
        }
    })
    .0
}

fn raw_spawn(n: usize) -> Sample {
    let mut buf = [0u8; 8];
    timed(n, || {
        for _ in 0..n {
            let (pid, mut conn) = raw::spawn(&[], |conn| conn.send(&[1]));
            assert_eq!(conn.recv(&mut buf), Msg::Data(1));
            drop(conn);
            raw::waitpid(pid);
        }
    })
    .0
}

/// A process workload like the fork-per-task map (one fork, socket pair and
/// wait per task), so it gets the map's target rather than a channel's.
fn spawn_latency(cfg: &Config) -> Row {
    let n = cfg.spawns;
    compare(
        "start → result → reaped, one tiny task",
        Unit::Latency,
        Some(Target::AtMost(1.25)),
        cfg.reps,
        || pp_spawn(n),
        || raw_spawn(n),
    )
}

// ------------------------------------------------------ fork-per-task map

fn pp_map(n: usize, options: Options) -> Sample {
    let inputs = (0..n as u64).map(u64::to_le_bytes);
    let (sample, sum) = timed(n, || {
        let map = pmap(
            |x: &[u8]| Ok(tiny(le_u64(x)).to_le_bytes().to_vec()),
            inputs,
            2,
            options,
        )
        .expect("pmap");
        map.map(|out| le_u64(&out.expect("task result")))
            .fold(0, u64::wrapping_add)
    });
    assert_eq!(sum, expected_sum(n));
    sample
}

/// A process per task, at most `limit` at once, results kept in task order.
fn raw_fork_map(n: usize, limit: usize) -> Sample {
    struct Running {
        pid: i32,
        conn: Conn,
        task: usize,
    }
    let (sample, results) = timed(n, || {
        let mut results = vec![0u64; n];
        let mut running: Vec<Running> = Vec::with_capacity(limit);
        let mut fds = Vec::with_capacity(limit);
        let mut inherited = Vec::with_capacity(limit);
        let mut buf = [0u8; 8];
        let (mut next, mut done) = (0, 0);
        while done < n {
            while running.len() < limit && next < n {
                inherited.clear();
                inherited.extend(running.iter().map(|r| r.conn.fd));
                let task = next;
                let (pid, conn) = raw::spawn(&inherited, |conn| {
                    conn.send(&tiny(task as u64).to_le_bytes())
                });
                running.push(Running { pid, conn, task });
                next += 1;
            }
            fds.clear();
            fds.extend(running.iter().map(|r| raw::pollin(r.conn.fd)));
            raw::poll(&mut fds, -1);
            for i in (0..running.len()).rev().filter(|&i| fds[i].revents != 0) {
                let mut r = running.swap_remove(i);
                assert_eq!(r.conn.recv(&mut buf), Msg::Data(8));
                results[r.task] = le_u64(&buf);
                drop(r.conn);
                raw::waitpid(r.pid);
                done += 1;
            }
        }
        results
    });
    assert_eq!(
        results.into_iter().fold(0, u64::wrapping_add),
        expected_sum(n)
    );
    sample
}

fn fork_map(cfg: &Config) -> Row {
    let n = cfg.fork_tasks;
    compare(
        format!("fork-per-task map, {n} tiny tasks, limit 2"),
        Unit::Rate,
        Some(Target::AtMost(1.25)),
        cfg.reps,
        || pp_map(n, Options::default()),
        || raw_fork_map(n, 2),
    )
}

// ------------------------------------------------- reused, pipelined workers

const WINDOW: usize = 32;

/// `workers` reused processes, each with up to [`WINDOW`] requests queued in
/// its socket; a poll loop keeps the windows full and collects results.
fn raw_pool(n: usize, workers: usize) -> Sample {
    struct Worker {
        pid: i32,
        conn: Conn,
        queued: std::collections::VecDeque<usize>,
    }
    let serve = |conn: &mut Conn| {
        let mut req = [0u8; 8];
        while let Msg::Data(8) = conn.recv(&mut req) {
            conn.send(&tiny(le_u64(&req)).to_le_bytes());
        }
    };
    let (sample, results) = timed(n, || {
        let mut pool: Vec<Worker> = Vec::with_capacity(workers);
        for _ in 0..workers {
            let inherited: Vec<i32> = pool.iter().map(|w| w.conn.fd).collect();
            let (pid, conn) = raw::spawn(&inherited, serve);
            let queued = std::collections::VecDeque::with_capacity(WINDOW);
            pool.push(Worker { pid, conn, queued });
        }
        let mut results = vec![0u64; n];
        let mut fds: Vec<libc::pollfd> = pool.iter().map(|w| raw::pollin(w.conn.fd)).collect();
        let mut buf = [0u8; 8];
        let (mut next, mut done) = (0, 0);
        while done < n {
            for w in &mut pool {
                while w.queued.len() < WINDOW && next < n {
                    w.conn.send(&(next as u64).to_le_bytes());
                    w.queued.push_back(next);
                    next += 1;
                }
            }
            raw::poll(&mut fds, -1);
            for (w, fd) in pool.iter_mut().zip(&fds) {
                if fd.revents == 0 {
                    continue;
                }
                assert!(w.conn.fill(), "worker hung up");
                while let Some(Msg::Data(8)) = w.conn.try_recv(&mut buf) {
                    let task = w.queued.pop_front().expect("a queued task");
                    results[task] = le_u64(&buf);
                    done += 1;
                }
            }
        }
        for w in pool {
            stop_worker(w.pid, w.conn);
        }
        results
    });
    check_results(results, n);
    sample
}

/// Ends a pool's worker: the end of its stream, then its exit.
fn stop_worker(pid: i32, conn: Conn) {
    drop(conn);
    raw::waitpid(pid);
}

/// Checks a map's results, by task, against the tiny task.
fn check_results(results: Vec<u64>, n: usize) {
    assert_eq!(
        results.into_iter().fold(0, u64::wrapping_add),
        expected_sum(n)
    );
}

/// Requests a pipelined pool's worker may have queued (8 bytes each).
const PIPELINE: usize = 256;

/// The strongest simple pool: `workers` forked workers on socketpairs, each
/// reading every request queued in its socket (8 bytes each, no framing)
/// and answering them all in one write; the creator keeps up to
/// [`PIPELINE`] requests queued per worker, written in one write, and reads
/// every answer queued.
fn raw_pipelined_pool(n: usize, workers: usize) -> Sample {
    fn write_all(fd: i32, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            // SAFETY: a valid buffer to a socket this process owns.
            let done = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
            assert!(done > 0, "write: {}", std::io::Error::last_os_error());
            bytes = &bytes[done as usize..];
        }
    }
    fn read_some(fd: i32, buf: &mut [u8]) -> usize {
        // SAFETY: a valid buffer from a socket this process owns.
        let got = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        assert!(got >= 0, "read: {}", std::io::Error::last_os_error());
        got as usize
    }
    let serve = |conn: &mut Conn| {
        let mut requests = vec![0u8; 64 << 10];
        let mut answers = Vec::with_capacity(64 << 10);
        let mut held = 0;
        loop {
            let got = read_some(conn.fd, &mut requests[held..]);
            if got == 0 {
                return;
            }
            held += got;
            let whole = held / 8 * 8;
            answers.clear();
            for request in requests[..whole].chunks_exact(8) {
                answers.extend_from_slice(&tiny(le_u64(request)).to_le_bytes());
            }
            write_all(conn.fd, &answers);
            requests.copy_within(whole..held, 0);
            held -= whole;
        }
    };
    struct Worker {
        pid: i32,
        conn: Conn,
        queued: std::collections::VecDeque<usize>,
        partial: Vec<u8>,
    }
    let (sample, results) = timed(n, || {
        let mut pool: Vec<Worker> = Vec::with_capacity(workers);
        for _ in 0..workers {
            let inherited: Vec<i32> = pool.iter().map(|w| w.conn.fd).collect();
            let (pid, conn) = raw::spawn(&inherited, serve);
            let queued = std::collections::VecDeque::with_capacity(PIPELINE);
            pool.push(Worker {
                pid,
                conn,
                queued,
                partial: Vec::with_capacity(8),
            });
        }
        let mut results = vec![0u64; n];
        let mut fds: Vec<libc::pollfd> = pool.iter().map(|w| raw::pollin(w.conn.fd)).collect();
        let mut out = Vec::with_capacity(PIPELINE * 8);
        let mut buf = vec![0u8; PIPELINE * 8 * 2];
        let (mut next, mut done) = (0, 0);
        while done < n {
            for w in &mut pool {
                out.clear();
                while w.queued.len() < PIPELINE && next < n {
                    out.extend_from_slice(&(next as u64).to_le_bytes());
                    w.queued.push_back(next);
                    next += 1;
                }
                write_all(w.conn.fd, &out);
            }
            raw::poll(&mut fds, -1);
            for (w, fd) in pool.iter_mut().zip(&fds) {
                if fd.revents == 0 {
                    continue;
                }
                let got = read_some(w.conn.fd, &mut buf);
                assert!(got > 0, "worker hung up");
                w.partial.extend_from_slice(&buf[..got]);
                let whole = w.partial.len() / 8 * 8;
                for answer in w.partial[..whole].chunks_exact(8) {
                    let task = w.queued.pop_front().expect("a queued task");
                    results[task] = le_u64(answer);
                    done += 1;
                }
                w.partial.drain(..whole);
            }
        }
        for w in pool {
            stop_worker(w.pid, w.conn);
        }
        results
    });
    check_results(results, n);
    sample
}

/// Tasks a [`pp_reused_queue`] lets wait before it takes results.
const QUEUE_AHEAD: usize = 4096;

/// `n` tiny tasks (an 8-byte square, [`pprocess::Exchange::manage_value`])
/// through a Queue with reuse at limit 2, as a program calls them: results
/// taken as they come once [`QUEUE_AHEAD`] wait, read in place
/// ([`pprocess::Exchange::next_result_with`]).
fn pp_reused_queue(n: usize) -> Sample {
    let reuse = Options {
        reuse: true,
        ..Options::default()
    };
    let (sample, sum) = timed(n, || {
        let mut queue = pprocess::Queue::with_options(2, reuse);
        // The typed form of a function of a u64: arguments and answer are
        // 8 bytes each, as the pool's are, and the worker allocates nothing
        // per task.
        let square = queue.manage_value(|x: u64| Ok(tiny(x)));
        // Each result is read where the queue keeps it, as the pool reads
        // its answers: nothing is copied out or allocated per result.
        let mut sum = 0u64;
        let add = |sum: &mut u64, result: Result<&[u8], &pprocess::TaskError>| {
            *sum = sum.wrapping_add(le_u64(result.expect("task result")));
        };
        for x in 0..n as u64 {
            square.call_value(&mut queue, &x).expect("call");
            while queue.waiting() > QUEUE_AHEAD {
                let taken = queue.next_result_with(-1, |_, result| add(&mut sum, result));
                taken.expect("a result");
            }
        }
        while queue
            .next_result_with(-1, |_, result| add(&mut sum, result))
            .is_ok()
        {}
        sum
    });
    assert_eq!(sum, expected_sum(n));
    sample
}

/// The reused-worker row of issue 20: a Queue with reuse against the
/// pipelined pool, which batches its answers as pprocess's ring does.
fn reuse_queue(cfg: &Config) -> Row {
    let n = cfg.reuse_tasks;
    compare(
        format!("reused workers (Queue), {n} tiny tasks, limit 2, vs pipelined pool"),
        Unit::Rate,
        Some(Target::AtMost(1.0)),
        cfg.reuse_reps,
        || pp_reused_queue(n),
        || raw_pipelined_pool(n, 2),
    )
}

/// pmap with reused workers; the baseline is a weaker peer: its workers
/// answer each task with a write of its own.
fn reuse_map(cfg: &Config) -> Row {
    let n = cfg.reuse_tasks;
    let reuse = Options {
        reuse: true,
        ..Options::default()
    };
    compare(
        format!("reused workers (pmap), {n} tiny tasks, 2 workers, vs per-task-write pool"),
        Unit::Rate,
        Some(Target::AtMost(2.0)),
        cfg.reuse_reps,
        || pp_map(n, reuse),
        || raw_pool(n, 2),
    )
}

// -------------------------------------------------------------------- fan-in

/// Counts messages, received into one fixed buffer.
struct Tally {
    messages: usize,
    buf: [u8; SMALL],
}

impl StoreData for Tally {
    fn store_data(&mut self, channel: &mut Channel, _task: TaskId) -> pprocess::Result<()> {
        channel.receive(&mut self.buf)?;
        self.messages += 1;
        Ok(())
    }

    fn store_error(&mut self, task: TaskId, error: Error, _: Option<&RemoteError>) {
        panic!("fan-in task {task} failed: {error}");
    }
}

fn pp_fan_in(children: usize, messages: usize) -> Sample {
    let options = Options {
        continuous: true,
        ..Options::default()
    };
    let (sample, got) = timed(children * messages, || {
        let mut exchange: Exchange<Growable, Tally> = Exchange::new(
            children,
            options,
            Tally {
                messages: 0,
                buf: [0; SMALL],
            },
        );
        for _ in 0..children {
            exchange
                .start(move |ch| {
                    let msg = [3u8; SMALL];
                    for _ in 0..messages {
                        ch.send(&msg)?;
                    }
                    Ok(())
                })
                .expect("start");
        }
        exchange.finish().expect("finish");
        exchange.handler().messages
    });
    assert_eq!(got, children * messages);
    sample
}

fn raw_fan_in(children: usize, messages: usize) -> Sample {
    let (sample, got) = timed(children * messages, || {
        let mut kids: Vec<(i32, Conn)> = Vec::with_capacity(children);
        let mut inherited = Vec::with_capacity(children);
        for _ in 0..children {
            inherited.clear();
            inherited.extend(kids.iter().map(|(_, c)| c.fd));
            kids.push(raw::spawn(&inherited, |conn| {
                let msg = [3u8; SMALL];
                (0..messages).for_each(|_| conn.send(&msg));
            }));
        }
        let mut fds = Vec::with_capacity(children);
        let mut buf = [0u8; SMALL];
        let mut got = 0;
        while !kids.is_empty() {
            fds.clear();
            fds.extend(kids.iter().map(|(_, c)| raw::pollin(c.fd)));
            raw::poll(&mut fds, -1);
            for i in (0..kids.len()).rev().filter(|&i| fds[i].revents != 0) {
                let conn = &mut kids[i].1;
                if conn.fill() {
                    while let Some(Msg::Data(_)) = conn.try_recv(&mut buf) {
                        got += 1;
                    }
                } else {
                    let (pid, conn) = kids.swap_remove(i);
                    drop(conn);
                    raw::waitpid(pid);
                }
            }
        }
        got
    });
    assert_eq!(got, children * messages);
    sample
}

fn fan_in(cfg: &Config) -> Row {
    let (c, m) = (cfg.fan_children, cfg.fan_messages);
    compare(
        format!("fan-in, {c} children × {m} 64 B messages"),
        Unit::Rate,
        Some(Target::AtMost(1.10)),
        cfg.reps,
        || pp_fan_in(c, m),
        || raw_fan_in(c, m),
    )
}

// -------------------------------------------------------------------- memory

/// Runs `f` in a forked process and returns the numbers it reports.
fn in_subprocess(f: impl FnOnce() -> [u64; 2]) -> [u64; 2] {
    let (pid, mut conn) = raw::spawn(&[], |conn| {
        let values = f();
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        conn.send(&bytes);
    });
    let mut buf = [0u8; 16];
    assert_eq!(conn.recv(&mut buf), Msg::Data(16));
    raw::waitpid(pid);
    [le_u64(&buf[..8]), le_u64(&buf[8..])]
}

/// Peak RSS of a fan-in run, in a fresh coordinator process: (peak, growth).
fn fan_in_rss(run: fn(usize, usize) -> Sample, cfg: &Config) -> [u64; 2] {
    let (c, m) = (cfg.fan_children, cfg.fan_messages);
    in_subprocess(|| {
        let before = raw::current_rss();
        run(c, m);
        let peak = raw::peak_rss();
        [peak, peak.saturating_sub(before)]
    })
}

/// Allocations per message received into a caller's buffer, after one
/// warm-up message.
fn receive_allocs(n: usize) -> f64 {
    let mut ch = pprocess::start(|ch| {
        let msg = [9u8; SMALL];
        for _ in 0..=n {
            ch.send(&msg)?;
        }
        Ok(())
    })
    .expect("start");
    let mut buf = [0u8; SMALL];
    ch.receive(&mut buf).expect("receive");
    let (sample, ()) = timed(n, || {
        for _ in 0..n {
            ch.receive(&mut buf).expect("receive");
        }
    });
    assert!(ch.wait().expect("wait").success());
    sample.allocs
}

/// Builds libpprocess.so with the root Makefile's `make` in its own target
/// directory (the running `cargo bench` may hold the usual one), strips a
/// copy, and returns (stripped size, unstripped size).
fn library_size(out: &Path) -> Option<(u64, u64)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = root.join("target/bench/lib-build");
    let status = Command::new("make")
        .arg("-C")
        .arg(root)
        .arg("--quiet")
        .arg(format!("TARGET_DIR={}", target.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    let built = target.join("release/libpprocess.so");
    let copy = out.join("libpprocess.stripped.so");
    std::fs::copy(&built, &copy).ok()?;
    let stripped = Command::new("strip").arg(&copy).status().ok()?;
    if !stripped.success() {
        return None;
    }
    Some((
        std::fs::metadata(&copy).ok()?.len(),
        std::fs::metadata(&built).ok()?.len(),
    ))
}

fn count_row(
    name: &str,
    unit: &'static str,
    ours: f64,
    theirs: Option<f64>,
    target: Option<Target>,
) -> Row {
    let sample = |v: f64| Sample {
        secs: v,
        allocs: 0.0,
    };
    Row {
        section: "memory",
        workload: name.to_string(),
        unit: Unit::Count(unit),
        ours: vec![sample(ours)],
        theirs: theirs.map(sample).into_iter().collect(),
        target,
    }
}

fn memory(cfg: &Config, out: &Path) -> Vec<Row> {
    eprintln!("memory");
    let mut rows = vec![count_row(
        "heap allocations per message, receive into buffer",
        "allocs",
        receive_allocs(if cfg.short { 10_000 } else { 100_000 }),
        Some(0.0),
        Some(Target::CountAtMost(0.0)),
    )];
    let ours = fan_in_rss(pp_fan_in, cfg);
    let theirs = fan_in_rss(raw_fan_in, cfg);
    let name = format!("fan-in peak RSS ({} children)", cfg.fan_children);
    rows.push(count_row(
        &name,
        "bytes",
        ours[0] as f64,
        Some(theirs[0] as f64),
        None,
    ));
    let name = "fan-in RSS growth over the coordinator's start";
    rows.push(count_row(
        name,
        "bytes",
        ours[1] as f64,
        Some(theirs[1] as f64),
        None,
    ));
    if cfg.short {
        eprintln!("  (libpprocess.so size: full mode only, it needs a release build)");
        return rows;
    }
    eprintln!("  building libpprocess.so (make)");
    match library_size(out) {
        Some((stripped, full)) => {
            rows.push(count_row(
                "libpprocess.so, stripped",
                "bytes",
                stripped as f64,
                None,
                None,
            ));
            rows.push(count_row(
                "libpprocess.so, as built",
                "bytes",
                full as f64,
                None,
                None,
            ));
        }
        None => eprintln!("  (could not build or strip libpprocess.so)"),
    }
    rows
}

// ----------------------------------------------------------- Python peer

/// Samples (seconds per operation) from benches/peer.py, by name; empty
/// when python3 is missing or fails.
fn python_peer(args: &[String]) -> std::collections::HashMap<String, Vec<f64>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peer.py");
    eprintln!("python multiprocessing peer");
    let output = Command::new("python3").arg(script).args(args).output();
    let mut samples = std::collections::HashMap::<String, Vec<f64>>::new();
    match output {
        Ok(out) if out.status.success() => {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let mut parts = line.split_whitespace();
                if let (Some(key), Some(Ok(v))) = (parts.next(), parts.next().map(str::parse)) {
                    samples.entry(key.to_string()).or_default().push(v);
                }
            }
        }
        Ok(out) => eprintln!("  peer.py failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => eprintln!("  no python3 ({e}): no peer column"),
    }
    samples
}

fn python_rows(cfg: &Config, channel: &[Row], reuse: &[Row]) -> Vec<Row> {
    let args = [
        cfg.py_round_trips,
        cfg.py_tasks_chunk1,
        cfg.py_tasks_default,
        cfg.reps,
    ]
    .map(|n| n.to_string());
    let py = python_peer(&args);
    let ours = |name: &str| channel.iter().chain(reuse).find(|r| r.workload == name);
    let mut pairs = vec![
        (
            Cpus::Apart.ping_pong_name(false),
            "(Pipe)",
            "pingpong_apart",
            None,
        ),
        (
            Cpus::Together.ping_pong_name(false),
            "(Pipe)",
            "pingpong_together",
            None,
        ),
    ];
    for row in reuse.iter().filter(|row| row.workload.contains("(pmap)")) {
        pairs.push((
            row.workload.clone(),
            "vs Pool.map(chunksize=1)",
            "pool_map_chunk1",
            Some(Target::AtLeast(20.0)),
        ));
        pairs.push((
            row.workload.clone(),
            "vs Pool.map (default chunks)",
            "pool_map_default",
            None,
        ));
    }
    let mut rows = Vec::new();
    for (name, versus, key, target) in pairs {
        if let (Some(row), Some(samples)) = (ours(&name), py.get(key)) {
            rows.push(Row {
                section: "python",
                workload: format!("{name} {versus}"),
                unit: row.unit,
                ours: row.ours.clone(),
                theirs: samples
                    .iter()
                    .map(|&secs| Sample { secs, allocs: 0.0 })
                    .collect(),
                target,
            });
        }
    }
    rows
}

// ---------------------------------------------------------------------- pmap

#[cfg(not(feature = "capi"))]
fn pmap_rows(_: &Config, _: bool) -> Vec<Row> {
    eprintln!("skipped: the pmap rows need the capi feature (cargo bench --features capi)");
    Vec::new()
}

/// The pmap rows, with Python's Pool.map on as many tasks; without `all`,
/// only the rows by worker count.
#[cfg(feature = "capi")]
fn pmap_rows(cfg: &Config, all: bool) -> Vec<Row> {
    eprintln!("pmap over shared-memory records");
    if !all {
        return records::scaling(cfg);
    }
    let mut rows = records::tiny_rows(cfg);
    let args = [
        "pmap".to_string(),
        cfg.pmap_tasks.to_string(),
        cfg.reps.to_string(),
    ];
    let python = python_peer(&args)
        .remove("pool_map_pmap")
        .unwrap_or_default();
    rows.extend(records::python_row(cfg, &rows[0], &python));
    rows.push(records::skewed(cfg));
    rows.push(records::head_of_line(cfg));
    rows.push(records::head_of_line_reused(cfg));
    rows.extend(records::scaling(cfg));
    rows
}

// ---------------------------------------------------------------------- main

fn shell(cmd: &str) -> String {
    Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn machine() -> String {
    let cpu = shell("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2");
    format!(
        "{} · {} CPUs ({}) · {} · {}",
        shell("date -u '+%Y-%m-%d %H:%M UTC'"),
        raw::online_cpus(),
        cpu.trim(),
        shell("uname -sr"),
        shell("rustc --version"),
    )
}

/// Workload groups, for `PP_BENCH_ONLY=group,group` (default: all).
const GROUPS: [&str; 10] = [
    "memory",
    "pingpong",
    "throughput",
    "spawn",
    "fanin",
    "forkmap",
    "reuse",
    "python",
    "pmap",
    "scaling",
];

fn main() {
    // `cargo bench` passes --bench; other arguments are ignored.
    let cfg = Config::from_env();
    let only = std::env::var("PP_BENCH_ONLY").unwrap_or_default();
    let run = |group: &str| {
        assert!(GROUPS.contains(&group));
        only.is_empty() || only.split(',').any(|g| g.trim() == group)
    };
    let out: PathBuf = match std::env::var_os("PP_BENCH_OUT") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench"),
    };
    std::fs::create_dir_all(&out).expect("create the output folder (PP_BENCH_OUT or target/bench)");
    let load_before = shell("cut -d' ' -f1-3 /proc/loadavg");
    let started = Instant::now();
    eprintln!(
        "pprocess benchmark ({} mode; load average {load_before})",
        if cfg.short { "short" } else { "full" }
    );

    // Memory first: the coordinator forks from a small, fresh process.
    let memory = if run("memory") {
        memory(&cfg, &out)
    } else {
        Vec::new()
    };

    eprintln!("channel and process workloads");
    let mut channel = Vec::new();
    if run("pingpong") {
        for acked in [false, true] {
            for cpus in [Cpus::Apart, Cpus::Together] {
                if matches!(cpus, Cpus::Apart) && raw::online_cpus() < 2 {
                    continue;
                }
                channel.push(ping_pong(&cfg, cpus, acked));
            }
        }
    }
    let sizes = [4 << 10, 64 << 10, 1 << 20, 16 << 20];
    let first_stream = channel.len();
    if run("throughput") {
        channel.extend(sizes.map(|size| throughput(&cfg, size)));
    }
    if run("spawn") {
        channel.push(spawn_latency(&cfg));
    }
    if run("fanin") {
        channel.push(fan_in(&cfg));
    }
    if run("forkmap") {
        channel.push(fork_map(&cfg));
    }
    let reuse = match run("reuse") {
        true => vec![
            reuse_queue(&cfg),
            #[cfg(feature = "capi")]
            records::c_reuse_queue(&cfg),
            reuse_map(&cfg),
        ],
        false => Vec::new(),
    };
    let python = match run("python") {
        true => python_rows(&cfg, &channel, &reuse),
        false => Vec::new(),
    };
    channel.extend(reuse);
    let pmap_rows = if run("pmap") {
        pmap_rows(&cfg, true)
    } else if run("scaling") {
        pmap_rows(&cfg, false)
    } else {
        Vec::new()
    };

    let chart = out.join("throughput.svg");
    if run("throughput") {
        let rows = &channel[first_stream..first_stream + sizes.len()];
        let stream_rows: Vec<(usize, &Row)> = sizes.into_iter().zip(rows).collect();
        if let Err(e) = report::throughput_chart(&chart, &stream_rows) {
            eprintln!("chart failed: {e}");
        }
    }

    let tables = [
        Table {
            title: "pprocess vs hand-written libc baseline (medians; ratio = pprocess time / baseline time)",
            columns: vec![
                ("workload", 0),
                ("pprocess", 1),
                ("libc baseline", 2),
                ("ratio", 3),
                ("pprocess min–max", 4),
                ("baseline min–max", 5),
                ("allocs/op", 6),
                ("target met", 7),
            ],
            rows: channel,
            note: "Ratio: pprocess time / baseline time per operation (for rates: baseline \
                   rate / pprocess rate; below 1 pprocess is faster), the median of the \
                   ratios of repetitions run back to back. Targets: \
                   channel workloads ≤ 1.10×; process workloads (spawn, fork-per-task map) \
                   ≤ 1.25×; reused workers ≤ 2.00× (a rate ≥ 0.5× the baseline's). \
                   The baseline's workers answer each task with its own write; \
                   pprocess's answer a chunk of quick tasks in one write. \
                   allocs/op: heap allocations per operation in the measuring process.",
        },
        Table {
            title: "pprocess vs Python multiprocessing (medians)",
            columns: vec![
                ("workload", 0),
                ("pprocess", 1),
                ("Python", 2),
                ("pprocess is", 3),
                ("Python min–max", 5),
                ("target met", 7),
            ],
            rows: python,
            note: "Python: multiprocessing Pipe (send_bytes/recv_bytes) and Pool(2).map \
                   of the same tiny function, pool start and stop included, like pmap's \
                   workers. chunksize=1 sends one task per message as pmap does; the \
                   default chunksize batches about n/8 tasks per message.",
        },
        Table {
            title: "pmap over shared-memory records (issue 14; medians)",
            columns: vec![
                ("workload", 0),
                ("pprocess", 1),
                ("baseline", 2),
                ("ratio", 3),
                ("pprocess min–max", 4),
                ("baseline min–max", 5),
                ("allocs/op", 6),
                ("target met", 7),
            ],
            rows: pmap_rows,
            note: "Ratio: pprocess time / baseline time (for rates: baseline rate / \
                   pprocess rate). Floor: the output mapping shared before the fork, each \
                   worker calling the same function on a static slice, no messages and no \
                   copy out. Hand-written pool: reused workers, 32 tasks queued per worker, \
                   one message per task and answer. Python: Pool(2).map with its default \
                   chunks, pool start and stop included. Skewed and head-of-line tasks \
                   sleep (so they measure the schedule, not the machine's load); their \
                   rows show seconds per whole map. The rows by worker count stop at the \
                   processors present. allocs/op: heap allocations per record in the \
                   calling process.",
        },
        Table {
            title: "Memory",
            columns: vec![
                ("figure", 0),
                ("pprocess", 1),
                ("libc baseline", 2),
                ("ratio", 3),
                ("target met", 7),
            ],
            rows: memory,
            note: "Fan-in RSS: getrusage(RUSAGE_SELF).ru_maxrss of a fresh process forked \
                   to run the fan-in once, and its growth over that process's RSS at start.",
        },
    ];
    let load_after = shell("cut -d' ' -f1-3 /proc/loadavg");
    let mut text = format!(
        "pprocess benchmark, {} mode: {}\nload average {load_before} before, {load_after} after; {:.0} s\n",
        if cfg.short { "short" } else { "full" },
        machine(),
        started.elapsed().as_secs_f64(),
    );
    text.push_str(&report::markdown(&tables));
    println!("{text}");
    std::fs::write(out.join("results.md"), &text).expect("write results.md");
    report::write_csv(&out.join("results.csv"), &tables).expect("write results.csv");
    let chart = match run("throughput") {
        true => format!(" and {}", chart.display()),
        false => String::new(),
    };
    println!(
        "wrote {} and {}{chart}",
        out.join("results.md").display(),
        out.join("results.csv").display(),
    );
}
