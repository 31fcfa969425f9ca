//! Tampered files (SPEC.md §8, §9): every flipped byte of a stored event
//! is refused naming the event (and the rule), every altered projection row
//! naming its table and key; reordered, duplicated or missing events are
//! refused; a consistently shortened file is caught by a checkpoint.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{
    EVENTS, db_path, dump, edit_events, edit_projection, fast_tempdir, join, keys, options,
    package, record, record_hash, send,
};
use meshlog::{Error, Mesh, Mismatch, Role, StoreError};

/// A file with events of two authors: rotations by an owner and an admin
/// (additions, a removal, a refresh), flags and app events.
fn demo(dir: &tempfile::TempDir) -> PathBuf {
    let path = db_path(dir, "demo.redb");
    let mut founder = options(1).create(&path, keys(1), "tamper").unwrap();
    founder.set_enabled(true).unwrap();
    founder.add_member(package(2), Role::Admin).unwrap();
    founder.add_member(package(3), Role::Member).unwrap();
    founder.add_member(package(4), Role::Member).unwrap();
    let mut admin = join(&founder, &db_path(dir, "admin.redb"), 2);
    admin.set_enabled(true).unwrap();
    admin.append_app("note", b"from the admin").unwrap();
    admin.remove_member(keys(4).member_id()).unwrap();
    send(&admin, &mut founder);
    founder.append_app("note", b"after the removal").unwrap();
    founder.refresh("weekly").unwrap();
    path
}

