//! Every error a user can meet opening, writing or syncing a mesh: what it
//! says, its class (`Error::class`, which the CLI's exit code follows), and
//! that nothing is written.

mod common;

use std::path::Path;

use common::{db_path, dump, edit_projection, file_hash, join, keys, options, package, send};
use meshlog::{Error, ErrorClass, EventHash, KeyError, LocalKeys, Mesh, Role, StoreError};

fn sample(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = db_path(dir, "mesh.redb");
    let mut mesh = options(1).create(&path, keys(1), "errors").unwrap();
    mesh.set_enabled(true).unwrap();
    path
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "nope.redb");
    for error in [
        Mesh::open_read_only(&path).unwrap_err(),
        Mesh::open(&path, keys(1)).unwrap_err(),
    ] {
        assert!(
            matches!(error, Error::Store(StoreError::NotFound { .. })),
            "{error}"
        );
        assert_eq!(error.class(), ErrorClass::CouldNotRun);
        let text = error.to_string();
        assert!(
            text.contains("nope.redb") && text.contains("no such file"),
            "{text}"
        );
    }
    assert!(!path.exists(), "opening never creates a file");
}

#[test]
fn not_a_meshlog_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = db_path(&dir, "notes.txt");
    std::fs::write(&text, "just some notes\n".repeat(100)).unwrap();
    let before = file_hash(&text);
    let other = db_path(&dir, "other.redb");
    drop(redb::Database::create(&other).unwrap());
    for path in [&text, &other] {
        for error in [
            Mesh::open_read_only(path).unwrap_err(),
            Mesh::open(path, keys(1)).unwrap_err(),
        ] {
            assert!(
                matches!(error, Error::Store(StoreError::NotMeshlog { .. })),
                "{error}"
            );
            assert_eq!(error.class(), ErrorClass::CouldNotRun);
            assert!(
                error.to_string().contains("is not a meshlog database"),
                "{error}"
            );
        }
    }
    assert_eq!(file_hash(&text), before);
}

#[test]
fn a_file_held_by_another_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(&dir);
    let holder = Mesh::open(&path, keys(1)).unwrap();
    let error = Mesh::open(&path, keys(1)).unwrap_err();
    assert!(
        matches!(error, Error::Store(StoreError::Locked { .. })),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::CouldNotRun);
    // An auditor may still read it.
    let audit = Mesh::open_read_only(&path).unwrap();
    assert!(audit.report().read_only);
    assert_eq!(audit.digest(), holder.digest());
}

#[test]
fn an_existing_file_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(&dir);
    let before = dump(&path);
    let error = Mesh::create(&path, keys(1), "again").unwrap_err();
    assert!(
        matches!(error, Error::Store(StoreError::Exists { .. })),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::CouldNotRun);
    let mesh = Mesh::open(&path, keys(1)).unwrap();
    let error = mesh.backup(&path).unwrap_err();
    assert!(
        matches!(error, Error::Store(StoreError::Exists { .. })),
        "{error}"
    );
    drop(mesh);
    assert_eq!(dump(&path), before);
}

/// SPEC.md §9: the `meta` table keeps v2's layout, so a v2 file is
/// refused by its format number rather than as damaged, and a newer file
/// asks for an upgrade. Neither open writes.
#[test]
fn files_of_other_store_formats_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(meshlog::STORE_FORMAT, 4);
    let path = sample(&dir);
    edit_projection(&path, "meta", |meta| {
        meta.insert(&b"format"[..], &2u16.to_be_bytes()[..])
            .unwrap();
    });
    let rows = dump(&path);
    for error in [
        Mesh::open_read_only(&path).unwrap_err(),
        Mesh::open(&path, keys(1)).unwrap_err(),
    ] {
        assert!(
            matches!(
                error,
                Error::Store(StoreError::OlderFormat {
                    found: 2,
                    supported: 4,
                    ..
                })
            ),
            "{error}"
        );
        assert_eq!(error.class(), ErrorClass::CouldNotRun);
        assert!(error.to_string().contains("store format 2"), "{error}");
    }
    assert_eq!(dump(&path), rows, "a refused open changes no table");

    edit_projection(&path, "meta", |meta| {
        meta.insert(&b"format"[..], &5u16.to_be_bytes()[..])
            .unwrap();
    });
    let error = Mesh::open_read_only(&path).unwrap_err();
    assert!(
        matches!(
            error,
            Error::Store(StoreError::NewerFormat {
                found: 5,
                supported: 4,
                ..
            })
        ),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::CouldNotRun);
    assert!(error.to_string().contains("upgrade meshlog"), "{error}");
}

