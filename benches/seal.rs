//! Sealing (`Mesh::seal_with`) and opening (`Mesh::open_sealed`) a message
//! of 1 KiB and of 1 MiB, in a group of 20, against floors measured in the
//! same run, interleaved with them:
//!
//! - `floor_sign_plus_aead_1k`: one ed25519 signature of a 32-byte digest
//!   (with its label, as a sender signs) and one ChaCha20-Poly1305
//!   encryption of the same bytes the seal encrypts;
//! - `floor_verify_plus_aead_1k`: one ZIP-215 verification (ed25519-zebra,
//!   what meshlog verifies with) and one ChaCha20-Poly1305 decryption;
//! - `floor_aead_1m`: the bare ChaCha20-Poly1305 encryption of 1 MiB, on
//!   one thread.
//!
//! What the floors leave out is the engine's own share: the fresh salt from
//! the operating system, the key derivations (BLAKE3), the content digest
//! over the plaintext (on every core from 128 KiB), copying into the
//! message, and on opening the roster lookups.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Tag};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};
use meshlog::{Mesh, Padding, Sealed};

const KIB: usize = 1024;
const MIB: usize = 1 << 20;
/// A sealed message's header with no associated data: magic, group,
/// epoch, salt, the associated data's length.
const HEADER: usize = 4 + 32 + 32 + 32 + 4;
/// The encrypted part before the plaintext: the sender, its signature, the
/// plaintext's length.
const INNER_HEADER: usize = 16 + meshlog::SIGNATURE_LEN + 4;

/// The floors' fixed inputs: a key pair, what a sender signs and its
/// signature, a cipher, and an inner part of `plaintext + 84` bytes in the
/// clear and encrypted (the same bytes a seal without padding encrypts,
/// under a header of the same size as associated data).
struct Floor {
    signing: SigningKey,
    verifying: ed25519_zebra::VerificationKey,
    signed: Vec<u8>,
    signature: ed25519_dalek::Signature,
    cipher: ChaCha20Poly1305,
    header: [u8; HEADER],
    inner: Vec<u8>,
    encrypted: Vec<u8>,
    tag: Tag,
}

impl Floor {
    fn new(plaintext: usize) -> Floor {
        let signing = SigningKey::from_bytes(&[7; 32]);
        let verifying =
            ed25519_zebra::VerificationKey::try_from(signing.verifying_key().to_bytes())
                .expect("a valid key");
        let label = meshlog::DOMAIN_LABELS
            .iter()
            .find(|(name, _)| *name == "SEALED_SIGNATURE")
            .map(|(_, label)| *label)
            .expect("the sealed signature label");
        let signed = [label.as_bytes(), &[0], &[0x11; 32]].concat();
        let signature = signing.sign(&signed);
        let cipher = ChaCha20Poly1305::new(&[1u8; 32].into());
        let header = [0x22; HEADER];
        let inner = vec![0x33; INNER_HEADER + plaintext];
        let mut encrypted = inner.clone();
        let tag = cipher
            .encrypt_inout_detached(
                &Default::default(),
                &header,
                encrypted.as_mut_slice().into(),
            )
            .expect("encrypt");
        Floor {
            signing,
            verifying,
            signed,
            signature,
            cipher,
            header,
            inner,
            encrypted,
            tag,
        }
    }

    /// A buffer for [`Floor::encrypt`] and [`Floor::decrypt`].
    fn buffer(&self) -> Vec<u8> {
        vec![0; self.inner.len()]
    }

    fn sign(&self) -> ed25519_dalek::Signature {
        self.signing.sign(black_box(&self.signed))
    }

    fn verify(&self) {
        self.verifying
            .verify(&self.signature, black_box(&self.signed))
            .expect("verifies");
    }

    /// The inner part copied into `buffer` and encrypted there, as a seal
    /// lays out its message and encrypts it in place.
    fn encrypt(&self, buffer: &mut [u8]) -> Tag {
        buffer.copy_from_slice(&self.inner);
        self.cipher
            .encrypt_inout_detached(&Default::default(), &self.header, buffer.into())
            .expect("encrypt")
    }

    /// The encrypted inner part copied into `buffer` and decrypted there,
    /// as an opening copies the ciphertext and decrypts it in place.
    fn decrypt(&self, buffer: &mut [u8]) {
        buffer.copy_from_slice(&self.encrypted);
        self.cipher
            .decrypt_inout_detached(&Default::default(), &self.header, buffer.into(), &self.tag)
            .expect("decrypts");
    }
}

