//! Claim words: whether a worker starts a unit of work or its creator takes
//! it back, decided by one compare-and-swap in memory the two share. The
//! one take-back protocol of the exchange, used by reused workers (a unit
//! is a task) and by the records pmap (a unit is a block of records).
//!
//! The creator offers the unit at `place` (counting every unit it gives
//! the worker, from 0) by storing its `tag` (nonzero, below 2⁶³) in word
//! `place % words`; the worker, about to start it, swaps the tag for the
//! tag marked started ([`Claims::claim`]); the creator takes it back by
//! swapping the tag for zero ([`Claims::take_back`]). Exactly one of the two
//! swaps succeeds: a unit taken back is skipped by the worker and runs
//! elsewhere, once. A worker claims its units in order, so the units taken
//! back are always its newest ones.
//!
//! The creator must not offer a word again while the worker may still
//! claim the unit it held: units in flight (offered, not yet claimed or
//! skipped) stay fewer than the words.
//!
//! Dead-worker recovery is one rule ([`Claims::recover`]): of a worker's
//! outstanding units, each whose claim can still be taken back never
//! started, and goes to another worker; only the ones it started may fail.
//!
//! ```text
//! creator: offer(p, tag)   word: tag ──claim──▶ tag|STARTED  (worker runs it)
//!                                    └─take_back─▶ 0         (runs elsewhere)
//! ```

use core::sync::atomic::{AtomicU64, Ordering};

/// Marks a claimed (started) unit's word.
const STARTED: u64 = 1 << 63;

/// The place of a unit not offered yet: it never started, so taking it
/// back always succeeds.
pub(crate) const UNOFFERED: u64 = u64::MAX;

/// A worker's claim words, in memory it shares with its creator.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Claims<'a> {
    words: &'a [AtomicU64],
}

impl<'a> Claims<'a> {
    /// The claims in `words` (none: every unit runs where it was sent and
    /// none can be taken back).
    pub(crate) fn new(words: &'a [AtomicU64]) -> Claims<'a> {
        Claims { words }
    }

    fn word(&self, place: u64) -> Option<&'a AtomicU64> {
        let len = self.words.len() as u64;
        if place == UNOFFERED || len == 0 {
            return None;
        }
        // A ring's words are a power of two: a mask, not a division, once
        // per unit on both sides.
        let at = match len.is_power_of_two() {
            true => place & (len - 1),
            false => place % len,
        };
        self.words.get(at as usize)
    }

    /// In the creator: the unit at `place` is `tag`; the worker may start
    /// it. Before the unit is sent.
    pub(crate) fn offer(&self, place: u64, tag: u64) {
        debug_assert!(
            tag != 0 && tag & STARTED == 0,
            "a tag is nonzero, below 2^63"
        );
        if let Some(word) = self.word(place) {
            word.store(tag, Ordering::Release);
        }
    }

    /// The word of `place` is fetched for writing now, ahead of its offer
    /// (see [`sys::prefetch_for_write`](crate::sys::prefetch_for_write)):
    /// the worker's claims took its line since the creator last wrote it.
    pub(crate) fn prefetch(&self, place: u64) {
        if let Some(word) = self.word(place) {
            crate::sys::prefetch_for_write(word.as_ptr().cast::<u8>());
        }
    }

