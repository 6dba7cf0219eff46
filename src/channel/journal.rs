//! A reused worker's held answers, mirrored in memory it shares with its
//! creator, so that a worker that dies loses none of the answers it had
//! computed (needs `alloc`).
//!
//! A reused worker holds the answers of quick tasks back and writes them
//! together: one write per chunk of tasks, not per task. Held bytes are
//! always the tail of the worker's stream: a frame that is not held is
//! written after them. The worker copies each frame it holds into a
//! [`Journal`], a `MAP_SHARED` mapping made before the fork, with the
//! frame's position in its stream, and empties the journal once the socket
//! has taken everything held.
//!
//! Its creator counts the bytes it reads from the socket ([`Inflow`]). At the
//! end of the stream, it reads on from the journal where the socket stopped:
//! the bytes the worker held and never wrote, or held and wrote only in part
//! (killed in the middle of a write). Positions make this exact: nothing the
//! socket delivered is read twice, whatever instant the worker died at.
//!
//! The creator does not wait for a death, either: once a live worker has
//! been silent for [`QUIET_NS`] (it is busy with a long task, say), the
//! creator's poll rounds ([`Channel::steal_held`]) read the answers it
//! holds from the journal and skip those bytes when the socket brings them
//! later. A generation word, bumped around each reuse of the journal, tells
//! the creator whether what it copied is whole, as a seqlock does; so an
//! answer waits a millisecond or so, not for the task after it. While a
//! worker writes, its creator never touches the journal: the shared words
//! stay in the worker's cache.
//!
//! ```text
//! stream:   [ written and read ...... | held: answers of tasks 7, 8, 9 ]
//!                                  read ^ ^ journal start     journal end ^
//! replayed:                            [ rest of 7 | 8 | 9 ]
//! ```

use alloc::vec::Vec;
use core::sync::atomic::{fence, Ordering};

use super::Channel;
use crate::sys::{self, Errno, Fd, SharedMap};
use crate::wire::CORK_LIMIT;

/// Word 0: the stream position of the journal's first byte.
const START: usize = 0;
/// Word 1: how many bytes, all whole frames, the journal holds.
const LEN: usize = 1;
/// Word 2: the generation, odd while the journal starts over at a new
/// position (bytes below the length never change otherwise).
const GEN: usize = 2;
/// Words 8 to 71: the worker's claims on its tasks (see `claims.rs`).
const CLAIMS: usize = 8;
/// The frames' bytes start here, after the words and the claims.
const DATA: usize = 1024;
/// Most bytes a journal mirrors: all a corked encoder holds.
const CAPACITY: usize = CORK_LIMIT;

/// How long a worker must have been silent (nothing read from it) before
/// its creator reads the answers it holds from its journal. A worker
/// writes what it holds within 0.2 ms unless the task after them runs
/// long, so a silent worker with answers held is busy with such a task.
const QUIET_NS: u64 = 1_000_000;

/// The longest a creator waits between looks at the journal of a worker
/// that may hold answers. Answers are held right after a write (the worker
/// writes what it holds with each write), so looks come [`QUIET_NS`] after
/// the creator last read from a worker and then grow apart, up to this,
/// while it stays silent (busy with a long task that holds nothing).
const LOOK_MAX_MS: i32 = 64;

/// A snapshot of a journal that holds bytes the creator has not read: its
/// generation, first position and end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Held {
    generation: u64,
    start: u64,
    end: u64,
}

/// The shared mirror of the bytes a reused worker holds back.
#[derive(Debug)]
pub(crate) struct Journal {
    map: SharedMap,
}

impl Journal {
    /// A new, empty journal; made before the fork, so that the worker and
    /// its creator share it.
    pub(crate) fn new() -> sys::Result<Journal> {
        Ok(Journal {
            map: SharedMap::new(DATA + CAPACITY)?,
        })
    }

    /// A second handle on the same pages, as the fork gives the other
    /// process: for tests in one process (never to be dropped).
    #[cfg(test)]
    pub(super) fn alias(&self) -> core::mem::ManuallyDrop<Journal> {
        core::mem::ManuallyDrop::new(Journal {
            map: core::mem::ManuallyDrop::into_inner(self.map.alias()),
        })
    }

