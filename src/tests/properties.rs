//! Invariants of the epoch graph over random histories (proptest).
//!
//! Random rotations by random members (an owner, admins, members, and members
//! who get promoted, demoted or removed along the way) on random frontiers,
//! with random changes. Whatever the graph accepts is then replayed in other
//! topological orders: acceptance and resolution must not change, and the
//! guarantees of SPEC.md §5.6 must hold.

use proptest::prelude::*;

use super::traps::{genesis, hash, id, package, package_at};
use crate::graph::{Change, EpochGraph, Resolution, Role, Rotation, Status};
use crate::ids::EventHash;

const MEMBERS: u8 = 7;

/// One random rotation: its author, picks among the accepted rotations for
/// its parents, and (kind, target, role) triples for its changes.
#[derive(Debug, Clone)]
pub(crate) struct Op {
    author: u8,
    parent_picks: Vec<u16>,
    changes: Vec<(u8, u8, u8)>,
}

pub(crate) fn op() -> impl Strategy<Value = Op> {
    (
        // The founder and the first admins write most rotations, so that
        // histories grow deep and contested.
        prop_oneof![3 => 0u8..3, 2 => 0..MEMBERS],
        prop::collection::vec(any::<u16>(), 1..4),
        prop::collection::vec((0u8..4, 0..MEMBERS, 0u8..3), 0..4),
    )
        .prop_map(|(author, parent_picks, changes)| Op {
            author,
            parent_picks,
            changes,
        })
}

fn role(n: u8) -> Role {
    match n {
        0 => Role::Member,
        1 => Role::Admin,
        _ => Role::Owner,
    }
}

/// The rotation `op` describes after `genesis` and the `accepted`
/// rotations, its parents reduced to a frontier by `is_ancestor` (the
/// graph's, or the reference model's own).
pub(crate) fn rotation(
    genesis: EventHash,
    accepted: &[EventHash],
    is_ancestor: impl Fn(EventHash, EventHash) -> bool,
    n: usize,
    op: &Op,
) -> Rotation {
    let mut nodes = vec![genesis];
    nodes.extend_from_slice(accepted);
    let mut parents: Vec<EventHash> = op
        .parent_picks
        .iter()
        .filter_map(|pick| nodes.get(usize::from(*pick) % nodes.len()).copied())
        .collect();
    parents.sort();
    parents.dedup();
    let frontier: Vec<EventHash> = parents
        .iter()
        .copied()
        .filter(|p| !parents.iter().any(|q| is_ancestor(*p, *q)))
        .collect();
    let mut changes: Vec<Change> = Vec::new();
    for &(kind, target, r) in &op.changes {
        let change = match kind {
            0 => Change::Add {
                package: package(target),
                role: role(r),
            },
            1 => Change::Remove { member: id(target) },
            2 => Change::SetRole {
                member: id(target),
                role: role(r.min(1)),
            },
            _ => Change::UpdateKeys {
                package: package_at(target, u64::from(r) + 1),
            },
        };
        if !changes.iter().any(|c| c.member() == change.member()) {
            changes.push(change);
        }
    }
    changes.sort_by_key(Change::member);
    Rotation {
        hash: hash(&format!("rotation {n}")),
        author: id(op.author),
        parents: frontier,
        changes,
    }
}

/// Inserts `order` into a fresh graph; every rotation must be accepted.
fn replay(order: &[&Rotation]) -> EpochGraph {
    let mut graph = genesis();
    for rotation in order {
        assert_eq!(
            graph.insert((*rotation).clone()).map(|_| ()),
            Ok(()),
            "acceptance changed with arrival order"
        );
    }
    graph
}

