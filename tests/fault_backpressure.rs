//! A peer that stops reading while the other keeps sending: the socket
//! buffer fills, the sender blocks in the kernel (it does not spin: its
//! thread is asleep, state `S` in /proc, every time it is looked at while
//! it waits), and once the peer reads again every frame arrives, in order.
//! Receive timeouts around a stalled sender behave as documented, and a
//! sender blocked on a peer that dies gets an error instead of hanging.
//! No test measures a duration: each waits for the state it needs, under a
//! watchdog that turns a hang into a failure.
#![cfg(feature = "std")]

mod fork_contract;

mod hardening;

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hardening::wire_model::{frame, DATA};
use hardening::Watchdog;
use pprocess::{start, Channel, Error, RemoteError};

const MESSAGES: u64 = 2000;
const SIZE: usize = 4096;

/// How many times a blocked sender is looked at, 5 ms apart.
const LOOKS: usize = 40;

/// Message `n`: its number, then a pattern.
fn message(n: u64) -> Vec<u8> {
    let mut bytes = vec![(n % 253) as u8; SIZE];
    bytes[..8].copy_from_slice(&n.to_le_bytes());
    bytes
}

/// Sends every message; `progress` counts them.
fn send_all(ch: &mut Channel, progress: &AtomicU64) -> pprocess::Result<u64> {
    for n in 0..MESSAGES {
        ch.send(&message(n))?;
        progress.store(n + 1, Ordering::Relaxed);
    }
    Ok(MESSAGES)
}

/// The calling thread's id.
fn gettid() -> i32 {
    // SAFETY: gettid cannot fail.
    unsafe { libc::gettid() }
}

/// The scheduling state of thread `tid` of process `pid` (`R` running,
/// `S` asleep in the kernel...), from /proc.
fn state(pid: i32, tid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"))
        .unwrap_or_else(|e| panic!("thread {tid} of {pid}: {e}"));
    let after = &stat[stat.rfind(')').expect("a stat line") + 2..];
    after.chars().next().unwrap()
}

/// Bytes waiting to be read on `fd`.
fn queued(fd: i32) -> u64 {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes an int.
    assert_eq!(unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) }, 0);
    n as u64
}

/// Waits until the sender (thread `tid` of `pid`) is stuck: the bytes
/// waiting on `fd` (the receiver's socket, which nobody reads) are many and
/// the sender is asleep. Returns how many messages they hold.
fn wait_until_stuck(fd: i32, pid: i32, tid: i32) -> u64 {
    while !(queued(fd) >= 64 * 1024 && state(pid, tid) == 'S') {
        std::thread::sleep(Duration::from_millis(1));
    }
    queued(fd) / (SIZE as u64 + 16)
}

