//! How a failed task's process ended, for bindings that report it (the
//! Python package names the pid and the signal in its exception).

use core::ffi::c_int;

use super::exchange::last_failure;
use super::{guard, write_out};
use crate::error::Error;

use super::exchange::pp_exchange;

/// The pid and raw wait status (decode with WIFSIGNALED and friends) of the
/// process whose end failed the last result handed out by pp_exchange_next,
/// pp_exchange_next_alloc or pp_map_get (PP_EPEER). Returns 1 and writes
/// *pid and *status (either may be NULL) if that failure was a process that
/// ended before answering; else 0 (no failure, another kind of failure, or a
/// persistent stream cut off, whose process is not this one's child).
///
/// ```c
/// if (pp_exchange_next(map, buf, sizeof buf, &len) == PP_EPEER
///     && pp_exchange_task_status(map, &pid, &status) == 1
///     && WIFSIGNALED(status))
///     printf("process %d killed by signal %d\n", pid, WTERMSIG(status));
/// ```
#[no_mangle]
pub extern "C" fn pp_exchange_task_status(
    ex: *const pp_exchange,
    pid: *mut c_int,
    status: *mut c_int,
) -> c_int {
    guard(|| {
        // SAFETY: the handle comes from the C caller as documented.
        let Some(failure) = unsafe { last_failure(ex) }? else {
            return Ok(0);
        };
        let Error::PeerEnded {
            pid: ended,
            status: how,
        } = failure.error
        else {
            return Ok(0);
        };
        // SAFETY: the outputs are NULL (skipped) or writable, per the contract.
        unsafe {
            if !pid.is_null() {
                write_out(pid, ended)?;
            }
            if !status.is_null() {
                write_out(status, how.0)?;
            }
        }
        Ok(1)
    })
}