/// SPEC.md §9.6: a file replaced by an older copy of itself, while its
/// journal continues a later state, is not opened, so that the journal's
/// events are not lost silently; nothing is written.
#[test]
fn a_file_older_than_its_journal_is_not_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(&dir);
    let old = db_path(&dir, "old.redb");
    std::fs::copy(&path, &old).unwrap();
    let mut mesh = Mesh::open(&path, keys(1)).unwrap();
    for i in 0..3u8 {
        mesh.append_app("note", &[i]).unwrap();
    }
    mesh.checkpoint().unwrap();
    mesh.append_app("note", b"in the journal only").unwrap();
    // The writer crashes: no checkpoint on the way out.
    std::mem::forget(mesh);
    // The older copy is put in the file's place (a new file at that path).
    std::fs::rename(&old, &path).unwrap();
    let (before, rows) = (file_hash(&path), dump(&path));
    let journal = std::path::PathBuf::from(format!("{}-journal", path.display()));
    let journaled = file_hash(&journal);
    let read_only = Mesh::open_read_only(&path).unwrap_err();
    assert_eq!(file_hash(&path), before, "a read-only open never writes");
    for error in [read_only, Mesh::open(&path, keys(1)).unwrap_err()] {
        assert!(
            matches!(
                error,
                Error::Store(StoreError::JournalAhead {
                    base: 5,
                    stored: 2,
                    ..
                })
            ),
            "{error}"
        );
        assert_eq!(error.class(), ErrorClass::CouldNotRun);
    }
    assert_eq!(dump(&path), rows, "the refused open changed no table");
    assert_eq!(
        file_hash(&journal),
        journaled,
        "the journal keeps its events"
    );
}

#[test]
fn a_read_only_mesh_refuses_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(&dir);
    let before = file_hash(&path);
    let mut audit = Mesh::open_read_only(&path).unwrap();
    assert!(audit.report().read_only);
    assert_eq!(audit.member_id(), None);
    let batch = audit.export_all();
    let results = [
        audit.append_app("note", b"x").map(drop),
        audit.set_enabled(false).map(drop),
        audit.refresh("no").map(drop),
        audit.ingest(&batch).map(drop),
    ];
    for result in results {
        let error = result.unwrap_err();
        assert!(matches!(error, Error::ReadOnly), "{error}");
        assert_eq!(error.class(), ErrorClass::CouldNotRun);
    }
    drop(audit);
    assert_eq!(file_hash(&path), before, "a read-only mesh never writes");
}

#[test]
fn a_member_cannot_change_the_roster_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut founder = options(1)
        .create(db_path(&dir, "f.redb"), keys(1), "ops")
        .unwrap();
    founder.set_enabled(true).unwrap();
    founder.add_member(package(2), Role::Member).unwrap();
    let mut member = join(&founder, &db_path(&dir, "m.redb"), 2);
    member.set_enabled(true).unwrap();
    member.append_app("note", b"members may post").unwrap();

    let (len, digest) = (member.len(), member.digest());
    let attempts = [
        member.add_member(package(3), Role::Member),
        member.remove_member(keys(1).member_id()),
        member.set_role(keys(2).member_id(), Role::Admin),
        member.refresh("mine"),
    ];
    // The rules refuse them before anything is stored: the author is no
    // admin in the rotation's own past (E7).
    for result in attempts {
        let error = result.unwrap_err();
        assert!(
            matches!(&error, Error::Refused(r) if r.rule.id() == "E7"),
            "{error}"
        );
        assert_eq!(error.class(), ErrorClass::Refusal);
    }
    assert_eq!((member.len(), member.digest()), (len, digest));

    // An owner comes only by an addition (SPEC.md §5.1, E6).
    let (len, digest) = (founder.len(), founder.digest());
    let error = founder
        .set_role(keys(2).member_id(), Role::Owner)
        .unwrap_err();
    assert!(
        matches!(&error, Error::Refused(r) if r.rule.id() == "E6"),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::Refusal);
    assert_eq!((founder.len(), founder.digest()), (len, digest));
}

