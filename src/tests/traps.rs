//! The traps of issue #10, each reproduced in every arrival order
//! (SPEC.md §5.7 lists the expected outcomes).
//!
//! Every test builds a history once, then feeds it to a fresh graph in every
//! topological order of its rotations and checks that each order yields the
//! same resolution, and that it is the expected one.

use std::collections::BTreeMap;

use crate::event::MemberKeys;
use crate::graph::{Change, EpochGraph, KeyPackage, Resolution, Role, Rotation, Status};
use crate::ids::{DhPublicKey, EventHash, MemberId, SigningPublicKey};

/// The founder is member 0.
pub(crate) const F: u8 = 0;

pub(crate) fn package(member: u8) -> KeyPackage {
    package_at(member, 1)
}

/// Member `member`'s package with counter `counter` (its DH key changes
/// with the counter, its signing key never does).
pub(crate) fn package_at(member: u8, counter: u64) -> KeyPackage {
    let mut dh = [member.wrapping_add(100); 32];
    dh[31] = counter as u8;
    KeyPackage::new(
        MemberKeys {
            signing: SigningPublicKey::from_bytes([member.wrapping_add(1); 32]),
            dh: DhPublicKey::from_bytes(dh),
        },
        counter,
    )
}

pub(crate) fn id(member: u8) -> MemberId {
    package(member).member()
}

pub(crate) fn hash(name: &str) -> EventHash {
    EventHash::from_bytes(*blake3::hash(name.as_bytes()).as_bytes())
}

pub(crate) fn add(member: u8, role: Role) -> Change {
    Change::Add {
        package: package(member),
        role,
    }
}

pub(crate) fn remove(member: u8) -> Change {
    Change::Remove { member: id(member) }
}

pub(crate) fn set_role(member: u8, role: Role) -> Change {
    Change::SetRole {
        member: id(member),
        role,
    }
}

/// A history under construction: rotations named in the order written.
pub(crate) struct History {
    rotations: Vec<Rotation>,
}

impl History {
    pub(crate) fn new() -> Self {
        Self {
            rotations: Vec::new(),
        }
    }

    /// Adds rotation `name` by `author` on `parents` (names; "G" is the
    /// genesis); sorts parents and changes into canonical order.
    pub(crate) fn rotate(
        &mut self,
        name: &str,
        author: u8,
        parents: &[&str],
        mut changes: Vec<Change>,
    ) -> EventHash {
        let mut parents: Vec<EventHash> = parents.iter().map(|p| hash(p)).collect();
        parents.sort();
        changes.sort_by_key(Change::member);
        let rotation = Rotation {
            hash: hash(name),
            author: id(author),
            parents,
            changes,
        };
        self.rotations.push(rotation);
        hash(name)
    }

    pub(crate) fn rotations(&self) -> &[Rotation] {
        &self.rotations
    }
}

pub(crate) fn genesis() -> EpochGraph {
    EpochGraph::new(hash("G"), package(F))
}

/// Inserts rotations in the given order; every one must be accepted.
pub(crate) fn build<'a>(order: impl IntoIterator<Item = &'a Rotation>) -> EpochGraph {
    let mut graph = genesis();
    for rotation in order {
        let hash = rotation.hash;
        if let Err(error) = graph.insert(rotation.clone()) {
            panic!("rotation {hash} refused: {error}");
        }
    }
    graph
}

/// Every topological order of `rotations` (parents first), up to `limit`.
pub(crate) fn arrival_orders(rotations: &[Rotation], limit: usize) -> Vec<Vec<&Rotation>> {
    fn extend<'a>(
        rotations: &'a [Rotation],
        placed: &mut Vec<&'a Rotation>,
        orders: &mut Vec<Vec<&'a Rotation>>,
        limit: usize,
    ) {
        if orders.len() >= limit {
            return;
        }
        if placed.len() == rotations.len() {
            orders.push(placed.clone());
            return;
        }
        for rotation in rotations {
            let is_placed = |h: &EventHash| placed.iter().any(|p| p.hash == *h);
            let ready = rotation
                .parents
                .iter()
                .all(|p| *p == hash("G") || is_placed(p));
            if !is_placed(&rotation.hash) && ready {
                placed.push(rotation);
                extend(rotations, placed, orders, limit);
                placed.pop();
            }
        }
    }
    let mut orders = Vec::new();
    extend(rotations, &mut Vec::new(), &mut orders, limit);
    orders
}

