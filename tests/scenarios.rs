//! Whole-life scenarios through the public API, each peer on its own file,
//! peers syncing only through batch bytes (SPEC.md §5–§7).

mod common;

use common::{carried, db_path, exchange, fast_tempdir, join, keys, options, package, send};
use meshlog::{ErrorClass, EventHash, EventStatus, KeyPackage, MemberId, Mesh, Role};

fn roles(mesh: &Mesh) -> Vec<(MemberId, Role)> {
    let roster = mesh.roster();
    roster
        .iter()
        .map(|(id, _)| (*id, roster.role_of(*id).expect("present")))
        .collect()
}

fn expected_roles(mut members: Vec<(u8, Role)>) -> Vec<(MemberId, Role)> {
    let mut out: Vec<(MemberId, Role)> = members
        .drain(..)
        .map(|(n, role)| (keys(n).member_id(), role))
        .collect();
    out.sort();
    out
}

fn status(mesh: &Mesh, hash: EventHash) -> Option<EventStatus> {
    mesh.log()
        .find(|entry| entry.event.hash() == hash)
        .expect("the event is held")
        .status
}

fn secret(mesh: &Mesh, epoch: EventHash) -> [u8; 32] {
    *mesh.epoch_secret(epoch).expect("a recipient").expose()
}

/// found → enable → add two members (each with its own signed package) →
/// promote one → remove the other → refresh; each member reads the secrets
/// of exactly the epochs it was in.
#[test]
fn membership_lifecycle_and_who_reads_which_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "founder.redb");
    let (alice_id, bob_id) = (keys(2).member_id(), keys(3).member_id());

    let mut founder = options(1).create(&path, keys(1), "ops").unwrap();
    assert_eq!(founder.group_name(), "ops");
    assert_eq!(founder.founder(), keys(1).member_id());
    assert!(!founder.is_enabled(), "a new member starts disabled");
    let genesis = founder.current_epoch().expect("the genesis is current");
    assert_eq!(roles(&founder), expected_roles(vec![(1, Role::Owner)]));

    // A disabled member writes nothing but its own flag.
    let refused = founder.add_member(package(2), Role::Member).unwrap_err();
    assert_eq!(refused.class(), ErrorClass::Refusal, "{refused}");
    assert_eq!(
        refused.rejection().map(|r| r.rule.id()),
        Some("F5"),
        "{refused}"
    );
    assert_eq!(founder.len(), 1, "a refused write stores nothing");

    founder.set_enabled(true).unwrap();
    assert!(founder.is_enabled());
    // The package travels as text, as the CLI carries it.
    let alice_package: KeyPackage = package(2).to_string().parse().unwrap();
    assert_eq!(alice_package.member(), alice_id);
    let added_alice = founder.add_member(alice_package, Role::Member).unwrap();
    let added_bob = founder.add_member(package(3), Role::Member).unwrap();
    let promoted = founder.set_role(alice_id, Role::Admin).unwrap();
    let note = founder.append_app("note", b"before the removal").unwrap();
    let removed = founder.remove_member(bob_id).unwrap();
    let refreshed = founder.refresh("weekly").unwrap();

    assert_eq!(founder.current_epoch(), Some(refreshed));
    assert!(!founder.needs_merge());
    assert_eq!(founder.tips(), &[refreshed]);
    assert_eq!(
        roles(&founder),
        expected_roles(vec![(1, Role::Owner), (2, Role::Admin)])
    );
    let epochs = founder.epochs();
    let hashes: Vec<EventHash> = epochs.iter().map(|epoch| epoch.hash).collect();
    assert_eq!(
        hashes,
        vec![
            genesis,
            added_alice,
            added_bob,
            promoted,
            removed,
            refreshed
        ],
        "every rotation, in file order"
    );
    assert!(epochs[0].is_genesis && epochs[1..].iter().all(|e| !e.is_genesis));
    assert!(
        epochs
            .iter()
            .all(|epoch| epoch.applied && epoch.void_changes.is_empty())
    );
    assert_eq!(epochs[5].reason, "weekly");
    assert_eq!(epochs[5].parents, vec![removed]);
    // Each epoch's own roster: bob is in the two epochs from his addition
    // to his removal, and only there.
    for epoch in &epochs {
        let has_bob = epoch.roster.get(bob_id).is_some();
        assert_eq!(
            has_bob,
            epoch.hash == added_bob || epoch.hash == promoted,
            "{}",
            epoch.hash
        );
    }
    assert_eq!(status(&founder, note), Some(EventStatus::Superseded));
    assert_eq!(status(&founder, refreshed), Some(EventStatus::Current));

    let secrets: Vec<[u8; 32]> = hashes.iter().map(|h| secret(&founder, *h)).collect();
    for (i, a) in secrets.iter().enumerate() {
        for b in &secrets[i + 1..] {
            assert_ne!(a, b, "every epoch has its own secret");
        }
    }
    let Ok((current, current_secret)) = founder.current_secret() else {
        panic!("the founder reads the current secret")
    };
    assert_eq!(current, refreshed);
    assert_eq!(current_secret.expose(), &secrets[5]);

    // Bob, on his own file, joined after his removal: he recovers the
    // epochs he was in and no later one.
    let mut bob = join(&founder, &db_path(&dir, "bob.redb"), 3);
    assert_eq!(bob.digest(), founder.digest());
    assert_eq!(secret(&bob, added_bob), secrets[2]);
    assert_eq!(secret(&bob, promoted), secrets[3]);
    for epoch in [genesis, added_alice, removed, refreshed] {
        let error = common::refused(bob.epoch_secret(epoch));
        assert!(
            matches!(error, meshlog::Error::Secret(_)),
            "{epoch}: {error}"
        );
        assert_eq!(error.class(), ErrorClass::Refusal, "{error}");
    }
    assert!(bob.current_secret().is_err());
    // Nor may he write: no epoch he may write under holds him.
    let (len, digest) = (bob.len(), bob.digest());
    let error = bob.append_app("note", b"still here?").unwrap_err();
    assert!(
        matches!(error, meshlog::Error::NotInRoster { member } if member == bob_id),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::Refusal);
    assert_eq!((bob.len(), bob.digest()), (len, digest));

    // Alice reads every epoch from her addition on, and as an admin may
    // rotate once enabled; the founder takes her rotation as current.
    let mut alice = join(&founder, &db_path(&dir, "alice.redb"), 2);
    assert!(alice.epoch_secret(genesis).is_err());
    for (i, epoch) in hashes.iter().enumerate().skip(1) {
        assert_eq!(secret(&alice, *epoch), secrets[i]);
    }
    alice.set_enabled(true).unwrap();
    let hers = alice.refresh("alice's turn").unwrap();
    assert_eq!(send(&alice, &mut founder).added, 2);
    assert_eq!(founder.current_epoch(), Some(hers));
    assert_eq!(secret(&founder, hers), secret(&alice, hers));
    assert_eq!(
        founder.epoch(hers).map(|e| e.author),
        Some(alice_id),
        "the epoch names its author"
    );

    // Reopening verifies everything and rebuilds the same state.
    let digest = founder.digest();
    drop(founder);
    let audit = Mesh::open_read_only(&path).unwrap();
    assert_eq!(audit.digest(), digest);
    assert_eq!(audit.current_epoch(), Some(hers));
}

