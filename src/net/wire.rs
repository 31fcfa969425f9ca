//! The bytes on the wire after the handshake (SPEC.md §17.3): messages,
//! each a 4-byte length and its postcard encoding, carried in Noise
//! transport messages, each behind a 2-byte length.
//!
//! Every read is bounded before it is made: a Noise message by its 2-byte
//! length, a meshlog message by a limit the caller sets (small until the
//! peer is authenticated).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use snow::StatelessTransportState;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::codec;
use crate::event::{Signature64, SignedPackage};
use crate::frontier::Frontier;
use crate::ids::GroupId;

/// Largest Noise message (SPEC.md §17.1).
pub(crate) const MAX_NOISE_MESSAGE: usize = 65_535;
/// Noise's ChaChaPoly tag.
const TAG_LEN: usize = 16;
/// Largest plaintext of one Noise transport message.
const MAX_NOISE_PLAINTEXT: usize = MAX_NOISE_MESSAGE - TAG_LEN;
/// Largest message before the peer is authenticated: an [`Auth`] is about
/// 250 bytes (SPEC.md §17.4).
pub(crate) const MAX_AUTH_MESSAGE: usize = 4 * 1024;
/// Largest message after: a reply part holds about 1 MiB of records, and
/// at least one record of up to `MAX_EVENT_BYTES` (SPEC.md §17.5).
pub(crate) const MAX_MESSAGE: usize = 8 * 1024 * 1024;
/// A reply part is cut once its records pass this many bytes.
pub(crate) const REPLY_PART_BYTES: usize = 1024 * 1024;
/// Longest reason a [`Message::Refused`] may give.
pub(crate) const MAX_REFUSAL_REASON: usize = 512;

/// The shortest record a part may hold: a signature and the smallest event
/// are longer. Refusing shorter ones while decoding bounds what a message
/// of [`MAX_MESSAGE`] bytes can make the receiver allocate (SPEC.md §17.3):
/// a message of empty records would be millions of them.
pub(crate) const MIN_RECORD: usize = 128;

/// Decodes a part's records, refusing one shorter than [`MIN_RECORD`] as
/// soon as it is read.
fn records_of_a_part<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Vec<u8>>, D::Error> {
    struct Records;
    impl<'de> serde::de::Visitor<'de> for Records {
        type Value = Vec<Vec<u8>>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of records")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            // The count is the sender's word: reserve no more than the
            // message can hold.
            let hint = seq.size_hint().unwrap_or(0).min(MAX_MESSAGE / MIN_RECORD);
            let mut records = Vec::with_capacity(hint);
            while let Some(record) = seq.next_element::<Vec<u8>>()? {
                if record.len() < MIN_RECORD {
                    return Err(serde::de::Error::custom(format!(
                        "a record of {} bytes, shorter than any event",
                        record.len()
                    )));
                }
                records.push(record);
            }
            Ok(records)
        }
    }
    deserializer.deserialize_seq(Records)
}

/// The version of this protocol, in each side's [`Auth`].
pub(crate) const NET_VERSION: u16 = 2;

/// A side's proof that it holds a member's keys (SPEC.md §17.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Auth {
    pub(crate) version: u16,
    /// The group the side serves or syncs; `None` from a newcomer that
    /// holds no copy yet.
    pub(crate) group: Option<GroupId>,
    /// The side's key package: its DH key must be its Noise static key.
    pub(crate) package: SignedPackage,
    /// By the package's signing key, over the `NET_AUTH` label, the side's
    /// role, the group and the handshake hash.
    pub(crate) signature: Signature64,
}

/// One meshlog message (SPEC.md §17.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Message {
    /// The first message of each side.
    Auth(Box<Auth>),
    /// What the sender holds; the receiver replies with what the sender
    /// lacks.
    Frontier(Frontier),
    /// A part of a reply: records in an order in which each follows what
    /// it names, and how many records of the reply are still to come (the
    /// last part says 0).
    Records {
        /// Records of the reply after this part.
        remaining: u64,
        /// Encoded signed events, each at least [`MIN_RECORD`] bytes.
        #[serde(deserialize_with = "records_of_a_part")]
        records: Vec<Vec<u8>>,
    },
    /// The receiver of a whole reply took it: how many records were new.
    Ingested {
        /// Records new to the receiver, now written.
        added: u64,
        /// Records it held already, or left out.
        known: u64,
    },
    /// Nothing to say, but still here.
    Ping,
    /// The sender closes the connection, and says why.
    Refused {
        /// Why, in words (at most [`MAX_REFUSAL_REASON`] bytes).
        reason: String,
    },
}