/// The resolution of `history`, checked to be the same in every arrival order.
pub(crate) fn resolve_in_every_order(history: &History) -> Resolution {
    let orders = arrival_orders(history.rotations(), 10_000);
    assert!(!orders.is_empty());
    let mut first: Option<Resolution> = None;
    for order in &orders {
        let resolution = build(order.iter().copied()).resolve();
        match &first {
            None => first = Some(resolution),
            Some(first) => assert_eq!(&resolution, first, "arrival order changed the resolution"),
        }
    }
    first.unwrap()
}

fn void_rotations(resolution: &Resolution) -> Vec<EventHash> {
    resolution
        .statuses
        .iter()
        .filter(|(_, status)| **status == Status::Void)
        .map(|(hash, _)| *hash)
        .collect()
}

fn void_changes(resolution: &Resolution) -> BTreeMap<EventHash, Vec<usize>> {
    resolution
        .statuses
        .iter()
        .filter_map(|(hash, status)| match status {
            Status::Applied { void_changes } if !void_changes.is_empty() => {
                Some((*hash, void_changes.clone()))
            }
            _ => None,
        })
        .collect()
}

fn roles(resolution: &Resolution) -> BTreeMap<MemberId, Role> {
    resolution
        .roster
        .iter()
        .map(|(id, entry)| (*id, entry.role))
        .collect()
}

fn expect_roles(members: &[(u8, Role)]) -> BTreeMap<MemberId, Role> {
    members.iter().map(|(m, role)| (id(*m), *role)).collect()
}

fn sorted(mut hashes: Vec<EventHash>) -> Vec<EventHash> {
    hashes.sort();
    hashes
}

use Role::{Admin, Member, Owner};

#[test]
fn authority_cycle_among_admins() {
    let (s, t, r, m) = (1, 2, 3, 4);
    let mut h = History::new();
    h.rotate(
        "R1",
        F,
        &["G"],
        vec![add(s, Admin), add(t, Admin), add(r, Member), add(m, Member)],
    );
    let rs = h.rotate("Rs", s, &["R1"], vec![set_role(r, Admin)]);
    let rt = h.rotate("Rt", t, &["R1"], vec![set_role(s, Member)]);
    let rr = h.rotate("Rr", r, &["Rs"], vec![set_role(t, Member)]);
    let res = resolve_in_every_order(&h);
    assert!(void_rotations(&res).is_empty());
    // Admins cannot change admins: t's demotion of s and r's of t are void.
    assert_eq!(
        void_changes(&res),
        BTreeMap::from([(rt, vec![0]), (rr, vec![0])])
    );
    assert!(res.is_applied(rs));
    assert_eq!(
        roles(&res),
        expect_roles(&[(F, Owner), (s, Admin), (t, Admin), (r, Admin), (m, Member)])
    );
    assert_eq!(res.current, Some(rr));
    assert_eq!(res.tips, sorted(vec![rt, rr]));
}

#[test]
fn authority_cycle_with_an_owner() {
    let (s, t, r, m) = (1, 2, 3, 4);
    let mut h = History::new();
    h.rotate(
        "R1",
        F,
        &["G"],
        vec![add(s, Admin), add(t, Owner), add(r, Member), add(m, Member)],
    );
    let rs = h.rotate("Rs", s, &["R1"], vec![set_role(r, Admin)]);
    let rt = h.rotate("Rt", t, &["R1"], vec![set_role(s, Member)]);
    let rr = h.rotate("Rr", r, &["Rs"], vec![set_role(t, Member)]);
    let res = resolve_in_every_order(&h);
    // The owner's demotion voids s's concurrent rotation, and with it the
    // promotion r's rotation stood on.
    assert_eq!(void_rotations(&res), sorted(vec![rs, rr]));
    assert!(void_changes(&res).is_empty());
    assert_eq!(
        roles(&res),
        expect_roles(&[
            (F, Owner),
            (t, Owner),
            (s, Member),
            (r, Member),
            (m, Member)
        ])
    );
    assert_eq!(res.current, Some(rt));
    assert_eq!(res.tips, vec![rt]);
}

