//! A reused worker's answers, through a ring in memory it shares with its
//! creator (needs `alloc`).
//!
//! The ring is an anonymous `MAP_SHARED` mapping made before the fork: one
//! producer (the worker), one consumer (its creator). The worker copies each
//! frame it sends, whole and in the wire format, to the ring's tail and
//! publishes it with a release store of the tail; the creator reads frames
//! from the head and gives the space back with a release store of the head.
//! Each index is written by one side only and has a cache line of its own.
//! An answer is visible to the creator the moment it is published: no
//! system call per answer, and nothing held back.
//!
//! Wake-ups (io_uring's `NEED_WAKEUP`): before the creator sleeps on the
//! worker's socket it sets the ring's wake-up word, then looks at the tail
//! again; after a publish, the worker looks at that word and, if set,
//! clears it and writes one byte ([`WAKE`]) to the socket. Each side stores
//! and then loads with a full fence between, so at least one of them sees
//! the other's store: no wake-up is lost.
//!
//! The worker publishes once per answer and the creator sleeps rarely, so
//! the worker's fence is the one that costs: it waits for the tail's cache
//! line to leave the creator's core. Where the kernel allows it, the worker
//! joins membarrier(2)'s barriers when the ring starts and says so in the
//! ring's [`LIGHT`] word; it then publishes with a compiler fence alone,
//! and the creator, before it looks at the tail again, runs a barrier on
//! the worker's CPU for it (`sys::barrier_in_joined`, once for all of its
//! rings: see [`Sleep`]). Elsewhere both sides fence, as above.
//!
//! A frame that does not fit (larger than the ring, or the ring is full)
//! goes through the socket, in order: the worker publishes a marker (a
//! header-sized record of zeros, for which the ring always keeps room),
//! then writes its frames to the socket until the ring has room again, and
//! then writes [`BACK`] before it publishes in the ring again. The creator,
//! meeting the marker, reads the socket until `BACK`. So the socket carries
//! wire frames (a callable may write its own there too), wake-up bytes and
//! `BACK` bytes, each at a frame boundary; frames start with the magic's
//! first byte, never 0 or 1.
//!
//! At the end of the worker's stream, the creator drains the ring first:
//! whatever instant the worker dies at, every frame it published arrives.
//!
//! ```text
//! ring:   [ head → frame | frame | marker | frame ... ← tail ]   (wraps)
//! socket: [ wake | big frame | frame | BACK | wake ... ]
//! ```
//!
//! The same mapping holds the worker's claim words: [`CLAIM_WORDS`] words
//! that this layer only gives out (see `Channel::claim_words`), and the
//! word in which the worker says how many of them it has passed (see
//! `Channel::claims_passed`).

use alloc::vec::Vec;
use core::sync::atomic::{compiler_fence, fence, AtomicU64, Ordering};

use super::Channel;
use crate::sys::{self, Errno, Fd, SharedMap};
use crate::wire::{self, HEADER_LEN};

/// Words in a cache line: each index gets one of its own.
const LINE: usize = 8;
/// Word: bytes the worker has published (it alone writes it).
const TAIL: usize = 0;
/// Word: bytes the creator has taken (it alone writes it).
const HEAD: usize = LINE;
/// Word: nonzero when the creator is going to sleep on the socket.
const NEED_WAKEUP: usize = 2 * LINE;
/// Word: how many places the worker has passed, claimed or skipped (it
/// alone writes it).
const PASSED: usize = 3 * LINE;
/// Word: nonzero when the worker publishes without a fence of its own (it
/// alone writes it, before its first publish): the creator must run a
/// barrier on the worker's CPU before it sleeps.
const LIGHT: usize = 4 * LINE;
/// Words from here: the claim words, a ring of [`CLAIM_WORDS`].
const CLAIMS: usize = 5 * LINE;
/// How many claim words there are.
pub(crate) const CLAIM_WORDS: usize = 2048;
/// The frames' bytes start here, after the words.
const DATA: usize = 20480;
const _: () = assert!((CLAIMS + CLAIM_WORDS) * 8 <= DATA);
/// Bytes the ring holds.
const CAPACITY: usize = 64 * 1024;
/// How far past the tail a worker asks for the ring's next lines.
const PREFETCH_AHEAD: usize = 256;
/// A marker: the frames after it come through the socket, until [`BACK`].
const MARKER: [u8; HEADER_LEN] = [0; HEADER_LEN];

/// On the socket: the worker published while its creator slept.
const WAKE: u8 = 0;
/// On the socket: the frames after a marker have all been written; the
/// next ones are in the ring.
const BACK: u8 = 1;

/// Frames creators in this process took from rings, and frames that came
/// through the socket behind a marker (for tests: see [`answer_paths`]).
static RING_FRAMES: AtomicU64 = AtomicU64::new(0);
static MARKED_FRAMES: AtomicU64 = AtomicU64::new(0);
/// Barriers creators in this process ran for light workers (see [`LIGHT`]).
static BARRIERS: AtomicU64 = AtomicU64::new(0);

/// How many frames the reused workers' creators in this process took from
/// their shared-memory rings, and how many came through a socket behind a
/// marker (too big for the ring, or the ring full): for tests that must
/// fail if the shared-memory path is bypassed.
///
/// ```
/// use pprocess::channel::answer_paths;
/// use pprocess::{Options, Queue};
///
/// let (before, _) = answer_paths();
/// let mut queue = Queue::with_options(1, Options { reuse: true, ..Options::default() });
/// let echo = queue.manage_function(|x: &[u8]| Ok(x.to_vec()));
/// echo.call(&mut queue, b"hi")?;
/// assert_eq!(queue.next().unwrap().unwrap(), b"hi");
/// assert!(answer_paths().0 > before); // the answer came through the ring
/// # Ok::<(), pprocess::Error>(())
/// ```
#[doc(hidden)]
pub fn answer_paths() -> (u64, u64) {
    (
        RING_FRAMES.load(Ordering::Relaxed),
        MARKED_FRAMES.load(Ordering::Relaxed),
    )
}

