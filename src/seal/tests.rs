use super::*;

use ed25519_dalek::Signer;

use crate::envelope::EpochSecret;

const BEGIN: &str = "<!-- sealed-vectors:begin -->\n```text\n";
const END: &str = "```\n<!-- sealed-vectors:end -->";

/// [`seal`] of a message (not an app event's payload).
#[allow(clippy::too_many_arguments)]
fn seal_message(
    key: &EpochKey,
    group: GroupId,
    epoch: EventHash,
    sender: &LocalKeys,
    salt: [u8; 32],
    plaintext: &[u8],
    ad: &[u8],
    padding: Padding,
) -> Result<Sealed, SealError> {
    seal(
        key,
        group,
        epoch,
        sender,
        salt,
        (plaintext, ad),
        padding,
        Context::Message,
    )
}

fn keys(seed: u8) -> LocalKeys {
    LocalKeys::from_secret_bytes(&[seed; 32], &[seed + 100; 32])
}

fn hex32(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).unwrap();
    out
}

/// An epoch key of a made-up epoch.
fn fixture() -> (EpochKey, GroupId, EventHash) {
    let secret = EpochSecret::from_bytes_for_test([0x11; 32]);
    let group = GroupId::from_bytes([0x22; 32]);
    let epoch = EventHash::from_bytes([0x33; 32]);
    (EpochKey::derive(&secret, group, epoch), group, epoch)
}

fn sealed_by(sender: &LocalKeys, plaintext: &[u8], ad: &[u8], padding: Padding) -> Sealed {
    let (key, group, epoch) = fixture();
    seal_message(
        &key, group, epoch, sender, [0x44; 32], plaintext, ad, padding,
    )
    .unwrap()
}

fn open_as(sealed: &Sealed, sender_key: &SigningPublicKey) -> Result<Vec<u8>, SealError> {
    let (key, _, _) = fixture();
    let decrypted = decrypt(&key, sealed)?;
    decrypted
        .verify(&SenderKey::decode(sender_key).unwrap())
        .map(|(plaintext, _)| plaintext)
}

/// Encrypts `inner` under `header` as a member can: every member holds the
/// epoch key, so every member can make the AEAD verify.
fn reencrypted(header: &[u8], inner: &[u8]) -> Sealed {
    let (key, _, _) = fixture();
    let mut bytes = header.to_vec();
    let mut body = vec![0u8; sealed_inner_len(inner.len())];
    let salt = array32(header, SALT_AT);
    place_inner(&mut body, 0, inner);
    seal_in_place(&key.cipher(&salt), header, &mut body).unwrap();
    bytes.extend_from_slice(&body);
    Sealed::from_vec(bytes).unwrap()
}

/// The header and the decrypted inner part of `sealed`.
fn parts(sealed: &Sealed) -> (Vec<u8>, Vec<u8>) {
    parts_under(&fixture().0, sealed)
}

fn parts_under(key: &EpochKey, sealed: &Sealed) -> (Vec<u8>, Vec<u8>) {
    let decrypted = decrypt(key, sealed).unwrap();
    (sealed.header().to_vec(), decrypted.inner.to_vec())
}

#[test]
fn a_sealed_message_opens_under_its_senders_key_only() {
    let alice = keys(1);
    let sealed = sealed_by(&alice, b"hello", b"ad", Padding::Padme);
    assert_eq!(sealed.group(), GroupId::from_bytes([0x22; 32]));
    assert_eq!(sealed.epoch(), EventHash::from_bytes([0x33; 32]));
    assert_eq!(sealed.associated_data(), b"ad");
    let alice_key = alice.public().signing;
    assert_eq!(open_as(&sealed, &alice_key).unwrap(), b"hello");
    // Checked under another member's key, the signature fails.
    let bob_key = keys(2).public().signing;
    assert_eq!(
        open_as(&sealed, &bob_key),
        Err(SealError::BadSignature {
            sender: alice.member_id()
        })
    );
}

