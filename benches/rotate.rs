//! Durable rotations: a refresh (a fresh secret wrapped to every member,
//! signed, verified, durable in the journal, which the mesh checkpoints
//! into redb as it fills) with rosters of 10, 100, 1,000 and 10,000
//! members, and a merge of two concurrent rotations at 1,000 members. Each
//! against its floor measured in the same run: the X25519 agreements its
//! envelope needs (one ephemeral key, one agreement a member, over every
//! core as meshlog spreads them), computed as meshlog computes them (on the
//! Edwards form, `wrap_floor`) and with the Montgomery ladder
//! (`ladder_floor`, for reference). And a refresh at 10 members after
//! 100,000 epochs against one on a fresh mesh of 10 (issue 24:
//! resolution is incremental), interleaved.

mod common;

use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use meshlog::Mesh;

fn refresh(c: &mut Criterion) {
    let mut group = c.benchmark_group("rotate");
    group.sample_size(10);
    for members in [10u32, 100, 1_000, 10_000] {
        let dir = tempfile::tempdir().expect("temporary folder");
        let mut mesh = common::mesh_with_members(&dir.path().join("mesh.redb"), members, &[]);
        let floor = common::WrapFloor::new(0..members);
        group.bench_function(format!("refresh/{members}"), |b| {
            b.iter(|| mesh.refresh("bench").expect("refresh"))
        });
        group.bench_function(format!("wrap_floor/{members}"), |b| {
            b.iter(|| floor.agree())
        });
        group.bench_function(format!("ladder_floor/{members}"), |b| {
            b.iter(|| floor.agree_ladder())
        });
    }
    group.finish();
}

/// A mesh of 1,000 members that needs a merge: the founder removed member
/// 2 while admin 1, on its own copy, removed member 3; then the founder
/// took the admin's rotation. Neither tip's own roster is R*.
fn needs_merge(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("needs-merge.redb");
    let mut founder = common::mesh_with_members(&path, 1_000, &[1]);
    let mut admin = common::options_for(1)
        .join(
            dir.path().join("admin.redb"),
            common::keys(1),
            &founder.export_all(),
        )
        .expect("join");
    admin.set_enabled(true).expect("enable");
    founder
        .remove_member(common::keys(2).member_id())
        .expect("remove");
    admin
        .remove_member(common::keys(3).member_id())
        .expect("remove");
    let ingested = founder
        .ingest(&admin.export(&founder.frontier()))
        .expect("ingest");
    assert!(ingested.needs_merge, "two concurrent removals need a merge");
    path
}

fn merge(c: &mut Criterion) {
    let fixture = tempfile::tempdir().expect("temporary folder");
    let needs_merge = needs_merge(&fixture);
    // R*: every member but 2 and 3.
    let floor = common::WrapFloor::new((0..1_000).filter(|n| *n != 2 && *n != 3));
    let mut group = c.benchmark_group("rotate");
    group.sample_size(10);
    let dir = tempfile::tempdir().expect("temporary folder");
    group.bench_function("merge/1000", |b| {
        b.iter_batched(
            || {
                // A fresh copy each time (the last one is closed by now):
                // the file and its open are setup.
                let path = common::copy_of(&needs_merge, &dir, "merge.redb");
                Mesh::open(&path, common::keys(0)).expect("verifies")
            },
            |mut mesh| {
                assert!(mesh.merge().expect("merge").is_some());
                mesh
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("wrap_floor/998", |b| b.iter(|| floor.agree()));
    group.bench_function("ladder_floor/998", |b| b.iter(|| floor.agree_ladder()));
    group.finish();
}

/// Epochs behind the deep mesh of [`deep`].
const DEEP: usize = 100_000;

/// A refresh at 10 members on a mesh with [`DEEP`] epochs behind it
/// (`refresh_deep/10`), against one on a fresh mesh of 10
/// (`refresh_fresh/10`), both files in one folder, in RAM where the
/// machine has `/dev/shm`: the disk's share (the same for both, and the
/// noisiest part on this shared machine) stays out, so that the ratio is
/// that of the work a refresh does, which is what grows with history if
/// anything is resolved again or scanned. The two take turns
/// within each iteration, each going first every other time, so that the
/// machine's drift falls on both alike; the ratio of the totals over the
/// very same iterations is printed at the end.
fn deep(c: &mut Criterion) {
    let fixture = common::deep_history(DEEP, 10);
    let dir = common::scratch_dir();
    let path = common::copy_of(&fixture, &dir, "deep.redb");
    let mut deep = Mesh::open(&path, common::keys(0)).expect("verifies");
    let mut fresh = common::mesh_with_members(&dir.path().join("fresh.redb"), 10, &[]);
    let names = ["refresh_fresh/10", "refresh_deep/10"];
    let mut totals = [Duration::ZERO; 2];
    // Every refresh's own time, for the medians: the store's checkpoint
    // every 1,024 events (SPEC.md §9.6) lands on some refreshes only.
    let mut each: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut interleaved = |iters: u64, timed_one: usize| {
        let mut timed = Duration::ZERO;
        for i in 0..iters {
            let mut spent = [Duration::ZERO; 2];
            for turn in 0..2 {
                let which = (turn + i as usize) % 2;
                let mesh = if which == 0 { &mut fresh } else { &mut deep };
                let started = Instant::now();
                mesh.refresh("bench").expect("refresh");
                spent[which] = started.elapsed();
            }
            for ((total, times), spent) in totals.iter_mut().zip(each.iter_mut()).zip(spent) {
                *total += spent;
                times.push(spent);
            }
            timed += spent[timed_one];
        }
        timed
    };
    let mut group = c.benchmark_group("rotate");
    group.sample_size(50);
    for (which, name) in names.iter().enumerate() {
        group.bench_function(*name, |b| b.iter_custom(|iters| interleaved(iters, which)));
    }
    group.finish();
    println!(
        "over the same interleaved iterations: rotate/refresh_deep/10 (after {DEEP} epochs) ÷ \
         rotate/refresh_fresh/10 {:.3}",
        totals[1].as_secs_f64() / totals[0].as_secs_f64()
    );
    let [fresh_times, deep_times] = &mut each;
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times.get(times.len() / 2).copied().unwrap_or_default()
    };
    let (fresh_median, deep_median) = (median(fresh_times), median(deep_times));
    println!(
        "medians of the same refreshes: {fresh_median:?} fresh, {deep_median:?} deep, ratio {:.3}; \
         slowest {:?} fresh, {:?} deep",
        deep_median.as_secs_f64() / fresh_median.as_secs_f64(),
        fresh_times.last().copied().unwrap_or_default(),
        deep_times.last().copied().unwrap_or_default(),
    );
}

criterion_group!(benches, refresh, merge, deep);
criterion_main!(benches);
