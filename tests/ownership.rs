//! The library collects every process it created, and only those: no table
//! of processes to collect later drops one, and a pid the program collected
//! itself, then reused for one of the program's own children, is never
//! collected by the library.
//!
//! Each test runs in a process of its own (made with `create`), so that
//! it can wait for "any child" without meeting another test's.

mod fork_contract;
mod isolated;
mod skip;
use skip::skip_result;

use pprocess::exchange::Growable;
use pprocess::{start, Channel, Exchange, Options, StoreData, TaskId};

/// Runs `body` in a process of its own and asserts that it succeeded.
fn isolated(body: fn() -> Result<(), String>) {
    if let Err(why) = isolated::run(body) {
        panic!("{why}");
    }
}

fn pipe() -> (i32, i32) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    (fds[0], fds[1])
}

/// Blocks until `fd` reaches its end (every writer closed it).
fn read_to_end(fd: i32) {
    let mut byte = 0u8;
    // SAFETY: one byte into a local.
    while unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) } > 0 {}
}

/// Waits until `pid` has ended, without collecting it.
fn wait_ended(pid: i32) -> Result<(), String> {
    // SAFETY: an all-zero siginfo_t is valid; waitid writes into it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOWAIT;
    // SAFETY: as above.
    match unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) } {
        0 => Ok(()),
        _ => Err(format!(
            "waitid({pid}): {}",
            std::io::Error::last_os_error()
        )),
    }
}

/// A child of this process that has ended and is not collected, if any.
fn a_zombie() -> Option<i32> {
    // SAFETY: as in `wait_ended`.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOWAIT | libc::WNOHANG;
    // SAFETY: as above.
    let rc = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, flags) };
    // SAFETY: filled by waitid, or zeroed.
    let pid = unsafe { info.si_pid() };
    (rc == 0 && pid != 0).then_some(pid)
}

/// True while this process has a child, running or not collected.
fn has_children() -> bool {
    // SAFETY: as in `wait_ended`.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOWAIT | libc::WNOHANG;
    // SAFETY: as above.
    unsafe { libc::waitid(libc::P_ALL, 0, &mut info, flags) == 0 }
}

#[test]
fn closing_300_running_children_leaves_no_zombie() {
    isolated(|| {
        let (go, go_writer) = pipe();
        let mut channels = Vec::new();
        for _ in 0..300 {
            let channel = start(move |channel| {
                // SAFETY: this process's copy of the writer.
                unsafe { libc::close(go_writer) };
                let _closed = channel.receive(&mut [0u8; 1]);
                read_to_end(go);
                Ok(())
            })
            .map_err(|e| e.to_string())?;
            channels.push(channel);
        }
        let pids: Vec<i32> = channels.iter().map(Channel::pid).collect();
        // Closed while every process still runs (each waits for `go`).
        drop(channels);
        // SAFETY: our writer; the processes now end.
        unsafe { libc::close(go_writer) };
        for pid in pids {
            wait_ended(pid)?;
        }
        // The next start collects what the closed channels left.
        start(|_| Ok(()))
            .and_then(|mut channel| channel.wait())
            .map_err(|e| e.to_string())?;
        match a_zombie() {
            None => Ok(()),
            Some(pid) => Err(format!("process {pid} was never collected")),
        }
    });
}

/// Stores nothing: the tasks below send nothing.
struct Nothing;

impl StoreData for Nothing {
    fn store_data(&mut self, channel: &mut Channel, _task: TaskId) -> pprocess::Result<()> {
        channel.receive_vec().map(drop)
    }
}