/// How many times the creators in this process ran a barrier on their
/// light workers' CPUs before sleeping (see the `ring` module: workers that
/// joined membarrier(2)'s barriers publish without a fence): for tests that
/// must fail if the light path is not taken where the kernel offers it.
///
/// ```
/// use pprocess::channel::wake_barriers;
/// use pprocess::{Options, Queue};
///
/// let before = wake_barriers();
/// let mut queue = Queue::with_options(1, Options { reuse: true, ..Options::default() });
/// let slow = queue.manage_function(|x: &[u8]| {
///     std::thread::sleep(std::time::Duration::from_millis(50));
///     Ok(x.to_vec())
/// });
/// slow.call(&mut queue, b"hi")?;
/// // The creator sleeps until the answer is published, and is woken.
/// assert_eq!(queue.next().unwrap().unwrap(), b"hi");
/// println!("{} barriers (none where the kernel lacks membarrier)", wake_barriers() - before);
/// # Ok::<(), pprocess::Error>(())
/// ```
#[doc(hidden)]
pub fn wake_barriers() -> u64 {
    BARRIERS.load(Ordering::Relaxed)
}

/// The shared mapping of one reused worker's answer ring.
#[derive(Debug)]
pub(crate) struct Ring {
    map: SharedMap,
}

impl Ring {
    /// A new, empty ring; made before the fork, so that the worker and its
    /// creator share it.
    pub(crate) fn new() -> sys::Result<Ring> {
        Ok(Ring {
            map: SharedMap::new(DATA + CAPACITY)?,
        })
    }

    /// A second handle on the same pages, as the fork gives the other
    /// process: for tests in one process (never to be dropped).
    #[cfg(test)]
    pub(super) fn alias(&self) -> core::mem::ManuallyDrop<Ring> {
        core::mem::ManuallyDrop::new(Ring {
            map: core::mem::ManuallyDrop::into_inner(self.map.alias()),
        })
    }

    /// Processes forked from now on do not get this mapping.
    pub(super) fn keep_from_forks(&mut self) {
        self.map.keep_from_forks();
    }

    /// The claim words (see the module docs).
    pub(super) fn claims(&self) -> &[AtomicU64] {
        &self.map.words()[CLAIMS..CLAIMS + CLAIM_WORDS]
    }

    /// The word in which the worker says how many places it has passed.
    pub(super) fn passed(&self) -> &AtomicU64 {
        self.word(PASSED)
    }

    fn word(&self, index: usize) -> &AtomicU64 {
        &self.map.words()[index]
    }
}

/// The worker's side: publishes the frames it sends.
#[derive(Debug)]
pub(super) struct Writer {
    ring: Ring,
    /// Bytes published.
    tail: u64,
    /// Bytes the creator had taken, as last seen.
    head: u64,
    /// After a marker: frames go to the socket until the ring has room.
    on_socket: bool,
    /// The creator runs the barrier after each publish (see [`LIGHT`]).
    light: bool,
}

impl Writer {
    /// The worker's side of `ring`, in the worker: it joins membarrier's
    /// barriers if it can, and says so in the ring (see [`LIGHT`]).
    pub(super) fn new(ring: Ring) -> Writer {
        let light = sys::join_barriers().is_ok();
        if light {
            ring.word(LIGHT).store(1, Ordering::SeqCst);
            // A creator that did not see the word before it slept is seen
            // by this side's loads of the wake-up word after this fence.
            fence(Ordering::SeqCst);
        }
        Writer {
            ring,
            tail: 0,
            head: 0,
            on_socket: false,
            light,
        }
    }

    pub(super) fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Free bytes, as last seen.
    fn room(&self) -> usize {
        CAPACITY - (self.tail - self.head).min(CAPACITY as u64) as usize
    }

    /// True when a frame of `len` bytes fits the ring now, with room for
    /// a marker after it (the creator's head is read again if need be).
    fn fits(&mut self, len: usize) -> bool {
        if self.room() < len + MARKER.len() {
            // A creator that scribbled on its word changes nothing here.
            let head = self.ring.word(HEAD).load(Ordering::Acquire);
            self.head = head.clamp(self.head, self.tail);
        }
        self.room() >= len + MARKER.len()
    }

    /// Sends one frame, `header` and `payload`, as [`Writer::write`] does.
    /// The usual case, a frame that fits before the end of the ring, is
    /// written in two copies and no loop over parts: a reused worker's
    /// answers take this path once per task.
    pub(super) fn write_frame(
        &mut self,
        fd: &Fd,
        header: &wire::Header,
        payload: &[u8],
    ) -> sys::Result<()> {
        let len = HEADER_LEN + payload.len();
        let at = (self.tail % CAPACITY as u64) as usize;
        if !self.on_socket && at + len <= CAPACITY && self.fits(len) {
            let bytes = &mut self.ring.map.bytes_mut()[DATA..DATA + CAPACITY];
            let (head, rest) = bytes[at..at + len].split_at_mut(HEADER_LEN);
            // The header's words stored where they go, from registers.
            for (word, value) in head.chunks_exact_mut(8).zip(header.to_words()) {
                word.copy_from_slice(&value.to_le_bytes());
            }
            wire::copy_bytes(rest, payload);
            self.tail += len as u64;
            // The line a few frames on, fetched for writing now: the
            // creator read it a lap ago, and a store that had to take it
            // back then would hold up the worker's next claim.
            let ahead = (self.tail as usize + PREFETCH_AHEAD) % CAPACITY;
            self.ring.map.prefetch_for_write(DATA + ahead);
            return self.publish(fd);
        }
        self.write(fd, &[&header.encode(), payload])
    }

