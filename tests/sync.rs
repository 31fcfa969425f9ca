//! Many peers, one chain: export, join and ingest between member DBs, each
//! peer its own file.

mod common;

use common::{db_path, dump, keys, options};
use meshlog::{Batch, Error, Mesh, Role, Rule, SignedEvent};

fn batch_round_trip(batch: &Batch) -> Batch {
    Batch::from_bytes(&batch.to_bytes()).expect("a batch decodes")
}

#[test]
fn founder_b_and_c_converge_and_a_kick_locks_c_out() {
    let dir = tempfile::tempdir().unwrap();
    let (founder_db, b_db, c_db) = (db_path(&dir, "f"), db_path(&dir, "b"), db_path(&dir, "c"));
    let (b, c) = (keys(2), keys(3));
    let (b_id, c_id) = (b.member_id(), c.member_id());

    let mut founder = options(1).create(&founder_db, keys(1), "peers").unwrap();
    founder.set_enabled(true).unwrap();
    founder.add_member(b.public(), Role::Member).unwrap();
    founder.add_member(c.public(), Role::Member).unwrap();

    let everything = batch_round_trip(&founder.export_since(0).unwrap());
    let mut b_mesh = options(2).join(&b_db, keys(2), &everything).unwrap();
    let mut c_mesh = options(3).join(&c_db, keys(3), &everything).unwrap();
    assert_eq!(b_mesh.digest(), founder.digest());
    assert_eq!(c_mesh.digest(), founder.digest());
    let epoch2 = *founder.epoch_secret(2).unwrap().expose();
    assert_eq!(b_mesh.epoch_secret(2).unwrap().expose(), &epoch2);
    assert_eq!(c_mesh.epoch_secret(2).unwrap().expose(), &epoch2);

    // B and C enable themselves; the founder ingests both.
    b_mesh.set_enabled(true).unwrap();
    founder
        .ingest(&batch_round_trip(&b_mesh.export_since(4).unwrap()))
        .unwrap();
    c_mesh.set_enabled(true).unwrap();
    let error = c_mesh
        .ingest(&founder.export_since(0).unwrap())
        .unwrap_err();
    assert!(
        matches!(error, Error::Fork(_)),
        "C and B both wrote seq 4: {error}"
    );
    // C rebuilds from the founder's chain and enables itself again.
    drop(c_mesh);
    std::fs::remove_file(&c_db).unwrap();
    let mut c_mesh = options(3)
        .join(&c_db, keys(3), &founder.export_since(0).unwrap())
        .unwrap();
    c_mesh.set_enabled(true).unwrap();
    let report = founder.ingest(&c_mesh.export_since(0).unwrap()).unwrap();
    assert_eq!((report.added, report.skipped), (1, 5));
    b_mesh.ingest(&founder.export_since(5).unwrap()).unwrap();

    let kick = founder.remove_member(c_id).unwrap();
    let since_kick = batch_round_trip(&founder.export_since(kick.seq).unwrap());
    for peer in [&mut b_mesh, &mut c_mesh] {
        let report = peer.ingest(&founder.export_since(0).unwrap()).unwrap();
        assert_eq!(report.head.unwrap().hash, kick.hash);
        assert_eq!(
            peer.ingest(&since_kick).unwrap().added,
            0,
            "repeats are skipped"
        );
        assert_eq!(peer.digest(), founder.digest());
    }
    let epoch3 = *founder.epoch_secret(3).unwrap().expose();
    assert_eq!(b_mesh.epoch_secret(3).unwrap().expose(), &epoch3);
    assert!(matches!(
        c_mesh.epoch_secret(3),
        Err(Error::NotAMember { epoch: 3, member }) if member == c_id
    ));
    assert_eq!(
        c_mesh.epoch_secret(2).unwrap().expose(),
        &epoch2,
        "old epochs stay readable"
    );
    assert!(
        b_mesh
            .state()
            .current_epoch()
            .unwrap()
            .member(b_id)
            .is_some()
    );

    // The kicked member can no longer write to the group.
    assert!(matches!(
        c_mesh.append_app("note", b"still here?"),
        Err(Error::Disabled { .. })
    ));
    let error = c_mesh.set_enabled(true).unwrap_err();
    assert!(
        matches!(&error, Error::Rejected(r) if matches!(r.rule, Rule::AuthorNotMember { .. })),
        "{error}"
    );
    // Auditors of every copy see the same head and state.
    let heads: Vec<_> = [founder, b_mesh, c_mesh]
        .into_iter()
        .map(|mesh| (mesh.state().head(), mesh.digest()))
        .collect();
    assert!(heads.windows(2).all(|pair| pair[0] == pair[1]));
}

