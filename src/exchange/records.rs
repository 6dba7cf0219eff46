//! `pmap_records`, `pmap_each` and `pmap_bytes`: maps over fixed-size
//! records through shared memory (needs `alloc`).
//!
//! The inputs stay where the caller has them: the workers are forked by the
//! call, so they inherit them. Each worker writes its outputs straight into
//! an anonymous shared mapping made before the fork, and the creator copies
//! each chunk into the caller's outputs as the chunk is reported done (while
//! the workers go on). Only index ranges, completions and per-record errors
//! travel on the workers' channels.
//!
//! Work is handed out in chunks sized like OpenMP's guided schedule:
//! `max(1, remaining / (2 × workers))` records, so chunks are large while
//! much remains (tiny records pay almost nothing each) and shrink to one at
//! the end (skewed records still balance). A worker takes its next chunk
//! when it reports the last one done. A chunk is run in blocks (an eighth
//! of what is left of it, at least one), each a unit of the exchange's
//! claim words (`exchange::claims`, as reused workers' tasks are): the
//! worker claims a block before it runs it; when nothing is left to hand
//! out and a worker is idle, the creator takes back the newest unclaimed
//! blocks of the busiest worker's chunk, at least half of its unclaimed
//! records, and hands them to the idle one. So no worker holds queued
//! records while another is idle.
//!
//! Each worker has a progress word in shared memory too: before a record
//! it stores the index with a "running" bit, after it the next index. When
//! a worker dies (killed, or its function ends the process), the creator
//! recovers its chunk by the claims' rule: the blocks it never claimed go
//! back to the schedule for the other workers (and a replacement worker);
//! of those it claimed, the progress word says which records are done, and
//! the one it was running fails with [`Error::PeerEnded`]; the rest goes
//! back too. Nothing is lost, and nothing is computed twice.
//!
//! Per record, a worker does two stores to its own progress word and a
//! call of the function: no allocation, no system call.
//!
//! ```
//! use pprocess::records;
//!
//! let inputs: Vec<u64> = (0..1000).collect();
//! let squares: Vec<u64> = records::pmap_records(|x: &u64| Ok(x * x), &inputs, 2)?;
//! assert_eq!(squares[999], 999 * 999);
//! # Ok::<(), pprocess::Error>(())
//! ```

use alloc::vec::Vec;
use core::ops::Range;
use core::sync::atomic::{AtomicU64, Ordering};

use bytemuck::Pod;

use super::claims::Claims;
use super::schedule::{blocks, half_of, lost_chunk, Ranges};
use super::TaskError;
use crate::channel::Channel;
use crate::error::{best_effort, Error, RemoteError, Result};
use crate::process::{self, Created, ForkCheck};
use crate::sys::{self, PollFd, SharedMap, POLLIN};

/// Words in a cache line: a worker's progress word has one of its own.
const LINE: usize = 8;

/// A worker's claim words: one per block of its chunk.
const CLAIM_WORDS: usize = 192;

/// A worker's words: its progress word's line, then its claim words.
const WORDS_PER_SLOT: usize = LINE + CLAIM_WORDS;

/// The largest chunk: its blocks fit the claim words (a test checks it).
const CHUNK_MAX: usize = u32::MAX as usize;

/// The claim unit of block `place` of a chunk: its place and its tag.
fn unit(place: usize) -> (u64, u64) {
    (place as u64, place as u64 + 1)
}

/// Worker slot `slot`'s progress word and claims in `words`.
fn slot_words(words: &[AtomicU64], slot: usize) -> (&AtomicU64, Claims<'_>) {
    let words = &words[slot * WORDS_PER_SLOT..(slot + 1) * WORDS_PER_SLOT];
    (&words[0], Claims::new(&words[LINE..]))
}

/// The bit of a progress word that says its record is running.
const RUNNING: u64 = 1;

/// A chunk message: start and end index, little-endian.
const CHUNK_LEN: usize = 16;

/// A completion: the chunk's end index.
const DONE_LEN: usize = 8;

/// A failure: the record's index, its code, then its message.
const FAILURE_HEAD: usize = 12;

/// The work of one record: computes record `index` into `output` (exactly
/// the record's output size).
pub(crate) trait Kernel {
    /// The inputs the workers read.
    fn inputs(&self) -> &[u8];
    /// Runs record `index`; an error fails that record only.
    fn run(&self, index: usize, output: &mut [u8]) -> core::result::Result<(), RemoteError>;
}

