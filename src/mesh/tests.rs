use super::*;
use crate::error::{StoreError, VoidReason};
use crate::event::SignedPackage;
use crate::graph::Role;
use crate::verify::Rule;
use rand::SeedableRng;

/// Joins from `records` of `group`, as a batch carries them.
fn join_records(
    path: &Path,
    keys: LocalKeys,
    group: GroupId,
    records: &[Vec<u8>],
    settings: MeshOptions,
) -> Result<Mesh> {
    settings.join(path, keys, &Batch::new(group, records.to_vec()))
}

fn keys(n: u8) -> LocalKeys {
    LocalKeys::from_secret_bytes(&[n + 1; 32], &[n + 101; 32])
}

fn settings(seed: u8) -> MeshOptions {
    let mut now = 1_900_000_000u64;
    MeshOptions::new().insecure_seed([seed; 32]).clock(move || {
        now += 1;
        now
    })
}

fn add(member: &LocalKeys, role: Role) -> Change {
    Change::Add {
        package: SignedPackage::sign(member, 1),
        role,
    }
}

/// Peer `n`'s new file, joined from everything `founder` holds.
fn joined(dir: &tempfile::TempDir, name: &str, n: u8, founder: &Mesh, seed: u8) -> Mesh {
    join_records(
        &dir.path().join(name),
        keys(n),
        founder.ledger().group(),
        founder.export(&Frontier::default()).records(),
        settings(seed),
    )
    .unwrap()
}

/// Each sends the other what its frontier lacks.
fn exchange(a: &mut Mesh, b: &mut Mesh) {
    let to_b = a.export(&b.frontier());
    b.ingest(&to_b).unwrap();
    let to_a = b.export(&a.frontier());
    a.ingest(&to_a).unwrap();
}

fn file_hash(path: &Path) -> blake3::Hash {
    blake3::hash(&std::fs::read(path).unwrap())
}

#[test]
fn a_mesh_reopens_to_the_same_state_and_an_audit_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.redb");
    let mut mesh = settings(1).create(&path, keys(0), "ops").unwrap();
    mesh.set_enabled(true).unwrap();
    let epoch = mesh
        .rotate(vec![add(&keys(1), Role::Admin)], "add an admin")
        .unwrap();
    mesh.append_app("note", b"hello").unwrap();
    let digest = mesh.digest();
    let secret = mesh.epoch_secret(epoch).unwrap();
    drop(mesh);

    let before = file_hash(&path);
    let audit = Mesh::open_read_only(&path).unwrap();
    assert_eq!(audit.digest(), digest);
    assert_eq!(audit.ledger().len(), 4);
    drop(audit);
    assert_eq!(
        file_hash(&path),
        before,
        "a read-only open wrote to the file"
    );

    let mesh = settings(2).open(&path, keys(0)).unwrap();
    assert_eq!(mesh.digest(), digest);
    assert_eq!(mesh.epoch_secret(epoch).unwrap().expose(), secret.expose());
}

#[test]
fn a_refused_create_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.redb");
    for bad in [String::new(), "x".repeat(129)] {
        match settings(1).create(&path, keys(0), &bad) {
            Err(Error::Refused(rejection)) => {
                assert!(matches!(*rejection.rule, Rule::Limit { .. }));
            }
            other => panic!("expected a limit, got {:?}", other.err()),
        }
        assert!(!path.exists());
    }
    settings(1).create(&path, keys(0), "ok").unwrap();
}

/// The README's two-peer walk-through, which forked for good in v2: bob
/// joins and enables himself while the founder posts; both converge.
#[test]
fn concurrent_writers_on_two_files_converge() {
    let dir = tempfile::tempdir().unwrap();
    let (f, bob) = (keys(0), keys(1));
    let mut founder = settings(1)
        .create(dir.path().join("f"), keys(0), "ops")
        .unwrap();
    founder.set_enabled(true).unwrap();
    founder
        .rotate(vec![add(&bob, Role::Member)], "bob")
        .unwrap();
    let mut peer = joined(&dir, "b", 1, &founder, 2);
    assert_eq!(peer.digest(), founder.digest());

    peer.set_enabled(true).unwrap();
    peer.append_app("note", b"from bob").unwrap();
    founder.append_app("note", b"from the founder").unwrap();
    exchange(&mut founder, &mut peer);
    assert_eq!(peer.digest(), founder.digest());
    assert_eq!(founder.ledger().len(), 6);
    // Exchanging again moves nothing.
    assert!(founder.export(&peer.frontier()).is_empty());

    let digest = founder.digest();
    drop((founder, peer));
    let founder = settings(3).open(dir.path().join("f"), f).unwrap();
    let peer = settings(4).open(dir.path().join("b"), bob).unwrap();
    assert_eq!(founder.digest(), digest);
    assert_eq!(peer.digest(), digest);
}

