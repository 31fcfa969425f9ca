//! The bytes of a v3 event: types, strict encoding, signatures and key
//! packages (SPEC-v3.md §3).
//!
//! An event is postcard-encoded; decoding is strict (one value, a known
//! version, canonical form), so the signed bytes are the stored bytes. A
//! stored record is `signature (64) || event bytes`. The event hash covers
//! the bytes, not the signature.

use serde::{Deserialize, Serialize};

use super::feeds::{self, FeedEvent};
use super::graph::{self, KeyPackage, Role};
use crate::chain::{SIGNATURE_LEN, labelled_hash, labelled_message, verifies};
use crate::codec::{self, CodecError};
use crate::event::{DecodeError, Envelope, MemberKeys};
use crate::ids::{EventHash, GroupId, MemberId};
use crate::keys::LocalKeys;
use crate::labels::{self, limits};

/// The event format this module reads and writes.
pub(crate) const VERSION: u16 = 3;

/// One event of one member's feed, before signing. Field order is the
/// encoding order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Event {
    /// [`VERSION`].
    pub(crate) version: u16,
    /// The group; [`GroupId::ZERO`] in the genesis.
    pub(crate) group: GroupId,
    /// The author, whose key signs the event.
    pub(crate) author: MemberId,
    /// Position in the author's feed, from 0.
    pub(crate) seq: u64,
    /// The author's event at `seq - 1`; [`EventHash::ZERO`] at seq 0.
    pub(crate) prev: EventHash,
    /// Unix seconds as the author claims them; not checked.
    pub(crate) time: u64,
    /// What happens.
    pub(crate) body: Body,
}

/// What an event does; the tag is the variant's position (varint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Body {
    /// Tag 0: founds the group.
    Genesis {
        /// 1 to [`limits::MAX_GROUP_NAME`] bytes.
        group_name: String,
        /// The founder's own package.
        founder: SignedPackage,
        /// The first secret, wrapped to the founder.
        envelope: Envelope,
    },
    /// Tag 1: a rotation (SPEC-v3.md §5).
    Rotate {
        /// The author's frontier of rotations.
        parents: Vec<EventHash>,
        /// Its changes, in member order.
        changes: Vec<Change>,
        /// A fresh secret wrapped to the rotation's own roster.
        envelope: Envelope,
        /// Why, for people reading the log.
        reason: String,
    },
    /// Tag 2: the author turns itself on or off.
    SetEnabled {
        /// The epoch written under.
        epoch: EventHash,
        /// The new value.
        enabled: bool,
    },
    /// Tag 3: an application record.
    App {
        /// The epoch written under.
        epoch: EventHash,
        /// 1 to [`limits::MAX_APP_KIND`] bytes.
        kind: String,
        /// At most [`limits::MAX_APP_PAYLOAD`] bytes.
        payload: Vec<u8>,
    },
    /// Tag 4: the author posts a newer package of its own.
    Keys {
        /// The epoch written under.
        epoch: EventHash,
        /// The package.
        package: SignedPackage,
    },
}

/// One change of a rotation, as encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Change {
    /// Tag 0: adds a member (with owner: an owner grant).
    Add {
        /// The member's own package.
        package: SignedPackage,
        /// Its role.
        role: Role,
    },
    /// Tag 1: removes a member.
    Remove {
        /// Whom.
        member: MemberId,
    },
    /// Tag 2: sets a member's role (member or admin).
    SetRole {
        /// Whom.
        member: MemberId,
        /// The role.
        role: Role,
    },
    /// Tag 3: carries a member's newer package into the roster.
    UpdateKeys {
        /// The package.
        package: SignedPackage,
    },
}

impl Change {
    /// The member whose entry the change touches.
    pub(crate) fn member(&self) -> MemberId {
        match self {
            Change::Add { package, .. } | Change::UpdateKeys { package } => {
                package.keys.member_id()
            }
            Change::Remove { member } | Change::SetRole { member, .. } => *member,
        }
    }

    /// The package it carries, if any.
    pub(crate) fn package(&self) -> Option<&SignedPackage> {
        match self {
            Change::Add { package, .. } | Change::UpdateKeys { package } => Some(package),
            Change::Remove { .. } | Change::SetRole { .. } => None,
        }
    }