/// Runs `ops` in turns: each iteration runs every one of them, taking turns
/// at going first, and the bench named `names[i]` times `ops[i]`. This
/// machine's CPUs are shared and their speed drifts from one minute to the
/// next, so the ratios are taken over the very same iterations: the totals
/// of every op over every iteration run (warm-up included), returned.
fn interleaved(
    group: &mut BenchmarkGroup<'_, WallTime>,
    names: &[&str],
    ops: &mut [&mut dyn FnMut()],
) -> Vec<Duration> {
    let mut totals = vec![Duration::ZERO; ops.len()];
    for (timed_one, name) in names.iter().enumerate() {
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for i in 0..iters {
                    for turn in 0..ops.len() {
                        let which = (turn + i as usize) % ops.len();
                        let started = Instant::now();
                        ops[which]();
                        let spent = started.elapsed();
                        totals[which] += spent;
                        if which == timed_one {
                            timed += spent;
                        }
                    }
                }
                timed
            })
        });
    }
    totals
}

/// `plaintext` sealed by `mesh`'s member, unpadded: the timed seals are
/// unpadded so that a seal and its floor encrypt the very same number of
/// bytes (Padmé would add up to 12%).
fn unpadded(mesh: &Mesh, plaintext: &[u8]) -> Sealed {
    mesh.seal_with(plaintext, b"", Padding::None).expect("seal")
}

/// `seal/a ÷ seal/b` over the same iterations.
fn ratio(names: &[&str], totals: &[Duration], a: usize, b: usize) -> String {
    format!(
        "seal/{} ÷ seal/{} {:.3}",
        names[a],
        names[b],
        totals[a].as_secs_f64() / totals[b].as_secs_f64()
    )
}

fn seal(c: &mut Criterion) {
    let dir = common::scratch_dir();
    // The founder seals; member 1, on its own copy, opens. Neither writes
    // an event: sealing and opening are reads of the mesh.
    let founder = common::mesh_with_members(&dir.path().join("founder.redb"), 20, &[]);
    let member = common::options_for(1)
        .join(
            dir.path().join("member.redb"),
            common::keys(1),
            &founder.export_all(),
        )
        .expect("join");
    assert_eq!(
        HEADER + INNER_HEADER + 16,
        meshlog::SEALED_OVERHEAD,
        "the floors encrypt what a seal encrypts"
    );
    let mut group = c.benchmark_group("seal");

    // 1 KiB: the signature dominates.
    let plaintext = vec![0x42u8; KIB];
    let sealed = unpadded(&founder, &plaintext);
    assert_eq!(sealed.padded_len(), INNER_HEADER + KIB);
    assert_eq!(
        member.open_sealed(&sealed).expect("opens").plaintext,
        plaintext
    );
    let floor = Floor::new(KIB);
    let (mut seal_buffer, mut open_buffer) = (floor.buffer(), floor.buffer());
    let names_1k = [
        "seal_1k",
        "floor_sign_plus_aead_1k",
        "open_1k",
        "floor_verify_plus_aead_1k",
    ];
    let mut seal_1k = || {
        black_box(unpadded(&founder, black_box(&plaintext)));
    };
    let mut sign_floor = || {
        black_box(floor.sign());
        black_box(floor.encrypt(&mut seal_buffer));
    };
    let mut open_1k = || {
        black_box(member.open_sealed(black_box(&sealed)).expect("opens"));
    };
    let mut verify_floor = || {
        floor.verify();
        floor.decrypt(&mut open_buffer);
        black_box(&open_buffer);
    };
    let mut ops: [&mut dyn FnMut(); 4] = [
        &mut seal_1k,
        &mut sign_floor,
        &mut open_1k,
        &mut verify_floor,
    ];
    group.throughput(Throughput::Bytes(KIB as u64));
    let totals_1k = interleaved(&mut group, &names_1k, &mut ops);

    // 1 MiB: the encryption and the content digest dominate.
    let plaintext = vec![0x42u8; MIB];
    let sealed = unpadded(&founder, &plaintext);
    assert_eq!(sealed.padded_len(), INNER_HEADER + MIB);
    assert_eq!(
        member.open_sealed(&sealed).expect("opens").plaintext,
        plaintext
    );
    let floor = Floor::new(MIB);
    let mut buffer = floor.buffer();
    let names_1m = ["seal_1m", "open_1m", "floor_aead_1m"];
    let mut seal_1m = || {
        black_box(unpadded(&founder, black_box(&plaintext)));
    };
    let mut open_1m = || {
        black_box(member.open_sealed(black_box(&sealed)).expect("opens"));
    };
    let mut aead_floor = || {
        black_box(floor.encrypt(&mut buffer));
    };
    let mut ops: [&mut dyn FnMut(); 3] = [&mut seal_1m, &mut open_1m, &mut aead_floor];
    group.throughput(Throughput::Bytes(MIB as u64));
    // Each iteration runs all three, a few milliseconds.
    group.sample_size(20);
    let totals_1m = interleaved(&mut group, &names_1m, &mut ops);
    group.finish();

    println!(
        "over the same interleaved iterations: {}; {}; {}; {}",
        ratio(&names_1k, &totals_1k, 0, 1),
        ratio(&names_1k, &totals_1k, 2, 3),
        ratio(&names_1m, &totals_1m, 0, 2),
        ratio(&names_1m, &totals_1m, 1, 2),
    );
}

criterion_group!(benches, seal);
criterion_main!(benches);