/// Runs `kernel` on records `0..count` in `workers` forked workers (0 or
/// `usize::MAX`: one per processor; never more than `count`), copying the outputs into
/// `outputs` (`count × output_size` bytes; a failed record's bytes there
/// are left as they were). Returns the failed records' indexes and errors, in
/// index order. `check` says whether it may fork while the process has
/// other threads.
pub(crate) fn run<K: Kernel>(
    kernel: &K,
    count: usize,
    output_size: usize,
    workers: usize,
    outputs: &mut [u8],
    check: ForkCheck,
) -> Result<Vec<(usize, TaskError)>> {
    let total = count.checked_mul(output_size).ok_or(Error::Invalid)?;
    if outputs.len() != total {
        return Err(Error::Invalid);
    }
    if count == 0 {
        return Ok(Vec::new());
    }
    process::fork_allowed(check)?;
    // Records are split among the workers, not started one per process:
    // "no limit" (usize::MAX, C's PP_UNLIMITED) would fork a worker per
    // record for no gain, so it means one per processor, like 0.
    let workers = match workers {
        0 | usize::MAX => sys::number_of_cpus(),
        n => n,
    }
    .min(count);
    let mut pool = Pool {
        shared: SharedMap::new(total)?,
        progress: SharedMap::new(
            workers
                .checked_mul(WORDS_PER_SLOT * 8)
                .ok_or(Error::Invalid)?,
        )?,
        outputs,
        workers: Vec::new(),
        schedule: Ranges::new(count, workers),
        failures: Vec::new(),
        check,
        output_size,
        count,
        // Replacements for workers that die: each one that dies in a record
        // fails that record, so more than this means something else kills
        // them.
        forks_left: count.saturating_add(2 * workers),
    };
    // The workers never touch the caller's outputs: unless the inputs share
    // their pages, the first workers are forked without them, so that the
    // copies into them cause no copy-on-write faults.
    let overlap = pool.outputs.as_ptr_range().start < kernel.inputs().as_ptr_range().end
        && kernel.inputs().as_ptr_range().start < pool.outputs.as_ptr_range().end;
    let unshared = (!overlap).then(|| sys::NotInherited::new(pool.outputs));
    for slot in 0..workers {
        pool.spawn(kernel, slot)?;
    }
    drop(unshared);
    for index in 0..pool.workers.len() {
        pool.dispatch(index);
    }
    pool.serve(kernel)?;
    Ok(pool.finish())
}

/// A worker process: its channel, its progress slot, the chunk it runs,
/// the blocks of that chunk not taken back from it and the records of it
/// that failed (in order).
struct Worker {
    channel: Channel,
    slot: usize,
    chunk: Option<Range<usize>>,
    blocks: Vec<Range<usize>>,
    failed: Vec<usize>,
}

/// The creator's side of a run. Dropping it (on an error) kills and
/// collects every worker still running.
struct Pool<'a> {
    /// Where the workers write the outputs.
    shared: SharedMap,
    progress: SharedMap,
    /// The caller's outputs: each record is copied here once it is done.
    outputs: &'a mut [u8],
    workers: Vec<Worker>,
    schedule: Ranges,
    failures: Vec<(usize, TaskError)>,
    output_size: usize,
    count: usize,
    forks_left: usize,
    check: ForkCheck,
}

