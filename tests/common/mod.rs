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

/// A signature by the key of `seed` over an event's `bytes` (the message of
/// SPEC.md §2.1) whose `R` carries the small-order point
/// `EIGHT_TORSION[torsion]`, with `s_offset` added to `S`. Only the key's
/// holder can make one; ed25519 verifiers disagree on it unless they all use
/// the cofactored equation, as ZIP-215 does.
pub fn torsioned_signature(
    seed: [u8; 32],
    bytes: &[u8],
    torsion: usize,
    s_offset: u64,
) -> [u8; 64] {
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
    use curve25519_dalek::scalar::Scalar;
    use sha2::{Digest, Sha512};

    let message = [&b"meshlog v1 event signature\0"[..], bytes].concat();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    let expanded = Sha512::digest(seed);
    let mut clamped: [u8; 32] = expanded[..32].try_into().unwrap();
    clamped[0] &= 248;
    clamped[31] &= 127;
    clamped[31] |= 64;
    let a = Scalar::from_bytes_mod_order(clamped);
    assert_eq!(
        (a * ED25519_BASEPOINT_POINT).compress().to_bytes(),
        public.to_bytes()
    );
    let r = Scalar::from_bytes_mod_order_wide(&Sha512::digest(&message).into());
    let big_r = (r * ED25519_BASEPOINT_POINT + EIGHT_TORSION[torsion]).compress();
    let mut hasher = Sha512::new();
    hasher.update(big_r.as_bytes());
    hasher.update(public.as_bytes());
    hasher.update(&message);
    let k = Scalar::from_bytes_mod_order_wide(&hasher.finalize().into());
    let s = r + k * a + Scalar::from(s_offset);
    let mut bytes = [0u8; 64];
    bytes[..32].copy_from_slice(big_r.as_bytes());
    bytes[32..].copy_from_slice(s.as_bytes());
    bytes
}
