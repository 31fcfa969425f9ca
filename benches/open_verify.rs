//! Open and fully verify chains of 1k, 10k and 100k events (mostly app
//! events, a rotation every 100 events, rosters of 20).

mod common;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use meshlog::Mesh;

fn open_verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("open_verify");
    group.sample_size(10);
    for len in [1_000u64, 10_000, 100_000] {
        let cached = common::chain(len, 100, 20);
        let size = std::fs::metadata(&cached).map(|m| m.len()).unwrap_or(0);
        println!(
            "chain of {len} events: {size} bytes on disk, {} bytes per event",
            size / len
        );
        group.throughput(Throughput::Elements(len));
        group.bench_function(format!("read_only/{len}"), |b| {
            b.iter(|| Mesh::open_read_only(&cached).expect("verifies"))
        });
        let dir = tempfile::tempdir().expect("temporary folder");
        let copy = common::copy_of(&cached, &dir);
        group.bench_function(format!("writable/{len}"), |b| {
            b.iter_batched(
                || (),
                |()| Mesh::open(&copy, common::keys(0)).expect("verifies"),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, open_verify);
criterion_main!(benches);
