//! Sealed messages: encryption under an epoch secret that names its sender
//! and cannot be forged by another member (SPEC.md §16).
//!
//! ```text
//! header   = magic || group (32) || epoch (32) || salt (32) || ad_len (u32 LE) || ad
//!            (magic: "ml3s" for a message, "ml3a" for a sealed app event's payload)
//! digest   = derive_key(SEALED_CONTENT, header || sender || le64(len(plaintext)) || plaintext)
//! inner    = sender (16) || ed25519(SEALED_SIGNATURE || digest) (64)
//!            || u32 LE len(plaintext) || plaintext || zeros (padding)
//! epoch_key   = derive_key(SEALED_EPOCH_KEY, epoch_secret || group || epoch)
//! message_key = derive_key(SEALED_MESSAGE_KEY, epoch_key || salt)
//! segment i   = the inner part's bytes [64 KiB × i, 64 KiB × (i + 1))
//! sealed   = header || for each segment i: ChaCha20-Poly1305(message_key,
//!            nonce = be88(i) || last, aad = header, segment i) with its tag
//! ```
//!
//! Every message draws a fresh 32-byte salt from the operating system, so
//! every message has its own key, and a nonce (a segment's number and
//! whether it is the last, as in age's STREAM) is never used twice with one
//! key: no counter to lose in a crash, a restart or a copied file. The
//! segments are sealed and opened on every core.
//! The sender signs the digest inside the encryption, so an outsider learns
//! the group, the epoch, the associated data and the padded length, not
//! who sent it; and a member, who knows the epoch secret and so every
//! message key, still cannot make a message that opens as another's.

use std::num::NonZeroU32;

use chacha20poly1305::aead::inout::InOutBuf;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use ed25519_dalek::Signer;
use rayon::prelude::*;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::envelope::EpochSecret;
use crate::ids::{EventHash, GroupId, MemberId, MessageId, SigningPublicKey};
use crate::keys::LocalKeys;
use crate::labels::{self, limits};
use crate::signature::{self, SIGNATURE_LEN};

/// First bytes of a sealed message: "meshlog v3 sealed".
pub const SEALED_MAGIC: [u8; 4] = *b"ml3s";
/// First bytes of a sealed app event's payload (SPEC.md §16.5): the same
/// layout under another magic, which the digest and the AEAD cover, so that
/// a payload lifted from a file never opens as a message, nor a message as
/// a payload.
pub const SEALED_APP_MAGIC: [u8; 4] = *b"ml3a";

/// What sealed bytes are: a message, or a sealed app event's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Context {
    /// [`SEALED_MAGIC`]: opened by [`crate::Mesh::open_sealed`].
    Message,
    /// [`SEALED_APP_MAGIC`]: opened by [`crate::Mesh::open_event`].
    App,
}

impl Context {
    fn magic(self) -> [u8; 4] {
        match self {
            Context::Message => SEALED_MAGIC,
            Context::App => SEALED_APP_MAGIC,
        }
    }
}
/// Bytes of the header before the associated data.
const FIXED_HEADER: usize = 4 + 32 + 32 + 32 + 4;
/// The AEAD tag.
const TAG_LEN: usize = 16;
/// Bytes of the inner part before the plaintext.
const INNER_HEADER: usize = 16 + SIGNATURE_LEN + 4;
/// Offset of the salt in the header.
const SALT_AT: usize = 4 + 32 + 32;
/// Bytes of the inner part in one segment; the last holds 1 to as many.
const SEGMENT: usize = 64 * 1024;
/// Plaintexts from this size on are hashed on every core.
const PARALLEL_FROM: usize = 128 * 1024;
/// A full segment as sealed: its bytes and its tag.
const SEALED_SEGMENT: usize = SEGMENT + TAG_LEN;

/// How many bytes the inner part of `inner_len` bytes takes sealed: each
/// segment with its tag.
fn sealed_inner_len(inner_len: usize) -> usize {
    inner_len + TAG_LEN * inner_len.div_ceil(SEGMENT)
}

