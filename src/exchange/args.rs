//! A task's argument bytes, kept until its worker is done with it (needs
//! `alloc`): short ones inline, so that a program that calls many tiny
//! tasks pays no allocation per call for their arguments.

use alloc::boxed::Box;

use super::short::Short;
use crate::error::Result;

/// A task's argument bytes: inline up to [`Short::MAX`], otherwise on the
/// heap. Four plain words, no enum tag: the waiting list and the workers'
/// queues move arguments whole, as words.
#[derive(Default)]
pub(super) struct Args {
    short: Short,
    long: Option<Box<[u8]>>,
}

impl Args {
    /// A copy of `bytes`, or `ENOMEM` ([`Error::Os`](crate::Error::Os)) when a long one
    /// cannot be allocated. (Taken with `core::mem::take`, arguments are
    /// empty.)
    pub(super) fn copy(bytes: &[u8]) -> Result<Args> {
        if let Some(short) = Short::new(bytes) {
            return Ok(Args { short, long: None });
        }
        // Allocated to size: the boxed slice takes it over as it is.
        let long = crate::channel::try_copy(bytes)?.into_boxed_slice();
        Ok(Args {
            short: Short::default(),
            long: Some(long),
        })
    }

    /// The bytes.
    pub(super) fn bytes(&self) -> &[u8] {
        match &self.long {
            Some(long) => long,
            None => self.short.bytes(),
        }
    }

    /// How many bytes.
    pub(super) fn len(&self) -> usize {
        self.bytes().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_arguments_stay_inline_and_long_ones_go_to_the_heap() {
        const { assert!(core::mem::size_of::<Args>() <= 32) };
        for len in [0, 1, 8, Short::MAX, Short::MAX + 1, 1000] {
            let bytes: alloc::vec::Vec<u8> = (0..len).map(|i| i as u8).collect();
            let args = Args::copy(&bytes).unwrap();
            assert_eq!(args.bytes(), &bytes[..]);
            assert_eq!(args.len(), len);
            assert_eq!(args.long.is_none(), len <= Short::MAX);
        }
        let mut args = Args::copy(&[1; 100]).unwrap();
        assert_eq!(core::mem::take(&mut args).len(), 100);
        assert!(args.bytes().is_empty(), "taken: empty");
    }
}
