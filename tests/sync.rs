//! Sync by frontier among peers on their own files (SPEC.md §7): any path,
//! any order, repeats harmless, and a batch taken whole or not at all.

mod common;

use common::{
    batch_of, carried, db_path, dump, exchange, fast_tempdir, join, keys, options, package,
    record_hash, send,
};
use meshlog::{Error, ErrorClass, Frontier, Mesh, Role};

/// A founder (owner), an admin and a member, each on its own file, each
/// enabled and holding everything.
fn three_peers(dir: &tempfile::TempDir) -> Vec<Mesh> {
    let mut founder = options(1)
        .create(db_path(dir, "p0.redb"), keys(1), "peers")
        .unwrap();
    founder.set_enabled(true).unwrap();
    founder.add_member(package(2), Role::Admin).unwrap();
    founder.add_member(package(3), Role::Member).unwrap();
    let mut peers = vec![founder];
    for n in 2..=3u8 {
        let mut peer = join(&peers[0], &db_path(dir, &format!("p{}.redb", n - 1)), n);
        peer.set_enabled(true).unwrap();
        send(&peer, &mut peers[0]);
        peers.push(peer);
    }
    let (first, rest) = peers.split_at_mut(1);
    for peer in rest {
        send(&first[0], peer);
    }
    peers
}

fn hashes(mesh: &Mesh) -> Vec<meshlog::EventHash> {
    let mut out: Vec<_> = mesh.log().map(|entry| entry.event.hash()).collect();
    out.sort();
    out
}

#[test]
fn events_travel_along_a_path_of_three_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut peers = three_peers(&dir);
    let [a, b, c] = &mut peers[..] else {
        unreachable!()
    };
    let from_a = a.append_app("note", b"from A").unwrap();
    let from_c = c.append_app("note", b"from C").unwrap();

    // A → B → C: C learns A's event from B, which never wrote it.
    assert_eq!(send(a, b).added, 1);
    assert_eq!(send(b, c).added, 1);
    assert!(c.event(from_a).is_some());
    // And back, C → B → A.
    assert_eq!(send(c, b).added, 1);
    assert_eq!(send(b, a).added, 1);
    assert!(a.event(from_c).is_some());
    assert_eq!(a.digest(), b.digest());
    assert_eq!(b.digest(), c.digest());
    assert_eq!(hashes(a), hashes(c));

    // Once all hold the same, frontiers ask for nothing.
    for (from, to) in [(&*a, &*c), (&*c, &*a), (&*b, &*a)] {
        assert!(from.export(&to.frontier()).is_empty());
    }
    // A frontier travels as bytes too.
    let frontier = Frontier::from_bytes(&a.frontier().to_bytes()).expect("decodes");
    assert_eq!(frontier, a.frontier());
}

#[test]
fn batches_in_any_order_and_repeated_add_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut peers = three_peers(&dir);
    let (founder_part, rest) = peers.split_at_mut(1);
    let founder = &mut founder_part[0];
    let member = &mut rest[1];

    // Three snapshots of everything the founder holds, growing, and three
    // increments, each from the frontier the member had at the start.
    let start = member.frontier();
    let mut snapshots = Vec::new();
    let mut increments = Vec::new();
    for round in 0..3u8 {
        let before = founder.frontier();
        founder.append_app("note", &[round]).unwrap();
        founder.append_app("note", &[round, round]).unwrap();
        snapshots.push(carried(&founder.export(&start)));
        increments.push(carried(&founder.export(&before)));
    }
    assert_eq!(increments[2].len(), 2);

    // The largest snapshot first, then the smaller ones: they add nothing.
    let first = member.ingest(&snapshots[2]).unwrap();
    assert_eq!(first.added, 6);
    for batch in [&snapshots[0], &snapshots[1], &snapshots[2]] {
        let again = member.ingest(batch).unwrap();
        assert_eq!(again.added, 0);
        assert_eq!(again.known, batch.len());
    }
    for batch in increments.iter().rev() {
        assert_eq!(member.ingest(batch).unwrap().added, 0);
    }
    assert_eq!(member.digest(), founder.digest());

    // A second member gets the increments in reverse order: an increment
    // whose events name events it lacks is refused until those arrive,
    // and then everything goes in.
    let admin = &mut rest[0];
    let error = admin.ingest(&increments[2]).unwrap_err();
    assert!(matches!(error, Error::Incomplete { .. }), "{error}");
    for batch in &increments {
        admin.ingest(batch).unwrap();
    }
    assert_eq!(admin.digest(), founder.digest());
    let empty = founder.export(&admin.frontier());
    assert!(empty.is_empty());
    assert_eq!(admin.ingest(&empty).unwrap().added, 0);
}

