//! Bulk verification (open, join, ingest: the rules over chunks of 4,096
//! events, their signatures checked afterwards in parallel batches of 512,
//! SPEC.md §8) against the plain path, one record per ingest: on files
//! longer than one chunk, with bad signatures in several chunks, and with
//! signatures that verifiers disagree on unless they all follow ZIP-215.

mod common;

use std::path::{Path, PathBuf};

use common::{
    batch_of, dump, edit_events, fast_tempdir, keys, options, record, record_hash,
    strip_ledger_rows,
};
use meshlog::{Error, EventHash, Mesh};

/// Events past one verification chunk (4,096) and many signature batches.
const APPS: usize = 5_000;

/// A founder's file: genesis, enable, then `APPS` app events in one
/// transaction. Returns its path and its records in stored order.
fn long_file(dir: &tempfile::TempDir) -> (PathBuf, Vec<Vec<u8>>) {
    let path = dir.path().join("long.redb");
    let mut mesh = options(1).create(&path, keys(1), "long").unwrap();
    mesh.set_enabled(true).unwrap();
    let payloads: Vec<[u8; 8]> = (0..APPS as u64).map(u64::to_le_bytes).collect();
    mesh.append_apps(payloads.iter().map(|p| ("tick", &p[..])))
        .unwrap();
    let records = mesh.export_all().records().to_vec();
    assert_eq!(records.len(), APPS + 2);
    drop(mesh);
    (path, records)
}

/// The verdict of opening the file: bulk.
fn bulk(path: &Path) -> Result<meshlog::StateDigest, EventHash> {
    match Mesh::open_read_only(path) {
        Ok(mesh) => Ok(mesh.digest()),
        Err(Error::Rejected(rejection)) => {
            assert_eq!(rejection.rule.id(), "V6", "{rejection}");
            Err(rejection.hash)
        }
        Err(other) => panic!("unexpected error {other}"),
    }
}

