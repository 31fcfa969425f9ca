//! A seeded, deterministic simulation of 20 peers on real files (issue #10),
//! through the public API only.
//!
//! Twenty peers, each a [`Mesh`] on its own redb file: the founder (the
//! owner), three admins, an admin F whom the owner fires part-way, and
//! fifteen members. They write app events, turn themselves on and off,
//! rotate (add, remove, re-role, refresh, grant ownership), merge, and sync
//! pairwise through frontier and batch bytes, while split into random
//! partitions that heal at random; now and then a peer is dropped and
//! reopened from its file. Once fired, F never takes an event from a peer
//! that holds its firing: it keeps rotating on its own copy (so every
//! rotation it makes names epochs from before the firing), removes everyone
//! it can, and adds a puppet admin, whose own copy (joined from F's) rotates
//! too; a second copy of F's file, restored from a backup taken when it was
//! fired, writes once more and so forks F's feed (SPEC.md §4.4). An admin D
//! whom the owner demotes part-way keeps a backup from before, and from
//! fresh copies of it writes seventeen backdated rotations at a time, each
//! adding a puppet admin, more than a rotation names parents; it hands them
//! to random peers (issue 23). D stays an honest member otherwise. And an
//! honest member R now and then backs up its file and later restores it, as
//! a laptop restored from last week's backup, and writes on without syncing
//! first: its feed forks, honestly, and one-way syncs must carry every
//! branch (issue 23 §3).
//!
//! Checked as it runs: every write is either made (held, one event more) or
//! refused as a refusal with the mesh unchanged; every batch a peer sends is
//! taken whole; every reopen verifies to the same digest. At the end,
//! everything heals and syncs until nothing moves (an honest admin or the
//! owner merging if needed), and then: one digest, one `R*` and one view of
//! every epoch everywhere, every event anyone made held by every peer; a
//! current epoch whose own roster is `R*`, and every honest rotation's own
//! roster within its author's `R*` when made; F and both puppets out of `R*`,
//! D a member, the
//! owners, the honest admins and every member no honest hand removed in it;
//! every backdated rotation void, every change an admin made to another
//! admin void; everything F and its puppet wrote of status "author not in
//! R*"; F's fork reported, and no other author's; and each epoch's secret
//! opened by exactly the members of its own roster, alike.
//!
//! Every draw comes from one seed. `MESHLOG_SIM_SEEDS=N` runs seeds 0..N
//! (the long mode is a bigger N); `MESHLOG_SIM_SEED=S` replays seed S alone.
//! `cargo test --test simulation -- --nocapture` shows the figures.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use meshlog::{
    Batch, Change, Error, ErrorClass, EventHash, EventStatus, Frontier, LocalKeys, MemberId, Mesh,
    MeshOptions, Role,
};

/// The peers that take part in partitions.
const PEERS: usize = 20;
const FOUNDER: usize = 0;
const ADMINS: [usize; 3] = [1, 2, 3];
/// The admin the owner fires, who then backdates.
const FIRED: usize = 4;
/// The admin the owner demotes, who then widens the frontier.
const DEMOTED: usize = 5;
/// Members are 6..PEERS.
const FIRST_MEMBER: usize = 6;
/// The honest member who restores its file from a backup.
const RESTORER: usize = FIRST_MEMBER;
/// The fired admin's puppet: a mesh of its own, not one of the 20.
const PUPPET: usize = PEERS;
/// F's second copy: its file as it was when it was fired, restored from a
/// backup, which writes once more and so forks F's feed.
const FORK: usize = PEERS + 1;
/// Keys only: the demoted admin's puppet, and the seeds of its copies.
const DEMOTED_PUPPET: usize = PEERS + 2;
const DEMOTED_COPY: usize = PEERS + 3;
/// Rounds of random steps, and steps a round.
const ROUNDS: usize = 25;
const STEPS: usize = 20;

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % (n.max(1) as u64)) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Peer `n`'s keys for seed `seed`, recreated whenever they are needed.
fn keys(seed: u64, n: usize) -> LocalKeys {
    let mut signing = [0x5e; 32];
    signing[..8].copy_from_slice(&seed.to_le_bytes());
    signing[8] = n as u8;
    let mut dh = signing;
    dh[9] = 0xd4;
    LocalKeys::from_secret_bytes(&signing, &dh)
}

fn member(seed: u64, n: usize) -> MemberId {
    keys(seed, n).member_id()
}

/// Seeded randomness and a ticking clock, different for every open of
/// every peer's file so that no two opens draw the same secrets.
fn options(seed: u64, n: usize, opened: u64) -> MeshOptions {
    let mut bytes = [0xa7; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8] = n as u8;
    bytes[9..17].copy_from_slice(&opened.to_le_bytes());
    let mut now = 1_900_000_000 + opened * 1_000_000;
    MeshOptions::new().insecure_seed(bytes).clock(move || {
        now += 1;
        now
    })
}

/// A batch through its bytes, as it travels between peers.
fn carried(batch: &Batch) -> Batch {
    Batch::from_bytes(&batch.to_bytes()).expect("an exported batch decodes")
}

struct Peer {
    path: PathBuf,
    /// `None` only while reopening, and for the puppet until it exists.
    mesh: Option<Mesh>,
    opened: u64,
}

#[derive(Default)]
struct Stats {
    writes: usize,
    /// Refusals by kind.
    refusals: BTreeMap<String, usize>,
    rotations_made: usize,
    merges: usize,
    syncs: usize,
    reopens: usize,
    repartitions: usize,
    converge_syncs: usize,
    heal_rounds: usize,
    /// Events made that every peer holding them leaves out at the end.
    left_out: usize,
}

