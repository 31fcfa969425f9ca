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
    // The floors of one durable append: one durable commit of a stored
    // record's size, in a file opened as meshlog opens files (plus one
    // signature, floor/ed25519_sign); and the design meshlog came from,
    // one SQLite row a transaction (WAL, synchronous=FULL). This machine's
    // disk and CPUs are shared, and their speed drifts from one minute to
    // the next, so the benches below interleave an append with both floors,
    // taking turns at going first, and each times one of the three; the
    // ratios of the totals over the very same iterations are printed at the
    // end.
    let mut bare_commits = common::BareCommits::create(&dir);
    let mut sqlite = common::SqliteFloor::create(&dir);
    let app = mesh.append_app("bench", &payload).expect("append");
    let record = mesh.event(app.seq).expect("event").to_record();
    let (mut appends, mut commits, mut rows) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut interleaved = |iters: u64, timed_one: usize| {
        let mut timed = Duration::ZERO;
        for i in 0..iters {
            let mut spent = [Duration::ZERO; 3];
            for turn in 0..3 {
                let which = (turn + i as usize) % 3;
                let started = Instant::now();
                match which {
                    0 => {
                        mesh.append_app("bench", &payload).expect("append");
                    }
                    1 => bare_commits.commit(&record),
                    _ => sqlite.insert(&record),
                }
                spent[which] = started.elapsed();
            }
            appends += spent[0];
            commits += spent[1];
            rows += spent[2];
            timed += spent[timed_one];
        }
        timed
    };
    group.bench_function("single", |b| b.iter_custom(|iters| interleaved(iters, 0)));
    group.bench_function("commit_floor", |b| {
        b.iter_custom(|iters| interleaved(iters, 1))
    });
    group.bench_function("sqlite_floor", |b| {
        b.iter_custom(|iters| interleaved(iters, 2))
    });
    println!(
        "over the same interleaved iterations: append/single ÷ append/commit_floor {:.3}; \
         append/single ÷ append/sqlite_floor {:.3}",
        appends.as_secs_f64() / commits.as_secs_f64(),
        appends.as_secs_f64() / rows.as_secs_f64()
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
