//! Durable rotations: a refresh (a fresh secret wrapped to every member,
//! signed, verified, durable in the journal, which the mesh checkpoints
//! into redb as it fills) with rosters of 10, 100, 1,000 and 10,000
//! members, and a merge of two concurrent rotations at 1,000 members. Each
//! against its floor measured in the same run: the X25519 agreements its
//! envelope needs (one ephemeral key, one agreement a member, over every
//! core as meshlog spreads them), computed as meshlog computes them (on the
//! Edwards form, `wrap_floor`) and with the Montgomery ladder
//! (`ladder_floor`, for reference).

mod common;

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

criterion_group!(benches, refresh, merge);
criterion_main!(benches);
