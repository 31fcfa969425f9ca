//! Batches: records moved between peers as bytes (SPEC.md §7).
//!
//! [`BATCH_MAGIC`], then postcard of `(version, group, records)`. Records
//! come in an order in which each follows what it names, though a receiver
//! takes them in any order. meshlog does not move bytes itself; an
//! application carries batches over whatever transport it has. A batch is
//! only a container: every record is verified on ingest, exactly as on open.

use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::ids::GroupId;

/// First bytes of an encoded batch.
pub const BATCH_MAGIC: &[u8; 8] = b"mlbatch\0";
/// The batch format this build writes and reads (format 1 was v2's, whose
/// records are refused anyway).
pub const BATCH_VERSION: u16 = 2;
/// Most records one batch may hold.
pub const MAX_BATCH_EVENTS: usize = 1_000_000;

/// Records of one group, for a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    version: u16,
    group: GroupId,
    records: Vec<Vec<u8>>,
}

/// Why bytes are not a well-formed batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The bytes do not start with [`BATCH_MAGIC`].
    #[error("not a meshlog batch (bad magic)")]
    BadMagic,
    /// A batch of another format version: format 1 was v2's.
    #[error("{}", if *.found < *.supported {
        format!("a batch of format {found}{}, which this build does not read (it reads batch format {supported} only)",
            if *.found == 1 { " (format v2's batches)" } else { "" })
    } else {
        format!("batch format {found} is newer than this build reads ({supported}); upgrade meshlog")
    })]
    UnsupportedVersion {
        /// Version found.
        found: u16,
        /// Version this build reads.
        supported: u16,
    },
    /// Truncated or otherwise undecodable.
    #[error("malformed batch: {0}")]
    Malformed(String),
    /// Bytes left after the batch.
    #[error("{0} trailing bytes after the batch")]
    TrailingBytes(usize),
    /// Decodes, but is not in canonical form.
    #[error("batch bytes are not in canonical form")]
    NonCanonical,
    /// More than [`MAX_BATCH_EVENTS`] events.
    #[error("batch holds {0} events, more than the limit of {MAX_BATCH_EVENTS}")]
    TooManyEvents(usize),
}

impl From<CodecError> for BatchError {
    fn from(error: CodecError) -> Self {
        match error {
            CodecError::Malformed(detail) => BatchError::Malformed(detail),
            CodecError::TrailingBytes(n) => BatchError::TrailingBytes(n),
            CodecError::NonCanonical => BatchError::NonCanonical,
        }
    }
}

impl Batch {
    /// A batch of `records` of `group`.
    pub fn new(group: GroupId, records: Vec<Vec<u8>>) -> Batch {
        Batch {
            version: BATCH_VERSION,
            group,
            records,
        }
    }

    /// The group its header names.
    pub fn group(&self) -> GroupId {
        self.group
    }

    /// Its stored records (`signature || event bytes`), in the sender's order.
    pub fn records(&self) -> &[Vec<u8>] {
        &self.records
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Its bytes: [`BATCH_MAGIC`], then the canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = BATCH_MAGIC.to_vec();
        bytes.extend(codec::encode(self));
        bytes
    }

    /// Strictly decodes a batch: magic, this version, no trailing bytes,
    /// canonical form, at most [`MAX_BATCH_EVENTS`] records.
    pub fn from_bytes(bytes: &[u8]) -> Result<Batch, BatchError> {
        let body = bytes
            .strip_prefix(BATCH_MAGIC.as_slice())
            .ok_or(BatchError::BadMagic)?;
        let version = codec::leading_version(body)?;
        if version != BATCH_VERSION {
            return Err(BatchError::UnsupportedVersion {
                found: version,
                supported: BATCH_VERSION,
            });
        }
        let batch: Batch = codec::decode_exact(body)?;
        if batch.records.len() > MAX_BATCH_EVENTS {
            return Err(BatchError::TooManyEvents(batch.records.len()));
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_batches_are_refused_by_name_newer_ones_ask_for_an_upgrade() {
        let mut bytes = Batch::new(GroupId::from_bytes([3; 32]), vec![]).to_bytes();
        let version = BATCH_MAGIC.len();
        bytes[version] = 1;
        let older = Batch::from_bytes(&bytes).unwrap_err().to_string();
        assert!(older.contains("format v2's batches"), "{older}");
        assert!(!older.contains("upgrade"), "{older}");
        bytes[version] = 9;
        let newer = Batch::from_bytes(&bytes).unwrap_err().to_string();
        assert!(newer.contains("upgrade meshlog"), "{newer}");
    }

    #[test]
    fn round_trip_and_strictness() {
        let batch = Batch::new(GroupId::from_bytes([3; 32]), vec![vec![1, 2], vec![]]);
        let bytes = batch.to_bytes();
        assert_eq!(Batch::from_bytes(&bytes), Ok(batch));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            Batch::from_bytes(&trailing),
            Err(BatchError::TrailingBytes(1))
        );
        assert_eq!(Batch::from_bytes(b"nonsense"), Err(BatchError::BadMagic));
        // A v2 batch (format 1) is named as such.
        let mut v2 = bytes;
        v2[BATCH_MAGIC.len()] = 1;
        assert_eq!(
            Batch::from_bytes(&v2),
            Err(BatchError::UnsupportedVersion {
                found: 1,
                supported: BATCH_VERSION
            })
        );
    }
}
