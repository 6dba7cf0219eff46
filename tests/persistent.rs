//! Persistent and background processes: reconnection from fresh processes,
//! nothing lost across disconnection, socket security and addresses, and
//! nothing (process, socket file, descriptor) left behind.

mod background;
mod fork_contract;
mod hardening;

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

use background::*;
use hardening::Watchdog;
use pprocess::exchange::TaskError;
use pprocess::{
    connect_persistent, create_persistent, exit, start, start_persistent, Channel, Created, Error,
    Options, Queue, RemoteError,
};

/// How long a keeper waits for the rest of a frame a client started before
/// it disconnects the client as stalled (docs/persistent.md: 500 ms).
const STALL_MS: i32 = 500;

#[test]
fn results_are_collected_by_a_fresh_process_after_the_starter_exits() {
    let mut scratch = Scratch::new("fresh");
    let path = scratch.path("task.socket");

    // One process starts the work and exits.
    let starter_path = path.clone();
    let keeper = in_child(move || {
        let pid = start_persistent(&starter_path, numbers(0..10))?;
        Ok(pid.to_le_bytes().to_vec())
    });
    let keeper = scratch.track(i32::from_le_bytes(keeper.try_into().unwrap()));
    assert!(alive(keeper), "the background process outlives its starter");

    // Another, new process collects everything.
    let collector_path = path.clone();
    let got = in_child(move || {
        let mut ch = connect_persistent(&collector_path)?;
        let (got, end) = collect(&mut ch);
        assert_eq!(end, None);
        Ok(to_bytes(&got))
    });
    assert_eq!(from_bytes(&got), (0..10).collect::<Vec<_>>());
    assert_finished(keeper, &path);
}

#[test]
fn one_queue_collects_many_background_processes() {
    let mut scratch = Scratch::new("many");
    const N: u32 = 6;
    let mut keepers = Vec::new();
    for i in 0..N {
        let path = scratch.path(&format!("task-{i}.socket"));
        let pid = start_persistent(&path, numbers(i * 100..i * 100 + 5)).unwrap();
        keepers.push((scratch.track(pid), path));
    }
    let mut queue = Queue::with_options(N as usize, Options::default());
    for (_, path) in &keepers {
        queue.connect(path).unwrap();
    }
    let mut got = Vec::new();
    loop {
        match queue.next_result(TIMEOUT_MS) {
            Ok((_, outcome)) => got.push(num(&outcome.unwrap())),
            Err(Error::Done) => break,
            Err(e) => panic!("{e} after {got:?}"),
        }
    }
    got.sort();
    let expected: Vec<u32> = (0..N).flat_map(|i| i * 100..i * 100 + 5).collect();
    assert_eq!(got, expected);
    for (pid, path) in &keepers {
        assert_finished(*pid, path);
    }
}

