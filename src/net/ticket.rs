//! The ticket after the handshake's first message (SPEC.md §17.4): proof,
//! cheap to make and to check, that the initiator holds the secret of an
//! epoch the responder still trusts, so that a server gives a handshake
//! slot, and a DH, only to members. As WireGuard's `mac1` binds its first
//! message to the responder's key, the ticket binds the initiator's
//! ephemeral key to an epoch secret.
//!
//! ```text
//! key   = derive_key(NET_TICKET, epoch secret)
//! hint  = keyed_hash(key, 0x00)[..8]
//! tag   = keyed_hash(key, 0x01 || e)
//! first = e || count:u8 || count × (hint || tag)      count 1..=8, or nothing
//! ```

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::envelope::EpochSecret;
use crate::event::{Body, Change};
use crate::graph::Status;
use crate::ids::{EventHash, MemberId};
use crate::labels;
use crate::mesh::Mesh;

/// Noise's message 1 in XX with an empty payload: the ephemeral key `e`.
pub(crate) const EPHEMERAL_BYTES: usize = 32;
/// Bytes of an entry's hint.
pub(crate) const HINT_BYTES: usize = 8;
/// Bytes of an entry's tag.
pub(crate) const TAG_BYTES: usize = 32;
/// Most entries of a ticket (SPEC.md §17.4).
pub(crate) const MAX_TICKET_ENTRIES: usize = 8;
/// Longest first message: `e`, the count and eight entries.
pub(crate) const MAX_FIRST_MESSAGE: usize =
    EPHEMERAL_BYTES + 1 + MAX_TICKET_ENTRIES * (HINT_BYTES + TAG_BYTES);
/// The distances back from the writer epoch, in rotations, of the epochs a
/// member names (SPEC.md §17.4): a responder a few rotations behind or
/// ahead still finds one it holds.
pub(crate) const TICKET_DEPTHS: [usize; MAX_TICKET_ENTRIES] = [0, 1, 2, 4, 8, 16, 32, 64];
/// Rotations a member walks back through at most to choose them.
const MAX_WALK: usize = 256;
/// Ephemeral keys of accepted tickets a responder remembers, so that a
/// ticket seen on the network cannot be replayed while remembered.
pub(crate) const REPLAY_MEMORY: usize = 65_536;

/// The ticket key of one epoch; no `Debug`, no `Clone`.
pub(crate) struct TicketKey {
    key: Zeroizing<[u8; 32]>,
    hint: [u8; HINT_BYTES],
}

impl TicketKey {
    pub(crate) fn derive(secret: &EpochSecret) -> TicketKey {
        let key = Zeroizing::new(blake3::derive_key(labels::NET_TICKET, secret.expose()));
        let hint = blake3::keyed_hash(&key, &[0x00]);
        let mut short = [0u8; HINT_BYTES];
        short.copy_from_slice(&hint.as_bytes()[..HINT_BYTES]);
        TicketKey { key, hint: short }
    }

    pub(crate) fn hint(&self) -> [u8; HINT_BYTES] {
        self.hint
    }

    /// The tag of `e`; a [`blake3::Hash`], whose `==` is constant-time.
    pub(crate) fn tag(&self, ephemeral: &[u8; EPHEMERAL_BYTES]) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        hasher.update(&[0x01]);
        hasher.update(ephemeral);
        hasher.finalize()
    }
}

/// The ticket for the ephemeral key `e` under `keys` (at most
/// [`MAX_TICKET_ENTRIES`]); nothing for none, as a newcomer sends.
pub(crate) fn ticket(ephemeral: &[u8; EPHEMERAL_BYTES], keys: &[Arc<TicketKey>]) -> Vec<u8> {
    let keys = keys
        .get(..keys.len().min(MAX_TICKET_ENTRIES))
        .unwrap_or(keys);
    if keys.is_empty() {
        return Vec::new();
    }
    let mut bytes = Vec::with_capacity(1 + keys.len() * (HINT_BYTES + TAG_BYTES));
    bytes.push(keys.len() as u8);
    for key in keys {
        bytes.extend_from_slice(&key.hint());
        bytes.extend_from_slice(key.tag(ephemeral).as_bytes());
    }
    bytes
}

