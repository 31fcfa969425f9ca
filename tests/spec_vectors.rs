//! SPEC.md §14's test vectors, checked from outside the crate: recomputed
//! from the spec's prose with the primitives used directly (a second
//! implementation of §2, §3 and §6.3 that must agree), and then fed to the
//! public API, which must reach the states they pin.
//!
//! `src/tests/vectors.rs` recomputes the same block with the crate itself
//! and regenerates it after a deliberate format change.

mod common;

use std::collections::BTreeMap;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use common::{batch_of, keys, options};
use meshlog::{Body, EventHash, KeyPackage, Mesh, Role, SignedEvent};

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/SPEC.md");
const BEGIN: &str = "<!-- v3-vectors:begin -->\n```text\n";
const END: &str = "```\n<!-- v3-vectors:end -->";

/// The history's events, in the order they were made, with their authors.
const EVENTS: [(&str, &str); 7] = [
    ("genesis", "founder"),
    ("F.enable", "founder"),
    ("R1", "founder"),
    ("A.enable", "admin"),
    ("Ra", "admin"),
    ("RF", "founder"),
    ("M", "founder"),
];

/// Each vector, as bytes when its value is hex, else as text.
fn vectors() -> BTreeMap<String, String> {
    let spec = std::fs::read_to_string(SPEC).unwrap();
    let start = spec.find(BEGIN).expect("vectors block") + BEGIN.len();
    let end = spec[start..].find(END).expect("end of the vectors block") + start;
    spec[start..end]
        .lines()
        .map(|line| {
            let (name, value) = line.split_once(": ").unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

struct Vectors(BTreeMap<String, String>);

impl Vectors {
    fn text(&self, name: &str) -> &str {
        self.0
            .get(name)
            .unwrap_or_else(|| panic!("no vector {name}"))
    }
    fn bytes(&self, name: &str) -> Vec<u8> {
        hex::decode(self.text(name)).unwrap_or_else(|_| panic!("{name} is not hex"))
    }
    fn array<const N: usize>(&self, name: &str) -> [u8; N] {
        self.bytes(name)
            .try_into()
            .unwrap_or_else(|_| panic!("{name} length"))
    }
    fn record(&self, event: &str) -> Vec<u8> {
        [
            self.bytes(&format!("{event}.signature")),
            self.bytes(&format!("{event}.bytes")),
        ]
        .concat()
    }
}

fn derive(label: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(label);
    for part in parts {
        hasher.update(part);
    }
    *hasher.finalize().as_bytes()
}

/// The seeds of §14: ed25519 seed `n`, X25519 secret `n + 0x64`.
fn seed_of(who: &str) -> u8 {
    match who {
        "founder" => 1,
        "admin" => 2,
        "member" => 3,
        "late" => 4,
        _ => unreachable!(),
    }
}

/// SPEC.md §2.1, from its prose: `S` canonical, `A` and `R` decode, and
/// `[8]([S]B - [k]A - R)` is the identity.
fn zip215_verifies(public: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use curve25519_dalek::scalar::Scalar;
    use curve25519_dalek::traits::IsIdentity;
    use sha2::{Digest, Sha512};

    let (r_bytes, s_bytes) = signature.split_at(32);
    let r_bytes: [u8; 32] = r_bytes.try_into().unwrap();
    let (Some(a), Some(r)) = (
        CompressedEdwardsY(*public).decompress(),
        CompressedEdwardsY(r_bytes).decompress(),
    ) else {
        return false;
    };
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes.try_into().unwrap()))
    else {
        return false;
    };
    let k = Scalar::from_bytes_mod_order_wide(
        &Sha512::new()
            .chain_update(r_bytes)
            .chain_update(public)
            .chain_update(message)
            .finalize()
            .into(),
    );
    (s * ED25519_BASEPOINT_POINT - k * a - r)
        .mul_by_cofactor()
        .is_identity()
}

/// A postcard (LEB128) varint at the start of `bytes`: its value and length.
fn varint(bytes: &[u8]) -> (u64, usize) {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return (value, i + 1);
        }
    }
    panic!("unterminated varint")
}

