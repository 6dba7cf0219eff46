//! Property tests of the receive path: random, valid and mutated frame
//! streams go through a real socketpair into a [`Channel`], and every result
//! is checked against the reference decoder in `hardening/wire_model.rs`:
//! valid frames round-trip exactly, malformed ones give the exact protocol
//! error (sticky), acknowledgements go back for exactly the frames that asked,
//! and nothing panics.
//!
//! Deterministic: set `PP_FRAMES_SEED` to explore other cases and
//! `PP_FRAMES_CASES` to run more; a failure prints the seed of its case.
#![cfg(feature = "std")]

mod fork_contract;

mod hardening;

use std::thread;

use hardening::wire_model::{
    self as model, Event, ACK, ARGS, BATCH, DATA, END, ERROR, FLAG_END, STOP,
};
use hardening::{seed, Rng};
use pprocess::{Channel, RemoteError};

/// A stream of valid frames, with the offsets where each header starts.
struct Stream {
    bytes: Vec<u8>,
    headers: Vec<usize>,
    /// The payloads of its data and args frames, in order.
    messages: Vec<Vec<u8>>,
}

/// Random UTF-8 text of at most `max` bytes, NULs and multi-byte characters included.
fn text(rng: &mut Rng, max: usize) -> String {
    const CHARS: &[char] = &['a', 'Z', ' ', '\0', 'é', '€', '😀', '\n'];
    // Often as long as allowed: the error frame's size limit is a boundary.
    let target = if rng.chance(1, 4) {
        max
    } else {
        rng.below(max as u64 + 1) as usize
    };
    let mut s = String::new();
    loop {
        let c = CHARS[rng.below(CHARS.len() as u64) as usize];
        if s.len() + c.len_utf8() > target {
            return s;
        }
        s.push(c);
    }
}

fn payload_len(rng: &mut Rng, max: usize) -> usize {
    let len = match rng.below(6) {
        0 => 0,
        1 => 8, // a u64, for receive_value
        2 => rng.range(1, 16) as usize,
        3 => rng.range(1000, 1100) as usize, // around the read-ahead buffer
        4 => rng.range(1, 5000) as usize,
        _ => rng.below(max.min(70_000) as u64 + 1) as usize,
    };
    len.min(max)
}

fn valid_stream(rng: &mut Rng, max: usize) -> Stream {
    let mut s = Stream {
        bytes: Vec::new(),
        headers: Vec::new(),
        messages: Vec::new(),
    };
    for _ in 0..rng.below(30) {
        s.headers.push(s.bytes.len());
        let seq = rng.next_u64() as u32;
        let flags = rng.below(4) as u16; // FLAG_ACK | FLAG_END in any combination
        let frame = match rng.below(10) {
            0..=5 => {
                let len = payload_len(rng, max);
                let payload = rng.bytes(len);
                s.messages.push(payload.clone());
                let kind = match rng.below(8) {
                    0 => ARGS,
                    1 => BATCH,
                    _ => DATA,
                };
                // Any task: a plain channel takes every task's messages.
                let task = if rng.chance(1, 2) { 0 } else { rng.next_u64() };
                model::frame_for(kind, flags, seq, task, &payload)
            }
            // The receiver sent nothing: the only true ack is of frame 0.
            6 => model::frame(ACK, flags, 0, &[]),
            7 | 8 => {
                let message = text(rng, 256);
                let code = rng.next_u64() as i32;
                model::frame(
                    ERROR,
                    flags,
                    seq,
                    &model::error_payload(code, message.as_bytes()),
                )
            }
            // A task-end marker: skipped by receives.
            _ => model::frame(STOP, flags | FLAG_END, seq, &[]),
        };
        s.bytes.extend_from_slice(&frame);
    }
    if rng.chance(1, 4) {
        // A persistent stream's end: what follows it is never read.
        s.headers.push(s.bytes.len());
        let flags = rng.below(4) as u16;
        let seq = rng.next_u64() as u32;
        s.bytes
            .extend_from_slice(&model::frame(END, flags, seq, &[]));
    }
    s
}