/// What a responder makes of a first message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// An entry verifies under an epoch the responder trusts.
    Member,
    /// No ticket, or none that verifies here: a newcomer, a member behind a
    /// removal, a removed member or a stranger.
    Open,
}

/// Why a first message is dropped unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Malformed {
    #[error("a first message of {0} bytes, not 32 plus a ticket")]
    Length(usize),
    #[error("a ticket of {0} entries, not 1 to 8")]
    Count(u8),
}

/// Splits a first message into `e` and its ticket's entries, strictly.
pub(crate) fn parse(first: &[u8]) -> Result<(&[u8; EPHEMERAL_BYTES], &[u8]), Malformed> {
    let length = Malformed::Length(first.len());
    let (ephemeral, rest) = first.split_first_chunk::<EPHEMERAL_BYTES>().ok_or(length)?;
    let Some((&count, entries)) = rest.split_first() else {
        return Ok((ephemeral, &[]));
    };
    if count == 0 || usize::from(count) > MAX_TICKET_ENTRIES {
        return Err(Malformed::Count(count));
    }
    if entries.len() != usize::from(count) * (HINT_BYTES + TAG_BYTES) {
        return Err(length);
    }
    Ok((ephemeral, entries))
}

/// The epochs a node's tickets concern: those whose tags it accepts, by
/// hint, and those it names when it connects. Remade whenever a rotation
/// arrives.
#[derive(Default)]
pub(crate) struct Admission {
    /// Rotations the mesh held when this was made.
    pub(crate) rotations: usize,
    accepted: HashMap<[u8; HINT_BYTES], Vec<Arc<TicketKey>>>,
    /// Ticket keys this node names as initiator, nearest first.
    pub(crate) named: Vec<Arc<TicketKey>>,
}

impl Admission {
    /// The verdict on `entries` for the ephemeral key `e`: each entry is
    /// looked up by its hint, and its tag compared in constant time, so a
    /// stranger costs at most eight hash-map lookups and no MAC but under a
    /// hint it guessed.
    pub(crate) fn verdict(&self, ephemeral: &[u8; EPHEMERAL_BYTES], entries: &[u8]) -> Verdict {
        for entry in entries.chunks_exact(HINT_BYTES + TAG_BYTES) {
            let (hint, tag) = entry.split_at(HINT_BYTES);
            let (Ok(hint), Ok(tag)) = (
                <[u8; HINT_BYTES]>::try_from(hint),
                <[u8; TAG_BYTES]>::try_from(tag),
            ) else {
                continue;
            };
            let tag = blake3::Hash::from(tag);
            for key in self.accepted.get(&hint).into_iter().flatten() {
                if key.tag(ephemeral) == tag {
                    return Verdict::Member;
                }
            }
        }
        Verdict::Open
    }

    /// How many epochs' tags are accepted.
    #[cfg(test)]
    pub(crate) fn accepted_epochs(&self) -> usize {
        self.accepted.values().map(Vec::len).sum()
    }
}

