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
    if !encodes_to(&value, bytes) {
        return Err(CodecError::NonCanonical);
    }
    Ok(value)
}

/// Whether `value` encodes to exactly `bytes`: compared as the encoder
/// writes, with no buffer, stopping at the first byte that differs.
fn encodes_to<T: Serialize + ?Sized>(value: &T, bytes: &[u8]) -> bool {
    let same = Same {
        expected: bytes,
        at: 0,
    };
    postcard::serialize_with_flavor(value, same).unwrap_or(false)
}

/// A postcard output that compares what is written with expected bytes.
struct Same<'a> {
    expected: &'a [u8],
    at: usize,
}

impl postcard::ser_flavors::Flavor for Same<'_> {
    type Output = bool;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        let end = self.at.saturating_add(data.len());
        match self.expected.get(self.at..end) {
            Some(expected) if expected == data => {
                self.at = end;
                Ok(())
            }
            // Any error stops the encoder; the bytes differ.
            _ => Err(postcard::Error::SerializeBufferFull),
        }
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.try_extend(&[data])
    }

    fn finalize(self) -> postcard::Result<bool> {
        Ok(self.at == self.expected.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_bytes_and_only_those_are_accepted() {
        let pair = (300u64, String::from("x"));
        let bytes = encode(&pair);
        assert_eq!(decode_exact::<(u64, String)>(&bytes), Ok(pair.clone()));
        assert!(encodes_to(&pair, &bytes));
        // An over-long varint for 300 decodes to the same value.
        let mut overlong = vec![0xac, 0x82, 0x00];
        overlong.extend_from_slice(&bytes[2..]);
        assert_eq!(
            decode_exact::<(u64, String)>(&overlong),
            Err(CodecError::NonCanonical)
        );
        // Fewer or more bytes than the encoding: never the same.
        assert!(!encodes_to(&pair, &bytes[..bytes.len() - 1]));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(!encodes_to(&pair, &longer));
    }
}