#[test]
fn three_admins_removing_one_another_in_a_ring() {
    let (a, b, c) = (1, 2, 3);
    let mut h = History::new();
    h.rotate(
        "R1",
        F,
        &["G"],
        vec![add(a, Admin), add(b, Admin), add(c, Admin)],
    );
    let ra = h.rotate("Ra", a, &["R1"], vec![remove(b)]);
    let rb = h.rotate("Rb", b, &["R1"], vec![remove(c)]);
    let rc = h.rotate("Rc", c, &["R1"], vec![remove(a)]);
    let res = resolve_in_every_order(&h);
    assert!(void_rotations(&res).is_empty());
    assert_eq!(
        void_changes(&res),
        BTreeMap::from([(ra, vec![0]), (rb, vec![0]), (rc, vec![0])])
    );
    assert_eq!(
        roles(&res),
        expect_roles(&[(F, Owner), (a, Admin), (b, Admin), (c, Admin)])
    );
    // Every tip's own roster is R*, so no merge is needed.
    let smallest = sorted(vec![ra, rb, rc])[0];
    assert_eq!(res.current, Some(smallest));
    assert!(!res.needs_merge());
}

/// The roster before the firing: fired admin f, honest admin a, members x, y.
fn before_firing(h: &mut History) -> (u8, u8, u8, u8) {
    let (f, a, x, y) = (1, 2, 3, 4);
    h.rotate(
        "R1",
        F,
        &["G"],
        vec![add(f, Admin), add(a, Admin), add(x, Member), add(y, Member)],
    );
    (f, a, x, y)
}

#[test]
fn fired_admin_backdates_a_rotation_removing_everyone() {
    let mut h = History::new();
    let (f, a, x, y) = before_firing(&mut h);
    let fire = h.rotate("RF", F, &["R1"], vec![remove(f)]);
    let backdated = h.rotate(
        "Rf",
        f,
        &["R1"],
        vec![remove(F), remove(a), remove(x), remove(y)],
    );
    let res = resolve_in_every_order(&h);
    assert_eq!(void_rotations(&res), vec![backdated]);
    assert_eq!(
        roles(&res),
        expect_roles(&[(F, Owner), (a, Admin), (x, Member), (y, Member)])
    );
    assert_eq!(res.current, Some(fire));
}

#[test]
fn fired_admin_backdates_a_puppet_who_removes_everyone() {
    let mut h = History::new();
    let (f, a, x, y) = before_firing(&mut h);
    let (p, q, z) = (5, 6, 7);
    let fire = h.rotate("RF", F, &["R1"], vec![remove(f)]);
    let rf = h.rotate("Rf", f, &["R1"], vec![add(p, Admin)]);
    let rp = h.rotate(
        "Rp",
        p,
        &["Rf"],
        vec![remove(a), remove(x), remove(y), add(q, Admin)],
    );
    let rq = h.rotate("Rq", q, &["Rp"], vec![add(z, Member)]);
    let res = resolve_in_every_order(&h);
    assert_eq!(void_rotations(&res), sorted(vec![rf, rp, rq]));
    assert_eq!(
        roles(&res),
        expect_roles(&[(F, Owner), (a, Admin), (x, Member), (y, Member)])
    );
    assert_eq!(res.current, Some(fire));
}

#[test]
fn admin_removing_a_troll_while_an_owner_demotes_that_admin() {
    let (j, troll) = (1, 2);
    let mut h = History::new();
    h.rotate("R1", F, &["G"], vec![add(j, Admin), add(troll, Member)]);
    let rj = h.rotate("Rj", j, &["R1"], vec![remove(troll)]);
    let rf = h.rotate("RF", F, &["R1"], vec![set_role(j, Member)]);
    let res = resolve_in_every_order(&h);
    // The demoted admin's changes do not apply, removals included.
    assert_eq!(void_rotations(&res), vec![rj]);
    assert_eq!(
        roles(&res),
        expect_roles(&[(F, Owner), (j, Member), (troll, Member)])
    );
    assert_eq!(res.current, Some(rf));
}

