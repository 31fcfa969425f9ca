//! The v3 redb file: events in the order they were added, and projections
//! rebuilt and compared on open (SPEC.md §9).
//!
//! `events` maps a position (0, 1, …, the order events were added, in which
//! each comes after what it names) to the stored record. The projections
//! are `roster` (`R*`: member id → role, DH key, package counter),
//! `epochs` (rotation hash → 1 applied, 0 void) and `enabled` (member id →
//! flag). An event and the projection rows it changes are one transaction.
//! Equivocations need no table of their own: both events are events. The
//! meta table also names the member whose copy the file is (SPEC.md §9.1).

use std::collections::BTreeMap;

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::event::SignedEvent;
use super::verify::{Ledger, malformed};
use crate::error::{Error, Mismatch, StoreError};
use crate::ids::MemberId;
use crate::labels::STORE_FORMAT;
use crate::redb_file::RedbFile;

/// The meta table, laid out as v2's (byte keys, the format as `be16`), so
/// that a v2 build reports a v3 file as a newer format and this build names
/// a v2 file.
const META: TableDefinition<&[u8], &[u8]> = TableDefinition::new("meta");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// The meta key naming the member whose copy the file is: its 16-byte id
/// (SPEC.md §9.1). A file written before it existed has none.
const OWNER: &[u8] = b"owner";

/// The projection tables, each `bytes → bytes`.
const PROJECTIONS: [&str; 3] = ["roster", "epochs", "enabled"];

/// Every projection row a ledger implies, by table, in key order.
pub(crate) type Rows = BTreeMap<&'static str, BTreeMap<Vec<u8>, Vec<u8>>>;

/// The rows of every projection of `ledger` (SPEC.md §9).
pub(crate) fn projection_rows(ledger: &Ledger) -> Rows {
    let resolution = ledger.resolution();
    let mut rows = Rows::new();
    let roster = resolution
        .roster
        .iter()
        .map(|(id, entry)| {
            let mut value = vec![entry.role as u8];
            value.extend_from_slice(entry.keys.keys().dh.as_bytes());
            value.extend_from_slice(&entry.keys.counter().to_be_bytes());
            (id.as_bytes().to_vec(), value)
        })
        .collect();
    rows.insert("roster", roster);
    let epochs = resolution
        .statuses
        .keys()
        .map(|hash| {
            let applied = u8::from(resolution.is_applied(*hash));
            (hash.as_bytes().to_vec(), vec![applied])
        })
        .collect();
    rows.insert("epochs", epochs);
    let mut members: Vec<_> = resolution.roster.iter().map(|(id, _)| *id).collect();
    members.sort();
    let enabled = members
        .into_iter()
        .map(|id| {
            let flag = u8::from(ledger.state().is_enabled(id));
            (id.as_bytes().to_vec(), vec![flag])
        })
        .collect();
    rows.insert("enabled", enabled);
    rows
}

/// An open v3 file.
pub(crate) struct Store {
    file: RedbFile,
    /// How many events the file holds: the next position.
    len: u64,
    /// The projection rows as stored, to write only what changes.
    rows: Rows,
    /// The member whose copy this is, as the file records it.
    owner: Option<MemberId>,
    /// Whether `owner` is not in the file yet: the next write records it.
    owner_unwritten: bool,
}

impl Store {
    /// Creates a file holding `records` (from the genesis on, each after
    /// what it names) and the projections of `ledger`, which holds exactly
    /// them, the copy of `owner` (none: a copy of no one's, as a backup of
    /// a file that names none); a failed write removes the file.
    pub(crate) fn create(
        path: &std::path::Path,
        ledger: &Ledger,
        owner: Option<MemberId>,
    ) -> Result<Store, Error> {
        let file = RedbFile::create(path)?;
        let mut store = Store {
            file,
            len: 0,
            rows: Rows::new(),
            owner,
            owner_unwritten: owner.is_some(),
        };
        let records: Vec<_> = ledger.records().collect();
        let records: Vec<&SignedEvent> = records.iter().map(|record| &**record).collect();
        match store.write(&records, Some(ledger), true) {
            Ok(()) => Ok(store),
            Err(error) => {
                store.file.discard();
                Err(error)
            }
        }
    }