#[test]
fn a_peer_whose_keys_are_in_no_roster_may_join_and_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut founder = options(1)
        .create(db_path(&dir, "f"), keys(1), "peers")
        .unwrap();
    founder.set_enabled(true).unwrap();
    let stranger = options(4)
        .join(
            db_path(&dir, "s"),
            keys(4),
            &founder.export_since(0).unwrap(),
        )
        .unwrap();
    assert!(matches!(
        stranger.epoch_secret(0),
        Err(Error::NotAMember { epoch: 0, .. })
    ));
    assert!(!stranger.is_enabled());
    // Joining needs the genesis.
    let error = options(5)
        .join(
            db_path(&dir, "t"),
            keys(5),
            &founder.export_since(1).unwrap(),
        )
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::Gap {
                missing: 0,
                first: 1
            }
        ),
        "{error}"
    );
    assert!(
        !db_path(&dir, "t").exists(),
        "a refused join creates no file"
    );
}

/// Founder and a second admin, both enabled, both holding the whole chain.
fn two_admins(dir: &tempfile::TempDir) -> (Mesh, Mesh) {
    let mut founder = options(1)
        .create(db_path(dir, "f"), keys(1), "peers")
        .unwrap();
    founder.set_enabled(true).unwrap();
    founder.add_member(keys(2).public(), Role::Admin).unwrap();
    let mut second = options(2)
        .join(
            db_path(dir, "s"),
            keys(2),
            &founder.export_since(0).unwrap(),
        )
        .unwrap();
    second.set_enabled(true).unwrap();
    founder.ingest(&second.export_since(0).unwrap()).unwrap();
    (founder, second)
}

#[test]
fn concurrent_rotations_fork_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut founder, mut second) = two_admins(&dir);
    let head = founder.state().head().unwrap();
    founder.add_member(keys(5).public(), Role::Member).unwrap();
    second.add_member(keys(6).public(), Role::Member).unwrap();

    let theirs = second.export_since(head.seq + 1).unwrap();
    let before = founder.digest();
    let error = founder.ingest(&theirs).unwrap_err();
    let Error::Fork(fork) = error else {
        panic!("expected a fork, got {error}");
    };
    assert_eq!(fork.seq, head.seq + 1);
    assert!(!fork.equivocation, "two different admins");
    assert_ne!(fork.ours.hash(), fork.theirs.hash());
    assert_eq!(founder.digest(), before);
    assert!(founder.equivocations().unwrap().is_empty());
    let path = db_path(&dir, "f");
    drop(founder);
    let reopened = Mesh::open_read_only(&path).unwrap();
    assert_eq!(reopened.digest(), before);
}

#[test]
fn one_author_signing_two_histories_is_kept_as_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let (mut founder, _second) = two_admins(&dir);
    let copy = db_path(&dir, "copy");
    founder.backup(&copy).unwrap();
    let mut twin = options(9).open(&copy, keys(1)).unwrap();
    founder.append_app("note", b"one story").unwrap();
    twin.append_app("note", b"another story").unwrap();

    let error = founder.ingest(&twin.export_since(0).unwrap()).unwrap_err();
    let Error::Fork(fork) = error else {
        panic!("expected a fork, got {error}");
    };
    assert!(fork.equivocation);
    let evidence = founder.equivocations().unwrap();
    assert_eq!(evidence.len(), 1);
    assert_eq!(evidence[0].seq, fork.seq);
    assert_eq!(evidence[0].theirs, fork.theirs);

    // The evidence survives reopening, is re-verified, and is not part of the chain.
    let path = db_path(&dir, "f");
    let digest = founder.digest();
    drop(founder);
    let reopened = Mesh::open_read_only(&path).unwrap();
    assert_eq!(reopened.equivocations().unwrap(), evidence);
    assert_eq!(reopened.digest(), digest);
}

