//! How long one durable redb commit of a small row takes in each commit
//! mode redb offers meshlog (SPEC.md §10 cites the figures):
//!
//! `cargo run --release --example commit_modes [COMMITS]`
//!
//! - `SingleWriter` (what meshlog opens files in, so that other processes
//!   can read a live mesh): redb always commits in two phases, two `fsync`s;
//! - `ExclusiveWriter` with single-phase commit: one `fsync`, checksums, and
//!   no other process may open the file meanwhile.

use std::time::{Duration, Instant};

const TABLE: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");

fn per_commit(mode: redb::ConcurrencyMode, two_phase: bool, commits: u32) -> Duration {
    let dir = tempfile::tempdir().expect("temporary folder");
    let db = redb::Database::builder()
        .set_concurrency_mode(mode)
        .set_cache_size(32 << 20)
        .create(dir.path().join("probe.redb"))
        .expect("redb");
    let row = [7u8; 300];
    let started = Instant::now();
    for key in 0..u64::from(commits) {
        let mut txn = db.begin_write().expect("write");
        txn.set_two_phase_commit(two_phase);
        txn.open_table(TABLE)
            .expect("table")
            .insert(key, &row[..])
            .expect("insert");
        txn.commit().expect("commit");
    }
    started.elapsed() / commits
}

fn main() {
    let commits = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    // Alternate the modes: this machine's disk speed drifts over minutes.
    for round in 1..=3 {
        let single = per_commit(redb::ConcurrencyMode::SingleWriter, true, commits);
        let exclusive = per_commit(redb::ConcurrencyMode::ExclusiveWriter, false, commits);
        println!(
            "round {round}: SingleWriter (two-phase) {single:?}; ExclusiveWriter single-phase {exclusive:?}"
        );
    }
}