#[test]
fn a_client_killed_mid_stream_loses_nothing_and_duplicates_nothing() {
    let mut scratch = Scratch::new("killed");
    let path = scratch.path("task.socket");
    let keeper = scratch.track(start_persistent(&path, numbers(0..40)).unwrap());

    // The first client takes 7 results, reports them, and is killed.
    let client_path = path.clone();
    let mut first = start(move |ch| {
        let mut client = connect_persistent(&client_path)?;
        let got = take(&mut client, 7);
        ch.send(&to_bytes(&got))?;
        // SAFETY: kill and getpid have no memory-safety preconditions.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        Ok(())
    })
    .unwrap();
    let seen = from_bytes(&first.receive_vec_timeout(TIMEOUT_MS).unwrap());
    assert_eq!(first.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert_eq!(seen, (0..7).collect::<Vec<_>>());

    // The next client gets exactly the rest.
    let mut second = connect_persistent(&path).unwrap();
    let (rest, end) = collect(&mut second);
    assert_eq!(end, None);
    assert_eq!(rest, (7..40).collect::<Vec<_>>());
    assert_finished(keeper, &path);
}

#[test]
fn a_callable_that_sends_nothing_still_waits_for_a_collector() {
    let mut scratch = Scratch::new("nothing");
    let path = scratch.path("task.socket");
    let keeper = scratch.track(start_persistent(&path, |_| Ok(())).unwrap());
    std::thread::sleep(Duration::from_millis(50));
    assert!(alive(keeper), "it waits for a client");
    let mut ch = connect_persistent(&path).unwrap();
    assert_eq!(collect(&mut ch), (vec![], None));
    assert_finished(keeper, &path);
}

#[test]
fn clients_are_served_one_at_a_time() {
    let mut scratch = Scratch::new("turns");
    let path = scratch.path("task.socket");
    let keeper = scratch.track(start_persistent(&path, numbers(0..4)).unwrap());

    let mut first = connect_persistent(&path).unwrap();
    assert_eq!(take(&mut first, 1), [0]);
    let mut second = connect_persistent(&path).unwrap();
    assert_eq!(second.receive_vec_timeout(300), Err(Error::TimedOut));
    drop(first);
    let (rest, end) = collect(&mut second);
    assert_eq!((rest, end), (vec![1, 2, 3], None));
    assert_finished(keeper, &path);
}

#[test]
fn callable_errors_are_results_kept_across_disconnection() {
    let mut scratch = Scratch::new("errors");
    let path = scratch.path("task.socket");
    let keeper = scratch.track(
        start_persistent(&path, |ch| {
            ch.send_value(&1u32)?;
            ch.send_value(&2u32)?;
            Err(RemoteError::new(42, "bad input"))
        })
        .unwrap(),
    );
    // A client that leaves after one result, then one that gets the rest.
    let mut first = connect_persistent(&path).unwrap();
    assert_eq!(take(&mut first, 1), [1]);
    drop(first);
    let mut second = connect_persistent(&path).unwrap();
    let (got, end) = collect(&mut second);
    assert_eq!((got, end), (vec![2], Some(Error::Remote { code: 42 })));
    let remote = second.remote_error().unwrap();
    assert_eq!((remote.code(), remote.message()), (42, "bad input"));
    assert_eq!(second.receive_vec_timeout(TIMEOUT_MS), Err(Error::Closed));
    assert_finished(keeper, &path);

    // A panic and a killed process are reported too.
    let path = scratch.path("panic.socket");
    let keeper = scratch.track(start_persistent(&path, |_| panic!("lost the plot")).unwrap());
    let mut ch = connect_persistent(&path).unwrap();
    assert_eq!(collect(&mut ch).1, Some(Error::Remote { code: PP_EPANIC }));
    assert!(ch
        .remote_error()
        .unwrap()
        .message()
        .contains("lost the plot"));
    assert_finished(keeper, &path);

    let path = scratch.path("killed.socket");
    let keeper = scratch.track(
        start_persistent(&path, |ch| {
            ch.send_value(&7u32)?;
            // SAFETY: kill and getpid have no memory-safety preconditions.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            Ok(())
        })
        .unwrap(),
    );
    let mut ch = connect_persistent(&path).unwrap();
    let (got, end) = collect(&mut ch);
    assert_eq!(
        (got, end),
        (vec![7], Some(Error::Remote { code: PP_EPEER }))
    );
    let message = ch.remote_error().unwrap().message();
    assert!(message.contains("killed by signal 9"), "{message}");
    assert_finished(keeper, &path);
}

#[test]
fn a_background_queue_and_a_persistent_exchange_collect_results() {
    let mut scratch = Scratch::new("queues");

    // BackgroundQueue: one process, several results, then its error.
    let path = scratch.path("task.socket");
    let keeper = scratch.track(
        start_persistent(&path, |ch| {
            ch.send_value(&1u32)?;
            ch.send_value(&2u32)?;
            Err(RemoteError::new(5, "five"))
        })
        .unwrap(),
    );
    let outcomes: Vec<_> = Queue::background(&path).unwrap().collect();
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    assert_eq!(num(outcomes[0].as_ref().unwrap()), 1);
    assert_eq!(num(outcomes[1].as_ref().unwrap()), 2);
    let TaskError { error, remote } = outcomes[2].clone().unwrap_err();
    assert_eq!(error, Error::Remote { code: 5 });
    assert_eq!(remote.unwrap().message(), "five");
    assert_finished(keeper, &path);

    // PersistentExchange.manage(address, ...): started from one exchange that
    // is then dropped, collected by another.
    let path = scratch.path("managed.socket");
    let mut starter = Queue::with_options(1, Options::default());
    let keeper = scratch.track(starter.start_persistent(&path, numbers(0..3)).unwrap());
    assert_eq!(
        starter.active_count(),
        0,
        "the exchange does not monitor it"
    );
    drop(starter);
    let mut collector = Queue::with_options(1, Options::default());
    collector.connect(&path).unwrap();
    let got: Vec<u32> = collector.by_ref().map(|o| num(&o.unwrap())).collect();
    assert_eq!(got, [0, 1, 2]);
    collector.finish().unwrap();
    assert_finished(keeper, &path);
}

/// Regression: a background queue acknowledged each result as it stored it,
/// reading ahead of the program, so a client killed with results still in
/// its queue lost them.
#[test]
fn a_background_queue_acknowledges_a_result_when_the_program_takes_it() {
    taken_results_are_acknowledged("taken", |queue| {
        queue.by_ref().take(3).map(|o| num(&o.unwrap())).collect()
    });
}

/// The same when the program reads its results in place.
#[test]
fn a_result_read_in_place_is_acknowledged_as_it_is_taken() {
    taken_results_are_acknowledged("lent", |queue| {
        let read = |_, result: Result<&[u8], &TaskError>| num(result.unwrap());
        (0..3)
            .map(|_| queue.next_result_with(-1, read).unwrap())
            .collect()
    });
}

/// A client takes 3 results with `take`, lets its queue read more ahead,
/// and is killed: the next client gets exactly the rest.
fn taken_results_are_acknowledged(name: &str, take: fn(&mut Queue) -> Vec<u32>) {
    let _watchdog = Watchdog::new("a killed queue client", Duration::from_secs(60));
    let mut scratch = Scratch::new(name);
    let path = scratch.path("task.socket");
    let keeper = scratch.track(start_persistent(&path, numbers(0..100)).unwrap());

    // A client takes 3 results, lets its queue read more ahead, reports
    // both, and is killed.
    let client_path = path.clone();
    let mut client = start(move |ch| {
        let mut queue = Queue::background(&client_path)?;
        let taken = take(&mut queue);
        let mut stored = 0u32;
        while stored < 40 && queue.store(100).is_ok_and(|n| n > 0) {
            stored += 1;
        }
        ch.send(&to_bytes(&taken))?;
        ch.send_value(&stored)?;
        // SAFETY: kill and getpid have no memory-safety preconditions.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        Ok(())
    })
    .unwrap();
    let taken = from_bytes(&client.receive_vec_timeout(TIMEOUT_MS).unwrap());
    let stored = num(&client.receive_vec_timeout(TIMEOUT_MS).unwrap());
    assert_eq!(client.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert_eq!(taken, [0, 1, 2]);
    assert!(stored > 0, "the queue read nothing ahead");

    // The next client gets exactly the rest, what the queue read ahead too.
    let mut next = connect_persistent(&path)
        .unwrap_or_else(|e| panic!("{e}: it finished, the results read ahead were lost"));
    assert_eq!(collect(&mut next), ((3..100).collect(), None));
    assert_finished(keeper, &path);
}

/// A queue holds at most a window of unacknowledged results, so a wait for
/// a connection to end (finish, or a connect at the limit) acknowledges what
/// the queue holds instead of waiting forever.
#[test]
fn waits_for_a_connection_to_end_acknowledge_what_the_queue_holds() {
    let _watchdog = Watchdog::new("a wait for a connection's end", Duration::from_secs(60));
    let mut scratch = Scratch::new("finish");
    let path = scratch.path("task.socket");
    let keeper = scratch.track(start_persistent(&path, numbers(0..100)).unwrap());
    let mut queue = Queue::background(&path).unwrap();
    queue.finish().unwrap();
    assert_finished(keeper, &path);
    let got: Vec<u32> = queue.map(|o| num(&o.unwrap())).collect();
    assert_eq!(got, (0..100).collect::<Vec<_>>());

    let (a, b) = (scratch.path("a.socket"), scratch.path("b.socket"));
    let keeper_a = scratch.track(start_persistent(&a, numbers(0..100)).unwrap());
    let keeper_b = scratch.track(start_persistent(&b, numbers(1000..1100)).unwrap());
    let mut queue = Queue::with_options(1, Options::default());
    queue.connect(&a).unwrap();
    queue.connect(&b).unwrap(); // waits for the first connection to end
    assert_finished(keeper_a, &a);
    let mut got: Vec<u32> = queue.map(|o| num(&o.unwrap())).collect();
    got.sort();
    let expected: Vec<u32> = (0..100).chain(1000..1100).collect();
    assert_eq!(got, expected);
    assert_finished(keeper_b, &b);
}

/// Regression: a client that started a frame and stalled (part of a header,
/// or an error frame's header without all of its payload) blocked the
/// background process for good: nobody else was served.
#[test]
fn a_client_stalled_mid_frame_is_disconnected_and_the_next_one_served() {
    let _watchdog = Watchdog::new("a stalled client", Duration::from_secs(60));
    let mut scratch = Scratch::new("stalled");
    let mut error_header = vec![0x50, 0x50, 2, 2, 0, 0, 0, 0];
    error_header.extend_from_slice(&100u32.to_le_bytes()); // payload bytes
    error_header.extend_from_slice(&1u32.to_le_bytes()); // frame number
    error_header.extend_from_slice(&0u64.to_le_bytes()); // task
    let stalls = [
        error_header[..7].to_vec(),
        [&error_header[..], &[0; 10]].concat(),
    ];
    for (i, stall) in stalls.iter().enumerate() {
        let path = scratch.path(&format!("task-{i}.socket"));
        let keeper = scratch.track(start_persistent(&path, numbers(0..100)).unwrap());
        let mut raw = UnixStream::connect(&path).unwrap();
        raw.write_all(stall).unwrap();

        // A client waiting its turn is served once the stalled one is gone.
        let mut ch = connect_persistent(&path).unwrap();
        let mut got = Vec::new();
        let end = loop {
            match ch.receive_vec_timeout(10 * STALL_MS) {
                Ok(bytes) => got.push(num(&bytes)),
                Err(e) => break e,
            }
        };
        assert_eq!((got, end), ((0..100).collect(), Error::Closed), "stall {i}");

        // The stalled client got the results in flight, then was told.
        raw.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut bytes = Vec::new();
        raw.read_to_end(&mut bytes).unwrap();
        let frames = frames(&bytes);
        assert_eq!(
            frames.last(),
            Some(&RawFrame::Error(PP_EPROTO)),
            "{frames:?}"
        );
        assert_finished(keeper, &path);
    }
}

/// Regression: an exchange that had served a connection to a persistent
/// process (a channel of no child, pid 0) remembered pid 0 as a process to
/// collect, and on drop, finding `waitpid(0)` still running (any other child
/// of the process group), sent `kill(0, SIGKILL)`: it killed its own
/// process group, itself included. Run in a process group of its own.
#[test]
fn dropping_a_background_queue_kills_nothing() {
    let _watchdog = Watchdog::new("a dropped background queue", Duration::from_secs(60));
    let mut scratch = Scratch::new("group");
    let path = scratch.path("task.socket");
    let keeper = scratch.track(start_persistent(&path, numbers(0..5)).unwrap());
    let client_path = path.clone();
    let got = in_child(move || {
        // SAFETY: setpgid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::setpgid(0, 0) }, 0);
        // Another child of this process, running while the queue is dropped.
        let mut sleeper = start(|ch| {
            let _ = ch.receive_vec(); // until its creator closes the channel
            Ok(())
        })?;
        let mut queue = Queue::background(&client_path)?;
        let got: Vec<u32> = queue.by_ref().map(|o| num(&o.unwrap())).collect();
        drop(queue);
        sleeper.send(b"bye")?;
        assert!(sleeper.wait()?.success());
        Ok(to_bytes(&got))
    });
    assert_eq!(from_bytes(&got), (0..5).collect::<Vec<_>>());
    assert_finished(keeper, &path);
}

#[test]
fn create_persistent_is_fork_style() {
    let scratch = Scratch::new("create");
    let path = scratch.path("task.socket");
    let mut parent = match create_persistent(&path).unwrap() {
        Created::Child(mut ch) => {
            for n in 0..6u32 {
                if ch.send_value(&n).is_err() {
                    exit(ch, 1);
                }
            }
            exit(ch, 0);
        }
        Created::Parent(ch) => ch,
    };
    let keeper = parent.pid();
    assert!(keeper > 0);
    assert_eq!(take(&mut parent, 2), [0, 1]);
    drop(parent);
    let mut again = connect_persistent(&path).unwrap();
    assert_eq!(collect(&mut again), ((2..6).collect(), None));
    assert_finished(keeper, &path);
    // The keeper was this process's child: it is collected, here or by the
    // library's own collection of dropped channels' processes.
    hardening::assert_dropped_child_ends_cleanly(keeper);
}

#[test]
fn the_background_process_is_detached_with_stdio_on_dev_null() {
    let mut scratch = Scratch::new("detached");
    let path = scratch.path("task.socket");
    let starter_path = path.clone();
    let report = in_child(move || {
        let pid = start_persistent(&starter_path, |ch| {
            // Prints must not fail (pprocess closed fds 0-2, so they did).
            println!("into the void");
            let stdout = std::fs::read_link("/proc/self/fd/1").unwrap_or_default();
            let stdin = std::fs::read_link("/proc/self/fd/0").unwrap_or_default();
            ch.send(stdout.as_os_str().as_encoded_bytes())?;
            ch.send(stdin.as_os_str().as_encoded_bytes())?;
            // SAFETY: getsid and getppid have no memory-safety preconditions.
            let (sid, parent) = unsafe { (libc::getsid(0), libc::getppid()) };
            ch.send_value(&sid)?;
            ch.send_value(&parent)?;
            Ok(())
        })?;
        // The starter has no child to wait for: the background process is
        // not its child.
        assert_eq!(pprocess::waitall()?, 0);
        Ok(pid.to_le_bytes().to_vec())
    });
    let keeper = scratch.track(i32::from_le_bytes(report.try_into().unwrap()));
    let mut ch = connect_persistent(&path).unwrap();
    assert_eq!(ch.receive_vec_timeout(TIMEOUT_MS).unwrap(), b"/dev/null");
    assert_eq!(ch.receive_vec_timeout(TIMEOUT_MS).unwrap(), b"/dev/null");
    let sid: i32 = ch.receive_value().unwrap();
    let parent: i32 = ch.receive_value().unwrap();
    // SAFETY: getsid has no memory-safety preconditions.
    assert_ne!(sid, unsafe { libc::getsid(0) }, "a new session");
    assert_eq!(parent, keeper, "the callable runs in the listener's child");
    assert_eq!(ch.receive_vec_timeout(TIMEOUT_MS), Err(Error::Closed));
    assert_finished(keeper, &path);
}

#[test]
fn the_socket_file_is_private_and_peers_of_other_users_are_refused() {
    let mut scratch = Scratch::new("uid");
    let path = scratch.path("task.socket");
    let keeper = scratch.track(start_persistent(&path, numbers(0..5)).unwrap());

    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);

    // Another user cannot even open the socket file...
    let nobody = |path: PathBuf| {
        in_child(move || {
            // SAFETY: setgid/setuid have no memory-safety preconditions.
            let dropped = unsafe { libc::setgid(65534) == 0 && libc::setuid(65534) == 0 };
            assert!(dropped, "tests run as root");
            let direct = connect_persistent(&path).err().map(|e| e.error());
            // ...and if it can, the listener refuses it and says why.
            let mut raw = match UnixStream::connect(&path) {
                Ok(raw) => raw,
                Err(e) => return Ok(format!("{direct:?} / {e}").into_bytes()),
            };
            raw.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut bytes = Vec::new();
            raw.read_to_end(&mut bytes).unwrap();
            Ok(format!("{direct:?} / {:?}", frames(&bytes)).into_bytes())
        })
    };
    let closed = String::from_utf8(nobody(path.clone())).unwrap();
    assert_eq!(
        closed,
        format!(
            "Some(Os({})) / Permission denied (os error 13)",
            libc::EACCES
        )
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let open = String::from_utf8(nobody(path.clone())).unwrap();
    assert_eq!(
        open,
        format!("Some(Permission) / [Error({PP_EPERM})]"),
        "the client refuses a listener of another user, the listener refuses the client"
    );

    // The owner still gets everything.
    let mut ch = connect_persistent(&path).unwrap();
    assert_eq!(collect(&mut ch), ((0..5).collect(), None));
    assert_finished(keeper, &path);
}

/// A frame as the tests see it on a raw socket.
#[derive(Debug, PartialEq)]
enum RawFrame {
    Data(Vec<u8>),
    Error(i32),
    Other(u8),
}

/// Splits bytes received on a raw socket into frames.
fn frames(mut bytes: &[u8]) -> Vec<RawFrame> {
    let mut out = Vec::new();
    while bytes.len() >= 24 {
        assert_eq!(&bytes[..3], &[0x50, 0x50, 2], "magic and version");
        let kind = bytes[3];
        let len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        let payload = &bytes[24..24 + len];
        out.push(match kind {
            1 => RawFrame::Data(payload.to_vec()),
            2 => RawFrame::Error(i32::from_le_bytes(payload[..4].try_into().unwrap())),
            k => RawFrame::Other(k),
        });
        bytes = &bytes[24 + len..];
    }
    assert!(bytes.is_empty(), "a partial frame");
    out
}

#[test]
fn a_garbage_client_is_disconnected_and_its_results_go_to_the_next() {
    let mut scratch = Scratch::new("garbage");
    let path = scratch.path("task.socket");
    let keeper = scratch.track(start_persistent(&path, numbers(0..10)).unwrap());

    // Not the wire format at all.
    let mut raw = UnixStream::connect(&path).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    raw.write_all(b"GET / HTTP/1.0\r\n\r\nGARBAGE GARBAGE")
        .unwrap();
    let mut bytes = Vec::new();
    raw.read_to_end(&mut bytes).unwrap();
    let got = frames(&bytes);
    assert_eq!(got.last(), Some(&RawFrame::Error(PP_EPROTO)), "{got:?}");

    // Nothing it was sent is lost: it acknowledged nothing.
    let mut ch = connect_persistent(&path).unwrap();
    assert_eq!(collect(&mut ch), ((0..10).collect(), None));
    assert_finished(keeper, &path);
}

/// A stale socket at `path`: bound by a process of its own that then
/// exits. (Bound here, its descriptor could be inherited by a process
/// another test creates at that moment, which would keep it listening.)
fn stale_socket(path: &std::path::Path) {
    match pprocess::create().unwrap() {
        pprocess::Created::Child(ch) => {
            let bound = UnixListener::bind(path).is_ok();
            pprocess::exit(ch, i32::from(!bound))
        }
        pprocess::Created::Parent(mut ch) => assert!(ch.wait().unwrap().success()),
    }
}

#[test]
fn stale_sockets_are_replaced_and_other_files_left_alone() {
    let mut scratch = Scratch::new("files");

    // Nothing there, and a stale socket: clear errors from connect.
    let stale = scratch.path("stale.socket");
    assert_eq!(
        connect_persistent(&stale).unwrap_err(),
        Error::Os(libc::ENOENT)
    );
    stale_socket(&stale);
    assert_eq!(
        connect_persistent(&stale).unwrap_err(),
        Error::Os(libc::ECONNREFUSED)
    );
    let keeper = scratch.track(start_persistent(&stale, numbers(0..3)).unwrap());
    let mut ch = connect_persistent(&stale).unwrap();
    assert_eq!(collect(&mut ch), ((0..3).collect(), None));
    assert_finished(keeper, &stale);

    // A regular file, a directory, a dangling link: untouched.
    let file = scratch.path("notes.txt");
    std::fs::write(&file, "precious").unwrap();
    let dir = scratch.path("dir");
    std::fs::create_dir(&dir).unwrap();
    let link = scratch.path("link");
    std::os::unix::fs::symlink(scratch.path("nowhere"), &link).unwrap();
    for path in [&file, &dir, &link] {
        assert_eq!(
            start_persistent(path, numbers(0..1)).unwrap_err(),
            Error::Address
        );
        assert_eq!(create_persistent(path).unwrap_err(), Error::Address);
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");
    assert!(std::fs::metadata(&dir).unwrap().is_dir());
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());

    // A live listener, foreign or ours: untouched, and still listening.
    let live = scratch.path("live.socket");
    let listener = UnixListener::bind(&live).unwrap();
    assert_eq!(
        start_persistent(&live, numbers(0..1)).unwrap_err(),
        Error::Address
    );
    drop(UnixStream::connect(&live).unwrap());
    listener.accept().unwrap();
    let ours = scratch.path("ours.socket");
    let keeper = scratch.track(start_persistent(&ours, numbers(0..2)).unwrap());
    assert_eq!(
        start_persistent(&ours, numbers(5..6)).unwrap_err(),
        Error::Address
    );
    let mut ch = connect_persistent(&ours).unwrap();
    assert_eq!(collect(&mut ch), ((0..2).collect(), None));
    assert_finished(keeper, &ours);
}

#[test]
fn concurrent_starts_at_one_address_have_one_winner() {
    let mut scratch = Scratch::new("race");
    let path = scratch.path("task.socket");
    for round in 0..5u32 {
        // Eight processes wait for the word, then all start at once.
        let mut racers: Vec<Channel> = (0..8u32)
            .map(|racer| {
                let path = path.clone();
                start(move |ch| {
                    ch.receive_vec_timeout(TIMEOUT_MS)?;
                    let outcome = start_persistent(&path, numbers(racer..racer + 1));
                    ch.send_value(&outcome.unwrap_or_else(|e| e.code()))?;
                    Ok(())
                })
                .unwrap()
            })
            .collect();
        for racer in &mut racers {
            racer.send(b"go").unwrap();
        }
        let outcomes: Vec<i32> = racers
            .iter_mut()
            .map(|racer| racer.receive_value().unwrap())
            .collect();
        let winners: Vec<usize> = (0..8).filter(|&r| outcomes[r] > 0).collect();
        assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
        let keeper = scratch.track(outcomes[winners[0]]);
        for (racer, &code) in outcomes.iter().enumerate() {
            if racer != winners[0] {
                assert_eq!(code, Error::Address.code(), "round {round}: {outcomes:?}");
            }
        }
        // The winner is the one listening there.
        let mut ch = connect_persistent(&path).unwrap();
        assert_eq!(collect(&mut ch), (vec![winners[0] as u32], None));
        assert_finished(keeper, &path);
    }
}

#[test]
fn addresses_must_fit_a_socket_path() {
    let mut scratch = Scratch::new("long");
    let base = scratch.dir.join("");
    let base_len = base.as_os_str().len();
    // The longest path that fits (107 bytes) works...
    let longest = base.join("s".repeat(107 - base_len));
    assert_eq!(longest.as_os_str().len(), 107);
    let keeper = scratch.track(start_persistent(&longest, numbers(0..1)).unwrap());
    let mut ch = connect_persistent(&longest).unwrap();
    assert_eq!(collect(&mut ch), (vec![0], None));
    assert_finished(keeper, &longest);

    // ...one more byte does not, nor an empty path or one with a NUL byte.
    let too_long = base.join("s".repeat(108 - base_len));
    let far_too_long = base.join("s".repeat(300));
    for path in [&too_long, &far_too_long] {
        assert_eq!(
            start_persistent(path, numbers(0..1)).unwrap_err(),
            Error::Address
        );
        assert_eq!(create_persistent(path).unwrap_err(), Error::Address);
        assert_eq!(connect_persistent(path).unwrap_err(), Error::Address);
    }
    assert_eq!(connect_persistent("").unwrap_err(), Error::Address);
    assert_eq!(
        connect_persistent(&b"a\0b"[..]).unwrap_err(),
        Error::Address
    );
    assert_eq!(std::fs::read_dir(&scratch.dir).unwrap().count(), 0);
}

#[test]
fn no_process_socket_or_descriptor_is_left_behind() {
    let mut scratch = Scratch::new("leftovers");
    let path = scratch.path("task.socket");
    let worker_path = path.clone();
    // Counted in a process of its own, where no other test opens descriptors.
    let report = in_child(move || {
        let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
        let before = fds();
        let mut pids = Vec::new();
        for round in 0..5u32 {
            let keeper = start_persistent(&worker_path, |ch| {
                // SAFETY: getpid has no memory-safety preconditions.
                ch.send_value(&unsafe { libc::getpid() })?;
                Ok(())
            })?;
            let mut ch = connect_persistent(&worker_path)?;
            let worker: i32 = ch.receive_value()?;
            assert_eq!(ch.receive_vec_timeout(TIMEOUT_MS), Err(Error::Closed));
            drop(ch);
            pids.extend([keeper, worker]);
            // Failures leak nothing either.
            let missing = format!("{}-{round}", worker_path.display());
            assert_eq!(
                connect_persistent(&missing).err().map(|e| e.error()),
                Some(Error::Os(libc::ENOENT))
            );
            assert_eq!(
                start_persistent("/proc/version", numbers(0..1)).err(),
                Some(Error::Address)
            );
            eventually("the socket file goes", || {
                std::fs::symlink_metadata(&worker_path).is_err()
            });
        }
        assert_eq!(fds(), before, "descriptors leaked");
        assert_eq!(pprocess::waitall()?, 0, "no child left");
        Ok(to_bytes(
            &pids.iter().map(|&p| p as u32).collect::<Vec<_>>(),
        ))
    });
    for pid in from_bytes(&report) {
        let pid = scratch.track(pid as i32);
        eventually(&format!("process {pid} exits"), || !alive(pid));
    }
    assert!(std::fs::symlink_metadata(&path).is_err());
}

/// Review: Map::get on a task queued behind a connection whose one result
/// is stored but not taken (its acknowledgement is deferred, so the
/// connection, and the limit's slot, never end).
#[test]
fn review_map_get_behind_an_unacked_connection() {
    let mut scratch = Scratch::new("rv-map");
    let path = scratch.path("a.socket");
    let _keeper = scratch.track(start_persistent(&path, numbers(0..1)).unwrap());
    let p = path.clone();
    let mut client = start(move |ch| {
        let mut map = pprocess::Map::with_options(1, Options::default());
        map.connect(&p)?;
        let t = map.call(|x: &[u8]| Ok(x.to_vec()), b"hi")?;
        let got = map.get(t)?.clone().unwrap();
        ch.send(&got)?;
        Ok(())
    })
    .unwrap();
    let r = client.receive_vec_timeout(5000);
    if r.is_err() {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(client.pid(), libc::SIGKILL) };
    }
    let _ = client.wait();
    assert_eq!(r.unwrap(), b"hi".to_vec());
}

/// Review: pprocess's `while exchange.active_count(): exchange.store()` idiom on a
/// background queue.
#[test]
fn review_store_loop_on_a_background_queue() {
    let mut scratch = Scratch::new("rv-store");
    let path = scratch.path("a.socket");
    let _keeper = scratch.track(start_persistent(&path, numbers(0..100)).unwrap());
    let p = path.clone();
    let mut client = start(move |ch| {
        let mut queue = Queue::background(&p)?;
        while queue.active_count() > 0 {
            queue.store(-1)?;
        }
        ch.send_value(&(queue.count() as u32))?;
        Ok(())
    })
    .unwrap();
    let r = client.receive_vec_timeout(5000);
    if r.is_err() {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(client.pid(), libc::SIGKILL) };
    }
    let _ = client.wait();
    assert_eq!(num(&r.unwrap()), 100);
}
