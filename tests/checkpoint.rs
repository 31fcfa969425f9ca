//! The member's checkpoint of its own file (SPEC.md §9.7, §10): its own
//! writable open verifies only what is new, gives exactly the state a full
//! verification gives, and never a wrong one, whatever someone without its
//! keys did to the file.

mod common;

use std::path::Path;

use common::{dump, edit_events, edit_projection, fast_tempdir, keys, options};
use meshlog::{Error, EventHash, MemberId, Mesh, MeshOptions, Role, StoreError};
use proptest::prelude::*;

/// What a mesh's state shows through the public API.
#[derive(Debug, PartialEq)]
struct Snapshot {
    digest: meshlog::StateDigest,
    len: usize,
    roster: Vec<(MemberId, Option<Role>, bool)>,
    tips: Vec<EventHash>,
    writer: Option<EventHash>,
    equivocations: usize,
    log: Vec<(EventHash, Option<meshlog::EventStatus>, bool)>,
}

fn snapshot(mesh: &Mesh) -> Snapshot {
    snapshot_or_error(mesh).expect("every read checked")
}

/// The founder's own file: members added, each writing in its own copy,
/// the founder taking their events and writing its own; `extra` more of the
/// founder's notes at the end.
fn history(path: &Path, extra: usize) -> Mesh {
    let dir = fast_tempdir();
    let mut founder = options(1).create(path, keys(1), "checkpoint").unwrap();
    founder.set_enabled(true).unwrap();
    for n in 2..5u8 {
        let role = if n == 2 { Role::Admin } else { Role::Member };
        founder.add_member(keys(n).package(), role).unwrap();
    }
    for n in 2..5u8 {
        let copy = dir.path().join(format!("m{n}"));
        let mut member = options(n)
            .join(&copy, keys(n), &founder.export_all())
            .unwrap();
        member.set_enabled(true).unwrap();
        for i in 0..3u8 {
            member.append_app("note", &[n, i]).unwrap();
        }
        if n == 2 {
            member.refresh("admin refresh").unwrap();
        }
        founder.ingest(&member.export(&founder.frontier())).unwrap();
    }
    founder.refresh("founder refresh").unwrap();
    for i in 0..extra {
        founder
            .append_app("note", &(i as u32).to_le_bytes())
            .unwrap();
    }
    founder.checkpoint().unwrap();
    founder
}

fn full(path: &Path) -> meshlog::Result<Mesh> {
    MeshOptions::new()
        .verify_everything(true)
        .open(path, keys(1))
}

#[test]
fn the_members_reopen_verifies_only_what_is_new_and_agrees_with_a_full_one() {
    let dir = fast_tempdir();
    let path = dir.path().join("own.redb");
    let founder = history(&path, 20);
    let expected = snapshot(&founder);
    drop(founder);

    let mut reopened = Mesh::open(&path, keys(1)).unwrap();
    let report = reopened.report();
    assert_eq!(
        report.checkpointed, expected.len,
        "the checkpoint covered every event"
    );
    assert_eq!(snapshot(&reopened), expected);
    // It goes on as a fully verified copy would.
    let note = reopened.append_app("note", b"after").unwrap();
    let after = snapshot(&reopened);
    drop(reopened);

    let everything = full(&path).unwrap();
    assert_eq!(everything.report().checkpointed, 0);
    assert_eq!(snapshot(&everything), after);
    drop(everything);
    let audit = Mesh::open_read_only(&path).unwrap();
    assert_eq!(snapshot(&audit), after);
    assert!(audit.event(note).is_some());
    drop(audit);
    // The full open wrote nothing, so the checkpoint still covers all.
    let again = Mesh::open(&path, keys(1)).unwrap();
    assert_eq!(again.report().checkpointed, after.len);
}

#[test]
fn events_a_shared_writer_added_are_verified_as_new_by_the_members_next_open() {
    let dir = fast_tempdir();
    let path = dir.path().join("own.redb");
    let founder = history(&path, 5);
    let covered = founder.len();
    drop(founder);
    // Member 3 writes on the founder's copy, deliberately shared.
    let mut shared = MeshOptions::new()
        .shared_copy(true)
        .open(&path, keys(3))
        .unwrap();
    shared.append_app("note", b"on a shared copy").unwrap();
    shared.close().unwrap();

    let reopened = Mesh::open(&path, keys(1)).unwrap();
    assert_eq!(reopened.report().checkpointed, covered);
    let expected = snapshot(&Mesh::open_read_only(&path).unwrap());
    assert_eq!(snapshot(&reopened), expected);
    assert_eq!(expected.len, covered + 1);
    drop(reopened);
    // Its next write gives those events its own rows: then all is covered.
    let mut founder = Mesh::open(&path, keys(1)).unwrap();
    founder.append_app("note", b"own").unwrap();
    founder.close().unwrap();
    let again = Mesh::open(&path, keys(1)).unwrap();
    assert_eq!(again.report().checkpointed, covered + 2);
    assert_eq!(
        snapshot(&again),
        snapshot(&Mesh::open_read_only(&path).unwrap())
    );
}