/// The inner part's length, from its length sealed; `None` when no inner
/// part seals to that many bytes (a last segment of at most 16 bytes).
fn inner_len_of(sealed_len: usize) -> Option<usize> {
    let (full, rest) = (sealed_len / SEALED_SEGMENT, sealed_len % SEALED_SEGMENT);
    match rest {
        0 => Some(full * SEGMENT),
        1..=TAG_LEN => None,
        _ => Some(full * SEGMENT + rest - TAG_LEN),
    }
}

/// The nonce of segment `index`: its number, big-endian in 11 bytes, then
/// 1 for the last segment and 0 for the others.
fn segment_nonce(index: usize, last: bool) -> Nonce {
    let mut nonce = [0u8; 12];
    let number = (index as u64).to_be_bytes();
    if let Some(low) = nonce.get_mut(3..11) {
        low.copy_from_slice(&number);
    }
    if let Some(flag) = nonce.get_mut(11) {
        *flag = u8::from(last);
    }
    Nonce::from(nonce)
}

/// Bytes a sealed message adds to its plaintext and associated data,
/// before padding.
pub const SEALED_OVERHEAD: usize = FIXED_HEADER + INNER_HEADER + TAG_LEN;

/// Why a message could not be sealed or opened. No variant carries a byte
/// of plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The bytes are not a sealed message of this format: too short, a
    /// wrong magic, or lengths that do not add up.
    #[error("not a sealed message: {0}")]
    Malformed(&'static str),
    /// A size limit, checked before anything is allocated.
    #[error("{what} has {len} bytes, more than the {max} a sealed message allows")]
    TooLarge {
        /// Which part.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The message was sealed in another group.
    #[error("the message was sealed in group {found}, not in this mesh's group {expected}")]
    ForeignGroup {
        /// This mesh's group.
        expected: GroupId,
        /// The group the message names.
        found: GroupId,
    },
    /// The message names an epoch this mesh does not hold (sync first).
    #[error("the message was sealed in epoch {0}, which this mesh does not hold")]
    UnknownEpoch(EventHash),
    /// The local member is not in the roster of the message's epoch, so it
    /// holds no key for it.
    #[error(
        "member {member} is not in the roster of epoch {epoch}, in which the message was sealed"
    )]
    NotAMember {
        /// The epoch.
        epoch: EventHash,
        /// The local member.
        member: MemberId,
    },
    /// The AEAD did not verify: the message was altered, or sealed under
    /// another key.
    #[error("the message does not decrypt under epoch {epoch}'s key: altered, or not sealed in it")]
    DecryptFailed {
        /// The epoch.
        epoch: EventHash,
    },
    /// It decrypted, but what it holds is not laid out as a sender seals
    /// it (a length past the end, or padding that is not zeros).
    #[error("the message decrypts, but its content is not well formed: {0}")]
    InvalidContent(&'static str),
    /// The sender it names was not in the roster of the message's epoch.
    #[error("the message names sender {sender}, who is not in the roster of epoch {epoch}")]
    UnknownSender {
        /// The sender named.
        sender: MemberId,
        /// The epoch.
        epoch: EventHash,
    },
    /// The sender's signature does not verify: a member forged it.
    #[error("the signature of sender {sender} does not verify: the message is forged")]
    BadSignature {
        /// The sender named.
        sender: MemberId,
    },
    /// The bytes are a sealed app event's payload where a message was
    /// expected, or the other way round: a payload lifted from a file is
    /// not a message its author sent.
    #[error("the bytes are {found}, not {expected}")]
    WrongContext {
        /// What they are.
        found: &'static str,
        /// What the call opens.
        expected: &'static str,
    },
    /// A sealed app event's message names another sender than the
    /// event's author.
    #[error("the sealed app event is by {author}, but its message names sender {sender}")]
    SenderMismatch {
        /// The event's author.
        author: MemberId,
        /// The sender the message names.
        sender: MemberId,
    },
    /// The event is not a sealed app event.
    #[error("event {0} is not a sealed app event")]
    NotSealed(EventHash),
    /// The operating system gave no randomness for the salt.
    #[error("the operating system's random number generator failed")]
    Randomness,
}

