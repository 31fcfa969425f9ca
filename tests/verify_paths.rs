//! Opening a file verifies its chain in parallel (signatures checked in
//! parallel after an in-order pass of every other rule). These tests hold it
//! to the verdict of the plain path, the reducer applied event by event, on
//! chains longer than one verification chunk and on hostile signatures.

mod common;

use common::{db_path, edit_events, keys, options, record, torsioned_signature};
use meshlog::{Error, Mesh, MeshState, Rejection, Role, SignedEvent};

/// The plain path: every stored record through the reducer, in order.
fn sequential_verdict(path: &std::path::Path, len: u64) -> Result<(), Rejection> {
    let mut state = MeshState::default();
    for seq in 0..len {
        let record = record(path, seq);
        let event = SignedEvent::from_record(&record).map_err(|e| Rejection {
            seq,
            hash: meshlog::EventHash::ZERO,
            rule: meshlog::Rule::Malformed(e),
        })?;
        state
            .reduce(&event)
            .map_err(|rejection| Rejection { seq, ..rejection })?;
    }
    Ok(())
}

fn parallel_verdict(path: &std::path::Path) -> Result<(), Rejection> {
    match Mesh::open_read_only(path) {
        Ok(_) => Ok(()),
        Err(Error::Rejected(rejection)) => Err(rejection),
        Err(other) => panic!("unexpected error {other}"),
    }
}

/// A chain longer than one verification chunk (4096 events).
fn long_chain(dir: &tempfile::TempDir) -> (std::path::PathBuf, u64) {
    let path = db_path(dir, "long.redb");
    let mut mesh = options(1).create(&path, keys(1), "long").unwrap();
    mesh.set_enabled(true).unwrap();
    mesh.add_member(keys(2).public(), Role::Admin).unwrap();
    let items: Vec<(String, Vec<u8>)> = (0..5000u32)
        .map(|i| ("tick".into(), i.to_le_bytes().to_vec()))
        .collect();
    mesh.append_apps(items.iter().map(|(k, p)| (k.as_str(), p.as_slice())))
        .unwrap();
    let len = mesh.state().len();
    (path, len)
}

/// Re-signs the event at `seq` after `edit`, with `signer`'s key.
fn resign(path: &std::path::Path, seq: u64, signer: u8, edit: impl FnOnce(&mut meshlog::Event)) {
    let mut event = SignedEvent::from_record(&record(path, seq))
        .unwrap()
        .event()
        .clone();
    edit(&mut event);
    let forged = SignedEvent::sign(event, &keys(signer)).to_record();
    edit_events(path, |events| {
        events.insert(seq, forged.as_slice()).unwrap();
    });
}

fn flip_signature(path: &std::path::Path, seq: u64) {
    let mut bad = record(path, seq);
    bad[3] ^= 0x20;
    edit_events(path, |events| {
        events.insert(seq, bad.as_slice()).unwrap();
    });
}

#[test]
fn a_long_valid_chain_verifies_on_both_paths() {
    let dir = tempfile::tempdir().unwrap();
    let (path, len) = long_chain(&dir);
    assert_eq!(parallel_verdict(&path), Ok(()));
    assert_eq!(sequential_verdict(&path, len), Ok(()));
    assert_eq!(Mesh::open_read_only(&path).unwrap().state().len(), len);
}

#[test]
fn the_first_failing_event_wins_across_chunks_and_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (pristine, len) = long_chain(&dir);
    let bytes = std::fs::read(&pristine).unwrap();
    type Tamper = Box<dyn Fn(&std::path::Path)>;
    let cases: Vec<(&str, Tamper)> = vec![
        (
            "bad signature late in the second chunk",
            Box::new(|p| flip_signature(p, 4500)),
        ),
        (
            "bad signature, then a rule broken later",
            Box::new(|p| {
                flip_signature(p, 100);
                resign(p, 4200, 2, |e| e.time = 1);
            }),
        ),
        (
            "a rule broken, then a bad signature later",
            Box::new(|p| {
                // An app event by the (enabled) founder re-signed by member 2 while
                // claiming to be member 2, who is disabled: R11 at 200.
                resign(p, 200, 2, |e| e.author = keys(2).member_id());
                flip_signature(p, 300);
            }),
        ),
        (
            "R10 comes before R11 on the same event",
            Box::new(|p| {
                resign(p, 250, 3, |e| e.author = keys(2).member_id());
            }),
        ),
        (
            "bad signature at the last event of the first chunk",
            Box::new(|p| flip_signature(p, 4095)),
        ),
        (
            "bad signature at the first event of the second chunk",
            Box::new(|p| flip_signature(p, 4096)),
        ),
    ];
    for (name, tamper) in cases {
        std::fs::write(&pristine, &bytes).unwrap();
        tamper(&pristine);
        let parallel = parallel_verdict(&pristine);
        let sequential = sequential_verdict(&pristine, len);
        assert!(parallel.is_err(), "{name}: accepted");
        assert_eq!(
            parallel.as_ref().map_err(|r| (r.seq, r.rule.code())),
            sequential.as_ref().map_err(|r| (r.seq, r.rule.code())),
            "{name}"
        );
    }
}