#[test]
fn a_member_cannot_make_a_message_that_opens_as_another_members() {
    let (alice, mallory) = (keys(1), keys(2));
    let alice_key = alice.public().signing;
    let genuine = sealed_by(&alice, b"pay 10 to bob", b"", Padding::None);
    let (header, inner) = parts(&genuine);

    // 1. Mallory keeps Alice's sender id and signature and changes the
    //    plaintext (same length): the AEAD verifies (Mallory holds the
    //    key), the signature does not.
    let mut changed = inner.clone();
    let text_at = INNER_HEADER;
    changed[text_at..text_at + 6].copy_from_slice(b"pay 99");
    let forged = reencrypted(&header, &changed);
    assert_eq!(
        open_as(&forged, &alice_key),
        Err(SealError::BadSignature {
            sender: alice.member_id()
        })
    );

    // 2. Mallory signs a message of her own and names Alice as sender.
    let mut own = inner.clone();
    let digest = content_digest(&header, alice.member_id(), b"pay 10 to bob");
    let signature = mallory.signing_key().sign(&signed_message(&digest));
    own[16..16 + SIGNATURE_LEN].copy_from_slice(&signature.to_bytes());
    assert!(matches!(
        open_as(&reencrypted(&header, &own), &alice_key),
        Err(SealError::BadSignature { .. })
    ));

    // 3. Mallory moves Alice's signed content under another header (other
    //    associated data): the digest covers the header.
    let mut other_header = header.clone();
    other_header[FIXED_HEADER - 4..FIXED_HEADER].copy_from_slice(&3u32.to_le_bytes());
    other_header.extend_from_slice(b"new");
    assert!(matches!(
        open_as(&reencrypted(&other_header, &inner), &alice_key),
        Err(SealError::BadSignature { .. })
    ));

    // 4. Mallory relabels the message with her own id, keeping Alice's
    //    signature: it does not verify under Mallory's key either.
    let mut relabelled = inner.clone();
    relabelled[..16].copy_from_slice(mallory.member_id().as_bytes());
    assert!(matches!(
        open_as(
            &reencrypted(&header, &relabelled),
            &mallory.public().signing
        ),
        Err(SealError::BadSignature { .. })
    ));

    // The unchanged parts, re-encrypted, still open: the checks above
    // failed for what was changed, not for being re-encrypted.
    assert_eq!(
        open_as(&reencrypted(&header, &inner), &alice_key).unwrap(),
        b"pay 10 to bob"
    );
}

#[test]
fn every_altered_byte_is_refused() {
    let alice = keys(1);
    let key = alice.public().signing;
    let sealed = sealed_by(&alice, b"short message", b"ad", Padding::None);
    for at in 0..sealed.as_bytes().len() {
        let mut bytes = sealed.to_bytes();
        bytes[at] ^= 0x01;
        let outcome = Sealed::from_vec(bytes).and_then(|altered| open_as(&altered, &key));
        assert!(outcome.is_err(), "a flip of byte {at} went unnoticed");
    }
}

#[test]
fn content_that_decrypts_but_is_not_well_formed_is_refused() {
    let alice = keys(1);
    let key = alice.public().signing;
    let sealed = sealed_by(
        &alice,
        b"0123456789",
        b"",
        Padding::Multiple(NonZeroU32::new(64).unwrap()),
    );
    let (header, inner) = parts(&sealed);
    assert_eq!(inner.len(), 128, "84 + 10 bytes padded to 64s");
    let mut padding = inner.clone();
    *padding.last_mut().unwrap() = 1;
    assert_eq!(
        open_as(&reencrypted(&header, &padding), &key),
        Err(SealError::InvalidContent("padding that is not zeros"))
    );
    let mut length = inner.clone();
    length[80..84].copy_from_slice(&1000u32.to_le_bytes());
    assert_eq!(
        open_as(&reencrypted(&header, &length), &key),
        Err(SealError::InvalidContent("a length past the end"))
    );
    let mut over = inner.clone();
    over[80..84].copy_from_slice(&(limits::MAX_SEALED_PLAINTEXT as u32 + 1).to_le_bytes());
    assert_eq!(
        open_as(&reencrypted(&header, &over), &key),
        Err(SealError::InvalidContent("a plaintext over the limit"))
    );
    // The padded one, untouched, opens.
    assert_eq!(open_as(&sealed, &key).unwrap(), b"0123456789");
}

#[test]
fn parsing_checks_size_first_then_layout() {
    assert!(matches!(
        Sealed::from_bytes(&vec![0u8; Sealed::MAX_BYTES + 1]),
        Err(SealError::TooLarge { .. })
    ));
    assert!(matches!(
        Sealed::from_bytes(b"ml3s"),
        Err(SealError::Malformed(_))
    ));
    let sealed = sealed_by(&keys(1), b"x", b"", Padding::None);
    let mut wrong_magic = sealed.to_bytes();
    wrong_magic[0] = b'x';
    assert!(matches!(
        Sealed::from_vec(wrong_magic),
        Err(SealError::Malformed(_))
    ));
    let mut long_ad = sealed.to_bytes();
    long_ad[FIXED_HEADER - 4..FIXED_HEADER]
        .copy_from_slice(&(limits::MAX_SEALED_AD as u32 + 1).to_le_bytes());
    assert!(matches!(
        Sealed::from_vec(long_ad),
        Err(SealError::TooLarge { .. })
    ));
    let mut past_end = sealed.to_bytes();
    past_end[FIXED_HEADER - 4..FIXED_HEADER].copy_from_slice(&10_000u32.to_le_bytes());
    assert!(matches!(
        Sealed::from_vec(past_end),
        Err(SealError::Malformed(_))
    ));
    // Cut before the inner part's fixed fields: no sender to name.
    let cut = &sealed.as_bytes()[..FIXED_HEADER + 16 + 16];
    assert!(matches!(
        Sealed::from_bytes(cut),
        Err(SealError::Malformed(_))
    ));
}

