//! The v3 verification pipeline: signed bytes in, a proof out (SPEC.md
//! §4.2, §5.2, §8).
//!
//! One pass (`Ledger::verify_with`, reached through
//! [`Ledger::verify_made_here`] for an event made here and
//! [`Ledger::take_all`] for records in bulk) runs every check on one event
//! against what the ledger holds and returns a [`Verified`], which only it
//! can build;
//! [`Ledger::commit`] takes nothing else. Events made here, open, join and
//! ingest all share this one pass, so no event is ever checked twice; an
//! event made here ([`MadeHere`]) has its signer's key compared with its
//! author's instead of its signature verified; it passes before it is
//! signed, so that it is signed while the journal writes it
//! ([`Verified::finish`]).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;

use foldhash::HashMap;

use rand::CryptoRng;
use rayon::prelude::*;

use super::event::{Body, Event, PackageError, SignedEvent, SignedPackage, UnsignedEvent, VERSION};
use super::feeds::{Check, Checked, FeedError, FeedEvent, MeshState, Missing};
use super::graph::{self, GraphError, Resolution};
use crate::backing::Backing;
use crate::envelope::{self, Binding, EnvelopeError, EpochSecret, is_admissible_dh_key};
use crate::error::{Error, VoidReason};
use crate::event::{DecodeError, Envelope};
use crate::ids::{EventHash, GroupId, MemberId, SigningPublicKey};
use crate::keys::LocalKeys;
use crate::labels::{self, limits};
use crate::left_out::LeftOut;
use crate::signature::SIGNATURE_LEN;

/// An event refused, naming it and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {hash} (seq {seq} of {author}) refused: {rule}")]
pub struct Rejection {
    /// The event's hash.
    pub hash: EventHash,
    /// Its author.
    pub author: MemberId,
    /// Its position in the author's feed.
    pub seq: u64,
    /// The rule broken (boxed: a graph rule names two hashes).
    pub rule: Box<Rule>,
}

/// A rule of SPEC.md §8, in check order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rule {
    /// V1: the bytes are not a canonical v3 event.
    #[error("malformed: {0}")]
    Malformed(DecodeError),
    /// V2: the first event is not a genesis, or the genesis is not the
    /// founder's seq 0 in no group.
    #[error("a mesh starts with its founder's genesis at seq 0")]
    BadGenesis,
    /// V3: the event names another group.
    #[error("names group {found}, not {expected}")]
    WrongGroup {
        /// This mesh.
        expected: GroupId,
        /// The group named.
        found: GroupId,
    },
    /// V4: a size limit.
    #[error("{field} has size {found}, outside {min}..={max}")]
    Limit {
        /// Which field.
        field: &'static str,
        /// Its size.
        found: usize,
        /// Smallest allowed.
        min: usize,
        /// Largest allowed.
        max: usize,
    },
    /// V5: a key package it carries.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// V6: the signature does not verify under the author's key.
    #[error("signature does not verify under the key of {0}")]
    BadSignature(MemberId),
    /// V7: a feed or graph rule (SPEC.md §4.2, §5.2).
    #[error(transparent)]
    Feed(#[from] FeedError),
    /// V8: the envelope's ephemeral key has small order.
    #[error("the envelope's ephemeral key has small order")]
    WeakEphemeralKey,
    /// V9: the envelope's recipients are not exactly the own roster.
    #[error("the envelope's recipients differ from the rotation's own roster at position {0}")]
    EnvelopeRecipients(usize),
    /// V10: a sealed app event's payload is not a sealed message of the
    /// event's group and epoch with the event's kind as associated data.
    #[error(
        "its sealed payload is not a message of its group and epoch with its kind as associated data: {0}"
    )]
    SealedPayload(crate::seal::SealError),
    /// An event made here names an event this ledger does not hold (a
    /// caller's mistake; events from peers wait instead).
    #[error("names {0:?}, which this ledger does not hold")]
    NamesUnknown(Missing),
}

impl Rule {
    /// The rule's id in SPEC.md §8 (V1–V10), or the feed or graph rule's
    /// (F1–F7, E1–E8) when the event breaks one of those (V7).
    pub fn id(&self) -> &'static str {
        match self {
            Rule::Malformed(_) => "V1",
            Rule::BadGenesis => "V2",
            Rule::WrongGroup { .. } => "V3",
            Rule::Limit { .. } => "V4",
            Rule::Package(_) => "V5",
            Rule::BadSignature(_) => "V6",
            Rule::Feed(error) => error.id(),
            Rule::WeakEphemeralKey => "V8",
            Rule::EnvelopeRecipients(_) => "V9",
            Rule::SealedPayload(_) => "V10",
            Rule::NamesUnknown(_) => "V7",
        }
    }
}

/// What a [`Ledger::take_batch`] took.
pub(crate) struct Taken {
    /// Records the ledger held already.
    pub(crate) known: usize,
    /// Whether every record was taken in the order given (none had to wait
    /// for one after it).
    pub(crate) in_order: bool,
    start: usize,
    new_keys: Vec<MemberId>,
    rotations: bool,
}

/// What a bulk take ([`Ledger::take_all`]) keeps between chunks.
#[derive(Default)]
struct Take {
    /// Records that wait, by the hash of the event each waits for, with
    /// their position in the records given and what they wait for.
    waiting: HashMap<EventHash, Vec<(usize, SignedEvent, Missing)>>,
    /// Records this ledger held already.
    known: usize,
    /// Whether a rotation was taken, so that the resolution is stale.
    stale: bool,
    /// Members whose signing keys the records taken so far introduced.
    new_keys: Vec<MemberId>,
    /// The position of the record taken last, in the records given.
    last: Option<usize>,
    /// Whether a record was taken after one that came later in the records
    /// given.
    reordered: bool,
}

/// What the pipeline checks: the rules read the event and its hash only;
/// the signature is left to the check `Ledger::verify_with` is given.
pub(crate) trait Candidate {
    fn unsigned(&self) -> &UnsignedEvent;

    fn event(&self) -> &Event {
        self.unsigned().event()
    }
    fn hash(&self) -> EventHash {
        self.unsigned().hash()
    }
    fn to_feed_event(&self) -> Result<FeedEvent, PackageError> {
        self.unsigned().to_feed_event()
    }
}

impl Candidate for SignedEvent {
    fn unsigned(&self) -> &UnsignedEvent {
        SignedEvent::unsigned(self)
    }
}

impl Candidate for UnsignedEvent {
    fn unsigned(&self) -> &UnsignedEvent {
        self
    }
}

