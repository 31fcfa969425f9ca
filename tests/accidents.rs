//! Honest accidents must not brand a member a cheater (issue 23, item 4):
//! a copy knows the member it belongs to (SPEC.md §9.1), and a member's
//! feed mark keeps it from writing on a copy older than its feed (§11.2).

mod common;

use std::path::Path;

use redb::ReadableDatabase;

use common::{file_hash, keys, options};
use meshlog::{Error, ErrorClass, MemberId, Mesh, MeshOptions, feed_mark_path};

/// A founder's copy, enabled, closed.
fn founded(path: &Path) -> MemberId {
    let mut mesh = options(1).create(path, keys(1), "accidents").unwrap();
    mesh.set_enabled(true).unwrap();
    mesh.close().unwrap();
    keys(1).member_id()
}

/// The owner row of a closed file's meta table (SPEC.md §9.1).
fn owner_row(path: &Path) -> Option<Vec<u8>> {
    let meta = redb::TableDefinition::<&[u8], &[u8]>::new("meta");
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(meta).unwrap();
    table
        .get(&b"owner"[..])
        .unwrap()
        .map(|row| row.value().to_vec())
}

/// What a file holds, to show that a refused operation wrote no event.
fn held(path: &Path) -> (usize, meshlog::StateDigest) {
    let mesh = Mesh::open_read_only(path).unwrap();
    (mesh.len(), mesh.digest())
}

fn journal_of(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-journal");
    name.into()
}

/// The owner the error names, or a panic naming what came instead.
fn foreign_owner(result: meshlog::Result<Mesh>) -> MemberId {
    match result {
        Err(error @ Error::ForeignCopy { .. }) => {
            assert_eq!(error.class(), ErrorClass::CouldNotRun);
            assert_eq!(error.kind(), "foreign-copy");
            assert!(error.to_string().contains("--shared-copy"), "{error}");
            match error {
                Error::ForeignCopy { owner, .. } => owner,
                _ => unreachable!(),
            }
        }
        Err(other) => panic!("expected a foreign copy, got {other}"),
        Ok(_) => panic!("a writable open with another member's keys was accepted"),
    }
}

#[test]
fn another_members_keys_cannot_open_a_copy_to_write_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("founder.redb");
    let founder = founded(&path);
    let (file, journal) = (held(&path), file_hash(&journal_of(&path)));

    let refused = Mesh::open(&path, keys(2));
    assert_eq!(foreign_owner(refused), founder);
    assert_eq!(held(&path), file, "a refused open wrote an event");
    assert_eq!(
        file_hash(&journal_of(&path)),
        journal,
        "a refused open wrote the journal"
    );

    // Said to be shared, the copy opens with any member's keys; its own
    // member still opens it as before.
    drop(
        MeshOptions::new()
            .shared_copy(true)
            .open(&path, keys(2))
            .unwrap(),
    );
    let mut own = Mesh::open(&path, keys(1)).unwrap();
    own.append_app("note", b"mine").unwrap();
    own.close().unwrap();
    // Opening it shared did not make it the other member's.
    assert_eq!(foreign_owner(Mesh::open(&path, keys(2))), founder);
}

#[test]
fn a_join_makes_the_joiners_copy_and_a_backup_keeps_its_member() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("founder.redb");
    let founder = founded(&path);
    let everything = Mesh::open_read_only(&path).unwrap().export_all();
    let bob_path = dir.path().join("bob.redb");
    drop(Mesh::join(&bob_path, keys(2), &everything).unwrap());
    assert_eq!(
        foreign_owner(Mesh::open(&bob_path, keys(1))),
        keys(2).member_id()
    );

    let backup = dir.path().join("backup.redb");
    Mesh::open_read_only(&path)
        .unwrap()
        .backup(&backup)
        .unwrap();
    assert_eq!(foreign_owner(Mesh::open(&backup, keys(2))), founder);
    drop(Mesh::open(&backup, keys(1)).unwrap());
}

#[test]
fn a_file_that_names_no_member_becomes_the_copy_of_its_next_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("older.redb");
    founded(&path);
    // A file written before copies named their member.
    {
        let meta = redb::TableDefinition::<&[u8], &[u8]>::new("meta");
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        assert!(
            txn.open_table(meta)
                .unwrap()
                .remove(&b"owner"[..])
                .unwrap()
                .is_some()
        );
        txn.commit().unwrap();
    }
    // An open that writes nothing records nothing.
    drop(Mesh::open(&path, keys(2)).unwrap());
    assert_eq!(owner_row(&path), None);
    // The first write records its member, in the same transaction.
    let mut mesh = Mesh::open(&path, keys(1)).unwrap();
    mesh.append_app("note", b"first since").unwrap();
    mesh.close().unwrap();
    assert_eq!(
        owner_row(&path),
        Some(keys(1).member_id().as_bytes().to_vec())
    );
    assert_eq!(
        foreign_owner(Mesh::open(&path, keys(2))),
        keys(1).member_id()
    );
}

