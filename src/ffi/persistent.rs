//! Persistent and background processes: pp_create_persistent, pp_start_persistent,
//! pp_connect, pp_exchange_connect, pp_exchange_start_persistent.

use core::ffi::{c_char, c_int, c_void, CStr};

use super::channel::call_c;
use super::exchange::{exchange, pp_exchange};
use super::{bytes, channel_into_handle, guard, pp_callable, pp_channel, require, write_out};
use crate::error::{Error, Result};
use crate::exchange::CreatedTask;
use crate::persistent;
use crate::process::{Created, ForkCheck};

/// Borrows a NUL-terminated address from C; NULL is `PP_EINVAL`.
///
/// # Safety
/// A non-NULL `ptr` must point at a NUL-terminated string that outlives `'a`.
unsafe fn address<'a>(ptr: *const c_char) -> Result<&'a CStr> {
    if ptr.is_null() {
        return Err(Error::Invalid);
    }
    // SAFETY: non-NULL and, per the caller, NUL-terminated.
    Ok(unsafe { CStr::from_ptr(ptr) })
}

/// Creates a process whose channel survives disconnection (fork-style,
/// pprocess's create_persistent). A background "keeper" process listens at
/// `address` (a socket file, mode 0600) and keeps everything the new process
/// sends until a client acknowledges it.
///
/// In the creator it returns the keeper's pid (> 0) and stores in *out a
/// channel connected to `address`, as pp_connect gives: receive from it, or
/// close it and connect again later, from this or another process. In the
/// new process it returns 0 and stores in *out its channel to the keeper:
/// send results on it and finish with pp_exit. The keeper is the creator's
/// child (collect it with pp_channel_wait or pp_waitall once the results are
/// delivered); the new process is the keeper's child and keeps the creator's
/// standard streams. The keeper removes the socket file and exits once the
/// new process has finished and a client has acknowledged every result.
///
/// PP_EADDR: address is empty or longer than 107 bytes, or an existing file
/// is there that is not a stale socket of this user (a stale socket, with
/// nobody listening, is replaced).
#[no_mangle]
pub extern "C" fn pp_create_persistent(address: *const c_char, out: *mut *mut pp_channel) -> c_int {
    guard(|| {
        require(out)?;
        // SAFETY: the C caller passes a NUL-terminated address.
        let address = unsafe { self::address(address) }?;
        let (pid, channel) = match persistent::create_persistent_as(ForkCheck::Accepted, address)? {
            Created::Parent(channel) => (channel.pid(), channel),
            Created::Child(channel) => (0, channel),
        };
        // SAFETY: `out` was checked non-NULL.
        unsafe { write_out(out, channel_into_handle(channel)) }?;
        Ok(pid)
    })
}

/// Runs callable(channel, arg, arg_len) in a detached background process
/// listening at `address` (pprocess's BackgroundCallable / start_persistent)
/// and returns the pid of the process listening there. The argument bytes
/// are copied. Collect the results later with pp_connect or
/// pp_exchange_connect, from this process or another one of the same user;
/// this process may exit at once.
///
/// The address is listening when this returns; its socket file is mode 0600
/// and peers of another user are refused. The background process is in a
/// new session, is not a child of the caller, and has its standard input,
/// output and error on /dev/null (open, so the callable's prints succeed and
/// go nowhere; pprocess closed them). It keeps every result the callable
/// sends, and the callable's error (a nonzero return), until a client
/// acknowledges it; results a client did not acknowledge before it
/// disconnected go to the next client. After the callable has returned and
/// every result is acknowledged, it removes the socket file and exits. The
/// callable's receives take what clients send (pp_send on a pp_connect
/// channel); a client's pp_send_acked returns once the callable has received
/// the message. What a client sent and the callable never received is
/// reported to the clients as an error result (remote code PP_ECLOSED).
///
/// PP_EADDR as for pp_create_persistent.
#[no_mangle]
pub extern "C" fn pp_start_persistent(
    address: *const c_char,
    callable: pp_callable,
    arg: *const c_void,
    arg_len: usize,
) -> c_int {
    guard(|| {
        let callable = callable.ok_or(Error::Invalid)?;
        // SAFETY: the C caller passes a NUL-terminated address and `arg_len`
        // readable bytes at `arg`.
        let (address, arg) = unsafe { (self::address(address)?, bytes(arg, arg_len)?) };
        persistent::start_persistent_as(ForkCheck::Accepted, address, |channel| {
            call_c(callable, channel, arg)
        })
    })
}