/// §3.2's event header, read by hand: version, group, author, seq, prev.
fn header(bytes: &[u8]) -> (u64, [u8; 32], [u8; 16], u64, [u8; 32]) {
    let (version, used) = varint(bytes);
    let group: [u8; 32] = bytes[used..used + 32].try_into().unwrap();
    let author: [u8; 16] = bytes[used + 32..used + 48].try_into().unwrap();
    let (seq, seq_len) = varint(&bytes[used + 48..]);
    let at = used + 48 + seq_len;
    let prev: [u8; 32] = bytes[at..at + 32].try_into().unwrap();
    (version, group, author, seq, prev)
}

#[test]
fn keys_and_the_admins_package_follow_the_spec() {
    let v = Vectors(vectors());
    for who in ["founder", "admin", "member", "late"] {
        let n = seed_of(who);
        let signing = ed25519_dalek::SigningKey::from_bytes(&[n; 32])
            .verifying_key()
            .to_bytes();
        assert_eq!(signing, v.array(&format!("{who}.signing_public")), "{who}");
        let dh = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([n + 0x64; 32]));
        assert_eq!(dh.to_bytes(), v.array(&format!("{who}.dh_public")), "{who}");
        // §2.3.
        let id = derive("meshlog v1 member id", &[&signing]);
        assert_eq!(id[..16], v.bytes(&format!("{who}.member_id"))[..], "{who}");
        assert_eq!(
            keys(n).member_id().as_bytes()[..],
            id[..16],
            "the library's keys for {who}"
        );
    }

    // §3.3: signing || dh || varint(counter) || signature, signed over the
    // prefix and the rest.
    let package = v.bytes("admin.package");
    assert_eq!(package.len(), 32 + 32 + 1 + 64);
    assert_eq!(package[..32], v.bytes("admin.signing_public")[..]);
    assert_eq!(package[32..64], v.bytes("admin.dh_public")[..]);
    assert_eq!(varint(&package[64..]), (1, 1));
    let message = [&b"meshlog v3 key package\0"[..], &package[..65]].concat();
    let signature: [u8; 64] = package[65..].try_into().unwrap();
    assert!(zip215_verifies(
        &v.array("admin.signing_public"),
        &message,
        &signature
    ));
    // The library reads it, and makes the same bytes.
    let parsed = KeyPackage::from_bytes(&package).unwrap();
    assert_eq!(parsed.member(), keys(2).member_id());
    assert_eq!(parsed.counter(), 1);
    parsed.check().unwrap();
    assert_eq!(keys(2).package_with_counter(1).to_bytes(), package);
    assert_eq!(parsed.to_string(), v.text("admin.package"));
}

#[test]
fn events_hashes_signatures_and_links_follow_the_spec() {
    let v = Vectors(vectors());
    let genesis = v.array::<32>("genesis.hash");
    let mut last_of: BTreeMap<&str, [u8; 32]> = BTreeMap::new();
    for (name, author) in EVENTS {
        let bytes = v.bytes(&format!("{name}.bytes"));
        // §3.4: the hash covers the event bytes, the signature the prefix
        // and the same bytes.
        let hash = derive("meshlog v3 event hash", &[&bytes]);
        assert_eq!(hash, v.array(&format!("{name}.hash")), "{name}");
        let message = [&b"meshlog v3 event signature\0"[..], &bytes].concat();
        let signature = v.array(&format!("{name}.signature"));
        assert!(
            zip215_verifies(
                &v.array(&format!("{author}.signing_public")),
                &message,
                &signature
            ),
            "{name}"
        );
        // §3.2 and §4.1: version 3, the group (zero in the genesis), the
        // author, and each author's own feed.
        let (version, group, id, seq, prev) = header(&bytes);
        assert_eq!(version, 3, "{name}");
        let expected_group = if name == "genesis" { [0; 32] } else { genesis };
        assert_eq!(group, expected_group, "{name}");
        assert_eq!(
            id[..],
            v.bytes(&format!("{author}.member_id"))[..],
            "{name}"
        );
        let previous = last_of.insert(author, hash);
        assert_eq!(prev, previous.unwrap_or([0; 32]), "{name}");
        let expected_seq = EVENTS
            .iter()
            .take_while(|(other, _)| *other != name)
            .filter(|(_, who)| *who == author)
            .count() as u64;
        assert_eq!(seq, expected_seq, "{name}");
        // The library decodes the record to the same hash and author.
        let signed = SignedEvent::from_record(&v.record(name)).unwrap();
        assert_eq!(signed.hash().as_bytes(), &hash);
        assert_eq!(signed.author().as_bytes()[..], id[..]);
    }
}

