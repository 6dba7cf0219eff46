//! The wire format (version 2): a fixed 24-byte header, then `length`
//! payload bytes.
//!
//! ```text
//! offset size field    meaning
//!  0     2    magic    0x5050 ("PP"), rejects foreign bytes
//!  2     1    version  2
//!  3     1    kind     1 data, 2 error, 3 ack, 4 args, 5 stop, 6 end of stream,
//!                      7 batch (several tasks' args: see [`decode_batch`])
//!  4     2    flags    bit 0: acknowledgement requested; bit 1: last frame of a task
//!  6     2    reserved 0
//!  8     4    length   payload bytes, at most the receiver's maximum message size
//! 12     4    seq      the sender's frame number (an ack carries the number it acknowledges)
//! 16     8    task     the task the frame belongs to: 0 for a channel that is
//!                      its own task, else the tag of a reused worker's task
//!                      (the args frame that started it carries the same tag;
//!                      a batch frame, its first task's)
//! ```
//! All fields are little-endian. An error frame's payload is a little-endian
//! `i32` code followed by a UTF-8 message of at most
//! [`crate::REMOTE_MESSAGE_MAX`] bytes. Ack, stop and end frames
//! have no payload. An end frame closes a persistent stream: a stream that
//! stops without one was cut off.
//!
//! A header is validated completely before anything is allocated for its
//! payload; any violation is a [`ProtoError`].
//!
//! No I/O here: [`Conn`] is one end of a stream as a state machine (frame
//! numbers, acknowledgements, end state, the peer's last error, output
//! queued, messages held for a later take, what was taken by task, and the
//! hook of a stream's end and acknowledgement policy), over [`Decoder`], which takes bytes and yields frames, keeping
//! the partial state of a header or payload; [`Encoder`] queues frames
//! and tracks how much of them was written. The layers above drive them
//! over their sockets, blocking or not.

mod batch;
mod conn;
#[cfg(feature = "alloc")]
mod copy;
mod decoder;
#[cfg(feature = "alloc")]
mod encoder;

#[cfg(feature = "alloc")]
pub use batch::encode_batch;
pub use batch::{batch_len, decode_batch, BatchTasks, ENTRY_HEADER};
#[cfg(feature = "alloc")]
pub(crate) use batch::{entry_at, FIRST_ENTRY};
pub(crate) use conn::Mark;
#[cfg(feature = "alloc")]
pub(crate) use conn::Route;
#[cfg(feature = "alloc")]
pub(crate) use conn::StreamPolicy;
pub use conn::{error_payload, Conn, Event, OutBuf};
#[cfg(feature = "alloc")]
pub(crate) use copy::copy_bytes;
#[cfg(feature = "alloc")]
pub(crate) use decoder::take_answers_in;
pub use decoder::{Decoder, Next, READ_AHEAD};
#[cfg(feature = "alloc")]
pub use encoder::Encoder;

use bytemuck::{Pod, Zeroable};

pub use crate::error::ProtoError;
use crate::error::REMOTE_MESSAGE_MAX;

/// The magic number: "PP".
pub const MAGIC: u16 = 0x5050;
/// The wire format version.
pub const VERSION: u8 = 2;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 24;
/// The default maximum payload of one message: 64 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 64 << 20;
/// The largest maximum a channel accepts (the length field is a `u32`).
pub const MAX_MESSAGE_LIMIT: usize = u32::MAX as usize;
/// Largest payload of an error frame: the code and the message.
pub const MAX_ERROR_PAYLOAD: usize = 4 + REMOTE_MESSAGE_MAX;

/// Flag: the sender waits for an [`Kind::Ack`] of this frame.
pub const FLAG_ACK_REQUESTED: u16 = 1 << 0;
/// Flag: the last frame of a task (reused workers): its one result, or a
/// stop frame that ends a task.
pub const FLAG_END: u16 = 1 << 1;
const KNOWN_FLAGS: u16 = FLAG_ACK_REQUESTED | FLAG_END;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A message.
    Data = 1,
    /// A remote error: code and message.
    Error = 2,
    /// An acknowledgement of frame `seq`.
    Ack = 3,
    /// Arguments of a task for a reused worker.
    Args = 4,
    /// No more tasks: the worker may exit. With [`FLAG_END`]: the task
    /// named in the header is finished.
    Stop = 5,
    /// The end of a persistent stream: everything was delivered (a stream
    /// cut off without it lost what was still to come).
    End = 6,
    /// Arguments of several tasks for a reused worker, in the order they
    /// run (payload: see [`decode_batch`]).
    Batch = 7,
}

