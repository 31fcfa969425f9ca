//! Errors, one enum per concern, and the umbrella [`Error`].

use std::path::PathBuf;

use crate::envelope::EnvelopeError;
use crate::ids::MemberId;
use crate::keys::KeyError;
use crate::reducer::{KeyKind, Rejection};

/// Result with meshlog's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a stored projection row differs from the one the chain implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// The chain implies the row; the table lacks it.
    Missing,
    /// The table holds a row the chain does not imply.
    Unexpected,
    /// The row exists with a different value.
    Differs,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mismatch::Missing => "is missing",
            Mismatch::Unexpected => "is not implied by the chain",
            Mismatch::Differs => "differs from what the chain implies",
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
    /// A stored projection row disagrees with the chain.
    #[error("projection table `{table}`: row {key} {problem}")]
    ProjectionMismatch {
        /// The table.
        table: &'static str,
        /// The row's key, as hex.
        key: String,
        /// How it differs.
        problem: Mismatch,
    },
    /// A row of the `equivocations` table is not valid evidence.
    #[error("equivocation evidence {key}: {detail}")]
    BadEvidence {
        /// The row's key (or seq).
        key: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The disk filled up during a write; the transaction was rolled back.
    #[error(
        "the disk is full: nothing was written (the transaction was rolled back); free some space, then reopen the mesh and retry"
    )]
    DiskFull,
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

/// Two valid events at one seq: the peers' histories diverge there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fork at seq {seq}: this chain holds {}, the batch holds {}{}", .ours.hash(), .theirs.hash(),
    if *.equivocation { " — both signed by the same author, kept as evidence of equivocation" } else { "" })]
pub struct Fork {
    /// The seq where the histories diverge.
    pub seq: u64,
    /// The event this chain holds.
    pub ours: crate::chain::SignedEvent,
    /// The event the batch holds.
    pub theirs: crate::chain::SignedEvent,
    /// Whether one author signed both (then the pair is kept as evidence).
    pub equivocation: bool,
}

/// Every error of meshlog.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An event breaks a rule: one being appended (nothing was written), or a
    /// stored one found while verifying (the file is refused).
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The database file.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key file.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// Wrapping or recovering an epoch secret.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The local member is disabled: it may read, verify and enable itself,
    /// but not act on the group.
    #[error("member {member} is disabled; enable it first")]
    Disabled {
        /// The local member.
        member: MemberId,
    },
    /// The mesh was opened read-only.
    #[error("the mesh is open read-only")]
    ReadOnly,
    /// The mesh was opened without local keys.
    #[error("the mesh was opened without local keys")]
    NoKeys,
    /// The local member is not in the epoch asked about.
    #[error("member {member} is not a member of epoch {epoch}")]
    NotAMember {
        /// The member.
        member: MemberId,
        /// The epoch.
        epoch: u64,
    },
    /// The member to add is already in the roster.
    #[error("member {member} is already in the roster")]
    AlreadyMember {
        /// The member.
        member: MemberId,
    },
    /// The member to change or remove is not in the roster.
    #[error("member {member} is not in the current roster")]
    UnknownMember {
        /// The member.
        member: MemberId,
    },
    /// The member already has that role.
    #[error("member {member} already has that role")]
    RoleUnchanged {
        /// The member.
        member: MemberId,
    },
    /// A public key offered for admission is malformed or weak.
    #[error("the {kind} key offered for member {member} is invalid or of small order")]
    InadmissibleKey {
        /// The member.
        member: MemberId,
        /// Which key.
        kind: KeyKind,
    },
    /// No such epoch in the chain.
    #[error("epoch {epoch} does not exist (the current epoch is {current})")]
    NoSuchEpoch {
        /// The epoch asked for.
        epoch: u64,
        /// The newest epoch.
        current: u64,
    },
    /// No event at that seq.
    #[error("no event at seq {seq} (the chain has {len} events)")]
    NoSuchEvent {
        /// The seq asked for.
        seq: u64,
        /// Number of events.
        len: u64,
    },
    /// The stored head moved since this handle's view: another writer
    /// appended. Ingest or reopen first.
    #[error(
        "the chain's head is no longer {expected:?}: another writer appended; ingest or reopen, then retry"
    )]
    StaleHead {
        /// The head this handle expected.
        expected: Option<crate::ids::EventHash>,
    },
    /// A batch does not connect to the local chain.
    #[error(
        "batch starts at seq {first}, but the local chain needs seq {missing} next: fetch the events from {missing} on"
    )]
    Gap {
        /// The first seq the local chain lacks.
        missing: u64,
        /// The batch's first seq.
        first: u64,
    },
    /// A batch is of another group.
    #[error("batch is of group {theirs}, this chain is group {ours}")]
    ForeignBatch {
        /// This chain's group.
        ours: crate::ids::GroupId,
        /// The batch's group.
        theirs: crate::ids::GroupId,
    },
    /// A batch holds a different valid event at a seq this chain already has.
    #[error(transparent)]
    Fork(Box<Fork>),
    /// A batch's bytes are malformed.
    #[error(transparent)]
    Batch(#[from] crate::batch::BatchError),
    /// The roster lists this member with another DH key than the local one.
    #[error(
        "epoch {epoch} lists member {member} with another DH key than the local key file holds"
    )]
    DhKeyMismatch {
        /// The member.
        member: MemberId,
        /// The epoch.
        epoch: u64,
    },
}

impl Error {
    /// Whether this error means the data is wrong (a chain or projection that
    /// fails verification), as opposed to an operation that could not run
    /// (missing file, lock, I/O, bad arguments).
    pub fn is_verification_failure(&self) -> bool {
        matches!(
            self,
            Error::Rejected(_)
                | Error::Store(
                    StoreError::ProjectionMismatch { .. }
                        | StoreError::Corrupt { .. }
                        | StoreError::BadEvidence { .. }
                )
        )
    }
}
