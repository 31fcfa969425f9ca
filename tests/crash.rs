//! Crash safety: a child process appends (or ingests) in a loop, printing
//! each seq only after the call returned; the test kills it with SIGKILL at
//! random moments, reopens the file and checks that it verifies, that every
//! acknowledged event is there, and that nothing beyond a commit is half-there.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{keys, options};
use meshlog::{Batch, Mesh};

const CHILD_ENV: &str = "MESHLOG_CRASH_CHILD";
const BATCH_EVENTS: u64 = 25;

/// Not a test: the body of the child process, run only when the parent sets
/// `MESHLOG_CRASH_CHILD` (`append:PATH` or `ingest:PATH:BATCH_DIR`).
#[test]
fn crash_child() {
    let Ok(task) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = task.split(':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("append"), Some(path), None) => {
            let mut mesh = Mesh::open(path, keys(1)).expect("open");
            let mut i = 0u64;
            loop {
                let receipt = mesh.append_app("tick", &i.to_le_bytes()).expect("append");
                println!("acked {}", receipt.seq);
                i += 1;
            }
        }
        (Some("ingest"), Some(path), Some(batches)) => {
            let mut mesh = Mesh::open(path, keys(9)).expect("open");
            for n in 0.. {
                let file = Path::new(batches).join(format!("{n:04}"));
                let Ok(bytes) = std::fs::read(&file) else {
                    break;
                };
                let batch = Batch::from_bytes(&bytes).expect("batch");
                let report = mesh.ingest(&batch).expect("ingest");
                println!("acked {}", report.head.expect("head").seq);
            }
            println!("done");
            std::thread::sleep(Duration::from_secs(60));
        }
        _ => panic!("bad {CHILD_ENV}: {task}"),
    }
}

/// Runs the child for a while, kills it with SIGKILL, and returns the last
/// seq it acknowledged (if any) and whether it said it was done.
fn run_and_kill(task: &str, run_for: Duration) -> (Option<u64>, bool) {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, task)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let (send, receive) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + run_for;
    let (mut last, mut done) = (None, false);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match receive.recv_timeout(left) {
            Ok(line) => {
                if let Some(seq) = line.strip_prefix("acked ") {
                    last = Some(seq.parse().expect("seq"));
                } else if line == "done" {
                    done = true;
                }
            }
            Err(_) => break,
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    // Lines written before the kill may still be in the pipe.
    reader.join().expect("reader");
    for line in receive.try_iter() {
        if let Some(seq) = line.strip_prefix("acked ") {
            last = Some(seq.parse().expect("seq"));
        }
    }
    (last, done)
}

/// A tiny deterministic generator for the kill times.
fn kill_times(seed: u64, rounds: usize, max_ms: u64) -> Vec<Duration> {
    let mut x = seed;
    (0..rounds)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            Duration::from_millis(20 + (x >> 33) % max_ms)
        })
        .collect()
}

fn verified_len(path: &PathBuf) -> u64 {
    let mesh = Mesh::open_read_only(path).expect("the file verifies after a crash");
    mesh.state().len()
}

#[test]
fn killed_appenders_lose_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mesh.redb");
    let mut mesh = options(1).create(&path, keys(1), "crash").unwrap();
    mesh.set_enabled(true).unwrap();
    drop(mesh);

    let mut acknowledged = 1u64;
    let mut kills_with_progress = 0;
    for run_for in kill_times(7, 30, 150) {
        let (last, _) = run_and_kill(&format!("append:{}", path.display()), run_for);
        let len = verified_len(&path);
        if let Some(last) = last {
            assert!(
                len > last,
                "acknowledged seq {last} is missing (chain has {len} events)"
            );
            // At most the one append in flight may have committed unacknowledged.
            assert!(
                len <= last + 2,
                "chain has {len} events, acknowledged up to {last}"
            );
            kills_with_progress += 1;
            acknowledged = last;
        }
        assert!(len > acknowledged);
    }
    assert!(
        kills_with_progress >= 20,
        "only {kills_with_progress} kills landed mid-run"
    );
}

#[test]
fn killed_ingests_are_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let source_path = dir.path().join("source.redb");
    let mut source = options(1).create(&source_path, keys(1), "crash").unwrap();
    source.set_enabled(true).unwrap();
    for i in 0..(BATCH_EVENTS * 120) {
        source.append_app("tick", &i.to_le_bytes()).unwrap();
    }
    let batches = dir.path().join("batches");
    std::fs::create_dir(&batches).unwrap();
    let rest = source.export_since(2).unwrap();
    for (n, chunk) in rest.chunks(BATCH_EVENTS as usize).enumerate() {
        std::fs::write(batches.join(format!("{n:04}")), chunk.to_bytes()).unwrap();
    }
    let path = dir.path().join("peer.redb");
    let start = source.export_since(0).unwrap().chunks(2).next().unwrap();
    drop(options(9).join(&path, keys(9), &start).unwrap());
    let total = source.state().len();

    let mut kills = 0;
    for run_for in kill_times(11, 40, 40) {
        let (last, done) = run_and_kill(
            &format!("ingest:{}:{}", path.display(), batches.display()),
            run_for,
        );
        let len = verified_len(&path);
        assert_eq!(
            (len - 2) % BATCH_EVENTS,
            0,
            "a batch is in the file whole or not at all (len {len})"
        );
        if let Some(last) = last {
            assert!(len > last, "acknowledged seq {last} is missing");
        }
        if done {
            assert_eq!(len, total);
            break;
        }
        kills += 1;
    }
    assert!(kills >= 20, "only {kills} kills before the ingest finished");
}