#[test]
fn a_batch_of_another_group_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut peers = three_peers(&dir);
    let mut other = options(1)
        .create(db_path(&dir, "other.redb"), keys(1), "another group")
        .unwrap();
    other.set_enabled(true).unwrap();
    let foreign = carried(&other.export_all());

    let mesh = &mut peers[0];
    let (len, digest) = (mesh.len(), mesh.digest());
    let error = mesh.ingest(&foreign).unwrap_err();
    match &error {
        Error::ForeignBatch { ours, theirs } => {
            assert_eq!(*ours, mesh.group());
            assert_eq!(*theirs, other.group());
        }
        other => panic!("expected a foreign batch, got {other:?}"),
    }
    assert_eq!(error.class(), ErrorClass::VerificationFailure);
    assert_eq!((mesh.len(), mesh.digest()), (len, digest));

    // The same records under our header: they name the other group's events.
    let relabelled = batch_of(mesh.group(), foreign.records()[1..].to_vec());
    let error = mesh.ingest(&relabelled).unwrap_err();
    assert_eq!(error.class(), ErrorClass::VerificationFailure, "{error}");
    assert_eq!((mesh.len(), mesh.digest()), (len, digest));
}

#[test]
fn an_incomplete_or_invalid_batch_is_refused_whole_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut peers = three_peers(&dir);
    let peer_path = db_path(&dir, "p2.redb");
    let base = peers[2].frontier();
    let founder = &mut peers[0];
    for i in 0..4u8 {
        founder.append_app("note", &[i]).unwrap();
    }
    let batch = founder.export(&base);
    assert_eq!(batch.len(), 4);
    let group = founder.group();
    let member = peers.pop().unwrap();
    drop(member);
    let before = dump(&peer_path);
    let mut member = options(3).open(&peer_path, keys(3)).unwrap();
    let (len, digest) = (member.len(), member.digest());

    // Without its second event, the last two wait for an event nobody sent;
    // the first alone would be valid, and is not taken either.
    let mut records = batch.records().to_vec();
    let dropped = records.remove(1);
    let error = member.ingest(&batch_of(group, records)).unwrap_err();
    match &error {
        Error::Incomplete { count, waiting, .. } => {
            assert_eq!(*count, 2);
            assert_eq!(*waiting, record_hash(&batch.records()[2]));
        }
        other => panic!("expected an incomplete batch, got {other:?}"),
    }
    assert_eq!(error.class(), ErrorClass::VerificationFailure);
    assert_eq!(member.digest(), digest);

    // One record with a flipped signature bit refuses the other three.
    let mut records = batch.records().to_vec();
    records[3][0] ^= 1;
    let error = member.ingest(&batch_of(group, records)).unwrap_err();
    match &error {
        Error::Rejected(rejection) => {
            assert_eq!(rejection.hash, record_hash(&batch.records()[3]));
            assert_eq!(rejection.rule.id(), "V6", "{rejection}");
        }
        other => panic!("expected the forged record named, got {other:?}"),
    }
    assert_eq!((member.len(), member.digest()), (len, digest));

    drop(member);
    assert_eq!(dump(&peer_path), before, "not a byte of the file changed");
    let mut member = options(3).open(&peer_path, keys(3)).unwrap();
    assert_eq!(member.digest(), digest);
    // The whole batch still goes in, the dropped record included.
    assert!(!dropped.is_empty());
    assert_eq!(member.ingest(&batch).unwrap().added, 4);
    assert_eq!(member.digest(), peers[0].digest());
}

