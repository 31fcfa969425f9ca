//! The handshake (SPEC.md §17.2, §17.4): Noise XX with the members' X25519
//! keys as static keys, then each side's [`Auth`]: its key package, whose
//! DH key must be the Noise static key the other side saw, and its
//! signature over the handshake hash.
//!
//! Noise alone proves that the peer holds the secret of some X25519 key.
//! The package binds that key to a member's signing key, and the signature
//! proves the peer holds the signing key too, for this very connection.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use super::noise;
use super::ticket::{self, TicketKey};
use super::wire::{
    self, Auth, MAX_AUTH_MESSAGE, Message, NET_VERSION, Receiver, Sender, WireError,
};
use crate::event::Signature64;
use crate::ids::{GroupId, MemberId};
use crate::keys::LocalKeys;
use crate::labels;
use crate::signature::{labelled_message, verifies};

/// Which end of the connection a side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// It connected.
    Initiator,
    /// It accepted.
    Responder,
}

impl Side {
    fn byte(self) -> u8 {
        match self {
            Side::Initiator => 0,
            Side::Responder => 1,
        }
    }

    pub(crate) fn other(self) -> Side {
        match self {
            Side::Initiator => Side::Responder,
            Side::Responder => Side::Initiator,
        }
    }
}

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandshakeError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("the Noise handshake failed: {0}")]
    Noise(String),
    #[error("the peer's authentication is invalid: {0}")]
    BadAuth(&'static str),
    #[error("the peer refused the connection: {0}")]
    Refused(String),
    #[error("the peer sent {0} where its authentication belongs")]
    Unexpected(&'static str),
    #[error("the peer is at its limit of handshakes; try again later")]
    Busy,
    #[error(transparent)]
    Malformed(ticket::Malformed),
}

/// The bytes a side signs in its [`Auth`]: the label, the side, the
/// handshake hash and the postcard of the group it names.
pub(crate) fn auth_message(
    side: Side,
    handshake_hash: &[u8; 32],
    group: Option<GroupId>,
) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(1 + 32 + 33);
    bytes.push(side.byte());
    bytes.extend_from_slice(handshake_hash);
    bytes.extend_from_slice(&crate::codec::encode(&group));
    labelled_message(labels::NET_AUTH, &bytes)
}

/// This side's [`Auth`].
pub(crate) fn auth(
    keys: &LocalKeys,
    side: Side,
    handshake_hash: &[u8; 32],
    group: Option<GroupId>,
) -> Auth {
    use ed25519_dalek::Signer;
    let signature = keys
        .signing_key()
        .sign(&auth_message(side, handshake_hash, group))
        .to_bytes();
    Auth {
        version: NET_VERSION,
        group,
        package: keys.package(),
        signature: Signature64::from_bytes(&signature),
    }
}

/// Checks the other side's `auth`: its version, its package, that the
/// package's DH key is the Noise static key `remote_static`, and its
/// signature. Returns the member it proves.
pub(crate) fn check_auth(
    auth: &Auth,
    side: Side,
    handshake_hash: &[u8; 32],
    remote_static: &[u8; 32],
) -> Result<MemberId, HandshakeError> {
    if auth.version != NET_VERSION {
        return Err(HandshakeError::BadAuth("another protocol version"));
    }
    auth.package
        .check()
        .map_err(|_| HandshakeError::BadAuth("its key package does not verify"))?;
    let keys = auth.package.keys();
    if keys.dh.as_bytes() != remote_static {
        return Err(HandshakeError::BadAuth(
            "its key package's DH key is not its Noise static key",
        ));
    }
    let message = auth_message(side, handshake_hash, auth.group);
    if !verifies(&keys.signing, &auth.signature.to_bytes(), &message) {
        return Err(HandshakeError::BadAuth(
            "its signature over the handshake does not verify",
        ));
    }
    Ok(auth.package.member())
}

/// A finished Noise handshake: the two halves of the transport, and what
/// the handshake fixed.
pub(crate) struct Secured<R, W> {
    pub(crate) sender: Sender<W>,
    pub(crate) receiver: Receiver<R>,
    pub(crate) handshake_hash: [u8; 32],
    pub(crate) remote_static: [u8; 32],
}

