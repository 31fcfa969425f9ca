//! Sealing and opening messages under the epoch secrets the local member
//! holds (SPEC.md §16): [`Mesh::seal`], [`Mesh::open_sealed`], and sealed app
//! events ([`Mesh::append_sealed`], [`Mesh::open_event`]).

use std::sync::Arc;

use rand::TryRng;

use super::{Mesh, writer};
use crate::error::{Error, Result};
use crate::event::Body;
use crate::graph::Status;
use crate::ids::{EventHash, SigningPublicKey};
use crate::keys::LocalKeys;
use crate::labels::limits;
use crate::seal::{self, Context, EpochKey, Opened, Padding, SealError, Sealed, SenderKey};

/// What opening and sealing keep between calls, in memory only: the
/// keys of the epochs whose messages the local member sealed or opened
/// (derived from their secrets, zeroized on drop), so that a message costs
/// no key agreement, and the senders' signing keys, decoded.
#[derive(Default)]
pub(crate) struct SealKeys {
    epochs: foldhash::HashMap<EventHash, Arc<EpochKey>>,
    senders: foldhash::HashMap<SigningPublicKey, SenderKey>,
}

/// A fresh salt from the operating system, for each message: a
/// generator in this process could be cloned with it (a fork, a
/// snapshot), and two messages would then share a key.
fn fresh_salt() -> Result<[u8; 32], SealError> {
    let mut salt = [0u8; 32];
    rand::rngs::SysRng
        .try_fill_bytes(&mut salt)
        .map_err(|_| SealError::Randomness)?;
    Ok(salt)
}

impl Mesh {
    /// Seals `plaintext` for the members of the epoch the local member
    /// writes under (the current epoch, or the writer epoch while a merge
    /// is needed), padded by Padmé (SPEC.md §16.3). `associated_data` is
    /// bound to the message and travels with it in the clear.
    ///
    /// Any member of that epoch can open it and learns that the local
    /// member sealed it; no other member can make a message that opens as
    /// the local member's. There is no forward secrecy within an epoch:
    /// whoever holds the epoch's secret reads every message of the epoch,
    /// so rotate ([`Mesh::refresh`]) to stop a leaked secret reading what
    /// comes next.
    pub fn seal(&self, plaintext: &[u8], associated_data: &[u8]) -> Result<Sealed> {
        self.seal_with(plaintext, associated_data, Padding::default())
    }

    /// [`Mesh::seal`] with the padding given.
    pub fn seal_with(
        &self,
        plaintext: &[u8],
        associated_data: &[u8],
        padding: Padding,
    ) -> Result<Sealed> {
        let keys = self.keys.as_ref().ok_or(Error::NoKeys)?;
        let epoch = self.sealing_epoch(keys)?;
        self.seal_in(
            keys,
            epoch,
            (plaintext, associated_data),
            padding,
            Context::Message,
        )
    }

    /// Seals in `epoch` as `keys`' member, with a fresh salt.
    fn seal_in(
        &self,
        keys: &LocalKeys,
        epoch: EventHash,
        content: (&[u8], &[u8]),
        padding: Padding,
        context: Context,
    ) -> Result<Sealed> {
        let key = self.epoch_key(epoch, keys)?;
        let salt = fresh_salt()?;
        Ok(seal::seal(
            &key,
            self.group(),
            epoch,
            keys,
            salt,
            content,
            padding,
            context,
        )?)
    }

    /// Opens a sealed message. Before any byte of plaintext is returned:
    /// the message is of this group; the mesh holds its epoch; the local
    /// member is in that epoch's roster; the AEAD verifies; the sender it
    /// names is in that epoch's roster; and the sender's signature holds
    /// (SPEC.md §16.4). A member removed since still opens the messages of
    /// the epochs it was in, and none of the epochs after.
    ///
    /// A message of an epoch that is no longer current still opens: its
    /// sender was a member then. [`Opened::epoch_current`] and
    /// [`Opened::sender_in_roster`] say whether it still is, for an
    /// application that must not take, say, a message a removed member
    /// seals in an old epoch with the keys it kept.
    pub fn open_sealed(&self, sealed: &Sealed) -> Result<Opened> {
        self.open_in(sealed, Context::Message)
    }

    /// [`Mesh::open_sealed`] of bytes sealed in `context`.
    fn open_in(&self, sealed: &Sealed, context: Context) -> Result<Opened> {
        let keys = self.keys.as_ref().ok_or(Error::NoKeys)?;
        if sealed.context() != context {
            let name = |context| match context {
                Context::Message => "a sealed message",
                Context::App => "a sealed app event's payload",
            };
            return Err(SealError::WrongContext {
                found: name(sealed.context()),
                expected: name(context),
            }
            .into());
        }
        let group = self.group();
        if sealed.group() != group {
            return Err(SealError::ForeignGroup {
                expected: group,
                found: sealed.group(),
            }
            .into());
        }
        let epoch = sealed.epoch();
        let roster = self
            .ledger
            .state()
            .graph()
            .own_roster(epoch)
            .ok_or(SealError::UnknownEpoch(epoch))?;
        let member = keys.member_id();
        if !roster.contains(member) {
            return Err(SealError::NotAMember { epoch, member }.into());
        }
        let key = self.epoch_key(epoch, keys)?;
        let decrypted = seal::decrypt(&key, sealed)?;
        let sender = decrypted.sender;
        let signing = roster
            .get(sender)
            .map(|entry| entry.keys().signing)
            .ok_or(SealError::UnknownSender { sender, epoch })?;
        let sender_key = self
            .sender_key(&signing)
            .ok_or(SealError::BadSignature { sender })?;
        let (plaintext, id) = decrypted.verify(&sender_key)?;
        let keys_epoch = self.epoch_for(member).ok();
        Ok(Opened {
            sender,
            epoch,
            epoch_applied: self.is_applied(epoch),
            epoch_current: keys_epoch == Some(epoch),
            sender_in_roster: self.roster().contains(sender),
            associated_data: sealed.associated_data().to_vec(),
            plaintext,
            id,
        })
    }

