//! Wrapping an epoch secret to every member of a roster (SPEC.md §3.5).
//!
//! One fresh ephemeral X25519 key per envelope. For each recipient:
//!
//! ```text
//! shared  = X25519(ephemeral_secret, recipient_dh)        (all-zero output refused)
//! key     = blake3::derive_key(WRAP_KEY, shared || ephemeral || recipient_dh || member || binding)
//! AD      = member || binding
//! wrapped = ChaCha20-Poly1305(key, nonce = 0^12, AD, secret)
//! ```
//!
//! Every key is used for exactly one message (the ephemeral key is fresh and
//! the recipient is part of the KDF input), so the fixed zero nonce is safe.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use rand::CryptoRng;
use rayon::prelude::*;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::agreement;
use crate::event::{Envelope, WrappedSecret};
use crate::ids::{DhPublicKey, GroupId, MemberId, SecretCommitment};
use crate::labels;

/// A 32-byte epoch secret. No `Debug`, no `Clone`; zeroized on drop.
/// Read it through [`EpochSecret::expose`].
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct EpochSecret([u8; 32]);

impl EpochSecret {
    pub(crate) fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> EpochSecret {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        EpochSecret(bytes)
    }

    /// A secret of given bytes, for tests and test vectors.
    #[cfg(test)]
    pub(crate) fn from_bytes_for_test(bytes: [u8; 32]) -> EpochSecret {
        EpochSecret(bytes)
    }

    /// The secret bytes. Keep the borrow short; copy into zeroizing storage if needed.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// A short, labelled fingerprint that tells secrets apart without revealing them.
    pub fn fingerprint(&self) -> String {
        let hash = blake3::Hasher::new_derive_key(labels::SECRET_FINGERPRINT)
            .update(&self.0)
            .finalize();
        hex::encode(hash.as_bytes().get(..8).unwrap_or_default())
    }
}

/// What an envelope is bound to (SPEC.md §3.5). A genesis envelope cannot name
/// its group id, which is the genesis's own hash, so it names the founder and
/// the group name instead.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Binding<'a> {
    Genesis {
        founder: MemberId,
        group_name: &'a str,
    },
    /// A rotation, by its author's feed position (SPEC.md §3.5): the
    /// rotation cannot name its own hash, which covers the envelope. (Tag 1
    /// was v2's epoch binding and is not reused.)
    Rotation {
        group: GroupId,
        author: MemberId,
        seq: u64,
        prev: crate::ids::EventHash,
    },
}

impl Binding<'_> {
    /// `tag (1) || 32 bytes || le64(epoch)`.
    fn to_bytes(self) -> [u8; 41] {
        let (tag, middle, epoch) = match self {
            Binding::Genesis {
                founder,
                group_name,
            } => {
                let hash = blake3::Hasher::new_derive_key(labels::GENESIS_BINDING)
                    .update(founder.as_bytes())
                    .update(group_name.as_bytes())
                    .finalize();
                (0u8, *hash.as_bytes(), 0u64)
            }
            Binding::Rotation {
                group,
                author,
                seq,
                prev,
            } => {
                let hash = blake3::Hasher::new_derive_key(labels::ROTATION_BINDING)
                    .update(group.as_bytes())
                    .update(author.as_bytes())
                    .update(&seq.to_le_bytes())
                    .update(prev.as_bytes())
                    .finalize();
                (2u8, *hash.as_bytes(), seq)
            }
        };
        let mut out = [0u8; 41];
        let (head, tail) = out.split_at_mut(1);
        let (mid, end) = tail.split_at_mut(32);
        head.copy_from_slice(&[tag]);
        mid.copy_from_slice(&middle);
        end.copy_from_slice(&epoch.to_le_bytes());
        out
    }

    fn epoch(self) -> u64 {
        match self {
            Binding::Genesis { .. } => 0,
            Binding::Rotation { seq, .. } => seq,
        }
    }
}