#[test]
fn a_void_tip_hides_no_live_branch() {
    let (junior, b, x, y) = (1, 2, 3, 4);
    let mut h = History::new();
    h.rotate(
        "R1",
        F,
        &["G"],
        vec![add(junior, Admin), add(b, Admin), add(x, Member)],
    );
    let rb = h.rotate("Rb", b, &["R1"], vec![remove(x)]);
    let rj = h.rotate("Rj", junior, &["Rb"], vec![add(y, Member)]);
    let rf = h.rotate("RF", F, &["R1"], vec![set_role(junior, Member)]);
    let res = resolve_in_every_order(&h);
    assert_eq!(void_rotations(&res), vec![rj]);
    assert_eq!(
        roles(&res),
        expect_roles(&[(F, Owner), (junior, Member), (b, Admin)])
    );
    // The junior's void rotation does not hide b's removal: both b's and
    // F's rotations are tips, neither's roster is R*, and writers use the
    // removing rotation, whose roster lacks the removed member.
    assert_eq!(res.tips, sorted(vec![rb, rf]));
    assert!(res.needs_merge());
    assert_eq!(res.writer, Some(rb));
    assert!(
        build(h.rotations())
            .own_roster(rb)
            .is_some_and(|roster| roster.get(id(x)).is_none())
    );

    // A merge by the demoted admin that does not see its demotion is
    // accepted, and void; one that sees it is not even accepted.
    let other = h.rotate("Rb2", b, &["R1"], vec![]);
    let junior_merge = h.rotate("Mj", junior, &["Rj", "Rb2"], vec![]);
    let res = resolve_in_every_order(&h);
    assert_eq!(void_rotations(&res), sorted(vec![rj, junior_merge]));
    assert_eq!(res.tips, sorted(vec![rb, rf, other]));
    assert!(res.needs_merge());
    assert_eq!(res.writer, Some(rb));
    let mut graph = build(h.rotations());
    let mut parents = vec![rj, rf];
    parents.sort();
    let seeing_merge = Rotation {
        hash: hash("Mj2"),
        author: id(junior),
        parents,
        changes: vec![],
    };
    assert_eq!(
        graph.insert(seeing_merge),
        Err(crate::graph::GraphError::AuthorNotAdmin(id(junior)))
    );

    // F's merge of the whole frontier becomes current.
    let merge = h.rotate("M", F, &["Mj", "RF"], vec![]);
    let res = resolve_in_every_order(&h);
    assert_eq!(res.current, Some(merge));
    assert_eq!(res.tips, vec![merge]);
    assert_eq!(
        roles(&res),
        expect_roles(&[(F, Owner), (junior, Member), (b, Admin)])
    );
}

#[test]
fn an_admin_cannot_re_add_an_admin_entry_an_owner_removed() {
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
    let res = resolve_in_every_order(&h);
    // m's surviving candidates are a's promotion and F's removal: m is
    // absent, but its entry is an admin's, which an admin may not touch.
    assert_eq!(void_changes(&res), BTreeMap::from([(rb, vec![0])]));
    assert_eq!(res.roster.get(id(m)), None);
    assert_eq!(res.current, Some(rb));
}

#[test]
fn a_voided_removal_does_not_hide_a_later_addition() {
    let (a, b, x, y) = (1, 2, 3, 4);
    let mut h = History::new();
    h.rotate(
        "R1",
        F,
        &["G"],
        vec![add(a, Admin), add(b, Admin), add(x, Member)],
    );
    let ra = h.rotate("Ra", a, &["R1"], vec![remove(x)]);
    h.rotate("RF", F, &["R1"], vec![set_role(a, Member)]);
    let later = h.rotate("Rb", b, &["RF", "Ra"], vec![add(y, Member)]);
    let res = resolve_in_every_order(&h);
    assert_eq!(void_rotations(&res), vec![ra]);
    assert!(void_changes(&res).is_empty());
    assert_eq!(
        roles(&res),
        expect_roles(&[
            (F, Owner),
            (a, Member),
            (b, Admin),
            (x, Member),
            (y, Member)
        ])
    );
    assert_eq!(res.current, Some(later));
}