    /// Appends an application record whose payload is sealed (SPEC.md
    /// §16.5) under the epoch it is written under, with `kind` as its
    /// associated data. Anyone with the file checks every signature and
    /// rule of it and sees its kind and padded size; only that epoch's
    /// members read it ([`Mesh::open_event`]). The plaintext may hold up
    /// to [`limits::MAX_APP_PAYLOAD`] bytes.
    pub fn append_sealed(&mut self, kind: &str, plaintext: &[u8]) -> Result<EventHash> {
        if plaintext.len() > limits::MAX_APP_PAYLOAD {
            return Err(SealError::TooLarge {
                what: "a sealed app event's plaintext",
                len: plaintext.len(),
                max: limits::MAX_APP_PAYLOAD,
            }
            .into());
        }
        let keys = writer(&self.keys, self.read_only)?;
        let member = keys.member_id();
        let epoch = self.epoch_for(member)?;
        let sealed = self.seal_in(
            keys,
            epoch,
            (plaintext, kind.as_bytes()),
            Padding::Padme,
            Context::App,
        )?;
        let time = (self.clock)();
        let made = self.ledger.make_next(
            keys,
            time,
            Body::SealedApp {
                epoch,
                kind: kind.to_owned(),
                sealed: sealed.to_bytes(),
            },
        );
        self.add(made)
    }

    /// Opens the sealed app event `event`: the checks of
    /// [`Mesh::open_sealed`] on its payload, which must also name the
    /// event's author as its sender and hold at most
    /// [`limits::MAX_APP_PAYLOAD`] bytes of plaintext (SPEC.md §16.5).
    pub fn open_event(&self, event: EventHash) -> Result<Opened> {
        let record = self
            .ledger
            .record(event)
            .ok_or(SealError::NotSealed(event))?;
        let Body::SealedApp { sealed, .. } = &record.event().body else {
            return Err(SealError::NotSealed(event).into());
        };
        let opened = self.open_in(&Sealed::from_bytes(sealed)?, Context::App)?;
        if opened.plaintext.len() > limits::MAX_APP_PAYLOAD {
            return Err(
                SealError::InvalidContent("a sealed app event's plaintext over the limit").into(),
            );
        }
        let author = record.event().author;
        if opened.sender != author {
            return Err(SealError::SenderMismatch {
                author,
                sender: opened.sender,
            }
            .into());
        }
        Ok(opened)
    }

    /// The epoch a message is sealed in: the one the local member writes
    /// under, if it may write.
    fn sealing_epoch(&self, keys: &LocalKeys) -> Result<EventHash> {
        let member = keys.member_id();
        let epoch = self.epoch_for(member)?;
        if !self.is_member_enabled(member) {
            return Err(Error::Disabled { member });
        }
        Ok(epoch)
    }

    /// The key of `epoch`'s messages, recovered once (one key agreement)
    /// and then kept in memory.
    fn epoch_key(&self, epoch: EventHash, keys: &LocalKeys) -> Result<Arc<EpochKey>> {
        if let Some(key) = self.seal_keys().epochs.get(&epoch) {
            return Ok(Arc::clone(key));
        }
        // The key agreement runs outside the lock: other openers go on.
        let secret = self.ledger.epoch_secret(epoch, keys)?;
        let key = Arc::new(EpochKey::derive(&secret, self.group(), epoch));
        Ok(Arc::clone(
            self.seal_keys().epochs.entry(epoch).or_insert(key),
        ))
    }

    /// A sender's signing key, decoded once.
    fn sender_key(&self, signing: &SigningPublicKey) -> Option<SenderKey> {
        let mut cache = self.seal_keys();
        if let Some(key) = cache.senders.get(signing) {
            return Some(*key);
        }
        let key = SenderKey::decode(signing)?;
        cache.senders.insert(*signing, key);
        Some(key)
    }

    fn seal_keys(&self) -> std::sync::MutexGuard<'_, SealKeys> {
        // A panic elsewhere cannot leave the keys half-written: each is
        // inserted whole.
        self.seal_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `epoch` applies in the current resolution (the genesis
    /// always does).
    fn is_applied(&self, epoch: EventHash) -> bool {
        crate::ids::GroupId::from(epoch) == self.group()
            || matches!(
                self.resolution().statuses.get(&epoch),
                Some(Status::Applied { .. })
            )
    }
}

#[cfg(test)]
mod tests;
