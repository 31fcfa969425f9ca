//! A seeded, deterministic simulation of 20 peers converging (issue #10).
//!
//! One owner, three admins, a fired admin who backdates rotations through a
//! forked feed and a puppet, a demoted admin who backdates more rotations
//! than a rotation names parents, each adding a puppet (issue 23), and
//! members, all writing while split into random
//! partitions, syncing pairwise at random, then healing. Every step is drawn
//! from one seed, and a failure names it: `MESHLOG_SIM_SEED=N` replays one,
//! `MESHLOG_SIM_SEEDS=N` runs N (the long mode; the suite runs a few).
//!
//! Checked throughout: every event one peer made is accepted by every other
//! (no honest write is refused because of another's). At quiescence: one
//! digest everywhere, every honest event everywhere, a current epoch whose
//! own roster is `R*`, the fired admin and both puppets absent from it, the
//! demoted admin a member. And no honest rotation's own roster ever holds
//! anyone its author's resolved roster lacks.
//!
//! This runs the pure v3 rules; it moves to `tests/` over real files when the
//! engine switches to v3.

use std::collections::BTreeSet;

use super::traps::{id, package};
use crate::feeds::{Body, FeedEvent, Insert, MeshState};
use crate::graph::{Change, Role};
use crate::ids::{EventHash, MemberId};

const PEERS: u8 = 20;
const FOUNDER: u8 = 0;
const ADMINS: [u8; 3] = [1, 2, 3];
const FIRED: u8 = 4;
/// The admin the owner demotes, who then widens the frontier.
const DEMOTED: u8 = 5;
/// Not a peer: the fired admin's sock puppet, whose keys it holds.
const PUPPET: u8 = 40;
/// Not a peer: the demoted admin's puppet.
const DEMOTED_PUPPET: u8 = 41;
/// The first member honest rotations add, remove and promote.
const FIRST_TARGET: u8 = 6;

/// The seeded generator (shared with the file-level test in
/// `mesh/files.rs`).
pub(crate) use crate::split_mix::SplitMix as Rng;

#[derive(Default, Debug)]
struct Stats {
    events: usize,
    rotations: usize,
    merges: usize,
    syncs: usize,
    backdated: usize,
    waits: usize,
    heal_rounds: usize,
}

struct Sim {
    seed: u64,
    rng: Rng,
    peers: Vec<MeshState>,
    /// Partition of each peer; peers sync only within one.
    partition: Vec<u64>,
    made: u64,
    honest: Vec<EventHash>,
    fired: bool,
    demoted: bool,
    stats: Stats,
    /// Why the last write was refused by the writer's own state.
    last_refusal: Option<crate::feeds::FeedError>,
}

fn initial_events() -> Vec<FeedEvent> {
    let genesis = FeedEvent {
        hash: named("G"),
        author: id(FOUNDER),
        seq: 0,
        prev: EventHash::ZERO,
        body: Body::Genesis {
            founder: package(FOUNDER),
        },
    };
    let enable = FeedEvent {
        hash: named("F enables"),
        author: id(FOUNDER),
        seq: 1,
        prev: genesis.hash,
        body: Body::SetEnabled {
            epoch: genesis.hash,
            enabled: true,
        },
    };
    let mut changes: Vec<Change> = (1..PEERS)
        .map(|m| Change::Add {
            package: package(m),
            role: if ADMINS.contains(&m) || m == FIRED || m == DEMOTED {
                Role::Admin
            } else {
                Role::Member
            },
        })
        .collect();
    changes.sort_by_key(Change::member);
    let everyone = FeedEvent {
        hash: named("R1"),
        author: id(FOUNDER),
        seq: 2,
        prev: enable.hash,
        body: Body::Rotate {
            parents: vec![genesis.hash],
            changes,
        },
    };
    vec![genesis, enable, everyone]
}

fn named(name: &str) -> EventHash {
    EventHash::from_bytes(*blake3::hash(name.as_bytes()).as_bytes())
}

impl Sim {
    fn new(seed: u64) -> Self {
        let peers = (0..PEERS)
            .map(|_| {
                let mut events = initial_events().into_iter();
                let genesis = events.next().unwrap();
                let mut state = MeshState::new(genesis).unwrap();
                for event in events {
                    assert_eq!(state.insert(event), Ok(Insert::New));
                }
                state
            })
            .collect();
        Self {
            seed,
            rng: Rng(seed),
            peers,
            partition: vec![0; usize::from(PEERS)],
            made: 0,
            honest: Vec::new(),
            fired: false,
            demoted: false,
            stats: Stats::default(),
            last_refusal: None,
        }
    }

