//! Errors: one enum per concern, the umbrella [`Error`], and the one
//! classification of every error ([`ErrorClass`]).

use std::path::PathBuf;

use crate::batch::BatchError;
use crate::feeds::Missing;
use crate::ids::{EventHash, GroupId, MemberId};
use crate::keys::KeyError;
use crate::seal::SealError;
use crate::verify::{Rejection, SecretError};

/// Result with meshlog's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a stored projection row differs from the one the events imply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// The events imply the row; the table lacks it.
    Missing,
    /// The table holds a row the events do not imply.
    Unexpected,
    /// The row exists with a different value.
    Differs,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mismatch::Missing => "is missing",
            Mismatch::Unexpected => "is not implied by the events",
            Mismatch::Differs => "differs from what the events imply",
        })
    }
}

/// Why a change of a rotation is void: which of the rules K1–K5 of
/// SPEC.md §5.3 voids it, and on what ground.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VoidReason {
    /// K1: a key update for a member absent from the base, or whose
    /// package does not supersede the member's keys there.
    KeysNotNewer,
    /// K2: a change to the rotation's own author's entry.
    OwnEntry,
    /// K3: an owner grant by an author that is not an owner.
    OnlyOwnersMakeOwners,
    /// K3: an owner grant to a member that is an owner already.
    AlreadyOwner,
    /// K4: a change to an owner's entry other than a key update.
    Owner,
    /// K5: an addition of a member present in the base.
    AlreadyPresent,
    /// K5: a removal or role change of a member absent from the base.
    NotPresent,
    /// K5: a role change to the role the member has.
    SameRole,
    /// K5: a change to an admin's entry (or an admin's promotion's undoing)
    /// by an author that is not an owner.
    AdminEntry,
}

impl VoidReason {
    /// The id of the rule that voids the change (SPEC.md §12.2).
    pub fn rule(&self) -> &'static str {
        match self {
            VoidReason::KeysNotNewer => "K1",
            VoidReason::OwnEntry => "K2",
            VoidReason::OnlyOwnersMakeOwners | VoidReason::AlreadyOwner => "K3",
            VoidReason::Owner => "K4",
            VoidReason::AlreadyPresent
            | VoidReason::NotPresent
            | VoidReason::SameRole
            | VoidReason::AdminEntry => "K5",
        }
    }
}

impl std::fmt::Display for VoidReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VoidReason::KeysNotNewer => {
                "the member is not in the roster, or the package does not supersede its keys"
            }
            VoidReason::OwnEntry => {
                "it is its author's own entry, which no rotation changes: another admin must make it"
            }
            VoidReason::OnlyOwnersMakeOwners => {
                "the author's role does not permit it: only an owner makes owners"
            }
            VoidReason::AlreadyOwner => "the member is an owner already",
            VoidReason::Owner => {
                "the member is an owner: owners are never removed, demoted or added again"
            }
            VoidReason::AlreadyPresent => "the member is in the roster already",
            VoidReason::NotPresent => {
                "the member is not in the roster: removed already, or never added"
            }
            VoidReason::SameRole => "the member has that role already",
            VoidReason::AdminEntry => {
                "the author's role does not permit it: only an owner changes an admin's entry"
            }
        })
    }
}