impl Kind {
    /// The kinds whose payload is a message (data, or tasks' arguments),
    /// bounded by the maximum message size and taken by a receive.
    pub(crate) fn is_message(self) -> bool {
        matches!(self, Kind::Data | Kind::Args | Kind::Batch)
    }

    /// A reused worker's tasks (args and batch frames), which its loop takes.
    #[cfg(feature = "alloc")]
    pub(crate) fn is_task(self) -> bool {
        matches!(self, Kind::Args | Kind::Batch)
    }

    fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            1 => Kind::Data,
            2 => Kind::Error,
            3 => Kind::Ack,
            4 => Kind::Args,
            5 => Kind::Stop,
            6 => Kind::End,
            7 => Kind::Batch,
            _ => return None,
        })
    }
}

/// The header as laid out on the wire (fields stored little-endian).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct RawHeader {
    magic: u16,
    version: u8,
    kind: u8,
    flags: u16,
    reserved: u16,
    length: u32,
    seq: u32,
    task: u64,
}

const _: () = assert!(core::mem::size_of::<RawHeader>() == HEADER_LEN);

/// The payload length a header not decoded yet gives (not checked).
#[cfg(feature = "alloc")]
pub(crate) fn raw_length(header: &[u8; HEADER_LEN]) -> u32 {
    let at = core::mem::offset_of!(RawHeader, length);
    u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
}

/// A decoded, validated frame header.
///
/// # The format's constants and checks in one example
///
/// ```
/// use pprocess::wire::{decode_error, Header, Kind, ProtoError};
/// use pprocess::wire::{DEFAULT_MAX_MESSAGE, FLAG_ACK_REQUESTED, FLAG_END, HEADER_LEN};
/// use pprocess::wire::{MAGIC, MAX_ERROR_PAYLOAD, MAX_MESSAGE_LIMIT, VERSION};
///
/// let header = Header::new(Kind::Data, FLAG_ACK_REQUESTED | FLAG_END, 5, 1).for_task(9);
/// let bytes: [u8; HEADER_LEN] = header.encode();
/// assert_eq!(bytes[..2], MAGIC.to_le_bytes());
/// assert_eq!(bytes[2], VERSION);
/// assert_eq!(Header::decode(&bytes, DEFAULT_MAX_MESSAGE), Ok(header));
/// assert_eq!(header.task, 9);
/// // A receiver with a smaller maximum rejects it before allocating anything.
/// assert_eq!(Header::decode(&bytes, 4), Err(ProtoError::TooLong { length: 5, max: 4 }));
/// let mut foreign = bytes;
/// foreign[0] = b'X';
/// assert_eq!(Header::decode(&foreign, MAX_MESSAGE_LIMIT), Err(ProtoError::BadMagic));
///
/// // An error frame's payload: a code, then UTF-8 text.
/// let mut payload = (-7i32).to_le_bytes().to_vec();
/// payload.extend_from_slice(b"no");
/// assert!(payload.len() <= MAX_ERROR_PAYLOAD);
/// assert_eq!(decode_error(&payload), Ok((-7, "no")));
/// assert_eq!(decode_error(&[1]), Err(ProtoError::BadErrorPayload));
/// # Ok::<(), ProtoError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// What the frame carries.
    pub kind: Kind,
    /// `FLAG_*` bits.
    pub flags: u16,
    /// Payload length in bytes.
    pub length: u32,
    /// The sender's frame number.
    pub seq: u32,
    /// The task the frame belongs to (0: the channel's own task).
    pub task: u64,
}

impl Header {
    /// A header of `kind` for a payload of `length` bytes, of no task in
    /// particular (task 0; see [`Header::for_task`]).
    pub fn new(kind: Kind, flags: u16, length: u32, seq: u32) -> Header {
        Header {
            kind,
            flags,
            length,
            seq,
            task: 0,
        }
    }

    /// This header, naming `task`.
    pub fn for_task(self, task: u64) -> Header {
        Header { task, ..self }
    }