    /// The claim words, a ring of [`super::claims::RING`] (see `claims.rs`).
    pub(super) fn claims(&self) -> &[core::sync::atomic::AtomicU64] {
        &self.map.words()[CLAIMS..CLAIMS + super::claims::RING]
    }

    /// In the worker: the frame `frame` is held at stream position `pos`;
    /// mirrors it. False (nothing mirrored) when it does not fit, or does
    /// not follow the frames mirrored already: the caller then writes it.
    fn append(&mut self, pos: u64, frame: &[u8]) -> bool {
        let words = self.map.words();
        // Only this process writes the words: its own last stores.
        let len = words[LEN].load(Ordering::Relaxed) as usize;
        let start = words[START].load(Ordering::Relaxed);
        let size = frame.len();
        let follows = len == 0 || start + len as u64 == pos;
        if !follows || len + size > CAPACITY {
            return false;
        }
        let generation = words[GEN].load(Ordering::Relaxed);
        if len == 0 {
            // Starting over: a reader copying the old bytes sees the
            // generation change and drops its copy.
            words[GEN].store(generation + 1, Ordering::Relaxed);
            fence(Ordering::Release);
            words[START].store(pos, Ordering::Relaxed);
        }
        self.map.bytes_mut()[DATA + len..DATA + len + size].copy_from_slice(frame);
        let words = self.map.words();
        // The frame is whole before the length covers it.
        words[LEN].store((len + size) as u64, Ordering::Release);
        if len == 0 {
            words[GEN].store(generation + 2, Ordering::Release);
        }
        true
    }

    /// In the worker: everything held was written; nothing to recover.
    fn clear(&self) {
        self.map.words()[LEN].store(0, Ordering::Release);
    }

    /// In the creator, which has read the worker's stream up to position
    /// `read`: what the journal holds beyond it, if anything (and if the
    /// worker is not starting it over right now).
    fn held(&self, read: u64) -> Option<Held> {
        let words = self.map.words();
        let generation = words[GEN].load(Ordering::Acquire);
        // A length the worker never could have written is not trusted.
        let len = (words[LEN].load(Ordering::Acquire) as usize).min(CAPACITY);
        let start = words[START].load(Ordering::Relaxed);
        // Nor a position that would overflow (a panic here, in debug).
        let end = start.saturating_add(len as u64);
        let beyond = start <= read && read < end;
        (generation.is_multiple_of(2) && beyond).then_some(Held {
            generation,
            start,
            end,
        })
    }

    /// In the creator: copies the bytes from position `read` to the end of
    /// the journal into `out`, if the journal is still generation
    /// `generation` once they are copied (a worker may be writing it
    /// meanwhile). Returns the position after the last byte copied; None,
    /// with `out` to be ignored, if nothing whole was copied.
    fn copy_beyond(&self, generation: u64, read: u64, out: &mut Vec<u8>) -> Option<u64> {
        let held = self.held(read).filter(|h| h.generation == generation)?;
        let len = (held.end - read) as usize;
        out.clear();
        out.try_reserve_exact(len).ok()?;
        out.resize(len, 0);
        let from = DATA + (read - held.start) as usize;
        if !self.map.read_racy(from, out) {
            return None;
        }
        // The copy happened before the generation is read again.
        fence(Ordering::Acquire);
        let whole = self.map.words()[GEN].load(Ordering::Relaxed) == generation;
        whole.then_some(held.end)
    }
}

/// What a creator reads from a reused worker: its socket, and what the
/// worker's [`Journal`] holds that the socket has not brought (at the end
/// of the stream, or stolen from a live worker holding answers too long).
#[derive(Debug, Default)]
pub(super) struct Inflow {
    /// Bytes read from the socket so far.
    received: u64,
    /// The stream position up to which bytes were handed out: beyond
    /// `received` once journal bytes were, which the socket then skips.
    read: u64,
    /// The worker's journal, until the end of its stream.
    journal: Option<Journal>,
    /// Journal bytes to hand out before the socket's.
    replay: Vec<u8>,
    /// How many of `replay` were handed out.
    replayed: usize,
    /// The end of the stream was met and the journal taken.
    drained: bool,
    /// The position read up to at the last look, and when reading was
    /// first seen stopped there.
    quiet: (u64, u64),
}

