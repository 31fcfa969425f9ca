//! Signing, hashing and the stored form of events (SPEC.md §2.1, §2.2, §5.1).

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use ed25519_zebra::{VerificationKey, VerificationKeyBytes, batch};

use crate::event::{DecodeError, Event};
use crate::ids::{EventHash, SigningPublicKey};
use crate::labels;

/// Length of an ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// An event with its signature, its exact bytes and its hash.
///
/// It can only be built by signing an event or by strictly decoding stored
/// bytes, so its `bytes` are always the canonical encoding of its `event`.
/// Whether the signature is valid is for the reducer to decide: it alone knows
/// the author's key at that point of the chain.
#[derive(Debug, Clone)]
pub struct SignedEvent {
    event: Event,
    bytes: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
    hash: EventHash,
    /// The key that signed this very value in this process, if it was made
    /// here: a signature just made by dalek's signer over these bytes needs
    /// no second check. Never set for decoded bytes.
    signed_here_by: Option<SigningPublicKey>,
}

/// An event encoded and hashed, not yet signed. Its hash is final: the next
/// event can name it as `prev` before this one is signed, so a run of events
/// is linked in order and then signed in parallel.
pub(crate) struct UnsignedEvent {
    event: Event,
    bytes: Vec<u8>,
    hash: EventHash,
}

impl UnsignedEvent {
    pub(crate) fn new(event: Event) -> UnsignedEvent {
        let bytes = event.encode();
        let hash = event_hash(&bytes);
        UnsignedEvent { event, bytes, hash }
    }

    /// The hash the event will be known by once signed.
    pub(crate) fn hash(&self) -> EventHash {
        self.hash
    }

    pub(crate) fn sign(self, key: &SigningKey) -> SignedEvent {
        let signature = key.sign(&signing_message(&self.bytes)).to_bytes();
        SignedEvent {
            event: self.event,
            bytes: self.bytes,
            signature,
            hash: self.hash,
            signed_here_by: Some(SigningPublicKey::from_bytes(key.verifying_key().to_bytes())),
        }
    }
}

impl PartialEq for SignedEvent {
    fn eq(&self, other: &Self) -> bool {
        // The same event (hash and bytes) and the same record (signature).
        self.hash == other.hash && self.bytes == other.bytes && self.signature == other.signature
    }
}

impl Eq for SignedEvent {}

impl SignedEvent {
    /// Encodes `event` and signs it with the local member's key. Whether the
    /// result may join a chain is the reducer's decision.
    pub fn sign(event: Event, keys: &crate::keys::LocalKeys) -> SignedEvent {
        Self::sign_with(event, keys.signing_key())
    }

    pub(crate) fn sign_with(event: Event, key: &SigningKey) -> SignedEvent {
        UnsignedEvent::new(event).sign(key)
    }

    /// Decodes a stored record: the signature, then the event bytes.
    pub fn from_record(record: &[u8]) -> Result<SignedEvent, DecodeError> {
        let (signature, bytes) = record
            .split_first_chunk::<SIGNATURE_LEN>()
            .ok_or(DecodeError::ShortRecord(record.len()))?;
        let event = Event::decode(bytes)?;
        Ok(SignedEvent {
            event,
            hash: event_hash(bytes),
            bytes: bytes.to_vec(),
            signature: *signature,
            signed_here_by: None,
        })
    }

    /// The stored record: `signature || event bytes`.
    pub fn to_record(&self) -> Vec<u8> {
        let mut record = Vec::with_capacity(SIGNATURE_LEN + self.bytes.len());
        record.extend_from_slice(&self.signature);
        record.extend_from_slice(&self.bytes);
        record
    }

    /// The decoded event.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// The canonical bytes that were signed.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The ed25519 signature over `EVENT_SIGNATURE || bytes`.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// The event's hash, which the next event names as `prev`.
    pub fn hash(&self) -> EventHash {
        self.hash
    }

    /// Whether `key` signed this event, by ZIP-215 verification (SPEC.md §2).
    pub(crate) fn is_signed_by(&self, key: &SigningPublicKey) -> bool {
        if self.signed_here_by.as_ref() == Some(key) {
            return true;
        }
        verifies(key, &self.signature, &signing_message(&self.bytes))
    }

    /// This event's signature check under `key`, to be verified in a batch.
    /// A batch passes exactly when [`Self::is_signed_by`] holds for each of
    /// its items (ZIP-215), bar a chance of 2^-128 per batch.
    pub(crate) fn batch_item(&self, key: &SigningPublicKey) -> batch::Item {
        batch_item_of(key, &self.signature, &signing_message(&self.bytes))
    }
}

