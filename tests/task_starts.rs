//! Starting tasks: a start that fails leaves no trace (issue 12, defects 1
//! and 6). Each test fails on the engine before it: an oversized argument
//! for a reused worker forked and killed workers forever, and a start that
//! failed still ran its task later.

mod fork_contract;
mod hardening;

use std::time::Duration;

use hardening::Watchdog;
use pprocess::wire::DEFAULT_MAX_MESSAGE;
use pprocess::{Channel, Error, Options, Queue, RemoteError, TaskId};

fn echo(ch: &mut Channel, args: &[u8]) -> Result<(), RemoteError> {
    ch.send(args).map_err(RemoteError::from)
}

/// Defect 1: arguments over the maximum message size cannot reach a reused
/// worker: `TooBig` from the start itself, nothing started or queued, and
/// the task id is not used up.
#[test]
fn a_reused_task_with_oversized_arguments_is_refused_before_anything_starts() {
    let _watchdog = Watchdog::new("oversized arguments", Duration::from_secs(60));
    let options = Options {
        reuse: true,
        ..Options::default()
    };
    let mut queue = Queue::with_options(2, options);
    let big = vec![0u8; DEFAULT_MAX_MESSAGE + 1];
    assert_eq!(
        queue.start_with(echo, &big),
        Err(Error::TooBig {
            size: big.len(),
            capacity: DEFAULT_MAX_MESSAGE
        })
    );
    assert_eq!(queue.active_count(), 0, "no worker was started");
    assert_eq!(queue.waiting(), 0, "nothing was queued");
    assert_eq!(queue.start_with(echo, b"small"), Ok(TaskId::new(0)));
    let results: Vec<_> = queue.by_ref().collect();
    assert_eq!(results, vec![Ok(b"small".to_vec())]);
}

/// Opens descriptors until the table is full; returns them.
fn fill_descriptor_table() -> Vec<i32> {
    let mut fds = Vec::new();
    loop {
        // SAFETY: dup of stdin; the result is checked and kept to be closed.
        let fd = unsafe { libc::dup(0) };
        if fd < 0 {
            return fds;
        }
        fds.push(fd);
    }
}

/// Defect 6: a start that fails (here `EMFILE`: no socket for the new
/// process) is not run later: the caller's retry is the only run.
#[test]
fn a_start_that_failed_never_runs() {
    let _watchdog = Watchdog::new("failed start", Duration::from_secs(60));
    // In a process of its own: it lowers its descriptor limit.
    let mut child = pprocess::start(|report| {
        let limit = libc::rlimit {
            rlim_cur: 256,
            rlim_max: 256,
        };
        // SAFETY: setrlimit with a valid struct.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(RemoteError::new(1, "setrlimit"));
        }
        let mut queue = Queue::with_options(1, Options::default());
        let fds = fill_descriptor_table();
        let failed = queue.start(|ch| ch.send(b"ran").map_err(RemoteError::from));
        for fd in fds {
            // SAFETY: closing descriptors this process opened above.
            unsafe { libc::close(fd) };
        }
        report.send_value(&failed.map_or_else(|e| e.code(), |_| 0))?;
        let runs = queue.by_ref().count() as u32;
        report.send_value(&runs).map_err(RemoteError::from)
    })
    .unwrap();
    assert_eq!(child.receive_value::<i32>().unwrap(), -libc::EMFILE);
    assert_eq!(
        child.receive_value::<u32>().unwrap(),
        0,
        "the failed task ran"
    );
}
