//! Persistent addresses nobody can hijack: the socket file's mode is set
//! without a path, a link at an address is refused, the detached keeper
//! holds none of its starter's descriptors, a probe is not a client, and an
//! exchange never kills a keeper.

mod background;
mod fork_contract;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use background::*;
use pprocess::{
    connect_persistent, create_persistent, exit, start_persistent, Created, Error, Options, Queue,
};

/// Watches `dir` (inotify) and swaps every new entry whose name starts with
/// `.pp-` for a symbolic link to `target`, at once, the way an attacker
/// with write access to the directory would. Returns the stop flag and the
/// thread; creating any `.pp-` file wakes the thread to see the flag.
fn swap_new_names(
    dir: &std::path::Path,
    target: &std::path::Path,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<usize>) {
    let stop = Arc::new(AtomicBool::new(false));
    let c_dir = CString::new(dir.as_os_str().as_bytes()).unwrap();
    // SAFETY: inotify_init1 has no memory-safety preconditions.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    assert!(fd >= 0);
    // SAFETY: `c_dir` is a NUL-terminated path.
    assert!(unsafe { libc::inotify_add_watch(fd, c_dir.as_ptr(), libc::IN_CREATE) } >= 0);
    let (dir, target, flag) = (dir.to_path_buf(), target.to_path_buf(), stop.clone());
    let thread = std::thread::spawn(move || {
        let mut swapped = 0;
        let mut buf = [0u8; 4096];
        while !flag.load(Ordering::SeqCst) {
            // SAFETY: `buf` is writable for its length.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            assert!(n > 0, "inotify read");
            let mut at = 0;
            while at + 16 <= n as usize {
                let len = u32::from_ne_bytes(buf[at + 12..at + 16].try_into().unwrap()) as usize;
                let name = &buf[at + 16..at + 16 + len];
                let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(len)];
                at += 16 + len;
                if !name.starts_with(b".pp-") {
                    continue;
                }
                let name = std::ffi::OsStr::from_bytes(name);
                let link = dir.join(format!("link-{swapped}"));
                std::os::unix::fs::symlink(&target, &link).unwrap();
                if std::fs::rename(&link, dir.join(name)).is_ok() {
                    swapped += 1;
                } else {
                    let _ = std::fs::remove_file(&link);
                }
            }
        }
        // SAFETY: `fd` is the inotify descriptor this thread owns.
        unsafe { libc::close(fd) };
        swapped
    });
    (stop, thread)
}

#[test]
fn a_name_swapped_for_a_link_during_a_start_never_has_its_target_chmodded() {
    let mut scratch = Scratch::new("swap");
    let victim = scratch.path("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (stop, attacker) = swap_new_names(&scratch.dir, &victim);

    let mut started = Vec::new();
    for round in 0..20 {
        let path = scratch.path(&format!("task-{round}.socket"));
        if let Ok(pid) = start_persistent(&path, numbers(0..1)) {
            started.push((scratch.track(pid), path));
        }
    }
    stop.store(true, Ordering::SeqCst);
    std::fs::write(scratch.path(".pp-wake"), "").unwrap();
    attacker.join().unwrap();

    let mode = std::fs::metadata(&victim).unwrap().permissions().mode() & 0o7777;
    assert_eq!(
        mode, 0o644,
        "a start changed the mode of a file it did not make"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    // Nothing swapped stopped a start, and every socket is private.
    assert_eq!(started.len(), 20);
    for (keeper, path) in started {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let mut ch = connect_persistent(&path).unwrap();
        assert_eq!(collect(&mut ch), (vec![0], None));
        assert_finished(keeper, &path);
    }
}

#[test]
fn a_start_leaves_no_name_but_its_address_in_the_directory() {
    let mut scratch = Scratch::new("names");
    let path = scratch.path("task.socket");
    let keeper = scratch.track(start_persistent(&path, numbers(0..1)).unwrap());
    let names: Vec<_> = std::fs::read_dir(&scratch.dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["task.socket"]);
    let mut ch = connect_persistent(&path).unwrap();
    assert_eq!(collect(&mut ch), (vec![0], None));
    assert_finished(keeper, &path);
}

#[test]
fn connect_refuses_a_symlink_at_the_address() {
    let mut scratch = Scratch::new("link");
    let real = scratch.path("job-b.socket");
    let keeper = scratch.track(start_persistent(&real, numbers(0..3)).unwrap());
    let planted = scratch.path("job-a.socket");
    std::os::unix::fs::symlink(&real, &planted).unwrap();

    assert_eq!(connect_persistent(&planted).unwrap_err(), Error::Address);
    assert_eq!(Queue::background(&planted).err(), Some(Error::Address));
    // A link is refused at a start too, and left alone.
    assert_eq!(
        start_persistent(&planted, numbers(0..1)).unwrap_err(),
        Error::Address
    );
    assert!(std::fs::symlink_metadata(&planted).unwrap().is_symlink());

    // Job B's results went to nobody else.
    let mut ch = connect_persistent(&real).unwrap();
    assert_eq!(collect(&mut ch), ((0..3).collect(), None));
    assert_finished(keeper, &real);
}

/// What the descriptors of process `pid` point at.
fn descriptors(pid: i32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.unwrap().path()).ok())
        .map(|target| target.display().to_string())
        .collect()
}