/// Founder (owner) and a second admin, each on its own file, both enabled
/// and holding the same events.
fn owner_and_admin(dir: &tempfile::TempDir) -> (Mesh, Mesh) {
    let mut founder = options(1)
        .create(db_path(dir, "founder.redb"), keys(1), "peers")
        .unwrap();
    founder.set_enabled(true).unwrap();
    founder.add_member(package(2), Role::Admin).unwrap();
    let mut admin = join(&founder, &db_path(dir, "admin.redb"), 2);
    admin.set_enabled(true).unwrap();
    send(&admin, &mut founder);
    assert_eq!(admin.digest(), founder.digest());
    (founder, admin)
}

#[test]
fn two_admins_rotating_concurrently_need_a_merge_and_converge() {
    let dir = tempfile::tempdir().unwrap();
    let (mut founder, mut admin) = owner_and_admin(&dir);
    let ours = founder.add_member(package(5), Role::Member).unwrap();
    let theirs = admin.add_member(package(6), Role::Member).unwrap();

    let into_founder = send(&admin, &mut founder);
    assert_eq!(into_founder.added, 1);
    assert!(into_founder.needs_merge);
    let into_admin = send(&founder, &mut admin);
    assert_eq!(into_admin.added, 1);
    assert!(into_admin.needs_merge);

    let mut tips = vec![ours, theirs];
    tips.sort();
    for mesh in [&founder, &admin] {
        assert!(mesh.needs_merge());
        assert_eq!(mesh.current_epoch(), None);
        assert_eq!(mesh.tips(), tips.as_slice());
        // Both additions apply: R* holds both new members, which neither
        // tip's own roster does, so neither tip is current; both tips'
        // members lie within R*, so the smaller is the writer epoch.
        assert_eq!(
            roles(mesh),
            expected_roles(vec![
                (1, Role::Owner),
                (2, Role::Admin),
                (5, Role::Member),
                (6, Role::Member)
            ])
        );
        assert_eq!(mesh.writer_epoch(), Some(tips[0]));
    }
    assert_eq!(
        founder.digest(),
        admin.digest(),
        "the same set, the same state"
    );

    // Apps still go out while the merge is pending, under the writer epoch.
    let pending = admin.append_app("note", b"during the fork").unwrap();
    let merge = founder.merge().unwrap().expect("a merge is needed");
    assert_eq!(founder.epoch(merge).unwrap().parents, tips);
    exchange(&mut founder, &mut admin);
    for mesh in [&founder, &admin] {
        assert!(!mesh.needs_merge());
        assert_eq!(mesh.current_epoch(), Some(merge));
        assert_eq!(mesh.tips(), &[merge]);
        assert_eq!(status(mesh, pending), Some(EventStatus::Superseded));
    }
    assert_eq!(founder.digest(), admin.digest());
    assert_eq!(admin.merge().unwrap(), None, "nothing left to merge");
    assert_eq!(secret(&founder, merge), secret(&admin, merge));

    // Both new members read the merged epoch.
    for n in [5, 6] {
        let peer = join(&founder, &db_path(&dir, &format!("m{n}.redb")), n);
        assert_eq!(secret(&peer, merge), secret(&founder, merge), "member {n}");
    }

    let digest = founder.digest();
    drop((founder, admin));
    for name in ["founder.redb", "admin.redb"] {
        let reopened = Mesh::open_read_only(db_path(&dir, name)).unwrap();
        assert_eq!(reopened.digest(), digest, "{name}");
    }
}

