//! Open and fully verify a mesh of 100k events by 20 authors (app events
//! of 64 bytes, the founder refreshing the epoch now and then), read-only
//! and writable, against its floor measured in the same run: the batch
//! verification of the same events' signatures (ZIP-215, batches of 512
//! over every core, as meshlog checks them).

mod common;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use meshlog::Mesh;

const EVENTS: usize = 100_000;
const AUTHORS: u32 = 20;

fn open_verify(c: &mut Criterion) {
    let feeds = common::feeds(EVENTS, AUTHORS);
    let size = std::fs::metadata(&feeds.full).map_or(0, |m| m.len());
    println!(
        "{EVENTS} events: {size} bytes on disk, {} bytes per event",
        size / EVENTS as u64
    );
    let floor = {
        let mesh = Mesh::open_read_only(&feeds.full).expect("verifies");
        common::SignatureFloor::new(mesh.log().map(|entry| entry.event), AUTHORS)
    };
    assert_eq!(floor.len(), EVENTS);
    let mut group = c.benchmark_group("open_verify");
    // Ten samples of one or a few iterations of most of a second each,
    // not criterion's 55 iterations at the least.
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("signature_floor", |b| b.iter(|| floor.verify()));
    group.bench_function("read_only", |b| {
        b.iter(|| Mesh::open_read_only(&feeds.full).expect("verifies"))
    });
    let dir = tempfile::tempdir().expect("temporary folder");
    let copy = common::copy_of(&feeds.full, &dir, "copy.redb");
    // The mesh is returned, so that closing it is not timed.
    group.bench_function("writable", |b| {
        b.iter_batched(
            || (),
            |()| Mesh::open(&copy, common::keys(0)).expect("verifies"),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, open_verify);
criterion_main!(benches);