#[test]
fn concurrent_rotations_need_a_merge_and_the_merge_converges() {
    let dir = tempfile::tempdir().unwrap();
    let (carol, dave, erin) = (keys(1), keys(2), keys(3));
    let mut founder = settings(1)
        .create(dir.path().join("f"), keys(0), "ops")
        .unwrap();
    founder.set_enabled(true).unwrap();
    founder
        .rotate(
            vec![add(&carol, Role::Admin), add(&dave, Role::Member)],
            "team",
        )
        .unwrap();
    let mut admin = joined(&dir, "c", 1, &founder, 2);
    admin.set_enabled(true).unwrap();
    admin
        .rotate(
            vec![Change::Remove {
                member: dave.member_id(),
            }],
            "dave left",
        )
        .unwrap();
    founder
        .rotate(vec![add(&erin, Role::Member)], "erin")
        .unwrap();

    let to_founder = admin.export(&founder.frontier());
    let ingested = founder.ingest(&to_founder).unwrap();
    assert!(ingested.needs_merge);
    assert_eq!(
        admin.merge().unwrap(),
        None,
        "the admin has not seen the fork"
    );
    let merge = founder.merge().unwrap().expect("a merge");
    exchange(&mut founder, &mut admin);
    assert_eq!(admin.digest(), founder.digest());
    let resolution = admin.resolution();
    assert_eq!(resolution.current, Some(merge));
    assert_eq!(resolution.roster.get(dave.member_id()), None);
    assert_eq!(
        admin.epoch_secret(merge).unwrap().expose(),
        founder.epoch_secret(merge).unwrap().expose()
    );
}

#[test]
fn a_batch_with_one_invalid_record_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut founder = settings(1).create(&path, keys(0), "ops").unwrap();
    founder.set_enabled(true).unwrap();
    founder
        .rotate(vec![add(&keys(1), Role::Member)], "bob")
        .unwrap();
    let mut peer = joined(&dir, "b", 1, &founder, 2);
    peer.set_enabled(true).unwrap();
    peer.append_app("note", b"one").unwrap();
    peer.append_app("note", b"two").unwrap();
    let mut records = peer.export(&founder.frontier()).records().to_vec();
    assert_eq!(records.len(), 3);
    // The last record's signature, damaged.
    if let Some(byte) = records.last_mut().and_then(|r| r.get_mut(5)) {
        *byte ^= 1;
    }
    let digest = founder.digest();
    match founder.ingest_records(&records) {
        Err(Error::Rejected(rejection)) => {
            assert!(matches!(*rejection.rule, Rule::BadSignature(_)));
        }
        other => panic!("expected a bad signature, got {other:?}"),
    }
    assert_eq!(founder.digest(), digest);
    assert_eq!(founder.ledger().len(), 3);
    drop(founder);
    assert_eq!(Mesh::open_read_only(&path).unwrap().digest(), digest);
}

#[test]
fn join_refuses_no_genesis_or_a_foreign_header_and_makes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut founder = settings(1)
        .create(dir.path().join("f"), keys(0), "ops")
        .unwrap();
    founder.set_enabled(true).unwrap();
    let records = founder.export(&Frontier::default()).records().to_vec();
    let target = dir.path().join("p");
    assert!(matches!(
        join_records(&target, keys(1), founder.ledger().group(), &[], settings(2)),
        Err(Error::NoGenesis)
    ));
    assert!(matches!(
        join_records(
            &target,
            keys(1),
            founder.ledger().group(),
            &records[1..],
            settings(2)
        ),
        Err(Error::NoGenesis)
    ));
    let other = GroupId::from_bytes([9; 32]);
    assert!(matches!(
        join_records(&target, keys(1), other, &records, settings(2)),
        Err(Error::ForeignBatch { theirs, .. }) if theirs == other
    ));
    assert!(!target.exists());
    // Records in any order join.
    let mut reversed = records.clone();
    reversed.reverse();
    let peer = join_records(
        &target,
        keys(1),
        founder.ledger().group(),
        &reversed,
        settings(2),
    )
    .unwrap();
    assert_eq!(peer.digest(), founder.digest());
}

#[test]
fn a_tampered_file_is_refused_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut founder = settings(1).create(&path, keys(0), "ops").unwrap();
    founder.set_enabled(true).unwrap();
    let founder_r1 = founder
        .rotate(vec![add(&keys(1), Role::Member)], "bob")
        .unwrap();
    drop(founder);

    let copy = dir.path().join("copy");
    std::fs::copy(&path, &copy).unwrap();
    flip_stored_byte(&copy, 1, |record| record.len() - 1);
    // The altered event still decodes, under another hash, and its
    // signature (over the original bytes) fails: it is named.
    match Mesh::open_read_only(&copy) {
        Err(Error::Rejected(rejection)) => {
            assert_eq!(rejection.seq, 1);
            assert!(matches!(*rejection.rule, Rule::BadSignature(_)));
        }
        other => panic!("expected the altered event refused, got {:?}", other.err()),
    }

    // A flipped signature bit: the event keeps its hash, and fails the
    // batched signature check by name.
    let copy = dir.path().join("copy1");
    std::fs::copy(&path, &copy).unwrap();
    flip_stored_byte(&copy, 2, |_| 0);
    match Mesh::open_read_only(&copy) {
        Err(Error::Rejected(rejection)) => {
            assert_eq!(rejection.hash, founder_r1);
            assert!(matches!(*rejection.rule, Rule::BadSignature(_)));
        }
        other => panic!("expected a bad signature on R1, got {:?}", other.err()),
    }

    // A substituted DH key in the roster projection.
    let copy = dir.path().join("copy2");
    std::fs::copy(&path, &copy).unwrap();
    edit(&copy, |txn| {
        let mut roster = txn
            .open_table(TableDefinition::<&[u8], &[u8]>::new("roster"))
            .unwrap();
        let key = keys(1).member_id();
        let mut row = roster
            .get(&key.as_bytes()[..])
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        row[1] ^= 1;
        roster.insert(&key.as_bytes()[..], row.as_slice()).unwrap();
    });
    match Mesh::open_read_only(&copy) {
        Err(Error::Store(StoreError::ProjectionMismatch { table, problem, .. })) => {
            assert_eq!(table, "roster");
            assert_eq!(problem, crate::error::Mismatch::Differs);
        }
        other => panic!("expected a projection mismatch, got {:?}", other.err()),
    }
}

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