/// Why an epoch secret could not be wrapped or recovered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The member is not among the envelope's recipients.
    #[error("member {member} is not a recipient of epoch {epoch}'s secret")]
    NotARecipient {
        /// The epoch.
        epoch: u64,
        /// The member asked about.
        member: MemberId,
    },
    /// X25519 gave the all-zero output: a small-order public key.
    #[error("key agreement for member {member} in epoch {epoch} produced an all-zero secret")]
    NonContributory {
        /// The epoch.
        epoch: u64,
        /// The recipient.
        member: MemberId,
    },
    /// The AEAD tag did not verify: wrong key, or a tampered envelope.
    #[error(
        "the wrapped secret of member {member} for epoch {epoch} does not decrypt with this member's key"
    )]
    Decrypt {
        /// The epoch.
        epoch: u64,
        /// The recipient.
        member: MemberId,
    },
    /// The secret decrypted but is not the one the event commits to.
    #[error(
        "the secret wrapped to member {member} for epoch {epoch} differs from the epoch's commitment: the rotating admin gave members different secrets"
    )]
    CommitmentMismatch {
        /// The epoch.
        epoch: u64,
        /// The recipient.
        member: MemberId,
    },
}

/// The public commitment to `secret` under `binding`.
pub(crate) fn commitment(binding: Binding<'_>, secret: &EpochSecret) -> SecretCommitment {
    let hash = blake3::Hasher::new_derive_key(labels::SECRET_COMMITMENT)
        .update(&binding.to_bytes())
        .update(secret.expose())
        .finalize();
    SecretCommitment::from_bytes(*hash.as_bytes())
}

