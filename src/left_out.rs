//! The events a peer may leave out (SPEC.md §6.4): void rotations that no
//! one builds on, such as a fired or demoted admin's backdated ones, and
//! what its puppets and anyone else outside `R*` signed on top of them.
//!
//! Leaving them out changes nothing else: not `R*`, not any other status,
//! not which event another needs. So the state's digest covers the rest,
//! exports send the rest, and a batch's left-out events are not taken: a
//! removed admin's backdated rotations cost each peer that already knows of
//! the removal (or demotion) their checks when offered, and no storage.

use foldhash::HashSet;

use crate::event::{Body, Event, SignedEvent};
use crate::graph::Resolution;
use crate::ids::EventHash;

/// The hashes of the events left out of a set under its resolution.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct LeftOut(HashSet<EventHash>);

impl LeftOut {
    /// Whether `hash` is left out.
    pub(crate) fn contains(&self, hash: EventHash) -> bool {
        self.0.contains(&hash)
    }

    /// Whether none is.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The set of `hashes`, as a checkpoint states it (SPEC.md §9.7).
    pub(crate) fn from_hashes(hashes: impl IntoIterator<Item = EventHash>) -> LeftOut {
        LeftOut(hashes.into_iter().collect())
    }

    /// Every hash left out, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = EventHash> + '_ {
        self.0.iter().copied()
    }

    /// The largest set `L` of `events` such that each event of `L`:
    /// - is a void rotation, or is not a rotation, is by an author absent
    ///   from `R*` and names (as `prev`, epoch or parent) an event of `L`;
    /// - is named by no event outside `L`.
    ///
    /// `events` must come parents first (every event after what it names),
    /// as a ledger holds them; they are read once, in order, and only the
    /// candidates are kept: the void rotations and the events of absent
    /// authors. Any other event is outside `L`, so what it names is out
    /// too ("pinned"); since it comes after what it names, the candidates
    /// seen so far are all it can pin. The set is the greatest fixed point
    /// of the two conditions, reached by removing from the candidates, in
    /// turns, those not grounded in a void rotation (a pass in order) and
    /// those an event outside needs (a pass in reverse), until neither
    /// removes anything.
    pub(crate) fn of<'a>(
        events: impl IntoIterator<Item = impl std::ops::Deref<Target = SignedEvent> + 'a>,
        resolution: &Resolution,
    ) -> LeftOut {
        let rotation = |signed: &SignedEvent| matches!(signed.event().body, Body::Rotate { .. });
        let grounds_it =
            |signed: &SignedEvent| rotation(signed) && !resolution.is_applied(signed.hash());
        // An applied rotation is never left out, whoever wrote it: an
        // admin's can apply while its author is absent from `R*` (another
        // admin removed it while it was being promoted), and it is then a
        // tip, or its changes count in `R*`.
        let absent = |signed: &SignedEvent| {
            !resolution.roster.contains(signed.event().author)
                && (!rotation(signed) || grounds_it(signed))
        };
        let mut candidates: Vec<Candidate> = Vec::new();
        let mut set: HashSet<EventHash> = HashSet::default();
        let mut pinned: HashSet<EventHash> = HashSet::default();
        for signed in events {
            let signed: &SignedEvent = &signed;
            let hash = signed.hash();
            let (absent, grounds) = (absent(signed), grounds_it(signed));
            if absent || grounds {
                set.insert(hash);
                candidates.push(Candidate {
                    hash,
                    names: names(signed.event()).collect(),
                    absent,
                    grounds,
                });
            } else {
                pinned.extend(names(signed.event()).filter(|named| set.contains(named)));
            }
        }
        // (Without a void rotation the first pass empties the set;
        // `Ledger::left_out` skips that case cheaply.)
        for hash in &pinned {
            set.remove(hash);
        }
        loop {
            let mut changed = false;
            for candidate in &candidates {
                // A present author's events stand on their own: only its
                // void rotations are left out, never what it wrote on them,
                // whose feed and flag count in the digest.
                if set.contains(&candidate.hash)
                    && !candidate.grounds
                    && !(candidate.absent
                        && candidate.names.iter().any(|named| set.contains(named)))
                {
                    set.remove(&candidate.hash);
                    changed = true;
                }
            }
            for candidate in candidates.iter().rev() {
                if set.contains(&candidate.hash) {
                    continue;
                }
                for named in &candidate.names {
                    changed |= set.remove(named);
                }
            }
            if !changed {
                return LeftOut(set);
            }
        }
    }
}

/// An event that may be left out, and what the fixed point reads of it.
struct Candidate {
    hash: EventHash,
    names: Vec<EventHash>,
    /// By an author absent from `R*` (and no applied rotation).
    absent: bool,
    /// A void rotation.
    grounds: bool,
}

/// What an event names: its `prev` (past `seq` 0), then its epochs.
fn names(event: &Event) -> impl Iterator<Item = EventHash> + '_ {
    (event.seq > 0)
        .then_some(event.prev)
        .into_iter()
        .chain(event.named_epochs().iter().copied())
}
