//! Every reducer rule, driven through the public pure reducer
//! ([`MeshState::reduce`]) with hand-made hostile events. Each case is named
//! after the rule it breaks, and checks that a rejection changes nothing.

mod common;

use common::{db_path, keys, options};
use meshlog::{
    Body, DhPublicKey, Envelope, Event, EventHash, KeyKind, LocalKeys, MeshState, Role,
    RosterEntry, Rotate, Rule, SecretCommitment, SignedEvent, SigningPublicKey, WrappedSecret,
    limits,
};

/// A founder (keys 1, enabled, admin) and a disabled member (keys 2), in epoch 1.
fn base() -> MeshState {
    let dir = tempfile::tempdir().unwrap();
    let mut mesh = options(1)
        .create(db_path(&dir, "m"), keys(1), "ops")
        .unwrap();
    mesh.set_enabled(true).unwrap();
    mesh.add_member(keys(2).public(), Role::Member).unwrap();
    mesh.state().clone()
}

fn next(state: &MeshState, author: &LocalKeys, body: Body) -> Event {
    let head = state.head().unwrap();
    Event {
        version: meshlog::FORMAT_VERSION,
        group: state.identity().unwrap().group,
        seq: head.seq + 1,
        prev: head.hash,
        author: author.member_id(),
        time: 0,
        body,
    }
}

fn entry(n: u8, role: Role) -> RosterEntry {
    let keys = keys(n).public();
    RosterEntry {
        id: keys.member_id(),
        keys,
        role,
    }
}

fn envelope_for(roster: &[RosterEntry]) -> Envelope {
    Envelope {
        ephemeral: keys(99).public().dh,
        commitment: SecretCommitment::from_bytes([0; 32]),
        wrapped: roster
            .iter()
            .map(|entry| WrappedSecret {
                member: entry.id,
                ciphertext: [0; 32],
                tag: [0; 16],
            })
            .collect(),
    }
}

fn sorted(mut roster: Vec<RosterEntry>) -> Vec<RosterEntry> {
    roster.sort_by_key(|entry| entry.id);
    roster
}

fn rotate(state: &MeshState, roster: Vec<RosterEntry>) -> Body {
    Body::Rotate(Rotate {
        epoch: state.current_epoch().unwrap().epoch + 1,
        envelope: envelope_for(&roster),
        roster,
        reason: String::new(),
    })
}

/// Reduces `event` and returns the rule it broke, checking the state is untouched.
fn rule_broken(state: &MeshState, event: &SignedEvent) -> Rule {
    let mut after = state.clone();
    let rejection = after.reduce(event).expect_err("the event must be rejected");
    assert_eq!(&after, state, "a rejection changes nothing");
    assert_eq!(rejection.seq, event.event().seq);
    assert_eq!(rejection.hash, event.hash());
    rejection.rule
}

fn founder_rotation(state: &MeshState, body: Body) -> Rule {
    rule_broken(
        state,
        &SignedEvent::sign(next(state, &keys(1), body), &keys(1)),
    )
}

#[test]
fn valid_rotation_is_accepted() {
    let state = base();
    let roster = sorted(vec![entry(1, Role::Admin), entry(3, Role::Member)]);
    let event = SignedEvent::sign(next(&state, &keys(1), rotate(&state, roster)), &keys(1));
    let mut after = state.clone();
    after.reduce(&event).unwrap();
    assert_eq!(after.current_epoch().unwrap().epoch, 2);
    assert!(
        !after.is_enabled(keys(3).member_id()),
        "newcomers start disabled"
    );
    assert!(
        after.is_enabled(keys(1).member_id()),
        "flags survive a rotation"
    );
    assert!(
        !after.enabled_flags().contains_key(&keys(2).member_id()),
        "removed members lose theirs"
    );
}

#[test]
fn first_not_genesis() {
    let event = Event {
        version: meshlog::FORMAT_VERSION,
        group: meshlog::GroupId::ZERO,
        seq: 0,
        prev: EventHash::ZERO,
        author: keys(1).member_id(),
        time: 0,
        body: Body::SetEnabled { enabled: true },
    };
    let rule = rule_broken(&MeshState::default(), &SignedEvent::sign(event, &keys(1)));
    assert_eq!(rule, Rule::FirstNotGenesis);
}

#[test]
fn genesis_author_mismatch_and_second_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = options(1)
        .create(db_path(&dir, "m"), keys(1), "ops")
        .unwrap();
    let genesis = mesh.event(0).unwrap();
    let mut event = genesis.event().clone();
    event.author = keys(2).member_id();
    let rule = rule_broken(&MeshState::default(), &SignedEvent::sign(event, &keys(2)));
    assert!(matches!(rule, Rule::GenesisAuthorMismatch { .. }), "{rule}");

    let state = mesh.state().clone();
    let again = next(&state, &keys(1), genesis.event().body.clone());
    assert_eq!(
        rule_broken(&state, &SignedEvent::sign(again, &keys(1))),
        Rule::SecondGenesis
    );
}