/// Errors of the database file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No file at the path.
    #[error("{path}: no such file")]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// Creating would overwrite a file.
    #[error("{path} already exists; meshlog will not overwrite it")]
    Exists {
        /// The path.
        path: PathBuf,
    },
    /// Another process has the file open for writing, or another handle of
    /// this process has it open at all.
    #[error(
        "{path} is open for writing elsewhere (redb allows one writer at a time, and one handle per file within a process); stop that writer or retry later. A live mesh can still be read from another process: `meshlog verify` audits it and `meshlog backup` copies it consistently (a plain `cp` of a live file may not open)"
    )]
    Locked {
        /// The path.
        path: PathBuf,
    },
    /// The file is not a meshlog database.
    #[error("{path} is not a meshlog database ({detail})")]
    NotMeshlog {
        /// The path.
        path: PathBuf,
        /// What is missing or wrong.
        detail: String,
    },
    /// The file is of a format from before v3 (v1 or v2), which this build
    /// does not read: there is no released file to migrate (SPEC.md §9.5).
    #[error(
        "{path} is a meshlog file of store format {found} (format v{found}), which this build does not read; it reads format {supported} only, and earlier files are not migrated"
    )]
    OlderFormat {
        /// The path.
        path: PathBuf,
        /// The format found.
        found: u16,
        /// The format this build reads.
        supported: u16,
    },
    /// The file was written by a newer meshlog.
    #[error(
        "{path} has store format {found}, newer than this build reads ({supported}); upgrade meshlog"
    )]
    NewerFormat {
        /// The path.
        path: PathBuf,
        /// The format found.
        found: u16,
        /// The newest format this build reads.
        supported: u16,
    },
    /// The events table is not laid out as meshlog writes it: a gap in the
    /// positions, an event stored before what it names or twice, no
    /// genesis, or a group marker that is not the genesis's hash (SPEC.md
    /// §9.3).
    #[error("{path}: the stored events were altered: {detail}")]
    Tampered {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The journal beside the file continues a later state of it than the
    /// file holds (the file was replaced by an older copy, say): its events
    /// cannot be replayed, and the file is not opened, so that they are not
    /// lost (SPEC.md §9.6).
    #[error(
        "{path} continues the file from its event {base}, but the file holds {stored}: the file is older than its journal; restore the file that goes with it"
    )]
    JournalAhead {
        /// The journal's path.
        path: PathBuf,
        /// Where the journal starts.
        base: u64,
        /// How many events the file holds.
        stored: u64,
    },
    /// The journal's newest event awaits its signature (a writer crashed
    /// after acknowledging it), and the keys given cannot vouch for it (they
    /// are another member's, or its tag is not theirs): a writable open
    /// would lose it, so it refuses (SPEC.md §9.6).
    #[error(
        "{path} ends with an event made here whose signature is not on disk yet, and these keys cannot sign it (another member's, or the journal was not written with them): open the file with the keys that wrote it, or read-only"
    )]
    JournalAwaitsSignature {
        /// The journal's path.
        path: PathBuf,
    },
    /// A stored projection row disagrees with the events.
    #[error("projection table `{table}`: row {key} {problem}")]
    ProjectionMismatch {
        /// The table.
        table: &'static str,
        /// The row's key, as hex.
        key: String,
        /// How it differs.
        problem: Mismatch,
    },
    /// The disk filled up during a write; the transaction was rolled back.
    #[error(
        "the disk is full: nothing was written (the transaction was rolled back); free some space, then reopen the mesh and retry"
    )]
    DiskFull,
    /// The file is shorter than its own layout says: cut short by an
    /// interrupted copy or transfer, or a full disk. Damaged data, however
    /// it is opened (SPEC.md §12.1).
    #[error(
        "{path} is truncated: it holds {len} bytes, and its own layout says it was longer (an interrupted copy or transfer, a full disk); it cannot be verified. Restore it from a backup, or join again from a peer"
    )]
    Truncated {
        /// The path.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
    },
    /// redb found its own structures damaged.
    #[error("the database file is corrupt: {detail}")]
    Corrupt {
        /// What redb found.
        detail: String,
    },
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// redb reported an error (I/O, corruption, a full disk).
    #[error("database: {0}")]
    Redb(Box<redb::Error>),
}

impl StoreError {
    /// An I/O error on the file (or journal) at `path`; a full disk is
    /// [`StoreError::DiskFull`] wherever it is met, as redb's own is.
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> StoreError {
        match source.kind() {
            std::io::ErrorKind::StorageFull => StoreError::DiskFull,
            _ => StoreError::Io {
                path: path.to_owned(),
                source,
            },
        }
    }
}