/// An event every check passed: only the pipeline builds one. An event
/// made here passes unsigned, with the key it is to be signed with;
/// [`Ledger::commit`] takes only a signed one.
pub(crate) struct Verified<C = SignedEvent> {
    signed: C,
    checked: Checked,
    /// For an event made here: the key the pipeline compared with its
    /// author's, which must sign it.
    signer: Option<SigningPublicKey>,
}

impl Verified {
    /// The event that passed.
    pub(crate) fn signed(&self) -> &SignedEvent {
        &self.signed
    }
}

impl Verified<UnsignedEvent> {
    /// The event that passed, not yet signed.
    pub(crate) fn unsigned(&self) -> &UnsignedEvent {
        &self.signed
    }

    /// Whether `keys` hold the key the pipeline compared with the author's,
    /// and so may sign it (V6 by construction).
    pub(crate) fn check_signer(&self, keys: &LocalKeys) -> Result<(), Rejection> {
        let event = self.signed.event();
        if self.signer == Some(keys.public().signing) {
            return Ok(());
        }
        Err(Rejection {
            hash: self.signed.hash(),
            author: event.author,
            seq: event.seq,
            rule: Box::new(Rule::BadSignature(event.author)),
        })
    }

    /// The same proof for the event signed by `keys`, which must hold the
    /// key the pipeline compared with the author's (V6 by construction).
    pub(crate) fn finish(self, keys: &LocalKeys) -> Result<Verified, Rejection> {
        self.check_signer(keys)?;
        Ok(Verified {
            signed: self.signed.sign(keys),
            checked: self.checked,
            signer: None,
        })
    }
}

/// What the pipeline found.
pub(crate) enum Verdict<C = SignedEvent> {
    /// Passed; [`Ledger::commit`] adds it.
    Verified(Box<Verified<C>>),
    /// Already held.
    Known,
    /// Waits for an event it names.
    Missing(Missing),
}

/// Why an epoch secret could not be recovered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// No rotation (or genesis) of that hash.
    #[error("no epoch {0}: no rotation of that hash")]
    UnknownEpoch(EventHash),
    /// The member is not in that epoch's own roster, or not with these keys.
    #[error("member {member} is not a recipient of epoch {epoch}")]
    NotARecipient {
        /// The epoch.
        epoch: EventHash,
        /// The member.
        member: MemberId,
    },
    /// The envelope did not open.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
}

/// The verified events of one mesh, and what they imply.
#[derive(Clone)]
pub(crate) struct Ledger {
    group: GroupId,
    founder: MemberId,
    /// The genesis's group name, kept when the genesis itself is not.
    group_name: String,
    state: MeshState,
    /// The events taken since the ledger last settled, at positions
    /// `settled..`; those before are read from `backing`.
    events: Vec<SignedEvent>,
    /// Where each event of `events` is in the order taken.
    index: HashMap<EventHash, usize>,
    /// How many events the backing holds: the first position of `events`.
    settled: usize,
    /// The events taken before the ledger last settled (SPEC.md §9.5).
    backing: Option<Arc<dyn Backing>>,
    /// Each member's signing key, from the packages of held events (a member
    /// id is the hash of its signing key, so a member has one).
    signing_keys: HashMap<MemberId, SigningPublicKey>,
    /// The graph's resolution, recomputed when a rotation is added.
    resolution: Resolution,
    /// The events left out (SPEC.md §6.4), computed when first asked for
    /// after a change: digests, frontiers and exports all read it.
    left_out: std::sync::OnceLock<LeftOut>,
}

impl Ledger {
    /// A ledger holding only `genesis`, checked in full (SPEC.md §8, V1–V10).
    pub(crate) fn found(genesis: SignedEvent) -> Result<Ledger, Rejection> {
        let event = genesis.event();
        let reject = |rule| Rejection {
            hash: genesis.hash(),
            author: event.author,
            seq: event.seq,
            rule: Box::new(rule),
        };
        let Body::Genesis {
            group_name,
            founder,
            envelope,
        } = &event.body
        else {
            return Err(reject(Rule::BadGenesis));
        };
        if event.seq != 0 || event.prev != EventHash::ZERO || event.group != GroupId::ZERO {
            return Err(reject(Rule::BadGenesis));
        }
        check_len("group name", group_name.len(), 1, limits::MAX_GROUP_NAME).map_err(reject)?;
        let package = founder.verify().map_err(|e| reject(e.into()))?;
        if package.member() != event.author {
            return Err(reject(Rule::BadGenesis));
        }
        if !genesis.is_signed_by(&founder.keys.signing) {
            return Err(reject(Rule::BadSignature(event.author)));
        }
        check_envelope(envelope, [event.author].into_iter()).map_err(reject)?;
        let feed_event = genesis.to_feed_event().map_err(|e| reject(e.into()))?;
        let state = MeshState::new(feed_event).map_err(|e| reject(e.into()))?;
        Ok(Ledger {
            resolution: state.graph().resolve(),
            left_out: std::sync::OnceLock::new(),
            group: genesis.hash().into(),
            group_name: group_name.clone(),
            founder: event.author,
            state,
            signing_keys: HashMap::from_iter([(event.author, founder.keys.signing)]),
            index: HashMap::from_iter([(genesis.hash(), 0)]),
            events: vec![genesis],
            settled: 0,
            backing: None,
        })
    }

    pub(crate) fn group(&self) -> GroupId {
        self.group
    }

    /// The group's name, as the genesis gives it.
    pub(crate) fn group_name(&self) -> &str {
        &self.group_name
    }

    pub(crate) fn state(&self) -> &MeshState {
        &self.state
    }

    /// The resolution of the held rotations (SPEC.md §5.5).
    pub(crate) fn resolution(&self) -> &Resolution {
        &self.resolution
    }

    /// The state digest (SPEC.md §6.3): of the events not left out.
    pub(crate) fn digest(&self) -> crate::ids::StateDigest {
        let digest = self.state.digest(&self.resolution, self.left_out());
        // A digest over rows that did not all check matches no honest one.
        match self.failure() {
            Some(_) => crate::ids::StateDigest::from_bytes([0; 32]),
            None => digest,
        }
    }

    /// The held events a peer may leave out (SPEC.md §6.4).
    pub(crate) fn left_out(&self) -> &LeftOut {
        self.left_out.get_or_init(|| {
            // Nothing is, unless a rotation is void: a look at the
            // rotations, not at every event.
            let resolution = &self.resolution;
            let any = resolution.any_void();
            if any {
                LeftOut::of(self.records(), resolution)
            } else {
                LeftOut::default()
            }
        })
    }

