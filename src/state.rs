//! The state projected from a chain (SPEC.md §6).
//!
//! A [`MeshState`] is only ever changed by the reducer's accepted transitions,
//! and has a canonical encoding whose labelled hash is the [`StateDigest`]:
//! two copies of a chain agree exactly when their digests do.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{Envelope, RosterEntry};
use crate::ids::{EventHash, GroupId, MemberId, StateDigest};
use crate::labels;

/// Who the group is, fixed by the genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The genesis event's hash.
    pub group: GroupId,
    /// The group's name.
    pub name: String,
    /// The founder's member id.
    pub founder: MemberId,
    /// The time the founder claimed for the genesis (unix seconds).
    pub created_at: u64,
}

/// The last event of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Its sequence number; the chain holds `seq + 1` events.
    pub seq: u64,
    /// Its hash.
    pub hash: EventHash,
}

/// One epoch: its roster and its wrapped secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// The epoch number, 0 for the genesis.
    pub epoch: u64,
    /// The event that opened it.
    pub seq: u64,
    /// Who opened it.
    pub author: MemberId,
    /// When, as claimed by the author (unix seconds).
    pub time: u64,
    /// The roster, sorted by member id.
    pub roster: Vec<RosterEntry>,
    /// The epoch secret, wrapped to every member of the roster.
    pub envelope: Envelope,
    /// Why the epoch was opened.
    pub reason: String,
}

impl EpochRecord {
    /// The roster entry of `member`, if it belongs to this epoch.
    pub fn member(&self, member: MemberId) -> Option<&RosterEntry> {
        self.roster
            .binary_search_by_key(&member, |entry| entry.id)
            .ok()
            .and_then(|index| self.roster.get(index))
    }
}

/// Everything the chain says, as of its head.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshState {
    pub(crate) identity: Option<Identity>,
    pub(crate) head: Option<Head>,
    pub(crate) epochs: Vec<EpochRecord>,
    /// Participation flag of every member of the current epoch.
    pub(crate) enabled: BTreeMap<MemberId, bool>,
}

impl MeshState {
    /// The group's identity; `None` before the genesis.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// The last event; `None` for an empty chain.
    pub fn head(&self) -> Option<Head> {
        self.head
    }

    /// Number of events in the chain.
    pub fn len(&self) -> u64 {
        self.head.map_or(0, |head| head.seq + 1)
    }

    /// Whether the chain has no events.
    pub fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Every epoch, oldest first; epoch `n` is at index `n`.
    pub fn epochs(&self) -> &[EpochRecord] {
        &self.epochs
    }

    /// One epoch.
    pub fn epoch(&self, epoch: u64) -> Option<&EpochRecord> {
        usize::try_from(epoch).ok().and_then(|i| self.epochs.get(i))
    }

    /// The newest epoch.
    pub fn current_epoch(&self) -> Option<&EpochRecord> {
        self.epochs.last()
    }

    /// The group, seq and prev the next event must carry (SPEC.md §5.2, R3–R5):
    /// zeros before the genesis.
    pub(crate) fn next_position(&self) -> (GroupId, u64, EventHash) {
        match (&self.identity, self.head) {
            (Some(identity), Some(head)) => (identity.group, head.seq.saturating_add(1), head.hash),
            _ => (GroupId::ZERO, 0, EventHash::ZERO),
        }
    }

    /// Whether `member` belongs to the current epoch and has turned itself on.
    pub fn is_enabled(&self, member: MemberId) -> bool {
        self.enabled.get(&member).copied().unwrap_or(false)
    }

    /// The participation flag of every current member.
    pub fn enabled_flags(&self) -> &BTreeMap<MemberId, bool> {
        &self.enabled
    }

    /// Runs the reducer: applies `event` if it may follow this state, and
    /// otherwise leaves the state untouched and says which rule it breaks.
    pub fn reduce(
        &mut self,
        event: &crate::chain::SignedEvent,
    ) -> Result<(), crate::reducer::Rejection> {
        let accepted = crate::reducer::check(self, event)?;
        self.apply(accepted);
        Ok(())
    }

    /// The labelled hash of this state's canonical encoding.
    pub fn digest(&self) -> StateDigest {
        let mut hasher = blake3::Hasher::new_derive_key(labels::STATE_DIGEST);
        // Writing into a hasher cannot fail; serde errors cannot arise from these types.
        let _ = postcard::to_io(self, &mut hasher);
        StateDigest::from_bytes(*hasher.finalize().as_bytes())
    }
}

/// What one accepted event changes, as decided by the reducer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Transition {
    Genesis {
        identity: Identity,
        epoch: EpochRecord,
    },
    Rotate(EpochRecord),
    SetEnabled {
        member: MemberId,
        enabled: bool,
    },
    App,
}

/// An event the reducer accepted: the new head and what changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Accepted {
    pub(crate) head: Head,
    pub(crate) transition: Transition,
}

impl MeshState {
    /// Applies an accepted transition. Infallible: every check was made by
    /// [`crate::reducer::check`] against this very state.
    pub(crate) fn apply(&mut self, accepted: Accepted) {
        self.head = Some(accepted.head);
        match accepted.transition {
            Transition::Genesis { identity, epoch } => {
                self.enabled = epoch.roster.iter().map(|entry| (entry.id, false)).collect();
                self.identity = Some(identity);
                self.epochs = vec![epoch];
            }
            Transition::Rotate(epoch) => {
                // Members keep their flag across rotations; newcomers start off,
                // as the original design's `mesh.enabled` did.
                self.enabled = epoch
                    .roster
                    .iter()
                    .map(|entry| (entry.id, self.is_enabled(entry.id)))
                    .collect();
                self.epochs.push(epoch);
            }
            Transition::SetEnabled { member, enabled } => {
                self.enabled.insert(member, enabled);
            }
            Transition::App => {}
        }
    }
}
