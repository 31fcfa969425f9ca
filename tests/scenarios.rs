//! Whole-life scenarios through the public API, each on its own DB file.

mod common;

use common::{db_path, edit_events, edit_projection, file_hash, keys, options, record};
use meshlog::{Body, Error, Event, Mesh, Mismatch, Role, Rule, SignedEvent, StoreError};

/// found → enable → add two members → promote one → kick the other.
#[test]
fn membership_lifecycle_and_who_can_read_what() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "mesh.redb");
    let (alice, bob) = (keys(2), keys(3));
    let (alice_id, bob_id) = (alice.member_id(), bob.member_id());

    let mut mesh = options(1).create(&path, keys(1), "ops").unwrap();
    assert!(!mesh.is_enabled(), "a new member starts disabled");
    assert!(matches!(
        mesh.add_member(alice.public(), Role::Member),
        Err(Error::Disabled { .. })
    ));
    assert!(matches!(
        mesh.append_app("note", b"x"),
        Err(Error::Disabled { .. })
    ));
    assert_eq!(mesh.state().len(), 1, "refused operations write nothing");

    mesh.set_enabled(true).unwrap();
    mesh.add_member(alice.public(), Role::Member).unwrap();
    mesh.add_member(bob.public(), Role::Member).unwrap();
    mesh.set_role(alice_id, Role::Admin).unwrap();
    mesh.append_app("note", b"before the kick").unwrap();
    mesh.remove_member(bob_id).unwrap();
    let current = mesh.state().current_epoch().unwrap();
    assert_eq!(current.epoch, 4);
    assert_eq!(current.roster.len(), 2);
    assert_eq!(current.member(alice_id).unwrap().role, Role::Admin);
    assert!(current.member(bob_id).is_none());

    let founder_secrets: Vec<[u8; 32]> = (0..=4)
        .map(|epoch| *mesh.epoch_secret(epoch).unwrap().expose())
        .collect();
    for (i, a) in founder_secrets.iter().enumerate() {
        for b in &founder_secrets[i + 1..] {
            assert_ne!(a, b, "every epoch has its own secret");
        }
    }
    let digest = mesh.digest();
    drop(mesh);

    // The kicked member recovers every epoch it was in, and fails cleanly on the rest.
    let bob_view = Mesh::open(&path, bob).unwrap();
    assert_eq!(bob_view.digest(), digest, "reopen rebuilds the same state");
    for epoch in [2, 3] {
        assert_eq!(
            bob_view.epoch_secret(epoch).unwrap().expose(),
            &founder_secrets[epoch as usize]
        );
    }
    for epoch in [0, 1, 4] {
        assert!(matches!(
            bob_view.epoch_secret(epoch),
            Err(Error::NotAMember { member, epoch: e }) if member == bob_id && e == epoch
        ));
    }
    assert!(matches!(
        bob_view.epoch_secret(5),
        Err(Error::NoSuchEpoch {
            epoch: 5,
            current: 4
        })
    ));
    drop(bob_view);

    let mut alice_view = Mesh::open(&path, alice).unwrap();
    for epoch in 1..=4 {
        assert_eq!(
            alice_view.epoch_secret(epoch).unwrap().expose(),
            &founder_secrets[epoch as usize]
        );
    }
    // The promoted admin may rotate once it has enabled itself.
    assert!(matches!(
        alice_view.rotate("refresh"),
        Err(Error::Disabled { .. })
    ));
    alice_view.set_enabled(true).unwrap();
    alice_view.rotate("refresh").unwrap();
    assert_eq!(alice_view.state().current_epoch().unwrap().epoch, 5);
    assert!(alice_view.epoch_secret(5).is_ok());
}

#[test]
fn a_non_admin_cannot_rotate_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "mesh.redb");
    let member = keys(2);
    let mut mesh = options(1).create(&path, keys(1), "ops").unwrap();
    mesh.set_enabled(true).unwrap();
    mesh.add_member(member.public(), Role::Member).unwrap();
    drop(mesh);

    let mut as_member = options(2).open(&path, member).unwrap();
    as_member.set_enabled(true).unwrap();
    as_member.append_app("note", b"members may post").unwrap();
    let before = as_member.digest();
    let error = as_member
        .add_member(keys(3).public(), Role::Member)
        .unwrap_err();
    match error {
        Error::Rejected(rejection) => {
            assert_eq!(rejection.seq, 5);
            assert!(
                matches!(rejection.rule, Rule::NotAdmin { epoch: 1, .. }),
                "{rejection}"
            );
        }
        other => panic!("expected a rejection, got {other}"),
    }
    assert_eq!(as_member.digest(), before);
    drop(as_member);
    let reopened = Mesh::open_read_only(&path).unwrap();
    assert_eq!(reopened.digest(), before);
    assert_eq!(reopened.state().len(), 5);
}

