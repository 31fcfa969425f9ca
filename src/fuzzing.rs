//! Helpers for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`).
//!
//! The targets are thin shims; what they need lives here, next to the code it
//! exercises. Every helper panics on a broken invariant: that is how a fuzzer
//! reports a finding.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::batch::Batch;
use crate::chain::SignedEvent;
use crate::envelope::{self, Binding, EpochSecret};
use crate::event::{Body, Event, Genesis, MemberKeys, Role, RosterEntry, Rotate};
use crate::ids::{EventHash, MemberId};
use crate::keys::LocalKeys;
use crate::labels::FORMAT_VERSION;
use crate::reducer;
use crate::state::MeshState;
use crate::{Mesh, MeshOptions};

/// Format v3 (being built beside v2): random histories among four peers
/// converge, and arbitrary bytes never panic the v3 verifier.
pub use crate::v3::fuzz::{
    converge as v3_converge, decode as v3_decode, sample_records as v3_sample_records,
};

/// Arbitrary bytes into every decoder: none may panic, and whatever decodes
/// re-encodes to the very same bytes. Decoded events also go through the
/// verifier against an empty state and a founded one.
pub fn decode(data: &[u8]) {
    if let Ok(event) = Event::decode(data) {
        assert_eq!(event.encode(), data, "event re-encodes differently");
    }
    if let Ok(record) = SignedEvent::from_record(data) {
        assert_eq!(record.to_record(), data, "record re-encodes differently");
        let mut empty = MeshState::default();
        let _ = empty.reduce(&record);
        let mut founded = sample().state.clone();
        let before = founded.clone();
        if founded.reduce(&record).is_err() {
            assert_eq!(founded, before, "a rejection changed the state");
        }
    }
    if let Ok(batch) = Batch::from_bytes(data) {
        assert_eq!(batch.to_bytes(), data, "batch re-encodes differently");
        for (_, event) in batch.events() {
            let _ = event;
        }
    }
}

/// A small valid chain, made once: its file's bytes, its records and the
/// state after each event.
pub struct Sample {
    /// The redb file's bytes, closed cleanly.
    pub file: Vec<u8>,
    /// Every stored record, by seq.
    pub records: Vec<Vec<u8>>,
    /// The state after the last event.
    pub state: MeshState,
    /// The state after each event, by seq.
    pub states: Vec<MeshState>,
}

/// The shared sample chain: founder, enable, two joins, a promotion, a kick,
/// app events.
pub fn sample() -> &'static Sample {
    static SAMPLE: OnceLock<Sample> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("sample.redb");
        let pool = pool();
        let mut time = 1_700_000_000;
        let mut mesh = MeshOptions::new()
            .insecure_seed([7; 32])
            .clock(move || {
                time += 1;
                time
            })
            .create(&path, key(0), "fuzz")
            .expect("create");
        mesh.set_enabled(true).expect("enable");
        mesh.add_member(pool[1], Role::Member).expect("add");
        mesh.add_member(pool[2], Role::Member).expect("add");
        mesh.append_app("note", b"hello").expect("app");
        mesh.set_role(pool[1].member_id(), Role::Admin)
            .expect("promote");
        mesh.remove_member(pool[2].member_id()).expect("kick");
        mesh.append_app("note", b"bye").expect("app");
        let mut records = Vec::new();
        let mut states = Vec::new();
        let mut state = MeshState::default();
        mesh.for_each_event(0, |event| {
            records.push(event.to_record());
            state.reduce(event).expect("valid");
            states.push(state.clone());
            true
        })
        .expect("read");
        let state = mesh.state().clone();
        drop(mesh);
        Sample {
            file: std::fs::read(&path).expect("read file"),
            records,
            state,
            states,
        }
    })
}

