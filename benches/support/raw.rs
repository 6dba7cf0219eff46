//! The hand-written baselines' toolkit: the same system calls pprocess
//! makes, called directly through libc, as a careful C programmer would.
//!
//! A message is a little-endian `u32` length followed by the payload, written
//! with one `writev`; [`ACK`] in the length field is an acknowledgement. A
//! receiver reads ahead into 1 KiB, like pprocess, and reads a long payload
//! straight into the caller's buffer.
//!
//! Everything here panics on an unexpected failure: it is a benchmark.

use std::io;

/// The length field of an acknowledgement (no payload follows).
pub const ACK: u32 = u32::MAX;
const PREFIX: usize = 4;
const READ_AHEAD: usize = 1024;

/// Fails loudly on a `-1` from libc, with the system's error text.
fn check<T: Copy + PartialEq + From<i8>>(ret: T, what: &str) -> T {
    if ret == T::from(-1) {
        panic!("{what}: {}", io::Error::last_os_error());
    }
    ret
}

/// A connected pair of close-on-exec UNIX stream sockets.
pub fn socketpair() -> (i32, i32) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    check(
        unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        },
        "socketpair",
    );
    (fds[0], fds[1])
}

/// `close(2)`.
pub fn close(fd: i32) {
    // SAFETY: the caller owns `fd` and never uses it again.
    unsafe { libc::close(fd) };
}

/// Forks a process that runs `child` on its end of a new socket pair and
/// exits; the creator gets the pid and its end. The child first closes the
/// creator's end and `inherited` (the creator's other channels).
pub fn spawn(inherited: &[i32], child: impl FnOnce(&mut Conn)) -> (i32, Conn) {
    let (ours, theirs) = socketpair();
    // SAFETY: the benchmark is single-threaded; the child only uses its own
    // socket and plain memory, then leaves with _exit.
    match check(unsafe { libc::fork() }, "fork") {
        0 => {
            close(ours);
            for &fd in inherited {
                close(fd);
            }
            child(&mut Conn::new(theirs));
            // SAFETY: _exit has no preconditions; no destructors run.
            unsafe { libc::_exit(0) }
        }
        pid => {
            close(theirs);
            (pid, Conn::new(ours))
        }
    }
}

/// Blocks until `pid` ends; returns its raw wait status.
pub fn waitpid(pid: i32) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid int to write.
        match unsafe { libc::waitpid(pid, &mut status, 0) } {
            -1 if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => continue,
            ret => {
                check(ret, "waitpid");
                return status;
            }
        }
    }
}

/// `poll(2)` on `fds`; returns how many are ready.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> usize {
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structures.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    check(n, "poll") as usize
}

/// A `pollfd` watching `fd` for input.
pub fn pollin(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Pins the calling process to `cpu` (`None`: every CPU).
pub fn pin(cpu: Option<usize>) {
    // SAFETY: an all-zero cpu_set_t is a valid empty set; CPU_SET writes
    // inside it for any cpu below CPU_SETSIZE.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let cpus = match cpu {
        Some(cpu) => cpu..cpu + 1,
        None => 0..online_cpus(),
    };
    for cpu in cpus {
        // SAFETY: `set` is a valid cpu_set_t and cpu < CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `set` is a valid cpu_set_t of `size` bytes; 0 is this process.
    check(
        unsafe { libc::sched_setaffinity(0, size, &set) },
        "sched_setaffinity",
    );
}

/// Online processors.
pub fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

/// This process's peak resident set size in bytes (`getrusage`).
pub fn peak_rss() -> u64 {
    // SAFETY: an all-zero rusage is valid to pass for writing.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid rusage to write.
    check(
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) },
        "getrusage",
    );
    usage.ru_maxrss as u64 * 1024
}

/// This process's current resident set size in bytes (`/proc/self/statm`).
pub fn current_rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

/// What [`Conn::recv`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Msg {
    /// A message of this many bytes, now in the caller's buffer.
    Data(usize),
    /// An acknowledgement.
    Ack,
    /// The peer closed its end.
    Eof,
}

/// One end of a connected socket speaking length-prefixed messages.
pub struct Conn {
    pub fd: i32,
    buf: [u8; READ_AHEAD],
    start: usize,
    end: usize,
}

impl Conn {
    pub fn new(fd: i32) -> Conn {
        Conn {
            fd,
            buf: [0; READ_AHEAD],
            start: 0,
            end: 0,
        }
    }

    /// Sends `data` as one message: prefix and payload in one `writev`.
    pub fn send(&mut self, data: &[u8]) {
        self.write_prefixed(data.len() as u32, data);
    }

    /// Sends an acknowledgement.
    pub fn send_ack(&mut self) {
        self.write_prefixed(ACK, &[]);
    }

    fn write_prefixed(&mut self, len: u32, data: &[u8]) {
        let prefix = len.to_le_bytes();
        let parts = [&prefix[..], data];
        let total = PREFIX + data.len();
        let mut done = 0;
        while done < total {
            let mut iov = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; 2];
            let mut count = 0;
            let mut skip = done;
            for part in parts {
                if skip >= part.len() {
                    skip -= part.len();
                    continue;
                }
                iov[count] = libc::iovec {
                    iov_base: part[skip..].as_ptr() as *mut libc::c_void,
                    iov_len: part.len() - skip,
                };
                skip = 0;
                count += 1;
            }
            // SAFETY: the `count` iovecs point into `parts`, alive for the call.
            let n = unsafe { libc::writev(self.fd, iov.as_ptr(), count as i32) };
            if n == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            done += check(n, "writev") as usize;
        }
    }

    /// One `read` into the free read-ahead space; false at end of stream.
    pub fn fill(&mut self) -> bool {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == READ_AHEAD {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = read(self.fd, &mut self.buf[self.end..]);
        self.end += n;
        n > 0
    }

    /// Receives the next message into `out`, reading as needed.
    pub fn recv(&mut self, out: &mut [u8]) -> Msg {
        while self.end - self.start < PREFIX {
            if !self.fill() {
                return Msg::Eof;
            }
        }
        let len = self.take_prefix();
        if len == ACK {
            return Msg::Ack;
        }
        let len = len as usize;
        let buffered = (self.end - self.start).min(len);
        out[..buffered].copy_from_slice(&self.buf[self.start..self.start + buffered]);
        self.start += buffered;
        let mut filled = buffered;
        while filled < len {
            match read(self.fd, &mut out[filled..len]) {
                0 => panic!("peer hung up in the middle of a message"),
                n => filled += n,
            }
        }
        Msg::Data(len)
    }

    /// The next message if it is already complete in the read-ahead buffer.
    pub fn try_recv(&mut self, out: &mut [u8]) -> Option<Msg> {
        let avail = &self.buf[self.start..self.end];
        let len = u32::from_le_bytes(avail.get(..PREFIX)?.try_into().ok()?);
        if len != ACK && avail.len() < PREFIX + len as usize {
            return None;
        }
        Some(self.recv(out))
    }

    fn take_prefix(&mut self) -> u32 {
        let bytes = self.buf[self.start..self.start + PREFIX].try_into();
        self.start += PREFIX;
        u32::from_le_bytes(bytes.expect("four bytes"))
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        close(self.fd);
    }
}

/// One `read(2)`, retried on `EINTR`; 0 at end of stream.
fn read(fd: i32, buf: &mut [u8]) -> usize {
    loop {
        // SAFETY: `buf` is a valid writable region of `buf.len()` bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return check(n, "read") as usize;
    }
}
