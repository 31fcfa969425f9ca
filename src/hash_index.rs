//! Event hash → seq, kept in memory.
//!
//! Every open replays the whole chain and so computes every event's hash; the
//! index is built then instead of being stored. A stored index keyed by hash
//! would make each appended event dirty a random page of the file, which cost
//! more than signing the event (benches/README.md).

use std::collections::BTreeSet;

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
/// a sorted set.
///
/// Two events of one chain share a prefix with negligible probability (about
/// 2^-25 for a million events), unless someone grinds for it (a hash costs
/// one BLAKE3 call). Either way a lookup gives every event with the prefix,
/// each to be confirmed against the stored event.
#[derive(Debug, Default)]
pub(crate) struct HashIndex {
    opened: Vec<IndexEntry>,
    since: BTreeSet<IndexEntry>,
}

impl HashIndex {
    /// The index of a replayed chain, from one entry per event in any order.
    pub(crate) fn build(mut entries: Vec<IndexEntry>) -> HashIndex {
        entries.sort_unstable();
        entries.shrink_to_fit();
        HashIndex {
            opened: entries,
            since: BTreeSet::new(),
        }
    }

    /// Adds an event written after the open.
    pub(crate) fn insert(&mut self, hash: EventHash, seq: u64) {
        self.since.insert(IndexEntry::new(hash, seq));
    }

    /// The seqs of the events that may have `hash`: those whose hash starts
    /// like it, almost always one at most. No seq means no event has it.
    pub(crate) fn candidates(&self, hash: EventHash) -> impl Iterator<Item = u64> + '_ {
        let prefix = prefix(hash);
        let first = self.opened.partition_point(|entry| entry.prefix < prefix);
        let opened = self.opened.get(first..).unwrap_or_default();
        let since = self.since.range(
            IndexEntry { prefix, seq: 0 }..=IndexEntry {
                prefix,
                seq: u64::MAX,
            },
        );
        opened
            .iter()
            .take_while(move |entry| entry.prefix == prefix)
            .chain(since)
            .map(|entry| entry.seq)
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

    fn candidates(index: &HashIndex, hash: EventHash) -> Vec<u64> {
        index.candidates(hash).collect()
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
            assert_eq!(candidates(&index, hash(first, 0)), [seq]);
        }
        assert!(candidates(&index, hash(3, 0)).is_empty());
        assert!(candidates(&index, hash(0, 0)).is_empty());
        assert!(candidates(&index, hash(0xff, 0)).is_empty());
    }

    #[test]
    fn a_shared_prefix_gives_every_event_that_has_it() {
        let mut index = HashIndex::build(vec![
            IndexEntry::new(hash(1, 1), 10),
            IndexEntry::new(hash(2, 1), 11),
            IndexEntry::new(hash(1, 2), 12),
        ]);
        index.insert(hash(1, 3), 13);
        index.insert(hash(2, 2), 14);
        // Candidates, each to be confirmed against its stored event.
        assert_eq!(candidates(&index, hash(1, 9)), [10, 12, 13]);
        assert_eq!(candidates(&index, hash(2, 9)), [11, 14]);
    }
}