/// SPEC.md §5.6 P2: an admin's rotation concurrent with an owner's
/// demotion of that admin is void, so the member it removed stays.
#[test]
fn an_owner_demoting_an_admin_voids_that_admins_concurrent_removal() {
    let dir = tempfile::tempdir().unwrap();
    let (mut founder, mut admin) = owner_and_admin(&dir);
    let (admin_id, troll_id) = (keys(2).member_id(), keys(3).member_id());
    founder.add_member(package(3), Role::Member).unwrap();
    send(&founder, &mut admin);

    let removal = admin.remove_member(troll_id).unwrap();
    assert!(admin.roster().get(troll_id).is_none(), "before the sync");
    let demotion = founder.set_role(admin_id, Role::Member).unwrap();
    exchange(&mut founder, &mut admin);

    // The void rotation is left out where the demotion is known (SPEC.md
    // §6.4): the founder checks it and does not take it; the admin's own
    // copy keeps it, left out of its state too.
    assert!(founder.event(removal).is_none());
    assert!(
        admin
            .log()
            .any(|entry| entry.event.hash() == removal && entry.left_out)
    );
    let void = admin.epoch(removal).unwrap();
    assert!(!void.applied, "the demoted admin's rotation is void");
    for mesh in [&founder, &admin] {
        assert!(mesh.epoch(demotion).unwrap().applied);
        assert_eq!(
            roles(mesh),
            expected_roles(vec![(1, Role::Owner), (2, Role::Member), (3, Role::Member)]),
            "the troll stays, and the admin is a member"
        );
        assert_eq!(mesh.current_epoch(), Some(demotion));
        assert!(!mesh.needs_merge(), "a void rotation is no tip");
    }
    assert_eq!(status(&admin, removal), Some(EventStatus::VoidEpoch));
    assert_eq!(founder.digest(), admin.digest());

    // Once the admin writes on (a note, as the member it now is), its
    // void rotation is named, and travels with the note.
    let note = admin.append_app("note", b"demoted").unwrap();
    exchange(&mut founder, &mut admin);
    assert!(founder.event(removal).is_some() && founder.event(note).is_some());
    assert_eq!(status(&founder, removal), Some(EventStatus::VoidEpoch));
    assert_eq!(founder.digest(), admin.digest());

    // The former admin can no longer rotate; nothing is written.
    let (len, digest) = (admin.len(), admin.digest());
    let error = admin.refresh("still in charge?").unwrap_err();
    assert_eq!(error.class(), ErrorClass::Refusal, "{error}");
    assert_eq!(
        error.rejection().map(|r| r.rule.id()),
        Some("E7"),
        "{error}"
    );
    assert_eq!((admin.len(), admin.digest()), (len, digest));
}

