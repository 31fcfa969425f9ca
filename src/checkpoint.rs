//! A member's checkpoint of its own file, and the tags on the file's rows
//! (SPEC.md §9.7): what lets the member whose copy a file is reopen it in
//! time proportional to what is new, without trusting anyone else who can
//! write the file.
//!
//! The checkpoint states, under a key only the member holds, how many
//! events of the file it verified and the small part of the state those
//! imply that resolution and the next event need (each feed's heads, every
//! forked position, the events left out), with a digest of the rotations in
//! the order stored. Every row the file keeps for one event is tagged with
//! another key of the member's, so that a row read later is one it wrote.

use zeroize::Zeroizing;

use crate::ids::{EventHash, MemberId};

/// The keys that tag one member's file (SPEC.md §9.7).
pub(crate) struct FileKeys {
    /// The member they are of.
    pub(crate) member: MemberId,
    /// Tags rows.
    pub(crate) row: Zeroizing<[u8; 32]>,
    /// Tags the checkpoint.
    pub(crate) checkpoint: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for FileKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileKeys")
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

/// How many bytes of a row's tag are kept.
pub(crate) const ROW_TAG_LEN: usize = 16;

/// The tag of a row: the first 16 bytes of `keyed_hash(row key, key ||
/// value)`, the value without its tag.
pub(crate) fn row_tag(key: &[u8; 32], row_key: &[u8], value: &[u8]) -> [u8; ROW_TAG_LEN] {
    let mut hasher = blake3::Hasher::new_keyed(key);
    hasher.update(&(row_key.len() as u32).to_be_bytes());
    hasher.update(row_key);
    hasher.update(value);
    let mut tag = [0; ROW_TAG_LEN];
    tag.copy_from_slice(&hasher.finalize().as_bytes()[..ROW_TAG_LEN]);
    tag
}

/// The checkpoint format version.
const VERSION: u16 = 1;

/// What a checkpoint states (SPEC.md §9.7).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Checkpoint {
    /// How many events, from position 0, it covers.
    pub(crate) events: u64,
    /// How many of them are rotations (the genesis not counted).
    pub(crate) rotations: u64,
    /// The digest of those rotations' hashes, in the order stored.
    pub(crate) rotations_digest: [u8; 32],
    /// Each feed's heads: author, seq, hash; in author, then hash order.
    pub(crate) heads: Vec<(MemberId, u64, EventHash)>,
    /// Every forked position: author, seq, and the events there in hash
    /// order.
    pub(crate) forks: Vec<(MemberId, u64, Vec<EventHash>)>,
    /// The events left out (SPEC.md §6.4), in hash order.
    pub(crate) left_out: Vec<EventHash>,
}

/// Why stored checkpoint bytes were not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// Not a checkpoint of this build's format.
    Malformed,
    /// The tag does not check under the member's key.
    BadTag,
}

impl Checkpoint {
    /// The bytes stored: the body, then its tag under `keys`.
    pub(crate) fn encode(&self, keys: &FileKeys) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(keys.member.as_bytes());
        out.extend_from_slice(&self.events.to_be_bytes());
        out.extend_from_slice(&self.rotations.to_be_bytes());
        out.extend_from_slice(&self.rotations_digest);
        out.extend_from_slice(&(self.heads.len() as u32).to_be_bytes());
        for (author, seq, hash) in &self.heads {
            out.extend_from_slice(author.as_bytes());
            out.extend_from_slice(&seq.to_be_bytes());
            out.extend_from_slice(hash.as_bytes());
        }
        out.extend_from_slice(&(self.forks.len() as u32).to_be_bytes());
        for (author, seq, hashes) in &self.forks {
            out.extend_from_slice(author.as_bytes());
            out.extend_from_slice(&seq.to_be_bytes());
            out.extend_from_slice(&(hashes.len() as u32).to_be_bytes());
            for hash in hashes {
                out.extend_from_slice(hash.as_bytes());
            }
        }
        out.extend_from_slice(&(self.left_out.len() as u32).to_be_bytes());
        for hash in &self.left_out {
            out.extend_from_slice(hash.as_bytes());
        }
        let tag = blake3::keyed_hash(&keys.checkpoint, &out);
        out.extend_from_slice(tag.as_bytes());
        out
    }

    /// Reads stored bytes, checking their tag under `keys` first, in
    /// constant time, and then the layout, strictly.
    pub(crate) fn decode(bytes: &[u8], keys: &FileKeys) -> Result<Checkpoint, Unusable> {
        let (body, tag) = bytes.split_last_chunk::<32>().ok_or(Unusable::Malformed)?;
        if blake3::keyed_hash(&keys.checkpoint, body) != blake3::Hash::from_bytes(*tag) {
            return Err(Unusable::BadTag);
        }
        let mut reader = Reader(body);
        if reader.u16()? != VERSION || reader.member()? != keys.member {
            return Err(Unusable::Malformed);
        }
        let mut checkpoint = Checkpoint {
            events: reader.u64()?,
            rotations: reader.u64()?,
            rotations_digest: reader.array()?,
            ..Checkpoint::default()
        };
        for _ in 0..reader.count()? {
            checkpoint
                .heads
                .push((reader.member()?, reader.u64()?, reader.hash()?));
        }
        for _ in 0..reader.count()? {
            let (author, seq) = (reader.member()?, reader.u64()?);
            let hashes = (0..reader.count()?)
                .map(|_| reader.hash())
                .collect::<Result<_, _>>()?;
            checkpoint.forks.push((author, seq, hashes));
        }
        for _ in 0..reader.count()? {
            checkpoint.left_out.push(reader.hash()?);
        }
        if !reader.0.is_empty() {
            return Err(Unusable::Malformed);
        }
        Ok(checkpoint)
    }
}