/// Writes `file` to a temporary file, opens it read-only, and checks that
/// whatever is accepted is a prefix of the sample chain with the state the
/// reducer gives that prefix. (A prefix can be accepted: a file alone cannot
/// tell that its last events were removed; auditors compare the head with
/// one obtained elsewhere.)
pub fn open(mutations: &[(u32, u8)]) {
    let sample = sample();
    let mut file = sample.file.clone();
    for &(offset, xor) in mutations {
        let len = file.len().max(1);
        if let Some(byte) = file.get_mut(offset as usize % len) {
            *byte ^= xor;
        }
    }
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("mutated.redb");
    std::fs::write(&path, &file).expect("write");
    let Ok(mesh) = Mesh::open_read_only(&path) else {
        return;
    };
    let len = usize::try_from(mesh.state().len()).unwrap_or(usize::MAX);
    let mut seq = 0usize;
    mesh.for_each_event(0, |event| {
        assert_eq!(
            Some(&event.to_record()),
            sample.records.get(seq),
            "an accepted chain differs from the original at seq {seq}"
        );
        seq += 1;
        true
    })
    .expect("events of an accepted file read back");
    assert_eq!(seq, len);
    let expected = len.checked_sub(1).and_then(|last| sample.states.get(last));
    assert_eq!(
        Some(mesh.state()),
        expected,
        "accepted state is not the chain's"
    );
}

/// The fixed pool of members the reducer target draws from.
pub const POOL: usize = 6;

fn key(index: usize) -> LocalKeys {
    let n = u8::try_from(index % POOL).unwrap_or(0).wrapping_add(1);
    LocalKeys::from_secret_bytes(&[n; 32], &[n.wrapping_add(100); 32])
}

fn pool() -> [MemberKeys; POOL] {
    std::array::from_fn(|i| key(i).public())
}

/// The member id of pool entry `index`.
pub fn member(index: u8) -> MemberId {
    key(usize::from(index)).member_id()
}

/// One step of the reducer target. Small values, so deep states are reached.
#[derive(Debug, Clone, Arbitrary)]
pub enum Op {
    /// Pool member `founder` founds the group.
    Found {
        /// Who founds.
        founder: u8,
    },
    /// `who` sets its own flag.
    SetEnabled {
        /// Author.
        who: u8,
        /// New value.
        enabled: bool,
    },
    /// `who` rotates to the roster of pool members in `members` (a bit set),
    /// those in `admins` being admins.
    Rotate {
        /// Author.
        who: u8,
        /// Members, one bit per pool entry.
        members: u8,
        /// Admins among them.
        admins: u8,
    },
    /// `who` writes an app event.
    App {
        /// Author.
        who: u8,
        /// Payload length.
        len: u8,
    },
    /// A hostile event: always breaks a rule.
    Hostile(Hostile),
}

/// Events that must always be refused.
#[derive(Debug, Clone, Arbitrary)]
pub enum Hostile {
    /// Signed by another key than the author's.
    WrongSigner {
        /// Claimed author.
        who: u8,
        /// Actual signer.
        signer: u8,
    },
    /// A prev that is not the head's hash.
    WrongPrev {
        /// Author.
        who: u8,
    },
    /// A rotation to an epoch other than the next.
    WrongEpoch {
        /// Author.
        who: u8,
        /// Added to the correct epoch (never 0).
        delta: u8,
    },
    /// A rotation whose envelope misses or adds a recipient.
    MangledEnvelope {
        /// Author.
        who: u8,
        /// Whether to drop the first recipient (else add a stranger).
        drop_first: bool,
    },
}