#[test]
fn three_tips_merge_alike_flat_and_in_every_pairing() {
    let (a, b, c) = (1, 2, 3);
    let (x, w) = (4, 5);
    // Conflicting tips: a removes x, b promotes x, c adds w. Removal wins,
    // however the merges group them.
    let base = |h: &mut History| {
        h.rotate(
            "R1",
            F,
            &["G"],
            vec![add(a, Admin), add(b, Admin), add(c, Admin), add(x, Member)],
        );
        h.rotate("Ra", a, &["R1"], vec![remove(x)]);
        h.rotate("Rb", b, &["R1"], vec![set_role(x, Admin)]);
        h.rotate("Rc", c, &["R1"], vec![add(w, Member)]);
    };
    let expected = expect_roles(&[(F, Owner), (a, Admin), (b, Admin), (c, Admin), (w, Member)]);
    let mut unmerged = History::new();
    base(&mut unmerged);
    let res = resolve_in_every_order(&unmerged);
    assert!(res.needs_merge());
    assert_eq!(roles(&res), expected);

    let mut flat = History::new();
    base(&mut flat);
    let merge = flat.rotate("M", a, &["Ra", "Rb", "Rc"], vec![]);
    let flat_res = resolve_in_every_order(&flat);
    assert_eq!(roles(&flat_res), expected);
    assert_eq!(flat_res.current, Some(merge));
    assert_eq!(flat_res.tips, vec![merge]);

    for (first, second, last) in [("Ra", "Rb", "Rc"), ("Ra", "Rc", "Rb"), ("Rb", "Rc", "Ra")] {
        let mut paired = History::new();
        base(&mut paired);
        let half = paired.rotate("M1", b, &[first, second], vec![]);
        let res = resolve_in_every_order(&paired);
        assert_eq!(res.tips, sorted(vec![half, hash(last)]));
        if last == "Rb" {
            // The removal and the addition already give R*: the promotion
            // left out loses to the removal anyway.
            assert_eq!(res.current, Some(half));
        } else {
            assert!(
                res.needs_merge(),
                "a merge of {first} and {second} is not final"
            );
        }
        let merge = paired.rotate("M2", c, &["M1", last], vec![]);
        let res = resolve_in_every_order(&paired);
        assert_eq!(res.roster, flat_res.roster);
        assert_eq!(res.current, Some(merge));
        assert_eq!(res.tips, vec![merge]);
        assert!(void_rotations(&res).is_empty());
    }

    // Two concurrent merges of the same parents: equal rosters, and the
    // smaller hash is current.
    let mut twice = History::new();
    base(&mut twice);
    let m1 = twice.rotate("M by a", a, &["Ra", "Rb", "Rc"], vec![]);
    let m2 = twice.rotate("M by F", F, &["Ra", "Rb", "Rc"], vec![]);
    let graph = build(twice.rotations());
    assert_eq!(graph.own_roster(m1), graph.own_roster(m2));
    let res = resolve_in_every_order(&twice);
    assert_eq!(res.current, Some(m1.min(m2)));
}

#[test]
fn two_tips_with_equal_ids_but_different_roles() {
    let (a, b, x, y) = (1, 2, 3, 4);
    let mut h = History::new();
    h.rotate(
        "R1",
        F,
        &["G"],
        vec![add(a, Admin), add(b, Admin), add(x, Member), add(y, Member)],
    );
    let ra = h.rotate("Ra", a, &["R1"], vec![set_role(x, Admin)]);
    let rb = h.rotate("Rb", b, &["R1"], vec![set_role(y, Admin)]);
    let res = resolve_in_every_order(&h);
    assert_eq!(
        roles(&res),
        expect_roles(&[(F, Owner), (a, Admin), (b, Admin), (x, Admin), (y, Admin)])
    );
    // Same ids, different roles: neither is R*, but both may carry writes.
    assert!(res.needs_merge());
    assert_eq!(res.writer, Some(ra.min(rb)));
    let merge = h.rotate("M", F, &["Ra", "Rb"], vec![]);
    assert_eq!(resolve_in_every_order(&h).current, Some(merge));
}

#[test]
fn owner_grant_wins_over_a_concurrent_removal() {
    let (h_, x) = (1, 2);
    let mut h = History::new();
    h.rotate("R1", F, &["G"], vec![add(h_, Admin), add(x, Member)]);
    let grant = h.rotate("RF", F, &["R1"], vec![add(x, Owner)]);
    h.rotate("Rh", h_, &["R1"], vec![remove(x)]);
    let res = resolve_in_every_order(&h);
    // Both changes are kept; the owner grant wins the register.
    assert!(void_rotations(&res).is_empty());
    assert!(void_changes(&res).is_empty());
    assert_eq!(
        roles(&res),
        expect_roles(&[(F, Owner), (h_, Admin), (x, Owner)])
    );
    assert_eq!(res.current, Some(grant));
    assert!(!res.needs_merge());
}