    /// Every held record, in the order added: each after what it names.
    pub(crate) fn records(&self) -> Records<'_> {
        self.records_since(0)
    }

    /// The records taken after the first `len`, in the order taken.
    pub(crate) fn records_since(&self, len: usize) -> Records<'_> {
        Records {
            ledger: self,
            next: len,
            read: std::collections::VecDeque::new(),
        }
    }

    /// How many events the ledger holds.
    pub(crate) fn len(&self) -> usize {
        self.settled + self.events.len()
    }

    /// The record of `hash`, if held.
    pub(crate) fn record(&self, hash: EventHash) -> Option<Cow<'_, SignedEvent>> {
        if let Some(&position) = self.index.get(&hash) {
            return self.record_at(position);
        }
        crate::backing::record(self.backing.as_deref()?, hash).map(Cow::Owned)
    }

    /// The event at `position` in the order taken.
    pub(crate) fn record_at(&self, position: usize) -> Option<Cow<'_, SignedEvent>> {
        match position.checked_sub(self.settled) {
            Some(recent) => self.events.get(recent).map(Cow::Borrowed),
            None => self
                .backing
                .as_deref()?
                .record_at(position as u64)
                .map(Cow::Owned),
        }
    }

    pub(crate) fn contains(&self, hash: EventHash) -> bool {
        self.index.contains_key(&hash)
            || self
                .backing
                .as_deref()
                .is_some_and(|backing| backing.position(hash).is_some())
    }

    /// The first read of the backing that failed, if any: what the ledger
    /// answered since may rest on a row it could not read, so nothing built
    /// on it may be kept ([`crate::backing`]).
    pub(crate) fn failure(&self) -> Option<Error> {
        self.backing.as_deref().and_then(Backing::failure)
    }

    /// Reads the events held before [`Self::settle`] from `backing`, which
    /// must hold exactly the first [`Backing::len`] events of this ledger.
    pub(crate) fn set_backing(&mut self, backing: Arc<dyn Backing>) {
        self.state.set_backing(Arc::clone(&backing));
        self.backing = Some(backing);
    }

    /// Whether the ledger reads what it let go of from a backing.
    pub(crate) fn has_backing(&self) -> bool {
        self.backing.is_some()
    }

    /// Lets go of the events held in memory: the backing now holds all of
    /// them. A ledger without a backing keeps them.
    pub(crate) fn settle(&mut self) {
        let Some(backing) = self.backing.as_deref() else {
            return;
        };
        debug_assert_eq!(backing.len(), self.len() as u64);
        self.settled = self.len();
        self.events = Vec::new();
        self.index = HashMap::default();
        self.state.settle();
    }

    /// The ledger a checkpoint states (SPEC.md §9.7), from the genesis and
    /// the rotations of the events it covers, read from `backing`, which
    /// holds exactly those events. The checkpoint vouches for them, so no
    /// rule is checked again; the genesis is, being cheap.
    pub(crate) fn restore(
        genesis: SignedEvent,
        rotations: Vec<SignedEvent>,
        checkpoint: &crate::checkpoint::Checkpoint,
        backing: Arc<dyn Backing>,
    ) -> Result<Ledger, Error> {
        let mut ledger = Ledger::found(genesis.clone())?;
        let feed_event = |signed: &SignedEvent| {
            signed.to_feed_event().map_err(|error| Rejection {
                hash: signed.hash(),
                author: signed.event().author,
                seq: signed.event().seq,
                rule: Box::new(error.into()),
            })
        };
        let rotation_events = rotations
            .iter()
            .map(feed_event)
            .collect::<Result<Vec<_>, _>>()?;
        for rotation in &rotations {
            for package in rotation.event().body.packages() {
                ledger
                    .signing_keys
                    .entry(package.keys.member_id())
                    .or_insert(package.keys.signing);
            }
        }
        ledger.state = MeshState::restore(
            feed_event(&genesis)?,
            rotation_events,
            &checkpoint.heads,
            &checkpoint.forks,
            Arc::clone(&backing),
        )
        .map_err(|error| Rejection {
            hash: genesis.hash(),
            author: genesis.event().author,
            seq: 0,
            rule: Box::new(error.into()),
        })?;
        ledger.resolution = ledger.state.graph().resolve();
        ledger.events = Vec::new();
        ledger.index = HashMap::default();
        ledger.settled = backing.len() as usize;
        ledger.backing = Some(backing);
        let left_out = LeftOut::from_hashes(checkpoint.left_out.iter().copied());
        ledger.left_out = std::sync::OnceLock::from(left_out);
        Ok(ledger)
    }

    /// What a checkpoint of this ledger states beside the counts (SPEC.md
    /// §9.7): each feed's heads, every forked position, the events left
    /// out.
    pub(crate) fn checkpoint_state(&self) -> crate::checkpoint::Checkpoint {
        let mut left_out: Vec<EventHash> = self.left_out().iter().collect();
        left_out.sort();
        crate::checkpoint::Checkpoint {
            heads: self.state.heads_at(),
            forks: self.state.forks(),
            left_out,
            ..Default::default()
        }
    }

    #[cfg(any(test, feature = "fuzzing"))]
    /// Decodes a stored record strictly (V1), then [`Self::verify`]. A
    /// record that does not decode is named by the hash of its bytes.
    pub(crate) fn verify_record(&mut self, record: &[u8]) -> Result<Verdict, Rejection> {
        let signed = SignedEvent::from_record(record).map_err(|error| malformed(record, error))?;
        self.verify(signed)
    }

    /// Checks one event against what it names (SPEC.md §8: V3–V9 in
    /// order). Leaves the ledger as it was.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn verify(&mut self, signed: SignedEvent) -> Result<Verdict, Rejection> {
        self.verify_with(signed, |signed, key| signed.is_signed_by(key))
            .map(|(verdict, _)| verdict)
    }

    /// [`Self::verify`] for an event made here, before it is signed: the
    /// author's key is compared with the key that will sign it, which is
    /// what verifying that signature would establish (SPEC.md §8: V6 holds
    /// by construction); only that key can complete the proof
    /// ([`Verified::finish`]).
    pub(crate) fn verify_made_here(
        &mut self,
        made: MadeHere,
    ) -> Result<Verdict<UnsignedEvent>, Rejection> {
        let MadeHere {
            unsigned, signer, ..
        } = made;
        let verdict = self
            .verify_with(unsigned, |_, key| *key == signer)
            .map(|(verdict, _)| verdict)?;
        Ok(match verdict {
            Verdict::Verified(mut verified) => {
                verified.signer = Some(signer);
                Verdict::Verified(verified)
            }
            other => other,
        })
    }

    /// Every rule but the author's signature, which is left to the caller
    /// to check in a batch (see [`Self::take_all`]): returns the key it must
    /// verify under. An event this passes is one [`Self::verify`] passes
    /// exactly when its signature verifies under that key. A rotation's
    /// signature is checked here all the same, before its costly rules, as
    /// [`Self::verify`] checks it (SPEC.md §8): a forged rotation costs one
    /// signature check and is refused as V6 on every path; it then owes
    /// none.
    fn verify_deferring(
        &mut self,
        signed: SignedEvent,
    ) -> Result<(Verdict, Option<SigningPublicKey>), Rejection> {
        let rotation = matches!(signed.event().body, Body::Rotate { .. });
        let (verdict, key) =
            self.verify_with(signed, |signed, key| !rotation || signed.is_signed_by(key))?;
        Ok((verdict, key.filter(|_| !rotation)))
    }

    /// Every check, the signature's by `signature_ok`: the signature
    /// itself, or nothing (left to a batch), or the key that will sign it here.
    fn verify_with<C: Candidate>(
        &mut self,
        signed: C,
        signature_ok: impl Fn(&C, &SigningPublicKey) -> bool,
    ) -> Result<(Verdict<C>, Option<SigningPublicKey>), Rejection> {
        let (hash, event) = (signed.hash(), signed.event());
        if self.index.contains_key(&hash) || self.state.holds(event.author, event.seq, hash) {
            return Ok((Verdict::Known, None));
        }
        let verified = |key: &SigningPublicKey| signature_ok(&signed, key);
        let event = signed.event();
        let reject = |rule| Rejection {
            hash: signed.hash(),
            author: event.author,
            seq: event.seq,
            rule: Box::new(rule),
        };
        if event.group != self.group {
            return Err(reject(Rule::WrongGroup {
                expected: self.group,
                found: event.group,
            }));
        }
        check_limits(event).map_err(reject)?;
        check_sealed(event).map_err(reject)?;
        // A known author's signature is checked before anything costly, so
        // a forged rotation costs one signature check: no package checks,
        // no resolution. An author the ledger has no key for is in no epoch
        // the event can name (its package would be in the event's causal
        // past), so the feed rules refuse it.
        let known_key = self.signing_keys.get(&event.author).copied();
        if let Some(key) = known_key
            && !verified(&key)
        {
            return Err(reject(Rule::BadSignature(event.author)));
        }
        let feed_event = signed.to_feed_event().map_err(|e| reject(e.into()))?;
        let checked = match self.state.check(feed_event).map_err(|e| reject(e.into()))? {
            Check::Ready(checked) => checked,
            Check::Known => return Ok((Verdict::Known, None)),
            Check::Missing(missing) => return Ok((Verdict::Missing(missing), None)),
        };
        let key = match known_key {
            Some(key) => key,
            None => {
                // Not reached for an event the rules accept: its author's
                // package is in its causal past, hence held. Checked all
                // the same.
                let epoch_roster = match event.epoch() {
                    Some(epoch) => self.state.graph().own_roster(epoch),
                    None => checked.own_roster(),
                };
                let key = epoch_roster
                    .and_then(|roster| roster.get(event.author))
                    .map(|entry| entry.keys.keys().signing);
                match key {
                    Some(key) if verified(&key) => key,
                    _ => return Err(reject(Rule::BadSignature(event.author))),
                }
            }
        };
        if let (Body::Rotate { envelope, .. }, Some(roster)) = (&event.body, checked.own_roster()) {
            check_envelope(envelope, roster.iter().map(|(id, _)| *id)).map_err(reject)?;
        }
        let verdict = Verdict::Verified(Box::new(Verified {
            signed,
            checked: *checked,
            signer: None,
        }));
        Ok((verdict, Some(key)))
    }

    /// What `event` names that this ledger does not hold yet: its `prev`,
    /// then the epochs it names, in order (SPEC.md §4.2). What the rules
    /// refuse whatever arrives is not missing: a zero `prev` at `seq` > 0
    /// (F2) names no event, and a held event that is no rotation never
    /// becomes an epoch (F3, E3); the rules then name it.
    fn first_missing(&self, event: &Event) -> Option<Missing> {
        if event.seq > 0 && event.prev == EventHash::ZERO {
            return None;
        }
        // The prev is its author's event one position back: a look at the
        // feed (its head, most often, in memory), not at every hash.
        if event.seq > 0
            && !self.index.contains_key(&event.prev)
            && !self.state.holds(event.author, event.seq - 1, event.prev)
        {
            return Some(Missing::Prev(event.prev));
        }
        let graph = self.state.graph();
        event
            .named_epochs()
            .iter()
            .find(|epoch| !graph.contains(**epoch))
            .filter(|epoch| !self.contains(**epoch))
            .map(|epoch| Missing::Epoch(*epoch))
    }

    /// Verifies and takes every record, in any order (one that waits for
    /// another of them is taken once that one is), with the signatures
    /// checked in parallel batches (SPEC.md §2.1: the same verdict as one by
    /// one). One bad record refuses them all, and the ledger is left as it
    /// was. Returns how many records it held already.
    pub(crate) fn take_all(&mut self, records: &[Vec<u8>]) -> Result<usize, Error> {
        self.take_batch(records).map(|taken| taken.known)
    }

    /// [`Self::take_all`], returning what [`Self::undo`] needs to forget
    /// what it took, should writing it fail.
    pub(crate) fn take_batch(&mut self, records: &[Vec<u8>]) -> Result<Taken, Error> {
        let start = self.len();
        let mut take = Take::default();
        let taken = self.take_all_into(records, &mut take);
        // A row that could not be read may have decided a verdict, or
        // refused an event that holds: the failure is the answer.
        let taken = match self.failure() {
            Some(failure) => Err(failure),
            None => taken,
        };
        match taken {
            Ok(known) => Ok(Taken {
                known,
                in_order: !take.reordered,
                start,
                new_keys: take.new_keys,
                rotations: take.stale,
            }),
            Err(error) => {
                self.forget_since(start, &take.new_keys);
                Err(error)
            }
        }
    }

    /// [`Self::take_batch`], but the new records that would be left out
    /// (SPEC.md §6.4) are not taken: the batch is checked whole, then taken
    /// again without them. Returns also how many were left out.
    pub(crate) fn take_batch_leaving_out(
        &mut self,
        records: &[Vec<u8>],
    ) -> Result<(Taken, Vec<Vec<u8>>), Error> {
        let taken = self.take_batch(records)?;
        let left_out = self.left_out().clone();
        let new = self
            .events
            .get(taken.start - self.settled..)
            .unwrap_or_default();
        if !new.iter().any(|event| left_out.contains(event.hash())) {
            return Ok((taken, Vec::new()));
        }
        let mut dropped = Vec::new();
        let mut keep = Vec::new();
        for event in new {
            if left_out.contains(event.hash()) {
                dropped.push(event.to_record());
            } else {
                keep.push(event.to_record());
            }
        }
        let known = taken.known;
        self.undo(taken);
        // Leaving them out changes nothing else (SPEC.md §6.4), so the
        // rest is taken as it was the first time.
        let mut taken = self.take_batch(&keep)?;
        taken.known = known;
        Ok((taken, dropped))
    }

    /// Forgets what a [`Self::take_batch`] took; nothing may have been
    /// taken since.
    pub(crate) fn undo(&mut self, taken: Taken) {
        self.forget_since(taken.start, &taken.new_keys);
        if taken.rotations {
            self.resolution = self.state.graph().resolve();
            self.left_out.take();
        }
    }

    fn take_all_into(&mut self, records: &[Vec<u8>], take: &mut Take) -> Result<usize, Error> {
        let decoded: Vec<Result<SignedEvent, Rejection>> = records
            .par_iter()
            .map(|record| {
                SignedEvent::from_record(record).map_err(|error| malformed(record, error))
            })
            .collect();
        let mut queue = decoded
            .into_iter()
            .enumerate()
            .map(|(index, decoded)| decoded.map(|event| (index, event)))
            .collect::<Result<VecDeque<_>, _>>()?;
        // Room for every record up front: growing the maps as they fill
        // would move every event held so far at each doubling.
        self.index.reserve(queue.len());
        self.events.reserve(queue.len());
        self.state.reserve(queue.len());
        // The signatures of one chunk are checked (in parallel batches)
        // while the rules run over the next: the two take about as long.
        let mut in_flight: Vec<Owed> = Vec::new();
        while !queue.is_empty() {
            let to_check = std::mem::take(&mut in_flight);
            let (bad, taken) = rayon::join(
                || first_bad(records, &to_check),
                || self.take_chunk(&mut queue, take),
            );
            if let Some(rejection) = bad {
                return Err(rejection.into());
            }
            in_flight = taken?;
        }
        if let Some(rejection) = first_bad(records, &in_flight) {
            return Err(rejection.into());
        }
        // What still waits names something neither the records nor this
        // ledger hold; the first such record, in the order given, is named.
        let count = take.waiting.values().map(Vec::len).sum();
        if let Some((_, stuck, first)) = std::mem::take(&mut take.waiting)
            .into_values()
            .flatten()
            .min_by_key(|(index, _, _)| *index)
        {
            return Err(Error::Incomplete {
                count,
                waiting: stuck.hash(),
                first,
            });
        }
        if take.stale {
            self.resolution = self.state.graph().resolve();
            self.left_out.take();
        }
        Ok(take.known)
    }

    /// Forgets the events taken since the ledger held `len`, newest first,
    /// and the signing keys they introduced: the ledger is as it was, so a
    /// refused batch costs what it took rather than a copy of the ledger.
    fn forget_since(&mut self, len: usize, new_keys: &[MemberId]) {
        self.left_out.take();
        debug_assert!(len >= self.settled, "only what is in memory is undone");
        while self.len() > len {
            let Some(event) = self.events.pop() else {
                break;
            };
            self.index.remove(&event.hash());
            self.state.forget(event.hash());
        }
        for member in new_keys {
            self.signing_keys.remove(member);
        }
    }

    /// The rules (signatures deferred) over up to [`TAKE_CHUNK`] records from
    /// the front of `queue`: takes what passes, and sets aside what waits,
    /// under what it waits for, until that is taken and puts it back on the
    /// queue. So every record is looked at once, and once more for each
    /// event it waited for: records in any order cost what records in
    /// order do. Returns the signature checks still owed.
    fn take_chunk(
        &mut self,
        queue: &mut VecDeque<(usize, SignedEvent)>,
        take: &mut Take,
    ) -> Result<Vec<Owed>, Rejection> {
        let mut owed = Vec::with_capacity(TAKE_CHUNK.min(queue.len()));
        for _ in 0..TAKE_CHUNK {
            let Some((index, signed)) = queue.pop_front() else {
                break;
            };
            // What waits is set aside before any check, so that nothing is
            // checked twice.
            if let Some(missing) = self.first_missing(signed.event()) {
                let on = match missing {
                    Missing::Prev(hash) | Missing::Epoch(hash) => hash,
                };
                take.waiting
                    .entry(on)
                    .or_default()
                    .push((index, signed, missing));
                continue;
            }
            let hash = signed.hash();
            match self.verify_deferring(signed)? {
                (Verdict::Verified(verified), key) => {
                    if let Some(key) = key {
                        // The record's own bytes are checked later: no copy.
                        let event = verified.signed().event();
                        owed.push(Owed {
                            index,
                            key,
                            hash,
                            author: event.author,
                            seq: event.seq,
                        });
                    }
                    take.stale |= self.take(*verified, &mut take.new_keys);
                    take.reordered |= take.last.is_some_and(|last| index < last);
                    take.last = Some(index);
                    if let Some(released) = take.waiting.remove(&hash) {
                        queue.extend(
                            released
                                .into_iter()
                                .map(|(index, signed, _)| (index, signed)),
                        );
                    }
                }
                (Verdict::Known, _) => take.known += 1,
                // `first_missing` found everything held.
                (Verdict::Missing(_), _) => {}
            }
        }
        Ok(owed)
    }

    /// Adds a verified event.
    pub(crate) fn commit(&mut self, verified: Verified) {
        if self.take(verified, &mut Vec::new()) {
            self.resolution = self.state.graph().resolve();
            self.left_out.take();
        }
    }

    /// Adds a verified event without resolving the graph again; returns
    /// whether it was a new rotation, so that the resolution is stale. No
    /// rule reads the resolution (acceptance reads causal pasts only, SPEC.md
    /// §5.2), so a bulk take resolves once, at its end.
    fn take(&mut self, verified: Verified, new_keys: &mut Vec<MemberId>) -> bool {
        let Verified {
            signed, checked, ..
        } = verified;
        let (hash, event) = (signed.hash(), signed.event());
        if self.index.contains_key(&hash) || self.state.holds(event.author, event.seq, hash) {
            return false;
        }
        for package in signed.event().body.packages() {
            let member = package.keys.member_id();
            if let std::collections::hash_map::Entry::Vacant(entry) =
                self.signing_keys.entry(member)
            {
                entry.insert(package.keys.signing);
                new_keys.push(member);
            }
        }
        self.state.commit(checked);
        self.left_out.take();
        let rotation = matches!(signed.event().body, Body::Rotate { .. });
        self.index.insert(signed.hash(), self.len());
        self.events.push(signed);
        rotation
    }

    #[cfg(any(test, feature = "fuzzing"))]
    /// [`Self::verify`] then [`Self::commit`]; the verdict without the proof.
    pub(crate) fn insert(
        &mut self,
        signed: SignedEvent,
    ) -> Result<super::feeds::Insert, Rejection> {
        Ok(match self.verify(signed)? {
            Verdict::Verified(verified) => {
                self.commit(*verified);
                super::feeds::Insert::New
            }
            Verdict::Known => super::feeds::Insert::Known,
            Verdict::Missing(missing) => super::feeds::Insert::Missing(missing),
        })
    }

    /// The secret of epoch `epoch`, as `keys` recover it: only a member of
    /// the epoch's own roster, with the DH key it was wrapped to, can.
    pub(crate) fn epoch_secret(
        &self,
        epoch: EventHash,
        keys: &LocalKeys,
    ) -> Result<EpochSecret, SecretError> {
        let record = self.record(epoch).ok_or(SecretError::UnknownEpoch(epoch))?;
        if !matches!(
            record.event().body,
            Body::Genesis { .. } | Body::Rotate { .. }
        ) {
            return Err(SecretError::UnknownEpoch(epoch));
        }
        let member = keys.member_id();
        let not_recipient = SecretError::NotARecipient { epoch, member };
        let wrapped_to = self
            .state
            .graph()
            .own_roster(epoch)
            .and_then(|roster| roster.get(member))
            .map(|entry| entry.keys.keys().dh)
            .ok_or(not_recipient.clone())?;
        if wrapped_to != keys.public().dh {
            return Err(not_recipient);
        }
        let event = record.event();
        let (envelope, binding) = match &event.body {
            Body::Genesis {
                envelope,
                group_name,
                ..
            } => (
                envelope,
                Binding::Genesis {
                    founder: self.founder,
                    group_name,
                },
            ),
            Body::Rotate { envelope, .. } => (
                envelope,
                rotation_binding(self.group, event.author, event.seq, event.prev),
            ),
            _ => return Err(SecretError::UnknownEpoch(epoch)),
        };
        Ok(envelope::open(
            envelope,
            binding,
            member,
            keys.dh_secret(),
            wrapped_to,
        )?)
    }

    /// Founds a mesh: the genesis, with the founder's package at counter 1
    /// and the first secret wrapped to the founder.
    pub(crate) fn create<R: CryptoRng + ?Sized>(
        keys: &LocalKeys,
        group_name: &str,
        time: u64,
        rng: &mut R,
    ) -> Result<(Ledger, EventHash), Rejection> {
        let secret = EpochSecret::generate(rng);
        let binding = Binding::Genesis {
            founder: keys.member_id(),
            group_name,
        };
        let envelope = envelope::seal(
            rng,
            &secret,
            binding,
            &[(keys.member_id(), keys.public().dh)],
        )
        .map_err(|error| Rejection {
            hash: EventHash::ZERO,
            author: keys.member_id(),
            seq: 0,
            rule: Box::new(sealing_failed(error)),
        })?;
        let genesis = SignedEvent::sign(
            Event {
                version: VERSION,
                group: GroupId::ZERO,
                author: keys.member_id(),
                seq: 0,
                prev: EventHash::ZERO,
                time,
                body: Body::Genesis {
                    group_name: group_name.to_owned(),
                    founder: SignedPackage::sign(keys, 1),
                    envelope,
                },
            },
            keys,
        );
        let hash = genesis.hash();
        Ok((Ledger::found(genesis)?, hash))
    }

    #[cfg(any(test, feature = "fuzzing"))]
    /// Signs `body` as the next event of `keys`'s feed and adds it.
    pub(crate) fn write(
        &mut self,
        keys: &LocalKeys,
        time: u64,
        body: Body,
    ) -> Result<EventHash, Rejection> {
        let made = self.make_next(keys, time, body);
        self.insert_made_here(made, keys)
    }

    /// Adds an event made here for `keys` to sign, which must not wait for
    /// anything.
    #[cfg(any(test, feature = "fuzzing"))]
    fn insert_made_here(
        &mut self,
        made: MadeHere,
        keys: &LocalKeys,
    ) -> Result<EventHash, Rejection> {
        let event = made.unsigned.event();
        let (hash, author, seq) = (made.hash(), event.author, event.seq);
        match self.verify_made_here(made)? {
            Verdict::Verified(verified) => {
                self.commit(verified.finish(keys)?);
                Ok(hash)
            }
            Verdict::Known => Ok(hash),
            Verdict::Missing(missing) => Err(Rejection {
                hash,
                author,
                seq,
                rule: Box::new(Rule::NamesUnknown(missing)),
            }),
        }
    }

    /// `body` as the next event of `keys`'s feed, for them to sign once it
    /// passes; not yet added.
    pub(crate) fn make_next(&self, keys: &LocalKeys, time: u64, body: Body) -> MadeHere {
        let author = keys.member_id();
        let (seq, prev, _) = self.state.next_position(author);
        MadeHere {
            unsigned: self.unsigned_at(author, seq, prev, time, body),
            signer: keys.public().signing,
            void_changes: Vec::new(),
        }
    }

    /// `body` as `author`'s event at `seq` after `prev`, in this group,
    /// unsigned: for a run of events made together, each after the one
    /// before.
    pub(crate) fn unsigned_at(
        &self,
        author: MemberId,
        seq: u64,
        prev: EventHash,
        time: u64,
        body: Body,
    ) -> UnsignedEvent {
        UnsignedEvent::new(Event {
            version: VERSION,
            group: self.group,
            author,
            seq,
            prev,
            time,
            body,
        })
    }

    #[cfg(any(test, feature = "fuzzing"))]
    /// Rotates on this ledger's frontier with `changes` (in member order):
    /// a fresh secret wrapped to the rotation's own roster.
    pub(crate) fn rotate<R: CryptoRng + ?Sized>(
        &mut self,
        keys: &LocalKeys,
        changes: Vec<super::event::Change>,
        reason: &str,
        time: u64,
        rng: &mut R,
    ) -> Result<EventHash, Error> {
        let made = self.make_rotation(keys, changes, reason, time, rng)?;
        self.insert_made_here(made, keys).map_err(Error::Refused)
    }

    /// The next rotation of `keys`'s feed on this ledger's frontier of
    /// rotations not left out (SPEC.md §5.1, §6.4), signed,
    /// its secret wrapped to its own roster; not yet added.
    pub(crate) fn make_rotation<R: CryptoRng + ?Sized>(
        &mut self,
        keys: &LocalKeys,
        changes: Vec<super::event::Change>,
        reason: &str,
        time: u64,
        rng: &mut R,
    ) -> Result<MadeHere, Error> {
        let author = keys.member_id();
        let (_, _, acknowledged) = self.state.next_position(author);
        let graph = self.state.graph();
        let resolution = &self.resolution;
        // Past sixteen tips, a step names only some, and concurrent tips
        // could undo what it changes: changes wait until `Mesh::merge` has
        // made the steps (SPEC.md §5.1).
        if !changes.is_empty()
            && graph.needs_merge_step(author, &acknowledged, resolution, self.left_out())
        {
            return Err(Error::MergeFirst {
                tips: resolution.tips.len(),
            });
        }
        let parents = graph
            .parents_for(author, &acknowledged, resolution, self.left_out())
            .ok_or(Error::NoSafeMerge {
                tips: resolution.tips.len(),
            })?;
        // Naming every tip makes the base `R*` (SPEC.md §5.5), so only a
        // merge step, which names some, is checked in release builds: its
        // base must hold no one `R*` lacks, so that an honest rotation's
        // secret reaches no one outside its author's resolved roster.
        if parents.step || cfg!(debug_assertions) {
            let base = graph.past_roster_of(&parents.hashes);
            debug_assert!(parents.step || base == resolution.roster);
            if let Some((outsider, _)) = base
                .iter()
                .find(|(member, _)| !resolution.roster.contains(**member))
            {
                return Err(Error::WouldWrapToOutsider { member: *outsider });
            }
        }
        self.make_rotation_on(keys, parents.hashes, changes, reason, time, rng)
            .map_err(Error::Refused)
    }

    /// Whether a rotation by `author` must first merge in steps: there are
    /// more tips than one rotation names (SPEC.md §5.1).
    pub(crate) fn needs_merge_step(&self, author: MemberId) -> bool {
        let (_, _, acknowledged) = self.state.next_position(author);
        self.state.graph().needs_merge_step(
            author,
            &acknowledged,
            &self.resolution,
            self.left_out(),
        )
    }

    /// As [`Self::make_rotation`], on `parents` (strictly increasing hash
    /// order) rather than the frontier: a rotation by a peer that has not
    /// seen everything this ledger holds.
    pub(crate) fn make_rotation_on<R: CryptoRng + ?Sized>(
        &mut self,
        keys: &LocalKeys,
        parents: Vec<EventHash>,
        changes: Vec<super::event::Change>,
        reason: &str,
        time: u64,
        rng: &mut R,
    ) -> Result<MadeHere, Rejection> {
        let author = keys.member_id();
        let (seq, prev, _) = self.state.next_position(author);
        let reject = |rule| Rejection {
            hash: EventHash::ZERO,
            author,
            seq,
            rule: Box::new(rule),
        };
        // The own roster does not depend on the rotation's hash, so it is
        // computed before the envelope that the hash covers.
        let graph_changes = changes
            .iter()
            .map(super::event::Change::verify)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| reject(e.into()))?;
        let (roster, void_changes) = self
            .state
            .prospective_roster(author, parents.clone(), graph_changes)
            .map_err(|e: GraphError| reject(Rule::Feed(e.into())))?;
        let secret = EpochSecret::generate(rng);
        let recipients: Vec<_> = roster
            .iter()
            .map(|(id, entry)| (*id, entry.keys.keys().dh))
            .collect();
        let envelope = envelope::seal(
            rng,
            &secret,
            rotation_binding(self.group, author, seq, prev),
            &recipients,
        )
        .map_err(|error| reject(sealing_failed(error)))?;
        let mut made = self.make_next(
            keys,
            time,
            Body::Rotate {
                parents,
                changes,
                envelope,
                reason: reason.to_owned(),
            },
        );
        made.void_changes = void_changes;
        Ok(made)
    }
}

