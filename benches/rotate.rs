//! One durable rotation (fresh secret wrapped to every member, signed,
//! checked, committed) with rosters of 10, 100, 1,000 and 10,000 members.

mod common;

use criterion::{Criterion, criterion_group, criterion_main};

fn rotate(c: &mut Criterion) {
    let mut group = c.benchmark_group("rotate");
    group.sample_size(10);
    for members in [10u32, 100, 1_000, 10_000] {
        let dir = tempfile::tempdir().expect("temporary folder");
        let mut mesh = common::mesh_with_roster(&dir, members);
        let path = dir.path().join("mesh.redb");
        let before = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        group.bench_function(format!("{members}"), |b| {
            b.iter(|| mesh.rotate("bench").expect("rotate"))
        });
        let rotations = mesh.state().epochs().len() as u64 - 2;
        let after = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if let Some(per_rotation) = after.saturating_sub(before).checked_div(rotations) {
            println!(
                "rotation of {members}: about {} bytes on disk per rotated member",
                per_rotation / u64::from(members)
            );
        }
    }
    group.finish();
}

criterion_group!(benches, rotate);
criterion_main!(benches);
