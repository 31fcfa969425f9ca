//! [`Mesh`]: the public handle. Open, append, query.
//!
//! Every change follows one path: the event is made and signed here (drawing
//! any randomness it needs), checked by the reducer against the current state,
//! written with its projection rows in one durable transaction, and only then
//! applied to the in-memory state.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rayon::prelude::*;

use crate::batch::{Batch, BatchError};
use crate::chain::{SignedEvent, UnsignedEvent, is_admissible_signing_key, record_hash};
use crate::envelope::{self, Binding, EpochSecret, is_admissible_dh_key};
use crate::error::{Error, Fork, Result};
use crate::event::{Body, Event, Genesis, MemberKeys, Role, RosterEntry, Rotate};
use crate::ids::{EventHash, GroupId, MemberId, StateDigest};
use crate::keys::LocalKeys;
use crate::labels::FORMAT_VERSION;
use crate::reducer::{self, KeyKind, Rejection, Rule};
use crate::state::{EpochRecord, Head, MeshState};
use crate::store::{Equivocation, OpenReport, Prepared, Replay, Store, projection_rows};

/// What an ingest did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestReport {
    /// Events appended.
    pub added: u64,
    /// Events already held, skipped.
    pub skipped: u64,
    /// The head afterwards.
    pub head: Option<Head>,
}

/// Checks a batch's records in order against `state`, applying each, and
/// returns them with the projection rows they write. Every rule and every
/// signature is checked first, signatures in parallel, as on open; the
/// second, in-order pass only builds the rows.
fn accept_records(state: &mut MeshState, batch: &Batch) -> Result<Vec<Prepared>> {
    let verified = Replay::new(state.clone(), &[]).verify_all(batch.records())?;
    let mut prepared = Vec::with_capacity(batch.len());
    for (seq, record) in batch.records() {
        let event = SignedEvent::from_record(record).map_err(|e| Rejection {
            seq,
            hash: record_hash(record),
            rule: Rule::Malformed(e),
        })?;
        // The signature of these very bytes was verified above.
        let (accepted, _) = reducer::check_deferring_signature(state, &event)?;
        let rows = projection_rows(state, &accepted);
        state.apply(accepted);
        prepared.push(Prepared { event, rows });
    }
    debug_assert!(*state == verified, "both passes reach the same state");
    Ok(prepared)
}

/// Where an event landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// Its seq.
    pub seq: u64,
    /// Its hash.
    pub hash: EventHash,
}

type Clock = Box<dyn FnMut() -> u64 + Send>;

/// How to make a [`Mesh`]: where randomness and time come from.
///
/// The defaults are the operating system's generator and clock. Tests seed
/// both, which makes every byte of a chain reproducible.
#[derive(Default)]
pub struct MeshOptions {
    seed: Option<[u8; 32]>,
    clock: Option<Clock>,
}

impl std::fmt::Debug for MeshOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshOptions")
            .field("seeded", &self.seed.is_some())
            .field("custom_clock", &self.clock.is_some())
            .finish()
    }
}

impl MeshOptions {
    /// The defaults.
    pub fn new() -> MeshOptions {
        MeshOptions::default()
    }

    /// Draws secrets, ephemeral keys and nonces from a generator seeded with
    /// `seed`. For tests and test vectors only: a known seed means known secrets.
    pub fn insecure_seed(mut self, seed: [u8; 32]) -> MeshOptions {
        self.seed = Some(seed);
        self
    }

    /// Takes the time events claim (unix seconds) from `clock`.
    pub fn clock(mut self, clock: impl FnMut() -> u64 + Send + 'static) -> MeshOptions {
        self.clock = Some(Box::new(clock));
        self
    }

    /// Founds a group in a new file at `path`: the genesis makes `keys` the
    /// sole admin of epoch 0. Refuses an existing file.
    pub fn create(self, path: impl AsRef<Path>, keys: LocalKeys, group_name: &str) -> Result<Mesh> {
        let store = Store::create(path.as_ref())?;
        let mut mesh = self.into_mesh(store, MeshState::default(), Some(keys));
        match mesh.found(group_name) {
            Ok(()) => Ok(mesh),
            Err(error) => {
                // A refused create leaves no file, so a retry can succeed.
                mesh.store.discard();
                Err(error)
            }
        }
    }