fn rotation_binding(
    group: GroupId,
    author: MemberId,
    seq: u64,
    prev: EventHash,
) -> Binding<'static> {
    Binding::Rotation {
        group,
        author,
        seq,
        prev,
    }
}

/// The records of a ledger in the order taken, from the backing in runs,
/// then from memory. A read of the backing that fails ends the run early:
/// [`Ledger::failure`] says so.
pub(crate) struct Records<'a> {
    ledger: &'a Ledger,
    next: usize,
    read: std::collections::VecDeque<SignedEvent>,
}

/// How many records the backing is read in, at a time.
const READ_RUN: u64 = 1024;

impl<'a> Iterator for Records<'a> {
    type Item = Cow<'a, SignedEvent>;

    fn next(&mut self) -> Option<Cow<'a, SignedEvent>> {
        if let Some(record) = self.read.pop_front() {
            return Some(Cow::Owned(record));
        }
        let ledger = self.ledger;
        if self.next < ledger.settled {
            let backing = ledger.backing.as_deref()?;
            let from = self.next as u64;
            let to = (from + READ_RUN).min(ledger.settled as u64);
            self.read = backing.records(from, to).into();
            if self.read.len() as u64 != to - from {
                // A failed read: stop, rather than skip records.
                self.next = usize::MAX;
                return None;
            }
            self.next = to as usize;
            return self.read.pop_front().map(Cow::Owned);
        }
        let record = ledger.events.get(self.next.checked_sub(ledger.settled)?)?;
        self.next += 1;
        Some(Cow::Borrowed(record))
    }
}