#[test]
fn a_removed_member_can_no_longer_act() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "mesh.redb");
    let member = keys(2);
    let member_id = member.member_id();
    let mut mesh = options(1).create(&path, keys(1), "ops").unwrap();
    mesh.set_enabled(true).unwrap();
    mesh.add_member(member.public(), Role::Member).unwrap();
    mesh.remove_member(member_id).unwrap();
    assert!(matches!(
        mesh.remove_member(member_id),
        Err(Error::UnknownMember { .. })
    ));
    drop(mesh);
    let mut outsider = Mesh::open(&path, member).unwrap();
    let error = outsider.set_enabled(true).unwrap_err();
    assert!(
        matches!(&error, Error::Rejected(r) if matches!(r.rule, Rule::AuthorNotMember { epoch: 2, .. })),
        "{error}"
    );
}

/// A small chain for the tamper tests: genesis, enable, add, 3 app events.
fn sample_chain(dir: &tempfile::TempDir, name: &str, group: &str) -> std::path::PathBuf {
    let path = db_path(dir, name);
    let mut mesh = options(1).create(&path, keys(1), group).unwrap();
    mesh.set_enabled(true).unwrap();
    mesh.add_member(keys(2).public(), Role::Member).unwrap();
    for i in 0..3u8 {
        mesh.append_app("note", &[i]).unwrap();
    }
    path
}

fn open_rejection(path: &std::path::Path) -> meshlog::Rejection {
    let before = file_hash(path);
    let error = Mesh::open_read_only(path).unwrap_err();
    assert_eq!(file_hash(path), before, "a read-only open never writes");
    assert!(error.is_verification_failure(), "{error}");
    match error {
        Error::Rejected(rejection) => rejection,
        other => panic!("expected a rejected event, got {other}"),
    }
}

#[test]
fn tampered_signature_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample_chain(&dir, "a.redb", "ops");
    let mut tampered = record(&path, 3);
    tampered[5] ^= 0x01;
    let hash = SignedEvent::from_record(&tampered).unwrap().hash();
    edit_events(&path, |events| {
        events.insert(3, tampered.as_slice()).unwrap();
    });
    let rejection = open_rejection(&path);
    assert_eq!((rejection.seq, rejection.hash), (3, hash));
    assert!(
        matches!(rejection.rule, Rule::BadSignature { .. }),
        "{rejection}"
    );
}

#[test]
fn a_re_signed_event_with_a_wrong_prev_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample_chain(&dir, "a.redb", "ops");
    let original = SignedEvent::from_record(&record(&path, 4)).unwrap();
    let mut event = original.event().clone();
    event.prev = meshlog::EventHash::from_bytes([0xee; 32]);
    let forged = SignedEvent::sign(event, &keys(1));
    edit_events(&path, |events| {
        events.insert(4, forged.to_record().as_slice()).unwrap();
    });
    let rejection = open_rejection(&path);
    assert_eq!(rejection.seq, 4);
    assert!(
        matches!(rejection.rule, Rule::PrevMismatch { .. }),
        "{rejection}"
    );
}

#[test]
fn a_gap_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample_chain(&dir, "a.redb", "ops");
    edit_events(&path, |events| {
        events.remove(3).unwrap();
    });
    let rejection = open_rejection(&path);
    assert_eq!(rejection.seq, 4);
    assert_eq!(
        rejection.rule,
        Rule::SeqNotNext {
            expected: 3,
            found: 4
        }
    );
}

#[test]
fn a_duplicated_event_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample_chain(&dir, "a.redb", "ops");
    let third = record(&path, 3);
    edit_events(&path, |events| {
        events.insert(4, third.as_slice()).unwrap();
    });
    let rejection = open_rejection(&path);
    assert_eq!(
        rejection.seq, 4,
        "the rejection names where the copy was found"
    );
    assert_eq!(
        rejection.rule,
        Rule::SeqNotNext {
            expected: 4,
            found: 3
        }
    );
}

#[test]
fn an_event_replayed_from_another_group_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let ours = sample_chain(&dir, "a.redb", "ops");
    let theirs = sample_chain(&dir, "b.redb", "other group, same founder");
    let foreign = record(&theirs, 4);
    edit_events(&ours, |events| {
        events.insert(4, foreign.as_slice()).unwrap();
    });
    let rejection = open_rejection(&ours);
    assert_eq!(rejection.seq, 4);
    assert!(
        matches!(rejection.rule, Rule::WrongGroup { .. }),
        "{rejection}"
    );
}

