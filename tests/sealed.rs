//! Sealed messages through the public API (SPEC.md §16): members open each
//! other's messages in every epoch they were in and in no other; a changed
//! byte, a message moved to another epoch or group, and a member's forgery
//! are refused before any plaintext is returned; sealed app events are
//! audited without keys and read by the members of their epoch only.

mod common;

use std::num::NonZeroU32;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use common::{db_path, join, keys, options, package, refused, send};
use meshlog::{
    Body, DOMAIN_LABELS, Error, ErrorClass, EventHash, GroupId, MemberId, Mesh, MeshOptions,
    Padding, Role, SEALED_MAGIC, SEALED_OVERHEAD, SealError, Sealed, limits,
};
use tempfile::TempDir;

// Where the parts of a sealed message are (src/seal.rs, SPEC.md §16.1):
// magic (4), group (32), epoch (32), salt (32), the associated data's length
// (u32 LE) and the associated data; then the encrypted inner part, which is
// the sender (16), its signature (64), the plaintext's length (u32 LE), the
// plaintext and zeros; then the tag (16).
const GROUP_AT: usize = 4;
const EPOCH_AT: usize = 36;
const SALT_AT: usize = 68;
const AD_LEN_AT: usize = 100;
const FIXED_HEADER: usize = 104;
const SIGNATURE_AT: usize = 16;
const LENGTH_AT: usize = 80;
const INNER_HEADER: usize = 84;
const TAG_LEN: usize = 16;

/// The founder (member 1, owner) with alice (2) and bob (3) as members,
/// each on its own file joined from the founder's, each enabled: members
/// start disabled, and a disabled member does not seal.
fn three_members() -> (TempDir, Mesh, Mesh, Mesh) {
    let dir = tempfile::tempdir().unwrap();
    let mut founder = options(1)
        .create(db_path(&dir, "founder.redb"), keys(1), "ops")
        .unwrap();
    founder.set_enabled(true).unwrap();
    founder.add_member(package(2), Role::Member).unwrap();
    founder.add_member(package(3), Role::Member).unwrap();
    let mut alice = join(&founder, &db_path(&dir, "alice.redb"), 2);
    alice.set_enabled(true).unwrap();
    let mut bob = join(&founder, &db_path(&dir, "bob.redb"), 3);
    bob.set_enabled(true).unwrap();
    (dir, founder, alice, bob)
}

fn id(n: u8) -> MemberId {
    keys(n).member_id()
}

/// The sealed-message error of a call expected to fail with one.
fn seal_error<T>(result: meshlog::Result<T>) -> SealError {
    match refused(result) {
        Error::Seal(error) => error,
        other => panic!("expected a sealed-message error, got: {other}"),
    }
}

/// `sealed`'s bytes with `edit` applied, parsed again: the layout still
/// holds, so whatever refuses them is the opening.
fn edited(sealed: &Sealed, edit: impl FnOnce(&mut Vec<u8>)) -> Sealed {
    let mut bytes = sealed.to_bytes();
    edit(&mut bytes);
    Sealed::from_vec(bytes).expect("still laid out as a sealed message")
}

/// `sealed` with one bit of the byte at `at` flipped.
fn flipped(sealed: &Sealed, at: usize) -> Sealed {
    edited(sealed, |bytes| bytes[at] ^= 0x01)
}

