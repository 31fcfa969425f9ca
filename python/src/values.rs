//! What the library returns, as read-only Python objects: ids and hashes
//! as hex strings, bytes as `bytes`, roles and statuses as their names.

use meshlog::{Body, EventHash};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

fn hex(hash: &EventHash) -> String {
    hash.to_string()
}

fn bytes(py: Python<'_>, data: &[u8]) -> Py<PyBytes> {
    PyBytes::new(py, data).unbind()
}

/// One member of a roster.
#[pyclass(module = "meshlog._meshlog", frozen, get_all)]
pub(crate) struct RosterEntry {
    /// The member id (hex).
    member_id: String,
    /// "owner", "admin" or "member".
    role: String,
    /// Its ed25519 key (hex).
    signing_key: String,
    /// Its X25519 key (hex), which epoch secrets are wrapped to.
    dh_key: String,
    /// The counter of its newest package.
    package_counter: u64,
}

#[pymethods]
impl RosterEntry {
    fn __repr__(&self) -> String {
        format!(
            "RosterEntry(member_id={}, role={})",
            self.member_id, self.role
        )
    }
}

pub(crate) fn roster(roster: &meshlog::Roster) -> Vec<RosterEntry> {
    roster
        .iter()
        .map(|(member, entry)| RosterEntry {
            member_id: member.to_string(),
            role: entry.role().to_string(),
            signing_key: entry.keys().signing.to_string(),
            dh_key: entry.keys().dh.to_string(),
            package_counter: entry.package_counter(),
        })
        .collect()
}

/// A rotation (or the genesis) and where it stands.
#[pyclass(module = "meshlog._meshlog", frozen, get_all)]
pub(crate) struct EpochInfo {
    hash: String,
    author: String,
    parents: Vec<String>,
    /// Whether it applies in the current resolution (SPEC.md §5.3).
    applied: bool,
    /// Positions of its void changes.
    void_changes: Vec<usize>,
    changes: usize,
    /// Its own roster: whom its secret is wrapped to.
    roster: Vec<Py<RosterEntry>>,
    reason: String,
    is_genesis: bool,
}

#[pymethods]
impl EpochInfo {
    fn __repr__(&self) -> String {
        format!(
            "EpochInfo(hash={}, applied={}, members={})",
            self.hash,
            self.applied,
            self.roster.len()
        )
    }
}

pub(crate) fn epoch(py: Python<'_>, info: meshlog::EpochInfo) -> PyResult<EpochInfo> {
    Ok(EpochInfo {
        hash: hex(&info.hash),
        author: info.author.to_string(),
        parents: info.parents.iter().map(hex).collect(),
        applied: info.applied,
        void_changes: info.void_changes,
        changes: info.changes,
        roster: roster(&info.roster)
            .into_iter()
            .map(|entry| Py::new(py, entry))
            .collect::<PyResult<_>>()?,
        reason: info.reason,
        is_genesis: info.is_genesis,
    })
}

/// One event of the log, with its status.
#[pyclass(module = "meshlog._meshlog", frozen, get_all)]
pub(crate) struct LogEntry {
    hash: String,
    author: String,
    /// Its position in its author's feed.
    seq: u64,
    /// Unix seconds as its author claims them (not checked).
    time: u64,
    /// "genesis", "rotate", "enable", "disable", "app", "keys" or "sealed".
    kind: String,
    /// The epoch it was written under (None for the genesis and rotations).
    epoch: Option<String>,
    /// "current", "superseded", "void epoch" or "author not in roster".
    status: Option<String>,
    /// Whether a peer may leave it out (SPEC.md §6.4).
    left_out: bool,
    /// An application event's kind.
    app_kind: Option<String>,
    /// An application event's payload (a sealed one's: open it with
    /// `Mesh.open_event`).
    payload: Option<Py<PyBytes>>,
}

#[pymethods]
impl LogEntry {
    fn __repr__(&self) -> String {
        format!(
            "LogEntry(hash={}, author={}, seq={}, kind={})",
            self.hash, self.author, self.seq, self.kind
        )
    }
}

/// What `log` needs of an entry, taken without the GIL.
pub(crate) struct RawLogEntry {
    hash: EventHash,
    event: meshlog::Event,
    status: Option<String>,
    left_out: bool,
}

fn raw(entry: meshlog::LogEntry<'_>) -> RawLogEntry {
    RawLogEntry {
        hash: entry.event.hash(),
        event: entry.event.event().clone(),
        status: entry.status.map(|status| status.to_string()),
        left_out: entry.left_out,
    }
}

pub(crate) fn raw_log(mesh: &meshlog::Mesh) -> Vec<RawLogEntry> {
    mesh.log().map(raw).collect()
}

/// One event of the log, found by its hash (a walk of the log: the status
/// comes with it).
pub(crate) fn raw_entry(mesh: &meshlog::Mesh, hash: EventHash) -> Option<RawLogEntry> {
    mesh.event(hash)?;
    mesh.log().find(|entry| entry.event.hash() == hash).map(raw)
}

pub(crate) fn log_entry(py: Python<'_>, raw: RawLogEntry) -> LogEntry {
    let event = raw.event;
    let (app_kind, payload) = match &event.body {
        Body::App { kind, payload, .. } => (Some(kind.clone()), Some(bytes(py, payload))),
        Body::SealedApp { kind, .. } => (Some(kind.clone()), None),
        _ => (None, None),
    };
    LogEntry {
        hash: hex(&raw.hash),
        author: event.author.to_string(),
        seq: event.seq,
        time: event.time,
        kind: event.body.kind_name().to_string(),
        epoch: event.epoch().as_ref().map(hex),
        status: raw.status,
        left_out: raw.left_out,
        app_kind,
        payload,
    }
}

