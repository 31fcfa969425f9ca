//! Sync by frontier (SPEC.md §7): what a peer holds, and what another
//! sends it.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use super::event::SignedEvent;
use super::verify::Ledger;
use crate::codec::CodecError;
use crate::ids::{EventHash, MemberId};

/// The most heads of one author a frontier lists (SPEC.md §7.1): a feed
/// with more (an author that forked it over and over) lists those furthest
/// on, and the sender sends the others' branches again.
pub const MAX_FRONTIER_HEADS: usize = 64;

/// The most events a frontier lists below one head (SPEC.md §7.1): one per
/// power of two under a `u64` position.
pub const MAX_FRONTIER_BELOW: usize = 64;

/// What a peer holds: for each feed, each head among the events it does
/// not leave out (SPEC.md §6.4), with events on the head's `prev` chain at
/// exponentially spaced positions below it, so that a sender that lacks the
/// head still knows which of its own events the peer holds (SPEC.md §7.1).
/// It is also a checkpoint: every later state of the same file holds its
/// heads ([`crate::Mesh::expect`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "Feeds")]
pub struct Frontier {
    heads: Feeds,
}

/// A frontier's heads, by author.
type Feeds = BTreeMap<MemberId, Vec<Head>>;

/// One head of a feed (SPEC.md §7.1).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Head {
    seq: u64,
    hash: EventHash,
    /// The events on the head's `prev` chain at `seq − 1`, `seq − 2`,
    /// `seq − 4`, …: whoever holds one holds it and everything before it.
    below: Vec<(u64, EventHash)>,
}

/// Why bytes are not a frontier (SPEC.md §7.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrontierError {
    /// Not the canonical encoding of one frontier.
    #[error("malformed: {0}")]
    Malformed(String),
    /// More heads of one author than [`MAX_FRONTIER_HEADS`].
    #[error("a frontier lists {heads} heads of {author}, more than {limit}")]
    TooManyHeads {
        /// The feed's author.
        author: MemberId,
        /// The heads listed.
        heads: usize,
        /// [`MAX_FRONTIER_HEADS`].
        limit: usize,
    },
    /// More events below one head than [`MAX_FRONTIER_BELOW`].
    #[error("a frontier lists {below} events below head {head} of {author}, more than {limit}")]
    TooManyBelow {
        /// The feed's author.
        author: MemberId,
        /// The head.
        head: EventHash,
        /// The events listed below it.
        below: usize,
        /// [`MAX_FRONTIER_BELOW`].
        limit: usize,
    },
}

impl From<CodecError> for FrontierError {
    fn from(error: CodecError) -> Self {
        FrontierError::Malformed(match error {
            CodecError::Malformed(detail) => detail,
            CodecError::TrailingBytes(n) => format!("{n} bytes after the value"),
            CodecError::NonCanonical => "not in canonical form".to_string(),
        })
    }
}

impl TryFrom<Feeds> for Frontier {
    type Error = FrontierError;

    /// Checks the caps of SPEC.md §7.1, for every path a frontier comes in
    /// by (a file, or a network message, §17.3).
    fn try_from(heads: Feeds) -> Result<Self, FrontierError> {
        for (author, feed) in &heads {
            if feed.len() > MAX_FRONTIER_HEADS {
                return Err(FrontierError::TooManyHeads {
                    author: *author,
                    heads: feed.len(),
                    limit: MAX_FRONTIER_HEADS,
                });
            }
            if let Some(head) = feed
                .iter()
                .find(|head| head.below.len() > MAX_FRONTIER_BELOW)
            {
                return Err(FrontierError::TooManyBelow {
                    author: *author,
                    head: head.hash,
                    below: head.below.len(),
                    limit: MAX_FRONTIER_BELOW,
                });
            }
        }
        Ok(Frontier { heads })
    }
}

