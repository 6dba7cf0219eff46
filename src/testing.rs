//! Testing code that uses pprocess from `#[test]` functions.
//!
//! Rust's test harness runs each test on a thread of its own while its main
//! thread waits, so a test process always has other threads, and every safe
//! forking call ([`pmap`](crate::pmap), [`Map`](crate::Map),
//! [`start`](crate::start)...) refuses with [`Error::Threads`](crate::Error::Threads)
//! there. [`in_new_process`] runs a test's body where forking is sound: in a
//! freshly started copy of the test binary that runs this one test and
//! nothing else (as the `rusty-fork` crate does).
//!
//! ```
//! use pprocess::pmap_records;
//! use pprocess::testing::in_new_process;
//!
//! // The body of a `#[test] fn doubles_in_workers()`:
//! in_new_process(|| -> pprocess::Result<()> {
//!     let doubled = pmap_records(|x: &u32| Ok(x * 2), &[1u32, 2, 3], 2)?;
//!     assert_eq!(doubled, [2, 4, 6]);
//!     Ok(())
//! });
//! ```
//!
//! How it works. Called from a test, it starts the test binary again
//! (`std::env::current_exe()`) with the arguments `<the test's name> --exact
//! --test-threads=1 --include-ignored --nocapture` and the environment
//! variable `PPROCESS_TEST_CHILD` set to the test's name (libtest names a
//! test's thread after the test). That process runs only this test; there,
//! `in_new_process` finds the variable and runs the body. The only other
//! thread of that process is the harness's main thread, blocked until this
//! one test ends and holding no lock, so forking is sound there: the body
//! may call pprocess freely (it checks that the process has exactly these
//! two threads; otherwise the forking calls keep refusing).
//!
//! The calling test then fails if the body failed (a panic, an `Err`, a
//! nonzero exit, a signal), with the new process's whole output: the panic
//! message, the exit status. A body that runs past the timeout (five
//! minutes; [`in_new_process_within`] sets another) is killed with every
//! process it created, and the test fails saying so. The new process is
//! always waited for (no zombie).
//!
//! Where forking is already allowed (a process with no other thread, such
//! as a doctest, a `harness = false` test or a program's `main`, or one
//! that called [`allow_fork_with_threads`](crate::allow_fork_with_threads)),
//! the body simply runs in place.
//!
//! A body that never returns (it always panics) needs its result type
//! named: `in_new_process::<()>(|| panic!(...))`.
//!
//! It is a plain part of the `std` API, not a feature: it costs nothing
//! unless called and needs no dependency, and a user's dev-dependency on
//! pprocess is then the same line as the normal one.

use std::fmt::Debug;
use std::fs::File;
use std::io::{Read, Seek};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sys;

/// How long [`in_new_process`] lets a body run before it kills it.
///
/// ```
/// assert_eq!(pprocess::testing::DEFAULT_TIMEOUT.as_secs(), 300);
/// ```
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The environment variable that tells the new process which test's body
/// to run.
const CHILD_VARIABLE: &str = "PPROCESS_TEST_CHILD";

/// The line the new process prints once the body has returned: without it
/// a clean exit means the test was not found there.
const FINISHED: &str = "pprocess::testing: the body returned";

/// What a test body may return: nothing (it fails by panicking) or a
/// `Result` whose `Err` fails the test.
///
/// ```
/// use pprocess::testing::TestResult;
///
/// ().check();
/// Ok::<(), pprocess::Error>(()).check();
/// let failed = std::panic::catch_unwind(|| Err::<(), _>(pprocess::Error::Threads).check());
/// assert!(failed.is_err());
/// ```
pub trait TestResult {
    /// Panics if this result is a failure.
    fn check(self);
}

impl TestResult for () {
    fn check(self) {}
}

impl<E: Debug> TestResult for Result<(), E> {
    fn check(self) {
        if let Err(error) = self {
            panic!("the test body returned Err({error:?})");
        }
    }
}

/// Runs `body`, a test's body, in a new process where pprocess may fork,
/// and fails the calling test if it fails there; the timeout is
/// [`DEFAULT_TIMEOUT`]. See the [module documentation](self).
///
/// ```
/// use pprocess::testing::in_new_process;
/// use pprocess::{pmap, Options, RemoteError};
///
/// // In a `#[test]` function:
/// in_new_process(|| {
///     let inputs = [[1u8], [2], [3]];
///     let squares: Vec<u8> = pmap(
///         |x: &[u8]| Ok::<_, RemoteError>(vec![x[0] * x[0]]),
///         inputs.iter().map(|x| x.to_vec()),
///         2,
///         Options::default(),
///     )
///     .unwrap()
///     .map(|outcome| outcome.unwrap()[0])
///     .collect();
///     assert_eq!(squares, [1, 4, 9]);
/// });
/// ```
pub fn in_new_process<R: TestResult>(body: impl FnOnce() -> R) {
    in_new_process_within(DEFAULT_TIMEOUT, body)
}

