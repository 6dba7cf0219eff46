//! The listening socket at a persistent address: bound private from its
//! first instant, published atomically, a stale socket of this user
//! replaced and nothing else touched, and removed only by its keeper.

use crate::error::{best_effort, Error, Result};
use crate::sys::{self, Errno, Fd, SocketPath};

/// Connections waiting to be served, beyond the one being served.
const BACKLOG: i32 = 128;

/// A listening socket bound to a path, and that file's identity, so that
/// only this socket's own file is ever removed. Dropping it closes the
/// socket but leaves the file: every process forked while it exists holds a
/// copy, and only the keeper removes the file ([`Listener::remove`]).
pub(super) struct Listener {
    pub(super) fd: Fd,
    pub(super) path: SocketPath,
    pub(super) id: (u64, u64),
}

impl Listener {
    /// A socket listening at `path`, mode 0600 from the moment its file
    /// exists, replacing a stale socket of this user. It is bound and
    /// listening in a private directory (mode 0700, a random name made
    /// atomically) beside `path` first and then linked into place, which
    /// fails atomically if anything is there: whatever a start finds at the
    /// address was already listening, so only a truly stale socket is
    /// replaced, and of several starts at one address exactly one wins. No
    /// name that others could swap is ever created, and no mode is ever set
    /// through a path.
    pub(super) fn bind(path: SocketPath) -> Result<Listener> {
        let fd = sys::unix_socket(false)?;
        // Before bind: the file gets this mode as it is made.
        sys::fchmod(&fd, 0o600)?;
        // No room for a private directory, or none can be made in that
        // directory: bind in place, which also reports what is there.
        let Some(private) = PrivateDir::beside(&path) else {
            return Listener::bind_in_place(fd, path);
        };
        let temp = &private.socket;
        let published = sys::bind(&fd, temp)
            .and_then(|()| sys::listen(&fd, BACKLOG))
            .map_err(Error::from)
            .and_then(|()| publish(temp, &path));
        // The temporary name goes either way; if it cannot, the private
        // directory's removal below fails too and leaves only that behind.
        best_effort(sys::unlink(temp));
        drop(private);
        published?;
        let id = sys::lstat(&path)?.id;
        Ok(Listener { fd, path, id })
    }

    /// [`Listener::bind`] where no private directory can be made beside the
    /// address (too long, or a directory that takes no new files): bound in
    /// place, so a concurrent start may find it between bind and listen and
    /// take it for stale.
    fn bind_in_place(fd: Fd, path: SocketPath) -> Result<Listener> {
        match sys::bind(&fd, &path) {
            Err(Errno::ADDRINUSE) if is_stale(&path)?.is_some() => match sys::unlink(&path) {
                Ok(()) | Err(Errno::NOENT) => sys::bind(&fd, &path).map_err(|e| match e {
                    Errno::ADDRINUSE => Error::Address,
                    e => e.into(),
                })?,
                Err(e) => return Err(e.into()),
            },
            Err(Errno::ADDRINUSE) => return Err(Error::Address),
            other => other?,
        }
        let id = sys::lstat(&path)?.id;
        let listener = Listener { fd, path, id };
        if let Err(e) = sys::listen(&listener.fd, BACKLOG) {
            listener.remove();
            return Err(e.into());
        }
        Ok(listener)
    }

    /// Closes the socket and removes its file, if the file at the path is
    /// still the one this socket created.
    pub(super) fn remove(self) {
        Listener::remove_file(&self.path, self.id);
    }

    /// Removes the socket file at `path` if it is still the one with `id`.
    pub(super) fn remove_file(path: &SocketPath, id: (u64, u64)) {
        if sys::lstat(path).is_ok_and(|file| file.socket && file.id == id) {
            // Leaving: a file that cannot be removed is a stale socket,
            // which the next start at this address replaces.
            best_effort(sys::unlink(path));
        }
    }
}

/// Links the listening socket at `temp` to `path`, replacing a stale socket
/// of this user found there (only if the file is still the one found stale).
fn publish(temp: &SocketPath, path: &SocketPath) -> Result<()> {
    for _ in 0..8 {
        match sys::link(temp, path) {
            Ok(()) => return Ok(()),
            Err(Errno::EXIST) => match is_stale(path)? {
                Some(stale) if sys::lstat(path).is_ok_and(|file| file.id == stale) => {
                    match sys::unlink(path) {
                        Ok(()) | Err(Errno::NOENT) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Some(_) => continue, // replaced meanwhile: look again
                None => return Err(Error::Address),
            },
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Address)
}

/// A directory of mode 0700 with a random name, made beside an address to
/// bind its socket in before publishing it; removed on drop.
struct PrivateDir {
    dir: SocketPath,
    /// The socket's path inside.
    socket: SocketPath,
}

impl PrivateDir {
    /// Makes one in `path`'s directory; `None` if none can be made there or
    /// its socket's name would not fit a socket path.
    fn beside(path: &SocketPath) -> Option<PrivateDir> {
        let bytes = path.as_bytes();
        let dir = bytes
            .iter()
            .rposition(|&b| b == b'/')
            .map_or(0, |slash| slash + 1);
        // Room for the random part and the socket's name inside.
        if dir + b".pp-XXXXXX/s".len() > SocketPath::MAX_LEN {
            return None;
        }
        let dir = sys::mkdtemp(&[&bytes[..dir], b".pp-"].concat()).ok()?;
        match SocketPath::new(&[dir.as_bytes(), b"/s"].concat()) {
            Some(socket) => Some(PrivateDir { dir, socket }),
            None => {
                // Cleanup of a directory just made and empty.
                best_effort(sys::rmdir(&dir));
                None
            }
        }
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        // A drop cannot report: an empty private directory is all that
        // can be left behind.
        best_effort(sys::rmdir(&self.dir));
    }
}

/// The identity of `path` if it is a socket of this user that nobody listens
/// at (or `Some` of nothing when it vanished meanwhile); `None` otherwise.
fn is_stale(path: &SocketPath) -> Result<Option<(u64, u64)>> {
    let file = match sys::lstat(path) {
        Ok(file) => file,
        Err(Errno::NOENT) => return Ok(Some((0, 0))), // gone meanwhile: try again
        Err(e) => return Err(e.into()),
    };
    if !file.socket || file.uid != sys::geteuid() {
        return Ok(None);
    }
    // Non-blocking, so that a listener with a full backlog cannot hold us up.
    let probe = sys::unix_socket(true)?;
    Ok((sys::connect(&probe, path) == Err(Errno::CONNREFUSED)).then_some(file.id))
}
