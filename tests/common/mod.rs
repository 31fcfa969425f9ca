//! Helpers shared by the scenario tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use meshlog::{LocalKeys, MeshOptions};

/// Keys derived from one byte, so tests can recreate any member's keys.
pub fn keys(n: u8) -> LocalKeys {
    LocalKeys::from_secret_bytes(&[n; 32], &[n.wrapping_add(100); 32])
}

/// Options with a seeded generator and a clock that ticks one second per event.
pub fn options(seed: u8) -> MeshOptions {
    let mut now = 1_800_000_000u64;
    MeshOptions::new().insecure_seed([seed; 32]).clock(move || {
        now += 1;
        now
    })
}

pub fn db_path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

/// The blake3 hash of a whole file, to show a read did not write.
pub fn file_hash(path: &Path) -> blake3::Hash {
    blake3::hash(&std::fs::read(path).expect("read file"))
}

pub const EVENTS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");

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

/// Rewrites one projection table of a closed DB file with `edit`.
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

/// The stored record at `seq`.
pub fn record(path: &Path, seq: u64) -> Vec<u8> {
    use redb::ReadableDatabase;
    let db = redb::ReadOnlyDatabase::open(path).expect("open read-only");
    let txn = db.begin_read().expect("read");
    let table = txn.open_table(EVENTS).expect("events");
    table
        .get(seq)
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
