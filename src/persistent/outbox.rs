//! The keeper's outbox: the callable's results until a client acknowledges
//! them, as a state machine without I/O.
//!
//! The keeper feeds it what the callable sent ([`Outbox::push`]), asks it
//! for the bytes to write to the client ([`Outbox::pending`]) and tells it
//! how many the socket took ([`Outbox::wrote`]), so a frame is written in
//! as many pieces as the client's socket buffer allows and the keeper never
//! waits for a client. Acknowledgements come back through [`Outbox::ack`],
//! which refuses one for a frame not written whole to this client.
//!
//! Each frame asks for an acknowledgement; frames are numbered from 1 on
//! each connection. At most [`RESULTS_IN_FLIGHT`] results are in flight at once. When
//! the callable has finished and every result is acknowledged, the stream
//! ends with an end frame ([`Kind::End`]).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::wire::{Header, Kind, FLAG_ACK_REQUESTED, HEADER_LEN};

use super::RESULTS_IN_FLIGHT;

/// One result of the callable: a data or error frame's kind and payload.
struct Entry {
    kind: Kind,
    payload: Vec<u8>,
    /// Its frame number on the current connection, once written whole.
    seq: Option<u32>,
}

/// What the frame being written is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum What {
    /// The entry after those sent.
    Entry,
    /// The end frame.
    End,
    /// An acknowledgement of messages the client sent.
    Ack,
}

/// The frame being written: its header, how many of its bytes are out, and
/// what it is.
struct Writing {
    header: [u8; HEADER_LEN],
    done: usize,
    what: What,
}

/// Why an acknowledgement was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct NeverSent(pub u32);

/// The keeper's outbox (see the [module documentation](self)).
pub(super) struct Outbox {
    /// Unacknowledged results, oldest first.
    entries: VecDeque<Entry>,
    /// What `entries` hold, each result counted as [`Outbox::cost`].
    bytes: usize,
    /// Entries at the front written whole to the current client.
    sent: usize,
    writing: Option<Writing>,
    /// A client is connected.
    connected: bool,
    /// The next frame number on this connection.
    next_seq: u32,
    /// The highest frame number the client acknowledged (0: none).
    acked: u32,
    /// The end frame's number, once written whole to this client.
    end_seq: Option<u32>,
    /// The callable has finished: nothing more will be pushed.
    input_done: bool,
    /// A client acknowledged something (a result or the end): a collector
    /// was here, not a probe that connected and left.
    collected: bool,
    /// The keeper is leaving: the end frame goes out whether or not it was
    /// asked for.
    closing: bool,
    /// The newest frame number of the client's to acknowledge (its messages
    /// the callable took).
    ack_due: Option<u32>,
}

impl Outbox {
    pub(super) fn new() -> Outbox {
        Outbox {
            entries: VecDeque::new(),
            bytes: 0,
            sent: 0,
            writing: None,
            connected: false,
            next_seq: 1,
            acked: 0,
            end_seq: None,
            input_done: false,
            collected: false,
            closing: false,
            ack_due: None,
        }
    }

    /// Adds a result: a data frame's payload, or an error frame's.
    pub(super) fn push(&mut self, kind: Kind, payload: Vec<u8>) {
        self.bytes += Outbox::cost(&payload);
        self.entries.push_back(Entry {
            kind,
            payload,
            seq: None,
        });
    }

    /// Bytes of the results not yet acknowledged, each counted with its
    /// bookkeeping ([`Outbox::cost`]), so that a flood of empty results is
    /// bounded as a flood of large ones is.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// What one result holds: its payload and its entry (at least a frame
    /// header's worth).
    fn cost(payload: &[u8]) -> usize {
        core::mem::size_of::<Entry>().max(HEADER_LEN) + payload.len()
    }

    /// The callable has finished: once its results are acknowledged, the
    /// stream ends.
    pub(super) fn input_done(&mut self) {
        self.input_done = true;
    }

    /// The callable has finished, every result is acknowledged, and a client
    /// acknowledged something: the keeper's work is done.
    pub(super) fn finished(&self) -> bool {
        self.input_done && self.entries.is_empty() && self.collected
    }

    /// The keeper leaves: the current client gets the end frame.
    pub(super) fn close(&mut self) {
        self.closing = true;
    }

