//! A growable set of small indices, for ancestor sets of the epoch graph.

/// A set of `usize` indices, one bit each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn contains(&self, index: usize) -> bool {
        self.words
            .get(index / 64)
            .is_some_and(|word| word & (1 << (index % 64)) != 0)
    }

    pub(crate) fn insert(&mut self, index: usize) {
        let word = index / 64;
        if self.words.len() <= word {
            self.words.resize(word + 1, 0);
        }
        if let Some(slot) = self.words.get_mut(word) {
            *slot |= 1 << (index % 64);
        }
    }

    #[cfg(test)]
    pub(crate) fn remove(&mut self, index: usize) {
        if let Some(slot) = self.words.get_mut(index / 64) {
            *slot &= !(1 << (index % 64));
        }
    }

    pub(crate) fn union_with(&mut self, other: &BitSet) {
        if self.words.len() < other.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        for (mine, theirs) in self.words.iter_mut().zip(&other.words) {
            *mine |= theirs;
        }
    }

    /// The indices in increasing order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            (0..64).filter_map(move |bit| (word & (1 << bit) != 0).then_some(w * 64 + bit))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::BitSet;

    #[test]
    fn insert_remove_union_iterate() {
        let mut a = BitSet::new();
        a.insert(3);
        a.insert(130);
        assert!(a.contains(3) && a.contains(130) && !a.contains(4) && !a.contains(1000));
        let mut b = BitSet::new();
        b.insert(64);
        b.union_with(&a);
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![3, 64, 130]);
        b.remove(64);
        b.remove(9999);
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![3, 130]);
    }
}