struct Sim {
    seed: u64,
    rng: Rng,
    _dir: tempfile::TempDir,
    /// The 20 peers, then the puppet.
    peers: Vec<Peer>,
    partition: Vec<usize>,
    /// Set for the final quiescence: F and the puppet take from anyone.
    healed: bool,
    /// The owner's rotation removing F.
    firing: Option<EventHash>,
    /// The owner's rotation demoting D, and D's backup from before it.
    demotion: Option<EventHash>,
    demoted_backup: PathBuf,
    /// Copies of D's backup opened so far.
    demoted_copies: u64,
    /// R's backup, while it has one, and how often it restored one.
    restorer_backup: Option<PathBuf>,
    restores: usize,
    /// Every event any peer made, and those honest peers made.
    made: Vec<EventHash>,
    honest: Vec<EventHash>,
    /// Rotations by F after its firing, and by the puppet.
    backdated: Vec<EventHash>,
    /// Members an honest admin or the owner removed in some rotation.
    honest_removed: BTreeSet<MemberId>,
    /// Members the founder granted ownership.
    owners: BTreeSet<MemberId>,
    /// Rotations by an original admin removing or demoting another one.
    admin_on_admin: Vec<EventHash>,
    /// F's rotation right after its firing, and the event its second copy
    /// wrote at the same position.
    fork_against: Option<EventHash>,
    forked: Option<EventHash>,
    /// Equivocations past the one F's second copy made.
    self_forks: usize,
    /// Honest peers that held a backdated rotation before the firing.
    fooled: BTreeSet<usize>,
    stats: Stats,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let dir = tempfile::Builder::new()
            .prefix("meshlog-sim")
            .tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("temporary folder");
        let path = |n: usize| dir.path().join(format!("peer{n}.redb"));
        let demoted_backup = dir.path().join("demoted-backup.redb");
        let peers: Vec<Peer> = (0..=FORK)
            .map(|n| Peer {
                path: path(n),
                mesh: None,
                opened: 0,
            })
            .collect();
        let mut sim = Sim {
            seed,
            rng: Rng(seed),
            _dir: dir,
            peers,
            partition: vec![0; PEERS],
            healed: false,
            firing: None,
            demotion: None,
            demoted_backup,
            demoted_copies: 0,
            restorer_backup: None,
            restores: 0,
            made: Vec::new(),
            honest: Vec::new(),
            backdated: Vec::new(),
            honest_removed: BTreeSet::new(),
            owners: BTreeSet::new(),
            admin_on_admin: Vec::new(),
            fork_against: None,
            forked: None,
            self_forks: 0,
            fooled: BTreeSet::new(),
            stats: Stats::default(),
        };
        let mut founder = options(seed, FOUNDER, 0)
            .create(&sim.peers[FOUNDER].path, keys(seed, FOUNDER), "simulation")
            .expect("create");
        let genesis = founder.log().next().expect("a genesis").event.hash();
        sim.record(FOUNDER, genesis);
        let enabled = founder
            .set_enabled(true)
            .expect("the founder enables itself");
        sim.record(FOUNDER, enabled);
        let team: Vec<Change> = (1..PEERS)
            .map(|n| Change::Add {
                package: keys(seed, n).package(),
                role: if ADMINS.contains(&n) || n == FIRED || n == DEMOTED {
                    Role::Admin
                } else {
                    Role::Member
                },
            })
            .collect();
        let r1 = founder
            .rotate(team, "team")
            .expect("the founder adds everyone");
        sim.record(FOUNDER, r1);
        assert_eq!(founder.roster().len(), PEERS);
        assert_eq!(founder.current_epoch(), Some(r1));
        let everything = carried(&founder.export_all());
        sim.peers[FOUNDER].mesh = Some(founder);
        for n in 1..PEERS {
            let mut mesh = options(seed, n, 0)
                .join(&sim.peers[n].path, keys(seed, n), &everything)
                .expect("join");
            assert_eq!(mesh.current_epoch(), Some(r1));
            let enabled = mesh.set_enabled(true).expect("a new member enables itself");
            sim.record(n, enabled);
            sim.peers[n].mesh = Some(mesh);
        }
        sim
    }

    fn mesh(&self, n: usize) -> &Mesh {
        self.peers[n]
            .mesh
            .as_ref()
            .expect("the peer's mesh is open")
    }

    fn mesh_mut(&mut self, n: usize) -> &mut Mesh {
        self.peers[n]
            .mesh
            .as_mut()
            .expect("the peer's mesh is open")
    }

    fn has(&self, n: usize) -> bool {
        self.peers[n].mesh.is_some()
    }

    fn is_honest(&self, n: usize) -> bool {
        n != PUPPET && n != FORK && !(n == FIRED && self.firing.is_some())
    }

    fn record(&mut self, n: usize, hash: EventHash) {
        self.made.push(hash);
        if self.is_honest(n) {
            self.honest.push(hash);
        }
    }

    /// Peer `n` makes one event with `op`. Made: it is held and the mesh
    /// grew by one. Refused: the error is a refusal, and the mesh is as it
    /// was (same length, same digest).
    fn write(
        &mut self,
        n: usize,
        op: impl FnOnce(&mut Mesh) -> meshlog::Result<EventHash>,
    ) -> Option<EventHash> {
        let seed = self.seed;
        let honest = self.is_honest(n);
        let mesh = self.mesh_mut(n);
        let (len, digest) = (mesh.len(), mesh.digest());
        match op(mesh) {
            Ok(hash) => {
                assert!(
                    mesh.event(hash).is_some(),
                    "seed {seed}: peer {n} does not hold its own event {hash}"
                );
                // One event; a merge past sixteen tips writes its steps.
                let made: Vec<EventHash> = if mesh.len() == len + 1 {
                    vec![hash]
                } else {
                    mesh.log()
                        .skip(len)
                        .map(|entry| entry.event.hash())
                        .collect()
                };
                assert_eq!(made.last(), Some(&hash), "seed {seed}: peer {n}'s write");
                // An honest rotation's secret reaches no one outside its
                // author's resolved roster (SPEC.md §5.1).
                for rotation in &made {
                    if let Some(epoch) = mesh.epoch(*rotation) {
                        for (id, _) in epoch.roster.iter() {
                            assert!(
                                !honest || mesh.roster().contains(*id),
                                "seed {seed}: peer {n}'s rotation {rotation} wraps to {id}, outside its R*"
                            );
                        }
                    }
                }
                self.stats.writes += made.len();
                for rotation in made {
                    self.record(n, rotation);
                }
                Some(hash)
            }
            Err(error) => {
                assert_eq!(
                    error.class(),
                    ErrorClass::Refusal,
                    "seed {seed}: peer {n}'s write failed otherwise than by a refusal: {error}"
                );
                assert_eq!(mesh.len(), len, "seed {seed}: a refused write of peer {n}");
                assert_eq!(
                    mesh.digest(),
                    digest,
                    "seed {seed}: a refused write of peer {n} changed the state"
                );
                let kind = match &error {
                    Error::WaitsForMerge => "waits for merge".to_owned(),
                    Error::NotInRoster { .. } => "not in R*".to_owned(),
                    Error::VoidChange { .. } => "void change".to_owned(),
                    other => match other.rejection() {
                        Some(rejection) => rejection.rule.id().to_owned(),
                        None => other.to_string(),
                    },
                };
                *self.stats.refusals.entry(kind).or_default() += 1;
                None
            }
        }
    }

    /// Whether `into` may take events from `from` now: F never takes a
    /// batch from a peer that holds its firing, and the puppet syncs with F
    /// alone, until everything heals.
    fn may_take(&self, into: usize, from: usize) -> bool {
        if self.healed {
            return true;
        }
        if into == FORK {
            return from == FIRED;
        }
        if from == FORK {
            return into == FIRED;
        }
        if into == PUPPET {
            return from == FIRED;
        }
        if from == PUPPET {
            return into == FIRED;
        }
        match (into, self.firing) {
            (FIRED, Some(firing)) => self.mesh(from).event(firing).is_none(),
            _ => true,
        }
    }

    /// `into` takes what `from` holds and its frontier lacks, through the
    /// bytes of both. Returns how many events were new.
    fn pull(&mut self, into: usize, from: usize) -> usize {
        if into == from || !self.has(into) || !self.has(from) || !self.may_take(into, from) {
            return 0;
        }
        let seed = self.seed;
        let frontier = Frontier::from_bytes(&self.mesh(into).frontier().to_bytes())
            .expect("a frontier decodes");
        let batch = carried(&self.mesh(from).export(&frontier));
        let mesh = self.mesh_mut(into);
        let before = mesh.len();
        let ingested = mesh.ingest(&batch).unwrap_or_else(|error| {
            panic!("seed {seed}: peer {into} refused peer {from}'s batch: {error}")
        });
        assert_eq!(
            ingested.added + ingested.known + ingested.left_out,
            batch.len(),
            "seed {seed}: peer {into} did not account for every record"
        );
        assert_eq!(mesh.len(), before + ingested.added, "seed {seed}");
        assert_eq!(ingested.needs_merge, mesh.needs_merge(), "seed {seed}");
        self.stats.syncs += 1;
        if self.healed {
            self.stats.converge_syncs += 1;
        }
        // An honest peer that holds a backdated rotation but not the
        // firing takes it as applied: the fired admin fooled it, for now.
        if let Some(firing) = self.firing
            && self.is_honest(into)
            && self.mesh(into).event(firing).is_none()
            && self
                .backdated
                .iter()
                .any(|h| self.mesh(into).event(*h).is_some())
        {
            self.fooled.insert(into);
        }
        ingested.added
    }

    fn sync(&mut self, a: usize, b: usize) -> usize {
        self.pull(a, b) + self.pull(b, a)
    }

    fn step(&mut self, step: usize, fire_at: usize, demote_at: usize) {
        if self.firing.is_none() && step >= fire_at {
            self.fire();
        }
        if self.demotion.is_none() && step >= demote_at {
            self.demote();
        }
        let who = self.rng.below(PEERS);
        match self.rng.below(100) {
            0..=27 => {
                let payload = [who as u8, step as u8];
                self.write(who, |mesh| mesh.append_app("note", &payload));
            }
            28 | 29 => {
                // A newer package of its own, for an admin to carry.
                let me = member(self.seed, who);
                let counter = self
                    .mesh(who)
                    .roster()
                    .get(me)
                    .map_or(0, |e| e.package_counter());
                let package = keys(self.seed, who).package_with_counter(counter + 1);
                self.write(who, |mesh| mesh.post_package(package));
            }
            // F too: a flag change never waits for a merge, so a disabled
            // admin can always turn itself on again (and then merge).
            30..=35 => {
                let on = self.rng.chance(75);
                self.write(who, |mesh| mesh.set_enabled(on));
            }
            36..=49 => self.rotate(who),
            50..=54 => self.merge(who),
            55..=57 => self.reopen(who),
            58..=61 if self.firing.is_some() => self.backdate(),
            62 | 63 if self.demotion.is_some() => self.widen(),
            64 => self.restore(),
            _ => {
                let other = self.rng.below(PEERS);
                if self.partition[who] == self.partition[other] {
                    self.sync(who, other);
                }
            }
        }
    }

    /// Random partitions, or all healed.
    fn repartition(&mut self) {
        self.stats.repartitions += 1;
        let groups = if self.rng.chance(30) {
            1
        } else {
            2 + self.rng.below(3)
        };
        for slot in self.partition.iter_mut() {
            *slot = self.rng.below(groups);
        }
    }

    /// Peer `who` rotates, if it thinks it may (a member tries now and
    /// then, and is refused).
    fn rotate(&mut self, who: usize) {
        if who == FIRED && self.firing.is_some() {
            return self.backdate();
        }
        let seed = self.seed;
        let me = member(seed, who);
        let role = self.mesh(who).roster().role_of(me);
        let privileged = matches!(role, Some(Role::Admin | Role::Owner));
        if !privileged && !self.rng.chance(20) {
            return;
        }
        // An original admin sometimes tries to remove or demote another
        // one: K5 voids that change whenever the rotation applies.
        if ADMINS.contains(&who) && self.rng.chance(15) {
            let other = ADMINS[self.rng.below(ADMINS.len())];
            if other != who {
                let target = member(seed, other);
                let remove = self.rng.chance(50);
                let made = self.write(who, |mesh| {
                    if remove {
                        mesh.remove_member(target)
                    } else {
                        mesh.set_role(target, Role::Member)
                    }
                });
                if let Some(hash) = made {
                    self.stats.rotations_made += 1;
                    self.admin_on_admin.push(hash);
                }
                return;
            }
        }
        let t = FIRST_MEMBER + self.rng.below(PEERS - FIRST_MEMBER);
        let target = member(seed, t);
        let package = keys(seed, t).package();
        let present = self.mesh(who).roster().contains(target);
        let owner = role == Some(Role::Owner);
        let choice = self.rng.below(10);
        let grant = self.rng.chance(30);
        let promote = self.rng.chance(20);
        let newer = keys(seed, t).package_with_counter(1 + self.rng.below(3) as u64);
        let mut removed = None;
        let mut granted = None;
        let made = self.write(who, |mesh| match choice {
            _ if !present => {
                mesh.add_member(package, if promote { Role::Admin } else { Role::Member })
            }
            0..=3 => {
                removed = Some(target);
                mesh.remove_member(target)
            }
            4 | 5 => mesh.set_role(target, Role::Admin),
            6 | 7 => mesh.set_role(target, Role::Member),
            8 if owner && grant => {
                granted = Some(target);
                mesh.add_member(package, Role::Owner)
            }
            8 => mesh.refresh("refresh"),
            _ => mesh.rotate(vec![Change::UpdateKeys { package: newer }], "keys"),
        });
        if made.is_some() {
            self.stats.rotations_made += 1;
            if let Some(removed) = removed {
                self.honest_removed.insert(removed);
            }
            if let Some(granted) = granted {
                self.owners.insert(granted);
            }
        }
    }

    fn merge(&mut self, who: usize) {
        if who == FIRED && self.firing.is_some() {
            return;
        }
        if !self.mesh(who).needs_merge() {
            assert_eq!(self.mesh_mut(who).merge().ok(), Some(None));
            return;
        }
        let seed = self.seed;
        let made = self.write(who, |mesh| match mesh.merge() {
            Ok(Some(hash)) => Ok(hash),
            Ok(None) => panic!("seed {seed}: peer {who} needs a merge, yet merge made none"),
            Err(error) => Err(error),
        });
        if made.is_some() {
            self.stats.merges += 1;
            self.stats.rotations_made += 1;
        }
    }

    /// Drops (or closes) peer `who`'s mesh and opens its file again: every
    /// event and projection is verified again, to the same state.
    fn reopen(&mut self, who: usize) {
        let seed = self.seed;
        let close = self.rng.chance(50);
        let peer = &mut self.peers[who];
        let mesh = peer.mesh.take().expect("open");
        let (digest, len) = (mesh.digest(), mesh.len());
        if close {
            mesh.close().expect("close");
        } else {
            drop(mesh);
        }
        peer.opened += 1;
        let mesh = options(seed, who, peer.opened)
            .open(&peer.path, keys(seed, who))
            .unwrap_or_else(|error| panic!("seed {seed}: peer {who}'s file: {error}"));
        assert_eq!(mesh.len(), len, "seed {seed}: peer {who} reopened");
        assert_eq!(
            mesh.digest(),
            digest,
            "seed {seed}: peer {who} reopened to another state"
        );
        peer.mesh = Some(mesh);
        self.stats.reopens += 1;
    }

    /// The owner removes F. Then F, on its own copy (which never takes the
    /// firing), at once removes everyone it can.
    fn fire(&mut self) {
        let target = member(self.seed, FIRED);
        if !self.mesh(FOUNDER).is_enabled() {
            self.write(FOUNDER, |mesh| mesh.set_enabled(true));
        }
        if let Some(firing) = self.write(FOUNDER, |mesh| mesh.remove_member(target)) {
            self.stats.rotations_made += 1;
            self.honest_removed.insert(target);
            assert!(!self.mesh(FOUNDER).roster().contains(target));
            self.firing = Some(firing);
            // F's file as it is now, kept as a second copy.
            let seed = self.seed;
            let path = self.peers[FORK].path.clone();
            self.mesh(FIRED).backup(&path).expect("backup");
            let copy = options(seed, FORK, 0)
                .open(&path, keys(seed, FIRED))
                .unwrap_or_else(|error| panic!("seed {seed}: F's backup: {error}"));
            assert_eq!(copy.digest(), self.mesh(FIRED).digest(), "seed {seed}");
            self.peers[FORK].mesh = Some(copy);
            self.fork_against = self.remove_everyone(FIRED);
        }
    }

    /// R backs its file up, or, holding a backup, restores it over its
    /// file (the journal goes too: a backup has none) and writes a note at
    /// once, without syncing: its feed forks if it wrote since the backup.
    /// What R wrote since and no other peer holds is lost with the restore.
    fn restore(&mut self) {
        let seed = self.seed;
        let Some(backup) = self.restorer_backup.take() else {
            let backup = self.peers[RESTORER]
                .path
                .with_file_name("restorer-backup.redb");
            let _ = std::fs::remove_file(&backup);
            self.mesh(RESTORER).backup(&backup).expect("backup");
            self.restorer_backup = Some(backup);
            return;
        };
        let peer = &mut self.peers[RESTORER];
        let mesh = peer.mesh.take().expect("open");
        let before: Vec<EventHash> = mesh.log().map(|entry| entry.event.hash()).collect();
        mesh.close().expect("close");
        std::fs::copy(&backup, &peer.path).expect("restore");
        let mut journal = peer.path.clone().into_os_string();
        journal.push("-journal");
        let _ = std::fs::remove_file(&journal);
        let _ = std::fs::remove_file(&backup);
        peer.opened += 1;
        let mesh = options(seed, RESTORER, peer.opened)
            .open(&peer.path, keys(seed, RESTORER))
            .unwrap_or_else(|error| panic!("seed {seed}: R's restored file: {error}"));
        self.peers[RESTORER].mesh = Some(mesh);
        self.restores += 1;
        let lost: BTreeSet<EventHash> = before
            .into_iter()
            .filter(|hash| {
                (0..=PUPPET).all(|n| !self.has(n) || self.mesh(n).event(*hash).is_none())
            })
            .collect();
        self.made.retain(|hash| !lost.contains(hash));
        self.honest.retain(|hash| !lost.contains(hash));
        let payload = [0x5e, self.restores as u8];
        self.write(RESTORER, |mesh| mesh.append_app("note", &payload));
    }

    /// D keeps a backup of its file; the owner demotes it to member.
    fn demote(&mut self) {
        let target = member(self.seed, DEMOTED);
        if !self.mesh(FOUNDER).is_enabled() {
            self.write(FOUNDER, |mesh| mesh.set_enabled(true));
        }
        let backup = self.demoted_backup.clone();
        let _ = std::fs::remove_file(&backup);
        self.mesh(DEMOTED).backup(&backup).expect("backup");
        if let Some(demotion) = self.write(FOUNDER, |mesh| mesh.set_role(target, Role::Member)) {
            self.stats.rotations_made += 1;
            self.demotion = Some(demotion);
        }
    }

    /// D, from fresh copies of its backup, writes seventeen rotations, each
    /// adding its puppet as an admin (void where the demotion is known),
    /// and hands each to a random peer.
    fn widen(&mut self) {
        let seed = self.seed;
        let puppet = keys(seed, DEMOTED_PUPPET).package();
        for _ in 0..17 {
            self.demoted_copies += 1;
            let path = self.peers[FORK].path.with_file_name("demoted-copy.redb");
            std::fs::copy(&self.demoted_backup, &path).expect("copy D's backup");
            let mut copy = options(seed, DEMOTED_COPY, self.demoted_copies)
                .open(&path, keys(seed, DEMOTED))
                .unwrap_or_else(|error| panic!("seed {seed}: D's copy: {error}"));
            let Ok(hash) = copy.add_member(puppet, Role::Admin) else {
                continue;
            };
            self.made.push(hash);
            self.backdated.push(hash);
            self.stats.rotations_made += 1;
            // Any peer but F, which never takes from a copy that may hold
            // its firing.
            let to = match self.rng.below(PEERS) {
                FIRED => FOUNDER,
                to => to,
            };
            let batch = carried(&copy.export(&self.mesh(to).frontier()));
            copy.close().expect("close");
            let _ = std::fs::remove_file(&path);
            // (The copy may hold older events the peer lacks, and sends them
            // too.)
            self.mesh_mut(to)
                .ingest(&batch)
                .unwrap_or_else(|error| panic!("seed {seed}: peer {to} refused D's copy: {error}"));
        }
    }

    /// F (or its puppet) removes every other member of its own view that
    /// the rules let it remove: a removal that would be void is refused
    /// (`Error::VoidChange`), so it drops those one at a time.
    fn remove_everyone(&mut self, who: usize) -> Option<EventHash> {
        let me = self.mesh(who).member_id().expect("keys");
        let mut changes: Vec<Change> = self
            .mesh(who)
            .roster()
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| *id != me)
            .map(|member| Change::Remove { member })
            .collect();
        self.backdated_write(who, move |mesh| {
            loop {
                match mesh.rotate(changes.clone(), "everyone out") {
                    Err(Error::VoidChange { member, .. }) if changes.len() > 1 => {
                        changes.retain(|change| *change != Change::Remove { member });
                    }
                    outcome => return outcome,
                }
            }
        })
    }

    /// A rotation by F after its firing, or by the puppet.
    fn backdated_write(
        &mut self,
        who: usize,
        op: impl FnOnce(&mut Mesh) -> meshlog::Result<EventHash>,
    ) -> Option<EventHash> {
        let seed = self.seed;
        let firing = self.firing.expect("fired");
        assert!(
            self.mesh(who).event(firing).is_none(),
            "seed {seed}: the backdating copy holds the firing"
        );
        if !self.mesh(who).is_enabled() {
            self.write(who, |mesh| mesh.set_enabled(true));
        }
        let made = self.write(who, op);
        if let Some(hash) = made {
            self.stats.rotations_made += 1;
            self.backdated.push(hash);
        }
        made
    }

    /// F, fired, keeps rotating on its own copy; it adds a puppet admin,
    /// whose own copy (joined from F's) rotates too.
    fn backdate(&mut self) {
        let seed = self.seed;
        let t = FIRST_MEMBER + self.rng.below(PEERS - FIRST_MEMBER);
        let target = member(seed, t);
        match self.rng.below(6) {
            5 if self.has(FORK) => {
                // F's second copy, which never saw F's later events, writes
                // at a position F has written already: F's feed forks.
                self.forked = if self.rng.chance(50) {
                    self.remove_everyone(FORK)
                } else {
                    self.backdated_write(FORK, |mesh| mesh.refresh("other copy"))
                };
                self.fold_fork();
            }
            0 => {
                self.remove_everyone(FIRED);
            }
            1 => {
                self.backdated_write(FIRED, |mesh| mesh.remove_member(target));
            }
            2 => {
                self.backdated_write(FIRED, |mesh| mesh.refresh("still here"));
            }
            _ if !self.has(PUPPET) => self.make_puppet(),
            _ => {
                // The puppet takes F's news, rotates, and F takes it back.
                self.pull(PUPPET, FIRED);
                if self.rng.chance(50) {
                    self.remove_everyone(PUPPET);
                } else {
                    let admin = member(seed, ADMINS[self.rng.below(ADMINS.len())]);
                    self.backdated_write(PUPPET, |mesh| {
                        mesh.rotate(
                            vec![
                                Change::Remove { member: target },
                                Change::SetRole {
                                    member: admin,
                                    role: Role::Member,
                                },
                            ],
                            "puppet",
                        )
                    });
                }
                if self.rng.chance(50) {
                    let payload = [0xee];
                    self.write(PUPPET, |mesh| mesh.append_app("note", &payload));
                }
                self.pull(FIRED, PUPPET);
            }
        }
    }

    /// F and its second copy exchange what each lacks (SPEC.md §7.1), and
    /// the copy is closed for good.
    fn fold_fork(&mut self) {
        if self.has(FORK) {
            self.pull(FORK, FIRED);
            self.pull(FIRED, FORK);
            let copy = self.peers[FORK].mesh.take().expect("open");
            copy.close().expect("close");
        }
    }

    fn make_puppet(&mut self) {
        let seed = self.seed;
        let package = keys(seed, PUPPET).package();
        if self
            .backdated_write(FIRED, |mesh| mesh.add_member(package, Role::Admin))
            .is_none()
        {
            return;
        }
        let everything = carried(&self.mesh(FIRED).export_all());
        let path = self.peers[PUPPET].path.clone();
        let mesh = options(seed, PUPPET, 0)
            .join(path, keys(seed, PUPPET), &everything)
            .unwrap_or_else(|error| panic!("seed {seed}: the puppet's join: {error}"));
        assert_eq!(
            mesh.roster().role_of(member(seed, PUPPET)),
            Some(Role::Admin),
            "seed {seed}: the puppet is an admin in F's view"
        );
        self.peers[PUPPET].mesh = Some(mesh);
        self.write(PUPPET, |mesh| mesh.set_enabled(true));
        self.remove_everyone(PUPPET);
        self.pull(FIRED, PUPPET);
    }

    /// Everyone in one partition; sync through the founder until nothing
    /// moves, merging by an honest admin or the owner when needed; then
    /// every ordered pair once more, which must move nothing.
    fn quiesce(&mut self) {
        self.fold_fork();
        self.healed = true;
        let everyone: Vec<usize> = (0..=PUPPET).filter(|&n| self.has(n)).collect();
        loop {
            self.stats.heal_rounds += 1;
            assert!(
                self.stats.heal_rounds <= 20,
                "seed {}: no quiescence",
                self.seed
            );
            let mut moved = 0;
            for &n in &everyone {
                moved += self.pull(FOUNDER, n);
            }
            for &n in &everyone {
                moved += self.pull(n, FOUNDER);
            }
            if self.mesh(FOUNDER).needs_merge() {
                self.final_merge();
                continue;
            }
            if moved == 0 {
                break;
            }
        }
        let converge_syncs = self.stats.converge_syncs;
        for &a in &everyone {
            for &b in &everyone {
                assert_eq!(
                    self.pull(a, b),
                    0,
                    "seed {}: peer {a} still lacked events of peer {b}",
                    self.seed
                );
            }
        }
        self.stats.converge_syncs = converge_syncs;
    }

    /// The owner, else an honest admin of `R*`, merges (turning itself on
    /// first if it must).
    fn final_merge(&mut self) {
        let seed = self.seed;
        let roster = self.mesh(FOUNDER).roster().clone();
        let candidates: Vec<usize> = (0..PEERS)
            .filter(|&n| self.is_honest(n))
            .filter(|&n| {
                matches!(
                    roster.role_of(member(seed, n)),
                    Some(Role::Owner | Role::Admin)
                )
            })
            .collect();
        for n in candidates {
            if !self.mesh(n).is_enabled() {
                self.write(n, |mesh| mesh.set_enabled(true));
            }
            let made = self.write(n, |mesh| {
                mesh.merge()
                    .map(|merge| merge.expect("the peer needs a merge"))
            });
            if made.is_some() {
                self.stats.merges += 1;
                self.stats.rotations_made += 1;
                return;
            }
        }
        panic!("seed {seed}: the mesh needs a merge and no honest admin or owner can make one");
    }

    fn check(&mut self) -> Figures {
        let seed = self.seed;
        let everyone: Vec<usize> = (0..=PUPPET).filter(|&n| self.has(n)).collect();
        let reference = self.mesh(FOUNDER);
        let digest = reference.digest();
        let live = live_events(reference);
        let roster = reference.roster().clone();

        // One state everywhere, and the same events in it everywhere: every
        // event is held by every peer, or left out (SPEC.md §6.4) by every
        // peer that holds it; and every honest event is held everywhere,
        // but a void rotation nothing names (an admin's, demoted or fired
        // while it merged, say), and what an absent author wrote on one.
        let left_out_honest: BTreeSet<EventHash> = everyone
            .iter()
            .flat_map(|&m| {
                self.mesh(m)
                    .log()
                    .filter(|entry| entry.left_out)
                    .map(|entry| entry.event.hash())
                    .collect::<Vec<_>>()
            })
            .collect();
        for &n in &everyone {
            let mesh = self.mesh(n);
            assert_eq!(mesh.digest(), digest, "seed {seed}: peer {n}'s digest");
            assert_eq!(mesh.roster(), &roster, "seed {seed}: peer {n}'s R*");
            assert_eq!(live_events(mesh), live, "seed {seed}: peer {n}'s events");
            for hash in &self.honest {
                if !live.contains(hash) && !left_out_honest.contains(hash) {
                    let held = everyone.iter().find_map(|&m| {
                        self.mesh(m)
                            .log()
                            .find(|e| e.event.hash() == *hash)
                            .map(|e| {
                                format!(
                                    "{:?} {:?} left out {}",
                                    e.event.event(),
                                    e.status,
                                    e.left_out
                                )
                            })
                    });
                    panic!("seed {seed}: peer {n} lacks honest event {hash}: {held:?}");
                }
            }
        }
        assert!(
            live.iter().all(|hash| self.made.contains(hash)),
            "seed {seed}: events nobody made"
        );

        // A current epoch, whose own roster is R*.
        let current = reference
            .current_epoch()
            .unwrap_or_else(|| panic!("seed {seed}: no current epoch after the merge"));
        assert_eq!(reference.writer_epoch(), Some(current), "seed {seed}");
        let info = reference.epoch(current).expect("the current epoch");
        assert!(info.applied, "seed {seed}: the current epoch is void");
        assert_eq!(
            info.roster, roster,
            "seed {seed}: the current roster is not R*"
        );

        // R*: the fired admin and its puppet are out; owners, the honest
        // admins and every member no honest admin or owner removed are in.
        let fired = member(seed, FIRED);
        assert!(self.firing.is_some(), "seed {seed}: F was never fired");
        assert!(
            !roster.contains(fired),
            "seed {seed}: the fired admin is in R*"
        );
        assert!(
            !roster.contains(member(seed, PUPPET)),
            "seed {seed}: the puppet is in R*"
        );
        assert!(
            !roster.contains(member(seed, DEMOTED_PUPPET)),
            "seed {seed}: the demoted admin's puppet is in R*"
        );
        if self.demotion.is_some() {
            assert_eq!(
                roster.role_of(member(seed, DEMOTED)),
                Some(Role::Member),
                "seed {seed}: the demoted admin is not a member"
            );
        }
        assert_eq!(roster.role_of(member(seed, FOUNDER)), Some(Role::Owner));
        for owner in &self.owners {
            assert_eq!(
                roster.role_of(*owner),
                Some(Role::Owner),
                "seed {seed}: owner {owner} is no longer an owner"
            );
        }
        for admin in ADMINS {
            assert_eq!(
                roster.role_of(member(seed, admin)),
                Some(Role::Admin),
                "seed {seed}: honest admin {admin} lost its entry"
            );
        }
        for (id, entry) in roster.iter() {
            let n = (0..PEERS)
                .find(|&n| member(seed, n) == *id)
                .unwrap_or_else(|| panic!("seed {seed}: {id} in R* is no peer"));
            assert_eq!(
                entry.keys(),
                &keys(seed, n).public(),
                "seed {seed}: peer {n}'s keys in R*"
            );
        }
        for n in FIRST_MEMBER..PEERS {
            let id = member(seed, n);
            assert!(
                roster.contains(id) || self.honest_removed.contains(&id),
                "seed {seed}: member {n} is gone, yet no honest admin or owner removed it"
            );
        }

        // Every backdated rotation is void, and never a tip; one the
        // reference does not hold is left out wherever it is held (checked
        // above: it is in no peer's events).
        for hash in &self.backdated {
            let Some(epoch) = reference.epoch(*hash) else {
                assert!(!live.contains(hash), "seed {seed}");
                continue;
            };
            assert!(
                !epoch.applied,
                "seed {seed}: backdated rotation {hash} by {} applies",
                epoch.author
            );
            assert!(!reference.tips().contains(hash), "seed {seed}");
        }
        // An admin never removes or demotes another admin.
        for hash in &self.admin_on_admin {
            let epoch = reference.epoch(*hash).expect("a rotation");
            if epoch.applied {
                assert_eq!(
                    epoch.void_changes,
                    vec![0],
                    "seed {seed}: an admin's change to another admin was kept ({hash})"
                );
            }
        }
        // What F wrote after its firing and the puppet wrote carries no
        // authority now.
        let puppet = member(seed, PUPPET);
        let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
        for entry in reference.log() {
            if let Some(status) = entry.status {
                *statuses.entry(status.to_string()).or_default() += 1;
                let author = entry.event.author();
                if author == fired || author == puppet {
                    assert_eq!(
                        status,
                        EventStatus::AuthorNotInRoster,
                        "seed {seed}: {} by a removed author",
                        entry.event.hash()
                    );
                }
            }
        }

        // Each epoch's secret opens for exactly its own roster, the same
        // secret for all of them; every peer sees the same epoch.
        // (Left-out rotations are left out of this: not every peer holds
        // them.)
        let epochs: Vec<_> = reference
            .epochs()
            .into_iter()
            .filter(|epoch| live.contains(&epoch.hash))
            .collect();
        let mut void = 0;
        for epoch in &epochs {
            if !epoch.applied {
                void += 1;
            }
            let mut secret: Option<[u8; 32]> = None;
            for &n in &everyone {
                let mesh = self.mesh(n);
                assert_eq!(
                    mesh.epoch(epoch.hash).as_ref(),
                    Some(epoch),
                    "seed {seed}: peer {n} sees epoch {} otherwise",
                    epoch.hash
                );
                let id = mesh.member_id().expect("keys");
                match mesh.epoch_secret(epoch.hash) {
                    Ok(opened) => {
                        assert!(
                            epoch.roster.contains(id),
                            "seed {seed}: peer {n}, outside the own roster of epoch {}, opened its secret",
                            epoch.hash
                        );
                        let bytes = *opened.expose();
                        assert_eq!(*secret.get_or_insert(bytes), bytes, "seed {seed}");
                    }
                    Err(error) => {
                        assert!(
                            !epoch.roster.contains(id),
                            "seed {seed}: peer {n}, in the own roster of epoch {}, cannot open it: {error}",
                            epoch.hash
                        );
                        assert_eq!(error.class(), ErrorClass::Refusal, "seed {seed}: {error}");
                    }
                }
            }
            assert!(
                secret.is_some(),
                "seed {seed}: nobody opens epoch {}",
                epoch.hash
            );
        }
        // D's copies fork its feed at the position after its backup; kept
        // where an honest peer that had not heard of the demotion built on
        // them, left out elsewhere. Besides those, only F forked its feed,
        // and only if its second copy wrote at a position it had written
        // already; both branches are kept.
        let demoted = member(seed, DEMOTED);
        let restorer = member(seed, RESTORER);
        let (demoted_forks, equivocations): (Vec<_>, Vec<_>) = reference
            .equivocations()
            .into_iter()
            .filter(|equivocation| equivocation.author != restorer)
            .partition(|equivocation| equivocation.author == demoted);
        for equivocation in &demoted_forks {
            for hash in &equivocation.events {
                let epoch = reference.epoch(*hash);
                assert!(
                    epoch.is_none_or(|epoch| !epoch.applied) || !self.backdated.contains(hash),
                    "seed {seed}: D's backdated rotation {hash} applies"
                );
            }
        }
        for equivocation in &equivocations {
            assert_eq!(equivocation.author, fired, "seed {seed}: {equivocation:?}");
            assert!(equivocation.events.len() >= 2, "seed {seed}");
            for hash in &equivocation.events {
                let event = reference.event(*hash).expect("an equivocating event");
                assert_eq!(event.seq(), equivocation.seq, "seed {seed}");
            }
        }
        match (self.fork_against, self.forked) {
            // A fork F's copy made on top of its void rotations may be
            // left out, and then no peer need hold both branches.
            (Some(first), Some(second)) if !(live.contains(&first) && live.contains(&second)) => {}
            (Some(first), Some(second)) => {
                let seq = reference.event(first).expect("held").seq();
                assert_eq!(reference.event(second).expect("held").seq(), seq);
                assert!(
                    equivocations.iter().any(|e| e.seq == seq
                        && e.events.contains(&first)
                        && e.events.contains(&second)),
                    "seed {seed}: F's fork at seq {seq} is not reported"
                );
                // A copy holding both branches goes on from its newest
                // event; later forks come only from the second copy writing
                // again before it took F's longer branch: counted, printed.
                self.self_forks = equivocations.iter().filter(|e| e.seq > seq).count();
            }
            _ => assert!(equivocations.is_empty(), "seed {seed}: {equivocations:?}"),
        }
        let forks = equivocations.len();

        // Every file reopens to the same state.
        for n in everyone {
            self.reopen(n);
        }
        Figures {
            events: live.len(),
            honest: self.honest.len(),
            honest_left_out: self
                .honest
                .iter()
                .filter(|hash| left_out_honest.contains(*hash))
                .count(),
            rotations: epochs.len() - 1,
            void,
            backdated: self.backdated.len(),
            forks,
            roster: roster.len(),
            statuses,
        }
    }
}