/// Looks at the stuck sender [`LOOKS`] times: asleep each time (a sender
/// that spins on a full socket is running nearly every time), and `fd`'s
/// queue unchanged (it sent nothing while nobody read).
fn assert_asleep_while_stuck(fd: i32, pid: i32, tid: i32) {
    let before = queued(fd);
    for look in 0..LOOKS {
        let now = state(pid, tid);
        assert_eq!(now, 'S', "the stuck sender was not asleep at look {look}");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(queued(fd), before, "it sent while nobody read");
}

fn receive_all(ch: &mut Channel) {
    for n in 0..MESSAGES {
        let got = ch.receive_vec().unwrap();
        assert!(got == message(n), "message {n} lost or out of order");
    }
}

#[test]
fn a_sender_facing_a_full_socket_blocks_without_spinning() {
    let _watchdog = Watchdog::new("the full-socket sender", Duration::from_secs(120));
    let (mut sender, mut receiver) = Channel::pair().unwrap();
    let progress = Arc::new(AtomicU64::new(0));
    let counter = progress.clone();
    let tid = Arc::new(AtomicI32::new(0));
    let sender_tid = tid.clone();
    let thread = std::thread::spawn(move || {
        sender_tid.store(gettid(), Ordering::SeqCst);
        send_all(&mut sender, &counter).unwrap()
    });
    while tid.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    let (pid, tid) = (std::process::id() as i32, tid.load(Ordering::SeqCst));
    let stuck_at = wait_until_stuck(receiver.raw_fd(), pid, tid);
    let sent = progress.load(Ordering::Relaxed);
    assert_asleep_while_stuck(receiver.raw_fd(), pid, tid);
    assert_eq!(
        progress.load(Ordering::Relaxed),
        sent,
        "it sent while nobody read"
    );
    assert!(stuck_at < MESSAGES, "the socket never filled");
    receive_all(&mut receiver);
    assert_eq!(thread.join().unwrap(), MESSAGES);
}

#[test]
fn a_child_facing_a_full_socket_blocks_without_spinning() {
    let _watchdog = Watchdog::new("the full-socket child", Duration::from_secs(120));
    // The child sends everything, then how many it sent.
    let mut ch = start(|ch| {
        let sent = send_all(ch, &AtomicU64::new(0))?;
        ch.send_value(&sent)?;
        Ok(())
    })
    .unwrap();
    // The child's only thread has its pid as id.
    let stuck_at = wait_until_stuck(ch.raw_fd(), ch.pid(), ch.pid());
    assert_asleep_while_stuck(ch.raw_fd(), ch.pid(), ch.pid());
    assert!(stuck_at < MESSAGES, "the socket never filled");
    receive_all(&mut ch);
    assert_eq!(ch.receive_value::<u64>().unwrap(), MESSAGES);
    assert!(ch.wait().unwrap().success());
}

#[test]
fn send_acked_to_a_peer_that_does_not_read_waits_without_spinning() {
    let _watchdog = Watchdog::new("send_acked", Duration::from_secs(60));
    let (mut sender, mut receiver) = Channel::pair().unwrap();
    let tid = Arc::new(AtomicI32::new(0));
    let sender_tid = tid.clone();
    let thread = std::thread::spawn(move || {
        sender_tid.store(gettid(), Ordering::SeqCst);
        sender.send_acked(b"please confirm").unwrap();
    });
    // Sent, and waiting for the acknowledgement.
    while tid.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    let (pid, tid) = (std::process::id() as i32, tid.load(Ordering::SeqCst));
    while !(queued(receiver.raw_fd()) > 0 && state(pid, tid) == 'S') {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_asleep_while_stuck(receiver.raw_fd(), pid, tid);
    assert_eq!(receiver.receive_vec().unwrap(), b"please confirm");
    thread.join().unwrap();
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
    // The child never reads; it is killed once the creator is blocked
    // sending to it.
    let mut ch = start(|_| -> Result<(), RemoteError> {
        loop {
            std::thread::park();
        }
    })
    .unwrap();
    let pid = ch.pid();
    let (me, tid) = (std::process::id() as i32, gettid());
    let progress = Arc::new(AtomicU64::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let killer = std::thread::spawn({
        let (progress, killed) = (progress.clone(), killed.clone());
        move || {
            // This test's thread is asleep in a send, after some went through.
            while !(progress.load(Ordering::SeqCst) > 0 && state(me, tid) == 'S') {
                std::thread::sleep(Duration::from_millis(1));
            }
            killed.store(true, Ordering::SeqCst);
            // SAFETY: kill has no memory-safety preconditions; the child lives
            // until this kill.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let started = Instant::now();
    let mut sent = 0u64;
    let error = loop {
        match ch.send(&message(sent)) {
            Ok(()) => {
                sent += 1;
                progress.store(sent, Ordering::SeqCst);
            }
            Err(e) => break e,
        }
    };
    let why = format!(
        "{error:?} after {:?} and {sent} messages sent",
        started.elapsed()
    );
    // The kill is flagged before it is sent: an error before the flag came
    // before the peer died.
    assert!(
        killed.load(Ordering::SeqCst),
        "failed before the peer died: {why}"
    );
    killer.join().unwrap();
    match error {
        Error::PeerEnded { pid: p, status } => {
            assert_eq!(p, pid, "{why}");
            assert_eq!(status.signal(), Some(libc::SIGKILL), "{why}");
        }
        _ => panic!("not PeerEnded: {why}"),
    }
}