#[test]
fn no_rotation_changes_its_own_author_but_its_keys() {
    let a = 1;
    let mut h = History::new();
    h.rotate("R1", F, &["G"], vec![add(a, Admin)]);
    let leave = h.rotate("Ra", a, &["R1"], vec![remove(a)]);
    let res = build(h.rotations()).resolve();
    assert_eq!(
        res.statuses.get(&leave),
        Some(&Status::Applied {
            void_changes: vec![0]
        })
    );
    assert_eq!(res.roster.role_of(id(a)), Some(Admin));

    let newer = package_at(a, 2);
    let refresh = h.rotate(
        "Ra2",
        a,
        &["Ra"],
        vec![Change::UpdateKeys { package: newer }],
    );
    let res = build(h.rotations()).resolve();
    assert!(!void_changes(&res).contains_key(&refresh));
    assert_eq!(res.roster.get(id(a)).map(|e| e.keys), Some(newer));
    // An older package never replaces a newer one.
    h.rotate(
        "RF",
        F,
        &["Ra2"],
        vec![Change::UpdateKeys {
            package: package_at(a, 1),
        }],
    );
    let res = build(h.rotations()).resolve();
    assert_eq!(res.roster.get(id(a)).map(|e| e.keys), Some(newer));
}

#[test]
fn admins_cannot_make_owners_or_touch_admins() {
    let (a, b, x, y) = (1, 2, 3, 4);
    let mut h = History::new();
    h.rotate(
        "R1",
        F,
        &["G"],
        vec![add(a, Admin), add(b, Admin), add(x, Member)],
    );
    let ra = h.rotate(
        "Ra",
        a,
        &["R1"],
        vec![add(y, Owner), remove(b), set_role(x, Admin), remove(F)],
    );
    let res = build(h.rotations()).resolve();
    // Positions follow member order; only the promotion of x is kept.
    let graph = build(h.rotations());
    let kept: Vec<MemberId> = h.rotations()[1]
        .changes
        .iter()
        .enumerate()
        .filter(|(i, _)| !void_changes(&res)[&ra].contains(i))
        .map(|(_, c)| c.member())
        .collect();
    assert_eq!(kept, vec![id(x)]);
    assert_eq!(graph.resolve().roster.role_of(id(x)), Some(Admin));
    assert_eq!(graph.resolve().roster.role_of(id(y)), None);
}

#[test]
fn malformed_rotations_are_refused() {
    use crate::graph::GraphError;
    let mut graph = genesis();
    let mut rotation = Rotation {
        hash: hash("R"),
        author: id(F),
        parents: vec![],
        changes: vec![],
    };
    assert_eq!(
        graph.insert(rotation.clone()),
        Err(GraphError::ParentCount(0))
    );
    rotation.parents = vec![hash("nowhere")];
    assert_eq!(
        graph.insert(rotation.clone()),
        Err(GraphError::UnknownParent(hash("nowhere")))
    );
    rotation.parents = vec![hash("G"), hash("G")];
    assert_eq!(
        graph.insert(rotation.clone()),
        Err(GraphError::ParentsUnsorted(1))
    );
    rotation.parents = vec![hash("G")];
    rotation.changes = vec![add(1, Member), add(1, Admin)];
    assert_eq!(
        graph.insert(rotation.clone()),
        Err(GraphError::ChangesUnsorted(1))
    );
    rotation.changes = vec![set_role(1, Owner)];
    assert_eq!(
        graph.insert(rotation.clone()),
        Err(GraphError::OwnerWithoutPackage(0))
    );
    rotation.changes = vec![add(1, Member)];
    assert_eq!(
        graph.insert(rotation.clone()),
        Ok(crate::graph::Inserted::New)
    );
    assert_eq!(
        graph.insert(rotation.clone()),
        Ok(crate::graph::Inserted::Known)
    );
    let mut parents = vec![hash("G"), hash("R")];
    parents.sort();
    let not_frontier = Rotation {
        hash: hash("R2"),
        author: id(F),
        parents,
        changes: vec![],
    };
    assert_eq!(
        graph.insert(not_frontier),
        Err(GraphError::ParentsNotFrontier {
            ancestor: hash("G"),
            descendant: hash("R")
        })
    );
    // A member cannot rotate.
    let by_member = Rotation {
        hash: hash("R3"),
        author: id(1),
        parents: vec![hash("R")],
        changes: vec![],
    };
    assert_eq!(
        graph.insert(by_member),
        Err(GraphError::AuthorNotAdmin(id(1)))
    );
    assert_eq!(graph.len(), 2);
    assert_eq!(graph.frontier(), vec![hash("R")]);
}

