//! Every domain-separation label and size limit, in one place.
//!
//! SPEC.md §2 and §3 list these values, and a test checks that the two agree.
//! A label never changes meaning: a new meaning gets a new label, named after
//! the format version that introduced it.

/// Prefix of the bytes an author signs: the label, then one NUL byte.
pub(crate) const EVENT_SIGNATURE: &[u8] = b"meshlog v3 event signature\0";
/// blake3 `derive_key` context for an event's hash.
pub(crate) const EVENT_HASH: &str = "meshlog v3 event hash";
/// Prefix of the bytes a member signs in its key package: the label, then
/// one NUL byte.
pub(crate) const KEY_PACKAGE: &[u8] = b"meshlog v3 key package\0";
/// blake3 `derive_key` context binding a rotation's envelope to its
/// author's feed position (a rotation cannot name its own hash).
pub(crate) const ROTATION_BINDING: &str = "meshlog v3 rotation binding";
/// blake3 `derive_key` context for the digest of a state (SPEC.md §6.3).
pub(crate) const STATE_DIGEST: &str = "meshlog v3 state digest";
/// blake3 `derive_key` context for the checks of the journal's header and
/// frames (SPEC.md §9.6).
pub(crate) const JOURNAL_CHECK: &str = "meshlog v3 journal check";
/// blake3 `derive_key` context for the key, derived from the local
/// member's signing seed, that tags the journal's event awaiting its
/// signature (SPEC.md §9.6).
pub(crate) const JOURNAL_TAG: &str = "meshlog v3 journal tag";
/// blake3 `derive_key` context for the key, derived from the local
/// member's signing seed, that tags the rows of its own file (SPEC.md §9.7).
pub(crate) const FILE_ROW_TAG: &str = "meshlog v3 file row tag";
/// blake3 `derive_key` context for the key, derived from the local
/// member's signing seed, that tags its checkpoint of its own file (SPEC.md
/// §9.7).
pub(crate) const FILE_CHECKPOINT_TAG: &str = "meshlog v3 file checkpoint tag";
/// blake3 `derive_key` context for the digest of a stored record, its
/// signature included, that a seat row keeps (SPEC.md §9.7).
pub(crate) const FILE_RECORD: &str = "meshlog v3 file record";
/// blake3 `derive_key` context for the digest of a file's rotations, in
/// the order stored (SPEC.md §9.7).
pub(crate) const FILE_ROTATIONS: &str = "meshlog v3 file rotations";
/// blake3 `derive_key` context for the key of an epoch's sealed messages
/// (SPEC.md §16.2).
pub(crate) const SEALED_EPOCH_KEY: &str = "meshlog v3 sealed epoch key";
/// blake3 `derive_key` context for the key of one sealed message, from its
/// epoch's key and its salt (SPEC.md §16.2).
pub(crate) const SEALED_MESSAGE_KEY: &str = "meshlog v3 sealed message key";
/// blake3 `derive_key` context for the digest a sender signs (SPEC.md §16.2).
pub(crate) const SEALED_CONTENT: &str = "meshlog v3 sealed content";
/// Prefix of the bytes a sender signs for a sealed message: the label, then
/// one NUL byte.
pub(crate) const SEALED_SIGNATURE: &[u8] = b"meshlog v3 sealed signature\0";
/// blake3 `derive_key` context for a sealed message's id (SPEC.md §16.4).
pub(crate) const SEALED_ID: &str = "meshlog v3 sealed id";
/// The Noise prologue of the network handshake (SPEC.md §17.2): both sides
/// must use it, so a handshake of another protocol cannot pass for this one.
#[cfg(feature = "net")]
pub(crate) const NET_PROLOGUE: &[u8] = b"meshlog v3 net prologue";
/// Prefix of the bytes a side signs over the handshake hash (SPEC.md
/// §17.4): the label, then one NUL byte.
#[cfg(feature = "net")]
pub(crate) const NET_AUTH: &[u8] = b"meshlog v3 net auth\0";
/// blake3 `derive_key` context for the key, derived from an epoch secret,
/// of the ticket a member puts after the handshake's first message
/// (SPEC.md §17.4).
#[cfg(feature = "net")]
pub(crate) const NET_TICKET: &str = "meshlog v3 net ticket";
/// blake3 `derive_key` context for a member id (truncated to 16 bytes).
pub(crate) const MEMBER_ID: &str = "meshlog v1 member id";
/// blake3 `derive_key` context for the AEAD key that wraps an epoch secret.
pub(crate) const WRAP_KEY: &str = "meshlog v1 envelope wrap key";
/// blake3 `derive_key` context for the public commitment to an epoch secret.
pub(crate) const SECRET_COMMITMENT: &str = "meshlog v1 epoch secret commitment";
/// blake3 `derive_key` context that names a genesis before its group id exists.
pub(crate) const GENESIS_BINDING: &str = "meshlog v1 genesis binding";
/// blake3 `derive_key` context for the printable fingerprint of an epoch secret.
pub(crate) const SECRET_FINGERPRINT: &str = "meshlog v1 epoch secret fingerprint";
/// blake3 `derive_key` context for the checksum at the end of a key file.
pub(crate) const KEY_FILE_CHECKSUM: &str = "meshlog v1 key file checksum";

