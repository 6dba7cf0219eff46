//! A batch frame's payload: several tasks for a reused worker in one
//! message, so that its creator pays one frame per chunk of tasks, not one
//! per task.
//!
//! ```text
//! offset size      field
//!  0     4         count   tasks in the batch, at least 1
//!  then, count times:
//!        8         task    the task's tag (the header's task field is the first's)
//!        4         length  its argument bytes
//!        length    args
//! ```
//! All integers little-endian; the entries fill the payload exactly.

use core::ops::Range;

use super::ProtoError;

/// Bytes before each task's arguments: its tag and length.
pub const ENTRY_HEADER: usize = 12;

/// Where a batch payload's first entry starts (after its count).
pub(crate) const FIRST_ENTRY: usize = 4;

/// Payload bytes of a batch of tasks with these argument lengths.
pub fn batch_len(arg_lens: impl Iterator<Item = usize>) -> usize {
    FIRST_ENTRY + arg_lens.map(|len| ENTRY_HEADER + len).sum::<usize>()
}

/// Appends the payload of a batch of `count` tasks (tag, arguments) to `out`.
#[cfg(feature = "alloc")]
pub fn encode_batch<'a>(
    out: &mut alloc::vec::Vec<u8>,
    count: u32,
    tasks: impl Iterator<Item = (u64, &'a [u8])>,
) {
    out.extend_from_slice(&count.to_le_bytes());
    let mut written = 0u32;
    for (task, args) in tasks {
        // The frame's own length (a u32, checked against the maximum message
        // before a batch is built) bounds every entry.
        debug_assert!(u32::try_from(args.len()).is_ok(), "batch entry over 4 GiB");
        // Fixed-size pieces: each a store, no call to `memcpy`.
        out.extend_from_slice(&task.to_le_bytes());
        out.extend_from_slice(&(args.len() as u32).to_le_bytes());
        match args.first_chunk::<8>() {
            Some(word) if args.len() == 8 => out.extend_from_slice(word),
            _ => extend(out, args),
        }
        written += 1;
    }
    // A count that does not match is a malformed batch to the decoder.
    debug_assert_eq!(written, count, "batch count");
}

/// Appends `bytes` to `out`: 8 to 16 of them (most tasks' arguments) as
/// two fixed-size pieces of 8, the second overlapping the first, with no
/// call to `memcpy` for a few bytes.
#[cfg(feature = "alloc")]
fn extend(out: &mut alloc::vec::Vec<u8>, bytes: &[u8]) {
    let (at, n) = (out.len(), bytes.len());
    let (Some(head), Some(tail)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) else {
        return out.extend_from_slice(bytes); // fewer than 8
    };
    // Beyond 16 bytes, or without room for the 16 written before the cut
    // (the caller reserved exactly what the batch needs: growing here
    // would be an allocation that cannot fail gracefully).
    if n > 16 || out.capacity() - at < 16 {
        return out.extend_from_slice(bytes);
    }
    out.extend_from_slice(head);
    out.extend_from_slice(tail);
    // The tail's 8 bytes end at byte n: moved down over the head's last
    // 16 - n (the same bytes), and the rest cut off.
    out.copy_within(at + 8..at + 16, at + n - 8);
    out.truncate(at + n);
}

