//! A persistent queue whose clients are killed mid-stream, 100 in turn: in
//! the end every result is delivered exactly once.
//!
//! Each client is a process of its own that reports every result it takes
//! to this test (synchronously, before doing anything else), then kills
//! itself at a random point: right after connecting, after a random number
//! of results, or in the middle of a frame (it reads part of the next one
//! off its socket and dies), with up to a window of results in flight.
//! The clients are plain [`connect_persistent`] channels, or (in a second
//! test) half of them [`Queue::background`] queues. A last client, a queue,
//! takes what is left.
#![cfg(feature = "std")]

mod fork_contract;

mod hardening;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hardening::{seed, Rng, Watchdog};
use pprocess::{connect_persistent, create_persistent, exit, start, Created, Error, Queue};

const RESULTS: u32 = 5000;
const CLIENTS: usize = 100;
/// Every this many results, one larger than a socket buffer.
const BIG_EVERY: u32 = 25;
const BIG: usize = 256 * 1024;

/// Result `n`: its number, and a body only it has.
fn result(n: u32) -> Vec<u8> {
    let len = if n % BIG_EVERY == 3 {
        BIG
    } else {
        4 + n as usize % 61
    };
    let mut bytes = vec![(n % 241) as u8; len];
    bytes[..4].copy_from_slice(&n.to_le_bytes());
    bytes
}

/// Checks a result's body and returns its number.
fn number(bytes: &[u8]) -> u32 {
    let n = u32::from_le_bytes(bytes[..4].try_into().unwrap());
    assert!(bytes == result(n), "result {n} corrupted");
    n
}

fn kill_self() -> ! {
    // SAFETY: killing this very process.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    unreachable!("SIGKILL cannot be caught");
}

/// How a client ends.
#[derive(Clone, Copy, Debug)]
enum Death {
    /// Killed after taking this many results.
    After(usize),
    /// Takes this many results, then reads this many bytes of the next
    /// frame off the socket and is killed.
    MidFrame(usize, usize),
}

/// One client: takes results, reporting each on `report`, until its death.
fn client(address: PathBuf, queue: bool, death: Death) -> pprocess::Channel {
    start(move |report| {
        let take = match death {
            Death::After(n) | Death::MidFrame(n, _) => n,
        };
        if queue {
            let mut queue = Queue::background(&address)?;
            for _ in 0..take {
                match queue.next() {
                    Some(Ok(bytes)) => report.send(&bytes)?,
                    Some(Err(e)) => return Err(e.error.into()),
                    None => break,
                }
            }
            if let Death::MidFrame(_, bytes) = death {
                // Whatever the queue reads next is cut short by the kill.
                if let Some(channel) = queue.ready(0)?.next() {
                    steal(channel.raw_fd(), bytes);
                }
            }
        } else {
            let mut channel = connect_persistent(&address)?;
            for _ in 0..take {
                match channel.receive_vec_timeout(20_000) {
                    Ok(bytes) => report.send(&bytes)?,
                    Err(Error::Closed) => break,
                    Err(e) => return Err(e.into()),
                }
            }
            if let Death::MidFrame(_, bytes) = death {
                if channel.wait_readable(1000)? {
                    steal(channel.raw_fd(), bytes);
                }
            }
        }
        kill_self()
    })
    .unwrap()
}

/// Reads up to `n` bytes off a socket, bypassing the channel: the frame
/// being read is left half-taken.
fn steal(fd: i32, n: usize) {
    let mut buf = vec![0u8; n];
    // SAFETY: reading into a valid buffer from this process's own socket.
    unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), n, libc::MSG_DONTWAIT) };
}

/// Collects a client's reports until it ends.
fn collect(client: &mut pprocess::Channel, counts: &mut [u32]) -> Error {
    loop {
        match client.receive_vec_timeout(60_000) {
            Ok(bytes) => counts[number(&bytes) as usize] += 1,
            Err(e) => return e,
        }
    }
}