/// Flips one bit of the stored record at `position`, at the offset `at`
/// picks.
fn flip_stored_byte(path: &Path, position: u64, at: impl FnOnce(&[u8]) -> usize) {
    edit(path, |txn| {
        let mut events = txn
            .open_table(TableDefinition::<u64, &[u8]>::new("events"))
            .unwrap();
        let mut record = events.get(position).unwrap().unwrap().value().to_vec();
        let offset = at(&record);
        record[offset] ^= 1;
        events.insert(position, record.as_slice()).unwrap();
    });
}

fn edit(path: &Path, change: impl FnOnce(&redb::WriteTransaction)) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    change(&txn);
    txn.commit().unwrap();
    let _ = db.begin_read();
}

#[test]
fn batches_backups_checkpoints_and_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let mut founder = settings(1)
        .create(dir.path().join("f"), keys(0), "ops")
        .unwrap();
    founder.set_enabled(true).unwrap();
    let r1 = founder
        .rotate(vec![add(&keys(1), Role::Admin)], "an admin")
        .unwrap();
    let note = founder.append_app("note", b"before").unwrap();

    // A batch carries the records; another group's batch is refused.
    let batch = founder.export(&Frontier::default());
    let bytes = batch.to_bytes();
    let decoded = Batch::from_bytes(&bytes).unwrap();
    let mut peer = join_records(
        &dir.path().join("p"),
        keys(1),
        decoded.group(),
        decoded.records(),
        settings(2),
    )
    .unwrap();
    assert_eq!(peer.digest(), founder.digest());
    let (other, _) = {
        let mut rng = StdRng::from_seed([5; 32]);
        Ledger::create(&keys(0), "elsewhere", 0, &mut rng).unwrap()
    };
    let foreign = Batch::new(other.group(), decoded.records().to_vec());
    assert!(matches!(
        peer.ingest(&foreign),
        Err(Error::ForeignBatch { .. })
    ));

    // A checkpoint holds yesterday; a copy from before it is a rollback.
    let checkpoint = founder.frontier();
    let early = dir.path().join("early");
    founder.backup(&early).unwrap();
    founder.append_app("note", b"after").unwrap();
    founder.expect(&checkpoint).unwrap();
    let restored = Mesh::open_read_only(&early).unwrap();
    restored.expect(&checkpoint).unwrap();
    assert!(matches!(
        restored.expect(&founder.frontier()),
        Err(Error::RolledBack { missing }) if missing.len() == 1
    ));
    let frontier = Frontier::from_bytes(&checkpoint.to_bytes()).unwrap();
    assert_eq!(frontier, checkpoint);

    // Statuses: the founder's note is current until a new epoch supersedes it.
    let status = |mesh: &Mesh, hash| {
        mesh.log()
            .find(|entry| entry.event.hash() == hash)
            .and_then(|entry| entry.status)
    };
    assert_eq!(status(&founder, note), Some(EventStatus::Current));
    assert_eq!(status(&founder, r1), Some(EventStatus::Current));
    founder.rotate(vec![], "refresh").unwrap();
    assert_eq!(status(&founder, note), Some(EventStatus::Superseded));
}

#[test]
fn many_app_records_go_in_one_transaction_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut mesh = settings(1).create(&path, keys(0), "ops").unwrap();
    // Disabled: the first record breaks F5, so none is written.
    let refused = mesh.append_apps([("note", &b"a"[..]), ("note", &b"b"[..])]);
    match refused {
        Err(Error::Refused(rejection)) => assert_eq!(rejection.rule.id(), "F5"),
        other => panic!("expected F5, got {other:?}"),
    }
    assert_eq!(mesh.len(), 1);
    mesh.set_enabled(true).unwrap();
    let payloads: Vec<[u8; 1]> = (0..5u8).map(|n| [n]).collect();
    let made = mesh
        .append_apps(payloads.iter().map(|payload| ("note", &payload[..])))
        .unwrap();
    assert_eq!(made.len(), 5);
    assert_eq!(mesh.len(), 7);
    let digest = mesh.digest();
    drop(mesh);
    let reopened = Mesh::open_read_only(&path).unwrap();
    assert_eq!(reopened.digest(), digest);
    let seqs: Vec<u64> = made
        .iter()
        .map(|hash| reopened.event(*hash).unwrap().seq())
        .collect();
    assert_eq!(seqs, vec![2, 3, 4, 5, 6]);
}

#[test]
fn files_of_format_v1_and_v2_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    for (format, name) in [(1u16, "v1.redb"), (2, "v2.redb")] {
        let path = dir.path().join(name);
        {
            // The meta layout both earlier formats share (SPEC.md §9.5).
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let meta: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("meta");
                let mut meta = txn.open_table(meta).unwrap();
                meta.insert(&b"format"[..], &format.to_be_bytes()[..])
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        let error = Mesh::open_read_only(&path).unwrap_err();
        assert!(
            matches!(&error, Error::Store(StoreError::OlderFormat { found, .. }) if *found == format),
            "{error:?}"
        );
        assert_eq!(error.class(), crate::error::ErrorClass::CouldNotRun);
        assert!(error.to_string().contains(&format!("format v{format}")));
        let error = settings(1).open(&path, keys(0)).unwrap_err();
        assert!(matches!(
            error,
            Error::Store(StoreError::OlderFormat { .. })
        ));
    }
}

