//! Taking back the tasks a reused worker has queued but not started, for a
//! worker that is idle (needs `alloc`).
//!
//! A reused worker's tasks wait in its socket; when another worker of the
//! same callable runs out of work while this one is busy with a long task,
//! its creator takes the tasks it has not started back and gives them to
//! the idle one. Who gets a task is decided by one compare-and-swap on a
//! word in the memory the two processes share (the answer ring's mapping): the
//! creator offers the worker's `i`-th task by writing its tag into claim
//! word `i % RING`; the worker, about to start it, swaps the tag for the
//! tag marked started; the creator takes it back by swapping the tag for
//! zero. Exactly one of the two swaps succeeds. A task taken back is
//! skipped by the worker when it reaches it, and runs elsewhere once.
//!
//! A word is never offered again while the worker may still claim the task
//! it held: the creator sends a worker a task only while its place is less
//! than `RING` after that of the worker's oldest unfinished task (tasks
//! taken back leave gaps in the places, so this is a bound of its own, not
//! the window's). A worker's own older places it already claimed or
//! skipped.

use core::sync::atomic::Ordering;

use super::Channel;

/// How many claim words the ring has.
pub(crate) use super::CLAIM_WORDS as RING;

/// Marks a claimed (started) task's word.
const STARTED: u64 = 1 << 63;

fn word(index: u64) -> usize {
    (index % RING as u64) as usize
}

impl Channel {
    /// In a reused worker's creator: the worker's `index`-th task (counting
    /// every task sent to it, from 0) is `tag` (nonzero): it may start it.
    /// Before the task is sent.
    pub(crate) fn offer_task(&self, index: u64, tag: u64) {
        if let Some(ring) = self.ring() {
            ring.claims()[word(index)].store(tag, Ordering::Release);
        }
    }

    /// In a reused worker's creator: takes the worker's `index`-th task
    /// (`tag`) back if it has not started it; true if it is taken back
    /// (the worker will skip it). False if it started, or without a
    /// ring (nothing can be taken back).
    pub(crate) fn take_back_task(&self, index: u64, tag: u64) -> bool {
        let Some(ring) = self.ring() else {
            return false;
        };
        let claim = &ring.claims()[word(index)];
        claim
            .compare_exchange(tag, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// In a reused worker: about to start its `index`-th task, `tag`; true
    /// to run it, false if its creator took it back (skip it). Without a
    /// ring every task runs.
    pub(crate) fn claim_task(&self, index: u64, tag: u64) -> bool {
        let Some(ring) = self.ring() else {
            return true;
        };
        let claim = &ring.claims()[word(index)];
        claim
            .compare_exchange(tag, tag | STARTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::super::Ring;
    use super::*;

    /// The worker's and the creator's channels sharing one ring, as
    /// after a fork.
    fn pair() -> (Channel, Channel) {
        let (mut worker, mut creator) = Channel::pair().unwrap();
        let ring = Ring::new().unwrap();
        let alias = core::mem::ManuallyDrop::into_inner(ring.alias());
        worker.answer_through(ring);
        creator.answers_from(alias);
        (worker, creator)
    }

    #[test]
    fn a_task_is_started_or_taken_back_never_both() {
        let (worker, creator) = pair();
        for index in 0..200u64 {
            let tag = index + 1;
            creator.offer_task(index, tag);
            if index % 3 == 0 {
                assert!(creator.take_back_task(index, tag));
                assert!(!worker.claim_task(index, tag), "taken back: skipped");
            } else {
                assert!(worker.claim_task(index, tag));
                assert!(!creator.take_back_task(index, tag), "started: kept");
            }
        }
        // A word offered again (the ring wrapped) names the new task only.
        creator.offer_task(200 + RING as u64, 9999);
        assert!(!worker.claim_task(200, 201));
        assert!(worker.claim_task(200 + RING as u64, 9999));
        // The alias of the worker's pages is never unmapped (`worker` does).
        core::mem::forget(creator);
    }

    #[test]
    fn without_a_ring_every_task_runs_and_none_is_taken_back() {
        let (worker, creator) = Channel::pair().unwrap();
        creator.offer_task(0, 1);
        assert!(!creator.take_back_task(0, 1));
        assert!(worker.claim_task(0, 1));
    }
}
