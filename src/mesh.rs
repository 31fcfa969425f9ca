//! [`Mesh`]: the public handle on one redb file. Open, write, sync, query.
//!
//! Data flows one way: a call makes and signs an event, the ledger checks
//! it into a proof (comparing its signer's key rather than verifying the
//! signature it just made, SPEC.md §8), the store writes it with its projection rows in one
//! transaction, and only then does the in-memory state take it. Open, join
//! and ingest all go through the same verification, once per event.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::batch::Batch;
use crate::envelope::EpochSecret;
use crate::error::{Error, Result, StoreError};
use crate::event::{Body, Change, SignedEvent, SignedPackage, UnsignedEvent};
use crate::feed_mark::{self, Mark};
use crate::feeds::{Equivocation, EventStatus};
use crate::frontier::Frontier;
use crate::graph::{Resolution, Role, Roster, Status};
use crate::ids::{EventHash, GroupId, MemberId, StateDigest};
use crate::journal::{self, Journal};
use crate::keys::LocalKeys;
use crate::redb_file::RedbFile;
use crate::store::{OpenAs, Store};
use crate::verify::{Ledger, MadeHere, Verdict};

type Clock = Box<dyn FnMut() -> u64 + Send>;

/// How far a verifying open is: events verified, of how many.
type ProgressHook = Box<dyn Fn(u64, u64) + Send + Sync>;

/// How to make a [`Mesh`]: where randomness and time come from, and what
/// guards the local member's feed against honest accidents.
///
/// The defaults are the operating system's generator and clock, a copy
/// that only its own member writes on (SPEC.md §9.1), and no feed mark
/// (§11.2). Tests seed both, which makes every byte of a mesh reproducible.
#[derive(Default)]
pub struct MeshOptions {
    seed: Option<[u8; 32]>,
    clock: Option<Clock>,
    shared_copy: bool,
    feed_mark: Option<PathBuf>,
    accept_restored_copy: bool,
    verify_everything: bool,
    progress: Option<ProgressHook>,
}

