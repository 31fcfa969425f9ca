//! Member feeds and the state of a v3 mesh as a function of a set of events
//! (SPEC.md §4, §6).
//!
//! Every member writes its own append-only feed: `seq` and `prev` count per
//! author, so honest members never fork one another. Each event names the
//! epoch it was written under (a rotation names its parents instead), and is
//! checked against what it names alone, so whether an event is accepted never
//! depends on the order events arrive in, and an accepted set only grows.
//!
//! This layer sees events as already decoded and signature-checked: the
//! bytes are `event.rs`'s concern, signatures and envelopes `verify.rs`'s.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use std::sync::Arc;

use foldhash::HashMap;

use super::graph::{Change, EpochGraph, GraphError, KeyPackage, Resolution, Rotation};
use crate::backing::{Backing, SeatRow};
use crate::error::VoidReason;
use crate::ids::{EventHash, MemberId, StateDigest};

/// What a feed event does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// Founds the mesh: seq 0 of the founder's feed, and the epoch graph's root.
    Genesis {
        /// The founder's own package.
        founder: KeyPackage,
    },
    /// A rotation (SPEC.md §5).
    Rotate {
        /// The author's frontier of rotations.
        parents: Vec<EventHash>,
        /// Its changes.
        changes: Vec<Change>,
    },
    /// The author turns its own participation on or off.
    SetEnabled {
        /// The epoch written under.
        epoch: EventHash,
        /// The new value.
        enabled: bool,
    },
    /// An application record.
    App {
        /// The epoch written under.
        epoch: EventHash,
    },
    /// The author posts a newer key package of its own, for an admin's next
    /// rotation to carry into the roster.
    Keys {
        /// The epoch written under.
        epoch: EventHash,
        /// The author's package.
        package: KeyPackage,
    },
}

/// One event of one member's feed, decoded and signature-checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FeedEvent {
    /// Its hash.
    pub(crate) hash: EventHash,
    /// Its author.
    pub(crate) author: MemberId,
    /// Its position in the author's feed, from 0.
    pub(crate) seq: u64,
    /// The author's event at `seq - 1`; [`EventHash::ZERO`] at seq 0.
    pub(crate) prev: EventHash,
    /// What it does.
    pub(crate) body: Body,
}

impl FeedEvent {
    /// The epochs the event acknowledges: a rotation's parents, or the
    /// epoch another event was written under.
    pub(crate) fn named_epochs(&self) -> &[EventHash] {
        match &self.body {
            Body::Genesis { .. } => &[],
            Body::Rotate { parents, .. } => parents,
            Body::SetEnabled { epoch, .. } | Body::App { epoch } | Body::Keys { epoch, .. } => {
                std::slice::from_ref(epoch)
            }
        }
    }
}

/// What an event needs that the state does not hold yet. Not a verdict: the
/// event may be offered again once its dependencies have arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// The author's previous event.
    Prev(EventHash),
    /// An epoch (rotation) it names.
    Epoch(EventHash),
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Missing::Prev(hash) => write!(f, "its previous event {hash}"),
            Missing::Epoch(hash) => write!(f, "epoch {hash}"),
        }
    }
}

/// Why an event is refused, for good (SPEC.md §4.2, rules F1–F7).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// F1: a second genesis.
    #[error("a mesh has exactly one genesis")]
    SecondGenesis,
    /// F2: `seq` and `prev` disagree (seq 0 with a prev, or a prev of the
    /// author that is not at `seq - 1`).
    #[error("prev {prev} is not the author's event at seq {seq} - 1")]
    PrevMismatch {
        /// The prev named.
        prev: EventHash,
        /// The event's own seq.
        seq: u64,
    },
    /// F3: the event named as its epoch is held and is not a rotation.
    #[error("the epoch it names, {epoch}, is an event that is not a rotation")]
    NotAnEpoch {
        /// The event named.
        epoch: EventHash,
    },
    /// F3: the author is not in the own roster of the epoch it names.
    #[error("author {author} is not in the roster of epoch {epoch}")]
    AuthorNotInEpoch {
        /// The author.
        author: MemberId,
        /// The epoch named.
        epoch: EventHash,
    },
    /// F4: the event names an ancestor of an epoch its author's feed
    /// already named: epochs in a feed never go backwards.
    #[error("epoch {epoch} is an ancestor of epoch {acknowledged}, which the author already named")]
    EpochBackwards {
        /// The epoch named.
        epoch: EventHash,
        /// An epoch its feed named before, descending from it.
        acknowledged: EventHash,
    },
    /// F5: a disabled author acted on the mesh; it may only enable itself.
    #[error("author {0} is disabled and may only enable itself")]
    AuthorDisabled(MemberId),
    /// F6: a posted package that is not the author's.
    #[error("the package posted belongs to {member}, not its author")]
    ForeignPackage {
        /// Whose package it is.
        member: MemberId,
    },
    /// F7: the rotation is refused by the epoch graph.
    #[error(transparent)]
    Graph(#[from] GraphError),
}

impl FeedError {
    /// The rule's id in SPEC.md §4.2 (F1–F7), or the graph's (E1–E8) for
    /// a rotation the graph refuses.
    pub fn id(&self) -> &'static str {
        match self {
            FeedError::SecondGenesis => "F1",
            FeedError::PrevMismatch { .. } => "F2",
            FeedError::NotAnEpoch { .. } | FeedError::AuthorNotInEpoch { .. } => "F3",
            FeedError::EpochBackwards { .. } => "F4",
            FeedError::AuthorDisabled(_) => "F5",
            FeedError::ForeignPackage { .. } => "F6",
            FeedError::Graph(error) => error.id(),
        }
    }
}

