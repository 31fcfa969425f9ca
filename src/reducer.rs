//! The state machine: the one implementation of every rule (SPEC.md §5).
//!
//! [`check`] is pure, total and deterministic: it reads a state and a decoded
//! event and either accepts it, saying what changes, or names the rule it
//! breaks. No clock, no randomness, no I/O. Appending, ingesting, opening and
//! auditing all go through it.

use crate::chain::{SignedEvent, is_admissible_signing_key};
use crate::envelope::is_admissible_dh_key;
use crate::event::{Body, DecodeError, Envelope, Genesis, Role, RosterEntry, Rotate};
use crate::ids::{EventHash, GroupId, MemberId, SigningPublicKey};
use crate::labels::{FORMAT_VERSION, limits};
use crate::state::{Accepted, EpochRecord, Head, Identity, MeshState, Transition};

/// An event the reducer refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {seq} ({hash}) rejected: {rule}")]
pub struct Rejection {
    /// The event's position: its own `seq`, or for stored bytes that do not
    /// decode, the position they were stored at.
    pub seq: u64,
    /// The event's hash ([`EventHash::ZERO`] if the record is too short to have one).
    pub hash: EventHash,
    /// The rule broken.
    pub rule: Rule,
}

/// Which key of an event a weak-key rejection is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A member's ed25519 key.
    Signing,
    /// A member's X25519 key.
    Dh,
    /// An envelope's ephemeral X25519 key.
    Ephemeral,
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyKind::Signing => "signing",
            KeyKind::Dh => "DH",
            KeyKind::Ephemeral => "ephemeral DH",
        })
    }
}

/// A reducer rule (SPEC.md §5.2 lists each, with the same names).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rule {
    /// R1: the bytes are not a canonical v1 event.
    #[error("malformed: {0}")]
    Malformed(DecodeError),
    /// R2: the event's version is not one this build reads.
    #[error("format version {found} is not supported")]
    UnsupportedVersion {
        /// Version found.
        found: u16,
    },
    /// R3: the event names another group.
    #[error("names group {found}, but this chain is group {expected}")]
    WrongGroup {
        /// This chain's group.
        expected: GroupId,
        /// The group named.
        found: GroupId,
    },
    /// R4: the seq is not the head's plus one.
    #[error("seq {found} does not follow the head (expected {expected})")]
    SeqNotNext {
        /// The seq that would follow the head.
        expected: u64,
        /// The seq found.
        found: u64,
    },
    /// R5: prev is not the head's hash.
    #[error("prev {found} is not the hash of the previous event ({expected})")]
    PrevMismatch {
        /// The head's hash.
        expected: EventHash,
        /// The prev found.
        found: EventHash,
    },
    /// R6: the first event is not a genesis.
    #[error("the first event must be a genesis")]
    FirstNotGenesis,
    /// R7: a genesis after the first event.
    #[error("a chain has exactly one genesis")]
    SecondGenesis,
    /// R8: the genesis is not authored by the founder it names.
    #[error("the genesis must be authored by its founder {founder}, not {author}")]
    GenesisAuthorMismatch {
        /// The founder's id.
        founder: MemberId,
        /// The author named.
        author: MemberId,
    },
    /// R9: the author is not in the current epoch's roster.
    #[error("author {author} is not a member of epoch {epoch}")]
    AuthorNotMember {
        /// The author.
        author: MemberId,
        /// The current epoch.
        epoch: u64,
    },
    /// R10: the signature does not verify under the author's key.
    #[error("signature does not verify under the key of author {author}")]
    BadSignature {
        /// The author.
        author: MemberId,
    },
    /// R11: a disabled member acted on the group.
    #[error("author {author} is disabled and may only enable itself")]
    AuthorDisabled {
        /// The author.
        author: MemberId,
    },
    /// R12: a non-admin rotated.
    #[error("author {author} is not an admin of epoch {epoch}")]
    NotAdmin {
        /// The author.
        author: MemberId,
        /// The current epoch.
        epoch: u64,
    },
    /// R13: the rotation does not open the next epoch.
    #[error("rotation opens epoch {found}, but the next epoch is {expected}")]
    EpochNotNext {
        /// The next epoch.
        expected: u64,
        /// The epoch named.
        found: u64,
    },
    /// R14: the roster is empty.
    #[error("the roster is empty")]
    RosterEmpty,
    /// R15: roster entries are not in strictly increasing member-id order.
    #[error("roster entry {index} ({member}) is out of order or a duplicate")]
    RosterUnsorted {
        /// Position of the entry.
        index: usize,
        /// Its member id.
        member: MemberId,
    },
    /// R16: a roster id is not the id of its signing key.
    #[error("roster id {member} is not derived from its signing key (expected {derived})")]
    RosterIdMismatch {
        /// The id given.
        member: MemberId,
        /// The id the key certifies.
        derived: MemberId,
    },
    /// R17: the roster has no admin.
    #[error("the roster has no admin")]
    RosterNoAdmin,
    /// R18: a public key is malformed or of small order.
    #[error("{kind} key of {member} is invalid or of small order")]
    WeakKey {
        /// The member whose key it is (the author, for an ephemeral key).
        member: MemberId,
        /// Which key.
        kind: KeyKind,
    },
    /// R19: the envelope's recipients are not exactly the roster.
    #[error(
        "the envelope's recipients are not exactly the roster (first difference at position {index})"
    )]
    EnvelopeRecipients {
        /// First position where recipients and roster differ.
        index: usize,
    },
    /// R20: a size limit is exceeded, or a required text is empty.
    #[error("{field} has size {found}, outside the allowed {min}..={max}")]
    Limit {
        /// Which field.
        field: &'static str,
        /// Its size.
        found: usize,
        /// Smallest allowed.
        min: usize,
        /// Largest allowed.
        max: usize,
    },
}