/// Why peers may not simply leave out the feeds of authors absent from `R*`
/// (SPEC.md §13): such an author can hold an applied rotation that nothing
/// descends from, and leaving it out changes `R*` for everyone else.
///
/// F demotes admin a; admin b promotes a again, and a, on b's rotation,
/// removes member x; concurrently with b's promotion, admin c removes a (a
/// member entry in c's base). Removal wins among the surviving candidates,
/// so a is absent from `R*`; yet no owner's rotation is concurrent with a's,
/// so a's rotation applies and x is removed. A copy without a's rotation
/// would keep x.
#[test]
fn an_author_absent_from_the_roster_can_hold_an_applied_leaf() {
    let (a, b, c, x) = (1, 2, 3, 4);
    let mut h = History::new();
    h.rotate(
        "R1",
        F,
        &["G"],
        vec![add(a, Admin), add(b, Admin), add(c, Admin), add(x, Member)],
    );
    h.rotate("O", F, &["R1"], vec![set_role(a, Member)]);
    h.rotate("P", b, &["O"], vec![set_role(a, Admin)]);
    let q = h.rotate("Q", c, &["O"], vec![remove(a)]);
    let ra = h.rotate("Ra", a, &["P"], vec![remove(x)]);
    let res = resolve_in_every_order(&h);
    assert!(void_rotations(&res).is_empty());
    assert!(void_changes(&res).is_empty());
    assert_eq!(
        roles(&res),
        expect_roles(&[(F, Owner), (b, Admin), (c, Admin)])
    );
    // a's rotation is a tip: nothing descends from it.
    assert_eq!(res.tips, sorted(vec![ra, q]));
    // Without it, x stays: the roster depends on the absent author's feed.
    let without: Vec<&Rotation> = h.rotations().iter().filter(|r| r.hash != ra).collect();
    let partial = build(without).resolve();
    assert_eq!(
        roles(&partial),
        expect_roles(&[(F, Owner), (b, Admin), (c, Admin), (x, Member)])
    );
}

/// The first names `{prefix}{n}` whose hashes sort below (or above) `bound`.
fn names_beside(prefix: &str, bound: EventHash, below: bool, count: usize) -> Vec<String> {
    (0..)
        .map(|n| format!("{prefix}{n}"))
        .filter(|name| (hash(name) < bound) == below)
        .take(count)
        .collect()
}

/// Issue 23 §1, in the graph: demoted admin j backdates `count` rotations
/// on R1, each adding puppet p, all sorting below F's demotion. They are
/// void and stay in the frontier; the parents F names are its demotion
/// alone, so its merge is current, based on `R*` and blind to p.
fn demoted_admin_widens_the_frontier(count: usize) {
    let (j, x, p) = (1, 2, 3);
    let mut h = History::new();
    h.rotate("R1", F, &["G"], vec![add(j, Admin), add(x, Member)]);
    let demotion = h.rotate("RF", F, &["R1"], vec![set_role(j, Member)]);
    let backdated: Vec<EventHash> = names_beside("Rj", demotion, true, count)
        .iter()
        .map(|name| h.rotate(name, j, &["R1"], vec![add(p, Admin)]))
        .collect();
    let res = resolve_in_every_order(&h);
    assert_eq!(void_rotations(&res), sorted(backdated));
    assert_eq!(res.tips, vec![demotion]);
    let mut graph = build(h.rotations());
    assert_eq!(graph.frontier().len(), count + 1);
    // The sixteen smallest hashes of the frontier, as v3 named them, are
    // all j's: a merge on them would be based on j's world, p in it.
    let mut naive = graph.frontier();
    naive.truncate(crate::graph::MAX_PARENTS);
    assert!(!naive.contains(&demotion));
    assert!(graph.past_roster_of(&naive).contains(id(p)));

    let parents = graph
        .parents_for(id(F), &[], &res, &Default::default())
        .unwrap()
        .hashes;
    assert_eq!(parents, vec![demotion]);
    let merge = Rotation {
        hash: hash("M"),
        author: id(F),
        parents,
        changes: vec![],
    };
    graph.insert(merge).unwrap();
    let merged = graph.resolve();
    assert_eq!(merged.current, Some(hash("M")));
    assert_eq!(graph.own_roster(hash("M")), Some(&res.roster));
    assert!(!res.roster.contains(id(p)));
    assert_eq!(
        roles(&merged),
        expect_roles(&[(F, Owner), (j, Member), (x, Member)])
    );
}

