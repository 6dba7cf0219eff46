//! The scheduler's decisions, one set for reused workers and the records
//! pmap (needs `alloc`): functions and state over plain data, with no
//! descriptor, no process and no clock, so that they are tested without
//! forks or sleeps. The callers apply them; the claim words that carry a
//! take-back between processes are `claims.rs`.
//!
//! - Guided chunks ([`chunk`]): a worker's next share of the work is what
//!   remains ÷ (2 × the workers), as OpenMP's guided schedule sizes its
//!   chunks: large while much remains (tiny tasks pay almost nothing each),
//!   one at the end (skewed tasks still balance).
//! - Reused workers: which worker gets a task ([`worker_for`]) and which
//!   give their unstarted tasks back for an idle one
//!   ([`gives_back_for_idle`]).
//! - Records: the ranges still to hand out ([`Ranges`]), the blocks a chunk
//!   is claimed in ([`blocks`]), how many of them an idle worker takes
//!   ([`half_of`]), and what a dead worker leaves ([`lost_chunk`]).

use alloc::collections::VecDeque;
use core::ops::Range;

/// The share is the work remaining ÷ (`GUIDED` × the workers).
const GUIDED: usize = 2;

/// How much of `remaining` one of `workers` workers takes next: at least
/// one, at most `most`.
pub(crate) fn chunk(remaining: usize, workers: usize, most: usize) -> usize {
    (remaining / GUIDED.saturating_mul(workers.max(1))).clamp(1, most.max(1))
}

/// What the scheduler sees of a reused worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Load<K> {
    /// The callable it runs: tasks go only to workers of theirs.
    pub(crate) key: K,
    /// Told to exit: it gets nothing more.
    pub(crate) stopping: bool,
    /// Its tasks not finished yet (the first may be running).
    pub(crate) queued: usize,
    /// Their argument bytes.
    pub(crate) bytes: usize,
    /// One more task would have a claim word of its own.
    pub(crate) claims_free: bool,
}

impl<K: PartialEq> Load<K> {
    /// Idle: a worker of `key` with nothing to do.
    pub(crate) fn is_idle(&self, key: &K) -> bool {
        self.key == *key && !self.stopping && self.queued == 0
    }

    /// Whether it may take one more task of `key` with `len` argument
    /// bytes: its window holds `window` tasks and `window_bytes` bytes
    /// (one task always fits an empty window).
    fn accepts(&self, key: &K, len: usize, window: usize, window_bytes: usize) -> bool {
        self.key == *key
            && !self.stopping
            && self.queued < window
            && (self.queued == 0 || self.bytes + len <= window_bytes)
            && self.claims_free
    }
}

/// Which of `workers` (by index; `None` for a slot without one) gets a task
/// of `key` with `len` argument bytes: the least loaded that accepts it
/// (see [`Load`]), the first of equals; `None` if none does.
pub(crate) fn worker_for<K: PartialEq>(
    workers: impl Iterator<Item = Option<Load<K>>>,
    key: &K,
    len: usize,
    window: usize,
    window_bytes: usize,
) -> Option<usize> {
    workers
        .enumerate()
        .filter_map(|(index, load)| Some((index, load?)))
        .filter(|(_, load)| load.accepts(key, len, window, window_bytes))
        .min_by_key(|(_, load)| load.queued)
        .map(|(index, _)| index)
}

/// Whether a worker, `load`, gives back the tasks it has queued but not
/// started (all but its oldest, which is running or about to): when it has
/// some while one of `workers` runs its callable and is idle, so that no
/// worker holds tasks while another has none. When no task waits.
pub(crate) fn gives_back_for_idle<K: PartialEq>(
    load: &Load<K>,
    mut workers: impl Iterator<Item = Option<Load<K>>>,
) -> bool {
    !load.stopping
        && load.queued >= 2
        && workers.any(|other| other.is_some_and(|o| o.is_idle(&load.key)))
}

/// The records still to hand out, as ranges; a dead worker's unfinished
/// records go back in front.
#[derive(Debug)]
pub(crate) struct Ranges {
    ranges: VecDeque<Range<usize>>,
    remaining: usize,
    workers: usize,
}

impl Ranges {
    /// Records `0..count`, for `workers` workers.
    pub(crate) fn new(count: usize, workers: usize) -> Ranges {
        let mut ranges = VecDeque::new();
        if count > 0 {
            ranges.push_back(0..count);
        }
        Ranges {
            ranges,
            remaining: count,
            workers: workers.max(1),
        }
    }