#[test]
fn members_writing_on_two_files_concurrently_converge() {
    let dir = tempfile::tempdir().unwrap();
    let mut founder = options(1)
        .create(db_path(&dir, "founder.redb"), keys(1), "chat")
        .unwrap();
    founder.set_enabled(true).unwrap();
    founder.add_member(package(2), Role::Member).unwrap();
    let mut member = join(&founder, &db_path(&dir, "member.redb"), 2);
    member.set_enabled(true).unwrap();

    let mut written = Vec::new();
    for i in 0..5u8 {
        written.push(founder.append_app("note", &[b'f', i]).unwrap());
        written.push(member.append_app("note", &[b'm', i]).unwrap());
    }
    exchange(&mut founder, &mut member);
    assert_eq!(founder.digest(), member.digest());
    assert_eq!(founder.len(), member.len());
    for hash in &written {
        for mesh in [&founder, &member] {
            let event = mesh.event(*hash).expect("every write is everywhere");
            assert_eq!(event.hash(), *hash);
            assert_eq!(status(mesh, *hash), Some(EventStatus::Current));
        }
    }
    assert!(founder.equivocations().is_empty());
    assert!(!founder.needs_merge(), "app events never need a merge");
    assert_eq!(
        founder.is_member_enabled(keys(2).member_id()),
        member.is_enabled()
    );
}

/// One author writing two events at one position of its feed (here, from
/// a restored copy of its own file) is an equivocation: both are kept, as
/// evidence, and every peer reports it.
#[test]
fn an_author_writing_on_two_copies_of_its_file_is_kept_as_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "founder.redb");
    let mut founder = options(1).create(&path, keys(1), "evidence").unwrap();
    founder.set_enabled(true).unwrap();
    let copy = db_path(&dir, "copy.redb");
    founder.backup(&copy).unwrap();
    let mut twin = options(9).open(&copy, keys(1)).unwrap();
    assert_eq!(twin.digest(), founder.digest());

    let one = founder.append_app("note", b"one story").unwrap();
    let two = twin.append_app("note", b"another story").unwrap();
    let seq = founder.event(one).unwrap().event().seq;
    assert_eq!(twin.event(two).unwrap().event().seq, seq);
    assert!(founder.equivocations().is_empty());

    assert_eq!(
        send(&twin, &mut founder).added,
        1,
        "the other story is kept"
    );
    let evidence = founder.equivocations();
    assert_eq!(evidence.len(), 1);
    let mut expected = vec![one, two];
    expected.sort();
    assert_eq!(evidence[0].events, expected, "both, in hash order");
    assert_eq!(
        (evidence[0].author, evidence[0].seq),
        (keys(1).member_id(), seq)
    );
    assert!(founder.event(one).is_some() && founder.event(two).is_some());

    send(&founder, &mut twin);
    assert_eq!(twin.equivocations(), evidence, "every peer sees the same");
    assert_eq!(twin.digest(), founder.digest());

    // The evidence survives reopening, re-verified.
    let digest = founder.digest();
    drop(founder);
    let reopened = Mesh::open_read_only(&path).unwrap();
    assert_eq!(reopened.equivocations(), evidence);
    assert_eq!(reopened.digest(), digest);

    // The same stories reach a third peer through one batch.
    let third = options(3)
        .join(
            db_path(&dir, "third.redb"),
            keys(3),
            &carried(&reopened.export_all()),
        )
        .unwrap();
    assert_eq!(third.equivocations(), evidence);
}