/// Every `stride`-th byte is flipped: `MESHLOG_TAMPER_STRIDE`, or `default`
/// (1 sweeps every byte).
fn stride(default: usize) -> usize {
    std::env::var("MESHLOG_TAMPER_STRIDE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Rewrites `path` as `pristine`, then one row through redb itself, so that
/// page checksums stay valid and only meshlog's own checks stand in the way.
fn rewrite_row(path: &Path, pristine: &[u8], table: &str, key: &[u8], value: &[u8]) {
    std::fs::write(path, pristine).unwrap();
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    if table == "events" {
        let position = u64::from_be_bytes(key.try_into().unwrap());
        txn.open_table(EVENTS)
            .unwrap()
            .insert(position, value)
            .unwrap();
    } else {
        txn.open_table(redb::TableDefinition::<&[u8], &[u8]>::new(table))
            .unwrap()
            .insert(key, value)
            .unwrap();
    }
    txn.commit().unwrap();
}

/// Every byte of every stored event flipped in turn: a flip in the
/// signature is refused as V6 naming the event's hash; a flip in the event
/// bytes changes the hash, and the refusal names the altered event by its
/// new hash, whether it breaks a rule or waits for an event that is gone.
#[test]
fn every_flip_of_a_stored_event_is_named() {
    let dir = fast_tempdir();
    let path = demo(&dir);
    let pristine = std::fs::read(&path).unwrap();
    let rows = dump(&path);
    let mut rules = std::collections::BTreeMap::<String, usize>::new();
    let mut flips = 0;
    // Each flip rewrites and reopens the file: every fourth byte keeps the
    // sweep under a minute and still reaches every field.
    let stride = stride(4);
    for (_, key, value) in rows.iter().filter(|row| row.0 == "events") {
        let original = record_hash(value);
        for index in (0..value.len()).step_by(stride) {
            let mut flipped = value.clone();
            flipped[index] ^= 0x01;
            rewrite_row(&path, &pristine, "events", key, &flipped);
            let error = Mesh::open_read_only(&path).unwrap_err();
            let altered = record_hash(&flipped);
            let named = match &error {
                Error::Rejected(rejection) if index < 64 => {
                    assert_eq!(rejection.rule.id(), "V6", "signature byte {index}: {error}");
                    rejection.hash == original
                }
                Error::Rejected(rejection) => rejection.hash == altered,
                Error::Incomplete { waiting, .. } => index >= 64 && *waiting == altered,
                _ => false,
            };
            assert!(
                named,
                "byte {index} of event {original} (now {altered}): {error:?}"
            );
            assert_eq!(error.class(), meshlog::ErrorClass::VerificationFailure);
            let id = match &error {
                Error::Rejected(rejection) => rejection.rule.id().to_owned(),
                _ => "waits".to_owned(),
            };
            *rules.entry(id).or_default() += 1;
            flips += 1;
        }
    }
    println!("{flips} event flips named, by rule: {rules:?}");
    assert!(flips * stride > 3000, "only {flips} flips");
    for rule in ["V1", "V6", "waits"] {
        assert!(
            rules.contains_key(rule),
            "no flip reached {rule}: {rules:?}"
        );
    }
    assert!(
        rules.keys().any(|id| id.starts_with('F')),
        "no flip reached a feed rule: {rules:?}"
    );
}

/// Every byte of every projection row (key and value) flipped in turn:
/// refused naming the table and the row; a flipped `meta` row is refused
/// as a file that is not this mesh's, but for `owner`, which names whose
/// copy the file is and holds no state (SPEC.md §9.1): flipped, the file
/// still verifies, and only its member's writable open is refused.
#[test]
fn every_flip_of_a_projection_row_is_named() {
    let dir = fast_tempdir();
    let path = demo(&dir);
    let pristine = std::fs::read(&path).unwrap();
    let rows = dump(&path);
    let mut flips = 0;
    // Neither the owner marker nor a member's checkpoint is read by an
    // audit: each has its own check below.
    let is_owner = |table: &str, key: &[u8]| {
        table == "meta" && (key == b"owner" || key.starts_with(b"checkpoint/"))
    };
    // The ledger's rows on disk are checked against the events they
    // describe (SPEC.md §9.7).
    let ledger_rows = ["seats", "hashes", "rotations"];
    for (table, key, value) in rows
        .iter()
        .filter(|row| row.0 != "events" && !is_owner(&row.0, &row.1))
    {
        for index in (0..key.len() + value.len()).step_by(stride(1)) {
            let (mut new_key, mut new_value) = (key.clone(), value.clone());
            if index < key.len() {
                new_key[index] ^= 0x01;
            } else {
                new_value[index - key.len()] ^= 0x01;
            }
            std::fs::write(&path, &pristine).unwrap();
            edit_projection(&path, table, |rows| {
                rows.remove(key.as_slice()).unwrap();
                rows.insert(new_key.as_slice(), new_value.as_slice())
                    .unwrap();
            });
            // A row's tag is the member's alone to check (SPEC.md §9.7):
            // an audit checks the row against the events instead.
            let in_tag = ["seats", "hashes"].contains(&table.as_str())
                && index >= key.len() + value.len() - 16;
            if in_tag {
                let audit = Mesh::open_read_only(&path).expect("a tag is no audit's concern");
                assert_eq!(audit.len(), 10);
                flips += 1;
                continue;
            }
            let error = Mesh::open_read_only(&path).unwrap_err();
            let named = match &error {
                Error::Store(StoreError::ProjectionMismatch {
                    table: t,
                    key: named,
                    problem,
                }) => {
                    *t == table
                        && if index < key.len() {
                            (*named == hex::encode(key) && *problem == Mismatch::Missing)
                                || (*named == hex::encode(&new_key)
                                    && *problem == Mismatch::Unexpected)
                        } else {
                            *named == hex::encode(key) && *problem == Mismatch::Differs
                        }
                }
                Error::Store(
                    StoreError::NotMeshlog { .. }
                    | StoreError::Tampered { .. }
                    | StoreError::NewerFormat { .. }
                    | StoreError::OlderFormat { .. },
                ) => table == "meta" || ledger_rows.contains(&table.as_str()),
                _ => false,
            };
            assert!(
                named,
                "byte {index} of {table} row {}: {error:?}",
                hex::encode(key)
            );
            flips += 1;
        }
    }
    let (_, _, owner) = rows
        .iter()
        .find(|row| row.0 == "meta" && row.1 == b"owner")
        .expect("the file names its member");
    std::fs::write(&path, &pristine).unwrap();
    let digest = Mesh::open_read_only(&path).unwrap().digest();
    for index in 0..owner.len() {
        let mut flipped = owner.clone();
        flipped[index] ^= 0x01;
        std::fs::write(&path, &pristine).unwrap();
        edit_projection(&path, "meta", |rows| {
            rows.insert(&b"owner"[..], flipped.as_slice()).unwrap();
        });
        assert_eq!(Mesh::open_read_only(&path).unwrap().digest(), digest);
        assert!(matches!(
            Mesh::open(&path, keys(1)),
            Err(Error::ForeignCopy { .. })
        ));
    }
    println!("{flips} projection flips named by table and row");
    assert!(flips * stride(1) > 300, "only {flips} flips");
    for table in common::PROJECTIONS {
        assert!(rows.iter().any(|row| row.0 == table), "no {table} rows");
    }
}

#[test]
fn a_missing_or_extra_projection_row_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo(&dir);
    let pristine = std::fs::read(&path).unwrap();
    let member = keys(3).member_id();

    edit_projection(&path, "enabled", |rows| {
        rows.remove(&member.as_bytes()[..]).unwrap();
    });
    let error = Mesh::open_read_only(&path).unwrap_err();
    assert!(
        matches!(&error, Error::Store(StoreError::ProjectionMismatch { table: "enabled", key, problem: Mismatch::Missing })
            if *key == hex::encode(member.as_bytes())),
        "{error}"
    );
    assert_eq!(error.class(), meshlog::ErrorClass::VerificationFailure);

    // The removed member, put back in the roster with the keys it had.
    std::fs::write(&path, &pristine).unwrap();
    let removed = keys(4);
    let mut row = vec![0u8];
    row.extend_from_slice(removed.public().dh.as_bytes());
    row.extend_from_slice(&0u64.to_be_bytes());
    edit_projection(&path, "roster", |rows| {
        rows.insert(&removed.member_id().as_bytes()[..], row.as_slice())
            .unwrap();
    });
    let error = Mesh::open_read_only(&path).unwrap_err();
    assert!(
        matches!(
            &error,
            Error::Store(StoreError::ProjectionMismatch {
                table: "roster",
                problem: Mismatch::Unexpected,
                ..
            })
        ),
        "{error}"
    );
}

/// An edit of a closed file's `events` table.
type EditEvents<'a> = dyn Fn(&mut redb::Table<u64, &[u8]>) + 'a;

/// Each event must come after what it names, and once: a swap, a copy or
/// a hole in the positions refuses the file, even though every event in it
/// is valid.
#[test]
fn reordered_duplicated_or_missing_events_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo(&dir);
    let pristine = std::fs::read(&path).unwrap();
    let count = dump(&path).iter().filter(|row| row.0 == "events").count() as u64;
    let (three, four) = (record(&path, 3), record(&path, 4));

    let cases: Vec<(&str, Box<EditEvents>)> = vec![
        (
            "swap",
            Box::new(|events| {
                events.insert(3, four.as_slice()).unwrap();
                events.insert(4, three.as_slice()).unwrap();
            }),
        ),
        (
            "copy",
            Box::new(|events| {
                events.insert(count, three.as_slice()).unwrap();
            }),
        ),
        (
            "hole",
            Box::new(|events| {
                events.remove(3).unwrap();
            }),
        ),
    ];
    for (name, edit) in cases {
        std::fs::write(&path, &pristine).unwrap();
        edit_events(&path, |events| edit(events));
        let result = Mesh::open_read_only(&path);
        assert!(result.is_err(), "{name}: the file was accepted");
        let error = result.err().unwrap();
        // Every event in it is valid: the file is refused for its layout
        // (SPEC.md §9).
        let expected = if name == "hole" {
            "without gaps"
        } else {
            "before what it names, or twice"
        };
        assert!(
            matches!(&error, Error::Store(StoreError::Tampered { detail, .. }) if detail.contains(expected)),
            "{name}: {error}"
        );
        assert_eq!(error.class(), meshlog::ErrorClass::VerificationFailure);
    }
}

