//! The keeper's protocol with its clients: a stream ends with an explicit
//! end frame (a keeper that dies is never taken for a complete delivery),
//! an acknowledgement of a frame never sent is refused, and no client can
//! hold the keeper up, nor can its own callable.

mod background;
mod fork_contract;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use background::*;
use pprocess::{connect_persistent, start_persistent, Error, Queue};

/// What a keeper holds of each side's frames before it stops reading that
/// side (the README's limits: 32 MiB, bookkeeping included).
const OUTBOX_BYTES: usize = 32 << 20;

/// Kills a keeper (the test's stand-in for a crash).
fn kill(pid: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    eventually(&format!("process {pid} dies"), || !alive(pid));
}

#[test]
fn a_killed_keeper_is_an_error_not_the_end_of_the_results() {
    let mut scratch = Scratch::new("killed");
    let path = scratch.path("task.socket");
    let keeper = scratch.track(start_persistent(&path, numbers(0..5)).unwrap());
    let mut ch = connect_persistent(&path).unwrap();
    assert_eq!(take(&mut ch, 2), [0, 1]);
    kill(keeper);
    // What was already on its way still arrives; then the cut is reported.
    let (rest, end) = collect(&mut ch);
    assert!(rest.len() <= 3, "{rest:?}");
    assert_eq!(end, Some(Error::StreamBroken));
    assert_eq!(Error::StreamBroken.code(), PP_EPEER);
}

#[test]
fn a_background_queue_reports_a_killed_keeper() {
    let mut scratch = Scratch::new("killed-queue");
    let path = scratch.path("task.socket");
    let keeper = scratch.track(start_persistent(&path, numbers(0..5)).unwrap());
    let mut queue = Queue::background(&path).unwrap();
    let first: Vec<_> = queue.by_ref().take(2).map(|r| num(&r.unwrap())).collect();
    assert_eq!(first, [0, 1]);
    kill(keeper);
    let rest: Vec<_> = queue.collect();
    let failure = rest.last().expect("an outcome for the cut").as_ref();
    assert_eq!(
        failure.err().map(|e| e.error),
        Some(Error::StreamBroken),
        "{rest:?}"
    );
}

/// An acknowledgement frame of `seq`, as a raw client writes it.
fn ack_frame(seq: u32) -> Vec<u8> {
    let mut frame = vec![0x50, 0x50, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0];
    frame.extend_from_slice(&seq.to_le_bytes());
    frame
}

#[test]
fn an_ack_of_a_frame_never_sent_releases_nothing() {
    let mut scratch = Scratch::new("bad-ack");
    let path = scratch.path("task.socket");
    let keeper = scratch.track(start_persistent(&path, numbers(0..50)).unwrap());

    let mut raw = UnixStream::connect(&path).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut first = [0u8; 16];
    raw.read_exact(&mut first).unwrap(); // results are in flight to it
    raw.write_all(&ack_frame(1000)).unwrap();
    // It is refused and disconnected.
    let mut rest = Vec::new();
    raw.read_to_end(&mut rest).unwrap();
    drop(raw);

    let mut ch = connect_persistent(&path).unwrap();
    assert_eq!(collect(&mut ch), ((0..50).collect(), None));
    assert_finished(keeper, &path);
}

#[test]
fn a_client_that_stops_mid_frame_and_never_reads_holds_nobody_up() {
    const MIB: usize = 1 << 20;
    let mut scratch = Scratch::new("stuck");
    let path = scratch.path("task.socket");
    let keeper = scratch.track(
        start_persistent(&path, |ch| {
            for k in 0..8u8 {
                ch.send(&vec![k; MIB])?;
            }
            Ok(())
        })
        .unwrap(),
    );
    // Five bytes of a header, then nothing: it never reads either.
    let mut stuck = UnixStream::connect(&path).unwrap();
    stuck.write_all(&ack_frame(0)[..5]).unwrap();

    let mut ch = connect_persistent(&path).unwrap();
    for k in 0..8u8 {
        let result = ch.receive_vec_timeout(TIMEOUT_MS).unwrap();
        assert_eq!((result.len(), result[0]), (MIB, k));
    }
    assert_eq!(ch.receive_vec_timeout(TIMEOUT_MS), Err(Error::Closed));
    drop(stuck);
    assert_finished(keeper, &path);
}

/// Writes all of `bytes` to descriptor `fd` with one system call each time
/// (the first one takes everything that fits the socket buffer at once).
fn write_raw(fd: i32, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is valid for reads of its length.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        assert!(n > 0, "write: {}", std::io::Error::last_os_error());
        bytes = &bytes[n as usize..];
    }
}