/// Signatures that lax ed25519 verifiers accept: ZIP-215 (a canonical `S`, the
/// cofactored equation), which both paths use, refuses them, and a weak key
/// is refused when a roster would admit it.
#[test]
fn hostile_signatures_get_one_verdict() {
    use curve25519_dalek::scalar::Scalar;
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir, "short.redb");
    let mut mesh = options(1).create(&path, keys(1), "sigs").unwrap();
    mesh.set_enabled(true).unwrap();
    mesh.add_member(keys(2).public(), Role::Member).unwrap();
    mesh.append_app("note", b"target").unwrap();
    drop(mesh);
    let pristine = std::fs::read(&path).unwrap();
    let original = record(&path, 3);

    // S + L: the same point equation, a non-canonical scalar.
    let mut non_canonical_s = original.clone();
    let s: [u8; 32] = non_canonical_s[32..64].try_into().unwrap();
    assert!(bool::from(Scalar::from_canonical_bytes(s).is_some()));
    let mut sum = [0u8; 32];
    let mut carry = 0u16;
    // The group order L, little-endian.
    let order: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    for i in 0..32 {
        let total = u16::from(non_canonical_s[32 + i]) + u16::from(order[i]) + carry;
        sum[i] = total as u8;
        carry = total >> 8;
    }
    non_canonical_s[32..64].copy_from_slice(&sum);

    // R replaced by the identity (a small-order point) and S by zero.
    let mut small_order_r = original.clone();
    small_order_r[..64].fill(0);
    small_order_r[0] = 1;

    for (name, record) in [("S + L", non_canonical_s), ("small-order R", small_order_r)] {
        std::fs::write(&path, &pristine).unwrap();
        edit_events(&path, |events| {
            events.insert(3, record.as_slice()).unwrap();
        });
        let parallel = parallel_verdict(&path).unwrap_err();
        let sequential = sequential_verdict(&path, 4).unwrap_err();
        assert_eq!((parallel.seq, parallel.rule.code()), (3, "R10"), "{name}");
        assert_eq!(
            (sequential.seq, sequential.rule.code()),
            (3, "R10"),
            "{name}"
        );
    }

    // A weak (small-order) signing key admitted by a re-signed rotation: the
    // identity point "verifies" forged signatures under non-strict checks.
    std::fs::write(&path, &pristine).unwrap();
    resign(&path, 2, 1, |event| {
        if let meshlog::Body::Rotate(rotate) = &mut event.body {
            let mut identity = [0u8; 32];
            identity[0] = 1;
            let entry = rotate
                .roster
                .iter_mut()
                .find(|e| e.id == keys(2).member_id())
                .unwrap();
            entry.keys.signing = meshlog::SigningPublicKey::from_bytes(identity);
            entry.id = meshlog::MemberId::of(&entry.keys.signing);
            rotate.roster.sort_by_key(|e| e.id);
            rotate.envelope.wrapped.iter_mut().for_each(|w| {
                if w.member == keys(2).member_id() {
                    w.member =
                        meshlog::MemberId::of(&meshlog::SigningPublicKey::from_bytes(identity));
                }
            });
            rotate.envelope.wrapped.sort_by_key(|w| w.member);
        }
    });
    let parallel = parallel_verdict(&path).unwrap_err();
    let sequential = sequential_verdict(&path, 4).unwrap_err();
    assert_eq!((parallel.seq, parallel.rule.code()), (2, "R18"));
    assert_eq!((sequential.seq, sequential.rule.code()), (2, "R18"));
}

/// Signatures whose `R` has a small-order component: `verify_strict` refuses
/// them, and an uncofactored batch accepts them one time in eight, so a file
/// could verify for one reader and not another. Under ZIP-215 the single check
/// (the reducer, event by event) and the batched check (`join`, like open and
/// ingest) give one verdict. The forged event is the last of a chain longer
/// than a verification chunk, so it is checked inside a batch of hundreds.
#[test]
fn single_and_batched_checks_agree_on_torsioned_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let (path, len) = long_chain(&dir);
    let pristine = Mesh::open(&path, keys(1))
        .unwrap()
        .export_since(0)
        .unwrap()
        .to_bytes();
    let last = len - 1;
    let original = record(&path, last);
    let (_, bytes) = original.split_at(64);
    let at = pristine
        .windows(original.len())
        .position(|window| window == original.as_slice())
        .unwrap();

    let cases = [
        ("order-8 component in R", 1, 0, Ok(())),
        ("order-4 component in R", 2, 0, Ok(())),
        ("order-2 component in R", 4, 0, Ok(())),
        ("order-8 component in R, S off by one", 1, 1, Err("R10")),
        ("torsion-free R, S off by one", 0, 1, Err("R10")),
    ];
    for (index, (name, torsion, s_offset, expected)) in cases.into_iter().enumerate() {
        let signature = torsioned_signature([1; 32], bytes, torsion, s_offset);
        let mut forged = pristine.clone();
        forged[at..at + 64].copy_from_slice(&signature);
        let batch = meshlog::Batch::from_bytes(&forged).unwrap();

        let joined = db_path(&dir, &format!("joined-{index}.redb"));
        let batched = match Mesh::join(&joined, keys(3), &batch) {
            Ok(mesh) => {
                assert_eq!(mesh.state().len(), len, "{name}");
                Ok(())
            }
            Err(Error::Rejected(rejection)) => Err((rejection.seq, rejection.rule.code())),
            Err(other) => panic!("{name}: unexpected error {other}"),
        };
        let mut state = MeshState::default();
        let single = batch
            .events()
            .try_for_each(|(_, event)| state.reduce(&event.unwrap()).map(|_| ()))
            .map_err(|rejection| (rejection.seq, rejection.rule.code()));

        let expected = expected.map_err(|code| (last, code));
        assert_eq!(batched, expected, "{name}: batched path");
        assert_eq!(single, expected, "{name}: single path");
    }
}
