//! Builds (once, cached under target/bench-cache/) a chain of N events
//! (default 1,000,000: app events, a rotation every 100, rosters of 20), then
//! opens and verifies it, printing the time. For peak memory, run it under
//! `/usr/bin/time -v`:
//!
//! ```sh
//! cargo build --release --example open_large
//! /usr/bin/time -v target/release/examples/open_large 1000000
//! ```

use std::time::Instant;

#[path = "../benches/common/mod.rs"]
mod common;

fn main() {
    let len = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000u64);
    let mode = std::env::args().nth(2).unwrap_or_else(|| "writable".into());
    let started = Instant::now();
    let cached = common::chain(len, 100, 20);
    eprintln!("chain ready in {:?}", started.elapsed());
    let started = Instant::now();
    let mesh = if mode == "read-only" {
        meshlog::Mesh::open_read_only(&cached).expect("verifies")
    } else {
        meshlog::Mesh::open(&cached, common::keys(0)).expect("verifies")
    };
    println!(
        "opened and verified {} events ({mode}) in {:?}; {} epochs",
        mesh.state().len(),
        started.elapsed(),
        mesh.state().epochs().len()
    );
}