#[test]
fn a_peer_joins_from_a_batch_in_any_order_and_only_with_its_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let peers = three_peers(&dir);
    let founder = &peers[0];
    let mut records = founder.export_all().records().to_vec();
    let genesis = records[0].clone();
    records.reverse();
    // A fixed shuffle on top of the reversal: nothing comes after what it names.
    for i in (1..records.len()).step_by(3) {
        records.swap(i, i - 1);
    }
    assert_ne!(records[0], genesis);

    let path = db_path(&dir, "shuffled.redb");
    let joined = options(7)
        .join(&path, keys(7), &batch_of(founder.group(), records.clone()))
        .unwrap();
    assert_eq!(joined.digest(), founder.digest());
    assert_eq!(joined.len(), founder.len());
    drop(joined);
    assert_eq!(
        Mesh::open_read_only(&path).unwrap().digest(),
        founder.digest(),
        "stored in an order that reopens"
    );

    // Without the genesis: refused, and no file is made.
    records.retain(|record| *record != genesis);
    let target = db_path(&dir, "headless.redb");
    let error = options(8)
        .join(&target, keys(8), &batch_of(founder.group(), records))
        .unwrap_err();
    assert!(matches!(error, Error::NoGenesis), "{error}");
    assert_eq!(error.class(), ErrorClass::VerificationFailure);
    assert!(!target.exists(), "a refused join makes no file");
}

mod convergence {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// Peer `n` writes an app event.
        App(usize),
        /// Peer `n` refreshes (peers 0 and 1 are owner and admin).
        Refresh(usize),
        /// `to` takes what `from` has.
        Sync { from: usize, to: usize },
        /// Peer `n`'s file is closed and opened again.
        Reopen(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0usize..3).prop_map(Op::App),
            1 => (0usize..2).prop_map(Op::Refresh),
            4 => (0usize..3, 0usize..3).prop_map(|(from, to)| Op::Sync { from, to }),
            1 => (0usize..3).prop_map(Op::Reopen),
        ]
    }

    fn reopen(dir: &tempfile::TempDir, peers: &mut Vec<Mesh>, n: usize) {
        let digest = peers[n].digest();
        let path = db_path(dir, &format!("p{n}.redb"));
        // Close first: the file is locked while it is open.
        drop(peers.remove(n));
        let reopened = options(40 + n as u8)
            .open(&path, keys(n as u8 + 1))
            .unwrap();
        peers.insert(n, reopened);
        assert_eq!(
            peers[n].digest(),
            digest,
            "peer {n}: reopen changed the state"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Random writes and rotations on three files, random pairwise
        /// syncs and reopens: every sync is accepted, no event is ever lost,
        /// and once all have exchanged (and an owner merged, if needed)
        /// every file holds one state, which each reopens to.
        #[test]
        fn random_writes_and_pairwise_syncs_converge(ops in prop::collection::vec(op(), 1..24)) {
            let dir = tempfile::tempdir().unwrap();
            let mut peers = three_peers(&dir);
            let mut written: Vec<(usize, meshlog::EventHash)> = Vec::new();
            for (step, op) in ops.iter().enumerate() {
                match *op {
                    Op::App(n) => {
                        // Refreshes change no roster, so a writer epoch
                        // always exists (SPEC.md §5.5): writes never wait.
                        let hash = peers[n].append_app("note", &step.to_le_bytes()).unwrap();
                        written.push((n, hash));
                    }
                    Op::Refresh(n) => {
                        let hash = peers[n].refresh("refresh").unwrap();
                        written.push((n, hash));
                    }
                    Op::Sync { from, to } if from != to => {
                        let (a, b) = if from < to {
                            let (left, right) = peers.split_at_mut(to);
                            (&left[from], &mut right[0])
                        } else {
                            let (left, right) = peers.split_at_mut(from);
                            (&right[0], &mut left[to])
                        };
                        send(a, b);
                    }
                    Op::Sync { .. } => {}
                    Op::Reopen(n) => reopen(&dir, &mut peers, n),
                }
                for (n, hash) in &written {
                    prop_assert!(peers[*n].event(*hash).is_some(), "peer {} lost {}", n, hash);
                }
            }
            // Heal: everyone exchanges with the founder, which merges if
            // needed, then everyone takes the result.
            for _ in 0..2 {
                for n in 1..3 {
                    let (left, right) = peers.split_at_mut(n);
                    exchange(&mut left[0], &mut right[0]);
                }
            }
            peers[0].merge().unwrap();
            for n in 1..3 {
                let (left, right) = peers.split_at_mut(n);
                exchange(&mut left[0], &mut right[0]);
            }
            let digest = peers[0].digest();
            for (n, peer) in peers.iter().enumerate() {
                prop_assert_eq!(peer.digest(), digest, "peer {}", n);
                prop_assert!(!peer.needs_merge());
                for (_, hash) in &written {
                    prop_assert!(peer.event(*hash).is_some());
                }
            }
            let epoch = peers[0].current_epoch().unwrap();
            let secret = *peers[0].epoch_secret(epoch).unwrap().expose();
            for n in 0..3 {
                let theirs = *peers[n].epoch_secret(epoch).unwrap().expose();
                prop_assert_eq!(theirs, secret);
                reopen(&dir, &mut peers, n);
            }
        }
    }
}