    /// A new client: frames are numbered from 1, and everything not
    /// acknowledged is to be written to it.
    pub(super) fn connect(&mut self) {
        self.disconnect();
        self.connected = true;
    }

    /// The client is gone: what it did not acknowledge goes to the next one.
    pub(super) fn disconnect(&mut self) {
        for entry in &mut self.entries {
            entry.seq = None;
        }
        self.sent = 0;
        self.writing = None;
        self.connected = false;
        self.next_seq = 1;
        self.acked = 0;
        self.end_seq = None;
        self.ack_due = None;
    }

    /// Acknowledges the client's frame `seq` (and every one before it) with
    /// the next frame written.
    pub(super) fn ack_client(&mut self, seq: u32) {
        if self.connected {
            self.ack_due = Some(seq);
        }
    }

    /// True while a frame is partly written (nothing else may be written to
    /// this client before its rest).
    pub(super) fn mid_frame(&self) -> bool {
        self.writing.as_ref().is_some_and(|w| w.done > 0)
    }

    /// The bytes to write to the client now, as the rest of a frame's header
    /// and the rest of its payload; `None` when nothing is to be written
    /// (no client, [`RESULTS_IN_FLIGHT`] results in flight, or nothing left).
    pub(super) fn pending(&mut self) -> Option<(&[u8], &[u8])> {
        if !self.connected {
            return None;
        }
        if self.writing.is_none() {
            let end_wanted = !self.collected || self.closing;
            let (header, what) = if let Some(seq) = self.ack_due.take() {
                (Header::new(Kind::Ack, 0, 0, seq), What::Ack)
            } else if self.sent < self.entries.len().min(RESULTS_IN_FLIGHT) {
                let entry = &self.entries[self.sent];
                let length = entry.payload.len() as u32;
                let header = Header::new(entry.kind, FLAG_ACK_REQUESTED, length, self.next_seq);
                (header, What::Entry)
            } else if self.input_done
                && self.entries.is_empty()
                && self.end_seq.is_none()
                && end_wanted
            {
                let header = Header::new(Kind::End, FLAG_ACK_REQUESTED, 0, self.next_seq);
                (header, What::End)
            } else {
                return None;
            };
            self.writing = Some(Writing {
                header: header.encode(),
                done: 0,
                what,
            });
        }
        let writing = self.writing.as_ref()?;
        let payload: &[u8] = match writing.what {
            What::Entry => &self.entries[self.sent].payload,
            What::End | What::Ack => &[],
        };
        let header = &writing.header[writing.done.min(HEADER_LEN)..];
        let payload = &payload[writing.done.saturating_sub(HEADER_LEN)..];
        Some((header, payload))
    }

    /// The socket took `n` bytes of what [`Outbox::pending`] gave.
    pub(super) fn wrote(&mut self, n: usize) {
        let Some(writing) = &mut self.writing else {
            return;
        };
        writing.done += n;
        let length = match writing.what {
            What::Entry => self.entries[self.sent].payload.len(),
            What::End | What::Ack => 0,
        };
        if writing.done < HEADER_LEN + length {
            return;
        }
        let seq = self.next_seq;
        match writing.what {
            What::Ack => {}
            What::End => self.end_seq = Some(seq),
            What::Entry => {
                self.entries[self.sent].seq = Some(seq);
                self.sent += 1;
            }
        }
        if writing.what != What::Ack {
            self.next_seq = seq.wrapping_add(1);
        }
        self.writing = None;
    }

