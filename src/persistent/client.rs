//! The client side of a persistent process: connecting to its address (a
//! link there refused, the listener's uid checked), and collecting its
//! results from a channel, an exchange or a background queue.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::channel::Channel;
use crate::error::{Error, RemoteError, Result};
use crate::exchange::{Exchange, Options, Queue, Slots, StoreData, TaskId};
use crate::sys::{self, Errno, Fd, SocketPath};

use super::address::{socket_path, AsAddress};

/// Connects to the socket file at `path` itself, refusing a symbolic link
/// there ([`Error::Address`]), and checks that the listener is this user's.
pub(super) fn connect_fd(path: &SocketPath) -> Result<Fd> {
    let (file, info) = sys::open_nofollow(path)?;
    if info.link {
        return Err(Error::Address); // a link, which may lead anywhere
    }
    let fd = sys::unix_socket(false)?;
    match sys::connect_opened(&fd, &file) {
        // No /proc: by name, then check that the name still means that file.
        Err(Errno::NOENT) if info.socket => {
            sys::connect(&fd, path)?;
            if sys::lstat(path)?.id != info.id {
                return Err(Error::Address);
            }
        }
        other => other?,
    }
    if sys::peer_credentials(&fd)?.uid != sys::geteuid() {
        return Err(Error::Permission);
    }
    Ok(fd)
}

/// Connects to the persistent process listening at `address` (pprocess's
/// `connect_persistent`). Receive its results from the returned channel:
/// each is acknowledged as it is received, and the channel reports
/// [`Error::Closed`] once every result has been delivered and the process has
/// finished. Several clients may connect at once; they are served one after
/// the other.
///
/// Errors, as a [`ConnectError`] that names the address: [`Error::Address`]
/// for an unusable address; `ENOENT` ([`Error::Os`]) when nothing is at the
/// address, `ECONNREFUSED` when nobody listens there (the work finished and
/// was collected, or its process died); [`Error::Permission`] when the
/// listener belongs to another user. `?` turns it into an [`Error`].
///
/// ```
/// use pprocess::{connect_persistent, ConnectError, Error};
///
/// let nowhere = std::env::temp_dir().join(format!("pp-nowhere-{}", std::process::id()));
/// let refused: ConnectError = connect_persistent(&nowhere).unwrap_err();
/// assert_eq!(refused, Error::Os(libc::ENOENT));
/// assert_eq!(refused.error(), Error::Os(libc::ENOENT));
/// assert_eq!(refused.address(), nowhere.to_str().unwrap().as_bytes());
/// let message = refused.to_string();
/// assert!(message.starts_with(&format!("cannot connect to {:?}: ", nowhere.to_str().unwrap())));
/// ```
pub fn connect_persistent(address: impl AsAddress) -> core::result::Result<Channel, ConnectError> {
    let failed = |error| ConnectError {
        address: address.address_bytes().to_vec(),
        error,
    };
    let path = socket_path(&address).map_err(failed)?;
    let fd = connect_fd(&path).map_err(failed)?;
    Ok(super::connection::client_channel(fd, None))
}

/// Why [`connect_persistent`] failed, and the address it tried. Its
/// `Display` names both (`cannot connect to "/tmp/work.socket": No such file
/// or directory`); it compares equal to the [`Error`] inside, and converts
/// into it, so `?` works in a function that returns [`Result`] (the example
/// on [`connect_persistent`] shows each).
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectError {
    address: Vec<u8>,
    error: Error,
}

impl ConnectError {
    /// The error: what [`Error`] the connection failed with.
    pub fn error(&self) -> Error {
        self.error
    }

    /// The address, as given.
    pub fn address(&self) -> &[u8] {
        &self.address
    }
}

impl PartialEq<Error> for ConnectError {
    fn eq(&self, other: &Error) -> bool {
        self.error == *other
    }
}

impl From<ConnectError> for Error {
    fn from(failed: ConnectError) -> Error {
        failed.error
    }
}

impl From<ConnectError> for RemoteError {
    /// Inside a callable, a failed connection travels as its error's code
    /// and this error's text (address included, cut to what fits).
    fn from(failed: ConnectError) -> RemoteError {
        RemoteError::new(failed.error.code(), &alloc::format!("{failed}"))
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let address = String::from_utf8_lossy(&self.address);
        write!(f, "cannot connect to {address:?}: {}", self.error)
    }
}

impl fmt::Debug for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectError")
            .field("address", &String::from_utf8_lossy(&self.address))
            .field("error", &self.error)
            .finish()
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<S: Slots, H: StoreData> Exchange<S, H> {
    /// Connects to the persistent process at `address` and monitors the
    /// connection as a new task (pprocess's `PersistentExchange.connect`),
    /// once the exchange is below its limit: every result the process sends
    /// is stored for that task, and the task ends when the process has
    /// delivered everything. Errors as for [`connect_persistent`].
    ///
    /// A [`Queue`] gets every result; a [`Map`](crate::Map) keeps one result
    /// per task, so use it only for processes that send one.
    ///
    /// With a queue or map (a handler that
    /// [keeps results](crate::StoreData::keeps_results)), a result is
    /// acknowledged when the program takes it ([`Exchange::next_result`],
    /// the iterator), not when the exchange stores it: results stored but
    /// not taken when this process dies or drops the exchange go to the
    /// persistent process's next client. At most 32 of them wait in
    /// the exchange; the rest stay with the persistent process until earlier
    /// ones are taken, and its connection ends only once every result is
    /// acknowledged. So the calls that wait for connections to end —
    /// [`Exchange::finish`], and [`Exchange::wait`], [`Exchange::add_wait`]
    /// or this one at the limit — acknowledge every result stored so far
    /// instead of waiting forever (those results are then the program's
    /// alone). A result taken through [`Exchange::handler_mut`] is not
    /// acknowledged, nor is one received from a channel of
    /// [`Exchange::ready`]: take results with [`Exchange::next_result`]. With
    /// any other handler, a result is acknowledged as it is received.
    ///
    /// Errors as for [`connect_persistent`] (the [`Error`] inside its
    /// [`ConnectError`]), and as for [`Exchange::add_wait`].
    pub fn connect(&mut self, address: impl AsAddress) -> Result<TaskId> {
        let channel = connect_persistent(address)?;
        self.add_wait(channel)
    }
}

impl Queue {
    /// A queue collecting the results of the persistent process at
    /// `address` (pprocess's `BackgroundQueue`): a queue of limit 1 that has
    /// [connected](Exchange::connect) to it. Iterate it for the results:
    /// each is acknowledged as the iterator hands it out, so the ones this
    /// process has not taken yet when it dies go to the next client.
    /// Errors as for [`Exchange::connect`].
    pub fn background(address: impl AsAddress) -> Result<Queue> {
        let mut queue = Queue::with_options(1, Options::default());
        queue.connect(address)?;
        Ok(queue)
    }
}
