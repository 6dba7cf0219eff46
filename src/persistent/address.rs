//! Persistent addresses: what can name one, and the check that it fits a
//! socket path.

use crate::error::{Error, Result};
use crate::sys::SocketPath;

/// Something usable as a persistent address: a filesystem path, given as a
/// `str`, `String`, byte slice, `CStr`, `OsStr`, `Path` or `PathBuf` (or a
/// reference to one), or as a type of your own that yields the path's bytes.
///
/// Every persistent call takes `impl AsAddress`. An address that cannot be a
/// UNIX socket path (empty, longer than 107 bytes, or with a NUL inside)
/// fails with [`Error::Address`] before anything is created or connected.
///
/// ```
/// use pprocess::{connect_persistent, start_persistent, AsAddress, Error};
///
/// /// A job's address: its socket file in a run directory.
/// struct Job<'a> {
///     socket: &'a std::path::Path,
/// }
///
/// impl AsAddress for Job<'_> {
///     fn address_bytes(&self) -> &[u8] {
///         self.socket.address_bytes()
///     }
/// }
///
/// # let dir = std::env::temp_dir().join(format!("pp-addr-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let socket = dir.join("job.socket");
/// let text = socket.to_str().expect("a UTF-8 temporary directory");
/// assert_eq!(Job { socket: &socket }.address_bytes(), text.as_bytes());
///
/// start_persistent(Job { socket: &socket }, |channel| Ok(channel.send(b"done")?))?;
/// // The same address as text reaches the same process.
/// let mut channel = connect_persistent(text)?;
/// assert_eq!(channel.receive_vec()?, b"done");
/// assert!(matches!(channel.receive_vec(), Err(Error::Closed)));
///
/// // Addresses that cannot be socket paths are refused before any work.
/// assert_eq!(connect_persistent("").unwrap_err(), Error::Address);
/// assert_eq!(connect_persistent(&b"bad\0path"[..]).unwrap_err(), Error::Address);
/// assert_eq!(connect_persistent("x".repeat(108)).unwrap_err(), Error::Address);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
