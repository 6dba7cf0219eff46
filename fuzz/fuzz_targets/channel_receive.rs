//! Fuzzes a channel's receive path through a real socketpair.
//!
//! Input: 1 byte choosing the receiver's maximum message size, 8 bytes
//! seeding the choice of receive operations, then the bytes the peer writes
//! (up to 128 KiB) before it shuts down its side. The receiver is driven with
//! every receive function (`receive` into buffers too small, exact and
//! larger, `receive_vec`, `receive_value`, timed receives, `wait_readable`)
//! until the channel's sticky end, and each result is checked against the
//! reference decoder in tests/hardening/wire_model.rs: valid frames round-trip
//! byte for byte, error frames give their code and message, malformed or
//! truncated input gives the exact protocol error, acknowledgements go back
//! for exactly the frames that asked. Nothing may panic, block or allocate
//! more than the configured maximum message size (a limiting global
//! allocator aborts otherwise).
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use libfuzzer_sys::fuzz_target;
use pprocess::Channel;

#[allow(dead_code)]
#[path = "../../tests/hardening/wire_model.rs"]
mod wire_model;

/// Bytes the peer writes at most: below a socket buffer, so writing them all
/// before reading never blocks.
const MAX_STREAM: usize = 128 << 10;

/// The largest single allocation allowed while the channel is driven.
static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);

struct Limited;

fn check(size: usize) {
    let limit = LIMIT.load(Ordering::Relaxed);
    if size > limit {
        // No panic here: panicking allocates. Report and abort (a crash for libFuzzer).
        let text = "channel_receive: an allocation over the maximum message size; bytes, limit:\n";
        // SAFETY: writing a valid buffer to stderr.
        unsafe { libc::write(2, text.as_ptr().cast(), text.len()) };
        eprint_number(size);
        eprint_number(limit);
        std::process::abort();
    }
}

/// Writes `n` in decimal to stderr without allocating.
fn eprint_number(mut n: usize) {
    let mut digits = [0u8; 24];
    let mut at = digits.len() - 1;
    digits[at] = b'\n';
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // SAFETY: writing a valid buffer to stderr.
    unsafe { libc::write(2, digits[at..].as_ptr().cast(), digits.len() - at) };
}

// SAFETY: forwards to the system allocator after a size check that never allocates.
unsafe impl GlobalAlloc for Limited {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        // SAFETY: the caller's layout contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Limited = Limited;

#[path = "choices.rs"]
mod choices;
use choices::Choices;

fn write_all(fd: i32, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writing a valid buffer to our own socket.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        assert!(n > 0, "write: {}", std::io::Error::last_os_error());
        bytes = &bytes[n as usize..];
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&max_selector, rest)) = data.split_first() else {
        return;
    };
    let Some((seed, stream)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let stream = &stream[..stream.len().min(MAX_STREAM)];
    // Small maxima reach the "too long" checks; the default is 64 MiB.
    let max_message = match max_selector {
        0..=63 => 1 + usize::from(max_selector),
        64..=191 => 1 << (max_selector % 17),
        _ => pprocess::wire::DEFAULT_MAX_MESSAGE,
    };
    let expected = wire_model::expected(stream, max_message);

    let (sender, mut receiver) = Channel::pair().expect("socketpair");
    receiver.set_max_message(max_message).unwrap();
    write_all(sender.raw_fd(), stream);
    // SAFETY: shutting down the write side of our own socket.
    assert_eq!(unsafe { libc::shutdown(sender.raw_fd(), libc::SHUT_WR) }, 0);

    let mut choices = Choices(u64::from_le_bytes(*seed));
    // The driver's own buffers are at most 63 bytes over a message's size.
    LIMIT.store(max_message + 64, Ordering::Relaxed);
    let outcome = wire_model::drive(&mut receiver, &expected, &mut |n| choices.below(n), false);
    LIMIT.store(usize::MAX, Ordering::Relaxed);
    if let Err(mismatch) = outcome {
        panic!("{mismatch}\nmax_message {max_message}, stream {stream:02x?}");
    }
    if let Err(mismatch) = wire_model::check_acks(sender.raw_fd(), &expected) {
        panic!("{mismatch}");
    }
});
