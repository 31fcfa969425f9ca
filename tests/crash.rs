//! Crash safety: a child process appends (or ingests) in a loop, printing
//! what it wrote only after the call returned; the test kills it with
//! SIGKILL at random moments, reopens the file and checks that it verifies,
//! that every acknowledged event is there, and that nothing beyond a commit
//! is half-there.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{carried, fast_tempdir, keys, options};
use meshlog::{Batch, EventHash, Mesh};

const CHILD_ENV: &str = "MESHLOG_CRASH_CHILD";
const BATCH_EVENTS: usize = 25;
const BATCHES: usize = 120;

/// Not a test: the body of the child process, run only when the parent sets
/// `MESHLOG_CRASH_CHILD` (`append:PATH`, `append-marked:PATH:MARK` or
/// `ingest:PATH:BATCH_DIR`).
#[test]
fn crash_child() {
    let Ok(task) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = task.split(':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("append"), Some(path), None) => {
            let mut mesh = Mesh::open(path, keys(1)).expect("open");
            println!("ready");
            for i in 0u64.. {
                let hash = mesh.append_app("tick", &i.to_le_bytes()).expect("append");
                println!("acked {hash}");
            }
        }
        (Some("append-marked"), Some(path), Some(mark)) => {
            let mut mesh = options(2)
                .feed_mark(mark)
                .open(path, keys(1))
                .expect("open");
            println!("ready");
            for i in 0u64.. {
                let hash = mesh.append_app("tick", &i.to_le_bytes()).expect("append");
                println!("acked {hash}");
            }
        }
        (Some("commit"), Some(path), None) => {
            // Each call its own redb commit, as an ingest's is.
            let mut mesh = Mesh::open(path, keys(1)).expect("open");
            println!("ready");
            for i in 0u64.. {
                mesh.append_apps([("tick", &i.to_le_bytes()[..])])
                    .expect("append");
                println!("acked {i}");
            }
        }
        (Some("ingest"), Some(path), Some(batches)) => {
            let mut mesh = Mesh::open(path, keys(9)).expect("open");
            println!("ready");
            for n in 0.. {
                let file = Path::new(batches).join(format!("{n:04}"));
                let Ok(bytes) = std::fs::read(&file) else {
                    break;
                };
                let batch = Batch::from_bytes(&bytes).expect("batch");
                mesh.ingest(&batch).expect("ingest");
                println!("acked {n}");
            }
            println!("done");
            std::thread::sleep(Duration::from_secs(60));
        }
        _ => panic!("bad {CHILD_ENV}: {task}"),
    }
}

