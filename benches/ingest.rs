//! Ingest 100k feed events by 20 authors, one batch, into a fresh copy of
//! the mesh they were written in (it holds only the genesis, the founder's
//! enable and the rotation adding the authors): every event verified, then
//! written in one transaction. Floor, measured in the same run: the batch
//! verification of the same events' signatures.

mod common;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use meshlog::Mesh;

const EVENTS: usize = 100_000;
const AUTHORS: u32 = 20;

fn ingest(c: &mut Criterion) {
    let feeds = common::feeds(EVENTS, AUTHORS);
    let batch = common::batch_between(&feeds.base, &feeds.full);
    let floor = {
        let base = Mesh::open_read_only(&feeds.base).expect("verifies");
        let full = Mesh::open_read_only(&feeds.full).expect("verifies");
        let new = full
            .log()
            .map(|entry| entry.event)
            .filter(|event| base.event(event.hash()).is_none());
        common::SignatureFloor::new(new, AUTHORS)
    };
    assert_eq!(floor.len(), batch.len());
    println!(
        "a batch of {} events, {} bytes",
        batch.len(),
        batch.to_bytes().len()
    );
    let mut group = c.benchmark_group("ingest");
    // Ten iterations of a second or two each, not criterion's 55.
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.bench_function("signature_floor", |b| b.iter(|| floor.verify()));
    let dir = tempfile::tempdir().expect("temporary folder");
    group.bench_function("batch", |b| {
        b.iter_batched(
            || {
                // A fresh copy each time (the last one is closed by now):
                // the file and its open are setup.
                let path = common::copy_of(&feeds.base, &dir, "base.redb");
                Mesh::open(&path, common::keys(0)).expect("base verifies")
            },
            |mut mesh| {
                let ingested = mesh.ingest(&batch).expect("ingest");
                assert_eq!(ingested.added, batch.len());
                mesh
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
