use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::event::Change;
use crate::feeds::Insert;
use crate::graph::Role;

fn keys(n: u8) -> LocalKeys {
    LocalKeys::from_secret_bytes(&[n + 1; 32], &[n + 101; 32])
}

fn add(member: &LocalKeys, role: Role) -> Change {
    Change::Add {
        package: SignedPackage::sign(member, 1),
        role,
    }
}

fn sorted(mut changes: Vec<Change>) -> Vec<Change> {
    changes.sort_by_key(Change::member);
    changes
}

/// Copies into `into` every record `from` holds and it lacks, each once its
/// dependencies are in. Every one must be accepted.
fn sync(into: &mut Ledger, from: &Ledger) -> usize {
    let mut pending: Vec<SignedEvent> = from
        .records()
        .filter(|r| !into.contains(r.hash()))
        .map(std::borrow::Cow::into_owned)
        .collect();
    pending.sort_by_key(SignedEvent::hash);
    let mut moved = 0;
    while !pending.is_empty() {
        let before = pending.len();
        let mut waiting = Vec::new();
        for record in pending {
            match into.insert(record.clone()) {
                Ok(Insert::New | Insert::Known) => moved += 1,
                Ok(Insert::Missing(_)) => waiting.push(record),
                Err(rejection) => panic!("sync refused {rejection}"),
            }
        }
        assert!(waiting.len() < before, "records wait for nothing held");
        pending = waiting;
    }
    moved
}

fn joined(from: &Ledger) -> Ledger {
    let genesis = from
        .records()
        .find(|r| r.hash() == from.group().into_event_hash())
        .map(std::borrow::Cow::into_owned)
        .unwrap();
    let mut ledger = Ledger::found(genesis).unwrap();
    sync(&mut ledger, from);
    ledger
}

trait IntoEventHash {
    fn into_event_hash(self) -> EventHash;
}

impl IntoEventHash for GroupId {
    fn into_event_hash(self) -> EventHash {
        EventHash::from_bytes(*self.as_bytes())
    }
}

fn digest(ledger: &Ledger) -> crate::ids::StateDigest {
    ledger.digest()
}

fn enable(ledger: &mut Ledger, member: &LocalKeys, epoch: EventHash) -> EventHash {
    ledger
        .write(
            member,
            1,
            Body::SetEnabled {
                epoch,
                enabled: true,
            },
        )
        .unwrap()
}

fn app(ledger: &mut Ledger, member: &LocalKeys, epoch: EventHash, text: &str) -> EventHash {
    ledger
        .write(
            member,
            2,
            Body::App {
                epoch,
                kind: "note".into(),
                payload: text.as_bytes().to_vec(),
            },
        )
        .unwrap()
}

/// F founds, enables, and adds admin carol and member bob (R1).
fn founded(rng: &mut StdRng) -> (Ledger, EventHash) {
    let (f, carol, bob) = (keys(0), keys(1), keys(2));
    let (mut ledger, genesis) = Ledger::create(&f, "ops", 0, rng).unwrap();
    enable(&mut ledger, &f, genesis);
    let r1 = ledger
        .rotate(
            &f,
            sorted(vec![add(&carol, Role::Admin), add(&bob, Role::Member)]),
            "team",
            1,
            rng,
        )
        .unwrap();
    (ledger, r1)
}

#[test]
fn concurrent_writers_converge_and_read_one_secret() {
    let mut rng = StdRng::seed_from_u64(1);
    let (f, bob) = (keys(0), keys(2));
    let (mut founder, r1) = founded(&mut rng);
    let mut peer = joined(&founder);
    assert_eq!(digest(&peer), digest(&founder));

    // Both write at once: bob enables and posts, F posts. v2 forked here.
    enable(&mut peer, &bob, r1);
    app(&mut peer, &bob, r1, "from bob");
    app(&mut founder, &f, r1, "from F");
    assert_ne!(digest(&peer), digest(&founder));
    assert_eq!(sync(&mut founder, &peer), 2);
    assert_eq!(sync(&mut peer, &founder), 1);
    assert_eq!(digest(&peer), digest(&founder));
    assert_eq!(founder.state().len(), 6);
    assert!(founder.state().equivocations().is_empty());

    let theirs = peer.epoch_secret(r1, &bob).unwrap();
    let ours = founder.epoch_secret(r1, &f).unwrap();
    assert_eq!(theirs.expose(), ours.expose());
    let outsider = keys(9);
    assert_eq!(
        founder.epoch_secret(r1, &outsider).err(),
        Some(SecretError::NotARecipient {
            epoch: r1,
            member: outsider.member_id()
        })
    );
}

#[test]
fn concurrent_rotations_merge_and_only_the_roster_reads_the_secret() {
    let mut rng = StdRng::seed_from_u64(2);
    let (f, carol, bob, dave, erin) = (keys(0), keys(1), keys(2), keys(3), keys(4));
    let (mut founder, _) = founded(&mut rng);
    let r2 = founder
        .rotate(&f, vec![add(&dave, Role::Member)], "dave", 2, &mut rng)
        .unwrap();
    let mut admin = joined(&founder);
    enable(&mut admin, &carol, r2);

    // Apart: carol removes dave, F adds erin.
    let removal = admin
        .rotate(
            &carol,
            vec![Change::Remove {
                member: dave.member_id(),
            }],
            "dave asked to leave",
            3,
            &mut rng,
        )
        .unwrap();
    let addition = founder
        .rotate(&f, vec![add(&erin, Role::Member)], "erin", 3, &mut rng)
        .unwrap();
    sync(&mut founder, &admin);
    sync(&mut admin, &founder);
    assert_eq!(digest(&founder), digest(&admin));
    let resolution = founder.state().graph().resolve();
    assert!(resolution.needs_merge());
    assert_eq!(resolution.roster.get(dave.member_id()), None);
    assert!(resolution.roster.get(erin.member_id()).is_some());
    // Writers use the removal: dave cannot read what is written meanwhile.
    assert_eq!(resolution.writer, Some(removal));
    assert!(founder.epoch_secret(removal, &dave).is_err());
    assert!(founder.epoch_secret(addition, &dave).is_ok());

    let merge = founder.rotate(&f, vec![], "merge", 4, &mut rng).unwrap();
    sync(&mut admin, &founder);
    let resolution = admin.state().graph().resolve();
    assert_eq!(resolution.current, Some(merge));
    let secret = founder.epoch_secret(merge, &f).unwrap();
    for member in [&carol, &bob, &erin] {
        assert_eq!(
            admin.epoch_secret(merge, member).unwrap().expose(),
            secret.expose()
        );
    }
    assert!(matches!(
        admin.epoch_secret(merge, &dave),
        Err(SecretError::NotARecipient { .. })
    ));
}

