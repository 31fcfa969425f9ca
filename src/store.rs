//! The redb file: tables, transactions, and open-time verification (SPEC.md §8).
//!
//! The `events` table is the chain: `seq → signature || event bytes`, the
//! exact bytes that were signed, never a redb-encoded tuple. Every other table
//! is a projection, written by [`projection_rows`] in the same transaction as
//! the event it follows from. Opening replays the chain through the reducer,
//! rebuilds every projection row with the same function, and requires the
//! stored tables to hold exactly those rows.

use std::collections::BTreeMap;

use rayon::prelude::*;
use std::path::{Path, PathBuf};

use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};

use crate::chain::{SignedEvent, record_hash};
use crate::error::{Error, Mismatch, StoreError};
use crate::event::{Body, RosterEntry};
use crate::hash_index::{HashIndex, IndexEntry};
use crate::ids::{EventHash, MemberId, SigningPublicKey};
use crate::labels::STORE_FORMAT;
use crate::redb_file::RedbFile;
use crate::reducer::{self, Rejection, Rule};
use crate::state::{Accepted, EpochRecord, Head, Identity, MeshState, Transition};

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// Evidence of equivocation, kept outside the chain: `be64(seq) || their hash`
/// → postcard `(our record, their record)`.
const EQUIVOCATIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("equivocations");

/// The projection tables, all `bytes → bytes` so that open-time verification
/// can compare them row by row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Projection {
    /// `meta`: `"format"`, `"identity"`, `"head"`.
    Meta,
    /// `epochs`: be64 epoch → postcard [`EpochInfo`].
    Epochs,
    /// `roster`: be64 epoch || member id → postcard [`RosterEntry`].
    Roster,
    /// `wraps`: be64 epoch || member id → ciphertext || tag.
    Wraps,
    /// `enabled`: member id → one byte, 0 or 1.
    Enabled,
}

impl Projection {
    const ALL: [Projection; 5] = [
        Projection::Meta,
        Projection::Epochs,
        Projection::Roster,
        Projection::Wraps,
        Projection::Enabled,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Projection::Meta => "meta",
            Projection::Epochs => "epochs",
            Projection::Roster => "roster",
            Projection::Wraps => "wraps",
            Projection::Enabled => "enabled",
        }
    }

    fn table(self) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
        TableDefinition::new(self.name())
    }
}

const META_FORMAT: &[u8] = b"format";
const META_IDENTITY: &[u8] = b"identity";
const META_HEAD: &[u8] = b"head";

/// An epoch's row in `epochs`: everything but the roster and the wrapped copies.
#[derive(serde::Serialize)]
struct EpochInfo<'a> {
    seq: u64,
    author: MemberId,
    time: u64,
    reason: &'a str,
    ephemeral: crate::ids::DhPublicKey,
    commitment: crate::ids::SecretCommitment,
    members: u64,
}

/// One change to a projection table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RowOp {
    Put(Projection, Vec<u8>, Vec<u8>),
    Delete(Projection, Vec<u8>),
}

use crate::codec::encode;

fn epoch_member_key(epoch: u64, member: MemberId) -> Vec<u8> {
    let mut key = Vec::with_capacity(24);
    key.extend_from_slice(&epoch.to_be_bytes());
    key.extend_from_slice(member.as_bytes());
    key
}

/// One projection row: a key and a value. Every row of every projection
/// table is made by one of the `*_row` functions below, whether it is being
/// written after an event or expected from a state on open.
type Row = (Vec<u8>, Vec<u8>);

fn head_row(head: &Head) -> Row {
    (META_HEAD.to_vec(), encode(head))
}

fn identity_row(identity: &Identity) -> Row {
    (META_IDENTITY.to_vec(), encode(identity))
}

fn format_row() -> Row {
    (META_FORMAT.to_vec(), STORE_FORMAT.to_be_bytes().to_vec())
}

fn enabled_row(member: MemberId, enabled: bool) -> Row {
    (member.as_bytes().to_vec(), vec![u8::from(enabled)])
}