/// Signatures checked per batch: past a few hundred, a larger batch saves
/// little per signature, and smaller ones spread a chunk over every core.
const SIGNATURE_BATCH: usize = 512;

/// A signed value whose signature can be checked alone or in a batch.
pub(crate) trait Signed: Sync {
    /// Whether `key` signed it (ZIP-215).
    fn is_signed_by(&self, key: &SigningPublicKey) -> bool;
    /// Its check under `key`, for a batch; a batch passes exactly when
    /// [`Signed::is_signed_by`] holds for each item, bar 2^-128 a batch.
    fn batch_item(&self, key: &SigningPublicKey) -> batch::Item;
}

impl Signed for SignedEvent {
    fn is_signed_by(&self, key: &SigningPublicKey) -> bool {
        SignedEvent::is_signed_by(self, key)
    }

    fn batch_item(&self, key: &SigningPublicKey) -> batch::Item {
        SignedEvent::batch_item(self, key)
    }
}

/// The batch item of `signature` over `message` under `key`.
pub(crate) fn batch_item_of(
    key: &SigningPublicKey,
    signature: &[u8; SIGNATURE_LEN],
    message: &[u8],
) -> batch::Item {
    batch::Item::from((
        VerificationKeyBytes::from(*key.as_bytes()),
        Signature::from_bytes(signature),
        message,
    ))
}

/// The index in `checks` of the first event whose signature does not verify
/// under its key, or `None` if all verify. Signatures are checked in batches
/// spread over every core; only a failing batch is re-checked event by event,
/// to name the culprit. ZIP-215 makes both checks the same rule.
pub(crate) fn first_bad_signature<T: Signed>(checks: &[(&T, SigningPublicKey)]) -> Option<usize> {
    use rayon::prelude::*;
    checks
        .par_chunks(SIGNATURE_BATCH)
        .enumerate()
        .filter_map(|(batch_index, batch)| {
            let mut verifier = batch::Verifier::new();
            for (event, key) in batch {
                verifier.queue(event.batch_item(key));
            }
            // The random coefficients only guard against a batch of bad
            // signatures cancelling out; they cannot change a verdict.
            if verifier.verify(rand::rng()).is_ok() {
                return None;
            }
            // The single check is the rule; the batch only skips it when
            // every signature in the batch verifies.
            batch
                .iter()
                .position(|(event, key)| !event.is_signed_by(key))
                .map(|culprit| batch_index * SIGNATURE_BATCH + culprit)
        })
        .min()
}

/// The hash a stored record is known by, even when it does not decode.
/// A record too short to hold a signature has no hash: [`EventHash::ZERO`].
pub(crate) fn record_hash(record: &[u8]) -> EventHash {
    match record.split_first_chunk::<SIGNATURE_LEN>() {
        Some((_, bytes)) => event_hash(bytes),
        None => EventHash::ZERO,
    }
}

/// `EVENT_SIGNATURE || bytes`: what an author signs.
fn signing_message(bytes: &[u8]) -> Vec<u8> {
    labelled_message(labels::EVENT_SIGNATURE, bytes)
}

/// `prefix || bytes`: a signed message under a domain-separation prefix.
pub(crate) fn labelled_message(prefix: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(prefix.len() + bytes.len());
    message.extend_from_slice(prefix);
    message.extend_from_slice(bytes);
    message
}

/// Whether `signature` over `message` verifies under `key`, by ZIP-215
/// (SPEC.md §2.1).
pub(crate) fn verifies(
    key: &SigningPublicKey,
    signature: &[u8; SIGNATURE_LEN],
    message: &[u8],
) -> bool {
    VerificationKey::try_from(*key.as_bytes()).is_ok_and(|key| {
        key.verify(&Signature::from_bytes(signature), message)
            .is_ok()
    })
}

/// `derive_key(EVENT_HASH, bytes)`: the hash covers what the event says, not
/// its signature, so that a run of events can be linked before any is signed
/// (SPEC.md §2.2).
fn event_hash(bytes: &[u8]) -> EventHash {
    labelled_hash(labels::EVENT_HASH, bytes)
}

