//! The bytes of a v3 event: types, strict encoding, signatures and key
//! packages (SPEC.md §3).
//!
//! An event is postcard-encoded; decoding is strict (one value, a known
//! version, canonical form), so the signed bytes are the stored bytes. A
//! stored record is `signature (64) || event bytes`. The event hash covers
//! the bytes, not the signature.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::feeds::{self, FeedEvent};
use super::graph::{self, KeyPackage, Role};
use crate::codec::{self, CodecError};
use crate::ids::{DhPublicKey, EventHash, GroupId, MemberId, ParseHexError, SigningPublicKey};
use crate::keys::LocalKeys;
use crate::labels::{self, limits};
use crate::signature::{SIGNATURE_LEN, labelled_hash, labelled_message, verifies};

/// A member's two public keys: what a member hands an admin to be added.
///
/// Its text form is 128 hex digits: the signing key, then the DH key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemberKeys {
    /// ed25519 key that verifies the member's events.
    pub signing: SigningPublicKey,
    /// X25519 key that epoch secrets are wrapped to.
    pub dh: DhPublicKey,
}

impl MemberKeys {
    /// The member id these keys certify.
    pub fn member_id(&self) -> MemberId {
        MemberId::of(&self.signing)
    }
}

impl fmt::Display for MemberKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.signing, self.dh)
    }
}

impl FromStr for MemberKeys {
    type Err = ParseHexError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = || ParseHexError {
            expected: 128,
            input: s.chars().take(80).collect(),
        };
        if s.len() != 128 || !s.is_ascii() {
            return Err(bad());
        }
        let (signing, dh) = s.split_at(64);
        Ok(MemberKeys {
            signing: signing.parse().map_err(|_| bad())?,
            dh: dh.parse().map_err(|_| bad())?,
        })
    }
}

/// An epoch secret wrapped to each member of a roster (SPEC.md §3.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Fresh X25519 public key of this envelope; its secret half is discarded.
    pub ephemeral: DhPublicKey,
    /// Labelled hash of the epoch secret, so recipients can check they all got the same one.
    pub commitment: crate::ids::SecretCommitment,
    /// One wrapped copy per recipient, sorted by member id.
    pub wrapped: Vec<WrappedSecret>,
}

/// The epoch secret encrypted to one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedSecret {
    /// The recipient.
    pub member: MemberId,
    /// ChaCha20-Poly1305 ciphertext of the 32-byte secret.
    pub ciphertext: [u8; 32],
    /// The Poly1305 tag.
    pub tag: [u8; 16],
}

/// Why bytes are not a well-formed event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// More bytes than [`limits::MAX_EVENT_BYTES`].
    #[error("event is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// Length given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The leading version is not one this build reads: an event of format
    /// v1 or v2 (refused by name), or of a newer format.
    #[error("{}", version_refusal("event", *.found, *.supported))]
    UnsupportedVersion {
        /// Version found.
        found: u16,
        /// Version this build reads.
        supported: u16,
    },
    /// postcard could not decode the bytes (truncated, bad tag, bad UTF-8, …).
    #[error("malformed event: {0}")]
    Malformed(String),
    /// Bytes were left after the event.
    #[error("{0} trailing bytes after the event")]
    TrailingBytes(usize),
    /// The bytes decode, but are not the canonical encoding of what they decode to.
    #[error("event bytes are not in canonical form")]
    NonCanonical,
    /// A stored record is too short to hold a signature.
    #[error("stored record of {0} bytes is too short to hold a signature")]
    ShortRecord(usize),
}

/// Why a version is refused: an older format by its name (no v1 or v2
/// data was released, so there is nothing to migrate), a newer one as
/// needing a newer build.
pub(crate) fn version_refusal(what: &str, found: u16, supported: u16) -> String {
    if found < supported {
        format!(
            "{what} of format v{found}, which this build does not read (it reads format v{supported} only)"
        )
    } else {
        format!(
            "{what} format {found} is newer than this build reads ({supported}); upgrade meshlog"
        )
    }
}

impl From<CodecError> for DecodeError {
    fn from(error: CodecError) -> Self {
        match error {
            CodecError::Malformed(detail) => DecodeError::Malformed(detail),
            CodecError::TrailingBytes(n) => DecodeError::TrailingBytes(n),
            CodecError::NonCanonical => DecodeError::NonCanonical,
        }
    }
}

/// The event format this module reads and writes.
pub(crate) const VERSION: u16 = crate::labels::FORMAT_VERSION;

