//! Helpers shared by the hardening tests: a deterministic random number
//! generator, counts of this process's descriptors, children and zombies, and
//! a watchdog that turns a hang into a failure.
#![allow(dead_code)] // each test binary uses a different part

pub mod wire_model;

use std::time::Duration;

/// SplitMix64: small, fast, and the same sequence on every run for a seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// A seed from the environment variable `name` (decimal), or `default`: set
/// it to rerun a failing case or to explore new ones.
pub fn seed(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Open descriptors of this process.
pub fn fds() -> usize {
    // The directory handle itself is open while it is read: count it out.
    std::fs::read_dir("/proc/self/fd").unwrap().count() - 1
}

/// Memory mappings of this process (lines of /proc/self/maps).
pub fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

/// (state, parent pid) of every process, from /proc/<pid>/stat.
fn processes() -> Vec<(char, u32)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            e.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // pid (comm) state ppid ...
            let rest = &stat[stat.rfind(')')? + 2..];
            let mut fields = rest.split(' ');
            let state = fields.next()?.chars().next()?;
            let ppid = fields.next()?.parse().ok()?;
            Some((state, ppid))
        })
        .collect()
}

/// Children of this process, zombies included.
pub fn children() -> usize {
    let me = std::process::id();
    processes().iter().filter(|(_, ppid)| *ppid == me).count()
}

/// Zombie children of this process.
pub fn zombies() -> usize {
    let me = std::process::id();
    processes()
        .iter()
        .filter(|(state, ppid)| *state == 'Z' && *ppid == me)
        .count()
}

/// Aborts the whole test binary (with `what` on stderr) unless the returned
/// guard is dropped within `limit`: a hang becomes a failure, not a stuck CI.
pub struct Watchdog {
    done: std::sync::mpsc::Sender<()>,
}

impl Watchdog {
    /// Starts the clock.
    pub fn new(what: &'static str, limit: Duration) -> Watchdog {
        let (done, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!("watchdog: {what} still running after {limit:?}: a hang");
                std::process::abort();
            }
        });
        Watchdog { done }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.done.send(());
    }
}

/// Waits for a child whose channel was dropped: the library hands such a
/// process to its own deferred collection, so either this wait collects it
/// (and it must have exited cleanly) or the library already did (`ECHILD`).
pub fn assert_dropped_child_ends_cleanly(pid: pprocess::Pid) {
    match wait_child(pid) {
        Ok(status) => assert!(status.success(), "{status}"),
        Err(errno) => assert_eq!(errno, libc::ECHILD, "waitpid({pid})"),
    }
}

/// Waits for the child `pid` to end and returns its status, or the errno of
/// a failed `waitpid` (`ECHILD` when someone else collected it).
pub fn wait_child(pid: pprocess::Pid) -> Result<pprocess::WaitStatus, i32> {
    let mut raw = 0;
    loop {
        // SAFETY: `raw` is a valid int for waitpid to write.
        if unsafe { libc::waitpid(pid, &mut raw, 0) } == pid {
            return Ok(pprocess::WaitStatus(raw));
        }
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        if errno != libc::EINTR {
            return Err(errno);
        }
    }
}
