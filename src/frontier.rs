//! Sync by frontier (SPEC.md §7): what a peer holds, and what another
//! sends it.

use std::collections::{BTreeMap, HashSet};

use super::event::SignedEvent;
use super::verify::Ledger;
use crate::ids::{EventHash, MemberId};

/// What a peer holds: the position and hash of each head of each feed,
/// among the events it does not leave out (SPEC.md §6.4). It is also a
/// checkpoint: every later state of the same file holds it
/// ([`crate::Mesh::expect`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Frontier {
    heads: BTreeMap<MemberId, Vec<(u64, EventHash)>>,
}

impl Frontier {
    /// postcard of the heads, by member in order.
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::codec::encode(self)
    }

    /// Each head: its author and hash.
    #[cfg(feature = "net")]
    pub(crate) fn heads_iter(&self) -> impl Iterator<Item = (MemberId, EventHash)> + '_ {
        self.heads
            .iter()
            .flat_map(|(author, heads)| heads.iter().map(move |(_, hash)| (*author, *hash)))
    }

    /// Strictly decodes a frontier (one value, canonical form).
    pub fn from_bytes(bytes: &[u8]) -> Option<Frontier> {
        crate::codec::decode_exact(bytes).ok()
    }
}

impl Ledger {
    /// This ledger's frontier: the heads of each feed among the events it
    /// does not leave out (SPEC.md §6.4, §7.1), so that two peers whose
    /// events outside their left-out sets are the same state the same
    /// frontier, whatever left-out events each holds.
    pub(crate) fn frontier(&self) -> Frontier {
        let state = self.state();
        let left_out = self.left_out();
        let mut heads: BTreeMap<MemberId, Vec<(u64, EventHash)>> = BTreeMap::new();
        // Feeds with events left out, with their events left in.
        let mut cut: BTreeMap<MemberId, Vec<&SignedEvent>> = BTreeMap::new();
        if !left_out.is_empty() {
            for record in self.records() {
                if left_out.contains(record.hash()) {
                    cut.entry(record.event().author).or_default();
                }
            }
            for record in self.records() {
                if let Some(kept) = cut.get_mut(&record.event().author)
                    && !left_out.contains(record.hash())
                {
                    kept.push(record);
                }
            }
        }
        for record in self.records() {
            let author = record.event().author;
            if heads.contains_key(&author) || cut.contains_key(&author) {
                continue;
            }
            let feed = state
                .heads(author)
                .into_iter()
                .filter_map(|hash| self.record(hash))
                .map(|head| (head.event().seq, head.hash()))
                .collect();
            heads.insert(author, feed);
        }
        // A feed with events left out: its heads among the rest, the events
        // no other event of the feed left in follows. (Every event before
        // one left in is left in.)
        for (author, feed) in cut {
            let followed: HashSet<EventHash> = feed
                .iter()
                .filter(|r| r.event().seq > 0)
                .map(|r| r.event().prev)
                .collect();
            let mut live: Vec<(u64, EventHash)> = feed
                .iter()
                .filter(|r| !followed.contains(&r.hash()))
                .map(|r| (r.event().seq, r.hash()))
                .collect();
            live.sort_by_key(|(_, hash)| *hash);
            if !live.is_empty() {
                heads.insert(author, live);
            }
        }
        Frontier { heads }
    }

    /// The heads of `checkpoint` this ledger does not hold: empty when it
    /// holds the whole state the checkpoint recorded (every event is held
    /// with everything before it), else what was rolled back.
    pub(crate) fn missing_heads(&self, checkpoint: &Frontier) -> Vec<EventHash> {
        checkpoint
            .heads
            .values()
            .flatten()
            .map(|(_, hash)| *hash)
            .filter(|hash| !self.contains(*hash))
            .collect()
    }