fn epoch_info_row(epoch: &EpochRecord) -> Row {
    let info = EpochInfo {
        seq: epoch.seq,
        author: epoch.author,
        time: epoch.time,
        reason: &epoch.reason,
        ephemeral: epoch.envelope.ephemeral,
        commitment: epoch.envelope.commitment,
        members: epoch.roster.len() as u64,
    };
    (epoch.epoch.to_be_bytes().to_vec(), encode(&info))
}

fn roster_rows(epoch: &EpochRecord) -> impl Iterator<Item = Row> + '_ {
    epoch.roster.iter().map(|entry| {
        (
            epoch_member_key(epoch.epoch, entry.id),
            encode::<RosterEntry>(entry),
        )
    })
}

fn wrap_rows(epoch: &EpochRecord) -> impl Iterator<Item = Row> + '_ {
    epoch.envelope.wrapped.iter().map(|copy| {
        let mut value = copy.ciphertext.to_vec();
        value.extend_from_slice(&copy.tag);
        (epoch_member_key(epoch.epoch, copy.member), value)
    })
}

/// The projection rows an accepted event writes, given the state before it.
pub(crate) fn projection_rows(before: &MeshState, accepted: &Accepted) -> Vec<RowOp> {
    let put = |projection, (key, value): Row| RowOp::Put(projection, key, value);
    let mut rows = vec![put(Projection::Meta, head_row(&accepted.head))];
    match &accepted.transition {
        Transition::Genesis { identity, epoch } => {
            rows.push(put(Projection::Meta, identity_row(identity)));
            epoch_rows(epoch, &mut rows);
            for entry in &epoch.roster {
                rows.push(put(Projection::Enabled, enabled_row(entry.id, false)));
            }
        }
        Transition::Rotate(epoch) => {
            epoch_rows(epoch, &mut rows);
            for member in before.enabled.keys() {
                if epoch.member(*member).is_none() {
                    rows.push(RowOp::Delete(
                        Projection::Enabled,
                        member.as_bytes().to_vec(),
                    ));
                }
            }
            for entry in &epoch.roster {
                if !before.enabled.contains_key(&entry.id) {
                    rows.push(put(Projection::Enabled, enabled_row(entry.id, false)));
                }
            }
        }
        Transition::SetEnabled { member, enabled } => {
            rows.push(put(Projection::Enabled, enabled_row(*member, *enabled)));
        }
        Transition::App => {}
    }
    rows
}

fn epoch_rows(epoch: &EpochRecord, rows: &mut Vec<RowOp>) {
    let put = |projection, (key, value): Row| RowOp::Put(projection, key, value);
    rows.push(put(Projection::Epochs, epoch_info_row(epoch)));
    rows.extend(roster_rows(epoch).map(|row| put(Projection::Roster, row)));
    rows.extend(wrap_rows(epoch).map(|row| put(Projection::Wraps, row)));
}

/// Every row a projection table must hold for `state`, in key order.
fn expected_rows(state: &MeshState, projection: Projection) -> Box<dyn Iterator<Item = Row> + '_> {
    match projection {
        // "format" < "head" < "identity".
        Projection::Meta => Box::new(
            std::iter::once(format_row())
                .chain(state.head().as_ref().map(head_row))
                .chain(state.identity().map(identity_row)),
        ),
        Projection::Epochs => Box::new(state.epochs().iter().map(epoch_info_row)),
        Projection::Roster => Box::new(state.epochs().iter().flat_map(roster_rows)),
        Projection::Wraps => Box::new(state.epochs().iter().flat_map(wrap_rows)),
        Projection::Enabled => Box::new(
            state
                .enabled_flags()
                .iter()
                .map(|(member, enabled)| enabled_row(*member, *enabled)),
        ),
    }
}

/// An open meshlog file.
pub(crate) struct Store {
    file: RedbFile,
    /// Every stored event's hash, built by [`Store::load`] and extended by
    /// each commit.
    index: HashIndex,
}

/// How an open went, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// The file asked for.
    pub path: PathBuf,
    /// Whether the file was opened without write access.
    pub read_only: bool,
    /// Whether the file had not been closed cleanly (a copy of a live file, a
    /// crashed writer), so that its private temporary copy was recovered
    /// before verification. The original is untouched either way: read-only
    /// opens always work on a private copy.
    pub verified_private_copy: bool,
    /// Number of events verified.
    pub events: u64,
}