/// Runs the child for a while, kills it with SIGKILL, and returns what it
/// acknowledged (in order) and whether it said it was done.
fn run_and_kill(task: &str, run_for: Duration) -> (Vec<String>, bool) {
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
    let (mut acked, mut done) = (Vec::new(), false);
    let take = |line: String, acked: &mut Vec<String>, done: &mut bool| {
        // The harness's own "test crash_child ... " may share the first line.
        if let Some(at) = line.find("acked ") {
            acked.push(line[at + "acked ".len()..].to_owned());
        } else if line.ends_with("done") {
            *done = true;
        }
    };
    // The clock starts once the child has opened (verified) the file, so
    // that a loaded machine still kills it mid-run.
    let opened_by = Instant::now() + Duration::from_secs(120);
    while let Some(left) = opened_by.checked_duration_since(Instant::now()) {
        match receive.recv_timeout(left) {
            Ok(line) if line.ends_with("ready") => break,
            Ok(line) => take(line, &mut acked, &mut done),
            Err(_) => break,
        }
    }
    let deadline = Instant::now() + run_for;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match receive.recv_timeout(left) {
            Ok(line) => take(line, &mut acked, &mut done),
            Err(_) => break,
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    // Lines written before the kill may still be in the pipe.
    reader.join().expect("reader");
    for line in receive.try_iter() {
        take(line, &mut acked, &mut done);
    }
    (acked, done)
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

fn verified(path: &Path) -> Mesh {
    Mesh::open_read_only(path).expect("the file verifies after a crash")
}

/// The file as its writer's keys read it: they sign again the newest event
/// the writer made, whose signature was not on disk yet (SPEC.md §9.6).
fn verified_with_keys(path: &Path, keys: meshlog::LocalKeys) -> Mesh {
    options(3)
        .open_read_only(path, Some(keys))
        .expect("the file verifies after a crash")
}

#[test]
fn killed_appenders_lose_nothing_acknowledged() {
    // On disk: each append waits for its fsync, as a user's would.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mesh.redb");
    let mut mesh = options(1).create(&path, keys(1), "crash").unwrap();
    mesh.set_enabled(true).unwrap();
    drop(mesh);

    let mut acknowledged: Vec<EventHash> = Vec::new();
    let mut kills_with_progress = 0;
    // Events in the file that no child acknowledged: at most the one append
    // in flight at each kill may have committed unacknowledged.
    let mut unacknowledged = 0;
    let mut journaled = 0;
    let mut awaited = 0;
    let mut from_checkpoint = 0;
    for run_for in kill_times(7, 30, 150) {
        let (acked, _) = run_and_kill(&format!("append:{}", path.display()), run_for);
        if !acked.is_empty() {
            kills_with_progress += 1;
        }
        acknowledged.extend(
            acked
                .iter()
                .map(|hash| hash.parse::<EventHash>().expect("hash")),
        );
        // Without keys, at most the newest event is set aside: its
        // signature was not on disk, and only its author can sign it again.
        let audit = verified(&path);
        let awaiting = audit.report().awaiting_signature;
        assert!(awaiting <= 1);
        let mesh = verified_with_keys(&path, keys(1));
        assert_eq!(mesh.report().awaiting_signature, 0);
        assert_eq!(audit.len() + awaiting, mesh.len());
        awaited += awaiting;
        // The member's checkpoint, written with every commit a kill may
        // interrupt, gives what verifying everything gives (SPEC.md §9.7).
        from_checkpoint += usize::from(mesh.report().checkpointed > 0);
        let everything = options(3)
            .verify_everything(true)
            .open_read_only(&path, Some(keys(1)))
            .expect("the file verifies after a crash");
        assert_eq!(everything.report().checkpointed, 0);
        assert_eq!(
            (everything.len(), everything.digest()),
            (mesh.len(), mesh.digest())
        );
        drop(everything);
        drop(audit);
        // A kill leaves the last events in the journal only (SPEC.md §9.6).
        journaled = journaled.max(mesh.report().journaled);
        for hash in &acknowledged {
            assert!(
                mesh.event(*hash).is_some(),
                "acknowledged {hash} is missing"
            );
        }
        // The genesis and the flag came before the children.
        let now = mesh.len() - 2 - acknowledged.len();
        assert!(
            now <= unacknowledged + 1,
            "{} events, {} acknowledged, {unacknowledged} unacknowledged before",
            mesh.len(),
            acknowledged.len()
        );
        unacknowledged = now;
    }
    assert!(
        kills_with_progress >= 20,
        "only {kills_with_progress} kills landed mid-run"
    );
    assert!(journaled > 0, "no kill left events in the journal");
    assert!(awaited > 0, "no kill left an event awaiting its signature");
    assert!(
        from_checkpoint > 20,
        "only {from_checkpoint} reopens used the checkpoint"
    );
}

/// The feed mark is recorded at checkpoints while a writer runs (SPEC.md
/// §11.2): whatever a kill interrupts, the mark stays whole and names an
/// event the copy holds once its journal is replayed, so the member's next
/// write on its own copy is never refused.
#[test]
fn a_killed_writer_never_leaves_a_feed_mark_that_blocks_its_next_write() {
    let dir = fast_tempdir();
    let path = dir.path().join("mesh.redb");
    let mark = meshlog::feed_mark_path(dir.path().join("member.keys"));
    let mut mesh = options(1)
        .feed_mark(&mark)
        .create(&path, keys(1), "crash")
        .unwrap();
    mesh.set_enabled(true).unwrap();
    drop(mesh);
    let task = format!("append-marked:{}:{}", path.display(), mark.display());
    let mut recorded = std::fs::read(&mark).unwrap();
    let mut marked_by_the_child = 0;
    for run_for in kill_times(11, 6, 1000) {
        let (acked, _) = run_and_kill(&task, run_for);
        if std::fs::read(&mark).unwrap() != recorded {
            marked_by_the_child += 1;
        }
        let mut mesh = options(3).feed_mark(&mark).open(&path, keys(1)).unwrap();
        for hash in &acked {
            let hash: EventHash = hash.parse().unwrap();
            assert!(mesh.event(hash).is_some(), "acknowledged {hash} is missing");
        }
        mesh.append_app("after", b"the kill")
            .expect("the mark never blocks a write on the member's own copy");
        mesh.close().unwrap();
        recorded = std::fs::read(&mark).unwrap();
    }
    println!("{marked_by_the_child} kills came after the child recorded the mark");
}

#[test]
fn killed_ingests_are_all_or_nothing() {
    let dir = fast_tempdir();
    let mut source = options(1)
        .create(dir.path().join("source.redb"), keys(1), "crash")
        .unwrap();
    source.set_enabled(true).unwrap();
    let start = carried(&source.export_all());
    let batches = dir.path().join("batches");
    std::fs::create_dir(&batches).unwrap();
    for n in 0..BATCHES {
        let before = source.frontier();
        for i in 0..BATCH_EVENTS {
            source
                .append_app("tick", &(n * BATCH_EVENTS + i).to_le_bytes())
                .unwrap();
        }
        let batch = source.export(&before);
        assert_eq!(batch.len(), BATCH_EVENTS);
        std::fs::write(batches.join(format!("{n:04}")), batch.to_bytes()).unwrap();
    }
    let path = dir.path().join("peer.redb");
    drop(options(9).join(&path, keys(9), &start).unwrap());
    let base = start.len();

    let mut acknowledged = 0;
    let mut kills = 0;
    for run_for in kill_times(11, 40, 40) {
        let (acked, done) = run_and_kill(
            &format!("ingest:{}:{}", path.display(), batches.display()),
            run_for,
        );
        if let Some(last) = acked.last() {
            // Each run starts again from the first batch.
            let batches = last.parse::<usize>().expect("batch number") + 1;
            acknowledged = acknowledged.max(batches);
        }
        let len = verified(&path).len();
        assert_eq!(
            (len - base) % BATCH_EVENTS,
            0,
            "a batch is in the file whole or not at all ({len} events)"
        );
        assert!(
            len >= base + acknowledged * BATCH_EVENTS,
            "{acknowledged} batches acknowledged, {len} events"
        );
        if done {
            assert_eq!(len, source.len());
            assert_eq!(verified(&path).digest(), source.digest());
            return;
        }
        kills += 1;
    }
    assert!(kills >= 20, "only {kills} kills before the ingest finished");
}

/// An audit of a live file (SPEC.md §9.4) while its writers are killed and
/// restarted, each restart recovering the file: every audit verifies, none
/// calls the file corrupt.
#[test]
fn a_live_audit_while_writers_are_killed_never_calls_the_file_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mesh.redb");
    let mut mesh = options(1).create(&path, keys(1), "crash").unwrap();
    mesh.set_enabled(true).unwrap();
    drop(mesh);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let auditor = {
        let (stop, path) = (stop.clone(), path.clone());
        std::thread::spawn(move || {
            let (mut audits, mut failures) = (0usize, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                audits += 1;
                if let Err(error) = Mesh::open_read_only(&path) {
                    failures.push(error.to_string());
                }
            }
            (audits, failures)
        })
    };
    let rounds: usize = std::env::var("MESHLOG_LIVE_AUDIT_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(40);
    for run_for in kill_times(11, rounds, 60) {
        run_and_kill(&format!("commit:{}", path.display()), run_for);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (audits, failures) = auditor.join().unwrap();
    eprintln!("{audits} audits, {} failed", failures.len());
    assert!(audits >= rounds, "only {audits} audits ran");
    assert!(
        failures.is_empty(),
        "{} of {audits} audits failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}