/// The verdict of the plain path: a peer joined from the first `from`
/// stored records (a valid prefix), then each record up to `until` in its
/// own ingest, stopping at the first refused; the peer's digest if none is.
fn one_by_one(
    path: &Path,
    (from, until): (usize, usize),
    dir: &tempfile::TempDir,
) -> Result<meshlog::StateDigest, EventHash> {
    let records: Vec<Vec<u8>> = dump(path)
        .into_iter()
        .filter(|row| row.0 == "events")
        .map(|row| row.2)
        .collect();
    let group = meshlog::GroupId::from_bytes(*record_hash(&records[0]).as_bytes());
    let peer_path = dir.path().join(format!("peer-{}.redb", rand_suffix()));
    let mut peer = options(2)
        .join(
            &peer_path,
            keys(2),
            &batch_of(group, records[..from].to_vec()),
        )
        .unwrap();
    for record in &records[from..until.min(records.len())] {
        match peer.ingest(&batch_of(group, vec![record.clone()])) {
            Ok(ingested) => assert_eq!(ingested.added, 1),
            Err(Error::Rejected(rejection)) => {
                assert_eq!(rejection.rule.id(), "V6", "{rejection}");
                return Err(rejection.hash);
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    Ok(peer.digest())
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Replaces the signature of the stored record at `position`.
fn resign(path: &Path, position: u64, signature: [u8; 64]) {
    let mut stored = record(path, position);
    stored[..64].copy_from_slice(&signature);
    edit_events(path, |events| {
        events.insert(position, stored.as_slice()).unwrap();
    });
    // The rows keep a digest of each record, signature included (SPEC.md
    // §9.7): without them the file is verified as the plain log it is.
    strip_ledger_rows(path);
}

fn flip_signature(path: &Path, position: u64) {
    let mut stored = record(path, position);
    stored[40] ^= 0x10;
    edit_events(path, |events| {
        events.insert(position, stored.as_slice()).unwrap();
    });
}

#[test]
fn the_first_bad_signature_is_named_alike_across_chunks() {
    let dir = fast_tempdir();
    let (path, records) = long_file(&dir);
    let pristine = std::fs::read(&path).unwrap();
    let digest = bulk(&path).expect("a long valid file verifies");
    let hash = |position: usize| record_hash(&records[position]);

    // One bad signature in the second chunk; then one in each chunk; then
    // two in one signature batch of the first.
    let cases: [(&[u64], usize); 3] = [
        (&[4_500], 4_500),
        (&[4_500, 1_000], 1_000),
        (&[700, 600], 600),
    ];
    for (bad, named) in cases {
        std::fs::write(&path, &pristine).unwrap();
        for position in bad {
            flip_signature(&path, *position);
        }
        assert_eq!(bulk(&path), Err(hash(named)), "bulk, bad at {bad:?}");
        // The plain path from just before the first bad record.
        let from = *bad.iter().min().unwrap() as usize - 3;
        assert_eq!(
            one_by_one(&path, (from, from + 10), &dir),
            Err(hash(named)),
            "one by one, bad at {bad:?}"
        );
    }
    std::fs::write(&path, &pristine).unwrap();
    assert_eq!(one_by_one(&path, (APPS - 8, usize::MAX), &dir), Ok(digest));
}

/// The later half of a long batch first: every record of it waits, across
/// a chunk boundary, until the earlier half is taken in the same join.
#[test]
fn a_peer_joins_from_a_long_batch_whose_halves_are_swapped() {
    let dir = fast_tempdir();
    let (path, mut records) = long_file(&dir);
    let digest = bulk(&path).unwrap();
    let group = meshlog::GroupId::from_bytes(*record_hash(&records[0]).as_bytes());
    records.rotate_left(APPS / 2);
    let peer = options(2)
        .join(
            dir.path().join("swapped.redb"),
            keys(2),
            &batch_of(group, records),
        )
        .unwrap();
    assert_eq!(peer.len(), APPS + 2);
    assert_eq!(peer.digest(), digest);
    drop(peer);
    let reopened = Mesh::open_read_only(dir.path().join("swapped.redb")).unwrap();
    assert_eq!(reopened.digest(), digest, "stored in an order that reopens");
}

/// A signature by the key of `seed` over an event's `bytes` (the message of
/// SPEC.md §3.4) whose `R` carries the small-order point
/// `EIGHT_TORSION[torsion]`, with `s_offset` added to `S`. Only the key's
/// holder can make one; ed25519 verifiers disagree on it unless they all
/// use the cofactored equation, as ZIP-215 does.
fn torsioned_signature(seed: [u8; 32], bytes: &[u8], torsion: usize, s_offset: u64) -> [u8; 64] {
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
    use curve25519_dalek::scalar::Scalar;
    use sha2::{Digest, Sha512};

    let message = [&b"meshlog v3 event signature\0"[..], bytes].concat();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    let expanded = Sha512::digest(seed);
    let mut clamped: [u8; 32] = expanded[..32].try_into().unwrap();
    clamped[0] &= 248;
    clamped[31] &= 127;
    clamped[31] |= 64;
    let a = Scalar::from_bytes_mod_order(clamped);
    assert_eq!(
        (a * ED25519_BASEPOINT_POINT).compress().to_bytes(),
        public.to_bytes()
    );
    let r = Scalar::from_bytes_mod_order_wide(&Sha512::digest(&message).into());
    let big_r = (r * ED25519_BASEPOINT_POINT + EIGHT_TORSION[torsion]).compress();
    let mut hasher = Sha512::new();
    hasher.update(big_r.as_bytes());
    hasher.update(public.as_bytes());
    hasher.update(&message);
    let k = Scalar::from_bytes_mod_order_wide(&hasher.finalize().into());
    let s = r + k * a + Scalar::from(s_offset);
    let mut bytes = [0u8; 64];
    bytes[..32].copy_from_slice(big_r.as_bytes());
    bytes[32..].copy_from_slice(s.as_bytes());
    bytes
}

/// Torsioned signatures by the real author verify under ZIP-215 alone (a
/// one-record ingest) and amid a full signature batch (open): the same
/// event, the same hash, the same state. With `S` off by one they are
/// refused by both, naming the event.
#[test]
fn single_and_batched_checks_agree_on_torsioned_signatures() {
    let dir = fast_tempdir();
    let (path, records) = long_file(&dir);
    let pristine = std::fs::read(&path).unwrap();
    let digest = bulk(&path).unwrap();
    for torsion in 1..8 {
        let position = 1_000 + torsion as u64;
        let original = &records[position as usize];
        let valid = torsioned_signature([1; 32], &original[64..], torsion, 0);
        assert!(
            ed25519_dalek::VerifyingKey::from_bytes(keys(1).public().signing.as_bytes())
                .unwrap()
                .verify_strict(
                    &[&b"meshlog v3 event signature\0"[..], &original[64..]].concat(),
                    &ed25519_dalek::Signature::from_bytes(&valid)
                )
                .is_err(),
            "a strict verifier refuses it"
        );
        std::fs::write(&path, &pristine).unwrap();
        resign(&path, position, valid);
        assert_eq!(bulk(&path), Ok(digest), "torsion {torsion}, batched");
        let at = position as usize;
        assert!(
            one_by_one(&path, (at, at + 1), &dir).is_ok(),
            "torsion {torsion}, alone"
        );

        let invalid = torsioned_signature([1; 32], &original[64..], torsion, 1);
        std::fs::write(&path, &pristine).unwrap();
        resign(&path, position, invalid);
        let hash = record_hash(original);
        assert_eq!(bulk(&path), Err(hash), "torsion {torsion}, S + 1, batched");
        assert_eq!(
            one_by_one(&path, (at, at + 1), &dir),
            Err(hash),
            "torsion {torsion}, S + 1, alone"
        );
    }
}
