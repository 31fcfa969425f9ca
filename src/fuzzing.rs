//! Helpers for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`).
//!
//! The targets are three-line shims; what they need lives here, next to the
//! code it exercises, with real signatures and envelopes throughout:
//!
//! - [`reducer`]: random histories of valid events (concurrent rotations,
//!   removals, owner grants, key updates, merges, app writes, flag changes,
//!   forked feeds) applied in random causal orders give one state, and the
//!   state built one event at a time equals the one rebuilt from the
//!   records in bulk;
//! - [`converge`]: the same histories among peers that sync partially, then
//!   fully: one digest everywhere;
//! - [`decode`]: hostile bytes through the strict codec (events, records,
//!   batches, frontiers, key packages) and the verifier;
//! - [`open`]: a mutated file, or mutated records stored in a fresh file,
//!   is refused with an error or opens as a valid mesh; never a panic.
//!
//! Every helper panics on a broken invariant: that is how a fuzzer reports
//! a finding.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

use arbitrary::Unstructured;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::batch::Batch;
use crate::event::{Body, Change, Event, SignedEvent, SignedPackage, VERSION};
use crate::feeds::Insert;
use crate::frontier::Frontier;
use crate::graph::Role;
use crate::ids::{EventHash, GroupId, StateDigest};
use crate::keys::LocalKeys;
use crate::mesh::epoch_to_write;
use crate::split_mix::SplitMix;
use crate::store::projection_rows;
use crate::verify::{Ledger, Verdict};
use crate::{Mesh, MeshOptions};

/// Members of the fuzzed histories: 0 is the founder (owner), 1 and 2 are
/// admins, 3 and 4 members; 5 and 6 start outside, for rotations to add.
const CAST: u8 = 7;
/// The founded ledger's members: 0 to 4.
const FOUNDED: u8 = 5;
/// Peers that write and sync: every founded member.
const PEERS: usize = FOUNDED as usize;
/// Operations read from one input, at most.
const MAX_OPS: usize = 48;

/// Bytes laid out as a sealed message of `group` and `epoch` with `kind` as
/// associated data (SPEC.md §16.1), with an all-zero ciphertext and tag.
fn sealed_layout(group: crate::GroupId, epoch: crate::EventHash, kind: &str) -> Vec<u8> {
    let mut bytes = crate::SEALED_APP_MAGIC.to_vec();
    bytes.extend_from_slice(group.as_bytes());
    bytes.extend_from_slice(epoch.as_bytes());
    bytes.extend_from_slice(&[0; 32]);
    bytes.extend_from_slice(&(kind.len() as u32).to_le_bytes());
    bytes.extend_from_slice(kind.as_bytes());
    bytes.resize(bytes.len() + crate::SEALED_OVERHEAD, 0);
    bytes
}

fn keys(n: u8) -> LocalKeys {
    LocalKeys::from_secret_bytes(&[n + 1; 32], &[n + 101; 32])
}

/// The founder's ledger after the founder enabled itself and added two
/// admins (1, 2) and two members (3, 4), who enabled themselves.
fn founded() -> &'static Ledger {
    static FOUNDED_LEDGER: OnceLock<Ledger> = OnceLock::new();
    FOUNDED_LEDGER.get_or_init(|| {
        let mut rng = StdRng::from_seed([7; 32]);
        let founder = keys(0);
        let (mut ledger, genesis) = Ledger::create(&founder, "fuzz", 1, &mut rng).unwrap();
        ledger
            .write(
                &founder,
                2,
                Body::SetEnabled {
                    epoch: genesis,
                    enabled: true,
                },
            )
            .unwrap();
        let mut changes: Vec<Change> = (1..FOUNDED)
            .map(|n| Change::Add {
                package: SignedPackage::sign(&keys(n), 1),
                role: if n <= 2 { Role::Admin } else { Role::Member },
            })
            .collect();
        changes.sort_by_key(Change::member);
        let team = ledger
            .rotate(&founder, changes, "team", 3, &mut rng)
            .unwrap();
        // Everyone enabled, so that the fuzzer's first ops already write.
        for n in 1..FOUNDED {
            let body = Body::SetEnabled {
                epoch: team,
                enabled: true,
            };
            ledger.write(&keys(n), 4, body).unwrap();
        }
        ledger
    })
}