#[test]
fn garbage_and_a_second_genesis_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample_chain(&dir, "a.redb", "ops");
    let genesis = record(&path, 0);
    edit_events(&path, |events| {
        events.insert(2, &[1u8, 2, 3][..]).unwrap();
    });
    let rejection = open_rejection(&path);
    assert_eq!(rejection.seq, 2);
    assert!(matches!(rejection.rule, Rule::Malformed(_)), "{rejection}");

    let second = sample_chain(&dir, "b.redb", "ops");
    // A genesis re-signed to sit at seq 1 of its own group.
    let mut event: Event = SignedEvent::from_record(&genesis).unwrap().event().clone();
    let first = SignedEvent::from_record(&record(&second, 0)).unwrap();
    event.seq = 1;
    event.prev = first.hash();
    event.group = first.hash().into();
    let forged = SignedEvent::sign(event, &keys(1));
    edit_events(&second, |events| {
        events.insert(1, forged.to_record().as_slice()).unwrap();
    });
    let rejection = open_rejection(&second);
    assert_eq!((rejection.seq, rejection.rule), (1, Rule::SecondGenesis));
}

#[test]
fn a_modified_projection_table_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample_chain(&dir, "a.redb", "ops");
    // Substitute the DH key of a roster entry (the attack that would let an
    // outsider receive the next epoch's secret).
    edit_projection(&path, "roster", |roster| {
        let (key, mut value) = {
            use redb::ReadableTable;
            let (k, v) = roster.last().unwrap().unwrap();
            (k.value().to_vec(), v.value().to_vec())
        };
        let last = value.len() - 2;
        value[last] ^= 0x40;
        roster.insert(key.as_slice(), value.as_slice()).unwrap();
    });
    let error = Mesh::open_read_only(&path).unwrap_err();
    assert!(error.is_verification_failure());
    assert!(
        matches!(
            error,
            Error::Store(StoreError::ProjectionMismatch {
                table: "roster",
                problem: Mismatch::Differs,
                ..
            })
        ),
        "{error}"
    );

    let path = sample_chain(&dir, "b.redb", "ops");
    edit_projection(&path, "enabled", |enabled| {
        enabled.insert(&[0u8; 16][..], &[1u8][..]).unwrap();
    });
    let error = Mesh::open_read_only(&path).unwrap_err();
    assert!(
        matches!(
            error,
            Error::Store(StoreError::ProjectionMismatch {
                table: "enabled",
                problem: Mismatch::Unexpected,
                ..
            })
        ),
        "{error}"
    );
}

#[test]
fn reopen_gives_identical_state_and_reads_never_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample_chain(&dir, "a.redb", "ops");
    let writer = Mesh::open(&path, keys(1)).unwrap();
    let state = writer.state().clone();
    drop(writer);
    let before = file_hash(&path);
    let audit = Mesh::open_read_only(&path).unwrap();
    assert_eq!(audit.state(), &state);
    assert!(audit.report().read_only && !audit.report().verified_private_copy);
    assert_eq!(audit.report().events, 6);
    assert!(matches!(audit.epoch_secret(0), Err(Error::NoKeys)));
    drop(audit);
    assert_eq!(file_hash(&path), before);
}

#[test]
fn live_files_are_locked_and_backed_up_consistently() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample_chain(&dir, "a.redb", "ops");
    let mut mesh = Mesh::open(&path, keys(1)).unwrap();
    // An auditor may read the live file: a private copy is verified.
    let live = Mesh::open_read_only(&path).unwrap();
    assert_eq!(live.digest(), mesh.digest());
    drop(live);
    // A second writer is refused.
    assert!(matches!(
        Mesh::open(&path, keys(2)),
        Err(Error::Store(StoreError::Locked { .. }))
    ));

    let backup = db_path(&dir, "backup.redb");
    mesh.backup(&backup).unwrap();
    assert!(matches!(
        mesh.backup(&backup),
        Err(Error::Store(StoreError::Exists { .. }))
    ));
    // A raw copy of the live file, as `cp` would take it.
    let raw = db_path(&dir, "raw-copy.redb");
    std::fs::copy(&path, &raw).unwrap();
    mesh.append_app("note", b"after the backup").unwrap();

    let copy = Mesh::open_read_only(&backup).unwrap();
    assert_eq!(copy.state().len(), 6);
    assert!(!copy.report().verified_private_copy);
    let before = file_hash(&raw);
    let raw_view = Mesh::open_read_only(&raw).unwrap();
    assert_eq!(raw_view.state().len(), 6);
    assert!(
        raw_view.report().verified_private_copy,
        "a copy of a live file needs recovery, done on a private copy"
    );
    drop(raw_view);
    assert_eq!(file_hash(&raw), before, "the original copy is untouched");
}