    fn fresh_hash(&mut self) -> EventHash {
        self.made += 1;
        named(&format!("seed {} event {}", self.seed, self.made))
    }

    /// Peer `peer` writes `body` as `author` at the head of its feed (or at
    /// `position`, to fork it). Returns the event if the peer's own state
    /// accepts it: an engine never writes what its own rules refuse.
    fn write(
        &mut self,
        peer: u8,
        author: u8,
        body: Body,
        position: Option<(u64, EventHash)>,
    ) -> Option<EventHash> {
        let (seq, prev) = position.unwrap_or_else(|| {
            let (seq, prev, _) = self.state(peer).next_position(id(author));
            (seq, prev)
        });
        let event = FeedEvent {
            hash: self.fresh_hash(),
            author: id(author),
            seq,
            prev,
            body,
        };
        let hash = event.hash;
        let state = self.peers.get_mut(usize::from(peer)).unwrap();
        match state.insert(event) {
            Ok(Insert::New) => {
                self.stats.events += 1;
                if ![FIRED, PUPPET, DEMOTED, DEMOTED_PUPPET].contains(&author) {
                    self.honest.push(hash);
                    self.check_own_roster(peer, hash);
                }
                Some(hash)
            }
            Ok(other) => panic!("seed {}: own write not new: {other:?}", self.seed),
            Err(error) => {
                self.last_refusal = Some(error);
                None
            }
        }
    }

    fn state(&self, peer: u8) -> &MeshState {
        self.peers.get(usize::from(peer)).unwrap()
    }

    /// The epoch `peer` writes app events under, if it may write now: the
    /// writer epoch, unless that goes back past what its feed named.
    fn writer_epoch(&self, peer: u8) -> Option<EventHash> {
        let state = self.state(peer);
        let resolution = state.graph().resolve();
        let writer = resolution.writer?;
        let (_, _, acknowledged) = state.next_position(id(peer));
        let backwards = acknowledged
            .iter()
            .any(|&known| state.graph().is_ancestor(writer, known));
        let member = state
            .graph()
            .own_roster(writer)
            .is_some_and(|roster| roster.get(id(peer)).is_some());
        (!backwards && member).then_some(writer)
    }

    fn step(&mut self) {
        let roll = self.rng.below(100);
        let peer = self.rng.below(u64::from(PEERS)) as u8;
        match roll {
            0..=39 => self.app_write(peer),
            40..=47 => {
                let enabled = self.rng.chance(70);
                match self.writer_epoch(peer) {
                    Some(epoch) => {
                        self.write(peer, peer, Body::SetEnabled { epoch, enabled }, None);
                    }
                    None => self.stats.waits += 1,
                }
            }
            48..=59 => self.rotate(),
            60..=63 => self.merge_if_needed(),
            64..=65 if self.fired => self.backdate(),
            66..=67 if self.demoted => self.widen(),
            68 if !self.fired => self.fire(),
            69 if !self.demoted => self.demote(),
            70..=77 => self.repartition(),
            _ => self.sync_random_pair(),
        }
    }

    fn app_write(&mut self, peer: u8) {
        if peer == FIRED || peer == DEMOTED {
            return;
        }
        match self.writer_epoch(peer) {
            Some(epoch) if self.state(peer).is_enabled(id(peer)) => {
                self.write(peer, peer, Body::App { epoch }, None);
            }
            _ => self.stats.waits += 1,
        }
    }

    /// An honest admin or the owner rotates on its frontier.
    fn rotate(&mut self) {
        let author = if self.rng.chance(25) {
            FOUNDER
        } else {
            ADMINS[self.rng.below(3) as usize]
        };
        let target = FIRST_TARGET + self.rng.below(u64::from(PEERS - FIRST_TARGET)) as u8;
        let resolution = self.state(author).graph().resolve();
        let present = resolution.roster.get(id(target)).is_some();
        let change = match self.rng.below(4) {
            _ if !present => Change::Add {
                package: package(target),
                role: Role::Member,
            },
            0 => Change::Remove { member: id(target) },
            1 if author == FOUNDER && self.rng.chance(20) => Change::Add {
                package: package(target),
                role: Role::Owner,
            },
            1 => Change::SetRole {
                member: id(target),
                role: Role::Admin,
            },
            2 => Change::SetRole {
                member: id(target),
                role: Role::Member,
            },
            _ => Change::Remove { member: id(target) },
        };
        let parents = self.parents_for(author);
        // Past sixteen tips, an honest peer merges in steps before it
        // changes anything (SPEC.md §5.1).
        let changes = if parents.step { vec![] } else { vec![change] };
        let parents = parents.hashes;
        if self
            .write(author, author, Body::Rotate { parents, changes }, None)
            .is_some()
        {
            self.stats.rotations += 1;
        }
    }