    /// In the worker, about to start the unit at `place`, `tag`: true to run
    /// it, false if the creator took it back (skip it).
    pub(crate) fn claim(&self, place: u64, tag: u64) -> bool {
        self.word(place).is_none_or(|word| {
            word.compare_exchange(tag, tag | STARTED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        })
    }

    /// In the creator: takes the unit at `place`, `tag`, back if the worker
    /// has not started it; true if it did (the worker will skip it). A unit
    /// never offered ([`UNOFFERED`]) is always taken back.
    pub(crate) fn take_back(&self, place: u64, tag: u64) -> bool {
        if place == UNOFFERED {
            return true;
        }
        self.word(place).is_some_and(|word| {
            word.compare_exchange(tag, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        })
    }

    /// In the creator: whether the unit at `place`, `tag`, is offered and
    /// neither started nor taken back yet (it may start the next moment).
    pub(crate) fn is_offered(&self, place: u64, tag: u64) -> bool {
        place == UNOFFERED
            || self
                .word(place)
                .is_some_and(|w| w.load(Ordering::Acquire) == tag)
    }

    /// In the creator: takes back at most `most` of `units` (place and
    /// tag, oldest first), newest first, stopping at the first one the
    /// worker started (it starts them in order: the older ones started too).
    /// Returns how many were taken back: the last ones of `units`.
    pub(crate) fn take_back_newest<I>(&self, units: I, most: usize) -> usize
    where
        I: IntoIterator<Item = (u64, u64)>,
        I::IntoIter: DoubleEndedIterator,
    {
        units
            .into_iter()
            .rev()
            .take(most)
            .take_while(|&(place, tag)| self.take_back(place, tag))
            .count()
    }

    /// Dead-worker recovery, the one rule for reused workers and the
    /// records pmap: of a worker's outstanding `units` (oldest first), each
    /// whose claim can still be taken back never started and goes to
    /// another worker (they are all taken back, so a worker still alive
    /// skips them); the others started there, and only they may fail.
    /// Returns how many of the oldest units started.
    pub(crate) fn recover<I>(&self, units: I) -> usize
    where
        I: IntoIterator<Item = (u64, u64)>,
        I::IntoIter: DoubleEndedIterator + ExactSizeIterator,
    {
        let units = units.into_iter();
        let len = units.len();
        len - self.take_back_newest(units, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words<const N: usize>() -> [AtomicU64; N] {
        core::array::from_fn(|_| AtomicU64::new(0))
    }

    #[test]
    fn a_unit_is_started_or_taken_back_never_both() {
        let words = words::<8>();
        let (creator, worker) = (Claims::new(&words), Claims::new(&words));
        for place in 0..200u64 {
            let tag = place + 1;
            creator.offer(place, tag);
            assert!(creator.is_offered(place, tag));
            if place % 3 == 0 {
                assert!(creator.take_back(place, tag));
                assert!(!worker.claim(place, tag), "taken back: skipped");
                assert!(!creator.take_back(place, tag), "only once");
            } else {
                assert!(worker.claim(place, tag));
                assert!(!creator.take_back(place, tag), "started: kept");
                assert!(!worker.claim(place, tag), "started once");
            }
            assert!(!creator.is_offered(place, tag));
        }
        // A word offered again (the ring wrapped) names the new unit only.
        creator.offer(200 + 8, 9999);
        assert!(!worker.claim(200, 201));
        assert!(worker.claim(200 + 8, 9999));
    }

    #[test]
    fn without_words_every_unit_runs_and_none_is_taken_back() {
        let claims = Claims::new(&[]);
        claims.offer(0, 1);
        assert!(!claims.take_back(0, 1));
        assert!(claims.claim(0, 1));
        assert!(claims.take_back(UNOFFERED, 1), "never offered: never ran");
    }

    #[test]
    fn the_newest_go_back_down_to_the_first_started() {
        let words = words::<8>();
        let claims = Claims::new(&words);
        let units = [(0, 10), (1, 11), (2, 12), (3, 13), (UNOFFERED, 14)];
        for &(place, tag) in &units[..4] {
            claims.offer(place, tag);
        }
        assert!(claims.claim(0, 10));
        assert!(claims.claim(1, 11));
        assert_eq!(claims.take_back_newest(units, 1), 1, "at most one");
        assert_eq!(claims.take_back_newest(units[..4].iter().copied(), 9), 2);
        assert!(!claims.claim(2, 12) && !claims.claim(3, 13));
        // Taken back already: nothing more goes.
        assert_eq!(claims.take_back_newest(units[..4].iter().copied(), 9), 0);
    }

    #[test]
    fn recovery_fails_only_what_started() {
        let words = words::<8>();
        let claims = Claims::new(&words);
        let units = [(5, 1), (6, 2), (7, 3), (UNOFFERED, 4)];
        for &(place, tag) in &units[..3] {
            claims.offer(place, tag);
        }
        assert!(claims.claim(5, 1));
        assert_eq!(claims.recover(units), 1, "the started one stays");
        assert!(!claims.claim(6, 2), "the rest were taken back");
        assert_eq!(claims.recover([]), 0);
        let none = Claims::new(&[]);
        assert_eq!(none.recover([(0, 1), (UNOFFERED, 2)]), 1);
    }

    /// A worker thread claims while the creator takes back: every unit
    /// runs exactly once, and what was taken back is always the newest.
    #[cfg(feature = "std")]
    #[test]
    fn racing_claims_and_take_backs_decide_each_unit_once() {
        use std::sync::atomic::AtomicBool;
        use std::vec::Vec;

        const UNITS: u64 = 20_000;
        const WORDS: usize = 64;
        let words = words::<WORDS>();
        let claims = Claims::new(&words);
        // The worker claims units in order; units are offered a batch at
        // a time, the creator then takes back the newest half of each.
        let offered = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        let (ran, back) = std::thread::scope(|scope| {
            let worker = scope.spawn(|| {
                let mut ran = Vec::new();
                let mut place = 0;
                while place < UNITS {
                    if place >= offered.load(Ordering::Acquire) {
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                        std::hint::spin_loop();
                        continue;
                    }
                    if claims.claim(place, place + 1) {
                        ran.push(place);
                    }
                    place += 1;
                }
                ran
            });
            let mut back = Vec::new();
            let mut next = 0;
            while next < UNITS {
                let batch = (next..(next + WORDS as u64 / 2).min(UNITS)).collect::<Vec<_>>();
                for &place in &batch {
                    claims.offer(place, place + 1);
                }
                offered.store(next + batch.len() as u64, Ordering::Release);
                let units = batch.iter().map(|&p| (p, p + 1)).collect::<Vec<_>>();
                let taken = claims.take_back_newest(units.iter().copied(), batch.len() / 2);
                back.extend(batch[batch.len() - taken..].iter().copied());
                next += batch.len() as u64;
                // The next batch reuses these words: wait for the worker.
                while next < UNITS && !batch.iter().all(|&p| !claims.is_offered(p, p + 1)) {
                    std::hint::spin_loop();
                }
            }
            stop.store(true, Ordering::Release);
            (worker.join().unwrap(), back)
        });
        let mut all = ran.clone();
        all.extend(&back);
        all.sort_unstable();
        assert_eq!(all, (0..UNITS).collect::<Vec<_>>(), "each unit once");
        assert!(!back.is_empty() || ran.len() == UNITS as usize);
    }
}