#[test]
fn a_callable_stopped_in_the_middle_of_a_frame_holds_no_client_up() {
    use pprocess::wire::{Header, Kind, HEADER_LEN, READ_AHEAD};
    const MIB: usize = 1 << 20;
    const SENT: usize = 500;
    let mut scratch = Scratch::new("callable-stalled");
    let path = scratch.path("task.socket");
    let keeper = scratch.track(
        start_persistent(&path, |ch| {
            // Its pid as a first result, and the header and the first bytes
            // of a second one, written together so that the keeper reads
            // them together; then it stops until the client lets it go on.
            let pid = std::process::id().to_le_bytes();
            let mut bytes = Header::new(Kind::Data, 0, 4, 1).encode().to_vec();
            bytes.extend_from_slice(&pid);
            bytes.extend_from_slice(&Header::new(Kind::Data, 0, MIB as u32, 2).encode());
            let payload = vec![7u8; MIB];
            bytes.extend_from_slice(&payload[..SENT]);
            const { assert!(2 * HEADER_LEN + 4 + SENT <= READ_AHEAD) };
            write_raw(ch.raw_fd(), &bytes);
            // SAFETY: raise has no memory-safety preconditions.
            unsafe { libc::raise(libc::SIGSTOP) };
            write_raw(ch.raw_fd(), &payload[SENT..]);
            Ok(())
        })
        .unwrap(),
    );

    // The keeper serves the result sent before the stalled frame.
    let mut ch = connect_persistent(&path).unwrap();
    let callable = num(&ch.receive_vec_timeout(TIMEOUT_MS).unwrap()) as i32;
    scratch.track(callable);
    eventually("the callable stops", || state(callable) == Some('T'));
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(callable, libc::SIGCONT) }, 0);
    // The frame is resumed where it stopped, whole.
    let rest = ch.receive_vec_timeout(TIMEOUT_MS).unwrap();
    assert_eq!(rest, vec![7u8; MIB]);
    assert_eq!(ch.receive_vec_timeout(TIMEOUT_MS), Err(Error::Closed));
    assert_finished(keeper, &path);
}

/// A keeper's peak resident memory (`VmHWM`) and current one (`VmRSS`), in
/// bytes, from `/proc/<pid>/status`.
fn memory(pid: i32) -> (usize, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Writes up to `count` empty data frames to `fd` (non-blocking), until
/// they are all written or the peer has taken nothing for `quiet_ms`
/// (it stopped reading). Returns the frames written whole.
fn flood(fd: i32, count: usize, quiet_ms: i32) -> usize {
    let frame = |seq: u32| {
        let mut header = [0u8; 24];
        header[..2].copy_from_slice(&0x5050u16.to_le_bytes());
        header[2] = 2; // version
        header[3] = 1; // data
        header[12..16].copy_from_slice(&seq.to_le_bytes());
        header
    };
    let batch: Vec<u8> = (1..=2048u32).flat_map(frame).collect();
    // SAFETY: fcntl on a descriptor the caller's channel owns.
    unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
    let (mut written, total) = (0usize, count * 24);
    while written < total {
        let at = written % batch.len();
        let len = (batch.len() - at).min(total - written);
        // SAFETY: a live buffer of `len` bytes.
        let n = unsafe { libc::send(fd, batch[at..].as_ptr().cast(), len, libc::MSG_NOSIGNAL) };
        if n > 0 {
            written += n as usize;
            continue;
        }
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EAGAIN)
        );
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one live pollfd.
        if unsafe { libc::poll(&mut pfd, 1, quiet_ms) } == 0 {
            break;
        }
    }
    written / 24
}

#[test]
fn a_flood_of_empty_messages_is_bounded_in_the_keeper() {
    const MESSAGES: usize = 4 << 20;
    let mut scratch = Scratch::new("flood");
    let path = scratch.path("deaf.socket");
    // The callable takes nothing until told to go (a pipe it inherits).
    let mut go = [0i32; 2];
    // SAFETY: a live array of two descriptors.
    assert_eq!(unsafe { libc::pipe(go.as_mut_ptr()) }, 0);
    let (wait, release) = (go[0], go[1]);
    let keeper = scratch.track(
        start_persistent(&path, move |_| {
            let mut byte = 0u8;
            // SAFETY: a one-byte read into a live byte.
            unsafe { libc::read(wait, (&mut byte as *mut u8).cast(), 1) };
            Ok(())
        })
        .unwrap(),
    );
    // SAFETY: the creator's copy of the read end is not needed.
    unsafe { libc::close(wait) };
    let client = connect_persistent(&path).unwrap();
    let (_, before) = memory(keeper);
    let sent = flood(client.raw_fd(), MESSAGES, 3000);
    let (peak, _) = memory(keeper);
    let grown = peak.saturating_sub(before);
    // The bound counts each message with its bookkeeping; the queue's
    // growth may hold up to twice that for an instant.
    let bound = 2 * OUTBOX_BYTES;
    assert!(
        grown <= bound,
        "{sent} empty messages grew the keeper by {} MiB (bound {} MiB)",
        grown >> 20,
        bound >> 20
    );
    assert!(sent < MESSAGES, "the keeper stopped reading the client");
    drop(client);
    // SAFETY: a one-byte write to the pipe's write end, then its close.
    unsafe {
        libc::write(release, b"g".as_ptr().cast(), 1);
        libc::close(release);
    }
    // Every message the client sent whole is reported untaken (in one error
    // result, or more if some were read after the callable finished).
    let mut ch = connect_persistent(&path).unwrap();
    let mut untaken = 0;
    loop {
        match ch.receive_vec_timeout(TIMEOUT_MS) {
            Err(Error::Remote { code: -1000 }) => {
                let message = ch.remote_error().unwrap().message();
                let count = message
                    .split(' ')
                    .find_map(|word| word.parse::<usize>().ok());
                untaken += count.expect("a count in the report");
            }
            Err(Error::Closed) => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(untaken, sent);
    assert_finished(keeper, &path);
}
