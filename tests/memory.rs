//! Memory is bounded by what resolution needs, not by history (issue 24,
//! SPEC.md §9.3, §9.7): the resident memory a full verification adds for
//! each event stays far below what holding the events would take. Alone
//! in its binary, so that no other test's memory is counted; Linux only
//! (it reads `/proc/self/status`).

mod common;

use common::{fast_tempdir, keys, options};
use meshlog::{Mesh, MeshOptions};

/// The bound on resident memory an event may add (issue 24: 100 bytes).
const BYTES_AN_EVENT: u64 = 100;

/// The peak resident set size, in bytes, since the last reset.
fn peak() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Resets the peak to what is resident now.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// A file of the founder's, `len` events, written in batches.
fn file(dir: &tempfile::TempDir, len: usize) -> std::path::PathBuf {
    let path = dir.path().join(format!("{len}.redb"));
    let mut mesh = options(1).create(&path, keys(1), "memory").unwrap();
    mesh.set_enabled(true).unwrap();
    while mesh.len() < len {
        let batch = (len - mesh.len()).min(10_000);
        let payloads: Vec<[u8; 64]> = (0..batch).map(|i| [i as u8; 64]).collect();
        mesh.append_apps(payloads.iter().map(|p| ("note", &p[..])))
            .unwrap();
    }
    path
}

/// The peak memory of verifying the file at `path` in full, both as the
/// member and as an auditor, above what was resident before.
fn verify_peak(path: &std::path::Path) -> u64 {
    assert!(reset_peak());
    let before = peak().unwrap();
    let audit = Mesh::open_read_only(path).unwrap();
    assert!(audit.check_reads().is_ok());
    drop(audit);
    let member = MeshOptions::new()
        .verify_everything(true)
        .open(path, keys(1))
        .unwrap();
    assert_eq!(member.report().checkpointed, 0);
    drop(member);
    peak().unwrap().saturating_sub(before)
}

#[test]
fn a_full_verification_holds_no_event_in_memory() {
    if peak().is_none() || !reset_peak() {
        eprintln!("no /proc/self/status here: nothing measured");
        return;
    }
    let dir = fast_tempdir();
    // Both past what redb's page cache (32 MiB) holds, so that its filling
    // up is not counted as the events'.
    let (small, large) = (60_000, 160_000);
    let (small_path, large_path) = (file(&dir, small), file(&dir, large));
    // The smaller first: what the allocator keeps of it is reused by the
    // larger, so the difference is what the extra events cost.
    let small_peak = verify_peak(&small_path);
    let large_peak = verify_peak(&large_path);
    let per_event = large_peak.saturating_sub(small_peak) / (large - small) as u64;
    eprintln!(
        "peak above resident: {small_peak} B for {small} events, {large_peak} B for {large}: \
         {per_event} B an event"
    );
    assert!(
        per_event <= BYTES_AN_EVENT,
        "{per_event} bytes an event (the bound is {BYTES_AN_EVENT})"
    );
}