#[test]
fn sealing_refuses_what_exceeds_the_limits() {
    let (key, group, epoch) = fixture();
    let alice = keys(1);
    let big_ad = vec![0u8; limits::MAX_SEALED_AD + 1];
    assert!(matches!(
        seal_message(
            &key,
            group,
            epoch,
            &alice,
            [0; 32],
            b"",
            &big_ad,
            Padding::None
        ),
        Err(SealError::TooLarge { .. })
    ));
    let huge_block = Padding::Multiple(NonZeroU32::new(u32::MAX).unwrap());
    assert!(matches!(
        seal_message(&key, group, epoch, &alice, [0; 32], b"", b"", huge_block),
        Err(SealError::TooLarge { .. })
    ));
}

#[test]
fn padme_pads_by_at_most_twelve_percent_and_hides_low_bits() {
    assert_eq!(padme(0), 0);
    assert_eq!(padme(1), 1);
    assert_eq!(padme(84), 88);
    assert_eq!(padme(1000), 1024);
    assert_eq!(padme(1025), 1088);
    for len in 2..200_000usize {
        let padded = padme(len);
        assert!(padded >= len);
        assert!((padded - len) * 100 <= len * 12, "{len} padded to {padded}");
        assert_eq!(padme(padded), padded, "padding is idempotent at {len}");
    }
    // All lengths of 1,000 to 1,024 look alike.
    assert!((1000..=1024).all(|len| padme(len) == 1024));
}

#[test]
fn each_message_has_its_own_key_and_the_id_ignores_padding() {
    let alice = keys(1);
    let (key, group, epoch) = fixture();
    let same = |salt: [u8; 32], padding| {
        seal_message(&key, group, epoch, &alice, salt, b"same", b"", padding).unwrap()
    };
    let one = same([1; 32], Padding::None);
    let two = same([2; 32], Padding::None);
    // Another salt: another key, so other ciphertext for the same plaintext.
    assert_ne!(
        one.as_bytes()[FIXED_HEADER..],
        two.as_bytes()[FIXED_HEADER..]
    );
    let padded = same([1; 32], Padding::Padme);
    let signing = alice.public().signing;
    let signing = SenderKey::decode(&signing).unwrap();
    let id = |sealed: &Sealed| decrypt(&key, sealed).unwrap().verify(&signing).unwrap().1;
    assert_eq!(id(&one), id(&padded), "one message, padded or not");
    assert_ne!(id(&one), id(&two), "two messages");
}

