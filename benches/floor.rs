//! The unavoidable costs, measured in the same run as the engine benches:
//! what the engine's figures are divided by in benches/README.md.

mod common;

use std::hint::black_box;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};

fn floor(c: &mut Criterion) {
    let mut group = c.benchmark_group("floor");
    let key = SigningKey::from_bytes(&[7; 32]);
    let public = key.verifying_key();
    let message = [0x42u8; 200];
    let signature = key.sign(&message);
    group.bench_function("ed25519_sign", |b| b.iter(|| key.sign(black_box(&message))));
    group.bench_function("ed25519_verify_strict", |b| {
        b.iter(|| public.verify_strict(black_box(&message), &signature))
    });
    let keys: Vec<SigningKey> = (0..64u8)
        .map(|i| SigningKey::from_bytes(&[i; 32]))
        .collect();
    let messages: Vec<[u8; 200]> = (0..64u8).map(|i| [i; 200]).collect();
    let signatures: Vec<_> = keys.iter().zip(&messages).map(|(k, m)| k.sign(m)).collect();
    let publics: Vec<_> = keys.iter().map(SigningKey::verifying_key).collect();
    let refs: Vec<&[u8]> = messages.iter().map(|m| &m[..]).collect();
    group.throughput(criterion::Throughput::Elements(64));
    group.bench_function("ed25519_verify_batch_64 (per element)", |b| {
        b.iter(|| ed25519_dalek::verify_batch(black_box(&refs), &signatures, &publics))
    });
    // ZIP-215 (what meshlog verifies with), single and batched: with every
    // signature by a different key, by 20 keys, and by one key (the shape of
    // the open_verify chains). A batch merges each key's terms.
    let zebra_key = |key: &SigningKey| {
        ed25519_zebra::VerificationKeyBytes::from(key.verifying_key().to_bytes())
    };
    group.throughput(criterion::Throughput::Elements(1));
    let zebra_public = ed25519_zebra::VerificationKey::try_from(public.to_bytes()).unwrap();
    group.bench_function("zip215_verify", |b| {
        b.iter(|| zebra_public.verify(&signature, black_box(&message)))
    });
    for (name, authors) in [
        ("zip215_batch_512_distinct_keys", 512usize),
        ("zip215_batch_512_20_keys", 20),
        ("zip215_batch_512_1_key", 1),
    ] {
        let signers: Vec<SigningKey> = (0..authors)
            .map(|i| {
                SigningKey::from_bytes(
                    &[(i % 251) as u8, (i / 251) as u8]
                        .repeat(16)
                        .try_into()
                        .unwrap(),
                )
            })
            .collect();
        let items: Vec<ed25519_zebra::batch::Item> = (0..512usize)
            .map(|i| {
                let signer = &signers[i % authors];
                let message = [i as u8, (i >> 8) as u8].repeat(100);
                (zebra_key(signer), signer.sign(&message), &message[..]).into()
            })
            .collect();
        group.throughput(criterion::Throughput::Elements(512));
        group.bench_function(format!("{name} (per element)"), |b| {
            b.iter(|| {
                let mut batch = ed25519_zebra::batch::Verifier::new();
                for item in &items {
                    batch.queue(item.clone());
                }
                batch.verify(rand::rng())
            })
        });
    }
    group.throughput(criterion::Throughput::Elements(1));
    let secret = x25519_dalek::StaticSecret::from([9; 32]);
    let their = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([3; 32]));
    group.bench_function("x25519", |b| {
        b.iter(|| secret.diffie_hellman(black_box(&their)))
    });
    let cipher = chacha20poly1305::ChaCha20Poly1305::new(&[1u8; 32].into());
    group.bench_function("chacha20poly1305_seal_32", |b| {
        b.iter(|| {
            let mut data = [5u8; 32];
            cipher
                .encrypt_inout_detached(&Default::default(), b"ad", data.as_mut_slice().into())
                .map(|tag| (data, tag))
        })
    });
    let mut sealed = [5u8; 32];
    let tag = cipher
        .encrypt_inout_detached(&Default::default(), b"ad", sealed.as_mut_slice().into())
        .expect("seal");
    group.bench_function("chacha20poly1305_open_32", |b| {
        b.iter(|| {
            let mut data = sealed;
            cipher.decrypt_inout_detached(
                &Default::default(),
                b"ad",
                data.as_mut_slice().into(),
                &tag,
            )
        })
    });
    let event = [0x42u8; 200];
    group.bench_function("blake3_200_bytes", |b| {
        b.iter(|| {
            blake3::Hasher::new_derive_key("meshlog v3 event hash")
                .update(black_box(&event))
                .finalize()
        })
    });

    // One durable commit of an event-sized value, as meshlog opens files
    // (single-writer mode, a 32 MiB page cache).
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut bare_commits = common::BareCommits::create(&dir);
    let value = [0x42u8; 264];
    group.bench_function("redb_durable_commit_264_bytes", |b| {
        b.iter(|| bare_commits.commit(&value))
    });
    group.finish();
}

criterion_group!(benches, floor);
criterion_main!(benches);
