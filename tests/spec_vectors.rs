//! SPEC.md is the contract: its labels and test vectors are checked here.
//!
//! The vectors are recomputed from fixed seeds and compared with the block
//! between `<!-- vectors:begin -->` and `<!-- vectors:end -->` in SPEC.md. After
//! a deliberate format change, regenerate the block with
//! `MESHLOG_UPDATE_VECTORS=1 cargo test --test spec_vectors`, and review the diff.

mod common;

use common::{db_path, keys, options, torsioned_signature};
use meshlog::{DOMAIN_LABELS, Event, LocalKeys, Mesh, Role, limits};

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/SPEC.md");
const BEGIN: &str = "<!-- vectors:begin -->\n```text\n";
const END: &str = "```\n<!-- vectors:end -->";

fn computed_vectors() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut push = |name: &str, value: String| out.push((name.to_owned(), value));
    for (who, n) in [("founder", 1u8), ("member", 2u8)] {
        let k: LocalKeys = keys(n);
        push(&format!("{who}.signing_seed"), hex::encode([n; 32]));
        push(
            &format!("{who}.dh_secret"),
            hex::encode([n.wrapping_add(100); 32]),
        );
        push(
            &format!("{who}.signing_public"),
            k.public().signing.to_string(),
        );
        push(&format!("{who}.dh_public"), k.public().dh.to_string());
        push(&format!("{who}.member_id"), k.member_id().to_string());
    }

    let dir = tempfile::tempdir().unwrap();
    let mut mesh: Mesh = options(1)
        .create(db_path(&dir, "v"), keys(1), "vectors")
        .unwrap();
    mesh.set_enabled(true).unwrap();
    mesh.add_member(keys(2).public(), Role::Member).unwrap();
    mesh.append_app("note", b"hello").unwrap();
    for (seq, name) in [(0, "genesis"), (1, "enable"), (2, "rotate"), (3, "app")] {
        let event = mesh.event(seq).unwrap();
        push(&format!("{name}.bytes"), hex::encode(event.bytes()));
        push(&format!("{name}.signature"), hex::encode(event.signature()));
        push(&format!("{name}.hash"), event.hash().to_string());
    }
    for epoch in 0..=1 {
        let secret = mesh.epoch_secret(epoch).unwrap();
        push(
            &format!("epoch{epoch}.secret"),
            hex::encode(secret.expose()),
        );
        push(&format!("epoch{epoch}.fingerprint"), secret.fingerprint());
        let record = mesh.state().epoch(epoch).unwrap();
        push(
            &format!("epoch{epoch}.commitment"),
            record.envelope.commitment.to_string(),
        );
    }
    // §2.1: the app event signed by the founder with an order-8 component in
    // R. ZIP-215 accepts it (`verify_strict` would not).
    let app = mesh.event(3).unwrap();
    push(
        "app.torsioned_signature",
        hex::encode(torsioned_signature([1; 32], app.bytes(), 1, 0)),
    );
    push("state.digest", mesh.digest().to_string());
    push(
        "batch.since2",
        hex::encode(mesh.export_since(2).unwrap().to_bytes()),
    );
    out
}

fn render(vectors: &[(String, String)]) -> String {
    vectors
        .iter()
        .map(|(name, value)| format!("{name}: {value}\n"))
        .collect()
}

#[test]
fn vectors_match_spec() {
    let spec = std::fs::read_to_string(SPEC).unwrap();
    let start = spec.find(BEGIN).expect("SPEC.md has a vectors block") + BEGIN.len();
    let end = spec[start..].find(END).expect("vectors block is closed") + start;
    let rendered = render(&computed_vectors());
    if std::env::var_os("MESHLOG_UPDATE_VECTORS").is_some() {
        let updated = format!("{}{}{}", &spec[..start], rendered, &spec[end..]);
        std::fs::write(SPEC, updated).unwrap();
        return;
    }
    let written = &spec[start..end];
    for (line_spec, line_code) in written.lines().zip(rendered.lines()) {
        assert_eq!(line_spec, line_code, "SPEC.md vector differs from the code");
    }
    assert_eq!(
        written, rendered,
        "SPEC.md lists a different set of vectors"
    );
}