    /// Sends one frame, `parts` in order: into the ring, or through `fd`
    /// behind a marker. Every frame leaves room for a marker after it.
    pub(super) fn write(&mut self, fd: &Fd, parts: &[&[u8]]) -> sys::Result<()> {
        let len: usize = parts.iter().map(|part| part.len()).sum();
        let fits = self.fits(len);
        if self.on_socket {
            if !fits {
                return sys::send_vectored(fd, parts);
            }
            sys::send_vectored(fd, &[&[BACK]])?;
            self.on_socket = false;
        }
        if fits {
            self.put(parts, len);
            return self.publish(fd);
        }
        // The marker takes the room every frame leaves.
        self.put(&[&MARKER], MARKER.len());
        self.on_socket = true;
        self.publish(fd)?;
        sys::send_vectored(fd, parts)
    }

    /// Copies `parts`, `len` bytes in all, to the tail (not published yet).
    fn put(&mut self, parts: &[&[u8]], len: usize) {
        let bytes = &mut self.ring.map.bytes_mut()[DATA..DATA + CAPACITY];
        let at = (self.tail % CAPACITY as u64) as usize;
        self.tail += len as u64;
        if let Some(mut room) = bytes.get_mut(at..at + len) {
            // The usual case: one stretch of the ring, filled part by part.
            for part in parts {
                let (dst, rest) = room.split_at_mut(part.len().min(room.len()));
                wire::copy_bytes(dst, part);
                room = rest;
            }
            return;
        }
        // Across the end of the ring: each byte at its place modulo the size.
        let mut at = at;
        for part in parts {
            let first = part.len().min(CAPACITY - at);
            let (head, tail) = part.split_at(first);
            bytes[at..at + first].copy_from_slice(head);
            bytes[..tail.len()].copy_from_slice(tail);
            at = (at + part.len()) % CAPACITY;
        }
    }

    /// Publishes what was put, and wakes the creator if it sleeps.
    fn publish(&mut self, fd: &Fd) -> sys::Result<()> {
        self.ring.word(TAIL).store(self.tail, Ordering::Release);
        // Store the tail, then load the flag; the creator does the reverse.
        // A light worker's fence is the creator's barrier (see `LIGHT`).
        match self.light {
            true => compiler_fence(Ordering::SeqCst),
            false => fence(Ordering::SeqCst),
        }
        let wake = self.ring.word(NEED_WAKEUP);
        if wake.load(Ordering::Relaxed) != 0 && wake.swap(0, Ordering::AcqRel) != 0 {
            return sys::send_vectored(fd, &[&[WAKE]]);
        }
        Ok(())
    }
}

/// The creator's side: the worker's stream, from the ring and the socket.
#[derive(Debug)]
pub(super) struct Reader {
    ring: Ring,
    /// Bytes taken from the ring.
    head: u64,
    /// Bytes published, as last seen.
    tail: u64,
    /// Bytes of the ring frame being handed out still to go.
    frame_left: usize,
    /// After a marker: the frames come from the socket until [`BACK`].
    on_socket: bool,
    /// Bytes read from the socket: those from `at` to `filled` are not
    /// handed out yet; the rest is room for the next read (zeroed once,
    /// when the buffer grows, not at every read).
    staged: Vec<u8>,
    at: usize,
    filled: usize,
    /// Bytes of the socket frame being handed out still to go.
    socket_left: usize,
    /// The socket's stream has ended.
    eof: bool,
}

/// Bytes the reader asks the socket for at a time.
const STAGE: usize = 16 * 1024;

impl Reader {
    pub(super) fn new(ring: Ring) -> Reader {
        Reader {
            ring,
            head: 0,
            tail: 0,
            frame_left: 0,
            on_socket: false,
            staged: Vec::new(),
            at: 0,
            filled: 0,
            socket_left: 0,
            eof: false,
        }
    }

    pub(super) fn ring(&self) -> &Ring {
        &self.ring
    }