    /// The next chunk, of at most `most` records: guided size, cut from the
    /// first range.
    pub(crate) fn take(&mut self, most: usize) -> Option<Range<usize>> {
        let front = self.ranges.front_mut()?;
        let size = chunk(self.remaining, self.workers, most).min(front.len());
        let chunk = front.start..front.start + size;
        front.start += size;
        if front.start == front.end {
            self.ranges.pop_front();
        }
        self.remaining -= size;
        Some(chunk)
    }

    /// Records that must still be handed out, before the others.
    pub(crate) fn give_back(&mut self, range: Range<usize>) {
        if !range.is_empty() {
            self.remaining += range.len();
            self.ranges.push_front(range);
        }
    }

    /// Nothing left to hand out.
    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

/// A block is `1 / BLOCK` of what is left of its chunk (at least one record).
const BLOCK: usize = 8;

/// The blocks `chunk` is claimed and run in: an eighth of what is left of
/// it, at least one record. The worker and its creator both compute them
/// from the chunk.
pub(crate) fn blocks(chunk: Range<usize>) -> impl Iterator<Item = Range<usize>> {
    let mut next = chunk.start;
    core::iter::from_fn(move || {
        let size = ((chunk.end - next) / BLOCK).max(1);
        (next < chunk.end).then(|| {
            next += size;
            next - size..next
        })
    })
}

/// How many of a busy worker's unclaimed `blocks` (oldest first) an idle
/// worker takes: the fewest newest ones that hold at least half their
/// records.
pub(crate) fn half_of(blocks: &[Range<usize>]) -> usize {
    let records: usize = blocks.iter().map(Range::len).sum();
    let mut taken = 0;
    blocks
        .iter()
        .rev()
        .take_while(|block| {
            let more = 2 * taken < records;
            taken += block.len();
            more
        })
        .count()
}

/// What a dead worker's `chunk` comes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Lost {
    /// Records it finished.
    pub(crate) done: Range<usize>,
    /// The record it was running: the one that fails.
    pub(crate) failed: Option<usize>,
    /// Records it never started: they go to other workers.
    pub(crate) back: Range<usize>,
}

