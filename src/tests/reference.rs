//! An independent reference model of the epoch graph's resolution
//! (SPEC.md §5), for a differential property test against `graph.rs`.
//!
//! Deliberately naive and shares no logic with `graph.rs`, only its input and
//! output types: the accepted rotations are a list beside the genesis,
//! ancestry is a walk over parents, `Owners` and the verdicts are memoized
//! recursions over a rotation's ancestors that follow the spec's definitions
//! word for word, and registers compare every pair of candidates.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::properties::{op, rotation};

use super::traps::{F, History, add, build, genesis, hash, id, package, remove, set_role};
use crate::graph::{Change, EpochGraph, KeyPackage, Role, Roster as GraphRoster, Rotation, Status};
use crate::ids::{EventHash, MemberId};

/// §5.1, restated here rather than imported.
const MAX_PARENTS: usize = 16;

/// A roster as the reference sees it: each present member's keys and role.
type Roster = BTreeMap<MemberId, (KeyPackage, Role)>;

/// A pass-2 verdict: `None` if void, else whether each change is kept.
type Verdict = Option<Vec<bool>>;

/// The check of §5.2 that refused a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// E1
    ParentCount,
    /// E2
    ParentsUnsorted,
    /// E3
    UnknownParent,
    /// E4
    ParentsNotFrontier,
    /// E5
    ChangesUnsorted,
    /// E6
    OwnerWithoutPackage,
    /// E7
    AuthorNotAdmin,
}

/// A register value (§5.4), weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Value {
    Removed,
    Member,
    Admin,
    Owner,
}

fn value_of(role: Role) -> Value {
    match role {
        Role::Member => Value::Member,
        Role::Admin => Value::Admin,
        Role::Owner => Value::Owner,
    }
}

/// §5.1: package `p` beats `q` (two packages of one member).
fn beats(p: &KeyPackage, q: &KeyPackage) -> bool {
    let bytes = |k: &KeyPackage| {
        let mut b = k.keys().signing.as_bytes().to_vec();
        b.extend_from_slice(k.keys().dh.as_bytes());
        b
    };
    p.counter() > q.counter() || (p.counter() == q.counter() && bytes(p) < bytes(q))
}

/// The members `r`'s owner grants name, kept or not.
fn owner_grants(r: &Rotation) -> Vec<MemberId> {
    let mut grants = Vec::new();
    for change in &r.changes {
        if let Change::Add {
            package,
            role: Role::Owner,
        } = change
        {
            grants.push(package.member());
        }
    }
    grants
}

/// Whether `r` contains a `Remove` of `member` or a `SetRole` of it to member.
fn fires(r: &Rotation, member: MemberId) -> bool {
    r.changes.iter().any(|change| match change {
        Change::Remove { member: m } => *m == member,
        Change::SetRole { member: m, role } => *m == member && *role == Role::Member,
        _ => false,
    })
}

/// The registers over a set of applied rotations (§5.4).
#[derive(Default)]
struct Registers {
    roster: Roster,
    admin_entries: BTreeSet<MemberId>,
}

/// Whether change `change` of an applied rotation by `author` is kept (K1-K5,
/// K5a as amended).
fn keeps(
    change: &Change,
    author: MemberId,
    rho_owner: bool,
    owners: &BTreeSet<MemberId>,
    base: &Registers,
) -> bool {
    let m = change.member();
    let entry = base.roster.get(&m);
    let admin_entry = base.admin_entries.contains(&m);
    if let Change::UpdateKeys { package } = change {
        return entry.is_some_and(|(keys, _)| beats(package, keys)); // K1
    }
    if m == author {
        return false; // K2
    }
    if let Change::Add {
        role: Role::Owner, ..
    } = change
    {
        return rho_owner && !owners.contains(&m); // K3
    }
    if owners.contains(&m) {
        return false; // K4
    }
    match change {
        Change::Add { .. } => entry.is_none() && (rho_owner || !admin_entry),
        Change::Remove { .. } => entry.is_some() && (rho_owner || !admin_entry),
        Change::SetRole { role, .. } => {
            entry.is_some_and(|(_, current)| current != role)
                && (rho_owner || (*role == Role::Admin && !admin_entry))
        }
        Change::UpdateKeys { .. } => false, // judged by K1 above
    }
}

