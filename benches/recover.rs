//! `epoch_secret` by a member for epochs at the start, middle and end of a
//! 100k-event mesh with a roster of 1,000 (ten rotations, spread evenly),
//! against its floor measured in the same run: what opening one wrapped
//! copy costs (one X25519 agreement, the wrap key's derivation, one
//! ChaCha20-Poly1305 open of 32 bytes), with the agreement on the Edwards
//! form as meshlog computes it (`floor_edwards`) and with x25519-dalek's
//! ladder (`floor`).

mod common;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use criterion::{Criterion, criterion_group, criterion_main};
use meshlog::Mesh;

fn recover(c: &mut Criterion) {
    let cached = common::epochs(100_000, 1_000, 10);
    let dir = tempfile::tempdir().expect("temporary folder");
    let copy = common::copy_of(&cached, &dir, "copy.redb");
    // A member in the middle of the roster, not the founder.
    let mesh = Mesh::open(&copy, common::keys(500)).expect("open");
    // The genesis's secret is wrapped to the founder alone; the member's
    // epochs start at the rotation that added it.
    let epochs: Vec<_> = mesh
        .epochs()
        .into_iter()
        .filter(|epoch| !epoch.is_genesis)
        .map(|epoch| epoch.hash)
        .collect();
    assert_eq!(epochs.len(), 10);
    let mut group = c.benchmark_group("recover");
    for (name, epoch) in [
        ("start", epochs[0]),
        ("middle", epochs[epochs.len() / 2]),
        ("end", epochs[epochs.len() - 1]),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| mesh.epoch_secret(epoch).expect("member"))
        });
    }
    // The floor: one agreement, the wrap key (BLAKE3 over the shared
    // secret, both DH keys, the member id and the 41-byte binding), one
    // AEAD open of the 32-byte secret that succeeds.
    let secret = x25519_dalek::StaticSecret::from([9; 32]);
    let ephemeral = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([3; 32]));
    let wrap_key = |shared: &[u8; 32]| {
        *blake3::Hasher::new_derive_key("meshlog v1 envelope wrap key")
            .update(shared)
            .update(ephemeral.as_bytes())
            .update(&[0u8; 32 + 16 + 41])
            .finalize()
            .as_bytes()
    };
    let key = wrap_key(secret.diffie_hellman(&ephemeral).as_bytes());
    let mut sealed = [5u8; 32];
    let tag = chacha20poly1305::ChaCha20Poly1305::new(&key.into())
        .encrypt_inout_detached(&Default::default(), b"ad", sealed.as_mut_slice().into())
        .expect("seal");
    // The rest of the floor once the agreement is made.
    let unwrap = |shared: &[u8; 32]| {
        let key = wrap_key(shared);
        let mut data = sealed;
        chacha20poly1305::ChaCha20Poly1305::new(&key.into())
            .decrypt_inout_detached(&Default::default(), b"ad", data.as_mut_slice().into(), &tag)
            .expect("opens");
        data
    };
    group.bench_function("floor", |b| {
        b.iter(|| unwrap(secret.diffie_hellman(&ephemeral).as_bytes()))
    });
    // The same with the agreement on the Edwards form, as meshlog computes
    // it (src/agreement.rs): the floor the ratio uses.
    let secret_bytes = secret.to_bytes();
    let ephemeral_bytes = [*ephemeral.as_bytes()];
    group.bench_function("floor_edwards", |b| {
        b.iter(|| unwrap(&common::agree_edwards(&secret_bytes, &ephemeral_bytes)[0]))
    });
    group.finish();
}

criterion_group!(benches, recover);
criterion_main!(benches);