#[test]
fn hostile_batches_are_refused_each_with_its_own_error_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "f");
    let mut founder = options(1).create(&path, keys(1), "peers").unwrap();
    founder.set_enabled(true).unwrap();
    founder.add_member(keys(2).public(), Role::Member).unwrap();
    let mut peer = options(2)
        .join(
            db_path(&dir, "p"),
            keys(2),
            &founder.export_since(0).unwrap(),
        )
        .unwrap();
    peer.set_enabled(true).unwrap();
    peer.append_app("note", b"hi").unwrap();
    let honest = peer.export_since(3).unwrap();
    let group = founder.group();

    // The peer's rotation, re-signed by the (non-admin) peer itself.
    let head = peer.state().head().unwrap();
    let mut rotation = founder.event(2).unwrap().event().clone();
    rotation.seq = head.seq + 1;
    rotation.prev = head.hash;
    rotation.author = keys(2).member_id();
    if let meshlog::Body::Rotate(body) = &mut rotation.body {
        body.epoch = 2;
    }
    let forged = SignedEvent::sign(rotation, &keys(2));
    let mut records: Vec<Vec<u8>> = honest.records().map(|(_, r)| r.to_vec()).collect();
    records.push(forged.to_record());
    let non_admin = batch_from(group, 3, records.clone());

    let mut truncated = honest.to_bytes();
    truncated.truncate(truncated.len() - 10);
    let mut trailing = honest.to_bytes();
    trailing.extend_from_slice(b"garbage");

    let other_dir = tempfile::tempdir().unwrap();
    let mut other = options(1)
        .create(db_path(&other_dir, "o"), keys(1), "another group")
        .unwrap();
    other.set_enabled(true).unwrap();
    other.append_app("note", b"x").unwrap();
    other.append_app("note", b"y").unwrap();
    let foreign = other.export_since(3).unwrap();
    // The same foreign events, relabelled with our group id in the header.
    let foreign_relabelled = batch_from(
        group,
        3,
        foreign.records().map(|(_, r)| r.to_vec()).collect(),
    );

    let before_digest = founder.digest();
    drop(founder);
    let before = dump(&path);
    let mut founder = Mesh::open(&path, keys(1)).unwrap();

    let error = founder.ingest(&non_admin).unwrap_err();
    assert!(
        matches!(&error, Error::Rejected(r) if r.seq == 5 && matches!(r.rule, Rule::NotAdmin { .. })),
        "{error}"
    );
    let gap = batch_from(group, 4, records[1..].to_vec());
    let error = founder.ingest(&gap).unwrap_err();
    assert!(
        matches!(
            error,
            Error::Gap {
                missing: 3,
                first: 4
            }
        ),
        "{error}"
    );
    let error = Batch::from_bytes(&truncated).unwrap_err();
    assert!(
        matches!(error, meshlog::BatchError::Malformed(_)),
        "{error}"
    );
    let error = Batch::from_bytes(&trailing).unwrap_err();
    assert_eq!(error, meshlog::BatchError::TrailingBytes(7));
    let error = founder.ingest(&foreign).unwrap_err();
    assert!(matches!(error, Error::ForeignBatch { .. }), "{error}");
    let error = founder.ingest(&foreign_relabelled).unwrap_err();
    assert!(
        matches!(&error, Error::Rejected(r) if r.seq == 3 && matches!(r.rule, Rule::WrongGroup { .. })),
        "{error}"
    );
    // A valid prefix followed by a bad event: all or nothing.
    assert_eq!(founder.state().len(), 3);
    assert_eq!(founder.digest(), before_digest);
    drop(founder);
    assert_eq!(
        dump(&path),
        before,
        "the chain and every projection are byte-for-byte unchanged"
    );

    // And the honest batch still goes in.
    let mut founder = Mesh::open(&path, keys(1)).unwrap();
    assert_eq!(founder.ingest(&honest).unwrap().added, 2);
}

fn batch_from(group: meshlog::GroupId, first: u64, records: Vec<Vec<u8>>) -> Batch {
    // Batches are only built by export; tests assemble hostile ones from
    // bytes laid out as SPEC.md §9.1 says.
    let mut bytes = meshlog::BATCH_MAGIC.to_vec();
    let body = (meshlog::BATCH_VERSION, group, first, records);
    bytes.extend(postcard::to_allocvec(&body).unwrap());
    Batch::from_bytes(&bytes).unwrap()
}

