//! Allocation failure is `ENOMEM`, never an abort: a 60 MiB message
//! received under an address-space limit too small for it fails with
//! `ENOMEM` and stays queued, so the same receive succeeds once there is
//! room. Each test runs in a process of its own (made with `create`), which
//! lowers its own `RLIMIT_AS`: an abort there is its exit by `SIGABRT`.
//!
//! No test harness (`harness = false`): the harness runs tests in threads,
//! and a thread's malloc arena reserves 64 MiB that `RLIMIT_AS` already
//! counts, so a process forked from one could still find room for 60 MiB.
//! Here the tests run one after the other on the main thread.

mod capi;
mod isolated;
mod skip;

use pprocess::{start, Channel, Error, Options, Queue};

const BIG: usize = 60 << 20;
const ENOMEM: Error = Error::Os(libc::ENOMEM);

use isolated::run as isolated;

/// This process's address-space size, in bytes (`VmSize`).
fn address_space() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Sets the soft `RLIMIT_AS` (the hard one stays, so it can be raised again).
fn limit_address_space(bytes: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit to fill and then to pass.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_AS, &mut limit), 0);
        limit.rlim_cur = bytes.min(limit.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &limit), 0);
    }
}

/// Room for small allocations, none for a second 60 MiB.
fn tight() {
    limit_address_space(address_space() + (16 << 20));
}

fn roomy() {
    limit_address_space(u64::MAX);
}

/// A process that sends one 60 MiB message.
fn big_sender() -> Result<Channel, String> {
    start(|ch| Ok(ch.send(&vec![7u8; BIG])?)).map_err(|e| e.to_string())
}

fn receive_vec_of_a_message_too_big_for_memory_is_enomem_and_keeps_it() -> Result<(), String> {
    isolated(|| {
        let mut channel = big_sender()?;
        tight();
        let first = channel.receive_vec();
        roomy();
        if first != Err(ENOMEM) {
            return Err(format!("under the limit: {:?}", first.map(|m| m.len())));
        }
        match channel.receive_vec() {
            Ok(message) if message.len() == BIG => Ok(()),
            other => Err(format!("then: {:?}", other.map(|m| m.len()))),
        }
    })
}

#[cfg(feature = "capi")]
fn pp_receive_alloc_of_a_message_too_big_for_memory_is_enomem_and_keeps_it() -> Result<(), String> {
    use capi::{pp_channel, pp_channel_close, pp_free, pp_receive_alloc, pp_send, pp_start};

    unsafe extern "C" fn send_big(
        ch: *mut pp_channel,
        _: *const core::ffi::c_void,
        _: usize,
    ) -> i32 {
        let big = vec![7u8; BIG];
        // SAFETY: the handle pp_start passes, and a live buffer.
        unsafe { pp_send(ch, big.as_ptr().cast(), big.len()) }
    }
    isolated(|| {
        let mut handle: *mut pp_channel = std::ptr::null_mut();
        let mut data: *mut core::ffi::c_void = std::ptr::null_mut();
        let mut len = 0usize;
        // SAFETY: the calls as include/pprocess.h documents them; `data`
        // is freed and `handle` closed once.
        unsafe {
            let pid = pp_start(Some(send_big), std::ptr::null(), 0, &mut handle);
            if pid <= 0 {
                return Err(format!("pp_start: {pid}"));
            }
            tight();
            let first = pp_receive_alloc(handle, &mut data, &mut len);
            roomy();
            if first != -libc::ENOMEM {
                return Err(format!("under the limit: {first}"));
            }
            let then = pp_receive_alloc(handle, &mut data, &mut len);
            pp_free(data);
            pp_channel_close(handle);
            match (then, len) {
                (0, BIG) => Ok(()),
                other => Err(format!("then: {other:?}")),
            }
        }
    })
}

/// Without the `capi` feature (the published crate drops its dev-dependency
/// on itself with `capi`) the C ABI is not linked in: skipped, with a note.
#[cfg(not(feature = "capi"))]
fn pp_receive_alloc_of_a_message_too_big_for_memory_is_enomem_and_keeps_it() -> Result<(), String> {
    skip::skip_result(
        "pp_receive_alloc_of_a_message_too_big_for_memory_is_enomem_and_keeps_it needs the capi \
         feature (cargo test --features capi)",
    )
}

