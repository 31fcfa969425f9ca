//! Fixed-size identifiers and public keys, each a newtype shown as hex.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::labels;

/// A string that is not the hex encoding of the expected number of bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected} hex digits, got {input:?}")]
pub struct ParseHexError {
    /// Number of hex digits wanted.
    pub expected: usize,
    /// What was given (truncated to 80 characters).
    pub input: String,
}

macro_rules! hex_newtype {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// The first four bytes as hex, for logs and tables.
            pub fn short(&self) -> String {
                hex::encode(self.0.get(..4).unwrap_or(&self.0))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl FromStr for $name {
            type Err = ParseHexError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut bytes = [0u8; $len];
                hex::decode_to_slice(s.trim(), &mut bytes).map_err(|_| ParseHexError {
                    expected: 2 * $len,
                    input: s.chars().take(80).collect(),
                })?;
                Ok(Self(bytes))
            }
        }
    };
}

hex_newtype!(
    /// A member's identity: the first 16 bytes of a labelled blake3 hash of its
    /// ed25519 public key (SPEC.md §2.3). Self-certifying: nobody chooses it.
    MemberId,
    16
);
hex_newtype!(
    /// The labelled blake3 hash of one event's bytes (not its signature).
    EventHash,
    32
);
hex_newtype!(
    /// A group's identity: the [`EventHash`] of its genesis event.
    GroupId,
    32
);
hex_newtype!(
    /// An ed25519 public key, as admitted to a roster.
    SigningPublicKey,
    32
);
hex_newtype!(
    /// An X25519 public key, as admitted to a roster or used as an ephemeral key.
    DhPublicKey,
    32
);
hex_newtype!(
    /// A public, labelled hash of an epoch secret (SPEC.md §3.5).
    SecretCommitment,
    32
);
hex_newtype!(
    /// A labelled hash of a whole projected state (SPEC.md §6.3).
    StateDigest,
    32
);

hex_newtype!(
    /// A sealed message's id: a labelled hash of what its sender signed
    /// (SPEC.md §16.4), the same for every copy of the message.
    MessageId,
    32
);

impl EventHash {
    /// The `prev` of a genesis event.
    pub const ZERO: EventHash = EventHash([0; 32]);
}

impl GroupId {
    /// The `group` field of a genesis event, whose group id does not exist yet.
    pub const ZERO: GroupId = GroupId([0; 32]);
}

impl From<EventHash> for GroupId {
    fn from(hash: EventHash) -> Self {
        GroupId(hash.0)
    }
}

impl MemberId {
    /// Derives the member id of a signing key.
    pub fn of(key: &SigningPublicKey) -> MemberId {
        let digest = blake3::Hasher::new_derive_key(labels::MEMBER_ID)
            .update(key.as_bytes())
            .finalize();
        let mut id = [0u8; 16];
        for (dst, src) in id.iter_mut().zip(digest.as_bytes()) {
            *dst = *src;
        }
        MemberId(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects_wrong_length() {
        let id = MemberId::from_bytes([0xab; 16]);
        assert_eq!(id.to_string(), "ab".repeat(16));
        assert_eq!(id.to_string().parse::<MemberId>(), Ok(id));
        assert!("abcd".parse::<MemberId>().is_err());
        assert!("zz".repeat(16).parse::<MemberId>().is_err());
        assert_eq!(id.short(), "abababab");
    }

    #[test]
    fn member_id_depends_on_the_key() {
        let a = MemberId::of(&SigningPublicKey::from_bytes([1; 32]));
        let b = MemberId::of(&SigningPublicKey::from_bytes([2; 32]));
        assert_ne!(a, b);
        assert_eq!(a, MemberId::of(&SigningPublicKey::from_bytes([1; 32])));
    }
}