/// SPEC.md §6.4: a fired admin's backdated rotations, and what it wrote on
/// them, are left out by every peer that knows of the firing: checked when offered, not taken, not sent, not in the digest. A
/// peer that took them before it knew keeps them, marked, with the same
/// digest. Adding the admin back brings them back, and they travel again.
#[test]
fn a_fired_admins_backdated_rotations_are_left_out_where_the_firing_is_known() {
    let dir = tempfile::tempdir().unwrap();
    let mut peers = three_peers(&dir);
    let [founder, admin, member] = &mut peers[..] else {
        unreachable!()
    };
    let admin_id = admin.member_id().unwrap();
    // The admin, apart, enables itself again (an app event on an applied
    // epoch), refreshes ten times and writes on its own epoch; meanwhile
    // the founder fires it.
    let kept = admin.append_app("note", b"before my refreshes").unwrap();
    let mut backdated = Vec::new();
    for _ in 0..10 {
        backdated.push(admin.refresh("apart").unwrap());
    }
    backdated.push(admin.append_app("note", b"on my own epoch").unwrap());
    founder.remove_member(admin_id).unwrap();

    // The member takes the admin's events first, then the firing.
    let first = send(admin, member);
    assert_eq!((first.added, first.left_out), (12, 0));
    send(founder, member);
    // The founder knows: every one is checked; the note written on an
    // applied epoch is taken, as a removed member's history (SPEC.md §4.5),
    // and the rest is not.
    let offered = send(admin, founder);
    assert_eq!((offered.added, offered.left_out), (1, 11));
    for hash in &backdated {
        assert!(founder.event(*hash).is_none());
        let entry = member.log().find(|e| e.event.hash() == *hash).unwrap();
        assert!(entry.left_out, "{hash} is not left out");
    }
    assert!(founder.event(kept).is_some());
    assert!(
        !member
            .log()
            .find(|e| e.event.hash() == kept)
            .unwrap()
            .left_out
    );
    assert!(!member.epoch(backdated[0]).unwrap().applied);
    assert_eq!(member.digest(), founder.digest());
    assert_eq!(member.frontier(), founder.frontier());
    assert!(member.export(&founder.frontier()).is_empty());
    let everything = member.export_all();
    assert_eq!(everything.len(), founder.len());
    // A newcomer joining from the member gets the founder's state.
    let newcomer = join(member, &db_path(&dir, "newcomer.redb"), 4);
    assert_eq!(newcomer.digest(), founder.digest());
    assert_eq!(newcomer.len(), founder.len());

    // The founder adds the admin back: its events are no longer left out,
    // and the founder, which lacks them, takes them from the member.
    founder.add_member(package(2), Role::Admin).unwrap();
    send(founder, member);
    for hash in &backdated {
        let entry = member.log().find(|e| e.event.hash() == *hash).unwrap();
        assert!(!entry.left_out);
    }
    let back = send(member, founder);
    assert_eq!((back.added, back.left_out), (11, 0));
    assert_eq!(member.digest(), founder.digest());
    assert!(!founder.epoch(backdated[0]).unwrap().applied);
}

/// `Mesh::may_merge` says what the rules would say of a merge by the local
/// member (SPEC.md §5.2 E7, F5): an enabled admin or owner of `R*` may, a
/// member may not, nor a disabled admin, nor a read-only handle; and a
/// merge it allows is not refused.
#[test]
fn may_merge_says_what_the_rules_would_say() {
    let dir = tempfile::tempdir().unwrap();
    let mut peers = three_peers(&dir);
    let [founder, admin, member] = &mut peers[..] else {
        unreachable!()
    };
    assert!(founder.may_merge());
    assert!(admin.may_merge());
    assert!(!member.may_merge());

    // Concurrent additions: the mesh needs a merge everywhere.
    founder.add_member(package(4), Role::Member).unwrap();
    admin.add_member(package(5), Role::Member).unwrap();
    exchange(founder, admin);
    send(founder, member);
    assert!(member.needs_merge());
    assert!(!member.may_merge());
    assert!(matches!(member.merge(), Err(Error::Refused(_))));

    // A disabled admin may not, until it enables itself again.
    admin.set_enabled(false).unwrap();
    assert!(!admin.may_merge());
    admin.set_enabled(true).unwrap();
    assert!(admin.may_merge());
    assert!(admin.merge().unwrap().is_some());

    let path = db_path(&dir, "p0.redb");
    drop(peers);
    let audit = Mesh::open_read_only(&path).unwrap();
    assert!(!audit.may_merge());
}