/// The reference graph: the genesis and the accepted rotations, in arrival order.
struct Reference {
    founder: MemberId,
    genesis: Rotation,
    accepted: Vec<Rotation>,
    /// `past(R)` of every accepted rotation, walked once at acceptance.
    pasts: BTreeMap<EventHash, BTreeSet<EventHash>>,
}

/// The reference's resolution of the whole graph (§5.5).
#[derive(Debug)]
struct ReferenceResolution {
    statuses: BTreeMap<EventHash, Status>,
    roster: Roster,
    tips: Vec<EventHash>,
    current: Option<EventHash>,
    writer: Option<EventHash>,
}

impl Reference {
    fn new(hash: EventHash, founder: KeyPackage) -> Self {
        let genesis = Rotation {
            hash,
            author: founder.member(),
            parents: Vec::new(),
            changes: vec![Change::Add {
                package: founder,
                role: Role::Owner,
            }],
        };
        Self {
            founder: founder.member(),
            genesis,
            accepted: Vec::new(),
            pasts: BTreeMap::from([(hash, BTreeSet::new())]),
        }
    }

    fn rotations(&self) -> impl Iterator<Item = &Rotation> {
        std::iter::once(&self.genesis).chain(self.accepted.iter())
    }

    fn get(&self, h: EventHash) -> Option<&Rotation> {
        self.rotations().find(|r| r.hash == h)
    }

    fn past(&self, h: EventHash) -> BTreeSet<EventHash> {
        self.pasts.get(&h).cloned().unwrap_or_default()
    }

    /// Every rotation reached from `parents` by following parents.
    fn walk(&self, parents: &[EventHash]) -> BTreeSet<EventHash> {
        let mut seen = BTreeSet::new();
        let mut stack = parents.to_vec();
        while let Some(h) = stack.pop() {
            if seen.insert(h)
                && let Some(r) = self.get(h)
            {
                stack.extend(r.parents.iter().copied());
            }
        }
        seen
    }

    fn is_ancestor(&self, a: EventHash, d: EventHash) -> bool {
        self.pasts.get(&d).is_some_and(|past| past.contains(&a))
    }

    /// §5.2.
    fn insert(&mut self, r: Rotation) -> Result<(), Refusal> {
        if self.get(r.hash).is_some() {
            return Ok(());
        }
        if r.parents.is_empty() || r.parents.len() > MAX_PARENTS {
            return Err(Refusal::ParentCount);
        }
        if r.parents.windows(2).any(|w| matches!(w, [x, y] if x >= y)) {
            return Err(Refusal::ParentsUnsorted);
        }
        if r.parents.iter().any(|p| self.get(*p).is_none()) {
            return Err(Refusal::UnknownParent);
        }
        for a in &r.parents {
            if r.parents.iter().any(|d| self.is_ancestor(*a, *d)) {
                return Err(Refusal::ParentsNotFrontier);
            }
        }
        if r.changes
            .windows(2)
            .any(|w| matches!(w, [x, y] if x.member() >= y.member()))
        {
            return Err(Refusal::ChangesUnsorted);
        }
        if r.changes.iter().any(|c| {
            matches!(
                c,
                Change::SetRole {
                    role: Role::Owner,
                    ..
                }
            )
        }) {
            return Err(Refusal::OwnerWithoutPackage);
        }
        let hash = r.hash;
        let past = self.walk(&r.parents);
        let mut scope = past.clone();
        scope.insert(hash);
        self.pasts.insert(hash, past);
        self.accepted.push(r);
        if Resolver::new(self, scope).verdict(hash).is_none() {
            self.accepted.pop();
            self.pasts.remove(&hash);
            return Err(Refusal::AuthorNotAdmin);
        }
        Ok(())
    }

    /// The accepted rotations no accepted rotation descends from, in hash order.
    fn frontier(&self) -> Vec<EventHash> {
        let all: BTreeSet<EventHash> = self.rotations().map(|r| r.hash).collect();
        all.iter()
            .copied()
            .filter(|a| !all.iter().any(|d| self.is_ancestor(*a, *d)))
            .collect()
    }

