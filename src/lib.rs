//! meshlog: an event-sourced, signed and hash-linked log of who is in a small
//! secure group, and of a secret that only the current members can read.
//!
//! The chain of events, stored in a redb file, is the only truth. Each event
//! is postcard-encoded, ed25519-signed by its author and blake3-linked to the
//! one before. A pure reducer projects from it the group's identity, the
//! roster of every epoch and every epoch's wrapped secret, and it is the only
//! implementation of the rules: appending, opening and auditing all use it.
//! SPEC.md in the repository pins every byte and every rule.
//!
//! # Quick start
//!
//! ```
//! use meshlog::{LocalKeys, Mesh, Role};
//!
//! # fn main() -> meshlog::Result<()> {
//! let dir = tempfile::tempdir().expect("temporary folder");
//! let path = dir.path().join("mesh.redb");
//!
//! // The founder is the sole admin of epoch 0, and starts disabled.
//! let mut mesh = Mesh::create(&path, LocalKeys::generate(), "ops team")?;
//! mesh.set_enabled(true)?;
//!
//! // Adding a member rotates to epoch 1 and wraps a fresh secret to both.
//! let alice = LocalKeys::generate();
//! mesh.add_member(alice.public(), Role::Member)?;
//! mesh.append_app("note", b"alice joined")?;
//! let secret = mesh.epoch_secret(1)?;
//! assert_eq!(secret.expose().len(), 32);
//!
//! // Reopening replays and verifies the whole chain.
//! let digest = mesh.digest();
//! drop(mesh);
//! let audit = Mesh::open_read_only(&path)?;
//! assert_eq!(audit.digest(), digest);
//! assert_eq!(audit.state().current_epoch().map(|e| e.roster.len()), Some(2));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod batch;
mod chain;
mod codec;
mod engine;
mod envelope;
mod error;
mod event;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod hash_index;
mod ids;
mod keys;
mod labels;
mod redb_file;
mod reducer;
mod state;
mod store;
mod v3;

pub use batch::{BATCH_MAGIC, BATCH_VERSION, Batch, BatchError, MAX_BATCH_EVENTS};
pub use chain::{SIGNATURE_LEN, SignedEvent};
pub use engine::{IngestReport, Mesh, MeshOptions, Receipt};
pub use envelope::{EnvelopeError, EpochSecret};
pub use error::{Error, Fork, Mismatch, Result, StoreError};
pub use event::{
    Body, DecodeError, Envelope, Event, Genesis, MemberKeys, Role, RosterEntry, Rotate,
    WrappedSecret,
};
pub use ids::{
    DhPublicKey, EventHash, GroupId, MemberId, ParseHexError, SecretCommitment, SigningPublicKey,
    StateDigest,
};
pub use keys::{KeyError, LocalKeys};
pub use labels::{DOMAIN_LABELS, FORMAT_VERSION, STORE_FORMAT, limits};
pub use reducer::{KeyKind, Rejection, Rule};
pub use state::{EpochRecord, Head, Identity, MeshState};
pub use store::{Equivocation, OpenReport};