/// How a side opens the handshake (SPEC.md §17.2, §17.4).
pub(crate) enum Opening<'a> {
    /// As initiator, with a ticket naming these epochs (none: a newcomer's).
    Initiate(&'a [Arc<TicketKey>]),
    /// As responder, to this first message, already read and let in.
    Answer(&'a [u8]),
}

/// Runs Noise XX over `reader` and `writer` with `keys`' X25519 key as the
/// static key. Handshake payloads are empty; the initiator's first message
/// carries a ticket after Noise's message 1, and a responder with no room
/// answers it with an empty message, [`HandshakeError::Busy`] (SPEC.md
/// §17.2).
pub(crate) async fn secure<R, W>(
    mut reader: R,
    mut writer: W,
    keys: &LocalKeys,
    opening: Opening<'_>,
    #[cfg(test)] fixed_ephemeral: Option<[u8; 32]>,
) -> Result<Secured<R, W>, HandshakeError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let noise_error = |error: snow::Error| HandshakeError::Noise(error.to_string());
    let secret = keys.dh_secret().to_bytes();
    let builder = noise::builder()
        .prologue(labels::NET_PROLOGUE)
        .map_err(noise_error)?
        .local_private_key(&secret)
        .map_err(noise_error)?;
    #[cfg(test)]
    let builder = match &fixed_ephemeral {
        Some(key) => builder.fixed_ephemeral_key_for_testing_only(key),
        None => builder,
    };
    let mut state = match opening {
        Opening::Initiate(_) => builder.build_initiator(),
        Opening::Answer(_) => builder.build_responder(),
    }
    .map_err(noise_error)?;
    let mut message = vec![0u8; wire::MAX_NOISE_MESSAGE];
    let mut payload = vec![0u8; wire::MAX_NOISE_MESSAGE];
    let mut incoming = Vec::new();
    let mut read = |state: &mut snow::HandshakeState, incoming: &[u8]| {
        let len = state
            .read_message(incoming, &mut payload)
            .map_err(noise_error)?;
        if len != 0 {
            return Err(HandshakeError::Noise(
                "a handshake payload that is not empty".into(),
            ));
        }
        Ok(())
    };
    match opening {
        Opening::Initiate(tickets) => {
            let len = state
                .write_message(&[], &mut message)
                .map_err(noise_error)?;
            let ephemeral: &[u8; ticket::EPHEMERAL_BYTES] = message
                .get(..len)
                .and_then(|e| e.try_into().ok())
                .ok_or(HandshakeError::Noise(
                    "a first message of another length".into(),
                ))?;
            let mut first = ephemeral.to_vec();
            first.extend(ticket::ticket(ephemeral, tickets));
            wire::write_noise(&mut writer, &first).await?;
            tokio::io::AsyncWriteExt::flush(&mut writer)
                .await
                .map_err(WireError::from)?;
            wire::read_noise(&mut reader, &mut incoming).await?;
            if incoming.is_empty() {
                return Err(HandshakeError::Busy);
            }
            read(&mut state, &incoming)?;
        }
        Opening::Answer(first) => {
            let (ephemeral, _) =
                ticket::parse(first).map_err(|error| HandshakeError::Noise(error.to_string()))?;
            read(&mut state, ephemeral)?;
        }
    }
    while !state.is_handshake_finished() {
        if state.is_my_turn() {
            let len = state
                .write_message(&[], &mut message)
                .map_err(noise_error)?;
            let sealed = message
                .get(..len)
                .ok_or(HandshakeError::Noise("short".into()))?;
            wire::write_noise(&mut writer, sealed).await?;
            tokio::io::AsyncWriteExt::flush(&mut writer)
                .await
                .map_err(WireError::from)?;
        } else {
            wire::read_noise(&mut reader, &mut incoming).await?;
            read(&mut state, &incoming)?;
        }
    }
    let handshake_hash: [u8; 32] = state
        .get_handshake_hash()
        .try_into()
        .map_err(|_| HandshakeError::Noise("a handshake hash of the wrong length".into()))?;
    let remote_static: [u8; 32] = state
        .get_remote_static()
        .and_then(|key| key.try_into().ok())
        .ok_or(HandshakeError::Noise("no remote static key".into()))?;
    let transport = Arc::new(state.into_stateless_transport_mode().map_err(noise_error)?);
    Ok(Secured {
        sender: Sender::new(writer, transport.clone()),
        receiver: Receiver::new(reader, transport),
        handshake_hash,
        remote_static,
    })
}

/// Reads a connection's first message, as a responder: its `be16` length
/// is checked against [`ticket::MAX_FIRST_MESSAGE`] before the rest is read.
pub(crate) async fn read_first<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<Vec<u8>, HandshakeError> {
    use tokio::io::AsyncReadExt;
    let mut len = [0u8; 2];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(WireError::Closed.into());
        }
        Err(error) => return Err(WireError::from(error).into()),
    }
    let len = usize::from(u16::from_be_bytes(len));
    if len > ticket::MAX_FIRST_MESSAGE {
        return Err(HandshakeError::Malformed(ticket::Malformed::Length(len)));
    }
    let mut first = vec![0u8; len];
    reader
        .read_exact(&mut first)
        .await
        .map_err(WireError::from)?;
    ticket::parse(&first).map_err(HandshakeError::Malformed)?;
    Ok(first)
}

/// What a responder with no room sends in place of message 2 (SPEC.md
/// §17.2): an empty Noise message, `be16(0)`.
pub(crate) const BUSY: [u8; 2] = [0, 0];

/// Reads the other side's [`Auth`] and checks it ([`check_auth`]).
pub(crate) async fn receive_auth<R: AsyncRead + Unpin>(
    receiver: &mut Receiver<R>,
    our_side: Side,
    handshake_hash: &[u8; 32],
    remote_static: &[u8; 32],
) -> Result<(MemberId, Option<GroupId>), HandshakeError> {
    match receiver.recv(MAX_AUTH_MESSAGE).await? {
        Message::Auth(auth) => {
            let auth = *auth;
            let member = check_auth(&auth, our_side.other(), handshake_hash, remote_static)?;
            Ok((member, auth.group))
        }
        Message::Refused { reason } => Err(HandshakeError::Refused(reason)),
        _ => Err(HandshakeError::Unexpected("another message")),
    }
}