impl Inflow {
    /// One read into `buf`: journal bytes taken, if any, else the socket
    /// (`block`ing or not), without the bytes already handed out from the
    /// journal; at the socket's end, what the journal holds beyond them.
    /// `Ok(0)` at the end of everything.
    pub(super) fn read(&mut self, fd: &Fd, buf: &mut [u8], block: bool) -> sys::Result<usize> {
        loop {
            if self.replayed < self.replay.len() {
                let rest = &self.replay[self.replayed..];
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                self.replayed += n;
                return Ok(n);
            }
            let read = match block {
                true => sys::read(fd, buf),
                false => sys::read_now(fd, buf),
            };
            let n = match read {
                Ok(0) | Err(Errno::CONNRESET) if self.take_held(None) => continue,
                Ok(n) => n,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(0);
            }
            let at = self.received;
            self.received += n as u64;
            if self.received > self.read {
                // Bytes already handed out from the journal are skipped.
                let seen = self.read.saturating_sub(at) as usize;
                if seen > 0 {
                    buf.copy_within(seen..n, 0);
                }
                self.read = self.received;
                return Ok(n - seen);
            }
        }
    }

    /// The worker's journal, until the end of its stream.
    pub(super) fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// True while journal bytes wait to be handed out.
    pub(super) fn replaying(&self) -> bool {
        self.replayed < self.replay.len()
    }

    /// Takes what the journal holds beyond the bytes handed out, to hand
    /// out next: at the end of the stream (`generation` None: the worker
    /// is gone, the journal is taken once), or from a live worker if the
    /// journal is still `generation`. False when there is nothing (or no
    /// memory for it: the bytes then come from the socket, or at the end
    /// of the stream are lost with the worker).
    fn take_held(&mut self, generation: Option<u64>) -> bool {
        let at_end = generation.is_none();
        let Some(journal) = self.journal.as_ref().filter(|_| !self.drained) else {
            return false;
        };
        let generation = generation.or_else(|| journal.held(self.read).map(|h| h.generation));
        let copied = generation
            .and_then(|generation| journal.copy_beyond(generation, self.read, &mut self.replay));
        // Taken once at the end; the mapping stays for the claim words.
        self.drained |= at_end;
        match copied {
            Some(end) => {
                self.replayed = 0;
                self.read = end;
                true
            }
            None => {
                self.replay.clear();
                self.replayed = 0;
                false
            }
        }
    }

    /// In the creator, before a poll, while the worker may hold answers:
    /// how long the poll may wait before [`Inflow::steal_held`] should run
    /// (`-1`: no limit, there is no journal). Looks at the journal only
    /// once the worker has been silent for [`QUIET_NS`].
    pub(super) fn look_ms(&mut self) -> i32 {
        if self.journal.is_none() || self.drained {
            return -1;
        }
        let quiet_ns = self.quiet_ns(sys::now_ns());
        if quiet_ns < QUIET_NS {
            return ms_until(QUIET_NS - quiet_ns);
        }
        if self.holds_unread() {
            return 0;
        }
        ms_until(quiet_ns).min(LOOK_MAX_MS)
    }

    /// How long nothing was read, as seen at the looks.
    fn quiet_ns(&mut self, now: u64) -> u64 {
        if self.quiet.0 != self.read {
            self.quiet = (self.read, now);
        }
        now.saturating_sub(self.quiet.1)
    }

    /// True when the journal holds bytes not read yet (and none stolen
    /// earlier wait to be handed out).
    fn holds_unread(&self) -> bool {
        let held = self.journal.as_ref().and_then(|j| j.held(self.read));
        held.is_some() && !self.replaying() && !self.drained
    }

    /// In the creator, after a poll: takes the answers a worker silent for
    /// [`QUIET_NS`] holds; true if there are some to hand out.
    pub(super) fn steal_held(&mut self) -> bool {
        let quiet = self.journal.is_some() && self.quiet_ns(sys::now_ns()) >= QUIET_NS;
        if !quiet || !self.holds_unread() {
            return false;
        }
        let generation = self.journal.as_ref().and_then(|j| j.held(self.read));
        generation.is_some_and(|held| self.take_held(Some(held.generation)))
    }
}

/// Nanoseconds as a poll timeout in milliseconds, rounded up.
fn ms_until(ns: u64) -> i32 {
    i32::try_from(ns.div_ceil(1_000_000)).unwrap_or(i32::MAX)
}