/// A topological order of `rotations` that, among the rotations ready at
/// each step, takes the one whose key is smallest.
fn shuffled<'a>(rotations: &'a [Rotation], keys: &[u32]) -> Vec<&'a Rotation> {
    let mut order: Vec<&Rotation> = Vec::new();
    let mut placed = std::collections::BTreeSet::from([hash("G")]);
    while order.len() < rotations.len() {
        let next = rotations
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                !placed.contains(&r.hash) && r.parents.iter().all(|p| placed.contains(p))
            })
            .min_by_key(|(i, _)| keys.get(*i).copied().unwrap_or(0))
            .map(|(_, r)| r);
        let Some(next) = next else { break };
        placed.insert(next.hash);
        order.push(next);
    }
    order
}

fn concurrent(graph: &EpochGraph, a: EventHash, b: EventHash) -> bool {
    a != b && !graph.is_ancestor(a, b) && !graph.is_ancestor(b, a)
}

fn check_guarantees(graph: &EpochGraph, rotations: &[Rotation], res: &Resolution) {
    // Owners are never removed: the founder stays an owner.
    assert_eq!(res.roster.role_of(graph.founder()), Some(Role::Owner));
    // Every owner is the founder or was granted by an owner's rotation.
    for (member, entry) in res.roster.iter() {
        if entry.role == Role::Owner && *member != graph.founder() {
            assert!(rotations.iter().any(|r| {
                graph.author_is_owner(r.hash)
                    && r.changes.iter().any(|c| {
                        matches!(c, Change::Add { package, role: Role::Owner } if package.member() == *member)
                    })
            }));
        }
    }
    // A rotation concurrent with an owner's removal or demotion of its
    // author does not apply, unless its author is an owner.
    for fired in rotations {
        if !graph.author_is_owner(fired.hash) {
            continue;
        }
        for change in &fired.changes {
            let (Change::Remove { member }
            | Change::SetRole {
                member,
                role: Role::Member,
            }) = change
            else {
                continue;
            };
            for other in rotations {
                if other.author == *member
                    && !graph.author_is_owner(other.hash)
                    && concurrent(graph, fired.hash, other.hash)
                {
                    assert_eq!(res.statuses.get(&other.hash), Some(&Status::Void));
                }
            }
        }
    }
    // Tips are applied and pairwise concurrent.
    for a in &res.tips {
        assert!(res.is_applied(*a));
        for b in &res.tips {
            assert!(a == b || concurrent(graph, *a, *b));
        }
    }
    // The current epoch's secret reaches exactly R*; writers' epochs
    // reach no one outside R*.
    if let Some(current) = res.current {
        assert_eq!(graph.own_roster(current), Some(&res.roster));
        assert_eq!(res.writer, Some(current));
    }
    if let Some(writer) = res.writer {
        assert!(
            graph
                .own_roster(writer)
                .is_some_and(|own| own.ids_within(&res.roster))
        );
    }
}

