//! A channel's descriptor side: the connected socket, how a send uses it
//! (an outbox never waits for it), and, in a reused worker and its creator,
//! the shared-memory ring of answers beside it (see `ring`). It moves
//! bytes and says when there are some to read; what the bytes mean is the
//! connection's ([`Conn`](crate::wire::Conn)).

use crate::sys::{self, Fd};

#[cfg(feature = "alloc")]
use super::ring::{self, Ring};

/// The socket of a channel, its outbox mode and its answer ring.
pub(super) struct Socket {
    pub(super) fd: Fd,
    /// Monitored by an exchange: a send never waits for the socket; what it
    /// cannot take now waits in the connection for the exchange's next poll
    /// round (`Channel::poll_flush`) or the channel's next blocking call.
    #[cfg(feature = "alloc")]
    pub(super) outbox: bool,
    /// In a reused worker's creator: the worker's answers come through
    /// this shared-memory ring besides the socket.
    #[cfg(feature = "alloc")]
    pub(super) answers_in: Option<ring::Reader>,
    /// In a reused worker: what it sends goes through this ring.
    #[cfg(feature = "alloc")]
    pub(super) answers_out: Option<ring::Writer>,
}

impl Socket {
    pub(super) fn new(fd: Fd) -> Socket {
        Socket {
            fd,
            #[cfg(feature = "alloc")]
            outbox: false,
            #[cfg(feature = "alloc")]
            answers_in: None,
            #[cfg(feature = "alloc")]
            answers_out: None,
        }
    }

    /// One read of the peer's stream into `buf`, `Ok(0)` at its end: from
    /// the ring and the socket when the answers come through a ring, else
    /// the socket. With `block == false` it takes only what is already
    /// there ([`Errno::AGAIN`](sys::Errno::AGAIN) when nothing is). An
    /// empty `buf` is [`Errno::INVAL`](sys::Errno::INVAL).
    #[inline]
    pub(super) fn read(&mut self, buf: &mut [u8], block: bool) -> sys::Result<usize> {
        // No room: an error, not a read taken for the end of the stream
        // (or a loop in the ring's reader).
        if buf.is_empty() {
            return Err(sys::Errno::INVAL);
        }
        #[cfg(feature = "alloc")]
        if let Some(ring) = &mut self.answers_in {
            return ring.read(&self.fd, buf, block);
        }
        match block {
            true => sys::read(&self.fd, buf),
            false => sys::read_now(&self.fd, buf),
        }
    }

    /// Writes every part, in order, waiting for the socket: through the
    /// ring in a reused worker (a frame too big for it goes through the
    /// socket, in order).
    #[inline]
    pub(super) fn write(&mut self, parts: &[&[u8]]) -> sys::Result<()> {
        #[cfg(feature = "alloc")]
        if let Some(ring) = &mut self.answers_out {
            return ring.write(&self.fd, parts);
        }
        sys::send_vectored(&self.fd, parts)
    }

    /// Writes one frame, `header` then `payload`, as [`Socket::write`]
    /// does (through the ring's path for a whole frame in a reused worker).
    #[inline]
    pub(super) fn write_frame(
        &mut self,
        header: &crate::wire::Header,
        payload: &[u8],
    ) -> sys::Result<()> {
        #[cfg(feature = "alloc")]
        if let Some(ring) = &mut self.answers_out {
            return ring.write_frame(&self.fd, header, payload);
        }
        sys::send_vectored(&self.fd, &[&header.encode(), payload])
    }

    /// Writes what the socket takes now of `bytes`, without waiting;
    /// returns how many bytes it took.
    #[cfg(feature = "alloc")]
    pub(super) fn write_now(&self, bytes: &[u8]) -> sys::Result<usize> {
        sys::send_some(&self.fd, &[bytes])
    }

    /// Waits until the socket has something to read, or `timeout_ms`
    /// passes (`-1`: forever, `0`: just look). Returns whether it has.
    pub(super) fn wait_readable(&self, timeout_ms: i32) -> sys::Result<bool> {
        sys::wait_readable(&self.fd, timeout_ms)
    }

    /// True when the ring holds answers to read (without the socket).
    #[cfg(feature = "alloc")]
    #[inline]
    pub(super) fn ring_ready(&self) -> bool {
        self.answers_in.as_ref().is_some_and(ring::Reader::ready)
    }

    /// Before this side sleeps waiting for the peer for up to
    /// `timeout_ms`: None when there is something to read without the
    /// socket, otherwise how long it may sleep at a time. A reused worker's
    /// creator asks the worker to wake it (see `ring`) and looks once more;
    /// any other socket may sleep the whole time.
    #[inline]
    pub(super) fn nap(&self, timeout_ms: i32) -> Option<i32> {
        #[cfg(feature = "alloc")]
        if let Some(reader) = &self.answers_in {
            return reader.nap(timeout_ms);
        }
        Some(timeout_ms)
    }

    /// True when a reused worker publishes to this creator without a
    /// fence of its own (see `ring`).
    #[cfg(feature = "alloc")]
    #[inline]
    pub(super) fn ring_is_light(&self) -> bool {
        self.answers_in.as_ref().is_some_and(ring::Reader::is_light)
    }

    /// [`Socket::nap`] for many sockets, its first step: see
    /// `ring::Reader::ask_wakeup`. False without a ring.
    #[cfg(feature = "alloc")]
    #[inline]
    pub(super) fn ask_wakeup(&self, sleep: &mut ring::Sleep) -> bool {
        self.answers_in
            .as_ref()
            .is_some_and(|reader| reader.ask_wakeup(sleep))
    }

    /// The ring shared with a reused worker, on either side.
    #[cfg(feature = "alloc")]
    pub(super) fn ring(&self) -> Option<&Ring> {
        match (&self.answers_in, &self.answers_out) {
            (Some(reader), _) => Some(reader.ring()),
            (_, Some(writer)) => Some(writer.ring()),
            _ => None,
        }
    }
}