/// What a reused worker writes: the bytes it wrote, and the journal its
/// held frames are mirrored in.
#[derive(Debug, Default)]
pub(super) struct Outflow {
    /// Bytes written to the socket so far.
    pub(super) sent: u64,
    journal: Option<Journal>,
}

impl Outflow {
    /// The journal shared with the creator, if any.
    pub(super) fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// `n` more bytes went to the socket.
    pub(super) fn wrote(&mut self, n: usize) {
        self.sent += n as u64;
    }

    /// The whole frame `frame`, `before` bytes after the first unwritten
    /// byte, was just held: mirrors it. False when it cannot be (no
    /// journal, or it does not fit): the caller writes what it holds.
    pub(super) fn held(&mut self, before: usize, frame: &[u8]) -> bool {
        let pos = self.sent + before as u64;
        match &mut self.journal {
            Some(journal) => journal.append(pos, frame),
            None => false,
        }
    }

    /// Everything held was written.
    pub(super) fn flushed(&mut self) {
        if let Some(journal) = &self.journal {
            journal.clear();
        }
    }
}

impl Channel {
    /// In a reused worker: answers may be held back, each mirrored in
    /// `journal` (shared with the creator) until written.
    pub(crate) fn mirror_held(&mut self, journal: Journal) {
        self.outflow.journal = Some(journal);
    }

    /// True when this channel may hold answers back (see
    /// [`Channel::mirror_held`]).
    pub(crate) fn mirrors_held(&self) -> bool {
        self.outflow.journal.is_some()
    }

    /// In a reused worker's creator: what it holds and has not written is
    /// read from `journal`, at the end of its stream or when held too long
    /// ([`Channel::steal_held`]).
    pub(crate) fn recover_held(&mut self, mut journal: Journal) {
        // Processes forked from here on (other workers, persistent
        // keepers) have no use for it: they do not get it.
        journal.map.keep_from_forks();
        self.inflow.journal = Some(journal);
    }

    /// In a reused worker's creator, before a poll, while the worker may
    /// hold answers (it has a task queued behind its current one): how
    /// long the poll may wait before [`Channel::steal_held`] looks again
    /// (`-1`: as long as it likes).
    pub(crate) fn look_ms(&mut self) -> i32 {
        self.inflow.look_ms()
    }

    /// In a reused worker's creator, after a poll: reads the answers a
    /// worker silent for a millisecond holds from its journal; true if
    /// there were some (they are then buffered, [`Channel::has_buffered`]).
    pub(crate) fn steal_held(&mut self) -> bool {
        self.inflow.steal_held()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Header, Kind, FLAG_END};

    fn frame(task: u64, payload: &[u8]) -> Vec<u8> {
        let header = Header::new(Kind::Data, FLAG_END, payload.len() as u32, 1).for_task(task);
        let mut bytes = header.encode().to_vec();
        bytes.extend_from_slice(payload);
        bytes
    }

    /// A worker's side, with a journal.
    fn journaled() -> Outflow {
        Outflow {
            journal: Some(Journal::new().unwrap()),
            ..Outflow::default()
        }
    }

    /// What `journal` holds beyond stream position `read`, copied whole.
    fn beyond(journal: &Journal, read: u64) -> Vec<u8> {
        let mut out = Vec::new();
        match journal.held(read) {
            Some(held) => {
                let end = journal.copy_beyond(held.generation, read, &mut out);
                assert_eq!(end, Some(held.end));
                out
            }
            None => out,
        }
    }

    #[test]
    fn the_journal_gives_back_exactly_the_bytes_not_read() {
        let mut journal = Journal::new().unwrap();
        assert!(beyond(&journal, 0).is_empty());
        assert!(journal.append(100, b"abcde"));
        assert!(journal.append(105, b"fgh"));
        assert!(!journal.append(200, b"x"), "a gap is refused");
        assert_eq!(beyond(&journal, 99), b"", "a gap before it: nothing");
        assert_eq!(beyond(&journal, 100), b"abcdefgh");
        assert_eq!(beyond(&journal, 103), b"defgh");
        assert_eq!(beyond(&journal, 108), b"", "all delivered");
        let generation = journal.held(100).unwrap().generation;
        journal.clear();
        assert_eq!(beyond(&journal, 100), b"");
        // Emptied, it starts again anywhere, in a new generation: a copy
        // of the old one is not whole.
        assert!(journal.append(300, b"z"));
        assert_eq!(beyond(&journal, 300), b"z");
        assert_eq!(journal.copy_beyond(generation, 300, &mut Vec::new()), None);
        let big = alloc::vec![0u8; CAPACITY];
        assert!(!journal.append(301, &big), "over its capacity");
    }