/// An event made here, not yet signed, with the public half of the key
/// that is to sign it: only [`Ledger::make_next`] makes one, so the pipeline
/// may check that key against the author's instead of verifying the
/// signature [`Verified::finish`] makes.
#[derive(Debug)]
pub(crate) struct MadeHere {
    unsigned: UnsignedEvent,
    signer: SigningPublicKey,
    /// A rotation's changes that are void within its own causal past, and
    /// why.
    void_changes: Vec<(usize, VoidReason)>,
}

impl MadeHere {
    /// Positions of a rotation's changes that are void within its own
    /// causal past, and so in every resolution (SPEC.md §5.3), with why.
    pub(crate) fn void_changes(&self) -> &[(usize, VoidReason)] {
        &self.void_changes
    }

    /// The event's hash.
    pub(crate) fn hash(&self) -> EventHash {
        self.unsigned.hash()
    }

    /// The event signed by `keys`, to hand to another peer.
    #[cfg(test)]
    pub(crate) fn into_signed(self, keys: &LocalKeys) -> SignedEvent {
        self.unsigned.sign(keys)
    }
}

/// Events whose rules [`Ledger::take_all`] runs before handing their
/// signatures to a batch check.
const TAKE_CHUNK: usize = 4096;

/// The first event of `checks` whose signature fails, as a rejection.
fn first_bad(records: &[Vec<u8>], checks: &[Owed]) -> Option<Rejection> {
    let signed: Vec<StoredSignature<'_>> = checks
        .iter()
        .map(|owed| StoredSignature(records.get(owed.index).map_or(&[][..], Vec::as_slice)))
        .collect();
    let refs: Vec<(&StoredSignature<'_>, SigningPublicKey)> = signed
        .iter()
        .zip(checks)
        .map(|(stored, owed)| (stored, owed.key))
        .collect();
    let bad = crate::signature::first_bad_signature(&refs)?;
    let owed = checks.get(bad)?;
    Some(Rejection {
        hash: owed.hash,
        author: owed.author,
        seq: owed.seq,
        rule: Box::new(Rule::BadSignature(owed.author)),
    })
}

/// A signature check a bulk take owes: which record, under which key, and
/// what names the event if it fails.
struct Owed {
    index: usize,
    key: SigningPublicKey,
    hash: EventHash,
    author: MemberId,
    seq: u64,
}

/// A stored record (`signature || event bytes`, which decoded), as a
/// signature to check.
struct StoredSignature<'a>(&'a [u8]);

