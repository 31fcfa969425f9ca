use super::*;
use crate::event::SignedPackage;
use crate::graph::Role;
use crate::seal::Context;

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
    let signed = mesh.ledger.make_next(
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

/// A sealed app event's payload as `mesh`'s member seals one, in its
/// writer epoch, with `kind` as associated data, unpadded.
fn app_payload(mesh: &Mesh, plaintext: &[u8], kind: &str) -> Vec<u8> {
    let keys = mesh.keys.as_ref().unwrap();
    let epoch = mesh.current_epoch().unwrap();
    let key = mesh.epoch_key(epoch, keys).unwrap();
    seal::seal(
        &key,
        mesh.group(),
        epoch,
        keys,
        [9; 32],
        (plaintext, kind.as_bytes()),
        Padding::None,
        Context::App,
    )
    .unwrap()
    .to_bytes()
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
    let sealed = app_payload(&founder, b"payload", "note");
    // Garbage, another kind, a message rather than a payload, another
    // epoch: V10, and nothing written.
    let before = founder.len();
    let message = founder.seal(b"payload", b"note").unwrap().to_bytes();
    for (kind, bytes) in [
        ("note", b"not a sealed message".to_vec()),
        ("other", sealed.clone()),
        ("note", message),
    ] {
        let error = sealed_app(&mut founder, epoch, kind, bytes).unwrap_err();
        assert_eq!(rule_id(&error), "V10", "{error}");
    }
    let mut other_epoch = sealed.clone();
    other_epoch[36..68].copy_from_slice(genesis.as_bytes());
    let error = sealed_app(&mut founder, epoch, "note", other_epoch).unwrap_err();
    assert_eq!(rule_id(&error), "V10");
    assert_eq!(founder.len(), before);
    // The well-formed one is taken.
    let hash = sealed_app(&mut founder, epoch, "note", sealed.clone()).unwrap();
    assert_eq!(founder.open_event(hash).unwrap().plaintext, b"payload");
    // Lifted from the file, the payload does not open as a message.
    let lifted = Sealed::from_vec(sealed).unwrap();
    assert!(lifted.is_app_payload());
    let error = founder.open_sealed(&lifted).unwrap_err();
    assert!(
        matches!(error, Error::Seal(SealError::WrongContext { .. })),
        "{error}"
    );
}

#[test]
fn a_sealed_app_event_must_be_sealed_by_its_author() {
    let dir = tempfile::tempdir().unwrap();
    let (mut founder, mut member) = pair(&dir);
    let epoch = founder.current_epoch().unwrap();
    // The member wraps a payload the founder sealed in an event of its own:
    // every rule an auditor checks holds, but a reader learns the truth.
    let founders = app_payload(&founder, b"from the founder", "note");
    let hash = sealed_app(&mut member, epoch, "note", founders.clone()).unwrap();
    assert!(matches!(
        member.open_event(hash),
        Err(Error::Seal(SealError::SenderMismatch { .. }))
    ));
    // In the founder's own event, it opens, as the founder's.
    let own = sealed_app(&mut founder, epoch, "note", founders).unwrap();
    let opened = founder.open_event(own).unwrap();
    assert_eq!(opened.sender, founder.member_id().unwrap());
    assert_eq!(opened.plaintext, b"from the founder");
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
    let (old, new) = (
        founder.open_sealed(&first).unwrap(),
        founder.open_sealed(&second).unwrap(),
    );
    assert_eq!(
        (old.plaintext.as_slice(), new.plaintext.as_slice()),
        (&b"one"[..], &b"two"[..])
    );
    // The older epoch still opens, and is said to be past.
    assert!(old.epoch_applied && !old.epoch_current);
    assert!(new.epoch_applied && new.epoch_current);
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

#[test]
fn a_removed_senders_message_opens_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (mut founder, member) = pair(&dir);
    let sealed = member.seal(b"before i left", b"").unwrap();
    let opened = founder.open_sealed(&sealed).unwrap();
    assert!(opened.sender_in_roster && opened.epoch_current);
    founder.remove_member(member.member_id().unwrap()).unwrap();
    // Still the member's message, sealed while it was in: genuine, and
    // flagged as stale twice over.
    let opened = founder.open_sealed(&sealed).unwrap();
    assert_eq!(opened.sender, member.member_id().unwrap());
    assert!(!opened.sender_in_roster);
    assert!(!opened.epoch_current);
    assert!(opened.epoch_applied);
}