#[test]
fn overlapping_and_repeated_batches_converge() {
    let dir = tempfile::tempdir().unwrap();
    let mut founder = options(1)
        .create(db_path(&dir, "f"), keys(1), "peers")
        .unwrap();
    founder.set_enabled(true).unwrap();
    let mut peer = options(2)
        .join(
            db_path(&dir, "p"),
            keys(2),
            &founder.export_since(0).unwrap(),
        )
        .unwrap();
    for i in 0..6u8 {
        founder.append_app("note", &[i]).unwrap();
    }
    for since in [0, 3, 1, 7, 2, 0] {
        peer.ingest(&founder.export_since(since).unwrap()).unwrap();
        assert_eq!(
            peer.state().len(),
            founder.state().len().max(peer.state().len())
        );
    }
    assert_eq!(peer.digest(), founder.digest());
    let empty = founder.export_since(founder.state().len()).unwrap();
    assert!(empty.is_empty());
    assert_eq!(peer.ingest(&empty).unwrap().added, 0);
}

#[test]
fn a_disabled_member_neither_exports_nor_ingests() {
    let dir = tempfile::tempdir().unwrap();
    let mut founder = options(1)
        .create(db_path(&dir, "f"), keys(1), "peers")
        .unwrap();
    let batch = {
        founder.set_enabled(true).unwrap();
        founder.export_since(0).unwrap()
    };
    founder.set_enabled(false).unwrap();
    assert!(matches!(
        founder.export_since(0),
        Err(Error::Disabled { .. })
    ));
    // A peer in no roster is not "disabled": it may sync, to learn it was added.
    let stranger = options(7)
        .join(db_path(&dir, "s"), keys(7), &batch)
        .unwrap();
    assert!(stranger.export_since(0).is_ok());
    assert!(matches!(
        founder.ingest(&batch),
        Err(Error::Disabled { .. })
    ));
    // Reads and verification still work.
    assert!(founder.epoch_secret(0).is_ok());
}

#[test]
fn an_append_against_a_stale_head_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut founder = options(1)
        .create(db_path(&dir, "f"), keys(1), "peers")
        .unwrap();
    founder.set_enabled(true).unwrap();
    let seen = founder.state().head().unwrap().hash;
    founder.expect_head(seen).unwrap();
    founder.append_app("note", b"moved on").unwrap();
    let error = founder.expect_head(seen).unwrap_err();
    assert!(matches!(error, Error::StaleHead { .. }), "{error}");
    assert!(error.to_string().contains("ingest"), "{error}");
}

mod interleavings {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Append(usize),
        Sync { from: usize, to: usize },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            1 => (0usize..3).prop_map(Op::Append),
            2 => (0usize..3, 0usize..3).prop_map(|(from, to)| Op::Sync { from, to }),
        ]
    }

    fn hashes(mesh: &Mesh) -> Vec<meshlog::EventHash> {
        let mut out = Vec::new();
        mesh.for_each_event(0, |event| {
            out.push(event.hash());
            true
        })
        .unwrap();
        out
    }

    /// Three enabled admins, each with its own file and the same chain.
    fn peers(dir: &tempfile::TempDir) -> Vec<Mesh> {
        let mut founder = options(1)
            .create(db_path(dir, "p0"), keys(1), "peers")
            .unwrap();
        founder.set_enabled(true).unwrap();
        founder.add_member(keys(2).public(), Role::Admin).unwrap();
        founder.add_member(keys(3).public(), Role::Admin).unwrap();
        let mut all = vec![founder];
        for n in 1..3u8 {
            let mut peer = options(n + 1)
                .join(
                    db_path(dir, &format!("p{n}")),
                    keys(n + 1),
                    &all[0].export_since(0).unwrap(),
                )
                .unwrap();
            peer.set_enabled(true).unwrap();
            let batch = peer.export_since(0).unwrap();
            for other in all.iter_mut() {
                other.ingest(&batch).unwrap();
            }
            let catch_up = all[0].export_since(0).unwrap();
            peer.ingest(&catch_up).unwrap();
            all.push(peer);
        }
        all
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

        /// Syncs never lose an accepted event; an ingest succeeds exactly when
        /// the two chains agree on every seq both hold, and then the receiver
        /// holds the sender's whole chain; otherwise it reports the fork and
        /// changes nothing. So two peers never hold different events at one
        /// seq without a fork having been reported when they synced.
        #[test]
        fn syncs_never_lose_events_and_divergence_is_always_reported(ops in prop::collection::vec(op(), 1..30)) {
            let dir = tempfile::tempdir().unwrap();
            let mut all = peers(&dir);
            let mut accepted: Vec<Vec<(u64, meshlog::EventHash)>> = vec![Vec::new(); 3];
            for (step, op) in ops.iter().enumerate() {
                match *op {
                    Op::Append(peer) => {
                        let receipt = all[peer].append_app("note", &step.to_le_bytes()).unwrap();
                        accepted[peer].push((receipt.seq, receipt.hash));
                    }
                    Op::Sync { from, to } => {
                        let batch = all[from].export_since(0).unwrap();
                        let before = (hashes(&all[to]), all[to].digest());
                        let theirs = hashes(&all[from]);
                        let common = theirs.len().min(before.0.len());
                        let diverged = theirs[..common] != before.0[..common];
                        match all[to].ingest(&batch) {
                            Ok(_) => {
                                prop_assert!(!diverged, "diverged chains are never merged silently");
                                let theirs = hashes(&all[from]);
                                let ours = hashes(&all[to]);
                                prop_assert!(ours.starts_with(&theirs), "an accepted sync holds the sender's chain");
                            }
                            Err(Error::Fork(fork)) => {
                                prop_assert!(diverged, "a fork is reported only where the chains differ");
                                prop_assert!(theirs.get(fork.seq as usize) != before.0.get(fork.seq as usize));
                                prop_assert!(!fork.equivocation, "honest peers never equivocate");
                                prop_assert_eq!((hashes(&all[to]), all[to].digest()), before);
                            }
                            Err(other) => prop_assert!(false, "unexpected error {}", other),
                        }
                    }
                }
                for (peer, events) in accepted.iter().enumerate() {
                    for (seq, hash) in events {
                        prop_assert_eq!(all[peer].find(*hash).unwrap(), Some(*seq), "accepted events are never lost");
                    }
                }
            }
        }
    }
}