/// `into` takes what `from` sends for its frontier (SPEC.md §7.1), until
/// nothing more moves. Every event must be accepted: no honest write may be
/// refused because of another's. Returns how many moved.
fn sync(into: &mut Ledger, from: &Ledger) -> usize {
    let mut moved = 0;
    loop {
        let mut pending: Vec<SignedEvent> = from
            .missing_for(&into.frontier())
            .into_iter()
            .map(std::borrow::Cow::into_owned)
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

/// A role from a small number.
fn role(n: u8) -> Role {
    match n % 3 {
        0 => Role::Member,
        1 => Role::Admin,
        _ => Role::Owner,
    }
}

/// A rotation's change, read from the input: an addition (any role, so
/// owner grants too), a removal, a role change or a newer key package, of
/// any member of the cast.
fn change(u: &mut Unstructured) -> Change {
    let target = u.int_in_range(0..=CAST - 1).unwrap_or(0);
    let role = role(u.int_in_range(0..=2).unwrap_or(0));
    match u.int_in_range(0..=3).unwrap_or(0) {
        0 => Change::Add {
            package: SignedPackage::sign(&keys(target), 1),
            role,
        },
        1 => Change::Remove {
            member: keys(target).member_id(),
        },
        2 => Change::SetRole {
            member: keys(target).member_id(),
            role: role.min(Role::Admin),
        },
        _ => Change::UpdateKeys {
            package: SignedPackage::sign(&keys(target), u.int_in_range(1..=4).unwrap_or(2)),
        },
    }
}

/// Peers writing on their own ledgers and syncing now and then: the
/// histories both [`reducer`] and [`converge`] check.
struct History {
    peers: Vec<Ledger>,
    rng: StdRng,
    time: u64,
}

impl History {
    fn new() -> History {
        History {
            peers: (0..PEERS).map(|_| founded().clone()).collect(),
            rng: StdRng::from_seed([9; 32]),
            time: 10,
        }
    }

    /// Runs the operations the input describes; an honest write its own
    /// ledger refuses must change nothing.
    fn run(&mut self, u: &mut Unstructured) {
        for _ in 0..MAX_OPS {
            if u.is_empty() {
                break;
            }
            self.step(u);
        }
    }

    /// One op: its number, the peer `who`, then its own bytes. 0: an app
    /// write; 1: a flag change; 2: a newer key package of `who`'s own; 3: a
    /// rotation of one to three changes ([`change`]); 4: a merge, or a
    /// refresh; 5: `who` syncs from another peer; 6: `who` forks its own
    /// feed; 7: nothing.
    fn step(&mut self, u: &mut Unstructured) {
        let op: u8 = u.int_in_range(0..=7).unwrap_or(0);
        let who = u.int_in_range(0..=FOUNDED - 1).unwrap_or(0);
        if op == 5 {
            let other = usize::from(u.int_in_range(0..=FOUNDED - 1).unwrap_or(0));
            if other != usize::from(who) {
                let from = self.peers[other].clone();
                sync(&mut self.peers[usize::from(who)], &from);
            }
            return;
        }
        let k = keys(who);
        self.time += 1;
        let time = self.time;
        let ledger = &mut self.peers[usize::from(who)];
        let before = ledger.len();
        let written = match op {
            0..=2 => epoch_to_write(ledger, k.member_id()).map(|epoch| {
                let body = match op {
                    // A sealed app event's payload as an auditor sees it
                    // (SPEC.md §16.5, V10): a sealed message's layout, of
                    // this group and epoch, with the kind as associated
                    // data; what it encrypts only members can check.
                    0 if u.arbitrary().unwrap_or(false) => Body::SealedApp {
                        epoch,
                        kind: "note".into(),
                        sealed: sealed_layout(ledger.group(), epoch, "note"),
                    },
                    0 => Body::App {
                        epoch,
                        kind: "note".into(),
                        payload: vec![who],
                    },
                    1 => Body::SetEnabled {
                        epoch,
                        enabled: u.arbitrary().unwrap_or(true),
                    },
                    // A newer package of the author's own, for a rotation
                    // to carry into the roster.
                    _ => Body::Keys {
                        epoch,
                        package: SignedPackage::sign(&k, u.int_in_range(1..=4).unwrap_or(2)),
                    },
                };
                ledger.write(&k, time, body).is_ok()
            }),
            3 => {
                let count = u.int_in_range(1..=3).unwrap_or(1);
                let mut changes: Vec<Change> = (0..count).map(|_| change(u)).collect();
                changes.sort_by_key(Change::member);
                changes.dedup_by_key(|change| change.member());
                Some(
                    ledger
                        .rotate(&k, changes, "fuzz", time, &mut self.rng)
                        .is_ok(),
                )
            }
            // A merge (several tips) or a refresh (one).
            4 => Some(
                ledger
                    .rotate(&k, vec![], "merge", time, &mut self.rng)
                    .is_ok(),
            ),
            6 => {
                // A fork of the peer's own feed: a second event at the
                // position of its last one, naming the epoch that one named.
                let (seq, head, _) = ledger.state().next_position(k.member_id());
                let last = ledger.record(head).map(std::borrow::Cow::into_owned);
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

    /// Everyone syncs with everyone until nothing moves.
    fn heal(&mut self) {
        loop {
            let mut moved = 0;
            for i in 0..PEERS {
                for j in 0..PEERS {
                    if i != j {
                        let from = self.peers[j].clone();
                        moved += sync(&mut self.peers[i], &from);
                    }
                }
            }
            if moved == 0 {
                break;
            }
        }
    }
}

/// Random writes, rotations, merges, forked feeds and partial syncs among
/// five peers; then everyone syncs with everyone. Every peer must hold the
/// same digest, and a ledger rebuilt from the records in reverse order must
/// too.
pub fn converge(data: &[u8]) {
    let mut history = History::new();
    history.run(&mut Unstructured::new(data));
    history.heal();
    let expected = history.peers[0].digest();
    for peer in &history.peers {
        assert_eq!(peer.digest(), expected, "synced peers differ");
    }
    let records: Vec<SignedEvent> = history.peers[0]
        .records()
        .map(std::borrow::Cow::into_owned)
        .collect();
    let reversed: Vec<SignedEvent> = records.iter().rev().cloned().collect();
    let rebuilt = one_by_one(&records[0], reversed);
    assert_eq!(
        rebuilt.digest(),
        expected,
        "arrival order changed the state"
    );
}

/// The reducer under random causal orders. The union of every peer's
/// events after a random history (a set closed under what its events name)
/// is applied one event at a time in three orders: the order the union
/// arrived in, and two random causal orders seeded by the input. It is
/// also rebuilt from the record bytes in bulk (signatures in batches) in a
/// random order. All four must hold the same state: digest, resolution,
/// projection rows, every event's status, every own roster, heads, flags,
/// equivocations, frontier, and who can recover the current secret.
pub fn reducer(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut history = History::new();
    history.run(&mut u);
    // The union, without the heal: one ledger takes every peer's events.
    let mut union = history.peers[0].clone();
    for peer in &history.peers[1..] {
        sync(&mut union, peer);
    }
    let records: Vec<SignedEvent> = union.records().map(std::borrow::Cow::into_owned).collect();
    let genesis = &records[0];
    let mut seed = *blake3::hash(data).as_bytes();
    for round in 0..2u8 {
        seed[0] ^= round.wrapping_add(1);
        let order = causal_order(genesis, &records[1..], &mut SplitMix::from(seed));
        let incremental = one_by_one(genesis, order);
        assert_same_state(&incremental, &union, "a random causal order");
    }
    let mut shuffled: Vec<Vec<u8>> = records[1..].iter().map(SignedEvent::to_record).collect();
    SplitMix::from(seed).shuffle(&mut shuffled);
    let mut bulk = Ledger::found(genesis.clone()).expect("the genesis verifies");
    bulk.take_all(&shuffled)
        .expect("records every peer accepted verify in bulk");
    assert_same_state(&bulk, &union, "the bulk rebuild");
    without_some_left_out(&union, &records, &mut SplitMix::from(seed));
}

/// SPEC.md §6.4: a peer holding the union without some of the events it
/// leaves out (any subset of them, with whatever names what it drops) has
/// the same digest and frontier, and leaves out exactly the rest.
fn without_some_left_out(union: &Ledger, records: &[SignedEvent], rng: &mut SplitMix) {
    let left_out = union.left_out();
    if left_out.is_empty() {
        return;
    }
    let mut dropped: BTreeSet<EventHash> = BTreeSet::new();
    for record in records {
        let event = record.event();
        let names_dropped = (event.seq > 0 && dropped.contains(&event.prev))
            || event.named_epochs().iter().any(|e| dropped.contains(e));
        if names_dropped {
            assert!(
                left_out.contains(record.hash()),
                "an event outside the left-out set names one in it"
            );
        }
        if names_dropped || (left_out.contains(record.hash()) && rng.below(2) == 0) {
            dropped.insert(record.hash());
        }
    }
    let kept: Vec<SignedEvent> = records
        .iter()
        .skip(1)
        .filter(|record| !dropped.contains(&record.hash()))
        .cloned()
        .collect();
    let partial = one_by_one(&records[0], kept);
    assert_eq!(
        partial.digest(),
        union.digest(),
        "left-out events changed the digest"
    );
    assert_eq!(
        partial.frontier().to_bytes(),
        union.frontier().to_bytes(),
        "left-out events changed the frontier"
    );
    assert_eq!(partial.resolution().roster, union.resolution().roster);
    for record in partial.records() {
        assert_eq!(
            partial.left_out().contains(record.hash()),
            left_out.contains(record.hash()),
            "another left-out set"
        );
    }
}

/// Every record of `records`, in an order in which each comes after what
/// it names, chosen at random among those ready at each step.
fn causal_order(
    genesis: &SignedEvent,
    records: &[SignedEvent],
    rng: &mut SplitMix,
) -> Vec<SignedEvent> {
    let mut placed: BTreeSet<EventHash> = BTreeSet::from([genesis.hash()]);
    let mut pending: Vec<&SignedEvent> = records.iter().collect();
    let mut order = Vec::with_capacity(records.len());
    while !pending.is_empty() {
        let ready: Vec<usize> = (0..pending.len())
            .filter(|&i| {
                let event = pending[i].event();
                let prev_held = event.seq == 0 || placed.contains(&event.prev);
                prev_held && event.named_epochs().iter().all(|e| placed.contains(e))
            })
            .collect();
        assert!(
            !ready.is_empty(),
            "the union is not closed under what it names"
        );
        let pick = ready[rng.index(ready.len())];
        let record = pending.swap_remove(pick);
        placed.insert(record.hash());
        order.push(record.clone());
    }
    order
}

/// A ledger built one event at a time from `genesis` and `records`, in
/// the order given, retrying those that wait; every one must be accepted.
fn one_by_one(genesis: &SignedEvent, records: Vec<SignedEvent>) -> Ledger {
    let mut ledger = Ledger::found(genesis.clone()).expect("the genesis verifies");
    let mut pending = records;
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|record| match ledger.verify(record.clone()) {
            Ok(Verdict::Verified(verified)) => {
                ledger.commit(*verified);
                false
            }
            Ok(Verdict::Known) => false,
            Ok(Verdict::Missing(_)) => true,
            Err(rejection) => panic!("an accepted event was refused in another order: {rejection}"),
        });
        assert!(pending.len() < before, "a rebuild stalled");
    }
    ledger
}

/// Everything a ledger implies, compared.
fn assert_same_state(got: &Ledger, want: &Ledger, how: &str) {
    assert_eq!(got.len(), want.len(), "{how}: another number of events");
    assert_eq!(
        got.resolution(),
        want.resolution(),
        "{how}: another resolution"
    );
    assert_eq!(got.digest(), want.digest(), "{how}: another digest");
    assert_eq!(
        projection_rows(got),
        projection_rows(want),
        "{how}: other projection rows"
    );
    assert_eq!(
        got.state().equivocations(),
        want.state().equivocations(),
        "{how}: other equivocations"
    );
    assert_eq!(
        got.frontier().to_bytes(),
        want.frontier().to_bytes(),
        "{how}: another frontier"
    );
    let (got_state, want_state) = (got.state(), want.state());
    for record in want.records() {
        let hash = record.hash();
        assert!(got.contains(hash), "{how}: an event is missing");
        assert_eq!(
            got_state.status(hash, got.resolution()),
            want_state.status(hash, want.resolution()),
            "{how}: another status for {hash}"
        );
        assert_eq!(
            got_state.graph().own_roster(hash),
            want_state.graph().own_roster(hash),
            "{how}: another own roster for {hash}"
        );
    }
    for n in 0..CAST {
        let member = keys(n).member_id();
        assert_eq!(
            got_state.heads(member),
            want_state.heads(member),
            "{how}: heads"
        );
        assert_eq!(
            got_state.is_enabled(member),
            want_state.is_enabled(member),
            "{how}: the flag of {member}"
        );
        let next = |state: &crate::feeds::MeshState| {
            let (seq, prev, mut acknowledged) = state.next_position(member);
            acknowledged.sort();
            (seq, prev, acknowledged)
        };
        assert_eq!(
            next(got_state),
            next(want_state),
            "{how}: the next position"
        );
        if let Some(current) = want.resolution().current {
            let secret = |ledger: &Ledger| {
                ledger
                    .epoch_secret(current, &keys(n))
                    .ok()
                    .map(|secret| *secret.expose())
            };
            assert_eq!(secret(got), secret(want), "{how}: who recovers the secret");
        }
    }
}

/// Arbitrary bytes into every strict decoder: none may panic, and whatever
/// decodes re-encodes to the very same bytes. As a record, it also goes
/// through the verifier against a live ledger, which changes nothing unless
/// it accepts; as a frontier, it asks that ledger what to send.
pub fn decode(data: &[u8]) {
    if let Ok(event) = Event::decode(data) {
        assert_eq!(event.encode(), data, "event re-encodes differently");
    }
    if let Ok(record) = SignedEvent::from_record(data) {
        assert_eq!(record.to_record(), data, "record re-encodes differently");
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
    if let Ok(batch) = Batch::from_bytes(data) {
        assert_eq!(batch.to_bytes(), data, "batch re-encodes differently");
    }
    if let Ok(package) = SignedPackage::from_bytes(data) {
        assert_eq!(package.to_bytes(), data, "package re-encodes differently");
        let _ = package.verify();
    }
    if let Ok(frontier) = Frontier::from_bytes(data) {
        assert_eq!(frontier.to_bytes(), data, "frontier re-encodes differently");
        let ledger = founded();
        let _ = ledger.missing_heads(&frontier);
        let sent = ledger.missing_for(&frontier);
        assert!(
            sent.len() <= ledger.len(),
            "a frontier made the ledger send more than it holds"
        );
    }
}

/// Hostile bytes against the network wire (SPEC.md §17): see the `net`
/// fuzz target.
#[cfg(feature = "net")]
pub fn net_wire(data: &[u8]) {
    crate::net::fuzz_wire(data);
}

/// Records of the founded ledger, for a seed corpus.
pub fn sample_records() -> Vec<Vec<u8>> {
    founded()
        .records()
        .map(|record| record.to_record())
        .collect()
}

/// Seed inputs for [`decode`]: the founded ledger's records, their event
/// bytes alone, a batch of them, its frontier and a key package.
pub fn sample_decode_inputs() -> Vec<Vec<u8>> {
    let records = sample_records();
    let mut inputs: Vec<Vec<u8>> = records
        .iter()
        .map(|record| record[crate::SIGNATURE_LEN..].to_vec())
        .collect();
    inputs.push(Batch::new(founded().group(), records.clone()).to_bytes());
    inputs.push(founded().frontier().to_bytes());
    inputs.push(SignedPackage::sign(&keys(5), 3).to_bytes());
    inputs.extend(records);
    inputs
}

/// Op strings for [`reducer`] and [`converge`], for a seed corpus. Each op
/// is its number, the peer, then its own bytes (a rotation: how many
/// changes, then target, role and kind for each). Between them they reach
/// a void rotation (an admin removing a member while the owner removes that
/// admin), concurrent tips left unmerged, merges, owner grants, key
/// updates, a forked feed and a disabled member.
pub fn sample_ops() -> Vec<Vec<u8>> {
    vec![
        vec![
            3, 1, 0, 3, 0, 1, 3, 0, 0, 1, 0, 1, 5, 0, 1, 0, 1, 5, 1, 0, 4, 0, 0, 3, 3, 0, 0, 6, 2,
            0, 3, 2, 0, 6, 0, 1, 5, 2, 0, 0, 2, 6, 2,
        ],
        vec![
            3, 0, 0, 5, 1, 0, 5, 1, 0, 3, 1, 0, 3, 0, 1, 3, 0, 0, 4, 0, 1, 0, 2, 5, 0, 1, 4, 0, 6,
            3, 1, 4, 0, 3, 2, 1, 1, 0, 2, 3, 2, 3, 2, 2, 0, 3, 5, 2, 0, 5, 0, 2, 3, 0, 0, 6, 2, 0,
        ],
        vec![
            3, 0, 1, 5, 2, 3, 1, 1, 0, 4, 3, 2, 0, 4, 0, 1, 5, 0, 1, 5, 0, 2, 6, 3, 2, 1, 4, 0, 0,
            2, 1, 3,
        ],
    ]
}

/// A small mesh written through the public API, once: its file, its
/// records in stored order, the digest of each prefix of them, and the
/// projection rows of the whole.
struct Sample {
    /// The redb file's bytes, closed cleanly.
    file: Vec<u8>,
    /// The file's bytes while its last events were in its journal only.
    live_file: Vec<u8>,
    /// That journal's bytes (SPEC.md §9.6).
    journal: Vec<u8>,
    /// Every stored record, in stored order.
    records: Vec<Vec<u8>>,
    /// The digest after the first `i + 1` records.
    prefix_digests: Vec<StateDigest>,
    /// The projection rows of the whole file.
    rows: crate::store::Rows,
    /// Its group.
    group: GroupId,
}

/// Founder creates and enables, adds an admin and a member; the admin joins
/// and removes that member while the founder adds another; the founder
/// ingests the admin's events, merges, and writes. Several transactions, so
/// that redb's older commit slot holds an earlier state.
fn sample() -> &'static Sample {
    static SAMPLE: OnceLock<Sample> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary folder");
        let options = |peer: u8| {
            let mut now = 1_700_000_000 + u64::from(peer) * 1000;
            MeshOptions::new().insecure_seed([peer; 32]).clock(move || {
                now += 1;
                now
            })
        };
        let path = dir.path().join("sample.redb");
        let mut founder = options(0).create(&path, keys(0), "fuzz").expect("create");
        founder.set_enabled(true).expect("enable");
        founder
            .add_member(keys(1).package(), Role::Admin)
            .expect("add admin");
        founder
            .add_member(keys(3).package(), Role::Member)
            .expect("add member");
        founder.append_app("note", b"hello").expect("app");
        let mut admin = options(1)
            .join(
                dir.path().join("admin.redb"),
                keys(1),
                &founder.export_all(),
            )
            .expect("join");
        admin.set_enabled(true).expect("enable");
        admin.remove_member(keys(3).member_id()).expect("remove");
        founder
            .add_member(keys(4).package(), Role::Member)
            .expect("add");
        founder
            .ingest(&admin.export(&founder.frontier()))
            .expect("ingest");
        founder.merge().expect("merge");
        founder.append_app("note", b"bye").expect("app");
        let records: Vec<Vec<u8>> = founder.log().map(|entry| entry.event.to_record()).collect();
        // The ingest went into the file; the merge and the last write are
        // in the journal until the mesh closes.
        let live_file = std::fs::read(&path).expect("read file");
        let journal = std::fs::read(journal_beside(&path)).expect("read journal");
        drop(founder);
        drop(admin);
        let signed: Vec<SignedEvent> = records
            .iter()
            .map(|record| SignedEvent::from_record(record).expect("stored records decode"))
            .collect();
        let mut ledger = Ledger::found(signed[0].clone()).expect("genesis");
        let mut prefix_digests = vec![ledger.digest()];
        for record in &signed[1..] {
            ledger
                .insert(record.clone())
                .expect("stored order verifies");
            prefix_digests.push(ledger.digest());
        }
        Sample {
            file: std::fs::read(&path).expect("read file"),
            live_file,
            journal,
            rows: projection_rows(&ledger),
            group: ledger.group(),
            records,
            prefix_digests,
        }
    })
}

/// A mutated file opened read-only: refused with an error, or accepted as
/// a valid mesh; never a panic. The first byte, modulo 3, chooses what is
/// mutated:
///
/// - 0: the sample file, by byte changes five input bytes each (`le32`
///   offset, then a byte to xor there; 0 truncates at the offset). An
///   accepted file must hold a prefix of the sample's events, in stored
///   order, with the state of that prefix: a file alone cannot prove its
///   last events were not removed (redb keeps an older commit slot, and a
///   flipped byte can select it; auditors use checkpoints);
/// - 1: the sample's records, dropped, repeated, swapped, changed,
///   truncated or replaced, stored with the sample's projection rows into a
///   fresh file. An accepted file must hold only events of the sample, none
///   twice, and the state a ledger rebuilt from them in another order has;
/// - 2: the journal beside the file while the sample's last two events
///   were in it only, by the same byte changes. Reading a journal stops at
///   its first damaged frame, so an accepted file must again hold a prefix
///   of the sample's events with that prefix's state;
/// - 3: the sample file by byte changes, as 0, opened by its own member,
///   which restores its checkpoint (SPEC.md §9.7): refused, or a failed
///   read named ([`Mesh::check_reads`]), or again a prefix of the sample's
///   events with that prefix's state.
pub fn open(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("mutated.redb");
    let sample = sample();
    match mode % 4 {
        0 => {
            std::fs::write(&path, mutated(&sample.file, rest)).expect("write");
            open_prefix(&path);
        }
        3 => {
            std::fs::write(&path, mutated(&sample.file, rest)).expect("write");
            open_prefix_as_member(&path);
        }
        1 => open_mutated_records(rest, &path),
        _ => {
            std::fs::write(&path, &sample.live_file).expect("write");
            std::fs::write(journal_beside(&path), mutated(&sample.journal, rest))
                .expect("write journal");
            open_prefix(&path);
        }
    }
}

/// The journal's path beside the file at `path` (SPEC.md §9.6).
fn journal_beside(path: &Path) -> std::path::PathBuf {
    crate::journal::path_beside(path)
}

/// `bytes` changed five input bytes at a time: an `le32` offset, then a
/// byte to xor there (0 truncates at the offset).
fn mutated(bytes: &[u8], data: &[u8]) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    for change in data.chunks_exact(5) {
        let offset = u32::from_le_bytes([change[0], change[1], change[2], change[3]]) as usize;
        let at = offset % bytes.len().max(1);
        match change[4] {
            0 => bytes.truncate(at),
            xor => {
                if let Some(byte) = bytes.get_mut(at) {
                    *byte ^= xor;
                }
            }
        }
    }
    bytes
}