    /// §5.1: the parents an honest rotation by `author` names, when there
    /// is room: the rotations of the tips and the author's own that no
    /// other of them descends from, every tip before any other, then by
    /// hash. `None` past `MAX_PARENTS` tips (a merge step, not modelled).
    /// (Nothing is left out in these histories.)
    fn parents_for(&self, author: MemberId) -> Option<Vec<EventHash>> {
        let tips = self.resolve().tips;
        let candidates: BTreeSet<EventHash> = tips
            .iter()
            .copied()
            .chain(
                self.rotations()
                    .filter(|r| r.author == author)
                    .map(|r| r.hash),
            )
            .collect();
        let maximal: Vec<EventHash> = candidates
            .iter()
            .copied()
            .filter(|a| !candidates.iter().any(|d| self.is_ancestor(*a, *d)))
            .collect();
        let covers_a_tip = |h: &EventHash| tips.iter().any(|t| t == h || self.is_ancestor(*t, *h));
        let (mut needed, rest): (Vec<_>, Vec<_>) = maximal.into_iter().partition(covers_a_tip);
        if needed.len() > MAX_PARENTS {
            return None;
        }
        let room = MAX_PARENTS - needed.len();
        needed.extend(rest.into_iter().take(room));
        needed.sort();
        Some(needed)
    }

    /// §5.2: the roster of the resolution of `h`'s causal past alone.
    fn own_roster(&self, h: EventHash) -> Option<Roster> {
        self.get(h)?;
        let mut scope = self.past(h);
        scope.insert(h);
        let mut resolver = Resolver::new(self, scope.clone());
        Some(resolver.registers_of(scope).roster)
    }

    /// §5.5.
    fn resolve(&self) -> ReferenceResolution {
        let all: BTreeSet<EventHash> = self.rotations().map(|r| r.hash).collect();
        let mut resolver = Resolver::new(self, all.clone());
        let mut statuses = BTreeMap::new();
        let mut applied = BTreeSet::new();
        for h in &all {
            let status = match resolver.verdict(*h) {
                None => Status::Void,
                Some(kept) => {
                    applied.insert(*h);
                    let void_changes = (0..kept.len())
                        .filter(|i| kept.get(*i) == Some(&false))
                        .collect();
                    Status::Applied { void_changes }
                }
            };
            statuses.insert(*h, status);
        }
        let roster = resolver.registers_of(applied.clone()).roster;
        let tips: Vec<EventHash> = applied
            .iter()
            .copied()
            .filter(|t| !applied.iter().any(|d| self.is_ancestor(*t, *d)))
            .collect();
        let current = tips
            .iter()
            .copied()
            .find(|t| self.own_roster(*t).as_ref() == Some(&roster));
        let writer = current.or_else(|| {
            tips.iter().copied().find(|t| {
                self.own_roster(*t)
                    .is_some_and(|own| own.keys().all(|m| roster.contains_key(m)))
            })
        });
        ReferenceResolution {
            statuses,
            roster,
            tips,
            current,
            writer,
        }
    }
}

/// Pass 1 and pass 2 (§5.3) over one scope, memoized.
struct Resolver<'a> {
    model: &'a Reference,
    scope: BTreeSet<EventHash>,
    owners: BTreeMap<EventHash, BTreeSet<MemberId>>,
    verdicts: BTreeMap<EventHash, Verdict>,
}

impl<'a> Resolver<'a> {
    fn new(model: &'a Reference, scope: BTreeSet<EventHash>) -> Self {
        Self {
            model,
            scope,
            owners: BTreeMap::new(),
            verdicts: BTreeMap::new(),
        }
    }

    /// Pass 1: `Owners(h)`.
    fn owners(&mut self, h: EventHash) -> BTreeSet<MemberId> {
        if let Some(owners) = self.owners.get(&h) {
            return owners.clone();
        }
        let model = self.model;
        let mut owners = BTreeSet::from([model.founder]);
        for p in model
            .get(h)
            .map(|r| r.parents.as_slice())
            .unwrap_or_default()
        {
            let of_parent = self.owners(*p);
            if let Some(parent) = model.get(*p)
                && of_parent.contains(&parent.author)
            {
                owners.extend(owner_grants(parent));
            }
            owners.extend(of_parent);
        }
        self.owners.insert(h, owners.clone());
        owners
    }

    fn is_owners_rotation(&mut self, r: &Rotation) -> bool {
        self.owners(r.hash).contains(&r.author)
    }