impl std::fmt::Debug for MeshOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshOptions")
            .field("seeded", &self.seed.is_some())
            .field("custom_clock", &self.clock.is_some())
            .field("shared_copy", &self.shared_copy)
            .field("feed_mark", &self.feed_mark)
            .field("accept_restored_copy", &self.accept_restored_copy)
            .field("verify_everything", &self.verify_everything)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl MeshOptions {
    /// The defaults.
    pub fn new() -> MeshOptions {
        MeshOptions::default()
    }

    /// Draws secrets and ephemeral keys from a `StdRng` seeded with `seed`.
    /// For tests and test vectors only: a known seed means known secrets.
    pub fn insecure_seed(mut self, seed: [u8; 32]) -> MeshOptions {
        self.seed = Some(seed);
        self
    }

    /// Takes the time events claim (unix seconds) from `clock`.
    pub fn clock(mut self, clock: impl FnMut() -> u64 + Send + 'static) -> MeshOptions {
        self.clock = Some(Box::new(clock));
        self
    }

    /// Lets a writable open take keys of another member than the one whose
    /// copy the file is (SPEC.md §9.1), for a copy deliberately shared by
    /// several members. Without it, [`MeshOptions::open`] refuses such keys
    /// ([`Error::ForeignCopy`]): their events would go into a copy their
    /// member does not keep, and its next write on its own copy would fork
    /// its feed. A shared open leaves the member the file names as it is,
    /// and names none in a file that names none.
    pub fn shared_copy(mut self, shared: bool) -> MeshOptions {
        self.shared_copy = shared;
        self
    }

    /// Keeps the local member's feed mark in the file at `path` (beside its
    /// key file: [`crate::feed_mark_path`], SPEC.md §11.2). Writes of the
    /// local member are then refused ([`Error::CopyBehindFeed`]) while the
    /// copy lacks the newest event of its feed that the mark names, as a
    /// copy restored from an older backup does; an ingest that brings the
    /// event back lifts the refusal. A checkpoint, [`Mesh::close`] and a
    /// drop record the member's newest event in the mark.
    pub fn feed_mark(mut self, path: impl Into<PathBuf>) -> MeshOptions {
        self.feed_mark = Some(path.into());
        self
    }

    /// Writes even on a copy that lacks the event the feed mark names: for
    /// a member whose newer events are lost and reached no peer, so that no
    /// one will hold the other branch of its feed (SPEC.md §11.2).
    pub fn accept_restored_copy(mut self, accept: bool) -> MeshOptions {
        self.accept_restored_copy = accept;
        self
    }

    /// Makes an open with the keys of the member whose copy the file is
    /// (writable, or read-only with keys) verify every event of the file, as
    /// an auditor's does, rather than only those its checkpoint does not
    /// cover (SPEC.md §9.7). Without it, that member reopens its file in
    /// time proportional to what is new since its last write; anyone
    /// else's open verifies everything anyway.
    pub fn verify_everything(mut self, everything: bool) -> MeshOptions {
        self.verify_everything = everything;
        self
    }

    /// Calls `progress(verified, total)` as an open verifies the file's
    /// events, after each run of them (SPEC.md §9.3): for a progress bar.
    /// `total` counts the events to verify, which for the member's own open
    /// are only those its checkpoint does not cover.
    pub fn progress(mut self, progress: impl Fn(u64, u64) + Send + Sync + 'static) -> MeshOptions {
        self.progress = Some(Box::new(progress));
        self
    }

    /// The feed mark a mesh of `ledger` keeps, and the mark it awaits.
    fn feed_mark_state(&self, ledger: &Ledger) -> Result<Option<FeedMark>> {
        let Some(path) = &self.feed_mark else {
            return Ok(None);
        };
        let awaited = match self.accept_restored_copy {
            true => None,
            false => feed_mark::read(path)?
                .get(&ledger.group())
                .copied()
                .filter(|mark| !ledger.contains(mark.event)),
        };
        Ok(Some(FeedMark {
            path: path.clone(),
            awaited,
            unrecorded: false,
        }))
    }

    /// Founds a group in a new file at `path`: the genesis makes `keys` its
    /// first owner, and the file is `keys`' member's copy (SPEC.md §9.1).
    /// The genesis is made and verified before the file is created, so a
    /// refused create leaves no file. Refuses an existing file.
    pub fn create(
        mut self,
        path: impl AsRef<Path>,
        keys: LocalKeys,
        group_name: &str,
    ) -> Result<Mesh> {
        let mut rng = rng_from(self.seed);
        let time = self
            .clock
            .as_mut()
            .map_or_else(system_time, |clock| clock());
        let (ledger, _) =
            Ledger::create(&keys, group_name, time, &mut rng).map_err(Error::Refused)?;
        let feed_mark = self.feed_mark_state(&ledger)?;
        let (store, journal) = create_file(path.as_ref(), &ledger, &keys)?;
        let mut mesh = Mesh::with(store, journal, ledger, Some(keys), rng, self.clock);
        mesh.feed_mark = feed_mark;
        Ok(mesh)
    }

    /// Opens an existing file with the local member's keys, verifying every
    /// event and projection (SPEC.md §9). The keys must be those of the
    /// member whose copy the file is (§9.1), unless the copy is shared
    /// ([`MeshOptions::shared_copy`]); a file that names no member yet
    /// becomes the copy of the keys' member with its next write.
    pub fn open(self, path: impl AsRef<Path>, keys: LocalKeys) -> Result<Mesh> {
        let path = path.as_ref();
        // Keys of another member than the file's owner are refused there,
        // before the journal is read or started and before any event is
        // made: no event and no journal byte is written.
        let who = OpenAs::Member {
            keys: keys.file_keys(),
            shared: self.shared_copy,
            full: self.verify_everything,
        };
        // The member's own copy needs no integrity check of every page: its
        // checkpoint and tags vouch for what it reads (SPEC.md §9.7).
        let check_pages = self.verify_everything || self.shared_copy;
        let (mut store, mut ledger) = Store::open(
            RedbFile::open(path, check_pages)?,
            who,
            self.progress.as_deref(),
        )?;
        let member = keys.member_id();
        if store.owner().is_none() && !self.shared_copy {
            store.adopt(member);
        }
        // Events a crash left in the journal go into the file first, through
        // the same verification as everything else (SPEC.md §9.6).
        let journal_path = journal::path_beside(path);
        let replayed = replay_journal(&journal_path, &mut ledger, store.len(), Some(&keys))?;
        if replayed.awaiting {
            // Starting the journal over would lose an acknowledged event.
            return Err(StoreError::JournalAwaitsSignature { path: journal_path }.into());
        }
        let unreplayed = replayed.unreplayed;
        let replayed = replayed.events;
        if !replayed.is_empty() {
            let refs: Vec<&SignedEvent> = replayed.iter().collect();
            store.append(&refs, &ledger)?;
        }
        // After the replay: the events a crash left in the journal count as
        // held, so that the mark never blocks the write after a crash.
        let feed_mark = self.feed_mark_state(&ledger)?;
        // Starting over would destroy what could not be replayed: the
        // journal is kept under another name, for whoever can recover it.
        let set_aside = if unreplayed.events > 0 {
            Some(journal::set_aside(&journal_path)?)
        } else {
            None
        };
        let journal = Journal::start(&journal_path, ledger.group(), store.len(), &keys)?;
        let mut mesh = Mesh::with(
            store,
            Some(journal),
            ledger,
            Some(keys),
            rng_from(self.seed),
            self.clock,
        );
        mesh.journaled = replayed.len();
        mesh.feed_mark = feed_mark;
        mesh.unreplayed = unreplayed;
        mesh.journal_set_aside = set_aside;
        Ok(mesh)
    }

    /// Opens a file without ever writing to it, verifying it as
    /// [`MeshOptions::open`] does, with the local member's keys if given (to
    /// recover epoch secrets from a file that must stay untouched). Writes
    /// refuse with [`Error::ReadOnly`].
    pub fn open_read_only(self, path: impl AsRef<Path>, keys: Option<LocalKeys>) -> Result<Mesh> {
        let path = path.as_ref();
        let journal_path = journal::path_beside(path);
        let mut attempts = 0;
        let (store, ledger, replayed) = loop {
            let who = match &keys {
                Some(keys) => OpenAs::Reader {
                    keys: keys.file_keys(),
                    full: self.verify_everything,
                },
                None => OpenAs::Auditor,
            };
            let (store, mut ledger) = Store::open(
                RedbFile::open_read_only(path)?,
                who,
                self.progress.as_deref(),
            )?;
            // A live writer may have checkpointed between the snapshot and
            // the journal read: then the journal continues a later state of
            // the file, and the snapshot is taken again.
            match replay_journal(&journal_path, &mut ledger, store.len(), keys.as_ref()) {
                Err(Error::Store(StoreError::JournalAhead { .. })) if attempts < 8 => {
                    attempts += 1;
                }
                replayed => break (store, ledger, replayed?),
            }
        };
        let mut mesh = Mesh::with(store, None, ledger, keys, rng_from(self.seed), self.clock);
        mesh.read_only = true;
        mesh.journaled = replayed.events.len();
        mesh.awaiting_signature = usize::from(replayed.awaiting);
        mesh.unreplayed = replayed.unreplayed;
        Ok(mesh)
    }

    /// Makes a new peer's file from a batch that holds the genesis, its
    /// records in any order. Every record is verified first, and the
    /// header's group must be the genesis's (SPEC.md §7); on any failure no
    /// file is created. Records a peer may leave out (SPEC.md §6.4) are not
    /// taken. Keys that no roster lists yet are allowed (an admin
    /// may add the member later); [`Mesh::epoch_secret`] then refuses.
    /// The file is `keys`' member's copy (SPEC.md §9.1).
    pub fn join(self, path: impl AsRef<Path>, keys: LocalKeys, batch: &Batch) -> Result<Mesh> {
        self.join_leaving_out(path, keys, batch)
            .map(|(mesh, _)| mesh)
    }

    /// [`MeshOptions::join`], returning also the records it left out, for
    /// the next part of a reply (SPEC.md §17.5).
    pub(crate) fn join_leaving_out(
        self,
        path: impl AsRef<Path>,
        keys: LocalKeys,
        batch: &Batch,
    ) -> Result<(Mesh, Vec<Vec<u8>>)> {
        // An empty batch holds no genesis either (SPEC.md §7.3).
        let records = batch.records();
        let genesis = records
            .iter()
            .filter_map(|record| SignedEvent::from_record(record).ok())
            .find(|event| matches!(event.event().body, Body::Genesis { .. }))
            .ok_or(Error::NoGenesis)?;
        let mut ledger = Ledger::found(genesis)?;
        if ledger.group() != batch.group() {
            return Err(Error::ForeignBatch {
                ours: ledger.group(),
                theirs: batch.group(),
            });
        }
        let (_, left_out) = ledger.take_batch_leaving_out(records)?;
        let feed_mark = self.feed_mark_state(&ledger)?;
        let (store, journal) = create_file(path.as_ref(), &ledger, &keys)?;
        let mut mesh = Mesh::with(
            store,
            journal,
            ledger,
            Some(keys),
            rng_from(self.seed),
            self.clock,
        );
        mesh.feed_mark = feed_mark;
        Ok((mesh, left_out))
    }
}

/// What [`Mesh::ingest`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ingested {
    /// Events new to this mesh, now written.
    pub added: usize,
    /// Events it held already.
    pub known: usize,
    /// Valid events not taken, because a peer may leave them out (SPEC.md
    /// §6.4): void rotations of authors absent from the roster, what such
    /// authors wrote on them, and named by nothing else.
    pub left_out: usize,
    /// Whether the mesh now needs a merge (SPEC.md §5.5): an admin's
    /// [`Mesh::merge`] makes one.
    pub needs_merge: bool,
}

