//! Signatures and labelled hashes: ed25519 by ZIP-215, alone or in
//! parallel batches, and the admissibility of signing keys (SPEC.md §2).

use ed25519_dalek::{Signature, VerifyingKey};
use ed25519_zebra::{VerificationKey, VerificationKeyBytes, batch};

use crate::ids::{EventHash, SigningPublicKey};

/// Length of an ed25519 signature, which leads every stored record.
pub const SIGNATURE_LEN: usize = 64;

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
/// (SPEC.md §2.4).
pub(crate) fn is_admissible_signing_key(key: &SigningPublicKey) -> bool {
    VerifyingKey::from_bytes(key.as_bytes()).is_ok_and(|point| {
        !point.is_weak() && point.to_edwards().compress().as_bytes() == key.as_bytes()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

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