#[test]
fn finish_collects_every_process_that_outlived_its_channel() {
    isolated(|| {
        let (go, go_writer) = pipe();
        let options = Options {
            continuous: true,
            ..Options::default()
        };
        let mut exchange: Exchange<Growable, Nothing> = Exchange::new(100, options, Nothing);
        // More than the 64 an exchange used to hold (each costs the 200 ms
        // a hang-up waits for its process to end).
        for _ in 0..70 {
            match exchange.create().map_err(|e| e.to_string())? {
                pprocess::exchange::CreatedTask::Child(channel) => {
                    // SAFETY: this process's copy of the writer.
                    unsafe { libc::close(go_writer) };
                    drop(channel); // the task ends; the process runs on
                    read_to_end(go);
                    // SAFETY: _exit ends this process at once.
                    unsafe { libc::_exit(0) }
                }
                pprocess::exchange::CreatedTask::Parent { .. } => {}
            }
        }
        // Every channel ends while its process still runs (it waits for `go`).
        while exchange.active_count() > 0 {
            exchange.store(-1).map_err(|e| e.to_string())?;
        }
        // SAFETY: our writer; the processes now end.
        unsafe { libc::close(go_writer) };
        exchange.finish().map_err(|e| e.to_string())?;
        if has_children() {
            return Err("finish returned before every process was collected".into());
        }
        Ok(())
    });
}

/// `clone3` with `set_tid`: a child of this process with exactly `pid`,
/// which exits at once with status 7. `None` where the kernel refuses
/// (`set_tid` needs Linux 5.5 and `CAP_SYS_ADMIN`).
fn fork_with_pid(pid: i32) -> Option<i32> {
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    let tid = [pid as libc::pid_t];
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        set_tid: tid.as_ptr() as u64,
        set_tid_size: 1,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 without CLONE_VM behaves as fork; the caller is a
    // single-threaded test process, and the child only calls _exit.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match rc {
        // SAFETY: _exit is async-signal-safe.
        0 => unsafe { libc::_exit(7) },
        -1 => None,
        child => Some(child as i32),
    }
}

#[test]
fn a_pid_the_program_collected_and_reused_is_not_collected_by_the_library() {
    isolated(|| {
        let (go, go_writer) = pipe();
        let channel = start(move |channel| {
            // SAFETY: this process's copy of the writer.
            unsafe { libc::close(go_writer) };
            let _closed = channel.receive(&mut [0u8; 1]);
            read_to_end(go);
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        let pid = channel.pid();
        drop(channel); // still running: the library will collect it later
                       // SAFETY: our writer; the process now ends.
        unsafe { libc::close(go_writer) };
        // The program collects it itself...
        let mut status = 0;
        // SAFETY: `status` is a valid int.
        if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
            return Err("the program could not collect its child".into());
        }
        // ... and its pid goes to another child of the program's own.
        let Some(reused) = fork_with_pid(pid) else {
            return skip_result("this kernel refuses clone3 set_tid here (it needs CAP_SYS_ADMIN)");
        };
        assert_eq!(reused, pid);
        wait_ended(pid)?;
        // The library's next start must leave that child alone.
        start(|_| Ok(()))
            .and_then(|mut channel| channel.wait())
            .map_err(|e| e.to_string())?;
        // SAFETY: `status` is a valid int.
        match unsafe { libc::waitpid(pid, &mut status, 0) } {
            p if p == pid && libc::WEXITSTATUS(status) == 7 => Ok(()),
            _ => Err(format!(
                "the program's own child was taken: {}",
                std::io::Error::last_os_error()
            )),
        }
    });
}

#[test]
fn a_descriptor_the_registry_cannot_track_is_refused() {
    isolated(|| {
        let limit = libc::rlimit {
            rlim_cur: 65_536 + 64,
            rlim_max: 65_536 + 64,
        };
        // SAFETY: a valid rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return skip_result("cannot raise RLIMIT_NOFILE here (it needs CAP_SYS_RESOURCE)");
        }
        // Every descriptor below 65,536 in use: the next one is above.
        // SAFETY: a NUL-terminated path; dups of the descriptor it gives.
        let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
        while unsafe { libc::fcntl(null, libc::F_DUPFD, 0) } < 65_535 {}
        match Channel::pair() {
            Err(pprocess::Error::Os(libc::EMFILE)) => Ok(()),
            Err(e) => Err(format!("another error: {e}")),
            Ok((a, _)) => Err(format!("descriptor {} is not tracked", a.raw_fd())),
        }
    });
}
