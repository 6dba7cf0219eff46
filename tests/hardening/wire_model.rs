//! A reference decoder of the wire format, written from the README's table
//! (not from `src/wire.rs`), and a driver that checks a [`Channel`]'s
//! receive path against it.
//!
//! Shared by the property test (`tests/frames.rs`) and the fuzz target
//! `channel_receive` (`fuzz/fuzz_targets/`), which include this file by path.
//! It uses only the public API.

use pprocess::wire::{Decoder, Next, ProtoError};
use pprocess::{Channel, Error};

/// "PP", little-endian.
pub const MAGIC: [u8; 2] = [0x50, 0x50];
/// The wire version.
pub const VERSION: u8 = 2;
/// Header bytes.
pub const HEADER: usize = 24;
/// Largest error-frame payload: an `i32` code and 256 bytes of text.
pub const ERROR_MAX: usize = 4 + 256;

/// Frame kinds.
pub const DATA: u8 = 1;
/// An error frame.
pub const ERROR: u8 = 2;
/// An acknowledgement.
pub const ACK: u8 = 3;
/// A task's arguments.
pub const ARGS: u8 = 4;
/// A stop frame.
pub const STOP: u8 = 5;
/// The end of a persistent stream.
pub const END: u8 = 6;
/// Several tasks' arguments (a plain receive takes the payload whole).
pub const BATCH: u8 = 7;
/// Flag: acknowledgement requested.
pub const FLAG_ACK: u16 = 1;
/// Flag: last result of a task.
pub const FLAG_END: u16 = 2;

/// What a receiver must see, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A data or args message.
    Message(Vec<u8>),
    /// A data or args message of this length whose payload is cut short by
    /// the end of the stream: receives that read it fail (`Truncated`, the
    /// next event), those that only look at its header (a buffer too small,
    /// a typed receive of another size) report it as usual.
    Partial(usize),
    /// An error frame: receives fail with `Error::Remote { code }`.
    Remote {
        /// The code.
        code: i32,
        /// The message, cut at its first NUL.
        message: String,
    },
    /// The channel's end, reported by every later receive.
    End(Error),
}