/// How a sealed message hides its plaintext's length (SPEC.md §16.3). The
/// padding is zeros inside the encryption, checked on opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Padding {
    /// No padding: the length shows.
    None,
    /// Padmé (Nikitin et al., PURBs): at most 12% more bytes, and a length
    /// shows only its top bits (an inner part of 1,000 to 1,024 bytes, say,
    /// looks like any other of them).
    #[default]
    Padme,
    /// Up to the next multiple of this many bytes.
    Multiple(NonZeroU32),
}

impl Padding {
    /// The padded length of `len` inner bytes.
    fn apply(self, len: usize) -> Option<usize> {
        match self {
            Padding::None => Some(len),
            Padding::Padme => Some(padme(len)),
            Padding::Multiple(block) => {
                let block = block.get() as usize;
                len.checked_next_multiple_of(block)
            }
        }
    }
}

/// Padmé: `len` rounded up so that only its top `log2(log2(len)) + 1`
/// bits may be non-zero.
fn padme(len: usize) -> usize {
    if len < 2 {
        return len;
    }
    let exponent = usize::BITS - 1 - len.leading_zeros();
    let significant = u32::BITS - exponent.leading_zeros();
    let mask = (1usize << (exponent - significant)) - 1;
    (len + mask) & !mask
}

/// A sealed message, as it travels (SPEC.md §16.1). Parsing checks the
/// outer layout only; [`crate::Mesh::open_sealed`] checks the rest.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    bytes: Vec<u8>,
    layout: Layout,
}

/// Where the parts of checked sealed bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    context: Context,
    ad_len: usize,
    inner_len: usize,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("group", &self.group())
            .field("epoch", &self.epoch())
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// Reads 32 bytes at `at`.
fn array32(bytes: &[u8], at: usize) -> [u8; 32] {
    let mut out = [0u8; 32];
    if let Some(part) = bytes.get(at..at + 32) {
        out.copy_from_slice(part);
    }
    out
}

/// The group, epoch and associated data of sealed bytes laid out as
/// `layout` says.
fn header_fields(bytes: &[u8], layout: Layout) -> (GroupId, EventHash, &[u8]) {
    (
        GroupId::from_bytes(array32(bytes, 4)),
        EventHash::from_bytes(array32(bytes, 36)),
        bytes
            .get(FIXED_HEADER..FIXED_HEADER + layout.ad_len)
            .unwrap_or_default(),
    )
}

impl Sealed {
    /// Largest sealed message: its fixed header, the largest associated
    /// data, and the largest padded inner part with a tag for each segment.
    pub const MAX_BYTES: usize = FIXED_HEADER
        + limits::MAX_SEALED_AD
        + limits::MAX_SEALED_INNER
        + TAG_LEN * limits::MAX_SEALED_INNER.div_ceil(SEGMENT);

    /// Parses a sealed message. Its length is checked before any byte is
    /// copied; then its magic and lengths.
    pub fn from_bytes(bytes: &[u8]) -> Result<Sealed, SealError> {
        let layout = Self::layout(bytes)?;
        Ok(Sealed {
            bytes: bytes.to_vec(),
            layout,
        })
    }

    /// Like [`Sealed::from_bytes`], taking the buffer.
    pub fn from_vec(bytes: Vec<u8>) -> Result<Sealed, SealError> {
        let layout = Self::layout(&bytes)?;
        Ok(Sealed { bytes, layout })
    }

    /// What V10 checks of a sealed app event's payload, without copying
    /// it (SPEC.md §16.5): its layout, its magic, and its group, epoch
    /// and associated data, returned.
    pub(crate) fn app_payload(bytes: &[u8]) -> Result<(GroupId, EventHash, &[u8]), SealError> {
        let layout = Self::layout(bytes)?;
        if layout.context != Context::App {
            return Err(SealError::WrongContext {
                found: "a sealed message",
                expected: "a sealed app event's payload",
            });
        }
        Ok(header_fields(bytes, layout))
    }