/// Opens `path` read-only: an error, or a prefix of the sample's events
/// in their order with that prefix's state.
fn open_prefix(path: &Path) {
    let sample = sample();
    let Ok(mesh) = Mesh::open_read_only(path) else {
        return;
    };
    let records: Vec<Vec<u8>> = mesh.log().map(|entry| entry.event.to_record()).collect();
    assert!(
        !records.is_empty() && sample.records.starts_with(&records),
        "an accepted file holds events that are not a prefix of the original"
    );
    assert_eq!(
        Some(&mesh.digest()),
        sample.prefix_digests.get(records.len() - 1),
        "an accepted file's state is not its events'"
    );
}

/// The file's own member's open (its checkpoint, SPEC.md §9.7) of a
/// changed file: refused, or a failed read named, or a prefix of the
/// sample's events with that prefix's state, as a full verification's.
fn open_prefix_as_member(path: &Path) {
    let sample = sample();
    let Ok(mesh) = Mesh::open(path, keys(0)) else {
        return;
    };
    let records: Vec<Vec<u8>> = mesh.log().map(|entry| entry.event.to_record()).collect();
    let digest = mesh.digest();
    if mesh.check_reads().is_err() {
        return;
    }
    assert!(
        !records.is_empty() && sample.records.starts_with(&records),
        "the member's open holds events that are not a prefix of the original"
    );
    assert_eq!(
        Some(&digest),
        sample.prefix_digests.get(records.len() - 1),
        "the member's open gives a state that is not its events'"
    );
}