/// One event of one member's feed, before signing. Field order is the
/// encoding order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The format version, [`crate::FORMAT_VERSION`].
    pub version: u16,
    /// The group; [`GroupId::ZERO`] in the genesis.
    pub group: GroupId,
    /// The author, whose key signs the event.
    pub author: MemberId,
    /// Position in the author's feed, from 0.
    pub seq: u64,
    /// The author's event at `seq - 1`; [`EventHash::ZERO`] at seq 0.
    pub prev: EventHash,
    /// Unix seconds as the author claims them; not checked.
    pub time: u64,
    /// What happens.
    pub body: Body,
}

/// What an event does; the tag is the variant's position (varint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Tag 0: founds the group.
    Genesis {
        /// 1 to [`limits::MAX_GROUP_NAME`] bytes.
        group_name: String,
        /// The founder's own package.
        founder: SignedPackage,
        /// The first secret, wrapped to the founder.
        envelope: Envelope,
    },
    /// Tag 1: a rotation (SPEC.md §5).
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
    /// Tag 5: an application record sealed under the epoch's secret
    /// (SPEC.md §16.5): anyone checks that it is a sealed message of this
    /// group and epoch with `kind` as its associated data; only the epoch's
    /// members read it.
    SealedApp {
        /// The epoch written under, and sealed in.
        epoch: EventHash,
        /// 1 to [`limits::MAX_APP_KIND`] bytes, in the clear.
        kind: String,
        /// The sealed message (SPEC.md §16.1), at most
        /// [`limits::MAX_SEALED_APP`] bytes.
        sealed: Vec<u8>,
    },
}

/// One change of a rotation, as encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
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
    /// checked (SPEC.md §3.3).
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
    /// A short name of the body's kind, as the CLI prints it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Body::Genesis { .. } => "genesis",
            Body::Rotate { .. } => "rotate",
            Body::SetEnabled { enabled: true, .. } => "enable",
            Body::SetEnabled { enabled: false, .. } => "disable",
            Body::App { .. } => "app",
            Body::Keys { .. } => "keys",
            Body::SealedApp { .. } => "sealed",
        }
    }

    /// Every key package the body carries.
    pub(crate) fn packages(&self) -> Vec<&SignedPackage> {
        match self {
            Body::Genesis { founder, .. } => vec![founder],
            Body::Rotate { changes, .. } => changes.iter().filter_map(Change::package).collect(),
            Body::Keys { package, .. } => vec![package],
            Body::SetEnabled { .. } | Body::App { .. } | Body::SealedApp { .. } => Vec::new(),
        }
    }
}

/// An ed25519 signature as two 32-byte halves (serde encodes arrays of up
/// to 32 elements; postcard writes both halves as 64 raw bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Signature64([u8; 32], [u8; 32]);

impl Signature64 {
    pub(crate) fn from_bytes(bytes: &[u8; SIGNATURE_LEN]) -> Self {
        let (r, s) = bytes.split_at(32);
        let mut halves = ([0u8; 32], [0u8; 32]);
        halves.0.copy_from_slice(r);
        halves.1.copy_from_slice(s);
        Self(halves.0, halves.1)
    }

    pub(crate) fn to_bytes(self) -> [u8; SIGNATURE_LEN] {
        let mut bytes = [0u8; SIGNATURE_LEN];
        let (r, s) = bytes.split_at_mut(32);
        r.copy_from_slice(&self.0);
        s.copy_from_slice(&self.1);
        bytes
    }
}

/// A member's keys and counter, signed by the member's own signing key
/// under the `KEY_PACKAGE` label (SPEC.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPackage {
    /// The keys stated.
    pub(crate) keys: MemberKeys,
    /// Higher wins.
    pub(crate) counter: u64,
    /// By `keys.signing`.
    pub(crate) signature: Signature64,
}

/// Why a package is not admissible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
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
        let message = labelled_message(labels::KEY_PACKAGE, &package_bytes(&public, counter));
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
        if !crate::signature::is_admissible_signing_key(&self.keys.signing) {
            return Err(PackageError::WeakSigningKey(member));
        }
        if !crate::envelope::is_admissible_dh_key(&self.keys.dh) {
            return Err(PackageError::WeakDhKey(member));
        }
        let message = labelled_message(
            labels::KEY_PACKAGE,
            &package_bytes(&self.keys, self.counter),
        );
        if !verifies(&self.keys.signing, &self.signature.to_bytes(), &message) {
            return Err(PackageError::BadSignature(member));
        }
        Ok(KeyPackage::new(self.keys, self.counter))
    }
}