impl Store {
    /// Creates a new file; refuses to touch an existing one.
    pub(crate) fn create(path: &Path) -> Result<Store, StoreError> {
        Ok(Store::on(RedbFile::create(path)?))
    }

    /// Opens an existing file for reading and writing.
    pub(crate) fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Store::on(RedbFile::open(path)?))
    }

    /// Opens a file without ever writing to it ([`RedbFile::open_read_only`]).
    pub(crate) fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        Ok(Store::on(RedbFile::open_read_only(path)?))
    }

    fn on(file: RedbFile) -> Store {
        Store {
            file,
            index: HashIndex::default(),
        }
    }

    /// Whether the file had not been closed cleanly, so that its private copy
    /// had to be recovered before it could be read.
    pub(crate) fn recovered(&self) -> bool {
        self.file.recovered()
    }

    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }

    pub(crate) fn is_private_copy(&self) -> bool {
        self.file.is_private_copy()
    }

    /// Closes and deletes a file this process has just created, after a
    /// refused first write: a refused create or join leaves no file.
    pub(crate) fn discard(self) {
        self.file.discard();
    }

    fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        self.file.begin_read()
    }

    fn begin_write(&self) -> Result<WriteTransaction, Error> {
        self.file.begin_write()
    }

    /// Writes the first events and the format marker, creating every table,
    /// in one transaction.
    pub(crate) fn initialise(&mut self, events: &[Prepared]) -> Result<(), Error> {
        let txn = self.begin_write()?;
        for projection in Projection::ALL {
            txn.open_table(projection.table())
                .map_err(StoreError::from)?;
        }
        txn.open_table(EQUIVOCATIONS).map_err(StoreError::from)?;
        txn.open_table(Projection::Meta.table())
            .map_err(StoreError::from)?
            .insert(format_row().0.as_slice(), format_row().1.as_slice())
            .map_err(StoreError::from)?;
        write_events(&txn, events)?;
        txn.commit().map_err(StoreError::from)?;
        // A new file: its events go into the compact part of the index.
        self.index = HashIndex::build(
            events
                .iter()
                .map(|prepared| IndexEntry::new(prepared.event.hash(), prepared.event.event().seq))
                .collect(),
        );
        Ok(())
    }

    /// Appends accepted events and their projection rows in one durable
    /// transaction: all of them with their projections, or nothing. The
    /// stored head must still be `expected_head` (compare-and-swap), so a
    /// writer that worked from a stale view cannot append.
    pub(crate) fn append(
        &mut self,
        expected_head: Option<Head>,
        events: &[Prepared],
    ) -> Result<(), Error> {
        let txn = self.begin_write()?;
        {
            let meta = txn
                .open_table(Projection::Meta.table())
                .map_err(StoreError::from)?;
            let stored = meta.get(META_HEAD).map_err(StoreError::from)?;
            let stored = stored.map(|head| head.value().to_vec());
            if stored != expected_head.as_ref().map(encode) {
                return Err(Error::StaleHead {
                    expected: expected_head.map(|head| head.hash),
                });
            }
        }
        write_events(&txn, events)?;
        txn.commit().map_err(StoreError::from)?;
        self.index_committed(events);
        Ok(())
    }

    fn index_committed(&mut self, events: &[Prepared]) {
        for prepared in events {
            let event = &prepared.event;
            self.index.insert(event.hash(), event.event().seq);
        }
    }

    /// Keeps two signed events by one author at one seq, outside the chain.
    pub(crate) fn record_equivocation(
        &self,
        seq: u64,
        ours: &SignedEvent,
        theirs: &SignedEvent,
    ) -> Result<(), Error> {
        let txn = self.begin_write()?;
        {
            let mut table = txn.open_table(EQUIVOCATIONS).map_err(StoreError::from)?;
            let mut key = seq.to_be_bytes().to_vec();
            key.extend_from_slice(theirs.hash().as_bytes());
            let value = encode(&(ours.to_record(), theirs.to_record()));
            table
                .insert(key.as_slice(), value.as_slice())
                .map_err(StoreError::from)?;
        }
        txn.commit().map_err(StoreError::from)?;
        Ok(())
    }

    /// Every equivocation kept as evidence, by seq.
    pub(crate) fn equivocations(&self) -> Result<Vec<Equivocation>, Error> {
        let txn = self.begin_read()?;
        let table = match txn.open_table(EQUIVOCATIONS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::from(e).into()),
        };
        let mut found = Vec::new();
        for row in table.iter().map_err(StoreError::from)? {
            let (key, value) = row.map_err(StoreError::from)?;
            found.push(decode_evidence(key.value(), value.value())?);
        }
        Ok(found)
    }

    /// Reads the whole chain through the reducer, checks every stored
    /// projection row against the rebuilt ones, and returns the state.
    pub(crate) fn load(&mut self) -> Result<MeshState, Error> {
        let txn = self.begin_read()?;
        let not_meshlog = |detail: &str| StoreError::NotMeshlog {
            path: self.file.path().to_owned(),
            detail: detail.to_owned(),
        };
        let meta = match txn.open_table(Projection::Meta.table()) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => {
                return Err(not_meshlog("no meshlog tables").into());
            }
            Err(e) => return Err(StoreError::from(e).into()),
        };
        let format = meta
            .get(META_FORMAT)
            .map_err(StoreError::from)?
            .ok_or_else(|| not_meshlog("no format marker"))?;
        let format = <[u8; 2]>::try_from(format.value())
            .map(u16::from_be_bytes)
            .map_err(|_| not_meshlog("bad format marker"))?;
        if format > STORE_FORMAT {
            return Err(StoreError::NewerFormat {
                path: self.file.path().to_owned(),
                found: format,
                supported: STORE_FORMAT,
            }
            .into());
        }
        if format == 1 {
            return Err(not_meshlog(
                "store format 1: a development format from before this build's, which it does not read",
            )
            .into());
        }
        if format != STORE_FORMAT {
            return Err(not_meshlog("unknown format marker").into());
        }
        drop(meta);

        let events = txn.open_table(EVENTS).map_err(|e| match e {
            redb::TableError::TableDoesNotExist(_) => not_meshlog("no events table"),
            e => StoreError::from(e),
        })?;
        let evidence = self.equivocations()?;
        let mut replay = Replay::new(MeshState::default(), &evidence);
        // The chain is streamed in chunks: each is decoded and hashed in
        // parallel, checked in order by the reducer with signatures deferred,
        // and its signatures are then verified in parallel.
        let rows = events.iter().map_err(StoreError::from)?.map(|row| {
            let (key, value) = row.map_err(StoreError::from)?;
            Ok((key.value(), value.value().to_vec()))
        });
        replay.feed(rows)?;
        let Replay {
            state,
            index,
            mut evidence,
        } = replay;
        if state.is_empty() {
            return Err(not_meshlog("the chain is empty").into());
        }
        if let Some(proof) = evidence.next() {
            return Err(StoreError::BadEvidence {
                key: format!("{}", proof.seq),
                detail: "evidence for a seq beyond the head".into(),
            }
            .into());
        }
        compare_projections(&txn, &state)?;
        self.index = HashIndex::build(index);
        Ok(state)
    }

    /// The stored event at `seq`, strictly decoded (not re-verified: the chain
    /// was verified when the store was opened).
    pub(crate) fn event(&self, seq: u64) -> Result<Option<SignedEvent>, Error> {
        let txn = self.begin_read()?;
        let events = txn.open_table(EVENTS).map_err(StoreError::from)?;
        let Some(record) = events.get(seq).map_err(StoreError::from)? else {
            return Ok(None);
        };
        let record = record.value();
        SignedEvent::from_record(record).map(Some).map_err(|e| {
            Rejection {
                seq,
                hash: record_hash(record),
                rule: Rule::Malformed(e),
            }
            .into()
        })
    }

    /// The seq of the stored event with `hash`, if there is one.
    pub(crate) fn find(&self, hash: EventHash) -> Result<Option<u64>, Error> {
        for candidate in self.index.candidates(hash) {
            if self
                .event(candidate)?
                .is_some_and(|event| event.hash() == hash)
            {
                return Ok(Some(candidate));
            }
        }
        Ok(None)
    }

    /// Visits stored events from `from` on, in order, until `visit` returns false.
    pub(crate) fn for_each_event(
        &self,
        from: u64,
        mut visit: impl FnMut(SignedEvent) -> Result<bool, Error>,
    ) -> Result<(), Error> {
        let txn = self.begin_read()?;
        let events = txn.open_table(EVENTS).map_err(StoreError::from)?;
        for row in events.range(from..).map_err(StoreError::from)? {
            let (key, value) = row.map_err(StoreError::from)?;
            let record = value.value();
            let event = SignedEvent::from_record(record).map_err(|e| Rejection {
                seq: key.value(),
                hash: record_hash(record),
                rule: Rule::Malformed(e),
            })?;
            if !visit(event)? {
                break;
            }
        }
        Ok(())
    }

    /// Writes a consistent copy of every table to a new file at `out`, from
    /// one read transaction, while this store stays open.
    pub(crate) fn backup(&self, out: &Path) -> Result<(), Error> {
        let target = Store::create(out)?;
        let source = self.begin_read()?;
        let txn = target.begin_write()?;
        {
            let from = source.open_table(EVENTS).map_err(StoreError::from)?;
            let mut to = txn.open_table(EVENTS).map_err(StoreError::from)?;
            for row in from.iter().map_err(StoreError::from)? {
                let (key, value) = row.map_err(StoreError::from)?;
                to.insert(key.value(), value.value())
                    .map_err(StoreError::from)?;
            }
            let tables = Projection::ALL
                .iter()
                .map(|projection| projection.table())
                .chain([EQUIVOCATIONS]);
            for table in tables {
                let from = match source.open_table(table) {
                    Ok(from) => from,
                    Err(redb::TableError::TableDoesNotExist(_)) => continue,
                    Err(e) => return Err(StoreError::from(e).into()),
                };
                let mut to = txn.open_table(table).map_err(StoreError::from)?;
                for row in from.iter().map_err(StoreError::from)? {
                    let (key, value) = row.map_err(StoreError::from)?;
                    to.insert(key.value(), value.value())
                        .map_err(StoreError::from)?;
                }
            }
        }
        txn.commit().map_err(StoreError::from)?;
        Ok(())
    }
}

