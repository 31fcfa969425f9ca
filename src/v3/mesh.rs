//! The v3 engine: a mesh on a redb file (SPEC-v3.md).
//!
//! Data flows one way: a call makes and signs an event, the ledger verifies
//! it into a proof, the store writes it with its projection rows in one
//! transaction, and only then does the in-memory state take it. Open, join
//! and ingest all go through the same verification, once per event.

use std::path::Path;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::batch::Batch;
use super::error::MeshError;
use super::event::{Body, Change, SignedEvent};
use super::feeds::EventStatus;
pub(crate) use super::frontier::Frontier;
use super::graph::Resolution;
use super::store::Store;
use super::verify::{Ledger, Verdict};
use crate::envelope::EpochSecret;
use crate::ids::{EventHash, GroupId, MemberId, StateDigest};
use crate::keys::LocalKeys;
use crate::redb_file::RedbFile;

/// Seed and clock, for reproducible tests; the defaults are the operating
/// system's generator and clock.
#[derive(Default)]
pub(crate) struct Settings {
    pub(crate) seed: Option<[u8; 32]>,
    pub(crate) clock: Option<Box<dyn FnMut() -> u64 + Send>>,
}

/// What [`Mesh3::ingest`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ingested {
    /// Events new to this mesh.
    pub(crate) added: usize,
    /// Events it held already.
    pub(crate) known: usize,
    /// Whether the mesh now needs a merge (SPEC-v3.md §5.5).
    pub(crate) needs_merge: bool,
}

/// A v3 mesh on a file.
pub(crate) struct Mesh3 {
    store: Store,
    ledger: Ledger,
    keys: Option<LocalKeys>,
    rng: StdRng,
    clock: Box<dyn FnMut() -> u64 + Send>,
    read_only: bool,
}

fn system_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

fn rng_from(seed: Option<[u8; 32]>) -> StdRng {
    match seed {
        Some(seed) => StdRng::from_seed(seed),
        None => rand::make_rng(),
    }
}

/// The local keys, if the mesh may write with them.
fn writer(keys: &Option<LocalKeys>, read_only: bool) -> Result<&LocalKeys, MeshError> {
    match keys {
        Some(keys) if !read_only => Ok(keys),
        _ => Err(MeshError::ReadOnly),
    }
}

impl Mesh3 {
    fn with(
        store: Store,
        ledger: Ledger,
        keys: Option<LocalKeys>,
        rng: StdRng,
        clock: Option<Box<dyn FnMut() -> u64 + Send>>,
    ) -> Mesh3 {
        Mesh3 {
            read_only: store.file().is_private_copy(),
            store,
            ledger,
            keys,
            rng,
            clock: clock.unwrap_or_else(|| Box::new(system_time)),
        }
    }

    /// Founds a mesh in a new file. The genesis is made and verified before
    /// the file is created, so a refused create leaves no file.
    pub(crate) fn create(
        path: &Path,
        keys: LocalKeys,
        group_name: &str,
        mut settings: Settings,
    ) -> Result<Mesh3, MeshError> {
        let mut rng = rng_from(settings.seed);
        let time = settings
            .clock
            .as_mut()
            .map_or_else(system_time, |clock| clock());
        let (ledger, _) = Ledger::create(&keys, group_name, time, &mut rng)?;
        let store = Store::create(path, &ledger)?;
        Ok(Mesh3::with(store, ledger, Some(keys), rng, settings.clock))
    }

    /// Opens a file, verifying every event and projection.
    pub(crate) fn open(
        path: &Path,
        keys: LocalKeys,
        settings: Settings,
    ) -> Result<Mesh3, MeshError> {
        let (store, ledger) = Store::open(RedbFile::open(path)?)?;
        let rng = rng_from(settings.seed);
        Ok(Mesh3::with(store, ledger, Some(keys), rng, settings.clock))
    }

    /// Opens a file without ever writing to it (a private copy).
    pub(crate) fn open_read_only(path: &Path) -> Result<Mesh3, MeshError> {
        let (store, ledger) = Store::open(RedbFile::open_read_only(path)?)?;
        Ok(Mesh3::with(store, ledger, None, rng_from(None), None))
    }