#[test]
fn a_demoted_admins_16_backdated_rotations_crowd_out_no_tip() {
    demoted_admin_widens_the_frontier(16);
}

#[test]
fn a_demoted_admins_17_backdated_rotations_crowd_out_no_tip() {
    demoted_admin_widens_the_frontier(17);
}

#[test]
fn a_demoted_admins_64_backdated_rotations_crowd_out_no_tip() {
    demoted_admin_widens_the_frontier(64);
}

/// More applied tips than one rotation names (SPEC.md §5.1): twenty admins
/// rotate R1 at once, a1 promoting x and a2 adding y, while F removes x
/// with a rotation whose hash sorts after all of theirs. The merge steps name F's removal
/// first, so no step is based on a roster holding x; two steps end in one
/// current tip.
#[test]
fn more_tips_than_parents_merge_in_steps_within_the_roster() {
    let (x, y) = (30, 31);
    let admins: Vec<u8> = (1..=20).collect();
    let mut h = History::new();
    let mut setup: Vec<Change> = admins.iter().map(|&a| add(a, Admin)).collect();
    setup.push(add(x, Member));
    h.rotate("R1", F, &["G"], setup);
    let mut tips: Vec<EventHash> = admins
        .iter()
        .map(|&a| {
            let changes = match a {
                1 => vec![set_role(x, Admin)],
                2 => vec![add(y, Member)],
                _ => vec![],
            };
            h.rotate(&format!("A{a}"), a, &["R1"], changes)
        })
        .collect();
    let highest = tips.iter().copied().max().unwrap();
    let removal_name = names_beside("RF", highest, false, 1).remove(0);
    let removal = h.rotate(&removal_name, F, &["R1"], vec![remove(x)]);
    tips.push(removal);
    let mut graph = build(h.rotations());
    let res = graph.resolve();
    assert_eq!(res.tips, sorted(tips.clone()));
    assert!(!res.roster.contains(id(x)) && res.roster.contains(id(y)));
    assert!(res.needs_merge());
    // Naming the sixteen smallest would wrap the merge's secret to x.
    let mut naive = sorted(tips);
    naive.truncate(crate::graph::MAX_PARENTS);
    assert!(graph.past_roster_of(&naive).contains(id(x)));

    let mut steps = 0;
    while graph.resolve().needs_merge() {
        let res = graph.resolve();
        let parents = graph
            .parents_for(id(F), &[], &res, &Default::default())
            .unwrap()
            .hashes;
        assert!(parents.len() >= 2 && parents.len() <= crate::graph::MAX_PARENTS);
        assert!(graph.past_roster_of(&parents).ids_within(&res.roster));
        steps += 1;
        let step = Rotation {
            hash: hash(&format!("M{steps}")),
            author: id(F),
            parents,
            changes: vec![],
        };
        graph.insert(step).unwrap();
        assert!(
            graph
                .own_roster(hash(&format!("M{steps}")))
                .unwrap()
                .ids_within(&res.roster)
        );
        assert!(steps <= 2, "steps do not end");
    }
    let merged = graph.resolve();
    assert_eq!(steps, 2);
    assert_eq!(merged.tips, vec![hash("M2")]);
    assert_eq!(merged.current, Some(hash("M2")));
    assert_eq!(merged.roster, res.roster);
}