/// Copies a live file and its journal, as a crash would leave them.
fn crashed_copy(dir: &tempfile::TempDir, from: &Path, name: &str) -> std::path::PathBuf {
    let to = dir.path().join(name);
    std::fs::copy(from, &to).unwrap();
    std::fs::copy(
        crate::journal::path_beside(from),
        crate::journal::path_beside(&to),
    )
    .unwrap();
    to
}

/// A writable open refused because the journal's newest event awaits a
/// signature these keys cannot make (SPEC.md §9.6).
fn refused_awaiting_signature(opened: Result<Mesh>) {
    let error = opened.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Store(StoreError::JournalAwaitsSignature { .. })
        ),
        "{error:?}"
    );
    assert_eq!(error.class(), crate::error::ErrorClass::CouldNotRun);
}

#[test]
fn a_crash_loses_no_acknowledged_event_the_journal_replays_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut mesh = settings(1).create(&path, keys(0), "ops").unwrap();
    mesh.set_enabled(true).unwrap();
    for n in 0..3u8 {
        mesh.append_app("note", &[n]).unwrap();
    }
    let digest = mesh.digest();
    let newest = mesh.frontier();
    // The file alone holds the genesis; the journal holds the rest, the
    // newest event's signature in a seal after it (SPEC.md §9.6).
    let crashed = crashed_copy(&dir, &path, "crashed");
    let audit = Mesh::open_read_only(&crashed).unwrap();
    assert_eq!(audit.digest(), digest);
    assert_eq!(audit.report().journaled, 4);
    assert_eq!(audit.report().awaiting_signature, 0);
    drop(audit);
    // A power cut can take the seal, which is not synced: then the newest
    // event's signature is not on disk.
    assert!(crate::journal::lose_seal(&crate::journal::path_beside(
        &crashed
    )));
    let journal = std::fs::read(crate::journal::path_beside(&crashed)).unwrap();

    // An auditor without keys sees every acknowledged event but the
    // newest, which it is told of, and writes nothing.
    let audit = Mesh::open_read_only(&crashed).unwrap();
    assert_eq!(audit.report().journaled, 3);
    assert_eq!(audit.report().awaiting_signature, 1);
    assert_eq!(audit.len(), 4);
    assert!(audit.expect(&newest).is_err(), "the newest is not taken");
    drop(audit);
    // With the author's keys it signs the newest again, in memory only,
    // to the very signature the live mesh made.
    let audit = settings(2).open_read_only(&crashed, Some(keys(0))).unwrap();
    assert_eq!(audit.digest(), digest);
    assert_eq!(audit.report().journaled, 4);
    assert_eq!(audit.report().awaiting_signature, 0);
    for entry in audit.log() {
        assert_eq!(
            Some(entry.event.clone().into_owned()),
            mesh.event(entry.event.hash())
        );
    }
    drop(audit);
    assert_eq!(
        std::fs::read(crate::journal::path_beside(&crashed)).unwrap(),
        journal,
        "read-only opens write nothing"
    );

    // Another member's keys cannot sign it: a writable open would lose it,
    // so it refuses and leaves the journal as it was. (Unless the copy is
    // said to be shared, the copy's own member refuses them first, §9.1.)
    assert!(matches!(
        settings(2).open(&crashed, keys(1)),
        Err(Error::ForeignCopy { .. })
    ));
    refused_awaiting_signature(settings(2).shared_copy(true).open(&crashed, keys(1)));
    assert_eq!(
        std::fs::read(crate::journal::path_beside(&crashed)).unwrap(),
        journal
    );

    // A writable open with the author's keys replays the journal into the
    // file.
    let reopened = settings(2).open(&crashed, keys(0)).unwrap();
    assert_eq!(reopened.digest(), digest);
    assert_eq!(reopened.report().journaled, 4);
    drop(reopened);
    std::fs::remove_file(crate::journal::path_beside(&crashed)).unwrap();
    let replayed = Mesh::open_read_only(&crashed).unwrap();
    assert_eq!(replayed.digest(), digest, "the file itself now holds them");
    assert_eq!(replayed.report().journaled, 0);

    // Closing checkpoints: the file alone then holds everything.
    mesh.close().unwrap();
    std::fs::remove_file(crate::journal::path_beside(&path)).unwrap();
    assert_eq!(Mesh::open_read_only(&path).unwrap().digest(), digest);
}

