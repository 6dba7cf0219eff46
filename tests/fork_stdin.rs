//! Defect 4 of issue 20: a fork must not wait for the lock of a C stdio
//! stream that another thread holds. A thread blocked in `fgets(stdin)`
//! holds stdin's lock until a line arrives; `fflush(NULL)` before the fork
//! waited for it, so the fork never returned. This binary holds one test:
//! it points its own standard input at a pipe nobody writes to.

use std::ffi::c_int;
use std::sync::mpsc;
use std::time::Duration;

extern "C" {
    static mut stdin: *mut libc::FILE;
    fn ftrylockfile(stream: *mut libc::FILE) -> c_int;
    fn funlockfile(stream: *mut libc::FILE);
}

/// Fails the test (the whole binary) if `done` does not come in time.
fn watchdog(what: &'static str) -> mpsc::Sender<()> {
    let (done, wait) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if wait.recv_timeout(Duration::from_secs(60)).is_err() {
            eprintln!("{what}: still waiting after 60 s: hung");
            // SAFETY: ends the process at once; `exit` would flush C stdio
            // and wait for the very lock that hangs the test.
            unsafe { libc::_exit(101) };
        }
    });
    done
}

#[test]
fn a_fork_returns_while_another_thread_reads_stdin() {
    let mut pipe = [0 as c_int; 2];
    // SAFETY: plain calls with a live array; the write end stays open (and
    // silent), so a read of the pipe blocks.
    unsafe {
        assert_eq!(libc::pipe(pipe.as_mut_ptr()), 0);
        assert_eq!(libc::dup2(pipe[0], 0), 0);
    }
    std::thread::spawn(|| {
        let mut line = [0 as libc::c_char; 64];
        // SAFETY: a live buffer of its length; stdin is glibc's stream.
        unsafe { libc::fgets(line.as_mut_ptr(), line.len() as c_int, stdin) };
    });
    // Wait until the reader holds stdin's lock (it keeps it while fgets
    // blocks): a try-lock from here then fails.
    loop {
        // SAFETY: try-lock and unlock of glibc's stdin, never waiting.
        let free = unsafe { ftrylockfile(stdin) } == 0;
        if !free {
            break;
        }
        // SAFETY: the lock just taken.
        unsafe { funlockfile(stdin) };
        std::thread::yield_now();
    }
    // Some output buffered in C stdio (fully buffered on the pipe or file the
    // harness gives, or written at once on a terminal): flushed, not lost.
    // SAFETY: a NUL-terminated format without conversions.
    unsafe { libc::printf(c"buffered before the fork\n".as_ptr()) };
    let done = watchdog("start while a thread reads stdin");
    // SAFETY: the created process only sends on its own channel, then
    // leaves with _exit.
    let mut channel =
        unsafe { pprocess::start_unchecked(|ch| Ok(ch.send(b"forked")?)) }.expect("start");
    assert_eq!(channel.receive_vec().unwrap(), b"forked");
    assert!(channel.wait().unwrap().success());
    done.send(()).unwrap();
}