/// One to three random corruptions of a valid stream.
fn mutate(rng: &mut Rng, s: &mut Stream, max: usize) {
    for _ in 0..rng.range(1, 3) {
        let len = s.bytes.len();
        let at = rng.below(len as u64 + 1) as usize;
        let header = s
            .headers
            .get(rng.below(s.headers.len() as u64) as usize)
            .copied();
        match rng.below(9) {
            0 if len > 0 => s.bytes[at.min(len - 1)] ^= 1 << rng.below(8),
            1 if len > 0 => s.bytes[at.min(len - 1)] = rng.next_u64() as u8,
            2 => s.bytes.truncate(at),
            3 => {
                let junk_len = rng.range(1, 20) as usize;
                let junk = rng.bytes(junk_len);
                s.bytes.splice(at..at, junk);
            }
            4 => {
                let end = (at + rng.range(1, 40) as usize).min(len);
                s.bytes.drain(at..end);
            }
            // A header field at a frame boundary: length over the maximum,
            // or a bad magic, version, kind, flags or reserved value.
            5..=8 => {
                let Some(h) = header.filter(|&h| h + model::HEADER <= len) else {
                    continue;
                };
                let field = &mut s.bytes[h..h + model::HEADER];
                match rng.below(6) {
                    0 => {
                        let length = match rng.below(3) {
                            0 => u32::MAX,
                            1 => max.min(u32::MAX as usize - 1) as u32 + 1,
                            _ => rng.next_u64() as u32,
                        };
                        field[8..12].copy_from_slice(&length.to_le_bytes());
                    }
                    1 => field[rng.below(2) as usize] = rng.next_u64() as u8,
                    2 => field[2] = rng.next_u64() as u8,
                    3 => field[3] = [0, 7, 8, 255][rng.below(4) as usize],
                    4 => field[4 + rng.below(2) as usize] |= 1 << rng.range(2, 7),
                    _ => field[6 + rng.below(2) as usize] = rng.range(1, 255) as u8,
                }
            }
            _ => {}
        }
    }
}

/// Writes `bytes` into `fd` in random pieces, now and then pausing, then
/// shuts the write side down. Stops early if the receiver closed its end
/// (after a protocol error it reads no more).
fn write_slowly(fd: i32, bytes: Vec<u8>, mut rng: Rng) {
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let piece = (rng.range(1, 3000) as usize).min(rest.len());
        // SAFETY: writing a valid buffer to a socket this test owns.
        let n = unsafe { libc::send(fd, rest.as_ptr().cast(), piece, libc::MSG_NOSIGNAL) };
        let errno = std::io::Error::last_os_error().raw_os_error();
        if n < 0 && matches!(errno, Some(libc::EPIPE | libc::ECONNRESET)) {
            return;
        }
        assert!(n > 0, "write: {}", std::io::Error::last_os_error());
        rest = &rest[n as usize..];
        if rng.chance(1, 8) {
            thread::sleep(std::time::Duration::from_micros(rng.below(300)));
        }
    }
    // SAFETY: shutting down the write side of a socket this test owns.
    assert_eq!(unsafe { libc::shutdown(fd, libc::SHUT_WR) }, 0);
}

/// Sends `stream` through a socketpair into a channel with `max_message`
/// and checks every receive against the model.
fn check_stream(case_seed: u64, bytes: Vec<u8>, max_message: usize) -> model::Expected {
    let expected = model::expected(&bytes, max_message);
    // The sans-I/O decoder alone, on any chunking, sees the same.
    let mut chunks = Rng::new(case_seed ^ 0xdec0de);
    let decoded = model::decode(&bytes, max_message, &mut |n| {
        chunks.below(u64::from(n)) as u32
    });
    assert_eq!(
        decoded, expected.events,
        "decoder, case seed {case_seed}, max_message {max_message}"
    );
    let (sender, mut receiver) = Channel::pair().unwrap();
    receiver.set_max_message(max_message).unwrap();
    let fd = sender.raw_fd();
    let mut rng = Rng::new(case_seed);
    let writer_rng = Rng::new(rng.next_u64());
    let described = format!(
        "case seed {case_seed}, max_message {max_message}, {} bytes",
        bytes.len()
    );
    let writer = thread::spawn(move || write_slowly(fd, bytes, writer_rng));
    let outcome = model::drive(
        &mut receiver,
        &expected,
        &mut |n| rng.below(u64::from(n)) as u32,
        true,
    );
    // The receiver is done (a protocol error may leave bytes unread): close
    // it so that the writer cannot block on a full socket.
    drop(receiver);
    writer.join().unwrap();
    if let Err(mismatch) = outcome.and_then(|()| model::check_acks(fd, &expected)) {
        panic!("{described}: {mismatch}");
    }
    expected
}

fn max_message(rng: &mut Rng) -> usize {
    match rng.below(4) {
        0 => pprocess::wire::DEFAULT_MAX_MESSAGE,
        1 => rng.range(1, 16) as usize,
        _ => rng.range(1, 8192) as usize,
    }
}

