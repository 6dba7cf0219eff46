//! Short byte strings kept inline (needs `alloc`): a task's arguments and a
//! queue's small results, so that a program of many tiny tasks allocates
//! nothing per task for them.
//!
//! The bytes sit in two aligned words, so a value that holds them moves as
//! whole words: a store and a load of one field never straddle two
//! different-sized stores of another (which stalls the load until both
//! reach the cache).

/// Up to [`Short::MAX`] bytes, zero-padded, in two aligned words; the
/// length is kept beside it by its owner.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(8))]
pub(super) struct Short([u8; Short::MAX]);

impl Short {
    /// The most bytes a [`Short`] holds.
    pub(super) const MAX: usize = 16;

    /// `bytes` kept inline, or None when there are more than [`Short::MAX`].
    #[inline]
    pub(super) fn new(bytes: &[u8]) -> Option<Short> {
        let mut short = Short([0; Short::MAX]);
        let n = bytes.len();
        // Copied in (at most two) overlapping words of a fixed size, not by
        // a call to `memcpy` for a few bytes.
        match n {
            8..=Short::MAX => {
                short.0[..8].copy_from_slice(&bytes[..8]);
                short.0[n - 8..n].copy_from_slice(&bytes[n - 8..]);
            }
            4..8 => {
                short.0[..4].copy_from_slice(&bytes[..4]);
                short.0[n - 4..n].copy_from_slice(&bytes[n - 4..]);
            }
            0..4 => {
                for (to, from) in short.0.iter_mut().zip(bytes) {
                    *to = *from;
                }
            }
            _ => return None,
        }
        Some(short)
    }

    /// The first `len` bytes (all of them if `len` is more).
    #[inline]
    pub(super) fn get(&self, len: u8) -> &[u8] {
        &self.0[..usize::from(len).min(Short::MAX)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_to_sixteen_bytes_are_kept_and_longer_ones_refused() {
        const { assert!(core::mem::size_of::<Short>() == 16) };
        const { assert!(core::mem::align_of::<Short>() == 8) };
        for len in 0..=Short::MAX {
            let bytes: alloc::vec::Vec<u8> = (1..=len as u8).collect();
            let short = Short::new(&bytes).expect("short enough");
            assert_eq!(short.get(len as u8), &bytes[..]);
        }
        assert!(Short::new(&[7; Short::MAX + 1]).is_none());
        assert_eq!(
            Short::new(b"ab").unwrap().get(200),
            b"ab\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
        );
    }
}