/// §3.5: the founder opens the envelopes of the genesis, `R1` and `M` with
/// its DH secret, and each secret matches its commitment.
#[test]
fn envelopes_open_for_the_founder_as_the_spec_says() {
    let v = Vectors(vectors());
    let founder = v.bytes("founder.member_id");
    let group = v.array::<32>("genesis.hash");
    for name in ["genesis", "R1", "M"] {
        let bytes = v.bytes(&format!("{name}.bytes"));
        let (_, _, author, seq, prev) = header(&bytes);
        let binding: Vec<u8> = if name == "genesis" {
            [
                &[0u8][..],
                &derive("meshlog v1 genesis binding", &[&founder, b"vectors"]),
                &0u64.to_le_bytes(),
            ]
            .concat()
        } else {
            let value = derive(
                "meshlog v3 rotation binding",
                &[&group, &author, &seq.to_le_bytes(), &prev],
            );
            [&[2u8][..], &value, &seq.to_le_bytes()].concat()
        };
        assert_eq!(binding.len(), 41);
        let signed = SignedEvent::from_record(&v.record(name)).unwrap();
        let envelope = match &signed.event().body {
            Body::Genesis { envelope, .. } | Body::Rotate { envelope, .. } => envelope.clone(),
            other => panic!("{name}: {other:?}"),
        };
        let wrapped = envelope
            .wrapped
            .iter()
            .find(|w| w.member.as_bytes()[..] == founder[..])
            .expect("the founder is a recipient");
        let ephemeral = *envelope.ephemeral.as_bytes();
        let shared = x25519_dalek::x25519([0x65; 32], ephemeral);
        let dh_public = v.bytes("founder.dh_public");
        let key = derive(
            "meshlog v1 envelope wrap key",
            &[&shared, &ephemeral, &dh_public, &founder, &binding],
        );
        let ad = [&founder[..], &binding].concat();
        let mut secret = wrapped.ciphertext;
        chacha20poly1305::ChaCha20Poly1305::new(&key.into())
            .decrypt_inout_detached(
                &Default::default(),
                &ad,
                secret.as_mut_slice().into(),
                &wrapped.tag.into(),
            )
            .unwrap_or_else(|_| panic!("{name}: the founder's copy opens"));
        assert_eq!(secret, v.array(&format!("{name}.secret")), "{name}");
        let commitment = derive("meshlog v1 epoch secret commitment", &[&binding, &secret]);
        assert_eq!(envelope.commitment.as_bytes(), &commitment, "{name}");
    }
}

