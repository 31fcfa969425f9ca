//! Fuzzing the v3 rules with real signatures and envelopes (feature
//! `fuzzing`; the targets in `fuzz/` call [`converge`] and [`decode`]
//! through `meshlog::fuzzing`). Every helper panics on a broken invariant:
//! that is how a fuzzer reports a finding.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::OnceLock;

use arbitrary::Unstructured;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::event::{Body, Change, Event, SignedEvent, SignedPackage, VERSION};
use super::feeds::Insert;
use super::graph::Role;
use super::mesh::epoch_to_write;
use super::verify::{Ledger, Verdict};
use crate::keys::LocalKeys;

const PEERS: usize = 4;

fn keys(n: u8) -> LocalKeys {
    LocalKeys::from_secret_bytes(&[n + 1; 32], &[n + 101; 32])
}

/// The founder's ledger after the founder enabled itself and added an
/// admin (1) and two members (2, 3); member 4 is added by the fuzzer's ops.
fn founded() -> &'static Ledger {
    static FOUNDED: OnceLock<Ledger> = OnceLock::new();
    FOUNDED.get_or_init(|| {
        let mut rng = StdRng::from_seed([7; 32]);
        let f = keys(0);
        let (mut ledger, genesis) = Ledger::create(&f, "fuzz", 1, &mut rng).unwrap();
        ledger
            .write(
                &f,
                2,
                Body::SetEnabled {
                    epoch: genesis,
                    enabled: true,
                },
            )
            .unwrap();
        let mut changes: Vec<Change> = (1..PEERS as u8)
            .map(|n| Change::Add {
                package: SignedPackage::sign(&keys(n), 1),
                role: if n == 1 { Role::Admin } else { Role::Member },
            })
            .collect();
        changes.sort_by_key(Change::member);
        ledger.rotate(&f, changes, "team", 3, &mut rng).unwrap();
        ledger
    })
}

/// `into` takes what `from` sends for its frontier (SPEC-v3.md §7), until
/// nothing more moves. Every event must be accepted: no honest write may be
/// refused because of another's. Returns how many moved.
fn sync(into: &mut Ledger, from: &Ledger) -> usize {
    let mut moved = 0;
    loop {
        let mut pending: Vec<SignedEvent> = from
            .missing_for(&into.frontier())
            .into_iter()
            .cloned()
            .collect();
        pending.retain(|record| !into.contains(record.hash()));
        if pending.is_empty() {
            return moved;
        }
        while !pending.is_empty() {
            let before = pending.len();
            let mut waiting = Vec::new();
            for record in pending {
                match into.insert(record.clone()) {
                    Ok(Insert::New) => moved += 1,
                    Ok(Insert::Known) => {}
                    Ok(Insert::Missing(_)) => waiting.push(record),
                    Err(rejection) => panic!("a peer refused what another accepted: {rejection}"),
                }
            }
            assert!(waiting.len() < before, "records wait for nothing sent");
            pending = waiting;
        }
    }
}

/// Random writes, rotations, merges, forked feeds and partial syncs among
/// four peers; then everyone syncs with everyone. Every peer must hold the
/// same digest, and a ledger rebuilt from the records in reverse order must
/// too.
pub fn converge(data: &[u8]) {
    run(data);
}

