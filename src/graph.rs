//! The epoch graph of format v3 and its resolution (SPEC.md §5).
//!
//! A rotation names its author's frontier of rotations as parents, so admins
//! who rotate concurrently fork the graph of epochs. Which rotations apply,
//! which of their changes are kept, the resolved roster `R*` and the current
//! epoch are functions of the *set* of accepted rotations alone: peers holding
//! the same set compute the same answer, whatever order it arrived in.
//!
//! Resolution runs two passes, each over the rotations in a topological
//! order (any one gives the same result):
//!
//! 1. **Ownership** ([`EpochGraph::prepare`] caches it per rotation). Who is an
//!    owner in a rotation's past depends only on owners' rotations and on
//!    ancestry, never on whether a non-owner's rotation applies. Without this,
//!    voiding (which depends on concurrent owners) and owner grants (which
//!    depend on bases) could depend on each other in a cycle.
//! 2. **Applied or void, kept or void** ([`EpochGraph::resolve`]). Each
//!    rotation is judged against its effective base `B(R)`: the registers over
//!    the applied rotations among its ancestors.
//!
//! A mesh lives through many epochs, so neither pass runs over the whole
//! history after each rotation: [`EpochGraph::resolve`] extends the last
//! resolution by a rotation that names every tip (the common case: nothing
//! is concurrent with it that applies, SPEC.md §5.5) and otherwise judges
//! again only what is newer than a *cut*, a rotation that every other is an
//! ancestor or a descendant of, whose past nothing newer can change. The
//! same cuts keep ancestry near-linear in memory (see `Node`).
//!
//! Signatures, key packages' signatures and envelopes are checked by the
//! layers that decode events; this module takes its inputs as checked.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use foldhash::HashMap;

use crate::error::VoidReason;
use crate::event::MemberKeys;
use crate::ids::{EventHash, MemberId};
use crate::labels::limits;
use crate::statuses::Statuses;

/// Most parents a rotation may name (SPEC.md §5.1).
pub(crate) const MAX_PARENTS: usize = 16;

/// A member's role, ordered by power: member < admin < owner. Encoded as
/// its position (0, 1, 2).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Role {
    /// Writes app events and its own flag.
    Member,
    /// Also adds members and admins, promotes members and removes members.
    Admin,
    /// Also removes, promotes and demotes any non-owner, and makes owners.
    Owner,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        })
    }
}

/// A role name that is not `member`, `admin` or `owner`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected member, admin or owner")]
pub struct ParseRoleError(String);

impl std::str::FromStr for Role {
    type Err = ParseRoleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "member" => Ok(Role::Member),
            "admin" => Ok(Role::Admin),
            "owner" => Ok(Role::Owner),
            other => Err(ParseRoleError(other.to_owned())),
        }
    }
}

/// A member's public keys as the member itself signed them, with a counter.
///
/// A member's keys in a causal past come from the package with the highest
/// counter there (SPEC.md §5.4), so nobody but the member can choose the
/// DH key its epoch secrets are wrapped to. The member's signature over the
/// package is checked where the package is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct KeyPackage {
    member: MemberId,
    keys: MemberKeys,
    counter: u64,
}

impl KeyPackage {
    pub(crate) fn new(keys: MemberKeys, counter: u64) -> Self {
        Self {
            member: keys.member_id(),
            keys,
            counter,
        }
    }

    pub(crate) fn member(&self) -> MemberId {
        self.member
    }

    pub(crate) fn keys(&self) -> &MemberKeys {
        &self.keys
    }

    pub(crate) fn counter(&self) -> u64 {
        self.counter
    }

    /// Whether this package wins over `other`, a package of the same member:
    /// the higher counter, and at equal counters the smaller keys. Two
    /// packages at one counter are the member's own equivocation; every peer
    /// still picks the same one.
    fn supersedes(&self, other: &KeyPackage) -> bool {
        (
            self.counter,
            std::cmp::Reverse((self.keys.signing, self.keys.dh)),
        ) > (
            other.counter,
            std::cmp::Reverse((other.keys.signing, other.keys.dh)),
        )
    }
}

/// One change a rotation makes to one member's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// Adds an absent member. With [`Role::Owner`] it is an *owner grant*,
    /// the only way to make an owner (it also promotes a present member,
    /// SPEC.md §5.3 K3), so an owner's entry always carries keys the
    /// member signed.
    Add {
        /// The member's own package.
        package: KeyPackage,
        /// Its role.
        role: Role,
    },
    /// Removes a member.
    Remove {
        /// Whom.
        member: MemberId,
    },
    /// Sets a present member's role to member or admin (owners are made by
    /// [`Change::Add`]).
    SetRole {
        /// Whom.
        member: MemberId,
        /// The new role.
        role: Role,
    },
    /// Carries a newer package of a present member into the roster. The
    /// only change a rotation may make to its own author's entry.
    UpdateKeys {
        /// The member's own, newer package.
        package: KeyPackage,
    },
}

impl Change {
    /// The member whose entry the change touches.
    pub(crate) fn member(&self) -> MemberId {
        match self {
            Change::Add { package, .. } | Change::UpdateKeys { package } => package.member(),
            Change::Remove { member } | Change::SetRole { member, .. } => *member,
        }
    }
}

/// A rotation as the graph sees it: who, after what, changing what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rotation {
    /// The rotation event's hash.
    pub(crate) hash: EventHash,
    /// Its author.
    pub(crate) author: MemberId,
    /// The author's frontier: 1 to [`MAX_PARENTS`] accepted rotations in
    /// strictly increasing hash order, none an ancestor of another.
    pub(crate) parents: Vec<EventHash>,
    /// Its changes, in strictly increasing member order (so at most one a
    /// member). None: a merge (several parents) or a refresh (one).
    pub(crate) changes: Vec<Change>,
}

impl RosterEntry {
    /// The member's id.
    pub fn member(&self) -> MemberId {
        self.keys.member()
    }

    /// Its public keys, from its newest package (SPEC.md §5.4).
    pub fn keys(&self) -> &MemberKeys {
        self.keys.keys()
    }

    /// The counter of that package.
    pub fn package_counter(&self) -> u64 {
        self.keys.counter()
    }

    /// Its role.
    pub fn role(&self) -> Role {
        self.role
    }
}

/// One member's entry in a resolved roster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RosterEntry {
    /// The member's keys, from its newest package.
    pub(crate) keys: KeyPackage,
    /// Its role.
    pub(crate) role: Role,
}

/// The members present after a resolution, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    entries: BTreeMap<MemberId, RosterEntry>,
}

impl Roster {
    /// The entry of `member`, if present.
    pub fn get(&self, member: MemberId) -> Option<&RosterEntry> {
        self.entries.get(&member)
    }

    /// How many members are present.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no member is present.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `member` is present.
    pub fn contains(&self, member: MemberId) -> bool {
        self.entries.contains_key(&member)
    }

    /// The role of `member`, if present.
    pub fn role_of(&self, member: MemberId) -> Option<Role> {
        self.get(member).map(|entry| entry.role)
    }

    /// Every member present, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&MemberId, &RosterEntry)> {
        self.entries.iter()
    }

    /// Whether every member present here is present in `other`.
    pub(crate) fn ids_within(&self, other: &Roster) -> bool {
        self.entries.keys().all(|id| other.entries.contains_key(id))
    }
}