/// The public API reaches the states §14 pins: the fork (two tips, no
/// current epoch, `Ra` the writer epoch), then the merge, whose digest
/// §6.3's prose recomputes.
#[test]
fn the_public_api_reaches_the_pinned_states() {
    let v = Vectors(vectors());
    let dir = tempfile::tempdir().unwrap();
    let group = meshlog::GroupId::from_bytes(v.array("genesis.hash"));
    let hash = |name: &str| EventHash::from_bytes(v.array(&format!("{name}.hash")));
    let records: Vec<Vec<u8>> = EVENTS.iter().map(|(name, _)| v.record(name)).collect();

    let fork = options(1)
        .join(
            dir.path().join("fork.redb"),
            keys(1),
            &batch_of(group, records[..6].to_vec()),
        )
        .unwrap();
    let mut tips = vec![hash("Ra"), hash("RF")];
    tips.sort();
    assert_eq!(fork.tips(), tips.as_slice());
    assert_eq!(v.text("fork.tips"), "Ra RF");
    assert_eq!(v.text("fork.current"), "none");
    assert_eq!(fork.current_epoch(), None);
    assert!(fork.needs_merge());
    assert_eq!(v.text("fork.writer"), "Ra");
    assert_eq!(fork.writer_epoch(), Some(hash("Ra")));

    // The whole history, in reverse: the order does not matter.
    let mut reversed = records.clone();
    reversed.reverse();
    let merged = options(1)
        .join(
            dir.path().join("merged.redb"),
            keys(1),
            &batch_of(group, reversed),
        )
        .unwrap();
    assert_eq!(v.text("merge.current"), "M");
    assert_eq!(merged.current_epoch(), Some(hash("M")));
    assert_eq!(merged.tips(), &[hash("M")]);
    let roster = merged.roster();
    let listed: Vec<String> = roster
        .iter()
        .map(|(id, _)| format!("{}:{}", &id.to_string()[..8], roster.role_of(*id).unwrap()))
        .collect();
    assert_eq!(listed.join(" "), v.text("merge.roster"));
    assert_eq!(
        merged.digest().to_string(),
        v.text("merge.digest"),
        "the library's digest"
    );
    for name in ["genesis", "R1", "M"] {
        let secret = *merged.epoch_secret(hash(name)).unwrap().expose();
        assert_eq!(secret, v.array(&format!("{name}.secret")), "{name}");
    }

    // §6.3 from its prose: the genesis hash; the events, counted and in
    // hash order; every rotation (all applied here) in hash order; R* in
    // member order with DH key, counter, role and flag; the current and
    // writer epochs.
    let mut events: Vec<[u8; 32]> = EVENTS
        .iter()
        .map(|(name, _)| v.array(&format!("{name}.hash")))
        .collect();
    events.sort();
    let mut rotations: Vec<[u8; 32]> = ["genesis", "R1", "Ra", "RF", "M"]
        .iter()
        .map(|name| v.array(&format!("{name}.hash")))
        .collect();
    rotations.sort();
    // The founder and the admin enabled themselves; the late member never did.
    let mut members: Vec<(Vec<u8>, Vec<u8>, u8, u8)> =
        [("founder", 2u8, 1u8), ("admin", 1, 1), ("late", 0, 0)]
            .iter()
            .map(|(who, role, flag)| {
                (
                    v.bytes(&format!("{who}.member_id")),
                    v.bytes(&format!("{who}.dh_public")),
                    *role,
                    *flag,
                )
            })
            .collect();
    members.sort();
    let mut m = v.bytes("genesis.hash");
    m.extend_from_slice(&(events.len() as u64).to_le_bytes());
    for event in &events {
        m.extend_from_slice(event);
    }
    for rotation in &rotations {
        m.extend_from_slice(rotation);
        m.push(1);
    }
    for (id, dh, role, flag) in &members {
        m.extend_from_slice(id);
        m.extend_from_slice(dh);
        m.extend_from_slice(&1u64.to_le_bytes());
        m.push(*role);
        m.push(*flag);
    }
    m.extend_from_slice(&v.bytes("M.hash"));
    m.extend_from_slice(&v.bytes("M.hash"));
    assert_eq!(
        hex::encode(derive("meshlog v3 state digest", &[&m])),
        v.text("merge.digest"),
        "the digest from the spec's prose"
    );
    assert_eq!(
        merged.roster().role_of(keys(2).member_id()),
        Some(Role::Admin)
    );
    drop(merged);
    let reopened = Mesh::open_read_only(dir.path().join("merged.redb")).unwrap();
    assert_eq!(reopened.digest().to_string(), v.text("merge.digest"));
}

/// SPEC.md §9.6's journal frame, recomputed from the prose with BLAKE3
/// directly: the tag key, the tag, the check and the frame's bytes.
#[test]
fn the_journal_frame_vector_follows_from_the_prose() {
    let spec = std::fs::read_to_string(SPEC).unwrap();
    let vector = vector_block(&spec, "journal-vector");
    let salt = u64::from_be_bytes(vector["salt"].clone().try_into().unwrap());
    assert_eq!(salt, 0x0102_0304_0506_0708);
    let event = &vector["event"];
    assert_eq!(event.as_slice(), b"an event's bytes");
    let key = blake3::derive_key("meshlog v3 journal tag", &vector["seed"]);
    assert_eq!(key.as_slice(), vector["K"].as_slice());
    let mut tagged = salt.to_le_bytes().to_vec();
    tagged.extend_from_slice(&(event.len() as u64).to_le_bytes());
    tagged.extend_from_slice(event);
    let tag = blake3::keyed_hash(&key, &tagged);
    assert_eq!(tag.as_bytes().as_slice(), vector["tag"].as_slice());
    let body = [vector["previous"].as_slice(), tag.as_bytes(), event].concat();
    let mut checked = salt.to_le_bytes().to_vec();
    checked.extend_from_slice(&(body.len() as u64).to_le_bytes());
    checked.extend_from_slice(&body);
    let check = blake3::Hasher::new_derive_key("meshlog v3 journal check")
        .update(&checked)
        .finalize();
    let frame = [
        &(body.len() as u32).to_le_bytes()[..],
        &salt.to_le_bytes(),
        &body,
        &check.as_bytes()[..16],
    ]
    .concat();
    assert_eq!(frame, vector["frame"]);
}

