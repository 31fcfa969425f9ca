//! How a forked feed's branches lie in claimed time (SPEC.md §11.2): what
//! tells a member's honest restore from two copies written at once.

use std::collections::HashSet;

use super::Mesh;
use crate::feeds::Equivocation;
use crate::ids::EventHash;

/// The shape of an equivocation's branches, by their events' claimed times
/// (SPEC.md §11.2). Times are not checked (§3.2): a hint, not proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForkShape {
    /// One branch begins after every event of the other ends, as when a
    /// member writes on a copy restored from a backup that lacked the
    /// other branch.
    Restore {
        /// The first event of the branch written later.
        later: EventHash,
    },
    /// The branches were written at overlapping times, or there are more
    /// than two: two copies written at once (one key file on two machines,
    /// or on purpose).
    Overlapping,
}

impl ForkShape {
    /// `restore` or `overlapping`, as `meshlog verify --json` names it.
    pub fn name(self) -> &'static str {
        match self {
            ForkShape::Restore { .. } => "restore",
            ForkShape::Overlapping => "overlapping",
        }
    }
}

impl Mesh {
    /// The shape of `fork` (one of [`Mesh::equivocations`]): each branch is
    /// the event at the fork and the author's events that follow it,
    /// spanning their claimed times (SPEC.md §11.2).
    pub fn fork_shape(&self, fork: &Equivocation) -> ForkShape {
        let mut feed: Vec<(EventHash, u64, EventHash, u64)> = self
            .ledger
            .records()
            .filter(|record| record.event().author == fork.author && record.event().seq >= fork.seq)
            .map(|record| {
                let event = record.event();
                (record.hash(), event.seq, event.prev, event.time)
            })
            .collect();
        feed.sort_by_key(|&(_, seq, _, _)| seq);
        let spans: Vec<(EventHash, u64, u64)> = fork
            .events
            .iter()
            .map(|&start| {
                let mut branch = HashSet::from([start]);
                let (mut from, mut to) = (u64::MAX, 0);
                for &(hash, seq, prev, time) in &feed {
                    if hash == start || (seq > fork.seq && branch.contains(&prev)) {
                        branch.insert(hash);
                        from = from.min(time);
                        to = to.max(time);
                    }
                }
                (start, from, to)
            })
            .collect();
        match spans.as_slice() {
            [(a, a_from, a_to), (b, b_from, b_to)] if b_from > a_to || a_from > b_to => {
                ForkShape::Restore {
                    later: if b_from > a_to { *b } else { *a },
                }
            }
            _ => ForkShape::Overlapping,
        }
    }
}