/// The decoded stream: its events (the last one is always an `End`) and the
/// sequence numbers the receiver must acknowledge, in order.
#[derive(Clone, Debug, Default)]
pub struct Expected {
    /// Events in order.
    pub events: Vec<Event>,
    /// Sequence numbers of messages that asked for an acknowledgement.
    pub acks: Vec<u32>,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Encodes one frame of task 0.
pub fn frame(kind: u8, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    frame_for(kind, flags, seq, 0, payload)
}

/// Encodes one frame naming `task`.
pub fn frame_for(kind: u8, flags: u16, seq: u32, task: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(kind);
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&task.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// An error frame's payload: the code, then the text.
pub fn error_payload(code: i32, text: &[u8]) -> Vec<u8> {
    let mut p = code.to_le_bytes().to_vec();
    p.extend_from_slice(text);
    p
}

/// True for an acknowledgement of frame `seq` by a peer whose last frame
/// sent was `last_sent`: frame numbers compare in serial-number arithmetic,
/// and an ack of a frame not sent yet is a protocol error.
pub fn ack_is_valid(seq: u32, last_sent: u32) -> bool {
    (last_sent.wrapping_sub(seq) as i32) >= 0
}

/// What a receiver with maximum message size `max_message` must see when
/// `stream` arrives and the sender then hangs up (a channel with no process
/// behind it: the end of stream is `Error::Closed`; the receiver sends no
/// frame of its own, so an ack of any frame after number 0 is a lie).
pub fn expected(stream: &[u8], max_message: usize) -> Expected {
    let mut out = Expected::default();
    let mut at = 0;
    let end = loop {
        let rest = &stream[at..];
        if rest.is_empty() {
            break Error::Closed;
        }
        if rest.len() < HEADER {
            break Error::Protocol(ProtoError::Truncated);
        }
        let h = &rest[..HEADER];
        if h[..2] != MAGIC {
            break Error::Protocol(ProtoError::BadMagic);
        }
        if h[2] != VERSION {
            break Error::Protocol(ProtoError::BadVersion(h[2]));
        }
        let kind = h[3];
        if !(DATA..=BATCH).contains(&kind) {
            break Error::Protocol(ProtoError::BadKind(kind));
        }
        let flags = u16_at(h, 4);
        if flags & !(FLAG_ACK | FLAG_END) != 0 || u16_at(h, 6) != 0 {
            break Error::Protocol(ProtoError::BadFlags);
        }
        let length = u32_at(h, 8);
        let seq = u32_at(h, 12);
        let max = match kind {
            DATA | ARGS | BATCH => max_message,
            ERROR => ERROR_MAX,
            _ => 0,
        };
        if length as usize > max {
            break Error::Protocol(ProtoError::TooLong { length, max });
        }
        let Some(payload) = rest[HEADER..].get(..length as usize) else {
            if matches!(kind, DATA | ARGS | BATCH) {
                out.events.push(Event::Partial(length as usize));
            }
            break Error::Protocol(ProtoError::Truncated);
        };
        at += HEADER + length as usize;
        match kind {
            DATA | ARGS | BATCH => {
                out.events.push(Event::Message(payload.to_vec()));
                if flags & FLAG_ACK != 0 {
                    out.acks.push(seq);
                }
            }
            ERROR => {
                let Some(text) = payload.get(4..).and_then(|t| std::str::from_utf8(t).ok()) else {
                    break Error::Protocol(ProtoError::BadErrorPayload);
                };
                out.events.push(Event::Remote {
                    code: u32_at(payload, 0) as i32,
                    message: text.split('\0').next().unwrap_or("").to_string(),
                });
                // Error frames are acknowledged like messages when asked.
                if flags & FLAG_ACK != 0 {
                    out.acks.push(seq);
                }
            }
            ACK if !ack_is_valid(seq, 0) => break Error::Protocol(ProtoError::BadAck(seq)),
            ACK => {}
            // A task-end marker is skipped by receives; a plain stop, or an
            // end of stream, ends the channel. (The task field names the
            // task a frame belongs to; a plain channel takes any.)
            STOP if flags & FLAG_END != 0 => {}
            // An end frame ends the stream cleanly, acknowledged if asked.
            END => {
                if flags & FLAG_ACK != 0 {
                    out.acks.push(seq);
                }
                break Error::Closed;
            }
            _ => break Error::Closed,
        }
    };
    out.events.push(Event::End(end));
    out
}

/// Runs `stream` through the sans-I/O [`Decoder`] alone (no socket), fed in
/// pieces whose sizes `choose` picks, taking payloads through the decoder's
/// buffer or (when `choose(2)` says so) collected across reads; returns the
/// events a receiver sees, to compare with [`expected`]'s.
pub fn decode(stream: &[u8], max_message: usize, choose: Choose<'_>) -> Vec<Event> {
    let mut d = Decoder::new();
    d.set_max_message(max_message);
    let mut rest = stream;
    let mut events = Vec::new();
    // Copies the next piece of the stream into `spare`; 0 at its end.
    let feed = |spare: &mut [u8], rest: &mut &[u8], choose: Choose<'_>| -> usize {
        let most = spare.len().min(rest.len());
        if most == 0 {
            return 0;
        }
        let n = 1 + choose(most as u32) as usize;
        spare[..n].copy_from_slice(&rest[..n]);
        *rest = &rest[n..];
        n
    };
    let end = loop {
        let header = match d.next_header() {
            Err(e) => break Error::Protocol(e),
            Ok(Next::More) => {
                let n = feed(d.spare(), &mut rest, &mut *choose);
                if n == 0 {
                    break match d.buffered().is_empty() {
                        true => Error::Closed,
                        false => Error::Protocol(ProtoError::Truncated),
                    };
                }
                d.filled(n);
                continue;
            }
            Ok(Next::Header(header)) => header,
        };
        let len = header.length as usize;
        match header.kind as u8 {
            DATA | ARGS | BATCH => {
                let message = if choose(2) == 0 {
                    // Collected across reads by the decoder.
                    let whole = loop {
                        let spare = d.payload_spare().expect("memory for the payload");
                        if spare.is_empty() {
                            break true;
                        }
                        let n = feed(spare, &mut rest, &mut *choose);
                        if n == 0 {
                            break false;
                        }
                        d.payload_filled(n);
                    };
                    whole.then(|| match d.take_collected() {
                        Some(collected) => collected,
                        None => {
                            // Empty, or buffered whole before collecting began.
                            let payload = d.whole_payload().expect("buffered whole").to_vec();
                            d.skip_payload();
                            payload
                        }
                    })
                } else {
                    // Through the decoder's buffer.
                    let mut payload = vec![0; len];
                    let mut got = d.payload_into(&mut payload);
                    while got < len {
                        let n = feed(d.spare(), &mut rest, &mut *choose);
                        if n == 0 {
                            break;
                        }
                        d.filled(n);
                        got += d.payload_into(&mut payload[got..]);
                    }
                    (got == len).then(|| {
                        d.payload_done();
                        payload
                    })
                };
                match message {
                    Some(message) => events.push(Event::Message(message)),
                    None => {
                        events.push(Event::Partial(len));
                        break Error::Protocol(ProtoError::Truncated);
                    }
                }
            }
            ERROR => {
                let mut payload = vec![0; len];
                assert_eq!(
                    d.payload_into(&mut payload),
                    len,
                    "an error frame comes whole"
                );
                match pprocess::wire::decode_error(&payload) {
                    Ok((code, text)) => events.push(Event::Remote {
                        code,
                        message: text.split('\0').next().unwrap_or("").to_string(),
                    }),
                    Err(e) => break Error::Protocol(e),
                }
            }
            ACK if !ack_is_valid(header.seq, 0) => {
                break Error::Protocol(ProtoError::BadAck(header.seq))
            }
            ACK => {}
            STOP if header.flags & FLAG_END != 0 => {}
            _ => break Error::Closed,
        }
    };
    events.push(Event::End(end));
    events
}

/// How [`drive`] picks its next operation: `choose(n)` returns a number below `n`.
pub type Choose<'a> = &'a mut dyn FnMut(u32) -> u32;

/// Receives from `ch` with operations picked by `choose` (every receive
/// function, buffers too small, typed receives of the wrong size, timeouts)
/// and checks each result against `expected`, through the sticky end.
/// `timeouts` allows `Error::TimedOut` from timed receives (the stream may
/// still be arriving). Returns a description of the first mismatch.
pub fn drive(
    ch: &mut Channel,
    expected: &Expected,
    choose: Choose<'_>,
    timeouts: bool,
) -> Result<(), String> {
    let mut index = 0;
    let mut stalled = 0u32;
    while index < expected.events.len() {
        let event = &expected.events[index];
        // Every operation but these two always makes progress; make sure
        // a run of non-consuming choices ends.
        let op = if stalled >= 3 { 1 } else { choose(6) };
        let context = |what: &str, got: &dyn std::fmt::Debug| {
            format!("event {index} ({event:?}), op {op}: {what}, got {got:?}")
        };
        let consumed = match (op, event) {
            // receive into a buffer that is too small, exact, or larger.
            (0, Event::Message(p)) => {
                let size = match choose(3) {
                    0 if !p.is_empty() => choose(p.len() as u32) as usize,
                    1 => p.len(),
                    _ => p.len() + choose(64) as usize,
                };
                // Fresh, exactly sized buffers: the fuzz target bounds every allocation.
                let mut scratch = vec![0xa5; size];
                match ch.receive(&mut scratch) {
                    Ok(n) if n == p.len() && scratch[..n] == p[..] => true,
                    Err(Error::TooBig {
                        size: s,
                        capacity: c,
                    }) if size < p.len() && s == p.len() && c == size => false,
                    other => return Err(context(&format!("receive({size})"), &other)),
                }
            }
            (1, Event::Message(p)) => match ch.receive_vec() {
                Ok(v) if v == *p => true,
                other => return Err(context("receive_vec", &other)),
            },
            (2, Event::Message(p)) => match ch.receive_value::<u64>() {
                Ok(v) if p.len() == 8 && v.to_le_bytes()[..] == p[..] => true,
                Err(Error::WrongSize {
                    expected: 8,
                    actual,
                }) if p.len() != 8 && actual == p.len() => false,
                other => return Err(context("receive_value::<u64>", &other)),
            },
            (3, Event::Message(p)) => {
                let mut scratch = vec![0; p.len()];
                let timeout = if timeouts { choose(3) as i32 } else { -1 };
                match ch.receive_timeout(&mut scratch, timeout) {
                    Ok(n) if n == p.len() && scratch == *p => true,
                    Err(Error::TimedOut) if timeouts => false,
                    other => return Err(context("receive_timeout", &other)),
                }
            }
            (4, Event::Message(p)) => {
                let timeout = if timeouts { choose(3) as i32 } else { -1 };
                match ch.receive_vec_timeout(timeout) {
                    Ok(v) if v == *p => true,
                    Err(Error::TimedOut) if timeouts => false,
                    other => return Err(context("receive_vec_timeout", &other)),
                }
            }
            (5, _) => {
                // Readiness never lies: when it says yes, a receive cannot block.
                match ch.wait_readable(0) {
                    Ok(_) => false,
                    other => return Err(context("wait_readable", &other)),
                }
            }
            (0, Event::Partial(len)) => {
                let size = match choose(2) {
                    0 if *len > 0 => choose(*len as u32) as usize,
                    _ => *len,
                };
                let truncated = Err(Error::Protocol(ProtoError::Truncated));
                match ch.receive(&mut vec![0; size]) {
                    Err(Error::TooBig {
                        size: s,
                        capacity: c,
                    }) if size < *len && s == *len && c == size => false,
                    other if size == *len && other == truncated => true,
                    other => return Err(context(&format!("receive({size})"), &other)),
                }
            }
            (2, Event::Partial(len)) => match ch.receive_value::<u64>() {
                Err(Error::WrongSize {
                    expected: 8,
                    actual,
                }) if *len != 8 && actual == *len => false,
                Err(Error::Protocol(ProtoError::Truncated)) if *len == 8 => true,
                other => return Err(context("receive_value::<u64>", &other)),
            },
            (_, Event::Partial(_)) => match ch.receive_vec() {
                Err(Error::Protocol(ProtoError::Truncated)) => true,
                other => return Err(context("receive_vec", &other)),
            },
            (_, Event::Remote { code, message }) => {
                let got = ch.receive_vec();
                // Compared in place: the fuzz target bounds every allocation.
                let remote = ch
                    .remote_error()
                    .map(|r| (r.code(), r.message() == message));
                if got != Err(Error::Remote { code: *code }) || remote != Some((*code, true)) {
                    return Err(context("a remote error", &(got, remote)));
                }
                true
            }
            (_, Event::End(end)) => {
                // Whatever the operation, the end is reported, and again.
                let first = match op {
                    0 => ch.receive(&mut [0u8; 8]).map(drop),
                    2 => ch.receive_value::<u64>().map(drop),
                    _ => ch.receive_vec().map(drop),
                };
                let again = ch.receive_vec().map(drop);
                if first != Err(*end) || again != Err(*end) || !ch.is_ended() {
                    return Err(context("the end", &(first, again, ch.is_ended())));
                }
                true
            }
            _ => unreachable!("op {op} on {event:?}"),
        };
        if consumed {
            index += 1;
            stalled = 0;
        } else {
            stalled += 1;
        }
    }
    Ok(())
}

/// Reads every acknowledgement waiting on `fd` (the sender's socket, without
/// blocking) and checks they acknowledge `expected.acks`, in order.
pub fn check_acks(fd: i32, expected: &Expected) -> Result<(), String> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // SAFETY: `chunk` is a valid writable buffer of its length.
        let n = unsafe {
            libc::recv(
                fd,
                chunk.as_mut_ptr().cast(),
                chunk.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n <= 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n as usize]);
    }
    let acks: Vec<u32> = bytes.chunks(HEADER).map(|h| u32_at(h, 12)).collect();
    let well_formed = bytes.len() % HEADER == 0
        && bytes
            .chunks(HEADER)
            .all(|h| *h == frame(ACK, 0, u32_at(h, 12), &[])[..]);
    if !well_formed || acks != expected.acks {
        return Err(format!(
            "acknowledgements: expected seqs {:?}, got {} bytes: {:02x?}",
            expected.acks,
            bytes.len(),
            &bytes[..bytes.len().min(64)]
        ));
    }
    Ok(())
}