/// `sealed` with its epoch field rewritten to `epoch`.
fn moved_to(sealed: &Sealed, epoch: EventHash) -> Sealed {
    edited(sealed, |bytes| {
        bytes[EPOCH_AT..EPOCH_AT + 32].copy_from_slice(epoch.as_bytes());
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// A domain label by its SPEC.md §2 name.
fn label(name: &str) -> &'static str {
    DOMAIN_LABELS
        .iter()
        .find(|(listed, _)| *listed == name)
        .map(|(_, label)| *label)
        .expect("a listed label")
}

/// The cipher of the message whose header is `header`, derived from its
/// epoch's secret as SPEC.md §16.2 lays it out: what every member of that
/// epoch can compute, since it holds the secret.
fn cipher_for(member: &Mesh, header: &[u8]) -> ChaCha20Poly1305 {
    let epoch = EventHash::from_bytes(header[EPOCH_AT..EPOCH_AT + 32].try_into().unwrap());
    let secret = member.epoch_secret(epoch).expect("a member of the epoch");
    let epoch_key = blake3::Hasher::new_derive_key(label("SEALED_EPOCH_KEY"))
        .update(secret.expose())
        .update(&header[GROUP_AT..GROUP_AT + 32])
        .update(&header[EPOCH_AT..EPOCH_AT + 32])
        .finalize();
    let message_key = blake3::Hasher::new_derive_key(label("SEALED_MESSAGE_KEY"))
        .update(epoch_key.as_bytes())
        .update(&header[SALT_AT..SALT_AT + 32])
        .finalize();
    ChaCha20Poly1305::new(&Key::from(*message_key.as_bytes()))
}

/// The nonce of a message's only segment (SPEC.md §16.2): segment 0, the
/// last. The messages these tests forge are shorter than one segment.
fn only_segment() -> Nonce {
    let mut nonce = [0u8; 12];
    nonce[11] = 1;
    Nonce::from(nonce)
}

/// `sealed` as a member of its epoch sees it: its header, and its inner
/// part decrypted (sender, signature, length, plaintext, padding).
fn decrypted(member: &Mesh, sealed: &Sealed) -> (Vec<u8>, Vec<u8>) {
    let bytes = sealed.as_bytes();
    let (header, body) = bytes.split_at(FIXED_HEADER + sealed.associated_data().len());
    assert!(body.len() <= 64 * 1024 + TAG_LEN, "one segment");
    let (ciphertext, tag) = body.split_last_chunk::<TAG_LEN>().expect("a tag");
    let mut inner = ciphertext.to_vec();
    cipher_for(member, header)
        .decrypt_inout_detached(
            &only_segment(),
            header,
            inner.as_mut_slice().into(),
            &Tag::from(*tag),
        )
        .expect("a member of the epoch decrypts");
    (header.to_vec(), inner)
}

/// `inner` encrypted under `header` with the key a member of the header's
/// epoch derives: what a member who wants to forge a message sends.
fn resealed(member: &Mesh, header: &[u8], inner: &[u8]) -> Sealed {
    let mut body = inner.to_vec();
    let tag = cipher_for(member, header)
        .encrypt_inout_detached(&only_segment(), header, body.as_mut_slice().into())
        .expect("encrypt");
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(&body);
    bytes.extend_from_slice(&tag);
    Sealed::from_vec(bytes).expect("laid out as a sealed message")
}

/// The founder seals, alice and bob open; alice seals, the founder opens;
/// after a rotation, new messages are sealed in the new epoch and the old
/// ones still open: each member holds the secret of every epoch it was in.
#[test]
fn members_open_each_others_messages_in_every_epoch() {
    let (_dir, mut founder, mut alice, mut bob) = three_members();
    let first = founder.current_epoch().unwrap();

    let from_founder = founder.seal(b"deploy at five", b"ops").unwrap();
    assert_eq!(from_founder.group(), founder.group());
    assert_eq!(from_founder.epoch(), first, "sealed in the current epoch");
    assert_eq!(from_founder.associated_data(), b"ops");
    assert!(from_founder.as_bytes().starts_with(&SEALED_MAGIC));
    assert!(
        !contains(from_founder.as_bytes(), b"deploy at five"),
        "the plaintext does not travel in the clear"
    );
    // It travels as bytes.
    let carried = Sealed::from_bytes(from_founder.as_bytes()).unwrap();
    assert_eq!(carried, from_founder);

    let by_alice = alice.open_sealed(&carried).unwrap();
    let by_bob = bob.open_sealed(&carried).unwrap();
    for opened in [&by_alice, &by_bob] {
        assert_eq!(opened.sender, id(1), "the sender is named, and checked");
        assert_eq!(opened.plaintext, b"deploy at five");
        assert_eq!(opened.associated_data, b"ops");
        assert_eq!(opened.epoch, from_founder.epoch());
        assert!(opened.epoch_applied);
    }
    // One message, one id, whoever opens it; the sender opens its own too.
    assert_eq!(by_alice.id, by_bob.id);
    assert_eq!(founder.open_sealed(&from_founder).unwrap().id, by_alice.id);
    // The same words sealed again are another message: a fresh salt, so
    // other bytes under another key, and another id.
    let again = founder.seal(b"deploy at five", b"ops").unwrap();
    assert_ne!(again.as_bytes(), from_founder.as_bytes());
    assert_ne!(alice.open_sealed(&again).unwrap().id, by_alice.id);

    // Alice seals in her own copy; the founder opens it in his.
    let from_alice = alice.seal(b"ack", b"").unwrap();
    assert_eq!(from_alice.epoch(), first);
    let opened = founder.open_sealed(&from_alice).unwrap();
    assert_eq!(opened.sender, id(2));
    assert_eq!(opened.plaintext, b"ack");
    assert!(opened.associated_data.is_empty());

    // A rotation: the founder's next message is of the new epoch.
    let later = founder.refresh("weekly").unwrap();
    let newer = founder.seal(b"the new week", b"ops").unwrap();
    assert_eq!(newer.epoch(), later);
    assert_ne!(newer.epoch(), from_founder.epoch());
    // Bob has not synced: his copy does not hold that epoch yet.
    assert_eq!(
        seal_error(bob.open_sealed(&newer)),
        SealError::UnknownEpoch(later)
    );
    send(&founder, &mut alice);
    send(&founder, &mut bob);
    for member in [&alice, &bob] {
        let opened = member.open_sealed(&newer).unwrap();
        assert_eq!((opened.sender, opened.epoch), (id(1), later));
        assert_eq!(opened.plaintext, b"the new week");
        assert!(opened.epoch_applied);
        // The old messages still open, in their own epoch, which still applies.
        let old = member.open_sealed(&from_founder).unwrap();
        assert_eq!((old.epoch, old.id), (first, by_alice.id));
        assert!(old.epoch_applied);
    }
    assert_eq!(founder.open_sealed(&from_alice).unwrap().sender, id(2));
    // Alice, synced, seals in the new epoch too.
    let alice_later = alice.seal(b"ack again", b"").unwrap();
    assert_eq!(alice_later.epoch(), later);
    assert_eq!(bob.open_sealed(&alice_later).unwrap().sender, id(2));
}

/// A message opens only as it was sealed: a change to any byte of it is
/// refused, and the error says what kind of change it was, before any byte
/// of plaintext.
#[test]
fn a_changed_byte_anywhere_is_refused_before_any_plaintext() {
    let (_dir, founder, alice, _bob) = three_members();
    let sealed = founder.seal(b"deploy at five", b"ops").unwrap();
    let epoch = sealed.epoch();
    let ad_end = FIXED_HEADER + 3;
    let len = sealed.as_bytes().len();
    assert_eq!(
        alice.open_sealed(&sealed).unwrap().plaintext,
        b"deploy at five"
    );

    // The salt (another message key), the associated data and its length
    // (the header is the AEAD's associated data), every part of the inner
    // part (sender, signature, length, plaintext) and the tag: the AEAD
    // does not verify.
    let changes = [
        ("salt", flipped(&sealed, SALT_AT)),
        ("salt's last byte", flipped(&sealed, SALT_AT + 31)),
        ("associated data", flipped(&sealed, FIXED_HEADER)),
        (
            "associated data's length",
            edited(&sealed, |bytes| bytes[AD_LEN_AT] = 2),
        ),
        ("sender", flipped(&sealed, ad_end)),
        ("signature", flipped(&sealed, ad_end + SIGNATURE_AT)),
        ("length", flipped(&sealed, ad_end + LENGTH_AT)),
        ("plaintext", flipped(&sealed, ad_end + INNER_HEADER)),
        ("tag", flipped(&sealed, len - 1)),
        (
            "last byte cut",
            edited(&sealed, |bytes| bytes.truncate(len - 1)),
        ),
        ("a byte added", edited(&sealed, |bytes| bytes.push(0))),
    ];
    for (what, changed) in &changes {
        let error = refused(alice.open_sealed(changed));
        assert!(
            matches!(&error, Error::Seal(SealError::DecryptFailed { epoch: named }) if *named == epoch),
            "{what}: {error}"
        );
        assert_eq!(error.class(), ErrorClass::VerificationFailure, "{what}");
    }

    // Another group named: not this mesh's message.
    let foreign = flipped(&sealed, GROUP_AT);
    assert_eq!(
        seal_error(alice.open_sealed(&foreign)),
        SealError::ForeignGroup {
            expected: alice.group(),
            found: foreign.group()
        }
    );
    // Another epoch named, one no copy holds.
    let unknown = flipped(&sealed, EPOCH_AT + 7);
    assert_eq!(
        seal_error(alice.open_sealed(&unknown)),
        SealError::UnknownEpoch(unknown.epoch())
    );
    // Another magic: not a sealed message at all.
    let mut bytes = sealed.to_bytes();
    bytes[0] ^= 0x01;
    assert!(matches!(
        Sealed::from_bytes(&bytes),
        Err(SealError::Malformed(_))
    ));
}

/// A member holds the epoch's secret, and so every message key of it: it
/// can decrypt any message of the epoch, change it, and encrypt it again.
/// What it cannot make is the sender's signature inside, which covers the
/// header, the sender and the plaintext: every such forgery is refused.
#[test]
fn a_member_who_holds_the_key_cannot_make_a_message_that_opens_as_anothers() {
    let (_dir, founder, alice, bob) = three_members();
    let epoch = founder.current_epoch().unwrap();
    let from_founder = founder.seal(b"pay alice 10", b"ledger").unwrap();
    let from_alice = alice.seal(b"alice's own words", b"ledger").unwrap();
    let original = bob.open_sealed(&from_founder).unwrap();

    // Alice derives the keys as SPEC.md §16.2 says and decrypts the
    // founder's message; the same inner part encrypted again opens as
    // before, so the refusals below are the changes' doing.
    let (header, inner) = decrypted(&alice, &from_founder);
    assert_eq!(&inner[..16], id(1).as_bytes());
    assert_eq!(&inner[LENGTH_AT..INNER_HEADER], &12u32.to_le_bytes());
    assert_eq!(&inner[INNER_HEADER..INNER_HEADER + 12], b"pay alice 10");
    let unchanged = bob.open_sealed(&resealed(&alice, &header, &inner)).unwrap();
    assert_eq!((unchanged.sender, unchanged.id), (id(1), original.id));

    let forged_founder = SealError::BadSignature { sender: id(1) };
    // The founder's message with another plaintext, under his name.
    let mut changed = inner.clone();
    changed[INNER_HEADER + 10] = b'9';
    let error = refused(bob.open_sealed(&resealed(&alice, &header, &changed)));
    assert!(
        matches!(&error, Error::Seal(seal) if *seal == forged_founder),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::VerificationFailure);
    // The same inner part under other associated data (of the same length,
    // encrypted under the new header): the AEAD holds, the signature not.
    let mut other_header = header.clone();
    other_header[FIXED_HEADER..].copy_from_slice(b"LEDGER");
    assert_eq!(
        seal_error(bob.open_sealed(&resealed(&alice, &other_header, &inner))),
        forged_founder
    );

    // Her own message, which she signed, relabelled as the founder's or
    // bob's: it opens as neither.
    let (own_header, own_inner) = decrypted(&alice, &from_alice);
    for other in [id(1), id(3)] {
        let mut relabelled = own_inner.clone();
        relabelled[..16].copy_from_slice(other.as_bytes());
        for opener in [&founder, &bob] {
            assert_eq!(
                seal_error(opener.open_sealed(&resealed(&alice, &own_header, &relabelled))),
                SealError::BadSignature { sender: other }
            );
        }
    }
    // A sender in no roster of the epoch.
    let stranger = id(9);
    let mut relabelled = own_inner.clone();
    relabelled[..16].copy_from_slice(stranger.as_bytes());
    let error = refused(bob.open_sealed(&resealed(&alice, &own_header, &relabelled)));
    assert!(
        matches!(&error, Error::Seal(SealError::UnknownSender { sender, epoch: named }) if *sender == stranger && *named == epoch),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::VerificationFailure);

    // The layout inside is checked too. A padded message of the founder's:
    // its plaintext, then 32 zeros (12 + 84 bytes, up to 128).
    let block = NonZeroU32::new(64).unwrap();
    let padded = founder
        .seal_with(b"pay alice 10", b"ledger", Padding::Multiple(block))
        .unwrap();
    let (padded_header, padded_inner) = decrypted(&alice, &padded);
    assert_eq!(padded_inner.len(), 128);
    // Padding that is not zeros.
    let mut dirty = padded_inner.clone();
    *dirty.last_mut().unwrap() = 1;
    assert!(matches!(
        seal_error(bob.open_sealed(&resealed(&alice, &padded_header, &dirty))),
        SealError::InvalidContent(_)
    ));
    // A length past the end.
    let mut long = padded_inner.clone();
    long[LENGTH_AT..INNER_HEADER].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        seal_error(bob.open_sealed(&resealed(&alice, &padded_header, &long))),
        SealError::InvalidContent(_)
    ));
    // A length that takes one zero of the padding into the plaintext: laid
    // out well, but the length is signed with the plaintext.
    let mut longer = padded_inner.clone();
    longer[LENGTH_AT..INNER_HEADER].copy_from_slice(&13u32.to_le_bytes());
    assert_eq!(
        seal_error(bob.open_sealed(&resealed(&alice, &padded_header, &longer))),
        forged_founder
    );
    // None of these forgeries changed what the real messages open to.
    assert_eq!(bob.open_sealed(&padded).unwrap().plaintext, b"pay alice 10");
    assert_eq!(bob.open_sealed(&from_alice).unwrap().sender, id(2));
}