fn a_queue_result_too_big_for_memory_is_enomem_and_kept() -> Result<(), String> {
    isolated(|| {
        let mut queue = Queue::with_options(1, Options::default());
        queue
            .start(|ch| Ok(ch.send(&vec![7u8; BIG])?))
            .map_err(|e| e.to_string())?;
        tight();
        let first = queue
            .next_result(-1)
            .map(|(_, outcome)| outcome.map(|m| m.len()));
        roomy();
        if !matches!(first, Err(e) if e == ENOMEM) {
            return Err(format!("under the limit: {first:?}"));
        }
        match queue.next() {
            Some(Ok(message)) if message.len() == BIG => Ok(()),
            other => Err(format!("then: {:?}", other.map(|o| o.map(|m| m.len())))),
        }
    })
}

fn a_keeper_without_memory_for_a_result_reports_enomem_instead_of_aborting() -> Result<(), String> {
    isolated(|| {
        let address = std::env::temp_dir().join(format!("pp-nomem-{}", std::process::id()));
        // Allocated before the limit: the process that sends it inherits it.
        let big = vec![7u8; BIG];
        tight();
        let started = pprocess::start_persistent(&address, move |ch| Ok(ch.send(&big)?));
        roomy();
        started.map_err(|e| e.to_string())?;
        let mut client = pprocess::connect_persistent(&address).map_err(|e| e.to_string())?;
        let answer = client.receive_vec().map(|m| m.len());
        let code = client.remote_error().map(|r| r.code());
        match (answer, code) {
            (Err(Error::Remote { .. }), Some(code)) if code == -libc::ENOMEM => Ok(()),
            other => Err(format!("the client got {other:?}")),
        }
    })
}

fn a_keeper_without_memory_for_a_clients_message_refuses_it_and_serves_on() -> Result<(), String> {
    isolated(|| {
        let address = std::env::temp_dir().join(format!("pp-nomem-in-{}", std::process::id()));
        let big = vec![7u8; BIG];
        tight();
        let started = pprocess::start_persistent(&address, |ch| Ok(ch.send(b"result")?));
        roomy();
        started.map_err(|e| e.to_string())?;
        let mut first = pprocess::connect_persistent(&address).map_err(|e| e.to_string())?;
        // Refused (the keeper has no room for it): the send fails, or
        // succeeds into the socket before the keeper hangs up.
        let _refused_or_buffered = first.send(&big);
        drop(first);
        // The keeper lives on: the result goes to the next client.
        let mut second = pprocess::connect_persistent(&address).map_err(|e| e.to_string())?;
        match second.receive_vec() {
            Ok(result) if result == b"result" => Ok(()),
            other => Err(format!("the next client got {other:?}")),
        }
    })
}

fn main() {
    type Test = (&'static str, fn() -> Result<(), String>);
    let tests: [Test; 5] = [
        (
            "receive_vec_of_a_message_too_big_for_memory_is_enomem_and_keeps_it",
            receive_vec_of_a_message_too_big_for_memory_is_enomem_and_keeps_it,
        ),
        (
            "pp_receive_alloc_of_a_message_too_big_for_memory_is_enomem_and_keeps_it",
            pp_receive_alloc_of_a_message_too_big_for_memory_is_enomem_and_keeps_it,
        ),
        (
            "a_queue_result_too_big_for_memory_is_enomem_and_kept",
            a_queue_result_too_big_for_memory_is_enomem_and_kept,
        ),
        (
            "a_keeper_without_memory_for_a_result_reports_enomem_instead_of_aborting",
            a_keeper_without_memory_for_a_result_reports_enomem_instead_of_aborting,
        ),
        (
            "a_keeper_without_memory_for_a_clients_message_refuses_it_and_serves_on",
            a_keeper_without_memory_for_a_clients_message_refuses_it_and_serves_on,
        ),
    ];
    let mut failed = 0;
    for (name, test) in tests {
        match test() {
            Ok(()) => println!("test {name} ... ok"),
            Err(why) => {
                failed += 1;
                println!("test {name} ... FAILED: {why}");
            }
        }
    }
    let passed = tests.len() - failed;
    let result = if failed == 0 { "ok" } else { "FAILED" };
    println!("test result: {result}. {passed} passed; {failed} failed");
    std::process::exit(i32::from(failed > 0));
}
