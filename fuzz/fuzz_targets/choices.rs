//! SplitMix64, seeded from a fuzz input: the choices a target makes (how a
//! stream is cut into pieces, which receive comes next). Shared by the
//! targets through `#[path]`.

/// A SplitMix64 generator.
pub struct Choices(pub u64);

impl Choices {
    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u32) -> u32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % u64::from(n.max(1))) as u32
    }
}