/// Public interface of a key package: what a member hands an admin.
impl SignedPackage {
    /// The member it is of.
    pub fn member(&self) -> MemberId {
        self.keys.member_id()
    }

    /// The keys it states.
    pub fn keys(&self) -> &MemberKeys {
        &self.keys
    }

    /// Its counter: of a member's packages, the highest in a causal past
    /// gives the member's keys there (SPEC.md §5.4).
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// Checks that its keys are admissible and that it is signed by its own
    /// signing key (SPEC.md §3.3).
    pub fn check(&self) -> Result<(), PackageError> {
        self.verify().map(drop)
    }

    /// Its canonical bytes (SPEC.md §3.3).
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Strictly decodes a package and checks it ([`SignedPackage::check`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ParsePackageError> {
        let package: SignedPackage = codec::decode_exact(bytes)
            .map_err(|error| ParsePackageError::Malformed(DecodeError::from(error).to_string()))?;
        package.check()?;
        Ok(package)
    }
}

/// Its text form: the hex of its canonical bytes.
impl fmt::Display for SignedPackage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.to_bytes() {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl FromStr for SignedPackage {
    type Err = ParsePackageError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if !s.len().is_multiple_of(2) || s.len() > 1024 {
            return Err(ParsePackageError::Hex);
        }
        let bytes = (0..s.len())
            .step_by(2)
            .map(|at| {
                s.get(at..at + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or(ParsePackageError::Hex)?;
        SignedPackage::from_bytes(&bytes)
    }
}

/// Why text or bytes are not a key package.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParsePackageError {
    /// Not an even number of hex digits (at most 1,024).
    #[error(
        "a key package is an even number of hex digits, as `meshlog keys show --public` prints it"
    )]
    Hex,
    /// The bytes do not decode as one canonical package.
    #[error("malformed key package: {0}")]
    Malformed(String),
    /// It decodes, but is not admissible.
    #[error(transparent)]
    Package(#[from] PackageError),
}

/// The signed part of a package: `postcard(keys, counter)`.
fn package_bytes(keys: &MemberKeys, counter: u64) -> Vec<u8> {
    codec::encode(&(keys, counter))
}

impl Event {
    /// Its canonical encoding: the bytes signed and hashed.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Strictly decodes one event: size, version, one value, canonical
    /// (SPEC.md §3.2).
    pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
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

    /// The epochs the event names (SPEC.md §4.1): a rotation's parents, the
    /// epoch any other event but the genesis is written under.
    pub(crate) fn named_epochs(&self) -> &[EventHash] {
        match &self.body {
            Body::Rotate { parents, .. } => parents,
            Body::SetEnabled { epoch, .. }
            | Body::App { epoch, .. }
            | Body::Keys { epoch, .. }
            | Body::SealedApp { epoch, .. } => std::slice::from_ref(epoch),
            Body::Genesis { .. } => &[],
        }
    }

    /// The epoch an event other than a rotation or genesis is written under.
    pub fn epoch(&self) -> Option<EventHash> {
        match &self.body {
            Body::SetEnabled { epoch, .. }
            | Body::App { epoch, .. }
            | Body::Keys { epoch, .. }
            | Body::SealedApp { epoch, .. } => Some(*epoch),
            Body::Genesis { .. } | Body::Rotate { .. } => None,
        }
    }
}

/// A v3 event with its exact bytes, signature and hash. Built only by
/// signing or by strict decoding; whether the signature holds is for the
/// verifier to decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEvent {
    unsigned: UnsignedEvent,
    signature: [u8; SIGNATURE_LEN],
}

/// An event encoded and hashed, its signature not yet made: the signature
/// is a function of the signing key and these bytes (RFC 8032's
/// deterministic nonce), so it can be made while the bytes go to the disk,
/// or again after a crash, and come out the same (SPEC.md §9.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnsignedEvent {
    event: Event,
    bytes: Vec<u8>,
    hash: EventHash,
}

impl UnsignedEvent {
    /// Encodes `event`.
    pub(crate) fn new(event: Event) -> Self {
        let bytes = event.encode();
        Self {
            hash: event_hash(&bytes),
            event,
            bytes,
        }
    }

    /// Decodes event bytes strictly (V1).
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(Self {
            event: Event::decode(bytes)?,
            hash: event_hash(bytes),
            bytes: bytes.to_vec(),
        })
    }