fn open_mutated_records(data: &[u8], path: &Path) {
    let sample = sample();
    let mut u = Unstructured::new(data);
    let mut records = sample.records.clone();
    for _ in 0..8 {
        if u.is_empty() || records.is_empty() {
            break;
        }
        let len = records.len();
        let i = usize::from(u.arbitrary::<u8>().unwrap_or(0)) % len;
        let j = usize::from(u.arbitrary::<u8>().unwrap_or(0)) % len;
        match u.int_in_range(0..=5).unwrap_or(0) {
            0 => {
                records.remove(i);
            }
            1 => {
                let copy = records[i].clone();
                records.insert(j, copy);
            }
            2 => records.swap(i, j),
            3 => {
                let at = usize::from(u.arbitrary::<u16>().unwrap_or(0)) % records[i].len().max(1);
                let xor = u.arbitrary::<u8>().unwrap_or(1).max(1);
                if let Some(byte) = records[i].get_mut(at) {
                    *byte ^= xor;
                }
            }
            4 => {
                let at = usize::from(u.arbitrary::<u16>().unwrap_or(0)) % records[i].len().max(1);
                records[i].truncate(at);
            }
            _ => {
                let len = usize::from(u.arbitrary::<u8>().unwrap_or(0));
                records[i] = u.bytes(len).map(<[u8]>::to_vec).unwrap_or_default();
            }
        }
    }
    write_raw_file(path, sample.group, &records, &sample.rows);
    let Ok(mesh) = Mesh::open_read_only(path) else {
        return;
    };
    let held: Vec<Vec<u8>> = mesh.log().map(|entry| entry.event.to_record()).collect();
    assert_eq!(
        held, records,
        "an accepted file holds other events than were stored"
    );
    let distinct: BTreeSet<&Vec<u8>> = held.iter().collect();
    assert_eq!(
        distinct.len(),
        held.len(),
        "an accepted file holds an event twice"
    );
    assert!(
        held.iter().all(|record| sample.records.contains(record)),
        "an accepted file holds an event nobody signed"
    );
    let signed: Vec<SignedEvent> = held
        .iter()
        .map(|record| SignedEvent::from_record(record).expect("accepted records decode"))
        .collect();
    let reversed: Vec<SignedEvent> = signed[1..].iter().rev().cloned().collect();
    let rebuilt = one_by_one(&signed[0], reversed);
    assert_eq!(
        mesh.digest(),
        rebuilt.digest(),
        "an accepted file's state is not its events'"
    );
}