fn computed_vectors() -> Vec<(String, String)> {
    // The inputs come from SPEC.md §14's history: R1's secret, the group
    // and R1's hash; the admin seals.
    let secret = hex32("46f1dbe4db85c9f2c487d284ced17fb1b82c6f873fbe3c6ec2b9b52c546765eb");
    let group = GroupId::from_bytes(hex32(
        "62d661aeadd6df12f0d6d51a19a4c3dfdc8ef3613d52c480f081ddd2c7b1f1c7",
    ));
    let epoch = EventHash::from_bytes(hex32(
        "d6221bb9df34624f57462eb8f31114201a2ff33349392c02576240022c5e201b",
    ));
    let admin = keys(2);
    let salt = [0x5a; 32];
    let (plaintext, ad) = (b"a sealed message".as_slice(), b"vectors".as_slice());
    let epoch_key = EpochKey::derive(&EpochSecret::from_bytes_for_test(secret), group, epoch);
    let mut message_key = blake3::Hasher::new_derive_key(labels::SEALED_MESSAGE_KEY);
    message_key.update(&epoch_key.0).update(&salt);
    let sealed = seal_message(
        &epoch_key,
        group,
        epoch,
        &admin,
        salt,
        plaintext,
        ad,
        Padding::Padme,
    )
    .unwrap();
    let (header, inner) = parts_under(&epoch_key, &sealed);
    let digest = content_digest(&header, admin.member_id(), plaintext);
    let id = decrypt(&epoch_key, &sealed)
        .unwrap()
        .verify(&SenderKey::decode(&admin.public().signing).unwrap())
        .unwrap()
        .1;
    let mut out = Vec::new();
    let mut push = |name: &str, value: String| out.push((name.to_owned(), value));
    push("sealed.salt", hex::encode(salt));
    push("sealed.plaintext", hex::encode(plaintext));
    push("sealed.associated_data", hex::encode(ad));
    push("sealed.epoch_key", hex::encode(epoch_key.0));
    push(
        "sealed.message_key",
        message_key.finalize().to_hex().to_string(),
    );
    push("sealed.digest", hex::encode(digest));
    push(
        "sealed.signature",
        hex::encode(&inner[16..16 + SIGNATURE_LEN]),
    );
    push("sealed.inner", hex::encode(&inner));
    push("sealed.bytes", hex::encode(sealed.as_bytes()));
    push("sealed.id", id.to_string());
    // A message of two segments, unpadded: too long to print, so its
    // length and its plain BLAKE3 hash.
    let long: Vec<u8> = (0..70_000u32).map(|n| (n % 251) as u8).collect();
    let sealed = seal_message(
        &epoch_key,
        group,
        epoch,
        &admin,
        [0xa5; 32],
        &long,
        b"",
        Padding::None,
    )
    .unwrap();
    let id = decrypt(&epoch_key, &sealed)
        .unwrap()
        .verify(&SenderKey::decode(&admin.public().signing).unwrap())
        .unwrap()
        .1;
    push("long.salt", hex::encode([0xa5; 32]));
    push("long.len", sealed.as_bytes().len().to_string());
    push(
        "long.blake3",
        blake3::hash(sealed.as_bytes()).to_hex().to_string(),
    );
    push("long.id", id.to_string());
    out
}

/// SPEC.md §16.6's vectors, recomputed. After a deliberate change,
/// regenerate them with `MESHLOG_UPDATE_VECTORS=1 cargo test --lib
/// seal::tests::spec` and review the diff.
#[test]
fn spec_sealed_vectors_match() {
    let text: String = computed_vectors()
        .iter()
        .map(|(name, value)| format!("{name}: {value}\n"))
        .collect();
    crate::tests::vectors::check_spec_block(BEGIN, END, &text);
}

#[test]
fn segment_lengths_map_one_to_one() {
    for inner in (1..4 * SEGMENT + 3).step_by(97).chain([
        SEGMENT - 1,
        SEGMENT,
        SEGMENT + 1,
        2 * SEGMENT,
        2 * SEGMENT + 1,
    ]) {
        assert_eq!(
            inner_len_of(sealed_inner_len(inner)),
            Some(inner),
            "{inner}"
        );
    }
    // A last segment of a tag alone, or less, is no segment.
    for rest in 1..=TAG_LEN {
        assert_eq!(inner_len_of(SEALED_SEGMENT + rest), None);
    }
    assert_eq!(inner_len_of(SEALED_SEGMENT), Some(SEGMENT));
}

#[test]
fn segments_cannot_be_reordered_dropped_or_added() {
    let alice = keys(1);
    let key = alice.public().signing;
    let plaintext: Vec<u8> = (0..3 * SEGMENT).map(|n| n as u8).collect();
    let sealed = sealed_by(&alice, &plaintext, b"ad", Padding::None);
    assert_eq!(sealed.padded_len(), INNER_HEADER + plaintext.len());
    assert_eq!(
        open_as(&sealed, &key).unwrap(),
        plaintext,
        "four segments open"
    );
    let header = sealed.header().len();
    let segment = |bytes: &[u8], n: usize| {
        bytes[header + n * SEALED_SEGMENT..header + (n + 1) * SEALED_SEGMENT].to_vec()
    };
    let bytes = sealed.to_bytes();
    // Two full segments swapped.
    let mut swapped = bytes.clone();
    let (first, second) = (segment(&bytes, 0), segment(&bytes, 1));
    swapped[header..header + SEALED_SEGMENT].copy_from_slice(&second);
    swapped[header + SEALED_SEGMENT..header + 2 * SEALED_SEGMENT].copy_from_slice(&first);
    // The last segment dropped: the one before it was not sealed as last.
    let dropped = bytes[..header + 3 * SEALED_SEGMENT].to_vec();
    // A full segment repeated at the end.
    let mut added = bytes.clone();
    added.extend_from_slice(&second);
    for (what, altered) in [("swapped", swapped), ("dropped", dropped), ("added", added)] {
        let outcome = Sealed::from_vec(altered).and_then(|altered| open_as(&altered, &key));
        assert!(
            matches!(outcome, Err(SealError::DecryptFailed { .. })),
            "{what}: {outcome:?}"
        );
    }
}