    /// The header's wire bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        bytemuck::cast(self.to_words().map(u64::to_le))
    }

    /// The header's wire bytes as three words (each to be stored
    /// little-endian, [`RawHeader`]'s layout): built in registers, so that
    /// a writer can store them where the frame goes with no copy through
    /// memory (a copy that reads a header built field by field waits for
    /// those narrow stores to reach the cache).
    pub(crate) fn to_words(self) -> [u64; 3] {
        const _: () = assert!(core::mem::offset_of!(RawHeader, length) == 8);
        const _: () = assert!(core::mem::offset_of!(RawHeader, task) == 16);
        let first = u64::from(MAGIC)
            | u64::from(VERSION) << 16
            | u64::from(self.kind as u8) << 24
            | u64::from(self.flags) << 32;
        let second = u64::from(self.length) | u64::from(self.seq) << 32;
        [first, second, self.task]
    }

    /// The header of a task's one result (a data frame with [`FLAG_END`]
    /// and at most `max_message` bytes), as [`Header::decode`] gives it;
    /// None for any other frame and for bytes that are no header. Read as
    /// three words: such a header's first word is a constant (magic,
    /// version, kind, flags, reserved), so one comparison checks all five,
    /// where a reused worker's creator meets one such header per task.
    pub(crate) fn decode_answer(bytes: &[u8; HEADER_LEN], max_message: usize) -> Option<Header> {
        const FIRST: u64 = u64::from_le_bytes([
            MAGIC.to_le_bytes()[0],
            MAGIC.to_le_bytes()[1],
            VERSION,
            Kind::Data as u8,
            FLAG_END.to_le_bytes()[0],
            FLAG_END.to_le_bytes()[1],
            0,
            0,
        ]);
        let (first, rest) = bytes.split_first_chunk::<8>()?;
        let (second, third) = rest.split_first_chunk::<8>()?;
        let third = third.first_chunk::<8>()?;
        if u64::from_le_bytes(*first) != FIRST {
            return None;
        }
        let second = u64::from_le_bytes(*second);
        let length = second as u32;
        if length as usize > max_message {
            return None;
        }
        Some(Header {
            kind: Kind::Data,
            flags: FLAG_END,
            length,
            seq: (second >> 32) as u32,
            task: u64::from_le_bytes(*third),
        })
    }

    /// Decodes and validates a header's wire bytes; `max_message` bounds data,
    /// args and batch payloads, error frames have their own small bound
    /// ([`MAX_ERROR_PAYLOAD`]) and other kinds carry none. Errors:
    /// [`ProtoError::BadMagic`], [`ProtoError::BadVersion`],
    /// [`ProtoError::BadKind`], [`ProtoError::BadFlags`] (an unknown flag or
    /// a reserved byte set) and [`ProtoError::TooLong`].
    pub fn decode(bytes: &[u8; HEADER_LEN], max_message: usize) -> Result<Header, ProtoError> {
        let raw: RawHeader = bytemuck::cast(*bytes);
        if u16::from_le(raw.magic) != MAGIC {
            return Err(ProtoError::BadMagic);
        }
        if raw.version != VERSION {
            return Err(ProtoError::BadVersion(raw.version));
        }
        let kind = Kind::from_u8(raw.kind).ok_or(ProtoError::BadKind(raw.kind))?;
        let flags = u16::from_le(raw.flags);
        if flags & !KNOWN_FLAGS != 0 || raw.reserved != 0 {
            return Err(ProtoError::BadFlags);
        }
        let length = u32::from_le(raw.length);
        let max = match kind {
            Kind::Data | Kind::Args | Kind::Batch => max_message,
            Kind::Error => MAX_ERROR_PAYLOAD,
            Kind::Ack | Kind::Stop | Kind::End => 0,
        };
        if length as usize > max {
            return Err(ProtoError::TooLong { length, max });
        }
        Ok(Header {
            kind,
            flags,
            length,
            seq: u32::from_le(raw.seq),
            task: u64::from_le(raw.task),
        })
    }
}

