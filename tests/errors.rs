//! Every error a user can meet opening or writing a mesh says what happened
//! and what to do, and nothing is written.

mod common;

use std::path::Path;

use common::{db_path, dump, edit_projection, file_hash, keys, options};
use meshlog::{Error, KeyError, LocalKeys, Mesh, StoreError};

fn message(error: impl std::fmt::Display) -> String {
    error.to_string()
}

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
        let text = message(&error);
        assert!(
            text.contains("nope.redb") && text.contains("no such file"),
            "{text}"
        );
    }
    assert!(!path.exists(), "opening never creates a file");
}

#[test]
fn wrong_file_type() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "notes.txt");
    std::fs::write(&path, "just some notes\n".repeat(100)).unwrap();
    let before = file_hash(&path);
    for error in [
        Mesh::open_read_only(&path).unwrap_err(),
        Mesh::open(&path, keys(1)).unwrap_err(),
    ] {
        assert!(
            matches!(error, Error::Store(StoreError::NotMeshlog { .. })),
            "{error}"
        );
        assert!(
            message(&error).contains("is not a meshlog database"),
            "{error}"
        );
        assert!(!error.is_verification_failure());
    }
    assert_eq!(file_hash(&path), before);
}

#[test]
fn file_held_by_another_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(&dir);
    let holder = Mesh::open(&path, keys(1)).unwrap();
    let error = Mesh::open(&path, keys(1)).unwrap_err();
    assert!(
        matches!(error, Error::Store(StoreError::Locked { .. })),
        "{error}"
    );
    let text = message(&error);
    assert!(
        text.contains("open for writing elsewhere") && text.contains("meshlog backup"),
        "{text}"
    );
    drop(holder);
}

#[test]
fn unreadable_or_damaged_key_file() {
    let dir = tempfile::tempdir().unwrap();
    // A folder where the key file should be: owner-only, but not readable as a file.
    let folder = db_path(&dir, "keys.d");
    std::fs::create_dir(&folder).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let error = LocalKeys::load(&folder).unwrap_err();
    assert!(matches!(error, KeyError::Io { .. }), "{error}");
    assert!(message(&error).contains("keys.d"), "{error}");

    let short = db_path(&dir, "short.keys");
    LocalKeys::generate().save(&short).unwrap();
    let bytes = std::fs::read(&short).unwrap();
    std::fs::write(&short, &bytes[..50]).unwrap();
    let error = LocalKeys::load(&short).unwrap_err();
    assert!(
        message(&error).contains("is not a meshlog key file"),
        "{error}"
    );
}

#[cfg(unix)]
#[test]
fn key_file_readable_by_others() {
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
    assert!(message(&error).contains("chmod 600"), "{error}");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o640,
        "meshlog does not change the file's mode behind the user's back"
    );
}

#[test]
fn database_of_a_newer_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(&dir);
    edit_projection(&path, "meta", |meta| {
        meta.insert(&b"format"[..], &3u16.to_be_bytes()[..])
            .unwrap();
    });
    let before = file_hash(&path);
    let error = Mesh::open_read_only(&path).unwrap_err();
    assert_eq!(meshlog::STORE_FORMAT, 2);
    assert!(
        matches!(
            error,
            Error::Store(StoreError::NewerFormat {
                found: 3,
                supported: 2,
                ..
            })
        ),
        "{error}"
    );
    assert!(message(&error).contains("upgrade meshlog"), "{error}");
    assert_eq!(file_hash(&path), before);
    let rows = dump(&path);
    assert!(Mesh::open(&path, keys(1)).is_err());
    assert_eq!(
        dump(&path),
        rows,
        "a refused writable open changes no table"
    );
}

/// Format 1 stored an `event_index` table and hashed signatures into event
/// hashes: its files are refused by name, not as damaged.
#[test]
fn database_of_the_earlier_development_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(&dir);
    edit_projection(&path, "meta", |meta| {
        meta.insert(&b"format"[..], &1u16.to_be_bytes()[..])
            .unwrap();
    });
    let error = Mesh::open_read_only(&path).unwrap_err();
    assert!(
        matches!(error, Error::Store(StoreError::NotMeshlog { .. })),
        "{error}"
    );
    assert!(message(&error).contains("store format 1"), "{error}");
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
    let mut appended = mesh.state().len();
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
    let text = message(&error);
    assert!(
        text.contains("disk is full") && text.contains("nothing was written"),
        "{text}"
    );
    assert_eq!(
        mesh.state().len(),
        appended,
        "the handle's state did not move"
    );
    drop(mesh);
    // The file verifies and holds exactly the acknowledged events.
    let reopened = Mesh::open_read_only(&path).unwrap();
    assert_eq!(reopened.state().len(), appended);
}

/// Found by trying it as a new user would (issue #10): a create refused for
/// its group name leaves no file behind, so a retry with a good name works.
#[test]
fn a_refused_create_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mesh.redb");
    for bad in [String::new(), "x".repeat(129)] {
        match Mesh::create(&path, keys(1), &bad) {
            Err(Error::Rejected(rejection)) => assert_eq!(rejection.rule.code(), "R20"),
            other => panic!(
                "expected R20 for a name of {} bytes, got {other:?}",
                bad.len()
            ),
        }
        assert!(!path.exists(), "a refused create left {}", path.display());
    }
    let mesh = Mesh::create(&path, keys(1), "ok").unwrap();
    assert_eq!(mesh.state().len(), 1);
}