/// Why a rotation is not accepted into the graph (SPEC.md §5.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// No parents, or more than 16.
    #[error("a rotation names 1 to {MAX_PARENTS} parents, not {0}")]
    ParentCount(usize),
    /// Parents not in strictly increasing hash order.
    #[error("parent {0} is out of order or repeated")]
    ParentsUnsorted(usize),
    /// A parent the graph has not accepted.
    #[error("parent {0} is not an accepted rotation")]
    UnknownParent(EventHash),
    /// One parent is an ancestor of another.
    #[error("parent {ancestor} is an ancestor of parent {descendant}, so they are not a frontier")]
    ParentsNotFrontier {
        /// The older parent.
        ancestor: EventHash,
        /// The parent that descends from it.
        descendant: EventHash,
    },
    /// Changes not in strictly increasing member order.
    #[error("change {0} is out of member order, or a second change to one member")]
    ChangesUnsorted(usize),
    /// A role change to owner: owner grants are additions with a package.
    #[error("change {0} makes an owner by a role change; owner grants carry the member's package")]
    OwnerWithoutPackage(usize),
    /// The author is not an admin or owner in the resolution of the
    /// rotation's own causal past.
    #[error("author {0} is not an admin or owner in the rotation's causal past")]
    AuthorNotAdmin(MemberId),
    /// The rotation's own roster would exceed the limit, so that its
    /// envelope always fits in an event.
    #[error("the rotation's roster would hold {0} members, more than {max}", max = limits::MAX_ROSTER)]
    RosterTooLarge(usize),
}

impl GraphError {
    /// The rule's id in SPEC.md §5.2 (E1–E8).
    pub fn id(&self) -> &'static str {
        match self {
            GraphError::ParentCount(_) => "E1",
            GraphError::ParentsUnsorted(_) => "E2",
            GraphError::UnknownParent(_) => "E3",
            GraphError::ParentsNotFrontier { .. } => "E4",
            GraphError::ChangesUnsorted(_) => "E5",
            GraphError::OwnerWithoutPackage(_) => "E6",
            GraphError::AuthorNotAdmin(_) => "E7",
            GraphError::RosterTooLarge(_) => "E8",
        }
    }
}

/// What [`EpochGraph::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// The rotation is new and accepted.
    New,
    /// The graph already holds it.
    Known,
}

/// What a rotation made here names (SPEC.md §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parents {
    /// The parents, in hash order.
    pub(crate) hashes: Vec<EventHash>,
    /// Whether they are a merge step: some tips only, more than one
    /// rotation names. Otherwise they cover every tip, and the base of a
    /// rotation naming them is `R*` (SPEC.md §5.5).
    pub(crate) step: bool,
}

/// Whether a rotation applies, in a resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    /// It applies; the changes at these positions are void.
    Applied {
        /// Positions of its void changes.
        void_changes: Vec<usize>,
    },
    /// It does not apply: its author was not an admin in its base, or an
    /// owner concurrently removed or demoted its author.
    Void,
}

/// The resolution of the whole graph (SPEC.md §5.5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Resolution {
    /// Every rotation's status, by hash (cheap to clone).
    pub(crate) statuses: Statuses,
    /// `R*`: the registers over every applied rotation.
    pub(crate) roster: Roster,
    /// Applied rotations no other applied rotation descends from, by hash.
    pub(crate) tips: Vec<EventHash>,
    /// The smallest-hash tip whose own roster is `R*`; `None`: the mesh
    /// needs a merge.
    pub(crate) current: Option<EventHash>,
    /// The epoch writers name: the current one, or while a merge is needed
    /// the smallest-hash tip whose members are all in `R*`. `None`: app
    /// writes wait for the merge.
    pub(crate) writer: Option<EventHash>,
}

impl Resolution {
    pub(crate) fn needs_merge(&self) -> bool {
        self.current.is_none()
    }

    pub(crate) fn is_applied(&self, rotation: EventHash) -> bool {
        matches!(self.statuses.get(&rotation), Some(Status::Applied { .. }))
    }

    /// Whether any rotation is void, without a look at each.
    pub(crate) fn any_void(&self) -> bool {
        self.statuses.any_void()
    }
}

/// One accepted rotation and what is cached about its causal past.
///
/// Ancestry is kept near-linear in the number of rotations, not one set of
/// ancestors a rotation (quadratic: 1.25 GB at 100,000 epochs). Each
/// rotation names its *cut*: the newest ancestor (by index, which is a
/// topological order) that every other ancestor is an ancestor of or
/// descends from. Its ancestors are then the cut, the cut's ancestors, and
/// `between`: those newer than the cut. With one parent the cut is the
/// parent and `between` is empty, so a linear history costs a few words a
/// rotation; a merge lists the branches it joins since they forked. The
/// cuts of a rotation form a chain down to the genesis, which skip
/// pointers ([`Node::jump`]) search in O(log n) steps.
#[derive(Clone)]
struct Node {
    rotation: Rotation,
    /// The owners in every base of this rotation: the founder, and whoever
    /// an owner's rotation among its ancestors granted ownership. Shared
    /// with its parent while no grant changes it.
    owners: Arc<BTreeSet<MemberId>>,
    /// Its parents, by index.
    parents: Vec<usize>,
    /// The newest ancestor every ancestor is comparable with (itself for
    /// the genesis).
    cut: u32,
    /// A node further down the chain of cuts, chosen so that a search down
    /// the chain takes O(log n) steps (Myers' skew-binary jump pointers).
    jump: u32,
    /// How many cuts lie below it on its chain.
    depth: u32,
    /// How many ancestors it has.
    past_len: u32,
    /// Its ancestors newer than `cut`, by increasing index.
    between: Box<[u32]>,
    /// The registers of its causal past, itself included, as if nothing
    /// else existed: its own roster (whom its envelope is wrapped to), and
    /// the base its children with no other parent are judged against.
    /// Shared with its parent when it keeps no change (a refresh).
    own: Arc<Base>,
    /// Which of its changes are kept within its own causal past (an accepted
    /// rotation applies there).
    own_kept: Vec<bool>,
    /// Whether `own` and `own_kept` are computed; false only for the
    /// candidate of [`EpochGraph::prepare`].
    settled: bool,
}

impl Node {
    fn is_owner_rotation(&self) -> bool {
        self.owners.contains(&self.rotation.author)
    }

    /// Members its owner grants make owners (void grants included: they
    /// name an owner already, or the author, so they add no one).
    fn owner_grants(&self) -> impl Iterator<Item = MemberId> + '_ {
        self.rotation
            .changes
            .iter()
            .filter_map(|change| match change {
                Change::Add {
                    package,
                    role: Role::Owner,
                } => Some(package.member()),
                _ => None,
            })
    }
}

/// The base a rotation is judged against: a roster, which entries are an
/// admin's (any surviving change makes them admin or owner), and every
/// member's best package, present or not (SPEC.md §5.4).
#[derive(Debug, Clone, Default)]
struct Base {
    roster: Roster,
    admin_entries: BTreeSet<MemberId>,
    keys: BTreeMap<MemberId, KeyPackage>,
}

impl Base {
    /// This base after `rotation`'s kept changes, for a rotation that
    /// descends from every candidate the base was built from: each change
    /// it keeps is then the one surviving candidate of its member.
    fn advanced(mut self, changes: &[Change], kept: &[bool]) -> Base {
        for (change, _) in changes.iter().zip(kept).filter(|(_, kept)| **kept) {
            let member = change.member();
            let value = match change {
                Change::Add { package, role } => {
                    offer(&mut self.keys, package);
                    Some(Some(*role))
                }
                Change::UpdateKeys { package } => {
                    offer(&mut self.keys, package);
                    None
                }
                Change::Remove { .. } => Some(None),
                Change::SetRole { role, .. } => Some(Some(*role)),
            };
            if let Some(value) = value {
                if value >= Some(Role::Admin) {
                    self.admin_entries.insert(member);
                } else {
                    self.admin_entries.remove(&member);
                }
                match value {
                    Some(role) => {
                        if let Some(keys) = self.keys.get(&member) {
                            self.roster
                                .entries
                                .insert(member, RosterEntry { keys: *keys, role });
                        }
                    }
                    None => {
                        self.roster.entries.remove(&member);
                    }
                }
            }
            if let (Some(entry), Some(keys)) =
                (self.roster.entries.get_mut(&member), self.keys.get(&member))
            {
                entry.keys = *keys;
            }
        }
        self
    }
}

