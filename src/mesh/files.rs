//! The whole v3 stack on real files: six peers (an owner, two admins,
//! three members), each a [`Mesh`] on its own redb file, writing, rotating
//! and merging while split into random partitions, syncing pairwise through
//! batch bytes (frontier, export, encode, decode, ingest), and reopening
//! their files at random (every reopen verifies every event and
//! projection). At the end all heal: one digest, every file reopens to it,
//! every event a peer made is everywhere, and each peer recovers the
//! current epoch's secret exactly when it is in R*.
//!
//! Seeded: `MESHLOG_FILES_SEEDS=N` runs N seeds (the suite runs 3).

use std::path::PathBuf;

use super::*;
use crate::event::SignedPackage;
use crate::graph::Role;
use crate::tests::simulation::Rng;

const PEERS: u8 = 6;

fn keys(n: u8) -> LocalKeys {
    LocalKeys::from_secret_bytes(&[n + 1; 32], &[n + 101; 32])
}

fn settings(seed: u64, peer: u8) -> MeshOptions {
    let mut bytes = [peer; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut now = 1_900_000_000u64;
    MeshOptions::new().insecure_seed(bytes).clock(move || {
        now += 1;
        now
    })
}

struct Peer {
    path: PathBuf,
    mesh: Mesh,
    reopened: u64,
}

/// `into` takes `from`'s batch for its frontier, through bytes.
fn sync(into: &mut Peer, from: &Peer) -> usize {
    let bytes = from.mesh.export(&into.mesh.frontier()).to_bytes();
    let batch = Batch::from_bytes(&bytes).unwrap();
    into.mesh.ingest(&batch).unwrap().added
}

/// Peer `a` to change and peer `b` to read, `a != b`.
fn pair(peers: &mut [Peer], a: usize, b: usize) -> (&mut Peer, &Peer) {
    if a < b {
        let (left, right) = peers.split_at_mut(b);
        (&mut left[a], &right[0])
    } else {
        let (left, right) = peers.split_at_mut(a);
        (&mut right[0], &left[b])
    }
}

fn run(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(seed);
    let path = |n: u8| dir.path().join(format!("peer{n}"));
    let mut founder = settings(seed, 0).create(path(0), keys(0), "files").unwrap();
    founder.set_enabled(true).unwrap();
    let mut changes: Vec<Change> = (1..PEERS)
        .map(|n| Change::Add {
            package: SignedPackage::sign(&keys(n), 1),
            role: if n <= 2 { Role::Admin } else { Role::Member },
        })
        .collect();
    changes.sort_by_key(Change::member);
    founder.rotate(changes, "team").unwrap();
    let everything = founder.export(&Frontier::default()).records().to_vec();
    let group = founder.ledger().group();
    let mut peers = vec![Peer {
        path: path(0),
        mesh: founder,
        reopened: 0,
    }];
    for n in 1..PEERS {
        let mut mesh = settings(seed, n)
            .join(path(n), keys(n), &Batch::new(group, everything.clone()))
            .unwrap();
        mesh.set_enabled(true).unwrap();
        peers.push(Peer {
            path: path(n),
            mesh,
            reopened: 0,
        });
    }
    let mut made: Vec<crate::ids::EventHash> = Vec::new();
    let mut partition = vec![0u64; usize::from(PEERS)];
    for _ in 0..80 {
        let who = rng.below(u64::from(PEERS)) as usize;
        match rng.below(10) {
            0..=3 => {
                if let Ok(hash) = peers[who].mesh.append_app("note", &[who as u8]) {
                    made.push(hash);
                }
            }
            4 => {
                // An admin or the owner changes a member's entry.
                let target = 3 + rng.below(3) as u8;
                let change = match rng.below(3) {
                    0 => Change::Remove {
                        member: keys(target).member_id(),
                    },
                    1 => Change::Add {
                        package: SignedPackage::sign(&keys(target), 1),
                        role: Role::Member,
                    },
                    _ => Change::SetRole {
                        member: keys(target).member_id(),
                        role: Role::Admin,
                    },
                };
                if let Ok(hash) = peers[who].mesh.rotate(vec![change], "change") {
                    made.push(hash);
                }
            }
            5 => {
                if let Ok(Some(hash)) = peers[who].mesh.merge() {
                    made.push(hash);
                }
            }
            6 => {
                // Reopen from the file: it verifies to the same state.
                let Peer {
                    path,
                    mesh,
                    reopened,
                } = peers.remove(who);
                let digest = mesh.digest();
                drop(mesh);
                let mesh = settings(seed, 100).open(&path, keys(who as u8)).unwrap();
                assert_eq!(
                    mesh.digest(),
                    digest,
                    "seed {seed}: a reopen changed the state"
                );
                peers.insert(
                    who,
                    Peer {
                        path,
                        mesh,
                        reopened: reopened + 1,
                    },
                );
            }
            7 => {
                for slot in partition.iter_mut() {
                    *slot = rng.below(3);
                }
            }
            _ => {
                let other = rng.below(u64::from(PEERS)) as usize;
                if other != who && partition[other] == partition[who] {
                    let (into, from) = pair(&mut peers, who, other);
                    sync(into, from);
                }
            }
        }
    }
    // Heal: everyone syncs with the founder until nothing moves, with a
    // merge by the founder where the mesh needs one.
    for round in 0.. {
        assert!(round < 20, "seed {seed}: no quiescence");
        let mut moved = 0;
        for n in 1..usize::from(PEERS) {
            let (founder, peer) = pair(&mut peers, 0, n);
            moved += sync(founder, peer);
            let (peer, founder) = pair(&mut peers, n, 0);
            moved += sync(peer, founder);
        }
        if let Ok(Some(hash)) = peers[0].mesh.merge() {
            made.push(hash);
            continue;
        }
        if moved == 0 {
            break;
        }
    }
    let digest = peers[0].mesh.digest();
    let resolution = peers[0].mesh.resolution().clone();
    let current = resolution.current.expect("a current epoch after healing");
    for (n, peer) in peers.iter().enumerate() {
        assert_eq!(peer.mesh.digest(), digest, "seed {seed}: peer {n} differs");
        for hash in &made {
            assert!(
                peer.mesh.ledger().contains(*hash),
                "seed {seed}: peer {n} lacks {hash}"
            );
        }
        // The file with its journal, as the peer's own keys read it: they
        // sign again the newest event made here, whose signature is not on
        // disk yet (SPEC.md §9.6).
        let reopened = MeshOptions::new()
            .open_read_only(&peer.path, Some(keys(n as u8)))
            .unwrap();
        assert_eq!(reopened.digest(), digest, "seed {seed}: peer {n}'s file");
        // Without keys, that one event is set aside, and said to be.
        let audit = Mesh::open_read_only(&peer.path).unwrap();
        assert!(audit.report().awaiting_signature <= 1);
        assert_eq!(
            audit.len() + audit.report().awaiting_signature,
            peer.mesh.len(),
            "seed {seed}: peer {n}'s file without keys"
        );
        let member = keys(n as u8).member_id();
        let in_roster = resolution.roster.get(member).is_some();
        assert_eq!(
            peer.mesh.epoch_secret(current).is_ok(),
            in_roster,
            "seed {seed}: peer {n} reads the current secret exactly when in R*"
        );
    }
    let reopens: u64 = peers.iter().map(|p| p.reopened).sum();
    println!(
        "seed {seed}: {} events, {} made here, {reopens} reopens, roster of {}",
        peers[0].mesh.ledger().len(),
        made.len(),
        resolution.roster.len()
    );
}

#[test]
fn six_peers_on_files_converge_through_batches_and_reopens() {
    let seeds = std::env::var("MESHLOG_FILES_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3u64);
    for seed in 0..seeds {
        run(seed);
    }
}
