//! Short byte strings kept inline (needs `alloc`): a task's arguments and a
//! queue's small results, so that a program of many tiny tasks allocates
//! nothing per task for them.
//!
//! A [`Short`] is two aligned words that hold the bytes and, in the last
//! byte, their count. A value that holds one moves it as two words, so a
//! load of it never straddles two stores of different sizes (which would
//! stall the load until both reach the cache): the hot queues of a reused
//! worker's tasks and results copy whole values all the time.

/// Up to [`Short::MAX`] bytes, zero-padded, and their count, in two
/// aligned words.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(8))]
pub(super) struct Short([u8; 16]);

impl Short {
    /// The most bytes a [`Short`] holds.
    pub(super) const MAX: usize = 15;

    /// No bytes here: its owner keeps them elsewhere (a count no
    /// [`Short::new`] gives).
    pub(super) const ELSEWHERE: Short = {
        let mut words = [0; 16];
        words[Short::MAX] = u8::MAX;
        Short(words)
    };

    /// True for [`Short::ELSEWHERE`].
    #[inline]
    pub(super) fn is_elsewhere(&self) -> bool {
        self.0[Short::MAX] == u8::MAX
    }

    /// `bytes` kept inline, or None when there are more than [`Short::MAX`].
    #[inline]
    pub(super) fn new(bytes: &[u8]) -> Option<Short> {
        let n = bytes.len();
        // Built as two words in registers from (at most two) overlapping
        // loads of a fixed size: no call to `memcpy`, and no bytes stored
        // one by one and then loaded as a word.
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
        let half = |at: usize| {
            u64::from(u32::from_le_bytes(
                bytes[at..at + 4].try_into().unwrap_or([0; 4]),
            ))
        };
        let (low, high) = match n {
            // The last word's top bytes are bytes 8.. (none when n is 8).
            8..=Short::MAX => (
                word(0),
                word(n - 8).checked_shr(8 * (16 - n) as u32).unwrap_or(0),
            ),
            // Bytes 0..4 and n-4..n, overlapping where n < 8.
            4..8 => (half(0) | half(n - 4) << (8 * (n - 4)), 0),
            0..4 => {
                let low = bytes
                    .iter()
                    .rev()
                    .fold(0, |low, &b| low << 8 | u64::from(b));
                (low, 0)
            }
            _ => return None,
        };
        // At most MAX: the count fits the last byte, above the bytes.
        let high = high | (n as u64) << 56;
        Some(Short(bytemuck::cast([low.to_le(), high.to_le()])))
    }

    /// The bytes.
    #[inline]
    pub(super) fn bytes(&self) -> &[u8] {
        let len = usize::from(self.0[Short::MAX]).min(Short::MAX);
        &self.0[..len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_to_fifteen_bytes_are_kept_with_their_count_and_longer_ones_refused() {
        const { assert!(core::mem::size_of::<Short>() == 16) };
        const { assert!(core::mem::align_of::<Short>() == 8) };
        for len in 0..=Short::MAX {
            let bytes: alloc::vec::Vec<u8> = (1..=len as u8).collect();
            let short = Short::new(&bytes).expect("short enough");
            assert_eq!(short.bytes(), &bytes[..]);
        }
        assert!(Short::new(&[7; Short::MAX + 1]).is_none());
        assert_eq!(Short::default().bytes(), b"");
        assert!(Short::ELSEWHERE.is_elsewhere() && !Short::default().is_elsewhere());
    }
}