/// [`converge`]; returns how many equivocations the converged peers hold.
fn run(data: &[u8]) -> usize {
    let mut u = Unstructured::new(data);
    let mut peers: Vec<Ledger> = (0..PEERS).map(|_| founded().clone()).collect();
    let mut rng = StdRng::from_seed([9; 32]);
    let mut time = 10u64;
    for _ in 0..48 {
        if u.is_empty() {
            break;
        }
        let op: u8 = u.int_in_range(0..=6).unwrap_or(0);
        let who = u.int_in_range(0..=PEERS as u8 - 1).unwrap_or(0);
        let k = keys(who);
        if op == 4 {
            let other = usize::from(u.int_in_range(0..=PEERS as u8 - 1).unwrap_or(0));
            let from = peers[other].clone();
            sync(&mut peers[usize::from(who)], &from);
            continue;
        }
        let ledger = &mut peers[usize::from(who)];
        time += 1;
        let before = ledger.len();
        let written = match op {
            0 | 1 => epoch_to_write(ledger, k.member_id()).map(|epoch| {
                let body = if op == 0 {
                    Body::App {
                        epoch,
                        kind: "note".into(),
                        payload: vec![who],
                    }
                } else {
                    Body::SetEnabled {
                        epoch,
                        enabled: u.arbitrary().unwrap_or(true),
                    }
                };
                ledger.write(&k, time, body).is_ok()
            }),
            2 => {
                let target = u.int_in_range(0..=PEERS as u8).unwrap_or(1);
                let role = match u.int_in_range(0..=2).unwrap_or(0) {
                    0 => Role::Member,
                    1 => Role::Admin,
                    _ => Role::Owner,
                };
                let change = match u.int_in_range(0..=2).unwrap_or(0) {
                    0 => Change::Add {
                        package: SignedPackage::sign(&keys(target), 1),
                        role,
                    },
                    1 => Change::Remove {
                        member: keys(target).member_id(),
                    },
                    _ => Change::SetRole {
                        member: keys(target).member_id(),
                        role: role.min(Role::Admin),
                    },
                };
                Some(
                    ledger
                        .rotate(&k, vec![change], "fuzz", time, &mut rng)
                        .is_ok(),
                )
            }
            3 => Some(ledger.rotate(&k, vec![], "merge", time, &mut rng).is_ok()),
            5 => {
                // A fork of the peer's own feed: a second event at the
                // position of its last one, naming the epoch that one named.
                let (seq, head, _) = ledger.state().next_position(k.member_id());
                let last = ledger.record(head).cloned();
                last.and_then(|last| {
                    let epoch = last.event().epoch()?;
                    let forked = SignedEvent::sign(
                        Event {
                            version: VERSION,
                            group: ledger.group(),
                            author: k.member_id(),
                            seq: seq.checked_sub(1)?,
                            prev: last.event().prev,
                            time,
                            body: Body::SetEnabled {
                                epoch,
                                enabled: true,
                            },
                        },
                        &k,
                    );
                    Some(ledger.insert(forked).is_ok())
                })
            }
            _ => None,
        };
        if written == Some(false) {
            assert_eq!(ledger.len(), before, "a refused write changed the ledger");
        }
    }
    // Heal: everyone syncs with everyone until nothing moves.
    loop {
        let mut moved = 0;
        for i in 0..PEERS {
            for j in 0..PEERS {
                if i != j {
                    let from = peers[j].clone();
                    moved += sync(&mut peers[i], &from);
                }
            }
        }
        if moved == 0 {
            break;
        }
    }
    let digest = |ledger: &Ledger| ledger.digest();
    let expected = digest(&peers[0]);
    for peer in &peers {
        assert_eq!(digest(peer), expected, "synced peers differ");
    }
    // The same set, rebuilt in reverse arrival order.
    let records: Vec<SignedEvent> = peers[0].records().cloned().collect();
    let mut rebuilt = Ledger::found(records[0].clone()).unwrap();
    let mut pending: Vec<SignedEvent> = records[1..].iter().rev().cloned().collect();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|record| match rebuilt.verify(record.clone()).unwrap() {
            Verdict::Verified(verified) => {
                rebuilt.commit(*verified);
                false
            }
            Verdict::Known => false,
            Verdict::Missing(_) => true,
        });
        assert!(pending.len() < before, "a rebuild stalled");
    }
    assert_eq!(
        digest(&rebuilt),
        expected,
        "arrival order changed the state"
    );
    rebuilt.state().equivocations().len()
}

/// Arbitrary bytes as a v3 record and as event bytes: nothing panics, what
/// decodes re-encodes to the same bytes, and verifying it against a live
/// ledger changes nothing unless it is accepted.
pub fn decode(data: &[u8]) {
    if let Ok(event) = Event::decode(data) {
        assert_eq!(event.encode(), data, "event re-encodes differently");
    }
    let mut ledger = founded().clone();
    let before = ledger.len();
    match ledger.verify_record(data) {
        Ok(Verdict::Verified(verified)) => {
            ledger.commit(*verified);
            assert_eq!(ledger.len(), before + 1);
        }
        Ok(Verdict::Known | Verdict::Missing(_)) | Err(_) => {
            assert_eq!(ledger.len(), before, "a refusal changed the ledger");
        }
    }
    if let Ok(record) = SignedEvent::from_record(data) {
        assert_eq!(record.to_record(), data, "record re-encodes differently");
    }
}

/// Records of the founded ledger, for a seed corpus.
pub fn sample_records() -> Vec<Vec<u8>> {
    founded().records().map(SignedEvent::to_record).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn fuzz_entry_points_run_on_plain_inputs() {
        super::converge(&[]);
        super::converge(&[
            0, 1, 1, 2, 4, 0, 2, 1, 3, 1, 5, 2, 0, 3, 1, 4, 3, 0, 6, 6, 6,
        ]);
        for record in super::sample_records() {
            super::decode(&record);
            super::decode(&record[64..]);
        }
        super::decode(&[]);
    }
}