    /// Where the parts of `bytes` are, if it is laid out as sealed bytes.
    fn layout(bytes: &[u8]) -> Result<Layout, SealError> {
        if bytes.len() > Self::MAX_BYTES {
            return Err(SealError::TooLarge {
                what: "the sealed message",
                len: bytes.len(),
                max: Self::MAX_BYTES,
            });
        }
        let fixed = bytes
            .get(..FIXED_HEADER)
            .ok_or(SealError::Malformed("shorter than its header"))?;
        let context = match fixed.first_chunk::<4>() {
            Some(&SEALED_MAGIC) => Context::Message,
            Some(&SEALED_APP_MAGIC) => Context::App,
            _ => {
                return Err(SealError::Malformed(
                    "wrong magic (not \"ml3s\" nor \"ml3a\")",
                ));
            }
        };
        let mut ad_len = [0u8; 4];
        ad_len.copy_from_slice(fixed.get(FIXED_HEADER - 4..).unwrap_or(&[0; 4]));
        let ad_len = u32::from_le_bytes(ad_len) as usize;
        if ad_len > limits::MAX_SEALED_AD {
            return Err(SealError::TooLarge {
                what: "the associated data",
                len: ad_len,
                max: limits::MAX_SEALED_AD,
            });
        }
        let sealed_len = bytes
            .len()
            .checked_sub(FIXED_HEADER + ad_len)
            .ok_or(SealError::Malformed("shorter than its associated data"))?;
        let inner_len = inner_len_of(sealed_len).ok_or(SealError::Malformed(
            "a last segment with no byte besides its tag",
        ))?;
        if inner_len < INNER_HEADER {
            return Err(SealError::Malformed("no room for a sender and a signature"));
        }
        if inner_len > limits::MAX_SEALED_INNER {
            return Err(SealError::TooLarge {
                what: "the encrypted part",
                len: inner_len,
                max: limits::MAX_SEALED_INNER,
            });
        }
        Ok(Layout {
            context,
            ad_len,
            inner_len,
        })
    }

    /// The bytes, as sent.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes, as sent.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// The group it was sealed in.
    pub fn group(&self) -> GroupId {
        header_fields(&self.bytes, self.layout).0
    }

    /// The epoch it was sealed in: its rotation's hash.
    pub fn epoch(&self) -> EventHash {
        header_fields(&self.bytes, self.layout).1
    }

    /// The associated data: bound to the message, not encrypted.
    pub fn associated_data(&self) -> &[u8] {
        header_fields(&self.bytes, self.layout).2
    }

    /// Whether these are a sealed app event's payload (SPEC.md §16.5)
    /// rather than a message.
    pub fn is_app_payload(&self) -> bool {
        self.layout.context == Context::App
    }

    pub(crate) fn context(&self) -> Context {
        self.layout.context
    }

    /// How many bytes the encrypted part holds (sender, signature, length,
    /// plaintext and padding): what an outsider learns of the size.
    pub fn padded_len(&self) -> usize {
        self.layout.inner_len
    }

    fn header(&self) -> &[u8] {
        self.bytes
            .get(..FIXED_HEADER + self.layout.ad_len)
            .unwrap_or_default()
    }

    fn salt(&self) -> [u8; 32] {
        array32(&self.bytes, SALT_AT)
    }
}

/// A message opened: every check passed (SPEC.md §16.4).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Opened {
    /// Who sealed it: a member of the epoch's roster, whose signature holds.
    pub sender: MemberId,
    /// The epoch it was sealed in.
    pub epoch: EventHash,
    /// Whether that epoch applies in the current resolution (SPEC.md
    /// §5.3). A void epoch's secret was chosen by a rotation that lost (a
    /// fired admin's, say): an application that must not trust such an
    /// epoch's members checks this.
    pub epoch_applied: bool,
    /// Whether that epoch is the one the local member writes under now
    /// (the current epoch, or the writer epoch while a merge is needed):
    /// false for a message of an earlier epoch, which anyone who was a
    /// member then, removed since or not, can still seal.
    pub epoch_current: bool,
    /// Whether the sender is in the resolved roster `R*` now (SPEC.md
    /// §5.5): false once it has been removed.
    pub sender_in_roster: bool,
    /// The associated data, as sealed.
    pub associated_data: Vec<u8>,
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// The message's id: a labelled hash of what the sender signed, the
    /// same for every copy of the message.
    pub id: MessageId,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("sender", &self.sender)
            .field("epoch", &self.epoch)
            .field("epoch_applied", &self.epoch_applied)
            .field("epoch_current", &self.epoch_current)
            .field("sender_in_roster", &self.sender_in_roster)
            .field("id", &self.id)
            .field(
                "plaintext",
                &format_args!("<{} bytes>", self.plaintext.len()),
            )
            .finish_non_exhaustive()
    }
}