/// Writes a file in the layout of SPEC.md §9.1 from raw parts, bypassing
/// every check: the format marker, `group`, `records` at positions 0, 1, …
/// and the projection `rows`.
fn write_raw_file(path: &Path, group: GroupId, records: &[Vec<u8>], rows: &crate::store::Rows) {
    use redb::TableDefinition;
    let db = redb::Database::create(path).expect("redb");
    let txn = db.begin_write().expect("write");
    {
        let mut meta = txn
            .open_table(TableDefinition::<&[u8], &[u8]>::new("meta"))
            .expect("meta");
        // Store format 3: events and projections without the ledger's rows,
        // so that the records are verified as a plain log (SPEC.md §9.5).
        meta.insert(&b"format"[..], &3u16.to_be_bytes()[..])
            .expect("format");
        meta.insert(&b"group"[..], &group.as_bytes()[..])
            .expect("group");
        let mut events = txn
            .open_table(TableDefinition::<u64, &[u8]>::new("events"))
            .expect("events");
        for (position, record) in records.iter().enumerate() {
            events
                .insert(position as u64, record.as_slice())
                .expect("event");
        }
        for (table, table_rows) in rows {
            let mut stored = txn
                .open_table(TableDefinition::<&[u8], &[u8]>::new(table))
                .expect("projection");
            for (key, value) in table_rows {
                stored
                    .insert(key.as_slice(), value.as_slice())
                    .expect("row");
            }
        }
    }
    txn.commit().expect("commit");
}

