//! Ingests the 100k-event batch of the `ingest` bench into fresh copies of
//! its base mesh, in a loop, for profiling (`perf record`); prints the time
//! of each ingest alone.
#[path = "../benches/common/mod.rs"]
mod common;

fn main() {
    let feeds = common::feeds(100_000, 20);
    let batch = common::batch_between(&feeds.base, &feeds.full);
    let dir = tempfile::tempdir().expect("temporary folder");
    for _ in 0..3 {
        let path = common::copy_of(&feeds.base, &dir, "base.redb");
        let mut mesh = meshlog::Mesh::open(&path, common::keys(0)).expect("base verifies");
        let started = std::time::Instant::now();
        let ingested = mesh.ingest(&batch).expect("ingest");
        println!(
            "{} events ingested in {:?}",
            ingested.added,
            started.elapsed()
        );
        drop(mesh);
    }
}
