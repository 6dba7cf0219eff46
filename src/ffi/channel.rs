//! Processes and channels: pp_create, pp_start, pp_exit, pp_send*, pp_receive*,
//! pp_channel_*, pp_waitall, pp_number_of_cores.

use core::ffi::{c_char, c_int, c_void, CStr};

use super::{
    bytes, bytes_mut, channel, channel_from_handle, channel_into_handle, guard, guard_void,
    pp_channel, require, write_out,
};
use crate::channel::Channel;
use crate::error::{best_effort, Error, RemoteError};
use crate::process::{self, Created};
use crate::sys;

/// A parallel-aware callable, run in the created process with that process's
/// end of the channel and a copy of the argument bytes. Returning nonzero sends
/// an error frame with that code to the creator, whose receive then fails with
/// PP_EREMOTE. The callable must not close `channel`; it may call pp_exit.
#[allow(non_camel_case_types)]
pub type pp_callable = Option<
    unsafe extern "C" fn(channel: *mut pp_channel, arg: *const c_void, arg_len: usize) -> c_int,
>;

/// Runs a C callable as a Rust one: a nonzero return becomes a remote error.
pub(crate) fn call_c(
    callable: unsafe extern "C" fn(*mut pp_channel, *const c_void, usize) -> c_int,
    ch: &mut Channel,
    arg: &[u8],
) -> Result<(), RemoteError> {
    // SAFETY: the C caller promised `callable` is a valid function taking these
    // arguments; `channel` is a live, exclusively borrowed channel and `arg`
    // is a valid byte range.
    let handle: *mut Channel = ch;
    let rc = unsafe { callable(handle.cast(), arg.as_ptr().cast(), arg.len()) };
    if rc == 0 {
        return Ok(());
    }
    let mut text = heapless::String::<64>::new();
    // "callable returned " and an i32 fit 64 bytes.
    best_effort(core::fmt::write(
        &mut text,
        format_args!("callable returned {rc}"),
    ));
    Err(RemoteError::new(rc, &text))
}

/// Creates a process connected by a channel (fork-style). In the creator it
/// returns the new process's pid (> 0) and stores the channel to it in *out;
/// in the new process it returns 0 and stores the channel to the creator in
/// *out. The new process should finish with pp_exit.
#[no_mangle]
pub extern "C" fn pp_create(out: *mut *mut pp_channel) -> c_int {
    guard(|| {
        require(out)?;
        // SAFETY: C callers fork as fork(2) does: the header states the
        // contract for processes with other threads.
        let (pid, channel) = match unsafe { process::create_unchecked() }? {
            Created::Parent(channel) => (channel.pid(), channel),
            Created::Child(channel) => (0, channel),
        };
        // SAFETY: `out` was checked non-NULL; the caller passes writable storage.
        unsafe { write_out(out, channel_into_handle(channel)) }?;
        Ok(pid)
    })
}

/// Runs callable(channel, arg, arg_len) in a new process and stores the creator's end
/// of the channel in *out; returns the new process's pid. The argument bytes
/// are copied into the new process (they need not outlive the call). The
/// process exits after the callable returns: status 0, or 1 after an error frame.
#[no_mangle]
pub extern "C" fn pp_start(
    callable: pp_callable,
    arg: *const c_void,
    arg_len: usize,
    out: *mut *mut pp_channel,
) -> c_int {
    guard(|| {
        require(out)?;
        let callable = callable.ok_or(Error::Invalid)?;
        // SAFETY: the caller passes `arg_len` readable bytes at `arg`.
        let arg = unsafe { bytes(arg, arg_len) }?;
        // SAFETY: C callers fork as fork(2) does: the header states the
        // contract for processes with other threads.
        let channel =
            unsafe { process::start_unchecked(|channel| call_c(callable, channel, arg)) }?;
        let pid = channel.pid();
        // SAFETY: `out` was checked non-NULL.
        unsafe { write_out(out, channel_into_handle(channel)) }?;
        Ok(pid)
    })
}

/// Ends a created process: what was sent stays deliverable, C stdio is
/// flushed, and the process exits with `status` at once (its descriptors,
/// the channel's among them, are closed by the exit). `channel` may be the
/// one a pp_start or pp_exchange_start callable was given, one from
/// pp_create, or NULL. Does not return.
#[no_mangle]
pub extern "C" fn pp_exit(channel: *mut pp_channel, status: c_int) -> ! {
    // Nothing is freed: the process ends now, and a callable's channel is
    // not a handle of its own. Answers a reused worker holds go out first.
    // Inside the panic boundary like every export: a panic here still ends
    // in the exit below.
    guard_void(|| {
        // SAFETY: NULL or a live handle, as documented (`channel` checks NULL).
        if let Ok(ch) = unsafe { super::channel(channel) } {
            // The process ends now: a peer that is gone cannot be told.
            best_effort(ch.flush());
        }
    });
    sys::flush_stdio();
    sys::exit_now(status)
}