/// The key of one epoch's sealed messages, derived from its secret; what
/// a mesh keeps in memory (never on disk) so that opening a message costs
/// no key agreement.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct EpochKey([u8; 32]);

impl EpochKey {
    pub(crate) fn derive(secret: &EpochSecret, group: GroupId, epoch: EventHash) -> EpochKey {
        let mut hasher = blake3::Hasher::new_derive_key(labels::SEALED_EPOCH_KEY);
        hasher
            .update(secret.expose())
            .update(group.as_bytes())
            .update(epoch.as_bytes());
        let key = EpochKey(*hasher.finalize().as_bytes());
        hasher.zeroize();
        key
    }

    fn cipher(&self, salt: &[u8; 32]) -> ChaCha20Poly1305 {
        let mut hasher = blake3::Hasher::new_derive_key(labels::SEALED_MESSAGE_KEY);
        hasher.update(&self.0).update(salt);
        let key = Zeroizing::new(*hasher.finalize().as_bytes());
        hasher.zeroize();
        ChaCha20Poly1305::new(&Key::from(*key))
    }
}

/// What the sender signs (through [`signed_message`]).
fn content_digest(header: &[u8], sender: MemberId, plaintext: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(labels::SEALED_CONTENT);
    hasher
        .update(header)
        .update(sender.as_bytes())
        .update(&(plaintext.len() as u64).to_le_bytes());
    if plaintext.len() >= PARALLEL_FROM {
        // Large messages hash on every core (the same hash).
        hasher.update_rayon(plaintext);
    } else {
        hasher.update(plaintext);
    }
    let digest = *hasher.finalize().as_bytes();
    hasher.zeroize();
    digest
}

fn signed_message(digest: &[u8; 32]) -> Vec<u8> {
    signature::labelled_message(labels::SEALED_SIGNATURE, digest)
}

fn message_id(digest: &[u8; 32]) -> MessageId {
    let hash = blake3::Hasher::new_derive_key(labels::SEALED_ID)
        .update(digest)
        .finalize();
    MessageId::from_bytes(*hash.as_bytes())
}

/// Seals `plaintext` under `epoch_key` as `sender`, with `salt` (fresh from
/// the operating system; fixed only in test vectors).
#[allow(clippy::too_many_arguments)]
pub(crate) fn seal(
    epoch_key: &EpochKey,
    group: GroupId,
    epoch: EventHash,
    sender: &LocalKeys,
    salt: [u8; 32],
    (plaintext, associated_data): (&[u8], &[u8]),
    padding: Padding,
    context: Context,
) -> Result<Sealed, SealError> {
    if plaintext.len() > limits::MAX_SEALED_PLAINTEXT {
        return Err(SealError::TooLarge {
            what: "the plaintext",
            len: plaintext.len(),
            max: limits::MAX_SEALED_PLAINTEXT,
        });
    }
    if associated_data.len() > limits::MAX_SEALED_AD {
        return Err(SealError::TooLarge {
            what: "the associated data",
            len: associated_data.len(),
            max: limits::MAX_SEALED_AD,
        });
    }
    let inner_len = INNER_HEADER + plaintext.len();
    let padded = padding
        .apply(inner_len)
        .filter(|padded| *padded <= limits::MAX_SEALED_INNER)
        .ok_or(SealError::TooLarge {
            what: "the padded message",
            len: inner_len,
            max: limits::MAX_SEALED_INNER,
        })?;
    let mut header = Vec::with_capacity(FIXED_HEADER + associated_data.len());
    header.extend_from_slice(&context.magic());
    header.extend_from_slice(group.as_bytes());
    header.extend_from_slice(epoch.as_bytes());
    header.extend_from_slice(&salt);
    header.extend_from_slice(&(associated_data.len() as u32).to_le_bytes());
    header.extend_from_slice(associated_data);
    let member = sender.member_id();
    let mut bytes = vec![0u8; header.len() + sealed_inner_len(padded)];
    let (head, body) = bytes.split_at_mut(header.len());
    head.copy_from_slice(&header);
    // The inner part is laid out in place, in the segments' slots, so that
    // the segments are sealed where they lie; a large message is hashed
    // while it is copied in.
    let lay_out = |body: &mut [u8]| {
        place_inner(
            body,
            INNER_HEADER - 4,
            &(plaintext.len() as u32).to_le_bytes(),
        );
        place_inner(body, INNER_HEADER, plaintext);
    };
    let digest = if plaintext.len() >= PARALLEL_FROM {
        rayon::join(
            || content_digest(&header, member, plaintext),
            || lay_out(body),
        )
        .0
    } else {
        lay_out(body);
        content_digest(&header, member, plaintext)
    };
    let signature = sender
        .signing_key()
        .sign(&signed_message(&digest))
        .to_bytes();
    place_inner(body, 0, member.as_bytes());
    place_inner(body, 16, &signature);
    seal_in_place(&epoch_key.cipher(&salt), &header, body).map_err(|()| SealError::TooLarge {
        what: "the padded message",
        len: padded,
        max: limits::MAX_SEALED_INNER,
    })?;
    Ok(Sealed {
        bytes,
        layout: Layout {
            context,
            ad_len: associated_data.len(),
            inner_len: padded,
        },
    })
}