/// A message is bound to its group and its epoch: one moved to another
/// epoch the receiver holds, or to or from another group, is refused, and
/// a member who moves one and encrypts it again under the other epoch's key
/// still cannot make its signature hold.
#[test]
fn a_message_moved_to_another_epoch_or_group_is_refused() {
    let (dir, mut founder, mut alice, _bob) = three_members();
    let genesis = EventHash::from_bytes(*founder.group().as_bytes());
    let added_alice = founder.epochs()[1].hash;
    let first = founder.current_epoch().unwrap();
    assert!(founder.epochs()[0].is_genesis && added_alice != first);
    let sealed = founder.seal(b"for this epoch", b"").unwrap();
    assert_eq!(sealed.epoch(), first);

    // To the genesis, whose secret the founder holds: its key does not
    // decrypt the message. Alice was not in the genesis's roster: she holds
    // no key for it, and is told so.
    assert_eq!(
        seal_error(founder.open_sealed(&moved_to(&sealed, genesis))),
        SealError::DecryptFailed { epoch: genesis }
    );
    let error = refused(alice.open_sealed(&moved_to(&sealed, genesis)));
    assert!(
        matches!(&error, Error::Seal(SealError::NotAMember { epoch, member }) if *epoch == genesis && *member == id(2)),
        "{error}"
    );
    // To the epoch that added alice, which both hold.
    for member in [&founder, &alice] {
        assert_eq!(
            seal_error(member.open_sealed(&moved_to(&sealed, added_alice))),
            SealError::DecryptFailed { epoch: added_alice }
        );
    }

    // To a later epoch, and a later message back to this one.
    let later = founder.refresh("weekly").unwrap();
    send(&founder, &mut alice);
    let newer = founder.seal(b"for the later epoch", b"").unwrap();
    assert_eq!(newer.epoch(), later);
    assert_eq!(
        seal_error(alice.open_sealed(&moved_to(&sealed, later))),
        SealError::DecryptFailed { epoch: later }
    );
    assert_eq!(
        seal_error(alice.open_sealed(&moved_to(&newer, first))),
        SealError::DecryptFailed { epoch: first }
    );
    // Alice moves the founder's message to the later epoch and encrypts it
    // under that epoch's key: the AEAD holds, the founder's signature,
    // which covers the epoch, does not.
    let (mut header, inner) = decrypted(&alice, &sealed);
    header[EPOCH_AT..EPOCH_AT + 32].copy_from_slice(later.as_bytes());
    assert_eq!(
        seal_error(founder.open_sealed(&resealed(&alice, &header, &inner))),
        SealError::BadSignature { sender: id(1) }
    );
    // The messages themselves still open.
    assert_eq!(alice.open_sealed(&sealed).unwrap().epoch, first);
    assert_eq!(alice.open_sealed(&newer).unwrap().epoch, later);

    // Another group, founded with the very same keys: its messages are not
    // this group's, nor this group's messages its.
    let mut other = options(7)
        .create(db_path(&dir, "other.redb"), keys(1), "another team")
        .unwrap();
    other.set_enabled(true).unwrap();
    let foreign = other.seal(b"for the other team", b"").unwrap();
    assert_eq!(foreign.group(), other.group());
    assert_ne!(other.group(), founder.group());
    let error = refused(founder.open_sealed(&foreign));
    assert!(
        matches!(&error, Error::Seal(SealError::ForeignGroup { expected, found }) if *expected == founder.group() && *found == other.group()),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::CouldNotRun);
    assert_eq!(
        seal_error(other.open_sealed(&sealed)),
        SealError::ForeignGroup {
            expected: other.group(),
            found: founder.group()
        }
    );
    // Relabelled as this group's: it names an epoch this group does not hold.
    let relabelled = edited(&foreign, |bytes| {
        bytes[GROUP_AT..GROUP_AT + 32].copy_from_slice(founder.group().as_bytes());
    });
    let error = refused(founder.open_sealed(&relabelled));
    assert!(
        matches!(&error, Error::Seal(SealError::UnknownEpoch(epoch)) if *epoch == foreign.epoch()),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::CouldNotRun);
}

