//! Event types and their canonical encoding (SPEC.md §3).
//!
//! An event is encoded with postcard. Decoding is strict: the bytes must hold
//! exactly one event, of a known format version, and must be the very bytes
//! that re-encoding the decoded value gives. So each event has one encoding,
//! and the bytes that are signed are the bytes that are stored.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::ids::{DhPublicKey, EventHash, GroupId, MemberId, ParseHexError, SigningPublicKey};
use crate::labels::{FORMAT_VERSION, limits};

/// One entry of the chain, before signing.
///
/// Field order is the encoding order (SPEC.md §3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Format version; [`FORMAT_VERSION`] for every event this build makes.
    pub version: u16,
    /// The group this event belongs to; [`GroupId::ZERO`] in the genesis.
    pub group: GroupId,
    /// Position in the chain: 0 for the genesis, then gapless.
    pub seq: u64,
    /// Hash of the previous event; [`EventHash::ZERO`] in the genesis.
    pub prev: EventHash,
    /// Member id of the author, whose key signs the event.
    pub author: MemberId,
    /// Unix time in seconds as claimed by the author. Not checked: clocks differ.
    pub time: u64,
    /// What happens.
    pub body: Body,
}

/// What an event does. The enum tag is the variant's position, encoded as a
/// varint (SPEC.md §3.2); new bodies are only ever appended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Tag 0: founds the group and opens epoch 0 with the founder as sole admin.
    Genesis(Genesis),
    /// Tag 1: opens a new epoch with a full roster and a fresh secret.
    Rotate(Rotate),
    /// Tag 2: the author turns its own participation on or off.
    SetEnabled {
        /// The new value of the author's flag.
        enabled: bool,
    },
    /// Tag 3: an application's own record, kept in the audit chain.
    App {
        /// Application-defined kind, at most [`limits::MAX_APP_KIND`] bytes.
        kind: String,
        /// Opaque payload, at most [`limits::MAX_APP_PAYLOAD`] bytes.
        payload: Vec<u8>,
    },
}

/// The body of the first event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// Human-readable group name, 1 to [`limits::MAX_GROUP_NAME`] bytes.
    pub group_name: String,
    /// The founder's public keys; the founder authors the genesis.
    pub founder: MemberKeys,
    /// Epoch 0's secret, wrapped to the founder.
    pub envelope: Envelope,
}

/// The body of an epoch rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotate {
    /// The epoch this event opens: the current epoch plus one.
    pub epoch: u64,
    /// The whole new roster, sorted by member id, without duplicates.
    pub roster: Vec<RosterEntry>,
    /// The new epoch's secret, wrapped to every member of `roster`.
    pub envelope: Envelope,
    /// Why the rotation happened, for people reading the log.
    pub reason: String,
}

/// A member's role within an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Tag 0: may author app events and toggle its own flag.
    Member,
    /// Tag 1: may also rotate the epoch (add, remove, change roles).
    Admin,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Member => "member",
            Role::Admin => "admin",
        })
    }
}

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

/// One member of an epoch's roster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RosterEntry {
    /// Must equal `MemberId::of(&keys.signing)`.
    pub id: MemberId,
    /// The member's public keys.
    pub keys: MemberKeys,
    /// The member's role in this epoch.
    pub role: Role,
}

/// An epoch secret wrapped to each member of a roster (SPEC.md §4).
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

/// Why bytes are not a well-formed v1 event.
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
    /// The leading version is not one this build reads.
    #[error(
        "format version {found} is not supported (this build reads version {supported}); upgrade meshlog"
    )]
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

impl Event {
    /// The canonical encoding of this event.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Strictly decodes one event: known version, no trailing bytes, canonical form.
    pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
        if bytes.len() > limits::MAX_EVENT_BYTES {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: limits::MAX_EVENT_BYTES,
            });
        }
        let version = codec::leading_version(bytes)?;
        if version != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        Ok(codec::decode_exact(bytes)?)
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

impl Body {
    /// A short name of the body's kind, as the CLI prints it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Body::Genesis(_) => "genesis",
            Body::Rotate(_) => "rotate",
            Body::SetEnabled { .. } => "set-enabled",
            Body::App { .. } => "app",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        Event {
            version: FORMAT_VERSION,
            group: GroupId::from_bytes([7; 32]),
            seq: 300,
            prev: EventHash::from_bytes([9; 32]),
            author: MemberId::from_bytes([1; 16]),
            time: 1_700_000_000,
            body: Body::App {
                kind: "note".into(),
                payload: vec![1, 2, 3],
            },
        }
    }

    #[test]
    fn round_trip() {
        let event = sample();
        assert_eq!(Event::decode(&event.encode()), Ok(event));
    }

    #[test]
    fn trailing_bytes_rejected() {
        let mut bytes = sample().encode();
        bytes.push(0);
        assert_eq!(Event::decode(&bytes), Err(DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn overlong_varint_rejected_as_non_canonical() {
        let bytes = sample().encode();
        // seq = 300 is the varint ac 02, right after version (1 byte) and group (32 bytes).
        assert_eq!(bytes.get(33..35), Some(&[0xac, 0x02][..]));
        let mut overlong = bytes.clone();
        overlong.splice(33..35, [0xac, 0x82, 0x00]);
        assert_eq!(Event::decode(&overlong), Err(DecodeError::NonCanonical));
    }

    #[test]
    fn unknown_version_and_tag_rejected() {
        // A newer version, and the one before (whose hashes meant something else).
        for version in [3, 1] {
            let mut bytes = sample().encode();
            bytes[0] = version;
            assert!(matches!(
                Event::decode(&bytes),
                Err(DecodeError::UnsupportedVersion { found, supported: 2 }) if found == u16::from(version)
            ));
        }
        let mut event = sample();
        event.body = Body::SetEnabled { enabled: true };
        let mut bytes = event.encode();
        let tag = bytes.len() - 2;
        assert_eq!(bytes[tag], 2);
        bytes[tag] = 9;
        assert!(matches!(
            Event::decode(&bytes),
            Err(DecodeError::Malformed(_))
        ));
        // A bool other than 0 or 1.
        let mut bytes = event.encode();
        *bytes.last_mut().unwrap() = 2;
        assert!(matches!(
            Event::decode(&bytes),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn truncated_rejected() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            assert!(
                Event::decode(&bytes[..len]).is_err(),
                "prefix of {len} bytes"
            );
        }
    }

    #[test]
    fn member_keys_text_round_trip() {
        let keys = MemberKeys {
            signing: SigningPublicKey::from_bytes([3; 32]),
            dh: DhPublicKey::from_bytes([4; 32]),
        };
        assert_eq!(keys.to_string().parse::<MemberKeys>(), Ok(keys));
        assert!("00".parse::<MemberKeys>().is_err());
    }
}
