//! Refreshes a roster of 1,000 members in a loop, for profiling (`perf record`).
#[path = "../benches/common/mod.rs"]
mod common;

fn main() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut mesh = common::mesh_with_members(&dir.path().join("mesh.redb"), 1000, &[]);
    let started = std::time::Instant::now();
    for _ in 0..40 {
        mesh.refresh("profile").expect("refresh");
    }
    println!("40 rotations of 1,000 in {:?}", started.elapsed());
}