    /// The parents an honest peer names (SPEC.md §5.1).
    fn parents_for(&self, peer: u8) -> crate::graph::Parents {
        let graph = self.state(peer).graph();
        let none = crate::left_out::LeftOut::default();
        graph
            .parents_for(id(peer), &[], &graph.resolve(), &none)
            .unwrap_or_else(|| panic!("seed {}: no safe merge step", self.seed))
    }

    fn parents(&self, peer: u8) -> Vec<EventHash> {
        self.parents_for(peer).hashes
    }

    /// An honest rotation's secret reaches no one outside its author's
    /// resolved roster (issue 23): its own roster lies within `R*` once it
    /// is taken. (A peer that has not heard of a demotion may still wrap to
    /// the puppet: for it, the puppet is in `R*`.)
    fn check_own_roster(&self, peer: u8, hash: EventHash) {
        let state = self.state(peer);
        let Some(own) = state.graph().own_roster(hash) else {
            return;
        };
        assert!(
            own.ids_within(&state.graph().resolve().roster),
            "seed {}: peer {peer}'s rotation {hash} wraps to someone outside R*: own {:?}, R* {:?}, status {:?}",
            self.seed,
            own.iter().map(|(m, e)| (*m, e.role())).collect::<Vec<_>>(),
            state
                .graph()
                .resolve()
                .roster
                .iter()
                .map(|(m, e)| (*m, e.role()))
                .collect::<Vec<_>>(),
            state.graph().resolve().statuses.get(&hash),
        );
    }

    /// A peer whose view needs a merge makes one if it may (the founder
    /// always may).
    fn merge_if_needed(&mut self) {
        let peer = if self.rng.chance(50) {
            FOUNDER
        } else {
            ADMINS[self.rng.below(3) as usize]
        };
        if !self.state(peer).graph().resolve().needs_merge() {
            return;
        }
        let parents = self.parents(peer);
        if self
            .write(
                peer,
                peer,
                Body::Rotate {
                    parents,
                    changes: vec![],
                },
                None,
            )
            .is_some()
        {
            self.stats.merges += 1;
        }
    }

    fn fire(&mut self) {
        let parents = self.parents(FOUNDER);
        let fired = self.write(
            FOUNDER,
            FOUNDER,
            Body::Rotate {
                parents,
                changes: vec![Change::Remove { member: id(FIRED) }],
            },
            None,
        );
        self.fired = fired.is_some();
    }

    fn demote(&mut self) {
        let parents = self.parents(FOUNDER);
        let demoted = self.write(
            FOUNDER,
            FOUNDER,
            Body::Rotate {
                parents,
                changes: vec![Change::SetRole {
                    member: id(DEMOTED),
                    role: Role::Member,
                }],
            },
            None,
        );
        self.demoted = demoted.is_some();
    }

    /// The demoted admin, on copies of its state before the demotion, forks
    /// its feed right after its first event 17 times, each a rotation on R1
    /// adding its puppet as an admin: more void rotations in the frontier
    /// than a rotation names parents.
    fn widen(&mut self) {
        let Some(first) = self
            .state(DEMOTED)
            .events()
            .find(|e| e.author == id(DEMOTED) && e.seq == 0)
            .map(|e| e.hash)
        else {
            return;
        };
        for _ in 0..=crate::graph::MAX_PARENTS {
            let rotation = self.write(
                DEMOTED,
                DEMOTED,
                Body::Rotate {
                    parents: vec![named("R1")],
                    changes: vec![Change::Add {
                        package: package(DEMOTED_PUPPET),
                        role: Role::Admin,
                    }],
                },
                Some((1, first)),
            );
            if rotation.is_some() {
                self.stats.backdated += 1;
            }
        }
    }