macro_rules! from_redb {
    ($($ty:ty),*) => {$(
        impl From<$ty> for StoreError {
            fn from(error: $ty) -> Self {
                match redb::Error::from(error) {
                    redb::Error::Corrupted(detail) => StoreError::Corrupt { detail },
                    redb::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => {
                        StoreError::DiskFull
                    }
                    other => StoreError::Redb(Box::new(other)),
                }
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// What kind of failure an [`Error`] is: the one classification of the
/// library, which the CLI turns into its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The data is wrong: a file, batch or checkpoint whose events break a
    /// rule, are incomplete, or were rolled back. Nothing was written.
    VerificationFailure,
    /// The rules say no to what was asked of the local member (a change its
    /// role does not permit, a write that must wait for a merge, a secret
    /// of an epoch it is not in). Nothing was written.
    Refusal,
    /// The operation could not run: no such file, not a meshlog file, a
    /// lock, I/O, a key file, a read-only handle, an unknown epoch.
    CouldNotRun,
}

/// Every error of meshlog.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An event from a file or a peer breaks a rule: the file or batch is
    /// refused whole (SPEC.md §7.1).
    #[error(transparent)]
    Rejected(Rejection),
    /// An event made here breaks a rule (the local member's role does not
    /// permit it, for one): nothing was written. A rotation the epoch graph
    /// refuses is refused before it is made, and then its hash is
    /// [`EventHash::ZERO`].
    #[error("{}", refusal(.0))]
    Refused(Rejection),
    /// The database file.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key file.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// A batch's bytes are malformed.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// A batch with no genesis offered to a join.
    #[error("the batch holds no genesis; a join needs the mesh from its genesis")]
    NoGenesis,
    /// A batch whose header names another group than its events, or than
    /// this mesh.
    #[error("the batch names group {theirs}, but its events (or this mesh) are of group {ours}")]
    ForeignBatch {
        /// The group of the events (or of this mesh).
        ours: GroupId,
        /// The group the header names.
        theirs: GroupId,
    },
    /// Events of a batch (or a file) name events neither it nor the mesh
    /// holds: a peer's batch that is incomplete, or a file whose events
    /// were altered so that their links break. Nothing was written.
    #[error("{count} events wait for events that are not there: {waiting} names {first}")]
    Incomplete {
        /// How many.
        count: usize,
        /// The first event that waits.
        waiting: EventHash,
        /// What it waits for.
        first: Missing,
    },
    /// The file no longer holds a state recorded from it earlier: these
    /// heads of the checkpoint are gone (a rollback).
    #[error("rolled back: {} events of the checkpoint are missing, first {}", .missing.len(), .missing.first().map(ToString::to_string).unwrap_or_default())]
    RolledBack {
        /// The checkpoint's heads the file lacks.
        missing: Vec<EventHash>,
    },
    /// A rotation made here with a change that would be void in its own
    /// causal past (K1–K5, SPEC.md §5.3), and so in every resolution: the
    /// local member's role does not permit it, or it touches the author's
    /// own entry (leaving is asking another admin). Nothing was written.
    #[error(
        "the {change} of {member} would be void (SPEC.md §5.3, {}): {reason}; nothing was written",
        reason.rule()
    )]
    VoidChange {
        /// Whose entry the change touches.
        member: crate::ids::MemberId,
        /// "addition", "removal", "role change" or "key update".
        change: &'static str,
        /// Why: the first rule of K1–K5 that voids it.
        reason: VoidReason,
    },
    /// More tips than one rotation names (`MAX_PARENTS`), and no merge of
    /// two or more of them has a base within `R*`: a rotation here would
    /// wrap its secret to someone the resolved roster lacks (SPEC.md §5.1).
    #[error(
        "the mesh has {tips} tips, more than one rotation names, and no merge of some of them keeps its secret within the resolved roster; nothing was written"
    )]
    NoSafeMerge {
        /// How many tips.
        tips: usize,
    },
    /// More tips than one rotation names (`MAX_PARENTS`): a rotation with
    /// changes waits until [`crate::Mesh::merge`] has merged in steps, so
    /// that its changes are made on `R*` (SPEC.md §5.1).
    #[error(
        "the mesh has {tips} tips, more than one rotation names: merge first (`meshlog merge`), then make this change; nothing was written"
    )]
    MergeFirst {
        /// How many tips.
        tips: usize,
    },
    /// A rotation's base would hold a member the resolved roster lacks, so
    /// its secret would reach it (SPEC.md §5.1): refused, never written.
    #[error(
        "a rotation here would wrap its secret to {member}, whom the resolved roster lacks; nothing was written"
    )]
    WouldWrapToOutsider {
        /// The member outside `R*`.
        member: crate::ids::MemberId,
    },
    /// An epoch secret could not be recovered.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The local member is not in `R*`: removed, or not added yet. It may
    /// still read, verify and sync, and recover the secrets of the epochs
    /// it was in.
    #[error("member {member} is not in the mesh's roster: removed, or not added yet")]
    NotInRoster {
        /// The local member.
        member: crate::ids::MemberId,
    },
    /// No epoch the local member may write under until an admin merges:
    /// its feed has moved past every epoch whose roster holds it, or it is
    /// in no epoch of the current resolution.
    #[error("no epoch to write under until an admin merges the mesh")]
    WaitsForMerge,
    /// A message could not be sealed or opened (SPEC.md §16).
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The local member's flag is off: a disabled member does not seal
    /// (it writes no event either, F5).
    #[error("member {member} is disabled; enable it to seal messages")]
    Disabled {
        /// The local member.
        member: crate::ids::MemberId,
    },
    /// The mesh was opened read-only.
    #[error("the mesh is open read-only")]
    ReadOnly,
    /// The mesh was opened without local keys.
    #[error("the mesh was opened without local keys")]
    NoKeys,
    /// A writable open of another member's copy (SPEC.md §9.1): events
    /// written with these keys would go into a copy their member does not
    /// keep, and its next write on its own copy would fork its feed (an
    /// equivocation, §4.4). No event and no journal byte was written (redb's
    /// own open may rewrite its header, as any writable open does).
    #[error(
        "this copy ({path}) belongs to member {owner}, not to {member} whose keys were given; use its key file, or pass --shared-copy (MeshOptions::shared_copy) if this copy is deliberately shared. No event was written"
    )]
    ForeignCopy {
        /// The file.
        path: PathBuf,
        /// The member whose copy the file is.
        owner: MemberId,
        /// The member whose keys were given.
        member: MemberId,
    },
    /// The copy lacks the newest event of the local member's own feed that
    /// its feed mark names (SPEC.md §11.2): it is older than the feed,
    /// restored from a backup say, and a write here would sign a second
    /// event at a position the feed holds (an equivocation, §4.4). No event
    /// was written.
    #[error(
        "this copy is older than your feed: {path} lacks member {member}'s event {event} (seq {seq}), which {mark} records as its newest, so a write here would fork its feed. Sync from a peer first (`meshlog ingest`, `meshlog sync`); or, if that event never reached any peer and is lost, pass --accept-restored-copy (MeshOptions::accept_restored_copy). No event was written"
    )]
    CopyBehindFeed {
        /// The file.
        path: PathBuf,
        /// The local member.
        member: MemberId,
        /// The marked event's position in its feed.
        seq: u64,
        /// The marked event.
        event: EventHash,
        /// The feed mark.
        mark: PathBuf,
    },
    /// The feed mark beside the key file (SPEC.md §11.2) could not be read
    /// or written.
    #[error("feed mark {path}: {detail}")]
    FeedMark {
        /// The feed mark.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

impl Error {
    /// Which kind of failure this is. Every error has exactly one class;
    /// the CLI exits 1 for a verification failure or a refusal and 2 when
    /// it could not run.
    pub fn class(&self) -> ErrorClass {
        match self {
            // Bytes that are no batch of this format are the wrong file,
            // as a file that is no meshlog database is: the command never
            // reached the rules.
            Error::Batch(BatchError::BadMagic | BatchError::UnsupportedVersion { .. }) => {
                ErrorClass::CouldNotRun
            }
            Error::Rejected(_)
            | Error::Batch(_)
            | Error::NoGenesis
            | Error::ForeignBatch { .. }
            | Error::Incomplete { .. }
            | Error::RolledBack { .. }
            | Error::Secret(SecretError::Envelope(_))
            | Error::Seal(
                SealError::DecryptFailed { .. }
                | SealError::InvalidContent(_)
                | SealError::UnknownSender { .. }
                | SealError::BadSignature { .. }
                | SealError::SenderMismatch { .. },
            )
            | Error::Store(
                StoreError::ProjectionMismatch { .. }
                | StoreError::Tampered { .. }
                | StoreError::Truncated { .. }
                | StoreError::Corrupt { .. },
            ) => ErrorClass::VerificationFailure,
            Error::Refused(_)
            | Error::VoidChange { .. }
            | Error::NoSafeMerge { .. }
            | Error::MergeFirst { .. }
            | Error::WouldWrapToOutsider { .. }
            | Error::NotInRoster { .. }
            | Error::WaitsForMerge
            | Error::Disabled { .. }
            | Error::Seal(SealError::NotAMember { .. })
            | Error::Secret(SecretError::NotARecipient { .. }) => ErrorClass::Refusal,
            Error::Store(_)
            | Error::Keys(_)
            | Error::Secret(SecretError::UnknownEpoch(_))
            | Error::ReadOnly
            | Error::NoKeys
            | Error::ForeignCopy { .. }
            | Error::CopyBehindFeed { .. }
            | Error::FeedMark { .. }
            | Error::Seal(
                SealError::Malformed(_)
                | SealError::TooLarge { .. }
                | SealError::ForeignGroup { .. }
                | SealError::UnknownEpoch(_)
                | SealError::NotSealed(_)
                | SealError::WrongContext { .. }
                | SealError::Randomness,
            ) => ErrorClass::CouldNotRun,
        }
    }

    /// The rejection, when an event broke a rule (from outside or made here).
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            Error::Rejected(rejection) | Error::Refused(rejection) => Some(rejection),
            _ => None,
        }
    }

    /// The id of the rule behind the error (SPEC.md §12.2): a refused
    /// event's (V1–V10, F1–F7, E1–E8), or the K rule that voids a change
    /// (K1–K5); `None` for any other error.
    pub fn rule_id(&self) -> Option<&'static str> {
        match self {
            Error::VoidChange { reason, .. } => Some(reason.rule()),
            _ => self.rejection().map(|rejection| rejection.rule.id()),
        }
    }

    /// A short, stable name of what went wrong, finer than the class: what
    /// the CLI's `--json` and the Python package report as `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Rejected(_) => "rejected",
            Error::Refused(_) => "refused",
            Error::VoidChange { .. } => "void-change",
            Error::Store(StoreError::Truncated { .. }) => "truncated",
            Error::NoSafeMerge { .. } => "no-safe-merge",
            Error::MergeFirst { .. } => "merge-first",
            Error::WouldWrapToOutsider { .. } => "outside-roster",
            Error::Store(_) => "store",
            Error::Keys(_) => "keys",
            Error::Batch(BatchError::BadMagic) => "not-a-batch",
            Error::Batch(BatchError::UnsupportedVersion { .. }) => "unsupported-batch",
            Error::Batch(_) => "malformed-batch",
            Error::NoGenesis => "no-genesis",
            Error::ForeignBatch { .. } => "foreign-batch",
            Error::Incomplete { .. } => "incomplete",
            Error::RolledBack { .. } => "rolled-back",
            Error::Secret(_) => "secret",
            Error::WaitsForMerge => "waits-for-merge",
            Error::NotInRoster { .. } => "not-in-roster",
            Error::ReadOnly => "read-only",
            Error::NoKeys => "no-keys",
            Error::Seal(_) => "sealed-message",
            Error::Disabled { .. } => "disabled",
            Error::ForeignCopy { .. } => "foreign-copy",
            Error::CopyBehindFeed { .. } => "copy-behind-feed",
            Error::FeedMark { .. } => "feed-mark",
        }
    }
}

impl ErrorClass {
    /// The class's name: `verification-failure`, `refusal` or
    /// `could-not-run`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::VerificationFailure => "verification-failure",
            ErrorClass::Refusal => "refusal",
            ErrorClass::CouldNotRun => "could-not-run",
        }
    }
}

/// A local refusal, said without naming a hash that no event has.
fn refusal(rejection: &Rejection) -> String {
    if rejection.hash == EventHash::ZERO {
        format!(
            "refused before it was made (it would have been seq {} of {}): {}",
            rejection.seq, rejection.author, rejection.rule
        )
    } else {
        rejection.to_string()
    }
}

impl From<Rejection> for Error {
    fn from(rejection: Rejection) -> Self {
        Error::Rejected(rejection)
    }
}
