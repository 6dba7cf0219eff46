//! waitall and zombie hygiene. One test per binary: waitall collects every
//! child of the process, so it must not race with other tests' children.

mod fork_contract;

use pprocess::{start, waitall, Error};

/// Zombie children of this process, from /proc.
fn zombies() -> usize {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid ...
            let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
            let mut fields = rest.split(' ');
            fields.next() == Some("Z") && fields.next() == Some(me.as_str())
        })
        .count()
}

/// Whether process `pid` has exited and waits to be collected; None once
/// it is gone (collected).
fn is_zombie(pid: i32) -> Option<bool> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(stat[stat.rfind(')').unwrap() + 2..].starts_with('Z'))
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn closed_channels_and_waitall_leave_no_zombies_or_descriptors() {
    let fds_before = fd_count();
    let mut channels = Vec::new();
    for i in 0..20u8 {
        channels.push(
            start(move |ch| {
                ch.send(&[i])?;
                Ok(())
            })
            .unwrap(),
        );
    }
    // Read half of them, close all without waiting.
    for ch in channels.iter_mut().take(10) {
        let mut b = [0u8; 1];
        assert_eq!(ch.receive(&mut b).unwrap(), 1);
        let mut b = [0u8; 1];
        assert_eq!(ch.receive(&mut b), Err(Error::Closed));
    }
    drop(channels);
    let collected = waitall().unwrap();
    assert!(collected <= 20);
    assert_eq!(zombies(), 0);
    assert_eq!(fd_count(), fds_before);
    // Nothing left to collect.
    assert_eq!(waitall().unwrap(), 0);

    // Closed channels of finished processes are collected by the next create,
    // even without waitall.
    for _ in 0..5 {
        let mut ch = start(|_| Ok(())).unwrap();
        let mut b = [0u8; 1];
        assert_eq!(ch.receive(&mut b), Err(Error::Closed));
    }
    let last = start(|_| Ok(())).unwrap();
    let pid = last.pid();
    drop(last);
    // Once it has exited (a zombie), the next create collects it. (A
    // process that had already exited when its channel was dropped was
    // collected by the drop: it is gone at once.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while is_zombie(pid) == Some(false) {
        assert!(std::time::Instant::now() < deadline, "{pid} never exited");
        std::thread::yield_now();
    }
    let _trigger = start(|_| Ok(())).unwrap();
    assert!(zombies() <= 1, "zombies: {}", zombies());
    waitall().unwrap();
    assert_eq!(zombies(), 0);
}
