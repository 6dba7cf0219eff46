//! The keeper's outbox: the callable's results until a client acknowledges
//! them, as a state machine without I/O.
//!
//! The keeper feeds it what the callable sent ([`Outbox::push`]), asks it
//! for the next frame to queue on the client's connection
//! ([`Outbox::next`], [`Outbox::queued_as`]) once that connection has
//! written the one before ([`Outbox::written`]), so a frame is written in as
//! many pieces as the client's socket buffer allows and the keeper never
//! waits for a client. Acknowledgements come back through [`Outbox::ack`],
//! which refuses one for a frame not written whole to this client.
//!
//! Each frame asks for an acknowledgement; frames are numbered from 1 on
//! each connection. At most [`RESULTS_IN_FLIGHT`] results are in flight at
//! once. When the callable has finished and every result is acknowledged,
//! the stream ends with an end frame ([`Kind::End`]).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::wire::{Kind, HEADER_LEN};

use super::RESULTS_IN_FLIGHT;

/// One result of the callable: a data or error frame's kind and payload.
struct Entry {
    kind: Kind,
    payload: Vec<u8>,
    /// Its frame number on the current connection, once queued there.
    seq: Option<u32>,
}

/// What [`Outbox::next`] offered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum What {
    /// The entry after those sent.
    Entry,
    /// The end frame.
    End,
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
    /// Entries at the front queued on the current connection.
    sent: usize,
    /// A client is connected.
    connected: bool,
    /// What [`Outbox::next`] offered last.
    offered: Option<What>,
    /// The frame queued last, until it is written whole.
    unwritten: Option<u32>,
    /// The newest frame number written whole to this client (0: none).
    written: u32,
    /// The highest frame number the client acknowledged (0: none).
    acked: u32,
    /// The end frame's number, once queued for this client.
    end_seq: Option<u32>,
    /// The callable has finished: nothing more will be pushed.
    input_done: bool,
    /// A client acknowledged something (a result or the end): a collector
    /// was here, not a probe that connected and left.
    collected: bool,
    /// The keeper is leaving: the end frame goes out whether or not it was
    /// asked for.
    closing: bool,
}