/// The engine signs an event again only if its own key tagged it: bytes
/// put in the journal by anyone else are never signed.
#[test]
fn an_event_awaiting_its_signature_is_signed_only_if_this_key_wrote_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut mesh = settings(1).create(&path, keys(0), "ops").unwrap();
    mesh.set_enabled(true).unwrap();
    let (seq, prev, _) = mesh.ledger().state().next_position(keys(0).member_id());
    mesh.append_app("note", b"pay alice 5").unwrap();
    let crashed = crashed_copy(&dir, &path, "crashed");
    assert!(crate::journal::lose_seal(&crate::journal::path_beside(
        &crashed
    )));
    // The newest frame's event is replaced by another at the same position
    // of the feed, its frame check made good, the tag left as it was: a
    // forger without the key cannot make the tag.
    let journal = crate::journal::path_beside(&crashed);
    let forged = mesh.ledger().unsigned_at(
        keys(0).member_id(),
        seq,
        prev,
        0,
        Body::App {
            epoch: mesh.current_epoch().unwrap(),
            kind: "note".into(),
            payload: b"pay mallory 5000".to_vec(),
        },
    );
    crate::journal::replace_newest_event(&journal, forged.bytes());
    refused_awaiting_signature(settings(2).open(&crashed, keys(0)));
    let audit = settings(2).open_read_only(&crashed, Some(keys(0))).unwrap();
    assert_eq!(audit.report().awaiting_signature, 1);
    assert!(!audit.ledger().contains(forged.hash()), "never signed");
}

/// An event that awaits its signature is signed again only if it is the
/// next of its author's feed: a frame from an older journal, whose place
/// another event took, is never signed, so the member never forks its own
/// feed.
#[test]
fn an_old_frame_put_back_is_not_signed_into_a_fork() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut mesh = settings(1).create(&path, keys(0), "ops").unwrap();
    mesh.set_enabled(true).unwrap();
    mesh.close().unwrap();
    let twin = crashed_copy(&dir, &path, "twin");
    // "a" on one copy, acknowledged, its seal lost with the power.
    let mut one = settings(2).open(&path, keys(0)).unwrap();
    let a = one.append_app("note", b"a").unwrap();
    let old_journal = std::fs::read(crate::journal::path_beside(&path)).unwrap();
    drop(one);
    // "b" at the same position on the other, which keeps it.
    let mut other = settings(3).open(&twin, keys(0)).unwrap();
    let b = other.append_app("note", b"b").unwrap();
    other.close().unwrap();
    // The first journal is put beside the second file.
    let journal = crate::journal::path_beside(&twin);
    std::fs::write(&journal, &old_journal).unwrap();
    assert!(crate::journal::lose_seal(&journal));
    let reopened = settings(4).open(&twin, keys(0)).unwrap();
    assert!(reopened.event(b).is_some());
    assert!(reopened.event(a).is_none(), "never signed");
    assert!(reopened.equivocations().is_empty());
    assert_eq!(reopened.report().journaled, 0);
}

#[test]
fn a_file_older_than_its_journal_is_not_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut mesh = settings(1).create(&path, keys(0), "ops").unwrap();
    let old = crashed_copy(&dir, &path, "old");
    mesh.set_enabled(true).unwrap();
    mesh.checkpoint().unwrap();
    mesh.append_app("note", b"after the checkpoint").unwrap();
    // The old file with the new journal: its events could not be replayed.
    std::fs::copy(
        crate::journal::path_beside(&path),
        crate::journal::path_beside(&old),
    )
    .unwrap();
    for result in [
        settings(2).open(&old, keys(0)).map(drop),
        Mesh::open_read_only(&old).map(drop),
    ] {
        match result {
            Err(Error::Store(StoreError::JournalAhead { base, stored, .. })) => {
                assert_eq!((base, stored), (2, 1));
            }
            other => panic!("expected JournalAhead, got {other:?}"),
        }
    }
}

#[test]
fn a_journal_of_another_mesh_is_not_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = settings(1)
        .create(dir.path().join("a"), keys(0), "a")
        .unwrap();
    first.set_enabled(true).unwrap();
    let mut second = settings(2)
        .create(dir.path().join("b"), keys(1), "b")
        .unwrap();
    second.set_enabled(true).unwrap();
    let digest = second.digest();
    let crashed = crashed_copy(&dir, &dir.path().join("b"), "crashed");
    std::fs::copy(
        crate::journal::path_beside(&dir.path().join("a")),
        crate::journal::path_beside(&crashed),
    )
    .unwrap();
    // b's own journal is gone, so only its genesis survives; a's journal
    // is ignored rather than refused.
    let audit = Mesh::open_read_only(&crashed).unwrap();
    assert_eq!(audit.len(), 1);
    assert_ne!(audit.digest(), digest);
}

#[test]
fn records_in_reverse_order_join_and_what_never_arrives_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut founder = settings(1)
        .create(dir.path().join("f"), keys(0), "ops")
        .unwrap();
    founder.set_enabled(true).unwrap();
    let payloads: Vec<[u8; 2]> = (0..3000u16).map(u16::to_le_bytes).collect();
    founder
        .append_apps(payloads.iter().map(|payload| ("note", &payload[..])))
        .unwrap();
    founder.refresh("a rotation among the notes").unwrap();
    founder.append_app("note", b"last").unwrap();
    let mut reversed = founder.export_all().records().to_vec();
    reversed.reverse();
    // Each record waits for the one after it in this order; each is taken
    // as soon as what it waits for is.
    let peer = join_records(
        &dir.path().join("p"),
        keys(1),
        founder.group(),
        &reversed,
        settings(2),
    )
    .unwrap();
    assert_eq!(peer.digest(), founder.digest());
    // Without the first note, the 3,000 events after it can never be taken:
    // the incomplete records are counted, and the first one given is named.
    let missing = founder.export_all().records()[2].clone();
    let without: Vec<Vec<u8>> = reversed.into_iter().filter(|r| *r != missing).collect();
    match join_records(
        &dir.path().join("q"),
        keys(1),
        founder.group(),
        &without,
        settings(2),
    ) {
        Err(Error::Incomplete { count, waiting, .. }) => {
            assert_eq!(count, founder.len() - 3);
            assert_eq!(
                waiting,
                SignedEvent::from_record(&without[0]).unwrap().hash()
            );
        }
        other => panic!("expected Incomplete, got {other:?}"),
    }
    assert!(!dir.path().join("q").exists());
}

