//! The one error type, and the one table of stable error codes shared with C.

use core::ffi::CStr;
use core::fmt;

use crate::os::{Errno, Pid, WaitStatus};

macro_rules! library_codes {
    ($($(#[$doc:meta])* $name:ident = $code:literal, $text:literal;)*) => {
        /// Stable numeric codes of library conditions, the C `PP_E*` values.
        /// Values are never reused; new codes get new numbers.
        pub mod code {
            $($(#[$doc])* pub const $name: i32 = $code;)*
        }

        /// The text of a library code, or `None` for an unknown one.
        fn library_text(code: i32) -> Option<&'static CStr> {
            match code {
                $($code => Some($text),)*
                _ => None,
            }
        }

        /// Every library code with its name, for checks against the C header.
        #[cfg(all(test, feature = "capi"))]
        pub(crate) const ALL_CODES: &[(&str, i32)] = &[$((stringify!($name), $code)),*];
    };
}

library_codes! {
    /// The peer closed the channel: no more messages.
    CLOSED = -1000, c"peer closed the channel";
    /// The peer process ended (exit status or signal) before answering.
    PEER = -1001, c"peer process ended before answering";
    /// The peer's callable reported an error.
    REMOTE = -1002, c"the peer's callable reported an error";
    /// A malformed frame arrived; the channel is broken.
    PROTO = -1003, c"malformed frame: the channel is broken";
    /// A message is larger than the buffer (it stays queued) or than the limit.
    TOOBIG = -1004, c"message too large for the buffer or the limit";
    /// The timeout passed before anything arrived.
    TIMEDOUT = -1005, c"timed out";
    /// The queue or map has no more results.
    DONE = -1006, c"no more results";
    /// The exchange is at its limit.
    BUSY = -1007, c"busy: the exchange is at its limit";
    /// A persistent address is unusable.
    ADDR = -1008, c"address unusable: too long, or an existing file that is not a stale socket";
    /// The peer's credentials were refused.
    PERM = -1009, c"peer credentials refused";
    /// An internal panic was caught at the C boundary.
    PANIC = -1010, c"internal panic caught";
    /// A bad argument (NULL pointer, zero size, wrong size).
    INVAL = -1011, c"invalid argument";
    /// A safe call refused to fork a process that has other threads.
    THREADS = -1012, c"refused to fork: the process has other threads";
}

/// Text for any code: `0`, a library code, or a negated `errno`; any other
/// value gives "unknown error code". Never fails.
pub fn describe(code: i32) -> &'static CStr {
    if code == 0 {
        return c"success";
    }
    if let Some(text) = library_text(code) {
        return text;
    }
    match code.checked_neg() {
        // Linux errno values end at 133 (EHWPOISON); strerror's text for an
        // unknown value lives in a shared buffer, so those get a fixed text.
        Some(errno @ 1..=133) => Errno(errno).text(),
        _ => c"unknown error code",
    }
}

fn text(code: i32) -> &'static str {
    describe(code).to_str().unwrap_or("unknown error")
}

/// Everything that can go wrong in pprocess.
///
/// Each error has a stable code ([`Error::code`], the C `PP_E*` values of
/// [`code`]) and a text ([`describe`]); a callable
/// fails its task with a [`RemoteError`]:
///
/// ```
/// use pprocess::error::{code, describe};
/// use pprocess::{start, Error, RemoteError, Result, REMOTE_MESSAGE_MAX};
///
/// assert_eq!(Error::Closed.code(), code::CLOSED);
/// assert_eq!(Error::Os(2).code(), -2); // -errno
/// assert_eq!(describe(code::TIMEDOUT).to_str(), Ok("timed out"));
/// assert_eq!(describe(-2).to_str(), Ok("No such file or directory"));
/// assert_eq!(Error::Threads.code(), code::THREADS);
///
/// let mut channel = start(|_channel| -> Result<(), RemoteError> {
///     Err(RemoteError::new(7, "bad input"))
/// })?;
/// let failed: Result<Vec<u8>> = channel.receive_vec();
/// assert_eq!(failed, Err(Error::Remote { code: 7 }));
/// let remote = channel.remote_error().unwrap();
/// assert_eq!((remote.code(), remote.message()), (7, "bad input"));
/// assert_eq!(remote.message_cstr().to_bytes(), b"bad input");
///
/// let long = "x".repeat(REMOTE_MESSAGE_MAX + 10);
/// assert_eq!(RemoteError::new(1, &long).message().len(), REMOTE_MESSAGE_MAX);
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed with this `errno`.
    Os(i32),
    /// The peer closed the channel normally: no more messages.
    Closed,
    /// The peer process ended before answering.
    PeerEnded {
        /// The process that ended.
        pid: Pid,
        /// How it ended.
        status: WaitStatus,
    },
    /// A persistent process's stream stopped without its end frame: the
    /// process died (or was killed), and results it had not delivered yet
    /// are missing. Its C code is `PP_EPEER`.
    StreamBroken,
    /// The peer's callable failed with this code; the message is kept by the
    /// channel ([`Channel::remote_error`](crate::Channel::remote_error)).
    Remote {
        /// The code the callable reported.
        code: i32,
    },
    /// A malformed frame arrived; the channel is broken.
    Protocol(ProtoError),
    /// A message of `size` bytes does not fit `capacity` (a receive buffer: the
    /// message stays queued; or the channel's maximum message size).
    TooBig {
        /// The message's size.
        size: usize,
        /// The buffer's capacity or the limit.
        capacity: usize,
    },
    /// A typed receive found a message of another size (it stays queued).
    WrongSize {
        /// The size of the requested type.
        expected: usize,
        /// The size of the message.
        actual: usize,
    },
    /// The timeout passed first.
    TimedOut,
    /// No more results.
    Done,
    /// At the limit.
    Busy,
    /// A persistent address is unusable.
    Address,
    /// The peer's credentials were refused.
    Permission,
    /// A panic was caught.
    Panic,
    /// A bad argument.
    Invalid,
    /// A safe call refused to fork because the process has other threads
    /// (see [`create`](crate::create)). In a `#[test]` (the test harness
    /// runs each test on a thread of its own), run the test's body with
    /// [`testing::in_new_process`](crate::testing::in_new_process); in a
    /// program, fork before starting threads, or take fork's contract with
    /// [`allow_fork_with_threads`](crate::process::allow_fork_with_threads)
    /// or the `_unchecked` calls.
    ///
    /// ```
    /// let text = pprocess::Error::Threads.to_string();
    /// assert!(text.starts_with("refused to fork: the process has other threads"));
    /// assert!(text.contains("pprocess::testing::in_new_process"));
    /// ```
    Threads,
    /// A C callback (an exchange's store function) returned this nonzero code.
    Callback {
        /// The callback's return value.
        code: i32,
    },
}

