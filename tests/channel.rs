//! Channels between a creator and its created processes.

mod fork_contract;
mod hardening;

use bytemuck::{Pod, Zeroable};
use pprocess::{create, exit, start, Channel, Created, Error, RemoteError};
use std::os::fd::AsRawFd;

#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C)]
struct Point {
    x: f64,
    y: f64,
    tag: u32,
    _pad: u32,
}

/// Echoes every message back until the creator closes the channel.
fn echo(ch: &mut Channel) -> Result<(), RemoteError> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match ch.receive(&mut buf) {
            Ok(n) => ch.send(&buf[..n])?,
            Err(Error::Closed) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

#[test]
fn bytes_ping_pong() {
    let mut ch = start(echo).unwrap();
    let mut buf = [0u8; 64];
    for i in 0..1000u32 {
        let msg = [i as u8; 64];
        ch.send(&msg).unwrap();
        assert_eq!(ch.receive(&mut buf).unwrap(), 64);
        assert_eq!(buf, msg);
    }
    // Empty messages are messages too.
    ch.send(&[]).unwrap();
    assert_eq!(ch.receive(&mut buf).unwrap(), 0);
    assert!(ch.pid() > 0);
    // The worker sees Closed once this end stops writing, and exits 0. (A
    // dropped channel hands its process to the library's deferred
    // collection, so the test keeps the channel and waits through it.)
    assert_eq!(unsafe { libc::shutdown(ch.raw_fd(), libc::SHUT_WR) }, 0);
    let status = ch.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn pod_values_round_trip_and_sizes_are_checked() {
    let mut ch = start(|ch| {
        let p: Point = ch.receive_value()?;
        ch.send_value(&Point {
            x: p.x * 2.0,
            y: p.y + 1.0,
            tag: p.tag + 1,
            _pad: 0,
        })?;
        ch.send_value(&7u16)?;
        Ok(())
    })
    .unwrap();
    ch.send_value(&Point {
        x: 1.5,
        y: -2.0,
        tag: 41,
        _pad: 0,
    })
    .unwrap();
    let p: Point = ch.receive_value().unwrap();
    assert_eq!((p.x, p.y, p.tag), (3.0, -1.0, 42));
    // A u16 message is not a u64: WrongSize, and it stays queued.
    assert_eq!(
        ch.receive_value::<u64>(),
        Err(Error::WrongSize {
            expected: 8,
            actual: 2
        })
    );
    assert_eq!(ch.receive_value::<u16>().unwrap(), 7);
    assert_eq!(ch.wait().unwrap().exit_code(), Some(0));
}

#[test]
fn create_is_fork_style() {
    match create().unwrap() {
        Created::Child(mut ch) => {
            assert_eq!(ch.pid(), 0);
            let mut buf = [0u8; 16];
            let n = ch.receive(&mut buf).unwrap_or(0);
            let _ = ch.send(&buf[..n].repeat(2));
            exit(ch, 3)
        }
        Created::Parent(mut ch) => {
            ch.send(b"abc").unwrap();
            assert_eq!(ch.receive_vec().unwrap(), b"abcabc");
            let status = ch.wait().unwrap();
            assert_eq!(status.exit_code(), Some(3));
            // Collected once; asking again gives the same status.
            assert_eq!(ch.wait().unwrap(), status);
        }
    }
}

#[test]
fn send_acked_waits_for_receipt_and_keeps_crossing_messages() {
    let mut ch = start(|ch| {
        // Send first, so the creator's send_acked sees a message before its ack.
        ch.send(b"early")?;
        let mut buf = [0u8; 32];
        let n = ch.receive(&mut buf)?;
        ch.send_acked(&buf[..n])?;
        Ok(())
    })
    .unwrap();
    ch.send_acked(b"hello").unwrap();
    assert_eq!(ch.receive_vec().unwrap(), b"early");
    assert_eq!(ch.receive_vec().unwrap(), b"hello");
    assert!(ch.wait().unwrap().success());
}

#[test]
fn an_err_from_the_callable_becomes_a_remote_error() {
    let mut ch = start(|_| Err(RemoteError::new(42, "no such thing"))).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(ch.receive(&mut buf), Err(Error::Remote { code: 42 }));
    let remote = ch.remote_error().unwrap();
    assert_eq!((remote.code(), remote.message()), (42, "no such thing"));
    // It answered (with an error): afterwards the channel is simply closed.
    assert_eq!(ch.receive(&mut buf), Err(Error::Closed));
    assert_eq!(ch.wait().unwrap().exit_code(), Some(1));
}

#[test]
fn a_library_error_inside_the_callable_travels_with_its_code() {
    let mut ch = start(|ch| {
        ch.set_max_message(4)?;
        ch.send(b"too long")?; // fails with TooBig, propagated by `?`
        Ok(())
    })
    .unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(
        ch.receive(&mut buf),
        Err(Error::Remote {
            code: pprocess::error::code::TOOBIG
        })
    );
    let message = ch.remote_error().unwrap().message();
    assert!(message.contains("8 bytes, room for 4"), "{message}");
}

#[test]
fn a_panic_in_the_callable_becomes_a_remote_error() {
    let mut ch = start(|_| panic!("exploded on purpose")).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(
        ch.receive(&mut buf),
        Err(Error::Remote {
            code: pprocess::error::code::PANIC
        })
    );
    assert_eq!(ch.remote_error().unwrap().message(), "exploded on purpose");
    assert_eq!(
        ch.wait().unwrap().exit_code(),
        Some(pprocess::process::EXIT_CALLABLE_PANIC)
    );
}

#[test]
fn a_killed_child_is_reported_with_its_signal_and_never_hangs() {
    let mut ch = start(|ch| {
        ch.send(b"before")?;
        // Wait forever: the creator kills us.
        let mut buf = [0u8; 1];
        let _ = ch.receive(&mut buf);
        Ok(())
    })
    .unwrap();
    assert_eq!(ch.receive_vec().unwrap(), b"before");
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(ch.pid(), libc::SIGKILL) }, 0);
    let mut buf = [0u8; 8];
    let err = ch.receive(&mut buf).unwrap_err();
    match err {
        Error::PeerEnded { pid, status } => {
            assert_eq!(pid, ch.pid());
            assert_eq!(status.signal(), Some(libc::SIGKILL));
        }
        other => panic!("expected PeerEnded, got {other:?}"),
    }
    assert!(err.to_string().contains("killed by signal 9"), "{err}");
    // Sticky: asking again gives the same answer at once.
    assert_eq!(ch.receive(&mut buf), Err(err));
    assert_eq!(ch.wait().unwrap().signal(), Some(libc::SIGKILL));
}