#[test]
fn a_file_of_store_format_3_is_read_and_upgraded_by_its_first_write() {
    let dir = fast_tempdir();
    let path = dir.path().join("old.redb");
    let founder = history(&path, 5);
    let expected = snapshot(&founder);
    drop(founder);
    // What a format-3 build wrote: no ledger rows, no checkpoint.
    common::strip_ledger_rows(&path);
    let before = dump(&path);

    assert_eq!(snapshot(&Mesh::open_read_only(&path).unwrap()), expected);
    let opened = Mesh::open(&path, keys(1)).unwrap();
    assert_eq!(opened.report().checkpointed, 0);
    assert_eq!(snapshot(&opened), expected);
    drop(opened);
    assert_eq!(
        dump(&path),
        before,
        "an open that writes nothing upgrades nothing"
    );

    let mut writer = Mesh::open(&path, keys(1)).unwrap();
    writer.append_app("note", b"upgrade").unwrap();
    let after = snapshot(&writer);
    writer.close().unwrap();
    let format = dump(&path)
        .into_iter()
        .find(|(table, key, _)| table == "meta" && key == b"format")
        .unwrap()
        .2;
    assert_eq!(format, 4u16.to_be_bytes());
    let reopened = Mesh::open(&path, keys(1)).unwrap();
    assert_eq!(reopened.report().checkpointed, after.len);
    assert_eq!(snapshot(&reopened), after);
}

#[test]
fn a_changed_row_is_caught_when_read_and_a_changed_checkpoint_is_not_used() {
    let dir = fast_tempdir();
    let path = dir.path().join("own.redb");
    let founder = history(&path, 5);
    let expected = snapshot(&founder);
    drop(founder);
    let pristine = std::fs::read(&path).unwrap();

    // A flag flipped in a head's seat row: the open reads every head.
    let rows = dump(&path);
    let (_, key, value) = rows
        .iter()
        .filter(|(table, ..)| table == "seats")
        .max_by_key(|(_, key, _)| key.get(16..24).map(<[u8]>::to_vec))
        .unwrap()
        .clone();
    let mut changed = value.clone();
    changed[8] ^= 1;
    edit_projection(&path, "seats", |seats| {
        seats.insert(key.as_slice(), changed.as_slice()).unwrap();
    });
    match Mesh::open(&path, keys(1)) {
        Err(Error::Store(StoreError::Tampered { .. })) => {}
        Ok(mesh) => assert_eq!(snapshot(&mesh), expected),
        Err(other) => panic!("{other}"),
    }
    // An audit compares every row with the events.
    assert!(matches!(
        Mesh::open_read_only(&path),
        Err(Error::Store(StoreError::Tampered { .. }))
    ));

    // A checkpoint changed anywhere is not used: everything is verified.
    std::fs::write(&path, &pristine).unwrap();
    let checkpoint = dump(&path)
        .into_iter()
        .find(|(table, key, _)| table == "meta" && key.starts_with(b"checkpoint/"))
        .unwrap();
    for index in 0..checkpoint.2.len() {
        std::fs::write(&path, &pristine).unwrap();
        let mut bytes = checkpoint.2.clone();
        bytes[index] ^= 0x10;
        edit_projection(&path, "meta", |meta| {
            meta.insert(checkpoint.1.as_slice(), bytes.as_slice())
                .unwrap();
        });
        let mesh = Mesh::open(&path, keys(1)).unwrap();
        assert_eq!(mesh.report().checkpointed, 0, "byte {index}");
        assert_eq!(snapshot(&mesh), expected);
    }
}

/// One way someone without the member's keys changes a closed file.
#[derive(Debug, Clone)]
enum Damage {
    /// Flips a bit of a row's key or value, in a table of the file.
    Flip { row: usize, at: usize, bit: u8 },
    /// Deletes a row.
    Delete { row: usize },
    /// Drops the newest `count` events.
    Truncate { count: usize },
    /// Puts the value of one row under another's key, in the same table.
    Swap { row: usize, other: usize },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (any::<usize>(), any::<usize>(), 0u8..8)
            .prop_map(|(row, at, bit)| Damage::Flip { row, at, bit }),
        2 => any::<usize>().prop_map(|row| Damage::Delete { row }),
        1 => (1usize..4).prop_map(|count| Damage::Truncate { count }),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(row, other)| Damage::Swap { row, other }),
    ]
}

