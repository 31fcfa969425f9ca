//! meshlog: who is in a small secure group, and a secret only they can
//! read, kept as signed events that concurrent writers converge on.
//!
//! Every member writes its own append-only *feed* of events, each
//! postcard-encoded, ed25519-signed by its author and blake3-linked to the
//! author's previous event, stored in a redb file. Admins rotate epochs: a
//! rotation names the rotations it builds on, so rotations form a graph, and
//! concurrent rotations resolve by rules every peer computes alike (owner >
//! admin > member). Each rotation wraps a fresh secret to exactly its own
//! roster. Peers exchange what the other lacks, in any order; every peer that
//! holds the same set of events has the same state and digest.
//! SPEC.md in the repository pins every byte and every rule.
//!
//! # Quick start
//!
//! ```
//! use meshlog::{LocalKeys, Mesh, Role};
//!
//! # fn main() -> meshlog::Result<()> {
//! let dir = tempfile::tempdir().expect("temporary folder");
//!
//! // The founder is the group's first owner, and starts disabled.
//! let mut founder = Mesh::create(dir.path().join("founder.redb"), LocalKeys::generate(), "ops team")?;
//! founder.set_enabled(true)?;
//!
//! // Alice sends her key package, which she signs; adding her rotates to a
//! // new epoch whose fresh secret is wrapped to both.
//! let alice_keys = LocalKeys::generate();
//! let epoch = founder.add_member(alice_keys.package(), Role::Member)?;
//! founder.append_app("note", b"alice joined")?;
//! assert_eq!(founder.current_epoch(), Some(epoch));
//!
//! // Alice makes her copy from the founder's export and writes at once;
//! // the founder writes too. Each takes the other's events: they converge.
//! let mut alice = Mesh::join(dir.path().join("alice.redb"), alice_keys, &founder.export_all())?;
//! alice.set_enabled(true)?;
//! alice.append_app("note", b"hello from alice")?;
//! founder.append_app("note", b"meanwhile, the founder")?;
//! alice.ingest(&founder.export(&alice.frontier()))?;
//! founder.ingest(&alice.export(&founder.frontier()))?;
//! assert_eq!(alice.digest(), founder.digest());
//!
//! // Both recover the same epoch secret.
//! let secret = alice.epoch_secret(epoch)?;
//! assert_eq!(secret.expose(), founder.epoch_secret(epoch)?.expose());
//!
//! // Members seal messages for each other under it (SPEC.md §16): the
//! // reader learns which member sealed one, and no other member can forge it.
//! let sealed = alice.seal(b"deploy at 5", b"ops")?;
//! let opened = founder.open_sealed(&sealed)?;
//! assert_eq!((opened.sender, opened.plaintext.as_slice()), (alice.member_id().unwrap(), &b"deploy at 5"[..]));
//!
//! // Reopening verifies every event and projection again.
//! let digest = founder.digest();
//! drop(founder);
//! let audit = Mesh::open_read_only(dir.path().join("founder.redb"))?;
//! assert_eq!(audit.digest(), digest);
//! assert_eq!(audit.roster().len(), 2);
//! # Ok(())
//! # }
//! ```
// One call is allowed unsafe code: the journal's `sync_file_range`, a system
// call that touches no memory of the process (src/journal.rs).
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod agreement;
mod backing;
mod batch;
mod checkpoint;
mod codec;
mod envelope;
mod error;
mod event;
mod feed_mark;
mod feeds;
mod frontier;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod graph;
mod ids;
mod journal;
mod keys;
mod labels;
mod left_out;
mod mesh;
#[cfg(feature = "net")]
pub mod net;
mod redb_file;
mod seal;
mod signature;
#[cfg(any(test, feature = "fuzzing"))]
mod split_mix;
mod statuses;
mod store;
mod verify;

#[cfg(test)]
pub(crate) mod tests;

pub use batch::{BATCH_MAGIC, BATCH_VERSION, Batch, BatchError, MAX_BATCH_EVENTS};
pub use envelope::{EnvelopeError, EpochSecret};
pub use error::{Error, ErrorClass, Mismatch, Result, StoreError, VoidReason};
pub use event::{
    Body, Change, DecodeError, Envelope, Event, MemberKeys, PackageError, ParsePackageError,
    SignedEvent, SignedPackage as KeyPackage, WrappedSecret,
};
pub use feed_mark::feed_mark_path;
pub use feeds::{Equivocation, EventStatus, FeedError, Missing};
pub use frontier::{Frontier, FrontierError, MAX_FRONTIER_BELOW, MAX_FRONTIER_HEADS};
pub use graph::{GraphError, ParseRoleError, Role, Roster, RosterEntry};
pub use ids::{
    DhPublicKey, EventHash, GroupId, MemberId, MessageId, ParseHexError, SecretCommitment,
    SigningPublicKey, StateDigest,
};
pub use keys::{KeyError, LocalKeys};
pub use labels::{DOMAIN_LABELS, FORMAT_VERSION, STORE_FORMAT, limits};
pub use mesh::{EpochInfo, ForkShape, Ingested, LogEntry, Mesh, MeshOptions, OpenReport};
pub use seal::{
    Opened, Padding, SEALED_APP_MAGIC, SEALED_MAGIC, SEALED_OVERHEAD, SealError, Sealed,
};
pub use signature::SIGNATURE_LEN;
pub use verify::{Rejection, Rule, SecretError};