#[test]
fn frames_sent_just_before_exit_are_all_received() {
    // Small enough to sit in the socket buffer while the child exits.
    const COUNT: u32 = 100;
    let mut ch = start(|ch| {
        for i in 0..COUNT {
            ch.send(&i.to_le_bytes().repeat(1 + (i % 50) as usize))?;
        }
        Ok(())
    })
    .unwrap();
    // Let the child finish and exit before reading anything.
    let status = ch.wait().unwrap();
    assert!(status.success());
    let mut buf = [0u8; 4 * 50];
    for i in 0..COUNT {
        let n = ch.receive(&mut buf).unwrap();
        assert_eq!(n, 4 * (1 + (i % 50) as usize));
        assert_eq!(&buf[..4], &i.to_le_bytes());
    }
    assert_eq!(ch.receive(&mut buf), Err(Error::Closed));
}

#[test]
fn a_too_small_buffer_leaves_the_message_queued() {
    let mut ch = start(|ch| {
        ch.send(&[7u8; 3000])?;
        ch.send(b"next")?;
        Ok(())
    })
    .unwrap();
    let mut small = [0u8; 100];
    assert_eq!(
        ch.receive(&mut small),
        Err(Error::TooBig {
            size: 3000,
            capacity: 100
        })
    );
    let mut big = vec![0u8; 3000];
    assert_eq!(ch.receive(&mut big).unwrap(), 3000);
    assert!(big.iter().all(|&b| b == 7));
    assert_eq!(ch.receive(&mut small).unwrap(), 4);
    assert_eq!(&small[..4], b"next");
}

#[test]
fn large_messages_cross_intact() {
    let mut ch = start(echo).unwrap();
    let msg: Vec<u8> = (0..(1 << 16) as u32).map(|i| (i * 7 % 251) as u8).collect();
    ch.send(&msg).unwrap();
    assert_eq!(ch.receive_vec().unwrap(), msg);
}

#[test]
fn oversized_messages_are_rejected_on_both_sides() {
    let mut ch = start(|ch| {
        ch.send(&[1u8; 2048])?;
        Ok(())
    })
    .unwrap();
    // Sending above our own maximum: TooBig, nothing sent.
    ch.set_max_message(1024).unwrap();
    assert_eq!(
        ch.send(&[0u8; 1025]),
        Err(Error::TooBig {
            size: 1025,
            capacity: 1024
        })
    );
    // Receiving a frame that claims more than our maximum: a protocol error,
    // before anything is allocated for it.
    let err = ch.receive_vec().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Protocol(pprocess::wire::ProtoError::TooLong {
                length: 2048,
                max: 1024
            })
        ),
        "{err:?}"
    );
    assert_eq!(ch.set_max_message(0), Err(Error::Invalid));
}