    /// Makes a new peer's file from a batch that starts at the genesis,
    /// verifying every event first: on any failure no file is created. Keys
    /// that no roster lists are allowed (the peer may be added later), but
    /// [`Mesh::epoch_secret`] then fails cleanly. The batch must hold the
    /// genesis, and its header must name the group that genesis founds
    /// (SPEC.md §9.2).
    pub fn join(self, path: impl AsRef<Path>, keys: LocalKeys, batch: &Batch) -> Result<Mesh> {
        if batch.is_empty() {
            return Err(BatchError::Empty.into());
        }
        if batch.first() != 0 {
            return Err(Error::Gap {
                missing: 0,
                first: batch.first(),
            });
        }
        let mut state = MeshState::default();
        let prepared = accept_records(&mut state, batch)?;
        let founded = state.identity().map(|identity| identity.group);
        if founded != Some(batch.group()) {
            return Err(Error::ForeignBatch {
                ours: founded.unwrap_or(GroupId::ZERO),
                theirs: batch.group(),
            });
        }
        let mut store = Store::create(path.as_ref())?;
        if let Err(error) = store.initialise(&prepared) {
            store.discard();
            return Err(error);
        }
        Ok(self.into_mesh(store, state, Some(keys)))
    }

    /// Opens an existing file with the local member's keys, verifying the
    /// whole chain and every projection.
    pub fn open(self, path: impl AsRef<Path>, keys: LocalKeys) -> Result<Mesh> {
        let mut store = Store::open(path.as_ref())?;
        let state = store.load()?;
        Ok(self.into_mesh(store, state, Some(keys)))
    }

    /// Opens a file without writing to it, as [`Mesh::open_read_only`] does,
    /// with the local member's keys: for recovering epoch secrets from a file
    /// that must stay untouched. Operations that append refuse with
    /// [`Error::ReadOnly`].
    pub fn open_read_only(self, path: impl AsRef<Path>, keys: Option<LocalKeys>) -> Result<Mesh> {
        let mut store = Store::open_read_only(path.as_ref())?;
        let state = store.load()?;
        let mut mesh = self.into_mesh(store, state, keys);
        mesh.report.read_only = true;
        Ok(mesh)
    }

    fn into_mesh(self, store: Store, state: MeshState, keys: Option<LocalKeys>) -> Mesh {
        let rng = match self.seed {
            Some(seed) => StdRng::from_seed(seed),
            None => rand::make_rng(),
        };
        let clock = self.clock.unwrap_or_else(|| Box::new(system_time));
        let report = OpenReport {
            path: store.path().to_owned(),
            read_only: store.is_private_copy(),
            verified_private_copy: store.recovered(),
            events: state.len(),
        };
        Mesh {
            store,
            state,
            keys,
            rng,
            clock,
            report,
        }
    }
}

fn system_time() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// An open mesh: its verified state, and the local member's keys if any.
pub struct Mesh {
    store: Store,
    state: MeshState,
    keys: Option<LocalKeys>,
    rng: StdRng,
    clock: Clock,
    report: OpenReport,
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh")
            .field("path", &self.report.path)
            .field("local", &self.keys)
            .field("head", &self.state.head())
            .finish_non_exhaustive()
    }
}

impl Mesh {
    /// Writes the genesis of a new file.
    fn found(&mut self, group_name: &str) -> Result<()> {
        let founder = self.local()?.public();
        let founder_id = founder.member_id();
        let secret = EpochSecret::generate(&mut self.rng);
        let binding = Binding::Genesis {
            founder: founder_id,
            group_name,
        };
        let envelope =
            envelope::seal(&mut self.rng, &secret, binding, &[(founder_id, founder.dh)])?;
        let body = Body::Genesis(Genesis {
            group_name: group_name.to_owned(),
            founder,
            envelope,
        });
        let signed = self.make_event(body)?;
        let mut state = MeshState::default();
        let genesis = Prepared::accept(&mut state, signed)?;
        self.store.initialise(&[genesis])?;
        self.state = state;
        self.report.events = self.state.len();
        Ok(())
    }