    /// Pass 2: the verdict on `h`.
    fn verdict(&mut self, h: EventHash) -> Verdict {
        if let Some(verdict) = self.verdicts.get(&h) {
            return verdict.clone();
        }
        let model = self.model;
        let r = model.get(h)?;
        let verdict: Verdict = if h == model.genesis.hash {
            Some(vec![true; r.changes.len()])
        } else {
            let base = self.registers_of(model.past(h));
            let owners = self.owners(h);
            let owners_rotation = owners.contains(&r.author);
            let rho = if owners_rotation {
                Some(Role::Owner)
            } else {
                base.roster.get(&r.author).map(|(_, role)| *role)
            };
            let applied = owners_rotation // A1
                || (matches!(rho, Some(Role::Admin | Role::Owner)) && !self.fired_concurrently(r)); // A2
            let rho_owner = rho == Some(Role::Owner);
            applied.then(|| {
                r.changes
                    .iter()
                    .map(|c| keeps(c, r.author, rho_owner, &owners, &base))
                    .collect()
            })
        };
        self.verdicts.insert(h, verdict.clone());
        verdict
    }

    /// A2's second clause: an owner's rotation in scope, concurrent with `r`,
    /// removes `r`'s author or sets it to member.
    fn fired_concurrently(&mut self, r: &Rotation) -> bool {
        let model = self.model;
        for o in self.scope.clone() {
            let concurrent =
                o != r.hash && !model.is_ancestor(o, r.hash) && !model.is_ancestor(r.hash, o);
            if let Some(other) = model.get(o)
                && concurrent
                && fires(other, r.author)
                && self.is_owners_rotation(other)
            {
                return true;
            }
        }
        false
    }

    /// The registers over the applied rotations of `set` (§5.4).
    fn registers_of(&mut self, set: BTreeSet<EventHash>) -> Registers {
        let model = self.model;
        let mut candidates: BTreeMap<MemberId, Vec<(EventHash, Value)>> = BTreeMap::new();
        let mut packages: BTreeMap<MemberId, Vec<KeyPackage>> = BTreeMap::new();
        for h in set {
            let (Some(r), Some(kept)) = (model.get(h), self.verdict(h)) else {
                continue;
            };
            for (change, _) in r.changes.iter().zip(kept).filter(|(_, k)| *k) {
                match change {
                    Change::Add { package, role } => {
                        candidates
                            .entry(package.member())
                            .or_default()
                            .push((h, value_of(*role)));
                        packages.entry(package.member()).or_default().push(*package);
                    }
                    Change::SetRole { member, role } => {
                        candidates
                            .entry(*member)
                            .or_default()
                            .push((h, value_of(*role)));
                    }
                    Change::Remove { member } => {
                        candidates
                            .entry(*member)
                            .or_default()
                            .push((h, Value::Removed));
                    }
                    Change::UpdateKeys { package } => {
                        packages.entry(package.member()).or_default().push(*package);
                    }
                }
            }
        }
        let mut registers = Registers::default();
        for (member, candidates) in &candidates {
            let surviving: Vec<Value> = candidates
                .iter()
                .filter(|(x, _)| {
                    !candidates
                        .iter()
                        .any(|(y, _)| y != x && model.is_ancestor(*x, *y))
                })
                .map(|(_, value)| *value)
                .collect();
            if surviving
                .iter()
                .any(|v| *v == Value::Admin || *v == Value::Owner)
            {
                registers.admin_entries.insert(*member);
            }
            let value = if surviving.contains(&Value::Owner) {
                Some(Value::Owner)
            } else {
                surviving.iter().min().copied()
            };
            let role = match value {
                Some(Value::Owner) => Role::Owner,
                Some(Value::Admin) => Role::Admin,
                Some(Value::Member) => Role::Member,
                Some(Value::Removed) | None => continue,
            };
            let mut best: Option<KeyPackage> = None;
            for p in packages.get(member).into_iter().flatten() {
                if best.is_none_or(|b| beats(p, &b)) {
                    best = Some(*p);
                }
            }
            let keys = best.expect("§5.4: a present member has a kept Add, hence keys");
            registers.roster.insert(*member, (keys, role));
        }
        registers
    }
}

fn of_graph(roster: &GraphRoster) -> Roster {
    roster
        .iter()
        .map(|(m, entry)| (*m, (entry.keys, entry.role)))
        .collect()
}