#[test]
fn vectors_decode_canonically() {
    let batch = &spec_vectors()["batch.since2"];
    let decoded = meshlog::Batch::from_bytes(batch).unwrap();
    assert_eq!((decoded.first(), decoded.len()), (2, 2));
    assert_eq!(&decoded.to_bytes(), batch);
    let spec = std::fs::read_to_string(SPEC).unwrap();
    for line in spec.lines().filter(|line| line.contains(".bytes: ")) {
        let (_, value) = line.split_once(": ").unwrap();
        let bytes = hex::decode(value).unwrap();
        let event = Event::decode(&bytes).unwrap();
        assert_eq!(event.encode(), bytes);
    }
}

#[test]
fn every_label_and_limit_is_listed() {
    let spec = std::fs::read_to_string(SPEC).unwrap();
    for (name, label) in DOMAIN_LABELS {
        let row = format!("| `{name}` | `\"{label}\"`");
        assert!(spec.contains(&row), "SPEC.md lacks the row starting {row}");
    }
    for (name, value) in [
        ("MAX_EVENT_BYTES", limits::MAX_EVENT_BYTES),
        ("MAX_GROUP_NAME", limits::MAX_GROUP_NAME),
        ("MAX_REASON", limits::MAX_REASON),
        ("MAX_ROSTER", limits::MAX_ROSTER),
        ("MAX_APP_KIND", limits::MAX_APP_KIND),
        ("MAX_APP_PAYLOAD", limits::MAX_APP_PAYLOAD),
    ] {
        let row = format!("| `{name}` | {value} |");
        assert!(spec.contains(&row), "SPEC.md lacks the row {row}");
    }
}

/// The vectors as SPEC.md lists them.
fn spec_vectors() -> std::collections::BTreeMap<String, Vec<u8>> {
    let spec = std::fs::read_to_string(SPEC).unwrap();
    let start = spec.find(BEGIN).unwrap() + BEGIN.len();
    let end = spec[start..].find(END).unwrap() + start;
    spec[start..end]
        .lines()
        .map(|line| {
            let (name, value) = line.split_once(": ").unwrap();
            let bytes = hex::decode(value).unwrap_or_else(|_| value.as_bytes().to_vec());
            (name.to_owned(), bytes)
        })
        .collect()
}

fn derive(label: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(label);
    for part in parts {
        hasher.update(part);
    }
    *hasher.finalize().as_bytes()
}