/// Applies `damage` to the closed file at `path`.
fn apply(path: &Path, damage: &Damage) {
    let rows: Vec<(String, Vec<u8>, Vec<u8>)> = dump(path)
        .into_iter()
        .filter(|(table, key, _)| !(table == "meta" && key == b"owner"))
        .collect();
    let pick = |row: usize| rows[row % rows.len()].clone();
    match damage {
        Damage::Flip { row, at, bit } => {
            let (table, key, value) = pick(*row);
            let (mut new_key, mut new_value) = (key.clone(), value.clone());
            let at = at % (key.len() + value.len()).max(1);
            if at < key.len() {
                new_key[at] ^= 1 << bit;
            } else if let Some(byte) = new_value.get_mut(at - key.len()) {
                *byte ^= 1 << bit;
            }
            replace(path, &table, &key, &new_key, &new_value);
        }
        Damage::Delete { row } => {
            let (table, key, _) = pick(*row);
            remove(path, &table, &key);
        }
        Damage::Truncate { count } => {
            let len = rows.iter().filter(|(table, ..)| table == "events").count() as u64;
            edit_events(path, |events| {
                for position in len.saturating_sub(*count as u64)..len {
                    events.remove(position).unwrap();
                }
            });
        }
        Damage::Swap { row, other } => {
            let (table, key, _) = pick(*row);
            let same: Vec<_> = rows.iter().filter(|(t, ..)| *t == table).collect();
            let (_, _, value) = same[other % same.len()].clone();
            replace(path, &table, &key, &key, &value);
        }
    }
}

fn replace(path: &Path, table: &str, key: &[u8], new_key: &[u8], value: &[u8]) {
    if table == "events" {
        let position = u64::from_be_bytes(key.try_into().unwrap());
        let new_position = u64::from_be_bytes(new_key.try_into().unwrap());
        edit_events(path, |events| {
            events.remove(position).unwrap();
            events.insert(new_position, value).unwrap();
        });
    } else {
        edit_projection(path, table, |rows| {
            rows.remove(key).unwrap();
            rows.insert(new_key, value).unwrap();
        });
    }
}

fn remove(path: &Path, table: &str, key: &[u8]) {
    if table == "events" {
        let position = u64::from_be_bytes(key.try_into().unwrap());
        edit_events(path, |events| {
            events.remove(position).unwrap();
        });
    } else {
        edit_projection(path, table, |rows| {
            rows.remove(key).unwrap();
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// SPEC.md §10: after any damage by someone without the member's keys,
    /// the member's own open either refuses, or gives exactly the state of
    /// the file as the member left it, every read included; and whatever
    /// it gives, a full verification of the damaged file gives too, or
    /// refuses.
    #[test]
    fn a_checkpoint_open_of_a_damaged_file_gives_the_true_state_or_refuses(
        extra in 0usize..12,
        damages in prop::collection::vec(damage(), 1..3),
    ) {
        let dir = fast_tempdir();
        let path = dir.path().join("own.redb");
        let founder = history(&path, extra);
        let truth = snapshot(&founder);
        drop(founder);
        for damage in &damages {
            apply(&path, damage);
        }
        let checkpointed = Mesh::open(&path, keys(1)).and_then(|mesh| {
            let snapshot = snapshot_or_error(&mesh)?;
            Ok((snapshot, mesh.report().checkpointed))
        });
        let verified = full(&path).and_then(|mesh| snapshot_or_error(&mesh));
        match (&checkpointed, &verified) {
            (Ok((state, from)), Ok(everything)) => {
                if *from > 0 {
                    // Used, the checkpoint vouched for the truth.
                    prop_assert_eq!(state, &truth);
                }
                prop_assert_eq!(state, everything);
            }
            (Ok((state, from)), Err(_)) => {
                // Only damage to rows no read met lets it open; it must
                // then be the truth.
                prop_assert!(*from > 0);
                prop_assert_eq!(state, &truth);
            }
            (Err(_), _) => {}
        }
    }
}

/// The snapshot, or the failure of a read it made.
fn snapshot_or_error(mesh: &Mesh) -> meshlog::Result<Snapshot> {
    let roster = mesh.roster();
    let snapshot = Snapshot {
        digest: mesh.digest(),
        len: mesh.len(),
        roster: roster
            .iter()
            .map(|(id, _)| (*id, roster.role_of(*id), mesh.is_member_enabled(*id)))
            .collect(),
        tips: mesh.tips().to_vec(),
        writer: mesh.writer_epoch(),
        equivocations: mesh.equivocations().len(),
        log: mesh
            .log()
            .map(|entry| (entry.event.hash(), entry.status, entry.left_out))
            .collect(),
    };
    mesh.check_reads()?;
    Ok(snapshot)
}

#[test]
fn a_verifying_open_reports_its_progress_and_the_members_own_has_little_to_report() {
    let dir = fast_tempdir();
    let path = dir.path().join("own.redb");
    let len = history(&path, 5).len() as u64;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = |seen: &std::sync::Arc<std::sync::Mutex<Vec<(u64, u64)>>>| {
        let seen = std::sync::Arc::clone(seen);
        move |verified, total| seen.lock().unwrap().push((verified, total))
    };
    MeshOptions::new()
        .progress(record(&seen))
        .open_read_only(&path, None)
        .unwrap();
    let calls = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(calls.last(), Some(&(len, len)), "{calls:?}");
    assert!(calls.windows(2).all(|pair| pair[0].0 <= pair[1].0));
    // The member's own open verifies nothing its checkpoint covers.
    MeshOptions::new()
        .progress(record(&seen))
        .open(&path, keys(1))
        .unwrap();
    assert!(seen.lock().unwrap().is_empty());
}