/// The tasks of a batch payload, in order; a malformed payload (no task, a
/// count that does not match its entries, an entry cut short, bytes left
/// over) is [`ProtoError::BadBatch`], found before any task is yielded.
///
/// ```
/// use pprocess::wire::{batch_len, decode_batch, encode_batch, BatchTasks, Decoder, Encoder};
/// use pprocess::wire::{Header, Kind, Next, ProtoError, ENTRY_HEADER, HEADER_LEN};
///
/// let tasks: [(u64, &[u8]); 3] = [(5, b"ab"), (9, b""), (6, b"xyz")];
/// let len = batch_len(tasks.iter().map(|(_, args)| args.len()));
/// assert_eq!(len, 4 + 3 * ENTRY_HEADER + 5);
///
/// // A payload on its own...
/// let mut payload = Vec::new();
/// encode_batch(&mut payload, 3, tasks.iter().copied());
/// assert_eq!(payload.len(), len);
/// let decoded: BatchTasks = decode_batch(&payload)?;
/// assert_eq!(decoded.collect::<Vec<_>>(), tasks);
/// assert_eq!(decode_batch(&payload[..len - 1]).err(), Some(ProtoError::BadBatch));
///
/// // ...or a whole frame, built in place in an encoder's buffer.
/// let header = Header::new(Kind::Batch, 0, len as u32, 1).for_task(5);
/// let mut encoder = Encoder::default();
/// encoder.queue_batch(&header, 3, tasks.iter().copied());
/// assert_eq!(encoder.unwritten().len(), HEADER_LEN + len);
/// let mut decoder = Decoder::new();
/// let frame = encoder.unwritten();
/// decoder.spare()[..frame.len()].copy_from_slice(frame);
/// decoder.filled(frame.len());
/// assert_eq!(decoder.next_header()?, Next::Header(header));
/// let received = decoder.whole_payload().expect("buffered whole");
/// assert_eq!(decode_batch(received)?.count(), 3);
/// # Ok::<(), ProtoError>(())
/// ```
pub fn decode_batch(payload: &[u8]) -> Result<BatchTasks<'_>, ProtoError> {
    let (count, entries) = payload
        .split_first_chunk::<FIRST_ENTRY>()
        .ok_or(ProtoError::BadBatch)?;
    let count = u32::from_le_bytes(*count);
    let tasks = BatchTasks { rest: entries };
    let mut seen = 0u32;
    let mut check = tasks.clone();
    while !check.rest.is_empty() {
        check.next_entry().ok_or(ProtoError::BadBatch)?;
        seen = seen.checked_add(1).ok_or(ProtoError::BadBatch)?;
    }
    if count == 0 || seen != count {
        return Err(ProtoError::BadBatch);
    }
    Ok(tasks)
}

/// The tasks of a validated batch payload ([`decode_batch`]): (tag, arguments).
#[derive(Clone, Debug)]
pub struct BatchTasks<'a> {
    rest: &'a [u8],
}

impl<'a> BatchTasks<'a> {
    fn next_entry(&mut self) -> Option<(u64, &'a [u8])> {
        let (task, args) = entry_at(self.rest, 0)?;
        let (args, rest) = self.rest.get(args.start..)?.split_at(args.len());
        self.rest = rest;
        Some((task, args))
    }
}

/// The entry of a batch payload that starts at byte `at` (the first at
/// [`FIRST_ENTRY`]): its tag and where its arguments lie; the next entry
/// starts where they end. `None` for an entry cut short (or none at all):
/// the reader of a payload kept whole ([`decode_batch`] checked it first)
/// walks its entries with this, borrowing nothing.
#[inline]
pub(crate) fn entry_at(payload: &[u8], at: usize) -> Option<(u64, Range<usize>)> {
    let head = payload.get(at..)?.first_chunk::<ENTRY_HEADER>()?;
    let (task, len) = head.split_first_chunk::<8>()?;
    let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
    let start = at + ENTRY_HEADER;
    let end = start.checked_add(len).filter(|&end| end <= payload.len())?;
    Some((u64::from_le_bytes(*task), start..end))
}