#[test]
fn a_forged_signature_is_refused_by_name() {
    let mut rng = StdRng::seed_from_u64(3);
    let (mut founder, r1) = founded(&mut rng);
    let (seq, prev, _) = founder.state().next_position(keys(0).member_id());
    let forged = SignedEvent::sign(
        Event {
            version: VERSION,
            group: founder.group(),
            author: keys(0).member_id(),
            seq,
            prev,
            time: 5,
            body: Body::App {
                epoch: r1,
                kind: "note".into(),
                payload: b"not from F".to_vec(),
            },
        },
        &keys(2),
    );
    let hash = forged.hash();
    let rejection = founder.verify(forged).err().unwrap();
    assert_eq!(*rejection.rule, Rule::BadSignature(keys(0).member_id()));
    assert_eq!(rejection.hash, hash);
    assert_eq!(rejection.seq, seq);
}

/// An event made here is not verified, but the key that will sign it must
/// be its author's: a key file whose signing key is not the one the
/// mesh holds for its member is refused, as a forged signature would be.
#[test]
fn an_event_made_here_must_be_signed_by_its_authors_key() {
    let mut rng = StdRng::seed_from_u64(4);
    let (mut founder, r1) = founded(&mut rng);
    let body = Body::App {
        epoch: r1,
        kind: "note".into(),
        payload: b"mine".to_vec(),
    };
    let made = founder.make_next(&keys(0), 5, body);
    // The same event, claimed as signed by bob's key.
    let claimed = MadeHere {
        unsigned: made.unsigned.clone(),
        signer: keys(2).public().signing,
        void_changes: Vec::new(),
    };
    let hash = made.hash();
    assert_eq!(claimed.hash(), hash);
    let rejection = founder.verify_made_here(claimed).err().unwrap();
    assert_eq!(*rejection.rule, Rule::BadSignature(keys(0).member_id()));
    assert_eq!(rejection.hash, hash);
    assert!(!founder.contains(hash));
    // Its real signer passes, and the event is taken, signed.
    let again = MadeHere {
        unsigned: made.unsigned.clone(),
        signer: made.signer,
        void_changes: Vec::new(),
    };
    // Only the key the pipeline compared may sign it.
    match founder.verify_made_here(again).unwrap() {
        Verdict::Verified(verified) => {
            let refused = verified.finish(&keys(2)).err().unwrap();
            assert_eq!(*refused.rule, Rule::BadSignature(keys(0).member_id()));
        }
        _ => panic!("a fresh event made here must verify"),
    }
    assert!(!founder.contains(hash));
    match founder.verify_made_here(made).unwrap() {
        Verdict::Verified(verified) => founder.commit(verified.finish(&keys(0)).unwrap()),
        _ => panic!("a fresh event made here must verify"),
    }
    assert!(founder.contains(hash));
    assert!(
        founder
            .record(hash)
            .unwrap()
            .is_signed_by(&keys(0).public().signing)
    );
}

#[test]
fn an_admin_cannot_wrap_a_members_secret_to_its_own_key() {
    let mut rng = StdRng::seed_from_u64(4);
    let (f, carol, dave) = (keys(0), keys(1), keys(3));
    let (founder, r1) = founded(&mut rng);
    let mut admin = joined(&founder);
    enable(&mut admin, &carol, r1);
    let mut substituted = SignedPackage::sign(&dave, 1);
    substituted.keys.dh = carol.public().dh;
    let rejection = admin
        .rotate(
            &carol,
            vec![Change::Add {
                package: substituted,
                role: Role::Member,
            }],
            "dave",
            3,
            &mut rng,
        )
        .err()
        .unwrap();
    let Error::Refused(rejection) = rejection else {
        panic!("refused by the rules, not {rejection}");
    };
    assert_eq!(
        *rejection.rule,
        Rule::Package(PackageError::BadSignature(dave.member_id()))
    );
    let _ = f;
}

#[test]
fn an_envelope_must_reach_exactly_the_own_roster() {
    let mut rng = StdRng::seed_from_u64(5);
    let f = keys(0);
    let (mut founder, _) = founded(&mut rng);
    let (seq, prev, _) = founder.state().next_position(f.member_id());
    // A refresh whose secret reaches the founder only.
    let secret = EpochSecret::generate(&mut rng);
    let envelope = envelope::seal(
        &mut rng,
        &secret,
        rotation_binding(founder.group(), f.member_id(), seq, prev),
        &[(f.member_id(), f.public().dh)],
    )
    .unwrap();
    let refresh = SignedEvent::sign(
        Event {
            version: VERSION,
            group: founder.group(),
            author: f.member_id(),
            seq,
            prev,
            time: 9,
            body: Body::Rotate {
                parents: founder.state().graph().frontier(),
                changes: vec![],
                envelope,
                reason: String::new(),
            },
        },
        &f,
    );
    let rejection = founder.verify(refresh).err().unwrap();
    // Roster order is member order; the founder's copy is where it is.
    assert!(matches!(*rejection.rule, Rule::EnvelopeRecipients(_)));
}

#[test]
fn another_group_and_oversized_fields_are_refused() {
    let mut rng = StdRng::seed_from_u64(6);
    let f = keys(0);
    let (mut founder, r1) = founded(&mut rng);
    let (other, _) = Ledger::create(&f, "elsewhere", 0, &mut rng).unwrap();
    let (seq, prev, _) = founder.state().next_position(f.member_id());
    let event = |group, kind: &str| {
        SignedEvent::sign(
            Event {
                version: VERSION,
                group,
                author: f.member_id(),
                seq,
                prev,
                time: 9,
                body: Body::App {
                    epoch: r1,
                    kind: kind.into(),
                    payload: vec![],
                },
            },
            &f,
        )
    };
    assert_eq!(
        founder
            .verify(event(other.group(), "note"))
            .err()
            .unwrap()
            .rule
            .as_ref()
            .clone(),
        Rule::WrongGroup {
            expected: founder.group(),
            found: other.group()
        }
    );
    assert!(matches!(
        founder
            .verify(event(founder.group(), ""))
            .err()
            .unwrap()
            .rule
            .as_ref()
            .clone(),
        Rule::Limit {
            field: "app kind",
            ..
        }
    ));
    assert!(matches!(
        founder.verify(event(founder.group(), "note")),
        Ok(Verdict::Verified(_))
    ));
}

#[test]
fn a_genesis_is_checked_whole() {
    let mut rng = StdRng::seed_from_u64(7);
    let (f, bob) = (keys(0), keys(2));
    let (founder, genesis) = Ledger::create(&f, "ops", 0, &mut rng).unwrap();
    let record = founder.records().find(|r| r.hash() == genesis).unwrap();
    let mut event = record.event().clone();
    // Signed by another key than the founder's.
    assert_eq!(
        Ledger::found(SignedEvent::sign(event.clone(), &bob))
            .err()
            .unwrap()
            .rule
            .as_ref()
            .clone(),
        Rule::BadSignature(f.member_id())
    );
    event.seq = 1;
    assert_eq!(
        Ledger::found(SignedEvent::sign(event, &f))
            .err()
            .unwrap()
            .rule
            .as_ref()
            .clone(),
        Rule::BadGenesis
    );
    assert_eq!(
        founder.epoch_secret(genesis, &f).unwrap().expose().len(),
        32
    );
}

