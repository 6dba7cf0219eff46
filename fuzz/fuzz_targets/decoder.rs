//! Fuzzes the sans-I/O decoder (`wire::Decoder`) alone, with no socket.
//!
//! Input: 1 byte choosing the maximum message size, 8 bytes seeding how the
//! stream is cut into pieces (and whether each payload is taken through the
//! decoder's buffer or collected across reads), then the stream. Checks:
//! nothing panics, and the decoder yields exactly the events of the reference
//! decoder in tests/hardening/wire_model.rs, written from the README's table:
//! the same messages, error frames, and protocol error or clean end, however
//! the bytes are cut.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../tests/hardening/wire_model.rs"]
mod wire_model;

#[path = "choices.rs"]
mod choices;
use choices::Choices;

fuzz_target!(|data: &[u8]| {
    let Some((&max_selector, rest)) = data.split_first() else {
        return;
    };
    let Some((seed, stream)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let max_message = match max_selector {
        0..=63 => 1 + usize::from(max_selector),
        64..=191 => 1 << (max_selector % 17),
        _ => pprocess::wire::DEFAULT_MAX_MESSAGE,
    };
    let expected = wire_model::expected(stream, max_message);
    let mut choices = Choices(u64::from_le_bytes(*seed));
    let decoded = wire_model::decode(stream, max_message, &mut |n| choices.below(n));
    assert_eq!(
        decoded, expected.events,
        "max_message {max_message}, stream {stream:02x?}"
    );
});