impl StoredSignature<'_> {
    fn parts(&self) -> ([u8; SIGNATURE_LEN], &[u8]) {
        match self.0.split_first_chunk::<SIGNATURE_LEN>() {
            Some((signature, bytes)) => (*signature, bytes),
            None => ([0; SIGNATURE_LEN], &[]),
        }
    }
}

impl crate::signature::Signed for StoredSignature<'_> {
    fn is_signed_by(&self, key: &SigningPublicKey) -> bool {
        let (signature, bytes) = self.parts();
        crate::signature::verifies(
            key,
            &signature,
            &crate::signature::labelled_message(labels::EVENT_SIGNATURE, bytes),
        )
    }

    fn batch_item(&self, key: &SigningPublicKey) -> ed25519_zebra::batch::Item {
        let (signature, bytes) = self.parts();
        crate::signature::batch_item_of(
            key,
            &signature,
            &crate::signature::labelled_message(labels::EVENT_SIGNATURE, bytes),
        )
    }
}

/// V1: a record that does not decode, named by the hash of its bytes.
pub(crate) fn malformed(record: &[u8], error: DecodeError) -> Rejection {
    Rejection {
        hash: record
            .get(crate::signature::SIGNATURE_LEN..)
            .map_or(EventHash::ZERO, super::event::event_hash),
        author: MemberId::from_bytes([0; 16]),
        seq: 0,
        rule: Box::new(Rule::Malformed(error)),
    }
}