/// Connects to the persistent process listening at `address` (pprocess's
/// connect_persistent) and stores the channel in *out; returns 0. Receive the
/// results from it: each is acknowledged as it is received, and the receive
/// after the last one reports PP_ECLOSED (the process ended the stream with
/// an end frame). A stream cut off without it (the process died) reports
/// PP_EPEER instead, so missing results are never taken for a complete
/// delivery. A failed callable's error comes out as PP_EREMOTE (see
/// pp_channel_remote_error). What the channel sends goes to the callable's
/// receives. One client is served at a time: a receive waits while another
/// client is connected.
///
/// -ENOENT: nothing at the address; -ECONNREFUSED: nobody listens there (the
/// work finished and was collected, or its process died); PP_EPERM: the
/// listener belongs to another user; PP_EADDR: an unusable address, or a
/// symbolic link at it (which is never followed). A client that sends a
/// malformed frame is disconnected, its receive failing with PP_EREMOTE
/// (remote code PP_EPROTO).
#[no_mangle]
pub extern "C" fn pp_connect(address: *const c_char, out: *mut *mut pp_channel) -> c_int {
    guard(|| {
        require(out)?;
        // SAFETY: the C caller passes a NUL-terminated address.
        let address = unsafe { self::address(address) }?;
        let channel = persistent::connect_persistent(address)?;
        // SAFETY: `out` was checked non-NULL.
        unsafe { write_out(out, channel_into_handle(channel)) }?;
        Ok(0)
    })
}

/// Connects to the persistent process at `address` and monitors the
/// connection as a new task of the exchange, once the exchange is below its
/// limit (pprocess's PersistentQueue.connect); returns the task id. Every
/// result the process sends is stored for that task (a queue gets each one
/// from pp_exchange_next), and the task ends when the process has delivered
/// everything. Errors as for pp_connect.
///
/// In a queue or map, a result is acknowledged when pp_exchange_next (or
/// pp_exchange_next_alloc) takes it, not when the exchange stores it: the
/// results stored but not taken when this process dies or frees the
/// exchange go to the process's next client. At most 32 wait in the
/// exchange; the rest stay with the process until earlier ones are taken,
/// and its connection ends only once every result is acknowledged, so
/// pp_exchange_finish, and pp_exchange_wait, pp_exchange_add_wait or this
/// call at the limit, acknowledge every result stored so far instead of
/// waiting forever. With a store callback, a result is acknowledged as the
/// callback receives it.
///
/// pprocess's BackgroundQueue(address) is pp_queue_new(1, 0, &q) followed by
/// pp_exchange_connect(q, address).
#[no_mangle]
pub extern "C" fn pp_exchange_connect(ex: *mut pp_exchange, address: *const c_char) -> c_int {
    guard(|| {
        // SAFETY: handle and address come from the C caller as documented.
        let (ex, address) = unsafe { (exchange(ex)?, self::address(address)?) };
        let task = ex.connect(address)?;
        Ok(task.index().min(c_int::MAX as usize) as c_int)
    })
}

/// Runs callable(channel, arg, arg_len) in a background process listening at
/// `address`, once the exchange is below its limit (as every start does),
/// exactly as pp_start_persistent does (pprocess's
/// PersistentExchange.manage(address, callable)), and returns its pid. The
/// exchange does not monitor it: collect its results with
/// pp_exchange_connect, on this exchange or another, in this process or a
/// later one.
#[no_mangle]
pub extern "C" fn pp_exchange_start_persistent(
    ex: *mut pp_exchange,
    address: *const c_char,
    callable: pp_callable,
    arg: *const c_void,
    arg_len: usize,
) -> c_int {
    guard(|| {
        let callable = callable.ok_or(Error::Invalid)?;
        // SAFETY: handle, address and buffer come from the C caller as documented.
        let (ex, address, arg) =
            unsafe { (exchange(ex)?, self::address(address)?, bytes(arg, arg_len)?) };
        ex.start_persistent(address, |channel| call_c(callable, channel, arg))
    })
}

/// Creates a process whose channel survives disconnection, monitored by the
/// exchange (pprocess's PersistentExchange.create), once the exchange is
/// below its limit. In the new process it returns 0 and stores in *child its
/// channel to its keeper, as pp_create_persistent does (send results, finish
/// with pp_exit). In the creator it returns the keeper's pid (> 0), and the
/// exchange stores the results as for pp_exchange_connect: a queue's
/// pp_exchange_next acknowledges each as it takes it, and those not taken go
/// to the address's next client. The exchange never kills the keeper; it is
/// collected once it exits. PP_EADDR as for pp_create_persistent.
#[no_mangle]
pub extern "C" fn pp_exchange_create_persistent(
    ex: *mut pp_exchange,
    address: *const c_char,
    child: *mut *mut pp_channel,
) -> c_int {
    guard(|| {
        require(child)?;
        // SAFETY: handle and address come from the C caller as documented.
        let (ex, address) = unsafe { (exchange(ex)?, self::address(address)?) };
        match ex.create_persistent(address)? {
            CreatedTask::Parent { pid, .. } => Ok(pid),
            CreatedTask::Child(channel) => {
                // SAFETY: `child` was checked non-NULL.
                unsafe { write_out(child, channel_into_handle(channel)) }?;
                Ok(0)
            }
        }
    })
}

/// Detaches this process from the streams it shares with its creator
/// (pprocess's close_streams): flushes stdout, then points standard input,
/// output and error at /dev/null (they stay open, so later prints succeed and
/// go nowhere). A background process of pp_start_persistent has this done
/// already; a process of pp_create_persistent keeps its creator's streams
/// until it calls this. Returns 0, or -errno.
#[no_mangle]
pub extern "C" fn pp_close_streams() -> c_int {
    guard(|| persistent::close_streams().map(|()| 0))
}