impl Error {
    /// The stable C code: a `PP_E*` value, or `-errno` for [`Error::Os`].
    pub fn code(&self) -> i32 {
        match *self {
            Error::Os(errno) => -errno,
            Error::Closed => code::CLOSED,
            Error::PeerEnded { .. } | Error::StreamBroken => code::PEER,
            Error::Remote { .. } => code::REMOTE,
            Error::Protocol(_) => code::PROTO,
            Error::TooBig { .. } => code::TOOBIG,
            Error::WrongSize { .. } | Error::Invalid => code::INVAL,
            Error::TimedOut => code::TIMEDOUT,
            Error::Done => code::DONE,
            Error::Busy => code::BUSY,
            Error::Address => code::ADDR,
            Error::Permission => code::PERM,
            Error::Panic => code::PANIC,
            Error::Threads => code::THREADS,
            Error::Callback { code } if code < 0 => code,
            Error::Callback { .. } => code::INVAL,
        }
    }
}

impl From<Errno> for Error {
    fn from(e: Errno) -> Error {
        Error::Os(e.0)
    }
}

#[cfg(feature = "alloc")]
impl From<alloc::collections::TryReserveError> for Error {
    /// An allocation that failed is `ENOMEM`, never an abort.
    fn from(_: alloc::collections::TryReserveError) -> Error {
        Error::from(Errno::NOMEM)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base = text(self.code());
        match *self {
            Error::Os(errno) => write!(f, "{base} (os error {errno})"),
            Error::PeerEnded { pid, status } => write!(f, "{base}: process {pid} {status}"),
            Error::Remote { code } => write!(f, "{base} (code {code})"),
            Error::Callback { code } => write!(f, "store callback returned {code}"),
            Error::Threads => write!(
                f,
                "{base} (in a #[test], run its body with \
                 pprocess::testing::in_new_process; in a program, fork before starting \
                 threads, or see allow_fork_with_threads)"
            ),
            Error::Protocol(why) => write!(f, "{base}: {why}"),
            Error::TooBig { size, capacity } => {
                write!(f, "{base}: {size} bytes, room for {capacity}")
            }
            Error::WrongSize { expected, actual } => {
                write!(
                    f,
                    "{base}: expected a {expected}-byte message, got {actual} bytes"
                )
            }
            _ => f.write_str(base),
        }
    }
}

impl core::error::Error for Error {}

/// Lets go of the outcome of a best-effort step, where a failure has
/// nobody to go to or changes nothing: a cleanup on a path that already
/// fails, a last word to a peer that may be gone, a process about to exit.
/// Each call says why. Naming it keeps these places apart from a result
/// dropped by mistake, which `let _ =` cannot.
pub(crate) fn best_effort<T, E>(outcome: core::result::Result<T, E>) {
    let _ignored = outcome;
}

/// The crate's result type.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Longest remote error message kept, in bytes; longer ones are truncated.
pub const REMOTE_MESSAGE_MAX: usize = 256;

