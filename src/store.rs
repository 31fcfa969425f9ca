//! The redb file: events in the order they were added, the rows that let
//! a ledger read them back by hash and by feed, and projections rebuilt and
//! compared on open (SPEC.md §9).
//!
//! `events` maps a position (0, 1, …, the order events were added, in which
//! each comes after what it names) to the stored record. `seats` (author,
//! seq, hash → position, flag, acknowledged epochs) and `hashes` (hash →
//! position) are the ledger on disk, each row tagged by the member whose
//! copy the file is; `rotations` lists the rotations' positions (§9.7). The
//! projections are `roster` (`R*`: member id → role, DH key, package
//! counter), `epochs` (rotation hash → 1 applied, 0 void) and `enabled`
//! (member id → flag). An event and every row it changes are one
//! transaction. Equivocations need no table of their own: both events are
//! events. The meta table names the member whose copy the file is (§9.1),
//! and holds that member's checkpoint (§9.7).
//!
//! The store only stores: it reads what it is asked for and writes what a
//! ledger holds; whether events hold is the ledger's concern.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use redb::{
    ReadOnlyTable, ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use zeroize::Zeroizing;

use super::event::{Body, SignedEvent};
use super::verify::{Ledger, malformed};
use crate::backing::{Backing, SeatRow};
use crate::checkpoint::{Checkpoint, FileKeys, ROW_TAG_LEN, RotationsDigest, row_tag};
use crate::error::{Error, Mismatch, StoreError};
use crate::ids::{EventHash, MemberId};
use crate::labels::STORE_FORMAT;
use crate::redb_file::{RedbFile, guarded};

/// The meta table, laid out as v2's (byte keys, the format as `be16`), so
/// that a v2 build reports a v3 file as a newer format and this build names
/// a v2 file.
const META: TableDefinition<&[u8], &[u8]> = TableDefinition::new("meta");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// author (16) || be64 seq || hash (32) → be64 position || flag || the
/// acknowledged epochs (32 each) || tag (16) (SPEC.md §9.7).
const SEATS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("seats");
/// hash → be64 position || tag (16) (SPEC.md §9.7).
const HASHES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("hashes");
/// be64 position of every rotation (the genesis not counted) → nothing.
const ROTATIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("rotations");
/// The meta key naming the member whose copy the file is: its 16-byte id
/// (SPEC.md §9.1). A file written before it existed has none.
const OWNER: &[u8] = b"owner";
/// The meta key of a member's checkpoint, followed by its id (SPEC.md
/// §9.7).
const CHECKPOINT: &[u8] = b"checkpoint/";

/// The store format before the ledger's rows: read, and made this format
/// by the first write (SPEC.md §9.5).
const STORE_FORMAT_WITHOUT_ROWS: u16 = 3;

/// How many records a verifying open reads and takes at a time: the ledger
/// lets go of each run once its rows are checked, so this bounds the
/// memory a full verification needs.
const OPEN_RUN: usize = 16_384;

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

/// Told, as an open verifies, how many events it verified, of how many.
pub(crate) type Progress = dyn Fn(u64, u64) + Send + Sync;

/// Who opens a file, and so what of it may be trusted (SPEC.md §9.7).
pub(crate) enum OpenAs {
    /// Anyone without the owner's keys: every event is verified.
    Auditor,
    /// A reader that never writes, with a member's keys: the owner's restore
    /// its checkpoint (unless asked to verify everything), anyone else's
    /// verify every event.
    Reader {
        /// The member's file keys.
        keys: FileKeys,
        /// Whether to verify every event even so.
        full: bool,
    },
    /// A member with its keys, for writing.
    Member {
        /// Its file keys.
        keys: FileKeys,
        /// Whether the copy is shared by several members (SPEC.md §9.1):
        /// nothing of it is the member's own, so no checkpoint is read or
        /// written and rows carry no tag.
        shared: bool,
        /// Whether to verify every event even so.
        full: bool,
    },
}

/// How an open verified the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verified {
    /// The position verification began at: 0, or the count of events the
    /// member's checkpoint covered.
    pub(crate) from: u64,
    /// Why a member's checkpoint was not used, if the member asked for it.
    pub(crate) checkpoint_unused: Option<&'static str>,
}

/// An open file.
pub(crate) struct Store {
    file: Arc<RedbFile>,
    /// How many events the file holds: the next position.
    len: u64,
    /// The projection rows as stored, to write only what changes.
    rows: Rows,
    /// The member whose copy this is, as the file records it.
    owner: Option<MemberId>,
    /// Whether `owner` is not in the file yet: the next write records it.
    owner_unwritten: bool,
    /// The events from this position on have no rows of this writer's yet
    /// (they are in the ledger's memory): the next write writes them.
    rows_from: u64,
    /// Whether the file's rows carry tags other than this writer's: the
    /// next write tags every row again.
    retag: bool,
    /// Whether the file is of the store format without rows: the next write
    /// adds them and makes it this one.
    upgrade: bool,
    /// The keys of the member whose copy this is, when it is the one
    /// writing: they tag rows and the checkpoint.
    keys: Option<FileKeys>,
    /// The rotations the file holds, in the order stored.
    rotations: RotationsDigest,
    backing: Arc<FileBacking>,
    verified: Verified,
}

impl Store {
    /// Creates a file holding every record of `ledger` (from the genesis
    /// on, each after what it names), its rows and the projections, the
    /// copy of `owner` (none: a copy of no one's, as a backup of a file
    /// that names none); with the owner's `keys`, its rows are tagged and
    /// its checkpoint written. A failed write removes the file.
    pub(crate) fn create(
        path: &std::path::Path,
        ledger: &Ledger,
        owner: Option<MemberId>,
        keys: Option<FileKeys>,
    ) -> Result<Store, Error> {
        let file = Arc::new(RedbFile::create(path)?);
        let keys = keys.filter(|keys| Some(keys.member) == owner);
        let backing = Arc::new(FileBacking::new(&file, keys.as_ref()));
        let mut store = Store {
            file,
            len: 0,
            rows: Rows::new(),
            owner,
            owner_unwritten: owner.is_some(),
            rows_from: 0,
            retag: false,
            upgrade: false,
            keys,
            rotations: RotationsDigest::default(),
            backing,
            verified: Verified {
                from: 0,
                checkpoint_unused: None,
            },
        };
        let records: Vec<_> = ledger.records().collect();
        let records: Vec<&SignedEvent> = records.iter().map(|record| &**record).collect();
        if let Some(failure) = ledger.failure() {
            store.discard();
            return Err(failure);
        }
        match guarded(|| store.write(&records, ledger, true)) {
            Ok(()) => Ok(store),
            Err(error) => {
                store.discard();
                Err(error)
            }
        }
    }