impl Pool<'_> {
    /// Forks a worker on progress slot `slot`.
    fn spawn<K: Kernel>(&mut self, kernel: &K, slot: usize) -> Result<()> {
        self.forks_left = self.forks_left.saturating_sub(1);
        match process::create_as(self.check)? {
            Created::Parent(channel) => {
                self.workers.push(Worker {
                    channel,
                    slot,
                    chunk: None,
                    blocks: Vec::new(),
                    failed: Vec::new(),
                });
                Ok(())
            }
            Created::Child(mut channel) => {
                let (progress, claims) = slot_words(self.progress.words(), slot);
                let slot = Slot { progress, claims };
                let outputs = &mut self.shared;
                let (size, count) = (self.output_size, self.count);
                // Nothing may unwind out of here into the caller's code.
                let served = process::guarded(|| {
                    work(&mut channel, kernel, outputs, slot, size, count)
                        .map_err(RemoteError::from)
                });
                let status = match served {
                    Ok(()) => 0,
                    Err(_) => process::EXIT_CALLABLE_ERROR,
                };
                process::exit(channel, status)
            }
        }
    }

    /// Hands worker `index` its next chunk: from the schedule, or else the
    /// newest unclaimed blocks of the busiest worker. Without either it
    /// stays idle.
    fn dispatch(&mut self, index: usize) {
        let Some(chunk) = self.schedule.take(CHUNK_MAX).or_else(|| self.steal()) else {
            return;
        };
        let worker = &mut self.workers[index];
        let (progress, claims) = slot_words(self.progress.words(), worker.slot);
        progress.store((chunk.start as u64) << 1, Ordering::Relaxed);
        worker.blocks.clear();
        worker.blocks.extend(blocks(chunk.clone()));
        for place in 0..worker.blocks.len() {
            let (place, tag) = unit(place);
            claims.offer(place, tag);
        }
        let mut message = [0u8; CHUNK_LEN];
        message[..8].copy_from_slice(&(chunk.start as u64).to_le_bytes());
        message[8..].copy_from_slice(&(chunk.end as u64).to_le_bytes());
        worker.chunk = Some(chunk);
        worker.failed.clear();
        // A worker that died already is found by the next poll.
        best_effort(worker.channel.send(&message));
    }

    /// Records of worker `index`'s chunk in blocks it has not claimed, and
    /// how many such blocks: the last ones.
    fn unclaimed(&self, index: usize) -> (usize, usize) {
        let worker = &self.workers[index];
        let (_, claims) = slot_words(self.progress.words(), worker.slot);
        let offered = worker
            .blocks
            .iter()
            .enumerate()
            .rev()
            .take_while(|&(place, _)| {
                let (place, tag) = unit(place);
                claims.is_offered(place, tag)
            });
        offered.fold((0, 0), |(records, count), (_, block)| {
            (records + block.len(), count + 1)
        })
    }

    /// Takes back the newest unclaimed blocks of the worker with the most
    /// unclaimed records, at least half of them, shortening its chunk.
    fn steal(&mut self) -> Option<Range<usize>> {
        let (victim, (_, count)) = (0..self.workers.len())
            .filter(|&i| self.workers[i].chunk.is_some())
            .map(|i| (i, self.unclaimed(i)))
            .max_by_key(|(_, unclaimed)| unclaimed.0)?;
        let worker = &mut self.workers[victim];
        let most = half_of(&worker.blocks[worker.blocks.len() - count..]);
        let (_, claims) = slot_words(self.progress.words(), worker.slot);
        let units = (0..worker.blocks.len()).map(unit);
        let taken = claims.take_back_newest(units, most);
        let kept = worker.blocks.len() - taken;
        let cut = worker.blocks.get(kept)?.start;
        worker.blocks.truncate(kept);
        let chunk = worker.chunk.as_mut()?;
        let stolen = cut..chunk.end;
        chunk.end = cut;
        Some(stolen)
    }

    /// Waits for completions until every record is done.
    fn serve<K: Kernel>(&mut self, kernel: &K) -> Result<()> {
        let mut polled: Vec<PollFd> = Vec::with_capacity(self.workers.len());
        let mut owners: Vec<usize> = Vec::with_capacity(self.workers.len());
        loop {
            polled.clear();
            owners.clear();
            let mut buffered = None;
            for (index, worker) in self.workers.iter().enumerate() {
                if worker.chunk.is_none() {
                    continue;
                }
                if worker.channel.has_buffered() {
                    buffered = Some(index);
                    break;
                }
                polled.push(PollFd::new(worker.channel.fd(), POLLIN));
                owners.push(index);
            }
            if let Some(index) = buffered {
                self.receive(kernel, index)?;
                continue;
            }
            if polled.is_empty() {
                return Ok(());
            }
            sys::poll(&mut polled, -1)?;
            // Highest first: a dead worker's replacement takes its place.
            for (entry, &index) in polled.iter().zip(&owners).rev() {
                if entry.ready() {
                    self.receive(kernel, index)?;
                }
            }
        }
    }

    /// Takes one message from worker `index`: a completion, a failed
    /// record, or the news that it ended.
    fn receive<K: Kernel>(&mut self, kernel: &K, index: usize) -> Result<()> {
        let mut message = [0u8; FAILURE_HEAD + crate::error::REMOTE_MESSAGE_MAX];
        let worker = &mut self.workers[index];
        match worker.channel.receive(&mut message) {
            Ok(DONE_LEN) => {
                if let Some(chunk) = worker.chunk.take() {
                    let failed = core::mem::take(&mut worker.failed);
                    self.copy_out(chunk, &failed);
                    self.workers[index].failed = failed;
                }
                self.dispatch(index);
                Ok(())
            }
            Ok(len) if len >= FAILURE_HEAD => {
                let (record, failure) = decode_failure(&message[..len]);
                // Records of its chunk, in order, each failing once.
                let in_chunk = worker.chunk.as_ref().is_some_and(|c| c.contains(&record));
                if !in_chunk || worker.failed.last().is_some_and(|&last| last >= record) {
                    return self.lost(kernel, index);
                }
                worker.failed.push(record);
                self.failures.push((record, failure));
                Ok(())
            }
            // Anything else breaks the protocol: the worker is killed.
            _ => self.lost(kernel, index),
        }
    }

    /// Worker `index` ended (or broke the protocol and is killed): the
    /// record it was running fails, the rest of its chunk goes back, and a
    /// replacement takes its slot while records remain.
    fn lost<K: Kernel>(&mut self, kernel: &K, index: usize) -> Result<()> {
        let mut worker = self.workers.swap_remove(index);
        let collected = worker.channel.kill_and_collect();
        let error = match collected.and_then(|()| worker.channel.wait()) {
            Ok(status) => Error::PeerEnded {
                pid: worker.channel.pid(),
                status,
            },
            Err(e) => e,
        };
        if let Some(chunk) = worker.chunk.take() {
            // The claims' rule: the blocks it never claimed go back; of
            // those it claimed, its progress word says which records are
            // done and which one it was running (that one fails).
            let (progress, claims) = slot_words(self.progress.words(), worker.slot);
            let started = claims.recover((0..worker.blocks.len()).map(unit));
            let claimed = worker.blocks[..started]
                .last()
                .map_or(chunk.start, |b| b.end);
            let word = progress.load(Ordering::Acquire);
            let at = usize::try_from(word >> 1).unwrap_or(usize::MAX);
            let lost = lost_chunk(chunk, claimed, at, word & RUNNING != 0);
            self.copy_out(lost.done, &worker.failed);
            if let Some(record) = lost.failed {
                self.failures.push((record, error.into()));
            }
            self.schedule.give_back(lost.back);
            for idle in 0..self.workers.len() {
                if self.workers[idle].chunk.is_none() {
                    self.dispatch(idle);
                }
            }
        }
        if self.schedule.is_empty() {
            return Ok(());
        }
        if self.forks_left == 0 && self.workers.is_empty() {
            // Something kills every worker: what is left fails.
            while let Some(range) = self.schedule.take(usize::MAX) {
                self.failures
                    .extend(range.map(|i| (i, TaskError::from(error))));
            }
            return Ok(());
        }
        if self.forks_left > 0 {
            self.spawn(kernel, worker.slot)?;
            self.dispatch(self.workers.len() - 1);
        }
        Ok(())
    }

    /// Copies the outputs of finished `records` into the caller's outputs,
    /// but for those that `failed` (in order): as without reuse, a failed
    /// record's output is left as it was.
    fn copy_out(&mut self, records: Range<usize>, failed: &[usize]) {
        let size = self.output_size;
        let mut start = records.start;
        let skipped = failed.iter().filter(|&&record| records.contains(&record));
        for &end in skipped.chain([records.end].iter()) {
            let bytes = start * size..end * size;
            self.outputs[bytes.clone()].copy_from_slice(&self.shared.bytes()[bytes]);
            start = end + 1;
        }
    }

    /// Stops and collects the workers; gives the failures in index order.
    fn finish(mut self) -> Vec<(usize, TaskError)> {
        for worker in &mut self.workers {
            // A worker that is gone already is collected all the same.
            best_effort(worker.channel.send(&[]));
        }
        for worker in &mut self.workers {
            // Its records are all in: how it ends changes nothing.
            best_effort(worker.channel.wait());
        }
        self.workers.clear();
        let mut failures = core::mem::take(&mut self.failures);
        failures.sort_unstable_by_key(|(index, _)| *index);
        failures
    }
}