    /// The change as the graph takes it, once the package it carries is
    /// checked (SPEC-v3.md §3.3).
    pub(crate) fn verify(&self) -> Result<graph::Change, PackageError> {
        Ok(match self {
            Change::Add { package, role } => graph::Change::Add {
                package: package.verify()?,
                role: *role,
            },
            Change::Remove { member } => graph::Change::Remove { member: *member },
            Change::SetRole { member, role } => graph::Change::SetRole {
                member: *member,
                role: *role,
            },
            Change::UpdateKeys { package } => graph::Change::UpdateKeys {
                package: package.verify()?,
            },
        })
    }
}

impl Body {
    /// Every key package the body carries.
    pub(crate) fn packages(&self) -> Vec<&SignedPackage> {
        match self {
            Body::Genesis { founder, .. } => vec![founder],
            Body::Rotate { changes, .. } => changes.iter().filter_map(Change::package).collect(),
            Body::Keys { package, .. } => vec![package],
            Body::SetEnabled { .. } | Body::App { .. } => Vec::new(),
        }
    }
}

/// An ed25519 signature as two 32-byte halves (serde encodes arrays of up
/// to 32 elements; postcard writes both halves as 64 raw bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Signature64([u8; 32], [u8; 32]);

impl Signature64 {
    fn from_bytes(bytes: &[u8; SIGNATURE_LEN]) -> Self {
        let (r, s) = bytes.split_at(32);
        let mut halves = ([0u8; 32], [0u8; 32]);
        halves.0.copy_from_slice(r);
        halves.1.copy_from_slice(s);
        Self(halves.0, halves.1)
    }

    fn to_bytes(self) -> [u8; SIGNATURE_LEN] {
        let mut bytes = [0u8; SIGNATURE_LEN];
        let (r, s) = bytes.split_at_mut(32);
        r.copy_from_slice(&self.0);
        s.copy_from_slice(&self.1);
        bytes
    }
}

/// A member's keys and counter, signed by the member's own signing key
/// under [`labels::V3_KEY_PACKAGE`] (SPEC-v3.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SignedPackage {
    /// The keys stated.
    pub(crate) keys: MemberKeys,
    /// Higher wins.
    pub(crate) counter: u64,
    /// By `keys.signing`.
    pub(crate) signature: Signature64,
}

/// Why a package is not admissible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PackageError {
    /// Not signed by its own signing key.
    #[error("the key package of {0} is not signed by its own key")]
    BadSignature(MemberId),
    /// A signing key that is not canonical or has small order.
    #[error("the signing key of {0} is not canonical or has small order")]
    WeakSigningKey(MemberId),
    /// A DH key of small order.
    #[error("the DH key of {0} has small order")]
    WeakDhKey(MemberId),
}

impl SignedPackage {
    /// The package of `keys` at `counter`, signed by them.
    pub(crate) fn sign(keys: &LocalKeys, counter: u64) -> Self {
        use ed25519_dalek::Signer;
        let public = keys.public();
        let message = labelled_message(labels::V3_KEY_PACKAGE, &package_bytes(&public, counter));
        let signature = keys.signing_key().sign(&message).to_bytes();
        Self {
            keys: public,
            counter,
            signature: Signature64::from_bytes(&signature),
        }
    }

    /// The package as the graph takes it, once its signature and keys are
    /// checked.
    pub(crate) fn verify(&self) -> Result<KeyPackage, PackageError> {
        let member = self.keys.member_id();
        if !crate::chain::is_admissible_signing_key(&self.keys.signing) {
            return Err(PackageError::WeakSigningKey(member));
        }
        if !crate::envelope::is_admissible_dh_key(&self.keys.dh) {
            return Err(PackageError::WeakDhKey(member));
        }
        let message = labelled_message(
            labels::V3_KEY_PACKAGE,
            &package_bytes(&self.keys, self.counter),
        );
        if !verifies(&self.keys.signing, &self.signature.to_bytes(), &message) {
            return Err(PackageError::BadSignature(member));
        }
        Ok(KeyPackage::new(self.keys, self.counter))
    }
}

/// The signed part of a package: `postcard(keys, counter)`.
fn package_bytes(keys: &MemberKeys, counter: u64) -> Vec<u8> {
    codec::encode(&(keys, counter))
}