/// Sends `len` bytes as one message (data may be NULL when len is 0).
#[no_mangle]
pub extern "C" fn pp_send(ch: *mut pp_channel, data: *const c_void, len: usize) -> c_int {
    guard(|| {
        // SAFETY: handle and buffer come from the C caller as documented.
        let (ch, data) = unsafe { (channel(ch)?, bytes(data, len)?) };
        ch.send(data).map(|()| 0)
    })
}

/// Sends `len` bytes and waits until the peer has received them. Messages the
/// peer sends meanwhile are kept for later receives.
#[no_mangle]
pub extern "C" fn pp_send_acked(ch: *mut pp_channel, data: *const c_void, len: usize) -> c_int {
    guard(|| {
        // SAFETY: handle and buffer come from the C caller as documented.
        let (ch, data) = unsafe { (channel(ch)?, bytes(data, len)?) };
        ch.send_acked(data).map(|()| 0)
    })
}

/// Sends an error frame: the peer's next receive fails with PP_EREMOTE and
/// pp_channel_remote_error gives `code` and `message` (NULL for none;
/// truncated to 256 bytes; invalid UTF-8 is replaced with U+FFFD).
#[no_mangle]
pub extern "C" fn pp_send_error(ch: *mut pp_channel, code: c_int, message: *const c_char) -> c_int {
    guard(|| {
        // SAFETY: the handle comes from the C caller as documented.
        let ch = unsafe { channel(ch) }?;
        let text = if message.is_null() {
            Default::default()
        } else {
            // SAFETY: a non-NULL message is a NUL-terminated string.
            unsafe { CStr::from_ptr(message) }.to_string_lossy()
        };
        ch.send_error(&RemoteError::new(code, &text)).map(|()| 0)
    })
}

/// Receives one message into buf (capacity cap), waiting as long as it takes,
/// and stores its length in *len. PP_ETOOBIG: the message is larger than cap;
/// *len is set to the size needed and the message stays queued. In a reused
/// worker's callable it sees only its own task's messages (see
/// pp_exchange_start): PP_ECLOSED there can mean "no more for this task".
#[no_mangle]
pub extern "C" fn pp_receive(
    ch: *mut pp_channel,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
) -> c_int {
    pp_receive_timeout(ch, buf, cap, len, -1)
}

/// pp_receive, giving up with PP_ETIMEDOUT when no message starts within
/// timeout_ms milliseconds (any negative value waits forever, 0 polls once).
/// A message that has started arriving is read to its end.
#[no_mangle]
pub extern "C" fn pp_receive_timeout(
    ch: *mut pp_channel,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
    timeout_ms: c_int,
) -> c_int {
    guard(|| {
        require(len)?;
        // SAFETY: handle and buffer come from the C caller as documented.
        let (ch, buf) = unsafe { (channel(ch)?, bytes_mut(buf, cap)?) };
        let received = ch.receive_timeout(buf, timeout_ms);
        let n = match received {
            Err(Error::TooBig { size, .. }) => size,
            Err(e) => return Err(e),
            Ok(n) => n,
        };
        // SAFETY: `len` was checked non-NULL.
        unsafe { write_out(len, n) }?;
        received.map(|_| 0)
    })
}

/// Receives one message into memory the library allocates; stores it in
/// *data and its length in *len. Free it with pp_free. -ENOMEM when there
/// is no memory for it: the message stays queued for the next receive.
#[no_mangle]
pub extern "C" fn pp_receive_alloc(
    ch: *mut pp_channel,
    data: *mut *mut c_void,
    len: *mut usize,
) -> c_int {
    guard(|| {
        require(data)?;
        require(len)?;
        // SAFETY: the handle comes from the C caller as documented.
        let ch = unsafe { channel(ch) }?;
        // Straight into C heap memory: a message too large for the heap
        // fails with ENOMEM and stays queued.
        let (copy, size) = ch.receive_into(-1, super::CHeap::new)?.release();
        // SAFETY: both were checked non-NULL.
        unsafe {
            write_out(data, copy)?;
            write_out(len, size)?;
        }
        Ok(0)
    })
}

/// Frees memory the library allocated (pp_receive_alloc, pp_exchange_next_alloc).
/// NULL is fine.
#[no_mangle]
pub extern "C" fn pp_free(data: *mut c_void) {
    // SAFETY: `data` is NULL or came from the library's malloc, per the contract.
    guard_void(|| unsafe { sys::free(data.cast()) });
}