impl Frontier {
    /// postcard of the heads, by member in order (SPEC.md §7.1).
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::codec::encode(self)
    }

    /// Each head: its author and hash.
    #[cfg(feature = "net")]
    pub(crate) fn heads_iter(&self) -> impl Iterator<Item = (MemberId, EventHash)> + '_ {
        self.heads
            .iter()
            .flat_map(|(author, heads)| heads.iter().map(move |head| (*author, head.hash)))
    }

    /// Strictly decodes a frontier (one value, canonical form, within the
    /// caps of SPEC.md §7.1).
    pub fn from_bytes(bytes: &[u8]) -> Result<Frontier, FrontierError> {
        let heads: Feeds = crate::codec::decode_exact(bytes)?;
        Frontier::try_from(heads)
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
        let mut heads: BTreeMap<MemberId, Vec<EventHash>> = BTreeMap::new();
        // Feeds with events left out, with their events left in.
        let mut cut: BTreeMap<MemberId, Vec<Cow<'_, SignedEvent>>> = BTreeMap::new();
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
        for author in state.authors() {
            if !cut.contains_key(&author) {
                heads.insert(author, state.heads(author));
            }
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
            let live: Vec<EventHash> = feed
                .iter()
                .filter(|r| !followed.contains(&r.hash()))
                .map(|r| r.hash())
                .collect();
            if !live.is_empty() {
                heads.insert(author, live);
            }
        }
        let heads = heads
            .into_iter()
            .map(|(author, hashes)| (author, self.listed_heads(hashes)))
            .collect();
        Frontier { heads }
    }

    /// The heads a frontier lists of one feed: at most
    /// [`MAX_FRONTIER_HEADS`], those furthest on (the smaller hash first
    /// among equals), each with the events below it, in hash order.
    fn listed_heads(&self, hashes: Vec<EventHash>) -> Vec<Head> {
        let mut heads: Vec<(u64, EventHash)> = hashes
            .into_iter()
            .filter_map(|hash| self.record(hash))
            .map(|head| (head.event().seq, head.hash()))
            .collect();
        heads.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        heads.truncate(MAX_FRONTIER_HEADS);
        heads.sort_by_key(|(_, hash)| *hash);
        heads
            .into_iter()
            .map(|(seq, hash)| Head {
                seq,
                hash,
                below: self.state().chain_below(hash),
            })
            .collect()
    }

    /// The heads of `checkpoint` this ledger does not hold: empty when it
    /// holds the whole state the checkpoint recorded (every event is held
    /// with everything before it), else what was rolled back.
    pub(crate) fn missing_heads(&self, checkpoint: &Frontier) -> Vec<EventHash> {
        checkpoint
            .heads
            .values()
            .flatten()
            .map(|head| head.hash)
            .filter(|hash| !self.contains(*hash))
            .collect()
    }

    /// Every held event a peer with `frontier` may lack, in the order held
    /// (each after what it names). Not sent: the events this ledger leaves
    /// out (SPEC.md §6.4), and the events the frontier covers: those on the
    /// `prev` chain of one of its heads, or of an event it lists below a
    /// head, that this ledger holds. So whatever the peer's copy of a feed
    /// is (behind, ahead, or forked from this one), one reply carries every
    /// event it lacks, with everything those name (SPEC.md §7.1).
    pub(crate) fn missing_for(&self, frontier: &Frontier) -> Vec<Cow<'_, SignedEvent>> {
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
        for (author, heads) in &frontier.heads {
            let listed = heads.iter().flat_map(|head| {
                std::iter::once(head.hash).chain(head.below.iter().map(|(_, hash)| *hash))
            });
            for hash in listed {
                // The peer holds what it lists, and every event before it
                // (an event is only ever held with its prev chain).
                let mut at = hash;
                while let Some(record) = self.record(at) {
                    if record.event().author != *author || !covered.insert(at) {
                        break;
                    }
                    if record.event().seq == 0 {
                        break;
                    }
                    at = record.event().prev;
                }
            }
        }
        let left_out = self.left_out();
        self.records()
            .enumerate()
            .filter(|(_, record)| {
                !covered.contains(&record.hash()) && !left_out.contains(record.hash())
            })
            .map(|(position, _)| position)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::event::{Body, Event, SignedEvent, VERSION};
    use crate::keys::LocalKeys;
    use crate::verify::Ledger;

    fn hashes(records: Vec<std::borrow::Cow<'_, SignedEvent>>) -> Vec<crate::ids::EventHash> {
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

        // Their copy of the feed forks at seq 2: each side sends its branch,
        // in one reply each way.
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
        {
            for record in theirs
                .missing_for(&ours.frontier())
                .into_iter()
                .map(std::borrow::Cow::into_owned)
                .collect::<Vec<_>>()
            {
                ours.insert(record).unwrap();
            }
            for record in ours
                .missing_for(&theirs.frontier())
                .into_iter()
                .map(std::borrow::Cow::into_owned)
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

    /// A feed of `len` events of `keys` after the genesis, on `ledger`.
    fn grow(ledger: &mut Ledger, keys: &LocalKeys, genesis: EventHash, len: u64) -> Vec<EventHash> {
        (0..len)
            .map(|n| {
                let body = Body::SetEnabled {
                    epoch: genesis,
                    enabled: true,
                };
                ledger.write(keys, 100 + n, body).unwrap()
            })
            .collect()
    }

    /// An event of `keys` at `seq` after `prev` at `time`, which no copy
    /// wrote yet.
    fn forked(
        ledger: &Ledger,
        keys: &LocalKeys,
        genesis: EventHash,
        (seq, prev, time): (u64, EventHash, u64),
    ) -> SignedEvent {
        let event = Event {
            version: VERSION,
            group: ledger.group(),
            author: keys.member_id(),
            seq,
            prev,
            time,
            body: Body::SetEnabled {
                epoch: genesis,
                enabled: true,
            },
        };
        SignedEvent::sign(event, keys)
    }

    #[test]
    fn the_events_below_a_head_are_on_its_chain_at_powers_of_two() {
        let f = LocalKeys::from_secret_bytes(&[1; 32], &[101; 32]);
        let (mut ledger, genesis) =
            Ledger::create(&f, "g", 0, &mut StdRng::from_seed([1; 32])).unwrap();
        let mut feed = vec![genesis];
        feed.extend(grow(&mut ledger, &f, genesis, 12));
        // A branch from seq 6 to seq 9 beside the feed's seq 7 to 12.
        let mut branch = feed[..7].to_vec();
        for seq in 7..=9 {
            let event = forked(&ledger, &f, genesis, (seq, branch[seq as usize - 1], 7_000));
            branch.push(event.hash());
            ledger.insert(event).unwrap();
        }
        let frontier = ledger.frontier();
        let heads = &frontier.heads[&f.member_id()];
        assert_eq!(heads.len(), 2);
        for head in heads {
            let chain = if head.hash == feed[12] {
                &feed
            } else {
                &branch
            };
            assert_eq!(head.hash, chain[head.seq as usize]);
            let seqs: Vec<u64> = head.below.iter().map(|(seq, _)| *seq).collect();
            let expected: Vec<u64> = match head.seq {
                12 => vec![11, 10, 8, 4],
                _ => vec![8, 7, 5, 1],
            };
            assert_eq!(seqs, expected);
            for (seq, hash) in &head.below {
                assert_eq!(*hash, chain[*seq as usize], "on the head's own chain");
            }
        }
        assert_eq!(Frontier::from_bytes(&frontier.to_bytes()), Ok(frontier));
    }

    /// A sender that lacks the peer's head still leaves out most of what
    /// the peer holds: at most as many events as the peer is ahead.
    #[test]
    fn a_peer_ahead_on_a_feed_gets_little_it_holds() {
        let f = LocalKeys::from_secret_bytes(&[1; 32], &[101; 32]);
        let (mut ahead, genesis) =
            Ledger::create(&f, "g", 0, &mut StdRng::from_seed([1; 32])).unwrap();
        grow(&mut ahead, &f, genesis, 20);
        let behind = ahead.clone();
        grow(&mut ahead, &f, genesis, 10);
        let resent = behind.missing_for(&ahead.frontier());
        assert!(!resent.is_empty() && resent.len() <= 10, "{}", resent.len());
        assert!(resent.iter().all(|record| ahead.contains(record.hash())));
        assert_eq!(ahead.missing_for(&behind.frontier()).len(), 10);
    }

    #[test]
    fn a_frontier_past_its_caps_is_refused_by_name_on_every_path() {
        let author = LocalKeys::from_secret_bytes(&[1; 32], &[101; 32]).member_id();
        let head = |n: u8, below: usize| Head {
            seq: u64::from(n),
            hash: EventHash::from_bytes([n; 32]),
            below: vec![(0, EventHash::from_bytes([0; 32])); below],
        };
        let too_many: Feeds = BTreeMap::from([(
            author,
            (0..=MAX_FRONTIER_HEADS as u8).map(|n| head(n, 0)).collect(),
        )]);
        let bytes = crate::codec::encode(&too_many);
        let error = Frontier::from_bytes(&bytes).unwrap_err();
        assert_eq!(
            error,
            FrontierError::TooManyHeads {
                author,
                heads: MAX_FRONTIER_HEADS + 1,
                limit: MAX_FRONTIER_HEADS
            }
        );
        // A network message holds a frontier inline: the same check.
        assert!(postcard::from_bytes::<Frontier>(&bytes).is_err());

        let deep: Feeds = BTreeMap::from([(author, vec![head(9, MAX_FRONTIER_BELOW + 1)])]);
        let error = Frontier::from_bytes(&crate::codec::encode(&deep)).unwrap_err();
        assert!(
            matches!(error, FrontierError::TooManyBelow { below, .. } if below == MAX_FRONTIER_BELOW + 1)
        );

        // At the caps, it decodes.
        let full: Feeds = BTreeMap::from([(
            author,
            (0..MAX_FRONTIER_HEADS as u8)
                .map(|n| head(n, MAX_FRONTIER_BELOW))
                .collect(),
        )]);
        let bytes = crate::codec::encode(&full);
        assert_eq!(Frontier::from_bytes(&bytes).unwrap().to_bytes(), bytes);
        // Truncated, or with a byte after it: malformed.
        assert!(matches!(
            Frontier::from_bytes(&bytes[..bytes.len() - 1]),
            Err(FrontierError::Malformed(_))
        ));
        let mut longer = bytes;
        longer.push(0);
        assert!(matches!(
            Frontier::from_bytes(&longer),
            Err(FrontierError::Malformed(_))
        ));
    }

    /// SPEC.md §15: a frontier of the earlier encoding, heads without the
    /// events below them, is refused as malformed.
    #[test]
    fn a_frontier_of_the_earlier_encoding_is_malformed() {
        let f = LocalKeys::from_secret_bytes(&[1; 32], &[101; 32]);
        let (mut ledger, genesis) =
            Ledger::create(&f, "g", 0, &mut StdRng::from_seed([1; 32])).unwrap();
        grow(&mut ledger, &f, genesis, 3);
        let earlier: BTreeMap<MemberId, Vec<(u64, EventHash)>> = ledger
            .frontier()
            .heads
            .into_iter()
            .map(|(author, heads)| (author, heads.iter().map(|h| (h.seq, h.hash)).collect()))
            .collect();
        let bytes = crate::codec::encode(&earlier);
        assert!(matches!(
            Frontier::from_bytes(&bytes),
            Err(FrontierError::Malformed(_))
        ));
    }

    /// A feed forked more often than a frontier lists: the heads furthest
    /// on are listed, and the sender sends the other branches again.
    #[test]
    fn a_feed_with_more_heads_than_the_cap_lists_the_furthest() {
        let f = LocalKeys::from_secret_bytes(&[1; 32], &[101; 32]);
        let (mut ledger, genesis) =
            Ledger::create(&f, "g", 0, &mut StdRng::from_seed([1; 32])).unwrap();
        let base = grow(&mut ledger, &f, genesis, 1)[0];
        let peer = ledger.clone();
        let mut tips = Vec::new();
        for n in 0..=MAX_FRONTIER_HEADS as u64 {
            // Branches of one and two events from seq 2.
            let first = forked(&ledger, &f, genesis, (2, base, n));
            let mut tip = first.hash();
            ledger.insert(first).unwrap();
            if n % 2 == 0 {
                let second = forked(&ledger, &f, genesis, (3, tip, n));
                tip = second.hash();
                ledger.insert(second).unwrap();
            }
            tips.push(tip);
        }
        let frontier = ledger.frontier();
        let heads = &frontier.heads[&f.member_id()];
        assert_eq!(heads.len(), MAX_FRONTIER_HEADS);
        let at_3 = tips.len().div_ceil(2);
        assert_eq!(heads.iter().filter(|head| head.seq == 3).count(), at_3);
        assert_eq!(
            Frontier::from_bytes(&frontier.to_bytes()),
            Ok(frontier.clone())
        );
        // What the frontier leaves unlisted is sent again, never missed.
        let sent = ledger.missing_for(&frontier);
        assert_eq!(sent.len(), 1);
        assert!(peer.missing_for(&frontier).is_empty());
    }
}