impl Drop for Pool<'_> {
    fn drop(&mut self) {
        for worker in &mut self.workers {
            // The run already failed; this only leaves no process behind.
            best_effort(worker.channel.kill_and_collect());
        }
    }
}

/// A failure message: the record's index and its error.
fn decode_failure(message: &[u8]) -> (usize, TaskError) {
    let mut index = [0u8; 8];
    index.copy_from_slice(&message[..8]);
    let mut code = [0u8; 4];
    code.copy_from_slice(&message[8..FAILURE_HEAD]);
    let code = i32::from_le_bytes(code);
    let text = core::str::from_utf8(&message[FAILURE_HEAD..]).unwrap_or("");
    let index = usize::try_from(u64::from_le_bytes(index)).unwrap_or(usize::MAX);
    let failure = TaskError {
        error: Error::Remote { code },
        remote: Some(alloc::boxed::Box::new(RemoteError::new(code, text))),
    };
    (index, failure)
}

/// The worker's loop: runs each chunk it is sent, then reports it done;
/// an empty message (or the creator gone) ends it.
fn work<K: Kernel>(
    channel: &mut Channel,
    kernel: &K,
    outputs: &mut SharedMap,
    slot: Slot<'_>,
    output_size: usize,
    count: usize,
) -> Result<()> {
    let outputs = outputs.bytes_mut();
    let mut message = [0u8; CHUNK_LEN];
    loop {
        if channel.receive(&mut message)? != CHUNK_LEN {
            return Ok(());
        }
        let (start, end) = message.split_at(8);
        let start = le_index(start);
        let end = le_index(end);
        if start > end || end > count {
            return Err(Error::Invalid);
        }
        for (place, block) in blocks(start..end).enumerate() {
            let (place, tag) = unit(place);
            if !slot.claims.claim(place, tag) {
                break; // taken back, and so are the rest: they run elsewhere
            }
            // A failure (or a panic) ends a span; the next span starts
            // after the record that failed, so the hot loop has no
            // unwinding frame.
            let mut next = block.start;
            while next < block.end {
                let span = || {
                    run_span(
                        kernel,
                        outputs,
                        slot.progress,
                        output_size,
                        &mut next,
                        block.end,
                    )
                };
                if let Err(error) = process::guarded(span) {
                    send_failure(channel, next - 1, &error)?;
                    slot.progress.store((next as u64) << 1, Ordering::Release);
                }
            }
        }
        channel.send(&(end as u64).to_le_bytes())?;
    }
}

