//! Appends batches of app events in a loop, for profiling (`perf record`).
#[path = "../benches/common/mod.rs"]
mod common;

fn main() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut mesh = common::mesh_with_roster(&dir, 20);
    let payload = [0x42u8; 64];
    let started = std::time::Instant::now();
    for round in 0..200 {
        if round % 50 == 0 {
            println!("{round} batches: {:?}", started.elapsed());
        }
        mesh.append_apps((0..1000).map(|_| ("bench", &payload[..])))
            .expect("append");
    }
    println!("200,000 events in {:?}", started.elapsed());
}