/// Copies `bytes` to offset `at` of the inner part, into the slots the
/// segments of `body` keep for it (each segment's bytes, then its tag).
fn place_inner(body: &mut [u8], at: usize, bytes: &[u8]) {
    let mut done = 0;
    while done < bytes.len() {
        let offset = at + done;
        let (segment, within) = (offset / SEGMENT, offset % SEGMENT);
        let room = SEGMENT - within;
        let take = room.min(bytes.len() - done);
        let start = segment * SEALED_SEGMENT + within;
        if let (Some(slot), Some(part)) = (
            body.get_mut(start..start + take),
            bytes.get(done..done + take),
        ) {
            slot.copy_from_slice(part);
        }
        done += take;
    }
}

/// Seals, in place, each segment of `body` (its bytes, then room for its
/// tag), on every core when there are several.
fn seal_in_place(cipher: &ChaCha20Poly1305, header: &[u8], body: &mut [u8]) -> Result<(), ()> {
    let count = body.len().div_ceil(SEALED_SEGMENT);
    let seal_segment = |(index, segment): (usize, &mut [u8])| {
        let split = segment.len().checked_sub(TAG_LEN).ok_or(())?;
        let (data, tag) = segment.split_at_mut(split);
        let made = cipher
            .encrypt_inout_detached(
                &segment_nonce(index, index + 1 == count),
                header,
                data.into(),
            )
            .map_err(|_| ())?;
        tag.copy_from_slice(&made);
        Ok(())
    };
    if count > 1 {
        body.par_chunks_mut(SEALED_SEGMENT)
            .enumerate()
            .try_for_each(seal_segment)
    } else {
        body.chunks_mut(SEALED_SEGMENT)
            .enumerate()
            .try_for_each(seal_segment)
    }
}

/// A sender's signing key, decoded once (decoding a point costs about a
/// third of a verification) and kept by the mesh: what a sealed message's
/// signature is verified under, by ZIP-215 (SPEC.md §2.1).
#[derive(Clone, Copy)]
pub(crate) struct SenderKey(ed25519_zebra::VerificationKey);

impl SenderKey {
    /// The key, if it decodes (a roster admits only keys that do).
    pub(crate) fn decode(key: &SigningPublicKey) -> Option<SenderKey> {
        ed25519_zebra::VerificationKey::try_from(*key.as_bytes())
            .ok()
            .map(SenderKey)
    }
}