    /// Holds `frames` in `out`'s journal as a worker does, after what it
    /// wrote; returns their bytes.
    fn hold_all(out: &mut Outflow, frames: &[Vec<u8>]) -> Vec<u8> {
        let mut before = 0;
        for bytes in frames {
            assert!(out.held(before, bytes));
            before += bytes.len();
        }
        frames.concat()
    }

    /// Reads `inflow` until the end of the stream.
    fn read_to_end(inflow: &mut Inflow, fd: &Fd) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        loop {
            match inflow.read(fd, &mut buf, true).unwrap() {
                0 => return got,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// A live worker holding answers: its creator takes them from the
    /// journal once the worker has been silent a millisecond, and skips them when the
    /// socket brings them; what follows arrives as usual.
    #[test]
    fn answers_held_too_long_are_stolen_once() {
        let (worker, creator) = sys::socketpair().unwrap();
        let mut out = journaled();
        let mut inflow = Inflow {
            journal: Some(Journal {
                // The same pages, as the fork would share them.
                map: core::mem::ManuallyDrop::into_inner(out.journal.as_ref().unwrap().map.alias()),
            }),
            ..Inflow::default()
        };
        let first = frame(1, b"first");
        sys::send_vectored(&worker, &[&first]).unwrap();
        out.wrote(first.len());
        let mut buf = [0u8; 256];
        assert_eq!(inflow.read(&creator, &mut buf, true).unwrap(), first.len());
        assert!(!inflow.holds_unread(), "nothing held");
        assert!(inflow.look_ms() >= 1, "just read from: no look yet");
        let held = hold_all(&mut out, &[frame(2, b"two"), frame(3, b"three")]);
        assert!(!inflow.steal_held(), "not silent long enough yet");
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert_eq!(inflow.look_ms(), 0, "silent and holding: steal now");
        assert!(inflow.steal_held());
        assert!(inflow.replaying());
        assert!(!inflow.holds_unread(), "everything held is taken");
        // The worker writes what it held (part of it, then the rest) and
        // one more frame; the creator reads each byte once.
        sys::send_vectored(&worker, &[&held[..7]]).unwrap();
        sys::send_vectored(&worker, &[&held[7..]]).unwrap();
        out.wrote(held.len());
        out.flushed();
        let last = frame(4, b"four");
        sys::send_vectored(&worker, &[&last]).unwrap();
        drop(worker);
        let got = read_to_end(&mut inflow, &creator);
        assert_eq!(got, [held, last].concat());
        // The alias of the worker's pages is never unmapped (`out` does).
        core::mem::forget(inflow);
    }

    /// A worker killed after writing any part of what it held: the creator
    /// reads the whole stream, every byte once.
    #[test]
    fn a_stream_cut_anywhere_in_the_held_bytes_reads_whole() {
        let first = frame(1, b"written");
        let held = [frame(2, b"two"), frame(3, b""), frame(4, &[9; 40])];
        let stream: Vec<u8> = core::iter::once(&first)
            .chain(&held)
            .flatten()
            .copied()
            .collect();
        for cut in first.len()..=stream.len() {
            let (worker, creator) = sys::socketpair().unwrap();
            let mut out = journaled();
            let mut inflow = Inflow::default();
            sys::send_vectored(&worker, &[&first]).unwrap();
            out.wrote(first.len());
            hold_all(&mut out, &held);
            // Killed after the socket took `cut` bytes of the stream.
            sys::send_vectored(&worker, &[&stream[first.len()..cut]]).unwrap();
            drop(worker);
            // The journal is shared across the fork: here the worker's own.
            inflow.journal = out.journal.take();
            let got = read_to_end(&mut inflow, &creator);
            assert_eq!(got, stream, "cut after {cut} bytes");
        }
    }

    /// Words the worker never could have written (memory it scribbled
    /// on) give nothing to recover, not a panic in the creator.
    #[test]
    fn a_scribbled_journal_gives_nothing_back() {
        let journal = Journal::new().unwrap();
        let words = journal.map.words();
        words[START].store(u64::MAX - 1, Ordering::Relaxed);
        words[LEN].store(u64::MAX, Ordering::Relaxed);
        assert_eq!(journal.held(0), None);
        assert!(beyond(&journal, 5).is_empty());
    }

    /// Looks grow apart with the worker's silence, up to the most, however
    /// long it lasts. (Regression: the milliseconds were cut to an `i32`,
    /// so 30 days of quiet, which is what an inflow that has read nothing
    /// sees on a host up that long, gave a look every millisecond.)
    #[test]
    fn looks_grow_apart_up_to_the_most_however_long_the_quiet() {
        const DAY_NS: u64 = 86_400 * 1_000_000_000;
        assert_eq!(ms_until(1), 1);
        assert_eq!(ms_until(10_000_000), 10);
        assert_eq!(ms_until(30 * DAY_NS), i32::MAX);
        assert_eq!(ms_until(u64::MAX), i32::MAX);
        // Nothing read yet: silent since the clock started.
        let mut inflow = Inflow {
            journal: Some(Journal::new().unwrap()),
            ..Inflow::default()
        };
        assert_eq!(inflow.look_ms(), LOOK_MAX_MS);
        assert_eq!(Inflow::default().look_ms(), -1, "no journal: no looks");
    }

    /// Once held answers were stolen, the socket may bring nothing but the
    /// same bytes again (the worker writes them, then waits). A receive
    /// with a timeout skips them and still times out: it does not block
    /// until the worker writes something new.
    #[test]
    fn a_timed_receive_is_not_held_up_by_bytes_already_stolen() {
        let (mut worker, mut creator) = Channel::pair().unwrap();
        let journal = Journal::new().unwrap();
        let alias = Journal {
            // The same pages, as the fork would share them.
            map: core::mem::ManuallyDrop::into_inner(journal.map.alias()),
        };
        worker.mirror_held(journal);
        creator.recover_held(alias);
        worker.cork_answers();
        worker.send_frame(Kind::Data, FLAG_END, b"held").unwrap();
        assert!(worker.wants_write(), "the answer is held");
        // Nothing read from the worker yet: silent long enough.
        assert_eq!(creator.look_ms(), 0);
        assert!(creator.steal_held());
        assert_eq!(creator.receive_vec_timeout(0).unwrap(), b"held");
        // The worker writes what it held (bytes the creator has), then
        // nothing until told: a late frame, written raw by a thread once
        // the receive below has returned (or after 10 s, if it blocks).
        worker.send_held().unwrap();
        let fd = worker.raw_fd();
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let late = std::thread::spawn(move || {
            let _ = wait.recv_timeout(std::time::Duration::from_secs(10));
            let header = Header::new(Kind::Data, FLAG_END, 4, 9).encode();
            let frame = [&header[..], b"late"].concat();
            // SAFETY: `fd` is the worker's socket, open until joined below.
            let n = unsafe { libc::write(fd, frame.as_ptr().cast(), frame.len()) };
            assert_eq!(n, frame.len() as isize);
        });
        let mut buf = [0u8; 16];
        let got = creator.receive_timeout(&mut buf, 50);
        let _ = done.send(()); // the thread may have given up waiting
        late.join().unwrap();
        assert_eq!(got, Err(crate::Error::TimedOut));
        assert_eq!(creator.receive_vec().unwrap(), b"late");
        // The alias of the worker's pages is never unmapped (`worker` does).
        core::mem::forget(creator);
    }

    #[test]
    fn a_journal_emptied_after_the_write_replays_nothing() {
        let (worker, creator) = sys::socketpair().unwrap();
        let mut out = journaled();
        let bytes = frame(1, b"answer");
        assert!(out.held(0, &bytes));
        sys::send_vectored(&worker, &[&bytes]).unwrap();
        out.wrote(bytes.len());
        out.flushed();
        drop(worker);
        let mut inflow = Inflow {
            journal: out.journal.take(),
            ..Inflow::default()
        };
        assert_eq!(read_to_end(&mut inflow, &creator), bytes);
    }
}