/// Two admins removing two different members concurrently: each tip's own
/// roster holds someone R* does not, so no epoch may be written under until
/// a merge (SPEC.md §5.5).
#[test]
fn writes_wait_for_a_merge_when_no_tip_is_safe() {
    let dir = tempfile::tempdir().unwrap();
    let mut founder = options(1)
        .create(db_path(&dir, "f.redb"), keys(1), "ops")
        .unwrap();
    founder.set_enabled(true).unwrap();
    for (n, role) in [
        (2, Role::Admin),
        (3, Role::Admin),
        (4, Role::Member),
        (5, Role::Member),
    ] {
        founder.add_member(package(n), role).unwrap();
    }
    let mut a = join(&founder, &db_path(&dir, "a.redb"), 2);
    let mut b = join(&founder, &db_path(&dir, "b.redb"), 3);
    a.set_enabled(true).unwrap();
    b.set_enabled(true).unwrap();
    a.remove_member(keys(4).member_id()).unwrap();
    b.remove_member(keys(5).member_id()).unwrap();
    send(&a, &mut founder);
    let ingested = send(&b, &mut founder);
    assert!(ingested.needs_merge);
    assert_eq!(founder.writer_epoch(), None);

    let (len, digest) = (founder.len(), founder.digest());
    let error = founder.append_app("note", b"too early").unwrap_err();
    assert!(matches!(error, Error::WaitsForMerge), "{error}");
    assert_eq!(error.class(), ErrorClass::Refusal);
    assert_eq!((founder.len(), founder.digest()), (len, digest));
    // A flag change never waits: it names a tip whose own roster holds the
    // member, so a disabled admin can still turn itself on and merge.
    founder.set_enabled(false).unwrap();
    founder.set_enabled(true).unwrap();
    assert_eq!(founder.len(), len + 2);

    let merge = founder.merge().unwrap().expect("a merge is needed");
    assert_eq!(founder.current_epoch(), Some(merge));
    assert_eq!(founder.roster().len(), 3, "both removals stand");
    founder.append_app("note", b"after the merge").unwrap();
}

#[test]
fn secrets_of_epochs_the_member_is_not_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut founder = options(1)
        .create(db_path(&dir, "f.redb"), keys(1), "ops")
        .unwrap();
    founder.set_enabled(true).unwrap();
    let genesis = founder.epochs()[0].hash;
    let added = founder.add_member(package(2), Role::Member).unwrap();
    let member = join(&founder, &db_path(&dir, "m.redb"), 2);

    let error = common::refused(member.epoch_secret(genesis));
    assert!(
        matches!(error, Error::Secret(meshlog::SecretError::NotARecipient { epoch, member: m })
            if epoch == genesis && m == keys(2).member_id()),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::Refusal);
    assert!(member.epoch_secret(added).is_ok());

    // A hash that is no event, or an event that is no rotation.
    let unknown = EventHash::from_bytes([0xab; 32]);
    let error = common::refused(founder.epoch_secret(unknown));
    assert!(
        matches!(error, Error::Secret(meshlog::SecretError::UnknownEpoch(h)) if h == unknown),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::CouldNotRun);
    let note = founder.append_app("note", b"x").unwrap();
    let error = common::refused(founder.epoch_secret(note));
    assert!(
        matches!(error, Error::Secret(meshlog::SecretError::UnknownEpoch(h)) if h == note),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::CouldNotRun);

    // A mesh opened without keys recovers nothing.
    drop(member);
    let audit = Mesh::open_read_only(db_path(&dir, "m.redb")).unwrap();
    let error = common::refused(audit.epoch_secret(added));
    assert!(matches!(error, Error::NoKeys), "{error}");
    assert_eq!(error.class(), ErrorClass::CouldNotRun);
}

#[test]
fn unreadable_or_damaged_key_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = db_path(&dir, "missing.keys");
    let error = LocalKeys::load(&missing).unwrap_err();
    assert!(matches!(error, KeyError::Io { .. }), "{error}");
    assert!(error.to_string().contains("missing.keys"), "{error}");
    assert_eq!(Error::from(error).class(), ErrorClass::CouldNotRun);

    let short = db_path(&dir, "short.keys");
    LocalKeys::generate().save(&short).unwrap();
    let bytes = std::fs::read(&short).unwrap();
    std::fs::write(&short, &bytes[..50]).unwrap();
    let error = LocalKeys::load(&short).unwrap_err();
    assert!(
        error.to_string().contains("is not a meshlog key file"),
        "{error}"
    );

    // Keys round-trip through a file, and are never overwritten.
    let good = db_path(&dir, "good.keys");
    let generated = LocalKeys::generate();
    generated.save(&good).unwrap();
    assert_eq!(
        LocalKeys::load(&good).unwrap().member_id(),
        generated.member_id()
    );
    assert!(LocalKeys::generate().save(&good).is_err());
    assert_eq!(
        LocalKeys::load(&good).unwrap().member_id(),
        generated.member_id()
    );
}