/// A file cut short is one error, whichever way it is opened: damaged data
/// (SPEC.md §12.1), named as truncated, with its length.
#[test]
fn a_truncated_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo(&dir);
    let file = std::fs::read(&path).unwrap();
    let lengths = [100, 30_000, file.len() / 2, file.len() - 1];
    for keep in lengths.into_iter().chain((4096..file.len()).step_by(4096)) {
        std::fs::write(&path, &file[..keep]).unwrap();
        let read_only = Mesh::open_read_only(&path).unwrap_err();
        let writable = Mesh::open(&path, keys(1)).unwrap_err();
        for error in [&read_only, &writable] {
            assert!(
                matches!(error, Error::Store(StoreError::Truncated { len, .. }) if *len == keep as u64),
                "{keep}: {error:?}"
            );
            assert_eq!(error.class(), meshlog::ErrorClass::VerificationFailure);
            assert_eq!(error.kind(), "truncated");
        }
        assert_eq!(read_only.to_string(), writable.to_string());
    }
    // An empty file holds no meshlog database at all.
    std::fs::write(&path, b"").unwrap();
    let error = Mesh::open_read_only(&path).unwrap_err();
    assert!(
        matches!(error, Error::Store(StoreError::NotMeshlog { .. })),
        "{error}"
    );
}

