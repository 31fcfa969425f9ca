//! Invariants of the public API over random histories (proptest): any
//! member acting on one file, in any order, with writes the rules refuse
//! mixed in.
//!
//! - a refused write changes nothing, and is a refusal (`ErrorClass::Refusal`),
//!   never a verification failure: what this build makes, it accepts;
//! - reopening the file rebuilds exactly the state built incrementally;
//! - with seeded randomness and clock, two builds give byte-identical files;
//! - every member of an epoch's own roster recovers that epoch's secret, the
//!   same one, and nobody else does.
//!
//! Convergence across peers is `sync.rs`'s property test; the resolution's
//! independence of arrival order is `src/tests/properties.rs`'s.

mod common;

use std::path::Path;

use common::{dump, keys};
use meshlog::{Error, ErrorClass, EventHash, MemberId, Mesh, MeshOptions, Role};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Later operations are made by member `n` (0 is the founder).
    ActAs(u8),
    SetEnabled(bool),
    Add(u8, Role),
    Remove(u8),
    SetRole(u8, Role),
    App(u16),
    Refresh,
    /// The acting member posts its own package at this counter.
    PostPackage(u64),
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![4 => Just(Role::Member), 3 => Just(Role::Admin), 1 => Just(Role::Owner)]
}

fn op() -> impl Strategy<Value = Op> {
    // Weighted so that sequences reach deep states: members get added and
    // enabled more often than they get removed or disabled.
    prop_oneof![
        2 => (0u8..4).prop_map(Op::ActAs),
        3 => prop::bool::weighted(0.8).prop_map(Op::SetEnabled),
        4 => (1u8..4, role()).prop_map(|(n, role)| Op::Add(n, role)),
        1 => (0u8..4).prop_map(Op::Remove),
        2 => (0u8..4, role()).prop_map(|(n, role)| Op::SetRole(n, role)),
        2 => (0u16..300).prop_map(Op::App),
        1 => Just(Op::Refresh),
        1 => (0u64..4).prop_map(Op::PostPackage),
    ]
}

fn member_keys(n: u8) -> meshlog::LocalKeys {
    keys(n + 1)
}

fn seeded(step: usize) -> MeshOptions {
    let mut now = 1_900_000_000 + step as u64 * 1000;
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(step as u64).to_le_bytes());
    MeshOptions::new().insecure_seed(seed).clock(move || {
        now += 1;
        now
    })
}

/// What a mesh's state shows through the public API.
#[derive(Debug, PartialEq)]
struct Snapshot {
    digest: meshlog::StateDigest,
    len: usize,
    roster: Vec<(MemberId, Option<Role>, bool)>,
    tips: Vec<EventHash>,
    current: Option<EventHash>,
    writer: Option<EventHash>,
    epochs: Vec<meshlog::EpochInfo>,
    statuses: Vec<(EventHash, Option<meshlog::EventStatus>)>,
}

fn snapshot(mesh: &Mesh) -> Snapshot {
    let roster = mesh.roster();
    Snapshot {
        digest: mesh.digest(),
        len: mesh.len(),
        roster: roster
            .iter()
            .map(|(id, _)| (*id, roster.role_of(*id), mesh.is_member_enabled(*id)))
            .collect(),
        tips: mesh.tips().to_vec(),
        current: mesh.current_epoch(),
        writer: mesh.writer_epoch(),
        epochs: mesh.epochs(),
        statuses: mesh
            .log()
            .map(|entry| (entry.event.hash(), entry.status))
            .collect(),
    }
}

/// Runs the operations on a new file at `path`; returns the final state.
fn build(path: &Path, ops: &[Op]) -> Snapshot {
    let mut mesh = seeded(0).create(path, member_keys(0), "prop").unwrap();
    mesh.set_enabled(true).unwrap();
    let mut actor = 0u8;
    for (step, op) in ops.iter().enumerate() {
        let before = snapshot(&mesh);
        let result = match op {
            Op::ActAs(n) => {
                drop(mesh);
                actor = *n;
                // One file written by several members: a shared copy.
                mesh = seeded(step + 1)
                    .shared_copy(true)
                    .open(path, member_keys(*n))
                    .unwrap();
                assert_eq!(snapshot(&mesh), before, "reopen rebuilds the same state");
                continue;
            }
            Op::SetEnabled(on) => mesh.set_enabled(*on),
            Op::Add(n, role) => mesh.add_member(member_keys(*n).package(), *role),
            Op::Remove(n) => mesh.remove_member(member_keys(*n).member_id()),
            Op::SetRole(n, role) => mesh.set_role(member_keys(*n).member_id(), *role),
            Op::App(len) => mesh.append_app("prop", &vec![7; usize::from(*len)]),
            Op::Refresh => mesh.refresh("refresh"),
            Op::PostPackage(counter) => {
                mesh.post_package(member_keys(actor).package_with_counter(*counter))
            }
        };
        match result {
            Ok(hash) => {
                assert_eq!(mesh.len(), before.len + 1);
                assert!(mesh.event(hash).is_some());
            }
            Err(error) => {
                assert_eq!(
                    error.class(),
                    ErrorClass::Refusal,
                    "step {step} {op:?}: {error}"
                );
                assert!(
                    matches!(
                        error,
                        Error::Refused(_)
                            | Error::VoidChange { .. }
                            | Error::WaitsForMerge
                            | Error::NotInRoster { .. }
                    ),
                    "{error}"
                );
                assert_eq!(snapshot(&mesh), before, "a refused write changes nothing");
            }
        }
    }
    snapshot(&mesh)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn reopen_equals_incremental_and_builds_are_reproducible(ops in prop::collection::vec(op(), 1..28)) {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let built = build(&a, &ops);
        let again = build(&b, &ops);
        prop_assert_eq!(&built, &again);
        prop_assert_eq!(dump(&a), dump(&b), "seeded builds are byte-identical");

        let reopened = Mesh::open_read_only(&a).unwrap();
        prop_assert_eq!(&snapshot(&reopened), &built);
        drop(reopened);

        // Every member of an epoch's own roster recovers its secret, the
        // same one; the others recover nothing.
        let views: Vec<Mesh> = (0u8..4)
            .map(|n| {
                let path = dir.path().join(format!("view{n}"));
                std::fs::copy(&a, &path).unwrap();
                MeshOptions::new()
                    .shared_copy(true)
                    .open(&path, member_keys(n))
                    .unwrap()
            })
            .collect();
        for epoch in &built.epochs {
            let mut fingerprints = Vec::new();
            for (n, view) in views.iter().enumerate() {
                let member = member_keys(n as u8).member_id();
                match view.epoch_secret(epoch.hash) {
                    Ok(secret) => {
                        prop_assert!(epoch.roster.contains(member));
                        fingerprints.push(secret.fingerprint());
                    }
                    Err(error) => {
                        prop_assert!(!epoch.roster.contains(member), "{}", error);
                    }
                }
            }
            prop_assert_eq!(fingerprints.len(), epoch.roster.len());
            fingerprints.dedup();
            prop_assert_eq!(fingerprints.len(), 1);
        }
    }
}
