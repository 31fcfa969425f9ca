//! A durable single append (one app event: made, verified, signed while its
//! journal frame goes to the disk, durable on return) against three floors
//! measured in the same run, interleaved with it: one durable (`O_DSYNC`)
//! write of the same record into a preallocated file (the disk's part of
//! meshlog's journal, SPEC.md §9.6), a bare durable redb
//! commit of the same record, and one SQLite row a transaction in WAL mode
//! with `synchronous=FULL` (the design meshlog came from).

mod common;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// The writers taking turns: the append, then its floors.
const NAMES: [&str; 4] = ["single", "sync_floor", "commit_floor", "sqlite_floor"];

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut mesh = common::mesh_with_members(&dir.path().join("mesh.redb"), 20, &[]);
    let payload = [0x42u8; 64];
    group.throughput(Throughput::Elements(1));
    // This machine's disk and CPUs are shared, and their speed drifts from
    // one minute to the next, so each iteration runs the append and every
    // floor, taking turns at going first, and each bench times one of them;
    // the ratios of the totals over the very same iterations are printed at
    // the end. The append's own share of signing and verifying is in the
    // floor bench (ed25519 sign, ZIP-215 verify).
    let mut sync = common::SyncFloor::create(&dir);
    let mut bare_commits = common::BareCommits::create(&dir);
    let mut sqlite = common::SqliteFloor::create(&dir);
    let app = mesh.append_app("bench", &payload).expect("append");
    let record = mesh.event(app).expect("event").to_record();
    let mut totals = [Duration::ZERO; NAMES.len()];
    let mut interleaved = |iters: u64, timed_one: usize| {
        let mut timed = Duration::ZERO;
        for i in 0..iters {
            let mut spent = [Duration::ZERO; NAMES.len()];
            for turn in 0..NAMES.len() {
                let which = (turn + i as usize) % NAMES.len();
                let started = Instant::now();
                match which {
                    0 => {
                        mesh.append_app("bench", &payload).expect("append");
                    }
                    1 => sync.write(&record),
                    2 => bare_commits.commit(&record),
                    _ => sqlite.insert(&record),
                }
                spent[which] = started.elapsed();
            }
            for (total, spent) in totals.iter_mut().zip(spent) {
                *total += spent;
            }
            timed += spent[timed_one];
        }
        timed
    };
    for (which, name) in NAMES.iter().enumerate() {
        group.bench_function(*name, |b| b.iter_custom(|iters| interleaved(iters, which)));
    }
    let ratios: Vec<String> = NAMES
        .iter()
        .zip(totals)
        .skip(1)
        .map(|(name, total)| {
            format!(
                "append/single ÷ append/{name} {:.3}",
                totals[0].as_secs_f64() / total.as_secs_f64()
            )
        })
        .collect();
    println!(
        "over the same interleaved iterations: {}",
        ratios.join("; ")
    );
    group.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);