fn marked(mark: &Path) -> MeshOptions {
    MeshOptions::new().feed_mark(mark)
}

#[test]
fn a_restored_copy_refuses_the_members_write_until_a_sync_brings_its_feed_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("founder.redb");
    let mark = feed_mark_path(dir.path().join("founder.keys"));
    let mut mesh = marked(&mark).create(&path, keys(1), "restore").unwrap();
    mesh.set_enabled(true).unwrap();
    mesh.close().unwrap();
    let restored = dir.path().join("restored.redb");
    Mesh::open_read_only(&path)
        .unwrap()
        .backup(&restored)
        .unwrap();

    // The member writes on, then its laptop is restored from the backup.
    let mut mesh = marked(&mark).open(&path, keys(1)).unwrap();
    let newest = mesh.append_app("note", b"after the backup").unwrap();
    mesh.close().unwrap();
    let before = held(&restored);
    let mut old = marked(&mark).open(&restored, keys(1)).unwrap();
    match old.append_app("note", b"would fork") {
        Err(error @ Error::CopyBehindFeed { .. }) => {
            assert_eq!(error.class(), ErrorClass::CouldNotRun);
            assert_eq!(error.kind(), "copy-behind-feed");
            let text = error.to_string();
            assert!(text.contains("older than your feed"), "{text}");
            assert!(text.contains(&newest.to_string()), "{text}");
            assert!(text.contains("--accept-restored-copy"), "{text}");
        }
        other => panic!("a write on a restored copy was not refused: {other:?}"),
    }
    assert!(old.set_enabled(false).is_err(), "every write is refused");
    drop(old);
    assert_eq!(held(&restored), before, "a refused write wrote an event");

    // A sync from a peer (here the newer copy) brings the feed back; the
    // write then goes on from its newest event, and nothing forks.
    let mut old = marked(&mark).open(&restored, keys(1)).unwrap();
    let newer = Mesh::open_read_only(&path).unwrap();
    old.ingest(&newer.export(&old.frontier())).unwrap();
    old.append_app("note", b"after the sync").unwrap();
    assert!(old.equivocations().is_empty());
    old.close().unwrap();
}

#[test]
fn the_mark_follows_every_write_and_never_blocks_the_copy_that_made_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("founder.redb");
    let mark = feed_mark_path(dir.path().join("founder.keys"));
    let mut mesh = marked(&mark).create(&path, keys(1), "restore").unwrap();
    mesh.set_enabled(true).unwrap();
    // Not written per event: at the checkpoint (here the drop).
    assert!(!mark.exists());
    let records = [("a", &b"1"[..]), ("b", &b"2"[..])];
    let hashes = mesh.append_apps(records).unwrap();
    drop(mesh);
    let text = std::fs::read_to_string(&mark).unwrap();
    assert!(text.ends_with(&format!(" 3 {}\n", hashes[1])), "{text}");
    // Reopened, the copy holds the marked event and writes on.
    for round in 0..3 {
        let mut mesh = marked(&mark).open(&path, keys(1)).unwrap();
        mesh.append_app("note", &[round]).unwrap();
        mesh.close().unwrap();
    }
}

#[test]
fn a_member_whose_newer_events_are_lost_may_write_on_its_restored_copy_when_it_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("founder.redb");
    let mark = feed_mark_path(dir.path().join("founder.keys"));
    let mut mesh = marked(&mark).create(&path, keys(1), "restore").unwrap();
    mesh.set_enabled(true).unwrap();
    mesh.close().unwrap();
    let restored = dir.path().join("restored.redb");
    Mesh::open_read_only(&path)
        .unwrap()
        .backup(&restored)
        .unwrap();
    let mut mesh = marked(&mark).open(&path, keys(1)).unwrap();
    mesh.append_app("note", b"lost").unwrap();
    mesh.close().unwrap();
    std::fs::remove_file(&path).unwrap();

    let mut old = marked(&mark)
        .accept_restored_copy(true)
        .open(&restored, keys(1))
        .unwrap();
    let written = old.append_app("note", b"on the restored copy").unwrap();
    old.close().unwrap();
    // The mark now names the restored copy's newest event.
    let text = std::fs::read_to_string(&mark).unwrap();
    assert!(text.ends_with(&format!(" 2 {written}\n")), "{text}");
    let mut old = marked(&mark).open(&restored, keys(1)).unwrap();
    old.append_app("note", b"and on").unwrap();
}