/// A removed member keeps what it was given: it opens the messages of the
/// epochs it was in, and its own messages of then still open for the
/// others; it opens none of the epochs after, and seals no more.
#[test]
fn a_removed_member_opens_the_epochs_it_was_in_and_none_after() {
    let (_dir, mut founder, mut alice, mut bob) = three_members();
    let bob_id = id(3);
    let while_in = founder.seal(b"before the removal", b"").unwrap();
    let from_bob = bob.seal(b"bob's last word", b"").unwrap();
    let removed = founder.remove_member(bob_id).unwrap();
    let after = founder.seal(b"after the removal", b"").unwrap();
    assert_eq!(after.epoch(), removed, "sealed in the epoch without bob");
    send(&founder, &mut bob);
    send(&founder, &mut alice);

    let error = refused(bob.open_sealed(&after));
    assert!(
        matches!(&error, Error::Seal(SealError::NotAMember { epoch, member }) if *epoch == removed && *member == bob_id),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::Refusal);
    // The epoch he was in still opens for him.
    let opened = bob.open_sealed(&while_in).unwrap();
    assert_eq!(opened.plaintext, b"before the removal");
    assert_eq!(opened.sender, id(1));
    // Those left open the new message.
    assert_eq!(
        alice.open_sealed(&after).unwrap().plaintext,
        b"after the removal"
    );
    // What he sealed while a member still opens, and names him: he was in
    // that epoch's roster.
    for member in [&founder, &alice] {
        let opened = member.open_sealed(&from_bob).unwrap();
        assert_eq!(opened.sender, bob_id);
        assert!(opened.epoch_applied);
    }
    // He seals no more: he is in no epoch he may write under.
    let error = refused(bob.seal(b"still here?", b""));
    assert!(
        matches!(&error, Error::NotInRoster { member } if *member == bob_id),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::Refusal);
}