/// How a mesh was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenReport {
    /// The file.
    pub path: PathBuf,
    /// Whether the handle never writes.
    pub read_only: bool,
    /// Whether the file was not closed cleanly, so that a private copy of
    /// it was verified and the original left untouched.
    pub verified_private_copy: bool,
    /// Events verified on open, or vouched for by the member's checkpoint.
    pub events: usize,
    /// Of those, events the member's checkpoint vouched for (SPEC.md §9.7),
    /// so that the open did not verify them again: 0 for a full
    /// verification.
    pub checkpointed: usize,
    /// Of those, events found in the journal beside the file, beyond what
    /// the file itself held: written by a writer that crashed (replayed into
    /// the file by a writable open), or by a live writer not yet at its
    /// next checkpoint (SPEC.md §9.6).
    pub journaled: usize,
    /// Events the journal holds whose signatures are not on disk yet, and
    /// which this open could not sign again (0 or 1): the newest event of
    /// a live writer, or of one that crashed, opened without its author's
    /// keys (SPEC.md §9.6). Not among [`OpenReport::events`]; a writable
    /// open with those keys takes it.
    pub awaiting_signature: usize,
    /// Events the journal held and this open could not replay (SPEC.md
    /// §9.6): a damaged frame that other frames follow, so that it was
    /// durable once; an event that does not verify, or that names what
    /// neither the file nor the journal holds (the journal of another copy
    /// of the group, put beside this file); and every event after it. Not
    /// among [`OpenReport::events`]; the file's own events are unaffected.
    pub journal_unreplayed: usize,
    /// Where in the journal the first of
    /// [`OpenReport::journal_unreplayed`] starts (a byte offset).
    pub journal_unreplayed_offset: Option<u64>,
    /// Where a writable open moved a journal it could not replay in full,
    /// before starting a new one, so that nothing it held is destroyed
    /// (SPEC.md §9.6).
    pub journal_set_aside: Option<PathBuf>,
}

/// One rotation (or the genesis) and where it stands in the resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EpochInfo {
    /// The rotation's hash: the epoch's name.
    pub hash: EventHash,
    /// Its author.
    pub author: MemberId,
    /// The rotations it builds on (none for the genesis).
    pub parents: Vec<EventHash>,
    /// Whether it applies in the current resolution (A1–A2, SPEC.md §5.3).
    pub applied: bool,
    /// Positions of its changes that are void (K1–K5), when it applies.
    pub void_changes: Vec<usize>,
    /// How many changes it carries.
    pub changes: usize,
    /// Its own roster: whom its secret is wrapped to.
    pub roster: Roster,
    /// The reason it gives (the group name for the genesis).
    pub reason: String,
    /// Whether it is the genesis.
    pub is_genesis: bool,
}

/// One event of [`Mesh::log`] and its status.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LogEntry<'a> {
    /// The event: borrowed while the mesh holds it in memory, read from the
    /// file otherwise.
    pub event: std::borrow::Cow<'a, SignedEvent>,
    /// Its status in the current resolution (SPEC.md §6.2): `Some` for every
    /// event the mesh holds; a rotation's standing is also in
    /// [`Mesh::epoch`].
    pub status: Option<EventStatus>,
    /// Whether a peer may leave it out (SPEC.md §6.4): a void rotation of
    /// an author absent from `R*`, or written by one on such a rotation,
    /// and named by no event that is not left out. Such an event is not in the digest, not exported, and not
    /// taken by [`Mesh::ingest`]; a file that took it earlier keeps it.
    pub left_out: bool,
}

/// The local member's feed mark, as a mesh keeps it (SPEC.md §11.2).
#[derive(Debug)]
struct FeedMark {
    path: PathBuf,
    /// The newest own event the mark names, while the copy lacks it: the
    /// local member may not write until it holds it.
    awaited: Option<Mark>,
    /// Whether the local member wrote since the mark was last recorded.
    unrecorded: bool,
}

/// A mesh on one redb file: the local member's copy of the group.
pub struct Mesh {
    store: Store,
    /// `None` when the mesh never writes.
    journal: Option<Journal>,
    /// Events the journal holds and the file does not yet: the next
    /// checkpoint writes them.
    pending: Vec<SignedEvent>,
    journaled: usize,
    awaiting_signature: usize,
    unreplayed: Unreplayed,
    journal_set_aside: Option<PathBuf>,
    ledger: Ledger,
    keys: Option<LocalKeys>,
    rng: StdRng,
    clock: Clock,
    read_only: bool,
    verified_private_copy: bool,
    opened_with: usize,
    /// The keys sealed messages need, kept in memory only (SPEC.md §16).
    seal_keys: std::sync::Mutex<sealing::SealKeys>,
    /// `None`: no feed mark is kept ([`MeshOptions::feed_mark`]).
    feed_mark: Option<FeedMark>,
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh")
            .field("path", &self.store.file().path())
            .field("group", &self.ledger.group())
            .field("member", &self.member_id())
            .field("events", &self.ledger.len())
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
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
fn writer(keys: &Option<LocalKeys>, read_only: bool) -> Result<&LocalKeys> {
    match keys {
        _ if read_only => Err(Error::ReadOnly),
        Some(keys) => Ok(keys),
        None => Err(Error::NoKeys),
    }
}

impl Mesh {
    fn with(
        store: Store,
        journal: Option<Journal>,
        ledger: Ledger,
        keys: Option<LocalKeys>,
        rng: StdRng,
        clock: Option<Clock>,
    ) -> Mesh {
        let private_copy = store.file().is_private_copy();
        let read_only = store.file().is_read_only();
        let mut mesh = Mesh {
            read_only,
            verified_private_copy: private_copy && store.file().recovered(),
            opened_with: ledger.len(),
            store,
            journal,
            pending: Vec::new(),
            journaled: 0,
            awaiting_signature: 0,
            unreplayed: Unreplayed::default(),
            journal_set_aside: None,
            ledger,
            keys,
            rng,
            clock: clock.unwrap_or_else(|| Box::new(system_time)),
            seal_keys: std::sync::Mutex::default(),
            feed_mark: None,
        };
        mesh.settle();
        mesh
    }

    /// Refuses a write of the local member while the copy lacks the newest
    /// event of its feed that the feed mark names (SPEC.md §11.2). A hash
    /// lookup: it runs before every event made here.
    fn check_feed_mark(&mut self) -> Result<()> {
        let Some(mark) = self.feed_mark.as_mut() else {
            return Ok(());
        };
        if let Some(awaited) = mark.awaited {
            if !self.ledger.contains(awaited.event) {
                return Err(Error::CopyBehindFeed {
                    path: self.store.file().path().to_owned(),
                    member: self.keys.as_ref().map_or(
                        MemberId::from_bytes([0; MemberId::LEN]),
                        LocalKeys::member_id,
                    ),
                    seq: awaited.seq,
                    event: awaited.event,
                    mark: mark.path.clone(),
                });
            }
            // An ingest brought it: the copy is no longer behind.
            mark.awaited = None;
        }
        Ok(())
    }