/// What [`MeshState::check`] found.
pub(crate) enum Check {
    /// Every rule holds; [`MeshState::commit`] adds it.
    Ready(Box<Checked>),
    /// Already held.
    Known,
    /// Waits for an event it names.
    Missing(Missing),
}

/// An event that passed every feed rule, with what committing it needs.
/// Only [`MeshState::check`] builds one.
pub(crate) struct Checked {
    event: FeedEvent,
    enabled: bool,
    acknowledged: Arc<[EventHash]>,
    rotation: Option<super::graph::Prepared>,
}

impl Checked {
    /// For a rotation, whom its envelope must be wrapped to.
    pub(crate) fn own_roster(&self) -> Option<&super::graph::Roster> {
        self.rotation
            .as_ref()
            .map(super::graph::Prepared::own_roster)
    }
}

#[cfg(any(test, feature = "fuzzing"))]
/// What [`MeshState::insert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Insert {
    /// Accepted.
    New,
    /// Already held.
    Known,
    /// Waits for an event it names.
    Missing(Missing),
}

/// What became of an event in the resolution (SPEC.md §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventStatus {
    /// Written under the epoch writers use now.
    Current,
    /// Written under an applied epoch that writers have moved past.
    Superseded,
    /// Written under a void rotation (or is one).
    VoidEpoch,
    /// Its author is not in `R*`: removed since.
    AuthorNotInRoster,
}

impl std::fmt::Display for EventStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EventStatus::Current => "current",
            EventStatus::Superseded => "superseded",
            EventStatus::VoidEpoch => "void epoch",
            EventStatus::AuthorNotInRoster => "author not in roster",
        })
    }
}

/// Two events of one author at one position of its feed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Equivocation {
    /// The author.
    pub author: MemberId,
    /// The position.
    pub seq: u64,
    /// The events there, in hash order (two or more).
    pub events: Vec<EventHash>,
}

/// Per event: what later events of the same feed need from it.
#[derive(Clone)]
struct Held {
    event: FeedEvent,
    /// The author's flag after this event.
    enabled: bool,
    /// The epochs the feed has named up to this event, reduced to those no
    /// other descends from (the author's own rotations included); shared
    /// with the event before while it names nothing new, as most do.
    acknowledged: Arc<[EventHash]>,
}

/// The events at one position of a feed: one, unless its author
/// equivocated. (One event a position is the rule, and needs no set.)
#[derive(Clone, Debug)]
enum Position {
    One(EventHash),
    Many(BTreeSet<EventHash>),
}

impl Position {
    fn add(&mut self, hash: EventHash) {
        match self {
            Position::One(held) if *held == hash => {}
            Position::One(held) => *self = Position::Many(BTreeSet::from([*held, hash])),
            Position::Many(set) => {
                set.insert(hash);
            }
        }
    }

    /// Takes `hash` out; whether the position is empty then.
    fn take_out(&mut self, hash: EventHash) -> bool {
        match self {
            Position::One(held) => *held == hash,
            Position::Many(set) => {
                set.remove(&hash);
                match set.len() {
                    0 => true,
                    1 => {
                        if let Some(&last) = set.first() {
                            *self = Position::One(last);
                        }
                        false
                    }
                    _ => false,
                }
            }
        }
    }

    fn events(&self) -> Vec<EventHash> {
        match self {
            Position::One(hash) => vec![*hash],
            Position::Many(set) => set.iter().copied().collect(),
        }
    }

    fn is_fork(&self) -> bool {
        matches!(self, Position::Many(set) if set.len() > 1)
    }
}

/// The accepted events of one mesh and what they imply.
///
/// The events taken since the state last [settled](Self::settle) are held
/// here; older ones are read from the backing when a rule needs one (SPEC.md
/// §9.5). What resolution needs stays in memory: the graph, each feed's
/// heads and every forked position.
#[derive(Clone)]
pub(crate) struct MeshState {
    graph: EpochGraph,
    /// The events taken since the state last settled.
    events: HashMap<EventHash, Held>,
    /// Each author's positions holding an event of `events`, and every
    /// forked position; more than one event at a position is an
    /// equivocation. A position absent here holds at most one event, in the
    /// backing.
    feeds: BTreeMap<MemberId, BTreeMap<u64, Position>>,
    /// Each author's heads: its events no other of its events follows,
    /// kept as events arrive (an event's `prev` is always held first).
    /// Each with its `seq`: every position up to the furthest head holds an
    /// event, so that a position there the backing has no row for is a row
    /// that was deleted, not an event that was never held (SPEC.md §10).
    heads: BTreeMap<MemberId, BTreeMap<EventHash, u64>>,
    /// The events held before the state last settled.
    backing: Option<Arc<dyn Backing>>,
}

impl MeshState {
    /// The state holding only `genesis`, which must be a genesis at seq 0.
    pub(crate) fn new(genesis: FeedEvent) -> Result<Self, FeedError> {
        let Body::Genesis { founder } = &genesis.body else {
            return Err(FeedError::SecondGenesis);
        };
        if genesis.seq != 0 || genesis.prev != EventHash::ZERO {
            return Err(FeedError::PrevMismatch {
                prev: genesis.prev,
                seq: genesis.seq,
            });
        }
        let graph = EpochGraph::new(genesis.hash, *founder);
        let mut state = Self {
            graph,
            events: HashMap::default(),
            feeds: BTreeMap::new(),
            heads: BTreeMap::new(),
            backing: None,
        };
        state.hold(genesis, false, Arc::from([]));
        Ok(state)
    }