    /// Makes a new peer's file from records that hold the genesis, in any
    /// order; every record is verified first, and the header's group must
    /// be the genesis's. On any failure no file is created.
    pub(crate) fn join(
        path: &Path,
        keys: LocalKeys,
        group: GroupId,
        records: &[Vec<u8>],
        settings: Settings,
    ) -> Result<Mesh3, MeshError> {
        let genesis = records
            .iter()
            .filter_map(|record| SignedEvent::from_record(record).ok())
            .find(|event| matches!(event.event().body, Body::Genesis { .. }))
            .ok_or(MeshError::NoGenesis)?;
        let mut ledger = Ledger::found(genesis)?;
        if ledger.group() != group {
            return Err(MeshError::ForeignBatch {
                ours: ledger.group(),
                theirs: group,
            });
        }
        ledger.take_all(records)?;
        let store = Store::create(path, &ledger)?;
        let rng = rng_from(settings.seed);
        Ok(Mesh3::with(store, ledger, Some(keys), rng, settings.clock))
    }

    pub(crate) fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub(crate) fn resolution(&self) -> &Resolution {
        self.ledger.resolution()
    }

    pub(crate) fn digest(&self) -> StateDigest {
        self.ledger.digest()
    }

    /// Verifies, writes and takes one event made here: the file first, so
    /// that what the state holds is always on disk.
    fn add(&mut self, signed: SignedEvent) -> Result<EventHash, MeshError> {
        let hash = signed.hash();
        match self.ledger.verify(signed)? {
            Verdict::Verified(verified) => {
                let record = verified.signed().clone();
                if changes_projections(&record) {
                    let mut next = self.ledger.clone();
                    next.commit(*verified);
                    self.store.append(&[&record], Some(&next))?;
                    self.ledger = next;
                } else {
                    // An app event or a posted package changes no projection
                    // row: no copy of the state, no resolution.
                    self.store.append(&[&record], None)?;
                    self.ledger.commit(*verified);
                }
                Ok(hash)
            }
            Verdict::Known => Ok(hash),
            Verdict::Missing(first) => Err(MeshError::Incomplete {
                count: 1,
                waiting: hash,
                first,
            }),
        }
    }

    fn write_under_epoch(
        &mut self,
        body: impl FnOnce(EventHash) -> Body,
    ) -> Result<EventHash, MeshError> {
        let keys = writer(&self.keys, self.read_only)?;
        let epoch =
            epoch_to_write(&self.ledger, keys.member_id()).ok_or(MeshError::WaitsForMerge)?;
        let time = (self.clock)();
        let signed = self.ledger.sign_next(keys, time, body(epoch));
        self.add(signed)
    }

    /// Turns the local member's flag on or off.
    pub(crate) fn set_enabled(&mut self, enabled: bool) -> Result<EventHash, MeshError> {
        self.write_under_epoch(|epoch| Body::SetEnabled { epoch, enabled })
    }

    /// Appends an application record.
    pub(crate) fn append_app(
        &mut self,
        kind: &str,
        payload: &[u8],
    ) -> Result<EventHash, MeshError> {
        self.write_under_epoch(|epoch| Body::App {
            epoch,
            kind: kind.to_owned(),
            payload: payload.to_vec(),
        })
    }

    /// Rotates on the local frontier with `changes` (any order).
    pub(crate) fn rotate(
        &mut self,
        mut changes: Vec<Change>,
        reason: &str,
    ) -> Result<EventHash, MeshError> {
        let keys = writer(&self.keys, self.read_only)?;
        changes.sort_by_key(Change::member);
        let time = (self.clock)();
        let signed = self
            .ledger
            .make_rotation(keys, changes, reason, time, &mut self.rng)?;
        self.add(signed)
    }

    /// Merges the frontier if the mesh needs a merge; `None` if it does not.
    pub(crate) fn merge(&mut self) -> Result<Option<EventHash>, MeshError> {
        if !self.resolution().needs_merge() {
            return Ok(None);
        }
        self.rotate(Vec::new(), "merge").map(Some)
    }

    /// The secret of `epoch`, as the local member recovers it.
    pub(crate) fn epoch_secret(&self, epoch: EventHash) -> Result<EpochSecret, MeshError> {
        let keys = self.keys.as_ref().ok_or(MeshError::ReadOnly)?;
        Ok(self.ledger.epoch_secret(epoch, keys)?)
    }