#[test]
fn garbage_bytes_are_a_protocol_error_without_panic() {
    // The child writes raw garbage on its socket, bypassing the framing.
    let mut ch = start(|ch| {
        let fd = ch.raw_fd();
        let garbage = [0xffu8; 64];
        // SAFETY: writing a valid buffer to our own socket.
        unsafe { libc::write(fd, garbage.as_ptr().cast(), garbage.len()) };
        Ok(())
    })
    .unwrap();
    let err = ch.receive_vec().unwrap_err();
    assert_eq!(
        err,
        Error::Protocol(pprocess::wire::ProtoError::BadMagic),
        "{err}"
    );
    // Broken for good.
    assert_eq!(ch.receive_vec().unwrap_err(), err);
}

#[test]
fn a_frame_cut_short_is_a_protocol_error() {
    let mut ch = start(|ch| {
        let header = pprocess::wire::Header::new(pprocess::wire::Kind::Data, 0, 100, 1).encode();
        let fd = ch.raw_fd();
        // SAFETY: writing valid buffers to our own socket.
        unsafe {
            libc::write(fd, header.as_ptr().cast(), header.len());
            libc::write(fd, [1u8; 10].as_ptr().cast(), 10);
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(
        ch.receive_vec().unwrap_err(),
        Error::Protocol(pprocess::wire::ProtoError::Truncated)
    );
}

#[test]
fn receive_times_out_and_the_channel_stays_usable() {
    let mut ch = start(echo).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(ch.receive_timeout(&mut buf, 0), Err(Error::TimedOut));
    assert_eq!(ch.receive_timeout(&mut buf, 30), Err(Error::TimedOut));
    assert!(!ch.wait_readable(0).unwrap());
    ch.send(b"late").unwrap();
    assert!(ch.wait_readable(-1).unwrap());
    assert_eq!(ch.receive_timeout(&mut buf, 5000).unwrap(), 4);
}

/// The `socket:[inode]` link text of a descriptor of this process.
fn socket_inode(fd: i32) -> String {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn a_created_process_holds_no_descriptor_of_sibling_channels() {
    let sibling = start(echo).unwrap();
    let sibling_socket = socket_inode(sibling.raw_fd());
    let mut ch = start(move |ch| {
        ch.send(open_links()?.join("\n").as_bytes())?;
        Ok(())
    })
    .unwrap();
    let links = String::from_utf8(ch.receive_vec().unwrap()).unwrap();
    assert!(
        !links.lines().any(|l| l == sibling_socket),
        "child holds {sibling_socket}: {links}"
    );
    // It holds exactly one socket: its own channel.
    assert_eq!(
        links.lines().filter(|l| l.starts_with("socket:")).count(),
        1,
        "{links}"
    );
    drop(sibling);
}

/// The link texts of this process's descriptors.
fn open_links() -> Result<Vec<String>, RemoteError> {
    let mut links = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").map_err(|_| RemoteError::new(1, "ls"))? {
        let path = entry.map_err(|_| RemoteError::new(1, "entry"))?.path();
        if let Ok(link) = std::fs::read_link(&path) {
            links.push(link.to_string_lossy().into_owned());
        }
    }
    Ok(links)
}

#[test]
fn a_created_process_closes_its_siblings_descriptors_but_keeps_the_programs() {
    // In a process of its own, with one thread, descriptor numbers come in
    // order: library descriptors on both sides of one the program opened.
    // A process created there closes the library ones, in runs, and not
    // the file between them.
    let mut ch = start(|ch| {
        let first: Vec<Channel> = (0..3).map(|_| start(echo)).collect::<Result<_, _>>()?;
        let file = std::fs::File::open("Cargo.toml").map_err(|_| RemoteError::new(1, "open"))?;
        let second: Vec<Channel> = (0..3).map(|_| start(echo)).collect::<Result<_, _>>()?;
        let fds: Vec<i32> = first.iter().chain(&second).map(Channel::raw_fd).collect();
        let at = file.as_raw_fd();
        let between = fds.iter().any(|&fd| fd < at) && fds.iter().any(|&fd| fd > at);
        ch.send(&[u8::from(between)])?;
        ch.send(socket_inode(at).as_bytes())?; // the file's link text
        let siblings: Vec<String> = fds.iter().map(|&fd| socket_inode(fd)).collect();
        ch.send(siblings.join("\n").as_bytes())?;
        let mut grandchild = start(|g| Ok(g.send(open_links()?.join("\n").as_bytes())?))?;
        ch.send(&grandchild.receive_vec()?)?;
        Ok(())
    })
    .unwrap();
    let mut text = || String::from_utf8(ch.receive_vec().unwrap()).unwrap();
    assert_eq!(text(), "\u{1}", "the file sits between library descriptors");
    let (file, siblings, links) = (text(), text(), text());
    for sibling in siblings.lines() {
        assert!(
            !links.lines().any(|l| l == sibling),
            "holds {sibling}: {links}"
        );
    }
    assert!(
        links.lines().any(|l| l == file),
        "the program's file was closed: {links}"
    );
    // Its own channel only: no sibling's socket and no sibling's pidfd.
    assert_eq!(
        links.lines().filter(|l| l.starts_with("socket:")).count(),
        1,
        "{links}"
    );
    assert!(!links.lines().any(|l| l.contains("pidfd")), "{links}");
}

#[test]
fn a_pair_talks_within_one_process() {
    let (mut a, mut b) = Channel::pair().unwrap();
    assert_eq!((a.pid(), b.pid()), (0, 0));
    a.send(b"ping").unwrap();
    assert_eq!(b.receive_vec().unwrap(), b"ping");
    b.send_value(&42u32).unwrap();
    assert_eq!(a.receive_value::<u32>().unwrap(), 42);
    drop(b);
    assert_eq!(a.receive_vec(), Err(Error::Closed));
    // Not a created process: there is nothing to wait for.
    assert_eq!(a.wait(), Err(Error::Invalid));
}

#[test]
fn waiting_for_a_process_can_time_out() {
    let mut ch = start(|ch| {
        let mut b = [0u8; 1];
        let _ = ch.receive(&mut b); // until the creator says so
        Ok(())
    })
    .unwrap();
    assert_eq!(ch.wait_timeout(0), Err(Error::TimedOut));
    assert_eq!(ch.wait_timeout(30), Err(Error::TimedOut));
    ch.send(b"x").unwrap();
    let status = ch.wait_timeout(10_000).unwrap();
    assert!(status.success());
    assert_eq!(ch.wait_timeout(0).unwrap(), status, "remembered");
    let (mut a, _b) = Channel::pair().unwrap();
    assert_eq!(a.wait_timeout(0), Err(Error::Invalid));
}

/// Issue 12 (wire format v2): acknowledgements are validated against what
/// was sent. An ack of a frame its receiver never sent is a protocol error;
/// acks of frames sent are taken as before.
#[test]
fn an_ack_of_a_frame_never_sent_is_a_protocol_error() {
    let (mut a, b) = Channel::pair().unwrap();
    a.send(b"one").unwrap(); // frame 1
    a.send(b"two").unwrap(); // frame 2
    let ack = |seq: u32| pprocess::wire::Header::new(pprocess::wire::Kind::Ack, 0, 0, seq).encode();
    for seq in [1, 2, 0] {
        // SAFETY: writing a valid buffer to our own socket.
        unsafe { libc::write(b.raw_fd(), ack(seq).as_ptr().cast(), ack(seq).len()) };
    }
    let mut buf = [0u8; 8];
    assert_eq!(a.receive_timeout(&mut buf, 0), Err(Error::TimedOut));
    // SAFETY: as above.
    unsafe { libc::write(b.raw_fd(), ack(3).as_ptr().cast(), ack(3).len()) };
    let err = a.receive_timeout(&mut buf, 1000).unwrap_err();
    assert_eq!(
        err,
        Error::Protocol(pprocess::wire::ProtoError::BadAck(3)),
        "{err}"
    );
    assert_eq!(a.receive_timeout(&mut buf, 0), Err(err), "broken for good");
}

/// Two peers may both wait in `send_acked`: each acknowledges the other's
/// message as it arrives (a plain channel; only a connection to a persistent
/// process holds the acknowledgement until the program takes the message).
#[test]
fn both_peers_may_wait_in_send_acked() {
    let _watchdog = hardening::Watchdog::new("two send_acked", std::time::Duration::from_secs(60));
    let (mut a, mut b) = Channel::pair().unwrap();
    let peer = std::thread::spawn(move || {
        b.send_acked(b"from b").unwrap();
        assert_eq!(b.receive_vec().unwrap(), b"from a");
    });
    a.send_acked(b"from a").unwrap();
    assert_eq!(a.receive_vec().unwrap(), b"from b");
    peer.join().unwrap();
}