/// 100 clients killed in turn, then a last one; client `i` is a
/// [`Queue::background`] when `queue(i)`, a plain channel otherwise.
fn killed_clients(name: &str, queue: fn(usize) -> bool) {
    let _watchdog = Watchdog::new("killed persistent clients", Duration::from_secs(300));
    let started = Instant::now();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("ppk-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let address = dir.join("results.socket");

    // The persistent process: its keeper is our child, so that a failed test
    // can still collect it.
    let keeper = match create_persistent(&address).unwrap() {
        Created::Child(mut ch) => {
            for n in 0..RESULTS {
                if ch.send(&result(n)).is_err() {
                    break;
                }
            }
            exit(ch, 0)
        }
        // The creator's own connection is a client too: it goes at once,
        // with whatever was in flight to it.
        Created::Parent(ch) => ch.pid(),
    };

    let mut rng = Rng::new(seed("PP_PERSISTENT_SEED", 100));
    let mut counts = vec![0u32; RESULTS as usize];
    let mut deaths = [0usize; 3]; // right after connecting, after results, mid-frame
    for i in 0..CLIENTS {
        let death = match rng.below(4) {
            0 => Death::After(0),
            1 | 2 => Death::After(rng.range(1, 40) as usize),
            _ => Death::MidFrame(rng.below(40) as usize, rng.range(1, 2000) as usize),
        };
        let mut c = client(address.clone(), queue(i), death);
        let end = collect(&mut c, &mut counts);
        match end {
            Error::PeerEnded { status, .. } if status.signal() == Some(libc::SIGKILL) => {}
            other => panic!("client {i} ({death:?}): {other}: {:?}", c.remote_error()),
        }
        deaths[match death {
            Death::After(0) => 0,
            Death::After(_) => 1,
            Death::MidFrame(..) => 2,
        }] += 1;
    }
    let taken_by_victims: u32 = counts.iter().sum();

    // The last client takes everything left, then sees the end.
    let mut last = start({
        let address = address.clone();
        move |report| {
            for outcome in Queue::background(&address)? {
                report.send(&outcome.map_err(|e| e.error)?)?;
            }
            Ok(())
        }
    })
    .unwrap();
    assert_eq!(collect(&mut last, &mut counts), Error::Closed);
    assert!(last.wait().unwrap().success());

    let missing: Vec<usize> = (0..counts.len()).filter(|&n| counts[n] == 0).collect();
    let twice: Vec<usize> = (0..counts.len()).filter(|&n| counts[n] > 1).collect();
    assert!(
        missing.is_empty() && twice.is_empty(),
        "{} results lost (first: {:?}), {} delivered twice (first: {:?})",
        missing.len(),
        &missing[..missing.len().min(10)],
        twice.len(),
        &twice[..twice.len().min(10)]
    );
    // The keeper finished and removed its socket. Its channel was dropped at
    // once, so the library may have collected it already.
    hardening::assert_dropped_child_ends_cleanly(keeper);
    assert!(!address.exists());
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "{name}: {CLIENTS} clients killed ({} right after connecting, {} after taking results, {} in \
         mid-frame); they took {taken_by_victims} results, the last client the other {}; \
         each of the {RESULTS} delivered exactly once; {:?}",
        deaths[0],
        deaths[1],
        deaths[2],
        RESULTS - taken_by_victims,
        started.elapsed()
    );
}

#[test]
fn channel_clients_killed_mid_stream_in_turn_lose_and_duplicate_nothing() {
    killed_clients("channels", |_| false);
}

/// Half the clients are [`Queue::background`] queues, which read results
/// ahead into the queue: a result is acknowledged only when the program
/// takes it, so what a killed queue had read ahead goes to the next client.
#[test]
fn queue_clients_killed_mid_stream_in_turn_lose_and_duplicate_nothing() {
    killed_clients("queues", |i| i % 2 == 0);
}