/// Seed inputs for [`open`]: the unchanged file, the unchanged records,
/// and a few single changes of each kind.
pub fn sample_open_inputs() -> Vec<Vec<u8>> {
    let mut inputs = vec![vec![0], vec![1], vec![2], vec![3]];
    let change = |mode: u8, offset: u32, xor: u8| {
        let mut input = vec![mode];
        input.extend_from_slice(&offset.to_le_bytes());
        input.push(xor);
        input
    };
    for offset in [0u32, 4096, 8192, 65536] {
        inputs.push(change(0, offset, 0x01));
    }
    // Drop record 3; swap 2 and 5; flip a byte of record 4; truncate 1.
    for (i, j, kind) in [(3u8, 0u8, 0u8), (2, 5, 2), (4, 0, 3), (1, 0, 4)] {
        inputs.push(vec![1, i, j, kind, 40, 0, 0x80]);
    }
    // The journal's magic, its header's base, its first frame's length and
    // record, and a truncation inside the second frame.
    for (offset, xor) in [(0u32, 0x01), (40, 0x01), (72, 0x01), (120, 0x80)] {
        inputs.push(change(2, offset, xor));
    }
    // A frame is 28 bytes around its body: the signature of the event
    // before it, a tag (32) and its event, so 32 bytes more than its
    // event's record (SPEC.md §9.6); the first holds the merge.
    let records = &sample().records;
    let merge = records.len().saturating_sub(2);
    let second_frame = 72 + 28 + 32 + records.get(merge).map_or(0, Vec::len);
    inputs.push(change(2, (second_frame + 10) as u32, 0));
    inputs
}