#[test]
fn a_refused_batch_leaves_the_mesh_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let mut founder = settings(1)
        .create(dir.path().join("f"), keys(0), "ops")
        .unwrap();
    founder.set_enabled(true).unwrap();
    founder
        .rotate(
            vec![add(&keys(1), Role::Admin), add(&keys(2), Role::Member)],
            "team",
        )
        .unwrap();
    let mut admin = joined(&dir, "a", 1, &founder, 2);
    let mut member = joined(&dir, "b", 2, &founder, 3);
    let mut twin = joined(&dir, "t", 0, &founder, 4);
    admin.set_enabled(true).unwrap();
    // A rotation that brings a new member's key, and writes after it.
    admin
        .rotate(vec![add(&keys(3), Role::Member)], "carol")
        .unwrap();
    admin.append_app("note", b"one").unwrap();
    member.set_enabled(true).unwrap();
    let good = admin.export(&founder.frontier());
    let mut bad_record = member.export(&founder.frontier()).records()[0].clone();
    bad_record[3] ^= 1;
    let mut records = good.records().to_vec();
    records.push(bad_record);
    let before = (
        founder.digest(),
        founder.frontier(),
        founder.len(),
        founder.roster().clone(),
    );
    match founder.ingest(&Batch::new(founder.group(), records)) {
        Err(Error::Rejected(rejection)) => assert_eq!(rejection.rule.id(), "V6"),
        other => panic!("expected V6, got {other:?}"),
    }
    let after = (
        founder.digest(),
        founder.frontier(),
        founder.len(),
        founder.roster().clone(),
    );
    assert_eq!(after, before);
    assert!(
        founder
            .epoch_secret(founder.current_epoch().unwrap())
            .is_ok()
    );
    // The good part goes in as it would have without the refusal, and the
    // founder's feed goes on from where it was.
    founder.ingest(&good).unwrap();
    twin.ingest(&good).unwrap();
    assert_eq!(founder.digest(), twin.digest());
    founder.append_app("note", b"after").unwrap();
    exchange(&mut founder, &mut twin);
    assert_eq!(founder.digest(), twin.digest());
    drop(founder);
    assert_eq!(
        Mesh::open_read_only(dir.path().join("f")).unwrap().digest(),
        twin.digest()
    );
}

#[test]
fn a_disabled_admin_turns_itself_on_and_merges_while_writes_wait() {
    let dir = tempfile::tempdir().unwrap();
    let mut founder = settings(1)
        .create(dir.path().join("f"), keys(0), "ops")
        .unwrap();
    founder.set_enabled(true).unwrap();
    founder
        .rotate(
            vec![
                add(&keys(1), Role::Admin),
                add(&keys(2), Role::Member),
                add(&keys(3), Role::Member),
            ],
            "team",
        )
        .unwrap();
    let mut admin = joined(&dir, "a", 1, &founder, 2);
    admin.set_enabled(true).unwrap();
    exchange(&mut founder, &mut admin);
    // Concurrent removals: each tip's own roster holds someone R* lacks.
    founder.remove_member(keys(2).member_id()).unwrap();
    admin.remove_member(keys(3).member_id()).unwrap();
    admin.set_enabled(false).unwrap();
    exchange(&mut founder, &mut admin);
    assert!(admin.needs_merge());
    assert_eq!(admin.writer_epoch(), None);
    assert!(matches!(
        admin.append_app("note", b"waits"),
        Err(Error::WaitsForMerge)
    ));
    assert!(matches!(admin.merge(), Err(Error::Refused(_))), "disabled");
    // Turning itself on names a tip that holds it; then it merges.
    admin.set_enabled(true).unwrap();
    let merge = admin.merge().unwrap().expect("a merge is needed");
    assert_eq!(admin.current_epoch(), Some(merge));
    admin.append_app("note", b"after the merge").unwrap();
}

#[test]
fn a_copy_holding_a_fork_of_its_own_feed_goes_on_from_its_newest_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut founder = settings(1).create(&path, keys(0), "ops").unwrap();
    founder.set_enabled(true).unwrap();
    let restored = dir.path().join("restored");
    founder.backup(&restored).unwrap();
    for n in 0..4u8 {
        founder.append_app("note", &[n]).unwrap();
    }
    // An old backup of the same member writes at a position the live copy
    // holds: a fork, taken by the live copy.
    let mut old = settings(2).open(&restored, keys(0)).unwrap();
    old.append_app("note", b"from the backup").unwrap();
    // The live copy, ahead on the feed, takes the old copy's branch in one
    // reply (SPEC.md §7.1).
    founder.ingest(&old.export(&founder.frontier())).unwrap();
    assert_eq!(founder.equivocations().len(), 1);
    let next = founder.append_app("note", b"next").unwrap();
    assert_eq!(founder.event(next).unwrap().seq(), 6, "after seq 5");
    assert_eq!(founder.equivocations().len(), 1, "no new fork");
}

