//! Durable appends: one event per transaction, and 1,000 per transaction.

mod common;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut mesh = common::mesh_with_roster(&dir, 20);
    let payload = [0x42u8; 64];
    group.throughput(Throughput::Elements(1));
    // The floor of one durable append is one durable commit of a stored
    // record's size, in a file opened as meshlog opens files, plus one
    // signature (floor/ed25519_sign). This machine's disk and CPUs are
    // shared, and their speed drifts from one minute to the next, so both
    // benches below interleave an append with a bare commit and each times
    // one of the two; the ratio of the two totals over the very same
    // iterations is printed at the end.
    let mut bare_commits = common::BareCommits::create(&dir);
    let app = mesh.append_app("bench", &payload).expect("append");
    let record = mesh.event(app.seq).expect("event").to_record();
    let mut commit = move || bare_commits.commit(&record);
    let (mut appends, mut commits) = (Duration::ZERO, Duration::ZERO);
    let mut interleaved = |iters: u64, time_append: bool| {
        let mut timed = Duration::ZERO;
        for i in 0..iters {
            // A commit right after another one waits longer on the disk:
            // take turns at going first.
            let mut append = || {
                let started = Instant::now();
                mesh.append_app("bench", &payload).expect("append");
                started.elapsed()
            };
            let mut bare = || {
                let started = Instant::now();
                commit();
                started.elapsed()
            };
            let (append, bare) = if i % 2 == 0 {
                let append = append();
                (append, bare())
            } else {
                let bare = bare();
                (append(), bare)
            };
            appends += append;
            commits += bare;
            timed += if time_append { append } else { bare };
        }
        timed
    };
    group.bench_function("commit_floor", |b| {
        b.iter_custom(|iters| interleaved(iters, false))
    });
    group.bench_function("single", |b| {
        b.iter_custom(|iters| interleaved(iters, true))
    });
    println!(
        "append/single ÷ append/commit_floor over the same iterations: {:.3}",
        appends.as_secs_f64() / commits.as_secs_f64()
    );
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
