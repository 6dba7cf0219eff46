//! The guided-chunk rule, shared by reused workers and the records pmap: a
//! worker's next share of the work is what remains ÷ (2 × the workers), as
//! OpenMP's guided schedule sizes its chunks: large while much remains
//! (tiny tasks pay almost nothing each), one at the end (skewed tasks still
//! balance).

/// The share is the work remaining ÷ (`GUIDED` × the workers).
const GUIDED: usize = 2;

/// How much of `remaining` one of `workers` workers takes next: at least
/// one, at most `most`.
pub(crate) fn chunk(remaining: usize, workers: usize, most: usize) -> usize {
    (remaining / (GUIDED * workers.max(1))).clamp(1, most.max(1))
}

#[cfg(test)]
mod tests {
    use super::chunk;

    #[test]
    fn chunks_shrink_with_the_work_to_one_and_stay_in_bounds() {
        assert_eq!(chunk(1000, 2, usize::MAX), 250);
        assert_eq!(chunk(1000, 2, 32), 32);
        assert_eq!(chunk(3, 2, 32), 1);
        assert_eq!(chunk(0, 0, 0), 1);
        assert_eq!(chunk(usize::MAX, 1, 7), 7);
    }
}