    /// Every held event a peer with `frontier` may lack, in the order held
    /// (each after what it names). Not sent: the events this ledger leaves
    /// out (SPEC.md §6.4); the peer's heads that this ledger holds and their
    /// `prev` chains; and a whole feed when the peer
    /// is ahead on it (a head this ledger does not hold, past every event it
    /// holds of that feed) while this ledger knows no fork of it. A head
    /// this ledger does not hold at or below its own last position means
    /// the peer's feed has forked from this one: everything of it is sent,
    /// and the peer, seeing the same from its side, sends its branch back,
    /// so two exchanges hold both (SPEC.md §7).
    pub(crate) fn missing_for(&self, frontier: &Frontier) -> Vec<&SignedEvent> {
        self.missing_positions(frontier)
            .into_iter()
            .filter_map(|position| self.record_at(position))
            .collect()
    }

    /// [`Self::missing_for`] as positions in the order held: a reply sent in
    /// parts (SPEC.md §17.5) holds these, a few bytes per event, and copies
    /// each part's records only as it sends the part. Positions stay valid:
    /// a ledger only grows.
    pub(crate) fn missing_positions(&self, frontier: &Frontier) -> Vec<usize> {
        let mut covered: HashSet<EventHash> = HashSet::new();
        let mut passed: HashSet<MemberId> = HashSet::new();
        for (author, heads) in &frontier.heads {
            let ours = self.state().feed_extent(*author);
            for &(seq, head) in heads {
                if self.record(head).is_some() {
                    let mut at = head;
                    while let Some(record) = self.record(at) {
                        if !covered.insert(at) || record.event().seq == 0 {
                            break;
                        }
                        at = record.event().prev;
                    }
                } else if let Some((last, false)) = ours
                    && seq > last
                {
                    passed.insert(*author);
                }
            }
        }
        let left_out = self.left_out();
        self.records()
            .enumerate()
            .filter(|(_, record)| {
                !covered.contains(&record.hash())
                    && !passed.contains(&record.event().author)
                    && !left_out.contains(record.hash())
            })
            .map(|(position, _)| position)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use crate::event::{Body, Event, SignedEvent, VERSION};
    use crate::keys::LocalKeys;
    use crate::verify::Ledger;

    fn hashes(records: Vec<&SignedEvent>) -> Vec<crate::ids::EventHash> {
        records.iter().map(|r| r.hash()).collect()
    }

    #[test]
    fn a_peer_gets_what_it_lacks_and_forked_feeds_meet() {
        let f = LocalKeys::from_secret_bytes(&[1; 32], &[101; 32]);
        let (mut ours, genesis) =
            Ledger::create(&f, "g", 0, &mut StdRng::from_seed([1; 32])).unwrap();
        let enable = |epoch| Body::SetEnabled {
            epoch,
            enabled: true,
        };
        let first = ours.write(&f, 1, enable(genesis)).unwrap();
        let mut theirs = ours.clone();
        let second = ours.write(&f, 2, enable(genesis)).unwrap();

        // Behind on a feed: only the suffix; ahead: nothing.
        assert_eq!(hashes(ours.missing_for(&theirs.frontier())), vec![second]);
        assert!(theirs.missing_for(&ours.frontier()).is_empty());

        // Their copy of the feed forks at seq 2: each side sends its branch.
        let fork = SignedEvent::sign(
            Event {
                version: VERSION,
                group: ours.group(),
                author: f.member_id(),
                seq: 2,
                prev: first,
                time: 3,
                body: enable(genesis),
            },
            &f,
        );
        let fork_hash = fork.hash();
        theirs.insert(fork).unwrap();
        for _ in 0..2 {
            for record in theirs
                .missing_for(&ours.frontier())
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
            {
                ours.insert(record).unwrap();
            }
            for record in ours
                .missing_for(&theirs.frontier())
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
            {
                theirs.insert(record).unwrap();
            }
        }
        assert!(ours.contains(fork_hash) && theirs.contains(second));
        assert_eq!(ours.digest(), theirs.digest());
        assert!(ours.missing_for(&theirs.frontier()).is_empty());
        assert!(theirs.missing_for(&ours.frontier()).is_empty());
        assert_eq!(ours.state().equivocations().len(), 1);
    }
}