/// Issue 23 §1–§2, through files: admin j keeps a backup from before the
/// owner demotes it, and from fresh copies of it adds a puppet as an admin
/// twenty times. The owner, who knows of the demotion, checks each and
/// stores none (SPEC.md §6.4), as it would a removed admin's; its next
/// rotation descends from the demotion, is current, and its secret goes to
/// exactly `R*`, neither the puppet nor a member it removed.
#[test]
fn a_demoted_admins_backdated_puppets_cost_the_owner_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut founder, mut admin) = owner_and_admin(&dir);
    let (j, x, p) = (keys(2).member_id(), keys(3).member_id(), 9);
    founder.add_member(package(3), Role::Member).unwrap();
    send(&founder, &mut admin);
    let old = db_path(&dir, "old.redb");
    admin.backup(&old).unwrap();
    drop(admin);
    let demotion = founder.set_role(j, Role::Member).unwrap();
    let (len, everything) = (founder.len(), founder.export_all().to_bytes().len());

    for n in 0..20u8 {
        let copy_path = db_path(&dir, &format!("copy{n}.redb"));
        std::fs::copy(&old, &copy_path).unwrap();
        let mut copy = meshlog::MeshOptions::new()
            .insecure_seed([100 + n; 32])
            .open(&copy_path, keys(2))
            .unwrap();
        let backdated = copy.add_member(package(p), Role::Admin).unwrap();
        let taken = send(&copy, &mut founder);
        assert_eq!((taken.added, taken.left_out), (0, 1), "copy {n}");
        assert!(founder.event(backdated).is_none());
    }
    assert_eq!(founder.len(), len);
    assert_eq!(founder.export_all().to_bytes().len(), everything);
    assert_eq!(founder.current_epoch(), Some(demotion));

    let removal = founder.remove_member(x).unwrap();
    let epoch = founder.epoch(removal).unwrap();
    assert_eq!(epoch.parents, vec![demotion]);
    assert_eq!(founder.current_epoch(), Some(removal));
    assert_eq!(&epoch.roster, founder.roster());
    assert!(!epoch.roster.contains(keys(p).member_id()) && !epoch.roster.contains(x));
    assert_eq!(
        roles(&founder),
        expected_roles(vec![(1, Role::Owner), (2, Role::Member)])
    );
}

/// SPEC.md §5.1: seventeen admins refresh at once, so the owner holds more
/// tips than one rotation names. A change waits for the merge (refused,
/// nothing written); the merge step names sixteen, and the change then
/// names every tip.
#[test]
fn more_tips_than_one_rotation_names_merge_in_steps_before_a_change() {
    let dir = fast_tempdir();
    let mut founder = options(1)
        .create(db_path(&dir, "founder.redb"), keys(1), "wide")
        .unwrap();
    founder.set_enabled(true).unwrap();
    let admins: Vec<u8> = (10..27).collect();
    for &n in &admins {
        founder.add_member(package(n), Role::Admin).unwrap();
    }
    let mut peers: Vec<Mesh> = admins
        .iter()
        .map(|&n| {
            let mut peer = join(&founder, &db_path(&dir, &format!("a{n}.redb")), n);
            peer.set_enabled(true).unwrap();
            peer.refresh("at once").unwrap();
            peer
        })
        .collect();
    for peer in &peers {
        send(peer, &mut founder);
    }
    assert_eq!(founder.tips().len(), admins.len());
    assert!(founder.needs_merge() || founder.current_epoch().is_some());

    let (len, digest) = (founder.len(), founder.digest());
    let refused = founder.add_member(package(3), Role::Member).unwrap_err();
    assert!(
        matches!(refused, meshlog::Error::MergeFirst { tips: 17 }),
        "{refused}"
    );
    assert_eq!(refused.class(), ErrorClass::Refusal);
    assert_eq!((founder.len(), founder.digest()), (len, digest));

    // One step of sixteen leaves two tips, both based on `R*`: no merge is
    // needed, and a rotation names both.
    let merge = founder.merge().unwrap().expect("merged");
    assert_eq!(founder.len(), len + 1, "one step");
    assert_eq!(founder.tips().len(), 2);
    assert!(founder.tips().contains(&merge) && !founder.needs_merge());
    assert_eq!(founder.merge().unwrap(), None);
    let tips = founder.tips().to_vec();
    let added = founder.add_member(package(3), Role::Member).unwrap();
    assert_eq!(founder.epoch(added).unwrap().parents, tips);
    assert_eq!(founder.tips(), &[added]);
    assert_eq!(founder.current_epoch(), Some(added));
    for peer in &mut peers {
        send(&founder, peer);
        assert_eq!(peer.digest(), founder.digest());
    }
}