/// An error reported by a callable in another process: a code and a message.
///
/// A callable returns it to fail its task; the creator's receive then fails
/// with [`Error::Remote`] and this value is kept by the channel.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteError {
    code: i32,
    /// UTF-8 text followed by a NUL, so C can borrow it as a string.
    text: [u8; REMOTE_MESSAGE_MAX + 1],
    len: usize,
}

impl RemoteError {
    /// A remote error with `code` and `message`, cut at the first NUL and
    /// truncated to [`REMOTE_MESSAGE_MAX`] bytes at a character boundary.
    ///
    /// ```
    /// use pprocess::{RemoteError, REMOTE_MESSAGE_MAX};
    ///
    /// let error = RemoteError::new(3, "bad key\0ignored");
    /// assert_eq!((error.code(), error.message()), (3, "bad key"));
    ///
    /// // 'é' is 2 bytes: one that would straddle the limit is left out whole.
    /// let long = format!("{}é", "x".repeat(REMOTE_MESSAGE_MAX - 1));
    /// assert_eq!(RemoteError::new(3, &long).message().len(), REMOTE_MESSAGE_MAX - 1);
    /// ```
    pub fn new(code: i32, message: &str) -> RemoteError {
        let message = message.split('\0').next().unwrap_or("");
        let mut len = message.len().min(REMOTE_MESSAGE_MAX);
        while !message.is_char_boundary(len) {
            len -= 1;
        }
        let mut text = [0; REMOTE_MESSAGE_MAX + 1];
        text[..len].copy_from_slice(&message.as_bytes()[..len]);
        RemoteError { code, text, len }
    }

    /// The code the callable reported.
    pub fn code(&self) -> i32 {
        self.code
    }

    /// The callable's message.
    pub fn message(&self) -> &str {
        // Always valid: built from a &str cut at a character boundary.
        core::str::from_utf8(&self.text[..self.len]).unwrap_or("")
    }

    /// The callable's message as a C string.
    pub fn message_cstr(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.text).unwrap_or(c"")
    }
}

impl fmt::Debug for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteError")
            .field("code", &self.code)
            .field("message", &self.message())
            .finish()
    }
}

impl From<Error> for RemoteError {
    /// A library error inside a callable travels as its code and text.
    fn from(e: Error) -> RemoteError {
        let mut message = heapless::String::<REMOTE_MESSAGE_MAX>::new();
        // A message that does not fit is cut short: fine for a message.
        best_effort(fmt::write(&mut message, format_args!("{e}")));
        RemoteError::new(e.code(), &message)
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "remote error {}: {}", self.code, self.message())
    }
}

impl core::error::Error for RemoteError {}

/// Why a frame was rejected (the wire format's errors, defined here, at the
/// bottom of the layers, and re-exported by the wire module).
///
/// ```
/// use pprocess::wire::{Header, Kind, ProtoError};
///
/// let mut bytes = Header::new(Kind::Data, 0, 5, 1).encode();
/// assert_eq!(Header::decode(&bytes, 4), Err(ProtoError::TooLong { length: 5, max: 4 }));
/// bytes[0] = b'X';
/// assert_eq!(Header::decode(&bytes, 64), Err(ProtoError::BadMagic));
/// assert_eq!(ProtoError::BadMagic.to_string(), "bad magic number");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtoError {
    /// The first two bytes are not the magic number.
    BadMagic,
    /// An unsupported version.
    BadVersion(u8),
    /// An unknown frame kind.
    BadKind(u8),
    /// Unknown flag bits or a nonzero reserved field.
    BadFlags,
    /// The payload length exceeds the receiver's maximum (or a kind's own limit).
    TooLong {
        /// The claimed length.
        length: u32,
        /// The largest length allowed here.
        max: usize,
    },
    /// The peer hung up in the middle of a frame.
    Truncated,
    /// An error frame whose payload is not a code and UTF-8 text.
    BadErrorPayload,
    /// A frame naming a task its receiver never gave the sender.
    UnknownTask(u64),
    /// An acknowledgement of a frame its receiver never sent.
    BadAck(u32),
    /// A batch frame whose payload is not its count of tasks.
    BadBatch,
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ProtoError::BadMagic => f.write_str("bad magic number"),
            ProtoError::BadVersion(v) => write!(f, "unsupported version {v}"),
            ProtoError::BadKind(k) => write!(f, "unknown frame kind {k}"),
            ProtoError::BadFlags => f.write_str("unknown flags or reserved bits set"),
            ProtoError::TooLong { length, max } => {
                write!(f, "frame of {length} bytes exceeds the maximum of {max}")
            }
            ProtoError::Truncated => f.write_str("peer hung up in the middle of a frame"),
            ProtoError::BadErrorPayload => f.write_str("malformed error frame"),
            ProtoError::UnknownTask(t) => write!(f, "frame names unknown task {t}"),
            ProtoError::BadAck(seq) => write!(f, "acknowledgement of frame {seq}, never sent"),
            ProtoError::BadBatch => f.write_str("malformed batch frame"),
        }
    }
}