/// Where a reply being received stands: the checks on its parts' counts
/// (SPEC.md §17.5), shared by a session and a newcomer's first copy.
#[derive(Debug, Default)]
pub(crate) struct ReplyCount {
    /// Records still to come after the last part taken; `None` between
    /// replies.
    remaining: Option<u64>,
    /// The reply's records, fixed by its first part.
    total: u64,
}

impl ReplyCount {
    /// Takes a part of `records` records that says `remaining`: how far the
    /// reply has come, or why the part is a violation. The last part
    /// (`remaining` 0) ends the reply.
    pub(crate) fn part(
        &mut self,
        records: usize,
        remaining: u64,
    ) -> Result<super::Progress, &'static str> {
        const ADD_UP: &str = "a reply part that does not add up";
        let count = records as u64;
        if count == 0 && remaining != 0 {
            return Err("an empty part that is not the last");
        }
        let before = match self.remaining {
            Some(before) => before,
            None => remaining.checked_add(count).ok_or(ADD_UP)?,
        };
        if before.checked_sub(count) != Some(remaining) {
            return Err(ADD_UP);
        }
        if self.remaining.is_none() {
            self.total = before;
        }
        self.remaining = (remaining > 0).then_some(remaining);
        Ok(super::Progress {
            received: self.total - remaining,
            total: self.total,
        })
    }
}

/// Why the wire failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the connection closed")]
    Closed,
    #[error("a Noise message failed to decrypt")]
    Decrypt,
    #[error("a message of {found} bytes, more than the limit of {limit}")]
    TooLarge { found: usize, limit: usize },
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// Writes one Noise message behind its 2-byte length.
pub(crate) async fn write_noise<W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &[u8],
) -> Result<(), WireError> {
    let len = u16::try_from(message.len()).map_err(|_| WireError::TooLarge {
        found: message.len(),
        limit: MAX_NOISE_MESSAGE,
    })?;
    writer.write_all(&len.to_be_bytes()).await?;
    writer.write_all(message).await?;
    Ok(())
}

/// Reads one Noise message into `buffer`; a closed connection before its
/// first byte is [`WireError::Closed`].
pub(crate) async fn read_noise<R: AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut Vec<u8>,
) -> Result<(), WireError> {
    let mut len = [0u8; 2];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(WireError::Closed);
        }
        Err(error) => return Err(error.into()),
    }
    buffer.resize(usize::from(u16::from_be_bytes(len)), 0);
    reader.read_exact(buffer).await?;
    Ok(())
}

/// The sending half: encrypts under its own nonce counter.
pub(crate) struct Sender<W> {
    writer: W,
    transport: Arc<StatelessTransportState>,
    nonce: u64,
    plain: Vec<u8>,
    sealed: Vec<u8>,
    /// Bytes written, Noise framing included.
    pub(crate) bytes: u64,
}

impl<W: AsyncWrite + Unpin> Sender<W> {
    pub(crate) fn new(writer: W, transport: Arc<StatelessTransportState>) -> Self {
        Sender {
            writer,
            transport,
            nonce: 0,
            plain: Vec::new(),
            sealed: vec![0u8; MAX_NOISE_MESSAGE],
            bytes: 0,
        }
    }

    /// Sends `message`: its length, then its encoding, in Noise messages of
    /// at most [`MAX_NOISE_PLAINTEXT`] plaintext bytes each.
    pub(crate) async fn send(&mut self, message: &Message) -> Result<(), WireError> {
        let body = codec::encode(message);
        let len = u32::try_from(body.len()).map_err(|_| WireError::TooLarge {
            found: body.len(),
            limit: MAX_MESSAGE,
        })?;
        self.plain.clear();
        self.plain.extend_from_slice(&len.to_be_bytes());
        self.plain.extend_from_slice(&body);
        let plain = std::mem::take(&mut self.plain);
        let result = self.send_plain(&plain).await;
        self.plain = plain;
        result?;
        self.writer.flush().await?;
        Ok(())
    }

    async fn send_plain(&mut self, plain: &[u8]) -> Result<(), WireError> {
        for piece in plain.chunks(MAX_NOISE_PLAINTEXT) {
            let written = self
                .transport
                .write_message(self.nonce, piece, &mut self.sealed)
                .map_err(|error| WireError::Malformed(error.to_string()))?;
            self.nonce += 1;
            let sealed = self.sealed.get(..written).ok_or(WireError::Decrypt)?;
            write_noise(&mut self.writer, sealed).await?;
            self.bytes += 2 + written as u64;
        }
        Ok(())
    }