#[test]
fn undecodable_records_are_refused_by_name() {
    let mut rng = StdRng::seed_from_u64(8);
    let f = keys(0);
    let (mut founder, r1) = founded(&mut rng);
    let mut other = joined(&founder);
    let hash = app(&mut other, &f, r1, "hello");
    let record = other
        .records()
        .find(|r| r.hash() == hash)
        .unwrap()
        .to_record();
    let mut trailing = record.clone();
    trailing.push(0);
    let rejection = founder.verify_record(&trailing).err().unwrap();
    assert_eq!(
        *rejection.rule,
        Rule::Malformed(DecodeError::TrailingBytes(1))
    );
    let rejection = founder.verify_record(&record[..10]).err().unwrap();
    assert_eq!(
        *rejection.rule,
        Rule::Malformed(DecodeError::ShortRecord(10))
    );
    assert!(matches!(
        founder.verify_record(&record),
        Ok(Verdict::Verified(_))
    ));
}

#[test]
fn take_all_names_what_waits_for_an_event_nobody_sent() {
    let mut rng = StdRng::seed_from_u64(10);
    let f = keys(0);
    let (founder, r1) = founded(&mut rng);
    let mut other = founder.clone();
    app(&mut other, &f, r1, "one");
    let second = app(&mut other, &f, r1, "two");
    let record = other.record(second).unwrap().to_record();
    let mut copy = founder.clone();
    match copy.take_all(&[record]) {
        Err(Error::Incomplete {
            count: 1, waiting, ..
        }) => assert_eq!(waiting, second),
        other => panic!("expected the event to wait, got {:?}", other.err()),
    }
    // With what it waits for, in any order, both go in.
    let mut both: Vec<Vec<u8>> = other
        .records()
        .skip(founder.len())
        .map(|record| record.to_record())
        .collect();
    both.reverse();
    let mut copy = founder.clone();
    assert_eq!(copy.take_all(&both).unwrap(), 0);
    assert_eq!(copy.digest(), other.digest());
}

/// SPEC.md §6.4: a fired admin's void rotations are left out where the
/// firing is known, unless an admin still present built on them before it
/// knew: then they stay, with everything they name, and travel with what
/// names them.
#[test]
fn left_out_rotations_stay_when_a_present_admin_built_on_them() {
    let mut rng = StdRng::seed_from_u64(9);
    let (f, carol, dave) = (keys(0), keys(1), keys(3));
    let (mut founder, _) = founded(&mut rng);
    let r2 = founder
        .rotate(&f, vec![add(&dave, Role::Admin)], "dave", 2, &mut rng)
        .unwrap();
    let mut fired = joined(&founder);
    let mut other = joined(&founder);
    enable(&mut fired, &carol, r2);
    enable(&mut other, &dave, r2);
    // Apart: carol refreshes nine times while F fires her.
    let refreshes: Vec<EventHash> = (0..9)
        .map(|n| {
            fired
                .rotate(&carol, vec![], "apart", 3 + n, &mut rng)
                .unwrap()
        })
        .collect();
    founder
        .rotate(
            &f,
            vec![Change::Remove {
                member: carol.member_id(),
            }],
            "fired",
            3,
            &mut rng,
        )
        .unwrap();
    let lacking = |into: &Ledger, from: &Ledger| -> Vec<Vec<u8>> {
        from.records()
            .filter(|r| !into.contains(r.hash()))
            .map(|record| record.to_record())
            .collect()
    };

    // F takes carol's feed: her flag, written on an applied epoch, is
    // taken; her refreshes are checked, and not taken.
    let (taken, left_out) = founder
        .take_batch_leaving_out(&lacking(&founder, &fired))
        .unwrap();
    assert_eq!((left_out.len(), taken.known), (9, 0));
    assert!(refreshes.iter().all(|r| !founder.contains(*r)));
    assert!(founder.left_out().is_empty());

    // Dave took carol's refreshes before he heard of the firing, and
    // refreshed on them: his rotation names the last.
    sync(&mut other, &fired);
    let on_top = other
        .rotate(&dave, vec![], "dave's refresh", 20, &mut rng)
        .unwrap();
    sync(&mut other, &founder);
    assert!(other.left_out().is_empty(), "dave's rotation needs them");
    // F takes dave's rotation, and carol's refreshes with it.
    let (_, left_out) = founder
        .take_batch_leaving_out(&lacking(&founder, &other))
        .unwrap();
    assert!(left_out.is_empty());
    assert!(refreshes.iter().all(|r| founder.contains(*r)) && founder.contains(on_top));
    assert_eq!(digest(&founder), digest(&other));
}