#[test]
fn bad_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = db_path(&dir, "missing.redb");
    let error = Mesh::open_read_only(&missing).unwrap_err();
    assert!(
        matches!(error, Error::Store(StoreError::NotFound { .. })),
        "{error}"
    );
    assert!(matches!(
        Mesh::open(&missing, keys(1)),
        Err(Error::Store(StoreError::NotFound { .. }))
    ));

    let text = db_path(&dir, "text.redb");
    std::fs::write(&text, b"hello, this is not a database").unwrap();
    let error = Mesh::open_read_only(&text).unwrap_err();
    assert!(
        matches!(error, Error::Store(StoreError::NotMeshlog { .. })),
        "{error}"
    );
    assert!(!error.is_verification_failure());

    let other = db_path(&dir, "other.redb");
    drop(redb::Database::create(&other).unwrap());
    let error = Mesh::open_read_only(&other).unwrap_err();
    assert!(
        matches!(error, Error::Store(StoreError::NotMeshlog { .. })),
        "{error}"
    );

    let existing = sample_chain(&dir, "a.redb", "ops");
    assert!(matches!(
        Mesh::create(&existing, keys(1), "again"),
        Err(Error::Store(StoreError::Exists { .. }))
    ));
}

#[test]
fn a_forged_envelope_copy_fails_cleanly_never_garbage() {
    // The founder tampers with nothing, but a member whose DH key in the
    // roster is not its own gets a typed error, not garbage.
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "mesh.redb");
    let mut mesh = options(1).create(&path, keys(1), "ops").unwrap();
    mesh.set_enabled(true).unwrap();
    let mut impostor = keys(2).public();
    impostor.dh = keys(3).public().dh;
    mesh.add_member(impostor, Role::Member).unwrap();
    drop(mesh);
    let member = Mesh::open(&path, keys(2)).unwrap();
    assert!(matches!(
        member.epoch_secret(1),
        Err(Error::DhKeyMismatch { epoch: 1, .. })
    ));
    assert!(matches!(
        member.event(2).unwrap().event().body,
        Body::Rotate(_)
    ));
    // The holder of the substituted DH key is not the member: it has no
    // signing key for the roster entry and its own id is not a recipient.
    drop(member);
    let outsider = Mesh::open(&path, keys(3)).unwrap();
    assert!(matches!(
        outsider.epoch_secret(1),
        Err(Error::NotAMember { epoch: 1, .. })
    ));
}

/// `find` answers from an index kept in memory: it must know every event
/// however it arrived (single appends, batches, rotations, a join, an ingest,
/// a reopen) and nothing else.
#[test]
fn find_knows_every_event_however_it_arrived() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "find.redb");
    let mut founder = options(1).create(&path, keys(1), "find").unwrap();
    founder.set_enabled(true).unwrap();
    founder.add_member(keys(2).public(), Role::Member).unwrap();
    founder.append_app("one", b"1").unwrap();
    founder
        .append_apps((0..50u8).map(|_| ("many", &b"x"[..])))
        .unwrap();
    let peer_path = db_path(&dir, "peer.redb");
    // An auditor in no roster may join and ingest without enabling itself.
    let mut peer = Mesh::join(&peer_path, keys(3), &founder.export_since(0).unwrap()).unwrap();
    founder.rotate("fresh secret").unwrap();
    founder.append_app("two", b"2").unwrap();
    peer.ingest(&founder.export_since(0).unwrap()).unwrap();

    let hashes: Vec<_> = (0..founder.state().len())
        .map(|seq| founder.event(seq).unwrap().hash())
        .collect();
    let check = |mesh: &Mesh, who: &str| {
        for (seq, hash) in hashes.iter().enumerate() {
            assert_eq!(
                mesh.find(*hash).unwrap(),
                Some(seq as u64),
                "{who}: seq {seq}"
            );
        }
        let unknown = meshlog::EventHash::from_bytes([0xab; 32]);
        assert_eq!(mesh.find(unknown).unwrap(), None, "{who}");
    };
    check(&founder, "founder, as written");
    check(&peer, "peer, joined then ingested");
    drop(founder);
    drop(peer);
    check(&Mesh::open(&path, keys(1)).unwrap(), "founder, reopened");
    check(
        &Mesh::open_read_only(&peer_path).unwrap(),
        "peer, read-only",
    );
}