    pub(crate) fn graph(&self) -> &EpochGraph {
        &self.graph
    }

    /// Reads the events held before [`Self::settle`] from `backing`.
    pub(crate) fn set_backing(&mut self, backing: Arc<dyn Backing>) {
        self.backing = Some(backing);
    }

    /// The state a checkpoint states (SPEC.md §9.7): the genesis, the
    /// rotations (each after its parents, as stored), each feed's heads and
    /// every forked position; every other event is in `backing`. The
    /// rotations are not checked against the rules again, only taken into
    /// the graph, in order: the checkpoint vouches for them.
    pub(crate) fn restore(
        genesis: FeedEvent,
        rotations: impl IntoIterator<Item = FeedEvent>,
        heads: &[(MemberId, u64, EventHash)],
        forks: &[(MemberId, u64, Vec<EventHash>)],
        backing: Arc<dyn Backing>,
    ) -> Result<Self, FeedError> {
        let mut state = Self::new(genesis)?;
        for rotation in rotations {
            let FeedEvent {
                hash,
                author,
                body: Body::Rotate { parents, changes },
                ..
            } = rotation
            else {
                return Err(FeedError::NotAnEpoch {
                    epoch: rotation.hash,
                });
            };
            if let Some(prepared) = state.graph.prepare(Rotation {
                hash,
                author,
                parents,
                changes,
            })? {
                state.graph.commit(prepared);
            }
        }
        state.events = HashMap::default();
        state.heads = BTreeMap::new();
        for &(author, seq, hash) in heads {
            state.heads.entry(author).or_default().insert(hash, seq);
        }
        state.feeds = BTreeMap::new();
        for (author, seq, hashes) in forks {
            state
                .feeds
                .entry(*author)
                .or_default()
                .insert(*seq, Position::Many(hashes.iter().copied().collect()));
        }
        state.backing = Some(backing);
        // The heads are held in memory, as after any settle.
        let heads: Vec<EventHash> = state
            .heads
            .values()
            .flat_map(|heads| heads.keys().copied())
            .collect();
        for hash in heads {
            if let Some(held) = state.get(hash).map(Cow::into_owned) {
                state.events.insert(hash, held);
            }
        }
        Ok(state)
    }

    /// Each feed's heads, with their positions: what a checkpoint states.
    pub(crate) fn heads_at(&self) -> Vec<(MemberId, u64, EventHash)> {
        self.heads
            .iter()
            .flat_map(|(author, heads)| heads.iter().map(move |(hash, seq)| (*author, *seq, *hash)))
            .collect()
    }

    /// Every forked position: what a checkpoint states.
    pub(crate) fn forks(&self) -> Vec<(MemberId, u64, Vec<EventHash>)> {
        self.equivocations()
            .into_iter()
            .map(|fork| (fork.author, fork.seq, fork.events))
            .collect()
    }

    /// The row a file keeps for the held event `hash` (SPEC.md §9.7): its
    /// author and position in the feed, with the author's flag after it
    /// and the epochs acknowledged up to it.
    pub(crate) fn seat_of(
        &self,
        hash: EventHash,
    ) -> Option<(MemberId, u64, bool, Arc<[EventHash]>)> {
        let held = self.get(hash)?;
        Some((
            held.event.author,
            held.event.seq,
            held.enabled,
            held.acknowledged.clone(),
        ))
    }

    /// Lets go of the events held in memory: the backing now holds every
    /// one of them. Forked positions and heads stay, as resolution and the
    /// next event need them.
    pub(crate) fn settle(&mut self) {
        if self.backing.is_none() {
            return;
        }
        // The heads stay: the next event of each feed, its flag and its
        // epochs read them at every write.
        let heads: Vec<EventHash> = self
            .heads
            .values()
            .flat_map(|heads| heads.keys().copied())
            .collect();
        let mut kept = HashMap::default();
        for hash in heads {
            if let Some(held) = self.events.remove(&hash) {
                kept.insert(hash, held);
            }
        }
        self.events = kept;
        for feed in self.feeds.values_mut() {
            feed.retain(|_, position| position.is_fork());
        }
        self.feeds.retain(|_, feed| !feed.is_empty());
    }