/// A sealed message, opened.
#[pyclass(module = "meshlog._meshlog", frozen, get_all)]
pub(crate) struct Opened {
    /// Who sealed it (a member id).
    sender: String,
    epoch: String,
    /// Whether its epoch applies in the current resolution.
    epoch_applied: bool,
    /// Whether its epoch is the one the local member writes under now.
    epoch_current: bool,
    /// Whether the sender is in the roster now.
    sender_in_roster: bool,
    associated_data: Py<PyBytes>,
    /// Read in place, zeroized when dropped (`bytes(...)` copies it).
    plaintext: Py<crate::buffers::Plaintext>,
    /// The message's id, the same for every copy.
    id: String,
}

#[pymethods]
impl Opened {
    fn __repr__(&self) -> String {
        format!(
            "Opened(sender={}, epoch={}, id={})",
            self.sender, self.epoch, self.id
        )
    }
}

pub(crate) fn opened(py: Python<'_>, opened: meshlog::Opened) -> PyResult<Opened> {
    Ok(Opened {
        sender: opened.sender.to_string(),
        epoch: hex(&opened.epoch),
        epoch_applied: opened.epoch_applied,
        epoch_current: opened.epoch_current,
        sender_in_roster: opened.sender_in_roster,
        associated_data: bytes(py, &opened.associated_data),
        plaintext: Py::new(py, crate::buffers::Plaintext::new(opened.plaintext))?,
        id: opened.id.to_string(),
    })
}

/// What an ingest did.
#[pyclass(module = "meshlog._meshlog", frozen, get_all)]
pub(crate) struct Ingested {
    /// Events new to this mesh, now written.
    added: usize,
    /// Events it held already.
    known: usize,
    /// Valid events a peer may leave out, not taken (SPEC.md §6.4).
    left_out: usize,
    /// Whether the mesh now needs a merge.
    needs_merge: bool,
}

#[pymethods]
impl Ingested {
    fn __repr__(&self) -> String {
        format!(
            "Ingested(added={}, known={}, left_out={}, needs_merge={})",
            self.added, self.known, self.left_out, self.needs_merge
        )
    }
}

impl From<meshlog::Ingested> for Ingested {
    fn from(ingested: meshlog::Ingested) -> Ingested {
        Ingested {
            added: ingested.added,
            known: ingested.known,
            left_out: ingested.left_out,
            needs_merge: ingested.needs_merge,
        }
    }
}

/// What one exchange with a peer moved.
#[pyclass(module = "meshlog._meshlog", frozen, get_all)]
pub(crate) struct SyncReport {
    /// The peer's address.
    peer: String,
    /// The member the peer proved to be.
    member: String,
    /// Records the peer sent that were new here, now written.
    pulled: u64,
    /// Records the peer sent that were held already or left out.
    pulled_known: u64,
    /// Records sent to the peer.
    pushed: u64,
    /// Of those, records the peer said were new to it.
    pushed_added: u64,
    bytes_sent: u64,
    bytes_received: u64,
    /// Seconds from connecting to the end.
    elapsed: f64,
}

#[pymethods]
impl SyncReport {
    fn __repr__(&self) -> String {
        format!(
            "SyncReport(peer={}, pulled={}, pushed={})",
            self.peer, self.pulled, self.pushed
        )
    }
}

impl From<meshlog::net::SyncReport> for SyncReport {
    fn from(report: meshlog::net::SyncReport) -> SyncReport {
        SyncReport {
            peer: report.peer.to_string(),
            member: report.member.to_string(),
            pulled: report.pulled,
            pulled_known: report.pulled_known,
            pushed: report.pushed,
            pushed_added: report.pushed_added,
            bytes_sent: report.bytes_sent,
            bytes_received: report.bytes_received,
            elapsed: report.elapsed.as_secs_f64(),
        }
    }
}

/// Two or more events one author signed at one position of its feed, and
/// the shape of its branches in claimed time (SPEC.md §11.2): `restore`
/// (the branch from `later_branch` begins after the other ends, as an
/// honest restore makes it) or `overlapping`.
#[pyclass(module = "meshlog._meshlog", frozen, get_all)]
pub(crate) struct Equivocation {
    author: String,
    seq: u64,
    events: Vec<String>,
    shape: &'static str,
    later_branch: Option<String>,
}

#[pymethods]
impl Equivocation {
    fn __repr__(&self) -> String {
        format!(
            "Equivocation(author={}, seq={}, events={:?}, shape={})",
            self.author, self.seq, self.events, self.shape
        )
    }
}

pub(crate) fn equivocation(
    equivocation: &meshlog::Equivocation,
    shape: meshlog::ForkShape,
) -> Equivocation {
    Equivocation {
        author: equivocation.author.to_string(),
        seq: equivocation.seq,
        events: equivocation.events.iter().map(hex).collect(),
        shape: shape.name(),
        later_branch: match shape {
            meshlog::ForkShape::Restore { later } => Some(hex(&later)),
            _ => None,
        },
    }
}

pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<RosterEntry>()?;
    module.add_class::<EpochInfo>()?;
    module.add_class::<LogEntry>()?;
    module.add_class::<Opened>()?;
    module.add_class::<Ingested>()?;
    module.add_class::<SyncReport>()?;
    module.add_class::<Equivocation>()?;
    Ok(())
}