/// Recomputes the vectors from SPEC.md's prose alone, with the primitives
/// used directly: a second implementation of §2 and §4 that must agree.
#[test]
fn vectors_follow_the_spec_independently() {
    use chacha20poly1305::aead::{AeadInOut, KeyInit};
    let v = spec_vectors();
    let get = |name: &str| v.get(name).unwrap_or_else(|| panic!("{name}")).clone();
    let arr = |name: &str| -> [u8; 32] { get(name).try_into().unwrap() };

    // §2.3 member ids, from keys derived from the seeds.
    for who in ["founder", "member"] {
        let signing = ed25519_dalek::SigningKey::from_bytes(&arr(&format!("{who}.signing_seed")));
        let public = signing.verifying_key().to_bytes();
        assert_eq!(public, arr(&format!("{who}.signing_public")));
        let dh = x25519_dalek::StaticSecret::from(arr(&format!("{who}.dh_secret")));
        assert_eq!(
            x25519_dalek::PublicKey::from(&dh).to_bytes(),
            arr(&format!("{who}.dh_public"))
        );
        let id = derive("meshlog v1 member id", &[&public]);
        assert_eq!(id[..16], get(&format!("{who}.member_id"))[..]);
    }

    // §2.1, §2.2 signatures and hashes; §2.4 the group id and the links.
    let mut prev = [0u8; 32];
    for name in ["genesis", "enable", "rotate", "app"] {
        let bytes = get(&format!("{name}.bytes"));
        let signature: [u8; 64] = get(&format!("{name}.signature")).try_into().unwrap();
        let mut message = b"meshlog v1 event signature\0".to_vec();
        message.extend_from_slice(&bytes);
        assert!(zip215_verifies(
            &arr("founder.signing_public"),
            &message,
            &signature
        ));
        let hash = derive("meshlog v2 event hash", &[&bytes]);
        assert_eq!(hash, arr(&format!("{name}.hash")));
        let event = Event::decode(&bytes).unwrap();
        assert_eq!(event.prev.as_bytes(), &prev);
        let group = if name == "genesis" {
            [0; 32]
        } else {
            arr("genesis.hash")
        };
        assert_eq!(event.group.as_bytes(), &group);
        prev = hash;
    }

    // §2.1: a signature whose R has a small-order component verifies under
    // ZIP-215, from the prose and through the reducer, though not under
    // `verify_strict`.
    let torsioned: [u8; 64] = get("app.torsioned_signature").try_into().unwrap();
    let app_bytes = get("app.bytes");
    let mut message = b"meshlog v1 event signature\0".to_vec();
    message.extend_from_slice(&app_bytes);
    assert!(zip215_verifies(
        &arr("founder.signing_public"),
        &message,
        &torsioned
    ));
    assert!(
        ed25519_dalek::VerifyingKey::from_bytes(&arr("founder.signing_public"))
            .unwrap()
            .verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&torsioned))
            .is_err()
    );
    let mut state = meshlog::MeshState::default();
    for name in ["genesis", "enable", "rotate"] {
        let record = [
            get(&format!("{name}.signature")),
            get(&format!("{name}.bytes")),
        ]
        .concat();
        state
            .reduce(&meshlog::SignedEvent::from_record(&record).unwrap())
            .unwrap();
    }
    // §2.2: the same bytes, so the same event and hash.
    let forged = meshlog::SignedEvent::from_record(&[&torsioned[..], &app_bytes].concat()).unwrap();
    assert_eq!(forged.hash().as_bytes(), &arr("app.hash"));
    state.reduce(&forged).unwrap();

    // §4 envelopes: unwrap with the recipients' DH secrets.
    let group = arr("genesis.hash");
    let genesis_binding = {
        let mut b = vec![0u8];
        let founder_id = &get("founder.member_id");
        b.extend_from_slice(&derive(
            "meshlog v1 genesis binding",
            &[founder_id, b"vectors"],
        ));
        b.extend_from_slice(&0u64.to_le_bytes());
        b
    };
    let epoch1_binding = {
        let mut b = vec![1u8];
        b.extend_from_slice(&group);
        b.extend_from_slice(&1u64.to_le_bytes());
        b
    };
    let cases = [
        ("genesis", "founder", 0, genesis_binding),
        ("rotate", "founder", 1, epoch1_binding.clone()),
        ("rotate", "member", 1, epoch1_binding),
    ];
    for (event_name, who, epoch, binding) in cases {
        let event = Event::decode(&get(&format!("{event_name}.bytes"))).unwrap();
        let envelope = match event.body {
            meshlog::Body::Genesis(genesis) => genesis.envelope,
            meshlog::Body::Rotate(rotate) => rotate.envelope,
            _ => unreachable!(),
        };
        let member = get(&format!("{who}.member_id"));
        let wrapped = envelope
            .wrapped
            .iter()
            .find(|w| w.member.as_bytes()[..] == member[..])
            .unwrap();
        let dh_public = arr(&format!("{who}.dh_public"));
        let shared = x25519_dalek::x25519(
            arr(&format!("{who}.dh_secret")),
            *envelope.ephemeral.as_bytes(),
        );
        let key = derive(
            "meshlog v1 envelope wrap key",
            &[
                &shared,
                envelope.ephemeral.as_bytes(),
                &dh_public,
                &member,
                &binding,
            ],
        );
        let mut ad = member.clone();
        ad.extend_from_slice(&binding);
        let mut secret = wrapped.ciphertext;
        chacha20poly1305::ChaCha20Poly1305::new(&key.into())
            .decrypt_inout_detached(
                &Default::default(),
                &ad,
                secret.as_mut_slice().into(),
                &wrapped.tag.into(),
            )
            .unwrap();
        assert_eq!(
            secret,
            arr(&format!("epoch{epoch}.secret")),
            "{who} epoch {epoch}"
        );
        let commitment = derive("meshlog v1 epoch secret commitment", &[&binding, &secret]);
        assert_eq!(commitment, arr(&format!("epoch{epoch}.commitment")));
        assert_eq!(envelope.commitment.as_bytes(), &commitment);
        let fingerprint = derive("meshlog v1 epoch secret fingerprint", &[&secret]);
        assert_eq!(
            fingerprint[..8],
            get(&format!("epoch{epoch}.fingerprint"))[..]
        );
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