fn cases(default: u64) -> u64 {
    seed("PP_FRAMES_CASES", default)
}

#[test]
fn valid_frames_round_trip_exactly() {
    let mut rng = Rng::new(seed("PP_FRAMES_SEED", 1));
    for _ in 0..cases(300) {
        let case = rng.next_u64();
        let mut case_rng = Rng::new(case);
        let max = max_message(&mut case_rng);
        let stream = valid_stream(&mut case_rng, max);
        let expected = check_stream(case, stream.bytes, max);
        // The model agrees with the generator: every message, then a clean end.
        let messages: Vec<&Vec<u8>> = expected
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Message(p) => Some(p),
                _ => None,
            })
            .collect();
        assert_eq!(
            messages,
            stream.messages.iter().collect::<Vec<_>>(),
            "case {case}"
        );
        assert_eq!(
            expected.events.last(),
            Some(&Event::End(pprocess::Error::Closed)),
            "case {case}"
        );
    }
}

#[test]
fn mutated_frames_give_protocol_errors_never_panics() {
    let mut rng = Rng::new(seed("PP_FRAMES_SEED", 2));
    let mut protocol_errors = 0;
    let total = cases(400);
    for _ in 0..total {
        let case = rng.next_u64();
        let mut case_rng = Rng::new(case);
        let max = max_message(&mut case_rng);
        let mut stream = valid_stream(&mut case_rng, max);
        mutate(&mut case_rng, &mut stream, max);
        let expected = check_stream(case, stream.bytes, max);
        if matches!(
            expected.events.last(),
            Some(Event::End(pprocess::Error::Protocol(_)))
        ) {
            protocol_errors += 1;
        }
    }
    // The mutations are not all harmless: most cases end in a protocol error.
    assert!(protocol_errors > total / 2, "{protocol_errors} of {total}");
}

#[test]
fn random_bytes_give_protocol_errors_never_panics() {
    let mut rng = Rng::new(seed("PP_FRAMES_SEED", 3));
    for _ in 0..cases(300) {
        let case = rng.next_u64();
        let mut case_rng = Rng::new(case);
        let max = max_message(&mut case_rng);
        let mut bytes = Vec::new();
        if case_rng.chance(1, 2) {
            // A valid start, so the garbage comes mid-stream.
            bytes = valid_stream(&mut case_rng, max).bytes;
        }
        let junk_len = case_rng.below(200) as usize;
        bytes.extend(case_rng.bytes(junk_len));
        check_stream(case, bytes, max);
    }
}

/// Reads what is waiting on `fd` without blocking.
fn drain(fd: i32) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 65536];
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
            return bytes;
        }
        bytes.extend_from_slice(&chunk[..n as usize]);
    }
}

#[test]
fn channels_send_exactly_the_documented_frames() {
    let mut rng = Rng::new(seed("PP_FRAMES_SEED", 4));
    for _ in 0..cases(100) {
        let case = rng.next_u64();
        let mut r = Rng::new(case);
        let (mut sender, probe) = Channel::pair().unwrap();
        let mut wire = Vec::new();
        for seq in 1..=r.below(20) as u32 {
            let frame = match r.below(3) {
                0 => {
                    let len = payload_len(&mut r, 70_000);
                    let payload = r.bytes(len);
                    sender.send(&payload).unwrap();
                    model::frame(DATA, 0, seq, &payload)
                }
                1 => {
                    let value = r.next_u64();
                    sender.send_value(&value).unwrap();
                    model::frame(DATA, 0, seq, &value.to_le_bytes())
                }
                _ => {
                    let message = text(&mut r, 256);
                    let code = r.next_u64() as i32;
                    sender
                        .send_error(&RemoteError::new(code, &message))
                        .unwrap();
                    // Sent as RemoteError keeps it: up to its first NUL.
                    let kept = message.split('\0').next().unwrap();
                    model::frame(ERROR, 0, seq, &model::error_payload(code, kept.as_bytes()))
                }
            };
            wire.extend_from_slice(&frame);
            // Keep the socket buffer from filling: collect as we go.
            let got = drain(probe.raw_fd());
            assert_eq!(got, frame, "case {case}, frame {seq}");
        }
        // Those bytes, fed back, are received as sent.
        drop(sender);
        check_stream(case, wire, pprocess::wire::DEFAULT_MAX_MESSAGE);
    }
}