    /// What this mesh holds, for a peer to send what it lacks.
    pub(crate) fn frontier(&self) -> Frontier {
        self.ledger.frontier()
    }

    /// Every record a peer with `frontier` may lack, in an order in which
    /// each comes after what it names (SPEC-v3.md §7).
    pub(crate) fn export(&self, frontier: &Frontier) -> Vec<Vec<u8>> {
        self.ledger
            .missing_for(frontier)
            .into_iter()
            .map(SignedEvent::to_record)
            .collect()
    }

    /// A batch for a peer with `frontier`.
    pub(crate) fn export_batch(&self, frontier: &Frontier) -> Batch {
        Batch::new(self.ledger.group(), self.export(frontier))
    }

    /// Takes a peer's batch ([`Self::ingest`]); it must be of this group.
    pub(crate) fn ingest_batch(&mut self, batch: &Batch) -> Result<Ingested, MeshError> {
        if batch.group() != self.ledger.group() {
            return Err(MeshError::ForeignBatch {
                ours: self.ledger.group(),
                theirs: batch.group(),
            });
        }
        self.ingest(batch.records())
    }

    /// Checks that this file still holds a state recorded from it earlier
    /// (its frontier then): append-only, for an auditor (SPEC-v3.md §9).
    pub(crate) fn expect(&self, checkpoint: &Frontier) -> Result<(), MeshError> {
        let missing = self.ledger.missing_heads(checkpoint);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(MeshError::RolledBack { missing })
        }
    }

    /// Every event in the order the file holds them, with its status under
    /// the current resolution (SPEC-v3.md §6.2).
    pub(crate) fn log(&self) -> impl Iterator<Item = (&SignedEvent, Option<EventStatus>)> {
        let state = self.ledger.state();
        let resolution = self.ledger.resolution();
        self.ledger
            .records()
            .map(move |record| (record, state.status(record.hash(), resolution)))
    }

    /// Writes a copy of this mesh to a new file at `path`: the same events
    /// in the same order, and the projections they imply.
    pub(crate) fn backup(&self, path: &Path) -> Result<(), MeshError> {
        Store::create(path, &self.ledger).map(drop)
    }

    /// Takes a peer's records, in any order: all are verified (on a copy of
    /// the state) before any is written, and one invalid record refuses the
    /// whole batch. The new ones are written in one transaction.
    pub(crate) fn ingest(&mut self, records: &[Vec<u8>]) -> Result<Ingested, MeshError> {
        if self.read_only {
            return Err(MeshError::ReadOnly);
        }
        let mut next = self.ledger.clone();
        let before = next.len();
        let known = next.take_all(records)?;
        let new: Vec<SignedEvent> = next.records().skip(before).cloned().collect();
        if !new.is_empty() {
            let refs: Vec<&SignedEvent> = new.iter().collect();
            self.store.append(&refs, Some(&next))?;
        }
        self.ledger = next;
        Ok(Ingested {
            added: new.len(),
            known,
            needs_merge: self.resolution().needs_merge(),
        })
    }
}

/// The epoch `member` writes under now (SPEC-v3.md §5.5): the writer epoch,
/// or, if its feed has moved past that one (§4.3), the smallest-hash other
/// tip whose members are all in `R*` and whose roster holds it. `None`: it
/// waits for a merge.
pub(crate) fn epoch_to_write(ledger: &Ledger, member: MemberId) -> Option<EventHash> {
    let state = ledger.state();
    let graph = state.graph();
    let resolution = ledger.resolution();
    let (_, _, acknowledged) = state.next_position(member);
    let writable = |epoch: &EventHash| {
        !acknowledged
            .iter()
            .any(|known| graph.is_ancestor(*epoch, *known))
            && graph.own_roster(*epoch).is_some_and(|roster| {
                roster.get(member).is_some() && roster.ids_within(&resolution.roster)
            })
    };
    resolution
        .writer
        .filter(writable)
        .or_else(|| resolution.tips.iter().copied().find(writable))
}

/// Whether taking `record` changes a projection row (SPEC-v3.md §9).
fn changes_projections(record: &SignedEvent) -> bool {
    !matches!(record.event().body, Body::App { .. } | Body::Keys { .. })
}

#[cfg(test)]
mod files;
#[cfg(test)]
mod tests;