/// Every domain-separation label, by name, as SPEC.md §2 lists them. The
/// signature prefixes are given without their trailing NUL byte.
pub const DOMAIN_LABELS: &[(&str, &str)] = &[
    ("EVENT_SIGNATURE", "meshlog v3 event signature"),
    ("EVENT_HASH", EVENT_HASH),
    ("KEY_PACKAGE", "meshlog v3 key package"),
    ("ROTATION_BINDING", ROTATION_BINDING),
    ("STATE_DIGEST", STATE_DIGEST),
    ("JOURNAL_CHECK", JOURNAL_CHECK),
    ("JOURNAL_TAG", JOURNAL_TAG),
    ("FILE_ROW_TAG", FILE_ROW_TAG),
    ("FILE_CHECKPOINT_TAG", FILE_CHECKPOINT_TAG),
    ("FILE_ROTATIONS", FILE_ROTATIONS),
    ("FILE_RECORD", FILE_RECORD),
    ("SEALED_EPOCH_KEY", SEALED_EPOCH_KEY),
    ("SEALED_MESSAGE_KEY", SEALED_MESSAGE_KEY),
    ("SEALED_CONTENT", SEALED_CONTENT),
    ("SEALED_SIGNATURE", "meshlog v3 sealed signature"),
    ("SEALED_ID", SEALED_ID),
    ("NET_PROLOGUE", "meshlog v3 net prologue"),
    ("NET_AUTH", "meshlog v3 net auth"),
    ("NET_TICKET", "meshlog v3 net ticket"),
    ("MEMBER_ID", MEMBER_ID),
    ("WRAP_KEY", WRAP_KEY),
    ("SECRET_COMMITMENT", SECRET_COMMITMENT),
    ("GENESIS_BINDING", GENESIS_BINDING),
    ("SECRET_FINGERPRINT", SECRET_FINGERPRINT),
    ("KEY_FILE_CHECKSUM", KEY_FILE_CHECKSUM),
];

/// The event format this build writes and reads.
pub const FORMAT_VERSION: u16 = 3;
/// The layout of the redb file (tables and their encodings) this build
/// writes and reads.
pub const STORE_FORMAT: u16 = 4;

/// Limits enforced on every event (SPEC.md §3.2).
pub mod limits {
    /// Largest encoded event, checked before decoding.
    pub const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;
    /// Largest group name, in bytes of UTF-8.
    pub const MAX_GROUP_NAME: usize = 128;
    /// Largest rotation reason, in bytes of UTF-8.
    pub const MAX_REASON: usize = 256;
    /// Largest roster.
    pub const MAX_ROSTER: usize = 16_384;
    /// Largest application event kind, in bytes of UTF-8.
    pub const MAX_APP_KIND: usize = 64;
    /// Largest application payload.
    pub const MAX_APP_PAYLOAD: usize = 64 * 1024;
    /// Largest plaintext of a sealed message (SPEC.md §16.1).
    pub const MAX_SEALED_PLAINTEXT: usize = 16 * 1024 * 1024;
    /// Largest associated data of a sealed message.
    pub const MAX_SEALED_AD: usize = 64 * 1024;
    /// Largest encrypted part of a sealed message (sender, signature,
    /// length, plaintext and padding): room for Padmé's at most 12% over
    /// the largest plaintext.
    pub const MAX_SEALED_INNER: usize = MAX_SEALED_PLAINTEXT + MAX_SEALED_PLAINTEXT / 8;
    /// Largest sealed message a sealed app event carries (SPEC.md §3.2):
    /// a payload of up to [`MAX_APP_PAYLOAD`] bytes, padded, with its kind
    /// as associated data.
    pub const MAX_SEALED_APP: usize = MAX_APP_PAYLOAD + 16 * 1024;
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_prefix_is_the_listed_label_and_a_nul() {
        let listed = super::DOMAIN_LABELS
            .iter()
            .find(|(name, _)| *name == "EVENT_SIGNATURE")
            .map(|(_, label)| label.as_bytes().to_vec());
        let mut expected = listed.unwrap();
        expected.push(0);
        assert_eq!(super::EVENT_SIGNATURE, expected.as_slice());
    }
}
