//! `meshlog append` of one event, the whole process, on a file of 100
//! events and on one of N (default 1,000,000; the `open_large` fixture, 20
//! authors), each the copy of the member appending: the cost of an
//! operator command must not grow with history (issue 24, SPEC.md §9.7).
//! The two files take turns, so that the machine's noise falls on both;
//! prints each one's median and the ratio.
//!
//! ```sh
//! cargo build --release --bin meshlog --example append_scale
//! target/release/examples/append_scale 1000000 15
//! ```

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "../benches/common/mod.rs"]
mod common;

fn main() {
    let mut args = std::env::args().skip(1);
    let len: usize = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let rounds: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(15);
    let meshlog = std::env::current_exe()
        .expect("this example's path")
        .parent()
        .and_then(Path::parent)
        .expect("target/release")
        .join("meshlog");
    assert!(
        meshlog.exists(),
        "build it first: cargo build --release --bin meshlog"
    );

    let scratch = common::scratch_dir();
    // Two key files of one member: the two files may be copies of one
    // group (seeded), and each key file's feed mark follows its own.
    let key_files = ["small", "large"].map(|name| {
        let dir = scratch.path().join(name);
        std::fs::create_dir(&dir).expect("folder");
        let key_file = dir.join("founder.keys");
        common::keys(0).save(&key_file).expect("key file");
        key_file
    });

    let small = scratch.path().join("small.redb");
    let mut mesh = common::mesh_with_members(&small, 20, &[]);
    while mesh.len() < 100 {
        mesh.append_app("bench", &[0x42; 64]).expect("append");
    }
    mesh.close().expect("close");

    let feeds = common::feeds(len, 20);
    let large = scratch.path().join("large.redb");
    std::fs::copy(&feeds.full, &large).expect("copy the fixture");

    let append = |db: &Path| -> Duration {
        let key_file = &key_files[usize::from(db == large)];
        let started = Instant::now();
        let status = Command::new(&meshlog)
            .arg("append")
            .arg(db)
            .arg("--keys")
            .arg(key_file)
            .args(["--kind", "bench", "--payload", "one more note"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run meshlog");
        assert!(
            status.success(),
            "meshlog append failed on {}",
            db.display()
        );
        started.elapsed()
    };
    // A first append of each: the member's checkpoint then covers the
    // whole file, as it does for a member's everyday commands.
    append(&small);
    append(&large);
    let (mut on_small, mut on_large) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        on_small.push(append(&small));
        on_large.push(append(&large));
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let (small_median, large_median) = (median(&mut on_small), median(&mut on_large));
    println!(
        "meshlog append, whole process, median of {rounds}: {:.1} ms on 100 events, \
         {:.1} ms on {len} events: {:.2}x",
        small_median.as_secs_f64() * 1e3,
        large_median.as_secs_f64() * 1e3,
        large_median.as_secs_f64() / small_median.as_secs_f64()
    );
}