/// A change the rules would void within the rotation's own past is refused
/// before anything is written: a member's own entry, and an admin's change
/// to an owner. Beside a change that is kept, it refuses the rotation
/// whole.
#[test]
fn a_change_that_would_be_void_is_refused_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut founder = settings(1)
        .create(dir.path().join("f.redb"), keys(0), "void")
        .unwrap();
    founder.set_enabled(true).unwrap();
    founder.add_member(keys(1).package(), Role::Admin).unwrap();
    founder.add_member(keys(2).package(), Role::Member).unwrap();
    let (len, digest) = (founder.len(), founder.digest());
    let error = founder.remove_member(keys(0).member_id()).unwrap_err();
    assert!(
        matches!(error, Error::VoidChange { member, change: "removal", reason: VoidReason::OwnEntry } if member == keys(0).member_id()),
        "{error}"
    );
    assert_eq!(error.class(), crate::error::ErrorClass::Refusal);
    assert_eq!(error.kind(), "void-change");
    assert_eq!((founder.len(), founder.digest()), (len, digest));

    let mut admin = joined(&dir, "a.redb", 1, &founder, 2);
    admin.set_enabled(true).unwrap();
    let (len, digest) = (admin.len(), admin.digest());
    let both = vec![
        Change::Remove {
            member: keys(0).member_id(),
        },
        Change::Remove {
            member: keys(2).member_id(),
        },
    ];
    let error = admin.rotate(both, "both").unwrap_err();
    assert!(
        matches!(error, Error::VoidChange { member, reason: VoidReason::Owner, .. } if member == keys(0).member_id()),
        "{error}"
    );
    assert_eq!((admin.len(), admin.digest()), (len, digest));
    // Each reason is the rule's own: present already, absent, the same
    // role, an admin's entry, an owner grant by an admin.
    let reason = |result: Result<EventHash>| match result {
        Err(Error::VoidChange { reason, .. }) => reason,
        other => panic!("expected a void change, got {other:?}"),
    };
    assert_eq!(
        reason(admin.add_member(keys(2).package(), Role::Member)),
        VoidReason::AlreadyPresent
    );
    assert_eq!(
        reason(admin.remove_member(keys(7).member_id())),
        VoidReason::NotPresent
    );
    assert_eq!(
        reason(founder.set_role(keys(1).member_id(), Role::Admin)),
        VoidReason::SameRole
    );
    assert_eq!(
        reason(admin.set_role(keys(1).member_id(), Role::Member)),
        VoidReason::OwnEntry
    );
    founder.add_member(keys(3).package(), Role::Admin).unwrap();
    exchange(&mut founder, &mut admin);
    assert_eq!(
        reason(admin.remove_member(keys(3).member_id())),
        VoidReason::AdminEntry
    );
    assert_eq!(
        reason(admin.add_member(keys(4).package(), Role::Owner)),
        VoidReason::OnlyOwnersMakeOwners
    );
    assert_eq!(
        reason(founder.add_member(keys(0).package(), Role::Owner)),
        VoidReason::OwnEntry
    );
    // The change the admin may make goes through on its own.
    admin.remove_member(keys(2).member_id()).unwrap();
    assert!(!admin.roster().contains(keys(2).member_id()));
}

/// The offsets and lengths of the journal's valid frames, in order.
fn journal_frames(path: &Path) -> Vec<(usize, usize)> {
    let bytes = std::fs::read(path).unwrap();
    let salt = u64::from_le_bytes(bytes[48..56].try_into().unwrap());
    let mut frames = Vec::new();
    let mut at = 72;
    while let Some(len) = bytes
        .get(at..at + 4)
        .map(|len| u32::from_le_bytes(len.try_into().unwrap()) as usize)
        .filter(|len| (96..100_000).contains(len))
    {
        if bytes[at + 4..at + 12] != salt.to_le_bytes() {
            break;
        }
        frames.push((at, 4 + 8 + len + 16));
        at += 4 + 8 + len + 16;
    }
    frames
}

/// A valid frame repeated right after itself (a write replayed by the
/// disk, a careless copy) holds nothing new: the file and every event
/// open, read-only and writable (SPEC.md §9.6, §10).
#[test]
fn a_frame_repeated_after_itself_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut mesh = settings(1).create(&path, keys(0), "ops").unwrap();
    mesh.set_enabled(true).unwrap();
    for n in 0..3u8 {
        mesh.append_app("note", &[n]).unwrap();
    }
    let digest = mesh.digest();
    let crashed = crashed_copy(&dir, &path, "crashed");
    let journal = crate::journal::path_beside(&crashed);
    let frames = journal_frames(&journal);
    assert_eq!(frames.len(), 5, "four events and a seal");
    let (at, len) = frames[1];
    let mut bytes = std::fs::read(&journal).unwrap();
    let frame = bytes[at..at + len].to_vec();
    bytes.splice(at + len..at + len, frame);
    std::fs::write(&journal, &bytes).unwrap();

    let audit = Mesh::open_read_only(&crashed).unwrap();
    assert_eq!(audit.digest(), digest);
    assert_eq!(audit.report().journaled, 4);
    assert_eq!(audit.report().journal_unreplayed, 0);
    drop(audit);
    let reopened = settings(2).open(&crashed, keys(0)).unwrap();
    assert_eq!(reopened.digest(), digest);
    assert_eq!(reopened.report().journaled, 4);
}

