//! SPEC.md's test vectors, recomputed and compared with the block between
//! `<!-- v3-vectors:begin -->` and `<!-- v3-vectors:end -->`. After a
//! deliberate format change, regenerate it with
//! `MESHLOG_UPDATE_VECTORS=1 cargo test --lib v3::vectors` and review the diff.
//!
//! Every random draw comes from a generator SPEC.md §14 spells out, so an
//! outsider can recompute every byte, not only check it.

use std::convert::Infallible;

use crate::event::{Body, Change, SignedPackage};
use crate::graph::Role;
use crate::ids::EventHash;
use crate::keys::LocalKeys;
use crate::verify::Ledger;

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/SPEC.md");
const BEGIN: &str = "<!-- v3-vectors:begin -->\n```text\n";
const END: &str = "```\n<!-- v3-vectors:end -->";

/// The vectors' randomness: the BLAKE3 XOF of the key
/// `derive_key("meshlog v3 test vectors", "")`, read in order.
struct XofRng(blake3::OutputReader);

impl XofRng {
    fn new() -> Self {
        let key = blake3::derive_key("meshlog v3 test vectors", b"");
        Self(blake3::Hasher::new_keyed(&key).finalize_xof())
    }
}

impl rand::TryRng for XofRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0; 4];
        self.0.fill(&mut bytes);
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0; 8];
        self.0.fill(&mut bytes);
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill(dst);
        Ok(())
    }
}

impl rand::TryCryptoRng for XofRng {}

fn keys(seed: u8) -> LocalKeys {
    LocalKeys::from_secret_bytes(&[seed; 32], &[seed.wrapping_add(100); 32])
}

fn computed() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut push = |name: &str, value: String| out.push((name.to_owned(), value));
    let (f, a, b, c) = (keys(1), keys(2), keys(3), keys(4));
    for (who, k) in [("founder", &f), ("admin", &a), ("member", &b), ("late", &c)] {
        push(&format!("{who}.member_id"), k.member_id().to_string());
        push(
            &format!("{who}.signing_public"),
            k.public().signing.to_string(),
        );
        push(&format!("{who}.dh_public"), k.public().dh.to_string());
    }
    let package = SignedPackage::sign(&a, 1);
    push("admin.package", hex::encode(crate::codec::encode(&package)));

    let mut rng = XofRng::new();
    let mut time = 1_900_000_000u64;
    let mut tick = || {
        time += 1;
        time
    };
    let (mut ledger, genesis) = Ledger::create(&f, "vectors", tick(), &mut rng).unwrap();
    let mut named = vec![("genesis", genesis)];
    let enable = |epoch| Body::SetEnabled {
        epoch,
        enabled: true,
    };
    named.push((
        "F.enable",
        ledger.write(&f, tick(), enable(genesis)).unwrap(),
    ));
    let add = |k: &LocalKeys, role| Change::Add {
        package: SignedPackage::sign(k, 1),
        role,
    };
    let mut changes = vec![add(&a, Role::Admin), add(&b, Role::Member)];
    changes.sort_by_key(Change::member);
    let r1 = ledger
        .rotate(&f, changes, "team", tick(), &mut rng)
        .unwrap();
    named.push(("R1", r1));
    named.push(("A.enable", ledger.write(&a, tick(), enable(r1)).unwrap()));
    // A fork: the admin removes the member while the founder adds another.
    let remove = Change::Remove {
        member: b.member_id(),
    };
    named.push((
        "Ra",
        ledger
            .rotate(&a, vec![remove], "fork a", tick(), &mut rng)
            .unwrap(),
    ));
    // The founder has not seen Ra: its rotation names R1 alone.
    let rf = ledger
        .make_rotation_on(
            &f,
            vec![r1],
            vec![add(&c, Role::Member)],
            "fork b",
            tick(),
            &mut rng,
        )
        .unwrap()
        .into_signed(&f);
    let rf_hash = rf.hash();
    ledger.insert(rf).unwrap();
    let rf = rf_hash;
    named.push(("RF", rf));
    let before = ledger.state().graph().resolve();
    let merge = ledger
        .rotate(&f, vec![], "merge", tick(), &mut rng)
        .unwrap();
    named.push(("M", merge));
    let after = ledger.state().graph().resolve();

    for (name, hash) in &named {
        let record = ledger.record(*hash).unwrap();
        let bytes = record.to_record();
        let (signature, event) = bytes.split_at(64);
        push(&format!("{name}.bytes"), hex::encode(event));
        push(&format!("{name}.signature"), hex::encode(signature));
        push(&format!("{name}.hash"), hash.to_string());
    }
    for (name, hash) in [("genesis", genesis), ("R1", r1), ("M", merge)] {
        let secret = ledger.epoch_secret(hash, &f).unwrap();
        push(&format!("{name}.secret"), hex::encode(secret.expose()));
    }
    let name_of = |hash: Option<EventHash>| {
        hash.and_then(|h| named.iter().find(|(_, n)| *n == h).map(|(name, _)| *name))
            .unwrap_or("none")
            .to_owned()
    };
    push(
        "fork.tips",
        before
            .tips
            .iter()
            .map(|t| name_of(Some(*t)))
            .collect::<Vec<_>>()
            .join(" "),
    );
    push("fork.current", name_of(before.current));
    push("fork.writer", name_of(before.writer));
    push("merge.current", name_of(after.current));
    let roster = after
        .roster
        .iter()
        .map(|(id, entry)| format!("{}:{:?}", id.short(), entry.role).to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    push("merge.roster", roster);
    push(
        "merge.digest",
        ledger.state().digest(&after, ledger.left_out()).to_string(),
    );
    let frontier = ledger.frontier().to_bytes();
    assert_eq!(
        crate::Frontier::from_bytes(&frontier).map(|f| f.to_bytes()),
        Ok(frontier.clone()),
        "the frontier vector decodes to itself"
    );
    push("merge.frontier", hex::encode(frontier));
    out
}

fn rendered(vectors: &[(String, String)]) -> String {
    vectors
        .iter()
        .map(|(name, value)| format!("{name}: {value}\n"))
        .collect()
}

#[test]
fn spec_v3_vectors_match() {
    check_spec_block(BEGIN, END, &rendered(&computed()));
}

/// Compares `text` with SPEC.md's block between `begin` and `end`, or,
/// with `MESHLOG_UPDATE_VECTORS` set, writes it there (review the diff).
pub(crate) fn check_spec_block(begin: &str, end: &str, text: &str) {
    let spec = std::fs::read_to_string(SPEC).unwrap();
    let start = spec.find(begin).expect("vector block begins") + begin.len();
    let stop = spec.find(end).expect("vector block ends");
    if std::env::var_os("MESHLOG_UPDATE_VECTORS").is_some() {
        let updated = format!("{}{}{}", &spec[..start], text, &spec[stop..]);
        std::fs::write(SPEC, updated).unwrap();
        return;
    }
    assert_eq!(
        &spec[start..stop],
        text,
        "SPEC.md's vectors between {begin:?} and {end:?} differ from the code"
    );
}

#[test]
fn the_vectors_randomness_is_what_the_spec_says() {
    use rand::Rng;
    let mut rng = XofRng::new();
    let mut first = [0u8; 8];
    rng.fill_bytes(&mut first);
    let key = blake3::derive_key("meshlog v3 test vectors", b"");
    let mut expected = [0u8; 8];
    blake3::Hasher::new_keyed(&key)
        .finalize_xof()
        .fill(&mut expected);
    assert_eq!(first, expected);
}
