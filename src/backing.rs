//! Where a ledger finds the events it no longer holds in memory: the rows of
//! the file it is stored in (SPEC.md §9.5).
//!
//! A ledger keeps in memory what resolution and the next event need (the
//! epoch graph, each feed's heads, every forked position) and the events
//! taken since it last settled; everything older is read back on demand.
//! Only rows the ledger itself has vouched for are read: those below
//! [`Backing::len`], each checked as it was written or as a full
//! verification passed over it, and each checked again as it is read.
//!
//! A read that fails (I/O, or a row that does not check) cannot be answered
//! with a guess: the backing records the first failure, answers as if the
//! row were absent, and every operation of the ledger that read it returns
//! that failure instead of its result ([`Backing::failure`]), so nothing
//! built on the guess is kept. The store is then unusable until reopened,
//! as a journal is after a failed flush.

use std::sync::Arc;

use crate::error::Error;
use crate::event::SignedEvent;
use crate::ids::{EventHash, MemberId};

/// What later events of a feed need from one of its events, beyond the
/// event itself: the author's flag after it, and the epochs its feed had
/// named up to it, reduced to those no other descends from (SPEC.md §4.2,
/// F3, F4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SeatRow {
    /// Where the event is in the order events were added.
    pub(crate) position: u64,
    /// The author's flag after it.
    pub(crate) enabled: bool,
    /// The epochs acknowledged up to it.
    pub(crate) acknowledged: Arc<[EventHash]>,
    /// The digest of its stored record, signature included.
    pub(crate) record: [u8; 16],
}

/// The events of a ledger that live only on disk, below [`Backing::len`].
pub(crate) trait Backing: Send + Sync {
    /// How many events (positions `0..len`) the backing answers for.
    fn len(&self) -> u64;

    /// The row of the event `hash` at `author`'s position `seq`, if held.
    fn seat_row(&self, author: MemberId, seq: u64, hash: EventHash) -> Option<SeatRow>;

    /// The hashes of the held events at `author`'s position `seq`: one,
    /// unless the author equivocated there; none past its feed.
    fn seat(&self, author: MemberId, seq: u64) -> Vec<EventHash>;

    /// The position of a held event.
    fn position(&self, hash: EventHash) -> Option<u64>;

    /// The event at `position`, checked to be the one the ledger held there.
    fn record_at(&self, position: u64) -> Option<SignedEvent>;

    /// The events at positions `from..to`, in order; fewer if a read fails.
    fn records(&self, from: u64, to: u64) -> Vec<SignedEvent>;

    /// Every held hash, in hash order.
    fn for_each_hash(&self, each: &mut dyn FnMut(EventHash));

    /// Records that `author`'s position `seq`, which must hold an event,
    /// has no row: a deleted row, which fails the read that found it.
    fn lost_row(&self, author: MemberId, seq: u64);

    /// The first read that failed, if any: every answer given since may be
    /// wrong, and the ledger refuses to go on.
    fn failure(&self) -> Option<Error>;
}

/// The event `hash`, held at `position` by `backing`, if held.
pub(crate) fn record(backing: &dyn Backing, hash: EventHash) -> Option<SignedEvent> {
    let position = backing.position(hash)?;
    backing
        .record_at(position)
        .filter(|record| record.hash() == hash)
}