impl Outbox {
    pub(super) fn new() -> Outbox {
        Outbox {
            entries: VecDeque::new(),
            bytes: 0,
            sent: 0,
            connected: false,
            offered: None,
            unwritten: None,
            written: 0,
            acked: 0,
            end_seq: None,
            input_done: false,
            collected: false,
            closing: false,
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
        self.connected = false;
        self.offered = None;
        self.unwritten = None;
        self.written = 0;
        self.acked = 0;
        self.end_seq = None;
    }

    /// The next frame to queue on the client's connection (its kind and
    /// payload); `None` when nothing is to be queued now: no client, the
    /// frame queued last is not written whole yet, [`RESULTS_IN_FLIGHT`]
    /// results are in flight, or nothing is left. Report the frame's number
    /// with [`Outbox::queued_as`].
    pub(super) fn next(&mut self) -> Option<(Kind, &[u8])> {
        if !self.connected || self.unwritten.is_some() {
            return None;
        }
        let end_wanted = !self.collected || self.closing;
        if self.sent < self.entries.len().min(RESULTS_IN_FLIGHT) {
            self.offered = Some(What::Entry);
            let entry = &self.entries[self.sent];
            Some((entry.kind, &entry.payload))
        } else if self.input_done && self.entries.is_empty() && self.end_seq.is_none() && end_wanted
        {
            self.offered = Some(What::End);
            Some((Kind::End, &[]))
        } else {
            None
        }
    }

    /// The frame [`Outbox::next`] offered was queued as frame `seq`.
    pub(super) fn queued_as(&mut self, seq: u32) {
        match self.offered.take() {
            Some(What::Entry) => {
                self.entries[self.sent].seq = Some(seq);
                self.sent += 1;
            }
            Some(What::End) => self.end_seq = Some(seq),
            None => return,
        }
        self.unwritten = Some(seq);
    }

    /// Everything queued on the client's connection was written whole.
    pub(super) fn written(&mut self) {
        if let Some(seq) = self.unwritten.take() {
            self.written = seq;
        }
    }

    /// The client acknowledged frame `seq` and every frame before it: drops
    /// those results. An acknowledgement of a frame not written whole to
    /// this client (or older than one already received) is refused and
    /// releases nothing.
    pub(super) fn ack(&mut self, seq: u32) -> Result<(), NeverSent> {
        if seq.wrapping_sub(self.acked) > self.written.wrapping_sub(self.acked) {
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
    use crate::wire::{Conn, Header, FLAG_ACK_REQUESTED};

    /// A client's connection as the keeper drives it.
    struct Client {
        conn: Conn<Vec<u8>>,
    }

    impl Client {
        fn new() -> Client {
            Client { conn: Conn::new() }
        }

        /// Queues and writes whatever the outbox offers, in pieces of at most
        /// `piece` bytes; returns the headers written.
        fn drain(&mut self, outbox: &mut Outbox, piece: usize) -> Vec<Header> {
            let mut bytes = Vec::new();
            while let Some((kind, payload)) = outbox.next() {
                let seq = self
                    .conn
                    .send(kind, FLAG_ACK_REQUESTED, 0, payload)
                    .unwrap();
                outbox.queued_as(seq);
                while !self.conn.pending().is_empty() {
                    let n = self.conn.pending().len().min(piece);
                    bytes.extend_from_slice(&self.conn.pending()[..n]);
                    self.conn.written(n);
                }
                outbox.written();
            }
            headers(&bytes)
        }
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
        assert!(outbox.next().is_none());
        outbox.connect();
        assert_eq!(Client::new().drain(&mut outbox, usize::MAX).len(), 2);
    }

    #[test]
    fn at_most_a_window_of_results_is_in_flight() {
        let mut outbox = with_results(40);
        outbox.connect();
        let mut client = Client::new();
        let frames = client.drain(&mut outbox, usize::MAX);
        assert_eq!(frames.len(), RESULTS_IN_FLIGHT);
        assert!(frames.iter().all(|h| h.flags & FLAG_ACK_REQUESTED != 0));
        assert_eq!(frames[0].seq, 1);
        outbox.ack(5).unwrap();
        assert_eq!(client.drain(&mut outbox, usize::MAX).len(), 5);
    }

    #[test]
    fn one_frame_at_a_time_and_no_ack_before_it_is_written_whole() {
        let mut outbox = with_results(3);
        outbox.connect();
        let mut client = Client::new();
        let frames = client.drain(&mut outbox, 5);
        assert_eq!(frames.iter().map(|h| h.seq).collect::<Vec<_>>(), [1, 2, 3]);
        outbox.push(Kind::Data, vec![9; 40]);
        let (kind, payload) = outbox.next().unwrap();
        assert_eq!((kind, payload.len()), (Kind::Data, 40));
        outbox.queued_as(4);
        // Not written whole yet: nothing else is offered, and an
        // acknowledgement of it is refused.
        assert!(outbox.next().is_none());
        assert_eq!(outbox.ack(4), Err(NeverSent(4)));
        outbox.written();
        outbox.ack(4).unwrap();
        assert_eq!(outbox.bytes(), 0);
    }

    #[test]
    fn an_ack_of_a_frame_never_sent_releases_nothing() {
        let mut outbox = with_results(50);
        outbox.connect();
        Client::new().drain(&mut outbox, usize::MAX);
        assert_eq!(outbox.ack(1000), Err(NeverSent(1000)));
        assert_eq!(outbox.bytes(), 50 * Outbox::cost(&[0; 3]));
        // The next client gets all 50.
        outbox.disconnect();
        outbox.connect();
        let mut client = Client::new();
        let mut got = client.drain(&mut outbox, usize::MAX).len();
        while got < 50 {
            outbox.ack(got as u32).unwrap();
            got += client.drain(&mut outbox, usize::MAX).len();
        }
        assert_eq!(got, 50);
    }

    #[test]
    fn acks_are_cumulative_and_never_go_back() {
        let mut outbox = with_results(10);
        outbox.connect();
        Client::new().drain(&mut outbox, usize::MAX);
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
        Client::new().drain(&mut outbox, usize::MAX);
        outbox.ack(2).unwrap();
        outbox.disconnect();
        outbox.connect();
        let frames = Client::new().drain(&mut outbox, usize::MAX);
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].seq, 1, "numbered afresh");
        // A frame cut off by a disconnection is written whole to the next.
        outbox.disconnect();
        outbox.connect();
        outbox.next();
        outbox.queued_as(1);
        outbox.disconnect();
        outbox.connect();
        assert_eq!(Client::new().drain(&mut outbox, usize::MAX).len(), 3);
    }

    #[test]
    fn the_end_follows_the_last_acknowledgement() {
        let mut outbox = with_results(2);
        outbox.input_done();
        outbox.connect();
        let mut client = Client::new();
        assert_eq!(client.drain(&mut outbox, usize::MAX).len(), 2);
        assert!(!outbox.finished());
        outbox.ack(2).unwrap();
        // Finished: the end goes out as the keeper leaves.
        assert!(outbox.finished());
        assert!(client.drain(&mut outbox, usize::MAX).is_empty());
        outbox.close();
        let end = client.drain(&mut outbox, usize::MAX);
        assert_eq!(end.len(), 1);
        assert_eq!((end[0].kind, end[0].seq), (Kind::End, 3));
    }

    #[test]
    fn with_no_results_the_end_must_be_acknowledged_and_a_probe_is_no_collector() {
        let mut outbox = Outbox::new();
        outbox.input_done();
        outbox.connect();
        let end = Client::new().drain(&mut outbox, usize::MAX);
        assert_eq!(end[0].kind, Kind::End);
        // A probe that connected and left acknowledged nothing.
        outbox.disconnect();
        assert!(!outbox.finished());
        outbox.connect();
        let end = Client::new().drain(&mut outbox, usize::MAX);
        assert_eq!(end.len(), 1);
        outbox.ack(end[0].seq).unwrap();
        assert!(outbox.finished());
    }

    #[test]
    fn error_results_are_frames_like_any_other() {
        let mut outbox = Outbox::new();
        outbox.push(Kind::Data, vec![1]);
        outbox.push(Kind::Error, vec![0; 8]);
        outbox.connect();
        let frames = Client::new().drain(&mut outbox, 3);
        let kinds: Vec<_> = frames.iter().map(|h| h.kind).collect();
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