#[test]
fn unsupported_version_wrong_group_seq_and_prev() {
    let state = base();
    let body = || Body::SetEnabled { enabled: false };
    // A newer version, and v1, whose hashes covered the signature.
    for version in [meshlog::FORMAT_VERSION + 1, 1] {
        let mut event = next(&state, &keys(1), body());
        event.version = version;
        let rule = rule_broken(&state, &SignedEvent::sign(event, &keys(1)));
        assert_eq!(rule, Rule::UnsupportedVersion { found: version });
    }

    let mut event = next(&state, &keys(1), body());
    event.group = meshlog::GroupId::from_bytes([1; 32]);
    let rule = rule_broken(&state, &SignedEvent::sign(event, &keys(1)));
    assert!(matches!(rule, Rule::WrongGroup { .. }), "{rule}");

    let mut event = next(&state, &keys(1), body());
    event.seq += 1;
    let rule = rule_broken(&state, &SignedEvent::sign(event, &keys(1)));
    assert_eq!(
        rule,
        Rule::SeqNotNext {
            expected: 3,
            found: 4
        }
    );

    let mut event = next(&state, &keys(1), body());
    event.prev = EventHash::from_bytes([3; 32]);
    let rule = rule_broken(&state, &SignedEvent::sign(event, &keys(1)));
    assert!(matches!(rule, Rule::PrevMismatch { .. }), "{rule}");
}

#[test]
fn author_not_member_bad_signature_disabled_not_admin() {
    let state = base();
    let outsider = keys(7);
    let event = next(&state, &outsider, Body::SetEnabled { enabled: true });
    let rule = rule_broken(&state, &SignedEvent::sign(event, &outsider));
    assert_eq!(
        rule,
        Rule::AuthorNotMember {
            author: outsider.member_id(),
            epoch: 1
        }
    );

    // Claims to be the founder, signed by the member.
    let event = next(&state, &keys(1), Body::SetEnabled { enabled: false });
    let rule = rule_broken(&state, &SignedEvent::sign(event, &keys(2)));
    assert_eq!(
        rule,
        Rule::BadSignature {
            author: keys(1).member_id()
        }
    );

    // The member is disabled: it may only enable itself.
    let app = Body::App {
        kind: "note".into(),
        payload: vec![],
    };
    let event = next(&state, &keys(2), app.clone());
    let rule = rule_broken(&state, &SignedEvent::sign(event, &keys(2)));
    assert_eq!(
        rule,
        Rule::AuthorDisabled {
            author: keys(2).member_id()
        }
    );

    let mut enabled = state.clone();
    let event = next(&enabled, &keys(2), Body::SetEnabled { enabled: true });
    enabled.reduce(&SignedEvent::sign(event, &keys(2))).unwrap();
    let event = next(&enabled, &keys(2), app);
    enabled.reduce(&SignedEvent::sign(event, &keys(2))).unwrap();
    let roster = sorted(vec![entry(1, Role::Admin), entry(2, Role::Admin)]);
    let event = next(&enabled, &keys(2), rotate(&enabled, roster));
    let rule = rule_broken(&enabled, &SignedEvent::sign(event, &keys(2)));
    assert_eq!(
        rule,
        Rule::NotAdmin {
            author: keys(2).member_id(),
            epoch: 1
        }
    );
}

#[test]
fn epoch_not_next() {
    let state = base();
    let Body::Rotate(mut rotate_body) = rotate(&state, vec![entry(1, Role::Admin)]) else {
        unreachable!()
    };
    rotate_body.epoch = 5;
    let rule = founder_rotation(&state, Body::Rotate(rotate_body));
    assert_eq!(
        rule,
        Rule::EpochNotNext {
            expected: 2,
            found: 5
        }
    );
}

#[test]
fn roster_empty_unsorted_duplicate_mismatched_adminless() {
    let state = base();
    assert_eq!(
        founder_rotation(&state, rotate(&state, vec![])),
        Rule::RosterEmpty
    );

    let mut unsorted = sorted(vec![entry(1, Role::Admin), entry(3, Role::Member)]);
    unsorted.reverse();
    let rule = founder_rotation(&state, rotate(&state, unsorted));
    assert!(
        matches!(rule, Rule::RosterUnsorted { index: 1, .. }),
        "{rule}"
    );

    let duplicate = vec![entry(1, Role::Admin), entry(1, Role::Admin)];
    let rule = founder_rotation(&state, rotate(&state, duplicate));
    assert!(
        matches!(rule, Rule::RosterUnsorted { index: 1, .. }),
        "{rule}"
    );

    let mut wrong_id = entry(3, Role::Admin);
    wrong_id.keys = keys(4).public();
    let rule = founder_rotation(&state, rotate(&state, vec![wrong_id]));
    assert!(matches!(rule, Rule::RosterIdMismatch { .. }), "{rule}");

    let rule = founder_rotation(&state, rotate(&state, vec![entry(3, Role::Member)]));
    assert_eq!(rule, Rule::RosterNoAdmin);
}