/// Keeps the better of a member's known package and `package`.
fn offer(keys: &mut BTreeMap<MemberId, KeyPackage>, package: &KeyPackage) {
    let slot = keys.entry(package.member()).or_insert(*package);
    if package.supersedes(slot) {
        *slot = *package;
    }
}

/// A rotation [`EpochGraph::prepare`] accepted, with its own roster, not yet
/// added. Only `prepare` builds one.
pub(crate) struct Prepared {
    node: Node,
    /// Its void changes within its own causal past: position and reason.
    void_reasons: Vec<(usize, VoidReason)>,
}

impl Prepared {
    /// Whom its envelope must be wrapped to (SPEC.md §5.2).
    pub(crate) fn own_roster(&self) -> &Roster {
        &self.node.own.roster
    }

    /// Positions of its changes that are void within its own causal past
    /// (K1–K5), with the reason each is: void in every resolution, since
    /// that past never changes.
    pub(crate) fn own_void_changes(&self) -> &[(usize, VoidReason)] {
        &self.void_reasons
    }
}

/// Pass 2's verdicts over the rotations of a scope newer than its cut.
/// Most get the verdicts of their own past, cached in their node; only the
/// others are held here ([`EpochGraph::kept_in`] reads both).
#[derive(Default)]
struct Pass {
    /// The rotations judged here, by index: whether each change is kept,
    /// or `None` if void.
    judged: HashMap<usize, Option<Vec<bool>>>,
}

/// A scope (SPEC.md §5): a set of rotations closed under ancestry, given as
/// a *cut*, a rotation of the scope that every rotation of the scope is an
/// ancestor of, is, or descends from, and the rotations that descend from
/// it. Nothing in the scope is concurrent with the cut or its ancestors,
/// so they get the verdicts of the cut's own causal past, in which the
/// cut applies (SPEC.md §5.2), and their registers are the cut's own
/// (`Node::own`): only the rotations above the cut are judged again.
struct Scope {
    cut: usize,
    /// The rotations that descend from the cut, by increasing index.
    above: Vec<usize>,
}

impl Scope {
    /// Whether `index`, newer than the cut, is in the scope.
    fn holds_above(&self, index: usize) -> bool {
        self.above.binary_search(&index).is_ok()
    }
}

/// The last resolution computed, of the first `len` rotations, from which
/// the next one is computed incrementally.
#[derive(Clone, Default)]
struct Cached {
    resolution: Resolution,
    len: usize,
    /// The one before, of fewer rotations: what a refused batch, forgotten
    /// again ([`EpochGraph::forget_newest`]), goes back to.
    previous: Option<Box<Cached>>,
}

/// [`Cached`] behind a lock, so that [`EpochGraph::resolve`] can bring it up
/// to date through `&self`.
struct ResolutionCache(Mutex<Cached>);

impl Clone for ResolutionCache {
    fn clone(&self) -> Self {
        let cached = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ResolutionCache(Mutex::new(cached.clone()))
    }
}

/// Every accepted rotation of one mesh, from its genesis.
#[derive(Clone)]
pub(crate) struct EpochGraph {
    founder: MemberId,
    nodes: Vec<Node>,
    by_hash: HashMap<EventHash, usize>,
    /// For each member, the owners' rotations that remove it or set it to
    /// member (whether or not those changes are kept), by increasing index.
    demoted_by_owner: HashMap<MemberId, Vec<usize>>,
    /// For each member, the rotations it wrote, by increasing index.
    by_author: HashMap<MemberId, Vec<usize>>,
    /// For each length `n` of the graph, at `n - 1`: the newest rotation
    /// of the first `n` that each of them is an ancestor of, is, or
    /// descends from (a cut of the whole graph, the genesis at worst).
    global_cuts: Vec<u32>,
    /// The resolution last computed, brought up to date by
    /// [`Self::resolve`].
    cache: ResolutionCache,
}

impl EpochGraph {
    /// A graph holding the genesis `hash`, which makes the founder (the
    /// package's member) the first owner.
    pub(crate) fn new(hash: EventHash, founder: KeyPackage) -> Self {
        let rotation = Rotation {
            hash,
            author: founder.member(),
            parents: Vec::new(),
            changes: vec![Change::Add {
                package: founder,
                role: Role::Owner,
            }],
        };
        let own = Base::default().advanced(&rotation.changes, &[true]);
        let genesis = Node {
            rotation,
            owners: Arc::new(BTreeSet::from([founder.member()])),
            parents: Vec::new(),
            cut: 0,
            jump: 0,
            depth: 0,
            past_len: 0,
            between: Box::default(),
            own: Arc::new(own),
            own_kept: vec![true],
            settled: true,
        };
        Self {
            founder: founder.member(),
            nodes: vec![genesis],
            by_hash: HashMap::from_iter([(hash, 0)]),
            demoted_by_owner: HashMap::default(),
            by_author: HashMap::from_iter([(founder.member(), vec![0])]),
            global_cuts: vec![0],
            // Nothing resolved yet: the first resolve takes the genesis
            // like any rotation naming every tip (of none).
            cache: ResolutionCache(Mutex::new(Cached::default())),
        }
    }

    pub(crate) fn genesis(&self) -> EventHash {
        self.nodes
            .first()
            .map_or(EventHash::ZERO, |node| node.rotation.hash)
    }