/// A flip in an acknowledged frame loses the events from it on, and only
/// those: the open says how many and where, and a writable open keeps the
/// journal under another name rather than start over it (SPEC.md §9.6).
#[test]
fn a_damaged_frame_is_reported_and_the_journal_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut mesh = settings(1).create(&path, keys(0), "ops").unwrap();
    mesh.set_enabled(true).unwrap();
    for n in 0..3u8 {
        mesh.append_app("note", &[n]).unwrap();
    }
    let crashed = crashed_copy(&dir, &path, "crashed");
    let journal = crate::journal::path_beside(&crashed);
    let frames = journal_frames(&journal);
    assert_eq!(frames.len(), 5, "four events and a seal");
    let (third, len) = frames[2];
    let mut bytes = std::fs::read(&journal).unwrap();
    bytes[third + len - 20] ^= 1;
    std::fs::write(&journal, &bytes).unwrap();

    // The second event's signature was in the damaged frame: an auditor
    // without keys is told it awaits one; the third and fourth are lost.
    let audit = Mesh::open_read_only(&crashed).unwrap();
    let report = audit.report();
    assert_eq!((report.journaled, report.awaiting_signature), (1, 1));
    assert_eq!(report.journal_unreplayed, 2);
    assert_eq!(report.journal_unreplayed_offset, Some(third as u64));
    assert_eq!(report.journal_set_aside, None);
    drop(audit);
    assert_eq!(std::fs::read(&journal).unwrap(), bytes, "nothing written");

    // With the author's keys the second is signed again.
    let reopened = settings(2).open(&crashed, keys(0)).unwrap();
    let report = reopened.report();
    assert_eq!((report.journaled, report.journal_unreplayed), (2, 2));
    let aside = report.journal_set_aside.unwrap();
    assert_eq!(aside, dir.path().join("crashed-journal.unreplayed"));
    assert_eq!(std::fs::read(&aside).unwrap(), bytes, "kept as it was");
    assert_eq!(reopened.len(), 3);
    drop(reopened);
    let again = settings(3).open(&crashed, keys(0)).unwrap();
    assert_eq!(again.report().journal_unreplayed, 0);
    assert_eq!(again.len(), 3);
}

/// Another member's journal of the same group, put beside a copy that
/// lacks what it continues, neither blocks an audit nor is signed, nor
/// destroyed, by a writable open.
#[test]
fn a_journal_of_another_copy_of_the_group_is_reported_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut founder = settings(1)
        .create(dir.path().join("a"), keys(0), "ops")
        .unwrap();
    founder.set_enabled(true).unwrap();
    founder
        .add_member(SignedPackage::sign(&keys(1), 1), Role::Member)
        .unwrap();
    let mut bob = joined(&dir, "b", 1, &founder, 2);
    bob.set_enabled(true).unwrap();
    bob.checkpoint().unwrap();
    bob.append_app("note", b"only in bob's journal").unwrap();
    // The founder's copy holds more events than bob's file, but not bob's.
    for n in 0..3u8 {
        founder.append_app("note", &[n]).unwrap();
    }
    founder.close().unwrap();
    let foreign = std::fs::read(crate::journal::path_beside(&dir.path().join("b"))).unwrap();
    let a = dir.path().join("a");
    let digest = Mesh::open_read_only(&a).unwrap().digest();
    let journal = crate::journal::path_beside(&a);
    std::fs::write(&journal, &foreign).unwrap();

    let audit = Mesh::open_read_only(&a).unwrap();
    assert_eq!(audit.digest(), digest);
    assert_eq!(audit.report().journaled, 0);
    assert_eq!(audit.report().journal_unreplayed, 1);
    drop(audit);
    let reopened = settings(3).open(&a, keys(0)).unwrap();
    assert_eq!(reopened.digest(), digest);
    let aside = reopened.report().journal_set_aside.unwrap();
    assert_eq!(std::fs::read(aside).unwrap(), foreign);
}

/// The digest is a function of the set (SPEC.md §6.3): a mesh that reads
/// its older events back from its file (§9.7), keeping its feeds' heads in
/// memory too, computes the digest a ledger holding every event in memory
/// computes, before and after it settles and once reopened.
#[test]
fn a_file_backed_digest_is_the_digest_of_the_set() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("digest.redb");
    let mut founder = settings(1).create(&path, keys(1), "digest").unwrap();
    founder.set_enabled(true).unwrap();
    founder.add_member(keys(2).package(), Role::Admin).unwrap();
    let mut member = joined(&dir, "member.redb", 2, &founder, 2);
    member.set_enabled(true).unwrap();
    member.append_app("note", b"from the member").unwrap();
    exchange(&mut founder, &mut member);
    for i in 0..5u8 {
        founder.append_app("note", &[i]).unwrap();
    }
    let in_memory = |mesh: &Mesh| {
        let records: Vec<Vec<u8>> = mesh.export_all().records().to_vec();
        let genesis = SignedEvent::from_record(&records[0]).unwrap();
        let mut ledger = Ledger::found(genesis).unwrap();
        ledger.take_all(&records[1..]).unwrap();
        ledger.digest()
    };
    let unsettled = founder.digest();
    assert_eq!(unsettled, in_memory(&founder));
    founder.checkpoint().unwrap();
    assert_eq!(founder.digest(), unsettled, "settled");
    drop(founder);
    let reopened = Mesh::open(&path, keys(1)).unwrap();
    assert!(reopened.report().checkpointed > 0);
    assert_eq!(reopened.digest(), unsettled, "restored from its checkpoint");
    assert_eq!(Mesh::open_read_only(&path).unwrap().digest(), unsettled);
}