/// Wraps `secret` to each recipient, in the order given (callers pass them
/// sorted by member id, as the reducer requires).
pub(crate) fn seal<R: CryptoRng + ?Sized>(
    rng: &mut R,
    secret: &EpochSecret,
    binding: Binding<'_>,
    recipients: &[(MemberId, DhPublicKey)],
) -> Result<Envelope, EnvelopeError> {
    let ephemeral_secret = StaticSecret::random_from_rng(rng);
    let ephemeral = DhPublicKey::from_bytes(PublicKey::from(&ephemeral_secret).to_bytes());
    let ephemeral_bytes = Zeroizing::new(ephemeral_secret.to_bytes());
    let binding_bytes = binding.to_bytes();
    // One key agreement per recipient: the cost of a rotation, spread over
    // cores in chunks whose conversions share one inversion.
    let wrapped = recipients
        .par_chunks(AGREEMENT_CHUNK)
        .map(|chunk| {
            let publics: Vec<[u8; 32]> = chunk.iter().map(|(_, dh)| *dh.as_bytes()).collect();
            let shared = agreement::agree_many(&ephemeral_bytes, &publics);
            chunk
                .iter()
                .zip(&shared)
                .map(|(&(member, recipient_dh), shared)| {
                    wrap_one(
                        secret,
                        binding,
                        &binding_bytes,
                        ephemeral,
                        member,
                        recipient_dh,
                        shared,
                    )
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<Vec<_>>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    Ok(Envelope {
        ephemeral,
        commitment: commitment(binding, secret),
        wrapped,
    })
}

/// Recovers the secret wrapped to `member`, and checks it against the commitment.
pub(crate) fn open(
    envelope: &Envelope,
    binding: Binding<'_>,
    member: MemberId,
    dh_secret: &StaticSecret,
    own_dh: DhPublicKey,
) -> Result<EpochSecret, EnvelopeError> {
    let epoch = binding.epoch();
    let wrapped = envelope
        .wrapped
        .binary_search_by_key(&member, |w| w.member)
        .ok()
        .and_then(|index| envelope.wrapped.get(index))
        .ok_or(EnvelopeError::NotARecipient { epoch, member })?;
    let shared = agreement::x25519(
        &Zeroizing::new(dh_secret.to_bytes()),
        envelope.ephemeral.as_bytes(),
    );
    if !agreement::is_contributory(&shared) {
        return Err(EnvelopeError::NonContributory { epoch, member });
    }
    let binding_bytes = binding.to_bytes();
    let key = wrap_key(&shared, envelope.ephemeral, own_dh, member, &binding_bytes);
    let mut secret = EpochSecret(wrapped.ciphertext);
    cipher(&key)
        .decrypt_inout_detached(
            &Nonce::default(),
            &associated_data(member, &binding_bytes),
            secret.0.as_mut_slice().into(),
            &Tag::from(wrapped.tag),
        )
        .map_err(|_| EnvelopeError::Decrypt { epoch, member })?;
    if commitment(binding, &secret) != envelope.commitment {
        return Err(EnvelopeError::CommitmentMismatch { epoch, member });
    }
    Ok(secret)
}

/// Recipients per parallel task: large enough that a chunk's one shared
/// inversion (about 4 µs saved per recipient) pays for itself, small enough
/// that 1,000 recipients still spread over the cores.
const AGREEMENT_CHUNK: usize = 32;

/// Wraps `secret` to one recipient, given the agreement with its key.
fn wrap_one(
    secret: &EpochSecret,
    binding: Binding<'_>,
    binding_bytes: &[u8; 41],
    ephemeral: DhPublicKey,
    member: MemberId,
    recipient_dh: DhPublicKey,
    shared: &[u8; 32],
) -> Result<WrappedSecret, EnvelopeError> {
    if !agreement::is_contributory(shared) {
        return Err(EnvelopeError::NonContributory {
            epoch: binding.epoch(),
            member,
        });
    }
    let key = wrap_key(shared, ephemeral, recipient_dh, member, binding_bytes);
    let mut ciphertext = *secret.expose();
    let tag = cipher(&key)
        .encrypt_inout_detached(
            &Nonce::default(),
            &associated_data(member, binding_bytes),
            ciphertext.as_mut_slice().into(),
        )
        .map_err(|_| EnvelopeError::Decrypt {
            epoch: binding.epoch(),
            member,
        })?;
    Ok(WrappedSecret {
        member,
        ciphertext,
        tag: tag.into(),
    })
}

fn wrap_key(
    shared: &[u8; 32],
    ephemeral: DhPublicKey,
    recipient_dh: DhPublicKey,
    member: MemberId,
    binding: &[u8; 41],
) -> Zeroizing<[u8; 32]> {
    let mut hasher = blake3::Hasher::new_derive_key(labels::WRAP_KEY);
    hasher
        .update(shared)
        .update(ephemeral.as_bytes())
        .update(recipient_dh.as_bytes())
        .update(member.as_bytes())
        .update(binding);
    let key = Zeroizing::new(*hasher.finalize().as_bytes());
    hasher.zeroize();
    key
}

fn cipher(key: &[u8; 32]) -> ChaCha20Poly1305 {
    ChaCha20Poly1305::new(&Key::from(*key))
}

fn associated_data(member: MemberId, binding: &[u8; 41]) -> [u8; 57] {
    let mut ad = [0u8; 57];
    let (head, tail) = ad.split_at_mut(16);
    head.copy_from_slice(member.as_bytes());
    tail.copy_from_slice(binding);
    ad
}

/// The X25519 public keys of small order, with bit 255 cleared (libsodium's
/// list): 0, 1, the two points of order 8, and p-1, p, p+1. X25519 ignores
/// bit 255, so a key is compared with it cleared.
const SMALL_ORDER_DH_KEYS: [[u8; 32]; 7] = [
    [0; 32],
    {
        let mut one = [0u8; 32];
        one[0] = 1;
        one
    },
    [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ],
    [
        0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef,
        0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f,
        0x11, 0x57,
    ],
    field_edge(0xec),
    field_edge(0xed),
    field_edge(0xee),
];

/// `p - 19 + low`, i.e. the little-endian bytes `low, ff × 30, 7f`.
const fn field_edge(low: u8) -> [u8; 32] {
    let mut bytes = [0xff; 32];
    bytes[0] = low;
    bytes[31] = 0x7f;
    bytes
}

/// Whether an X25519 public key may be admitted: not of small order, so that
/// no key agreement with it can be forced to a known value.
pub(crate) fn is_admissible_dh_key(key: &DhPublicKey) -> bool {
    let mut canonical = *key.as_bytes();
    canonical[31] &= 0x7f;
    !SMALL_ORDER_DH_KEYS.contains(&canonical)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn dh_of(secret: &StaticSecret) -> DhPublicKey {
        DhPublicKey::from_bytes(PublicKey::from(secret).to_bytes())
    }

    fn member(seed: u8) -> (MemberId, StaticSecret, DhPublicKey) {
        let secret = StaticSecret::from([seed; 32]);
        let public = DhPublicKey::from_bytes(PublicKey::from(&secret).to_bytes());
        (MemberId::from_bytes([seed; 16]), secret, public)
    }

    #[test]
    fn every_recipient_recovers_the_same_secret() {
        let mut rng = StdRng::from_seed([1; 32]);
        let members: Vec<_> = (1..=3).map(member).collect();
        let recipients: Vec<_> = members.iter().map(|(id, _, dh)| (*id, *dh)).collect();
        let binding = Binding::Rotation {
            group: GroupId::from_bytes([2; 32]),
            author: MemberId::from_bytes([1; 16]),
            seq: 4,
            prev: crate::ids::EventHash::from_bytes([3; 32]),
        };
        let secret = EpochSecret::generate(&mut rng);
        let envelope = seal(&mut rng, &secret, binding, &recipients).unwrap();
        for (id, dh_secret, _) in &members {
            let opened = open(&envelope, binding, *id, dh_secret, dh_of(dh_secret)).unwrap();
            assert_eq!(opened.expose(), secret.expose());
        }
        // Another member's key, another epoch, or an outsider: never garbage.
        let (_, stranger, _) = member(9);
        let (first, _, _) = members[0];
        assert_eq!(
            open(&envelope, binding, first, &stranger, dh_of(&stranger)).err(),
            Some(EnvelopeError::Decrypt {
                epoch: 4,
                member: first
            })
        );
        let other_epoch = Binding::Rotation {
            group: GroupId::from_bytes([2; 32]),
            author: MemberId::from_bytes([1; 16]),
            seq: 5,
            prev: crate::ids::EventHash::from_bytes([3; 32]),
        };
        assert!(matches!(
            open(&envelope, other_epoch, first, &members[0].1, members[0].2),
            Err(EnvelopeError::Decrypt { .. })
        ));
        assert_eq!(
            open(
                &envelope,
                binding,
                MemberId::from_bytes([9; 16]),
                &stranger,
                dh_of(&stranger)
            )
            .err(),
            Some(EnvelopeError::NotARecipient {
                epoch: 4,
                member: MemberId::from_bytes([9; 16])
            })
        );
    }

    #[test]
    fn a_different_secret_for_one_member_is_caught_by_the_commitment() {
        let mut rng = StdRng::from_seed([3; 32]);
        let (a, a_secret, a_dh) = member(1);
        let (b, b_secret, b_dh) = member(2);
        let binding = Binding::Genesis {
            founder: a,
            group_name: "g",
        };
        let first = EpochSecret::generate(&mut rng);
        let honest = seal(&mut rng, &first, binding, &[(a, a_dh)]).unwrap();
        let second = EpochSecret::generate(&mut rng);
        let other = seal(&mut rng, &second, binding, &[(a, a_dh), (b, b_dh)]).unwrap();
        // Splice: b's copy comes from a different secret, under a commitment to a's.
        let mut forged = other.clone();
        forged.commitment = honest.commitment;
        assert!(matches!(
            open(&forged, binding, b, &b_secret, b_dh),
            Err(EnvelopeError::CommitmentMismatch { .. })
        ));
        assert!(open(&honest, binding, a, &a_secret, a_dh).is_ok());
    }

    #[test]
    fn small_order_list_matches_the_curve() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        for point in EIGHT_TORSION {
            let u = point.to_montgomery().to_bytes();
            assert!(
                !is_admissible_dh_key(&DhPublicKey::from_bytes(u)),
                "{}",
                hex::encode(u)
            );
        }
        for key in SMALL_ORDER_DH_KEYS {
            for high_bit in [0u8, 0x80] {
                let mut key = key;
                key[31] |= high_bit;
                assert_eq!(
                    x25519_dalek::x25519([7; 32], key),
                    [0; 32],
                    "{}",
                    hex::encode(key)
                );
                assert!(!is_admissible_dh_key(&DhPublicKey::from_bytes(key)));
            }
        }
        let (_, _, good) = member(5);
        assert!(is_admissible_dh_key(&good));
    }
}