/// Makes signed events for [`Op`]s against a state, drawing randomness from
/// a generator seeded by the step number so that runs are reproducible.
pub fn make(state: &MeshState, op: &Op, step: u64) -> SignedEvent {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&step.to_le_bytes());
    let mut rng = StdRng::from_seed(seed);
    let (group, seq, prev) = state.next_position();
    let event = |author: u8, body| Event {
        version: FORMAT_VERSION,
        group,
        seq,
        prev,
        author: member(author),
        time: step,
        body,
    };
    let next_epoch = state
        .current_epoch()
        .map_or(0, |e| e.epoch.saturating_add(1));
    let rotation = |rng: &mut StdRng, members: u8, admins: u8, epoch: u64| {
        let mut roster: Vec<RosterEntry> = (0..POOL)
            .filter(|i| members & (1 << i) != 0)
            .map(|i| RosterEntry {
                id: key(i).member_id(),
                keys: key(i).public(),
                role: if admins & (1 << i) != 0 {
                    Role::Admin
                } else {
                    Role::Member
                },
            })
            .collect();
        roster.sort_by_key(|entry| entry.id);
        let recipients: Vec<_> = roster.iter().map(|e| (e.id, e.keys.dh)).collect();
        let secret = EpochSecret::generate(rng);
        let binding = Binding::Epoch { group, epoch };
        let envelope =
            envelope::seal(rng, &secret, binding, &recipients).expect("pool keys are valid");
        Rotate {
            epoch,
            roster,
            envelope,
            reason: String::new(),
        }
    };
    match *op {
        Op::Found { founder } => {
            let keys = key(usize::from(founder));
            let public = keys.public();
            let secret = EpochSecret::generate(&mut rng);
            let binding = Binding::Genesis {
                founder: public.member_id(),
                group_name: "fuzz",
            };
            let envelope = envelope::seal(
                &mut rng,
                &secret,
                binding,
                &[(public.member_id(), public.dh)],
            )
            .expect("pool keys are valid");
            let body = Body::Genesis(Genesis {
                group_name: "fuzz".into(),
                founder: public,
                envelope,
            });
            SignedEvent::sign(event(founder, body), &keys)
        }
        Op::SetEnabled { who, enabled } => SignedEvent::sign(
            event(who, Body::SetEnabled { enabled }),
            &key(usize::from(who)),
        ),
        Op::App { who, len } => SignedEvent::sign(
            event(
                who,
                Body::App {
                    kind: "fuzz".into(),
                    payload: vec![0; usize::from(len)],
                },
            ),
            &key(usize::from(who)),
        ),
        Op::Rotate {
            who,
            members,
            admins,
        } => {
            let body = Body::Rotate(rotation(&mut rng, members, admins, next_epoch));
            SignedEvent::sign(event(who, body), &key(usize::from(who)))
        }
        Op::Hostile(Hostile::WrongSigner { who, signer }) => {
            let signer = if signer % POOL as u8 == who % POOL as u8 {
                signer.wrapping_add(1)
            } else {
                signer
            };
            SignedEvent::sign(
                event(who, Body::SetEnabled { enabled: true }),
                &key(usize::from(signer)),
            )
        }
        Op::Hostile(Hostile::WrongPrev { who }) => {
            let mut bad = event(who, Body::SetEnabled { enabled: true });
            bad.prev = EventHash::from_bytes([0xa5; 32]);
            SignedEvent::sign(bad, &key(usize::from(who)))
        }
        Op::Hostile(Hostile::WrongEpoch { who, delta }) => {
            let epoch = next_epoch.saturating_add(u64::from(delta.max(1)));
            let body = Body::Rotate(rotation(&mut rng, 1 << (who % POOL as u8), 0xff, epoch));
            SignedEvent::sign(event(who, body), &key(usize::from(who)))
        }
        Op::Hostile(Hostile::MangledEnvelope { who, drop_first }) => {
            let mut body = rotation(&mut rng, 0b11 | (1 << (who % POOL as u8)), 0xff, next_epoch);
            if drop_first {
                body.envelope.wrapped.remove(0);
            } else {
                let mut extra = *body.envelope.wrapped.first().expect("non-empty");
                extra.member = MemberId::from_bytes([0xff; 16]);
                body.envelope.wrapped.push(extra);
            }
            SignedEvent::sign(event(who, Body::Rotate(body)), &key(usize::from(who)))
        }
    }
}

/// Rebuilds a state from accepted events and checks it equals `state`.
pub fn rebuild_matches(accepted: &[SignedEvent], state: &MeshState) {
    let mut rebuilt = MeshState::default();
    for event in accepted {
        let decoded = SignedEvent::from_record(&event.to_record()).expect("accepted events decode");
        reducer::check(&rebuilt, &decoded).expect("accepted events are accepted again");
        rebuilt.reduce(&decoded).expect("accepted again");
    }
    assert_eq!(
        &rebuilt, state,
        "rebuilding from the accepted events gives another state"
    );
}
