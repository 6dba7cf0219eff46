//! Version and errors.

use core::ffi::{c_char, c_int};

use super::guard;

/// Major version: releases with the same major version are ABI compatible.
pub const PP_VERSION_MAJOR: c_int = 0;
/// Minor version.
pub const PP_VERSION_MINOR: c_int = 1;
/// Patch version.
pub const PP_VERSION_PATCH: c_int = 0;

/// The peer closed the channel: no more messages.
pub const PP_ECLOSED: c_int = -1000;
/// The peer process ended (exit status or signal) before answering.
pub const PP_EPEER: c_int = -1001;
/// The peer's callable reported an error (see pp_channel_remote_error).
pub const PP_EREMOTE: c_int = -1002;
/// A malformed frame arrived; the channel is broken.
pub const PP_EPROTO: c_int = -1003;
/// A message is larger than the receive buffer (it stays queued), or a send
/// is larger than the channel's maximum message size.
pub const PP_ETOOBIG: c_int = -1004;
/// The timeout passed first.
pub const PP_ETIMEDOUT: c_int = -1005;
/// The queue or map has no more results.
pub const PP_EDONE: c_int = -1006;
/// The exchange is at its limit.
pub const PP_EBUSY: c_int = -1007;
/// A persistent address is unusable: too long, or an existing file that is not a stale socket.
pub const PP_EADDR: c_int = -1008;
/// The peer's credentials were refused.
pub const PP_EPERM: c_int = -1009;
/// An internal panic was caught at the C boundary.
pub const PP_EPANIC: c_int = -1010;
/// A bad argument: a NULL pointer, a zero size, a wrong size.
pub const PP_EINVAL: c_int = -1011;
/// A safe Rust call refused to fork a process with other threads (C calls
/// never refuse: see the header's note on forking and threads).
pub const PP_ETHREADS: c_int = -1012;

// The constants above are read by cbindgen for the header, not by Rust code;
// these checks tie them to Cargo.toml's version and to the one error table.
const _: () = {
    use crate::error::code;
    assert!(PP_VERSION_MAJOR == decimal(env!("CARGO_PKG_VERSION_MAJOR")));
    assert!(PP_VERSION_MINOR == decimal(env!("CARGO_PKG_VERSION_MINOR")));
    assert!(PP_VERSION_PATCH == decimal(env!("CARGO_PKG_VERSION_PATCH")));
    assert!(PP_ECLOSED == code::CLOSED);
    assert!(PP_EPEER == code::PEER);
    assert!(PP_EREMOTE == code::REMOTE);
    assert!(PP_EPROTO == code::PROTO);
    assert!(PP_ETOOBIG == code::TOOBIG);
    assert!(PP_ETIMEDOUT == code::TIMEDOUT);
    assert!(PP_EDONE == code::DONE);
    assert!(PP_EBUSY == code::BUSY);
    assert!(PP_EADDR == code::ADDR);
    assert!(PP_EPERM == code::PERM);
    assert!(PP_EPANIC == code::PANIC);
    assert!(PP_EINVAL == code::INVAL);
    assert!(PP_ETHREADS == code::THREADS);
};

/// A decimal number's value, at compile time.
const fn decimal(digits: &str) -> c_int {
    let digits = digits.as_bytes();
    let mut value = 0;
    let mut i = 0;
    while i < digits.len() {
        value = value * 10 + (digits[i] - b'0') as c_int;
        i += 1;
    }
    value
}

/// The library's version as a string, e.g. "0.1.0". Never NULL.
#[no_mangle]
pub extern "C" fn pp_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// A static, NUL-terminated description of `code`: 0, a PP_E* code or a
/// negated errno. Never NULL; unknown codes get a generic text.
#[no_mangle]
pub extern "C" fn pp_strerror(code: c_int) -> *const c_char {
    let mut text = c"internal panic caught".as_ptr();
    guard(|| {
        text = crate::error::describe(code).as_ptr();
        Ok(0)
    });
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_macros_match_cargo() {
        let version = format!("{PP_VERSION_MAJOR}.{PP_VERSION_MINOR}.{PP_VERSION_PATCH}");
        assert_eq!(version, env!("CARGO_PKG_VERSION"));
        // SAFETY: pp_version returns a static NUL-terminated string.
        let from_c = unsafe { core::ffi::CStr::from_ptr(pp_version()) };
        assert_eq!(from_c.to_str().unwrap(), version);
    }

    #[test]
    fn strerror_never_returns_null() {
        for code in [
            0,
            -1,
            -2,
            -133,
            -134,
            -999,
            -1000,
            -1011,
            -1012,
            5,
            i32::MIN,
        ] {
            let text = pp_strerror(code);
            assert!(!text.is_null());
            // SAFETY: pp_strerror returns a static NUL-terminated string.
            let text = unsafe { core::ffi::CStr::from_ptr(text) };
            assert!(!text.to_bytes().is_empty(), "code {code}");
        }
    }
}
