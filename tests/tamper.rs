//! Tamper sweeps over a demo-like DB file: every byte that holds chain data
//! (events and projections) is flipped in turn, and each flip
//! must be either refused (by redb's page checksums, by a chain rule naming
//! the event, or by a projection check naming the table) or provably harmless
//! (the verified state and events are identical to the original's).

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{db_path, dump, edit_events, keys, options, record};
use meshlog::{Error, Mesh, Role, Rule, StoreError};

fn demo(path: &Path) {
    let mut mesh = options(1).create(path, keys(1), "tamper").unwrap();
    mesh.set_enabled(true).unwrap();
    for n in 2..=4 {
        mesh.add_member(keys(n).public(), Role::Member).unwrap();
    }
    mesh.set_role(keys(2).member_id(), Role::Admin).unwrap();
    mesh.append_app("note", b"before the kick").unwrap();
    mesh.remove_member(keys(4).member_id()).unwrap();
    mesh.append_app("note", b"after the kick").unwrap();
}

/// Every offset in `file` where some stored row's key or value lies.
fn chain_data_offsets(file: &[u8], rows: &[(String, Vec<u8>, Vec<u8>)]) -> BTreeSet<usize> {
    let mut offsets = BTreeSet::new();
    for (_, key, value) in rows {
        for needle in [key, value] {
            // Short or repetitive needles (a flag, a big-endian seq) would
            // match all over the file's zero-filled space.
            let distinct: BTreeSet<u8> = needle.iter().copied().collect();
            if needle.len() < 8 || distinct.len() < 6 {
                continue;
            }
            let mut from = 0;
            while let Some(at) = find(&file[from..], needle) {
                offsets.extend(from + at..from + at + needle.len());
                from += at + 1;
            }
        }
    }
    offsets
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[derive(Default, Debug)]
struct Tally {
    page_checksum: usize,
    chain_rule: usize,
    projection: usize,
    other_refusal: usize,
    harmless: usize,
}

#[test]
fn every_flip_of_chain_data_is_refused_or_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "demo.redb");
    demo(&path);
    let original = Mesh::open_read_only(&path).unwrap();
    let (digest, len) = (original.digest(), original.state().len());
    drop(original);
    let rows = dump(&path);
    let file = std::fs::read(&path).unwrap();
    let offsets = chain_data_offsets(&file, &rows);
    assert!(
        offsets.len() > 2000,
        "found only {} bytes of chain data",
        offsets.len()
    );
    println!(
        "file of {} bytes, {} bytes of chain data",
        file.len(),
        offsets.len()
    );

    let stride = std::env::var("MESHLOG_TAMPER_STRIDE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let flipped_path = db_path(&dir, "flipped.redb");
    let mut tally = Tally::default();
    for &offset in offsets.iter().step_by(stride) {
        let mut flipped = file.clone();
        flipped[offset] ^= 0x01;
        std::fs::write(&flipped_path, &flipped).unwrap();
        match Mesh::open_read_only(&flipped_path) {
            Ok(mesh) => {
                assert_eq!(
                    (mesh.digest(), mesh.state().len()),
                    (digest, len),
                    "flipping byte {offset} gave a different accepted state"
                );
                tally.harmless += 1;
            }
            Err(Error::Store(StoreError::Corrupt { .. })) => tally.page_checksum += 1,
            Err(Error::Rejected(rejection)) => {
                assert!(rejection.seq < len, "byte {offset}: {rejection}");
                tally.chain_rule += 1;
            }
            Err(Error::Store(StoreError::ProjectionMismatch { .. })) => tally.projection += 1,
            Err(error) => {
                assert!(
                    !matches!(error, Error::Keys(_) | Error::Envelope(_)),
                    "byte {offset}: {error}"
                );
                tally.other_refusal += 1;
            }
        }
    }
    println!(
        "tamper sweep over {} bytes of chain data (stride {stride}): {tally:?}",
        offsets.len()
    );
    let refused = tally.page_checksum + tally.chain_rule + tally.projection + tally.other_refusal;
    assert!(refused > 0 && refused + tally.harmless == offsets.iter().step_by(stride).count());
}

