//! A SIGALRM storm: a handler installed without `SA_RESTART` and an interval
//! timer firing every 100 µs (setitimer) in both processes, while 1,000,000
//! messages cross each way. Every system call pprocess makes is interrupted
//! over and over (`EINTR`, short reads and writes); every message must still
//! arrive once, in order.
//!
//! Both processes of the storm are created processes, so that each is
//! single-threaded and the process-wide signal always lands on the thread
//! doing the I/O (in the test harness it could land on another thread).
#![cfg(feature = "std")]

mod fork_contract;

mod hardening;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytemuck::{Pod, Zeroable};
use hardening::Watchdog;
use pprocess::{start, Channel, Error, RemoteError};

/// Messages each way.
const MESSAGES: u64 = 1_000_000;
/// Every this many messages, one of [`BIG`] bytes: larger than a socket
/// buffer, so it is written and read in interrupted pieces.
const BIG_EVERY: u64 = 10_000;
const BIG: usize = 300 * 1024;
/// The timer's period.
const PERIOD_US: i64 = 100;

static SIGNALS: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_alarm(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::Relaxed);
}

/// Installs the handler (no `SA_RESTART`: interrupted calls fail with
/// `EINTR`) and starts the timer; `period_us == 0` stops it.
fn storm(period_us: i64) {
    // SAFETY: an all-zero sigaction is valid; we set the handler and flags.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_alarm as extern "C" fn(libc::c_int) as libc::sighandler_t;
    action.sa_flags = 0;
    // SAFETY: `action` is a valid sigaction whose handler is async-signal-safe.
    assert_eq!(
        unsafe { libc::sigaction(libc::SIGALRM, &action, std::ptr::null_mut()) },
        0
    );
    let interval = libc::timeval {
        tv_sec: 0,
        tv_usec: period_us,
    };
    let timer = libc::itimerval {
        it_interval: interval,
        it_value: interval,
    };
    // SAFETY: `timer` is a valid itimerval; the old value is not wanted.
    assert_eq!(
        unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) },
        0
    );
}

/// Checks the storm interrupts blocking calls: a read of an empty pipe
/// fails with `EINTR` instead of restarting.
fn interrupts() -> bool {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the pipe's two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let mut byte = 0u8;
    // SAFETY: reading one byte into a valid buffer; nobody writes, so only
    // a signal ends this read.
    let n = unsafe { libc::read(fds[0], (&mut byte as *mut u8).cast(), 1) };
    let errno = std::io::Error::last_os_error().raw_os_error();
    // SAFETY: closing the pipe this function opened.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    n == -1 && errno == Some(libc::EINTR)
}

/// The big message number `n`.
fn big(n: u64) -> Vec<u8> {
    let mut bytes = vec![(n % 251) as u8; BIG];
    bytes[..8].copy_from_slice(&n.to_le_bytes());
    bytes
}

/// Sends messages 0..MESSAGES: each a u64, every BIG_EVERY-th a big one,
/// now and then acknowledged.
fn send_all(ch: &mut Channel) -> pprocess::Result<()> {
    for n in 0..MESSAGES {
        if n % BIG_EVERY == BIG_EVERY - 1 {
            ch.send(&big(n))?;
        } else if n % 50_000 == 7 {
            ch.send_acked(&n.to_le_bytes())?;
        } else {
            ch.send_value(&n)?;
        }
    }
    Ok(())
}

/// Receives messages 0..MESSAGES in order through every receive function;
/// returns how many were right.
fn receive_all(ch: &mut Channel) -> pprocess::Result<u64> {
    let mut right = 0;
    let mut buf = vec![0u8; BIG];
    for n in 0..MESSAGES {
        let ok = if n % BIG_EVERY == BIG_EVERY - 1 {
            ch.receive_vec()? == big(n)
        } else {
            match n % 3 {
                0 => ch.receive_value::<u64>()? == n,
                1 => {
                    let len = ch.receive_timeout(&mut buf, 60_000)?;
                    buf[..len] == n.to_le_bytes()
                }
                _ => ch.receive_vec_timeout(60_000)? == n.to_le_bytes(),
            }
        };
        if !ok {
            return Ok(right);
        }
        right += 1;
    }
    Ok(right)
}

#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
#[repr(C)]
struct Summary {
    /// Messages received in order by the storm's creator, then by its child.
    parent_received: u64,
    child_received: u64,
    /// Signals handled by each.
    parent_signals: u64,
    child_signals: u64,
    micros: u64,
}

/// The storm's child: receives, then sends, then reports.
fn child(ch: &mut Channel) -> Result<(), RemoteError> {
    storm(PERIOD_US);
    if !interrupts() {
        return Err(RemoteError::new(
            2,
            "the storm does not interrupt the child",
        ));
    }
    send_all(ch)?;
    let received = receive_all(ch)?;
    storm(0);
    ch.send_value(&[received, SIGNALS.load(Ordering::Relaxed)])?;
    Ok(())
}

/// The storm's creator, itself a created process (single-threaded).
fn session(report: &mut Channel) -> Result<(), RemoteError> {
    let started = Instant::now();
    storm(PERIOD_US);
    if !interrupts() {
        return Err(RemoteError::new(
            2,
            "the storm does not interrupt its creator",
        ));
    }
    let mut ch = start(child)?;
    let parent_received = receive_all(&mut ch)?;
    send_all(&mut ch)?;
    let [child_received, child_signals] = ch.receive_value::<[u64; 2]>()?;
    let status = ch.wait()?;
    storm(0);
    if !status.success() {
        return Err(RemoteError::new(1, "the storm's child failed"));
    }
    report.send_value(&Summary {
        parent_received,
        child_received,
        parent_signals: SIGNALS.load(Ordering::Relaxed),
        child_signals,
        micros: started.elapsed().as_micros() as u64,
    })?;
    Ok(())
}

#[test]
fn a_signal_storm_loses_duplicates_and_reorders_nothing() {
    let _watchdog = Watchdog::new("the SIGALRM storm", Duration::from_secs(600));
    let mut ch = start(session).unwrap();
    let summary = match ch.receive_value::<Summary>() {
        Ok(summary) => summary,
        Err(Error::Remote { code }) => panic!("{code}: {:?}", ch.remote_error()),
        Err(e) => panic!("{e}"),
    };
    assert!(ch.wait().unwrap().success());
    eprintln!(
        "{MESSAGES} messages each way under a {PERIOD_US} µs SIGALRM storm in {:.1} s: \
         {} and {} signals handled",
        summary.micros as f64 / 1e6,
        summary.parent_signals,
        summary.child_signals
    );
    assert_eq!(summary.parent_received, MESSAGES, "{summary:?}");
    assert_eq!(summary.child_received, MESSAGES, "{summary:?}");
    // The storm really blew: thousands of interruptions on each side.
    assert!(summary.parent_signals > 1000, "{summary:?}");
    assert!(summary.child_signals > 1000, "{summary:?}");
}
