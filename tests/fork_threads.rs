//! Forking is sound: the safe calls refuse to fork a process that has other
//! threads (the test harness runs every test in a thread of its own, so this
//! binary, which never takes fork's contract, always has them); the
//! `unsafe` variants and the C calls fork all the same.

mod capi;
mod skip;

use pprocess::{create, start, start_persistent, Error, Options, Queue};

#[test]
fn safe_calls_refuse_to_fork_a_process_with_other_threads() {
    assert_eq!(create().err(), Some(Error::Threads));
    assert_eq!(start(|_| Ok(())).err(), Some(Error::Threads));
    let mut queue = Queue::with_options(2, Options::default());
    assert_eq!(
        queue.call(|x: &[u8]| Ok(x.to_vec()), b"x").err(),
        Some(Error::Threads)
    );
    let dir = std::env::temp_dir().join(format!("pp-threads-{}", std::process::id()));
    assert_eq!(
        start_persistent(&dir, |_| Ok(())).err(),
        Some(Error::Threads)
    );
    assert!(!dir.exists(), "a refused start leaves no socket file");
    let inputs = [1u64, 2, 3];
    assert_eq!(
        pprocess::pmap_records(|x: &u64| Ok(*x), &inputs, 2).err(),
        Some(Error::Threads)
    );
    assert_eq!(Error::Threads.code(), -1012);
}

#[test]
fn the_unsafe_variants_fork_in_a_process_with_other_threads() {
    // SAFETY: the callable only sends on its own channel; the process then
    // leaves with _exit.
    let mut channel = unsafe { pprocess::start_unchecked(|ch| Ok(ch.send(b"hi")?)) }.unwrap();
    assert_eq!(channel.receive_vec().unwrap(), b"hi");
    assert!(channel.wait().unwrap().success());
}

#[test]
fn a_single_threaded_created_process_may_use_the_safe_calls() {
    // SAFETY: as above; the created process has one thread, so its own
    // `start` is allowed.
    let mut channel = unsafe {
        pprocess::start_unchecked(|ch| {
            let mut inner = start(|inner| Ok(inner.send(b"inner")?))?;
            let answer = inner.receive_vec()?;
            Ok(ch.send(&answer)?)
        })
    }
    .unwrap();
    assert_eq!(channel.receive_vec().unwrap(), b"inner");
}

#[cfg(feature = "capi")]
#[test]
fn c_calls_fork_as_fork_does() {
    use capi::{pp_channel, pp_channel_close, pp_channel_wait, pp_receive, pp_send, pp_start};

    unsafe extern "C" fn echo(
        ch: *mut pp_channel,
        arg: *const core::ffi::c_void,
        len: usize,
    ) -> i32 {
        // SAFETY: the handle and argument pp_start passes.
        unsafe { pp_send(ch, arg, len) }
    }
    let mut handle: *mut pp_channel = std::ptr::null_mut();
    let mut buf = [0u8; 4];
    let mut len = 0usize;
    let mut status = -1;
    // SAFETY: the calls as include/pprocess.h documents them, with live
    // buffers; `handle` is closed once.
    unsafe {
        let pid = pp_start(Some(echo), b"c".as_ptr().cast(), 1, &mut handle);
        assert!(pid > 0, "pp_start: {pid}");
        assert_eq!(
            pp_receive(handle, buf.as_mut_ptr().cast(), buf.len(), &mut len),
            0
        );
        assert_eq!(&buf[..len], b"c");
        assert_eq!(pp_channel_wait(handle, &mut status), pid);
        pp_channel_close(handle);
    }
    assert_eq!(status, 0);
}

/// Without the `capi` feature (the published crate drops its dev-dependency
/// on itself with `capi`) the C ABI is not linked in: skipped, with a note.
#[cfg(not(feature = "capi"))]
#[test]
fn c_calls_fork_as_fork_does() {
    skip::skip("c_calls_fork_as_fork_does needs the capi feature (cargo test --features capi)");
}