    pub(crate) fn founder(&self) -> MemberId {
        self.founder
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn contains(&self, hash: EventHash) -> bool {
        self.by_hash.contains_key(&hash)
    }

    /// The roster a rotation's envelope is wrapped to (SPEC.md §5.2).
    pub(crate) fn own_roster(&self, hash: EventHash) -> Option<&Roster> {
        let index = *self.by_hash.get(&hash)?;
        self.nodes.get(index).map(|node| &node.own.roster)
    }

    #[cfg(test)]
    /// Whether a rotation's author is an owner in its every base, so that the
    /// rotation applies whatever else is concurrent with it.
    pub(crate) fn author_is_owner(&self, hash: EventHash) -> bool {
        self.by_hash
            .get(&hash)
            .and_then(|&index| self.nodes.get(index))
            .is_some_and(Node::is_owner_rotation)
    }

    /// Whether `ancestor` is a strict ancestor of `descendant`.
    pub(crate) fn is_ancestor(&self, ancestor: EventHash, descendant: EventHash) -> bool {
        match (self.by_hash.get(&ancestor), self.by_hash.get(&descendant)) {
            (Some(&a), Some(&d)) => self.index_is_ancestor(a, d),
            _ => false,
        }
    }

    /// The accepted rotations nothing accepted descends from, in hash order.
    #[cfg(test)]
    pub(crate) fn frontier(&self) -> Vec<EventHash> {
        self.frontier_without(&crate::left_out::LeftOut::default())
    }

    /// [`Self::frontier`] of the rotations not left out (SPEC.md §6.4).
    /// Every ancestor of a rotation not left out is not left out either. A
    /// rotation made here names [`Self::parents_for`] instead.
    #[cfg(test)]
    pub(crate) fn frontier_without(&self, left_out: &crate::left_out::LeftOut) -> Vec<EventHash> {
        let candidates: Vec<usize> = (0..self.nodes.len())
            .filter(|&index| !left_out.contains(self.hash_of(index)))
            .collect();
        let mut frontier: Vec<EventHash> = self
            .frontier_of(candidates)
            .into_iter()
            .map(|index| self.hash_of(index))
            .collect();
        frontier.sort();
        frontier
    }

    /// The parents a rotation by `author` names (SPEC.md §5.1): the
    /// frontier of the applied tips of `resolution`, of the author's own
    /// rotations not left out and of `acknowledged` (the epochs its feed
    /// acknowledged where it writes next, §4.3), every tip covered, in hash
    /// order. Another's void rotation is named only if the author's own
    /// feed acknowledged it: it carries no authority, and a demoted admin
    /// could otherwise crowd the owner's own rotations out of the sixteen
    /// parents with backdated ones (issue 23); but a tip it descends from,
    /// named without it, would go backwards (F4) and be refused.
    ///
    /// Naming every tip gives the rotation's base `R*` exactly (SPEC.md
    /// §5.5), so its secret goes to `R*` and nobody else. With more than
    /// [`MAX_PARENTS`] tips this is a merge step ([`Self::merge_step`]),
    /// and `None` if no step is safe.
    pub(crate) fn parents_for(
        &self,
        author: MemberId,
        acknowledged: &[EventHash],
        resolution: &Resolution,
        left_out: &crate::left_out::LeftOut,
    ) -> Option<Parents> {
        let (mut needed, mut optional) =
            self.parent_frontier(author, acknowledged, resolution, left_out);
        let step = needed.len() > MAX_PARENTS;
        if step {
            needed = self.merge_step(&needed, &resolution.roster)?;
        } else {
            let room = MAX_PARENTS - needed.len();
            optional.sort_by_key(|&index| self.hash_of(index));
            needed.extend(optional.into_iter().take(room));
        }
        let mut hashes: Vec<EventHash> = needed
            .into_iter()
            .map(|index| self.hash_of(index))
            .collect();
        hashes.sort();
        Some(Parents { hashes, step })
    }

    /// Whether a rotation by `author` would be a merge step: more of its
    /// parents cover a tip than one rotation names ([`Self::parents_for`]).
    pub(crate) fn needs_merge_step(
        &self,
        author: MemberId,
        acknowledged: &[EventHash],
        resolution: &Resolution,
        left_out: &crate::left_out::LeftOut,
    ) -> bool {
        let (needed, _) = self.parent_frontier(author, acknowledged, resolution, left_out);
        needed.len() > MAX_PARENTS
    }

    /// The frontier of the candidate parents of [`Self::parents_for`], by
    /// index: those that are or descend from a tip, then the rest.
    fn parent_frontier(
        &self,
        author: MemberId,
        acknowledged: &[EventHash],
        resolution: &Resolution,
        left_out: &crate::left_out::LeftOut,
    ) -> (Vec<usize>, Vec<usize>) {
        let tips: Vec<usize> = resolution
            .tips
            .iter()
            .filter_map(|hash| self.by_hash.get(hash).copied())
            .collect();
        // Its own rotations older than a cut of the whole graph are
        // ancestors of that cut, which is applied (SPEC.md §5.2, nothing is
        // concurrent with it) and so a tip or an ancestor of one: covered
        // by a tip, they need no look.
        let cut = self.global_cut();
        let floor = if tips.iter().any(|&tip| tip >= cut) {
            cut
        } else {
            0
        };
        let own = self
            .by_author
            .get(&author)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let own = own
            .get(own.partition_point(|&index| index < floor)..)
            .unwrap_or_default()
            .iter()
            .copied()
            .filter(|&index| !left_out.contains(self.hash_of(index)));
        // What the feed acknowledged, even if void or left out now: F4
        // refuses a parent that is an ancestor of one of them.
        let acknowledged = acknowledged
            .iter()
            .filter_map(|hash| self.by_hash.get(hash).copied());
        let candidates: BTreeSet<usize> = tips
            .iter()
            .copied()
            .chain(own)
            .chain(acknowledged)
            .collect();
        // The frontier of the candidates: those none of the others
        // descends from. Each tip is one of them or an ancestor of one.
        self.frontier_of(candidates.into_iter().collect())
            .into_iter()
            .partition(|&index| {
                tips.iter()
                    .any(|&tip| tip == index || self.index_is_ancestor(tip, index))
            })
    }

    /// Those of `candidates` (indices) that none of the others descends
    /// from, by decreasing index.
    fn frontier_of(&self, mut candidates: Vec<usize>) -> Vec<usize> {
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        candidates.dedup();
        let mut frontier: Vec<usize> = Vec::new();
        // Newest first: a candidate below one already passed over is below
        // one kept, so only those kept need a look.
        for candidate in candidates {
            if !frontier
                .iter()
                .any(|&kept| self.index_is_ancestor(candidate, kept))
            {
                frontier.push(candidate);
            }
        }
        frontier
    }

    /// With more tips than one rotation names: as many of `tips` (up to
    /// [`MAX_PARENTS`]) as can be merged so that the resolution of their
    /// causal past holds no one `roster` (`R*`) lacks, owners' rotations
    /// first, then in hash order; `None` if fewer than two can. Each step
    /// leaves fewer tips, so steps end in a merge of all (SPEC.md §5.1).
    fn merge_step(&self, tips: &[usize], roster: &Roster) -> Option<Vec<usize>> {
        let mut order = tips.to_vec();
        order.sort_by_key(|&index| {
            let node = self.nodes.get(index);
            (
                !node.is_some_and(Node::is_owner_rotation),
                self.hash_of(index),
            )
        });
        let mut chosen: Vec<usize> = Vec::new();
        loop {
            let mut grew = false;
            for &tip in &order {
                if chosen.len() == MAX_PARENTS {
                    break;
                }
                if chosen.contains(&tip) {
                    continue;
                }
                chosen.push(tip);
                if self.past_roster(&chosen).ids_within(roster) {
                    grew = true;
                } else {
                    chosen.pop();
                }
            }
            if !grew {
                break;
            }
        }
        (chosen.len() >= 2).then_some(chosen)
    }

    /// The roster of the resolution of the causal past of `rotations`
    /// (SPEC.md §5.4): the base of a rotation naming them.
    pub(crate) fn past_roster(&self, rotations: &[usize]) -> Roster {
        match rotations {
            [] => Roster::default(),
            // The causal past of one rotation: its own registers.
            [one] => self
                .nodes
                .get(*one)
                .map(|node| node.own.roster.clone())
                .unwrap_or_default(),
            _ => {
                let scope = self.scope_of(rotations);
                let pass = self.pass(&scope);
                self.register_above(&scope, &pass, &scope.above).roster
            }
        }
    }

    /// The causal past of `rotations` as a scope: its cut is a cut of
    /// every one's causal past.
    fn scope_of(&self, rotations: &[usize]) -> Scope {
        let cut = self.meet(rotations);
        Scope {
            cut,
            above: self.above(cut, rotations),
        }
    }

    /// [`Self::past_roster`] of rotations by hash; those not held are
    /// skipped.
    pub(crate) fn past_roster_of(&self, rotations: &[EventHash]) -> Roster {
        let indices: Vec<usize> = rotations
            .iter()
            .filter_map(|hash| self.by_hash.get(hash).copied())
            .collect();
        self.past_roster(&indices)
    }

    #[cfg(test)]
    /// Accepts a rotation whose parents are all accepted (SPEC.md §5.2):
    /// [`Self::prepare`], then [`Self::commit`].
    pub(crate) fn insert(&mut self, rotation: Rotation) -> Result<Inserted, GraphError> {
        match self.prepare(rotation)? {
            Some(prepared) => Ok(self.commit(prepared)),
            None => Ok(Inserted::Known),
        }
    }

    /// Checks a rotation against its causal past and computes its own
    /// roster, leaving the graph as it was; `None` if the graph holds it.
    /// Acceptance looks at the causal past alone, so what a graph accepts
    /// never depends on arrival order, and only grows.
    pub(crate) fn prepare(&mut self, rotation: Rotation) -> Result<Option<Prepared>, GraphError> {
        if self.by_hash.contains_key(&rotation.hash) {
            return Ok(None);
        }
        let parents = self.check_parents(&rotation.parents)?;
        check_changes(&rotation.changes)?;

        let owners = self.owners_below(&parents);
        let (cut, between) = match parents.as_slice() {
            [parent] => (*parent, Vec::new()),
            _ => {
                let cut = self.meet(&parents);
                (cut, self.above(cut, &parents))
            }
        };
        let (cut_depth, cut_jump, cut_past) = self
            .nodes
            .get(cut)
            .map_or((0, 0, 0), |node| (node.depth, node.jump, node.past_len));
        // Myers' rule: jump as far as the cut's jump does twice when the
        // two jumps are of equal length, else to the cut.
        let (jump_depth, jump_jump) = self.depth_and_jump(cut_jump as usize);
        let (jump_jump_depth, _) = self.depth_and_jump(jump_jump as usize);
        let jump = if cut_depth - jump_depth == jump_depth - jump_jump_depth {
            jump_jump
        } else {
            to_u32(cut)
        };
        let mut node = Node {
            rotation,
            owners,
            cut: to_u32(cut),
            jump,
            depth: cut_depth + 1,
            past_len: cut_past + 1 + to_u32(between.len()),
            between: between.into_iter().map(to_u32).collect(),
            parents,
            own: Arc::default(),
            own_kept: Vec::new(),
            settled: false,
        };
        let single_parent = match node.parents.as_slice() {
            [parent] => self.nodes.get(*parent),
            _ => None,
        };
        let (own, own_kept, base) = match single_parent {
            // One parent: the base is the parent's own registers, since
            // nothing in the parent's past is concurrent with the new
            // rotation. No pass over the past is needed.
            Some(parent) => {
                let base = &parent.own;
                let author_role = if node.is_owner_rotation() {
                    Some(Role::Owner)
                } else {
                    base.roster.role_of(node.rotation.author)
                };
                let Some(author_role) = author_role.filter(|role| *role >= Role::Admin) else {
                    return Err(GraphError::AuthorNotAdmin(node.rotation.author));
                };
                let kept: Vec<bool> = node
                    .rotation
                    .changes
                    .iter()
                    .map(|change| keeps(&node, change, author_role, base))
                    .collect();
                // The base is needed again only to say why a change is void.
                let void_base = kept.contains(&false).then(|| (**base).clone());
                // A rotation that keeps no change (a refresh) shares its
                // parent's registers.
                let own = if kept.contains(&true) {
                    Arc::new((**base).clone().advanced(&node.rotation.changes, &kept))
                } else {
                    Arc::clone(base)
                };
                (own, kept, void_base)
            }
            // A merge: resolve its causal past as a scope. The pass reads
            // nodes by index, so the candidate stands at the end for the
            // pass and leaves before anything else can see it.
            None => {
                let index = self.nodes.len();
                let mut above: Vec<usize> = node.between.iter().map(|&i| i as usize).collect();
                above.push(index);
                let scope = Scope {
                    cut: node.cut as usize,
                    above,
                };
                self.nodes.push(node);
                let pass = self.pass(&scope);
                let own = Arc::new(self.register_above(&scope, &pass, &scope.above));
                let Some(popped) = self.nodes.pop() else {
                    return Err(GraphError::ParentCount(0));
                };
                node = popped;
                // Within its own causal past nothing is concurrent with the
                // new rotation, so it applies exactly when its author is an
                // admin or owner in its base: the acceptance rule.
                let Some(kept) = self.kept_in(&pass, index).map(<[bool]>::to_vec) else {
                    return Err(GraphError::AuthorNotAdmin(node.rotation.author));
                };
                // The base is needed again only to say why a change is void.
                let base = kept.contains(&false).then(|| {
                    let below = self.above(scope.cut, &node.parents);
                    self.register_above(&scope, &pass, &below)
                });
                (own, kept, base)
            }
        };
        // Why each void change is void, against the base it was judged on.
        let void_reasons = match &base {
            Some(base) => {
                let author_role = if node.is_owner_rotation() {
                    Role::Owner
                } else {
                    base.roster
                        .role_of(node.rotation.author)
                        .unwrap_or(Role::Member)
                };
                node.rotation
                    .changes
                    .iter()
                    .zip(&own_kept)
                    .enumerate()
                    .filter(|(_, (_, kept))| !**kept)
                    .map(|(position, (change, _))| {
                        let reason = judge(&node, change, author_role, base)
                            .err()
                            .unwrap_or(VoidReason::AdminEntry);
                        (position, reason)
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        // The author's own entry cannot be changed by its own rotation
        // (SPEC.md §5.3), and it was an admin or owner in the base, so
        // it is in its own roster.
        debug_assert!(own.roster.get(node.rotation.author).is_some());
        if own.roster.len() > limits::MAX_ROSTER {
            return Err(GraphError::RosterTooLarge(own.roster.len()));
        }
        node.own = own;
        node.own_kept = own_kept;
        node.settled = true;
        Ok(Some(Prepared { node, void_reasons }))
    }

    /// Adds a prepared rotation. Valid whatever was added since it was
    /// prepared: its ancestry, owners and own roster depend on its causal
    /// past alone, and indices only grow.
    pub(crate) fn commit(&mut self, prepared: Prepared) -> Inserted {
        let node = prepared.node;
        if self.by_hash.contains_key(&node.rotation.hash) {
            return Inserted::Known;
        }
        let index = self.nodes.len();
        self.by_hash.insert(node.rotation.hash, index);
        if node.is_owner_rotation() {
            for change in &node.rotation.changes {
                if let Change::Remove { member }
                | Change::SetRole {
                    member,
                    role: Role::Member,
                } = change
                {
                    self.demoted_by_owner
                        .entry(*member)
                        .or_default()
                        .push(index);
                }
            }
        }
        self.by_author
            .entry(node.rotation.author)
            .or_default()
            .push(index);
        // A rotation that descends from every other is the new cut of the
        // whole graph; otherwise the newest cut that it descends from.
        let past_len = node.past_len as usize;
        self.nodes.push(node);
        let cut = if past_len == index {
            index
        } else {
            self.chain_until(self.global_cut(), |cut| self.index_is_ancestor(cut, index))
        };
        self.global_cuts.push(to_u32(cut));
        Inserted::New
    }

    /// Forgets the newest rotation, `hash`, as if it had never been
    /// committed; anything but the newest is left alone.
    pub(crate) fn forget_newest(&mut self, hash: EventHash) {
        let index = self.nodes.len().wrapping_sub(1);
        if self.by_hash.get(&hash) != Some(&index) {
            return;
        }
        self.by_hash.remove(&hash);
        if let Some(node) = self.nodes.pop()
            && let Some(own) = self.by_author.get_mut(&node.rotation.author)
        {
            own.retain(|&rotation| rotation != index);
        }
        self.global_cuts.pop();
        self.demoted_by_owner.retain(|_, rotations| {
            rotations.retain(|&rotation| rotation != index);
            !rotations.is_empty()
        });
        // A resolution that saw the forgotten rotation is of another set:
        // the next one starts again from the one before, if it did not see
        // it, else from nothing.
        let cache = self.cache.0.get_mut();
        let cache = cache.unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len > index {
            *cache = match cache.previous.take() {
                Some(previous) if previous.len <= index => *previous,
                _ => Cached::default(),
            };
        }
    }

    fn check_parents(&self, parents: &[EventHash]) -> Result<Vec<usize>, GraphError> {
        if parents.is_empty() || parents.len() > MAX_PARENTS {
            return Err(GraphError::ParentCount(parents.len()));
        }
        for (position, pair) in parents.windows(2).enumerate() {
            if let [before, after] = pair
                && before >= after
            {
                return Err(GraphError::ParentsUnsorted(position + 1));
            }
        }
        let indices = parents
            .iter()
            .map(|hash| {
                self.by_hash
                    .get(hash)
                    .copied()
                    .ok_or(GraphError::UnknownParent(*hash))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for &a in &indices {
            for &d in &indices {
                if self.index_is_ancestor(a, d) {
                    return Err(GraphError::ParentsNotFrontier {
                        ancestor: self.hash_of(a),
                        descendant: self.hash_of(d),
                    });
                }
            }
        }
        Ok(indices)
    }

    /// Resolves the whole graph (SPEC.md §5.3–§5.5).
    ///
    /// Incrementally: from the resolution last computed, of the rotations
    /// then held, each newer rotation in turn. One that names every tip
    /// (or descends from each) changes no verdict and is the only tip
    /// afterwards, with `R*` its own roster ([`Self::extend`]); at the
    /// first that does not, the rotations newer than a cut of the whole
    /// graph older than it are judged again ([`Self::resolve_above`]).
    /// Either way the answer is the resolution of the set, as a resolution
    /// from nothing gives it (checked against one in every test build).
    pub(crate) fn resolve(&self) -> Resolution {
        let mut cache = self
            .cache
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len < self.nodes.len() {
            // Kept (cheaply: the statuses are shared) for a batch undone.
            let mut previous = cache.clone();
            previous.previous = None;
            cache.previous = Some(Box::new(previous));
        }
        let Cached {
            resolution, len, ..
        } = &mut *cache;
        let mut next = *len;
        let mut newest_extended = None;
        while let Some(node) = self.nodes.get(next) {
            if !self.names_every_tip(node, &resolution.tips) {
                break;
            }
            self.extend(resolution, node);
            newest_extended = Some(node);
            next += 1;
        }
        // `R*` is the own roster of the newest rotation taken so, copied
        // once however many there were.
        if let Some(node) = newest_extended {
            resolution.roster = node.own.roster.clone();
        }
        if next < self.nodes.len() {
            // Every rotation older than `next` is resolved: a cut of the
            // whole graph older than that keeps its verdicts, and those of
            // its ancestors, whatever came after.
            let cut = self.chain_until(self.global_cut(), |cut| cut < next);
            let statuses = std::mem::take(&mut resolution.statuses);
            *resolution = self.resolve_above(cut, statuses, next);
        }
        *len = self.nodes.len();
        let resolution = resolution.clone();
        drop(cache);
        #[cfg(test)]
        debug_assert_eq!(
            resolution,
            self.resolve_from_scratch(),
            "the incremental resolution differs from the full one"
        );
        resolution
    }

    /// The resolution of the whole graph computed from nothing: every
    /// rotation but the genesis judged again.
    #[cfg(test)]
    pub(crate) fn resolve_from_scratch(&self) -> Resolution {
        let statuses = Statuses::from_iter([(
            self.genesis(),
            Status::Applied {
                void_changes: Vec::new(),
            },
        )]);
        self.resolve_above(0, statuses, 1)
    }

    /// About how many bytes the graph holds, counted structure by
    /// structure (shared owners and registers once), for a test that bounds
    /// it: ancestry must stay near-linear in the number of rotations.
    #[cfg(test)]
    pub(crate) fn approximate_bytes(&self) -> usize {
        use std::mem::size_of;
        let mut shared: std::collections::HashSet<usize> = std::collections::HashSet::new();
        let mut bytes = self.nodes.capacity() * size_of::<Node>();
        for node in &self.nodes {
            bytes += node.parents.capacity() * size_of::<usize>()
                + node.rotation.parents.capacity() * size_of::<EventHash>()
                + node.rotation.changes.capacity() * size_of::<Change>()
                + node.between.len() * size_of::<u32>()
                + node.own_kept.capacity();
            if shared.insert(Arc::as_ptr(&node.owners) as usize) {
                bytes += node.owners.len() * (size_of::<MemberId>() + 8) + 64;
            }
            if shared.insert(Arc::as_ptr(&node.own) as usize) {
                let entry = size_of::<MemberId>() + size_of::<RosterEntry>() + 16;
                bytes += node.own.roster.len() * entry
                    + node.own.admin_entries.len() * (size_of::<MemberId>() + 16)
                    + node.own.keys.len() * (size_of::<MemberId>() + size_of::<KeyPackage>() + 16)
                    + 64;
            }
        }
        bytes += self.by_hash.capacity() * (size_of::<EventHash>() + size_of::<usize>() + 1);
        bytes += self.global_cuts.capacity() * size_of::<u32>();
        bytes += self
            .by_author
            .values()
            .chain(self.demoted_by_owner.values())
            .map(|rotations| rotations.capacity() * size_of::<usize>() + 64)
            .sum::<usize>();
        bytes
    }

    /// Whether every tip (by hash) is `node`'s parent or an ancestor of one.
    fn names_every_tip(&self, node: &Node, tips: &[EventHash]) -> bool {
        tips.iter().all(|tip| {
            self.by_hash.get(tip).is_some_and(|&tip| {
                node.parents
                    .iter()
                    .any(|&parent| parent == tip || self.index_is_ancestor(tip, parent))
            })
        })
    }

    /// `resolution` of the rotations older than `node`, made that of those
    /// and `node`, which names every tip or a descendant of each, leaving
    /// `R*` to the caller. Every applied rotation is then in its causal
    /// past, and so is every owner's rotation (A1), so that nothing it
    /// does not descend from can void it or be voided by it: void
    /// rotations stay void (an owner's removal of their author voids them
    /// no further, and their descendants outside its past are void too, as
    /// no applied rotation descends from them). Its base is `R*` and its
    /// verdict the one of its own past (SPEC.md §5.5): applied, keeping what
    /// it kept there. It descends from every applied rotation, so it is the
    /// only tip, and `R*` is its own roster: it is current.
    fn extend(&self, resolution: &mut Resolution, node: &Node) {
        let hash = node.rotation.hash;
        resolution.statuses.insert(
            hash,
            Status::Applied {
                void_changes: void_positions(&node.own_kept),
            },
        );
        resolution.tips = vec![hash];
        resolution.current = Some(hash);
        resolution.writer = Some(hash);
    }

    /// The resolution of the whole graph, given `statuses` that hold the
    /// verdicts of `cut` and its ancestors, `cut` being a cut of the whole
    /// graph (each rotation is its ancestor, itself or a descendant): only
    /// the rotations newer than it are judged (SPEC.md §5.3), and `R*` is
    /// its own registers with theirs over them (§5.4).
    ///
    /// `statuses` hold those of the first `known` rotations, as resolved
    /// when they were all there were; of those, only the ones judged here
    /// rather than given their own past's verdicts can have changed: a
    /// rotation judged so before still is (no arrival makes a rotation
    /// less concurrent with an owner's demotion, nor a parent's verdict
    /// its own past's again), so one given its own past's verdicts now was
    /// before too.
    fn resolve_above(&self, cut: usize, mut statuses: Statuses, known: usize) -> Resolution {
        let scope = Scope {
            cut,
            above: (cut + 1..self.nodes.len()).collect(),
        };
        let pass = self.pass(&scope);
        let roster = self.register_above(&scope, &pass, &scope.above).roster;
        for &index in &scope.above {
            if index < known && !pass.judged.contains_key(&index) {
                continue;
            }
            let status = match self.kept_in(&pass, index) {
                Some(kept) => Status::Applied {
                    void_changes: void_positions(kept),
                },
                None => Status::Void,
            };
            statuses.insert(self.hash_of(index), status);
        }
        // Which rotations from the cut on have an applied descendant: newest
        // first, an applied rotation or one with an applied descendant
        // gives one to its parents. The cut applies (nothing is concurrent
        // with it), and its ancestors all lie below it.
        let applied = |index: usize| index == cut || self.kept_in(&pass, index).is_some();
        let mut covered = vec![false; self.nodes.len() - cut];
        for index in (cut..self.nodes.len()).rev() {
            if applied(index) || covered.get(index - cut).copied().unwrap_or(false) {
                for &parent in self.parents_of(index) {
                    if let Some(slot) = parent.checked_sub(cut).and_then(|i| covered.get_mut(i)) {
                        *slot = true;
                    }
                }
            }
        }
        let mut tips: Vec<&Node> = (cut..self.nodes.len())
            .filter(|&index| applied(index) && !covered.get(index - cut).copied().unwrap_or(true))
            .filter_map(|index| self.nodes.get(index))
            .collect();
        tips.sort_by_key(|node| node.rotation.hash);
        let current = tips
            .iter()
            .find(|node| node.own.roster == roster)
            .map(|node| node.rotation.hash);
        let writer = current.or_else(|| {
            tips.iter()
                .find(|node| node.own.roster.ids_within(&roster))
                .map(|node| node.rotation.hash)
        });
        Resolution {
            statuses,
            roster,
            tips: tips.iter().map(|node| node.rotation.hash).collect(),
            current,
            writer,
        }
    }

    /// Pass 2 over the rotations of `scope` above its cut: which apply and
    /// which of their changes are kept. Index order is a topological order,
    /// since parents are accepted before children.
    fn pass(&self, scope: &Scope) -> Pass {
        // Rotations whose verdicts here may differ from those of their own
        // past, the ones a concurrent owner demotes and their descendants,
        // are judged here.
        let mut pass = Pass::default();
        for &index in &scope.above {
            let Some(node) = self.nodes.get(index) else {
                continue;
            };
            // A rotation no owner demotes concurrently, none of whose
            // ancestors is judged differently here than in its own past,
            // gets the verdicts of its own past, cached. The cut and its
            // ancestors are judged here as in the cut's own past.
            let demoted = !node.is_owner_rotation() && self.demoted_concurrently(index, scope);
            let differs = demoted
                || !node.settled
                || node
                    .parents
                    .iter()
                    .any(|parent| pass.judged.contains_key(parent));
            if !differs {
                continue;
            }
            let below = self.above(scope.cut, &node.parents);
            let base = self.register_above(scope, &pass, &below);
            let author = node.rotation.author;
            let author_role = if node.is_owner_rotation() {
                Some(Role::Owner)
            } else {
                base.roster.role_of(author)
            };
            let applied =
                node.is_owner_rotation() || (author_role >= Some(Role::Admin) && !demoted);
            let kept = author_role.filter(|_| applied).map(|author_role| {
                node.rotation
                    .changes
                    .iter()
                    .map(|change| keeps(node, change, author_role, &base))
                    .collect()
            });
            pass.judged.insert(index, kept);
        }
        pass
    }

    /// Whether each change of rotation `index`, of the scope of `pass` and
    /// newer than its cut, is kept there; `None` if it is void.
    fn kept_in<'a>(&'a self, pass: &'a Pass, index: usize) -> Option<&'a [bool]> {
        match pass.judged.get(&index) {
            Some(judged) => judged.as_deref(),
            None => self.nodes.get(index).map(|node| node.own_kept.as_slice()),
        }
    }

    /// Whether an owner's rotation in `scope`, concurrent with rotation
    /// `index`, removes its author or sets it to member, whether or not that
    /// change is kept (SPEC.md §5.3, rule A2). Those not newer than the
    /// scope's cut are ancestors of `index`.
    fn demoted_concurrently(&self, index: usize, scope: &Scope) -> bool {
        let Some(node) = self.nodes.get(index) else {
            return false;
        };
        self.demoted_by_owner
            .get(&node.rotation.author)
            .is_some_and(|rotations| {
                rotations
                    .iter()
                    .rev()
                    .take_while(|&&other| other > scope.cut)
                    .any(|&other| {
                        other != index
                            && scope.holds_above(other)
                            && !self.index_is_ancestor(other, index)
                            && !self.index_is_ancestor(index, other)
                    })
            })
    }

    /// The registers (SPEC.md §5.4) over the applied rotations of `pass`
    /// among `rotations` (newer than the scope's cut, closed under
    /// ancestry down to it) and over the cut's causal past. Each of them
    /// descends from the cut, so from every candidate of the cut's past:
    /// where they hold a candidate of a member, the cut's own registers
    /// have no survivor of it left.
    fn register_above(&self, scope: &Scope, pass: &Pass, rotations: &[usize]) -> Base {
        let mut base = self
            .nodes
            .get(scope.cut)
            .map(|cut| (*cut.own).clone())
            .unwrap_or_default();
        // `None` is a removal, so that `min` over candidates gives the
        // weakest value: removed < member < admin.
        let mut candidates: BTreeMap<MemberId, Vec<(usize, Option<Role>)>> = BTreeMap::new();
        let mut new_keys: BTreeSet<MemberId> = BTreeSet::new();
        for &index in rotations {
            let (Some(node), Some(kept)) = (self.nodes.get(index), self.kept_in(pass, index))
            else {
                continue;
            };
            for (change, _) in node
                .rotation
                .changes
                .iter()
                .zip(kept)
                .filter(|(_, kept)| **kept)
            {
                let value = match change {
                    Change::Add { role, .. } | Change::SetRole { role, .. } => Some(Some(*role)),
                    Change::Remove { .. } => Some(None),
                    Change::UpdateKeys { .. } => None,
                };
                if let Some(value) = value {
                    candidates
                        .entry(change.member())
                        .or_default()
                        .push((index, value));
                }
                if let Change::Add { package, .. } | Change::UpdateKeys { package } = change {
                    offer(&mut base.keys, package);
                    new_keys.insert(package.member());
                }
            }
        }
        for (member, values) in candidates {
            // A candidate survives if no other candidate descends from it.
            let surviving: Vec<Option<Role>> = values
                .iter()
                .filter(|(index, _)| {
                    !values
                        .iter()
                        .any(|(other, _)| self.index_is_ancestor(*index, *other))
                })
                .map(|(_, value)| *value)
                .collect();
            if surviving.iter().any(|value| *value >= Some(Role::Admin)) {
                base.admin_entries.insert(member);
            } else {
                base.admin_entries.remove(&member);
            }
            let value = if surviving.contains(&Some(Role::Owner)) {
                Some(Role::Owner)
            } else {
                surviving.iter().copied().min().flatten()
            };
            match (value, base.keys.get(&member)) {
                (Some(role), Some(keys)) => {
                    base.roster
                        .entries
                        .insert(member, RosterEntry { keys: *keys, role });
                }
                _ => {
                    base.roster.entries.remove(&member);
                }
            }
        }
        // A present member's keys are its best package, a later one
        // carried by an update included.
        for member in new_keys {
            if let (Some(entry), Some(keys)) =
                (base.roster.entries.get_mut(&member), base.keys.get(&member))
            {
                entry.keys = *keys;
            }
        }
        base
    }

    /// The rotations newer than `cut` that are among `tops` or their
    /// ancestors, by increasing index. With `cut` a cut of their causal
    /// past, no path from them goes below it without passing through it.
    fn above(&self, cut: usize, tops: &[usize]) -> Vec<usize> {
        let mut seen: BTreeSet<usize> = BTreeSet::new();
        let mut stack: Vec<usize> = tops.iter().copied().filter(|&top| top > cut).collect();
        while let Some(index) = stack.pop() {
            if seen.insert(index) {
                stack.extend(
                    self.parents_of(index)
                        .iter()
                        .copied()
                        .filter(|&parent| parent > cut && !seen.contains(&parent)),
                );
            }
        }
        seen.into_iter().collect()
    }

    /// The newest rotation on the chains of cuts of every one of `starts`
    /// (each chain starting at the rotation itself): a cut of their causal
    /// pasts together, since it is one of each one's.
    fn meet(&self, starts: &[usize]) -> usize {
        let mut fronts = starts.to_vec();
        loop {
            let (Some(&low), Some(&high)) = (fronts.iter().min(), fronts.iter().max()) else {
                return 0;
            };
            if low == high {
                return low;
            }
            // The meeting point is at most `low`: bring every chain down
            // to its first rotation not newer.
            for front in &mut fronts {
                *front = self.chain_until(*front, |index| index <= low);
            }
        }
    }

    /// The first rotation on the chain of cuts from `start` (itself
    /// included) that `holds`, which must hold all the way down once it
    /// holds; the genesis at worst. Skips along jump pointers while they
    /// land where it does not hold yet: O(log n) steps.
    fn chain_until(&self, start: usize, holds: impl Fn(usize) -> bool) -> usize {
        let mut index = start;
        while index > 0 && !holds(index) {
            let Some(node) = self.nodes.get(index) else {
                return 0;
            };
            let jump = node.jump as usize;
            index = if jump > 0 && !holds(jump) {
                jump
            } else {
                node.cut as usize
            };
        }
        index
    }

    /// Whether `ancestor` is a strict ancestor of `descendant`, by index.
    /// On the chain of cuts of `descendant`, the last rotation newer than
    /// `ancestor` has its cut at or below it: `ancestor` is that cut, one
    /// of the rotations between, or no ancestor (SPEC.md §5: every ancestor
    /// is comparable with each cut).
    fn index_is_ancestor(&self, ancestor: usize, descendant: usize) -> bool {
        if ancestor >= descendant {
            return false;
        }
        let mut index = descendant;
        loop {
            let Some(node) = self.nodes.get(index) else {
                return false;
            };
            let cut = node.cut as usize;
            if cut <= ancestor {
                return cut == ancestor || node.between.binary_search(&to_u32(ancestor)).is_ok();
            }
            let jump = node.jump as usize;
            index = if jump > ancestor { jump } else { cut };
        }
    }

    /// The newest cut of the whole graph: every rotation is its ancestor,
    /// itself or a descendant.
    fn global_cut(&self) -> usize {
        self.global_cuts.last().map_or(0, |&cut| cut as usize)
    }

    fn parents_of(&self, index: usize) -> &[usize] {
        self.nodes
            .get(index)
            .map_or(&[][..], |node| node.parents.as_slice())
    }

    fn depth_and_jump(&self, index: usize) -> (u32, u32) {
        self.nodes
            .get(index)
            .map_or((0, 0), |node| (node.depth, node.jump))
    }

    /// The owners in every base of a rotation with these parents (SPEC.md
    /// §5.3, pass 1): a parent's own set, shared, when nothing adds to it.
    fn owners_below(&self, parents: &[usize]) -> Arc<BTreeSet<MemberId>> {
        let mut owners = BTreeSet::from([self.founder]);
        for node in parents.iter().filter_map(|&parent| self.nodes.get(parent)) {
            owners.extend(node.owners.iter().copied());
            if node.is_owner_rotation() {
                owners.extend(node.owner_grants());
            }
        }
        parents
            .iter()
            .filter_map(|&parent| self.nodes.get(parent))
            .find(|node| *node.owners == owners)
            .map_or_else(|| Arc::new(owners), |node| Arc::clone(&node.owners))
    }

    fn hash_of(&self, index: usize) -> EventHash {
        self.nodes
            .get(index)
            .map_or(EventHash::ZERO, |node| node.rotation.hash)
    }
}

/// The positions of the changes not kept.
fn void_positions(kept: &[bool]) -> Vec<usize> {
    kept.iter()
        .enumerate()
        .filter_map(|(position, kept)| (!kept).then_some(position))
        .collect()
}

/// An index as the graph stores it: a graph never holds 2^32 rotations
/// (each is an event of a file).
fn to_u32(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

/// Changes in strictly increasing member order; owners made only by
/// additions (SPEC.md §5.1).
fn check_changes(changes: &[Change]) -> Result<(), GraphError> {
    for (position, pair) in changes.windows(2).enumerate() {
        if let [before, after] = pair
            && before.member() >= after.member()
        {
            return Err(GraphError::ChangesUnsorted(position + 1));
        }
    }
    match changes.iter().position(|change| {
        matches!(
            change,
            Change::SetRole {
                role: Role::Owner,
                ..
            }
        )
    }) {
        Some(position) => Err(GraphError::OwnerWithoutPackage(position)),
        None => Ok(()),
    }
}

/// Whether an applied rotation's change is kept against its base
/// (SPEC.md §5.3, rules K1–K5).
fn keeps(node: &Node, change: &Change, author_role: Role, base: &Base) -> bool {
    judge(node, change, author_role, base).is_ok()
}

/// [`keeps`], with the reason a void change is void: the first of K1–K5
/// that matches it.
fn judge(node: &Node, change: &Change, author_role: Role, base: &Base) -> Result<(), VoidReason> {
    let author = node.rotation.author;
    let member = change.member();
    let present = base.roster.get(member);
    let owner_or_not_admin_entry =
        author_role == Role::Owner || !base.admin_entries.contains(&member);
    let kept_unless = |void: Option<VoidReason>| void.map_or(Ok(()), Err);
    kept_unless(match change {
        // The member signed the package, so whoever carries it changes
        // nothing the member did not choose.
        Change::UpdateKeys { package } => (!present
            .is_some_and(|entry| package.supersedes(&entry.keys)))
        .then_some(VoidReason::KeysNotNewer),
        _ if member == author => Some(VoidReason::OwnEntry),
        // Owner grants are judged on ownership alone (see the module docs).
        Change::Add {
            role: Role::Owner, ..
        } => {
            if author_role != Role::Owner {
                Some(VoidReason::OnlyOwnersMakeOwners)
            } else {
                node.owners
                    .contains(&member)
                    .then_some(VoidReason::AlreadyOwner)
            }
        }
        _ if node.owners.contains(&member) => Some(VoidReason::Owner),
        // An entry with a surviving promotion is an admin's even while a
        // concurrent owner's removal leaves it absent: an admin may not
        // re-add it and so undo the owner.
        Change::Add { .. } if present.is_some() => Some(VoidReason::AlreadyPresent),
        Change::Remove { .. } | Change::SetRole { .. } if present.is_none() => {
            Some(VoidReason::NotPresent)
        }
        Change::SetRole { role, .. } if present.is_some_and(|entry| entry.role == *role) => {
            Some(VoidReason::SameRole)
        }
        Change::Add { .. } | Change::Remove { .. } => {
            (!owner_or_not_admin_entry).then_some(VoidReason::AdminEntry)
        }
        Change::SetRole { role, .. } => (author_role != Role::Owner
            && (*role != Role::Admin || base.admin_entries.contains(&member)))
        .then_some(VoidReason::AdminEntry),
    })
}