    /// The stream, for tests that write raw bytes.
    #[cfg(test)]
    pub(crate) fn writer_mut(&mut self) -> &mut W {
        &mut self.writer
    }

    /// Closes the writing side.
    pub(crate) async fn shutdown(&mut self) {
        // The peer may be gone already; nothing is lost either way.
        let _ = self.writer.shutdown().await;
    }
}

/// The receiving half: decrypts under its own nonce counter.
pub(crate) struct Receiver<R> {
    reader: R,
    transport: Arc<StatelessTransportState>,
    nonce: u64,
    sealed: Vec<u8>,
    opened: Vec<u8>,
    /// Bytes read, Noise framing included.
    pub(crate) bytes: u64,
}

impl<R: AsyncRead + Unpin> Receiver<R> {
    pub(crate) fn new(reader: R, transport: Arc<StatelessTransportState>) -> Self {
        Receiver {
            reader,
            transport,
            nonce: 0,
            sealed: Vec::new(),
            opened: vec![0u8; MAX_NOISE_MESSAGE],
            bytes: 0,
        }
    }

    /// Reads one Noise message and decrypts it, appending the plaintext to
    /// `into`.
    async fn read_piece(&mut self, into: &mut Vec<u8>) -> Result<(), WireError> {
        read_noise(&mut self.reader, &mut self.sealed).await?;
        self.bytes += 2 + self.sealed.len() as u64;
        let len = self
            .transport
            .read_message(self.nonce, &self.sealed, &mut self.opened)
            .map_err(|_| WireError::Decrypt)?;
        self.nonce += 1;
        into.extend_from_slice(self.opened.get(..len).ok_or(WireError::Decrypt)?);
        Ok(())
    }

    /// Reads one message of at most `limit` bytes. A Noise message never
    /// carries the end of one message and the start of the next.
    pub(crate) async fn recv(&mut self, limit: usize) -> Result<Message, WireError> {
        let mut plain = Vec::new();
        self.read_piece(&mut plain).await?;
        let (head, _) = plain.split_first_chunk::<4>().ok_or_else(|| {
            WireError::Malformed("a message starts with its 4-byte length".into())
        })?;
        let len = u32::from_be_bytes(*head) as usize;
        if len > limit {
            return Err(WireError::TooLarge { found: len, limit });
        }
        let total = len + 4;
        plain.reserve_exact(total.saturating_sub(plain.len()));
        while plain.len() < total {
            self.read_piece(&mut plain).await?;
        }
        if plain.len() > total {
            return Err(WireError::Malformed(format!(
                "{} bytes after the end of a message",
                plain.len() - total
            )));
        }
        let body = plain.get(4..).unwrap_or_default();
        let message: Message = codec::decode_exact(body).map_err(|error| {
            WireError::Malformed(crate::event::DecodeError::from(error).to_string())
        })?;
        if let Message::Refused { reason } = &message
            && reason.len() > MAX_REFUSAL_REASON
        {
            return Err(WireError::Malformed(
                "a refusal's reason is too long".into(),
            ));
        }
        Ok(message)
    }
}

/// Runs a Noise handshake in memory between `initiator` and `responder`,
/// each message carrying the payload of its turn, and returns the messages
/// as sent: for tests and the fuzz target.
#[cfg(any(test, feature = "fuzzing"))]
#[allow(clippy::expect_used, clippy::indexing_slicing)]
pub(crate) fn handshake_in_memory(
    initiator: &mut snow::HandshakeState,
    responder: &mut snow::HandshakeState,
    payloads: &[&[u8]],
) -> Vec<Vec<u8>> {
    let mut buffer = vec![0u8; MAX_NOISE_MESSAGE];
    let mut payload = vec![0u8; MAX_NOISE_MESSAGE];
    let mut sent = Vec::new();
    for (turn, plain) in payloads.iter().enumerate() {
        let (writer, reader) = if turn % 2 == 0 {
            (&mut *initiator, &mut *responder)
        } else {
            (&mut *responder, &mut *initiator)
        };
        let len = writer
            .write_message(plain, &mut buffer)
            .expect("a handshake message");
        let read = reader
            .read_message(&buffer[..len], &mut payload)
            .expect("the other side reads it");
        assert_eq!(&payload[..read], *plain);
        sent.push(buffer[..len].to_vec());
    }
    sent
}