/// SPEC.md §9.7's vector for the ledger's rows and the member's
/// checkpoint, recomputed from the prose with BLAKE3 directly, and checked
/// against what this build writes: the keys, a seat row and its tag, a hash
/// row, a checkpoint.
#[test]
fn the_file_rows_and_checkpoint_vector_follows_from_the_prose() {
    let spec = std::fs::read_to_string(SPEC).unwrap();
    let vector = vector_block(&spec, "file-vector");
    let seed = &vector["seed"];
    let row_key = blake3::derive_key("meshlog v3 file row tag", seed);
    let checkpoint_key = blake3::derive_key("meshlog v3 file checkpoint tag", seed);
    let tag = |key: &[u8], value: &[u8]| {
        let mut hasher = blake3::Hasher::new_keyed(&row_key);
        hasher.update(&(key.len() as u32).to_be_bytes());
        hasher.update(key);
        hasher.update(value);
        hasher.finalize().as_bytes()[..16].to_vec()
    };
    // A seat row: author 11…, seq 7, event 22…, at position 42, enabled,
    // its record "a stored record", acknowledging epoch 33….
    let seat_key = [&[0x11; 16][..], &7u64.to_be_bytes(), &[0x22; 32]].concat();
    let record_digest = blake3::Hasher::new_derive_key("meshlog v3 file record")
        .update(b"a stored record")
        .finalize()
        .as_bytes()[..16]
        .to_vec();
    let body = [&42u64.to_be_bytes()[..], &[1], &record_digest, &[0x33; 32]].concat();
    let seat_value = [body.clone(), tag(&seat_key, &body)].concat();
    // Its hash row.
    let position = 42u64.to_be_bytes();
    let hash_value = [position.to_vec(), tag(&[0x22; 32], &position)].concat();
    // A checkpoint of member 44… over 3 events, one rotation (55…), one
    // head (author 11…, seq 2, event 66…), no fork, nothing left out.
    let rotations = blake3::Hasher::new_derive_key("meshlog v3 file rotations")
        .update(&[0x55; 32])
        .finalize();
    let body = [
        &1u16.to_be_bytes()[..],
        &[0x44; 16],
        &3u64.to_be_bytes(),
        &1u64.to_be_bytes(),
        rotations.as_bytes(),
        &1u32.to_be_bytes(),
        &[0x11; 16],
        &2u64.to_be_bytes(),
        &[0x66; 32],
        &0u32.to_be_bytes(),
        &0u32.to_be_bytes(),
    ]
    .concat();
    let checkpoint = [
        body.clone(),
        blake3::keyed_hash(&checkpoint_key, &body)
            .as_bytes()
            .to_vec(),
    ]
    .concat();
    if std::env::var_os("MESHLOG_PRINT_VECTOR").is_some() {
        for (name, value) in [
            ("row key", row_key.to_vec()),
            ("checkpoint key", checkpoint_key.to_vec()),
            ("seat key", seat_key.clone()),
            ("seat value", seat_value.clone()),
            ("hash value", hash_value.clone()),
            ("checkpoint", checkpoint.clone()),
        ] {
            println!("{name}: {}", hex::encode(value));
        }
    }
    assert_eq!(row_key.as_slice(), vector["row key"].as_slice());
    assert_eq!(
        checkpoint_key.as_slice(),
        vector["checkpoint key"].as_slice()
    );
    assert_eq!(seat_key, vector["seat key"]);
    assert_eq!(seat_value, vector["seat value"]);
    assert_eq!(hash_value, vector["hash value"]);
    assert_eq!(checkpoint, vector["checkpoint"]);
    // That this build writes exactly these bytes is `store`'s own test.
}

/// The `name: hex` lines of SPEC.md's block between `<!-- NAME:begin -->`
/// and `<!-- NAME:end -->`.
fn vector_block<'a>(spec: &'a str, name: &str) -> BTreeMap<&'a str, Vec<u8>> {
    let begin = format!("<!-- {name}:begin -->\n```text\n");
    let start = spec.find(&begin).expect("the vector block") + begin.len();
    let end = spec[start..].find("```").unwrap() + start;
    spec[start..end]
        .lines()
        .map(|line| {
            let (name, value) = line.split_once(": ").unwrap();
            (name, hex::decode(value).unwrap())
        })
        .collect()
}