    /// Founds a group in a new file; see [`MeshOptions::create`].
    pub fn create(path: impl AsRef<Path>, keys: LocalKeys, group_name: &str) -> Result<Mesh> {
        MeshOptions::new().create(path, keys, group_name)
    }

    /// Opens a file with local keys; see [`MeshOptions::open`].
    pub fn open(path: impl AsRef<Path>, keys: LocalKeys) -> Result<Mesh> {
        MeshOptions::new().open(path, keys)
    }

    /// Makes a new peer's file from a batch; see [`MeshOptions::join`].
    pub fn join(path: impl AsRef<Path>, keys: LocalKeys, batch: &Batch) -> Result<Mesh> {
        MeshOptions::new().join(path, keys, batch)
    }

    /// Opens a file for auditing: no keys, no writes, the file's bytes stay
    /// as they are. The chain and every projection are verified. A file that
    /// was not closed cleanly is recovered in a private temporary copy and
    /// verified there; [`OpenReport::verified_private_copy`] says so.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Mesh> {
        MeshOptions::new().open_read_only(path, None)
    }

    /// How the file was opened and how much was verified.
    pub fn report(&self) -> &OpenReport {
        &self.report
    }

    /// The verified state as of the head.
    pub fn state(&self) -> &MeshState {
        &self.state
    }

    /// The digest of [`Mesh::state`], to compare two copies by one hash.
    pub fn digest(&self) -> StateDigest {
        self.state.digest()
    }

    /// The group id.
    pub fn group(&self) -> GroupId {
        self.state
            .identity()
            .map_or(GroupId::ZERO, |identity| identity.group)
    }

    /// The local member's id, if the mesh was opened with keys.
    pub fn member_id(&self) -> Option<MemberId> {
        self.keys.as_ref().map(LocalKeys::member_id)
    }

    /// Whether the local member is in the current epoch and enabled.
    pub fn is_enabled(&self) -> bool {
        self.member_id()
            .is_some_and(|member| self.state.is_enabled(member))
    }

    /// The stored event at `seq`.
    pub fn event(&self, seq: u64) -> Result<SignedEvent> {
        self.store.event(seq)?.ok_or(Error::NoSuchEvent {
            seq,
            len: self.state.len(),
        })
    }

    /// The seq of the event with this hash, if the chain holds it.
    pub fn find(&self, hash: EventHash) -> Result<Option<u64>> {
        self.store.find(hash)
    }

    /// Visits stored events from `from` on, in order, while `visit` returns true.
    pub fn for_each_event(
        &self,
        from: u64,
        mut visit: impl FnMut(&SignedEvent) -> bool,
    ) -> Result<()> {
        self.store.for_each_event(from, |event| Ok(visit(&event)))
    }

    /// Replays the chain from the genesis through the reducer, calling `visit`
    /// with each event and the state just after it, up to and including `upto`.
    pub fn replay(
        &self,
        upto: u64,
        mut visit: impl FnMut(&SignedEvent, &MeshState),
    ) -> Result<MeshState> {
        let mut state = MeshState::default();
        self.store.for_each_event(0, |event| {
            if event.event().seq > upto {
                return Ok(false);
            }
            let accepted = reducer::check(&state, &event)?;
            state.apply(accepted);
            visit(&event, &state);
            Ok(true)
        })?;
        Ok(state)
    }

    /// Writes a consistent copy of the database to a new file at `path`,
    /// while this mesh stays open. This, not `cp`, is how to hand a live
    /// mesh to an auditor.
    pub fn backup(&self, path: impl AsRef<Path>) -> Result<()> {
        self.store.backup(path.as_ref())
    }

    /// Turns the local member's participation on or off (one `SetEnabled` event).
    pub fn set_enabled(&mut self, enabled: bool) -> Result<Receipt> {
        self.commit(Body::SetEnabled { enabled })
    }

    /// Appends an application event, authored by the local member.
    pub fn append_app(&mut self, kind: &str, payload: &[u8]) -> Result<Receipt> {
        self.require_enabled()?;
        self.commit(Body::App {
            kind: kind.to_owned(),
            payload: payload.to_vec(),
        })
    }

    /// Appends many application events in one durable transaction: all of
    /// them or none.
    pub fn append_apps<'a>(
        &mut self,
        items: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Vec<Receipt>> {
        self.require_enabled()?;
        // Hashes cover the bytes, not the signatures (SPEC.md §2.2), so the
        // run is linked first and then signed in parallel.
        let (group, mut seq, mut prev) = self.state.next_position();
        let mut unsigned = Vec::new();
        for (kind, payload) in items {
            let body = Body::App {
                kind: kind.to_owned(),
                payload: payload.to_vec(),
            };
            let event = UnsignedEvent::new(self.new_event((group, seq, prev), body)?);
            prev = event.hash();
            seq = seq.saturating_add(1);
            unsigned.push(event);
        }
        let key = self.local()?.signing_key();
        let signed: Vec<SignedEvent> = unsigned
            .into_par_iter()
            .map(|event| event.sign(key))
            .collect();
        let mut state = self.state.clone();
        let mut prepared = Vec::with_capacity(signed.len());
        let mut receipts = Vec::with_capacity(signed.len());
        for event in signed {
            let one = Prepared::accept(&mut state, event)?;
            receipts.push(Receipt {
                seq: one.event.event().seq,
                hash: one.event.hash(),
            });
            prepared.push(one);
        }
        if prepared.is_empty() {
            return Ok(receipts);
        }
        self.store.append(self.state.head(), &prepared)?;
        self.state = state;
        self.report.events = self.state.len();
        Ok(receipts)
    }

    /// Adds a member by rotating to a new epoch whose roster includes it.
    pub fn add_member(&mut self, keys: MemberKeys, role: Role) -> Result<Receipt> {
        let member = keys.member_id();
        for (admissible, kind) in [
            (is_admissible_signing_key(&keys.signing), KeyKind::Signing),
            (is_admissible_dh_key(&keys.dh), KeyKind::Dh),
        ] {
            if !admissible {
                return Err(Error::InadmissibleKey { member, kind });
            }
        }
        let mut roster = self.current_roster()?;
        match roster.binary_search_by_key(&member, |entry| entry.id) {
            Ok(_) => return Err(Error::AlreadyMember { member }),
            Err(index) => roster.insert(
                index,
                RosterEntry {
                    id: member,
                    keys,
                    role,
                },
            ),
        }
        self.rotate_to(roster, &format!("add {member} as {role}"))
    }

    /// Removes a member by rotating to a new epoch without it. The removed
    /// member keeps the secrets of the epochs it was in, and gets none of the new one.
    pub fn remove_member(&mut self, member: MemberId) -> Result<Receipt> {
        let mut roster = self.current_roster()?;
        let index = roster
            .binary_search_by_key(&member, |entry| entry.id)
            .map_err(|_| Error::UnknownMember { member })?;
        roster.remove(index);
        self.rotate_to(roster, &format!("remove {member}"))
    }

    /// Changes a member's role by rotating to a new epoch.
    pub fn set_role(&mut self, member: MemberId, role: Role) -> Result<Receipt> {
        let mut roster = self.current_roster()?;
        let entry = roster
            .iter_mut()
            .find(|entry| entry.id == member)
            .ok_or(Error::UnknownMember { member })?;
        if entry.role == role {
            return Err(Error::RoleUnchanged { member });
        }
        entry.role = role;
        self.rotate_to(roster, &format!("make {member} {role}"))
    }

    /// Rotates to a fresh secret with the same roster.
    pub fn rotate(&mut self, reason: &str) -> Result<Receipt> {
        let roster = self.current_roster()?;
        self.rotate_to(roster, reason)
    }

    /// Opens the next epoch with `roster` (sorted by member id) and a fresh
    /// secret wrapped to each of its members.
    pub fn rotate_to(&mut self, roster: Vec<RosterEntry>, reason: &str) -> Result<Receipt> {
        self.require_enabled()?;
        let epoch = self
            .state
            .current_epoch()
            .map_or(0, |current| current.epoch.saturating_add(1));
        let binding = Binding::Epoch {
            group: self.group(),
            epoch,
        };
        let recipients: Vec<_> = roster
            .iter()
            .map(|entry| (entry.id, entry.keys.dh))
            .collect();
        let secret = EpochSecret::generate(&mut self.rng);
        let envelope = envelope::seal(&mut self.rng, &secret, binding, &recipients)?;
        self.commit(Body::Rotate(Rotate {
            epoch,
            roster,
            envelope,
            reason: reason.to_owned(),
        }))
    }

    /// Recovers the secret of `epoch`, which the local member must belong to.
    /// The secret is checked against the epoch's public commitment.
    pub fn epoch_secret(&self, epoch: u64) -> Result<EpochSecret> {
        let keys = self.keys.as_ref().ok_or(Error::NoKeys)?;
        let member = keys.member_id();
        let record = self.epoch_record(epoch)?;
        let entry = record
            .member(member)
            .ok_or(Error::NotAMember { member, epoch })?;
        if entry.keys != keys.public() {
            return Err(Error::DhKeyMismatch { member, epoch });
        }
        let identity = self
            .state
            .identity()
            .ok_or(Error::NoSuchEpoch { epoch, current: 0 })?;
        let binding = if epoch == 0 {
            Binding::Genesis {
                founder: identity.founder,
                group_name: &identity.name,
            }
        } else {
            Binding::Epoch {
                group: identity.group,
                epoch,
            }
        };
        Ok(envelope::open(
            &record.envelope,
            binding,
            member,
            keys.dh_secret(),
            entry.keys.dh,
        )?)
    }

    fn epoch_record(&self, epoch: u64) -> Result<&EpochRecord> {
        self.state.epoch(epoch).ok_or(Error::NoSuchEpoch {
            epoch,
            current: self
                .state
                .current_epoch()
                .map_or(0, |current| current.epoch),
        })
    }

    fn current_roster(&self) -> Result<Vec<RosterEntry>> {
        Ok(self
            .state
            .current_epoch()
            .map(|epoch| epoch.roster.clone())
            .unwrap_or_default())
    }

    fn local(&self) -> Result<&LocalKeys> {
        if self.report.read_only || self.store.is_private_copy() {
            return Err(Error::ReadOnly);
        }
        self.keys.as_ref().ok_or(Error::NoKeys)
    }

    fn require_enabled(&self) -> Result<()> {
        let member = self.local()?.member_id();
        if self.state.is_enabled(member) {
            Ok(())
        } else {
            Err(Error::Disabled { member })
        }
    }

    /// Syncing is refused to a member of the current roster that has turned
    /// itself off, as the original design short-circuited its network paths.
    /// A peer that is in no roster yet may sync: that is how it learns it was
    /// added.
    fn require_sync_allowed(&self) -> Result<()> {
        match self.member_id() {
            Some(member)
                if self
                    .state
                    .current_epoch()
                    .is_some_and(|epoch| epoch.member(member).is_some())
                    && !self.state.is_enabled(member) =>
            {
                Err(Error::Disabled { member })
            }
            _ => Ok(()),
        }
    }

    /// Makes and signs an event to follow the head.
    fn make_event(&mut self, body: Body) -> Result<SignedEvent> {
        let event = self.new_event(self.state.next_position(), body)?;
        Ok(SignedEvent::sign(event, self.local()?))
    }

    /// A new event by the local member at `(group, seq, prev)`, stamped by
    /// the clock.
    fn new_event(
        &mut self,
        (group, seq, prev): (GroupId, u64, EventHash),
        body: Body,
    ) -> Result<Event> {
        let time = (self.clock)();
        Ok(Event {
            version: FORMAT_VERSION,
            group,
            seq,
            prev,
            author: self.local()?.member_id(),
            time,
            body,
        })
    }

    /// Makes, checks, stores and applies one event.
    fn commit(&mut self, body: Body) -> Result<Receipt> {
        let signed = self.make_event(body)?;
        let accepted = reducer::check(&self.state, &signed)?;
        let receipt = Receipt {
            seq: accepted.head.seq,
            hash: accepted.head.hash,
        };
        let rows = projection_rows(&self.state, &accepted);
        let prepared = Prepared {
            event: signed,
            rows,
        };
        self.store.append(self.state.head(), &[prepared])?;
        self.state.apply(accepted);
        self.report.events = self.state.len();
        Ok(receipt)
    }

    /// The events from `since` to the head, for a peer to ingest.
    pub fn export_since(&self, since: u64) -> Result<Batch> {
        self.require_sync_allowed()?;
        let len = self.state.len();
        if since > len {
            return Err(Error::NoSuchEvent { seq: since, len });
        }
        let mut records = Vec::new();
        self.store.for_each_event(since, |event| {
            records.push(event.to_record());
            Ok(true)
        })?;
        Ok(Batch::new(self.group(), since, records))
    }

    /// Verifies a peer's batch and appends the events this chain lacks, in
    /// one transaction: all of them or none. Events already held (same seq,
    /// same hash) are skipped, so batches may overlap and repeat.
    ///
    /// A batch that skips events is refused with the first missing seq; a
    /// different valid event at a seq already held is a [`Fork`] (nothing is
    /// appended), and if one author signed both events the pair is kept as
    /// evidence (see [`Mesh::equivocations`]).
    pub fn ingest(&mut self, batch: &Batch) -> Result<IngestReport> {
        self.require_sync_allowed()?;
        if batch.group() != self.group() {
            return Err(Error::ForeignBatch {
                ours: self.group(),
                theirs: batch.group(),
            });
        }
        let len = self.state.len();
        if batch.first() > len {
            return Err(Error::Gap {
                missing: len,
                first: batch.first(),
            });
        }
        let mut skipped = 0u64;
        for (seq, record) in batch.records().take_while(|(seq, _)| *seq < len) {
            let ours = self.event(seq)?;
            if record_hash(record) == ours.hash() {
                skipped += 1;
            } else {
                return Err(self.fork(seq, ours, record));
            }
        }
        let mut state = self.state.clone();
        let new = Batch::new(
            batch.group(),
            len,
            batch
                .records()
                .filter(|(seq, _)| *seq >= len)
                .map(|(_, record)| record.to_vec())
                .collect(),
        );
        let prepared = accept_records(&mut state, &new)?;
        if !prepared.is_empty() {
            self.store.append(self.state.head(), &prepared)?;
        }
        self.state = state;
        self.report.events = self.state.len();
        Ok(IngestReport {
            added: prepared.len() as u64,
            skipped,
            head: self.state.head(),
        })
    }

    /// Builds the error for a differing event at `seq`: a rejection if the
    /// peer's event is invalid there, else a fork (kept as evidence when the
    /// same author signed both).
    fn fork(&self, seq: u64, ours: SignedEvent, record: &[u8]) -> Error {
        let theirs = match SignedEvent::from_record(record) {
            Ok(theirs) => theirs,
            Err(e) => {
                return Rejection {
                    seq,
                    hash: record_hash(record),
                    rule: Rule::Malformed(e),
                }
                .into();
            }
        };
        let before = match seq.checked_sub(1) {
            None => MeshState::default(),
            Some(previous) => match self.replay(previous, |_, _| {}) {
                Ok(state) => state,
                Err(e) => return e,
            },
        };
        if let Err(mut rejection) = reducer::check(&before, &theirs) {
            // A record is named by the position it was offered at, whatever
            // seq it claims (SPEC.md §5.1), as on every other path.
            rejection.seq = seq;
            return rejection.into();
        }
        let equivocation = ours.event().author == theirs.event().author;
        if equivocation && let Err(e) = self.store.record_equivocation(seq, &ours, &theirs) {
            return e;
        }
        Error::Fork(Box::new(Fork {
            seq,
            ours,
            theirs,
            equivocation,
        }))
    }

    /// Every pair of conflicting events by one author that ingest has seen.
    /// Each pair was re-verified when the file was opened: both events decode,
    /// are signed by their author and are valid at their seq.
    pub fn equivocations(&self) -> Result<Vec<Equivocation>> {
        self.store.equivocations()
    }

    /// Refuses with [`Error::StaleHead`] unless the head is `expected`: for
    /// an application that decided on an operation from an older view.
    pub fn expect_head(&self, expected: EventHash) -> Result<()> {
        match self.state.head() {
            Some(head) if head.hash == expected => Ok(()),
            _ => Err(Error::StaleHead {
                expected: Some(expected),
            }),
        }
    }
}