    /// The event.
    pub(crate) fn event(&self) -> &Event {
        &self.event
    }

    /// Its hash (SPEC.md §2.2).
    pub(crate) fn hash(&self) -> EventHash {
        self.hash
    }

    /// The exact bytes to sign and hash.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// What its author signs: `EVENT_SIGNATURE || bytes` (SPEC.md §2.1).
    fn signed_message(&self) -> Vec<u8> {
        labelled_message(labels::EVENT_SIGNATURE, &self.bytes)
    }

    /// Signs it with `keys`: RFC 8032's ed25519, deterministic, so the same
    /// key and bytes always give the same signature.
    pub(crate) fn sign(self, keys: &LocalKeys) -> SignedEvent {
        use ed25519_dalek::Signer;
        let signature = keys.signing_key().sign(&self.signed_message()).to_bytes();
        SignedEvent {
            unsigned: self,
            signature,
        }
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
            Body::App { epoch, .. } | Body::SealedApp { epoch, .. } => {
                feeds::Body::App { epoch: *epoch }
            }
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

impl SignedEvent {
    /// Encodes and signs `event`.
    pub(crate) fn sign(event: Event, keys: &LocalKeys) -> Self {
        UnsignedEvent::new(event).sign(keys)
    }

    /// Decodes a stored record, `signature || event bytes`, strictly. The
    /// signature is not checked here: that is verification's job.
    pub fn from_record(record: &[u8]) -> Result<Self, DecodeError> {
        let (signature, bytes) = record
            .split_first_chunk::<SIGNATURE_LEN>()
            .ok_or(DecodeError::ShortRecord(record.len()))?;
        Ok(Self {
            unsigned: UnsignedEvent::decode(bytes)?,
            signature: *signature,
        })
    }

    /// The stored record: `signature || event bytes`.
    pub fn to_record(&self) -> Vec<u8> {
        let mut record = Vec::with_capacity(SIGNATURE_LEN + self.bytes().len());
        record.extend_from_slice(&self.signature);
        record.extend_from_slice(self.bytes());
        record
    }

    /// The event.
    pub fn event(&self) -> &Event {
        self.unsigned.event()
    }

    /// Its hash, `derive_key(EVENT_HASH, event bytes)` (SPEC.md §2.2).
    pub fn hash(&self) -> EventHash {
        self.unsigned.hash()
    }

    /// Its author.
    pub fn author(&self) -> MemberId {
        self.event().author
    }

    /// Its position in its author's feed.
    pub fn seq(&self) -> u64 {
        self.event().seq
    }

    /// The exact bytes signed and hashed.
    pub fn bytes(&self) -> &[u8] {
        self.unsigned.bytes()
    }

    /// The event without its signature.
    pub(crate) fn unsigned(&self) -> &UnsignedEvent {
        &self.unsigned
    }

    /// Its author's signature over [`Self::bytes`] (SPEC.md §2.1).
    pub(crate) fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// Whether `keys` signed it (ZIP-215).
    pub(crate) fn is_signed_by(&self, key: &crate::ids::SigningPublicKey) -> bool {
        verifies(key, &self.signature, &self.unsigned.signed_message())
    }

    /// Its check under `key`, for a batch (SPEC.md §2.1's ZIP-215 rule).
    pub(crate) fn batch_item(
        &self,
        key: &crate::ids::SigningPublicKey,
    ) -> ed25519_zebra::batch::Item {
        crate::signature::batch_item_of(key, &self.signature, &self.unsigned.signed_message())
    }

    /// The event as the feed rules see it, once every package it carries is
    /// checked.
    pub(crate) fn to_feed_event(&self) -> Result<FeedEvent, PackageError> {
        self.unsigned.to_feed_event()
    }
}

/// `derive_key(EVENT_HASH, bytes)`.
pub(crate) fn event_hash(bytes: &[u8]) -> EventHash {
    labelled_hash(labels::EVENT_HASH, bytes)
}

impl crate::signature::Signed for SignedEvent {
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
            let refused = Event::decode(&bytes);
            assert!(matches!(
                refused,
                Err(DecodeError::UnsupportedVersion { found, supported: 3 }) if found == u16::from(version)
            ));
            // Older formats by name; only a newer one asks for an upgrade.
            let message = refused.unwrap_err().to_string();
            assert_eq!(
                message.contains(&format!("format v{version}")),
                version < 3,
                "{message}"
            );
            assert_eq!(message.contains("upgrade"), version > 3, "{message}");
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
