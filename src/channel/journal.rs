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
//! ```text
//! stream:   [ written and read ...... | held: answers of tasks 7, 8, 9 ]
//!                                  read ^ ^ journal start     journal end ^
//! replayed:                            [ rest of 7 | 8 | 9 ]
//! ```

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::Channel;
use crate::sys::{self, Errno, Fd, SharedMap};
use crate::wire::{Header, CORK_LIMIT};

/// Word 0: the stream position of the journal's first byte.
const START: usize = 0;
/// Word 1: how many bytes, all whole frames, the journal holds.
const LEN: usize = 1;
/// The frames' bytes start here, after the words.
const DATA: usize = 64;
/// Most bytes a journal mirrors: all a corked encoder holds.
const CAPACITY: usize = CORK_LIMIT;

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

    /// In the worker: the frame `parts` is held at stream position `pos`;
    /// mirrors it. False (nothing mirrored) when it does not fit, or does
    /// not follow the frames mirrored already: the caller then writes it.
    fn append(&mut self, pos: u64, parts: &[&[u8]]) -> bool {
        let words = self.map.words();
        // Only this process writes the words: its own last stores.
        let len = words[LEN].load(Ordering::Relaxed) as usize;
        let start = words[START].load(Ordering::Relaxed);
        let size: usize = parts.iter().map(|part| part.len()).sum();
        let follows = len == 0 || start + len as u64 == pos;
        if !follows || len + size > CAPACITY {
            return false;
        }
        if len == 0 {
            words[START].store(pos, Ordering::Relaxed);
        }
        let bytes = &mut self.map.bytes_mut()[DATA + len..DATA + len + size];
        let mut at = 0;
        for part in parts {
            bytes[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        // The frame is whole before the length covers it.
        self.map.words()[LEN].store((len + size) as u64, Ordering::Release);
        true
    }

    /// In the worker: everything held was written; nothing to recover.
    fn clear(&self) {
        self.map.words()[LEN].store(0, Ordering::Release);
    }

    /// In the creator, at the end of the worker's stream, having read
    /// `received` bytes of it: the bytes the worker held that the socket
    /// never delivered (none if the journal is empty or the socket
    /// delivered them all).
    fn unreceived(&self, received: u64) -> &[u8] {
        let words = self.map.words();
        // A length the worker never could have written is not trusted.
        let len = (words[LEN].load(Ordering::Acquire) as usize).min(CAPACITY);
        let start = words[START].load(Ordering::Relaxed);
        let end = start.saturating_add(len as u64);
        if received < start || received >= end {
            return &[];
        }
        let from = (received - start) as usize;
        &self.map.bytes()[DATA + from..DATA + len]
    }
}

/// What a creator reads from a reused worker: its socket, then, at the end
/// of the stream, what the worker's [`Journal`] holds that never arrived.
#[derive(Debug, Default)]
pub(super) struct Inflow {
    /// Bytes read from the socket so far.
    received: u64,
    /// The worker's journal, until it is replayed.
    journal: Option<Journal>,
    /// Bytes recovered from the journal, read after the socket's end.
    replay: Vec<u8>,
    /// How many of `replay` were read.
    replayed: usize,
}

impl Inflow {
    /// One read into `buf`: from the socket (`block`ing or not), or after
    /// its end from what the journal recovered; `Ok(0)` at the end of both.
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
            match read {
                Ok(0) | Err(Errno::CONNRESET) if self.recover() => continue,
                Ok(n) => {
                    self.received += n as u64;
                    return Ok(n);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// At the end of the stream: takes what the journal holds beyond what
    /// was read, once. False when there is nothing (or no memory for it:
    /// the stream then ends where the socket did).
    fn recover(&mut self) -> bool {
        let Some(journal) = self.journal.take() else {
            return false;
        };
        let rest = journal.unreceived(self.received);
        if rest.is_empty() || self.replay.try_reserve_exact(rest.len()).is_err() {
            return false;
        }
        self.replay.clear();
        self.replay.extend_from_slice(rest);
        self.replayed = 0;
        true
    }
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
    /// `n` more bytes went to the socket.
    pub(super) fn wrote(&mut self, n: usize) {
        self.sent += n as u64;
    }

    /// The frame `header` + `payload`, `before` bytes after the first
    /// unwritten byte, was just held: mirrors it. False when it cannot be
    /// (no journal, or it does not fit): the caller writes what it holds.
    pub(super) fn held(&mut self, before: usize, header: &Header, payload: &[u8]) -> bool {
        let pos = self.sent + before as u64;
        match &mut self.journal {
            Some(journal) => journal.append(pos, &[&header.encode(), payload]),
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

    /// In a reused worker's creator: at the end of the worker's stream,
    /// what it held and never wrote is read from `journal`.
    pub(crate) fn recover_held(&mut self, journal: Journal) {
        self.inflow.journal = Some(journal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Kind, FLAG_END, HEADER_LEN};

    fn frame(task: u64, payload: &[u8]) -> Vec<u8> {
        let header = Header::new(Kind::Data, FLAG_END, payload.len() as u32, 1).for_task(task);
        let mut bytes = header.encode().to_vec();
        bytes.extend_from_slice(payload);
        bytes
    }

    #[test]
    fn the_journal_gives_back_exactly_the_bytes_not_received() {
        let mut journal = Journal::new().unwrap();
        assert!(journal.unreceived(0).is_empty());
        assert!(journal.append(100, &[b"abc", b"de"]));
        assert!(journal.append(105, &[b"fgh"]));
        assert!(!journal.append(200, &[b"x"]), "a gap is refused");
        assert_eq!(journal.unreceived(99), b"", "a gap before it: nothing");
        assert_eq!(journal.unreceived(100), b"abcdefgh");
        assert_eq!(journal.unreceived(103), b"defgh");
        assert_eq!(journal.unreceived(108), b"", "all delivered");
        journal.clear();
        assert_eq!(journal.unreceived(100), b"");
        // Emptied, it starts again anywhere.
        assert!(journal.append(300, &[b"z"]));
        assert_eq!(journal.unreceived(300), b"z");
        let big = alloc::vec![0u8; CAPACITY];
        assert!(!journal.append(301, &[&big]), "over its capacity");
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
            let mut out = Outflow {
                journal: Some(Journal::new().unwrap()),
                ..Outflow::default()
            };
            let mut inflow = Inflow::default();
            // The journal is shared across the fork; in one process the
            // creator's view is a second handle on the same pages: here,
            // the worker's own.
            sys::send_vectored(&worker, &[&first]).unwrap();
            out.wrote(first.len());
            let mut before = 0;
            for bytes in &held {
                let (head, payload) = bytes.split_at(HEADER_LEN);
                let header = Header::decode(head.try_into().unwrap(), payload.len()).unwrap();
                assert!(out.held(before, &header, payload));
                before += bytes.len();
            }
            // Killed after the socket took `cut` bytes of the stream.
            sys::send_vectored(&worker, &[&stream[first.len()..cut]]).unwrap();
            drop(worker);
            inflow.journal = out.journal.take();
            let mut got = Vec::new();
            let mut buf = [0u8; 16];
            loop {
                match inflow.read(&creator, &mut buf, true).unwrap() {
                    0 => break,
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
            assert_eq!(got, stream, "cut after {cut} bytes");
        }
    }

    #[test]
    fn a_journal_emptied_after_the_write_replays_nothing() {
        let (worker, creator) = sys::socketpair().unwrap();
        let mut out = Outflow {
            journal: Some(Journal::new().unwrap()),
            ..Outflow::default()
        };
        let bytes = frame(1, b"answer");
        let (head, payload) = bytes.split_at(HEADER_LEN);
        let header = Header::decode(head.try_into().unwrap(), payload.len()).unwrap();
        assert!(out.held(0, &header, payload));
        sys::send_vectored(&worker, &[&bytes]).unwrap();
        out.wrote(bytes.len());
        out.flushed();
        drop(worker);
        let mut inflow = Inflow {
            journal: out.journal.take(),
            ..Inflow::default()
        };
        let mut buf = [0u8; 64];
        assert_eq!(inflow.read(&creator, &mut buf, true).unwrap(), bytes.len());
        assert_eq!(inflow.read(&creator, &mut buf, true).unwrap(), 0);
    }
}
