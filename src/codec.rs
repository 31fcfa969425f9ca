//! Strict postcard decoding, shared by every format meshlog reads from
//! outside (events, batches): exactly one value, in canonical form.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why bytes are not the canonical encoding of one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CodecError {
    /// postcard could not decode them (truncated, bad tag, bad UTF-8, …).
    Malformed(String),
    /// Bytes were left after the value.
    TrailingBytes(usize),
    /// They decode, but re-encoding gives other bytes (an over-long varint, …).
    NonCanonical,
}

/// The canonical encoding of `value`.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Encoding into a Vec fails only if serde reports an error, which none of
    // meshlog's types does.
    postcard::to_allocvec(value).unwrap_or_default()
}

/// The leading varint `u16` of `bytes`: the format version, read on its own
/// so that a newer format is reported as such rather than as garbage.
pub(crate) fn leading_version(bytes: &[u8]) -> Result<u16, CodecError> {
    postcard::take_from_bytes::<u16>(bytes)
        .map(|(version, _)| version)
        .map_err(|e| CodecError::Malformed(e.to_string()))
}

/// Decodes exactly one `T` from `bytes`, in canonical form.
pub(crate) fn decode_exact<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, rest) =
        postcard::take_from_bytes::<T>(bytes).map_err(|e| CodecError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes(rest.len()));
    }
    if encode(&value) != bytes {
        return Err(CodecError::NonCanonical);
    }
    Ok(value)
}