/// The code and message of the last error frame received on ch. Returns 1 and
/// writes *code and *message (owned by the channel, valid until the next
/// receive or close; either pointer may be NULL) if there is one, else 0.
#[no_mangle]
pub extern "C" fn pp_channel_remote_error(
    ch: *const pp_channel,
    code: *mut c_int,
    message: *mut *const c_char,
) -> c_int {
    guard(|| {
        // SAFETY: the handle comes from the C caller as documented.
        let ch = unsafe { channel(ch) }?;
        let Some(remote) = ch.remote_error() else {
            return Ok(0);
        };
        super::write_remote(remote, code, message)?;
        Ok(1)
    })
}

/// The created process's pid seen from its creator; 0 on the created side or
/// for other channels; PP_EINVAL for NULL.
#[no_mangle]
pub extern "C" fn pp_channel_pid(ch: *const pp_channel) -> c_int {
    // SAFETY: the handle comes from the C caller as documented.
    guard(|| Ok(unsafe { channel(ch) }?.pid()))
}

/// The channel's socket descriptor, for the caller's own poll or epoll loop.
/// It stays owned by the channel. The channel reads ahead, so after waking up
/// receive until pp_channel_pending returns 0 (or use
/// pp_receive_timeout(..., 0)) before polling again: a message already read
/// into the channel does not make the descriptor readable.
#[no_mangle]
pub extern "C" fn pp_channel_fd(ch: *const pp_channel) -> c_int {
    // SAFETY: the handle comes from the C caller as documented.
    guard(|| Ok(unsafe { channel(ch) }?.raw_fd()))
}

/// 1 if a message (or the end of the channel) can be received without
/// waiting on the descriptor, because it was already read ahead; else 0.
#[no_mangle]
pub extern "C" fn pp_channel_pending(ch: *const pp_channel) -> c_int {
    guard(|| {
        // SAFETY: the handle comes from the C caller as documented.
        let ch = unsafe { channel(ch) }?;
        Ok(c_int::from(ch.has_buffered() || ch.is_ended()))
    })
}

/// Sets the largest message this side sends or accepts (default 64 MiB). A
/// larger send fails with PP_ETOOBIG; a larger incoming frame is a protocol
/// error (PP_EPROTO) that breaks the channel.
#[no_mangle]
pub extern "C" fn pp_channel_set_max_message(ch: *mut pp_channel, max: usize) -> c_int {
    // SAFETY: the handle comes from the C caller as documented.
    guard(|| unsafe { channel(ch) }?.set_max_message(max).map(|()| 0))
}

/// Waits for the created process to end and stores its raw wait status in
/// *status (NULL to skip; decode with WIFEXITED and friends). Returns its pid.
/// The status is collected once and remembered. -ECHILD if pp_waitall
/// collected it first; PP_EINVAL on the created process's side.
#[no_mangle]
pub extern "C" fn pp_channel_wait(ch: *mut pp_channel, status: *mut c_int) -> c_int {
    guard(|| {
        // SAFETY: the handle comes from the C caller as documented.
        let ch = unsafe { channel(ch) }?;
        let ended = ch.wait()?;
        if !status.is_null() {
            // SAFETY: non-NULL status is writable, per the contract.
            unsafe { write_out(status, ended.0) }?;
        }
        Ok(ch.pid())
    })
}

/// pp_channel_wait for at most timeout_ms milliseconds (-1 forever, 0 just
/// look): PP_ETIMEDOUT if the process is still running then.
#[no_mangle]
pub extern "C" fn pp_channel_wait_timeout(
    ch: *mut pp_channel,
    status: *mut c_int,
    timeout_ms: c_int,
) -> c_int {
    guard(|| {
        // SAFETY: the handle comes from the C caller as documented.
        let ch = unsafe { channel(ch) }?;
        let ended = ch.wait_timeout(timeout_ms)?;
        if !status.is_null() {
            // SAFETY: non-NULL status is writable, per the contract.
            unsafe { write_out(status, ended.0) }?;
        }
        Ok(ch.pid())
    })
}

/// Closes and frees a channel (NULL is fine; must not be called twice). A
/// created process still running is collected later, by the next create or
/// by pp_waitall.
#[no_mangle]
pub extern "C" fn pp_channel_close(ch: *mut pp_channel) {
    guard_void(|| {
        // SAFETY: a non-NULL handle came from this library and is given up here.
        drop(unsafe { channel_from_handle(ch) });
    });
}

/// Waits for every child process of this process to end; returns how many.
#[no_mangle]
pub extern "C" fn pp_waitall() -> c_int {
    guard(|| Ok(process::waitall()?.min(c_int::MAX as usize) as c_int))
}

/// The number of online processors.
#[no_mangle]
pub extern "C" fn pp_number_of_cores() -> c_int {
    guard(|| Ok(process::number_of_cores().min(c_int::MAX as usize) as c_int))
}
