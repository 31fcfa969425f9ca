//! A mesh that lives through many epochs: 10 members, refreshed one epoch
//! after another (issue 24). Prints how long a refresh takes as the history
//! grows, and the memory held: the bytes allocated and still live (a
//! counting allocator) after each stretch, for the whole mesh, so an upper
//! bound on what the epoch graph holds.
//!
//! `cargo run --release --example deep_history [epochs]` (100,000 by
//! default). Built in `/dev/shm` where the machine has it, so that the
//! durable commits cost what RAM does.
#[path = "../benches/common/mod.rs"]
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    let epochs: usize = std::env::args()
        .nth(1)
        .map_or(100_000, |n| n.parse().expect("a number of epochs"));
    let dir = common::scratch_dir();
    let mut mesh = common::mesh_with_members(&dir.path().join("deep.redb"), 10, &[]);
    let fresh = LIVE.load(Ordering::Relaxed);
    let stretch = (epochs / 10).max(1);
    let mut done = 0;
    println!("epochs   µs/refresh: mean   median   slowest   live MiB   bytes/epoch over fresh");
    while done < epochs {
        let count = stretch.min(epochs - done);
        let mut times: Vec<f64> = Vec::with_capacity(count);
        for _ in 0..count {
            let started = std::time::Instant::now();
            mesh.refresh("deep").expect("refresh");
            times.push(started.elapsed().as_secs_f64() * 1e6);
        }
        let per = times.iter().sum::<f64>() / count as f64;
        times.sort_by(f64::total_cmp);
        let median = times.get(count / 2).copied().unwrap_or(0.0);
        let slowest = times.last().copied().unwrap_or(0.0);
        done += count;
        let live = LIVE.load(Ordering::Relaxed);
        println!(
            "{done:>7}   {per:>16.1}   {median:>6.1}   {slowest:>7.0}   {:>8.1}   {:>8.0}",
            mib(live),
            live.saturating_sub(fresh) as f64 / done as f64
        );
    }
    println!(
        "peak live {:.1} MiB; {} events held",
        mib(PEAK.load(Ordering::Relaxed)),
        mesh.len()
    );
}
