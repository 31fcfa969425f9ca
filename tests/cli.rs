//! The `meshlog` binary, driven as a user would: exit codes, output, JSON,
//! and the promise that audit commands never change a byte of the file.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use meshlog::{LocalKeys, Mesh, Role};
use redb::ReadableTable;
use serde_json::Value;

/// The binary under test.
fn meshlog() -> Command {
    match Command::cargo_bin("meshlog") {
        Ok(command) => command,
        Err(error) => panic!("meshlog binary not built: {error}"),
    }
}

/// What running the binary gave.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let output = meshlog().args(args).output().expect("run meshlog");
    Run {
        code: output.status.code().expect("exit code, not a signal"),
        stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// A sample chain, built with the library:
/// 0 genesis, 1 enable, 2 add alice (epoch 1), 3 add bob (epoch 2),
/// 4 app, 5 make alice admin (epoch 3), 6 app.
const SAMPLE_EVENTS: u64 = 7;

fn build_sample(dir: &Path) -> PathBuf {
    build_sample_with_keys(dir).0
}

/// [`build_sample`], also saving the founder's key file; returns both paths.
fn build_sample_with_keys(dir: &Path) -> (PathBuf, PathBuf) {
    let path = dir.join("mesh.redb");
    let founder = dir.join("founder.keys");
    LocalKeys::generate()
        .save(&founder)
        .expect("save founder keys");
    let keys = LocalKeys::load(&founder).expect("load founder keys");
    let mut mesh = Mesh::create(&path, keys, "audit team").expect("create");
    mesh.set_enabled(true).expect("enable");
    let alice = LocalKeys::generate();
    mesh.add_member(alice.public(), Role::Member)
        .expect("add alice");
    mesh.add_member(LocalKeys::generate().public(), Role::Member)
        .expect("add bob");
    mesh.append_app("note", b"hello").expect("app");
    mesh.set_role(alice.member_id(), Role::Admin).expect("role");
    mesh.append_app("note", b"second").expect("app");
    assert_eq!(mesh.state().len(), SAMPLE_EVENTS);
    (path, founder)
}

/// Rewrites one stored record of a closed file with redb directly.
fn tamper_event(path: &Path, seq: u64, edit: impl FnOnce(&mut Vec<u8>)) {
    let events = redb::TableDefinition::<u64, &[u8]>::new("events");
    let db = redb::Database::open(path).expect("open with redb");
    let txn = db.begin_write().expect("write txn");
    {
        let mut table = txn.open_table(events).expect("events table");
        let mut record = table
            .get(seq)
            .expect("read")
            .expect("record exists")
            .value()
            .to_vec();
        edit(&mut record);
        table.insert(seq, record.as_slice()).expect("insert");
    }
    txn.commit().expect("commit");
}

#[test]
fn help_documents_exit_codes_and_json_fields() {
    let top = run(&["--help"]);
    assert_eq!(top.code, 0);
    assert!(top.stdout.contains("Exit codes"), "{}", top.stdout);
    let verify = run(&["verify", "--help"]);
    assert_eq!(verify.code, 0);
    for needle in [
        "--expect-head",
        "--expect-seq",
        "rule_id",
        "head_seq",
        "Exit codes",
        "Examples",
    ] {
        assert!(
            verify.stdout.contains(needle),
            "verify --help lacks {needle}"
        );
    }
    let log = run(&["log", "--help"]);
    assert!(log.stdout.contains("JSON Lines") && log.stdout.contains("payload_bytes"));
    assert!(verify.stdout.contains("equivocations"), "{}", verify.stdout);
    for command in ["export", "join", "ingest"] {
        assert!(top.stdout.contains(command), "--help lacks {command}");
        let help = run(&[command, "--help"]);
        assert_eq!(help.code, 0);
        for needle in ["Exit codes", "Examples"] {
            assert!(
                help.stdout.contains(needle),
                "{command} --help lacks {needle}"
            );
        }
    }
    let ingest = run(&["ingest", "--help"]);
    for needle in ["fork", "gap", "equivocation", "rule_id", "head_hash"] {
        assert!(
            ingest.stdout.contains(needle),
            "ingest --help lacks {needle}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&[]).code, 2);
    assert_eq!(run(&["verify"]).code, 2);
    assert_eq!(
        run(&["verify", "x.redb", "--expect-head", "nothex"]).code,
        2
    );
    // --expect-seq only makes sense with --expect-head.
    assert_eq!(run(&["verify", "x.redb", "--expect-seq", "3"]).code, 2);
    assert_eq!(
        run(&["show", "x.redb", "--epoch", "1", "--at", "2"]).code,
        2
    );
}

#[test]
fn verify_reports_a_good_file_and_json_matches_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let db = build_sample(dir.path());
    let text = run(&["verify", s(&db)]);
    assert_eq!(text.code, 0, "{}{}", text.stdout, text.stderr);
    assert!(text.stdout.contains("result    OK"), "{}", text.stdout);
    assert!(text.stdout.contains("\"audit team\""));

    let out = run(&["verify", s(&db), "--json"]);
    assert_eq!(out.code, 0);
    let report = json(&out.stdout);
    let mesh = Mesh::open_read_only(&db).unwrap();
    let head = mesh.state().head().unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["events"], SAMPLE_EVENTS);
    assert_eq!(report["head_seq"], SAMPLE_EVENTS - 1);
    assert_eq!(report["head_hash"], head.hash.to_string());
    assert_eq!(report["epochs"], 4);
    assert_eq!(report["current_epoch"], 3);
    assert_eq!(report["members"], 3);
    assert_eq!(report["enabled_members"], 1);
    assert_eq!(report["name"], "audit team");
    assert_eq!(report["group"], mesh.group().to_string());
    assert_eq!(report["digest"], mesh.digest().to_string());
    assert_eq!(report["failure"], Value::Null);
    assert_eq!(report["verified_private_copy"], false);
}

#[test]
fn audit_commands_never_change_a_byte() {
    let dir = tempfile::tempdir().unwrap();
    let db = build_sample(dir.path());
    let before = std::fs::read(&db).unwrap();
    let head = Mesh::open_read_only(&db).unwrap().state().head().unwrap();
    let hash = head.hash.to_string();
    let commands: &[&[&str]] = &[
        &["verify"],
        &["verify", "--json"],
        &["verify", "--expect-head", &hash],
        &["log"],
        &["log", "--json", "--from", "2", "--limit", "3"],
        &["show"],
        &["show", "--epoch", "1", "--json"],
        &["show", "--at", "4"],
        &["replay", "--at", "5"],
        &["replay", "--json"],
    ];
    for args in commands {
        let mut full = vec![args[0], s(&db)];
        full.extend_from_slice(&args[1..]);
        let out = run(&full);
        assert_eq!(out.code, 0, "{full:?}: {}", out.stderr);
        let after = std::fs::read(&db).unwrap();
        assert!(
            blake3::hash(&before) == blake3::hash(&after),
            "{full:?} changed the file"
        );
    }
}

#[test]
fn tampered_signature_is_reported_at_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let db = build_sample(dir.path());
    tamper_event(&db, 3, |record| record[10] ^= 0x01);
    let before = std::fs::read(&db).unwrap();

    let out = run(&["verify", s(&db)]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("FAILED at seq 3"), "{}", out.stdout);
    assert!(out.stdout.contains("R10 bad-signature"), "{}", out.stdout);

    let out = run(&["verify", s(&db), "--json"]);
    assert_eq!(out.code, 1);
    let report = json(&out.stdout);
    assert_eq!(report["ok"], false);
    assert_eq!(report["failure"]["kind"], "rejected");
    assert_eq!(report["failure"]["seq"], 3);
    assert_eq!(report["failure"]["rule_id"], "R10");
    assert_eq!(report["head_seq"], Value::Null);

    // Other audit commands refuse the file too, with the same exit code.
    let log = run(&["log", s(&db)]);
    assert_eq!(log.code, 1);
    assert!(log.stderr.starts_with("error: event 3 "), "{}", log.stderr);
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "verify changed a tampered file"
    );
}

