//! Persistent addresses: what can name one, and the check that it fits a
//! socket path.

use crate::error::{Error, Result};
use crate::sys::SocketPath;

/// Something usable as a persistent address: a path, as text or bytes.
///
/// See the example on [`create_persistent`](super::create_persistent).
pub trait AsAddress {
    /// The path's bytes (no NUL inside).
    fn address_bytes(&self) -> &[u8];
}

impl<T: AsAddress + ?Sized> AsAddress for &T {
    fn address_bytes(&self) -> &[u8] {
        (**self).address_bytes()
    }
}

impl AsAddress for str {
    fn address_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsAddress for [u8] {
    fn address_bytes(&self) -> &[u8] {
        self
    }
}

impl AsAddress for core::ffi::CStr {
    fn address_bytes(&self) -> &[u8] {
        self.to_bytes()
    }
}

impl AsAddress for alloc::string::String {
    fn address_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

#[cfg(feature = "std")]
impl AsAddress for std::ffi::OsStr {
    fn address_bytes(&self) -> &[u8] {
        std::os::unix::ffi::OsStrExt::as_bytes(self)
    }
}

#[cfg(feature = "std")]
impl AsAddress for std::path::Path {
    fn address_bytes(&self) -> &[u8] {
        self.as_os_str().address_bytes()
    }
}

#[cfg(feature = "std")]
impl AsAddress for std::path::PathBuf {
    fn address_bytes(&self) -> &[u8] {
        self.as_os_str().address_bytes()
    }
}

/// Checks an address: [`Error::Address`] if it cannot be a socket path.
pub(super) fn socket_path(address: impl AsAddress) -> Result<SocketPath> {
    SocketPath::new(address.address_bytes()).ok_or(Error::Address)
}