/// The founder adds admins 1, 2 and members 3, 4; then every rotation of
/// `ops` the graph accepts. Returns the graph and the accepted rotations, in
/// the order taken.
fn history(ops: &[Op]) -> (EpochGraph, Vec<Rotation>) {
    let mut graph = genesis();
    let mut rotations = vec![Rotation {
        hash: hash("setup"),
        author: id(0),
        parents: vec![graph.genesis()],
        changes: {
            let mut c = vec![
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
            c.sort_by_key(Change::member);
            c
        },
    }];
    assert!(graph.insert(rotations[0].clone()).is_ok());
    for (n, op) in ops.iter().enumerate() {
        let accepted: Vec<EventHash> = rotations.iter().map(|r| r.hash).collect();
        let rotation = rotation(
            graph.genesis(),
            &accepted,
            |a, d| graph.is_ancestor(a, d),
            n,
            op,
        );
        if graph.insert(rotation.clone()).is_ok() {
            rotations.push(rotation);
        }
    }
    (graph, rotations)
}

/// The largest set of rotations that are void, past each author's first
/// `kept` such rotations, and parents of none but each other (SPEC.md §6.4:
/// among rotations, its authors absent from `R*` or not): `rotations` in an
/// order parents come first, scanned from the newest.
fn left_out(
    rotations: &[Rotation],
    res: &Resolution,
    kept: usize,
) -> std::collections::BTreeSet<EventHash> {
    let is_candidate = |r: &Rotation| res.statuses.get(&r.hash) == Some(&Status::Void);
    let mut exempt = std::collections::BTreeSet::new();
    let mut seen: std::collections::BTreeMap<crate::ids::MemberId, usize> = Default::default();
    for r in rotations.iter().filter(|r| is_candidate(r)) {
        let count = seen.entry(r.author).or_default();
        if *count < kept {
            exempt.insert(r.hash);
        }
        *count += 1;
    }
    let mut out = std::collections::BTreeSet::new();
    for (i, r) in rotations.iter().enumerate().rev() {
        let candidate = is_candidate(r) && !exempt.contains(&r.hash);
        let children_out = rotations
            .iter()
            .skip(i + 1)
            .filter(|c| c.parents.contains(&r.hash))
            .all(|c| out.contains(&c.hash));
        if candidate && children_out {
            out.insert(r.hash);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn resolution_depends_on_the_set_alone(
        ops in prop::collection::vec(op(), 4..32),
        first_keys in prop::collection::vec(any::<u32>(), 40),
        second_keys in prop::collection::vec(any::<u32>(), 40),
    ) {
        let (mut graph, rotations) = history(&ops);
        let resolution = graph.resolve();
        check_guarantees(&graph, &rotations, &resolution);

        for keys in [&first_keys, &second_keys] {
            let order = shuffled(&rotations, keys);
            prop_assert_eq!(order.len(), rotations.len());
            let other = replay(&order);
            prop_assert_eq!(&other.resolve(), &resolution);
            for r in &rotations {
                prop_assert_eq!(other.own_roster(r.hash), graph.own_roster(r.hash));
            }
        }

        // The founder's merge of the whole frontier is current, and
        // changes nothing else.
        let frontier = graph.frontier();
        if frontier.len() <= crate::graph::MAX_PARENTS {
            let merge = Rotation {
                hash: hash("founder's merge"),
                author: id(0),
                parents: frontier,
                changes: vec![],
            };
            prop_assert!(graph.insert(merge).is_ok());
            let merged = graph.resolve();
            prop_assert_eq!(merged.current, Some(hash("founder's merge")));
            prop_assert_eq!(&merged.roster, &resolution.roster);
            for (hash, status) in &resolution.statuses {
                prop_assert_eq!(merged.statuses.get(hash), Some(status));
            }
        }
    }

    /// What SPEC.md §6.4 claims of the rotations it leaves out:
    /// without them, `R*`, the tips, the current and writer epochs and every
    /// other status are unchanged, and nothing more would be left out.
    #[test]
    fn leaving_out_void_leaves_changes_nothing_else(
        ops in prop::collection::vec(op(), 4..40),
    ) {
        let (graph, rotations) = history(&ops);
        let resolution = graph.resolve();
        // Every such rotation, and all but each author's first.
        for exempt in [0, 1] {
            let out = left_out(&rotations, &resolution, exempt);
            let kept: Vec<&Rotation> = rotations.iter().filter(|r| !out.contains(&r.hash)).collect();
            let without = replay(&kept).resolve();
            prop_assert_eq!(&without.roster, &resolution.roster);
            prop_assert_eq!(&without.tips, &resolution.tips);
            prop_assert_eq!(without.current, resolution.current);
            prop_assert_eq!(without.writer, resolution.writer);
            for r in &kept {
                prop_assert_eq!(without.statuses.get(&r.hash), resolution.statuses.get(&r.hash));
            }
            let kept: Vec<Rotation> = kept.into_iter().cloned().collect();
            prop_assert!(left_out(&kept, &without, exempt).is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// A void rotation never applies again as rotations arrive (A2 only
    /// grows with the set, and a base only loses what its voided ancestors
    /// kept), so a peer that left one out (SPEC.md §6.4) never lacks an
    /// applied rotation because it did.
    #[test]
    fn a_void_rotation_stays_void_as_rotations_arrive(ops in prop::collection::vec(op(), 4..48)) {
        let (_, rotations) = history(&ops);
        let mut graph = genesis();
        let mut void = std::collections::BTreeSet::new();
        for rotation in &rotations {
            prop_assert!(graph.insert(rotation.clone()).is_ok());
            for (hash, status) in &graph.resolve().statuses {
                if *status == Status::Void {
                    void.insert(*hash);
                } else {
                    prop_assert!(!void.contains(hash), "a void rotation applies again");
                }
            }
        }
    }
}

/// A linear history of 100,000 epochs, then a rotation backdated onto the
/// first: the graph holds a few hundred bytes a rotation (a set of
/// ancestors per rotation held 1.25 GB at this length), and resolving after
/// the backdated one, which forks the graph below nearly everything,
/// still gives the resolution from scratch (checked inside `resolve`).
#[test]
fn a_long_linear_history_costs_a_few_hundred_bytes_a_rotation() {
    const EPOCHS: usize = 100_000;
    let mut graph = genesis();
    let mut changes: Vec<Change> = (1..10)
        .map(|n| Change::Add {
            package: package(n),
            role: if n == 1 { Role::Admin } else { Role::Member },
        })
        .collect();
    changes.sort_by_key(Change::member);
    let setup = Rotation {
        hash: hash("setup"),
        author: id(0),
        parents: vec![hash("G")],
        changes,
    };
    assert!(graph.insert(setup).is_ok());
    let mut tip = hash("setup");
    for n in 0..EPOCHS {
        let rotation = Rotation {
            hash: hash(&format!("epoch {n}")),
            author: id(0),
            parents: vec![tip],
            changes: Vec::new(),
        };
        tip = rotation.hash;
        assert!(graph.insert(rotation).is_ok());
        if n.is_multiple_of(10_000) {
            // The resolution follows, a rotation at a time.
            assert_eq!(graph.resolve().current, Some(tip));
        }
    }
    let per_rotation = graph.approximate_bytes() / graph.len();
    println!("the graph holds about {per_rotation} bytes a rotation at {EPOCHS} epochs");
    assert!(
        per_rotation < 600,
        "{per_rotation} bytes a rotation at {EPOCHS} epochs"
    );
    assert!(graph.is_ancestor(hash("G"), tip) && graph.is_ancestor(hash("setup"), tip));
    assert!(!graph.is_ancestor(tip, hash("setup")));
    // An admin's refresh on the first epoch, concurrent with everything
    // after it: two tips, which the founder's merge joins again.
    let backdated = Rotation {
        hash: hash("backdated"),
        author: id(1),
        parents: vec![hash("epoch 0")],
        changes: Vec::new(),
    };
    assert!(graph.insert(backdated).is_ok());
    let started = std::time::Instant::now();
    let resolution = graph.resolve();
    println!(
        "resolving after a rotation backdated below {EPOCHS} epochs took {:?}",
        started.elapsed()
    );
    assert_eq!(resolution.tips.len(), 2);
    assert_eq!(resolution.statuses.len(), EPOCHS + 3);
    let mut parents = vec![tip, hash("backdated")];
    parents.sort();
    let merge = Rotation {
        hash: hash("merge"),
        author: id(0),
        parents,
        changes: Vec::new(),
    };
    assert!(graph.insert(merge).is_ok());
    let started = std::time::Instant::now();
    assert_eq!(graph.resolve().tips, vec![hash("merge")]);
    println!("and after the merge, {:?}", started.elapsed());
    assert!(graph.is_ancestor(hash("epoch 5"), hash("merge")));
    assert!(graph.is_ancestor(hash("backdated"), hash("merge")));
    assert!(!graph.is_ancestor(hash("backdated"), tip));
}
