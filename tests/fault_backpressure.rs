//! A peer that stops reading while the other keeps sending: the socket
//! buffer fills, the sender blocks in the kernel (it does not spin: its CPU
//! time, from getrusage, stays low however long it waits), and once the peer
//! reads again every frame arrives, in order. Receive timeouts around a
//! stalled sender behave as documented, and a sender blocked on a peer that
//! dies gets an error instead of hanging.
#![cfg(feature = "std")]

mod fork_contract;

mod hardening;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytemuck::{Pod, Zeroable};
use hardening::wire_model::{frame, DATA};
use hardening::{thread_cpu, Watchdog};
use pprocess::{start, Channel, Error, RemoteError};

const MESSAGES: u64 = 2000;
const SIZE: usize = 4096;

/// How long the reader stays away once the sender is stuck.
const AWAY: Duration = Duration::from_millis(600);

/// Message `n`: its number, then a pattern.
fn message(n: u64) -> Vec<u8> {
    let mut bytes = vec![(n % 253) as u8; SIZE];
    bytes[..8].copy_from_slice(&n.to_le_bytes());
    bytes
}

/// What a sender measured about its slowest send.
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
#[repr(C)]
struct Stall {
    /// Wall-clock and CPU time of the longest single send, in µs.
    wall_us: u64,
    cpu_us: u64,
    /// Messages sent.
    sent: u64,
    _pad: u64,
}

/// Sends every message, timing each send; `progress` counts them.
fn send_all(ch: &mut Channel, progress: &AtomicU64) -> pprocess::Result<Stall> {
    let mut stall = Stall::default();
    for n in 0..MESSAGES {
        let (wall, cpu) = (Instant::now(), thread_cpu());
        ch.send(&message(n))?;
        let (wall, cpu) = (wall.elapsed(), thread_cpu() - cpu);
        if wall.as_micros() as u64 > stall.wall_us {
            stall.wall_us = wall.as_micros() as u64;
            stall.cpu_us = cpu.as_micros() as u64;
        }
        stall.sent += 1;
        progress.store(n + 1, Ordering::Relaxed);
    }
    Ok(stall)
}

/// Bytes waiting to be read on `fd`.
fn queued(fd: i32) -> u64 {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes an int.
    assert_eq!(unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) }, 0);
    n as u64
}

/// Waits until the sender is stuck: the bytes waiting on `fd` (the
/// receiver's socket, which nobody reads) are many and stop growing.
/// Returns how many messages they hold.
fn wait_until_stuck(fd: i32) -> u64 {
    let mut last = queued(fd);
    let mut still = 0;
    while still < 3 {
        std::thread::sleep(Duration::from_millis(100));
        let now = queued(fd);
        still = if now == last && now >= 64 * 1024 {
            still + 1
        } else {
            0
        };
        last = now;
    }
    last / (SIZE as u64 + 16)
}

fn receive_all(ch: &mut Channel) {
    for n in 0..MESSAGES {
        let got = ch.receive_vec().unwrap();
        assert!(got == message(n), "message {n} lost or out of order");
    }
}

fn check_stall(stall: Stall, stuck_at: u64) {
    eprintln!(
        "sender stuck after {stuck_at} of {MESSAGES} messages of {SIZE} bytes; its longest \
         send took {} ms of wall time and {} ms of CPU",
        stall.wall_us / 1000,
        stall.cpu_us / 1000
    );
    assert!(stuck_at < MESSAGES, "the socket never filled");
    assert_eq!(stall.sent, MESSAGES);
    // It waited at least as long as the reader was away...
    assert!(stall.wall_us >= AWAY.as_micros() as u64, "{stall:?}");
    // ...asleep in the kernel: a spinning sender would burn the whole wait.
    assert!(stall.cpu_us * 10 < stall.wall_us, "{stall:?}");
    assert!(stall.cpu_us < 100_000, "{stall:?}");
}

#[test]
fn a_sender_facing_a_full_socket_blocks_without_spinning() {
    let _watchdog = Watchdog::new("the full-socket sender", Duration::from_secs(120));
    let (mut sender, mut receiver) = Channel::pair().unwrap();
    let progress = Arc::new(AtomicU64::new(0));
    let counter = progress.clone();
    let thread = std::thread::spawn(move || send_all(&mut sender, &counter).unwrap());
    let stuck_at = wait_until_stuck(receiver.raw_fd());
    let sent = progress.load(Ordering::Relaxed);
    std::thread::sleep(AWAY);
    assert_eq!(
        progress.load(Ordering::Relaxed),
        sent,
        "it sent while nobody read"
    );
    receive_all(&mut receiver);
    check_stall(thread.join().unwrap(), stuck_at);
}