impl Event {
    /// The canonical encoding.
    pub(crate) fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Strictly decodes one v3 event: size, version, one value, canonical.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
        if bytes.len() > limits::MAX_EVENT_BYTES {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: limits::MAX_EVENT_BYTES,
            });
        }
        let version = codec::leading_version(bytes).map_err(DecodeError::from)?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion {
                found: version,
                supported: VERSION,
            });
        }
        codec::decode_exact(bytes).map_err(|e: CodecError| DecodeError::from(e))
    }

    /// The epoch an event other than a rotation or genesis is written under.
    pub(crate) fn epoch(&self) -> Option<EventHash> {
        match &self.body {
            Body::SetEnabled { epoch, .. } | Body::App { epoch, .. } | Body::Keys { epoch, .. } => {
                Some(*epoch)
            }
            Body::Genesis { .. } | Body::Rotate { .. } => None,
        }
    }
}

/// A v3 event with its exact bytes, signature and hash. Built only by
/// signing or by strict decoding; whether the signature holds is for the
/// verifier to decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignedEvent {
    event: Event,
    bytes: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
    hash: EventHash,
}

impl SignedEvent {
    /// Encodes and signs `event`.
    pub(crate) fn sign(event: Event, keys: &LocalKeys) -> Self {
        use ed25519_dalek::Signer;
        let bytes = event.encode();
        let signature = keys
            .signing_key()
            .sign(&labelled_message(labels::V3_EVENT_SIGNATURE, &bytes))
            .to_bytes();
        Self {
            hash: event_hash(&bytes),
            event,
            bytes,
            signature,
        }
    }

    /// Decodes a stored record: `signature || event bytes`.
    pub(crate) fn from_record(record: &[u8]) -> Result<Self, DecodeError> {
        let (signature, bytes) = record
            .split_first_chunk::<SIGNATURE_LEN>()
            .ok_or(DecodeError::ShortRecord(record.len()))?;
        Ok(Self {
            event: Event::decode(bytes)?,
            hash: event_hash(bytes),
            bytes: bytes.to_vec(),
            signature: *signature,
        })
    }

    /// The stored record.
    pub(crate) fn to_record(&self) -> Vec<u8> {
        let mut record = Vec::with_capacity(SIGNATURE_LEN + self.bytes.len());
        record.extend_from_slice(&self.signature);
        record.extend_from_slice(&self.bytes);
        record
    }

    pub(crate) fn event(&self) -> &Event {
        &self.event
    }

    pub(crate) fn hash(&self) -> EventHash {
        self.hash
    }

    /// Whether `keys` signed it (ZIP-215).
    pub(crate) fn is_signed_by(&self, key: &crate::ids::SigningPublicKey) -> bool {
        verifies(
            key,
            &self.signature,
            &labelled_message(labels::V3_EVENT_SIGNATURE, &self.bytes),
        )
    }

    /// Its check under `key`, for a batch (SPEC.md §2.1's ZIP-215 rule).
    pub(crate) fn batch_item(
        &self,
        key: &crate::ids::SigningPublicKey,
    ) -> ed25519_zebra::batch::Item {
        crate::chain::batch_item_of(
            key,
            &self.signature,
            &labelled_message(labels::V3_EVENT_SIGNATURE, &self.bytes),
        )
    }

    /// The event as the feed rules see it, once every package it carries is
    /// checked.
    pub(crate) fn to_feed_event(&self) -> Result<FeedEvent, PackageError> {
        let event = &self.event;
        let body = match &event.body {
            Body::Genesis { founder, .. } => feeds::Body::Genesis {
                founder: founder.verify()?,
            },
            Body::Rotate {
                parents, changes, ..
            } => feeds::Body::Rotate {
                parents: parents.clone(),
                changes: changes
                    .iter()
                    .map(Change::verify)
                    .collect::<Result<_, PackageError>>()?,
            },
            Body::SetEnabled { epoch, enabled } => feeds::Body::SetEnabled {
                epoch: *epoch,
                enabled: *enabled,
            },
            Body::App { epoch, .. } => feeds::Body::App { epoch: *epoch },
            Body::Keys { epoch, package } => feeds::Body::Keys {
                epoch: *epoch,
                package: package.verify()?,
            },
        };
        Ok(FeedEvent {
            hash: self.hash,
            author: event.author,
            seq: event.seq,
            prev: event.prev,
            body,
        })
    }
}

