//! Fuzzes the sans-I/O connection core (`wire::Conn`) alone, with no socket.
//!
//! Input: 1 byte of options (bit 0: acknowledgements are checked; bits 1-7:
//! how many frames this side "sent" before, so that some acknowledgements
//! are valid), 8 bytes seeding how the stream is cut into pieces and how
//! payloads are taken, then the stream. Checks: nothing panics; an end is
//! sticky (every later poll returns the same error); the highest
//! acknowledgement never goes back and, when checked, never passes the last
//! frame sent; every message's payload is taken whole, never more; every
//! queued acknowledgement is a well-formed frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pprocess::wire::{Conn, Event, Header, Kind, HEADER_LEN};

#[path = "choices.rs"]
mod choices;
use choices::Choices;

/// The next piece of `stream` (its length chosen) arrives.
fn feed(conn: &mut Conn<Vec<u8>>, stream: &mut &[u8], choices: &mut Choices) {
    let spare = conn.spare();
    let n = (1 + choices.below(spare.len() as u32) as usize).min(stream.len());
    spare[..n].copy_from_slice(&stream[..n]);
    conn.filled(n);
    *stream = &stream[n..];
}

fuzz_target!(|data: &[u8]| {
    let Some((&options, rest)) = data.split_first() else {
        return;
    };
    let Some((seed, mut stream)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let mut choices = Choices(u64::from_le_bytes(*seed));
    let mut conn: Conn<Vec<u8>> = Conn::new();
    conn.set_max_message(1 << 16).unwrap();
    if options & 1 == 0 {
        conn.accept_any_ack();
    }
    let sent = u32::from(options >> 1);
    for _ in 0..sent {
        conn.send(Kind::Data, 0, 0, b"x").unwrap();
    }
    conn.written(conn.pending().len());
    let mut last_acked = 0;
    let mut ended = None;
    loop {
        match conn.poll() {
            Ok(Event::More) => {
                if stream.is_empty() {
                    let end = conn.eof();
                    assert_eq!(conn.poll(), Err(end));
                    break;
                }
                feed(&mut conn, &mut stream, &mut choices);
            }
            Ok(Event::Message(header)) => {
                let mut payload = vec![0u8; header.length as usize];
                let mut got = 0;
                while got < payload.len() {
                    let piece = 1 + choices.below((payload.len() - got) as u32) as usize;
                    let n = conn.payload_into(&mut payload[got..got + piece]);
                    assert!(n <= piece);
                    got += n;
                    if n == 0 {
                        if stream.is_empty() {
                            break;
                        }
                        feed(&mut conn, &mut stream, &mut choices);
                    }
                }
                if got < payload.len() {
                    let end = conn.eof();
                    assert_eq!(conn.poll(), Err(end));
                    break;
                }
                assert_eq!(conn.message_taken(true), Some(header));
            }
            Ok(Event::Ack(_)) => {
                assert!(conn.acked().wrapping_sub(last_acked) as i32 >= 0);
                if options & 1 == 1 {
                    assert!(conn.acked() <= sent);
                }
                last_acked = conn.acked();
            }
            Ok(Event::Stop | Event::End(_)) => {
                ended = conn.end_error();
                assert!(ended.is_some());
            }
            Ok(Event::Remote(header)) => {
                assert!(conn.remote_error().is_some());
                let _ = conn.acknowledge(header);
            }
            Ok(Event::TaskEnd(_)) => {}
            Err(e) => {
                if let Some(before) = ended {
                    assert_eq!(e, before);
                }
                assert_eq!(conn.poll(), Err(e));
                break;
            }
        }
    }
    // What was queued (acknowledgements) is whole frames.
    let mut out = conn.pending();
    while !out.is_empty() {
        let raw: [u8; HEADER_LEN] = out[..HEADER_LEN].try_into().unwrap();
        let header = Header::decode(&raw, usize::MAX).unwrap();
        assert_eq!(header.kind, Kind::Ack);
        out = &out[HEADER_LEN..];
    }
});