/// [`in_new_process`] with a timeout: a body still running after `timeout`
/// is killed, with the processes it created, and the calling test fails.
///
/// ```
/// use pprocess::testing::in_new_process_within;
/// use std::time::Duration;
///
/// in_new_process_within(Duration::from_secs(60), || -> pprocess::Result<()> {
///     let mut channel = pprocess::start(|channel| Ok(channel.send(b"hi")?))?;
///     assert_eq!(channel.receive_vec()?, b"hi");
///     Ok(())
/// });
/// ```
pub fn in_new_process_within<R: TestResult>(timeout: Duration, body: impl FnOnce() -> R) {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("");
    let in_the_new_process = std::env::var_os(CHILD_VARIABLE).is_some_and(|v| v == name);
    if in_the_new_process {
        take_fork_contract_if_only_the_harness_waits();
    }
    if in_the_new_process || !sys::fork_refused(false) {
        body().check();
        if std::env::var_os(CHILD_VARIABLE).is_some() {
            println!("{FINISHED}");
        }
        return;
    }
    if name.is_empty() || name == "main" {
        panic!(
            "pprocess::testing::in_new_process: this process has other threads, and this \
             thread is not a test's thread (libtest names it after the test), so the test \
             cannot be run again on its own"
        );
    }
    match run_alone(name, timeout) {
        Ok(output) => print!("{output}"),
        Err(failure) => panic!("{failure}"),
    }
}

/// In the new process: takes fork's contract when the only other thread
/// is the harness's main thread (this thread is the test's, not "main"),
/// which waits for this test and holds no lock meanwhile.
fn take_fork_contract_if_only_the_harness_waits() {
    match threads() {
        Some(2) => sys::allow_threads(),
        Some(1) => {}
        count => eprintln!(
            "pprocess::testing: {count:?} threads in the test's own process (expected the \
             harness's and the test's): forking stays refused"
        ),
    }
}

/// This process's thread count, from /proc/self/status.
fn threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Threads:"))?;
    line["Threads:".len()..].trim().parse().ok()
}

/// Runs the test `name` alone in a new copy of this binary: its output if
/// its body ran and passed, or why not.
fn run_alone(name: &str, timeout: Duration) -> Result<String, String> {
    let mut log = output_file().map_err(|e| format!("cannot make a file for the output: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the test binary: {e}"))?;
    let stdout = log.try_clone().map_err(|e| e.to_string())?;
    let stderr = log.try_clone().map_err(|e| e.to_string())?;
    let mut child = Command::new(&exe)
        .args([name, "--exact", "--test-threads=1", "--include-ignored"])
        .arg("--nocapture")
        .env(CHILD_VARIABLE, name)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        // Its own process group: on timeout, it and every process it
        // created are killed together.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let ended = wait_within(&mut child, timeout);
    let mut output = String::new();
    let _ = log.rewind().and_then(|()| log.read_to_string(&mut output));
    let output = format!("--- the output of the test's own process\n{output}--- end\n");
    match ended {
        Err(why) => Err(format!("test {name}: {why}\n{output}")),
        Ok(status) if !status.success() => Err(format!(
            "test {name} failed in its own process ({status})\n{output}"
        )),
        Ok(_) if !output.contains(FINISHED) => Err(format!(
            "test {name}: its own process ran no test of that name (run with `{} {name} \
             --exact`)\n{output}",
            exe.display()
        )),
        Ok(_) => Ok(output),
    }
}

/// Waits for `child`; past `timeout`, kills its process group and waits.
/// Polled: the standard library has no wait with a timeout, and a waiting
/// thread could reap the child just before a kill meant for it.
fn wait_within(child: &mut std::process::Child, timeout: Duration) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            // Not reaped yet: the group is still this child's.
            let _ = sys::kill_group(child.id() as sys::Pid, sys::SIGKILL);
            let status = child.wait().map_err(|e| e.to_string())?;
            return Err(format!(
                "still running after {timeout:?}: killed with every process it created \
                 ({status})"
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// A new file for the output of the test's process, already unlinked: it
/// goes away with the last descriptor, and a process the test left behind
/// cannot keep a pipe open and stall the read.
fn output_file() -> std::io::Result<File> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "pprocess-test-{}-{}",
        sys::getpid(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}