/// `derive_key(V3_EVENT_HASH, bytes)`.
pub(crate) fn event_hash(bytes: &[u8]) -> EventHash {
    labelled_hash(labels::V3_EVENT_HASH, bytes)
}

impl crate::chain::Signed for SignedEvent {
    fn is_signed_by(&self, key: &crate::ids::SigningPublicKey) -> bool {
        SignedEvent::is_signed_by(self, key)
    }

    fn batch_item(&self, key: &crate::ids::SigningPublicKey) -> ed25519_zebra::batch::Item {
        SignedEvent::batch_item(self, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{DhPublicKey, SecretCommitment};

    fn keys(seed: u8) -> LocalKeys {
        LocalKeys::from_secret_bytes(&[seed; 32], &[seed.wrapping_add(100); 32])
    }

    fn sample() -> Event {
        Event {
            version: VERSION,
            group: GroupId::from_bytes([7; 32]),
            author: keys(1).member_id(),
            seq: 300,
            prev: EventHash::from_bytes([9; 32]),
            time: 1_700_000_000,
            body: Body::Rotate {
                parents: vec![EventHash::from_bytes([3; 32])],
                changes: vec![Change::Add {
                    package: SignedPackage::sign(&keys(2), 1),
                    role: Role::Owner,
                }],
                envelope: Envelope {
                    ephemeral: DhPublicKey::from_bytes([5; 32]),
                    commitment: SecretCommitment::from_bytes([6; 32]),
                    wrapped: vec![],
                },
                reason: "test".into(),
            },
        }
    }

    #[test]
    fn records_round_trip_and_sign() {
        let signed = SignedEvent::sign(sample(), &keys(1));
        let decoded = SignedEvent::from_record(&signed.to_record()).unwrap();
        assert_eq!(decoded, signed);
        assert!(decoded.is_signed_by(&keys(1).public().signing));
        assert!(!decoded.is_signed_by(&keys(2).public().signing));
        let mut record = signed.to_record();
        record[3] ^= 1;
        let forged = SignedEvent::from_record(&record).unwrap();
        assert_eq!(
            forged.hash(),
            signed.hash(),
            "the hash covers the bytes only"
        );
        assert!(!forged.is_signed_by(&keys(1).public().signing));
    }

    #[test]
    fn other_versions_and_non_canonical_bytes_are_refused() {
        for version in [1u8, 2, 4] {
            let mut bytes = sample().encode();
            bytes[0] = version;
            assert!(matches!(
                Event::decode(&bytes),
                Err(DecodeError::UnsupportedVersion { found, supported: 3 }) if found == u16::from(version)
            ));
        }
        let bytes = sample().encode();
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(Event::decode(&trailing), Err(DecodeError::TrailingBytes(1)));
        for len in 0..bytes.len() {
            assert!(
                Event::decode(&bytes[..len]).is_err(),
                "prefix of {len} bytes"
            );
        }
        // seq = 300 is the varint ac 02 after version (1), group (32), author (16).
        assert_eq!(bytes.get(49..51), Some(&[0xac, 0x02][..]));
        let mut overlong = bytes.clone();
        overlong.splice(49..51, [0xac, 0x82, 0x00]);
        assert_eq!(Event::decode(&overlong), Err(DecodeError::NonCanonical));
    }

    #[test]
    fn a_package_is_signed_by_its_own_member_only() {
        let package = SignedPackage::sign(&keys(2), 7);
        let checked = package.verify().unwrap();
        assert_eq!(checked.member(), keys(2).member_id());
        assert_eq!(checked.counter(), 7);
        // An admin substituting its own DH key breaks the member's signature.
        let mut substituted = package;
        substituted.keys.dh = keys(1).public().dh;
        assert_eq!(
            substituted.verify(),
            Err(PackageError::BadSignature(keys(2).member_id()))
        );
        let mut recounted = package;
        recounted.counter = 8;
        assert!(recounted.verify().is_err());
        let mut weak = package;
        weak.keys.dh = DhPublicKey::from_bytes([0; 32]);
        assert_eq!(
            weak.verify(),
            Err(PackageError::WeakDhKey(keys(2).member_id()))
        );
    }
}