/// Events verified per chunk when a chain is replayed on open.
const VERIFY_CHUNK: usize = 4096;
/// A chunk also ends once its records reach this many bytes, so that two
/// chunks in flight stay small whatever the records' sizes.
const VERIFY_CHUNK_BYTES: usize = 32 << 20;

/// The replay of a stored chain on open.
pub(crate) struct Replay<'a> {
    state: MeshState,
    /// Every replayed event's hash, for [`Store::find`].
    index: Vec<IndexEntry>,
    evidence: std::iter::Peekable<std::slice::Iter<'a, Equivocation>>,
}

impl<'a> Replay<'a> {
    /// A replay that continues from `state`, checking `evidence` on the way.
    pub(crate) fn new(state: MeshState, evidence: &'a [Equivocation]) -> Replay<'a> {
        Replay {
            state,
            index: Vec::new(),
            evidence: evidence.iter().peekable(),
        }
    }

    /// Verifies records at consecutive positions, every rule and signature,
    /// in chunks, and returns the state after them.
    pub(crate) fn verify_all<'r>(
        mut self,
        records: impl IntoIterator<Item = (u64, &'r [u8])>,
    ) -> Result<MeshState, Error> {
        self.feed(
            records
                .into_iter()
                .map(|(seq, record)| Ok((seq, record.to_vec()))),
        )?;
        Ok(self.state)
    }

    /// Verifies records, read as they come, in chunks of [`VERIFY_CHUNK`].
    ///
    /// The signatures of one chunk are verified on other threads while the
    /// next chunk is read and reduced, and the verdict is still the in-order
    /// one: a bad signature in a chunk wins over anything found after it.
    fn feed(
        &mut self,
        mut records: impl Iterator<Item = Result<(u64, Vec<u8>), Error>>,
    ) -> Result<(), Error> {
        std::thread::scope(|scope| {
            let mut in_flight: Option<std::thread::ScopedJoinHandle<'_, Option<Rejection>>> = None;
            let mut chunk = Vec::with_capacity(VERIFY_CHUNK);
            loop {
                chunk.clear();
                let mut read_error = None;
                let mut bytes = 0;
                while chunk.len() < VERIFY_CHUNK && bytes < VERIFY_CHUNK_BYTES {
                    match records.next() {
                        Some(Ok(record)) => {
                            bytes += record.1.len();
                            chunk.push(record);
                        }
                        Some(Err(error)) => {
                            read_error = Some(error);
                            break;
                        }
                        None => break,
                    }
                }
                let (unverified, failure) = self.reduce_chunk(&chunk);
                if let Some(verifying) = in_flight.take() {
                    let verdict = verifying
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                    if let Some(bad_signature) = verdict {
                        return Err(bad_signature.into());
                    }
                }
                let later = match (failure, read_error) {
                    (Some(failure), _) => Some(failure),
                    (None, Some(error)) => Some(error),
                    (None, None) if chunk.is_empty() => return Ok(()),
                    (None, None) => None,
                };
                match later {
                    // Only events before the failure were deferred, so a bad
                    // signature among them comes first.
                    Some(error) => return Err(unverified.verify().map_or(error, Error::from)),
                    None => {
                        let unverified = std::sync::Arc::new(unverified);
                        let for_thread = std::sync::Arc::clone(&unverified);
                        let spawned = std::thread::Builder::new()
                            .name("meshlog-verify".into())
                            .spawn_scoped(scope, move || for_thread.verify());
                        match spawned {
                            Ok(verifying) => in_flight = Some(verifying),
                            // No thread to spare: verify here, in order all the same.
                            Err(_) => {
                                if let Some(bad_signature) = unverified.verify() {
                                    return Err(bad_signature.into());
                                }
                            }
                        }
                    }
                }
            }
        })
    }

    /// Checks one chunk of stored records in order, every rule but R10, and
    /// applies the events that pass; their signatures are left to verify.
    ///
    /// With the signatures, this gives the verdict the reducer gives event by
    /// event: the rejection of the first event that breaks a rule, with R10 in
    /// its place (an event failing another rule is re-checked whole,
    /// signature included, and returned as the failure).
    fn reduce_chunk(&mut self, chunk: &[(u64, Vec<u8>)]) -> (Unverified, Option<Error>) {
        let decoded: Vec<_> = chunk
            .par_iter()
            .map(|(stored_at, record)| {
                SignedEvent::from_record(record).map_err(|e| Rejection {
                    seq: *stored_at,
                    hash: record_hash(record),
                    rule: Rule::Malformed(e),
                })
            })
            .collect();
        let mut unverified = Unverified {
            signed: Vec::with_capacity(chunk.len()),
        };
        for ((stored_at, record), event) in chunk.iter().zip(decoded) {
            let stored_at = *stored_at;
            // Evidence is checked against the state its events claim to
            // follow: both must be valid there, or it proves nothing.
            while let Some(proof) = self.evidence.next_if(|proof| proof.seq == stored_at) {
                for event in [&proof.ours, &proof.theirs] {
                    if let Err(rejection) = reducer::check(&self.state, event) {
                        let error = StoreError::BadEvidence {
                            key: format!("{stored_at}"),
                            detail: format!("an event is not valid at its seq: {rejection}"),
                        };
                        return (unverified, Some(error.into()));
                    }
                }
            }
            if stored_at != self.state.len() {
                let rejection = Rejection {
                    seq: stored_at,
                    hash: record_hash(record),
                    rule: Rule::SeqNotNext {
                        expected: self.state.len(),
                        found: stored_at,
                    },
                };
                return (unverified, Some(rejection.into()));
            }
            let event = match event {
                Ok(event) => event,
                Err(rejection) => return (unverified, Some(rejection.into())),
            };
            // The genesis and rotations are checked whole, signature first:
            // deferred, a forged rotation would have every new key of its
            // roster checked (up to 10,000 point decompressions) before its
            // signature. They are rare, so this costs little.
            let checked = match event.event().body {
                Body::Genesis(_) | Body::Rotate(_) => {
                    reducer::check(&self.state, &event).map(|accepted| (accepted, None))
                }
                // A failing event is re-checked whole for the exact verdict,
                // with R10 in its place.
                _ => reducer::check_deferring_signature(&self.state, &event)
                    .map(|(accepted, key)| (accepted, Some(key)))
                    .or_else(|_| {
                        reducer::check(&self.state, &event).map(|accepted| (accepted, None))
                    }),
            };
            match checked {
                Ok((accepted, key)) => {
                    self.index.push(IndexEntry::new(event.hash(), stored_at));
                    self.state.apply(accepted);
                    if let Some(key) = key {
                        unverified.signed.push((stored_at, event, key));
                    }
                }
                // The state is still the one before this event. Name the
                // position the event was found at: that is where an auditor
                // looks.
                Err(rejection) => {
                    let failure = Rejection {
                        seq: stored_at,
                        ..rejection
                    };
                    return (unverified, Some(failure.into()));
                }
            }
        }
        (unverified, None)
    }
}

/// Events of a chunk that passed every rule but R10, in order, with the key
/// each signature must verify under.
struct Unverified {
    signed: Vec<(u64, SignedEvent, SigningPublicKey)>,
}

impl Unverified {
    /// The rejection of the first event whose signature does not verify.
    fn verify(&self) -> Option<Rejection> {
        let checks: Vec<_> = self
            .signed
            .iter()
            .map(|(_, event, key)| (event, *key))
            .collect();
        let bad = crate::chain::first_bad_signature(&checks)?;
        let (stored_at, event, _) = self.signed.get(bad)?;
        Some(Rejection {
            seq: *stored_at,
            hash: event.hash(),
            rule: Rule::BadSignature {
                author: event.event().author,
            },
        })
    }
}

type ProjectionTable<'txn> = redb::Table<'txn, &'static [u8], &'static [u8]>;

/// An accepted event with the projection rows it writes.
pub(crate) struct Prepared {
    pub(crate) event: SignedEvent,
    pub(crate) rows: Vec<RowOp>,
}

impl Prepared {
    /// Checks `event` against `state` and, if accepted, applies it and
    /// returns it with its rows.
    pub(crate) fn accept(state: &mut MeshState, event: SignedEvent) -> Result<Prepared, Rejection> {
        let accepted = reducer::check(state, &event)?;
        let rows = projection_rows(state, &accepted);
        state.apply(accepted);
        Ok(Prepared { event, rows })
    }
}

/// Writes events and their projection rows, opening each table once.
fn write_events(txn: &WriteTransaction, events: &[Prepared]) -> Result<(), StoreError> {
    let mut chain = txn.open_table(EVENTS)?;
    // Within one transaction only the last write of a projection row counts
    // (a batch of app events rewrites `meta/head` once per event), and rows
    // written in key order land in the same leaf pages one after another.
    let mut rows: BTreeMap<(Projection, &[u8]), Option<&[u8]>> = BTreeMap::new();
    for prepared in events {
        chain.insert(
            prepared.event.event().seq,
            prepared.event.to_record().as_slice(),
        )?;
        for op in &prepared.rows {
            match op {
                RowOp::Put(projection, key, value) => {
                    rows.insert((*projection, key), Some(value));
                }
                RowOp::Delete(projection, key) => {
                    rows.insert((*projection, key), None);
                }
            }
        }
    }
    let mut open: Option<(Projection, ProjectionTable<'_>)> = None;
    for ((projection, key), value) in rows {
        let table = match &mut open {
            Some((current, table)) if *current == projection => table,
            _ => {
                open = None;
                &mut open
                    .insert((projection, txn.open_table(projection.table())?))
                    .1
            }
        };
        match value {
            Some(value) => {
                table.insert(key, value)?;
            }
            None => {
                table.remove(key)?;
            }
        }
    }
    Ok(())
}

/// Two valid events by one author at one seq: proof that the author signed
/// two histories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equivocation {
    /// The seq both claim.
    pub seq: u64,
    /// The event this chain holds.
    pub ours: SignedEvent,
    /// The conflicting event a peer sent.
    pub theirs: SignedEvent,
}

impl Equivocation {
    /// The member who signed both events.
    pub fn author(&self) -> MemberId {
        self.ours.event().author
    }
}

fn decode_evidence(key: &[u8], value: &[u8]) -> Result<Equivocation, StoreError> {
    let bad = |detail: &str| StoreError::BadEvidence {
        key: hex::encode(key),
        detail: detail.to_owned(),
    };
    let seq = key
        .first_chunk::<8>()
        .map(|seq| u64::from_be_bytes(*seq))
        .ok_or_else(|| bad("short key"))?;
    let (records, rest) =
        postcard::take_from_bytes::<(Vec<u8>, Vec<u8>)>(value).map_err(|_| bad("undecodable"))?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes"));
    }
    let ours = SignedEvent::from_record(&records.0).map_err(|_| bad("our event is malformed"))?;
    let theirs =
        SignedEvent::from_record(&records.1).map_err(|_| bad("their event is malformed"))?;
    let consistent = ours.event().seq == seq
        && theirs.event().seq == seq
        && ours.event().author == theirs.event().author
        && ours.hash() != theirs.hash()
        && key.get(8..) == Some(theirs.hash().as_bytes().as_slice());
    if !consistent {
        return Err(bad(
            "the two events are not one author's two events at this seq",
        ));
    }
    Ok(Equivocation { seq, ours, theirs })
}

