//! Event hash → seq, kept in memory.
//!
//! Every open replays the whole chain and so computes every event's hash; the
//! index is built then instead of being stored. A stored index keyed by hash
//! would make each appended event dirty a random page of the file, which cost
//! more than signing the event (benches/README.md).

use std::collections::HashMap;

use crate::ids::EventHash;

/// The first 8 bytes of each event hash, mapped to the event's seq.
///
/// Two events of one chain share a prefix with negligible probability (about
/// 2^-25 for a million events), but it is allowed for: the first event keeps
/// the slot, and a lookup is only a candidate, to be confirmed against the
/// stored event.
#[derive(Debug, Default)]
pub(crate) struct HashIndex {
    by_prefix: HashMap<u64, u64>,
}

impl HashIndex {
    pub(crate) fn insert(&mut self, hash: EventHash, seq: u64) {
        self.by_prefix.entry(prefix(hash)).or_insert(seq);
    }

    /// The seq of the one event that may have `hash`. `None` means that no
    /// event has it.
    pub(crate) fn candidate(&self, hash: EventHash) -> Option<u64> {
        self.by_prefix.get(&prefix(hash)).copied()
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
    fn a_shared_prefix_keeps_the_first_event() {
        let mut index = HashIndex::default();
        index.insert(hash(1, 1), 10);
        index.insert(hash(1, 2), 11);
        index.insert(hash(2, 2), 12);
        assert_eq!(index.candidate(hash(1, 1)), Some(10));
        // Only a candidate: the caller confirms it against event 10.
        assert_eq!(index.candidate(hash(1, 2)), Some(10));
        assert_eq!(index.candidate(hash(2, 2)), Some(12));
        assert_eq!(index.candidate(hash(3, 3)), None);
    }
}
