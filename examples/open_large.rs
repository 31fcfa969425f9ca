//! Builds (once, cached under target/bench-cache/) a mesh of N events by
//! 20 authors (default 1,000,000; app events of 64 bytes, the founder
//! refreshing the epoch every 1,000 of its own events), then opens and
//! verifies it, printing the time. For peak memory, run it under
//! `/usr/bin/time -v`:
//!
//! ```sh
//! cargo build --release --example open_large
//! /usr/bin/time -v target/release/examples/open_large 1000000            # the member's own open (checkpoint)
//! /usr/bin/time -v target/release/examples/open_large 1000000 full       # the member's, verifying everything
//! /usr/bin/time -v target/release/examples/open_large 1000000 read-only  # audit
//! ```

use std::time::Instant;

#[path = "../benches/common/mod.rs"]
mod common;

fn main() {
    let len = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000usize);
    let mode = std::env::args().nth(2).unwrap_or_else(|| "writable".into());
    let started = Instant::now();
    let feeds = common::feeds(len, 20);
    eprintln!("fixture ready in {:?}", started.elapsed());
    // The open's own peak, not the fixture check's (Linux: writing 5 to
    // clear_refs resets the peak resident set size).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let started = Instant::now();
    let mesh = match mode.as_str() {
        "read-only" => meshlog::Mesh::open_read_only(&feeds.full).expect("verifies"),
        // The member's own open, verifying every event all the same.
        "full" => meshlog::MeshOptions::new()
            .verify_everything(true)
            .open(&feeds.full, common::keys(0))
            .expect("verifies"),
        _ => meshlog::Mesh::open(&feeds.full, common::keys(0)).expect("verifies"),
    };
    println!(
        "opened and verified {} events ({mode}) in {:?}; {} epochs",
        mesh.len(),
        started.elapsed(),
        mesh.epochs().len()
    );
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status
            .lines()
            .filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS"))
        {
            println!("{line} (the open's peak, and now)");
        }
    }
}