/// A member id of the cast, for tests.
#[cfg(test)]
fn member(n: u8) -> crate::ids::MemberId {
    keys(n).member_id()
}

#[cfg(test)]
mod tests {
    /// The reducer target on seeded random inputs, counting how many reach
    /// events left out (SPEC.md §6.4), so that `cargo test` runs its
    /// left-out check too.
    #[test]
    fn the_reducer_holds_on_random_histories_some_with_events_left_out() {
        let mut rng = super::SplitMix::from([7; 32]);
        let mut with_left_out = 0;
        for _ in 0..48 {
            let data: Vec<u8> = (0..400).map(|_| rng.below(256) as u8).collect();
            super::reducer(&data);
            let mut history = super::History::new();
            history.run(&mut arbitrary::Unstructured::new(&data));
            let mut union = history.peers[0].clone();
            for peer in &history.peers[1..] {
                super::sync(&mut union, peer);
            }
            with_left_out += usize::from(!union.left_out().is_empty());
        }
        eprintln!("random histories with events left out: {with_left_out} of 48");
        assert!(with_left_out > 0, "no random history left anything out");
    }

    #[test]
    fn fuzz_entry_points_run_on_plain_inputs() {
        super::converge(&[]);
        super::reducer(&[]);
        for ops in super::sample_ops() {
            super::converge(&ops);
            super::reducer(&ops);
        }
        for input in super::sample_decode_inputs() {
            super::decode(&input);
        }
        super::decode(&[]);
        for input in super::sample_open_inputs() {
            super::open(&input);
        }
    }