    /// Records the local member's newest event in the feed mark, if it
    /// wrote since the last record. Once per checkpoint, not per event: the
    /// mark may lag behind the feed after a crash, which only narrows what
    /// it detects, and is never ahead of what the copy holds.
    fn record_feed_mark(&mut self) -> Result<()> {
        let (Some(mark), Some(keys)) = (self.feed_mark.as_mut(), self.keys.as_ref()) else {
            return Ok(());
        };
        if !mark.unrecorded {
            return Ok(());
        }
        let (next, newest, _) = self.ledger.state().next_position(keys.member_id());
        if let Some(seq) = next.checked_sub(1) {
            let newest = Mark { seq, event: newest };
            feed_mark::write(&mark.path, self.ledger.group(), newest)?;
        }
        mark.unrecorded = false;
        Ok(())
    }

    /// Notes that the local member wrote, for the next feed mark record.
    fn wrote_own_events(&mut self) {
        if let Some(mark) = self.feed_mark.as_mut() {
            mark.unrecorded = true;
        }
    }

    /// Founds a group in a new file ([`MeshOptions::create`]).
    pub fn create(path: impl AsRef<Path>, keys: LocalKeys, group_name: &str) -> Result<Mesh> {
        MeshOptions::new().create(path, keys, group_name)
    }

    /// Opens a file with the local member's keys, verifying it
    /// ([`MeshOptions::open`]).
    pub fn open(path: impl AsRef<Path>, keys: LocalKeys) -> Result<Mesh> {
        MeshOptions::new().open(path, keys)
    }

    /// Opens a file for auditing: verified, never written, no keys.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Mesh> {
        MeshOptions::new().open_read_only(path, None)
    }

    /// Makes a new peer's file from a batch ([`MeshOptions::join`]).
    pub fn join(path: impl AsRef<Path>, keys: LocalKeys, batch: &Batch) -> Result<Mesh> {
        MeshOptions::new().join(path, keys, batch)
    }

    #[cfg(test)]
    pub(crate) fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub(crate) fn resolution(&self) -> &Resolution {
        self.ledger.resolution()
    }

    /// How the mesh was opened.
    pub fn report(&self) -> OpenReport {
        OpenReport {
            path: self.store.file().path().to_owned(),
            read_only: self.read_only,
            verified_private_copy: self.verified_private_copy,
            events: self.opened_with,
            checkpointed: self.store.verified().from as usize,
            journaled: self.journaled,
            awaiting_signature: self.awaiting_signature,
            journal_unreplayed: self.unreplayed.events,
            journal_unreplayed_offset: self.unreplayed.offset,
            journal_set_aside: self.journal_set_aside.clone(),
        }
    }

    /// Whether every read of the file since it was opened checked (SPEC.md
    /// §9.7): the mesh reads events it does not hold in memory back from the
    /// file, and checks each row as it reads it. A read that did not check
    /// (a row changed by someone without the member's keys, an I/O error)
    /// fails the operation that made it; a query that cannot fail (the
    /// digest, the log, an event by hash) ends short or answers nothing
    /// instead, and this names the failure. Every operation that writes or
    /// sends fails from then on.
    pub fn check_reads(&self) -> Result<()> {
        match self.ledger.failure() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }

    /// The group's id: the hash of its genesis.
    pub fn group(&self) -> GroupId {
        self.ledger.group()
    }

    /// The group's name, as the genesis gives it.
    pub fn group_name(&self) -> &str {
        self.ledger.group_name()
    }

    /// The founder, the group's first owner.
    pub fn founder(&self) -> MemberId {
        self.ledger.state().graph().founder()
    }

    /// The local member, if the mesh was opened with keys.
    pub fn member_id(&self) -> Option<MemberId> {
        self.keys.as_ref().map(LocalKeys::member_id)
    }

    /// How many events the mesh holds.
    pub fn len(&self) -> usize {
        self.ledger.len()
    }

    /// Whether the mesh holds no event (never: a mesh has its genesis).
    pub fn is_empty(&self) -> bool {
        self.ledger.len() == 0
    }

    /// The state digest: a function of the events held but those left out
    /// (SPEC.md §6.3, §6.4). Peers that hold the same events outside those
    /// left out have the same digest.
    pub fn digest(&self) -> StateDigest {
        self.ledger.digest()
    }

    /// Whether the local member's flag is on (members start disabled).
    pub fn is_enabled(&self) -> bool {
        self.member_id()
            .is_some_and(|member| self.is_member_enabled(member))
    }

    /// Whether `member`'s flag is on; where its feed forked and the heads
    /// disagree, off (SPEC.md §4.4).
    pub fn is_member_enabled(&self, member: MemberId) -> bool {
        self.ledger.state().is_enabled(member)
    }

    /// `R*`: the roster resolved over every applied rotation (SPEC.md §5.5).
    pub fn roster(&self) -> &Roster {
        &self.resolution().roster
    }

    /// The current epoch: the smallest-hash tip whose own roster is `R*`.
    /// `None` while the mesh needs a merge.
    pub fn current_epoch(&self) -> Option<EventHash> {
        self.resolution().current
    }

    /// The epoch writers name now: the current one, or while a merge is
    /// needed, the smallest-hash tip whose members are all in `R*`.
    pub fn writer_epoch(&self) -> Option<EventHash> {
        self.resolution().writer
    }

    /// Whether no tip's own roster is `R*`, so that an admin should merge.
    pub fn needs_merge(&self) -> bool {
        self.resolution().needs_merge()
    }

    /// Applied rotations that no other applied rotation descends from, in
    /// hash order.
    pub fn tips(&self) -> &[EventHash] {
        &self.resolution().tips
    }

    /// Every rotation (the genesis first), in the order the file holds them.
    pub fn epochs(&self) -> Vec<EpochInfo> {
        self.ledger
            .records()
            .filter_map(|record| self.epoch(record.hash()))
            .collect()
    }

    /// The rotation (or genesis) `hash`, if the mesh holds it.
    pub fn epoch(&self, hash: EventHash) -> Option<EpochInfo> {
        let record = self.ledger.record(hash)?;
        let roster = self.ledger.state().graph().own_roster(hash)?.clone();
        let status = self.resolution().statuses.get(&hash);
        let (applied, void_changes) = match status {
            Some(Status::Applied { void_changes }) => (true, void_changes.clone()),
            _ => (false, Vec::new()),
        };
        let event = record.event();
        let (parents, changes, reason, is_genesis) = match &event.body {
            Body::Genesis { group_name, .. } => (Vec::new(), 0, group_name.clone(), true),
            Body::Rotate {
                parents,
                changes,
                reason,
                ..
            } => (parents.clone(), changes.len(), reason.clone(), false),
            _ => return None,
        };
        Some(EpochInfo {
            hash,
            author: event.author,
            parents,
            applied: applied || is_genesis,
            void_changes,
            changes,
            roster,
            reason,
            is_genesis,
        })
    }

    /// The roster the rotation (or genesis) `epoch`'s secret is wrapped to
    /// (SPEC.md §5.2), without the copy [`Mesh::epoch`] makes.
    #[cfg(feature = "net")]
    pub(crate) fn own_roster(&self, epoch: EventHash) -> Option<&Roster> {
        self.ledger.state().graph().own_roster(epoch)
    }

