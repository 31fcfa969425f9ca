//! SplitMix64: a small seeded generator, the same numbers everywhere, for
//! the crate's simulations and tests and the fuzz targets' random orders.
//! Not for anything secret.

/// The generator's state.
pub(crate) struct SplitMix(pub(crate) u64);

impl From<[u8; 32]> for SplitMix {
    /// Seeded by the first eight bytes, little-endian.
    fn from(seed: [u8; 32]) -> SplitMix {
        let mut first = [0u8; 8];
        first.copy_from_slice(&seed[..8]);
        SplitMix(u64::from_le_bytes(first))
    }
}

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A position below `len` (0 when `len` is 0).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// True `percent` times in a hundred.
    #[cfg(test)]
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Fisher–Yates.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }
}