/// A worker's words in shared memory.
#[derive(Clone, Copy)]
struct Slot<'a> {
    /// The record running (with [`RUNNING`]) or next, shifted left by one.
    progress: &'a AtomicU64,
    /// Its chunk's blocks' claims (see [`blocks`]).
    claims: Claims<'a>,
}

/// Runs records `*next..end`, advancing `*next` past each one it starts;
/// stops at the first that fails (which is then `*next - 1`).
#[inline(always)]
fn run_span<K: Kernel>(
    kernel: &K,
    outputs: &mut [u8],
    progress: &AtomicU64,
    output_size: usize,
    next: &mut usize,
    end: usize,
) -> core::result::Result<(), RemoteError> {
    while *next < end {
        let index = *next;
        *next = index + 1;
        progress.store(((index as u64) << 1) | RUNNING, Ordering::Relaxed);
        let output = &mut outputs[index * output_size..(index + 1) * output_size];
        let result = kernel.run(index, output);
        progress.store(((index + 1) as u64) << 1, Ordering::Release);
        result?;
    }
    Ok(())
}

fn le_index(bytes: &[u8]) -> usize {
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes);
    usize::try_from(u64::from_le_bytes(word)).unwrap_or(usize::MAX)
}

/// Tells the creator that record `index` failed.
fn send_failure(channel: &mut Channel, index: usize, error: &RemoteError) -> Result<()> {
    let text = error.message().as_bytes();
    let mut message = [0u8; FAILURE_HEAD + crate::error::REMOTE_MESSAGE_MAX];
    message[..8].copy_from_slice(&(index as u64).to_le_bytes());
    message[8..FAILURE_HEAD].copy_from_slice(&error.code().to_le_bytes());
    let len = FAILURE_HEAD + text.len().min(crate::error::REMOTE_MESSAGE_MAX);
    message[FAILURE_HEAD..len].copy_from_slice(&text[..len - FAILURE_HEAD]);
    channel.send(&message[..len])
}