/// Splits an error frame's payload into its code and message;
/// [`ProtoError::BadErrorPayload`] when it is shorter than the 4-byte code
/// or the message is not UTF-8.
pub fn decode_error(payload: &[u8]) -> Result<(i32, &str), ProtoError> {
    let (code, text) = payload
        .split_first_chunk::<4>()
        .ok_or(ProtoError::BadErrorPayload)?;
    let message = core::str::from_utf8(text).map_err(|_| ProtoError::BadErrorPayload)?;
    Ok((i32::from_le_bytes(*code), message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_header_is_read_as_decode_reads_it_and_nothing_else_is() {
        let max = 1000;
        let mut checked = 0;
        for kind in 0..=8u8 {
            for flags in [
                0,
                FLAG_END,
                FLAG_ACK_REQUESTED,
                FLAG_END | FLAG_ACK_REQUESTED,
                4,
            ] {
                for length in [0, 8, max as u32, max as u32 + 1] {
                    let mut bytes = Header::new(Kind::Data, flags, length, 77)
                        .for_task(0x0102_0304_0506_0708)
                        .encode();
                    bytes[3] = kind;
                    // And a byte wrong in each of the fixed fields.
                    for broken in [None, Some(0), Some(1), Some(2), Some(6), Some(7)] {
                        let mut bytes = bytes;
                        if let Some(at) = broken {
                            bytes[at] ^= 0x40;
                        }
                        let decoded = Header::decode(&bytes, max).ok();
                        let answer =
                            decoded.filter(|h| h.kind == Kind::Data && h.flags == FLAG_END);
                        assert_eq!(Header::decode_answer(&bytes, max), answer, "{bytes:?}");
                        checked += usize::from(answer.is_some());
                    }
                }
            }
        }
        assert_eq!(
            checked, 3,
            "data frames with the end mark, up to the maximum length"
        );
    }

    #[test]
    fn header_round_trips_and_is_little_endian() {
        let h = Header::new(Kind::Data, FLAG_END, 0x0102_0304, 7).for_task(0x0a0b_0c0d_0e0f_1011);
        let bytes = h.encode();
        assert_eq!(bytes.len(), 24);
        assert_eq!(&bytes[..4], &[0x50, 0x50, 2, 1]);
        assert_eq!(&bytes[8..12], &[4, 3, 2, 1]);
        assert_eq!(
            &bytes[16..],
            &[0x11, 0x10, 0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a]
        );
        assert_eq!(Header::decode(&bytes, usize::MAX), Ok(h));
    }

    #[test]
    fn bad_headers_are_rejected() {
        let good = Header::new(Kind::Data, 0, 10, 0).encode();
        let mut b = good;
        b[0] = 0;
        assert_eq!(Header::decode(&b, 100), Err(ProtoError::BadMagic));
        let mut b = good;
        b[2] = 9;
        assert_eq!(Header::decode(&b, 100), Err(ProtoError::BadVersion(9)));
        let mut b = good;
        b[3] = 0;
        assert_eq!(Header::decode(&b, 100), Err(ProtoError::BadKind(0)));
        let mut b = good;
        b[5] = 0x80;
        assert_eq!(Header::decode(&b, 100), Err(ProtoError::BadFlags));
        let mut b = good;
        b[6] = 1;
        assert_eq!(Header::decode(&b, 100), Err(ProtoError::BadFlags));
        assert_eq!(
            Header::decode(&good, 9),
            Err(ProtoError::TooLong { length: 10, max: 9 })
        );
        let ack = Header::new(Kind::Ack, 0, 1, 0).encode();
        assert!(matches!(
            Header::decode(&ack, 100),
            Err(ProtoError::TooLong { .. })
        ));
        let end = Header::new(Kind::End, 0, 0, 0).encode();
        assert_eq!(Header::decode(&end, 100).map(|h| h.kind), Ok(Kind::End));
        let v1 = {
            let mut b = good;
            b[2] = 1;
            b
        };
        assert_eq!(Header::decode(&v1, 100), Err(ProtoError::BadVersion(1)));
    }

    #[test]
    fn error_payload_decodes() {
        let mut p = [0u8; 7];
        p[..4].copy_from_slice(&(-5i32).to_le_bytes());
        p[4..].copy_from_slice(b"bad");
        assert_eq!(decode_error(&p), Ok((-5, "bad")));
        assert_eq!(decode_error(&p[..3]), Err(ProtoError::BadErrorPayload));
        assert_eq!(
            decode_error(&[0, 0, 0, 0, 0xff]),
            Err(ProtoError::BadErrorPayload)
        );
    }
}