    /// Opens a file and verifies it: with the owner's keys and its
    /// checkpoint, the events the checkpoint does not cover; otherwise every
    /// record through the ledger, in stored order, in runs, with every row
    /// checked against what the ledger implies. Every projection row is
    /// then compared with the rows the ledger implies. Returns the store
    /// and the ledger, which reads what it lets go of from the file.
    pub(crate) fn open(
        file: RedbFile,
        who: OpenAs,
        progress: Option<&Progress>,
    ) -> Result<(Store, Ledger), Error> {
        let path = file.path().to_owned();
        // A file opened in place is read as it is: one cut short shows as
        // it is read.
        guarded(|| Self::open_guarded(file, who, progress.unwrap_or(&|_, _| {}))).map_err(|error| {
            match error {
                Error::Store(error) => Error::Store(crate::redb_file::or_truncated(&path, error)),
                other => other,
            }
        })
    }

    fn open_guarded(
        file: RedbFile,
        who: OpenAs,
        progress: &Progress,
    ) -> Result<(Store, Ledger), Error> {
        let file = Arc::new(file);
        let txn = file.begin_read()?;
        let path = file.path().to_owned();
        let not_meshlog = |detail: &str| StoreError::NotMeshlog {
            path: path.clone(),
            detail: detail.to_owned(),
        };
        let meta = txn.open_table(META).map_err(|error| match error {
            redb::TableError::TableDoesNotExist(_) | redb::TableError::TableTypeMismatch { .. } => {
                not_meshlog("no meshlog tables")
            }
            other => StoreError::from(other),
        })?;
        let format = meta
            .get(&b"format"[..])
            .map_err(StoreError::from)?
            .ok_or_else(|| not_meshlog("no format marker"))?;
        let format = <[u8; 2]>::try_from(format.value())
            .map(u16::from_be_bytes)
            .map_err(|_| not_meshlog("bad format marker"))?;
        if format > STORE_FORMAT {
            return Err(StoreError::NewerFormat {
                path,
                found: format,
                supported: STORE_FORMAT,
            }
            .into());
        }
        if format < STORE_FORMAT_WITHOUT_ROWS {
            return Err(StoreError::OlderFormat {
                path,
                found: format,
                supported: STORE_FORMAT,
            }
            .into());
        }
        let upgrade = format == STORE_FORMAT_WITHOUT_ROWS;
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
        let (keys, shared, full) = match who {
            OpenAs::Auditor => (None, true, true),
            OpenAs::Reader { keys, full } => {
                let own = Some(keys).filter(|keys| owner == Some(keys.member));
                let full = full || own.is_none();
                (own, false, full)
            }
            OpenAs::Member { keys, shared, full } => {
                if let Some(owner) = owner
                    && owner != keys.member
                    && !shared
                {
                    // Refused before anything else is read, and before the
                    // journal is read or started (SPEC.md §9.1).
                    return Err(Error::ForeignCopy {
                        path,
                        owner,
                        member: keys.member,
                    });
                }
                (Some(keys), shared, full)
            }
        };
        // The member's own copy: its keys tag what it writes.
        let keys = keys.filter(|_| !shared);
        let stored_checkpoint = match &keys {
            Some(keys) if !upgrade => meta
                .get(&checkpoint_key(keys.member)[..])
                .map_err(StoreError::from)?
                .map(|bytes| bytes.value().to_vec()),
            _ => None,
        };
        drop(meta);
        let events = txn.open_table(EVENTS).map_err(StoreError::from)?;
        let len = events.len().map_err(StoreError::from)?;
        drop(events);
        // One snapshot for the whole open: a live writer's commits in the
        // meantime are not half seen.
        let snapshot = txn;
        let backing = Arc::new(FileBacking::new(&file, keys.as_ref()));
        let mut checkpoint_unused = None;
        let mut restored = None;
        if let Some(keys) = &keys {
            if full {
                checkpoint_unused = Some("a full verification was asked for");
            } else if let Some(bytes) = &stored_checkpoint {
                match restore(&snapshot, &backing, keys, bytes, len) {
                    Ok(found) => restored = Some(found),
                    Err(why) => checkpoint_unused = Some(why),
                }
            } else {
                checkpoint_unused = Some("the file holds no checkpoint of the member's");
            }
        }
        let restored_from = restored.as_ref().map(|(_, _, from)| *from);
        let (mut ledger, mut rotations, backing, retag) = match restored {
            Some((ledger, rotations, _)) => (ledger, rotations, backing, false),
            None => {
                // Nothing read while restoring is kept.
                let backing = Arc::new(FileBacking::new(&file, keys.as_ref()));
                let (ledger, rotations, retag) =
                    verify_all((&file, &snapshot), &backing, upgrade, len, progress)?;
                (ledger, rotations, backing, retag)
            }
        };
        // The events past the checkpoint: verified as new, and held in
        // memory until the next write gives them rows of the member's.
        let from = restored_from.unwrap_or(0);
        if let Some(from) = restored_from {
            take_from(
                (&file, &snapshot),
                &mut ledger,
                &mut rotations,
                (from, len),
                progress,
            )?;
        }
        if let Some(failure) = ledger.failure() {
            return Err(failure);
        }
        if group.as_slice() != ledger.group().as_bytes() {
            return Err(tampered(&file, "the group marker is not the genesis's hash").into());
        }
        let expected = projection_rows(&ledger);
        compare_projections(&snapshot, &expected)?;
        drop(snapshot);
        let rows_from = match (upgrade, restored_from) {
            (true, _) => 0,
            (false, Some(from)) => from,
            (false, None) => len,
        };
        Ok((
            Store {
                file,
                len,
                rows: expected,
                owner,
                owner_unwritten: false,
                rows_from,
                retag,
                upgrade,
                keys,
                rotations,
                backing,
                verified: Verified {
                    from,
                    checkpoint_unused,
                },
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

    /// How this open verified the file.
    pub(crate) fn verified(&self) -> &Verified {
        &self.verified
    }

    /// How many events the file holds.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Closes and deletes a file this process has just created and
    /// written nothing acknowledged to.
    pub(crate) fn discard(self) {
        let Store { file, backing, .. } = self;
        drop(backing);
        if let Ok(file) = Arc::try_unwrap(file) {
            file.discard();
        }
    }

    /// Appends `records` (verified, in an order where each comes after what
    /// it names), which `ledger` holds in memory, with their rows and the
    /// projection rows the ledger implies, in one transaction. The ledger
    /// may then let go of what it holds ([`Self::backing`]).
    pub(crate) fn append(
        &mut self,
        records: &[&SignedEvent],
        ledger: &Ledger,
    ) -> Result<(), Error> {
        guarded(|| self.write(records, ledger, false))
    }

    /// What the file holds, for a ledger to read back, once a write has
    /// put there every event the ledger holds.
    pub(crate) fn backing(&self) -> Option<Arc<dyn Backing>> {
        self.backing
            .usable()
            .then(|| Arc::clone(&self.backing) as Arc<dyn Backing>)
    }

    fn write(
        &mut self,
        records: &[&SignedEvent],
        ledger: &Ledger,
        first: bool,
    ) -> Result<(), Error> {
        let txn = self.file.begin_write()?;
        let owner = self.owner.filter(|_| self.owner_unwritten);
        if first || self.upgrade || owner.is_some() {
            let mut meta = txn.open_table(META).map_err(StoreError::from)?;
            if first || self.upgrade {
                meta.insert(&b"format"[..], &STORE_FORMAT.to_be_bytes()[..])
                    .map_err(StoreError::from)?;
            }
            if first {
                meta.insert(&b"group"[..], &ledger.group().as_bytes()[..])
                    .map_err(StoreError::from)?;
            }
            if let Some(owner) = owner {
                meta.insert(OWNER, &owner.as_bytes()[..])
                    .map_err(StoreError::from)?;
            }
        }
        let mut rotations = self.rotations.clone();
        {
            let mut events = txn.open_table(EVENTS).map_err(StoreError::from)?;
            for (offset, record) in records.iter().enumerate() {
                events
                    .insert(self.len + offset as u64, record.to_record().as_slice())
                    .map_err(StoreError::from)?;
            }
        }
        if self.upgrade {
            // Whatever such tables a file without rows holds is no one's.
            for table in [SEATS, HASHES, ROTATIONS] {
                txn.delete_table(table).map_err(StoreError::from)?;
            }
        }
        {
            let mut seats = txn.open_table(SEATS).map_err(StoreError::from)?;
            let mut hashes = txn.open_table(HASHES).map_err(StoreError::from)?;
            let mut rotation_rows = txn.open_table(ROTATIONS).map_err(StoreError::from)?;
            let row_key = self.keys.as_ref().map(|keys| &*keys.row);
            if self.retag {
                retag(&mut seats, row_key)?;
                retag(&mut hashes, row_key)?;
            }
            // Rows the file lacks of events it holds (they are in the
            // ledger's memory), then the new events'.
            let unrowed: Vec<_> = (self.rows_from..self.len)
                .map(|position| {
                    ledger.record_at(position as usize).ok_or_else(|| {
                        tampered(&self.file, "an event to write rows of is not held")
                    })
                })
                .collect::<Result<_, _>>()?;
            let unrowed = unrowed.iter().map(|record| &**record);
            let new = records.iter().copied();
            for (position, record) in (self.rows_from..).zip(unrowed.chain(new)) {
                let hash = record.hash();
                let Some((key, value)) = implied_seat_row(row_key, ledger, record, position) else {
                    return Err(
                        tampered(&self.file, "an event to write rows of is not held").into(),
                    );
                };
                seats
                    .insert(&key[..], &value[..])
                    .map_err(StoreError::from)?;
                let value = hash_row(row_key, hash, position);
                hashes
                    .insert(&hash.as_bytes()[..], &value[..])
                    .map_err(StoreError::from)?;
                if matches!(record.event().body, Body::Rotate { .. }) {
                    rotation_rows
                        .insert(&position.to_be_bytes()[..], &[][..])
                        .map_err(StoreError::from)?;
                    if position >= self.len {
                        rotations.add(hash);
                    }
                }
            }
        }
        if let Some(failure) = ledger.failure() {
            return Err(failure);
        }
        let rows = projection_rows(ledger);
        write_changed_rows(&txn, &self.rows, &rows)?;
        let len = self.len + records.len() as u64;
        if let Some(keys) = &self.keys {
            let mut checkpoint = ledger.checkpoint_state();
            checkpoint.events = len;
            checkpoint.rotations = rotations.count();
            checkpoint.rotations_digest = rotations.digest();
            let mut meta = txn.open_table(META).map_err(StoreError::from)?;
            meta.insert(
                &checkpoint_key(keys.member)[..],
                &checkpoint.encode(keys)[..],
            )
            .map_err(StoreError::from)?;
        }
        // The projections and the checkpoint read the file too (the
        // left-out set, the heads): a read that failed there must not be
        // committed, least of all under the member's tag.
        if let Some(failure) = ledger.failure() {
            return Err(failure);
        }
        txn.commit().map_err(StoreError::from)?;
        self.owner_unwritten = false;
        self.len = len;
        self.rows = rows;
        self.rows_from = len;
        self.retag = false;
        self.upgrade = false;
        self.rotations = rotations;
        self.backing.refresh(&self.file, len, self.keys.is_some())?;
        Ok(())
    }
}

/// The meta key of `member`'s checkpoint.
fn checkpoint_key(member: MemberId) -> Vec<u8> {
    [CHECKPOINT, &member.as_bytes()[..]].concat()
}

fn tampered(file: &RedbFile, detail: &str) -> StoreError {
    StoreError::Tampered {
        path: file.path().to_owned(),
        detail: detail.to_owned(),
    }
}

/// The key and value of the seat row of an event; tagged under `row_key`,
/// or with zeros for a copy that is not the writer's own.
#[allow(clippy::too_many_arguments)]
fn seat_row(
    row_key: Option<&[u8; 32]>,
    author: MemberId,
    seq: u64,
    hash: EventHash,
    position: u64,
    enabled: bool,
    acknowledged: &[EventHash],
    record: &[u8],
) -> ([u8; SEAT_KEY_LEN], Vec<u8>) {
    let key = seat_key(author, seq, hash);
    let mut value =
        Vec::with_capacity(9 + RECORD_DIGEST_LEN + 32 * acknowledged.len() + ROW_TAG_LEN);
    value.extend_from_slice(&position.to_be_bytes());
    value.push(u8::from(enabled));
    value.extend_from_slice(&record_digest(record));
    for epoch in acknowledged {
        value.extend_from_slice(epoch.as_bytes());
    }
    let tag = row_key.map_or([0; ROW_TAG_LEN], |row_key| row_tag(row_key, &key, &value));
    value.extend_from_slice(&tag);
    (key, value)
}

/// The seat row `ledger` implies for `record`, held at `position`.
fn implied_seat_row(
    row_key: Option<&[u8; 32]>,
    ledger: &Ledger,
    record: &SignedEvent,
    position: u64,
) -> Option<([u8; SEAT_KEY_LEN], Vec<u8>)> {
    let hash = record.hash();
    let (author, seq, enabled, acknowledged) = ledger.state().seat_of(hash)?;
    Some(seat_row(
        row_key,
        author,
        seq,
        hash,
        position,
        enabled,
        &acknowledged,
        &record.to_record(),
    ))
}

/// How many bytes of a record's digest a seat row keeps.
const RECORD_DIGEST_LEN: usize = 16;

/// The digest of a stored record, its signature included (the event's hash
/// covers only the event): `derive_key(FILE_RECORD, record)[..16]`.
fn record_digest(record: &[u8]) -> [u8; RECORD_DIGEST_LEN] {
    let mut hasher = blake3::Hasher::new_derive_key(crate::labels::FILE_RECORD);
    hasher.update(record);
    let mut digest = [0; RECORD_DIGEST_LEN];
    digest.copy_from_slice(&hasher.finalize().as_bytes()[..RECORD_DIGEST_LEN]);
    digest
}

/// The value of the hash row of an event.
fn hash_row(row_key: Option<&[u8; 32]>, hash: EventHash, position: u64) -> Vec<u8> {
    let mut value = position.to_be_bytes().to_vec();
    let tag = row_key.map_or([0; ROW_TAG_LEN], |row_key| {
        row_tag(row_key, hash.as_bytes(), &value)
    });
    value.extend_from_slice(&tag);
    value
}

const SEAT_KEY_LEN: usize = MemberId::LEN + 8 + 32;

fn seat_key(author: MemberId, seq: u64, hash: EventHash) -> [u8; SEAT_KEY_LEN] {
    let mut key = [0; SEAT_KEY_LEN];
    key[..16].copy_from_slice(author.as_bytes());
    key[16..24].copy_from_slice(&seq.to_be_bytes());
    key[24..].copy_from_slice(hash.as_bytes());
    key
}

/// Tags every row of `table` again, under `row_key`.
fn retag(
    table: &mut redb::Table<'_, &'static [u8], &'static [u8]>,
    row_key: Option<&[u8; 32]>,
) -> Result<(), Error> {
    let mut after: Option<Vec<u8>> = None;
    loop {
        let mut run: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        {
            let range = match &after {
                Some(after) => table.range::<&[u8]>((
                    std::ops::Bound::Excluded(after.as_slice()),
                    std::ops::Bound::Unbounded,
                )),
                None => table.range::<&[u8]>(..),
            }
            .map_err(StoreError::from)?;
            for row in range.take(4096) {
                let (key, value) = row.map_err(StoreError::from)?;
                run.push((key.value().to_vec(), value.value().to_vec()));
            }
        }
        let Some((last, _)) = run.last() else {
            return Ok(());
        };
        after = Some(last.clone());
        for (key, mut value) in run {
            let Some(body_len) = value.len().checked_sub(ROW_TAG_LEN) else {
                continue;
            };
            value.truncate(body_len);
            let tag = row_key.map_or([0; ROW_TAG_LEN], |row_key| row_tag(row_key, &key, &value));
            value.extend_from_slice(&tag);
            table
                .insert(key.as_slice(), value.as_slice())
                .map_err(StoreError::from)?;
        }
    }
}

/// Restores the ledger `bytes`, the member's checkpoint, states, reading
/// the genesis and the rotations it covers through `backing`. Returns the
/// ledger, the rotations digest and the count of events covered; or why
/// the checkpoint was not used.
fn restore(
    snapshot: &ReadTransaction,
    backing: &Arc<FileBacking>,
    keys: &FileKeys,
    bytes: &[u8],
    len: u64,
) -> Result<(Ledger, RotationsDigest, u64), &'static str> {
    let checkpoint = Checkpoint::decode(bytes, keys).map_err(|unusable| match unusable {
        crate::checkpoint::Unusable::BadTag => "the checkpoint's tag does not check",
        crate::checkpoint::Unusable::Malformed => "the checkpoint is malformed",
    })?;
    if checkpoint.events == 0 || checkpoint.events > len {
        return Err("the checkpoint covers more events than the file holds");
    }
    // One row an event, in both tables (a count redb keeps): a row deleted
    // is seen here, a row changed when it is read.
    {
        for table in [SEATS, HASHES] {
            let rows = snapshot
                .open_table(table)
                .and_then(|table| Ok(table.len()?))
                .map_err(|_| "the file's rows could not be read")?;
            if rows != len {
                return Err("the file does not hold one row of each kind for each event");
            }
        }
    }
    backing.set_limit(checkpoint.events, checkpoint.events);
    backing
        .refresh_from(snapshot, checkpoint.events, true)
        .map_err(|_| "the file's rows could not be read")?;
    let genesis = backing
        .record_at(0)
        .ok_or("the genesis's rows do not check")?;
    let positions = {
        let table = snapshot
            .open_table(ROTATIONS)
            .map_err(|_| "the file lists no rotations")?;
        let mut positions = Vec::new();
        for row in table
            .iter()
            .map_err(|_| "the rotations could not be read")?
        {
            let (position, _) = row.map_err(|_| "the rotations could not be read")?;
            let position = <[u8; 8]>::try_from(position.value())
                .map(u64::from_be_bytes)
                .map_err(|_| "the rotations are malformed")?;
            if position >= checkpoint.events {
                break;
            }
            positions.push(position);
        }
        positions
    };
    if positions.len() as u64 != checkpoint.rotations {
        return Err("the file's rotations are not those the checkpoint covers");
    }
    let mut digest = RotationsDigest::default();
    let mut rotations = Vec::with_capacity(positions.len());
    for position in positions {
        let rotation = backing
            .record_at(position)
            .filter(|record| matches!(record.event().body, Body::Rotate { .. }))
            .ok_or("a rotation's rows do not check")?;
        digest.add(rotation.hash());
        rotations.push(rotation);
    }
    if digest.digest() != checkpoint.rotations_digest {
        return Err("the file's rotations are not those the checkpoint covers");
    }
    let ledger = Ledger::restore(
        genesis,
        rotations,
        &checkpoint,
        Arc::clone(backing) as Arc<dyn Backing>,
    )
    .map_err(|_| "the checkpoint's state does not restore")?;
    if backing.failure().is_some() {
        return Err("the file's rows do not check");
    }
    Ok((ledger, digest, checkpoint.events))
}

/// Verifies every event of the file, in runs, checking each run's rows
/// against what the ledger implies before letting go of it (none in a file
/// without rows). Returns the ledger, the rotations digest, and whether a
/// row's tag did not check under the member's key, so that the next write
/// tags every row again.
fn verify_all(
    (file, snapshot): (&RedbFile, &ReadTransaction),
    backing: &Arc<FileBacking>,
    without_rows: bool,
    len: u64,
    progress: &Progress,
) -> Result<(Ledger, RotationsDigest, bool), Error> {
    let mut rotations = RotationsDigest::default();
    let first = read_run((file, snapshot), 0, 1)?;
    let genesis_record = first.first().ok_or_else(|| tampered(file, "no genesis"))?;
    let genesis = SignedEvent::from_record(genesis_record)
        .map_err(|error| malformed(genesis_record, error))?;
    let mut ledger = Ledger::found(genesis)?;
    let mut retag = false;
    let mut checked = 0;
    if !without_rows {
        ledger.set_backing(Arc::clone(backing) as Arc<dyn Backing>);
    }
    let mut at = 1;
    loop {
        if !without_rows {
            retag |= check_rows((file, snapshot), backing, &ledger, checked, &mut rotations)?;
            checked = ledger.len() as u64;
            backing.set_limit(checked, 0);
            backing.refresh_from(snapshot, checked, false)?;
            ledger.settle();
        }
        progress(at.min(len), len);
        if at >= len {
            break;
        }
        // With rows, `check_rows` counts the run's rotations as it checks.
        let counted = if without_rows {
            Some(&mut rotations)
        } else {
            None
        };
        at = take_run((file, snapshot), &mut ledger, counted, (at, len))?;
    }
    if !without_rows {
        let txn = snapshot;
        let rows = |name| -> Result<u64, Error> {
            let table = txn
                .open_table(TableDefinition::<&[u8], &[u8]>::new(name))
                .map_err(StoreError::from)?;
            Ok(table.len().map_err(StoreError::from)?)
        };
        let rotation_rows = txn
            .open_table(ROTATIONS)
            .map_err(StoreError::from)?
            .len()
            .map_err(StoreError::from)?;
        if rows("seats")? != len || rows("hashes")? != len || rotation_rows != rotations.count() {
            return Err(tampered(file, "the file holds rows of events it does not hold").into());
        }
    }
    Ok((ledger, rotations, retag))
}

/// Reads the records at positions `from..to`, which must all be there.
fn read_run(
    (file, snapshot): (&RedbFile, &ReadTransaction),
    from: u64,
    to: u64,
) -> Result<Vec<Vec<u8>>, Error> {
    let events = snapshot.open_table(EVENTS).map_err(StoreError::from)?;
    let mut run = Vec::with_capacity((to - from) as usize);
    for row in events.range(from..to).map_err(StoreError::from)? {
        let (position, record) = row.map_err(StoreError::from)?;
        if position.value() != from + run.len() as u64 {
            return Err(tampered(file, "events are not numbered from 0 without gaps").into());
        }
        run.push(record.value().to_vec());
    }
    if run.len() as u64 != to - from {
        return Err(tampered(file, "events are not numbered from 0 without gaps").into());
    }
    Ok(run)
}

/// Takes the records at `from..len` into `ledger` as new events.
fn take_from(
    (file, snapshot): (&RedbFile, &ReadTransaction),
    ledger: &mut Ledger,
    rotations: &mut RotationsDigest,
    (from, len): (u64, u64),
    progress: &Progress,
) -> Result<(), Error> {
    let mut at = from;
    while at < len {
        progress(at - from, len - from);
        at = take_run((file, snapshot), ledger, Some(&mut *rotations), (at, len))?;
    }
    Ok(())
}

/// Takes the next run of stored records from position `at` (below `len`)
/// into `ledger`, each after what it names and none held already, adding
/// the rotations among them to `rotations` if given. Returns where the next
/// run starts.
fn take_run(
    (file, snapshot): (&RedbFile, &ReadTransaction),
    ledger: &mut Ledger,
    rotations: Option<&mut RotationsDigest>,
    (at, len): (u64, u64),
) -> Result<u64, Error> {
    let to = (at + OPEN_RUN as u64).min(len);
    let run = read_run((file, snapshot), at, to)?;
    let taken = ledger.take_batch(&run)?;
    if taken.known != 0 || !taken.in_order {
        return Err(tampered(file, "an event stored before what it names, or twice").into());
    }
    if let Some(rotations) = rotations {
        for record in ledger.records_since(at as usize) {
            if matches!(record.event().body, Body::Rotate { .. }) {
                rotations.add(record.hash());
            }
        }
    }
    Ok(to)
}

/// Checks the rows of the events `ledger` took from position `from` on
/// (it holds them in memory) against those it implies; adds the rotations
/// among them to `rotations`. Returns whether a row's tag does not check
/// under the member's key.
fn check_rows(
    (file, txn): (&RedbFile, &ReadTransaction),
    backing: &FileBacking,
    ledger: &Ledger,
    from: u64,
    rotations: &mut RotationsDigest,
) -> Result<bool, Error> {
    let seats = txn.open_table(SEATS).map_err(StoreError::from)?;
    let hashes = txn.open_table(HASHES).map_err(StoreError::from)?;
    // The run's rotations, in one range read rather than a lookup an event.
    let listed: std::collections::BTreeSet<Vec<u8>> = txn
        .open_table(ROTATIONS)
        .map_err(StoreError::from)?
        .range(&from.to_be_bytes()[..]..)
        .map_err(StoreError::from)?
        .take_while(|row| {
            row.as_ref().map_or(true, |(key, _)| {
                key.value() < &(ledger.len() as u64).to_be_bytes()[..]
            })
        })
        .map(|row| row.map(|(key, _)| key.value().to_vec()))
        .collect::<Result<_, _>>()
        .map_err(StoreError::from)?;
    let row_key = backing.row_key.as_deref();
    let mut bad_tag = false;
    let differs = |what: &str| tampered(file, &format!("a row differs from the events: {what}"));
    for (position, record) in (from..).zip(ledger.records_since(from as usize)) {
        let hash = record.hash();
        let (key, value) = implied_seat_row(row_key, ledger, &record, position)
            .ok_or_else(|| differs("an event is not held"))?;
        let stored = seats
            .get(&key[..])
            .map_err(StoreError::from)?
            .ok_or_else(|| differs("a seat row is missing"))?;
        let (body, tag) = value.split_at(value.len().saturating_sub(ROW_TAG_LEN));
        let (stored_body, stored_tag) = stored
            .value()
            .split_at(stored.value().len().saturating_sub(ROW_TAG_LEN));
        if stored_body != body || stored_tag.len() != ROW_TAG_LEN {
            return Err(differs("a seat row").into());
        }
        bad_tag |= stored_tag != tag;
        let value = hash_row(row_key, hash, position);
        let stored = hashes
            .get(&hash.as_bytes()[..])
            .map_err(StoreError::from)?
            .ok_or_else(|| differs("a hash row is missing"))?;
        let (position_bytes, tag) = value.split_at(8);
        let (stored_position, stored_tag) = stored.value().split_at_checked(8).unwrap_or_default();
        if stored_position != position_bytes || stored_tag.len() != ROW_TAG_LEN {
            return Err(differs("a hash row").into());
        }
        bad_tag |= stored_tag != tag;
        let rotation = matches!(record.event().body, Body::Rotate { .. });
        if rotation != listed.contains(&position.to_be_bytes()[..]) {
            return Err(differs("the rotations").into());
        }
        if rotation {
            rotations.add(hash);
        }
    }
    Ok(bad_tag && row_key.is_some())
}

/// Compares every projection table with the rows `expected`.
fn compare_projections(txn: &ReadTransaction, expected: &Rows) -> Result<(), Error> {
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
    Ok(())
}

/// The rows of a file a ledger reads back: those at positions below its
/// limit, each checked as it is read (SPEC.md §9.7). Rows below
/// `tags_below` must carry the member's tag (the checkpoint vouched for
/// them); the others were checked against the events by this open's
/// verification, or written by this process.
pub(crate) struct FileBacking {
    path: PathBuf,
    tables: Mutex<Option<Tables>>,
    limit: AtomicU64,
    tags_below: AtomicU64,
    row_key: Option<Zeroizing<[u8; 32]>>,
    failure: Mutex<Option<(bool, String)>>,
}

struct Tables {
    events: ReadOnlyTable<u64, &'static [u8]>,
    seats: ReadOnlyTable<&'static [u8], &'static [u8]>,
    hashes: ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl FileBacking {
    fn new(file: &RedbFile, keys: Option<&FileKeys>) -> FileBacking {
        FileBacking {
            path: file.path().to_owned(),
            tables: Mutex::new(None),
            limit: AtomicU64::new(0),
            tags_below: AtomicU64::new(0),
            row_key: keys.map(|keys| keys.row.clone()),
            failure: Mutex::new(None),
        }
    }

    fn usable(&self) -> bool {
        self.lock_tables().is_some()
    }

    fn lock_tables(&self) -> std::sync::MutexGuard<'_, Option<Tables>> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_limit(&self, limit: u64, tags_below: u64) {
        self.limit.store(limit, Ordering::Release);
        self.tags_below.store(tags_below, Ordering::Release);
    }

    /// Reads a fresh snapshot of the file, answering for positions below
    /// `limit`; with `own_rows`, every row below it is this member's.
    fn refresh(&self, file: &RedbFile, limit: u64, own_rows: bool) -> Result<(), Error> {
        self.refresh_from(&file.begin_read()?, limit, own_rows)
    }

    /// [`Self::refresh`] from the snapshot `txn`.
    fn refresh_from(&self, txn: &ReadTransaction, limit: u64, own_rows: bool) -> Result<(), Error> {
        let tables = Tables {
            events: txn.open_table(EVENTS).map_err(StoreError::from)?,
            seats: txn.open_table(SEATS).map_err(StoreError::from)?,
            hashes: txn.open_table(HASHES).map_err(StoreError::from)?,
        };
        *self.lock_tables() = Some(tables);
        self.limit.store(limit, Ordering::Release);
        if own_rows && self.row_key.is_some() {
            self.tags_below.store(limit, Ordering::Release);
        }
        Ok(())
    }

    fn fail(&self, tampered: bool, detail: &str) {
        let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        failure.get_or_insert_with(|| (tampered, detail.to_owned()));
    }

    fn limit(&self) -> u64 {
        self.limit.load(Ordering::Acquire)
    }

    /// Checks a row of the event `hash` that names `position`: its tag,
    /// where the member vouched for the rows; elsewhere, that the event at
    /// `position` is `hash` (the row may be one a full verification has
    /// not reached yet, and its position made up).
    ///
    /// The event's place is checked under the tag too: a row the member
    /// tagged in another copy of its file (a backup it wrote on later, a
    /// copy it restored) checks under its key, and may name another event
    /// at that position. `at`: where the caller read the event itself.
    fn row_checks(
        &self,
        position: u64,
        hash: &[u8],
        key: &[u8],
        value: &[u8],
        at: Option<u64>,
    ) -> bool {
        let placed = match at {
            Some(at) => at == position,
            None => self.is_at(position, hash),
        };
        let Some(row_key) = self
            .row_key
            .as_ref()
            .filter(|_| position < self.tags_below.load(Ordering::Acquire))
        else {
            return placed;
        };
        let Some((body, tag)) = value.split_at_checked(value.len().saturating_sub(ROW_TAG_LEN))
        else {
            return false;
        };
        placed && row_tag(row_key, key, body)[..] == *tag
    }

    /// Whether the event stored at `position` is `hash`.
    fn is_at(&self, position: u64, hash: &[u8]) -> bool {
        let record = self.read(|tables| {
            Ok(tables
                .events
                .get(position)?
                .map(|record| record.value().to_vec()))
        });
        match record.flatten() {
            Some(record) => record
                .split_at_checked(crate::signature::SIGNATURE_LEN)
                .is_some_and(|(_, event)| crate::event::event_hash(event).as_bytes()[..] == *hash),
            None => false,
        }
    }

    fn parse_seat(&self, key: &[u8], value: &[u8], at: Option<u64>) -> Option<SeatRow> {
        let malformed = || {
            self.fail(true, "a seat row is malformed");
            None
        };
        let Some((position, rest)) = value.split_first_chunk::<8>() else {
            return malformed();
        };
        let Some((&flag, rest)) = rest.split_first() else {
            return malformed();
        };
        let Some((record, rest)) = rest.split_first_chunk::<RECORD_DIGEST_LEN>() else {
            return malformed();
        };
        let Some((epochs, _tag)) = rest.split_at_checked(rest.len().saturating_sub(ROW_TAG_LEN))
        else {
            return malformed();
        };
        if rest.len() < ROW_TAG_LEN || epochs.len() % 32 != 0 {
            return malformed();
        }
        let position = u64::from_be_bytes(*position);
        if position >= self.limit() {
            return None;
        }
        if !self.row_checks(position, key.get(24..)?, key, value, at) {
            self.fail(true, "a seat row does not check");
            return None;
        }
        let enabled = match flag {
            0 => false,
            1 => true,
            _ => return malformed(),
        };
        let acknowledged = epochs
            .chunks_exact(32)
            .map(|chunk| EventHash::from_bytes(chunk.try_into().unwrap_or([0; 32])))
            .collect();
        Some(SeatRow {
            position,
            enabled,
            acknowledged,
            record: *record,
        })
    }

    fn read<T>(&self, read: impl FnOnce(&Tables) -> Result<T, redb::StorageError>) -> Option<T> {
        let tables = self.lock_tables();
        let tables = tables.as_ref()?;
        let read =
            guarded(|| read(tables).map_err(|error| StoreError::Redb(Box::new(error.into()))));
        match read {
            Ok(value) => Some(value),
            Err(StoreError::Corrupt { detail }) => {
                self.fail(true, &detail);
                None
            }
            Err(error) => {
                self.fail(false, &error.to_string());
                None
            }
        }
    }

    /// The event at `position`, decoded and checked against its seat row:
    /// the row names that position, and the record's digest, signature
    /// included.
    fn checked_record(&self, position: u64, record: &[u8]) -> Option<SignedEvent> {
        let Ok(signed) = SignedEvent::from_record(record) else {
            self.fail(true, "a stored event does not decode");
            return None;
        };
        let event = signed.event();
        match self.seat_row_at(event.author, event.seq, signed.hash(), Some(position)) {
            Some(row) if row.record == record_digest(record) => Some(signed),
            _ => {
                self.fail(true, "a stored event is not the one its rows name");
                None
            }
        }
    }

    /// The seat row of an event, checked; `at`: where the caller read the
    /// event. A seat row without its hash row is a row deleted.
    fn seat_row_at(
        &self,
        author: MemberId,
        seq: u64,
        hash: EventHash,
        at: Option<u64>,
    ) -> Option<SeatRow> {
        let key = seat_key(author, seq, hash);
        let value = self.read(|tables| {
            Ok(tables
                .seats
                .get(&key[..])?
                .map(|value| value.value().to_vec()))
        })??;
        let row = self.parse_seat(&key, &value, at)?;
        let listed = self.read(|tables| {
            Ok(tables
                .hashes
                .get(&hash.as_bytes()[..])?
                .map(|value| value.value().get(..8).map(<[u8]>::to_vec)))
        })?;
        if listed.flatten().as_deref() != Some(&row.position.to_be_bytes()[..]) {
            self.fail(true, "an event's hash row is missing or differs");
            return None;
        }
        Some(row)
    }
}

impl Backing for FileBacking {
    fn len(&self) -> u64 {
        self.limit()
    }

    fn seat_row(&self, author: MemberId, seq: u64, hash: EventHash) -> Option<SeatRow> {
        self.seat_row_at(author, seq, hash, None)
    }

    fn seat(&self, author: MemberId, seq: u64) -> Vec<EventHash> {
        let from = seat_key(author, seq, EventHash::from_bytes([0; 32]));
        let to = seat_key(author, seq, EventHash::from_bytes([0xff; 32]));
        let rows = self
            .read(|tables| {
                tables
                    .seats
                    .range(&from[..]..=&to[..])?
                    .map(|row| {
                        row.map(|(key, value)| (key.value().to_vec(), value.value().to_vec()))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap_or_default();
        rows.into_iter()
            .filter_map(|(key, value)| {
                self.parse_seat(&key, &value, None)?;
                let hash: [u8; 32] = key.get(24..)?.try_into().ok()?;
                Some(EventHash::from_bytes(hash))
            })
            .collect()
    }

    fn position(&self, hash: EventHash) -> Option<u64> {
        let value = self.read(|tables| {
            Ok(tables
                .hashes
                .get(&hash.as_bytes()[..])?
                .map(|value| value.value().to_vec()))
        })??;
        let position = u64::from_be_bytes(value.get(..8)?.try_into().ok()?);
        if value.len() != 8 + ROW_TAG_LEN {
            self.fail(true, "a hash row is malformed");
            return None;
        }
        if position >= self.limit() {
            return None;
        }
        if !self.row_checks(position, hash.as_bytes(), hash.as_bytes(), &value, None) {
            self.fail(true, "a hash row does not check");
            return None;
        }
        Some(position)
    }

    fn record_at(&self, position: u64) -> Option<SignedEvent> {
        if position >= self.limit() {
            return None;
        }
        let record = self.read(|tables| {
            Ok(tables
                .events
                .get(position)?
                .map(|record| record.value().to_vec()))
        })?;
        let Some(record) = record else {
            self.fail(true, "an event the rows name is missing");
            return None;
        };
        self.checked_record(position, &record)
    }

    fn records(&self, from: u64, to: u64) -> Vec<SignedEvent> {
        let to = to.min(self.limit());
        let rows = self
            .read(|tables| {
                tables
                    .events
                    .range(from..to)?
                    .map(|row| {
                        row.map(|(position, record)| (position.value(), record.value().to_vec()))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap_or_default();
        let mut records = Vec::with_capacity(rows.len());
        for (expected, (position, record)) in (from..).zip(rows) {
            if position != expected {
                self.fail(true, "events are not numbered from 0 without gaps");
                break;
            }
            match self.checked_record(position, &record) {
                Some(signed) => records.push(signed),
                None => break,
            }
        }
        records
    }

    fn for_each_hash(&self, each: &mut dyn FnMut(EventHash)) {
        let limit = self.limit();
        let mut after: Option<[u8; 32]> = None;
        let mut seen = 0u64;
        loop {
            let run = self
                .read(|tables| {
                    let range = match &after {
                        Some(after) => tables.hashes.range::<&[u8]>((
                            std::ops::Bound::Excluded(&after[..]),
                            std::ops::Bound::Unbounded,
                        ))?,
                        None => tables.hashes.range::<&[u8]>(..)?,
                    };
                    range
                        .take(4096)
                        .map(|row| {
                            row.map(|(key, value)| (key.value().to_vec(), value.value().to_vec()))
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .unwrap_or_default();
            let Some((last, _)) = run.last() else {
                break;
            };
            after = last.as_slice().try_into().ok();
            for (key, value) in run {
                let Ok(hash) = <[u8; 32]>::try_from(key.as_slice()) else {
                    self.fail(true, "a hash row is malformed");
                    return;
                };
                let hash = EventHash::from_bytes(hash);
                let Some(position) = value
                    .get(..8)
                    .and_then(|p| p.try_into().ok())
                    .map(u64::from_be_bytes)
                else {
                    self.fail(true, "a hash row is malformed");
                    return;
                };
                if position >= limit {
                    continue;
                }
                // Every row was checked against its event by the full
                // verification, or carries the member's tag.
                if self.row_key.is_some()
                    && position < self.tags_below.load(Ordering::Acquire)
                    && !self.row_checks(position, &key, &key, &value, Some(position))
                {
                    self.fail(true, "a hash row does not check");
                    return;
                }
                seen += 1;
                each(hash);
            }
            if after.is_none() {
                break;
            }
        }
        if seen != limit {
            self.fail(true, "the file's hash rows are not one for each event");
        }
    }

    fn lost_row(&self, author: MemberId, seq: u64) {
        self.fail(
            true,
            &format!("no row for position {seq} of {author}'s feed, which holds an event there"),
        );
    }

    fn failure(&self) -> Option<Error> {
        let failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        failure.as_ref().map(|(tampered, detail)| {
            if *tampered {
                StoreError::Tampered {
                    path: self.path.clone(),
                    detail: detail.clone(),
                }
                .into()
            } else {
                StoreError::Io {
                    path: self.path.clone(),
                    source: std::io::Error::other(detail.clone()),
                }
                .into()
            }
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// SPEC.md §9.7's vector, as this build writes it (the prose's own
    /// recomputation is `tests/spec_vectors.rs`'s).
    #[test]
    fn rows_and_checkpoints_are_written_as_the_spec_vector_says() {
        let spec = include_str!("../SPEC.md");
        let begin = "<!-- file-vector:begin -->\n```text\n";
        let start = spec.find(begin).expect("file vector") + begin.len();
        let end = spec[start..].find("```").expect("its end") + start;
        let vector: BTreeMap<&str, Vec<u8>> = spec[start..end]
            .lines()
            .filter_map(|line| line.split_once(": "))
            .map(|(name, value)| (name, hex::decode(value).expect("hex")))
            .collect();
        let seed = &vector["seed"];
        let keys = FileKeys {
            member: MemberId::from_bytes([0x44; 16]),
            row: Zeroizing::new(blake3::derive_key(crate::labels::FILE_ROW_TAG, seed)),
            checkpoint: Zeroizing::new(blake3::derive_key(
                crate::labels::FILE_CHECKPOINT_TAG,
                seed,
            )),
        };
        let (key, value) = seat_row(
            Some(&keys.row),
            MemberId::from_bytes([0x11; 16]),
            7,
            EventHash::from_bytes([0x22; 32]),
            42,
            true,
            &[EventHash::from_bytes([0x33; 32])],
            b"a stored record",
        );
        assert_eq!(key.to_vec(), vector["seat key"]);
        assert_eq!(value, vector["seat value"]);
        let hash = hash_row(Some(&keys.row), EventHash::from_bytes([0x22; 32]), 42);
        assert_eq!(hash, vector["hash value"]);
        let mut rotations = RotationsDigest::default();
        rotations.add(EventHash::from_bytes([0x55; 32]));
        let checkpoint = Checkpoint {
            events: 3,
            rotations: rotations.count(),
            rotations_digest: rotations.digest(),
            heads: vec![(
                MemberId::from_bytes([0x11; 16]),
                2,
                EventHash::from_bytes([0x66; 32]),
            )],
            forks: Vec::new(),
            left_out: Vec::new(),
        };
        let bytes = checkpoint.encode(&keys);
        assert_eq!(bytes, vector["checkpoint"]);
        assert_eq!(Checkpoint::decode(&bytes, &keys), Ok(checkpoint));
    }
}