/// A typed function over a slice of inputs.
struct Typed<'a, T, F> {
    inputs: &'a [T],
    function: F,
}

impl<T, U, F> Kernel for Typed<'_, T, F>
where
    T: Pod,
    U: Pod,
    F: Fn(&T) -> core::result::Result<U, RemoteError>,
{
    fn inputs(&self) -> &[u8] {
        bytemuck::cast_slice(self.inputs)
    }

    fn run(&self, index: usize, output: &mut [u8]) -> core::result::Result<(), RemoteError> {
        let value = (self.function)(&self.inputs[index])?;
        output.copy_from_slice(bytemuck::bytes_of(&value));
        Ok(())
    }
}

/// A function over fixed-size byte records.
struct Bytes<'a, F> {
    inputs: &'a [u8],
    input_size: usize,
    function: F,
}

impl<F> Kernel for Bytes<'_, F>
where
    F: Fn(&[u8], &mut [u8]) -> core::result::Result<(), RemoteError>,
{
    fn inputs(&self) -> &[u8] {
        self.inputs
    }

    fn run(&self, index: usize, output: &mut [u8]) -> core::result::Result<(), RemoteError> {
        let size = self.input_size;
        (self.function)(&self.inputs[index * size..(index + 1) * size], output)
    }
}

/// `function(x)` for every `x` of `inputs`, in `workers` processes forked
/// for the call (0: one per processor), through shared memory: the outputs
/// in input order, or the error of the first record (in input order) that
/// failed. [`pmap_each`] reports every record.
///
/// The function runs in the workers, so it may borrow anything (the
/// workers get a copy of this process at the fork); what it changes there
/// is not seen here. As [`create`](crate::create) does, it refuses with
/// [`Error::Threads`] to fork while the process has other threads (see
/// [`allow_fork_with_threads`](crate::allow_fork_with_threads)).
///
/// ```
/// use pprocess::pmap_records;
///
/// // Any `Pod` type in and out: here u32 to u64.
/// let squares = pmap_records(|x: &u32| Ok(u64::from(*x) * u64::from(*x)), &[1u32, 2, 3, 4], 2)?;
/// assert_eq!(squares, [1, 4, 9, 16]);
/// # Ok::<(), pprocess::Error>(())
/// ```
pub fn pmap_records<T, U, F>(function: F, inputs: &[T], workers: usize) -> Result<Vec<U>>
where
    T: Pod,
    U: Pod,
    F: Fn(&T) -> core::result::Result<U, RemoteError>,
{
    let (outputs, failures) = run_typed(function, inputs, workers)?;
    if let Some((_, failure)) = failures.into_iter().next() {
        return Err(failure.error);
    }
    Ok(outputs)
}

/// [`pmap_records`] with a result per input: the output, or why that record failed
/// (its function's [`RemoteError`], or [`Error::PeerEnded`] for the one
/// record a worker was running when it died; the rest of that worker's
/// records run in other workers). `Err` only if the run itself failed (no
/// process could be created).
///
/// ```
/// use pprocess::records::{pmap_bytes, pmap_each, pmap_records};
/// use pprocess::{Error, RemoteError};
///
/// let inputs: Vec<u32> = (0..100).collect();
/// let halves = pmap_each(
///     |x: &u32| match x % 2 {
///         0 => Ok(x / 2),
///         _ => Err(RemoteError::new(1, "odd")),
///     },
///     &inputs,
///     2,
/// )?;
/// assert_eq!(halves[10], Ok(5));
/// assert_eq!(halves[11].as_ref().unwrap_err().error, Error::Remote { code: 1 });
/// // pmap_records gives the first failure instead:
/// assert!(pmap_records(|x: &u32| if x % 2 == 0 { Ok(*x) } else { Err(RemoteError::new(1, "odd")) }, &inputs, 2).is_err());
///
/// // Records of 2 bytes in, 1 byte out: their sum.
/// let bytes = [1u8, 2, 3, 4, 5, 6];
/// let sums = pmap_bytes(|pair, out| { out[0] = pair[0] + pair[1]; Ok(()) }, &bytes, 2, 1, 2)?;
/// assert_eq!(sums, [Ok(vec![3]), Ok(vec![7]), Ok(vec![11])]);
/// assert_eq!(pmap_bytes(|_, _| Ok(()), &bytes, 4, 1, 2), Err(Error::Invalid));
/// # Ok::<(), Error>(())
/// ```
pub fn pmap_each<T, U, F>(
    function: F,
    inputs: &[T],
    workers: usize,
) -> Result<Vec<core::result::Result<U, TaskError>>>
where
    T: Pod,
    U: Pod,
    F: Fn(&T) -> core::result::Result<U, RemoteError>,
{
    let (outputs, failures) = run_typed(function, inputs, workers)?;
    Ok(each(outputs.into_iter(), failures))
}

