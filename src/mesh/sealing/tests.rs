use super::*;
use crate::event::SignedPackage;
use crate::graph::Role;

fn keys(n: u8) -> LocalKeys {
    LocalKeys::from_secret_bytes(&[n + 1; 32], &[n + 101; 32])
}

/// A founder and an enabled member on two files, in one epoch.
fn pair(dir: &tempfile::TempDir) -> (Mesh, Mesh) {
    let mut founder = Mesh::create(dir.path().join("founder.redb"), keys(0), "sealing").unwrap();
    founder.set_enabled(true).unwrap();
    founder
        .add_member(SignedPackage::sign(&keys(1), 1), Role::Member)
        .unwrap();
    let mut member = Mesh::join(
        dir.path().join("member.redb"),
        keys(1),
        &founder.export_all(),
    )
    .unwrap();
    member.set_enabled(true).unwrap();
    founder.ingest(&member.export(&founder.frontier())).unwrap();
    (founder, member)
}

/// A sealed app event `author` signs around `sealed` bytes, as a member
/// could make one by hand.
fn sealed_app(mesh: &mut Mesh, epoch: EventHash, kind: &str, sealed: Vec<u8>) -> Result<EventHash> {
    let keys = mesh.keys.as_ref().unwrap();
    let time = (mesh.clock)();
    let signed = mesh.ledger.sign_next(
        keys,
        time,
        Body::SealedApp {
            epoch,
            kind: kind.to_owned(),
            sealed,
        },
    );
    mesh.add(signed)
}

fn rule_id(error: &Error) -> &'static str {
    error
        .rejection()
        .map(|rejection| rejection.rule.id())
        .unwrap_or("none")
}

#[test]
fn a_sealed_app_events_payload_must_name_its_group_epoch_and_kind() {
    let dir = tempfile::tempdir().unwrap();
    let (mut founder, _member) = pair(&dir);
    let epoch = founder.current_epoch().unwrap();
    let genesis = EventHash::from_bytes(*founder.group().as_bytes());
    let sealed = founder.seal(b"payload", b"note").unwrap().to_bytes();
    // Garbage, another kind, another epoch: V10, and nothing written.
    let before = founder.len();
    for (kind, bytes) in [
        ("note", b"not a sealed message".to_vec()),
        ("other", sealed.clone()),
    ] {
        let error = sealed_app(&mut founder, epoch, kind, bytes).unwrap_err();
        assert_eq!(rule_id(&error), "V10", "{error}");
    }
    let other_epoch = founder
        .seal_with(b"payload", b"note", Padding::None)
        .map(|sealed| {
            let mut bytes = sealed.to_bytes();
            bytes[36..68].copy_from_slice(genesis.as_bytes());
            bytes
        })
        .unwrap();
    let error = sealed_app(&mut founder, epoch, "note", other_epoch).unwrap_err();
    assert_eq!(rule_id(&error), "V10");
    assert_eq!(founder.len(), before);
    // The well-formed one is taken.
    let hash = sealed_app(&mut founder, epoch, "note", sealed).unwrap();
    assert_eq!(founder.open_event(hash).unwrap().plaintext, b"payload");
}

#[test]
fn a_sealed_app_event_must_be_sealed_by_its_author() {
    let dir = tempfile::tempdir().unwrap();
    let (founder, mut member) = pair(&dir);
    let epoch = founder.current_epoch().unwrap();
    // The member wraps a message the founder sealed in an event of its own:
    // every rule an auditor checks holds, but a reader learns the truth.
    let founders = founder.seal(b"from the founder", b"note").unwrap();
    let hash = sealed_app(&mut member, epoch, "note", founders.to_bytes()).unwrap();
    assert!(matches!(
        member.open_event(hash),
        Err(Error::Seal(SealError::SenderMismatch { .. }))
    ));
    // The founder's message itself still opens, as the founder's.
    let opened = member.open_sealed(&founders).unwrap();
    assert_eq!(opened.sender, founder.member_id().unwrap());
}

#[test]
fn a_disabled_member_does_not_seal_but_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let (founder, mut member) = pair(&dir);
    let sealed = founder.seal(b"hello", b"").unwrap();
    member.set_enabled(false).unwrap();
    let error = member.seal(b"hi", b"").unwrap_err();
    assert!(matches!(error, Error::Disabled { .. }));
    assert_eq!(error.class(), crate::ErrorClass::Refusal);
    assert_eq!(member.open_sealed(&sealed).unwrap().plaintext, b"hello");
}

#[test]
fn opening_needs_keys_and_caches_one_key_per_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let (mut founder, member) = pair(&dir);
    let first = founder.seal(b"one", b"").unwrap();
    founder.refresh("rotate").unwrap();
    let second = founder.seal(b"two", b"").unwrap();
    assert_ne!(first.epoch(), second.epoch());
    assert_eq!(founder.open_sealed(&first).unwrap().plaintext, b"one");
    assert_eq!(founder.open_sealed(&second).unwrap().plaintext, b"two");
    assert_eq!(founder.seal_keys().epochs.len(), 2);
    // The member does not hold the refresh yet: an unknown epoch.
    assert!(matches!(
        member.open_sealed(&second),
        Err(Error::Seal(SealError::UnknownEpoch(_)))
    ));
    drop(member);
    let audit = Mesh::open_read_only(dir.path().join("member.redb")).unwrap();
    assert!(matches!(audit.open_sealed(&first), Err(Error::NoKeys)));
    assert!(matches!(audit.seal(b"x", b""), Err(Error::NoKeys)));
}