    /// The client acknowledged frame `seq` and every frame before it: drops
    /// those results. An acknowledgement of a frame not written whole to
    /// this client (or older than one already received) is refused and
    /// releases nothing.
    pub(super) fn ack(&mut self, seq: u32) -> Result<(), NeverSent> {
        let newest = self.next_seq.wrapping_sub(1);
        if seq.wrapping_sub(self.acked) > newest.wrapping_sub(self.acked) {
            return Err(NeverSent(seq));
        }
        self.acked = seq;
        while let Some(Entry {
            seq: Some(sent), ..
        }) = self.entries.front()
        {
            if (seq.wrapping_sub(*sent) as i32) < 0 {
                break;
            }
            if let Some(entry) = self.entries.pop_front() {
                self.bytes -= Outbox::cost(&entry.payload);
            }
            self.sent -= 1;
            self.collected = true;
        }
        if self.end_seq == Some(seq) {
            self.collected = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes everything pending, in pieces of at most `piece` bytes;
    /// returns the bytes written.
    fn write_all(outbox: &mut Outbox, piece: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        while let Some((header, payload)) = outbox.pending() {
            let mut all = header.to_vec();
            all.extend_from_slice(payload);
            let n = all.len().min(piece);
            bytes.extend_from_slice(&all[..n]);
            outbox.wrote(n);
        }
        bytes
    }

    /// The headers of the whole frames in `bytes`.
    fn headers(bytes: &[u8]) -> Vec<Header> {
        let mut frames = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let raw: [u8; HEADER_LEN] = bytes[at..at + HEADER_LEN].try_into().unwrap();
            let header = Header::decode(&raw, usize::MAX).unwrap();
            at += HEADER_LEN + header.length as usize;
            frames.push(header);
        }
        assert_eq!(at, bytes.len(), "whole frames");
        frames
    }

    /// Writes everything pending, in pieces of at most `piece` bytes;
    /// returns the frames' headers.
    fn drain(outbox: &mut Outbox, piece: usize) -> Vec<Header> {
        headers(&write_all(outbox, piece))
    }

    fn with_results(n: u8) -> Outbox {
        let mut outbox = Outbox::new();
        for k in 0..n {
            outbox.push(Kind::Data, vec![k; 3]);
        }
        outbox
    }

    #[test]
    fn nothing_is_written_without_a_client() {
        let mut outbox = with_results(2);
        assert!(outbox.pending().is_none());
        outbox.connect();
        assert_eq!(drain(&mut outbox, usize::MAX).len(), 2);
    }

    #[test]
    fn at_most_a_window_of_results_is_in_flight() {
        let mut outbox = with_results(40);
        outbox.connect();
        let frames = drain(&mut outbox, usize::MAX);
        assert_eq!(frames.len(), RESULTS_IN_FLIGHT);
        assert!(frames.iter().all(|h| h.flags & FLAG_ACK_REQUESTED != 0));
        assert_eq!(frames[0].seq, 1);
        outbox.ack(5).unwrap();
        assert_eq!(drain(&mut outbox, usize::MAX).len(), 5);
    }

    #[test]
    fn a_frame_is_written_in_pieces_and_resumed() {
        let mut outbox = with_results(3);
        outbox.connect();
        let frames = drain(&mut outbox, 5);
        assert_eq!(frames.iter().map(|h| h.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(!outbox.mid_frame());
        outbox.push(Kind::Data, vec![9; 40]);
        let (header, _) = outbox.pending().unwrap();
        assert_eq!(header.len(), HEADER_LEN);
        outbox.wrote(HEADER_LEN + 4);
        assert!(outbox.mid_frame());
        let (header, payload) = outbox.pending().unwrap();
        assert_eq!((header.len(), payload.len()), (0, 36));
        // An acknowledgement of the frame being written is refused.
        assert_eq!(outbox.ack(4), Err(NeverSent(4)));
        outbox.wrote(36);
        assert!(!outbox.mid_frame());
        outbox.ack(4).unwrap();
        assert_eq!(outbox.bytes(), 0);
    }

    #[test]
    fn an_ack_of_a_frame_never_sent_releases_nothing() {
        let mut outbox = with_results(50);
        outbox.connect();
        drain(&mut outbox, usize::MAX);
        assert_eq!(outbox.ack(1000), Err(NeverSent(1000)));
        assert_eq!(outbox.bytes(), 50 * Outbox::cost(&[0; 3]));
        // The next client gets all 50.
        outbox.disconnect();
        outbox.connect();
        let mut got = drain(&mut outbox, usize::MAX).len();
        while got < 50 {
            outbox.ack(got as u32).unwrap();
            got += drain(&mut outbox, usize::MAX).len();
        }
        assert_eq!(got, 50);
    }

    #[test]
    fn acks_are_cumulative_and_never_go_back() {
        let mut outbox = with_results(10);
        outbox.connect();
        drain(&mut outbox, usize::MAX);
        outbox.ack(4).unwrap();
        assert_eq!(outbox.bytes(), 6 * Outbox::cost(&[0; 3]));
        outbox.ack(4).unwrap(); // the same again: nothing new
        assert_eq!(outbox.ack(3), Err(NeverSent(3)));
        assert_eq!(outbox.bytes(), 6 * Outbox::cost(&[0; 3]));
    }

    #[test]
    fn what_a_client_did_not_acknowledge_goes_to_the_next() {
        let mut outbox = with_results(5);
        outbox.connect();
        drain(&mut outbox, usize::MAX);
        outbox.ack(2).unwrap();
        outbox.disconnect();
        outbox.connect();
        let frames = drain(&mut outbox, usize::MAX);
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].seq, 1, "numbered afresh");
        // A frame cut off by a disconnection is written whole to the next.
        outbox.disconnect();
        outbox.connect();
        outbox.pending();
        outbox.wrote(7);
        outbox.disconnect();
        outbox.connect();
        assert_eq!(drain(&mut outbox, usize::MAX).len(), 3);
    }

    #[test]
    fn the_end_follows_the_last_acknowledgement() {
        let mut outbox = with_results(2);
        outbox.input_done();
        outbox.connect();
        assert_eq!(drain(&mut outbox, usize::MAX).len(), 2);
        assert!(!outbox.finished());
        outbox.ack(2).unwrap();
        // Finished: the end goes out as the keeper leaves.
        assert!(outbox.finished());
        assert!(drain(&mut outbox, usize::MAX).is_empty());
        outbox.close();
        let end = drain(&mut outbox, usize::MAX);
        assert_eq!(end.len(), 1);
        assert_eq!((end[0].kind, end[0].seq), (Kind::End, 3));
    }

    #[test]
    fn with_no_results_the_end_must_be_acknowledged_and_a_probe_is_no_collector() {
        let mut outbox = Outbox::new();
        outbox.input_done();
        outbox.connect();
        let end = drain(&mut outbox, usize::MAX);
        assert_eq!(end[0].kind, Kind::End);
        // A probe that connected and left acknowledged nothing.
        outbox.disconnect();
        assert!(!outbox.finished());
        outbox.connect();
        let end = drain(&mut outbox, usize::MAX);
        assert_eq!(end.len(), 1);
        outbox.ack(end[0].seq).unwrap();
        assert!(outbox.finished());
    }

    #[test]
    fn acknowledgements_to_the_client_go_between_whole_frames() {
        let mut outbox = with_results(2);
        outbox.connect();
        let mut bytes = Vec::new();
        let (header, _) = outbox.pending().unwrap();
        bytes.extend_from_slice(&header[..4]);
        outbox.wrote(4); // a result is half written
        outbox.ack_client(7);
        bytes.extend(write_all(&mut outbox, usize::MAX));
        let frames = headers(&bytes);
        let kinds: Vec<_> = frames.iter().map(|h| (h.kind, h.seq)).collect();
        assert_eq!(kinds, [(Kind::Data, 1), (Kind::Ack, 7), (Kind::Data, 2)]);
        // They take no frame number of the keeper's, and need no answer.
        assert!(frames[1].flags & FLAG_ACK_REQUESTED == 0);
        outbox.ack(2).unwrap();
        // Nobody to acknowledge once the client is gone.
        outbox.disconnect();
        outbox.ack_client(8);
        outbox.connect();
        assert!(drain(&mut outbox, usize::MAX).is_empty());
    }

    #[test]
    fn error_results_are_frames_like_any_other() {
        let mut outbox = Outbox::new();
        outbox.push(Kind::Data, vec![1]);
        outbox.push(Kind::Error, vec![0; 8]);
        outbox.connect();
        let kinds: Vec<_> = drain(&mut outbox, 3).iter().map(|h| h.kind).collect();
        assert_eq!(kinds, [Kind::Data, Kind::Error]);
    }

    #[test]
    fn empty_results_count_against_the_bound() {
        let mut outbox = Outbox::new();
        let mut admitted = 0usize;
        while outbox.bytes() < crate::persistent::OUTBOX_BYTES && admitted < 3 << 20 {
            outbox.push(Kind::Data, Vec::new());
            admitted += 1;
        }
        assert!(outbox.bytes() >= crate::persistent::OUTBOX_BYTES);
        assert!(admitted * HEADER_LEN <= crate::persistent::OUTBOX_BYTES);
    }
}
