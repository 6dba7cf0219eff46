//! A task's argument bytes, kept until its worker is done with it (needs
//! `alloc`): short ones inline, so that a program that calls many tiny
//! tasks pays no allocation per call for their arguments.

use alloc::boxed::Box;

use super::short::Short;
use crate::error::Result;

/// A task's argument bytes.
pub(super) enum Args {
    /// Up to [`Short::MAX`] bytes, and how many.
    Inline(u8, Short),
    /// Longer ones, on the heap.
    Heap(Box<[u8]>),
}

impl Args {
    /// A copy of `bytes`, or `ENOMEM` ([`Error::Os`](crate::Error::Os)) when a long one
    /// cannot be allocated.
    pub(super) fn copy(bytes: &[u8]) -> Result<Args> {
        if let Some(short) = Short::new(bytes) {
            // At most Short::MAX bytes: the length fits a u8.
            return Ok(Args::Inline(bytes.len() as u8, short));
        }
        // Allocated to size: the boxed slice takes it over as it is.
        Ok(Args::Heap(
            crate::channel::try_copy(bytes)?.into_boxed_slice(),
        ))
    }

    /// The bytes.
    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            Args::Inline(len, short) => short.get(*len),
            Args::Heap(bytes) => bytes,
        }
    }

    /// How many bytes.
    pub(super) fn len(&self) -> usize {
        match self {
            Args::Inline(len, _) => usize::from(*len),
            Args::Heap(bytes) => bytes.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_arguments_stay_inline_and_long_ones_go_to_the_heap() {
        const { assert!(core::mem::size_of::<Args>() <= 24) };
        for len in [0, 1, 8, Short::MAX, Short::MAX + 1, 1000] {
            let bytes: alloc::vec::Vec<u8> = (0..len).map(|i| i as u8).collect();
            let args = Args::copy(&bytes).unwrap();
            assert_eq!(args.bytes(), &bytes[..]);
            assert_eq!(args.len(), len);
            assert_eq!(matches!(args, Args::Inline(..)), len <= Short::MAX);
        }
    }
}