#[test]
fn weak_keys_are_refused_at_admission() {
    let state = base();
    // The ed25519 identity point: order 1, a key that "verifies" forgeries.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let signing = SigningPublicKey::from_bytes(identity);
    let weak_signer = RosterEntry {
        id: meshlog::MemberId::of(&signing),
        keys: meshlog::MemberKeys {
            signing,
            dh: keys(3).public().dh,
        },
        role: Role::Admin,
    };
    let rule = founder_rotation(&state, rotate(&state, vec![weak_signer]));
    assert!(
        matches!(
            rule,
            Rule::WeakKey {
                kind: KeyKind::Signing,
                ..
            }
        ),
        "{rule}"
    );

    let mut weak_dh = entry(3, Role::Admin);
    weak_dh.keys.dh = DhPublicKey::from_bytes([0; 32]);
    let rule = founder_rotation(&state, rotate(&state, vec![weak_dh]));
    assert!(
        matches!(
            rule,
            Rule::WeakKey {
                kind: KeyKind::Dh,
                ..
            }
        ),
        "{rule}"
    );

    let Body::Rotate(mut body) = rotate(&state, vec![entry(1, Role::Admin)]) else {
        unreachable!()
    };
    body.envelope.ephemeral = DhPublicKey::from_bytes({
        let mut one = [0u8; 32];
        one[0] = 1;
        one
    });
    let rule = founder_rotation(&state, Body::Rotate(body));
    assert!(
        matches!(
            rule,
            Rule::WeakKey {
                kind: KeyKind::Ephemeral,
                ..
            }
        ),
        "{rule}"
    );
}

#[test]
fn envelope_recipients_must_be_exactly_the_roster() {
    let state = base();
    let roster = sorted(vec![entry(1, Role::Admin), entry(3, Role::Member)]);
    for wrapped_for in [
        vec![roster[0]],
        vec![roster[0], roster[1], entry(5, Role::Member)],
        vec![roster[1], roster[0]],
    ] {
        let body = Body::Rotate(Rotate {
            epoch: 2,
            roster: roster.clone(),
            envelope: envelope_for(&wrapped_for),
            reason: String::new(),
        });
        let rule = founder_rotation(&state, body);
        assert!(matches!(rule, Rule::EnvelopeRecipients { .. }), "{rule}");
    }
}

#[test]
fn limits_are_enforced() {
    let state = base();
    let Body::Rotate(mut body) = rotate(&state, vec![entry(1, Role::Admin)]) else {
        unreachable!()
    };
    body.reason = "x".repeat(limits::MAX_REASON + 1);
    let rule = founder_rotation(&state, Body::Rotate(body));
    assert!(
        matches!(
            rule,
            Rule::Limit {
                field: "reason",
                ..
            }
        ),
        "{rule}"
    );

    let huge = vec![entry(1, Role::Admin); limits::MAX_ROSTER + 1];
    let rule = founder_rotation(&state, rotate(&state, huge));
    assert!(
        matches!(
            rule,
            Rule::Limit {
                field: "roster",
                ..
            }
        ),
        "{rule}"
    );

    for (kind, payload, field) in [
        (String::new(), vec![], "app kind"),
        ("k".repeat(limits::MAX_APP_KIND + 1), vec![], "app kind"),
        (
            "k".into(),
            vec![0; limits::MAX_APP_PAYLOAD + 1],
            "app payload",
        ),
    ] {
        let rule = founder_rotation(&state, Body::App { kind, payload });
        assert!(
            matches!(rule, Rule::Limit { field: f, .. } if f == field),
            "{rule}"
        );
    }
}

#[test]
fn a_roster_of_ten_thousand_is_within_limits() {
    let state = base();
    let mut roster: Vec<RosterEntry> = (0..10_000u32)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            let keys = LocalKeys::from_secret_bytes(&seed, &seed).public();
            RosterEntry {
                id: keys.member_id(),
                keys,
                role: Role::Admin,
            }
        })
        .collect();
    roster.sort_by_key(|entry| entry.id);
    let event = SignedEvent::sign(next(&state, &keys(1), rotate(&state, roster)), &keys(1));
    assert!(event.bytes().len() < limits::MAX_EVENT_BYTES);
    let decoded = SignedEvent::from_record(&event.to_record()).unwrap();
    let mut after = state.clone();
    after.reduce(&decoded).unwrap();
    assert_eq!(after.current_epoch().unwrap().roster.len(), 10_000);
}