/// Reads a checkpoint body front to back.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Unusable> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or(Unusable::Malformed)?;
        self.0 = rest;
        Ok(*head)
    }

    fn u16(&mut self) -> Result<u16, Unusable> {
        self.array().map(u16::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, Unusable> {
        self.array().map(u64::from_be_bytes)
    }

    /// A count, which cannot exceed what the bytes left could hold.
    fn count(&mut self) -> Result<usize, Unusable> {
        let count = self.array().map(u32::from_be_bytes)? as usize;
        if count > self.0.len() {
            return Err(Unusable::Malformed);
        }
        Ok(count)
    }

    fn member(&mut self) -> Result<MemberId, Unusable> {
        self.array().map(MemberId::from_bytes)
    }

    fn hash(&mut self) -> Result<EventHash, Unusable> {
        self.array().map(EventHash::from_bytes)
    }
}

/// The running digest of a file's rotations in the order stored.
#[derive(Clone)]
pub(crate) struct RotationsDigest {
    hasher: blake3::Hasher,
    count: u64,
}

impl Default for RotationsDigest {
    fn default() -> Self {
        RotationsDigest {
            hasher: blake3::Hasher::new_derive_key(crate::labels::FILE_ROTATIONS),
            count: 0,
        }
    }
}

impl RotationsDigest {
    /// Adds the next rotation.
    pub(crate) fn add(&mut self, hash: EventHash) {
        self.hasher.update(hash.as_bytes());
        self.count += 1;
    }

    /// How many rotations it covers.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// The digest so far.
    pub(crate) fn digest(&self) -> [u8; 32] {
        *self.hasher.finalize().as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(seed: u8) -> FileKeys {
        crate::keys::LocalKeys::from_secret_bytes(&[seed; 32], &[seed; 32]).file_keys()
    }

    fn sample() -> Checkpoint {
        let h = |n: u8| EventHash::from_bytes([n; 32]);
        let m = |n: u8| MemberId::from_bytes([n; 16]);
        Checkpoint {
            events: 1_000_000,
            rotations: 2,
            rotations_digest: [9; 32],
            heads: vec![(m(1), 7, h(1)), (m(2), 3, h(2)), (m(2), 3, h(3))],
            forks: vec![(m(2), 3, vec![h(2), h(3)])],
            left_out: vec![h(4)],
        }
    }

    #[test]
    fn a_checkpoint_reads_back_under_its_members_key_only() {
        let (ours, theirs) = (keys(1), keys(2));
        let bytes = sample().encode(&ours);
        assert_eq!(Checkpoint::decode(&bytes, &ours), Ok(sample()));
        assert_eq!(Checkpoint::decode(&bytes, &theirs), Err(Unusable::BadTag));
    }

    #[test]
    fn every_changed_byte_and_every_cut_is_refused() {
        let ours = keys(1);
        let bytes = sample().encode(&ours);
        for at in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[at] ^= 1;
            assert!(Checkpoint::decode(&changed, &ours).is_err(), "byte {at}");
            assert!(
                Checkpoint::decode(&bytes[..at], &ours).is_err(),
                "cut at {at}"
            );
        }
    }

    #[test]
    fn row_tags_bind_the_key_and_the_value() {
        let key = [7; 32];
        let tag = row_tag(&key, b"ab", b"c");
        assert_ne!(tag, row_tag(&key, b"a", b"bc"));
        assert_ne!(tag, row_tag(&key, b"ab", b"d"));
        assert_ne!(tag, row_tag(&[8; 32], b"ab", b"c"));
    }
}
