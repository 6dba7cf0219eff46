//! A link: a socket and the [`Conn`] speaking over it, driven without ever
//! waiting (the keeper's driver for its client and its callable). Reads take
//! what has arrived and keep a partial frame in the `Conn`; writes go out as
//! far as the socket buffer allows, the rest when `poll` says there is room.

use alloc::vec::Vec;

use crate::channel::try_copy;
use crate::error::Error;
use crate::sys::{self, Errno, Fd};
use crate::wire::{Conn, Event, Header};

/// What arrived on a link.
pub(super) enum Incoming {
    /// A data (or args, batch) message, taken whole.
    Message(Header, Vec<u8>),
    /// Any other event but [`Event::More`].
    Event(Event),
}

/// A socket and its connection core.
pub(super) struct Link {
    pub(super) fd: Fd,
    pub(super) conn: Conn<Vec<u8>>,
}

impl Link {
    pub(super) fn new(fd: Fd) -> Link {
        Link {
            fd,
            conn: Conn::new(),
        }
    }

    /// The next thing that arrived, reading what the socket holds without
    /// waiting; `None` when nothing whole has arrived yet. A message is
    /// taken whole (the payload collected across calls), unacknowledged.
    /// An error ends the link (the stream ended, or broke the protocol).
    pub(super) fn next(&mut self) -> Result<Option<Incoming>, Error> {
        loop {
            let header = match self.conn.poll()? {
                Event::More => match self.read(false)? {
                    true => continue,
                    false => return Ok(None),
                },
                Event::Message(header) => header,
                event => return Ok(Some(Incoming::Event(event))),
            };
            // The payload, collected across reads until it is whole.
            loop {
                let dec = self.conn.decoder_mut();
                let spare = dec.payload_spare().map_err(|_| Error::from(Errno::NOMEM))?;
                if spare.is_empty() {
                    break;
                }
                if !self.read(true)? {
                    return Ok(None);
                }
            }
            let dec = self.conn.decoder_mut();
            let payload = match dec.take_collected() {
                Some(payload) => payload,
                None => {
                    // Collected or buffered whole: one of the two.
                    let payload = try_copy(dec.whole_payload().ok_or(Error::Invalid)?)?;
                    dec.skip_payload();
                    payload
                }
            };
            self.conn.message_taken(false);
            return Ok(Some(Incoming::Message(header, payload)));
        }
    }

    /// One read without waiting, into the decoder (`payload`: into the
    /// pending payload's room); false when nothing has arrived.
    fn read(&mut self, payload: bool) -> Result<bool, Error> {
        let dec = self.conn.decoder_mut();
        let got = match payload {
            true => {
                let spare = dec.payload_spare().map_err(|_| Error::from(Errno::NOMEM))?;
                sys::read_now(&self.fd, spare)
            }
            false => sys::read_now(&self.fd, dec.spare()),
        };
        match got {
            Ok(0) | Err(Errno::CONNRESET) => Err(self.conn.eof()),
            Ok(n) if payload => {
                self.conn.decoder_mut().payload_filled(n);
                Ok(true)
            }
            Ok(n) => {
                self.conn.filled(n);
                Ok(true)
            }
            Err(Errno::AGAIN) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes what the connection has queued, as far as the socket takes it
    /// now; true once nothing is left. An error: the peer is gone.
    pub(super) fn flush(&mut self) -> Result<bool, Errno> {
        while !self.conn.pending().is_empty() {
            match sys::send_some(&self.fd, &[self.conn.pending()])? {
                0 => return Ok(false),
                n => self.conn.written(n),
            }
        }
        Ok(true)
    }
}