#[test]
fn swapped_events_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "demo.redb");
    demo(&path);
    let (three, four) = (record(&path, 3), record(&path, 4));
    edit_events(&path, |events| {
        events.insert(3, four.as_slice()).unwrap();
        events.insert(4, three.as_slice()).unwrap();
    });
    let error = Mesh::open_read_only(&path).unwrap_err();
    assert!(
        matches!(&error, Error::Rejected(r) if r.seq == 3 && r.rule == Rule::SeqNotNext { expected: 3, found: 4 }),
        "{error}"
    );
}

#[test]
fn a_truncated_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "demo.redb");
    demo(&path);
    let file = std::fs::read(&path).unwrap();
    for keep in [0, 100, 4096, file.len() / 2, file.len() - 1] {
        std::fs::write(&path, &file[..keep]).unwrap();
        let error = Mesh::open_read_only(&path).unwrap_err();
        assert!(!matches!(error, Error::Rejected(_)), "{keep}: {error}");
    }
}

/// Removing the last events and rewriting the file consistently yields a
/// valid, shorter chain: a file alone cannot prove its own completeness. The
/// auditor's defence is a head obtained elsewhere; the copy is then reported
/// as rolled back (its head is behind the expected seq, and the expected hash
/// is not in it), which is different from a fork (a different event at a seq
/// the copy has).
#[test]
fn removed_last_events_are_caught_by_an_expected_head() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "demo.redb");
    let mut mesh = options(1).create(&path, keys(1), "tamper").unwrap();
    mesh.set_enabled(true).unwrap();
    mesh.append_app("note", b"one").unwrap();
    let rolled_back = db_path(&dir, "rolled-back.redb");
    mesh.backup(&rolled_back).unwrap();
    let head = mesh.append_app("note", b"two").unwrap();
    drop(mesh);

    let copy = Mesh::open_read_only(&rolled_back).unwrap();
    assert_eq!(
        copy.find(head.hash).unwrap(),
        None,
        "the expected head is not in the copy"
    );
    assert!(
        copy.state().len() <= head.seq,
        "the copy ends before the expected head"
    );
    let full = Mesh::open_read_only(&path).unwrap();
    assert_eq!(full.find(head.hash).unwrap(), Some(head.seq));
}

/// The same sweep one level up: every byte of every stored row is flipped
/// through redb itself (so page checksums stay valid and only meshlog's own
/// verification stands in the way). Each flip of an event must be refused
/// naming that event's seq, each flip of a projection row naming its table.
#[test]
fn every_logical_flip_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "demo.redb");
    demo(&path);
    let pristine = std::fs::read(&path).unwrap();
    let rows = dump(&path);
    let stride = std::env::var("MESHLOG_TAMPER_STRIDE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let (mut events, mut projections) = (0, 0);
    for (table, key, value) in &rows {
        for index in (0..value.len()).step_by(stride) {
            std::fs::write(&path, &pristine).unwrap();
            let mut flipped = value.clone();
            flipped[index] ^= 0x01;
            let db = redb::Database::open(&path).unwrap();
            let txn = db.begin_write().unwrap();
            if table == "events" {
                let seq = u64::from_be_bytes(key.as_slice().try_into().unwrap());
                txn.open_table(common::EVENTS)
                    .unwrap()
                    .insert(seq, flipped.as_slice())
                    .unwrap();
            } else {
                txn.open_table(redb::TableDefinition::<&[u8], &[u8]>::new(table))
                    .unwrap()
                    .insert(key.as_slice(), flipped.as_slice())
                    .unwrap();
            }
            txn.commit().unwrap();
            drop(db);
            let error = Mesh::open_read_only(&path).unwrap_err();
            if table == "events" {
                let seq = u64::from_be_bytes(key.as_slice().try_into().unwrap());
                assert!(
                    matches!(&error, Error::Rejected(r) if r.seq == seq),
                    "flip of byte {index} of event {seq}: {error}"
                );
                events += 1;
            } else {
                let named = match &error {
                    Error::Store(StoreError::ProjectionMismatch { table: t, .. }) => *t == table,
                    Error::Store(
                        StoreError::NotMeshlog { .. } | StoreError::NewerFormat { .. },
                    ) => table == "meta",
                    _ => false,
                };
                assert!(
                    named,
                    "flip of byte {index} of {table} row {}: {error}",
                    hex::encode(key)
                );
                projections += 1;
            }
        }
    }
    println!(
        "logical sweep: {events} event flips named by seq, {projections} projection flips named by table"
    );
    assert!(events * stride > 1000 && projections * stride > 1000);
}