/// Found by trying it as a new user would (issue #10): a join must refuse a
/// batch with no genesis, or one whose header names another group than the
/// genesis it carries, and leave no file either way.
#[test]
fn join_refuses_a_batch_without_its_genesis_or_with_a_foreign_header_and_makes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut founder = options(1)
        .create(db_path(&dir, "f"), keys(1), "peers")
        .unwrap();
    founder.set_enabled(true).unwrap();
    let group = founder.group();
    let whole: Vec<Vec<u8>> = founder
        .export_since(0)
        .unwrap()
        .records()
        .map(|(_, r)| r.to_vec())
        .collect();

    let target = db_path(&dir, "p");
    let empty = batch_from(group, 0, Vec::new());
    assert!(matches!(
        options(2).join(&target, keys(2), &empty),
        Err(Error::Batch(meshlog::BatchError::Empty))
    ));
    assert!(!target.exists());

    let other = meshlog::GroupId::from_bytes([7; 32]);
    let foreign = batch_from(other, 0, whole.clone());
    match options(2).join(&target, keys(2), &foreign) {
        Err(Error::ForeignBatch { ours, theirs }) => {
            assert_eq!(ours, group);
            assert_eq!(theirs, other);
        }
        other => panic!("expected a foreign batch, got {other:?}"),
    }
    assert!(!target.exists());

    // The same records under the right header join.
    let peer = options(2)
        .join(&target, keys(2), &batch_from(group, 0, whole))
        .unwrap();
    assert_eq!(peer.digest(), founder.digest());
}

/// Found by trying it as a new user would (issue #10): a record offered at
/// position p of an overlapping batch that claims another seq is named by p,
/// as on the join path and past the head (SPEC.md §5.1).
#[test]
fn an_overlapping_record_claiming_another_seq_is_named_by_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let mut founder = options(1)
        .create(db_path(&dir, "f"), keys(1), "peers")
        .unwrap();
    founder.set_enabled(true).unwrap();
    founder.append_app("note", b"one").unwrap();
    let mut peer = options(2)
        .join(
            db_path(&dir, "p"),
            keys(2),
            &founder.export_since(0).unwrap(),
        )
        .unwrap();
    // At position 2 (held by both), a valid-looking event claiming seq 5.
    let mut event = founder.event(2).unwrap().event().clone();
    event.seq = 5;
    let stray = SignedEvent::sign(event, &keys(1)).to_record();
    let mut records: Vec<Vec<u8>> = founder
        .export_since(0)
        .unwrap()
        .records()
        .map(|(_, r)| r.to_vec())
        .collect();
    records[2] = stray;
    match peer.ingest(&batch_from(founder.group(), 0, records)) {
        Err(Error::Rejected(rejection)) => assert_eq!(rejection.seq, 2),
        other => panic!("expected a rejection at position 2, got {other:?}"),
    }
}