    /// One read of the worker's stream into `buf`: the ring's frames, in
    /// order, switching to the socket at a marker; the socket (`block`ing
    /// or not, [`Errno::AGAIN`] when nothing is queued) when the ring has
    /// nothing. `Ok(0)` once the socket has ended and the ring is drained.
    pub(super) fn read(&mut self, fd: &Fd, buf: &mut [u8], block: bool) -> sys::Result<usize> {
        loop {
            if self.socket_left == 0 && !self.on_socket {
                let n = self.take_ring(buf)?;
                if n > 0 || self.on_socket {
                    if n > 0 {
                        return Ok(n);
                    }
                    continue;
                }
            }
            match self.take_staged(buf) {
                Some(0) => continue,
                Some(n) => return Ok(n),
                None => {}
            }
            if self.eof {
                return Ok(0);
            }
            // About to wait on the socket: say so, then look again.
            let in_ring = self.socket_left == 0 && !self.on_socket;
            if block && in_ring {
                match self.nap(-1) {
                    None => continue,
                    Some(-1) => {}
                    // The worker may not wake this process: the socket is
                    // waited on a short while, then the ring looked at again.
                    Some(nap) => {
                        sys::wait_readable(fd, nap)?;
                        match self.stage(fd, false) {
                            Ok(()) | Err(Errno::AGAIN) => continue,
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
            self.stage(fd, block)?;
        }
    }

    /// The ring's published bytes beyond the head (a tail the worker could
    /// not have written is an error).
    fn published(&mut self) -> sys::Result<u64> {
        if self.head == self.tail {
            let tail = self.ring.word(TAIL).load(Ordering::Acquire);
            if tail < self.head || tail - self.head > CAPACITY as u64 {
                return Err(Errno::INVAL);
            }
            self.tail = tail;
        }
        Ok(self.tail - self.head)
    }

    /// Hands out ring frames into `buf`: the rest of a frame handed out in
    /// parts first, then [`Reader::take_frames`] while there is room; stops
    /// at a marker (then reading from the socket).
    fn take_ring(&mut self, buf: &mut [u8]) -> sys::Result<usize> {
        let start = self.head;
        let mut done = self.frame_left.min(buf.len());
        if done > 0 {
            // Checked as a whole when it started: published already.
            if !self.copy_out(0, &mut buf[..done]) {
                return Err(Errno::INVAL);
            }
            self.head += done as u64;
            self.frame_left -= done;
        }
        while done < buf.len() && self.frame_left == 0 && !self.on_socket {
            let taken = self.take_frames(&mut buf[done..])?;
            if taken == 0 {
                break;
            }
            done += taken;
        }
        if self.head != start {
            self.ring.word(HEAD).store(self.head, Ordering::Release);
        }
        Ok(done)
    }

    /// Hands out the frames at the head, copied into `buf` in one go and
    /// checked in the copy: every whole one that fits, then the start of
    /// the next (its rest is `frame_left`). Stops at a marker (then reading
    /// from the socket). A frame never published whole is an error.
    fn take_frames(&mut self, buf: &mut [u8]) -> sys::Result<usize> {
        let published = self.published()?;
        let want = published.min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        if !self.copy_out(0, &mut buf[..want]) {
            return Err(Errno::INVAL);
        }
        let (mut took, mut frames) = (0, 0);
        let mut apart = [0u8; HEADER_LEN];
        while took < want {
            // A frame's header: read where the copy put it (in words: see
            // `is_marker`), or apart when the copy ends inside it.
            let rest = published - took as u64;
            let header = match buf[took..want].first_chunk::<HEADER_LEN>() {
                Some(copied) => copied,
                None if rest >= HEADER_LEN as u64 && self.copy_out(took as u64, &mut apart) => {
                    &apart
                }
                // Published bytes end inside a header.
                None => return Err(Errno::INVAL),
            };
            if is_marker(header) {
                self.head += HEADER_LEN as u64;
                self.on_socket = true;
                break;
            }
            let len = HEADER_LEN + wire::raw_length(header) as usize;
            if len as u64 > rest {
                return Err(Errno::INVAL); // never published whole
            }
            frames += 1;
            if took + len > want {
                // Its start goes out now, the rest in the next reads.
                self.frame_left = took + len - want;
                took = want;
                break;
            }
            took += len;
        }
        RING_FRAMES.fetch_add(frames, Ordering::Relaxed);
        self.head += took as u64;
        Ok(took)
    }

    /// Copies the ring's bytes from `offset` past the head into `dst` (not
    /// consumed).
    fn copy_out(&self, offset: u64, dst: &mut [u8]) -> bool {
        let at = ((self.head + offset) % CAPACITY as u64) as usize;
        let first = dst.len().min(CAPACITY - at);
        let (a, b) = dst.split_at_mut(first);
        self.ring.map.read_racy(DATA + at, a) && self.ring.map.read_racy(DATA, b)
    }

    /// Copies the ring's published bytes at the head into `block`, as far
    /// as it holds them, without taking them (see [`Reader::took_answers`]):
    /// for a creator that reads answers in place (see
    /// `Channel::take_answers`). 0 while a frame is half handed out, or
    /// when the stream's next bytes are the socket's.
    pub(super) fn peek_ring(&mut self, block: &mut [u8]) -> sys::Result<usize> {
        if self.socket_left != 0 || self.on_socket || self.frame_left != 0 {
            return Ok(0);
        }
        let want = self.published()?.min(block.len() as u64) as usize;
        match self.copy_out(0, &mut block[..want]) {
            true => Ok(want),
            false => Err(Errno::INVAL),
        }
    }

    /// The first `used` bytes [`Reader::peek_ring`] copied were `frames`
    /// whole frames, and were taken: the worker may write over them.
    pub(super) fn took_answers(&mut self, used: usize, frames: usize) {
        if used > 0 {
            self.head += used as u64;
            self.ring.word(HEAD).store(self.head, Ordering::Release);
            RING_FRAMES.fetch_add(frames as u64, Ordering::Relaxed);
        }
    }

    /// Hands out staged socket bytes: the rest of a frame, wake-ups and
    /// `BACK` skipped. `Some(0)` after a `BACK` (the ring is next), None
    /// when more must be read first.
    fn take_staged(&mut self, buf: &mut [u8]) -> Option<usize> {
        while self.at < self.filled {
            if self.socket_left == 0 {
                match self.staged[self.at] {
                    WAKE => {
                        self.at += 1;
                        continue;
                    }
                    BACK => {
                        self.at += 1;
                        self.on_socket = false;
                        return Some(0);
                    }
                    _ => {}
                }
                let rest = &self.staged[self.at..self.filled];
                self.socket_left = match rest.first_chunk::<HEADER_LEN>() {
                    Some(header) => HEADER_LEN + wire::raw_length(header) as usize,
                    // Cut short for good: the decoder sees how.
                    None if self.eof => rest.len(),
                    None => return None,
                };
                if self.on_socket {
                    MARKED_FRAMES.fetch_add(1, Ordering::Relaxed);
                }
            }
            let n = self.socket_left.min(self.filled - self.at).min(buf.len());
            buf[..n].copy_from_slice(&self.staged[self.at..self.at + n]);
            self.at += n;
            self.socket_left -= n;
            return Some(n);
        }
        None
    }

    /// Reads what the socket has into the staging buffer, straight after
    /// the bytes not handed out yet (moved to its front first).
    fn stage(&mut self, fd: &Fd, block: bool) -> sys::Result<()> {
        self.staged.copy_within(self.at..self.filled, 0);
        self.filled -= self.at;
        self.at = 0;
        // Room first: what is read is never lost to a failed allocation.
        let room = self.filled + STAGE;
        if self.staged.len() < room {
            if self
                .staged
                .try_reserve_exact(room - self.staged.len())
                .is_err()
            {
                return Err(Errno::NOMEM);
            }
            self.staged.resize(room, 0);
        }
        let into = &mut self.staged[self.filled..room];
        let read = match block {
            true => sys::read(fd, into),
            false => sys::read_now(fd, into),
        };
        let n = match read {
            Ok(n) => n,
            Err(Errno::CONNRESET) => 0,
            Err(e) => return Err(e),
        };
        self.filled += n;
        self.eof |= n == 0;
        Ok(())
    }

    /// Before the creator sleeps on the socket, the first step: true when
    /// there is something to read without the socket (then no need to
    /// sleep); otherwise asks the worker for a wake-up, noting in `sleep`
    /// that it must be settled ([`Sleep::settle`]) before the ring is
    /// looked at again ([`Reader::ready`]).
    pub(super) fn ask_wakeup(&self, sleep: &mut Sleep) -> bool {
        if self.ready() {
            return true;
        }
        self.ring.word(NEED_WAKEUP).store(1, Ordering::Relaxed);
        sleep.asked = true;
        false
    }

    /// True when the worker publishes without a fence of its own (see
    /// [`LIGHT`]). Read after [`Sleep::settle`]'s fence: read before it,
    /// the creator could miss a worker that joined the barriers meanwhile
    /// and would not run the barrier that worker relies on.
    pub(super) fn is_light(&self) -> bool {
        self.ring.word(LIGHT).load(Ordering::Relaxed) != 0
    }

    /// Before the creator sleeps on this one socket for up to
    /// `timeout_ms` (`-1`: forever): asks for a wake-up and looks at the
    /// ring again. None when there is something to read without the
    /// socket; otherwise how long it may sleep at a time (see
    /// [`Sleep::settle`]).
    pub(super) fn nap(&self, timeout_ms: i32) -> Option<i32> {
        let mut sleep = Sleep::default();
        if self.ask_wakeup(&mut sleep) {
            return None;
        }
        let nap = sleep.settle(|| self.is_light(), timeout_ms);
        (!self.ready()).then_some(nap)
    }

    /// True when the next bytes of the stream are the ring's and it has
    /// some: a read hands them out without a system call.
    pub(super) fn has_ring_frames(&self) -> bool {
        self.socket_left == 0
            && !self.on_socket
            && (self.frame_left > 0 || self.ring.word(TAIL).load(Ordering::Acquire) != self.head)
    }

    /// True when a read hands out bytes without reading the socket.
    pub(super) fn ready(&self) -> bool {
        if self.socket_left > 0 {
            return self.at < self.filled;
        }
        let unread = &self.staged[..self.filled];
        let controls = unread[self.at..].iter().take_while(|&&b| b == WAKE);
        let next = self.at + controls.count();
        match unread.get(next) {
            Some(&BACK) => return true,
            Some(_) => return self.eof || self.filled - next >= HEADER_LEN,
            None if self.on_socket => return false,
            None => {}
        }
        self.frame_left > 0 || self.ring.word(TAIL).load(Ordering::Acquire) != self.head
    }
}

/// True when `header` is a [`MARKER`]. Read as three words, as
/// `Reader::copy_out` wrote it a moment ago: a wider load across two of its
/// stores would wait for both to reach the cache.
fn is_marker(header: &[u8; HEADER_LEN]) -> bool {
    const _: () = assert!(HEADER_LEN == 24);
    let word = |at: usize| {
        u64::from_ne_bytes([
            header[at],
            header[at + 1],
            header[at + 2],
            header[at + 3],
            header[at + 4],
            header[at + 5],
            header[at + 6],
            header[at + 7],
        ])
    };
    word(0) | word(8) | word(16) == 0
}

/// What a creator about to sleep on its workers' sockets runs between
/// asking each ring for a wake-up ([`Reader::ask_wakeup`]) and looking at
/// the rings again: one fence, and one barrier on the CPUs of light workers
/// (see [`LIGHT`]), however many rings.
#[derive(Debug, Default)]
pub(crate) struct Sleep {
    /// A ring was asked for a wake-up.
    asked: bool,
}

/// The longest a creator sleeps at a time when the barrier its light
/// workers need failed: they may not wake it, so it looks at their rings
/// again this often.
const UNWOKEN_MS: i32 = 1;

impl Sleep {
    /// True when a ring was asked for a wake-up: it must be settled and
    /// looked at again before sleeping.
    pub(crate) fn asked(&self) -> bool {
        self.asked
    }

    /// Orders the wake-up flags stored before the tails are loaded again
    /// (the workers store a tail, then load their flag): a fence, then,
    /// when `light` says a ring asked is a light worker's (read after the
    /// fence: see [`Reader::is_light`]), the barrier on the workers' CPUs
    /// that stands for their fences. Returns how long the creator may then
    /// sleep at a time for a wait of `timeout_ms` (`-1`: forever): all of
    /// it, or at most [`UNWOKEN_MS`] when the barrier failed (the kernel
    /// took the workers' joining, so it should not), as the rings may then
    /// not wake it.
    pub(crate) fn settle(self, light: impl FnOnce() -> bool, timeout_ms: i32) -> i32 {
        fence(Ordering::SeqCst);
        if !self.asked || !light() {
            return timeout_ms;
        }
        match sys::barrier_in_joined() {
            Ok(()) => {
                BARRIERS.fetch_add(1, Ordering::Relaxed);
                timeout_ms
            }
            Err(_) if timeout_ms < 0 => UNWOKEN_MS,
            Err(_) => timeout_ms.min(UNWOKEN_MS),
        }
    }
}

impl Channel {
    /// In a reused worker's creator: hands the whole answers at the front
    /// of the worker's stream to `take` (each one's task tag and payload),
    /// reading the ring as need be but never the socket, while `take`
    /// accepts them (`Ok(false)` leaves one where it is). Stops at anything
    /// else (an error, a marker, a frame of another kind, a second message
    /// of a task), which the exchange's generic path reads. Replies then go
    /// to the task of the last one taken, as after a receive. Returns how
    /// many were taken; an error from `take` stops it, after those.
    pub(crate) fn take_answers(
        &mut self,
        mut take: impl FnMut(u64, &[u8]) -> crate::Result<bool>,
    ) -> crate::Result<usize> {
        let (mut taken, mut failed, mut last) = (0, None, None);
        let max = self.conn.decoder().max_message();
        // A block of the ring, read in place: copied to the stack and taken
        // from there, not handed to the decoder and read a second time.
        let mut block = [0u8; RING_BLOCK];
        while self.socket.answers_in.is_some()
            && self.conn.decoder().pending().is_none()
            && !self.is_ended()
            && self.stashed_frame().is_none()
        {
            // The answers in front: those the decoder holds, else the
            // ring's (one reading for both, `wire::take_answers_in`).
            let in_place = self.conn.decoder().buffered().is_empty();
            let copied = match (&mut self.socket.answers_in, in_place) {
                // A ring that went wrong is met again, and reported, below.
                (Some(reader), true) => reader.peek_ring(&mut block).unwrap_or(0),
                _ => 0,
            };
            let bytes = match in_place {
                true => &block[..copied],
                false => self.conn.decoder().buffered(),
            };
            let (used, frames) = wire::take_answers_in(bytes, max, |header, payload| {
                match take(header.task, payload) {
                    Ok(true) => {
                        last = Some(header.task);
                        return true;
                    }
                    Ok(false) => {}
                    Err(e) => failed = Some(e),
                }
                false
            });
            taken += frames;
            match (&mut self.socket.answers_in, in_place) {
                (Some(reader), true) => reader.took_answers(used, frames),
                _ => self.conn.decoder_mut().took_answers(used),
            }
            if failed.is_some() {
                break;
            }
            if used > 0 {
                continue; // more may follow
            }
            // Something else in front (or a frame too big for the buffer,
            // which the generic path collects apart), or nothing more in
            // the ring: what the ring has is read into the decoder, as any
            // frame, while the decoder can complete its frame.
            let more = self
                .socket
                .answers_in
                .as_ref()
                .is_some_and(Reader::has_ring_frames);
            if !self.conn.decoder().completes_in_buffer() || !more {
                break;
            }
            if self.fill(false).map_or(true, |n| n == 0) {
                break;
            }
        }
        if let Some(task) = last {
            self.reply_to(task);
        }
        failed.map_or(Ok(taken), Err)
    }
}

/// Bytes of a ring a creator reads in place at a time (see
/// `Channel::take_answers`).
const RING_BLOCK: usize = 1024;

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

    /// A worker's writer and its creator's reader on one ring, as after a
    /// fork, with the socket between them.
    fn pair() -> (Writer, Fd, Reader, Fd) {
        let (worker, creator) = sys::socketpair().unwrap();
        let ring = Ring::new().unwrap();
        let alias = core::mem::ManuallyDrop::into_inner(ring.alias());
        (Writer::new(ring), worker, Reader::new(alias), creator)
    }

    /// Reads until the end of the stream (the reader's alias of the
    /// writer's pages is forgotten, never unmapped).
    fn read_to_end(reader: Reader, fd: &Fd) -> Vec<u8> {
        let mut reader = core::mem::ManuallyDrop::new(reader);
        let mut got = Vec::new();
        let mut buf = [0u8; 100];
        loop {
            match reader.read(fd, &mut buf, true).unwrap() {
                0 => return got,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[test]
    fn frames_arrive_in_order_through_the_ring_the_socket_and_back() {
        let (mut writer, worker, reader, creator) = pair();
        let (ring_before, marked_before) = answer_paths();
        let mut sent = Vec::new();
        // Small ones, one larger than the ring, then enough to fill it
        // (the rest goes through the socket until there is room again).
        let mut frames = alloc::vec![frame(1, b"small"), frame(2, &[7; CAPACITY])];
        frames.extend((3..90).map(|task| frame(task, &[task as u8; 1000])));
        for f in &frames {
            writer.write(&worker, &[f]).unwrap();
            sent.extend_from_slice(f);
        }
        drop(worker); // the worker is gone: the ring is drained, then the end
        assert_eq!(read_to_end(reader, &creator), sent);
        let (ring, marked) = answer_paths();
        assert!(
            ring - ring_before >= 60,
            "most frames came through the ring"
        );
        assert!(marked - marked_before >= 2, "the big one and the overflow");
        drop(writer); // after the reader: it unmaps the pages
    }

    /// What `Channel::take_answers` does with the ring alone: blocks read
    /// in place, answers taken from them, until one is not taken.
    fn take_in_place(
        reader: &mut Reader,
        mut take: impl FnMut(&wire::Header, &[u8]) -> bool,
    ) -> usize {
        let (mut block, mut total) = ([0u8; RING_BLOCK], 0);
        loop {
            let copied = reader.peek_ring(&mut block).unwrap();
            let (used, frames) = wire::take_answers_in(&block[..copied], 1 << 20, &mut take);
            reader.took_answers(used, frames);
            total += frames;
            if used == 0 {
                return total;
            }
        }
    }

    #[test]
    fn answers_are_taken_in_place_until_a_frame_that_is_not_one() {
        let (mut writer, worker, reader, creator) = pair();
        let mut reader = core::mem::ManuallyDrop::new(reader);
        // Enough answers to span several blocks, and the ring's end (the
        // ring is filled and drained twice first), then a frame that is not
        // an answer (no end mark), then another answer.
        let mut sent = Vec::new();
        for round in 0..2 {
            for task in 1..=700u64 {
                let f = frame(task, &alloc::vec![task as u8; (task as usize * 7) % 61]);
                writer.write(&worker, &[&f]).unwrap();
                if round == 1 {
                    sent.push((task, f[HEADER_LEN..].to_vec()));
                }
            }
            if round == 0 {
                let mut taken = 0;
                let all = take_in_place(&mut reader, |_, _| {
                    taken += 1;
                    true
                });
                assert_eq!(all, 700);
                assert_eq!(taken, 700);
            }
        }
        let other = Header::new(Kind::Data, 0, 2, 9).for_task(701).encode();
        writer.write(&worker, &[&other, b"no"]).unwrap();
        writer.write(&worker, &[&frame(702, b"after")]).unwrap();
        // A take that refuses one stops there; the next take starts with it.
        let mut got = Vec::new();
        let refused = take_in_place(&mut reader, |header, payload| {
            if header.task == 350 {
                return false;
            }
            got.push((header.task, payload.to_vec()));
            true
        });
        assert_eq!(refused, 349);
        let rest = take_in_place(&mut reader, |header, payload| {
            got.push((header.task, payload.to_vec()));
            true
        });
        assert_eq!(rest, 351);
        assert_eq!(got, sent);
        // The rest is read as a stream, from the frame that is no answer.
        drop(worker);
        let mut stream = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            match reader.read(&creator, &mut buf, true).unwrap() {
                0 => break,
                n => stream.extend_from_slice(&buf[..n]),
            }
        }
        let mut expected = other.to_vec();
        expected.extend_from_slice(b"no");
        expected.extend_from_slice(&frame(702, b"after"));
        assert_eq!(stream, expected);
        drop(writer); // after the reader: it unmaps the pages
    }

    #[test]
    fn frames_read_in_pieces_of_every_size_arrive_whole_and_in_order() {
        let (mut writer, worker, reader, creator) = pair();
        let mut sent = Vec::new();
        for task in 1..40u64 {
            let f = frame(task, &alloc::vec![task as u8; (task as usize * 7) % 61]);
            writer.write(&worker, &[&f]).unwrap();
            sent.extend_from_slice(&f);
        }
        drop(worker);
        // Reads of 1 to 47 bytes end anywhere: inside headers, payloads,
        // or right at a frame's end.
        let mut reader = core::mem::ManuallyDrop::new(reader);
        let mut got = Vec::new();
        for size in (1..48).cycle() {
            let mut buf = [0u8; 47];
            match reader.read(&creator, &mut buf[..size], true).unwrap() {
                0 => break,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
        assert_eq!(got, sent);
        drop(writer);
    }

    /// `take_answers` hands out the answers in order while they are
    /// accepted, leaves one refused (and what follows) where it is, and
    /// stops at the store's error after those it took; what follows a frame
    /// of another kind is for the generic path.
    #[test]
    fn answers_are_taken_in_order_until_one_is_refused_or_fails() {
        let (mut writer, worker, reader, creator) = pair();
        let mut channel = Channel::from_fd(creator, None);
        channel.socket.answers_in = Some(reader);
        for task in 1..=4u64 {
            writer
                .write(&worker, &[&frame(task, &[task as u8; 8])])
                .unwrap();
        }
        let not_an_answer = Header::new(Kind::Data, 0, 1, 1).for_task(5).encode();
        writer.write(&worker, &[&not_an_answer, b"x"]).unwrap();
        writer.write(&worker, &[&frame(6, b"late")]).unwrap();
        let mut seen = Vec::new();
        let taken = channel.take_answers(|tag, payload| {
            seen.push((tag, payload.to_vec()));
            Ok(tag != 3)
        });
        assert_eq!(taken, Ok(2));
        assert_eq!(seen[..2], [(1, alloc::vec![1; 8]), (2, alloc::vec![2; 8])]);
        let failed = channel.take_answers(|_, _| Err(Errno::NOMEM.into()));
        assert_eq!(failed, Err(Errno::NOMEM.into()), "3 stays");
        seen.clear();
        let taken = channel.take_answers(|tag, payload| {
            seen.push((tag, payload.to_vec()));
            Ok(true)
        });
        assert_eq!(taken, Ok(2), "3 and 4, up to the frame with no end mark");
        assert_eq!(seen, [(3, alloc::vec![3; 8]), (4, alloc::vec![4; 8])]);
        assert_eq!(channel.take_answers(|_, _| Ok(true)), Ok(0));
        // The reader's alias of the writer's pages is forgotten.
        core::mem::forget(channel.socket.answers_in.take());
        drop((worker, writer));
    }

    /// An answer too big for the read-ahead buffer stops `take_answers`
    /// (no read into a full buffer, no wait): the generic path reads it,
    /// and the answers behind it are taken after.
    #[test]
    fn an_answer_bigger_than_the_read_ahead_buffer_is_left_for_the_generic_path() {
        let (mut writer, worker, reader, creator) = pair();
        let mut channel = Channel::from_fd(creator, None);
        channel.socket.answers_in = Some(reader);
        writer.write(&worker, &[&frame(1, b"small")]).unwrap();
        writer.write(&worker, &[&frame(2, &[7; 3000])]).unwrap();
        writer.write(&worker, &[&frame(3, b"after")]).unwrap();
        assert_eq!(channel.take_answers(|tag, _| Ok(tag == 1)), Ok(1));
        assert_eq!(
            channel.take_answers(|_, _| Ok(true)),
            Ok(0),
            "the big one stays"
        );
        let mut big = [0u8; 3000];
        assert_eq!(channel.receive(&mut big), Ok(3000));
        assert_eq!(big, [7; 3000]);
        let mut seen = Vec::new();
        let taken = channel.take_answers(|tag, payload| {
            seen.push((tag, payload.to_vec()));
            Ok(true)
        });
        assert_eq!((taken, seen), (Ok(1), alloc::vec![(3, b"after".to_vec())]));
        // The reader's alias of the writer's pages is forgotten.
        core::mem::forget(channel.socket.answers_in.take());
        drop((worker, writer));
    }

    /// A creator whose barrier fails (a sandbox refuses membarrier once
    /// its light worker joined) cannot trust the worker to wake it, but it
    /// still reads the socket, a short while at a time: a worker that died
    /// without a word is seen to be gone.
    #[test]
    fn a_creator_that_cannot_run_the_barrier_still_sees_a_dead_worker() {
        let (writer, worker, reader, creator) = pair();
        if !writer.light {
            std::eprintln!("skipped: no membarrier here, both sides fence");
            return;
        }
        drop(worker); // gone, having published nothing
        let done = std::sync::Arc::new(core::sync::atomic::AtomicBool::new(false));
        let watched = done.clone();
        // Made before the filter: a hang (a spin) becomes a failure.
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(5));
            if !watched.load(Ordering::SeqCst) {
                std::eprintln!("Reader::read(block) spun for 5 s on a dead worker's socket");
                std::process::abort();
            }
        });
        assert!(sys::refuse_barriers_in_this_thread(), "seccomp filter");
        assert!(sys::barrier_in_joined().is_err(), "the barrier now fails");
        let mut reader = core::mem::ManuallyDrop::new(reader);
        let mut buf = [0u8; 64];
        let got = reader.read(&creator, &mut buf, true);
        done.store(true, Ordering::SeqCst);
        assert_eq!(got, Ok(0), "the end of the worker's stream");
        drop(writer);
    }

    #[test]
    fn a_sleeping_creator_is_woken_once_and_an_awake_one_never() {
        let (mut writer, worker, mut reader, creator) = pair();
        let mut byte = [9u8; 8];
        writer.write(&worker, &[&frame(1, b"a")]).unwrap();
        assert_eq!(sys::read_now(&creator, &mut byte), Err(Errno::AGAIN));
        assert_eq!(reader.nap(-1), None, "published: no need to sleep");
        let mut buf = [0u8; 64];
        assert_eq!(reader.read(&creator, &mut buf, false), Ok(HEADER_LEN + 1));
        assert_eq!(
            reader.nap(-1),
            Some(-1),
            "empty: sleeps, asking for a wake-up"
        );
        writer.write(&worker, &[&frame(2, b"b")]).unwrap();
        writer.write(&worker, &[&frame(3, b"c")]).unwrap();
        assert_eq!(sys::read_now(&creator, &mut byte), Ok(1), "one wake-up");
        assert_eq!(byte[0], WAKE);
        assert_eq!(
            reader.read(&creator, &mut buf, true),
            Ok(2 * (HEADER_LEN + 1))
        );
        core::mem::forget(reader);
        drop(writer);
    }

    #[test]
    fn a_scribbled_tail_is_an_error_not_a_panic() {
        let (writer, _worker, mut reader, creator) = pair();
        writer.ring().word(TAIL).store(u64::MAX, Ordering::Relaxed);
        assert_eq!(
            reader.read(&creator, &mut [0u8; 8], false),
            Err(Errno::INVAL)
        );
        writer.ring().word(TAIL).store(30, Ordering::Relaxed);
        // A zeroed ring: a marker, then a header claiming nothing more.
        assert!(reader.read(&creator, &mut [0u8; 8], false).is_err());
        core::mem::forget(reader);
        drop(writer);
    }
}