struct Figures {
    events: usize,
    honest: usize,
    /// Honest events left out: void rotations nothing names, of admins
    /// demoted or removed meanwhile.
    honest_left_out: usize,
    rotations: usize,
    void: usize,
    backdated: usize,
    forks: usize,
    roster: usize,
    statuses: BTreeMap<String, usize>,
}

fn run(seed: u64) -> usize {
    let started = Instant::now();
    let mut sim = Sim::new(seed);
    let steps = ROUNDS * STEPS;
    let fire_at = steps / 4 + sim.rng.below(steps / 4);
    let demote_at = steps / 4 + sim.rng.below(steps / 2);
    for round in 0..ROUNDS {
        if round > 0 && sim.rng.chance(60) {
            sim.repartition();
        }
        for step in 0..STEPS {
            sim.step(round * STEPS + step, fire_at, demote_at);
        }
    }
    let before = sim.stats.syncs;
    sim.quiesce();
    let figures = sim.check();
    sim.stats.left_out = sim.made.len() - figures.events;
    let restorer = member(seed, RESTORER);
    let restore_forks = sim
        .mesh(FOUNDER)
        .equivocations()
        .iter()
        .filter(|equivocation| equivocation.author == restorer)
        .count();
    println!(
        "seed {seed}: R restored its backup {} times, forking its feed at {restore_forks} positions",
        sim.restores
    );
    let s = &sim.stats;
    println!(
        "seed {seed}: {} events ({} by honest peers; {} left out, {} of them by honest peers removed meanwhile), {} rotations ({} void; {} backdated by F{} and by the demoted D's {} copies, \
         which fooled {} honest peers until the firing reached them), {} forks of feeds ({} made by F's copy after it took its own fork), {} merges, \
         {} writes and refusals {:?}, {} syncs, {} reopens, {} partitionings; converged in {} syncs \
         over {} heal rounds; R* of {} ({} removed by honest hands, {} owner grants, {} admin-on-admin \
         tries); statuses {:?}; {:.1?}",
        figures.events,
        figures.honest,
        s.left_out,
        figures.honest_left_out,
        figures.rotations,
        figures.void,
        figures.backdated,
        if sim.has(PUPPET) {
            " and its puppet"
        } else {
            ""
        },
        sim.demoted_copies,
        sim.fooled.len(),
        figures.forks,
        sim.self_forks,
        s.merges,
        s.writes,
        s.refusals,
        before,
        s.reopens,
        s.repartitions,
        s.converge_syncs,
        s.heal_rounds,
        figures.roster,
        sim.honest_removed.len(),
        sim.owners.len(),
        sim.admin_on_admin.len(),
        figures.statuses,
        started.elapsed(),
    );
    figures.backdated
}

#[test]
fn twenty_peers_on_files_converge_under_partitions_and_a_fired_admin() {
    let seeds: Vec<u64> = match (
        std::env::var("MESHLOG_SIM_SEED"),
        std::env::var("MESHLOG_SIM_SEEDS"),
    ) {
        (Ok(one), _) => vec![one.parse().expect("MESHLOG_SIM_SEED is a number")],
        (_, Ok(many)) => (0..many.parse().expect("MESHLOG_SIM_SEEDS is a number")).collect(),
        _ => (0..3).collect(),
    };
    for seed in seeds {
        let backdated = run(seed);
        assert!(
            backdated > 0,
            "seed {seed}: the fired admin never backdated a rotation"
        );
    }
}

/// The events `mesh` holds and does not leave out (SPEC.md §6.4).
fn live_events(mesh: &Mesh) -> BTreeSet<EventHash> {
    mesh.log()
        .filter(|entry| !entry.left_out)
        .map(|entry| entry.event.hash())
        .collect()
}