/// Both models hold the same set; their answers must be equal.
fn agree(graph: &EpochGraph, model: &Reference) -> Result<(), TestCaseError> {
    prop_assert_eq!(graph.frontier(), model.frontier());
    let (g, r) = (graph.resolve(), model.resolve());
    prop_assert_eq!(&g.statuses, &r.statuses);
    prop_assert_eq!(of_graph(&g.roster), r.roster);
    prop_assert_eq!(&g.tips, &r.tips);
    prop_assert_eq!(g.current, r.current);
    prop_assert_eq!(g.writer, r.writer);
    for rotation in model.rotations() {
        prop_assert_eq!(
            graph.own_roster(rotation.hash).map(of_graph),
            model.own_roster(rotation.hash)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_graph_agrees_with_the_reference_model(ops in prop::collection::vec(op(), 4..32)) {
        let mut graph = genesis();
        let mut model = Reference::new(hash("G"), package(F));
        let mut setup = vec![
            Change::Add { package: package(1), role: Role::Admin },
            Change::Add { package: package(2), role: Role::Admin },
            Change::Add { package: package(3), role: Role::Member },
            Change::Add { package: package(4), role: Role::Member },
        ];
        setup.sort_by_key(Change::member);
        let setup = Rotation { hash: hash("setup"), author: id(0), parents: vec![hash("G")], changes: setup };
        prop_assert!(graph.insert(setup.clone()).is_ok());
        prop_assert_eq!(model.insert(setup.clone()), Ok(()));
        let mut accepted = vec![setup.hash];
        for (n, op) in ops.iter().enumerate() {
            let rotation = rotation(model.genesis.hash, &accepted, |a, d| model.is_ancestor(a, d), n, op);
            let by_graph = graph.insert(rotation.clone()).is_ok();
            let by_model = model.insert(rotation.clone());
            prop_assert_eq!(by_graph, by_model.is_ok(), "acceptance of {:?}: reference {:?}", rotation, by_model);
            if by_graph {
                accepted.push(rotation.hash);
            }
        }
        agree(&graph, &model)?;

        // Each one's honest parents (§5.1) agree, and a merge naming them
        // by an author who applies is based on exactly `R*` (§5.5).
        let resolution = graph.resolve();
        let reference = model.resolve();
        for author in [0, 1, 2, 3] {
            let parents = graph
                .parents_for(id(author), &[], &resolution, &Default::default())
                .map(|parents| parents.hashes);
            let by_model = model.parents_for(id(author));
            if let Some(by_model) = by_model {
                prop_assert_eq!(parents.as_ref(), Some(&by_model), "parents of {}", author);
                prop_assert_eq!(of_graph(&graph.past_roster_of(&by_model)), reference.roster.clone());
            }
        }

        // The founder's merge of its parents, in both: current, and the
        // only tip.
        if let Some(parents) = model.parents_for(id(0)) {
            let merge = Rotation { hash: hash("founder's merge"), author: id(0), parents, changes: vec![] };
            prop_assert!(graph.insert(merge.clone()).is_ok());
            prop_assert_eq!(model.insert(merge), Ok(()));
            agree(&graph, &model)?;
            prop_assert_eq!(model.resolve().current, Some(hash("founder's merge")));
            prop_assert_eq!(model.resolve().tips, vec![hash("founder's merge")]);
        }
    }
}

/// The review's counterexample: an admin re-adds a member whose surviving
/// candidates are a concurrent promotion (by an admin) and removal (by the
/// owner). The member is absent but an admin entry, so the re-addition is
/// void (K5a as amended) and the removal stands.
#[test]
fn an_admin_cannot_re_add_a_removed_admin_entry() {
    use Role::{Admin, Member};
    let (a, b, m) = (1, 2, 3);
    let mut h = History::new();
    h.rotate(
        "R1",
        F,
        &["G"],
        vec![add(a, Admin), add(b, Admin), add(m, Member)],
    );
    h.rotate("Ra", a, &["R1"], vec![set_role(m, Admin)]);
    h.rotate("RF", F, &["R1"], vec![remove(m)]);
    let rb = h.rotate("Rb", b, &["Ra", "RF"], vec![add(m, Member)]);

    let mut model = Reference::new(hash("G"), package(F));
    for rotation in h.rotations() {
        assert_eq!(model.insert(rotation.clone()), Ok(()));
    }
    let graph = build(h.rotations());
    let void_add = Status::Applied {
        void_changes: vec![0],
    };

    let reference = model.resolve();
    assert_eq!(reference.statuses.get(&rb), Some(&void_add));
    assert!(!reference.roster.contains_key(&id(m)));
    assert_eq!(reference.tips, vec![rb]);
    assert_eq!(reference.current, Some(rb));

    let resolution = graph.resolve();
    assert_eq!(resolution.statuses.get(&rb), Some(&void_add));
    assert!(resolution.roster.get(id(m)).is_none());
    assert_eq!(resolution.current, Some(rb));

    agree(&graph, &model).expect("the graph and the reference agree");
}

/// Every ancestry the graph answers is the reference's.
fn ancestry_agrees(graph: &EpochGraph, model: &Reference) -> Result<(), TestCaseError> {
    let hashes: Vec<EventHash> = model.rotations().map(|r| r.hash).collect();
    for &a in &hashes {
        for &d in &hashes {
            prop_assert_eq!(
                graph.is_ancestor(a, d),
                model.is_ancestor(a, d),
                "{:?} below {:?}",
                a,
                d
            );
        }
    }
    Ok(())
}

/// One step of an incremental history: a random rotation, whether it names
/// its author's honest parents (SPEC.md §5.1, so that it names every tip)
/// or the frontier of everything rather than random picks, whether the
/// graph is resolved after it, and whether the graph takes it and then
/// forgets it again (as a refused batch is undone).
fn step() -> impl Strategy<Value = (crate::tests::properties::Op, u8, bool, bool)> {
    (
        op(),
        0u8..4,
        prop::bool::weighted(0.4),
        prop::bool::weighted(0.1),
    )
}

/// Runs `steps` against the graph and the model, comparing them whenever
/// the graph resolves, so that each resolution is built incrementally from
/// the last one over the rotations taken since: none, one or many; extended
/// by rotations naming every tip, or judged again above a cut.
fn run_incrementally(
    steps: &[(crate::tests::properties::Op, u8, bool, bool)],
    honest_weight: u8,
) -> Result<(), TestCaseError> {
    let mut graph = genesis();
    let mut model = Reference::new(hash("G"), package(F));
    let mut setup = vec![
        Change::Add {
            package: package(1),
            role: Role::Admin,
        },
        Change::Add {
            package: package(2),
            role: Role::Admin,
        },
        Change::Add {
            package: package(3),
            role: Role::Member,
        },
        Change::Add {
            package: package(4),
            role: Role::Member,
        },
    ];
    setup.sort_by_key(Change::member);
    let setup = Rotation {
        hash: hash("setup"),
        author: id(0),
        parents: vec![hash("G")],
        changes: setup,
    };
    prop_assert!(graph.insert(setup.clone()).is_ok());
    prop_assert_eq!(model.insert(setup.clone()), Ok(()));
    let mut accepted = vec![setup.hash];
    for (n, (op, honesty, resolve_now, forget)) in steps.iter().enumerate() {
        let mut rotation = rotation(
            model.genesis.hash,
            &accepted,
            |a, d| model.is_ancestor(a, d),
            n,
            op,
        );
        if *honesty < honest_weight {
            // The frontier of everything names every tip (past sixteen,
            // the smallest sixteen, which may not).
            let mut frontier = graph.frontier();
            frontier.truncate(MAX_PARENTS);
            rotation.parents = frontier;
        }
        if *forget {
            if let Ok(Some(prepared)) = graph.prepare(rotation.clone()) {
                graph.commit(prepared);
                if *resolve_now {
                    // A resolution that saw it, to be forgotten with it.
                    graph.resolve();
                }
                graph.forget_newest(rotation.hash);
            }
        } else {
            let by_graph = graph.insert(rotation.clone()).is_ok();
            let by_model = model.insert(rotation.clone());
            prop_assert_eq!(
                by_graph,
                by_model.is_ok(),
                "acceptance of {:?}: reference {:?}",
                rotation,
                by_model
            );
            if by_graph {
                accepted.push(rotation.hash);
            }
        }
        if *resolve_now {
            // `resolve` itself checks its answer against one from scratch.
            agree(&graph, &model)?;
        }
    }
    agree(&graph, &model)?;
    ancestry_agrees(&graph, &model)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Short, contested histories: most rotations fork.
    #[test]
    fn the_incremental_resolution_agrees_with_the_reference_model(
        steps in prop::collection::vec(step(), 4..40)
    ) {
        run_incrementally(&steps, 2)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// Long, mostly linear histories with stray forks, backdated rotations
    /// and merges, so that chains of cuts grow deep enough for their skip
    /// pointers and the cut of the whole graph moves and stalls.
    #[test]
    fn the_incremental_resolution_agrees_over_long_mostly_linear_histories(
        steps in prop::collection::vec(step(), 80..180)
    ) {
        run_incrementally(&steps, 3)?;
    }
}
