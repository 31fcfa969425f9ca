//! Durable single appends in a loop, for profiling (`perf record`).
#[path = "../benches/common/mod.rs"]
mod common;

fn main() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut mesh = common::mesh_with_members(&dir.path().join("mesh.redb"), 20, &[]);
    let payload = [0x42u8; 64];
    let started = std::time::Instant::now();
    for n in 0..20_000 {
        if n % 5_000 == 0 {
            println!("{n} appends: {:?}", started.elapsed());
        }
        mesh.append_app("bench", &payload).expect("append");
    }
    println!("20,000 durable appends in {:?}", started.elapsed());
}
