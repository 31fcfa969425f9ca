//! Batches: consecutive stored events, moved between peers as bytes (SPEC.md §9.1).
//!
//! meshlog does not move bytes itself; an application carries batches over
//! whatever transport it has. A batch is only a container: every record in it
//! is verified by the reducer when it is ingested, exactly as on open.

use serde::{Deserialize, Serialize};

use crate::chain::SignedEvent;
use crate::codec::{self, CodecError};
use crate::ids::GroupId;

/// First bytes of an encoded batch.
pub const BATCH_MAGIC: &[u8; 8] = b"mlbatch\0";
/// The batch format this build writes and reads.
pub const BATCH_VERSION: u16 = 1;
/// Most events one batch may hold.
pub const MAX_BATCH_EVENTS: usize = 1_000_000;

/// Consecutive stored events of one group, starting at `first`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    version: u16,
    group: GroupId,
    first: u64,
    records: Vec<Vec<u8>>,
}

/// Why bytes are not a well-formed batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The bytes do not start with [`BATCH_MAGIC`].
    #[error("not a meshlog batch (bad magic)")]
    BadMagic,
    /// A batch of another format version.
    #[error(
        "batch format {found} is not supported (this build reads {supported}); upgrade meshlog"
    )]
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
    /// The batch's events would run past `u64::MAX`.
    #[error("batch seq range overflows")]
    SeqOverflow,
    /// A join needs the chain from its genesis; this batch holds no event.
    #[error("the batch holds no events; a join needs one that starts at the genesis")]
    Empty,
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
    pub(crate) fn new(group: GroupId, first: u64, records: Vec<Vec<u8>>) -> Batch {
        Batch {
            version: BATCH_VERSION,
            group,
            first,
            records,
        }
    }

    /// The group the exporting peer belongs to.
    pub fn group(&self) -> GroupId {
        self.group
    }

    /// Seq of the first event.
    pub fn first(&self) -> u64 {
        self.first
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The stored records (`signature || event bytes`), in order.
    pub fn records(&self) -> impl Iterator<Item = (u64, &[u8])> {
        (self.first..).zip(self.records.iter().map(Vec::as_slice))
    }

    /// Strictly decodes each record (no signature or rule is checked here).
    pub fn events(
        &self,
    ) -> impl Iterator<Item = (u64, Result<SignedEvent, crate::event::DecodeError>)> {
        self.records()
            .map(|(seq, record)| (seq, SignedEvent::from_record(record)))
    }

    /// Splits the batch into consecutive batches of at most `max_events`
    /// events each (at least one), for transports that limit message size.
    pub fn chunks(&self, max_events: usize) -> impl Iterator<Item = Batch> + '_ {
        let size = max_events.max(1);
        (self.first..)
            .step_by(size)
            .zip(self.records.chunks(size))
            .map(|(first, records)| Batch::new(self.group, first, records.to_vec()))
    }

    /// The encoding: [`BATCH_MAGIC`] then postcard of
    /// `(version, group, first, records)`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = BATCH_MAGIC.to_vec();
        bytes.extend(codec::encode(self));
        bytes
    }

    /// Strictly decodes a batch: magic, known version, no trailing bytes,
    /// canonical form, at most [`MAX_BATCH_EVENTS`] events.
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
        if batch
            .first
            .checked_add(batch.records.len() as u64)
            .is_none()
        {
            return Err(BatchError::SeqOverflow);
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Batch {
        Batch::new(GroupId::from_bytes([4; 32]), 7, vec![vec![1, 2, 3], vec![]])
    }

    #[test]
    fn round_trip() {
        let batch = sample();
        assert_eq!(Batch::from_bytes(&batch.to_bytes()), Ok(batch));
    }

    #[test]
    fn chunks_cover_the_batch_in_order() {
        let batch = Batch::new(
            GroupId::from_bytes([1; 32]),
            10,
            (0..7u8).map(|i| vec![i]).collect(),
        );
        let chunks: Vec<Batch> = batch.chunks(3).collect();
        assert_eq!(
            chunks.iter().map(Batch::first).collect::<Vec<_>>(),
            [10, 13, 16]
        );
        assert_eq!(chunks.iter().map(Batch::len).collect::<Vec<_>>(), [3, 3, 1]);
        let rejoined: Vec<_> = chunks
            .iter()
            .flat_map(|c| {
                c.records()
                    .map(|(s, r)| (s, r.to_vec()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let original: Vec<_> = batch.records().map(|(s, r)| (s, r.to_vec())).collect();
        assert_eq!(rejoined, original);
    }

    #[test]
    fn strictness() {
        let bytes = sample().to_bytes();
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            Batch::from_bytes(&trailing),
            Err(BatchError::TrailingBytes(1))
        );
        for len in 0..bytes.len() {
            assert!(Batch::from_bytes(&bytes[..len]).is_err(), "prefix {len}");
        }
        let mut magic = bytes.clone();
        magic[0] ^= 1;
        assert_eq!(Batch::from_bytes(&magic), Err(BatchError::BadMagic));
        let mut version = bytes.clone();
        version[8] = 2;
        assert!(matches!(
            Batch::from_bytes(&version),
            Err(BatchError::UnsupportedVersion { found: 2, .. })
        ));
        // first = 7 is one varint byte after magic (8), version (1) and group (32).
        let mut overlong = bytes;
        overlong.splice(41..42, [0x87, 0x00]);
        assert_eq!(Batch::from_bytes(&overlong), Err(BatchError::NonCanonical));
    }
}