    /// Every pair (or more) of events one author signed at one position of
    /// its feed: evidence, kept (SPEC.md §4.4).
    pub fn equivocations(&self) -> Vec<Equivocation> {
        self.ledger.state().equivocations()
    }

    /// The event `hash`, if the mesh holds it.
    pub fn event(&self, hash: EventHash) -> Option<SignedEvent> {
        self.ledger.record(hash).map(std::borrow::Cow::into_owned)
    }

    /// Every event in the order the file holds them, with its status under
    /// the current resolution (SPEC.md §6.2) and whether a peer may leave
    /// it out (§6.4).
    pub fn log(&self) -> impl Iterator<Item = LogEntry<'_>> {
        self.log_from(0)
    }

    /// [`Mesh::log`] from the event at `position` (0 is the genesis) on:
    /// the events before it are not read, so the newest `n` cost what `n`
    /// cost, whatever the file holds (`meshlog log --tail`).
    pub fn log_from(&self, position: usize) -> impl Iterator<Item = LogEntry<'_>> {
        let state = self.ledger.state();
        let resolution = self.ledger.resolution();
        let left_out = self.ledger.left_out();
        self.ledger
            .records_since(position)
            .map(move |record| LogEntry {
                status: state.status(record.hash(), resolution),
                left_out: left_out.contains(record.hash()),
                event: record,
            })
    }

    /// Verifies, writes and takes one event made here: the file first, so
    /// that what the state holds is always on disk. A rule the event breaks
    /// is the rules refusing the local member: [`Error::Refused`].
    fn add(&mut self, made: MadeHere) -> Result<EventHash> {
        self.check_reads()?;
        let hash = made.hash();
        self.check_feed_mark()?;
        let verdict = self.ledger.verify_made_here(made).map_err(Error::Refused);
        // A row of the file that could not be read may have decided it.
        if let Some(failure) = self.ledger.failure() {
            return Err(failure);
        }
        match verdict? {
            Verdict::Verified(verified) => {
                let journal = self.journal.as_mut().ok_or(Error::ReadOnly)?;
                if journal.is_full() {
                    self.checkpoint()?;
                }
                let journal = self.journal.as_mut().ok_or(Error::ReadOnly)?;
                let keys = writer(&self.keys, self.read_only)?;
                // Nothing goes to the disk that these keys may not sign.
                verified.check_signer(keys).map_err(Error::Refused)?;
                // The event's bytes go to the disk while it is signed here;
                // it is acknowledged once they are durable. Its signature
                // reaches the disk with the next frame, and redb takes it,
                // with the projection rows it implies, at the next
                // checkpoint (SPEC.md §9.6).
                journal.write(verified.unsigned().bytes())?;
                let verified = match verified.finish(keys) {
                    Ok(verified) => verified,
                    Err(rejection) => {
                        journal.abandon();
                        return Err(Error::Refused(rejection));
                    }
                };
                let record = verified.signed().clone();
                if let Err(error) = journal.sync(*record.signature()) {
                    journal.abandon();
                    return Err(error.into());
                }
                self.ledger.commit(verified);
                self.pending.push(record);
                self.wrote_own_events();
                Ok(hash)
            }
            Verdict::Known => Ok(hash),
            Verdict::Missing(first) => Err(Error::Incomplete {
                count: 1,
                waiting: hash,
                first,
            }),
        }
    }

    fn write_under_epoch(&mut self, body: impl FnOnce(EventHash) -> Body) -> Result<EventHash> {
        let keys = writer(&self.keys, self.read_only)?;
        let epoch = self.epoch_for(keys.member_id())?;
        let time = (self.clock)();
        let made = self.ledger.make_next(keys, time, body(epoch));
        self.add(made)
    }

    /// The epoch `member` writes under now, or why there is none.
    fn epoch_for(&self, member: MemberId) -> Result<EventHash> {
        epoch_to_write(&self.ledger, member).ok_or_else(|| {
            if self.roster().contains(member) {
                Error::WaitsForMerge
            } else {
                Error::NotInRoster { member }
            }
        })
    }

    /// Turns the local member's flag on or off. A disabled member may only
    /// enable itself (F5). A flag names the writer epoch when it can, and
    /// otherwise any epoch whose own roster holds the member (F3, F4), so
    /// that a disabled admin can turn itself on, and then merge, while the
    /// mesh waits for a merge.
    pub fn set_enabled(&mut self, enabled: bool) -> Result<EventHash> {
        let keys = writer(&self.keys, self.read_only)?;
        let member = keys.member_id();
        // A member outside `R*` has nothing to turn on or off.
        let epoch = match epoch_for_flag(&self.ledger, member) {
            Some(epoch) if self.roster().contains(member) => epoch,
            _ => self.epoch_for(member)?,
        };
        let time = (self.clock)();
        let made = self
            .ledger
            .make_next(keys, time, Body::SetEnabled { epoch, enabled });
        self.add(made)
    }

    /// Appends an application record under the writer epoch.
    pub fn append_app(&mut self, kind: &str, payload: &[u8]) -> Result<EventHash> {
        self.write_under_epoch(|epoch| Body::App {
            epoch,
            kind: kind.to_owned(),
            payload: payload.to_vec(),
        })
    }

    /// Appends many application records in one transaction: all are made,
    /// signed and verified first, then written together, or none is.
    /// Returns their hashes in order.
    pub fn append_apps<'a>(
        &mut self,
        records: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Vec<EventHash>> {
        let keys = writer(&self.keys, self.read_only)?;
        let epoch = self.epoch_for(keys.member_id())?;
        let (mut seq, mut prev, _) = self.ledger.state().next_position(keys.member_id());
        let mut made: Vec<Vec<u8>> = Vec::new();
        let mut hashes = Vec::new();
        for (kind, payload) in records {
            let time = (self.clock)();
            let body = Body::App {
                epoch,
                kind: kind.to_owned(),
                payload: payload.to_vec(),
            };
            // Checked with the others, signatures included, below.
            let signed = self
                .ledger
                .unsigned_at(keys.member_id(), seq, prev, time, body)
                .sign(keys);
            (seq, prev) = (seq.saturating_add(1), signed.hash());
            hashes.push(signed.hash());
            made.push(signed.to_record());
        }
        if made.is_empty() {
            return Ok(hashes);
        }
        self.check_feed_mark()?;
        // Verified together, signatures in parallel batches; a rule broken
        // is the rules refusing the local member.
        self.take_and_write(&made).map_err(|error| match error {
            Error::Rejected(rejection) => Error::Refused(rejection),
            other => other,
        })?;
        self.wrote_own_events();
        Ok(hashes)
    }

    /// Posts a newer package of the local member's own in its feed; any
    /// admin's next rotation carries it into the roster (SPEC.md §5.4).
    pub fn post_package(&mut self, package: SignedPackage) -> Result<EventHash> {
        self.write_under_epoch(|epoch| Body::Keys { epoch, package })
    }

    /// Rotates with `changes` (any order; at most one a member), naming
    /// every tip (SPEC.md §5.1): a fresh secret wrapped to the rotation's
    /// own roster, which is then `R*`. With more tips than one rotation
    /// names, a rotation with changes is refused ([`Error::MergeFirst`]):
    /// [`Mesh::merge`] merges in steps first. The
    /// local member must be an admin or owner (E7). A change its role does
    /// not permit, or one to its own entry, would be void (K1–K5) in every
    /// resolution: such a rotation is refused ([`Error::VoidChange`]) rather
    /// than written, so that a call that returns did what it said.
    pub fn rotate(&mut self, mut changes: Vec<Change>, reason: &str) -> Result<EventHash> {
        let keys = writer(&self.keys, self.read_only)?;
        changes.sort_by_key(Change::member);
        let time = (self.clock)();
        let made = self
            .ledger
            .make_rotation(keys, changes.clone(), reason, time, &mut self.rng)?;
        if let Some((change, reason)) = made
            .void_changes()
            .first()
            .and_then(|&(position, reason)| Some((changes.get(position)?, reason)))
        {
            return Err(Error::VoidChange {
                member: change.member(),
                change: match change {
                    Change::Add { .. } => "addition",
                    Change::Remove { .. } => "removal",
                    Change::SetRole { .. } => "role change",
                    Change::UpdateKeys { .. } => "key update",
                },
                reason,
            });
        }
        self.add(made)
    }

    /// Adds the member whose package this is, with `role` ([`Role::Owner`]:
    /// an owner grant, which only an owner's rotation keeps).
    pub fn add_member(&mut self, package: SignedPackage, role: Role) -> Result<EventHash> {
        self.rotate(vec![Change::Add { package, role }], "add")
    }

    /// Removes `member`: the rotation's secret is not wrapped to it.
    pub fn remove_member(&mut self, member: MemberId) -> Result<EventHash> {
        self.rotate(vec![Change::Remove { member }], "remove")
    }

    /// Sets `member`'s role to member or admin. Owners are made by
    /// [`Mesh::add_member`] with [`Role::Owner`] only; a role change to
    /// owner is refused (E6).
    pub fn set_role(&mut self, member: MemberId, role: Role) -> Result<EventHash> {
        self.rotate(vec![Change::SetRole { member, role }], "set role")
    }

    /// Rotates without changes: a fresh secret for the same roster.
    pub fn refresh(&mut self, reason: &str) -> Result<EventHash> {
        self.rotate(Vec::new(), reason)
    }

    /// Whether [`Mesh::merge`] (or any rotation) by the local member would
    /// pass the rules now: this handle writes, and the local member is
    /// enabled (F5) and an admin or owner of `R*`, which is its role in the
    /// resolution of the frontier a rotation made here names (E7, SPEC.md
    /// §5.2). It says nothing of whether a merge is needed.
    pub fn may_merge(&self) -> bool {
        !self.read_only
            && self.is_enabled()
            && self
                .member_id()
                .and_then(|member| self.roster().role_of(member))
                .is_some_and(|role| matches!(role, Role::Admin | Role::Owner))
    }

    /// Merges the tips if the mesh needs a merge, or has more tips than one
    /// rotation names; `None` if neither. With more tips than one rotation
    /// names, merges in steps (SPEC.md §5.1), each wrapped within `R*`, and
    /// returns the last.
    pub fn merge(&mut self) -> Result<Option<EventHash>> {
        let author = self.member_id();
        let mut last = None;
        while self.needs_merge()
            || author.is_some_and(|author| self.ledger.needs_merge_step(author))
        {
            let tips = self.tips().len();
            last = Some(self.merge_step()?);
            if self.tips().len() >= tips {
                break;
            }
        }
        Ok(last)
    }

    /// One merge of the tips, or of as many as one rotation names.
    fn merge_step(&mut self) -> Result<EventHash> {
        let keys = writer(&self.keys, self.read_only)?;
        let time = (self.clock)();
        let made = self
            .ledger
            .make_rotation(keys, Vec::new(), "merge", time, &mut self.rng)?;
        self.add(made)
    }

    /// The secret of `epoch`, as the local member recovers it: only the
    /// epoch's own roster can.
    pub fn epoch_secret(&self, epoch: EventHash) -> Result<EpochSecret> {
        let keys = self.keys.as_ref().ok_or(Error::NoKeys)?;
        Ok(self.ledger.epoch_secret(epoch, keys)?)
    }

    /// The current epoch (the writer epoch while a merge is needed) and its
    /// secret.
    pub fn current_secret(&self) -> Result<(EventHash, EpochSecret)> {
        let epoch = self
            .current_epoch()
            .or(self.writer_epoch())
            .ok_or(Error::WaitsForMerge)?;
        Ok((epoch, self.epoch_secret(epoch)?))
    }

    /// What this mesh holds but the events it leaves out (SPEC.md §6.4),
    /// for a peer to send what it lacks; recorded, it is a checkpoint for
    /// [`Mesh::expect`] (SPEC.md §7).
    pub fn frontier(&self) -> Frontier {
        self.ledger.frontier()
    }

    /// A batch of every record a peer with `frontier` may lack, each after
    /// what it names, but those this mesh leaves out (SPEC.md §6.4, §7).
    pub fn export(&self, frontier: &Frontier) -> Batch {
        let records = self
            .ledger
            .missing_for(frontier)
            .into_iter()
            .map(|record| record.to_record())
            .collect();
        Batch::new(self.ledger.group(), records)
    }

    /// Where the records [`Mesh::export`] gives for `frontier` are held:
    /// a reply in parts (SPEC.md §17.5) copies each part's records only as
    /// it makes the part.
    #[cfg(feature = "net")]
    pub(crate) fn export_positions(&self, frontier: &Frontier) -> Vec<usize> {
        self.ledger.missing_positions(frontier)
    }

    /// The records at the first of `positions`, up to and including the
    /// one whose bytes make the part reach `part_bytes`; none if a position
    /// is not held, which a position this mesh gave always is (a ledger
    /// only grows).
    #[cfg(feature = "net")]
    pub(crate) fn export_part(
        &self,
        positions: &[usize],
        part_bytes: usize,
    ) -> Option<Vec<Vec<u8>>> {
        let mut records = Vec::new();
        let mut bytes = 0usize;
        for &position in positions {
            let record = self.ledger.record_at(position)?.to_record();
            bytes += record.len();
            records.push(record);
            if bytes >= part_bytes {
                break;
            }
        }
        Some(records)
    }

    /// A batch of every record but those a peer may leave out (SPEC.md
    /// §6.4), for a new peer's [`Mesh::join`].
    pub fn export_all(&self) -> Batch {
        let left_out = self.ledger.left_out();
        Batch::new(
            self.ledger.group(),
            self.ledger
                .records()
                .filter(|record| !left_out.contains(record.hash()))
                .map(|record| record.to_record())
                .collect(),
        )
    }

    /// Takes a peer's batch, its records in any order: all are verified
    /// before any is written, one invalid record refuses the whole batch
    /// and leaves the mesh as it was, and the new ones but those a peer may
    /// leave out (counted in [`Ingested::left_out`], SPEC.md §6.4) are
    /// written in one transaction. The batch must be of this group. The cost is that of
    /// the batch, not of the mesh: a refused batch is undone, not copied.
    pub fn ingest(&mut self, batch: &Batch) -> Result<Ingested> {
        if batch.group() != self.ledger.group() {
            return Err(Error::ForeignBatch {
                ours: self.ledger.group(),
                theirs: batch.group(),
            });
        }
        self.ingest_records(batch.records())
    }

    pub(crate) fn ingest_records(&mut self, records: &[Vec<u8>]) -> Result<Ingested> {
        self.ingest_records_leaving_out(records)
            .map(|(ingested, _)| ingested)
    }

    /// [`Mesh::ingest`] of `records`, returning also the records it left
    /// out (SPEC.md §6.4): a reply received in parts (§17.5) hands them on
    /// to the next part, where an event may name them.
    pub(crate) fn ingest_records_leaving_out(
        &mut self,
        records: &[Vec<u8>],
    ) -> Result<(Ingested, Vec<Vec<u8>>)> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        let (known, added, left_out) = self.take_and_write(records)?;
        let ingested = Ingested {
            added,
            known,
            left_out: left_out.len(),
            needs_merge: self.needs_merge(),
        };
        Ok((ingested, left_out))
    }

    /// Takes `records` straight into the ledger and writes the new ones,
    /// with what the journal holds, into the file in one transaction. A
    /// refused batch is undone in the ledger, and so is one the file could
    /// not take. New records a peer may leave out (SPEC.md §6.4) are not
    /// taken. Returns how many records were known and added, and those
    /// left out.
    fn take_and_write(&mut self, records: &[Vec<u8>]) -> Result<(usize, usize, Vec<Vec<u8>>)> {
        let before = self.ledger.len();
        let (taken, left_out) = self.ledger.take_batch_leaving_out(records)?;
        let known = taken.known;
        let added = self.ledger.len() - before;
        if added > 0 {
            if let Err(error) = self.write_since(before) {
                self.ledger.undo(taken);
                return Err(error);
            }
            // The file holds them now, so they stay taken whatever the
            // journal does: forgetting them would let this member sign
            // another event at a position the file holds. A journal that
            // cannot start over tries again before its next frame.
            self.written()?;
        }
        Ok((known, added, left_out))
    }

    /// Writes `new` (the ledger's newest events), with what the journal
    /// holds, into the file in one transaction, and starts the journal
    /// over: many events at once need no journal.
    fn write_through(&mut self, new: &[SignedEvent]) -> Result<()> {
        let refs: Vec<&SignedEvent> = self.pending.iter().chain(new.iter()).collect();
        self.store.append(&refs, &self.ledger)?;
        self.settle();
        self.written()
    }

    /// Writes the events the ledger took since it held `len`, read in
    /// place rather than copied, with what the journal holds, into the file
    /// in one transaction; [`Mesh::written`] then starts the journal over.
    fn write_since(&mut self, len: usize) -> Result<()> {
        let taken: Vec<_> = self.ledger.records_since(len).collect();
        let refs: Vec<&SignedEvent> = self
            .pending
            .iter()
            .chain(taken.iter().map(|r| &**r))
            .collect();
        self.store.append(&refs, &self.ledger)?;
        drop(taken);
        self.settle();
        Ok(())
    }

    /// Lets the ledger go of what it holds in memory once the file holds
    /// all of it, reading it back from the file from then on (SPEC.md
    /// §9.7): memory stays bounded by what resolution needs.
    fn settle(&mut self) {
        if let Some(backing) = self.store.backing() {
            // Rows of the member's are not yet written for every event.
            if backing.len() != self.ledger.len() as u64 {
                return;
            }
            if !self.ledger.has_backing() {
                self.ledger.set_backing(backing);
            }
            self.ledger.settle();
        }
    }

    /// The file now holds what the journal held: it starts over.
    fn written(&mut self) -> Result<()> {
        self.pending.clear();
        if let Some(journal) = self.journal.as_mut() {
            journal.start_over(self.store.len())?;
        }
        Ok(())
    }

    /// Writes what the journal holds into the file, with the projection
    /// rows it implies, in one transaction, and starts the journal over;
    /// then records the local member's newest event in its feed mark, if
    /// one is kept (SPEC.md §11.2). The mesh does this every few hundred
    /// events and when it is dropped; [`Mesh::close`] does it and reports
    /// an error.
    pub fn checkpoint(&mut self) -> Result<()> {
        if !self.pending.is_empty() {
            self.write_through(&[])?;
        }
        self.record_feed_mark()
    }

    /// The local keys, if the mesh may write with them.
    #[cfg(feature = "net")]
    pub(crate) fn local_keys(&self) -> Result<&LocalKeys> {
        writer(&self.keys, self.read_only)
    }

    /// Checkpoints ([`Mesh::checkpoint`]) and closes the file. Dropping a
    /// mesh checkpoints too, but cannot report a failure; nothing is lost
    /// either way, since the journal keeps what the file lacks.
    pub fn close(mut self) -> Result<()> {
        self.checkpoint()
    }

    /// Checks that this file still holds a state recorded from it earlier
    /// (its frontier then): append-only, for an auditor. Names the heads
    /// that are gone if it does not ([`Error::RolledBack`]).
    pub fn expect(&self, checkpoint: &Frontier) -> Result<()> {
        let missing = self.ledger.missing_heads(checkpoint);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::RolledBack { missing })
        }
    }

    /// Writes a copy of this mesh to a new file at `path`: the same events
    /// in the same order, the projections they imply, and the member whose
    /// copy it is (SPEC.md §9.1). Works on a mesh open read-only.
    pub fn backup(&self, path: impl AsRef<Path>) -> Result<()> {
        let keys = self.keys.as_ref().map(LocalKeys::file_keys);
        Store::create(path.as_ref(), &self.ledger, self.store.owner(), keys).map(drop)
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        // Best effort: what fails to reach the file stays in the journal,
        // and the next open replays it.
        let _ = self.checkpoint();
    }
}

