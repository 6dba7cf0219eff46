//! Copies of a few bytes without a call to `memcpy`: a frame's 24-byte
//! header and a tiny task's 8-byte answer are copied once per task on the
//! reused workers' paths, where a library call per copy costs more than
//! the copy.

/// Copies `src` into `dst` (of the same length): up to 32 bytes as at most
/// two fixed-size pieces, the second overlapping the first (each a load
/// and a store), longer ones with `copy_from_slice`.
///
/// Panics, as `copy_from_slice` does, when the lengths differ.
#[inline]
pub(crate) fn copy_bytes(dst: &mut [u8], src: &[u8]) {
    assert_eq!(dst.len(), src.len(), "copy_bytes: lengths differ");
    match src.len() {
        16..=32 => pieces::<16>(dst, src),
        8..16 => pieces::<8>(dst, src),
        4..8 => pieces::<4>(dst, src),
        0..4 => {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = *s;
            }
        }
        _ => dst.copy_from_slice(src),
    }
}

/// The first and the last `N` bytes of `src` to `dst` (at least `N` long,
/// at most `2 * N`): every byte, in two fixed-size copies.
#[inline]
fn pieces<const N: usize>(dst: &mut [u8], src: &[u8]) {
    if let (Some(d), Some(s)) = (dst.first_chunk_mut::<N>(), src.first_chunk::<N>()) {
        *d = *s;
    }
    if let (Some(d), Some(s)) = (dst.last_chunk_mut::<N>(), src.last_chunk::<N>()) {
        *d = *s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_length_is_copied_exactly() {
        for len in 0..=80 {
            let src: alloc::vec::Vec<u8> = (1..=len as u8).collect();
            let mut dst = [0xEEu8; 90];
            copy_bytes(&mut dst[3..3 + len], &src);
            assert_eq!(&dst[3..3 + len], &src[..], "length {len}");
            assert!(dst[..3].iter().chain(&dst[3 + len..]).all(|&b| b == 0xEE));
        }
    }

    #[test]
    #[should_panic(expected = "lengths differ")]
    fn lengths_that_differ_are_refused() {
        copy_bytes(&mut [0; 4], &[1; 5]);
    }
}