/// Issue 23 §1: admin j keeps a copy from before F demotes it, and on fresh
/// copies of that old state writes `backdated` rotations adding its puppet
/// p, keeping those whose hashes sort below F's demotion. Each is accepted
/// and void (P5), and j, still a member, is not left out. F's next
/// rotations must still descend from the demotion, wrap nothing to p nor to
/// the member F removed, and become current, so that members write.
fn a_demoted_admin_widens_the_frontier(backdated: usize) {
    let mut rng = StdRng::seed_from_u64(23 + backdated as u64);
    let (f, j, bob, x, p) = (keys(0), keys(1), keys(2), keys(3), keys(7));
    let (mut founder, r1) = founded(&mut rng);
    // R1 made carol (keys(1)) an admin: she is j here.
    let rx = founder
        .rotate(&f, vec![add(&x, Role::Member)], "x", 2, &mut rng)
        .unwrap();
    enable(&mut founder, &j, rx);
    let old = joined(&founder);
    let demotion = founder
        .rotate(
            &f,
            vec![Change::SetRole {
                member: j.member_id(),
                role: Role::Member,
            }],
            "demote j",
            3,
            &mut rng,
        )
        .unwrap();
    let mut kept = 0;
    let mut tries: u64 = 0;
    while kept < backdated {
        tries += 1;
        assert!(
            tries < 100 * backdated as u64,
            "no hash sorted below the demotion"
        );
        let mut copy = old.clone();
        let rotation = copy
            .rotate(&j, vec![add(&p, Role::Admin)], "puppet", tries, &mut rng)
            .unwrap();
        if rotation < demotion {
            sync(&mut founder, &copy);
            kept += 1;
        }
    }
    assert_eq!(founder.resolution().tips, vec![demotion]);
    // The graph holds them all (this sync takes every event), and they are
    // left out (SPEC.md §6.4): both keep them from the parents.
    assert_eq!(founder.state().graph().frontier().len(), backdated + 1);
    assert_eq!(
        founder.state().graph().frontier_without(founder.left_out()),
        vec![demotion]
    );

    // F refreshes, then removes x: each rotation descends from the
    // demotion, reaches neither p nor (once removed) x, and is current, its
    // own roster `R*`.
    let mut made = Vec::new();
    for (time, changes, outsiders) in [
        (10, vec![], vec![&p]),
        (
            11,
            vec![Change::Remove {
                member: x.member_id(),
            }],
            vec![&p, &x],
        ),
    ] {
        let rotation = founder.rotate(&f, changes, "F", time, &mut rng).unwrap();
        let graph = founder.state().graph();
        assert!(graph.is_ancestor(demotion, rotation));
        assert_eq!(
            graph.own_roster(rotation),
            Some(&founder.resolution().roster)
        );
        assert_eq!(founder.resolution().current, Some(rotation));
        for outsider in outsiders {
            assert!(
                !graph
                    .own_roster(rotation)
                    .unwrap()
                    .contains(outsider.member_id())
            );
            assert!(matches!(
                founder.epoch_secret(rotation, outsider),
                Err(SecretError::NotARecipient { .. })
            ));
        }
        made.push(rotation);
    }
    let removal = made[1];
    assert_eq!(
        founder.resolution().roster.role_of(j.member_id()),
        Some(Role::Member)
    );

    // Members write under it: bob, on a copy that holds everything.
    let mut member = joined(&founder);
    assert_eq!(
        crate::mesh::epoch_to_write(&member, bob.member_id()),
        Some(removal)
    );
    enable(&mut member, &bob, r1);
    app(&mut member, &bob, removal, "still here");
    assert_eq!(sync(&mut founder, &member), 2);
}

#[test]
fn a_demoted_admins_16_backdated_rotations_do_not_widen_the_owners_frontier() {
    a_demoted_admin_widens_the_frontier(16);
}

#[test]
fn a_demoted_admins_17_backdated_rotations_do_not_widen_the_owners_frontier() {
    a_demoted_admin_widens_the_frontier(17);
}

#[test]
fn a_demoted_admins_64_backdated_rotations_do_not_widen_the_owners_frontier() {
    a_demoted_admin_widens_the_frontier(64);
}

/// Issue 23 §2: a demoted admin's backdated rotations, void (A2), cost a
/// peer that knows of the demotion their checks and no storage, as a
/// removed admin's do (SPEC.md §6.4). Its rotation on its own feed's main
/// line, which it then wrote on, stays.
#[test]
fn a_demoted_admins_backdated_rotations_are_left_out_as_a_removed_ones_are() {
    let mut rng = StdRng::seed_from_u64(62);
    let (f, j, p) = (keys(0), keys(1), keys(7));
    let (mut founder, r1) = founded(&mut rng);
    enable(&mut founder, &j, r1);
    let old = joined(&founder);
    let demotion = founder
        .rotate(
            &f,
            vec![Change::SetRole {
                member: j.member_id(),
                role: Role::Member,
            }],
            "demote j",
            3,
            &mut rng,
        )
        .unwrap();
    let mut flood = Vec::new();
    for n in 0..20 {
        let mut copy = old.clone();
        let hash = copy
            .rotate(&j, vec![add(&p, Role::Admin)], "puppet", 4 + n, &mut rng)
            .unwrap();
        flood.push(copy.record(hash).unwrap().to_record());
    }
    let before = founder.len();
    let (taken, left_out) = founder.take_batch_leaving_out(&flood).unwrap();
    assert_eq!((left_out.len(), taken.known), (20, 0));
    assert_eq!(founder.len(), before);

    // j, on its own up-to-date copy, rotated concurrently with the
    // demotion (void) and then wrote on: that rotation is named, and stays.
    let mut own = old.clone();
    let concurrent = own.rotate(&j, vec![], "refresh", 30, &mut rng).unwrap();
    sync(&mut own, &founder);
    let note = app(&mut own, &j, demotion, "after the demotion");
    let lacking: Vec<Vec<u8>> = own
        .records()
        .filter(|r| !founder.contains(r.hash()))
        .map(|record| record.to_record())
        .collect();
    let (_, left_out) = founder.take_batch_leaving_out(&lacking).unwrap();
    assert!(left_out.is_empty());
    assert!(founder.contains(concurrent) && founder.contains(note));
    assert!(!founder.resolution().is_applied(concurrent));
    assert_eq!(digest(&founder), digest(&own));
}

/// An event F signs at F's next position, with `prev` and `body` as given.
fn signed_by_founder(ledger: &Ledger, prev: EventHash, body: Body) -> SignedEvent {
    let f = keys(0);
    let (seq, _, _) = ledger.state().next_position(f.member_id());
    SignedEvent::sign(
        Event {
            version: VERSION,
            group: ledger.group(),
            author: f.member_id(),
            seq,
            prev,
            time: 7,
            body,
        },
        &f,
    )
}