impl Rule {
    /// The rule's number in SPEC.md §5.2 (`"R1"` … `"R20"`).
    pub fn code(&self) -> &'static str {
        self.id().0
    }

    /// A stable kebab-case name, as the CLI's JSON prints it.
    pub fn name(&self) -> &'static str {
        self.id().1
    }

    fn id(&self) -> (&'static str, &'static str) {
        match self {
            Rule::Malformed(_) => ("R1", "malformed"),
            Rule::UnsupportedVersion { .. } => ("R2", "unsupported-version"),
            Rule::WrongGroup { .. } => ("R3", "wrong-group"),
            Rule::SeqNotNext { .. } => ("R4", "seq-not-next"),
            Rule::PrevMismatch { .. } => ("R5", "prev-mismatch"),
            Rule::FirstNotGenesis => ("R6", "first-not-genesis"),
            Rule::SecondGenesis => ("R7", "second-genesis"),
            Rule::GenesisAuthorMismatch { .. } => ("R8", "genesis-author-mismatch"),
            Rule::AuthorNotMember { .. } => ("R9", "author-not-member"),
            Rule::BadSignature { .. } => ("R10", "bad-signature"),
            Rule::AuthorDisabled { .. } => ("R11", "author-disabled"),
            Rule::NotAdmin { .. } => ("R12", "not-admin"),
            Rule::EpochNotNext { .. } => ("R13", "epoch-not-next"),
            Rule::RosterEmpty => ("R14", "roster-empty"),
            Rule::RosterUnsorted { .. } => ("R15", "roster-unsorted"),
            Rule::RosterIdMismatch { .. } => ("R16", "roster-id-mismatch"),
            Rule::RosterNoAdmin => ("R17", "roster-no-admin"),
            Rule::WeakKey { .. } => ("R18", "weak-key"),
            Rule::EnvelopeRecipients { .. } => ("R19", "envelope-recipients"),
            Rule::Limit { .. } => ("R20", "limit"),
        }
    }
}

/// Decides whether `event` may follow `state`, and what it changes.
///
/// On acceptance, [`MeshState::apply`] with the result gives the new state; on
/// rejection the state is untouched, since nothing here mutates it.
pub(crate) fn check(state: &MeshState, event: &SignedEvent) -> Result<Accepted, Rejection> {
    check_with(state, event, Signature::Verify).map(|(accepted, _)| accepted)
}