#[test]
fn a_child_facing_a_full_socket_blocks_without_spinning() {
    let _watchdog = Watchdog::new("the full-socket child", Duration::from_secs(120));
    // The child sends everything, then reports how its slowest send went.
    let mut ch = start(|ch| {
        let stall = send_all(ch, &AtomicU64::new(0))?;
        ch.send_value(&stall)?;
        Ok(())
    })
    .unwrap();
    let stuck_at = wait_until_stuck(ch.raw_fd());
    std::thread::sleep(AWAY);
    receive_all(&mut ch);
    let stall: Stall = ch.receive_value().unwrap();
    assert!(ch.wait().unwrap().success());
    check_stall(stall, stuck_at);
}

#[test]
fn send_acked_to_a_peer_that_does_not_read_waits_without_spinning() {
    let _watchdog = Watchdog::new("send_acked", Duration::from_secs(60));
    let (mut sender, mut receiver) = Channel::pair().unwrap();
    // The clock starts before this thread sleeps: the sender's thread may
    // start running well after it was spawned on a loaded machine.
    let wall = Instant::now();
    let thread = std::thread::spawn(move || {
        let cpu = thread_cpu();
        sender.send_acked(b"please confirm").unwrap();
        (wall.elapsed(), thread_cpu() - cpu)
    });
    std::thread::sleep(AWAY);
    assert_eq!(receiver.receive_vec().unwrap(), b"please confirm");
    let (wall, cpu) = thread.join().unwrap();
    assert!(wall >= AWAY, "{wall:?}");
    assert!(
        cpu * 10 < wall && cpu < Duration::from_millis(100),
        "{cpu:?} of {wall:?}"
    );
}

/// Writes raw bytes into a channel's socket.
fn write_raw(ch: &Channel, bytes: &[u8]) {
    // SAFETY: writing a valid buffer to a socket this test owns.
    let n = unsafe { libc::write(ch.raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
    assert_eq!(n, bytes.len() as isize);
}

#[test]
fn receive_timeouts_around_a_stalled_sender_lose_nothing() {
    let _watchdog = Watchdog::new("timeouts", Duration::from_secs(60));
    let (sender, mut receiver) = Channel::pair().unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    // Nothing sent: the timeout passes.
    assert_eq!(receiver.receive_timeout(&mut buf, 20), Err(Error::TimedOut));
    let whole = frame(DATA, 0, 1, &message(42).repeat(10));
    // Half a header: still no message, and the half is kept.
    write_raw(&sender, &whole[..7]);
    assert_eq!(receiver.receive_timeout(&mut buf, 20), Err(Error::TimedOut));
    assert_eq!(receiver.receive_vec_timeout(0), Err(Error::TimedOut));
    // The header and part of the payload, the rest much later: a message
    // that has started is read to its end, whatever the timeout.
    write_raw(&sender, &whole[7..1000]);
    let rest = whole[1000..].to_vec();
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        write_raw(&sender, &rest);
        sender
    });
    let n = receiver.receive_timeout(&mut buf, 10).unwrap();
    assert_eq!(buf[..n], message(42).repeat(10)[..]);
    let mut sender = late.join().unwrap();
    // Still usable both ways.
    assert_eq!(receiver.receive_timeout(&mut buf, 0), Err(Error::TimedOut));
    sender.send(b"after").unwrap();
    assert_eq!(receiver.receive_vec_timeout(1000).unwrap(), b"after");
}

#[test]
fn a_sender_blocked_on_a_peer_that_dies_gets_an_error() {
    let _watchdog = Watchdog::new("the sender of a dead peer", Duration::from_secs(60));
    // The child never reads; it is killed while the creator is blocked
    // sending to it.
    let mut ch = start(|_| -> Result<(), RemoteError> {
        std::thread::sleep(Duration::from_secs(60));
        Ok(())
    })
    .unwrap();
    let pid = ch.pid();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(AWAY);
        // SAFETY: kill has no memory-safety preconditions; the child lives
        // until this kill.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let started = Instant::now();
    let mut sent = 0u64;
    let error = loop {
        match ch.send(&message(sent)) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
    };
    killer.join().unwrap();
    assert!(started.elapsed() >= AWAY, "failed before the peer died");
    match error {
        Error::PeerEnded { pid: p, status } => {
            assert_eq!(p, pid);
            assert_eq!(status.signal(), Some(libc::SIGKILL));
        }
        other => panic!("{other:?} after {sent} messages"),
    }
}