/// A message decrypted under its epoch's key whose signature is not yet
/// checked: it never leaves this module but through [`Decrypted::verify`].
pub(crate) struct Decrypted {
    /// The sender it names.
    pub(crate) sender: MemberId,
    signature: [u8; SIGNATURE_LEN],
    /// The inner part (sender, signature, length, plaintext, padding),
    /// zeroized unless it is returned.
    inner: Zeroizing<Vec<u8>>,
    plaintext_len: usize,
    digest: [u8; 32],
}

/// Decrypts `sealed` under `epoch_key` and checks the inner layout.
pub(crate) fn decrypt(epoch_key: &EpochKey, sealed: &Sealed) -> Result<Decrypted, SealError> {
    let epoch = sealed.epoch();
    let header = sealed.header();
    let body = sealed.bytes.get(header.len()..).unwrap_or_default();
    let inner_len = sealed.layout.inner_len;
    // Decrypted straight from the message into a buffer of its own: no
    // copy of the ciphertext first.
    let mut inner = Zeroizing::new(vec![0u8; inner_len]);
    let cipher = epoch_key.cipher(&sealed.salt());
    let count = inner_len.div_ceil(SEGMENT);
    let open_segment = |(index, (sealed, plain)): (usize, (&[u8], &mut [u8]))| {
        let (ciphertext, tag) = sealed.split_last_chunk::<TAG_LEN>().ok_or(())?;
        let buffers = InOutBuf::new(ciphertext, plain).map_err(|_| ())?;
        cipher
            .decrypt_inout_detached(
                &segment_nonce(index, index + 1 == count),
                header,
                buffers,
                &Tag::from(*tag),
            )
            .map_err(|_| ())
    };
    let opened = if count > 1 {
        body.par_chunks(SEALED_SEGMENT)
            .zip(inner.par_chunks_mut(SEGMENT))
            .enumerate()
            .try_for_each(open_segment)
    } else {
        body.chunks(SEALED_SEGMENT)
            .zip(inner.chunks_mut(SEGMENT))
            .enumerate()
            .try_for_each(open_segment)
    };
    opened.map_err(|()| SealError::DecryptFailed { epoch })?;
    let (sender, rest) = inner
        .split_first_chunk::<16>()
        .ok_or(SealError::InvalidContent("no sender"))?;
    let (signature, rest) = rest
        .split_first_chunk::<SIGNATURE_LEN>()
        .ok_or(SealError::InvalidContent("no signature"))?;
    let (len, rest) = rest
        .split_first_chunk::<4>()
        .ok_or(SealError::InvalidContent("no length"))?;
    let plaintext_len = u32::from_le_bytes(*len) as usize;
    if plaintext_len > limits::MAX_SEALED_PLAINTEXT {
        return Err(SealError::InvalidContent("a plaintext over the limit"));
    }
    let (plaintext, padding) = (
        rest.get(..plaintext_len)
            .ok_or(SealError::InvalidContent("a length past the end"))?,
        rest.get(plaintext_len..).unwrap_or_default(),
    );
    if padding.iter().any(|byte| *byte != 0) {
        return Err(SealError::InvalidContent("padding that is not zeros"));
    }
    let sender = MemberId::from_bytes(*sender);
    let digest = content_digest(header, sender, plaintext);
    let signature = *signature;
    Ok(Decrypted {
        sender,
        signature,
        inner,
        plaintext_len,
        digest,
    })
}

impl Decrypted {
    /// Checks the signature under the sender's key; only then gives out the
    /// plaintext and the id.
    pub(crate) fn verify(self, key: &SenderKey) -> Result<(Vec<u8>, MessageId), SealError> {
        let signature = ed25519_dalek::Signature::from_bytes(&self.signature);
        if key
            .0
            .verify(&signature, &signed_message(&self.digest))
            .is_err()
        {
            return Err(SealError::BadSignature {
                sender: self.sender,
            });
        }
        let mut inner = self.inner;
        // The plaintext is the inner part without its fixed fields and its
        // padding, which are dropped in place.
        let fixed = INNER_HEADER.min(inner.len());
        inner.drain(..fixed);
        inner.truncate(self.plaintext_len);
        Ok((std::mem::take(&mut *inner), message_id(&self.digest)))
    }
}

#[cfg(test)]
mod tests;