/// Every rule but R10, which is left to the caller: returns the key the
/// event's signature must verify under. For verifying many events with their
/// signatures checked in parallel. An event this accepts is accepted by
/// [`check`] exactly when its signature verifies under the returned key; an
/// event this rejects must be passed to [`check`] for the exact verdict (R10
/// may come first).
pub(crate) fn check_deferring_signature(
    state: &MeshState,
    event: &SignedEvent,
) -> Result<(Accepted, SigningPublicKey), Rejection> {
    check_with(state, event, Signature::Defer)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Signature {
    Verify,
    Defer,
}

fn check_with(
    state: &MeshState,
    event: &SignedEvent,
    signature: Signature,
) -> Result<(Accepted, SigningPublicKey), Rejection> {
    let verified =
        |key: &SigningPublicKey| signature == Signature::Defer || event.is_signed_by(key);
    let fields = event.event();
    let reject = |rule| Rejection {
        seq: fields.seq,
        hash: event.hash(),
        rule,
    };
    if fields.version != FORMAT_VERSION {
        return Err(reject(Rule::UnsupportedVersion {
            found: fields.version,
        }));
    }
    let (expected_group, expected_seq, expected_prev) = state.next_position();
    if fields.group != expected_group {
        return Err(reject(Rule::WrongGroup {
            expected: expected_group,
            found: fields.group,
        }));
    }
    if fields.seq != expected_seq {
        return Err(reject(Rule::SeqNotNext {
            expected: expected_seq,
            found: fields.seq,
        }));
    }
    if fields.prev != expected_prev {
        return Err(reject(Rule::PrevMismatch {
            expected: expected_prev,
            found: fields.prev,
        }));
    }
    let head = Head {
        seq: fields.seq,
        hash: event.hash(),
    };
    let (transition, key) = match (state.current_epoch(), &fields.body) {
        (None, Body::Genesis(genesis)) => (
            check_genesis(event, genesis, &verified).map_err(reject)?,
            genesis.founder.signing,
        ),
        (None, _) => return Err(reject(Rule::FirstNotGenesis)),
        (Some(_), Body::Genesis(_)) => return Err(reject(Rule::SecondGenesis)),
        (Some(current), body) => {
            let author = fields.author;
            let entry = current.member(author).ok_or(Rule::AuthorNotMember {
                author,
                epoch: current.epoch,
            });
            let entry = entry.map_err(reject)?;
            if !verified(&entry.keys.signing) {
                return Err(reject(Rule::BadSignature { author }));
            }
            let transition =
                check_member_body(state, current, entry, event, body).map_err(reject)?;
            (transition, entry.keys.signing)
        }
    };
    Ok((Accepted { head, transition }, key))
}

fn check_genesis(
    event: &SignedEvent,
    genesis: &Genesis,
    verified: &dyn Fn(&SigningPublicKey) -> bool,
) -> Result<Transition, Rule> {
    let fields = event.event();
    let founder = genesis.founder.member_id();
    if fields.author != founder {
        return Err(Rule::GenesisAuthorMismatch {
            founder,
            author: fields.author,
        });
    }
    check_len(
        "group name",
        genesis.group_name.len(),
        1,
        limits::MAX_GROUP_NAME,
    )?;
    let entry = RosterEntry {
        id: founder,
        keys: genesis.founder,
        role: Role::Admin,
    };
    check_keys(&entry)?;
    if !verified(&genesis.founder.signing) {
        return Err(Rule::BadSignature { author: founder });
    }
    let roster = vec![entry];
    check_envelope(&genesis.envelope, &roster, founder)?;
    Ok(Transition::Genesis {
        identity: Identity {
            group: event.hash().into(),
            name: genesis.group_name.clone(),
            founder,
            created_at: fields.time,
        },
        epoch: EpochRecord {
            epoch: 0,
            seq: fields.seq,
            author: founder,
            time: fields.time,
            roster,
            envelope: genesis.envelope.clone(),
            reason: "genesis".into(),
        },
    })
}

fn check_member_body(
    state: &MeshState,
    current: &EpochRecord,
    author: &RosterEntry,
    event: &SignedEvent,
    body: &Body,
) -> Result<Transition, Rule> {
    let enabled = state.is_enabled(author.id);
    match body {
        Body::SetEnabled { enabled } => Ok(Transition::SetEnabled {
            member: author.id,
            enabled: *enabled,
        }),
        _ if !enabled => Err(Rule::AuthorDisabled { author: author.id }),
        Body::App { kind, payload } => {
            check_len("app kind", kind.len(), 1, limits::MAX_APP_KIND)?;
            check_len("app payload", payload.len(), 0, limits::MAX_APP_PAYLOAD)?;
            Ok(Transition::App)
        }
        Body::Rotate(rotate) => check_rotate(current, author, event, rotate),
        Body::Genesis(_) => Err(Rule::SecondGenesis),
    }
}

fn check_rotate(
    current: &EpochRecord,
    author: &RosterEntry,
    event: &SignedEvent,
    rotate: &Rotate,
) -> Result<Transition, Rule> {
    if author.role != Role::Admin {
        return Err(Rule::NotAdmin {
            author: author.id,
            epoch: current.epoch,
        });
    }
    let expected = current.epoch.saturating_add(1);
    if rotate.epoch != expected {
        return Err(Rule::EpochNotNext {
            expected,
            found: rotate.epoch,
        });
    }
    check_len("reason", rotate.reason.len(), 0, limits::MAX_REASON)?;
    check_roster(&rotate.roster, current)?;
    check_envelope(&rotate.envelope, &rotate.roster, author.id)?;
    let fields = event.event();
    Ok(Transition::Rotate(EpochRecord {
        epoch: rotate.epoch,
        seq: fields.seq,
        author: author.id,
        time: fields.time,
        roster: rotate.roster.clone(),
        envelope: rotate.envelope.clone(),
        reason: rotate.reason.clone(),
    }))
}

fn check_roster(roster: &[RosterEntry], current: &EpochRecord) -> Result<(), Rule> {
    if roster.is_empty() {
        return Err(Rule::RosterEmpty);
    }
    check_len("roster", roster.len(), 1, limits::MAX_ROSTER)?;
    let mut previous: Option<MemberId> = None;
    for (index, entry) in roster.iter().enumerate() {
        if previous.is_some_and(|previous| previous >= entry.id) {
            return Err(Rule::RosterUnsorted {
                index,
                member: entry.id,
            });
        }
        previous = Some(entry.id);
        // Keys already admitted with this id passed these checks then; only
        // new keys are checked (decompressing a point is the costly part).
        let admitted = current
            .member(entry.id)
            .is_some_and(|known| known.keys == entry.keys);
        if !admitted {
            check_keys(entry)?;
        }
    }
    if !roster.iter().any(|entry| entry.role == Role::Admin) {
        return Err(Rule::RosterNoAdmin);
    }
    Ok(())
}

/// A roster entry's id must be its key's, and both keys must be admissible.
fn check_keys(entry: &RosterEntry) -> Result<(), Rule> {
    let derived = entry.keys.member_id();
    if entry.id != derived {
        return Err(Rule::RosterIdMismatch {
            member: entry.id,
            derived,
        });
    }
    if !is_admissible_signing_key(&entry.keys.signing) {
        return Err(Rule::WeakKey {
            member: entry.id,
            kind: KeyKind::Signing,
        });
    }
    if !is_admissible_dh_key(&entry.keys.dh) {
        return Err(Rule::WeakKey {
            member: entry.id,
            kind: KeyKind::Dh,
        });
    }
    Ok(())
}

/// The envelope must wrap to exactly the roster, in roster order, from an
/// admissible ephemeral key. Whether each copy decrypts is for its recipient
/// to find out: nobody else can.
fn check_envelope(
    envelope: &Envelope,
    roster: &[RosterEntry],
    author: MemberId,
) -> Result<(), Rule> {
    if !is_admissible_dh_key(&envelope.ephemeral) {
        return Err(Rule::WeakKey {
            member: author,
            kind: KeyKind::Ephemeral,
        });
    }
    let longest = roster.len().max(envelope.wrapped.len());
    for index in 0..longest {
        let recipient = envelope.wrapped.get(index).map(|wrapped| wrapped.member);
        let member = roster.get(index).map(|entry| entry.id);
        if recipient != member {
            return Err(Rule::EnvelopeRecipients { index });
        }
    }
    Ok(())
}

fn check_len(field: &'static str, found: usize, min: usize, max: usize) -> Result<(), Rule> {
    if (min..=max).contains(&found) {
        Ok(())
    } else {
        Err(Rule::Limit {
            field,
            found,
            min,
            max,
        })
    }
}
