//! Durable appends: one event per transaction, and 1,000 per transaction.

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut mesh = common::mesh_with_roster(&dir, 20);
    let payload = [0x42u8; 64];
    group.throughput(Throughput::Elements(1));
    group.bench_function("single", |b| {
        b.iter(|| mesh.append_app("bench", &payload).expect("append"))
    });
    group.sample_size(10);
    group.throughput(Throughput::Elements(1000));
    group.bench_function("batch_1000", |b| {
        b.iter(|| {
            mesh.append_apps((0..1000).map(|_| ("bench", &payload[..])))
                .expect("append")
        })
    });
    group.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);
