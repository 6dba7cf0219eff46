//! Monotonic deadlines for timeouts.

/// A point in time on the monotonic clock, or "never".
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    /// Milliseconds on the monotonic clock; `None` waits forever.
    at_ms: Option<u64>,
}

/// Nanoseconds on the monotonic clock (since an arbitrary point).
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn now_ms() -> u64 {
    now_ns() / 1_000_000
}

impl Deadline {
    /// `timeout_ms` from now; a negative timeout never expires, and a zero
    /// one has expired already (without reading the clock).
    pub fn after(timeout_ms: i32) -> Deadline {
        let at_ms = match timeout_ms {
            0 => Some(0),
            t => u64::try_from(t).ok().map(|t| now_ms() + t),
        };
        Deadline { at_ms }
    }

    /// Milliseconds left, for `poll`: `-1` forever, `0` when expired.
    pub fn remaining_ms(&self) -> i32 {
        match self.at_ms {
            None => -1,
            Some(0) => 0,
            Some(at) => at.saturating_sub(now_ms()).min(i32::MAX as u64) as i32,
        }
    }

    /// True once the deadline has passed.
    pub fn expired(&self) -> bool {
        self.remaining_ms() == 0
    }
}
