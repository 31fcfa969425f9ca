//! Helpers shared by the integration tests: deterministic keys and options,
//! peers syncing through batch bytes, and raw access to a closed file's
//! tables (SPEC.md §9) for tamper tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use meshlog::{Batch, EventHash, GroupId, Ingested, KeyPackage, LocalKeys, Mesh, MeshOptions};

/// Keys derived from one byte, so tests can recreate any member's keys.
pub fn keys(n: u8) -> LocalKeys {
    LocalKeys::from_secret_bytes(&[n; 32], &[n.wrapping_add(100); 32])
}

/// Member `n`'s own signed key package, as it would hand it to an admin.
pub fn package(n: u8) -> KeyPackage {
    keys(n).package()
}

/// Options with a seeded generator and a clock that ticks one second per event.
pub fn options(seed: u8) -> MeshOptions {
    let mut now = 1_900_000_000u64;
    MeshOptions::new().insecure_seed([seed; 32]).clock(move || {
        now += 1;
        now
    })
}

pub fn db_path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

/// A temporary folder in memory if the machine has one: tests that write
/// thousands of events need not wait for thousands of fsyncs.
pub fn fast_tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .tempdir_in("/dev/shm")
        .unwrap_or_else(|_| tempfile::tempdir().expect("temporary folder"))
}

/// The blake3 hash of a whole file, to show a read did not write.
pub fn file_hash(path: &Path) -> blake3::Hash {
    blake3::hash(&std::fs::read(path).expect("read file"))
}

/// A batch through its bytes, as it would travel between peers.
pub fn carried(batch: &Batch) -> Batch {
    Batch::from_bytes(&batch.to_bytes()).expect("an exported batch decodes")
}

/// `to` takes what `from` has and its frontier lacks, through batch bytes.
pub fn send(from: &Mesh, to: &mut Mesh) -> Ingested {
    let batch = carried(&from.export(&to.frontier()));
    to.ingest(&batch)
        .expect("an honest peer's batch is accepted")
}

/// Each sends the other what it lacks.
pub fn exchange(a: &mut Mesh, b: &mut Mesh) {
    send(a, b);
    send(b, a);
}

/// A new peer's file at `path`, joined from everything `from` holds.
pub fn join(from: &Mesh, path: &Path, n: u8) -> Mesh {
    options(n)
        .join(path, keys(n), &carried(&from.export_all()))
        .expect("join")
}

/// A batch laid out as SPEC.md §7.2 says, from any records: exports are
/// well-formed by construction, so hostile or reordered batches are built
/// from bytes.
pub fn batch_of(group: GroupId, records: Vec<Vec<u8>>) -> Batch {
    let mut bytes = b"mlbatch\0".to_vec();
    let group: [u8; 32] = *group.as_bytes();
    bytes.extend(postcard::to_allocvec(&(2u16, group, records)).expect("encode"));
    Batch::from_bytes(&bytes).expect("a batch laid out as the spec says decodes")
}

/// The hash of an event from the bytes of its stored record, computed from
/// SPEC.md §3.4 alone: `derive_key("meshlog v3 event hash", event bytes)`.
pub fn record_hash(record: &[u8]) -> EventHash {
    let bytes = blake3::derive_key("meshlog v3 event hash", &record[64..]);
    EventHash::from_bytes(bytes)
}

pub const EVENTS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");

/// The projection tables of a v3 file (SPEC.md §9).
pub const PROJECTIONS: [&str; 3] = ["roster", "epochs", "enabled"];

/// Rewrites the stored events of a closed DB file with `edit`.
pub fn edit_events(path: &Path, edit: impl FnOnce(&mut redb::Table<u64, &[u8]>)) {
    let db = redb::Database::open(path).expect("open with redb");
    let txn = db.begin_write().expect("write");
    {
        let mut table = txn.open_table(EVENTS).expect("events table");
        edit(&mut table);
    }
    txn.commit().expect("commit");
}

/// Rewrites one `bytes → bytes` table (a projection, or `meta`) of a closed
/// DB file with `edit`.
pub fn edit_projection(path: &Path, name: &str, edit: impl FnOnce(&mut redb::Table<&[u8], &[u8]>)) {
    let db = redb::Database::open(path).expect("open with redb");
    let txn = db.begin_write().expect("write");
    {
        let mut table = txn
            .open_table(redb::TableDefinition::<&[u8], &[u8]>::new(name))
            .expect("projection table");
        edit(&mut table);
    }
    txn.commit().expect("commit");
}

/// The stored record at position `position`.
pub fn record(path: &Path, position: u64) -> Vec<u8> {
    use redb::ReadableDatabase;
    let db = redb::ReadOnlyDatabase::open(path).expect("open read-only");
    let txn = db.begin_read().expect("read");
    let table = txn.open_table(EVENTS).expect("events");
    table
        .get(position)
        .expect("get")
        .expect("present")
        .value()
        .to_vec()
}

/// Every row of every table of a closed DB file, for byte-for-byte comparisons.
pub fn dump(path: &Path) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    use redb::{ReadableDatabase, ReadableTable, TableHandle};
    let db = redb::ReadOnlyDatabase::open(path).expect("open read-only");
    let txn = db.begin_read().expect("read");
    let mut rows = Vec::new();
    let events = txn.open_table(EVENTS).expect("events");
    for row in events.iter().expect("iter") {
        let (key, value) = row.expect("row");
        rows.push((
            "events".into(),
            key.value().to_be_bytes().to_vec(),
            value.value().to_vec(),
        ));
    }
    for table in txn.list_tables().expect("tables") {
        if table.name() == "events" {
            continue;
        }
        let definition = redb::TableDefinition::<&[u8], &[u8]>::new(table.name());
        let opened = txn.open_table(definition).expect("projection");
        for row in opened.iter().expect("iter") {
            let (key, value) = row.expect("row");
            rows.push((
                table.name().to_owned(),
                key.value().to_vec(),
                value.value().to_vec(),
            ));
        }
    }
    rows
}

/// The error of a call expected to fail (for results whose value, such as
/// an epoch secret, has no `Debug`).
pub fn refused<T>(result: meshlog::Result<T>) -> meshlog::Error {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(error) => error,
    }
}

/// Makes the closed file at `path` what a store-format-3 build wrote: no
/// ledger rows (`seats`, `hashes`, `rotations`) and no checkpoint, so that
/// its records are verified as a plain log (SPEC.md §9.5), whatever was
/// done to them.
pub fn strip_ledger_rows(path: &Path) {
    use redb::ReadableTable;
    let db = redb::Database::open(path).expect("open");
    let txn = db.begin_write().expect("write");
    for table in ["seats", "hashes", "rotations"] {
        txn.delete_table(redb::TableDefinition::<&[u8], &[u8]>::new(table))
            .expect("delete");
    }
    {
        let mut meta = txn
            .open_table(redb::TableDefinition::<&[u8], &[u8]>::new("meta"))
            .expect("meta");
        let checkpoints: Vec<Vec<u8>> = meta
            .iter()
            .expect("iter")
            .map(|row| row.expect("row").0.value().to_vec())
            .filter(|key| key.starts_with(b"checkpoint/"))
            .collect();
        for key in checkpoints {
            meta.remove(key.as_slice()).expect("remove");
        }
        meta.insert(&b"format"[..], &3u16.to_be_bytes()[..])
            .expect("format");
    }
    txn.commit().expect("commit");
}