/// The rule a batch of `events` is refused by, taken in bulk.
fn bulk_rule(ledger: &Ledger, events: &[&SignedEvent]) -> Rule {
    let records: Vec<Vec<u8>> = events.iter().map(|event| event.to_record()).collect();
    match ledger.clone().take_all(&records) {
        Err(Error::Rejected(rejection)) => *rejection.rule,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// SPEC.md §4.2: at `seq` > 0 a zero `prev` is F2, on every path: it
/// names no event, so there is nothing to wait for.
#[test]
fn a_zero_prev_after_seq_0_is_f2_not_a_wait() {
    let mut rng = StdRng::seed_from_u64(11);
    let (founder, r1) = founded(&mut rng);
    let event = signed_by_founder(
        &founder,
        EventHash::ZERO,
        Body::App {
            epoch: r1,
            kind: "note".into(),
            payload: b"no prev".to_vec(),
        },
    );
    assert!(event.event().seq > 0);
    let rule = bulk_rule(&founder, &[&event]);
    assert!(
        matches!(rule, Rule::Feed(FeedError::PrevMismatch { .. })),
        "{rule:?}"
    );
    assert_eq!(rule.id(), "F2");
    let single = founder.clone().verify(event).err().map(|r| *r.rule);
    assert!(
        matches!(single, Some(Rule::Feed(FeedError::PrevMismatch { .. }))),
        "{single:?}"
    );
}

/// SPEC.md §4.2, §5.2: an event that names, as its epoch or as a parent,
/// an event held that is not a rotation is refused for good (F3, E3):
/// that event never becomes a rotation, so waiting would be forever.
#[test]
fn naming_a_held_non_rotation_as_an_epoch_or_parent_is_refused() {
    let mut rng = StdRng::seed_from_u64(12);
    let f = keys(0);
    let (mut founder, r1) = founded(&mut rng);
    let note = app(&mut founder, &f, r1, "not an epoch");
    let (_, prev, _) = founder.state().next_position(f.member_id());

    let under_a_note = signed_by_founder(
        &founder,
        prev,
        Body::App {
            epoch: note,
            kind: "note".into(),
            payload: b"under a note".to_vec(),
        },
    );
    let rule = bulk_rule(&founder, &[&under_a_note]);
    assert!(
        matches!(rule, Rule::Feed(FeedError::NotAnEpoch { epoch }) if epoch == note),
        "{rule:?}"
    );
    assert_eq!(rule.id(), "F3");
    let single = founder
        .clone()
        .verify(under_a_note.clone())
        .err()
        .map(|r| *r.rule);
    assert!(
        matches!(single, Some(Rule::Feed(FeedError::NotAnEpoch { .. }))),
        "{single:?}"
    );

    // A rotation whose parent is the note: E3, with an envelope that would
    // otherwise do.
    let secret = EpochSecret::generate(&mut rng);
    let (seq, _, _) = founder.state().next_position(f.member_id());
    let envelope = envelope::seal(
        &mut rng,
        &secret,
        rotation_binding(founder.group(), f.member_id(), seq, prev),
        &[(f.member_id(), f.public().dh)],
    )
    .unwrap();
    let on_a_note = signed_by_founder(
        &founder,
        prev,
        Body::Rotate {
            parents: vec![note],
            changes: vec![],
            envelope,
            reason: String::new(),
        },
    );
    let rule = bulk_rule(&founder, &[&on_a_note]);
    assert!(
        matches!(rule, Rule::Feed(FeedError::Graph(GraphError::UnknownParent(parent))) if parent == note),
        "{rule:?}"
    );
    assert_eq!(rule.id(), "E3");

    // The note and what names it in one batch, in either order: refused.
    let record = founder.record(note).unwrap().clone();
    let mut before = founder.clone();
    before.forget_since(before.len() - 1, &[]);
    for batch in [[&record, &under_a_note], [&under_a_note, &record]] {
        let rule = bulk_rule(&before, &batch);
        assert_eq!(rule.id(), "F3", "{rule:?}");
    }
}

/// SPEC.md §8: a known author's signature is checked before anything
/// costly, in bulk as one by one, so that a forged rotation costs one
/// signature check and is refused as V6 on every path, rather than by
/// the first rule its forged content breaks.
#[test]
fn a_forged_rotation_is_v6_in_bulk_too() {
    let mut rng = StdRng::seed_from_u64(13);
    let f = keys(0);
    let (founder, _) = founded(&mut rng);
    let (seq, prev, _) = founder.state().next_position(f.member_id());
    // Its envelope reaches the founder alone, which is V9, and bob signed it.
    let secret = EpochSecret::generate(&mut rng);
    let envelope = envelope::seal(
        &mut rng,
        &secret,
        rotation_binding(founder.group(), f.member_id(), seq, prev),
        &[(f.member_id(), f.public().dh)],
    )
    .unwrap();
    let forged = SignedEvent::sign(
        Event {
            version: VERSION,
            group: founder.group(),
            author: f.member_id(),
            seq,
            prev,
            time: 9,
            body: Body::Rotate {
                parents: founder.state().graph().frontier(),
                changes: vec![],
                envelope,
                reason: String::new(),
            },
        },
        &keys(2),
    );
    let single = founder
        .clone()
        .verify(forged.clone())
        .err()
        .map(|r| *r.rule);
    assert_eq!(single, Some(Rule::BadSignature(f.member_id())));
    assert_eq!(
        bulk_rule(&founder, &[&forged]),
        Rule::BadSignature(f.member_id())
    );
}

/// What an honest admin's next rotation must name so that F4 (SPEC.md
/// §4.3) passes: an epoch its own feed acknowledged, even one that is void
/// now, is never a descendant of a parent it names. `acknowledge` writes,
/// on j's copy, what makes j's feed acknowledge a rotation `x` that an
/// owner then voids (A2) while `x`'s parent `t`, another admin's, stays a
/// tip.
fn rotates_after_acknowledging_a_voided_epoch(own_rotation: bool) {
    let mut rng = StdRng::seed_from_u64(404);
    let (f, carol, dave, m) = (keys(0), keys(1), keys(3), keys(4));
    let (mut founder, r1) = founded(&mut rng);
    let r2 = founder
        .rotate(
            &f,
            sorted(vec![add(&dave, Role::Admin), add(&m, Role::Admin)]),
            "admins",
            2,
            &mut rng,
        )
        .unwrap();
    for member in [&carol, &dave, &m] {
        enable(
            &mut founder,
            member,
            if member.member_id() == carol.member_id() {
                r1
            } else {
                r2
            },
        );
    }
    let old = joined(&founder);
    // Apart from F: m refreshes (t); carol refreshes on it (x).
    let mut apart = old.clone();
    let t = apart.rotate(&m, vec![], "m", 3, &mut rng).unwrap();
    let x = apart.rotate(&carol, vec![], "carol", 4, &mut rng).unwrap();
    // Meanwhile F demotes carol: x is void (A2), t applies.
    let demotion = founder
        .rotate(
            &f,
            vec![Change::SetRole {
                member: carol.member_id(),
                role: Role::Member,
            }],
            "demote carol",
            5,
            &mut rng,
        )
        .unwrap();
    let (writer, keys_of_j) = if own_rotation {
        // Carol is made an admin again after the demotion: her own void
        // rotation x, named by nothing, is left out on her copy.
        founder
            .rotate(
                &f,
                vec![Change::SetRole {
                    member: carol.member_id(),
                    role: Role::Admin,
                }],
                "carol again",
                6,
                &mut rng,
            )
            .unwrap();
        let mut copy = apart.clone();
        sync(&mut copy, &founder);
        assert!(copy.left_out().contains(x));
        (copy, &carol)
    } else {
        // Dave wrote under x while it was current.
        let mut copy = apart.clone();
        app(&mut copy, &dave, x, "under x");
        sync(&mut copy, &founder);
        (copy, &dave)
    };
    let mut j = writer;
    let resolution = j.resolution().clone();
    assert!(
        !resolution.is_applied(x) && resolution.is_applied(t) && resolution.is_applied(demotion)
    );
    assert!(resolution.tips.contains(&t) && j.state().graph().is_ancestor(t, x));
    assert_eq!(
        resolution.roster.role_of(keys_of_j.member_id()),
        Some(Role::Admin)
    );
    // j is an admin of R*, enabled: its refresh must pass the rules.
    // It descends from every tip, its secret goes to `R*`, and it is current.
    let refresh = j.rotate(keys_of_j, vec![], "refresh", 10, &mut rng);
    assert!(
        refresh.is_ok(),
        "an honest refresh refused: {:?}",
        refresh.err()
    );
    let refresh = refresh.unwrap();
    let graph = j.state().graph();
    assert!(
        resolution
            .tips
            .iter()
            .all(|tip| graph.is_ancestor(*tip, refresh))
    );
    assert_eq!(graph.own_roster(refresh), Some(&resolution.roster));
    assert_eq!(j.resolution().current, Some(refresh));
    assert_eq!(j.resolution().roster, resolution.roster);
}

#[test]
fn an_admin_that_wrote_under_an_epoch_voided_later_still_rotates() {
    rotates_after_acknowledging_a_voided_epoch(false);
}

#[test]
fn an_admin_whose_own_void_rotation_is_left_out_still_rotates() {
    rotates_after_acknowledging_a_voided_epoch(true);
}

mod leaving_out {
    //! SPEC.md §6.4 at the ledger level, over random multi-peer histories:
    //! leaving `L` out changes nothing that counts, whichever parts of `L`
    //! a peer holds, and ingests that leave it out converge.

    use proptest::prelude::*;

    use super::*;

    const PEOPLE: u8 = 7;

    #[derive(Debug, Clone)]
    enum Op {
        /// An honest rotation (`Ledger::rotate`).
        Rotate(u8, Vec<(u8, u8, u8)>),
        /// A rotation on a random frontier of held rotations.
        RotateOn(u8, Vec<u16>, Vec<(u8, u8, u8)>),
        Flag(u8, bool),
        /// An app event under the epoch it writes under, or a random one.
        App(u8, Option<u16>),
        /// `into` takes what `from` sends, leaving out what it would.
        Sync(u8, u8),
        Snapshot(u8),
        /// An enabled admin of `R*` merges, in steps if need be, as
        /// `Mesh::merge` does: the mesh then needs no merge.
        Merge(u8),
        /// A peer restores an older copy of its own (its feed may fork).
        Restore(u8, u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        let changes = prop::collection::vec((0u8..3, 1..PEOPLE, 0u8..2), 0..3);
        let peer = prop_oneof![2 => 0u8..4, 3 => 0..PEOPLE];
        prop_oneof![
            3 => (peer.clone(), changes.clone()).prop_map(|(p, c)| Op::Rotate(p, c)),
            2 => (peer.clone(), prop::collection::vec(any::<u16>(), 1..4), changes)
                .prop_map(|(p, picks, c)| Op::RotateOn(p, picks, c)),
            2 => (0..PEOPLE, any::<bool>()).prop_map(|(p, on)| Op::Flag(p, on)),
            3 => (0..PEOPLE, prop::option::of(any::<u16>())).prop_map(|(p, e)| Op::App(p, e)),
            5 => (0..PEOPLE, 0..PEOPLE).prop_map(|(a, b)| Op::Sync(a, b)),
            2 => (0..PEOPLE).prop_map(Op::Snapshot),
            2 => (0..3u8).prop_map(Op::Merge),
            2 => (0..PEOPLE, any::<u16>()).prop_map(|(p, pick)| Op::Restore(p, pick)),
        ]
    }

    fn change(kind: u8, target: u8, role: u8) -> Change {
        let role = if role == 0 { Role::Member } else { Role::Admin };
        match kind {
            0 => add(&keys(target), role),
            1 => Change::Remove {
                member: keys(target).member_id(),
            },
            _ => Change::SetRole {
                member: keys(target).member_id(),
                role,
            },
        }
    }

    fn changes(picks: &[(u8, u8, u8)]) -> Vec<Change> {
        let mut out: Vec<Change> = Vec::new();
        for &(kind, target, role) in picks {
            let c = change(kind, target, role);
            if !out.iter().any(|o| o.member() == c.member()) {
                out.push(c);
            }
        }
        sorted(out)
    }

    fn graph_parents(ledger: &Ledger, rotation: EventHash) -> Vec<EventHash> {
        match &ledger.record(rotation).unwrap().event().body {
            Body::Rotate { parents, .. } => parents.clone(),
            _ => Vec::new(),
        }
    }

    fn rotations(ledger: &Ledger) -> Vec<EventHash> {
        ledger
            .records()
            .filter(|r| matches!(r.event().body, Body::Rotate { .. } | Body::Genesis { .. }))
            .map(|r| r.hash())
            .collect()
    }

    /// What `from` sends `into`: by `into`'s frontier (SPEC.md §7.1), or
    /// what it holds outside its `L` that `into` lacks, in `from`'s order.
    fn sent(into: &Ledger, from: &Ledger, by_frontier: bool) -> Vec<Vec<u8>> {
        if by_frontier {
            return from
                .missing_for(&into.frontier())
                .into_iter()
                .map(|record| record.to_record())
                .collect();
        }
        let left_out = from.left_out().clone();
        from.records()
            .filter(|r| !left_out.contains(r.hash()) && !into.contains(r.hash()))
            .map(|record| record.to_record())
            .collect()
    }

    fn apply(
        peers: &mut [Ledger],
        snapshots: &mut [Vec<Ledger>],
        op: &Op,
        time: u64,
        rng: &mut StdRng,
        by_frontier: bool,
    ) {
        match op {
            Op::Rotate(p, picks) => {
                let ledger = &mut peers[*p as usize];
                let member = keys(*p).member_id();
                let may = ledger.state().is_enabled(member)
                    && ledger.resolution().roster.role_of(member) >= Some(Role::Admin);
                let before = ledger.resolution().clone();
                let made = ledger.rotate(&keys(*p), changes(picks), "r", time, rng);
                // An enabled admin of `R*` rotates on its tips (SPEC.md
                // §5.1): the rules never refuse it, and on at most sixteen
                // its rotation is current, its secret wrapped to `R*`,
                // which held everyone its base did.
                if may {
                    assert!(
                        matches!(made, Ok(_) | Err(Error::NoSafeMerge { .. })),
                        "an honest rotation refused: {made:?}"
                    );
                }
                if let Ok(rotation) = made
                    && before.tips.len() <= crate::graph::MAX_PARENTS
                {
                    let after = ledger.resolution();
                    assert_eq!(after.current, Some(rotation));
                    assert_eq!(after.tips, vec![rotation]);
                    let graph = ledger.state().graph();
                    assert_eq!(graph.own_roster(rotation), Some(&after.roster));
                    let base = graph.past_roster_of(&graph_parents(ledger, rotation));
                    assert_eq!(base, before.roster);
                }
            }
            Op::RotateOn(p, picks, c) => {
                let ledger = &mut peers[*p as usize];
                let held = rotations(ledger);
                let graph = ledger.state().graph();
                let mut parents: Vec<EventHash> = picks
                    .iter()
                    .map(|pick| held[usize::from(*pick) % held.len()])
                    .collect();
                parents.sort();
                parents.dedup();
                let parents: Vec<EventHash> = parents
                    .iter()
                    .copied()
                    .filter(|a| !parents.iter().any(|d| graph.is_ancestor(*a, *d)))
                    .collect();
                if let Ok(made) =
                    ledger.make_rotation_on(&keys(*p), parents, changes(c), "on", time, rng)
                {
                    let _ = ledger.insert_made_here(made, &keys(*p));
                }
            }
            Op::Flag(p, on) => {
                let ledger = &mut peers[*p as usize];
                let member = keys(*p).member_id();
                if let Some(epoch) = crate::mesh::epoch_for_flag(ledger, member) {
                    let _ = ledger.write(
                        &keys(*p),
                        time,
                        Body::SetEnabled {
                            epoch,
                            enabled: *on,
                        },
                    );
                }
            }
            Op::App(p, pick) => {
                let ledger = &mut peers[*p as usize];
                let member = keys(*p).member_id();
                let epoch = match pick {
                    None => crate::mesh::epoch_to_write(ledger, member),
                    Some(pick) => {
                        let held = rotations(ledger);
                        Some(held[usize::from(*pick) % held.len()])
                    }
                };
                if let Some(epoch) = epoch {
                    let _ = ledger.write(
                        &keys(*p),
                        time,
                        Body::App {
                            epoch,
                            kind: "k".into(),
                            payload: vec![],
                        },
                    );
                }
            }
            Op::Sync(a, b) => {
                if a == b {
                    return;
                }
                let records = sent(&peers[*a as usize], &peers[*b as usize], by_frontier);
                peers[*a as usize]
                    .take_batch_leaving_out(&records)
                    .expect("a sync of what a peer holds outside its L is taken");
            }
            Op::Snapshot(p) => snapshots[*p as usize].push(peers[*p as usize].clone()),
            Op::Merge(p) => {
                let ledger = &mut peers[*p as usize];
                let member = keys(*p).member_id();
                if !ledger.state().is_enabled(member)
                    || ledger.resolution().roster.role_of(member) < Some(Role::Admin)
                {
                    return;
                }
                let mut steps = 0;
                while ledger.resolution().needs_merge() || ledger.needs_merge_step(member) {
                    let made = ledger.rotate(&keys(*p), vec![], "merge", time, rng);
                    assert!(made.is_ok(), "an honest merge refused: {made:?}");
                    steps += 1;
                    assert!(steps <= 8, "merges do not converge");
                }
            }
            Op::Restore(p, pick) => {
                let list = &snapshots[*p as usize];
                if !list.is_empty() {
                    peers[*p as usize] = list[usize::from(*pick) % list.len()].clone();
                }
            }
        }
    }

    /// A ledger holding `records` (in an order where each comes after what
    /// it names), taken whole, nothing left out on the way.
    fn holding(genesis: &SignedEvent, records: &[&SignedEvent]) -> Ledger {
        let mut ledger = Ledger::found(genesis.clone()).unwrap();
        let records: Vec<Vec<u8>> = records
            .iter()
            .filter(|r| r.hash() != genesis.hash())
            .map(|r| r.to_record())
            .collect();
        ledger.take_all(&records).expect("closed under naming");
        ledger
    }

    /// What counts (SPEC.md §6.1, §6.4) about `ledger` outside `left_out`.
    #[allow(clippy::type_complexity)]
    fn counts(
        ledger: &Ledger,
        outside: &[EventHash],
    ) -> (
        crate::ids::StateDigest,
        crate::graph::Roster,
        Vec<EventHash>,
        Option<EventHash>,
        Option<EventHash>,
        Vec<(MemberId, bool)>,
        Vec<(
            EventHash,
            Option<crate::feeds::EventStatus>,
            Option<graph::Status>,
        )>,
    ) {
        let resolution = ledger.resolution();
        let flags: Vec<(MemberId, bool)> = resolution
            .roster
            .iter()
            .map(|(m, _)| (*m, ledger.state().is_enabled(*m)))
            .collect();
        let statuses: Vec<_> = outside
            .iter()
            .map(|h| {
                (
                    *h,
                    ledger.state().status(*h, resolution),
                    resolution.statuses.get(h).cloned(),
                )
            })
            .collect();
        (
            ledger.digest(),
            resolution.roster.clone(),
            resolution.tips.clone(),
            resolution.current,
            resolution.writer,
            flags,
            statuses,
        )
    }

    /// Plays `ops` on seven peers, then checks, for `S` the union of every
    /// copy: `S \\ L` and `S \\ L` with random parts of `L` (closed under
    /// naming) count as `S` does; so does a fresh peer that ingests `S`
    /// leaving out; and every peer, after syncing all round, agrees.
    fn run(ops: &[Op], coins: &[bool], by_frontier: bool) -> Result<(), TestCaseError> {
        let mut rng = StdRng::seed_from_u64(7);
        let f = keys(0);
        let (mut founder, genesis) = Ledger::create(&f, "g", 0, &mut rng).unwrap();
        enable(&mut founder, &f, genesis);
        let setup = founder
            .rotate(
                &f,
                sorted(vec![
                    add(&keys(1), Role::Admin),
                    add(&keys(2), Role::Admin),
                    add(&keys(3), Role::Admin),
                    add(&keys(4), Role::Member),
                    add(&keys(5), Role::Member),
                ]),
                "setup",
                1,
                &mut rng,
            )
            .unwrap();
        for n in 1..6 {
            enable(&mut founder, &keys(n), setup);
        }
        let mut peers: Vec<Ledger> = (0..PEOPLE).map(|_| founder.clone()).collect();
        let mut snapshots: Vec<Vec<Ledger>> = vec![Vec::new(); PEOPLE as usize];
        for (n, op) in ops.iter().enumerate() {
            apply(
                &mut peers,
                &mut snapshots,
                op,
                10 + n as u64,
                &mut rng,
                by_frontier,
            );
        }
        // S: everything any copy ever held, taken whole.
        let genesis_record = founder.record(genesis).unwrap().clone();
        let mut union = Ledger::found(genesis_record.clone().into_owned()).unwrap();
        for ledger in peers.iter().chain(snapshots.iter().flatten()) {
            let records: Vec<Vec<u8>> = ledger
                .records()
                .filter(|r| !union.contains(r.hash()))
                .map(|record| record.to_record())
                .collect();
            union.take_all(&records).unwrap();
        }
        let left_out = union.left_out().clone();
        let all: Vec<SignedEvent> = union.records().map(std::borrow::Cow::into_owned).collect();
        let outside: Vec<EventHash> = all
            .iter()
            .map(|r| r.hash())
            .filter(|h| !left_out.contains(*h))
            .collect();
        let expected = counts(&union, &outside);

        // S \ L, and S \ L with parts of L closed under naming.
        let mut coin = coins.iter().cycle();
        for with_some in [false, true] {
            let mut held = std::collections::BTreeSet::new();
            let mut chosen: Vec<&SignedEvent> = Vec::new();
            for record in &all {
                let event = record.event();
                let names_held = (event.seq == 0 || held.contains(&event.prev))
                    && event.named_epochs().iter().all(|e| held.contains(e));
                let take = !left_out.contains(record.hash())
                    || (with_some && names_held && *coin.next().unwrap());
                if take && (names_held || record.hash() == genesis) {
                    held.insert(record.hash());
                    chosen.push(record);
                }
            }
            let t = holding(&genesis_record, &chosen);
            prop_assert_eq!(&counts(&t, &outside), &expected);
            for record in &chosen {
                prop_assert_eq!(
                    t.left_out().contains(record.hash()),
                    left_out.contains(record.hash())
                );
            }
        }

        // The ingest path: one batch of everything, leaving out.
        let mut fresh = Ledger::found(genesis_record.clone().into_owned()).unwrap();
        let records: Vec<Vec<u8>> = all
            .iter()
            .filter(|r| r.hash() != genesis)
            .map(|r| r.to_record())
            .collect();
        fresh.take_batch_leaving_out(&records).unwrap();
        prop_assert_eq!(&counts(&fresh, &outside), &expected);

        // Every peer, after syncing with every other twice round, holds
        // S \ L at least, and agrees.
        for _ in 0..2 {
            for a in 0..PEOPLE {
                for b in 0..PEOPLE {
                    apply(
                        &mut peers,
                        &mut snapshots,
                        &Op::Sync(a, b),
                        0,
                        &mut rng,
                        by_frontier,
                    );
                }
            }
        }
        // Restored copies' lost events come back only from the snapshots
        // that held them: sync the union's S \ L in as well.
        for peer in peers.iter_mut() {
            let records = sent(peer, &union, by_frontier);
            peer.take_batch_leaving_out(&records).unwrap();
            prop_assert_eq!(&counts(peer, &outside), &expected);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn leaving_out_changes_nothing_that_counts_in_a_ledger(
            ops in prop::collection::vec(op(), 20..100),
            coins in prop::collection::vec(any::<bool>(), 64),
        ) {
            run(&ops, &coins, false)?;
        }

        /// The same, each sync by the receiver's frontier; no copy is
        /// restored from an older one, so no feed forks (issue 23 §3 is
        /// about forks and frontiers).
        #[test]
        fn syncs_by_frontier_converge_leaving_out(
            ops in prop::collection::vec(op(), 20..100),
            coins in prop::collection::vec(any::<bool>(), 64),
        ) {
            let ops: Vec<Op> = ops.into_iter().filter(|op| !matches!(op, Op::Restore(..))).collect();
            run(&ops, &coins, true)?;
        }
    }
}

/// SPEC.md §6.4 leaves out what an author absent from `R*` wrote on a
/// left-out event, on the ground that such events change nothing. But an
/// admin's rotation can apply and yet its author be absent from `R*`: an
/// admin's removal of a member concurrent with another admin's promotion
/// of it leaves it absent (§5.4: the weakest surviving value), and the
/// rotation it wrote as an admin applies. If that rotation also names a
/// void rotation (it merged one it held when it was still applied), it
/// must not be left out: it is an applied tip, and its change is in `R*`.
#[test]
fn an_applied_rotation_by_an_author_absent_from_r_star_is_not_left_out() {
    let mut rng = StdRng::seed_from_u64(64);
    let (f, a, b, k, c, q) = (keys(0), keys(1), keys(2), keys(3), keys(4), keys(5));
    let (mut founder, genesis) = Ledger::create(&f, "g", 0, &mut rng).unwrap();
    enable(&mut founder, &f, genesis);
    let s1 = founder
        .rotate(
            &f,
            sorted(vec![
                add(&a, Role::Member),
                add(&b, Role::Admin),
                add(&k, Role::Admin),
                add(&c, Role::Admin),
            ]),
            "team",
            1,
            &mut rng,
        )
        .unwrap();
    for member in [&a, &b, &k, &c] {
        enable(&mut founder, member, s1);
    }
    let base = founder.clone();
    // Apart: b promotes a; k removes a (a member in its base); c refreshes
    // while F demotes c (so c's refresh is void, A2).
    let mut b_side = base.clone();
    let promotion = b_side
        .rotate(
            &b,
            vec![Change::SetRole {
                member: a.member_id(),
                role: Role::Admin,
            }],
            "promote a",
            2,
            &mut rng,
        )
        .unwrap();
    let mut k_side = base.clone();
    k_side
        .rotate(
            &k,
            vec![Change::Remove {
                member: a.member_id(),
            }],
            "remove a",
            3,
            &mut rng,
        )
        .unwrap();
    let mut c_side = base.clone();
    let void = c_side.rotate(&c, vec![], "refresh", 4, &mut rng).unwrap();
    founder
        .rotate(
            &f,
            vec![Change::SetRole {
                member: c.member_id(),
                role: Role::Member,
            }],
            "demote c",
            5,
            &mut rng,
        )
        .unwrap();
    // a, an admin now, holds the promotion and c's refresh (applied, as far
    // as it knows), and adds q: its rotation names both.
    let mut a_side = base.clone();
    sync(&mut a_side, &b_side);
    sync(&mut a_side, &c_side);
    let added = a_side
        .rotate(&a, vec![add(&q, Role::Member)], "add q", 6, &mut rng)
        .unwrap();
    assert!(a_side.state().graph().is_ancestor(void, added));
    assert!(a_side.state().graph().is_ancestor(promotion, added));

    let mut everything = founder.clone();
    for side in [&b_side, &k_side, &c_side, &a_side] {
        sync(&mut everything, side);
    }
    let resolution = everything.resolution().clone();
    assert!(!resolution.is_applied(void));
    assert!(resolution.is_applied(added) && resolution.tips.contains(&added));
    assert!(!resolution.roster.contains(a.member_id()));
    assert!(resolution.roster.contains(q.member_id()));
    // It counts: it is not left out, and a peer that ingests everything
    // leaving out agrees.
    let mut fresh = Ledger::found(founder.record(genesis).unwrap().into_owned()).unwrap();
    let records: Vec<Vec<u8>> = everything
        .records()
        .filter(|r| r.hash() != genesis)
        .map(|record| record.to_record())
        .collect();
    fresh.take_batch_leaving_out(&records).unwrap();
    assert_eq!(fresh.resolution().tips, resolution.tips);
    assert_eq!(fresh.resolution().roster, resolution.roster);
    assert_eq!(digest(&fresh), digest(&everything));
    assert!(!everything.left_out().contains(added));
}