/// A sealed app event is verified like any other event by anyone with the
/// file (its kind and padded size in the clear, its plaintext not), and
/// opened by the members of its epoch only, its sender the event's author.
#[test]
fn a_sealed_app_event_is_audited_without_keys_and_read_by_members_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut founder = options(1)
        .create(db_path(&dir, "founder.redb"), keys(1), "ops")
        .unwrap();
    founder.set_enabled(true).unwrap();
    founder.add_member(package(2), Role::Member).unwrap();
    let bob_was_in = founder.add_member(package(3), Role::Member).unwrap();
    let early = founder.append_sealed("note", b"while bob was in").unwrap();
    let removed = founder.remove_member(id(3)).unwrap();
    let mut alice = join(&founder, &db_path(&dir, "alice.redb"), 2);
    alice.set_enabled(true).unwrap();
    let secret: &[u8] = b"the db password is hunter2";
    let note = alice.append_sealed("note", secret).unwrap();
    let plain = alice.append_app("note", b"in the clear").unwrap();
    // A sealed payload is bounded as an app payload is; nothing is written.
    let len = alice.len();
    let error = refused(alice.append_sealed("note", &vec![0; limits::MAX_APP_PAYLOAD + 1]));
    assert!(
        matches!(&error, Error::Seal(SealError::TooLarge { .. })),
        "{error}"
    );
    assert_eq!(alice.len(), len);

    // An auditor's copy, opened without keys: every event verifies.
    let audit_path = db_path(&dir, "audit.redb");
    alice.backup(&audit_path).unwrap();
    let audit = Mesh::open_read_only(&audit_path).unwrap();
    assert_eq!(audit.digest(), alice.digest());
    let entry = audit
        .log()
        .find(|entry| entry.event.hash() == note)
        .expect("the sealed event is held");
    assert_eq!(entry.event.event().author, id(2));
    assert_eq!(entry.event.event().body.kind_name(), "sealed");
    let Body::SealedApp {
        epoch,
        kind,
        sealed,
    } = &entry.event.event().body
    else {
        panic!("not a sealed app event: {:?}", entry.event.event().body)
    };
    assert_eq!(*epoch, removed, "written under the epoch without bob");
    assert_eq!(kind, "note");
    assert!(
        !contains(sealed, secret),
        "the plaintext is not in the file"
    );
    let parsed = Sealed::from_bytes(sealed).unwrap();
    assert_eq!(parsed.group(), audit.group());
    assert_eq!(parsed.epoch(), removed);
    assert_eq!(parsed.associated_data(), b"note", "the kind is bound to it");
    assert!(parsed.padded_len() >= INNER_HEADER + secret.len());
    // Without keys, nothing opens.
    assert!(matches!(refused(audit.open_event(note)), Error::NoKeys));
    drop(audit);

    // A member opens it: the author herself, the founder once synced, and
    // the auditor's copy opened read-only with a member's keys.
    let opened = alice.open_event(note).unwrap();
    assert_eq!(opened.sender, id(2));
    assert_eq!(opened.plaintext, secret);
    assert_eq!(opened.associated_data, b"note");
    assert_eq!(opened.epoch, removed);
    send(&alice, &mut founder);
    let by_founder = founder.open_event(note).unwrap();
    assert_eq!((by_founder.sender, by_founder.id), (id(2), opened.id));
    // Lifted from the file, the payload is not a message its author sent:
    // it does not open as one (SPEC.md §16.5).
    assert!(parsed.is_app_payload());
    assert!(matches!(
        refused(founder.open_sealed(&parsed)),
        Error::Seal(SealError::WrongContext { .. })
    ));
    let reader = MeshOptions::new()
        .open_read_only(&audit_path, Some(keys(1)))
        .unwrap();
    assert_eq!(reader.open_event(note).unwrap().plaintext, secret);
    assert_eq!(reader.open_event(early).unwrap().sender, id(1));
    drop(reader);

    // Bob, removed before it was written, holds the event but cannot open
    // it; he opens the one written while he was in.
    let bob = join(&alice, &db_path(&dir, "bob.redb"), 3);
    let error = refused(bob.open_event(note));
    assert!(
        matches!(&error, Error::Seal(SealError::NotAMember { epoch, member }) if *epoch == removed && *member == id(3)),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::Refusal);
    let opened_early = bob.open_event(early).unwrap();
    assert_eq!(opened_early.plaintext, b"while bob was in");
    assert_eq!(opened_early.epoch, bob_was_in);

    // An event that is not sealed, and one the mesh does not hold.
    for event in [plain, EventHash::from_bytes([7; 32])] {
        let error = refused(alice.open_event(event));
        assert!(
            matches!(&error, Error::Seal(SealError::NotSealed(named)) if *named == event),
            "{error}"
        );
        assert_eq!(error.class(), ErrorClass::CouldNotRun);
    }
}

