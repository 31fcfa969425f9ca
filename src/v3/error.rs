//! The errors of the v3 engine, until v3 replaces v2 and they join
//! [`crate::Error`] (one classification: verification failure, refusal,
//! could not run).

use super::feeds::Missing;
use super::verify::{Rejection, SecretError};
use crate::ids::GroupId;

/// Why a v3 operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MeshError {
    /// An event broke a rule: the data is wrong.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The file could not be created, opened, read or written, or is not a
    /// v3 meshlog file, or its projections differ from its events.
    #[error(transparent)]
    Store(#[from] crate::Error),
    /// A batch with no genesis offered to a join.
    #[error("the batch holds no genesis; a join needs the mesh from its genesis")]
    NoGenesis,
    /// A batch whose header names another group than its events.
    #[error("the batch names group {theirs}, but its events are of group {ours}")]
    ForeignBatch {
        /// The group of the events (or of this mesh).
        ours: GroupId,
        /// The group the header names.
        theirs: GroupId,
    },
    /// Events of a batch (or a file) name events neither it nor the mesh
    /// holds: a peer's batch that is incomplete, or a file whose events
    /// were altered so that their links break.
    #[error("{count} events wait for events that are not there: {waiting} names {first:?}")]
    Incomplete {
        /// How many.
        count: usize,
        /// The first event that waits.
        waiting: crate::ids::EventHash,
        /// What it waits for.
        first: Missing,
    },
    /// A batch's bytes are malformed.
    #[error(transparent)]
    Batch(#[from] crate::batch::BatchError),
    /// The file no longer holds a state recorded from it earlier: these
    /// heads of the checkpoint are gone (a rollback).
    #[error("rolled back: {} events of the checkpoint are missing, first {}", .missing.len(), .missing.first().map(ToString::to_string).unwrap_or_default())]
    RolledBack {
        /// The checkpoint's heads the file lacks.
        missing: Vec<crate::ids::EventHash>,
    },
    /// An epoch secret could not be recovered.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// No epoch the local member may write under until a merge: its feed
    /// has moved past every epoch whose roster holds it.
    #[error("no epoch to write under until an admin merges the mesh")]
    WaitsForMerge,
    /// The mesh was opened without local keys, or read-only.
    #[error("the mesh is open read-only or without local keys")]
    ReadOnly,
}

impl From<crate::error::StoreError> for MeshError {
    fn from(error: crate::error::StoreError) -> Self {
        MeshError::Store(error.into())
    }
}