    /// The seed ops reach the states the targets are about, so that the
    /// fuzzer starts from them.
    #[test]
    fn the_seed_ops_reach_contested_histories() {
        use crate::event::Body;
        use crate::graph::Status;
        let (mut void, mut unmerged, mut forked, mut rotations) = (false, false, false, 0);
        for ops in super::sample_ops() {
            let mut history = super::History::new();
            history.run(&mut arbitrary::Unstructured::new(&ops));
            let mut union = history.peers[0].clone();
            for peer in &history.peers[1..] {
                super::sync(&mut union, peer);
            }
            let resolution = union.resolution();
            void |= resolution.statuses.values().any(|s| *s == Status::Void);
            unmerged |= resolution.tips.len() > 1;
            forked |= !union.state().equivocations().is_empty();
            rotations += union
                .records()
                .filter(|r| matches!(r.event().body, Body::Rotate { .. }))
                .count();
        }
        assert!(void, "no seed reaches a void rotation");
        assert!(unmerged, "no seed leaves concurrent tips");
        assert!(forked, "no seed forks a feed");
        assert!(rotations >= 12, "the seeds rotate {rotations} times");
    }

    #[test]
    fn the_sample_opens_whole_or_as_a_prefix_and_a_gap_is_refused() {
        let sample = super::sample();
        assert!(sample.records.len() > 8);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raw.redb");
        super::write_raw_file(&path, sample.group, &sample.records, &sample.rows);
        let mesh = crate::Mesh::open_read_only(&path).unwrap();
        assert_eq!(Some(&mesh.digest()), sample.prefix_digests.last());
        let path = dir.path().join("as-written.redb");
        std::fs::write(&path, &sample.file).unwrap();
        let mesh = crate::Mesh::open_read_only(&path).unwrap();
        assert_eq!(Some(&mesh.digest()), sample.prefix_digests.last());
        // The live file holds all but the last two events, its journal
        // those two.
        let path = dir.path().join("live.redb");
        std::fs::write(&path, &sample.live_file).unwrap();
        let n = sample.records.len();
        let without = crate::Mesh::open_read_only(&path).unwrap();
        assert_eq!(without.len(), n - 2);
        std::fs::write(super::journal_beside(&path), &sample.journal).unwrap();
        let with = crate::Mesh::open_read_only(&path).unwrap();
        assert_eq!(Some(&with.digest()), sample.prefix_digests.last());
        // A damaged frame ends the journal there: the first one flipped,
        // nothing of it is taken; the second one cut, the first is, its
        // signature (which the second frame carried) made again by its
        // author's keys (SPEC.md §9.6).
        let inputs = super::sample_open_inputs();
        for (input, len) in [
            (&inputs[inputs.len() - 3], n - 2),
            (&inputs[inputs.len() - 1], n - 1),
        ] {
            let journal = super::mutated(&sample.journal, &input[1..]);
            std::fs::write(super::journal_beside(&path), journal).unwrap();
            let mesh = crate::MeshOptions::new()
                .open_read_only(&path, Some(super::keys(0)))
                .unwrap();
            assert_eq!(mesh.len(), len);
            assert_eq!(Some(&mesh.digest()), sample.prefix_digests.get(len - 1));
        }
        assert!(mesh.roster().get(super::member(4)).is_some());
        // Without the first rotation the admin's events name an epoch the
        // file lacks.
        let mut records = sample.records.clone();
        records.remove(2);
        let path = dir.path().join("dropped.redb");
        super::write_raw_file(&path, sample.group, &records, &sample.rows);
        assert!(crate::Mesh::open_read_only(&path).is_err());
    }
}

#[cfg(test)]
mod found {
    /// Found by the fuzz smoke: a byte of the member's own file changed so
    /// that redb panics as it closes the file (committing its allocator's
    /// state, in `Database`'s drop), outside any guarded access.
    #[test]
    fn a_damaged_file_closed_by_its_member_does_not_panic() {
        super::open(&[7, 33, 0, 7, 33, 72]);
    }
}