#[test]
fn tampered_projection_row_names_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let db = build_sample(dir.path());
    {
        let enabled = redb::TableDefinition::<&[u8], &[u8]>::new("enabled");
        let database = redb::Database::open(&db).unwrap();
        let txn = database.begin_write().unwrap();
        {
            let mut table = txn.open_table(enabled).unwrap();
            let rows: Vec<(Vec<u8>, Vec<u8>)> = table
                .iter()
                .unwrap()
                .map(|row| {
                    let (k, v) = row.unwrap();
                    (k.value().to_vec(), v.value().to_vec())
                })
                .collect();
            let (key, value) = rows
                .iter()
                .find(|(_, v)| v == &[0])
                .expect("a disabled member");
            assert_eq!(value, &[0]);
            table.insert(key.as_slice(), [1u8].as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let out = run(&["verify", s(&db), "--json"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let report = json(&out.stdout);
    assert_eq!(report["failure"]["kind"], "projection");
    assert_eq!(report["failure"]["table"], "enabled");
}

#[test]
fn expect_head_tells_extension_rollback_and_fork_apart() {
    // One history, copied at a branch point; the original moves on by two
    // events, the fork by two different ones.
    let dir = tempfile::tempdir().unwrap();
    let founder_file = dir.path().join("founder.keys");
    LocalKeys::generate().save(&founder_file).unwrap();
    let main = dir.path().join("main.redb");
    {
        let mut mesh = Mesh::create(&main, LocalKeys::load(&founder_file).unwrap(), "g").unwrap();
        mesh.set_enabled(true).unwrap();
        mesh.append_app("note", b"a").unwrap();
    }
    let behind = dir.path().join("behind.redb");
    let forked = dir.path().join("forked.redb");
    std::fs::copy(&main, &behind).unwrap();
    std::fs::copy(&main, &forked).unwrap();
    let branch_point = Mesh::open_read_only(&main).unwrap().state().head().unwrap();
    let head = {
        let mut mesh = Mesh::open(&main, LocalKeys::load(&founder_file).unwrap()).unwrap();
        mesh.append_app("note", b"b").unwrap();
        mesh.append_app("note", b"c").unwrap()
    };
    {
        let mut mesh = Mesh::open(&forked, LocalKeys::load(&founder_file).unwrap()).unwrap();
        mesh.append_app("note", b"other").unwrap();
        mesh.append_app("note", b"history").unwrap();
    }
    let head_hash = head.hash.to_string();
    let head_seq = head.seq.to_string();

    let same = run(&["verify", s(&main), "--expect-head", &head_hash]);
    assert_eq!(same.code, 0, "{}", same.stdout);
    assert!(same.stdout.contains("expected  OK"), "{}", same.stdout);

    let ahead = run(&[
        "verify",
        s(&main),
        "--json",
        "--expect-head",
        &branch_point.hash.to_string(),
    ]);
    assert_eq!(ahead.code, 1);
    let report = json(&ahead.stdout);
    assert_eq!(report["ok"], false);
    assert_eq!(report["expect_head"]["status"], "extends");
    assert_eq!(report["expect_head"]["found_seq"], branch_point.seq);
    assert_eq!(report["failure"], Value::Null);

    let rolled = run(&[
        "verify",
        s(&behind),
        "--expect-head",
        &head_hash,
        "--expect-seq",
        &head_seq,
    ]);
    assert_eq!(rolled.code, 1);
    assert!(
        rolled.stdout.contains("rolled back or truncated"),
        "{}",
        rolled.stdout
    );
    assert!(
        rolled
            .stdout
            .contains(&format!("ends at seq {}", branch_point.seq))
    );

    let fork_out = run(&[
        "verify",
        s(&forked),
        "--json",
        "--expect-head",
        &head_hash,
        "--expect-seq",
        &head_seq,
    ]);
    assert_eq!(fork_out.code, 1);
    assert_eq!(json(&fork_out.stdout)["expect_head"]["status"], "forked");

    let unknown = run(&["verify", s(&forked), "--expect-head", &head_hash]);
    assert_eq!(unknown.code, 1);
    assert!(
        unknown.stdout.contains("not in this chain"),
        "{}",
        unknown.stdout
    );
}

#[test]
fn could_not_run_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = run(&["verify", s(&dir.path().join("nope.redb"))]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.starts_with("error: ") && missing.stderr.contains("no such file"));

    let junk = dir.path().join("junk.redb");
    std::fs::write(&junk, vec![0x42; 8192]).unwrap();
    let out = run(&["verify", s(&junk)]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);

    let db = build_sample(dir.path());
    let out = run(&["show", s(&db), "--at", "99"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no event at seq 99"), "{}", out.stderr);
    assert_eq!(run(&["show", s(&db), "--epoch", "9"]).code, 2);
    assert_eq!(run(&["replay", s(&db), "--at", "99"]).code, 2);
}

#[test]
fn a_live_mesh_can_be_read_and_backed_up_but_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let (db, founder) = build_sample_with_keys(dir.path());
    let mut held = Mesh::open(&db, LocalKeys::load(&founder).unwrap()).unwrap();

    let out = run(&["verify", s(&db), "--json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(json(&out.stdout)["events"], SAMPLE_EVENTS);

    // The holder appends midway; readers in other processes see the commit.
    let receipt = held.append_app("note", b"while audited").unwrap();
    let out = run(&["verify", s(&db), "--json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let report = json(&out.stdout);
    assert_eq!(report["events"], SAMPLE_EVENTS + 1);
    assert_eq!(report["head_hash"], receipt.hash.to_string());
    assert_eq!(report["verified_private_copy"], false);
    for command in ["log", "show", "replay"] {
        let out = run(&[command, s(&db)]);
        assert_eq!(out.code, 0, "{command}: {}", out.stderr);
    }

    let copy = dir.path().join("copy.redb");
    let backup = run(&["backup", s(&db), s(&copy)]);
    assert_eq!(backup.code, 0, "{}{}", backup.stdout, backup.stderr);
    let copied = run(&["verify", s(&copy), "--json"]);
    assert_eq!(copied.code, 0, "{}", copied.stdout);
    let copied = json(&copied.stdout);
    assert_eq!(copied["head_hash"], receipt.hash.to_string());
    assert_eq!(copied["digest"], held.digest().to_string());

    let secret = run(&["secret", s(&db), "--keys", s(&founder), "--epoch", "3"]);
    assert_eq!(secret.code, 0, "{}", secret.stderr);
    assert!(
        secret
            .stdout
            .contains(&held.epoch_secret(3).unwrap().fingerprint()),
        "{}",
        secret.stdout
    );

    // Commands that write are refused while another process writes.
    let writers: [&[&str]; 2] = [
        &["enable", s(&db), "--keys", s(&founder)],
        &[
            "append",
            s(&db),
            "--keys",
            s(&founder),
            "--kind",
            "note",
            "--payload",
            "x",
        ],
    ];
    for args in writers {
        let out = run(args);
        assert_eq!(out.code, 2, "{args:?}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stderr.contains("is open for writing elsewhere"),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert_eq!(held.state().len(), SAMPLE_EVENTS + 1);
    drop(held);
    let after = json(&run(&["verify", s(&db), "--json"]).stdout);
    assert_eq!(after["events"], SAMPLE_EVENTS + 1, "a refused writer wrote");
    // Once the holder lets go, the same command writes.
    let out = run(&["enable", s(&db), "--keys", s(&founder)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!("seq {}", SAMPLE_EVENTS + 1)),
        "{}",
        out.stdout
    );
}

#[test]
fn secret_never_changes_a_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (db, founder) = build_sample_with_keys(dir.path());
    let before = std::fs::read(&db).unwrap();
    for args in [
        &["secret", s(&db), "--keys", s(&founder), "--epoch", "2"][..],
        &[
            "secret",
            s(&db),
            "--keys",
            s(&founder),
            "--epoch",
            "3",
            "--reveal",
        ],
    ] {
        let out = run(args);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        assert!(out.stdout.contains("fingerprint"), "{}", out.stdout);
        assert!(
            std::fs::read(&db).unwrap() == before,
            "{args:?} changed the file"
        );
    }
    // A refusal does not write either.
    let stranger = dir.path().join("stranger.keys");
    LocalKeys::generate().save(&stranger).unwrap();
    let out = run(&["secret", s(&db), "--keys", s(&stranger), "--epoch", "3"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("not a member"), "{}", out.stderr);
    assert!(std::fs::read(&db).unwrap() == before);
}

#[test]
fn log_lists_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let db = build_sample(dir.path());
    let text = run(&["log", s(&db)]);
    assert_eq!(text.code, 0);
    assert_eq!(text.stdout.lines().count() as u64, SAMPLE_EVENTS);
    assert!(text.stdout.contains("member→admin"), "{}", text.stdout);

    let out = run(&["log", s(&db), "--json"]);
    let lines: Vec<Value> = out.stdout.lines().map(json).collect();
    assert_eq!(lines.len() as u64, SAMPLE_EVENTS);
    for (seq, line) in lines.iter().enumerate() {
        assert_eq!(line["seq"], seq as u64);
    }
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "genesis",
            "set-enabled",
            "rotate",
            "rotate",
            "app",
            "rotate",
            "app"
        ]
    );
    assert_eq!(lines[0]["group_name"], "audit team");
    assert_eq!(lines[1]["enabled"], true);
    assert_eq!(lines[2]["epoch"], 1);
    assert_eq!(lines[2]["added"].as_array().unwrap().len(), 1);
    assert_eq!(lines[5]["role_changes"][0]["to"], "admin");
    assert_eq!(lines[5]["added"].as_array().unwrap().len(), 0);
    assert_eq!(lines[4]["payload_bytes"], 5);

    let page = run(&["log", s(&db), "--json", "--from", "3", "--limit", "2"]);
    let seqs: Vec<u64> = page
        .stdout
        .lines()
        .map(|l| json(l)["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [3, 4]);
}

#[test]
fn show_and_replay_agree_with_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let db = build_sample(dir.path());
    let mesh = Mesh::open_read_only(&db).unwrap();
    let at_epoch_1 = mesh.replay(2, |_, _| {}).unwrap();

    let out = run(&["show", s(&db), "--epoch", "1", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let shown = json(&out.stdout);
    assert_eq!(shown["epoch"], 1);
    assert_eq!(shown["at_seq"], 2);
    assert_eq!(shown["members"].as_array().unwrap().len(), 2);
    assert_eq!(shown["envelope"]["recipients"].as_array().unwrap().len(), 2);
    assert_eq!(shown["digest"], at_epoch_1.digest().to_string());

    let head = run(&["show", s(&db), "--json"]);
    let head = json(&head.stdout);
    assert_eq!(head["at_seq"], SAMPLE_EVENTS - 1);
    assert_eq!(head["digest"], mesh.digest().to_string());
    let admins = head["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "admin")
        .count();
    assert_eq!(admins, 2);

    let out = run(&["replay", s(&db), "--json", "--at", "4"]);
    assert_eq!(out.code, 0);
    let replay = json(&out.stdout);
    let points = replay["points"].as_array().unwrap();
    let seqs: Vec<u64> = points.iter().map(|p| p["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [0, 2, 3, 4]);
    assert_eq!(points[1]["digest"], at_epoch_1.digest().to_string());
    let full = run(&["replay", s(&db)]);
    assert!(
        full.stdout
            .lines()
            .last()
            .unwrap()
            .ends_with(&mesh.digest().to_string())
    );
}

#[test]
fn keys_show_never_prints_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alice.keys");
    let out = run(&["keys", "new", s(&file)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let keys = LocalKeys::load(&file).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let seed = hex::encode(&bytes[16..48]);
    let dh_secret = hex::encode(&bytes[48..80]);
    for args in [
        &["keys", "new", s(&file)][..],
        &["keys", "show", s(&file)],
        &["keys", "show", s(&file), "--public"],
    ] {
        let out = run(args);
        for secret in [&seed, &dh_secret] {
            assert!(!out.stdout.contains(secret.as_str()) && !out.stderr.contains(secret.as_str()));
        }
    }
    let shown = run(&["keys", "show", s(&file)]);
    assert!(shown.stdout.contains(&keys.member_id().to_string()));
    assert!(shown.stdout.contains(&keys.public().to_string()));
    let public = run(&["keys", "show", s(&file), "--public"]);
    assert_eq!(public.stdout.trim(), keys.public().to_string());
    // Never overwrites.
    let again = run(&["keys", "new", s(&file)]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert!(
        std::fs::read(&file).unwrap() == bytes,
        "keys new overwrote a key file"
    );
}

#[test]
fn operator_commands_change_the_group_and_refusals_leave_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let (db, founder, bob) = (path("team.redb"), path("founder.keys"), path("bob.keys"));
    assert_eq!(run(&["keys", "new", s(&founder)]).code, 0);
    assert_eq!(run(&["keys", "new", s(&bob)]).code, 0);
    let bob_public = run(&["keys", "show", s(&bob), "--public"])
        .stdout
        .trim()
        .to_owned();
    let bob_id = LocalKeys::load(&bob).unwrap().member_id().to_string();
    let ok = |args: &[&str]| {
        let out = run(args);
        assert_eq!(out.code, 0, "{args:?}: {}{}", out.stdout, out.stderr);
        out
    };
    // Opening a redb file for writing rewrites its header even when nothing is
    // appended, so "unchanged" is checked on the chain: same head, same digest.
    let chain = || {
        let mesh = Mesh::open_read_only(&db).expect("verifies");
        (mesh.state().head(), mesh.digest())
    };
    let refused = |args: &[&str], needle: &str| {
        let before = chain();
        let out = run(args);
        assert_eq!(out.code, 1, "{args:?}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
        assert!(chain() == before, "{args:?} changed the chain");
    };

    ok(&["create", s(&db), "--keys", s(&founder), "--name", "ops"]);
    assert_eq!(
        run(&["create", s(&db), "--keys", s(&founder), "--name", "ops"]).code,
        2
    );
    // A disabled founder may not add anyone.
    refused(
        &[
            "add",
            s(&db),
            "--keys",
            s(&founder),
            "--member",
            &bob_public,
        ],
        "disabled",
    );
    ok(&["enable", s(&db), "--keys", s(&founder)]);
    ok(&[
        "add",
        s(&db),
        "--keys",
        s(&founder),
        "--member",
        &bob_public,
    ]);
    refused(
        &[
            "add",
            s(&db),
            "--keys",
            s(&founder),
            "--member",
            &bob_public,
        ],
        "already",
    );
    // Bob is a member but still disabled, and not an admin.
    refused(
        &[
            "append",
            s(&db),
            "--keys",
            s(&bob),
            "--kind",
            "note",
            "--payload",
            "hi",
        ],
        "disabled",
    );
    refused(
        &["secret", s(&db), "--keys", s(&bob), "--epoch", "0"],
        "not a member",
    );
    ok(&["enable", s(&db), "--keys", s(&bob)]);
    ok(&[
        "append",
        s(&db),
        "--keys",
        s(&bob),
        "--kind",
        "note",
        "--payload",
        "hi",
    ]);
    let payload = path("payload.bin");
    std::fs::write(&payload, [0u8, 1, 2, 3, 4, 5, 6]).unwrap();
    ok(&[
        "append",
        s(&db),
        "--keys",
        s(&founder),
        "--kind",
        "blob",
        "--payload-file",
        s(&payload),
    ]);
    ok(&[
        "role",
        s(&db),
        "--keys",
        s(&founder),
        "--member",
        &bob_id[..8],
        "--admin",
    ]);
    refused(
        &[
            "role",
            s(&db),
            "--keys",
            s(&founder),
            "--member",
            &bob_id,
            "--role",
            "admin",
        ],
        "already has that role",
    );

    let founder_secret = ok(&["secret", s(&db), "--keys", s(&founder), "--epoch", "2"]).stdout;
    let bob_secret = ok(&[
        "secret",
        s(&db),
        "--keys",
        s(&bob),
        "--epoch",
        "2",
        "--reveal",
    ])
    .stdout;
    let fingerprint = |out: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix("fingerprint"))
            .map(|f| f.trim().to_owned())
            .expect("a fingerprint line")
    };
    assert_eq!(fingerprint(&founder_secret), fingerprint(&bob_secret));
    assert!(!founder_secret.contains("secret "), "{founder_secret}");
    let revealed = bob_secret
        .lines()
        .find_map(|l| l.strip_prefix("secret"))
        .unwrap()
        .trim();
    assert_eq!(revealed.len(), 64);

    ok(&["remove", s(&db), "--keys", s(&founder), "--member", &bob_id]);
    refused(
        &["secret", s(&db), "--keys", s(&bob), "--epoch", "3"],
        "not a member",
    );
    assert_eq!(
        run(&["remove", s(&db), "--keys", s(&founder), "--member", "zz"]).code,
        2
    );
    assert_eq!(
        run(&[
            "add",
            s(&db),
            "--keys",
            s(&path("missing.keys")),
            "--member",
            &bob_public
        ])
        .code,
        2
    );

    let mesh = Mesh::open_read_only(&db).unwrap();
    let state = mesh.state();
    assert_eq!(state.len(), 8);
    assert_eq!(state.current_epoch().unwrap().epoch, 3);
    assert_eq!(state.current_epoch().unwrap().roster.len(), 1);
    drop(mesh);

    let copy = path("copy.redb");
    ok(&["backup", s(&db), s(&copy)]);
    let original = json(&ok(&["verify", s(&db), "--json"]).stdout);
    let copied = json(&ok(&["verify", s(&copy), "--json"]).stdout);
    assert_eq!(original["digest"], copied["digest"]);
    assert_eq!(original["head_hash"], copied["head_hash"]);
    assert_eq!(run(&["backup", s(&db), s(&copy)]).code, 2);
}

#[test]
fn demo_builds_a_mesh_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("demo");
    let out = run(&["demo", s(&target)]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("result    OK"), "{}", out.stdout);
    let db = target.join("mesh.redb");
    assert!(
        out.stdout
            .contains(&format!("meshlog log {}", db.display()))
    );

    let report = json(&run(&["verify", s(&db), "--json"]).stdout);
    assert_eq!(report["ok"], true);
    assert_eq!(report["members"], 3);
    assert_eq!(report["current_epoch"], 5);
    // Carol was removed: her keys open epoch 3, not epoch 5.
    let carol = target.join("carol.keys");
    assert_eq!(
        run(&["secret", s(&db), "--keys", s(&carol), "--epoch", "3"]).code,
        0
    );
    assert_eq!(
        run(&["secret", s(&db), "--keys", s(&carol), "--epoch", "5"]).code,
        1
    );

    let again = run(&["demo", s(&target)]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);

    let temp = run(&["demo"]);
    assert_eq!(temp.code, 0, "{}", temp.stderr);
    assert!(temp.stdout.contains("deleted when this command exits"));
}

#[test]
fn a_file_not_closed_cleanly_is_verified_in_a_private_copy() {
    let dir = tempfile::tempdir().unwrap();
    let db = build_sample(dir.path());
    let copy = dir.path().join("live-copy.redb");
    {
        // A plain copy of a file that is open for writing looks like a crash.
        let _held = Mesh::open(&db, LocalKeys::generate()).unwrap();
        std::fs::copy(&db, &copy).unwrap();
    }
    let before = blake3::hash(&std::fs::read(&copy).unwrap());
    let out = run(&["verify", s(&copy), "--json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let report = json(&out.stdout);
    assert_eq!(report["verified_private_copy"], true, "{report}");
    assert_eq!(report["events"], SAMPLE_EVENTS);
    let text = run(&["verify", s(&copy)]);
    assert!(
        text.stdout.contains("not been closed cleanly"),
        "{}",
        text.stdout
    );
    assert!(blake3::hash(&std::fs::read(&copy).unwrap()) == before);
}

/// Runs a command that must succeed, and returns its output.
fn ok(args: &[&str]) -> Run {
    let out = run(args);
    assert_eq!(out.code, 0, "{args:?}: {}{}", out.stdout, out.stderr);
    out
}

/// Runs a command that must be refused with exit 1, and returns its output.
fn refused(args: &[&str]) -> Run {
    let out = run(args);
    assert_eq!(out.code, 1, "{args:?}: {}{}", out.stdout, out.stderr);
    out
}

/// `meshlog verify --json`, which must succeed.
fn verified(db: &Path) -> Value {
    json(&ok(&["verify", s(db), "--json"]).stdout)
}

/// The hash of the event at `seq`, read with the library.
fn hash_at(db: &Path, seq: u64) -> String {
    let mesh = Mesh::open_read_only(db).expect("verifies");
    mesh.event(seq).expect("event").hash().to_string()
}

fn new_keys(path: &Path) -> String {
    ok(&["keys", "new", s(path)]);
    ok(&["keys", "show", s(path), "--public"])
        .stdout
        .trim()
        .to_owned()
}

fn append(db: &Path, keys: &Path, payload: &str) {
    ok(&[
        "append",
        s(db),
        "--keys",
        s(keys),
        "--kind",
        "note",
        "--payload",
        payload,
    ]);
}

#[test]
fn two_peers_sync_with_export_join_and_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let (founder, bob) = (path("founder.keys"), path("bob.keys"));
    let (db, bob_db) = (path("founder.redb"), path("bob.redb"));
    new_keys(&founder);
    let bob_public = new_keys(&bob);
    let bob_id = LocalKeys::load(&bob).unwrap().member_id().to_string();
    ok(&["create", s(&db), "--keys", s(&founder), "--name", "ops"]);
    ok(&["enable", s(&db), "--keys", s(&founder)]);

    // Bob joins before he is a member: the copy is made, and says so.
    let first = path("first.batch");
    let out = ok(&["export", s(&db), "--keys", s(&founder), s(&first)]);
    assert!(
        out.stdout.contains("seq 0 to 1 (2 events)"),
        "{}",
        out.stdout
    );
    let out = ok(&["join", s(&bob_db), "--keys", s(&bob), s(&first)]);
    assert!(
        out.stdout
            .contains(&format!("{bob_id} is not in the current roster (epoch 0)")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("can add it later"), "{}", out.stdout);
    assert!(out.stdout.contains("`meshlog secret`"), "{}", out.stdout);
    assert_eq!(verified(&bob_db)["head_hash"], verified(&db)["head_hash"]);
    let out = refused(&["secret", s(&bob_db), "--keys", s(&bob), "--epoch", "0"]);
    assert!(out.stderr.contains("not a member"), "{}", out.stderr);

    // The founder adds bob and writes a note; bob ingests both events.
    ok(&[
        "add",
        s(&db),
        "--keys",
        s(&founder),
        "--member",
        &bob_public,
    ]);
    append(&db, &founder, "welcome");
    let second = path("second.batch");
    let out = ok(&["export", s(&db), "--since", "2", s(&second)]);
    assert!(
        out.stdout.contains("seq 2 to 3 (2 events)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("auditor"), "{}", out.stdout);
    let out = ok(&[
        "ingest",
        s(&bob_db),
        "--keys",
        s(&bob),
        s(&second),
        "--json",
    ]);
    let report = json(&out.stdout);
    assert_eq!(report["ok"], true);
    assert_eq!(report["added"], 2);
    assert_eq!(report["skipped"], 0);
    assert_eq!(report["head_seq"], 3);
    assert_eq!(report["head_hash"], hash_at(&db, 3));
    assert_eq!(report["error"], Value::Null);
    // Bob is now a member of epoch 1, disabled: he may read his secret, but a
    // disabled member of the roster may not sync until he enables himself.
    ok(&["secret", s(&bob_db), "--keys", s(&bob), "--epoch", "1"]);
    let out = refused(&["ingest", s(&bob_db), "--keys", s(&bob), s(&second)]);
    assert!(out.stdout.contains("disabled"), "{}", out.stdout);
    let x = path("x.batch");
    let out = refused(&["export", s(&bob_db), "--keys", s(&bob), s(&x)]);
    assert!(out.stderr.contains("disabled"), "{}", out.stderr);
    assert!(!x.exists());

    // Bob enables himself (seq 4); the same batch again: all held, none added.
    ok(&["enable", s(&bob_db), "--keys", s(&bob)]);
    let out = ok(&["ingest", s(&bob_db), "--keys", s(&bob), s(&second)]);
    assert!(out.stdout.contains("added     0\n"), "{}", out.stdout);
    assert!(out.stdout.contains("skipped   2 "), "{}", out.stdout);
    let out = ok(&[
        "ingest",
        s(&bob_db),
        "--keys",
        s(&bob),
        s(&second),
        "--json",
    ]);
    let report = json(&out.stdout);
    assert_eq!(
        (report["added"].as_u64(), report["skipped"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(report["head_seq"], 4);

    // The founder takes bob's event, from an overlapping export.
    let from_bob = path("from-bob.batch");
    ok(&[
        "export",
        s(&bob_db),
        "--keys",
        s(&bob),
        "--since",
        "3",
        s(&from_bob),
    ]);
    let out = ok(&["ingest", s(&db), "--keys", s(&founder), s(&from_bob)]);
    assert!(out.stdout.contains("added     1\n"), "{}", out.stdout);
    assert!(out.stdout.contains("skipped   1 "), "{}", out.stdout);

    let (ours, theirs) = (verified(&db), verified(&bob_db));
    assert_eq!(ours["events"], 5);
    assert_eq!(ours["head_hash"], theirs["head_hash"]);
    assert_eq!(ours["digest"], theirs["digest"]);
    assert_eq!(ours["enabled_members"], 2);
    assert_eq!(theirs["equivocations"], serde_json::json!([]));
    let fingerprint =
        |db: &Path, keys: &Path| ok(&["secret", s(db), "--keys", s(keys), "--epoch", "1"]).stdout;
    assert_eq!(fingerprint(&db, &founder), fingerprint(&bob_db, &bob));

    // An export never overwrites a file.
    let before = std::fs::read(&from_bob).unwrap();
    let out = run(&["export", s(&db), s(&from_bob)]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    assert!(std::fs::read(&from_bob).unwrap() == before);
    // Nor does a join.
    assert_eq!(
        run(&["join", s(&bob_db), "--keys", s(&bob), s(&first)]).code,
        2
    );
    // --since past the head + 1 is refused, naming what the chain holds.
    let out = run(&["export", s(&db), "--since", "6", s(&path("y.batch"))]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("has 5 events"), "{}", out.stderr);
    // --since at the head + 1 gives an empty batch, which adds nothing.
    let empty = path("empty.batch");
    let out = ok(&["export", s(&db), "--since", "5", s(&empty)]);
    assert!(
        out.stdout.contains("no events (from seq 5)"),
        "{}",
        out.stdout
    );
    let out = ok(&["ingest", s(&bob_db), "--keys", s(&bob), s(&empty), "--json"]);
    assert_eq!(json(&out.stdout)["added"], 0);
}

/// A founder and a second admin, both enabled, in `founder.redb`; the admin's
/// copy `admin.redb` is a `meshlog backup` of it. Returns the paths.
fn two_admins(dir: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let (founder, admin) = (dir.join("founder.keys"), dir.join("admin.keys"));
    LocalKeys::generate().save(&founder).unwrap();
    LocalKeys::generate().save(&admin).unwrap();
    let db = dir.join("founder.redb");
    {
        let mut mesh = Mesh::create(&db, LocalKeys::load(&founder).unwrap(), "g").unwrap();
        mesh.set_enabled(true).unwrap();
        let public = LocalKeys::load(&admin).unwrap().public();
        mesh.add_member(public, Role::Admin).unwrap();
    }
    Mesh::open(&db, LocalKeys::load(&admin).unwrap())
        .unwrap()
        .set_enabled(true)
        .unwrap();
    let copy = dir.join("admin.redb");
    ok(&["backup", s(&db), s(&copy)]);
    (db, founder, copy, admin)
}

#[test]
fn a_fork_between_two_admins_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (db, founder, copy, admin) = two_admins(dir.path());
    // Both append at seq 4, from the same head.
    append(&db, &founder, "founder's");
    append(&copy, &admin, "admin's");
    let batch = dir.path().join("admin.batch");
    ok(&[
        "export",
        s(&copy),
        "--keys",
        s(&admin),
        "--since",
        "4",
        s(&batch),
    ]);
    let before = verified(&db);

    let out = refused(&["ingest", s(&db), "--keys", s(&founder), s(&batch)]);
    assert!(
        out.stdout.contains("REFUSED: fork at seq 4;"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(&hash_at(&db, 4)), "{}", out.stdout);
    assert!(out.stdout.contains(&hash_at(&copy, 4)), "{}", out.stdout);
    assert!(out.stdout.contains("not equivocation"), "{}", out.stdout);
    assert!(out.stdout.contains("(unchanged)"), "{}", out.stdout);

    let out = refused(&["ingest", s(&db), "--keys", s(&founder), s(&batch), "--json"]);
    let report = json(&out.stdout);
    assert_eq!(report["ok"], false);
    assert_eq!(report["added"], 0);
    assert_eq!(report["error"]["kind"], "fork");
    assert_eq!(report["error"]["seq"], 4);
    assert_eq!(report["error"]["equivocation"], false);
    assert_eq!(report["error"]["ours"], hash_at(&db, 4));
    assert_eq!(report["error"]["theirs"], hash_at(&copy, 4));
    assert_eq!(report["head_hash"], before["head_hash"]);

    let after = verified(&db);
    assert_eq!(after["head_hash"], before["head_hash"]);
    assert_eq!(after["head_seq"], before["head_seq"]);
    assert_eq!(after["digest"], before["digest"]);
    assert_eq!(after["equivocations"], serde_json::json!([]));
}

#[test]
fn gaps_malformed_and_foreign_batches_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let (db, founder, behind, admin) = two_admins(dir.path());
    for payload in ["a", "b", "c"] {
        append(&db, &founder, payload);
    }
    // `behind` ends at seq 3 and needs seq 4; a batch from seq 5 skips it.
    let gap = path("gap.batch");
    ok(&["export", s(&db), "--since", "5", s(&gap)]);
    let before = verified(&behind);
    let out = refused(&["ingest", s(&behind), "--keys", s(&admin), s(&gap)]);
    assert!(
        out.stdout
            .contains("the batch starts at seq 5, but this chain needs seq 4 next"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("--since 4"), "{}", out.stdout);
    let out = refused(&["ingest", s(&behind), "--keys", s(&admin), s(&gap), "--json"]);
    let report = json(&out.stdout);
    assert_eq!(report["error"]["kind"], "gap");
    assert_eq!(report["error"]["missing"], 4);
    assert_eq!(report["error"]["first"], 5);

    // Trailing bytes: refused before the database is touched, by join too.
    let good = path("good.batch");
    ok(&["export", s(&db), "--since", "4", s(&good)]);
    let mut bytes = std::fs::read(&good).unwrap();
    bytes.extend_from_slice(b"garbage");
    let trailing = path("trailing.batch");
    std::fs::write(&trailing, &bytes).unwrap();
    let file_before = std::fs::read(&behind).unwrap();
    let out = refused(&["ingest", s(&behind), "--keys", s(&admin), s(&trailing)]);
    assert!(out.stdout.contains("7 trailing bytes"), "{}", out.stdout);
    assert!(std::fs::read(&behind).unwrap() == file_before);
    let out = refused(&[
        "ingest",
        s(&behind),
        "--keys",
        s(&admin),
        s(&trailing),
        "--json",
    ]);
    assert_eq!(json(&out.stdout)["error"]["kind"], "malformed-batch");
    let joined = path("joined.redb");
    let out = refused(&["join", s(&joined), "--keys", s(&admin), s(&trailing)]);
    assert!(out.stderr.contains("trailing"), "{}", out.stderr);
    assert!(!joined.exists());
    // A batch that does not start at the genesis cannot found a copy.
    let out = refused(&["join", s(&joined), "--keys", s(&admin), s(&good)]);
    assert!(out.stderr.contains("seq 0"), "{}", out.stderr);
    assert!(!joined.exists());

    // Not a batch at all.
    let junk = path("junk.batch");
    std::fs::write(&junk, b"hello").unwrap();
    let out = refused(&["ingest", s(&behind), "--keys", s(&admin), s(&junk)]);
    assert!(out.stdout.contains("bad magic"), "{}", out.stdout);

    // Another group's batch.
    let other = path("other.redb");
    {
        let mut mesh = Mesh::create(&other, LocalKeys::generate(), "other").unwrap();
        mesh.set_enabled(true).unwrap();
    }
    let foreign = path("foreign.batch");
    ok(&["export", s(&other), s(&foreign)]);
    let out = refused(&[
        "ingest",
        s(&behind),
        "--keys",
        s(&admin),
        s(&foreign),
        "--json",
    ]);
    let report = json(&out.stdout);
    assert_eq!(report["error"]["kind"], "foreign-batch");
    assert_eq!(report["error"]["ours"], before["group"]);

    // A missing batch file means the command could not run.
    let out = run(&["ingest", s(&behind), "--keys", s(&admin), s(&path("none"))]);
    assert_eq!(out.code, 2, "{}", out.stderr);

    let after = verified(&behind);
    assert_eq!(after["head_hash"], before["head_hash"]);
    assert_eq!(after["digest"], before["digest"]);
}

#[test]
fn a_rejected_event_in_a_batch_names_seq_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    let (db, founder, behind, admin) = two_admins(dir.path());
    append(&db, &founder, "new");
    // An export whose seq 4 record carries a broken signature.
    let good = dir.path().join("good.batch");
    ok(&["export", s(&db), "--since", "4", s(&good)]);
    let mut bytes = std::fs::read(&good).unwrap();
    let original = Mesh::open_read_only(&db)
        .unwrap()
        .event(4)
        .unwrap()
        .to_record();
    let at = bytes
        .windows(original.len())
        .position(|w| w == original.as_slice())
        .expect("the record is in the batch");
    bytes[at + 10] ^= 0x01;
    let bad = dir.path().join("bad.batch");
    std::fs::write(&bad, &bytes).unwrap();
    let out = refused(&["ingest", s(&behind), "--keys", s(&admin), s(&bad)]);
    assert!(
        out.stdout
            .contains("the event at seq 4 breaks rule R10 bad-signature"),
        "{}",
        out.stdout
    );
    let out = refused(&["ingest", s(&behind), "--keys", s(&admin), s(&bad), "--json"]);
    let report = json(&out.stdout);
    assert_eq!(report["error"]["kind"], "rejected");
    assert_eq!(report["error"]["seq"], 4);
    assert_eq!(report["error"]["rule_id"], "R10");
    assert_eq!(report["error"]["rule"], "bad-signature");
    assert_eq!(verified(&behind)["events"], 4);
}

#[test]
fn equivocation_is_refused_and_kept_as_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let (founder, db, copy) = (path("founder.keys"), path("mesh.redb"), path("copy.redb"));
    new_keys(&founder);
    ok(&["create", s(&db), "--keys", s(&founder), "--name", "g"]);
    ok(&["enable", s(&db), "--keys", s(&founder)]);
    ok(&["backup", s(&db), s(&copy)]);
    // The same author signs two different events at seq 2.
    append(&db, &founder, "one history");
    append(&copy, &founder, "another history");
    let batch = path("copy.batch");
    ok(&[
        "export",
        s(&copy),
        "--keys",
        s(&founder),
        "--since",
        "2",
        s(&batch),
    ]);
    let before = verified(&db);
    assert_eq!(before["equivocations"], serde_json::json!([]));

    let out = refused(&["ingest", s(&db), "--keys", s(&founder), s(&batch)]);
    assert!(
        out.stdout.contains("fork at seq 2: equivocation"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("kept in"), "{}", out.stdout);

    let out = ok(&["verify", s(&db), "--json"]);
    let report = json(&out.stdout);
    assert_eq!(report["ok"], true);
    assert_eq!(report["head_hash"], before["head_hash"]);
    assert_eq!(report["digest"], before["digest"]);
    let evidence = report["equivocations"].as_array().unwrap();
    assert_eq!(evidence.len(), 1, "{report}");
    let founder_id = LocalKeys::load(&founder).unwrap().member_id().to_string();
    assert_eq!(evidence[0]["seq"], 2);
    assert_eq!(evidence[0]["author"], founder_id);
    assert_eq!(evidence[0]["ours"], hash_at(&db, 2));
    assert_eq!(evidence[0]["theirs"], hash_at(&copy, 2));

    let text = ok(&["verify", s(&db)]).stdout;
    assert!(text.contains("WARNING   EQUIVOCATION: 1 pair"), "{text}");
    assert!(
        text.contains(&format!("seq 2  author {founder_id}")),
        "{text}"
    );
    assert!(text.contains("result    OK"), "{text}");

    // Refusing the same batch again keeps one pair, not two.
    refused(&["ingest", s(&db), "--keys", s(&founder), s(&batch)]);
    assert_eq!(verified(&db)["equivocations"].as_array().unwrap().len(), 1);
}

/// The README's "Two peers from a shell" script runs as written, and both
/// peers end with the same head and digest.
#[cfg(unix)]
#[test]
fn readme_two_peers_script_runs() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = &readme[readme
        .find("## Two peers from a shell")
        .expect("the section")..];
    let script = section
        .split("```bash\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a bash block");
    let binary = assert_cmd::cargo::cargo_bin("meshlog");
    let bin_dir = binary.parent().expect("the binary's folder");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir.path())
        .env("PATH", path)
        .output()
        .expect("run bash");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tail: Vec<&str> = stdout.lines().rev().take(4).collect();
    assert_eq!(tail.len(), 4, "{stdout}");
    // The two verify reports: head and digest lines, founder's then bob's.
    assert!(tail[1].starts_with("head      seq 3 "), "{stdout}");
    assert!(tail[0].starts_with("digest "), "{stdout}");
    assert_eq!((tail[0], tail[1]), (tail[2], tail[3]), "{stdout}");
    assert!(stdout.contains("added     1\n"), "{stdout}");
}