/// The two ends of a finished Noise session, made in memory with fixed
/// keys: for tests and the fuzz target, which feed a [`Receiver`] bytes a
/// peer with the session keys could send.
#[cfg(any(test, feature = "fuzzing"))]
#[allow(clippy::expect_used)]
pub(crate) fn transport_pair() -> (Arc<StatelessTransportState>, Arc<StatelessTransportState>) {
    let mut initiator = super::noise::builder()
        .local_private_key(&[1; 32])
        .and_then(snow::Builder::build_initiator)
        .expect("an initiator");
    let mut responder = super::noise::builder()
        .local_private_key(&[2; 32])
        .and_then(snow::Builder::build_responder)
        .expect("a responder");
    handshake_in_memory(&mut initiator, &mut responder, &[&[], &[], &[]]);
    (
        Arc::new(
            initiator
                .into_stateless_transport_mode()
                .expect("transport"),
        ),
        Arc::new(
            responder
                .into_stateless_transport_mode()
                .expect("transport"),
        ),
    )
}

/// Hostile bytes against the wire (SPEC.md §17.3, §17.5), for the `net`
/// fuzz target. The first byte chooses: even, the rest decoded as one
/// message, which must re-encode to the same bytes if it decodes; odd, the
/// rest cut into pieces (a 2-byte length, then the piece; a length with its
/// top bit set sends the piece as it is, otherwise encrypted as the next
/// Noise message of an authenticated peer), read back as messages under
/// the limit before authentication (bit 1 of the first byte clear) or
/// after. Nothing may panic, and every message read re-encodes to what was
/// sent. Even inputs are also taken as a first message with its ticket
/// (SPEC.md §17.4): parsed strictly, and judged by a responder that
/// accepts no epoch.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        if let Ok((ephemeral, entries)) = super::ticket::parse(rest) {
            let ticket = if entries.is_empty() {
                0
            } else {
                1 + entries.len()
            };
            assert_eq!(32 + ticket, rest.len(), "a ticket parsed loosely");
            let verdict = super::ticket::Admission::default().verdict(ephemeral, entries);
            assert_eq!(verdict, super::ticket::Verdict::Open);
        }
        if let Ok(message) = codec::decode_exact::<Message>(rest) {
            assert_eq!(
                codec::encode(&message),
                rest,
                "a message re-encodes differently"
            );
        }
        return;
    }
    let limit = if mode & 2 == 0 {
        MAX_AUTH_MESSAGE
    } else {
        MAX_MESSAGE
    };
    // One session for the whole run: a handshake per input would leave
    // little time for the inputs.
    static PAIR: std::sync::OnceLock<(Arc<StatelessTransportState>, Arc<StatelessTransportState>)> =
        std::sync::OnceLock::new();
    let (sending, receiving) = PAIR.get_or_init(transport_pair).clone();
    let mut wire = Vec::new();
    let mut sealed = vec![0u8; MAX_NOISE_MESSAGE];
    let mut nonce = 0u64;
    let mut input = rest;
    while let Some((head, tail)) = input.split_first_chunk::<2>() {
        let raw = head[0] & 0x80 != 0;
        let len = usize::from(u16::from_be_bytes([head[0] & 0x7f, head[1]])).min(tail.len());
        let (piece, next) = tail.split_at(len);
        input = next;
        if raw {
            wire.extend_from_slice(&(piece.len() as u16).to_be_bytes());
            wire.extend_from_slice(piece);
        } else if let Ok(written) = sending.write_message(nonce, piece, &mut sealed) {
            nonce += 1;
            wire.extend_from_slice(&(written as u16).to_be_bytes());
            wire.extend_from_slice(sealed.get(..written).unwrap_or_default());
        }
    }
    thread_local! {
        static RUNTIME: Option<tokio::runtime::Runtime> =
            tokio::runtime::Builder::new_current_thread().build().ok();
    }
    RUNTIME.with(|runtime| {
        if let Some(runtime) = runtime {
            runtime.block_on(read_all(&wire, receiving, limit));
        }
    });
}

#[cfg(feature = "fuzzing")]
async fn read_all(wire: &[u8], receiving: Arc<StatelessTransportState>, limit: usize) {
    {
        let mut receiver = Receiver::new(wire, receiving);
        while let Ok(message) = receiver.recv(limit).await {
            let bytes = codec::encode(&message);
            assert!(bytes.len() <= limit, "a message over the limit was read");
            assert_eq!(codec::decode_exact::<Message>(&bytes).ok(), Some(message));
        }
    }
}