/// What an outsider learns of a message's size is its padded length: no
/// padding shows the plaintext's length exactly, Padmé only its top bits, a
/// block size the number of blocks; every padding opens.
#[test]
fn padding_hides_the_length_as_asked_and_every_padding_opens() {
    let (_dir, founder, alice, _bob) = three_members();
    assert_eq!(SEALED_OVERHEAD, FIXED_HEADER + INNER_HEADER + TAG_LEN);
    let plaintext = vec![0x61u8; 1000];

    let none = founder.seal_with(&plaintext, b"", Padding::None).unwrap();
    assert_eq!(none.padded_len(), INNER_HEADER + 1000);
    assert_eq!(none.as_bytes().len(), SEALED_OVERHEAD + 1000);
    let with_ad = founder
        .seal_with(&plaintext, b"abc", Padding::None)
        .unwrap();
    assert_eq!(with_ad.padded_len(), INNER_HEADER + 1000);
    assert_eq!(with_ad.as_bytes().len(), SEALED_OVERHEAD + 3 + 1000);

    // Padmé: 1,084 inner bytes have 11 significant bits, of which the top
    // 4 may be set: up to the next multiple of 64, 1,088. The default.
    let padme = founder.seal_with(&plaintext, b"", Padding::Padme).unwrap();
    assert_eq!(padme.padded_len(), 1088);
    assert_eq!(Padding::default(), Padding::Padme);
    assert_eq!(founder.seal(&plaintext, b"").unwrap().padded_len(), 1088);
    // Plaintexts of 1,000 to 1,004 bytes look alike; 1,005 is the next size.
    for len in [1001, 1004] {
        let sealed = founder.seal(&vec![0x61; len], b"").unwrap();
        assert_eq!(sealed.padded_len(), 1088, "{len}");
    }
    assert_eq!(
        founder.seal(&vec![0x61; 1005], b"").unwrap().padded_len(),
        1152
    );
    // At most 12% more than the unpadded inner part.
    for len in [0, 1, 45, 100, 999, 4097, 65_536] {
        let unpadded = INNER_HEADER + len;
        let padded = founder.seal(&vec![0x61; len], b"").unwrap().padded_len();
        assert!(
            padded >= unpadded && padded * 100 <= unpadded * 112,
            "{len}: {padded} for {unpadded}"
        );
    }

    let block = NonZeroU32::new(256).unwrap();
    let multiple = founder
        .seal_with(&plaintext, b"", Padding::Multiple(block))
        .unwrap();
    assert_eq!(multiple.padded_len() % 256, 0);
    assert_eq!(multiple.padded_len(), 1280);
    let one = NonZeroU32::new(1).unwrap();
    let by_ones = founder
        .seal_with(&plaintext, b"", Padding::Multiple(one))
        .unwrap();
    assert_eq!(by_ones.padded_len(), none.padded_len());

    for sealed in [&none, &with_ad, &padme, &multiple, &by_ones] {
        let opened = alice.open_sealed(sealed).unwrap();
        assert_eq!(opened.plaintext, plaintext, "the padding is not plaintext");
        assert_eq!(opened.sender, id(1));
    }
    // The empty message, too.
    let empty = founder.seal_with(b"", b"", Padding::None).unwrap();
    assert_eq!(empty.as_bytes().len(), SEALED_OVERHEAD);
    assert!(alice.open_sealed(&empty).unwrap().plaintext.is_empty());

    // Padding past the largest inner part is refused before anything is
    // sealed.
    let error = refused(founder.seal_with(b"x", b"", Padding::Multiple(NonZeroU32::MAX)));
    assert!(
        matches!(&error, Error::Seal(SealError::TooLarge { .. })),
        "{error}"
    );
}