/// Requires each projection table to hold exactly the expected rows.
fn compare_projections(txn: &ReadTransaction, state: &MeshState) -> Result<(), StoreError> {
    for projection in Projection::ALL {
        let table = txn.open_table(projection.table())?;
        let mut wanted = expected_rows(state, projection).peekable();
        let mismatch = |key: &[u8], problem| StoreError::ProjectionMismatch {
            table: projection.name(),
            key: hex::encode(key),
            problem,
        };
        for row in table.iter()? {
            let (key, value) = row?;
            let (key, value) = (key.value(), value.value());
            match wanted.peek() {
                Some((want_key, _)) if want_key.as_slice() < key => {
                    return Err(mismatch(want_key, Mismatch::Missing));
                }
                Some((want_key, want_value)) if want_key.as_slice() == key => {
                    if want_value.as_slice() != value {
                        return Err(mismatch(key, Mismatch::Differs));
                    }
                    wanted.next();
                }
                _ => return Err(mismatch(key, Mismatch::Unexpected)),
            }
        }
        if let Some((key, _)) = wanted.next() {
            return Err(mismatch(&key, Mismatch::Missing));
        }
    }
    Ok(())
}

impl StoreError {
    /// The name of the table a projection mismatch is in, if it is one.
    pub fn table(&self) -> Option<&'static str> {
        match self {
            StoreError::ProjectionMismatch { table, .. } => Some(table),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::MeshOptions;
    use crate::keys::LocalKeys;

    /// Two events whose hashes share their first 8 bytes: `find` must place
    /// each, and refuse a third hash with the same prefix.
    #[test]
    fn find_confirms_every_candidate_of_a_shared_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("find.redb");
        let keys = LocalKeys::from_secret_bytes(&[1; 32], &[101; 32]);
        let mut mesh = MeshOptions::new()
            .insecure_seed([1; 32])
            .create(&path, keys, "find")
            .unwrap();
        mesh.set_enabled(true).unwrap();
        let first = mesh.append_app("a", b"a").unwrap();
        let second = mesh.append_app("b", b"b").unwrap();
        drop(mesh);

        let mut store = Store::open(&path).unwrap();
        store.load().unwrap();
        assert_eq!(store.find(second.hash).unwrap(), Some(second.seq));
        // As if `first`'s hash started like `second`'s.
        store.index = HashIndex::default();
        store.index.insert(second.hash, first.seq);
        store.index.insert(second.hash, second.seq);
        assert_eq!(store.find(second.hash).unwrap(), Some(second.seq));
        let mut same_prefix = *second.hash.as_bytes();
        same_prefix[31] ^= 1;
        assert_eq!(
            store.find(EventHash::from_bytes(same_prefix)).unwrap(),
            None
        );
    }
}