/// The records of a dead worker's `chunk`, of which it claimed those before
/// `claimed` (the claims' recovery rule); its progress word said it was at
/// record `at`, running it or not.
pub(crate) fn lost_chunk(chunk: Range<usize>, claimed: usize, at: usize, running: bool) -> Lost {
    let at = at.clamp(chunk.start, claimed.clamp(chunk.start, chunk.end));
    let failed = (running && at < claimed).then_some(at);
    Lost {
        done: chunk.start..at,
        failed,
        back: at + usize::from(failed.is_some())..chunk.end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn chunks_shrink_with_the_work_to_one_and_stay_in_bounds() {
        assert_eq!(chunk(1000, 2, usize::MAX), 250);
        assert_eq!(chunk(1000, 2, 32), 32);
        assert_eq!(chunk(3, 2, 32), 1);
        assert_eq!(chunk(0, 0, 0), 1);
        assert_eq!(chunk(usize::MAX, 1, 7), 7);
        // An unbounded exchange: as many workers as a usize holds.
        assert_eq!(chunk(1000, usize::MAX, 32), 1);
    }

    fn load(key: u8, queued: usize) -> Option<Load<u8>> {
        Some(Load {
            key,
            stopping: false,
            queued,
            bytes: queued * 10,
            claims_free: true,
        })
    }

    #[test]
    fn a_task_goes_to_the_least_loaded_worker_of_its_callable_with_room() {
        let workers = [load(1, 3), None, load(2, 0), load(1, 1), load(1, 1)];
        assert_eq!(worker_for(workers.into_iter(), &1, 10, 4, 100), Some(3));
        assert_eq!(worker_for(workers.into_iter(), &2, 10, 4, 100), Some(2));
        assert_eq!(worker_for(workers.into_iter(), &3, 10, 4, 100), None);
        // Full windows: by count, by bytes (an empty window takes any).
        assert_eq!(worker_for(workers.into_iter(), &1, 10, 1, 100), None);
        assert_eq!(worker_for(workers.into_iter(), &1, 95, 4, 100), None);
        assert_eq!(worker_for(workers.into_iter(), &2, 1000, 4, 100), Some(2));
        // Stopping, or out of claim words: not chosen.
        let mut busy = workers;
        busy[3] = busy[3].map(|l| Load {
            stopping: true,
            ..l
        });
        busy[4] = busy[4].map(|l| Load {
            claims_free: false,
            ..l
        });
        assert_eq!(worker_for(busy.into_iter(), &1, 10, 4, 100), Some(0));
    }

    #[test]
    fn only_workers_of_an_idle_workers_callable_give_tasks_back() {
        let workers = [
            load(1, 3),
            load(2, 5),
            load(1, 0),
            load(1, 1),
            None,
            load(1, 2),
        ];
        let from = |workers: [Option<Load<u8>>; 6]| -> Vec<usize> {
            let gives = |load: &Load<u8>| gives_back_for_idle(load, workers.into_iter());
            let from = workers.iter().enumerate();
            from.filter(|(_, l)| l.as_ref().is_some_and(gives))
                .map(|(i, _)| i)
                .collect()
        };
        assert_eq!(
            from(workers),
            [0, 5],
            "callable 2 has none idle; one task keeps"
        );
        let mut stopping = workers;
        stopping[2] = stopping[2].map(|l| Load {
            stopping: true,
            ..l
        });
        assert_eq!(from(stopping), []);
        stopping[0] = stopping[0].map(|l| Load {
            stopping: true,
            ..l
        });
        stopping[2] = load(1, 0);
        assert_eq!(from(stopping), [5], "a worker told to exit keeps its tasks");
    }

    #[test]
    fn ranges_hand_out_guided_chunks_and_given_back_ones_first() {
        let mut ranges = Ranges::new(1000, 2);
        let mut sizes = Vec::new();
        let mut next = 0;
        while let Some(chunk) = ranges.take(usize::MAX) {
            assert_eq!(chunk.start, next);
            next = chunk.end;
            sizes.push(chunk.len());
        }
        assert_eq!(next, 1000);
        assert_eq!(sizes[0], 250);
        assert_eq!(*sizes.last().unwrap(), 1);
        assert!(sizes.windows(2).all(|w| w[0] >= w[1]));
        assert!(ranges.is_empty());

        let mut ranges = Ranges::new(100, 1);
        assert_eq!(ranges.take(30), Some(0..30));
        ranges.give_back(10..30);
        ranges.give_back(5..5);
        assert_eq!(ranges.take(usize::MAX), Some(10..30));
        assert_eq!(ranges.take(usize::MAX), Some(30..65));
    }

    #[test]
    fn blocks_shrink_to_one_and_cover_the_chunk() {
        let sizes: Vec<usize> = blocks(1000..1100).map(|b| b.len()).collect();
        assert_eq!(&sizes[..3], [12, 11, 9]);
        assert_eq!(sizes.iter().sum::<usize>(), 100);
        assert!(sizes.windows(2).all(|w| w[0] >= w[1]));
        assert_eq!(*sizes.last().unwrap(), 1);
        let mut next = 1000;
        for block in blocks(1000..1100) {
            assert_eq!(block.start, next);
            next = block.end;
        }
        assert_eq!(next, 1100);
        assert_eq!(blocks(5..5).count(), 0);
    }

    #[test]
    fn an_idle_worker_takes_the_fewest_newest_blocks_with_half_the_records() {
        assert_eq!(half_of(&[0..8, 8..12, 12..14, 14..15, 15..16]), 4);
        assert_eq!(half_of(&[0..7, 7..12, 12..14, 14..15, 15..16]), 4);
        assert_eq!(half_of(&[0..9, 9..12, 12..14, 14..15, 15..16]), 5);
        assert_eq!(half_of(&[3..4, 4..5]), 1);
        assert_eq!(half_of(&[0..2, 2..4]), 1);
        assert_eq!(half_of(&[]), 0);
    }

    #[test]
    fn a_dead_worker_fails_only_the_record_it_was_running() {
        let lost = lost_chunk(100..200, 150, 120, true);
        assert_eq!(
            lost,
            Lost {
                done: 100..120,
                failed: Some(120),
                back: 121..200
            }
        );
        // Between records, or before its first: nothing fails.
        let lost = lost_chunk(100..200, 150, 130, false);
        assert_eq!(
            lost,
            Lost {
                done: 100..130,
                failed: None,
                back: 130..200
            }
        );
        let lost = lost_chunk(100..200, 100, 100, true);
        assert_eq!(
            lost,
            Lost {
                done: 100..100,
                failed: None,
                back: 100..200
            }
        );
        // A progress word past what it claimed is not believed.
        let lost = lost_chunk(100..200, 150, 190, true);
        assert_eq!(
            lost,
            Lost {
                done: 100..150,
                failed: None,
                back: 150..200
            }
        );
    }
}