#[test]
fn the_keeper_holds_none_of_its_starters_descriptors() {
    let mut scratch = Scratch::new("fds");
    let mut pipe = [0; 2];
    // SAFETY: `pipe` has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    let file = std::fs::File::create(scratch.path("locked.txt")).unwrap();
    let theirs: Vec<String> = [pipe[0], pipe[1], std::os::fd::AsRawFd::as_raw_fd(&file)]
        .iter()
        .map(|fd| std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap())
        .map(|target| target.display().to_string())
        .collect();

    let path = scratch.path("task.socket");
    let keeper = scratch.track(start_persistent(&path, numbers(0..2)).unwrap());
    let held = descriptors(keeper);
    for target in &theirs {
        assert!(
            !held.contains(target),
            "the keeper holds {target}: {held:?}"
        );
    }
    // Standard streams on /dev/null, its socket, its worker's channel and
    // the pidfd that names the worker.
    assert!(held.len() <= 7, "the keeper holds {held:?}");

    let mut ch = connect_persistent(&path).unwrap();
    assert_eq!(collect(&mut ch), ((0..2).collect(), None));
    assert_finished(keeper, &path);
    // SAFETY: both ends are this test's.
    unsafe {
        libc::close(pipe[0]);
        libc::close(pipe[1]);
    }
}

/// The children of process `pid`.
fn children(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default()
}

#[test]
fn a_second_start_at_a_live_address_is_refused_and_does_not_end_the_first() {
    let mut scratch = Scratch::new("probe");
    let path = scratch.path("task.socket");
    let keeper = scratch.track(start_persistent(&path, |_| Ok(())).unwrap());
    // Its callable has finished: it waits only for a collector now.
    eventually("the callable's process is collected", || {
        children(keeper).trim().is_empty()
    });
    assert_eq!(
        start_persistent(&path, numbers(0..1)).unwrap_err(),
        Error::Address
    );
    // Time for a keeper that took the start's probe for its collector to
    // leave (the test does not depend on it otherwise).
    std::thread::sleep(std::time::Duration::from_millis(100));
    let mut ch = connect_persistent(&path).unwrap();
    assert_eq!(collect(&mut ch), (vec![], None));
    assert_finished(keeper, &path);
}

#[test]
fn an_exchange_given_a_created_persistent_channel_never_kills_its_keeper() {
    let mut scratch = Scratch::new("add");
    let path = scratch.path("task.socket");
    let channel = match create_persistent(&path).unwrap() {
        Created::Child(mut ch) => {
            for n in 0..5u32 {
                if ch.send_value(&n).is_err() {
                    exit(ch, 1);
                }
            }
            exit(ch, 0);
        }
        Created::Parent(ch) => ch,
    };
    let keeper = scratch.track(channel.pid());
    let mut queue = Queue::with_options(1, Options::default());
    queue.add(channel).unwrap();
    assert_eq!(num(&queue.next().unwrap().unwrap()), 0);
    // The queue reads more ahead than the program took; then it goes.
    let _ = queue.store(100);
    drop(queue);

    assert!(alive(keeper), "dropping the queue killed the keeper");
    // What the program did not take goes to the next client.
    let mut ch = connect_persistent(&path).unwrap();
    assert_eq!(collect(&mut ch), ((1..5).collect(), None));
    assert_finished(keeper, &path);
}
