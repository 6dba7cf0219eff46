//! Helpers shared by the tests of persistent and background processes: a
//! scratch directory that cleans up after a failed test, process checks,
//! and callables and collectors of numbered results.
#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pprocess::{start, Channel, Error, RemoteError};

/// Every receive gives up after this long, so that a broken test fails
/// instead of hanging.
pub const TIMEOUT_MS: i32 = 20_000;

/// The library's codes, as C sees them.
pub const PP_EPEER: i32 = -1001;
pub const PP_EPROTO: i32 = -1003;
pub const PP_EPERM: i32 = -1009;
pub const PP_EPANIC: i32 = -1010;

/// A private directory for one test's sockets; on drop it kills the
/// background processes the test left running (a failed test) and removes
/// the directory.
pub struct Scratch {
    pub dir: PathBuf,
    keepers: Vec<i32>,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("ppp-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch {
            dir,
            keepers: Vec::new(),
        }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Remembers a background process to kill if the test fails.
    pub fn track(&mut self, pid: i32) -> i32 {
        assert!(pid > 0, "pid {pid}");
        self.keepers.push(pid);
        pid
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for &pid in &self.keepers {
            if alive(pid) && is_ours(pid) {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The state letter of a process, if it exists.
pub fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

/// True while `pid` runs (a zombie has finished).
pub fn alive(pid: i32) -> bool {
    !matches!(state(pid), None | Some('Z'))
}

/// True if `pid` runs this test program (not a process that reused the pid).
pub fn is_ours(pid: i32) -> bool {
    let exe = |p: &str| std::fs::read_link(format!("/proc/{p}/exe")).ok();
    exe(&pid.to_string()).is_some() && exe(&pid.to_string()) == exe("self")
}

pub fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The background process at `path` has exited and removed its socket file.
pub fn assert_finished(pid: i32, path: &Path) {
    eventually(&format!("process {pid} exits"), || !alive(pid));
    assert!(
        std::fs::symlink_metadata(path).is_err(),
        "{} is left behind",
        path.display()
    );
}

pub fn num(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes.try_into().expect("a u32 message"))
}

/// A callable sending the numbers in `range`, one message each.
pub fn numbers(
    range: std::ops::Range<u32>,
) -> impl FnOnce(&mut Channel) -> Result<(), RemoteError> {
    move |ch| {
        for n in range {
            ch.send_value(&n)?;
        }
        Ok(())
    }
}

/// Receives numbers until the channel ends; returns them and how it ended
/// (`None` for a normal end).
pub fn collect(ch: &mut Channel) -> (Vec<u32>, Option<Error>) {
    let mut got = Vec::new();
    loop {
        match ch.receive_vec_timeout(TIMEOUT_MS) {
            Ok(bytes) => got.push(num(&bytes)),
            Err(Error::Closed) => return (got, None),
            Err(Error::TimedOut) => panic!("no result for {TIMEOUT_MS} ms after {got:?}"),
            Err(e) => return (got, Some(e)),
        }
    }
}

/// Receives `n` numbers.
pub fn take(ch: &mut Channel, n: usize) -> Vec<u32> {
    (0..n)
        .map(|_| num(&ch.receive_vec_timeout(TIMEOUT_MS).expect("a result")))
        .collect()
}

/// Runs `body` in a new process and returns what it sends back; the process
/// must exit successfully.
pub fn in_child(body: impl FnOnce() -> Result<Vec<u8>, Error>) -> Vec<u8> {
    let mut ch = start(move |ch| {
        let out = body()?;
        ch.send(&out)?;
        Ok(())
    })
    .unwrap();
    let out = ch.receive_vec_timeout(TIMEOUT_MS);
    let status = ch.wait().unwrap();
    let out = out.unwrap_or_else(|e| panic!("child failed: {e} {:?}", ch.remote_error()));
    assert!(status.success(), "child {status}");
    out
}

pub fn to_bytes(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn from_bytes(bytes: &[u8]) -> Vec<u32> {
    bytes.chunks(4).map(num).collect()
}