/// Members start disabled, and a disabled member does not seal; a mesh
/// opened without keys neither seals nor opens; a read-only copy with a
/// member's keys does both and writes nothing.
#[test]
fn only_an_enabled_member_with_keys_seals() {
    let dir = tempfile::tempdir().unwrap();
    let mut founder = options(1)
        .create(db_path(&dir, "founder.redb"), keys(1), "ops")
        .unwrap();
    let genesis = founder.current_epoch().unwrap();
    let error = refused(founder.seal(b"too early", b""));
    assert!(
        matches!(&error, Error::Disabled { member } if *member == id(1)),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::Refusal);
    founder.set_enabled(true).unwrap();
    let in_genesis = founder.seal(b"in the genesis epoch", b"").unwrap();
    assert_eq!(in_genesis.epoch(), genesis);
    let opened = founder.open_sealed(&in_genesis).unwrap();
    assert!(opened.epoch_applied, "the genesis always applies");

    founder.add_member(package(2), Role::Member).unwrap();
    let later = founder.seal(b"to alice", b"").unwrap();
    // Alice, added but not enabled yet, opens; she does not seal.
    let mut alice = join(&founder, &db_path(&dir, "alice.redb"), 2);
    assert_eq!(alice.open_sealed(&later).unwrap().plaintext, b"to alice");
    let error = refused(alice.seal(b"hello", b""));
    assert!(
        matches!(&error, Error::Disabled { member } if *member == id(2)),
        "{error}"
    );
    // The genesis's secret was never hers.
    assert!(matches!(
        seal_error(alice.open_sealed(&in_genesis)),
        SealError::NotAMember { .. }
    ));
    alice.set_enabled(true).unwrap();
    assert_eq!(
        founder
            .open_sealed(&alice.seal(b"hello", b"").unwrap())
            .unwrap()
            .sender,
        id(2)
    );

    // A copy opened without keys.
    let copy = db_path(&dir, "copy.redb");
    founder.backup(&copy).unwrap();
    let audit = Mesh::open_read_only(&copy).unwrap();
    for error in [
        refused(audit.seal(b"x", b"")),
        refused(audit.open_sealed(&later)),
    ] {
        assert!(matches!(error, Error::NoKeys), "{error}");
        assert_eq!(error.class(), ErrorClass::CouldNotRun);
    }
    drop(audit);
    // The same copy read-only with the founder's keys: what the CLI does.
    let before = common::file_hash(&copy);
    let reader = MeshOptions::new()
        .open_read_only(&copy, Some(keys(1)))
        .unwrap();
    let from_reader = reader.seal(b"from a read-only copy", b"").unwrap();
    assert_eq!(reader.open_sealed(&later).unwrap().sender, id(1));
    drop(reader);
    assert_eq!(alice.open_sealed(&from_reader).unwrap().sender, id(1));
    assert_eq!(common::file_hash(&copy), before, "sealing writes nothing");
}