#[cfg(unix)]
#[test]
fn a_key_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "loose.keys");
    LocalKeys::generate().save(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let error = LocalKeys::load(&path).unwrap_err();
    assert!(
        matches!(error, KeyError::Permissions { mode: 0o640, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("chmod 600"), "{error}");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o640,
        "meshlog does not change the file's mode behind the user's back"
    );
}

#[test]
fn malformed_batch_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(&dir);
    let mesh = Mesh::open(&path, keys(1)).unwrap();
    let bytes = mesh.export_all().to_bytes();
    let mut trailing = bytes.clone();
    trailing.extend_from_slice(b"garbage");
    for bad in [&bytes[..bytes.len() - 10], &trailing[..]] {
        let error = meshlog::Batch::from_bytes(bad).unwrap_err();
        assert_eq!(Error::from(error).class(), ErrorClass::VerificationFailure);
    }
    // Bytes that are no batch at all are the wrong file: the command could
    // not run, as with a file that is no meshlog database (SPEC.md §12.1).
    let error = meshlog::Batch::from_bytes(b"not a batch").unwrap_err();
    assert_eq!(Error::from(error).class(), ErrorClass::CouldNotRun);
}

/// SPEC.md §3.2's limits on what a user writes: refused before anything
/// is stored; a refused create leaves no file, so a retry works.
#[test]
fn oversized_fields_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mesh.redb");
    for bad in [
        String::new(),
        "x".repeat(meshlog::limits::MAX_GROUP_NAME + 1),
    ] {
        let error = Mesh::create(&path, keys(1), &bad).unwrap_err();
        assert!(
            matches!(&error, Error::Refused(r) if r.rule.id() == "V4"),
            "{error:?}"
        );
        assert_eq!(error.class(), ErrorClass::Refusal);
        assert!(!path.exists(), "a refused create left {}", path.display());
    }
    let mut mesh = Mesh::create(&path, keys(1), "ok").unwrap();
    mesh.set_enabled(true).unwrap();
    let (len, digest) = (mesh.len(), mesh.digest());
    let payload = vec![0u8; meshlog::limits::MAX_APP_PAYLOAD + 1];
    let kind = "k".repeat(meshlog::limits::MAX_APP_KIND + 1);
    let reason = "r".repeat(meshlog::limits::MAX_REASON + 1);
    for result in [
        mesh.append_app("blob", &payload),
        mesh.append_app(&kind, b"x"),
        mesh.append_app("", b"x"),
        mesh.refresh(&reason),
    ] {
        let error = result.unwrap_err();
        assert!(
            matches!(&error, Error::Refused(r) if r.rule.id() == "V4"),
            "{error:?}"
        );
    }
    assert_eq!((mesh.len(), mesh.digest()), (len, digest));
}

/// A small tmpfs, unmounted on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).ok()?;
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| SmallDisk(at.to_owned()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn disk_full_during_append() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&dir.path().join("small"), "2m") else {
        // Mounting needs root; CI and the development machines run as root.
        eprintln!("SKIPPED: cannot mount a tmpfs here");
        return;
    };
    let path = disk.0.join("mesh.redb");
    let mut mesh = options(1).create(&path, keys(1), "full").unwrap();
    mesh.set_enabled(true).unwrap();
    let payload = vec![7u8; meshlog::limits::MAX_APP_PAYLOAD];
    let mut appended = mesh.len();
    let error = loop {
        match mesh.append_app("blob", &payload) {
            Ok(_) => appended += 1,
            Err(error) => break error,
        }
        assert!(appended < 1000, "the small disk never filled");
    };
    assert!(
        matches!(error, Error::Store(StoreError::DiskFull)),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::CouldNotRun);
    assert_eq!(mesh.len(), appended, "the handle's state did not move");
    drop(mesh);
    // The file verifies and holds exactly the acknowledged events, as its
    // writer's keys read it: they sign again the newest, should its
    // signature not be on disk (SPEC.md §9.6). Without keys, that one is
    // set aside and reported.
    let reopened = options(2).open_read_only(&path, Some(keys(1))).unwrap();
    assert_eq!(reopened.len(), appended);
    let audit = Mesh::open_read_only(&path).unwrap();
    assert_eq!(audit.len() + audit.report().awaiting_signature, appended);
}

/// A create the disk cannot hold leaves nothing behind, neither the file
/// nor its journal, whichever of the two the disk fills on (SPEC.md §9.2).
#[test]
fn disk_full_during_create_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    // The file takes tens of kilobytes and its journal a megabyte: the
    // disk fills on the journal at the larger sizes, on the file at 16k.
    for size in ["16k", "64k", "300k", "700k"] {
        let Some(disk) = SmallDisk::mount(&dir.path().join(size), size) else {
            eprintln!("SKIPPED: cannot mount a tmpfs here");
            return;
        };
        let path = disk.0.join("mesh.redb");
        let error = options(1).create(&path, keys(1), "full").unwrap_err();
        let left: Vec<_> = std::fs::read_dir(&disk.0)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{size}: left {left:?}");
        assert!(
            matches!(error, Error::Store(StoreError::DiskFull)),
            "{size}: {error:?}"
        );
        assert_eq!(error.class(), ErrorClass::CouldNotRun);
    }
}