    /// The fired admin forks its feed right after its first event (which
    /// named R1) and backdates a rotation on R1 that removes every member
    /// it may and adds its puppet as an admin; the puppet then enables
    /// itself and removes the rest.
    fn backdate(&mut self) {
        let state = self.state(FIRED);
        let Some(first) = state
            .events()
            .find(|e| e.author == id(FIRED) && e.seq == 0)
            .map(|e| e.hash)
        else {
            return;
        };
        let r1 = named("R1");
        let mut changes: Vec<Change> = (5..PEERS)
            .map(|m| Change::Remove { member: id(m) })
            .collect();
        changes.push(Change::Add {
            package: package(PUPPET),
            role: Role::Admin,
        });
        changes.sort_by_key(Change::member);
        let Some(rotation) = self.write(
            FIRED,
            FIRED,
            Body::Rotate {
                parents: vec![r1],
                changes,
            },
            Some((1, first)),
        ) else {
            return;
        };
        self.stats.backdated += 1;
        if self.state(FIRED).heads(id(PUPPET)).is_empty() {
            let enabled = self.write(
                FIRED,
                PUPPET,
                Body::SetEnabled {
                    epoch: rotation,
                    enabled: true,
                },
                None,
            );
            if enabled.is_some() {
                let changes = ADMINS
                    .iter()
                    .map(|&m| Change::Remove { member: id(m) })
                    .collect::<Vec<_>>();
                let mut changes = changes;
                changes.sort_by_key(Change::member);
                self.write(
                    FIRED,
                    PUPPET,
                    Body::Rotate {
                        parents: vec![rotation],
                        changes,
                    },
                    None,
                );
            }
        }
    }

    fn repartition(&mut self) {
        let groups = 1 + self.rng.below(4);
        for peer in 0..usize::from(PEERS) {
            let group = self.rng.below(groups);
            if let Some(slot) = self.partition.get_mut(peer) {
                *slot = group;
            }
        }
    }

    fn sync_random_pair(&mut self) {
        let a = self.rng.below(u64::from(PEERS)) as usize;
        let b = self.rng.below(u64::from(PEERS)) as usize;
        if a != b && self.partition.get(a) == self.partition.get(b) {
            self.sync(a, b);
        }
    }

    /// Each of the two takes every event the other holds and it lacks, in
    /// an order that lets each be checked on arrival. Returns how many moved.
    fn sync(&mut self, a: usize, b: usize) -> usize {
        self.stats.syncs += 1;
        self.pull(a, b) + self.pull(b, a)
    }

    fn pull(&mut self, into: usize, from: usize) -> usize {
        let mut pending: Vec<FeedEvent> = self.peers[from]
            .events()
            .filter(|e| !self.peers[into].contains(e.hash))
            .cloned()
            .collect();
        pending.sort_by_key(|e| e.hash);
        let mut moved = 0;
        loop {
            let before = pending.len();
            let mut waiting = Vec::new();
            for event in pending {
                let hash = event.hash;
                match self.peers[into].insert(event.clone()) {
                    Ok(Insert::New | Insert::Known) => moved += 1,
                    Ok(Insert::Missing(_)) => waiting.push(event),
                    Err(error) => panic!(
                        "seed {}: peer {into} refused event {hash} that peer {from} accepted: {error}",
                        self.seed
                    ),
                }
            }
            pending = waiting;
            if pending.is_empty() || pending.len() == before {
                break;
            }
        }
        assert!(
            pending.is_empty(),
            "seed {}: events left without their dependencies",
            self.seed
        );
        moved
    }

    /// Heals every partition and syncs until nothing moves, merging where
    /// the mesh needs it.
    fn quiesce(&mut self) {
        loop {
            self.stats.heal_rounds += 1;
            assert!(
                self.stats.heal_rounds < 50,
                "seed {}: no quiescence",
                self.seed
            );
            let mut moved = 0;
            for peer in 1..self.peers.len() {
                moved += self.sync(0, peer);
            }
            for peer in 1..self.peers.len() {
                moved += self.sync(0, peer);
            }
            let needs_merge = self.state(FOUNDER).graph().resolve().needs_merge();
            if needs_merge {
                if !self.state(FOUNDER).is_enabled(id(FOUNDER)) {
                    // Any frontier epoch: it cannot go backwards, and an
                    // owner is in every roster.
                    let epoch = self.parents(FOUNDER)[0];
                    self.write(
                        FOUNDER,
                        FOUNDER,
                        Body::SetEnabled {
                            epoch,
                            enabled: true,
                        },
                        None,
                    );
                }
                let parents = self.parents(FOUNDER);
                let merged = self.write(
                    FOUNDER,
                    FOUNDER,
                    Body::Rotate {
                        parents,
                        changes: vec![],
                    },
                    None,
                );
                assert!(
                    merged.is_some(),
                    "seed {}: the founder's merge was refused: {:?}",
                    self.seed,
                    self.last_refusal
                );
                self.stats.merges += 1;
                continue;
            }
            if moved == 0 {
                break;
            }
        }
    }

