//! Memory barriers in other processes:
//! [membarrier(2)](https://man7.org/linux/man-pages/man2/membarrier.2.html).
//!
//! Two processes that each store a word and then load the other's (a
//! Dekker handshake, such as a ring's tail and its wake-up flag) need a full
//! fence between the store and the load on both sides. When one side runs
//! it often and the other rarely, the frequent side may use a compiler
//! fence alone if the rare side calls [`barrier_in_joined`]: that runs a full
//! barrier on every CPU running a process that called [`join_barriers`],
//! so each frequent store and load is ordered as if it had its own fence
//! (the asymmetric fence of Folly and of userspace RCU).

use super::{cvt, Result};

/// `MEMBARRIER_CMD_GLOBAL_EXPEDITED`.
const GLOBAL_EXPEDITED: libc::c_int = 1 << 1;
/// `MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED`.
const REGISTER_GLOBAL_EXPEDITED: libc::c_int = 1 << 2;

fn membarrier(cmd: libc::c_int) -> Result<()> {
    // SAFETY: membarrier takes two integers and touches no memory of ours;
    // an unknown or refused command is an error return.
    let ret = unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0u32, 0 as libc::c_int) };
    cvt(ret).map(drop)
}

/// Makes this process a target of [`barrier_in_joined`]. An error
/// (`EINVAL` on a kernel without it, `ENOSYS` or `EPERM` where a filter
/// refuses it) means the process must fence for itself.
pub fn join_barriers() -> Result<()> {
    membarrier(REGISTER_GLOBAL_EXPEDITED)
}

/// A full memory barrier in this thread and on every CPU that runs a
/// thread of a process that called [`join_barriers`] (one that does not
/// run now passes a barrier when it is next scheduled).
pub fn barrier_in_joined() -> Result<()> {
    membarrier(GLOBAL_EXPEDITED)
}

/// For tests: from now on, this thread's [`barrier_in_joined`] fails with
/// `EPERM` (a seccomp filter of this thread alone, as a sandbox installed
/// after the workers started would be). False where it cannot be installed.
#[cfg(test)]
pub(crate) fn refuse_barriers_in_this_thread() -> bool {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const ALLOW: u32 = 0x7fff_0000;
    const ERRNO: u32 = 0x0005_0000;
    let filter = [
        libc::sock_filter {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0,
        }, // nr
        libc::sock_filter {
            code: JEQ_K,
            jt: 0,
            jf: 3,
            k: libc::SYS_membarrier as u32,
        },
        libc::sock_filter {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 16,
        }, // args[0] (low half)
        libc::sock_filter {
            code: JEQ_K,
            jt: 0,
            jf: 1,
            k: GLOBAL_EXPEDITED as u32,
        },
        libc::sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: ERRNO | libc::EPERM as u32,
        },
        libc::sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: ALLOW,
        },
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut _,
    };
    // SAFETY: prctl with integer arguments and a filter program that lives
    // across the call; the kernel copies it.
    unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            && libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const _,
            ) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_joined_can_be_sent_a_barrier() {
        // Where the kernel or a filter refuses joining, the rings fence
        // for themselves and no barrier is ever run.
        match join_barriers() {
            Ok(()) => barrier_in_joined().expect("a barrier after joining"),
            Err(e) => std::eprintln!("skipped: joining refused here ({e:?})"),
        }
    }
}
