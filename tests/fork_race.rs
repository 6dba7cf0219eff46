//! Descriptors made by other threads while the library forks (under fork's
//! contract, as a C program with threads or a test harness forks): a
//! created process never inherits one of them, because the fork waits for
//! every descriptor being made to be registered, and the new process
//! closes every registered one but its own channel.

mod fork_contract;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pprocess::{start, Channel, RemoteError};

/// The sockets this process holds.
fn sockets() -> Result<usize, RemoteError> {
    let mut count = 0;
    for entry in std::fs::read_dir("/proc/self/fd").map_err(|_| RemoteError::new(1, "ls"))? {
        let path = entry.map_err(|_| RemoteError::new(1, "entry"))?.path();
        if let Ok(link) = std::fs::read_link(&path) {
            count += usize::from(link.to_string_lossy().starts_with("socket:"));
        }
    }
    Ok(count)
}

/// (Regression: a socket pair made by another thread between its system
/// call and its registration was inherited, and stayed open, in a process
/// created at that moment.)
#[test]
fn a_created_process_inherits_no_socket_another_thread_is_making() {
    let stop = Arc::new(AtomicBool::new(false));
    let makers: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    drop(Channel::pair().unwrap());
                }
            })
        })
        .collect();
    let mut extra = Vec::new();
    for round in 0..300 {
        let mut ch = start(|ch| {
            let count = sockets()? as u32;
            ch.send_value(&count)?;
            Ok(())
        })
        .unwrap();
        let count: u32 = ch.receive_value().unwrap();
        if count != 1 {
            extra.push((round, count));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for maker in makers {
        maker.join().unwrap();
    }
    assert!(
        extra.is_empty(),
        "rounds with sockets beside their own: {extra:?}"
    );
}