/// The founder's copy is restored from a backup taken after [`three_peers`],
/// after the live copy wrote four more events, which the member took; the
/// restored copy then refreshes, so the founder's feed forks. Returns the
/// peers (the founder's live copy first), the restored copy and its
/// refresh.
fn a_restored_founder(dir: &tempfile::TempDir) -> (Vec<Mesh>, Mesh, meshlog::EventHash) {
    let mut peers = three_peers(dir);
    let backup = db_path(dir, "p0-backup.redb");
    peers[0].backup(&backup).unwrap();
    for n in 0..4u8 {
        peers[0].append_app("note", &[n]).unwrap();
    }
    let (founder, rest) = peers.split_at_mut(1);
    send(&founder[0], &mut rest[1]);
    let mut restored = options(9).open(&backup, keys(1)).unwrap();
    let refresh = restored.refresh("after the restore").unwrap();
    (peers, restored, refresh)
}

/// SPEC.md §7.1: a peer holding the longer branch of a forked feed gets the
/// shorter one in one exchange; the sender does not take it for "ahead".
#[test]
fn a_peer_holding_the_longer_branch_of_a_fork_gets_the_shorter_one() {
    let dir = tempfile::tempdir().unwrap();
    let (mut peers, restored, refresh) = a_restored_founder(&dir);
    let member = &mut peers[2];
    let batch = restored.export(&member.frontier());
    assert!(!batch.is_empty(), "the member lacks the restored branch");
    member.ingest(&carried(&batch)).unwrap();
    for entry in restored.log() {
        assert!(member.event(entry.event.hash()).is_some());
    }
    assert!(member.event(refresh).is_some());
    assert_eq!(member.equivocations().len(), 1);
    assert!(restored.export(&member.frontier()).is_empty());
}

/// SPEC.md §7.1: another member's event that names the shorter branch
/// travels with that branch, so the batch is complete.
#[test]
fn an_event_naming_the_shorter_branch_of_a_fork_travels_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut peers, restored, refresh) = a_restored_founder(&dir);
    let [_, admin, member] = &mut peers[..] else {
        unreachable!()
    };
    send(&restored, admin);
    let note = admin.append_app("note", b"on the restored branch").unwrap();
    assert_eq!(admin.event(note).unwrap().event().epoch(), Some(refresh));
    let ingested = member
        .ingest(&carried(&admin.export(&member.frontier())))
        .expect("one exchange carries the branch the note names");
    assert!(ingested.added >= 2);
    for entry in admin.log() {
        assert!(member.event(entry.event.hash()).is_some());
    }
    assert!(member.event(refresh).is_some() && member.event(note).is_some());
}