    /// The held event `hash`, from memory or the backing.
    fn get(&self, hash: EventHash) -> Option<Cow<'_, Held>> {
        if let Some(held) = self.events.get(&hash) {
            return Some(Cow::Borrowed(held));
        }
        let backing = self.backing.as_deref()?;
        let signed = crate::backing::record(backing, hash)?;
        let event = signed.to_feed_event().ok()?;
        let SeatRow {
            enabled,
            acknowledged,
            ..
        } = backing.seat_row(event.author, event.seq, hash)?;
        Some(Cow::Owned(Held {
            event,
            enabled,
            acknowledged,
        }))
    }

    /// Whether the event `hash`, at `author`'s position `seq`, is held: a
    /// look at one row rather than a read of the event.
    pub(crate) fn holds(&self, author: MemberId, seq: u64, hash: EventHash) -> bool {
        if self.events.contains_key(&hash) {
            return true;
        }
        let Some(backing) = self.backing.as_deref() else {
            return false;
        };
        // Past the furthest head nothing is held: a new event at the end of
        // its feed, the common case, costs no read.
        if self.furthest(author).is_none_or(|furthest| seq > furthest) {
            return false;
        }
        // A position held in memory (every forked one is) lists its events
        // in full: the backing must then agree, or a row was deleted.
        if let Some(position) = self.feeds.get(&author).and_then(|feed| feed.get(&seq)) {
            let listed = position.events().contains(&hash);
            if listed && backing.seat_row(author, seq, hash).is_none() {
                backing.lost_row(author, seq);
            }
            return listed;
        }
        if backing.seat_row(author, seq, hash).is_some() {
            return true;
        }
        // Every position up to the furthest head holds an event: a row
        // missing there was deleted, and the event may be held.
        if self
            .furthest(author)
            .is_some_and(|furthest| seq <= furthest)
            && self.position(author, seq).is_none()
        {
            backing.lost_row(author, seq);
        }
        false
    }

    /// The `seq` of `author`'s furthest head.
    fn furthest(&self, author: MemberId) -> Option<u64> {
        self.heads.get(&author)?.values().max().copied()
    }

    /// Whether any held event is `hash`.
    fn holds_hash(&self, hash: EventHash) -> bool {
        self.events.contains_key(&hash)
            || self
                .backing
                .as_deref()
                .is_some_and(|backing| backing.position(hash).is_some())
    }

    /// The events at `author`'s position `seq`, from memory or the backing.
    fn position(&self, author: MemberId, seq: u64) -> Option<Position> {
        if let Some(position) = self.feeds.get(&author).and_then(|feed| feed.get(&seq)) {
            return Some(position.clone());
        }
        if self.furthest(author).is_none_or(|furthest| seq > furthest) {
            return None;
        }
        let held = self.backing.as_deref()?.seat(author, seq);
        match held.as_slice() {
            [] => None,
            [one] => Some(Position::One(*one)),
            _ => Some(Position::Many(held.into_iter().collect())),
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, hash: EventHash) -> bool {
        self.events.contains_key(&hash)
    }

    #[cfg(test)]
    /// Every held event, in no particular order.
    pub(crate) fn events(&self) -> impl Iterator<Item = &FeedEvent> {
        self.events.values().map(|held| &held.event)
    }

    #[cfg(test)]
    /// Accepts `event` if every rule holds against what it names
    /// (SPEC.md §4.2).
    pub(crate) fn insert(&mut self, event: FeedEvent) -> Result<Insert, FeedError> {
        Ok(match self.check(event)? {
            Check::Ready(checked) => {
                self.commit(*checked);
                Insert::New
            }
            Check::Known => Insert::Known,
            Check::Missing(missing) => Insert::Missing(missing),
        })
    }

    /// Checks `event` against every rule (SPEC.md §4.2) and leaves the
    /// state as it was; [`Self::commit`] adds what passed.
    pub(crate) fn check(&mut self, event: FeedEvent) -> Result<Check, FeedError> {
        if self.holds(event.author, event.seq, event.hash) {
            return Ok(Check::Known);
        }
        if matches!(event.body, Body::Genesis { .. }) {
            return Err(FeedError::SecondGenesis);
        }
        let (was_enabled, acknowledged) = match self.feed_position(&event)? {
            Ok(position) => position,
            Err(missing) => return Ok(Check::Missing(missing)),
        };
        for &epoch in event.named_epochs() {
            if self.graph.contains(epoch) {
                continue;
            }
            // A held event that is no rotation never becomes one: naming it
            // is refused for good rather than waiting forever.
            if self.holds_hash(epoch) {
                return Err(match event.body {
                    Body::Rotate { .. } => GraphError::UnknownParent(epoch).into(),
                    _ => FeedError::NotAnEpoch { epoch },
                });
            }
            return Ok(Check::Missing(Missing::Epoch(epoch)));
        }
        for &epoch in event.named_epochs() {
            if let Some(&later) = acknowledged
                .iter()
                .find(|&&known| self.graph.is_ancestor(epoch, known))
            {
                return Err(FeedError::EpochBackwards {
                    epoch,
                    acknowledged: later,
                });
            }
        }
        if let Body::SetEnabled { epoch, .. } | Body::App { epoch } | Body::Keys { epoch, .. } =
            &event.body
        {
            let in_epoch = self
                .graph
                .own_roster(*epoch)
                .is_some_and(|roster| roster.get(event.author).is_some());
            if !in_epoch {
                return Err(FeedError::AuthorNotInEpoch {
                    author: event.author,
                    epoch: *epoch,
                });
            }
        }
        if let Body::Keys { package, .. } = &event.body
            && package.member() != event.author
        {
            return Err(FeedError::ForeignPackage {
                member: package.member(),
            });
        }
        let enabled = match &event.body {
            Body::SetEnabled { enabled, .. } => *enabled,
            _ if !was_enabled => return Err(FeedError::AuthorDisabled(event.author)),
            _ => was_enabled,
        };
        // Last, since it is the most costly.
        let rotation = match &event.body {
            Body::Rotate { parents, changes } => self.graph.prepare(Rotation {
                hash: event.hash,
                author: event.author,
                parents: parents.clone(),
                changes: changes.clone(),
            })?,
            _ => None,
        };
        Ok(Check::Ready(Box::new(Checked {
            event,
            enabled,
            acknowledged,
            rotation,
        })))
    }

    /// The own roster a rotation by `author` on `parents` with `changes`
    /// would have, without adding it: whom its envelope is to be wrapped to
    /// (the own roster does not depend on the rotation's hash).
    pub(crate) fn prospective_roster(
        &mut self,
        author: MemberId,
        parents: Vec<EventHash>,
        changes: Vec<Change>,
    ) -> Result<(super::graph::Roster, Vec<(usize, VoidReason)>), GraphError> {
        let prepared = self.graph.prepare(Rotation {
            hash: EventHash::ZERO,
            author,
            parents,
            changes,
        })?;
        Ok(prepared
            .map(|prepared| {
                let void = prepared.own_void_changes().to_vec();
                (prepared.own_roster().clone(), void)
            })
            .unwrap_or_default())
    }

    /// Adds an event [`Self::check`] passed. Valid whatever was added since:
    /// every rule read only what the event names.
    pub(crate) fn commit(&mut self, checked: Checked) {
        let Checked {
            event,
            enabled,
            acknowledged,
            rotation,
        } = checked;
        if self.holds(event.author, event.seq, event.hash) {
            return;
        }
        if let Some(rotation) = rotation {
            self.graph.commit(rotation);
        }
        let rotation = matches!(event.body, Body::Rotate { .. });
        let acknowledged = if !rotation
            && event
                .named_epochs()
                .iter()
                .all(|epoch| acknowledged.contains(epoch))
        {
            acknowledged
        } else {
            let mut named: Vec<EventHash> = acknowledged.to_vec();
            named.extend_from_slice(event.named_epochs());
            if rotation {
                named.push(event.hash);
            }
            Arc::from(self.maximal(named))
        };
        self.hold(event, enabled, acknowledged);
    }

    /// The author's flag and acknowledged epochs before `event`, from its
    /// `prev` (F2), or what is missing.
    #[allow(clippy::type_complexity)]
    fn feed_position(
        &self,
        event: &FeedEvent,
    ) -> Result<Result<(bool, Arc<[EventHash]>), Missing>, FeedError> {
        let mismatch = || FeedError::PrevMismatch {
            prev: event.prev,
            seq: event.seq,
        };
        if event.seq == 0 {
            return if event.prev == EventHash::ZERO {
                Ok(Ok((false, Arc::from([]))))
            } else {
                Err(mismatch())
            };
        }
        let Some(prev) = self.get(event.prev) else {
            return if event.prev == EventHash::ZERO {
                Err(mismatch())
            } else {
                Ok(Err(Missing::Prev(event.prev)))
            };
        };
        if prev.event.author != event.author || prev.event.seq.checked_add(1) != Some(event.seq) {
            return Err(mismatch());
        }
        Ok(Ok((prev.enabled, prev.acknowledged.clone())))
    }

    /// The epochs among `epochs` that no other descends from, in hash order.
    fn maximal(&self, mut epochs: Vec<EventHash>) -> Vec<EventHash> {
        epochs.sort();
        epochs.dedup();
        let kept: Vec<EventHash> = epochs
            .iter()
            .copied()
            .filter(|&e| !epochs.iter().any(|&other| self.graph.is_ancestor(e, other)))
            .collect();
        kept
    }

    fn hold(&mut self, event: FeedEvent, enabled: bool, acknowledged: Arc<[EventHash]>) {
        let heads = self.heads.entry(event.author).or_default();
        heads.remove(&event.prev);
        heads.insert(event.hash, event.seq);
        let mut position = self
            .position(event.author, event.seq)
            .unwrap_or(Position::One(event.hash));
        position.add(event.hash);
        self.feeds
            .entry(event.author)
            .or_default()
            .insert(event.seq, position);
        self.events.insert(
            event.hash,
            Held {
                event,
                enabled,
                acknowledged,
            },
        );
    }

    /// Makes room for `additional` more events.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.events.reserve(additional);
    }

    /// Forgets `hash`, which must be the newest event held, as if it had
    /// never been committed (a refused batch is undone newest first).
    pub(crate) fn forget(&mut self, hash: EventHash) {
        let Some(held) = self.events.remove(&hash) else {
            return;
        };
        let event = held.event;
        if matches!(event.body, Body::Rotate { .. }) {
            self.graph.forget_newest(hash);
        }
        if let Some(feed) = self.feeds.get_mut(&event.author) {
            if let Some(at) = feed.get_mut(&event.seq)
                && at.take_out(hash)
            {
                feed.remove(&event.seq);
            }
            if feed.is_empty() {
                self.feeds.remove(&event.author);
            }
        }
        // Its prev was a head before it came, unless another event follows
        // that prev too (an equivocation kept).
        let prev_followed = event.seq > 0
            && self
                .feeds
                .get(&event.author)
                .and_then(|feed| feed.get(&event.seq))
                .is_some_and(|siblings| {
                    siblings.events().iter().any(|sibling| {
                        self.get(*sibling)
                            .is_some_and(|held| held.event.prev == event.prev)
                    })
                });
        let prev_held = event.seq > 0 && self.holds(event.author, event.seq - 1, event.prev);
        if let Some(heads) = self.heads.get_mut(&event.author) {
            heads.remove(&hash);
            if event.seq > 0 && !prev_followed && prev_held {
                heads.insert(event.prev, event.seq - 1);
            }
            if heads.is_empty() {
                self.heads.remove(&event.author);
            }
        }
    }

    /// Every position where an author signed two or more events.
    pub(crate) fn equivocations(&self) -> Vec<Equivocation> {
        let mut found = Vec::new();
        for (author, feed) in &self.feeds {
            for (seq, events) in feed {
                if events.is_fork() {
                    found.push(Equivocation {
                        author: *author,
                        seq: *seq,
                        events: events.events(),
                    });
                }
            }
        }
        found
    }

    /// Every member with an event held, in id order.
    pub(crate) fn authors(&self) -> impl Iterator<Item = MemberId> + '_ {
        self.heads.keys().copied()
    }

    /// The events of `author`'s feed that no other of its events follows.
    /// More than one: the author equivocated.
    pub(crate) fn heads(&self, author: MemberId) -> Vec<EventHash> {
        self.heads
            .get(&author)
            .map(|heads| heads.keys().copied().collect())
            .unwrap_or_default()
    }

    /// The events on `head`'s `prev` chain at `seq − 1`, `seq − 2`,
    /// `seq − 4`, … down to 0, for a frontier (SPEC.md §7.1). Where the feed
    /// holds one event at a position, that event is on every chain through
    /// it, so the chain is walked only across forked positions.
    pub(crate) fn chain_below(&self, head: EventHash) -> Vec<(u64, EventHash)> {
        let Some(held) = self.get(head) else {
            return Vec::new();
        };
        let (author, seq) = (held.event.author, held.event.seq);
        let unforked = BTreeMap::new();
        // Positions absent from `feeds` hold one event, in the backing.
        let feed = self.feeds.get(&author).unwrap_or(&unforked);
        let mut below = Vec::new();
        // Where the walk down the chain stands.
        let (mut at, mut at_seq) = (head, seq);
        let mut step = 1u64;
        while step <= seq {
            let target = seq - step;
            // The lowest position from the target up with one event: the
            // chain runs through it, so the walk starts there.
            let one = (target..at_seq)
                .find(|s| !feed.get(s).is_some_and(Position::is_fork))
                .and_then(|one_seq| match self.position(author, one_seq) {
                    Some(Position::One(one)) => Some((one, one_seq)),
                    _ => None,
                });
            if let Some(one) = one {
                (at, at_seq) = one;
            }
            while at_seq > target {
                let Some(held) = self.get(at) else {
                    return below;
                };
                (at, at_seq) = (held.event.prev, at_seq - 1);
            }
            below.push((target, at));
            let Some(next) = step.checked_mul(2) else {
                break;
            };
            step = next;
        }
        below
    }

    /// Whether `member` is enabled: its flag at every head of its feed
    /// (disabled wins when heads disagree); false for a silent member.
    pub(crate) fn is_enabled(&self, member: MemberId) -> bool {
        let heads = self.heads(member);
        !heads.is_empty()
            && heads
                .iter()
                .all(|hash| self.get(*hash).is_some_and(|held| held.enabled))
    }

    /// The position `author` would write at next: after its head (the
    /// longest, if its feed forked), with the epochs its feed acknowledged
    /// there.
    pub(crate) fn next_position(&self, author: MemberId) -> (u64, EventHash, Vec<EventHash>) {
        // Its longest branch (the smallest hash among equals): a copy that
        // took a fork of its own feed goes on from its newest event rather
        // than signing again at positions it holds.
        let newest = self
            .heads(author)
            .into_iter()
            .filter_map(|hash| self.get(hash))
            .max_by(|a, b| {
                a.event
                    .seq
                    .cmp(&b.event.seq)
                    .then_with(|| b.event.hash.cmp(&a.event.hash))
            });
        match newest {
            Some(held) => (
                held.event.seq.saturating_add(1),
                held.event.hash,
                held.acknowledged.to_vec(),
            ),
            None => (0, EventHash::ZERO, Vec::new()),
        }
    }

    /// The status of an event under `resolution` (SPEC.md §6.2): a
    /// rotation by its own status, any other event by the epoch it names.
    pub(crate) fn status(&self, hash: EventHash, resolution: &Resolution) -> Option<EventStatus> {
        let held = self.get(hash)?;
        let event = &held.event;
        if resolution.roster.get(event.author).is_none() {
            return Some(EventStatus::AuthorNotInRoster);
        }
        let epochs: &[EventHash] = match &event.body {
            Body::Rotate { .. } | Body::Genesis { .. } => std::slice::from_ref(&event.hash),
            _ => event.named_epochs(),
        };
        Some(if epochs.iter().any(|e| !resolution.is_applied(*e)) {
            EventStatus::VoidEpoch
        } else if epochs.iter().all(|e| Some(*e) == resolution.writer) {
            EventStatus::Current
        } else {
            EventStatus::Superseded
        })
    }

    /// A digest of the accepted events not left out and the resolution:
    /// equal for peers holding the same events outside those left out
    /// (SPEC.md §6.3, §6.4). Costs one hash over every such event hash, so
    /// it is computed on demand.
    pub(crate) fn digest(
        &self,
        resolution: &Resolution,
        left_out: &crate::left_out::LeftOut,
    ) -> StateDigest {
        // The events in memory, and those of the backing in two passes (a
        // count, then the hashes merged in order): no list of every hash.
        // (The heads stay in memory when the state settles: those the
        // backing holds are counted there.)
        let in_backing = |hash: &EventHash| {
            self.backing
                .as_deref()
                .is_some_and(|backing| backing.position(*hash).is_some())
        };
        let mut recent: Vec<&EventHash> = self
            .events
            .keys()
            .filter(|hash| !left_out.contains(**hash) && !in_backing(hash))
            .collect();
        recent.sort();
        let mut count = recent.len() as u64;
        if let Some(backing) = self.backing.as_deref() {
            backing.for_each_hash(&mut |hash| count += u64::from(!left_out.contains(hash)));
        }
        let mut hasher = blake3::Hasher::new_derive_key(crate::labels::STATE_DIGEST);
        hasher.update(self.graph.genesis().as_bytes());
        hasher.update(&count.to_le_bytes());
        let mut recent = recent.into_iter().peekable();
        if let Some(backing) = self.backing.as_deref() {
            backing.for_each_hash(&mut |hash| {
                if left_out.contains(hash) {
                    return;
                }
                while let Some(earlier) = recent.next_if(|earlier| **earlier < hash) {
                    hasher.update(earlier.as_bytes());
                }
                hasher.update(hash.as_bytes());
            });
        }
        for hash in recent {
            hasher.update(hash.as_bytes());
        }
        // The resolution is a function of the set, so hashing it adds no
        // information for an honest peer; it makes a peer whose resolution
        // code differs show a different digest.
        for (hash, status) in &resolution.statuses {
            if left_out.contains(*hash) {
                continue;
            }
            hasher.update(hash.as_bytes());
            hasher.update(&[u8::from(matches!(
                status,
                super::graph::Status::Applied { .. }
            ))]);
        }
        for (member, entry) in resolution.roster.iter() {
            hasher.update(member.as_bytes());
            hasher.update(entry.keys.keys().dh.as_bytes());
            hasher.update(&entry.keys.counter().to_le_bytes());
            hasher.update(&[entry.role as u8]);
            hasher.update(&[u8::from(self.is_enabled(*member))]);
        }
        for epoch in [resolution.current, resolution.writer] {
            hasher.update(epoch.unwrap_or(EventHash::ZERO).as_bytes());
        }
        StateDigest::from_bytes(*hasher.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Role;
    use crate::tests::traps::{id, package, package_at};

    const F: u8 = 0;

    fn h(name: &str) -> EventHash {
        EventHash::from_bytes(*blake3::hash(name.as_bytes()).as_bytes())
    }

    fn event(name: &str, author: u8, seq: u64, prev: &str, body: Body) -> FeedEvent {
        FeedEvent {
            hash: h(name),
            author: id(author),
            seq,
            prev: if prev.is_empty() {
                EventHash::ZERO
            } else {
                h(prev)
            },
            body,
        }
    }

    fn enable(epoch: &str, enabled: bool) -> Body {
        Body::SetEnabled {
            epoch: h(epoch),
            enabled,
        }
    }

    fn app(epoch: &str) -> Body {
        Body::App { epoch: h(epoch) }
    }

    fn rotate(parents: &[&str], mut changes: Vec<Change>) -> Body {
        let mut parents: Vec<EventHash> = parents.iter().map(|p| h(p)).collect();
        parents.sort();
        changes.sort_by_key(Change::member);
        Body::Rotate { parents, changes }
    }

    /// G; F enables; R1: F adds admin 1 and member 2; 1 and 2 enable.
    fn mesh() -> MeshState {
        let genesis = event(
            "G",
            F,
            0,
            "",
            Body::Genesis {
                founder: package(F),
            },
        );
        let mut state = MeshState::new(genesis).unwrap();
        let events = [
            event("F1", F, 1, "G", enable("G", true)),
            event(
                "R1",
                F,
                2,
                "F1",
                rotate(
                    &["G"],
                    vec![
                        Change::Add {
                            package: package(1),
                            role: Role::Admin,
                        },
                        Change::Add {
                            package: package(2),
                            role: Role::Member,
                        },
                    ],
                ),
            ),
            event("a0", 1, 0, "", enable("R1", true)),
            event("m0", 2, 0, "", enable("R1", true)),
        ];
        for e in events {
            assert_eq!(state.insert(e), Ok(Insert::New));
        }
        state
    }

    #[test]
    fn feed_rules_are_checked_against_what_an_event_names() {
        let mut state = mesh();
        // Dependencies not yet held wait; they are not refused.
        assert_eq!(
            state.insert(event("m2", 2, 2, "m1", app("R1"))),
            Ok(Insert::Missing(Missing::Prev(h("m1"))))
        );
        assert_eq!(
            state.insert(event("m1", 2, 1, "m0", app("later"))),
            Ok(Insert::Missing(Missing::Epoch(h("later"))))
        );
        // F2: seq and prev must agree.
        assert!(matches!(
            state.insert(event("x", 2, 0, "m0", app("R1"))),
            Err(FeedError::PrevMismatch { .. })
        ));
        assert!(matches!(
            state.insert(event("x", 2, 2, "m0", app("R1"))),
            Err(FeedError::PrevMismatch { .. })
        ));
        assert!(matches!(
            state.insert(event("x", 1, 1, "m0", app("R1"))),
            Err(FeedError::PrevMismatch { .. })
        ));
        // F3: member 2 is not in the genesis epoch's roster.
        assert_eq!(
            state.insert(event("x", 2, 0, "", app("G"))),
            Err(FeedError::AuthorNotInEpoch {
                author: id(2),
                epoch: h("G")
            })
        );
        // F6: a package posted must be the author's own.
        assert_eq!(
            state.insert(event(
                "x",
                2,
                1,
                "m0",
                Body::Keys {
                    epoch: h("R1"),
                    package: package_at(1, 2)
                }
            )),
            Err(FeedError::ForeignPackage { member: id(1) })
        );
        // F1: one genesis.
        assert_eq!(
            state.insert(event(
                "G2",
                2,
                1,
                "m0",
                Body::Genesis {
                    founder: package(2)
                }
            )),
            Err(FeedError::SecondGenesis)
        );
        // F5: a disabled member may only enable itself.
        assert_eq!(
            state.insert(event("m1", 2, 1, "m0", enable("R1", false))),
            Ok(Insert::New)
        );
        assert_eq!(
            state.insert(event("m2", 2, 2, "m1", app("R1"))),
            Err(FeedError::AuthorDisabled(id(2)))
        );
        assert!(!state.is_enabled(id(2)));
    }

    #[test]
    fn epochs_in_a_feed_never_go_backwards() {
        let mut state = mesh();
        let r2 = event("R2", 1, 1, "a0", rotate(&["R1"], vec![]));
        assert_eq!(state.insert(r2), Ok(Insert::New));
        // The admin named R2 (its own rotation): R1 is behind it now.
        assert_eq!(
            state.insert(event("a2", 1, 2, "R2", app("R1"))),
            Err(FeedError::EpochBackwards {
                epoch: h("R1"),
                acknowledged: h("R2")
            })
        );
        assert_eq!(
            state.insert(event("a2", 1, 2, "R2", app("R2"))),
            Ok(Insert::New)
        );
        // Going back needs a fork of the feed: evidence.
        assert_eq!(
            state.insert(event("a1'", 1, 1, "a0", app("R1"))),
            Ok(Insert::New)
        );
        assert_eq!(
            state.equivocations(),
            vec![Equivocation {
                author: id(1),
                seq: 1,
                events: {
                    let mut both = vec![h("R2"), h("a1'")];
                    both.sort();
                    both
                },
            }]
        );
        let mut heads = state.heads(id(1));
        heads.sort();
        let mut expected = vec![h("a2"), h("a1'")];
        expected.sort();
        assert_eq!(heads, expected);
    }

    #[test]
    fn disabled_wins_when_forked_heads_disagree() {
        let mut state = mesh();
        assert!(state.is_enabled(id(2)));
        assert_eq!(
            state.insert(event("on", 2, 1, "m0", enable("R1", true))),
            Ok(Insert::New)
        );
        assert!(state.is_enabled(id(2)));
        assert_eq!(
            state.insert(event("off", 2, 1, "m0", enable("R1", false))),
            Ok(Insert::New)
        );
        assert!(!state.is_enabled(id(2)));
        assert!(!state.is_enabled(id(7)), "a silent member is disabled");
    }

    #[test]
    fn statuses_follow_the_resolution() {
        let mut state = mesh();
        assert_eq!(
            state.insert(event("m1", 2, 1, "m0", app("R1"))),
            Ok(Insert::New)
        );
        let res = state.graph().resolve();
        assert_eq!(state.status(h("m1"), &res), Some(EventStatus::Current));
        // The admin posts a newer package and carries it into the roster.
        let newer = package_at(1, 5);
        for e in [
            event(
                "k",
                1,
                1,
                "a0",
                Body::Keys {
                    epoch: h("R1"),
                    package: newer,
                },
            ),
            event(
                "R2",
                1,
                2,
                "k",
                rotate(&["R1"], vec![Change::UpdateKeys { package: newer }]),
            ),
        ] {
            assert_eq!(state.insert(e), Ok(Insert::New));
        }
        let res = state.graph().resolve();
        assert_eq!(res.roster.get(id(1)).map(|e| e.keys), Some(newer));
        assert_eq!(state.status(h("m1"), &res), Some(EventStatus::Superseded));
        assert_eq!(state.status(h("R2"), &res), Some(EventStatus::Current));
        // F demotes the admin concurrently: R2 is void, and so is what was
        // written under it; F then removes member 2.
        for e in [
            event("a3", 1, 3, "R2", app("R2")),
            event(
                "RF",
                F,
                3,
                "R1",
                rotate(
                    &["R1"],
                    vec![Change::SetRole {
                        member: id(1),
                        role: Role::Member,
                    }],
                ),
            ),
            event(
                "RF2",
                F,
                4,
                "RF",
                rotate(&["RF"], vec![Change::Remove { member: id(2) }]),
            ),
        ] {
            assert_eq!(state.insert(e), Ok(Insert::New));
        }
        let res = state.graph().resolve();
        assert_eq!(state.status(h("a3"), &res), Some(EventStatus::VoidEpoch));
        assert_eq!(state.status(h("R2"), &res), Some(EventStatus::VoidEpoch));
        assert_eq!(
            state.status(h("m1"), &res),
            Some(EventStatus::AuthorNotInRoster)
        );
        assert_eq!(state.status(h("RF2"), &res), Some(EventStatus::Current));
        assert_eq!(state.len(), 11);
    }

    #[test]
    fn the_digest_is_a_function_of_the_set() {
        let extra = [
            event("m1", 2, 1, "m0", app("R1")),
            event("R2", 1, 1, "a0", rotate(&["R1"], vec![])),
            event("a2", 1, 2, "R2", app("R2")),
        ];
        let mut forward = mesh();
        for e in extra.iter().cloned() {
            assert_eq!(forward.insert(e), Ok(Insert::New));
        }
        let mut backward = mesh();
        for e in extra.iter().rev().cloned() {
            let _ = backward.insert(e);
        }
        // "a2" waited for R2 in the backward order; offer it again.
        assert_eq!(backward.insert(extra[2].clone()), Ok(Insert::New));
        let none = crate::left_out::LeftOut::default();
        let digest = |s: &MeshState| s.digest(&s.graph().resolve(), &none);
        assert_eq!(digest(&forward), digest(&backward));
        assert_ne!(digest(&forward), digest(&mesh()));
    }
}