/// Creates the file for `ledger`, `keys`' member's copy, and its empty
/// journal, for events made with `keys`; a failure removes the file, and
/// the journal if this made it (a full disk may leave part of it).
fn create_file(path: &Path, ledger: &Ledger, keys: &LocalKeys) -> Result<(Store, Option<Journal>)> {
    let store = Store::create(path, ledger, Some(keys.member_id()), Some(keys.file_keys()))?;
    let journal_path = journal::path_beside(path);
    let journal_existed = journal_path.try_exists().unwrap_or(true);
    match Journal::start(&journal_path, ledger.group(), store.len(), keys) {
        Ok(journal) => Ok((store, Some(journal))),
        Err(error) => {
            store.discard();
            if !journal_existed {
                let _ = std::fs::remove_file(&journal_path);
            }
            Err(error.into())
        }
    }
}

/// What [`replay_journal`] took.
struct Replayed {
    /// The events new to the ledger, in order.
    events: Vec<SignedEvent>,
    /// Whether the journal's newest event, new to the ledger, awaits a
    /// signature that `keys` could not give.
    awaiting: bool,
    /// What the journal held and could not replay.
    unreplayed: Unreplayed,
}

/// Events a journal held that could not be replayed (SPEC.md §9.6): a
/// damaged frame that others follow, an event that does not verify or
/// names what neither the file nor the journal holds (a journal of another
/// copy of the group, say), and every event after it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Unreplayed {
    /// How many.
    events: usize,
    /// Where in the journal the first of them starts.
    offset: Option<u64>,
}