/// A file alone cannot prove it is complete: the last events removed, it
/// is a valid, shorter file. A checkpoint (a frontier recorded earlier)
/// catches it, naming the heads that are gone.
#[test]
fn a_consistently_shortened_file_is_caught_by_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "mesh.redb");
    let mut mesh = options(1).create(&path, keys(1), "tamper").unwrap();
    mesh.set_enabled(true).unwrap();
    mesh.append_app("note", b"one").unwrap();
    let earlier = db_path(&dir, "earlier.redb");
    mesh.backup(&earlier).unwrap();
    let head = mesh.append_app("note", b"two").unwrap();
    let checkpoint = mesh.frontier();
    mesh.expect(&checkpoint).unwrap();
    drop(mesh);

    let copy = Mesh::open_read_only(&earlier).unwrap();
    assert!(copy.event(head).is_none());
    let error = copy.expect(&checkpoint).unwrap_err();
    match &error {
        Error::RolledBack { missing } => assert_eq!(missing, &vec![head]),
        other => panic!("expected a rollback, got {other:?}"),
    }
    assert_eq!(error.class(), meshlog::ErrorClass::VerificationFailure);
    Mesh::open_read_only(&path)
        .unwrap()
        .expect(&checkpoint)
        .unwrap();
}

/// Every offset of the file where some stored row's bytes lie.
fn row_offsets(file: &[u8], rows: &[(String, Vec<u8>, Vec<u8>)]) -> BTreeSet<usize> {
    let mut offsets = BTreeSet::new();
    for (_, key, value) in rows {
        for needle in [key, value] {
            // Short or repetitive needles (a flag, a position) would match
            // all over the file's zero-filled space.
            let distinct: BTreeSet<u8> = needle.iter().copied().collect();
            if needle.len() < 8 || distinct.len() < 6 {
                continue;
            }
            let mut from = 0;
            while let Some(at) = file[from..]
                .windows(needle.len())
                .position(|window| window == needle.as_slice())
            {
                offsets.extend(from + at..from + at + needle.len());
                from += at + 1;
            }
        }
    }
    offsets
}

/// Raw flips of the file's bytes, under redb: each is refused (by redb's
/// page checksums, or by meshlog's checks) or provably harmless (the
/// verified state is the original's).
#[test]
fn every_raw_flip_of_stored_data_is_refused_or_harmless() {
    let dir = fast_tempdir();
    let path = demo(&dir);
    let original = Mesh::open_read_only(&path).unwrap();
    let (digest, len) = (original.digest(), original.len());
    drop(original);
    let rows = dump(&path);
    let file = std::fs::read(&path).unwrap();
    let offsets = row_offsets(&file, &rows);
    assert!(offsets.len() > 2000, "only {} bytes of data", offsets.len());
    let flipped_path = db_path(&dir, "flipped.redb");
    let (mut refused, mut harmless) = (0, 0);
    for &offset in offsets.iter().step_by(stride(2)) {
        let mut flipped = file.clone();
        flipped[offset] ^= 0x01;
        std::fs::write(&flipped_path, &flipped).unwrap();
        match Mesh::open_read_only(&flipped_path) {
            Ok(mesh) => {
                assert_eq!(
                    (mesh.digest(), mesh.len()),
                    (digest, len),
                    "flipping byte {offset} gave another accepted state"
                );
                harmless += 1;
            }
            Err(error) => {
                assert!(
                    !matches!(error, Error::Keys(_) | Error::Secret(_)),
                    "byte {offset}: {error}"
                );
                refused += 1;
            }
        }
    }
    println!("raw sweep: {refused} refused, {harmless} harmless");
    assert!(refused > 0);
}
