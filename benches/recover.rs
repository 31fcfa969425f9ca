//! `epoch_secret` for epochs at the start, middle and end of a 100k-event
//! chain with a roster of 1,000 (a rotation every 10,000 events).

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use meshlog::Mesh;

fn recover(c: &mut Criterion) {
    let cached = common::chain(100_000, 10_000, 1_000);
    let dir = tempfile::tempdir().expect("temporary folder");
    let copy = common::copy_of(&cached, &dir);
    // A member in the middle of the roster, not the founder.
    let mesh = Mesh::open(&copy, common::keys(500)).expect("open");
    let last = mesh.state().current_epoch().expect("epochs").epoch;
    let mut group = c.benchmark_group("recover");
    for (name, epoch) in [("start", 1), ("middle", last / 2), ("end", last)] {
        group.bench_function(name, |b| {
            b.iter(|| mesh.epoch_secret(epoch).expect("member"))
        });
    }
    group.finish();
}

criterion_group!(benches, recover);
criterion_main!(benches);
