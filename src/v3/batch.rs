//! v3 batches: records moved between peers as bytes (SPEC-v3.md §7).
//!
//! The container of SPEC.md §9.1 less `first`: [`BATCH_MAGIC`], then
//! postcard of `(version, group, records)`. Records are in an order in which
//! each comes after what it names, though a receiver takes them in any
//! order. A batch is only a container: every record is verified on ingest.

use serde::{Deserialize, Serialize};

use crate::batch::{BATCH_MAGIC, BatchError, MAX_BATCH_EVENTS};
use crate::codec;
use crate::ids::GroupId;

/// The batch format of v3 (v2's batches are format 1).
pub(crate) const BATCH_VERSION_V3: u16 = 2;

/// Records of one group, for a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Batch {
    version: u16,
    group: GroupId,
    records: Vec<Vec<u8>>,
}

impl Batch {
    pub(crate) fn new(group: GroupId, records: Vec<Vec<u8>>) -> Batch {
        Batch {
            version: BATCH_VERSION_V3,
            group,
            records,
        }
    }

    pub(crate) fn group(&self) -> GroupId {
        self.group
    }

    pub(crate) fn records(&self) -> &[Vec<u8>] {
        &self.records
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = BATCH_MAGIC.to_vec();
        bytes.extend(codec::encode(self));
        bytes
    }

    /// Strictly decodes a batch: magic, this version, no trailing bytes,
    /// canonical form, at most [`MAX_BATCH_EVENTS`] records.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Batch, BatchError> {
        let body = bytes
            .strip_prefix(BATCH_MAGIC.as_slice())
            .ok_or(BatchError::BadMagic)?;
        let version = codec::leading_version(body)?;
        if version != BATCH_VERSION_V3 {
            return Err(BatchError::UnsupportedVersion {
                found: version,
                supported: BATCH_VERSION_V3,
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
                supported: BATCH_VERSION_V3
            })
        );
    }
}