    fn check_converged(&self) {
        let reference = self.state(FOUNDER);
        let resolution = reference.graph().resolve();
        // These peers take every valid event (none left out, SPEC.md §6.4);
        // tests/simulation.rs runs the public API, which leaves out.
        let none = crate::left_out::LeftOut::default();
        let digest = reference.digest(&resolution, &none);
        for (peer, state) in self.peers.iter().enumerate() {
            let own = state.graph().resolve();
            assert_eq!(
                own, resolution,
                "seed {}: peer {peer} resolves differently",
                self.seed
            );
            assert_eq!(
                state.digest(&own, &none),
                digest,
                "seed {}: peer {peer}'s digest",
                self.seed
            );
            for hash in &self.honest {
                assert!(
                    state.contains(*hash),
                    "seed {}: peer {peer} lacks {hash}",
                    self.seed
                );
            }
        }
        let current = resolution
            .current
            .expect("a current epoch after the last merge");
        assert_eq!(
            reference.graph().own_roster(current),
            Some(&resolution.roster)
        );
        assert_eq!(resolution.roster.role_of(id(FOUNDER)), Some(Role::Owner));
        assert_eq!(
            resolution.roster.get(id(DEMOTED_PUPPET)),
            None,
            "seed {}: the demoted admin's puppet is in R*",
            self.seed
        );
        if self.demoted {
            assert_eq!(resolution.roster.role_of(id(DEMOTED)), Some(Role::Member));
        }
        if self.fired {
            for gone in [FIRED, PUPPET] {
                assert_eq!(
                    resolution.roster.get(id(gone)),
                    None,
                    "seed {}: the fired admin or its puppet is in R*",
                    self.seed
                );
            }
        }
        let honest_admins: BTreeSet<MemberId> = ADMINS.iter().map(|&m| id(m)).collect();
        for admin in honest_admins {
            assert!(
                resolution.roster.get(admin).is_some(),
                "seed {}: an honest admin was removed",
                self.seed
            );
        }
    }
}

fn run(seed: u64, steps: usize) -> Stats {
    let mut sim = Sim::new(seed);
    // Every peer starts by enabling itself under R1, as the first event of
    // its feed (the founder's flag is already on).
    for peer in 1..PEERS {
        let enabled = sim.write(
            peer,
            peer,
            Body::SetEnabled {
                epoch: named("R1"),
                enabled: true,
            },
            None,
        );
        assert!(enabled.is_some());
    }
    for _ in 0..steps {
        sim.step();
    }
    sim.quiesce();
    sim.check_converged();
    let equivocations = sim.state(FOUNDER).equivocations().len();
    let s = &sim.stats;
    println!(
        "seed {seed}: {} events ({} rotations, {} merges, {} backdated, {equivocations} equivocations), {} syncs, {} waits, {} heal rounds",
        s.events, s.rotations, s.merges, s.backdated, s.syncs, s.waits, s.heal_rounds
    );
    sim.stats
}

#[test]
fn twenty_peers_converge_under_partitions_and_a_fired_admin() {
    let seeds: Vec<u64> = match (
        std::env::var("MESHLOG_SIM_SEED"),
        std::env::var("MESHLOG_SIM_SEEDS"),
    ) {
        (Ok(one), _) => vec![one.parse().expect("MESHLOG_SIM_SEED is a number")],
        (_, Ok(many)) => (0..many.parse().expect("MESHLOG_SIM_SEEDS is a number")).collect(),
        _ => (0..6).collect(),
    };
    let mut backdated = 0;
    for seed in seeds {
        backdated += run(seed, 300).backdated;
    }
    assert!(
        backdated > 0,
        "no seed exercised the fired admin's backdating"
    );
}