    /// Opens a file and verifies it: every record through the ledger, in
    /// stored order, and every projection row against the rows the ledger
    /// implies. Returns the store and the ledger.
    pub(crate) fn open(file: RedbFile) -> Result<(Store, Ledger), Error> {
        let txn = file.begin_read()?;
        let not_meshlog = |detail: &str| StoreError::NotMeshlog {
            path: file.path().to_owned(),
            detail: detail.to_owned(),
        };
        let meta = txn
            .open_table(META)
            .map_err(|_| not_meshlog("no meshlog tables"))?;
        let format = meta
            .get(&b"format"[..])
            .map_err(StoreError::from)?
            .ok_or_else(|| not_meshlog("no format marker"))?;
        let format = <[u8; 2]>::try_from(format.value())
            .map(u16::from_be_bytes)
            .map_err(|_| not_meshlog("bad format marker"))?;
        if format > STORE_FORMAT {
            return Err(StoreError::NewerFormat {
                path: file.path().to_owned(),
                found: format,
                supported: STORE_FORMAT,
            }
            .into());
        }
        if format < STORE_FORMAT {
            return Err(StoreError::OlderFormat {
                path: file.path().to_owned(),
                found: format,
                supported: STORE_FORMAT,
            }
            .into());
        }
        let group = meta
            .get(&b"group"[..])
            .map_err(StoreError::from)?
            .map(|group| group.value().to_vec())
            .ok_or_else(|| not_meshlog("no group"))?;
        let owner = match meta.get(OWNER).map_err(StoreError::from)? {
            Some(owner) => Some(
                <[u8; MemberId::LEN]>::try_from(owner.value())
                    .map(MemberId::from_bytes)
                    .map_err(|_| not_meshlog("bad owner marker"))?,
            ),
            None => None,
        };
        let tampered = |detail: &str| StoreError::Tampered {
            path: file.path().to_owned(),
            detail: detail.to_owned(),
        };
        let events = txn.open_table(EVENTS).map_err(StoreError::from)?;
        let mut records: Vec<Vec<u8>> = Vec::new();
        for row in events.iter().map_err(StoreError::from)? {
            let (position, record) = row.map_err(StoreError::from)?;
            if position.value() != records.len() as u64 {
                return Err(tampered("events are not numbered from 0 without gaps").into());
            }
            records.push(record.value().to_vec());
        }
        let len = records.len() as u64;
        let (first, rest) = records
            .split_first()
            .ok_or_else(|| tampered("no genesis"))?;
        let genesis = SignedEvent::from_record(first).map_err(|error| malformed(first, error))?;
        let mut ledger = Ledger::found(genesis).map_err(Error::Rejected)?;
        // One pass, signatures in parallel batches. Each stored event comes
        // after what it names, and once: the ledger must take them in the
        // stored order, none twice.
        let taken = ledger.take_batch(rest)?;
        if taken.known != 0 || !taken.in_order {
            return Err(tampered("an event stored before what it names, or twice").into());
        }
        if group.as_slice() != ledger.group().as_bytes() {
            return Err(tampered("the group marker is not the genesis's hash").into());
        }
        let expected = projection_rows(&ledger);
        for table in PROJECTIONS {
            let stored = txn
                .open_table(TableDefinition::<&[u8], &[u8]>::new(table))
                .map_err(StoreError::from)?;
            let mut stored_rows = BTreeMap::new();
            for row in stored.iter().map_err(StoreError::from)? {
                let (key, value) = row.map_err(StoreError::from)?;
                stored_rows.insert(key.value().to_vec(), value.value().to_vec());
            }
            let wanted = expected.get(table).cloned().unwrap_or_default();
            if let Some((key, problem)) = first_difference(&wanted, &stored_rows) {
                return Err(StoreError::ProjectionMismatch {
                    table,
                    key: hex::encode(key),
                    problem,
                }
                .into());
            }
        }
        drop(txn);
        Ok((
            Store {
                file,
                len,
                rows: expected,
                owner,
                owner_unwritten: false,
            },
            ledger,
        ))
    }

    /// The member whose copy this file is, if it records one (SPEC.md
    /// §9.1).
    pub(crate) fn owner(&self) -> Option<MemberId> {
        self.owner
    }