/// `derive_key(context, bytes)` as an [`EventHash`].
pub(crate) fn labelled_hash(context: &str, bytes: &[u8]) -> EventHash {
    let hash = blake3::Hasher::new_derive_key(context)
        .update(bytes)
        .finalize();
    EventHash::from_bytes(*hash.as_bytes())
}

/// Whether an ed25519 public key may be admitted to a roster: it must be the
/// canonical encoding of a curve point, and the point must not have small
/// order. ZIP-215 accepts any signature under a small-order key (the cofactor
/// clears it), so refusing such keys here, once, is what keeps forgers out
/// (SPEC.md R18).
pub(crate) fn is_admissible_signing_key(key: &SigningPublicKey) -> bool {
    VerifyingKey::from_bytes(key.as_bytes()).is_ok_and(|point| {
        !point.is_weak() && point.to_edwards().compress().as_bytes() == key.as_bytes()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Body;
    use crate::ids::{GroupId, MemberId};

    fn signed() -> (SignedEvent, SigningKey) {
        let key = SigningKey::from_bytes(&[5; 32]);
        let public = SigningPublicKey::from_bytes(key.verifying_key().to_bytes());
        let event = Event {
            version: crate::labels::FORMAT_VERSION,
            group: GroupId::ZERO,
            seq: 3,
            prev: EventHash::ZERO,
            author: MemberId::of(&public),
            time: 0,
            body: Body::SetEnabled { enabled: true },
        };
        (SignedEvent::sign_with(event, &key), key)
    }

    #[test]
    fn record_round_trip_and_signature() {
        let (event, key) = signed();
        let public = SigningPublicKey::from_bytes(key.verifying_key().to_bytes());
        let decoded = SignedEvent::from_record(&event.to_record()).unwrap();
        assert_eq!(decoded, event);
        assert!(decoded.is_signed_by(&public));
        assert_eq!(record_hash(&event.to_record()), event.hash());
    }

    #[test]
    fn flipped_signature_bit_fails_but_keeps_the_hash() {
        let (event, key) = signed();
        let public = SigningPublicKey::from_bytes(key.verifying_key().to_bytes());
        let mut record = event.to_record();
        record[10] ^= 1;
        let tampered = SignedEvent::from_record(&record).unwrap();
        assert!(!tampered.is_signed_by(&public));
        // The hash names what the event says; the broken signature is caught
        // by verification (R10), not by the link.
        assert_eq!(tampered.hash(), event.hash());
        assert_ne!(tampered, event);
    }

    #[test]
    fn a_flipped_event_byte_changes_the_hash() {
        let (event, _) = signed();
        let mut record = event.to_record();
        let last = record.len() - 1;
        record[last] ^= 1;
        assert_ne!(record_hash(&record), event.hash());
    }

    #[test]
    fn short_record_rejected() {
        assert_eq!(
            SignedEvent::from_record(&[0; 10]),
            Err(DecodeError::ShortRecord(10))
        );
        assert_eq!(record_hash(&[0; 10]), EventHash::ZERO);
    }

    /// The y coordinate `y + p` (for small y) still decodes, to the point
    /// with coordinate y: the same key under a second encoding, and so a
    /// second member id. Only the canonical one is admitted.
    #[test]
    fn non_canonical_signing_keys_refused() {
        use curve25519_dalek::edwards::CompressedEdwardsY;
        let mut found = 0;
        for y in 0u8..19 {
            // p = 2^255 - 19, little-endian; y + p for y < 19 stays below 2^255.
            let mut encoding = [0xff; 32];
            encoding[31] = 0x7f;
            encoding[0] = 0xed + y;
            let Some(point) = CompressedEdwardsY(encoding).decompress() else {
                continue;
            };
            if point.is_small_order() {
                continue;
            }
            found += 1;
            let canonical = point.compress().to_bytes();
            assert_ne!(canonical, encoding);
            assert!(!is_admissible_signing_key(&SigningPublicKey::from_bytes(
                encoding
            )));
            assert!(is_admissible_signing_key(&SigningPublicKey::from_bytes(
                canonical
            )));
        }
        assert!(
            found > 0,
            "no non-canonical encoding of a large-order point"
        );
    }

    #[test]
    fn weak_signing_keys_refused() {
        // The identity point (y = 1) has order 1.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(!is_admissible_signing_key(&SigningPublicKey::from_bytes(
            identity
        )));
        let good = SigningKey::from_bytes(&[1; 32]).verifying_key().to_bytes();
        assert!(is_admissible_signing_key(&SigningPublicKey::from_bytes(
            good
        )));
    }
}