/// Bytes that are not a sealed message are refused by their layout alone,
/// and a length over the limits before any byte is copied.
#[test]
fn bytes_that_are_not_a_sealed_message_are_refused_by_their_layout() {
    let (_dir, founder, _alice, _bob) = three_members();
    let sealed = founder.seal(b"a real one", b"ad").unwrap();
    let header_len = FIXED_HEADER + 2;
    fn malformed(bytes: &[u8]) {
        let result = Sealed::from_bytes(bytes);
        assert!(
            matches!(result, Err(SealError::Malformed(_))),
            "{} bytes: {result:?}",
            bytes.len()
        );
        // The same from an owned buffer.
        assert_eq!(Sealed::from_vec(bytes.to_vec()), result);
        let error = Error::from(result.unwrap_err());
        assert_eq!(error.class(), ErrorClass::CouldNotRun);
    }
    malformed(b"");
    malformed(&SEALED_MAGIC);
    malformed(&[0x55; 300]);
    malformed(&[b'm'; 300]);
    // The header alone; the header and a tag; one byte short of a sender,
    // a signature and a length.
    let bytes = sealed.as_bytes();
    malformed(&bytes[..header_len]);
    malformed(&[&bytes[..header_len], &[0; TAG_LEN][..]].concat());
    malformed(&[&bytes[..header_len], &[0; INNER_HEADER - 1 + TAG_LEN][..]].concat());
    // An associated data's length past the end.
    let mut long_ad = sealed.to_bytes();
    long_ad[AD_LEN_AT..FIXED_HEADER].copy_from_slice(&1000u32.to_le_bytes());
    malformed(&long_ad);
    // The smallest layout parses (and does not open).
    let smallest = [&bytes[..header_len], &[0; INNER_HEADER + TAG_LEN][..]].concat();
    let parsed = Sealed::from_bytes(&smallest).unwrap();
    assert_eq!(parsed.padded_len(), INNER_HEADER);
    assert_eq!(
        seal_error(founder.open_sealed(&parsed)),
        SealError::DecryptFailed {
            epoch: sealed.epoch()
        }
    );

    // An associated data's length over the limit.
    let mut huge_ad = sealed.to_bytes();
    huge_ad[AD_LEN_AT..FIXED_HEADER]
        .copy_from_slice(&(limits::MAX_SEALED_AD as u32 + 1).to_le_bytes());
    let result = Sealed::from_bytes(&huge_ad);
    assert!(
        matches!(result, Err(SealError::TooLarge { len, max, .. }) if len == limits::MAX_SEALED_AD + 1 && max == limits::MAX_SEALED_AD),
        "{result:?}"
    );
    // A message over the largest size (about 19 MB): the largest inner
    // part with a tag for each of its 64 KiB segments.
    assert_eq!(
        Sealed::MAX_BYTES,
        FIXED_HEADER
            + limits::MAX_SEALED_AD
            + limits::MAX_SEALED_INNER
            + TAG_LEN * limits::MAX_SEALED_INNER.div_ceil(64 * 1024)
    );
    let mut oversized = vec![0u8; Sealed::MAX_BYTES + 1];
    oversized[..4].copy_from_slice(&SEALED_MAGIC);
    let result = Sealed::from_bytes(&oversized);
    assert!(
        matches!(result, Err(SealError::TooLarge { len, max, .. }) if len == Sealed::MAX_BYTES + 1 && max == Sealed::MAX_BYTES),
        "{result:?}"
    );
    let result = Sealed::from_vec(oversized);
    assert!(
        matches!(result, Err(SealError::TooLarge { .. })),
        "{result:?}"
    );
    assert_eq!(
        Error::from(result.unwrap_err()).class(),
        ErrorClass::CouldNotRun
    );

    // Sealing over the limits is refused too: the plaintext, the
    // associated data.
    let error = refused(founder.seal(&vec![0; limits::MAX_SEALED_PLAINTEXT + 1], b""));
    assert!(
        matches!(&error, Error::Seal(SealError::TooLarge { len, .. }) if *len == limits::MAX_SEALED_PLAINTEXT + 1),
        "{error}"
    );
    let error = refused(founder.seal(b"x", &vec![0; limits::MAX_SEALED_AD + 1]));
    assert!(
        matches!(&error, Error::Seal(SealError::TooLarge { len, .. }) if *len == limits::MAX_SEALED_AD + 1),
        "{error}"
    );
}

/// Every sealed-message error has one class: the message is wrong
/// (verification failure), the local member is not a recipient (refusal),
/// or the opening could not run (not a message of this mesh, or of an
/// epoch it does not hold yet).
#[test]
fn every_seal_error_has_its_class() {
    let epoch = EventHash::from_bytes([1; 32]);
    let group = GroupId::from_bytes([2; 32]);
    let (member, other) = (id(1), id(2));
    let classes = [
        (SealError::Malformed("short"), ErrorClass::CouldNotRun),
        (
            SealError::TooLarge {
                what: "the plaintext",
                len: 2,
                max: 1,
            },
            ErrorClass::CouldNotRun,
        ),
        (
            SealError::ForeignGroup {
                expected: group,
                found: GroupId::from_bytes([3; 32]),
            },
            ErrorClass::CouldNotRun,
        ),
        (SealError::UnknownEpoch(epoch), ErrorClass::CouldNotRun),
        (SealError::NotSealed(epoch), ErrorClass::CouldNotRun),
        (SealError::Randomness, ErrorClass::CouldNotRun),
        (SealError::NotAMember { epoch, member }, ErrorClass::Refusal),
        (
            SealError::DecryptFailed { epoch },
            ErrorClass::VerificationFailure,
        ),
        (
            SealError::InvalidContent("padding"),
            ErrorClass::VerificationFailure,
        ),
        (
            SealError::UnknownSender {
                sender: member,
                epoch,
            },
            ErrorClass::VerificationFailure,
        ),
        (
            SealError::BadSignature { sender: member },
            ErrorClass::VerificationFailure,
        ),
        (
            SealError::SenderMismatch {
                author: member,
                sender: other,
            },
            ErrorClass::VerificationFailure,
        ),
    ];
    for (error, class) in classes {
        let message = error.to_string();
        assert_eq!(Error::from(error).class(), class, "{message}");
    }
    assert_eq!(Error::Disabled { member }.class(), ErrorClass::Refusal);
    assert_eq!(Error::NoKeys.class(), ErrorClass::CouldNotRun);
}