/// Sealing fails only when a recipient's DH key agrees to the all-zero
/// secret: a small-order key, which no admissible package holds.
fn sealing_failed(error: EnvelopeError) -> Rule {
    match error {
        EnvelopeError::NonContributory { member, .. } => {
            Rule::Package(PackageError::WeakDhKey(member))
        }
        _ => Rule::WeakEphemeralKey,
    }
}

fn check_len(field: &'static str, found: usize, min: usize, max: usize) -> Result<(), Rule> {
    if (min..=max).contains(&found) {
        Ok(())
    } else {
        Err(Rule::Limit {
            field,
            found,
            min,
            max,
        })
    }
}

/// V4: the limits of SPEC.md §3.
fn check_limits(event: &Event) -> Result<(), Rule> {
    match &event.body {
        Body::Genesis { .. } => Err(Rule::Feed(FeedError::SecondGenesis)),
        Body::Rotate {
            parents,
            changes,
            reason,
            ..
        } => {
            check_len("parents", parents.len(), 1, graph::MAX_PARENTS)?;
            check_len("changes", changes.len(), 0, limits::MAX_ROSTER)?;
            check_len("reason", reason.len(), 0, limits::MAX_REASON)
        }
        Body::App { kind, payload, .. } => {
            check_len("app kind", kind.len(), 1, limits::MAX_APP_KIND)?;
            check_len("app payload", payload.len(), 0, limits::MAX_APP_PAYLOAD)
        }
        Body::SealedApp { kind, sealed, .. } => {
            check_len("app kind", kind.len(), 1, limits::MAX_APP_KIND)?;
            check_len(
                "sealed app payload",
                sealed.len(),
                0,
                limits::MAX_SEALED_APP,
            )
        }
        Body::SetEnabled { .. } | Body::Keys { .. } => Ok(()),
    }
}

