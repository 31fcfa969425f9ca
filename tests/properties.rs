//! Invariants over random operation sequences (proptest).
//!
//! For any sequence of operations by any members: reopening the file rebuilds
//! exactly the state that was built incrementally, refused operations change
//! nothing, and with seeded randomness and clock two builds give byte-identical
//! chains.

mod common;

use std::path::Path;

use common::keys;
use meshlog::{Error, Mesh, MeshOptions, Role};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Later operations are made by member `n` (0 is the founder).
    ActAs(u8),
    SetEnabled(bool),
    Add(u8, bool),
    Remove(u8),
    SetRole(u8, bool),
    App(u16),
    Rotate,
}

fn op() -> impl Strategy<Value = Op> {
    // Weighted so that sequences reach deep states: members get added and
    // enabled more often than they get removed or disabled.
    prop_oneof![
        2 => (0u8..4).prop_map(Op::ActAs),
        3 => prop::bool::weighted(0.8).prop_map(Op::SetEnabled),
        4 => (1u8..4, any::<bool>()).prop_map(|(n, admin)| Op::Add(n, admin)),
        1 => (0u8..4).prop_map(Op::Remove),
        2 => (0u8..4, any::<bool>()).prop_map(|(n, admin)| Op::SetRole(n, admin)),
        2 => (0u16..300).prop_map(Op::App),
        1 => Just(Op::Rotate),
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

fn role(admin: bool) -> Role {
    if admin { Role::Admin } else { Role::Member }
}

/// Runs the operations; returns every stored record and the final state.
fn build(path: &Path, ops: &[Op]) -> (Vec<Vec<u8>>, meshlog::MeshState) {
    let mut mesh = seeded(0).create(path, member_keys(0), "prop").unwrap();
    mesh.set_enabled(true).unwrap();
    for (step, op) in ops.iter().enumerate() {
        let before = mesh.state().clone();
        let result = match op {
            Op::ActAs(n) => {
                drop(mesh);
                mesh = seeded(step + 1).open(path, member_keys(*n)).unwrap();
                assert_eq!(mesh.state(), &before, "reopen rebuilds the same state");
                continue;
            }
            Op::SetEnabled(on) => mesh.set_enabled(*on),
            Op::Add(n, admin) => mesh.add_member(member_keys(*n).public(), role(*admin)),
            Op::Remove(n) => mesh.remove_member(member_keys(*n).member_id()),
            Op::SetRole(n, admin) => mesh.set_role(member_keys(*n).member_id(), role(*admin)),
            Op::App(len) => mesh.append_app("prop", &vec![7; usize::from(*len)]),
            Op::Rotate => mesh.rotate("refresh"),
        };
        match result {
            Ok(receipt) => assert_eq!(receipt.seq, before.len()),
            Err(error) => {
                assert!(
                    matches!(
                        error,
                        Error::Rejected(_)
                            | Error::Disabled { .. }
                            | Error::AlreadyMember { .. }
                            | Error::UnknownMember { .. }
                            | Error::RoleUnchanged { .. }
                    ),
                    "unexpected error {error}"
                );
                assert_eq!(mesh.state(), &before, "a refused operation changes nothing");
            }
        }
    }
    let state = mesh.state().clone();
    if std::env::var_os("MESHLOG_PROP_STATS").is_some() {
        eprintln!("events {} epochs {}", state.len(), state.epochs().len());
    }
    let mut records = Vec::new();
    mesh.for_each_event(0, |event| {
        records.push(event.to_record());
        true
    })
    .unwrap();
    (records, state)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn reopen_equals_incremental_and_builds_are_reproducible(ops in prop::collection::vec(op(), 1..28)) {
        let dir = tempfile::tempdir().unwrap();
        let (first, state) = build(&dir.path().join("a"), &ops);
        let (second, _) = build(&dir.path().join("b"), &ops);
        prop_assert_eq!(&first, &second, "seeded builds are byte-identical");

        let reopened = Mesh::open_read_only(dir.path().join("a")).unwrap();
        prop_assert_eq!(reopened.state(), &state);
        prop_assert_eq!(reopened.digest(), state.digest());
        prop_assert_eq!(first.len() as u64, state.len());

        // Every member of every epoch recovers that epoch's secret, and the
        // same one as every other member.
        drop(reopened);
        for epoch in state.epochs() {
            let mut fingerprints = Vec::new();
            for entry in &epoch.roster {
                let n = (0u8..4).find(|n| member_keys(*n).member_id() == entry.id).unwrap();
                let view = Mesh::open(dir.path().join("a"), member_keys(n)).unwrap();
                fingerprints.push(view.epoch_secret(epoch.epoch).unwrap().fingerprint());
            }
            fingerprints.dedup();
            prop_assert_eq!(fingerprints.len(), 1);
        }
    }
}