/// The outputs of a typed run and its failures.
type TypedRun<U> = (Vec<U>, Vec<(usize, TaskError)>);

fn run_typed<T, U, F>(function: F, inputs: &[T], workers: usize) -> Result<TypedRun<U>>
where
    T: Pod,
    U: Pod,
    F: Fn(&T) -> core::result::Result<U, RemoteError>,
{
    let kernel = Typed { inputs, function };
    let mut outputs = alloc::vec![U::zeroed(); inputs.len()];
    let bytes = bytemuck::cast_slice_mut::<U, u8>(&mut outputs);
    let failures = run(
        &kernel,
        inputs.len(),
        size_of::<U>(),
        workers,
        bytes,
        ForkCheck::Refuse,
    )?;
    Ok((outputs, failures))
}

/// Records' outputs with their failures in place.
fn each<O>(
    outputs: impl Iterator<Item = O>,
    failures: Vec<(usize, TaskError)>,
) -> Vec<core::result::Result<O, TaskError>> {
    let mut failures = failures.into_iter().peekable();
    outputs
        .enumerate()
        .map(
            |(index, output)| match failures.next_if(|(i, _)| *i == index) {
                Some((_, failure)) => Err(failure),
                None => Ok(output),
            },
        )
        .collect()
}

/// [`pmap_each`] over byte records: `inputs` holds `inputs.len() /
/// input_size` records of `input_size` bytes; `function` gets one and
/// fills its output record of `output_size` bytes (zeroed to start with).
/// Gives each record's output or failure, in input order.
/// [`Error::Invalid`] if `input_size` is 0 or does not divide the inputs.
///
/// ```
/// use pprocess::records::pmap_bytes;
///
/// // Records of 3 bytes in, 1 byte out: the largest of the three.
/// let inputs = [1u8, 9, 2, 7, 3, 5];
/// let largest = pmap_bytes(
///     |triple, out| {
///         out[0] = triple.iter().copied().max().unwrap_or(0);
///         Ok(())
///     },
///     &inputs,
///     3, // input record size
///     1, // output record size
///     2, // workers
/// )?;
/// assert_eq!(largest, [Ok(vec![9]), Ok(vec![7])]);
/// # Ok::<(), pprocess::Error>(())
/// ```
pub fn pmap_bytes<F>(
    function: F,
    inputs: &[u8],
    input_size: usize,
    output_size: usize,
    workers: usize,
) -> Result<Vec<core::result::Result<Vec<u8>, TaskError>>>
where
    F: Fn(&[u8], &mut [u8]) -> core::result::Result<(), RemoteError>,
{
    if input_size == 0 || !inputs.len().is_multiple_of(input_size) {
        return Err(Error::Invalid);
    }
    let count = inputs.len() / input_size;
    let kernel = Bytes {
        inputs,
        input_size,
        function,
    };
    let total = count.checked_mul(output_size).ok_or(Error::Invalid)?;
    let mut outputs = alloc::vec![0u8; total];
    let failures = run(
        &kernel,
        count,
        output_size,
        workers,
        &mut outputs,
        ForkCheck::Refuse,
    )?;
    let records = (0..count).map(|i| outputs[i * output_size..(i + 1) * output_size].to_vec());
    Ok(each(records, failures))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunks_blocks_fit_its_claim_words() {
        assert!(blocks(0..CHUNK_MAX).count() <= CLAIM_WORDS);
    }
}