/// V10: what anyone can check of a sealed app event without a key
/// (SPEC.md §16.5): its payload is laid out as a sealed message, of the
/// event's group and epoch, with the event's kind as associated data.
fn check_sealed(event: &Event) -> Result<(), Rule> {
    let Body::SealedApp {
        epoch,
        kind,
        sealed,
        ..
    } = &event.body
    else {
        return Ok(());
    };
    let (group, sealed_epoch, associated_data) =
        crate::seal::Sealed::app_payload(sealed).map_err(Rule::SealedPayload)?;
    let mismatch = |what| Rule::SealedPayload(crate::seal::SealError::Malformed(what));
    if group != event.group {
        return Err(mismatch("sealed in another group than the event's"));
    }
    if sealed_epoch != *epoch {
        return Err(mismatch("sealed in another epoch than the event's"));
    }
    if associated_data != kind.as_bytes() {
        return Err(mismatch("its associated data is not the event's kind"));
    }
    Ok(())
}

/// V8, V9: an admissible ephemeral key, and one wrapped copy for each
/// member of the own roster, in member order.
fn check_envelope(
    envelope: &Envelope,
    mut roster: impl Iterator<Item = MemberId>,
) -> Result<(), Rule> {
    if !is_admissible_dh_key(&envelope.ephemeral) {
        return Err(Rule::WeakEphemeralKey);
    }
    let mut wrapped = envelope.wrapped.iter().map(|w| w.member);
    let mut index = 0;
    loop {
        match (wrapped.next(), roster.next()) {
            (None, None) => return Ok(()),
            (a, b) if a == b => index += 1,
            _ => return Err(Rule::EnvelopeRecipients(index)),
        }
    }
}

#[cfg(test)]
mod tests;