mod forks {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// Peer `n` writes an app event, under the epoch it holds current.
        App(usize),
        /// Peer `n` refreshes (peers 0 and 1 are owner and admin): a
        /// rotation others' events then name.
        Refresh(usize),
        /// Peer `n`'s file is copied as a backup.
        Backup(usize),
        /// A backup (picked among those made) replaces its peer's copy,
        /// which then writes from where the backup stood: a fork, if the
        /// copy it replaces had written past it.
        Restore(usize),
        /// `to` takes what `from` has, one way, in one exchange.
        Sync { from: usize, to: usize },
        /// The owner removes the admin, whose copies that do not know it
        /// go on refreshing: void rotations, left out where it is known
        /// (SPEC.md §6.4).
        FireAdmin,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0usize..3).prop_map(Op::App),
            2 => (0usize..2).prop_map(Op::Refresh),
            1 => (0usize..3).prop_map(Op::Backup),
            2 => any::<usize>().prop_map(Op::Restore),
            5 => (0usize..3, 0usize..3).prop_map(|(from, to)| Op::Sync { from, to }),
            1 => Just(Op::FireAdmin),
        ]
    }

    /// `to` takes `from`'s export for `to`'s frontier (through the bytes of
    /// both): it must then hold every event `from` holds and does not leave
    /// out, and if it held only events `from` holds, `from`'s state.
    fn sync_once(from: &Mesh, to: &mut Mesh) -> Result<(), TestCaseError> {
        let held: std::collections::HashSet<_> =
            from.log().map(|entry| entry.event.hash()).collect();
        let subset = to.log().all(|entry| held.contains(&entry.event.hash()));
        let frontier = Frontier::from_bytes(&to.frontier().to_bytes()).expect("decodes");
        let batch = carried(&from.export(&frontier));
        if let Err(error) = to.ingest(&batch) {
            return Err(TestCaseError::fail(format!(
                "one-way sync refused: {error}"
            )));
        }
        for entry in from.log().filter(|entry| !entry.left_out) {
            // Not taken only if the receiver leaves it out, and so only if
            // its author is absent from the receiver's roster.
            prop_assert!(
                to.event(entry.event.hash()).is_some()
                    || !to.roster().contains(entry.event.author()),
                "the receiver lacks {} (seq {}) after one exchange",
                entry.event.hash(),
                entry.event.seq()
            );
        }
        if subset {
            prop_assert_eq!(to.digest(), from.digest());
        }
        prop_assert!(from.export(&to.frontier()).is_empty() || !subset);
        Ok(())
    }

    /// A write that went through, or that the rules refused.
    fn allowed<T>(result: meshlog::Result<T>) -> Result<(), TestCaseError> {
        match result {
            Err(error) if error.class() != ErrorClass::Refusal => Err(TestCaseError::fail(
                format!("a write failed other than by refusal: {error}"),
            )),
            _ => Ok(()),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        /// Members restore backups and write, so their feeds fork at random
        /// positions, and others write on the branches; a fired admin's
        /// copies may go on rotating. Every one-way sync carries everything
        /// the receiver lacks and does not leave out (SPEC.md §6.4, §7.1).
        #[test]
        fn forked_feeds_converge_in_one_exchange(ops in prop::collection::vec(op(), 8..40)) {
            let dir = fast_tempdir();
            let mut peers = three_peers(&dir);
            // A backup of each copy to start with, so that most histories
            // restore one.
            let mut backups: Vec<(usize, std::path::PathBuf)> = Vec::new();
            for (n, peer) in peers.iter().enumerate() {
                let path = db_path(&dir, &format!("backup-of-{n}.redb"));
                peer.backup(&path).unwrap();
                backups.push((n, path));
            }
            for (step, op) in ops.iter().enumerate() {
                match *op {
                    // A write the rules refuse (a fired admin that knows
                    // it, a merge needed) writes nothing, and is skipped.
                    Op::App(n) => {
                        allowed(peers[n].append_app("note", &step.to_le_bytes()))?;
                    }
                    Op::Refresh(n) => {
                        allowed(peers[n].refresh(&format!("refresh {step}")))?;
                    }
                    Op::FireAdmin => {
                        allowed(peers[0].remove_member(keys(2).member_id()))?;
                    }
                    Op::Backup(n) => {
                        let path = db_path(&dir, &format!("backup-{step}.redb"));
                        peers[n].backup(&path).unwrap();
                        backups.push((n, path));
                    }
                    Op::Restore(pick) => {
                        if backups.is_empty() {
                            continue;
                        }
                        let (n, backup) = &backups[pick % backups.len()];
                        let path = db_path(&dir, &format!("restored-{step}.redb"));
                        std::fs::copy(backup, &path).unwrap();
                        let seed = u8::try_from(step).unwrap().wrapping_add(50);
                        let n = *n;
                        peers[n] = options(seed).open(&path, keys(n as u8 + 1)).unwrap();
                        // It writes at once, as a restored laptop does.
                        allowed(peers[n].append_app("note", b"restored"))?;
                    }
                    Op::Sync { from, to } if from != to => {
                        let (a, b) = if from < to {
                            let (left, right) = peers.split_at_mut(to);
                            (&left[from], &mut right[0])
                        } else {
                            let (left, right) = peers.split_at_mut(from);
                            (&right[0], &mut left[to])
                        };
                        sync_once(a, b)?;
                    }
                    Op::Sync { .. } => {}
                }
            }
        }
    }
}