/// Takes into `ledger` the events of the journal at `path` that the file
/// (of `stored` events) lacks, verified as any others are. The newest
/// event's signature may not be on disk (SPEC.md §9.6). It is signed again
/// only if it is the next event of its author's feed (an event that was
/// acknowledged always is; one given up, or put back from an older
/// journal, is not) and `keys` wrote it (its tag says so): then it is
/// verified with the rest. A journal of another group is not this file's.
/// Events that cannot be taken are not, nor any after them, and are
/// counted: a damaged journal loses at most what it alone held (§10).
fn replay_journal(
    path: &Path,
    ledger: &mut Ledger,
    stored: u64,
    keys: Option<&LocalKeys>,
) -> Result<Replayed> {
    let contents = journal::read(path)?;
    let mut replayed = Replayed {
        events: Vec::new(),
        awaiting: false,
        unreplayed: Unreplayed::default(),
    };
    let empty =
        contents.records.is_empty() && contents.awaiting.is_none() && contents.damaged.is_none();
    if empty || contents.group != ledger.group() {
        return Ok(replayed);
    }
    if contents.base > stored {
        return Err(StoreError::JournalAhead {
            path: path.to_owned(),
            base: contents.base,
            stored,
        }
        .into());
    }
    let before = ledger.len();
    let taken = take_prefix(ledger, &contents.records);
    let mut awaiting = contents.awaiting;
    if taken < contents.records.len() {
        // Everything after an event that could not be taken stays out,
        // the newest frame's event included.
        replayed.unreplayed = Unreplayed {
            events: contents.records.len() - taken + usize::from(awaiting.is_some()),
            offset: contents.offsets.get(taken).copied(),
        };
        awaiting = None;
    }
    if let Some(damaged) = contents.damaged {
        replayed.unreplayed.events += damaged.frames;
        replayed.unreplayed.offset.get_or_insert(damaged.offset);
    }
    // This engine writes only events that encode: bytes that do not were
    // never acknowledged.
    let awaiting = awaiting.and_then(|awaiting| {
        UnsignedEvent::decode(&awaiting.event)
            .ok()
            .map(|unsigned| (awaiting, unsigned))
    });
    if let Some((awaiting, unsigned)) = awaiting {
        let event = unsigned.event();
        let (seq, prev, _) = ledger.state().next_position(event.author);
        let next = !ledger.contains(unsigned.hash()) && (event.seq, event.prev) == (seq, prev);
        let signer =
            keys.filter(|keys| keys.member_id() == event.author && awaiting.is_tagged_by(keys));
        match (next, signer) {
            (true, Some(keys)) => {
                if ledger.take_all(&[unsigned.sign(keys).to_record()]).is_err() {
                    replayed.unreplayed.events += 1;
                    replayed.unreplayed.offset.get_or_insert(awaiting.offset);
                }
            }
            (true, None) => replayed.awaiting = true,
            // Held already (the file took it at a checkpoint the journal
            // outlived), or not the next of its feed: nothing awaits.
            (false, _) => {}
        }
    }
    replayed.events = ledger
        .records_since(before)
        .map(std::borrow::Cow::into_owned)
        .collect();
    Ok(replayed)
}

