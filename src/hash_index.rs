//! Event hash → seq, kept in memory.
//!
//! Every open replays the whole chain and so computes every event's hash; the
//! index is built then instead of being stored. A stored index keyed by hash
//! would make each appended event dirty a random page of the file, which cost
//! more than signing the event (benches/README.md).

use std::collections::HashMap;

use crate::ids::EventHash;

/// One event in the index: the first 8 bytes of its hash, and its seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct IndexEntry {
    prefix: u64,
    seq: u64,
}

impl IndexEntry {
    pub(crate) fn new(hash: EventHash, seq: u64) -> IndexEntry {
        IndexEntry {
            prefix: prefix(hash),
            seq,
        }
    }
}

/// The events of the chain as opened, sorted by hash prefix (16 bytes each,
/// with no slack: a million events take 16 MB), and those written since, in
/// a map.
///
/// Two events of one chain share a prefix with negligible probability (about
/// 2^-25 for a million events), but it is allowed for: a lookup gives only a
/// candidate, to be confirmed against the stored event.
#[derive(Debug, Default)]
pub(crate) struct HashIndex {
    opened: Vec<IndexEntry>,
    since: HashMap<u64, u64>,
}

impl HashIndex {
    /// The index of a replayed chain, from one entry per event in any order.
    pub(crate) fn build(mut entries: Vec<IndexEntry>) -> HashIndex {
        entries.sort_unstable();
        entries.shrink_to_fit();
        HashIndex {
            opened: entries,
            since: HashMap::new(),
        }
    }

    /// Adds an event written after the open.
    pub(crate) fn insert(&mut self, hash: EventHash, seq: u64) {
        self.since.entry(prefix(hash)).or_insert(seq);
    }

    /// The seq of an event that may have `hash`. `None` means that no event
    /// has it.
    pub(crate) fn candidate(&self, hash: EventHash) -> Option<u64> {
        let prefix = prefix(hash);
        if let Some(seq) = self.since.get(&prefix) {
            return Some(*seq);
        }
        let at = self
            .opened
            .binary_search_by_key(&prefix, |entry| entry.prefix)
            .ok()?;
        self.opened.get(at).map(|entry| entry.seq)
    }
}

fn prefix(hash: EventHash) -> u64 {
    hash.as_bytes()
        .first_chunk::<8>()
        .map_or(0, |head| u64::from_le_bytes(*head))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(first: u8, last: u8) -> EventHash {
        let mut bytes = [first; 32];
        bytes[31] = last;
        EventHash::from_bytes(bytes)
    }

    #[test]
    fn opened_and_later_events_are_found_and_others_are_not() {
        let mut index = HashIndex::build(vec![
            IndexEntry::new(hash(9, 0), 0),
            IndexEntry::new(hash(1, 0), 1),
            IndexEntry::new(hash(5, 0), 2),
        ]);
        index.insert(hash(7, 0), 3);
        for (first, seq) in [(9, 0), (1, 1), (5, 2), (7, 3)] {
            assert_eq!(index.candidate(hash(first, 0)), Some(seq));
        }
        assert_eq!(index.candidate(hash(3, 0)), None);
    }

    #[test]
    fn a_shared_prefix_gives_a_candidate_to_confirm() {
        let mut index = HashIndex::build(vec![IndexEntry::new(hash(1, 1), 10)]);
        index.insert(hash(2, 1), 11);
        index.insert(hash(2, 2), 12);
        // Only candidates: the caller confirms them against the stored events.
        assert_eq!(index.candidate(hash(1, 2)), Some(10));
        assert_eq!(index.candidate(hash(2, 2)), Some(11));
    }
}