    /// Records `member` as the file's owner with the next write, in its
    /// transaction: for a file from before owners were recorded, so that
    /// opening it writes nothing by itself.
    pub(crate) fn adopt(&mut self, member: MemberId) {
        if self.owner.is_none() {
            self.owner = Some(member);
            self.owner_unwritten = true;
        }
    }

    pub(crate) fn file(&self) -> &RedbFile {
        &self.file
    }

    /// How many events the file holds.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Closes and deletes a file this process has just created and
    /// written nothing acknowledged to.
    pub(crate) fn discard(self) {
        self.file.discard();
    }

    /// Appends `records` (verified, in an order where each comes after what
    /// it names) and, given the ledger that holds them, the projection rows
    /// it implies, in one transaction; `None`: they change no row.
    pub(crate) fn append(
        &mut self,
        records: &[&SignedEvent],
        after: Option<&Ledger>,
    ) -> Result<(), Error> {
        self.write(records, after, false)
    }

    fn write(
        &mut self,
        records: &[&SignedEvent],
        after: Option<&Ledger>,
        first: bool,
    ) -> Result<(), Error> {
        let txn = self.file.begin_write()?;
        let owner = self.owner.filter(|_| self.owner_unwritten);
        if first || owner.is_some() {
            let mut meta = txn.open_table(META).map_err(StoreError::from)?;
            if first {
                meta.insert(&b"format"[..], &STORE_FORMAT.to_be_bytes()[..])
                    .map_err(StoreError::from)?;
                if let Some(ledger) = after {
                    meta.insert(&b"group"[..], &ledger.group().as_bytes()[..])
                        .map_err(StoreError::from)?;
                }
            }
            if let Some(owner) = owner {
                meta.insert(OWNER, &owner.as_bytes()[..])
                    .map_err(StoreError::from)?;
            }
        }
        {
            let mut events = txn.open_table(EVENTS).map_err(StoreError::from)?;
            for (offset, record) in records.iter().enumerate() {
                events
                    .insert(self.len + offset as u64, record.to_record().as_slice())
                    .map_err(StoreError::from)?;
            }
        }
        let rows = after.map(projection_rows);
        if let Some(rows) = &rows {
            write_changed_rows(&txn, &self.rows, rows)?;
        }
        txn.commit().map_err(StoreError::from)?;
        self.owner_unwritten = false;
        self.len += records.len() as u64;
        if let Some(rows) = rows {
            self.rows = rows;
        }
        Ok(())
    }
}

/// Writes the rows of `new` that differ from `old`, and removes the rows
/// `new` no longer has.
fn write_changed_rows(txn: &WriteTransaction, old: &Rows, new: &Rows) -> Result<(), Error> {
    let empty = BTreeMap::new();
    for table in PROJECTIONS {
        let mut stored = txn
            .open_table(TableDefinition::<&[u8], &[u8]>::new(table))
            .map_err(StoreError::from)?;
        let before = old.get(table).unwrap_or(&empty);
        let after = new.get(table).unwrap_or(&empty);
        for (key, value) in after {
            if before.get(key) != Some(value) {
                stored
                    .insert(key.as_slice(), value.as_slice())
                    .map_err(StoreError::from)?;
            }
        }
        for key in before.keys().filter(|key| !after.contains_key(*key)) {
            stored.remove(key.as_slice()).map_err(StoreError::from)?;
        }
    }
    Ok(())
}

/// The first row where `stored` differs from `wanted`.
fn first_difference(
    wanted: &BTreeMap<Vec<u8>, Vec<u8>>,
    stored: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> Option<(Vec<u8>, Mismatch)> {
    let keys: std::collections::BTreeSet<&Vec<u8>> = wanted.keys().chain(stored.keys()).collect();
    keys.into_iter()
        .find_map(|key| match (wanted.get(key), stored.get(key)) {
            (Some(_), None) => Some((key.clone(), Mismatch::Missing)),
            (None, Some(_)) => Some((key.clone(), Mismatch::Unexpected)),
            (Some(a), Some(b)) if a != b => Some((key.clone(), Mismatch::Differs)),
            _ => None,
        })
}