/// The admission of `mesh` (SPEC.md §17.4). A responder accepts tags under
/// every epoch it can open that applies (or is the genesis) and whose own
/// roster holds only members of `R*`: once a removal is known, no epoch
/// whose secret the removed member holds is accepted. An initiator names
/// the epochs it can open at [`TICKET_DEPTHS`] rotations back from its
/// writer epoch. Keys already derived are taken from `cache`.
pub(crate) fn admission(mesh: &Mesh, cache: &mut HashMap<EventHash, Arc<TicketKey>>) -> Admission {
    let rotations = mesh.resolution().statuses.len();
    let Some(me) = mesh.member_id() else {
        return Admission {
            rotations,
            ..Admission::default()
        };
    };
    let mut key_of = |epoch: EventHash| -> Option<Arc<TicketKey>> {
        if let Some(key) = cache.get(&epoch) {
            return Some(key.clone());
        }
        let key = Arc::new(TicketKey::derive(&mesh.epoch_secret(epoch).ok()?));
        cache.insert(epoch, key.clone());
        Some(key)
    };
    let resolution = mesh.resolution();
    let mut accepted: HashMap<[u8; HINT_BYTES], Vec<Arc<TicketKey>>> = HashMap::new();
    // The genesis applies in every resolution.
    let applied = resolution
        .statuses
        .iter()
        .filter(|(_, status)| matches!(status, Status::Applied { .. }))
        .map(|(hash, _)| *hash);
    // Every member of a roster was added by a change of some rotation held
    // (the founder, by the genesis, is an owner and never leaves `R*`), so
    // the members gone from `R*` are those added and absent from it: few,
    // where rosters may hold thousands.
    let mut gone: Vec<MemberId> = resolution
        .statuses
        .keys()
        .filter_map(|rotation| match &mesh.event(*rotation)?.event().body {
            Body::Rotate { changes, .. } => Some(changes.clone()),
            _ => None,
        })
        .flatten()
        .filter_map(|change| match change {
            Change::Add { package, .. } => Some(package.member()),
            _ => None,
        })
        .filter(|member| !resolution.roster.contains(*member))
        .collect();
    gone.sort();
    gone.dedup();
    for epoch in applied {
        let within = mesh.own_roster(epoch).is_some_and(|roster| {
            roster.contains(me) && !gone.iter().any(|member| roster.contains(*member))
        });
        if !within {
            continue;
        }
        if let Some(key) = key_of(epoch) {
            accepted.entry(key.hint()).or_default().push(key);
        }
    }
    let mut named = Vec::new();
    for epoch in named_epochs(mesh) {
        if let Some(key) = key_of(epoch) {
            named.push(key);
        }
    }
    Admission {
        rotations,
        accepted,
        named,
    }
}

/// The epochs an initiator names: walking back from its writer epoch (the
/// current one, or while a merge is needed the one writers name) through
/// parents, breadth first, the smallest-hash epoch it can open at each
/// distance of [`TICKET_DEPTHS`].
fn named_epochs(mesh: &Mesh) -> Vec<EventHash> {
    let Some(start) = mesh.writer_epoch().or(mesh.current_epoch()) else {
        return Vec::new();
    };
    let me = mesh.member_id();
    let opens = |epoch: &EventHash| {
        mesh.own_roster(*epoch)
            .is_some_and(|roster| me.is_some_and(|me| roster.contains(me)))
    };
    let parents = |epoch: &EventHash| match mesh.event(*epoch) {
        Some(event) => match &event.event().body {
            Body::Rotate { parents, .. } => parents.clone(),
            _ => Vec::new(),
        },
        None => Vec::new(),
    };
    let mut level: Vec<EventHash> = vec![start];
    let mut seen: HashSet<EventHash> = HashSet::from([start]);
    let mut by_depth: BTreeMap<usize, EventHash> = BTreeMap::new();
    let deepest = TICKET_DEPTHS[MAX_TICKET_ENTRIES - 1];
    for depth in 0..=deepest {
        if level.is_empty() {
            break;
        }
        level.sort();
        if TICKET_DEPTHS.contains(&depth)
            && let Some(epoch) = level.iter().find(|epoch| opens(epoch))
        {
            by_depth.insert(depth, *epoch);
        }
        let mut next = Vec::new();
        for epoch in &level {
            for parent in parents(epoch) {
                if seen.len() < MAX_WALK && seen.insert(parent) {
                    next.push(parent);
                }
            }
        }
        level = next;
    }
    by_depth.into_values().collect()
}

/// The ephemeral keys of the latest accepted tickets, oldest forgotten
/// first: a ticket copied off the network gets no slot while its key is
/// remembered.
#[derive(Default)]
pub(crate) struct Replays {
    order: VecDeque<[u8; EPHEMERAL_BYTES]>,
    seen: HashSet<[u8; EPHEMERAL_BYTES]>,
}

impl Replays {
    /// Whether `ephemeral` is new; remembers it.
    pub(crate) fn first_use(&mut self, ephemeral: &[u8; EPHEMERAL_BYTES]) -> bool {
        if !self.seen.insert(*ephemeral) {
            return false;
        }
        self.order.push_back(*ephemeral);
        if self.order.len() > REPLAY_MEMORY
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        true
    }
}
