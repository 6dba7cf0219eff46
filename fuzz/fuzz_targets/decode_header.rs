//! Fuzzes the frame header decoder and the error-payload decoder.
//!
//! Input: 4 bytes of maximum message size (any value), 24 header bytes (wire
//! version 2), then an error frame's payload. Checks: nothing panics;
//! `Header::decode` accepts exactly the headers the README's wire table
//! allows (checked by an independent classification), and an accepted header
//! re-encodes to the same 24 bytes; `decode_error` splits exactly a code and
//! valid UTF-8.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pprocess::wire::{self, Header, ProtoError, HEADER_LEN};

/// What the wire table says about these 24 bytes: (kind, flags, length, seq, task).
fn classify(h: &[u8; HEADER_LEN], max: usize) -> Result<(u8, u16, u32, u32, u64), ProtoError> {
    let u16_at = |at: usize| u16::from_le_bytes([h[at], h[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    if h[0] != 0x50 || h[1] != 0x50 {
        return Err(ProtoError::BadMagic);
    }
    if h[2] != 2 {
        return Err(ProtoError::BadVersion(h[2]));
    }
    let kind = h[3];
    if !(1..=7).contains(&kind) {
        return Err(ProtoError::BadKind(kind));
    }
    if u16_at(4) & !3 != 0 || u16_at(6) != 0 {
        return Err(ProtoError::BadFlags);
    }
    let length = u32_at(8);
    let limit = match kind {
        1 | 4 | 7 => max,
        2 => 4 + 256,
        _ => 0,
    };
    if length as usize > limit {
        return Err(ProtoError::TooLong { length, max: limit });
    }
    let task = u64::from_le_bytes(h[16..24].try_into().unwrap());
    Ok((kind, u16_at(4), length, u32_at(12), task))
}

fuzz_target!(|data: &[u8]| {
    let Some((max, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let Some((header, payload)) = rest.split_first_chunk::<HEADER_LEN>() else {
        return;
    };
    let max = u32::from_le_bytes(*max) as usize;

    let decoded = Header::decode(header, max);
    let fields = decoded.map(|h| (h.kind as u8, h.flags, h.length, h.seq, h.task));
    assert_eq!(fields, classify(header, max), "{header:02x?} max {max}");
    match decoded {
        Ok(h) => {
            assert_eq!(&h.encode(), header, "re-encoding {h:?}");
            assert_eq!(Header::decode(&h.encode(), max), Ok(h));
        }
        Err(e) => {
            // Every rejection has a message (and formatting it cannot panic).
            assert!(!e.to_string().is_empty());
        }
    }

    match wire::decode_error(payload) {
        Ok((code, message)) => {
            assert_eq!(code.to_le_bytes(), payload[..4]);
            assert_eq!(message.as_bytes(), &payload[4..]);
        }
        Err(e) => {
            assert_eq!(e, ProtoError::BadErrorPayload);
            assert!(payload.len() < 4 || std::str::from_utf8(&payload[4..]).is_err());
        }
    }
});