impl<'a> Iterator for BatchTasks<'a> {
    type Item = (u64, &'a [u8]);

    fn next(&mut self) -> Option<(u64, &'a [u8])> {
        self.next_entry()
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn a_batch_round_trips_its_tasks_in_order() {
        let tasks: [(u64, &[u8]); 3] = [(5, b"ab"), (9, b""), (6, b"xyz")];
        let mut out = Vec::new();
        encode_batch(&mut out, 3, tasks.iter().copied());
        assert_eq!(out.len(), batch_len(tasks.iter().map(|t| t.1.len())));
        let back: Vec<_> = decode_batch(&out).unwrap().collect();
        assert_eq!(back, tasks);
    }

    /// `Conn::send_batch` reserves exactly the frame's bytes (its
    /// `Error::Busy` when there is no memory relies on it): encoding must
    /// stay inside that room, whatever the last task's argument length.
    #[test]
    fn a_batch_is_written_in_the_room_reserved_for_it() {
        for n in 0..=40u8 {
            let args: Vec<u8> = (1..=n).collect();
            let tasks = [(7u64, &args[..])];
            let len = batch_len(tasks.iter().map(|t| t.1.len()));
            let mut out: Vec<u8> = Vec::with_capacity(len);
            let room = out.capacity();
            encode_batch(&mut out, 1, tasks.iter().copied());
            assert_eq!(out.len(), len);
            assert_eq!(
                out.capacity(),
                room,
                "{n} argument bytes: the buffer grew (an infallible allocation)"
            );
        }
    }

    #[test]
    fn arguments_of_every_short_length_are_written_whole() {
        // The lengths copied in two overlapping pieces, and around them.
        let args: Vec<Vec<u8>> = (0..40).map(|n| (1..=n as u8).collect()).collect();
        let tasks: Vec<(u64, &[u8])> = args.iter().map(|a| (a.len() as u64 + 1, &a[..])).collect();
        let mut out = Vec::new();
        encode_batch(&mut out, tasks.len() as u32, tasks.iter().copied());
        assert_eq!(out.len(), batch_len(tasks.iter().map(|t| t.1.len())));
        let back: Vec<_> = decode_batch(&out).unwrap().collect();
        assert_eq!(back, tasks);
    }

    #[test]
    fn entries_walked_by_offset_are_the_batch_tasks() {
        let tasks: [(u64, &[u8]); 3] = [(5, b"ab"), (9, b""), (6, b"xyz")];
        let mut out = Vec::new();
        encode_batch(&mut out, 3, tasks.iter().copied());
        let mut at = FIRST_ENTRY;
        let mut walked = Vec::new();
        while let Some((task, args)) = entry_at(&out, at) {
            walked.push((task, &out[args.clone()]));
            at = args.end;
        }
        assert_eq!(walked, tasks);
        assert_eq!(at, out.len());
        // Cut short, or an offset past the end: no entry, no panic.
        assert_eq!(
            entry_at(&out[..out.len() - 1], FIRST_ENTRY + 2 * ENTRY_HEADER + 2),
            None
        );
        assert_eq!(entry_at(&out, out.len() + 1), None);
        assert_eq!(entry_at(&out, usize::MAX), None);
    }

    #[test]
    fn malformed_batches_are_rejected() {
        let mut out = Vec::new();
        encode_batch(&mut out, 2, [(1, &b"ab"[..]), (2, &b"c"[..])].into_iter());
        assert!(decode_batch(&out).is_ok());
        assert_eq!(decode_batch(&[]).err(), Some(ProtoError::BadBatch));
        assert_eq!(
            decode_batch(&0u32.to_le_bytes()).err(),
            Some(ProtoError::BadBatch)
        );
        let mut wrong_count = out.clone();
        wrong_count[0] = 3;
        assert_eq!(decode_batch(&wrong_count).err(), Some(ProtoError::BadBatch));
        assert_eq!(
            decode_batch(&out[..out.len() - 1]).err(),
            Some(ProtoError::BadBatch)
        );
        let mut extra = out.clone();
        extra.push(0);
        assert_eq!(decode_batch(&extra).err(), Some(ProtoError::BadBatch));
        let mut too_long = out;
        too_long[4 + 8] = 200;
        assert_eq!(decode_batch(&too_long).err(), Some(ProtoError::BadBatch));
    }
}