/// Takes `records` into `ledger` and returns how many, from the first: all
/// of them in one batch if they verify, else those before the first that
/// cannot be taken, one by one (the journal holds them in the order they
/// were made, so each names only what the file or earlier records hold).
fn take_prefix(ledger: &mut Ledger, records: &[Vec<u8>]) -> usize {
    if ledger.take_all(records).is_ok() {
        return records.len();
    }
    records
        .iter()
        .take_while(|record| ledger.take_all(std::slice::from_ref(*record)).is_ok())
        .count()
}

/// Whether `member` may name `epoch` by the rules alone: its own roster
/// holds the member (F3), and it is no ancestor of an epoch the member's
/// feed acknowledged (F4).
fn may_name(
    ledger: &Ledger,
    member: MemberId,
    acknowledged: &[EventHash],
    epoch: EventHash,
) -> bool {
    let graph = ledger.state().graph();
    !acknowledged
        .iter()
        .any(|known| graph.is_ancestor(epoch, *known))
        && graph
            .own_roster(epoch)
            .is_some_and(|roster| roster.get(member).is_some())
}

/// The epoch `member` writes under now (SPEC.md §5.5): the writer epoch,
/// or, if its feed has moved past that one (§4.3), the smallest-hash other
/// tip whose members are all in `R*` and whose roster holds it. `None`: it
/// waits for a merge.
pub(crate) fn epoch_to_write(ledger: &Ledger, member: MemberId) -> Option<EventHash> {
    let resolution = ledger.resolution();
    let (_, _, acknowledged) = ledger.state().next_position(member);
    let nameable = |epoch: &EventHash| may_name(ledger, member, &acknowledged, *epoch);
    // The writer epoch's members are all in `R*` by its definition (§5.5),
    // so only another tip's roster is compared with `R*`: a walk over the
    // whole roster, which at 1,000 members cost an append more than its
    // signature.
    let within = |epoch: &EventHash| {
        ledger
            .state()
            .graph()
            .own_roster(*epoch)
            .is_some_and(|roster| roster.ids_within(&resolution.roster))
    };
    resolution.writer.filter(nameable).or_else(|| {
        resolution
            .tips
            .iter()
            .copied()
            .find(|epoch| nameable(epoch) && within(epoch))
    })
}

/// The epoch a flag change by `member` names: the epoch it writes under,
/// or else the smallest-hash tip whose own roster holds it, or else the
/// newest epoch its feed acknowledged; each passes F3 and F4. `None`: the
/// member is in no epoch it may name.
pub(crate) fn epoch_for_flag(ledger: &Ledger, member: MemberId) -> Option<EventHash> {
    epoch_to_write(ledger, member).or_else(|| {
        let (_, _, acknowledged) = ledger.state().next_position(member);
        let named = |epoch: &EventHash| may_name(ledger, member, &acknowledged, *epoch);
        ledger
            .resolution()
            .tips
            .iter()
            .copied()
            .find(named)
            .or_else(|| acknowledged.iter().copied().find(named))
    })
}

#[cfg(test)]
mod files;
mod forks;
mod sealing;
pub use forks::ForkShape;
#[cfg(test)]
mod tests;

/// Removes a mesh file this process made and the journal beside it, after
/// a join over the network that it refused (SPEC.md §17.4). Errors are
/// ignored: the file is then only a valid copy left behind.
#[cfg(feature = "net")]
pub(crate) fn remove_file_and_journal(path: &Path) {
    let _ = std::fs::remove_file(journal::path_beside(path));
    let _ = std::fs::remove_file(path);
}
