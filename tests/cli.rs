//! The `meshlog` binary, driven as a user would: exit codes by error class,
//! output, JSON, sync between two copies, and the promise that audit
//! commands never change a byte of the file.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use meshlog::{KeyPackage, LocalKeys, Mesh, MeshOptions, Role};
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

/// Runs a command that must exit with `code`, and returns its output.
fn exits(code: i32, args: &[&str]) -> Run {
    let out = run(args);
    assert_eq!(
        out.code, code,
        "{args:?}\nstdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    out
}

/// Runs a command that must succeed.
fn ok(args: &[&str]) -> Run {
    exits(0, args)
}

/// Runs a command that must fail with exit 1 (verification failure or refusal).
fn refused(args: &[&str]) -> Run {
    exits(1, args)
}

/// Runs a command that must fail with exit 2 (could not run).
fn could_not_run(args: &[&str]) -> Run {
    exits(2, args)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// The value of a `label  value` line of a text report.
fn field(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(label)
                .filter(|rest| rest.starts_with(' '))
                .map(|rest| rest.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{text}"))
}

/// `meshlog verify --json`, which must succeed.
fn verified(db: &Path) -> Value {
    json(&ok(&["verify", s(db), "--json"]).stdout)
}

/// A new key file made with `meshlog keys new`; returns its key package as
/// `meshlog keys show --public` prints it.
fn new_keys(path: &Path) -> String {
    ok(&["keys", "new", s(path)]);
    ok(&["keys", "show", s(path), "--public"])
        .stdout
        .trim()
        .to_owned()
}

fn member_id(keys: &Path) -> String {
    LocalKeys::load(keys).unwrap().member_id().to_string()
}

fn append(db: &Path, keys: &Path, payload: &str) -> String {
    let out = ok(&[
        "append",
        s(db),
        "--keys",
        s(keys),
        "--kind",
        "note",
        "--payload",
        payload,
    ]);
    field(&out.stdout, "event")
}

/// The hashes of a file's events, in file order, read with the library.
fn hashes(db: &Path) -> Vec<String> {
    let mesh = Mesh::open_read_only(db).expect("verifies");
    mesh.log()
        .map(|entry| entry.event.hash().to_string())
        .collect()
}

/// The digest and length of a file, read with the library: what "the file
/// did not change" means for commands that open it for writing.
fn state(db: &Path) -> (String, usize) {
    let mesh = Mesh::open_read_only(db).expect("verifies");
    (mesh.digest().to_string(), mesh.len())
}

/// A sample mesh, built with the library, and its key files.
struct Sample {
    db: PathBuf,
    founder: PathBuf,
    alice: PathBuf,
    bob: PathBuf,
}

/// Events, in file order: 0 genesis, 1 founder enables, 2 adds alice
/// (admin), 3 adds bob (member), 4 founder's note, 5 alice enables,
/// 6 bob enables, 7 bob's note.
const SAMPLE_EVENTS: usize = 8;

fn sample(dir: &Path) -> Sample {
    let sample = Sample {
        db: dir.join("mesh.redb"),
        founder: dir.join("founder.keys"),
        alice: dir.join("alice.keys"),
        bob: dir.join("bob.keys"),
    };
    for keys in [&sample.founder, &sample.alice, &sample.bob] {
        LocalKeys::generate().save(keys).unwrap();
    }
    let load = |path: &Path| LocalKeys::load(path).unwrap();
    {
        let mut mesh = Mesh::create(&sample.db, load(&sample.founder), "audit team").unwrap();
        mesh.set_enabled(true).unwrap();
        mesh.add_member(load(&sample.alice).package(), Role::Admin)
            .unwrap();
        mesh.add_member(load(&sample.bob).package(), Role::Member)
            .unwrap();
        mesh.append_app("note", b"hello").unwrap();
    }
    // One copy that all three write on: deliberately shared (SPEC.md §9.1).
    let shared = || MeshOptions::new().shared_copy(true);
    shared()
        .open(&sample.db, load(&sample.alice))
        .unwrap()
        .set_enabled(true)
        .unwrap();
    {
        let mut mesh = shared().open(&sample.db, load(&sample.bob)).unwrap();
        mesh.set_enabled(true).unwrap();
        mesh.append_app("note", b"bob here").unwrap();
    }
    assert_eq!(state(&sample.db).1, SAMPLE_EVENTS);
    sample
}

/// Rewrites one stored record of a closed file with redb directly.
fn tamper_record(path: &Path, position: u64, edit: impl FnOnce(&mut Vec<u8>)) {
    let events = redb::TableDefinition::<u64, &[u8]>::new("events");
    let db = redb::Database::open(path).expect("open with redb");
    let txn = db.begin_write().expect("write txn");
    {
        let mut table = txn.open_table(events).expect("events table");
        let mut record = table
            .get(position)
            .expect("read")
            .expect("record exists")
            .value()
            .to_vec();
        edit(&mut record);
        table.insert(position, record.as_slice()).expect("insert");
    }
    txn.commit().expect("commit");
}

/// Appends a postcard varint (LEB128).
fn varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The bytes of a batch (SPEC.md §7.2): magic, version 2, the group,
/// the records. Lets a test build batches the CLI never writes.
fn batch_bytes(group: &[u8; 32], records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"mlbatch\0".to_vec();
    varint(&mut out, 2);
    out.extend_from_slice(group);
    varint(&mut out, records.len() as u64);
    for record in records {
        varint(&mut out, record.len() as u64);
        out.extend_from_slice(record);
    }
    out
}

fn group_of(db: &Path) -> [u8; 32] {
    *Mesh::open_read_only(db).unwrap().group().as_bytes()
}

fn records_of(batch: &Path) -> Vec<Vec<u8>> {
    meshlog::Batch::from_bytes(&std::fs::read(batch).unwrap())
        .expect("a valid batch")
        .records()
        .to_vec()
}

#[test]
fn help_documents_exit_codes_commands_and_json_fields() {
    let top = ok(&["--help"]);
    assert!(top.stdout.contains("Exit codes"), "{}", top.stdout);
    for command in [
        "demo", "verify", "log", "show", "keys", "create", "enable", "disable", "add", "remove",
        "role", "refresh", "merge", "append", "secret", "backup", "frontier", "export", "join",
        "ingest",
    ] {
        assert!(
            top.stdout.contains(&format!("  {command} ")),
            "--help lacks {command}"
        );
        ok(&[command, "--help"]);
    }
    let verify = ok(&["verify", "--help"]).stdout;
    for needle in [
        "--expect",
        "--checkpoint",
        "rule_id",
        "current_epoch",
        "equivocations",
        "missing",
        "Exit codes",
        "Examples",
    ] {
        assert!(verify.contains(needle), "verify --help lacks {needle}");
    }
    let export = ok(&["export", "--help"]).stdout;
    assert!(export.contains("nothing to send"), "{export}");
    assert!(export.contains("exits 1"), "{export}");
    let ingest = ok(&["ingest", "--help"]).stdout;
    for needle in [
        "--merge",
        "rule_id",
        "incomplete",
        "foreign-batch",
        "needs_merge",
    ] {
        assert!(ingest.contains(needle), "ingest --help lacks {needle}");
    }
    let log = ok(&["log", "--help"]).stdout;
    for needle in [
        "JSON Lines",
        "author not in roster",
        "void epoch",
        "superseded",
    ] {
        assert!(log.contains(needle), "log --help lacks {needle}");
    }
}

#[test]
fn usage_errors_exit_2() {
    could_not_run(&[]);
    could_not_run(&["verify"]);
    could_not_run(&["frobnicate"]);
    // Owners come by `add --role owner`, never by a role change.
    could_not_run(&[
        "role", "x.redb", "--keys", "k", "--member", "12345678", "--role", "owner",
    ]);
    // A member id is not a key package.
    could_not_run(&[
        "add",
        "x.redb",
        "--keys",
        "k",
        "--member",
        "853d9f4adb0efde37029730dade54e74",
    ]);
    could_not_run(&["append", "x.redb", "--keys", "k", "--kind", "note"]);
}

#[test]
fn keys_show_public_is_a_package_that_add_takes_and_no_secret_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alice.keys");
    ok(&["keys", "new", s(&file)]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let keys = LocalKeys::load(&file).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    // The key file: 16 bytes of magic, the ed25519 seed, the X25519 secret.
    let seed = hex::encode(&bytes[16..48]);
    let dh_secret = hex::encode(&bytes[48..80]);
    for args in [
        &["keys", "show", s(&file)][..],
        &["keys", "show", s(&file), "--public"],
    ] {
        let out = ok(args);
        for secret in [&seed, &dh_secret] {
            assert!(!out.stdout.contains(secret.as_str()) && !out.stderr.contains(secret.as_str()));
        }
    }
    let shown = ok(&["keys", "show", s(&file)]).stdout;
    assert_eq!(field(&shown, "member"), keys.member_id().to_string());
    assert_eq!(field(&shown, "dh"), keys.public().dh.to_string());

    // --public: the member-signed package, and nothing else.
    let public = ok(&["keys", "show", s(&file), "--public"]).stdout;
    assert_eq!(public.lines().count(), 1, "{public}");
    let package: KeyPackage = public.trim().parse().expect("a key package");
    assert_eq!(package.member(), keys.member_id());
    assert_eq!(field(&shown, "package"), public.trim());

    // Which `add --member` takes.
    let founder = dir.path().join("founder.keys");
    new_keys(&founder);
    let db = dir.path().join("team.redb");
    ok(&["create", s(&db), "--keys", s(&founder), "--name", "t"]);
    ok(&["enable", s(&db), "--keys", s(&founder)]);
    let out = ok(&[
        "add",
        s(&db),
        "--keys",
        s(&founder),
        "--member",
        public.trim(),
    ]);
    assert!(
        out.stdout
            .contains(&format!("added {} as member", keys.member_id())),
        "{}",
        out.stdout
    );
    let mesh = Mesh::open_read_only(&db).unwrap();
    assert_eq!(
        mesh.roster()
            .get(keys.member_id())
            .map(|entry| entry.role()),
        Some(Role::Member)
    );

    // Never overwrites a key file.
    let again = could_not_run(&["keys", "new", s(&file)]);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert!(std::fs::read(&file).unwrap() == bytes);
}

#[test]
fn operator_commands_change_the_mesh_as_the_rules_allow() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let (db, founder, alice, bob) = (
        path("team.redb"),
        path("founder.keys"),
        path("alice.keys"),
        path("bob.keys"),
    );
    new_keys(&founder);
    let alice_package = new_keys(&alice);
    let bob_package = new_keys(&bob);
    let (founder_id, alice_id, bob_id) = (member_id(&founder), member_id(&alice), member_id(&bob));

    let out = ok(&["create", s(&db), "--keys", s(&founder), "--name", "ops"]);
    assert!(
        field(&out.stdout, "founder").starts_with(&format!("{founder_id} (owner")),
        "{}",
        out.stdout
    );
    let out = could_not_run(&["create", s(&db), "--keys", s(&founder), "--name", "ops"]);
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    let enable = ok(&["enable", s(&db), "--keys", s(&founder)]);
    assert_eq!(
        field(&enable.stdout, "event").len(),
        64,
        "{}",
        enable.stdout
    );

    // The founder (owner) adds an admin; the admin adds a member.
    let out = ok(&[
        "add",
        s(&db),
        "--keys",
        s(&founder),
        "--member",
        &alice_package,
        "--role",
        "admin",
    ]);
    assert!(
        out.stdout.contains(&format!("added {alice_id} as admin")),
        "{}",
        out.stdout
    );
    let add_alice = field(&out.stdout, "event");
    assert!(
        field(&out.stdout, "epoch").contains(&add_alice),
        "{}",
        out.stdout
    );
    // One copy that every member writes on: deliberately shared.
    ok(&["enable", s(&db), "--keys", s(&alice), "--shared-copy"]);
    ok(&[
        "add",
        s(&db),
        "--keys",
        s(&alice),
        "--member",
        &bob_package,
        "--shared-copy",
    ]);

    // Bob enables himself and writes, from text and from a file.
    ok(&["enable", s(&db), "--keys", s(&bob), "--shared-copy"]);
    ok(&[
        "append",
        s(&db),
        "--keys",
        s(&bob),
        "--kind",
        "note",
        "--payload",
        "hi",
        "--shared-copy",
    ]);
    let payload = path("payload.bin");
    std::fs::write(&payload, [0u8, 1, 2, 3, 4, 5, 6]).unwrap();
    let out = ok(&[
        "append",
        s(&db),
        "--keys",
        s(&bob),
        "--kind",
        "blob",
        "--payload-file",
        s(&payload),
        "--shared-copy",
    ]);
    assert!(out.stdout.contains("(7 bytes)"), "{}", out.stdout);

    // Roles by id prefix and by full id; a refresh with a reason.
    let out = ok(&[
        "role",
        s(&db),
        "--keys",
        s(&founder),
        "--member",
        &bob_id[..8],
        "--role",
        "admin",
    ]);
    assert!(out.stdout.contains(&format!("{bob_id} is now admin")));
    ok(&[
        "role",
        s(&db),
        "--keys",
        s(&founder),
        "--member",
        &bob_id,
        "--role",
        "member",
    ]);
    let out = ok(&[
        "refresh",
        s(&db),
        "--keys",
        s(&founder),
        "--reason",
        "laptop lost",
    ]);
    let refresh = field(&out.stdout, "event");

    // Every current member recovers the same current secret.
    let fingerprint = |keys: &Path, extra: &[&str]| {
        let mut args = vec!["secret", s(&db), "--keys", s(keys)];
        args.extend_from_slice(extra);
        let out = ok(&args);
        assert_eq!(field(&out.stdout, "epoch"), refresh, "{}", out.stdout);
        field(&out.stdout, "fingerprint")
    };
    let founders = fingerprint(&founder, &[]);
    assert_eq!(fingerprint(&alice, &[]), founders);
    assert_eq!(fingerprint(&bob, &["--epoch", &refresh[..10]]), founders);
    let revealed = ok(&["secret", s(&db), "--keys", s(&bob), "--reveal"]).stdout;
    assert_eq!(field(&revealed, "secret").len(), 64);
    assert!(
        !ok(&["secret", s(&db), "--keys", s(&bob)])
            .stdout
            .contains("secret ")
    );

    // Bob removed: he keeps the secrets he had, and gets none after.
    let out = ok(&["remove", s(&db), "--keys", s(&founder), "--member", &bob_id]);
    assert!(out.stdout.contains(&format!("removed {bob_id}")));
    assert_eq!(fingerprint(&bob, &["--epoch", &refresh]), founders);
    refused(&["secret", s(&db), "--keys", s(&bob)]);

    // No merge needed: nothing written.
    let before = state(&db);
    let out = ok(&["merge", s(&db), "--keys", s(&founder)]);
    assert!(out.stdout.contains("needs no merge"), "{}", out.stdout);
    assert_eq!(state(&db), before);

    ok(&["disable", s(&db), "--keys", s(&alice), "--shared-copy"]);
    let mesh = Mesh::open_read_only(&db).unwrap();
    let roster = mesh.roster();
    assert_eq!(roster.len(), 2);
    let founder_keys = LocalKeys::load(&founder).unwrap();
    let alice_keys = LocalKeys::load(&alice).unwrap();
    assert_eq!(
        roster.get(founder_keys.member_id()).map(|e| e.role()),
        Some(Role::Owner)
    );
    assert_eq!(
        roster.get(alice_keys.member_id()).map(|e| e.role()),
        Some(Role::Admin)
    );
    assert!(!mesh.is_member_enabled(alice_keys.member_id()));
    assert!(mesh.current_epoch().is_some());
    // create, 3 enables, 2 adds, 2 notes, 2 role changes, refresh, remove, disable.
    assert_eq!(mesh.len(), 13);
    drop(mesh);

    // A backup verifies to the same digest, and is never overwritten.
    let copy = path("copy.redb");
    let out = ok(&["backup", s(&db), s(&copy)]);
    assert_eq!(field(&out.stdout, "digest"), verified(&db)["digest"]);
    assert_eq!(verified(&copy)["digest"], verified(&db)["digest"]);
    could_not_run(&["backup", s(&db), s(&copy)]);
}

#[test]
fn refusals_exit_1_name_the_rule_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Sample {
        db,
        founder,
        alice,
        bob,
    } = sample(dir.path());
    let carol = dir.path().join("carol.keys");
    let carol_package = new_keys(&carol);
    let refused_here = |args: &[&str]| {
        let before = state(&db);
        let out = refused(args);
        assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
        assert!(state(&db) == before, "{args:?} changed the file");
        out
    };

    // A member may not add anyone: the rotation's author is no admin (E7).
    let out = refused_here(&[
        "add",
        s(&db),
        "--keys",
        s(&bob),
        "--member",
        &carol_package,
        "--shared-copy",
    ]);
    assert_eq!(field(&out.stderr, "rule"), "E7", "{}", out.stderr);
    assert_eq!(field(&out.stderr, "author"), member_id(&bob));
    // Refused before it was signed: there is no event hash to name.
    assert_eq!(
        field(&out.stderr, "event"),
        "none: refused before it was made"
    );
    assert!(
        field(&out.stderr, "seq").starts_with("2 "),
        "{}",
        out.stderr
    );

    // A disabled member may only enable itself (F5).
    ok(&["disable", s(&db), "--keys", s(&alice), "--shared-copy"]);
    let out = refused_here(&[
        "append",
        s(&db),
        "--keys",
        s(&alice),
        "--kind",
        "note",
        "--payload",
        "x",
        "--shared-copy",
    ]);
    assert_eq!(field(&out.stderr, "rule"), "F5", "{}", out.stderr);
    assert_eq!(field(&out.stderr, "author"), member_id(&alice));
    // Alice's feed: enable, disable; the refused note would have been seq 2.
    assert_eq!(field(&out.stderr, "seq"), "2", "{}", out.stderr);
    assert_eq!(field(&out.stderr, "event").len(), 64, "{}", out.stderr);

    // Not a recipient of the epoch: a refusal too.
    let out = refused_here(&["secret", s(&db), "--keys", s(&carol)]);
    assert!(out.stderr.contains("not a recipient"), "{}", out.stderr);

    // The founder still may.
    ok(&[
        "add",
        s(&db),
        "--keys",
        s(&founder),
        "--member",
        &carol_package,
    ]);
}

#[test]
fn could_not_run_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.redb");
    for command in ["verify", "log", "show"] {
        let out = could_not_run(&[command, s(&missing)]);
        assert!(
            out.stderr.starts_with("error: ") && out.stderr.contains("no such file"),
            "{}",
            out.stderr
        );
    }
    let junk = dir.path().join("junk.redb");
    std::fs::write(&junk, vec![0x42; 8192]).unwrap();
    let out = could_not_run(&["verify", s(&junk)]);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);

    let Sample { db, founder, .. } = sample(dir.path());
    could_not_run(&["show", s(&db), "--epoch", "00000000"]);
    could_not_run(&["remove", s(&db), "--keys", s(&founder), "--member", "zz"]);
    let no_keys = dir.path().join("missing.keys");
    could_not_run(&["enable", s(&db), "--keys", s(&no_keys)]);
    let out = could_not_run(&["verify", s(&db), "--expect", s(&junk)]);
    assert!(out.stderr.contains("not a checkpoint"), "{}", out.stderr);
}

#[test]
fn verify_reports_a_good_file_and_json_matches_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let Sample { db, .. } = sample(dir.path());
    let mesh = Mesh::open_read_only(&db).unwrap();
    let current = mesh.current_epoch().expect("one current epoch");

    let text = ok(&["verify", s(&db)]).stdout;
    assert!(text.contains("result     OK"), "{text}");
    assert_eq!(field(&text, "events"), SAMPLE_EVENTS.to_string());
    assert!(field(&text, "group").ends_with("\"audit team\""), "{text}");
    assert_eq!(field(&text, "digest"), mesh.digest().to_string());
    assert_eq!(field(&text, "epoch"), format!("{current} (current)"));
    assert!(field(&text, "private").starts_with("no"), "{text}");

    let report = verified(&db);
    assert_eq!(report["ok"], true);
    assert_eq!(report["events"], SAMPLE_EVENTS);
    assert_eq!(report["name"], "audit team");
    assert_eq!(report["group"], mesh.group().to_string());
    assert_eq!(report["founder"], mesh.founder().to_string());
    assert_eq!(report["digest"], mesh.digest().to_string());
    assert_eq!(report["current_epoch"], current.to_string());
    assert_eq!(report["needs_merge"], false);
    assert_eq!(report["tips"], serde_json::json!([current.to_string()]));
    assert_eq!(report["members"], 3);
    assert_eq!(report["enabled_members"], 3);
    assert_eq!(report["equivocations"], serde_json::json!([]));
    assert_eq!(report["failure"], Value::Null);
    assert_eq!(report["verified_private_copy"], false);
}

#[test]
fn a_tampered_file_is_refused_naming_the_event_and_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let Sample { db, .. } = sample(dir.path());
    // Position 3: the founder's rotation adding bob, seq 3 of its feed.
    let (hash, author, seq) = {
        let mesh = Mesh::open_read_only(&db).unwrap();
        let entry = mesh.log().nth(3).unwrap();
        let event = entry.event.event();
        (
            entry.event.hash().to_string(),
            event.author.to_string(),
            event.seq,
        )
    };
    // A byte of the signature (the first 64 bytes of the record).
    tamper_record(&db, 3, |record| record[10] ^= 0x01);
    let before = std::fs::read(&db).unwrap();

    let out = refused(&["verify", s(&db)]);
    assert!(
        field(&out.stdout, "result").starts_with("FAILED"),
        "{}",
        out.stdout
    );
    assert!(field(&out.stdout, "rule") == "V6", "{}", out.stdout);
    assert_eq!(field(&out.stdout, "event"), hash);
    assert_eq!(field(&out.stdout, "author"), author);
    assert_eq!(field(&out.stdout, "seq"), seq.to_string());

    let checkpoint = dir.path().join("never.checkpoint");
    let out = refused(&["verify", s(&db), "--json", "--checkpoint", s(&checkpoint)]);
    let report = json(&out.stdout);
    assert_eq!(report["ok"], false);
    assert_eq!(report["failure"]["class"], "verification-failure");
    assert_eq!(report["failure"]["kind"], "rejected");
    assert_eq!(report["failure"]["rule_id"], "V6");
    assert_eq!(report["failure"]["hash"], hash);
    assert_eq!(report["failure"]["author"], author);
    assert_eq!(report["failure"]["seq"], seq);
    assert_eq!(report["events"], Value::Null);
    assert!(!checkpoint.exists(), "a checkpoint of a refused file");

    // Every command that opens the file refuses it the same way.
    for args in [
        &["log", s(&db)][..],
        &["show", s(&db)],
        &["backup", s(&db), s(&dir.path().join("copy.redb"))],
    ] {
        let out = refused(args);
        assert!(field(&out.stderr, "rule") == "V6", "{}", out.stderr);
        assert_eq!(field(&out.stderr, "event"), hash);
    }
    assert!(!dir.path().join("copy.redb").exists());
    assert!(
        std::fs::read(&db).unwrap() == before,
        "a refused file changed"
    );
}

#[test]
fn verify_expect_detects_a_rollback_to_an_older_backup() {
    let dir = tempfile::tempdir().unwrap();
    let Sample { db, founder, .. } = sample(dir.path());
    let old = dir.path().join("old.redb");
    ok(&["backup", s(&db), s(&old)]);
    let later = append(&db, &founder, "after the backup");

    let checkpoint = dir.path().join("now.checkpoint");
    let out = ok(&["verify", s(&db), "--checkpoint", s(&checkpoint)]);
    assert!(field(&out.stdout, "checkpoint").contains("now.checkpoint"));
    assert!(checkpoint.exists());
    let out = ok(&["verify", s(&db), "--expect", s(&checkpoint)]);
    assert!(
        field(&out.stdout, "expected").starts_with("OK"),
        "{}",
        out.stdout
    );
    // The file grows: it still holds the checkpoint.
    append(&db, &founder, "more");
    ok(&["verify", s(&db), "--expect", s(&checkpoint)]);

    // Someone restores the older backup in place of the file.
    std::fs::remove_file(&db).unwrap();
    std::fs::copy(&old, &db).unwrap();
    let out = refused(&["verify", s(&db), "--expect", s(&checkpoint)]);
    assert!(
        field(&out.stdout, "expected").starts_with("ROLLED BACK: 1 head"),
        "{}",
        out.stdout
    );
    assert_eq!(field(&out.stdout, "missing"), later);
    assert!(
        field(&out.stdout, "result").starts_with("FAILED"),
        "{}",
        out.stdout
    );
    let report = json(&refused(&["verify", s(&db), "--expect", s(&checkpoint), "--json"]).stdout);
    assert_eq!(report["ok"], false);
    assert_eq!(report["expect"]["ok"], false);
    assert_eq!(report["expect"]["missing"], serde_json::json!([later]));
    assert_eq!(report["failure"], Value::Null);
    // The backup itself verifies: it is a valid, older state.
    assert_eq!(report["events"], SAMPLE_EVENTS);

    // A checkpoint is never overwritten.
    could_not_run(&["verify", s(&db), "--checkpoint", s(&checkpoint)]);
}

#[test]
fn audit_commands_never_change_a_byte() {
    let dir = tempfile::tempdir().unwrap();
    let Sample { db, founder, .. } = sample(dir.path());
    let before = std::fs::read(&db).unwrap();
    let genesis = hashes(&db)[0].clone();
    let founder_id = member_id(&founder);
    let out = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let (frontier, batch, copy, checkpoint) =
        (out("f"), out("b.batch"), out("c.redb"), out("c.checkpoint"));
    let commands: Vec<Vec<&str>> = vec![
        vec!["verify"],
        vec!["verify", "--json"],
        vec!["verify", "--checkpoint", &checkpoint],
        vec!["verify", "--expect", &checkpoint],
        vec!["log"],
        vec!["log", "--json", "--limit", "3"],
        vec!["log", "--author", &founder_id[..8]],
        vec!["show"],
        vec!["show", "--json"],
        vec!["show", "--epoch", &genesis[..8]],
        vec!["show", "--epoch", &genesis, "--json"],
        vec!["frontier", &frontier],
        vec!["export", &batch],
        vec!["backup", &copy],
        vec!["secret", "--keys", s(&founder)],
    ];
    for args in commands {
        let mut full = vec![args[0], s(&db)];
        full.extend_from_slice(&args[1..]);
        ok(&full);
        assert!(
            std::fs::read(&db).unwrap() == before,
            "{full:?} changed the file"
        );
    }
}

#[test]
fn log_lists_every_event_with_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let Sample {
        db, founder, bob, ..
    } = sample(dir.path());
    let bob_id = member_id(&bob);
    let out = ok(&["remove", s(&db), "--keys", s(&founder), "--member", &bob_id]);
    let removal = field(&out.stdout, "event");

    let text = ok(&["log", s(&db)]).stdout;
    assert_eq!(text.lines().count(), SAMPLE_EVENTS + 1, "{text}");
    let last = text.lines().last().unwrap();
    assert!(last.starts_with(&removal[..8]), "{last}");
    assert!(
        last.contains("rotate") && last.contains("current"),
        "{last}"
    );
    assert!(last.contains(&format!("-{}", &bob_id[..8])), "{last}");

    // The newest two, and only they; the same with the owner's keys, whose
    // checkpoint spares the verification (SPEC.md §9.7).
    let tail = ok(&["log", s(&db), "--tail", "2"]).stdout;
    let all: Vec<&str> = text.lines().collect();
    assert_eq!(tail.lines().collect::<Vec<_>>(), all[all.len() - 2..]);
    let keyed = ok(&["log", s(&db), "--tail", "2", "--keys", s(&founder)]).stdout;
    assert_eq!(keyed.lines().count(), 2, "{keyed}");
    assert!(keyed.lines().last().unwrap().starts_with(&removal[..8]));

    let lines: Vec<Value> = ok(&["log", s(&db), "--json"])
        .stdout
        .lines()
        .map(json)
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "genesis", "enable", "rotate", "rotate", "app", "enable", "enable", "app", "rotate"
        ]
    );
    assert_eq!(lines[0]["group_name"], "audit team");
    assert_eq!(lines[2]["changes"][0]["change"], "add");
    assert_eq!(lines[2]["changes"][0]["role"], "admin");
    assert_eq!(lines[2]["applied"], true);
    assert_eq!(lines[4]["payload_bytes"], 5);
    assert_eq!(lines[8]["hash"], removal);
    assert_eq!(lines[8]["changes"][0]["change"], "remove");
    assert_eq!(lines[8]["changes"][0]["member"], bob_id);
    // Statuses under the resolution after the removal.
    assert_eq!(lines[8]["status"], "current");
    assert_eq!(lines[7]["author"], bob_id);
    assert_eq!(lines[7]["status"], "author not in roster");
    assert_eq!(lines[4]["status"], "superseded");
    // The epoch an event was written under is the rotation before it.
    assert_eq!(lines[4]["epoch"], lines[3]["hash"]);
    for (position, line) in lines.iter().enumerate() {
        assert_eq!(line["hash"], hashes(&db)[position]);
    }

    let bobs: Vec<Value> = ok(&["log", s(&db), "--json", "--author", &bob_id[..8]])
        .stdout
        .lines()
        .map(json)
        .collect();
    assert_eq!(bobs.len(), 2);
    assert!(bobs.iter().all(|l| l["author"] == bob_id));
    assert_eq!(bobs[1]["seq"], 1);
    assert_eq!(
        ok(&["log", s(&db), "--limit", "3"]).stdout.lines().count(),
        3
    );
}

#[test]
fn show_lists_the_roster_the_epochs_and_one_epochs_own_roster() {
    let dir = tempfile::tempdir().unwrap();
    let Sample { db, founder, .. } = sample(dir.path());
    let mesh = Mesh::open_read_only(&db).unwrap();
    let current = mesh.current_epoch().unwrap().to_string();

    let shown = json(&ok(&["show", s(&db), "--json"]).stdout);
    assert_eq!(shown["current_epoch"], current);
    assert_eq!(shown["needs_merge"], false);
    assert_eq!(shown["digest"], mesh.digest().to_string());
    let roster = shown["roster"].as_array().unwrap();
    assert_eq!(roster.len(), 3);
    let roles: Vec<&str> = roster.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(
        (
            roles.iter().filter(|r| **r == "owner").count(),
            roles.iter().filter(|r| **r == "admin").count(),
            roles.iter().filter(|r| **r == "member").count()
        ),
        (1, 1, 1)
    );
    assert!(roster.iter().all(|m| m["enabled"] == true));
    let epochs = shown["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 3, "genesis and two additions");
    assert_eq!(epochs[0]["genesis"], true);
    assert_eq!(epochs[0]["roster_size"], 1);
    assert_eq!(epochs[1]["roster_size"], 2);
    assert_eq!(epochs[2]["roster_size"], 3);
    assert!(epochs.iter().all(|e| e["applied"] == true));
    assert_eq!(epochs[2]["hash"], current);
    assert_eq!(epochs[2]["current"], true);

    let text = ok(&["show", s(&db)]).stdout;
    assert!(field(&text, "R*").starts_with("3 members"), "{text}");
    assert_eq!(field(&text, "epoch"), format!("{current} (current)"));

    // One epoch's own roster: the genesis's is the founder, as owner.
    let genesis = epochs[0]["hash"].as_str().unwrap();
    let one = json(&ok(&["show", s(&db), "--epoch", &genesis[..8], "--json"]).stdout);
    assert_eq!(one["hash"], genesis);
    assert_eq!(one["genesis"], true);
    assert_eq!(one["current"], false);
    let own = one["roster"].as_array().unwrap();
    assert_eq!(own.len(), 1);
    assert_eq!(own[0]["member"], member_id(&founder));
    assert_eq!(own[0]["role"], "owner");
    let text = ok(&["show", s(&db), "--epoch", genesis]).stdout;
    assert!(field(&text, "roster").starts_with("1 member:"), "{text}");
}

#[test]
fn create_with_a_bad_name_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let founder = dir.path().join("founder.keys");
    new_keys(&founder);
    let db = dir.path().join("team.redb");
    for name in [String::new(), "x".repeat(129)] {
        let out = refused(&["create", s(&db), "--keys", s(&founder), "--name", &name]);
        assert!(field(&out.stderr, "rule") == "V4", "{}", out.stderr);
        assert!(!db.exists(), "a refused create left a file");
    }
    ok(&[
        "create",
        s(&db),
        "--keys",
        s(&founder),
        "--name",
        &"x".repeat(128),
    ]);
}

#[test]
fn two_peers_write_concurrently_and_converge_through_frontier_export_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let (founder, bob) = (path("founder.keys"), path("bob.keys"));
    let (db, bob_db) = (path("founder.redb"), path("bob.redb"));
    new_keys(&founder);
    let bob_package = new_keys(&bob);
    let bob_id = member_id(&bob);
    ok(&["create", s(&db), "--keys", s(&founder), "--name", "ops"]);
    ok(&["enable", s(&db), "--keys", s(&founder)]);

    // Bob joins before he is a member: the copy is made, and says so.
    let all = path("all.batch");
    let out = ok(&["export", s(&db), s(&all)]);
    assert!(
        field(&out.stdout, "exported").starts_with("2 events of 2"),
        "{}",
        out.stdout
    );
    let out = ok(&["join", s(&bob_db), "--keys", s(&bob), s(&all)]);
    assert_eq!(
        field(&out.stdout, "member"),
        format!("{bob_id} is not in R* yet")
    );
    assert_eq!(verified(&bob_db)["digest"], verified(&db)["digest"]);
    refused(&["secret", s(&bob_db), "--keys", s(&bob)]);

    // The founder adds bob; bob gets what his frontier lacks.
    ok(&[
        "add",
        s(&db),
        "--keys",
        s(&founder),
        "--member",
        &bob_package,
    ]);
    let bob_frontier = path("bob.frontier");
    ok(&["frontier", s(&bob_db), s(&bob_frontier)]);
    let to_bob = path("to-bob.batch");
    let out = ok(&["export", s(&db), "--frontier", s(&bob_frontier), s(&to_bob)]);
    assert!(
        field(&out.stdout, "exported").starts_with("1 event of 3"),
        "{}",
        out.stdout
    );
    let report = json(
        &ok(&[
            "ingest",
            s(&bob_db),
            "--keys",
            s(&bob),
            s(&to_bob),
            "--json",
        ])
        .stdout,
    );
    assert_eq!(report["ok"], true);
    assert_eq!(
        (report["added"].as_u64(), report["known"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(report["needs_merge"], false);
    assert_eq!(report["error"], Value::Null);
    ok(&["enable", s(&bob_db), "--keys", s(&bob)]);

    // Both write before they sync again.
    append(&db, &founder, "from the founder");
    append(&bob_db, &bob, "from bob");
    let founder_frontier = path("founder.frontier");
    ok(&["frontier", s(&db), s(&founder_frontier)]);
    let to_founder = path("to-founder.batch");
    ok(&[
        "export",
        s(&bob_db),
        "--frontier",
        s(&founder_frontier),
        s(&to_founder),
    ]);
    let out = ok(&["ingest", s(&db), "--keys", s(&founder), s(&to_founder)]);
    assert_eq!(field(&out.stdout, "added"), "2", "{}", out.stdout);
    let bob_frontier_2 = path("bob-2.frontier");
    ok(&["frontier", s(&bob_db), s(&bob_frontier_2)]);
    let to_bob_2 = path("to-bob-2.batch");
    ok(&[
        "export",
        s(&db),
        "--frontier",
        s(&bob_frontier_2),
        s(&to_bob_2),
    ]);
    let out = ok(&["ingest", s(&bob_db), "--keys", s(&bob), s(&to_bob_2)]);
    assert_eq!(field(&out.stdout, "added"), "1", "{}", out.stdout);

    let (ours, theirs) = (verified(&db), verified(&bob_db));
    assert_eq!(ours["events"], 6);
    assert_eq!(ours["digest"], theirs["digest"]);
    assert_eq!(ours["current_epoch"], theirs["current_epoch"]);
    assert_eq!(ours["enabled_members"], 2);
    let fingerprint = |db: &Path, keys: &Path| {
        field(
            &ok(&["secret", s(db), "--keys", s(keys)]).stdout,
            "fingerprint",
        )
    };
    assert_eq!(fingerprint(&db, &founder), fingerprint(&bob_db, &bob));

    // The same batch again adds nothing.
    let out = ok(&["ingest", s(&bob_db), "--keys", s(&bob), s(&to_bob_2)]);
    assert_eq!(field(&out.stdout, "added"), "0");
    assert!(
        field(&out.stdout, "known").starts_with("1 "),
        "{}",
        out.stdout
    );

    // Neither export nor join ever overwrites a file.
    let before = std::fs::read(&to_bob).unwrap();
    let out = could_not_run(&["export", s(&db), s(&to_bob)]);
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    assert!(std::fs::read(&to_bob).unwrap() == before);
    could_not_run(&["join", s(&bob_db), "--keys", s(&bob), s(&all)]);
    could_not_run(&["frontier", s(&db), s(&bob_frontier)]);
}

#[test]
fn export_refuses_an_empty_batch_when_the_peer_has_everything() {
    let dir = tempfile::tempdir().unwrap();
    let Sample { db, founder, .. } = sample(dir.path());
    let copy = dir.path().join("copy.redb");
    ok(&["backup", s(&db), s(&copy)]);
    let frontier = dir.path().join("copy.frontier");
    ok(&["frontier", s(&copy), s(&frontier)]);
    let out_file = dir.path().join("nothing.batch");
    // A refusal: exit 1, the reason on stderr, no file.
    let out = refused(&["export", s(&db), "--frontier", s(&frontier), s(&out_file)]);
    assert!(
        out.stderr.starts_with("error: nothing to send"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(!out_file.exists(), "an empty batch was written");

    // Once the file moves on, the same frontier gets exactly the new event.
    let later = append(&db, &founder, "new");
    ok(&["export", s(&db), "--frontier", s(&frontier), s(&out_file)]);
    let records = records_of(&out_file);
    assert_eq!(records.len(), 1);
    let mut ingested = Mesh::open(&copy, LocalKeys::load(&founder).unwrap()).unwrap();
    let batch = meshlog::Batch::from_bytes(&std::fs::read(&out_file).unwrap()).unwrap();
    assert_eq!(ingested.ingest(&batch).unwrap().added, 1);
    assert!(
        ingested
            .log()
            .any(|entry| entry.event.hash().to_string() == later)
    );

    // A file that is not a frontier: could not run, nothing written.
    let junk = dir.path().join("junk.frontier");
    std::fs::write(&junk, b"\xff\xff\xff").unwrap();
    let other = dir.path().join("other.batch");
    let out = could_not_run(&["export", s(&db), "--frontier", s(&junk), s(&other)]);
    assert!(out.stderr.contains("not a frontier"), "{}", out.stderr);
    assert!(!other.exists());
}

#[test]
fn join_refuses_a_batch_without_genesis_or_with_a_foreign_header_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let Sample {
        db, founder, bob, ..
    } = sample(dir.path());
    let group = group_of(&db);
    let all = path("all.batch");
    ok(&["export", s(&db), s(&all)]);
    let joined = path("joined.redb");
    let refused_join = |bytes: &[u8], name: &str| {
        let batch = path(name);
        std::fs::write(&batch, bytes).unwrap();
        let out = refused(&["join", s(&joined), "--keys", s(&bob), s(&batch), "--json"]);
        assert!(!joined.exists(), "{name}: a refused join left a file");
        let report = json(&out.stdout);
        assert_eq!(report["ok"], false, "{name}");
        assert_eq!(report["error"]["class"], "verification-failure", "{name}");
        report["error"].clone()
    };

    // An empty batch holds no genesis either (SPEC.md §7.3).
    let error = refused_join(&batch_bytes(&group, &[]), "empty.batch");
    assert_eq!(error["kind"], "no-genesis");
    // A batch of later events only, as an export against a frontier gives.
    let old_frontier = path("old.frontier");
    ok(&["frontier", s(&db), s(&old_frontier)]);
    append(&db, &founder, "later");
    let later = path("later.batch");
    ok(&["export", s(&db), "--frontier", s(&old_frontier), s(&later)]);
    let error = refused_join(&std::fs::read(&later).unwrap(), "later-copy.batch");
    assert_eq!(error["kind"], "no-genesis");
    // Every event, under another group's header.
    let mut other_group = group;
    other_group[0] ^= 0xff;
    let error = refused_join(
        &batch_bytes(&other_group, &records_of(&all)),
        "foreign.batch",
    );
    assert_eq!(error["kind"], "foreign-batch");
    assert_eq!(error["ours"], hex::encode(group));
    // Trailing bytes.
    let mut trailing = std::fs::read(&all).unwrap();
    trailing.extend_from_slice(b"garbage");
    let error = refused_join(&trailing, "trailing.batch");
    assert_eq!(error["kind"], "malformed-batch");
    // Text output: the reason on stderr.
    let out = refused(&["join", s(&joined), "--keys", s(&bob), s(&later)]);
    assert!(out.stderr.contains("genesis"), "{}", out.stderr);
    assert!(!joined.exists());

    // A missing batch file: could not run.
    could_not_run(&[
        "join",
        s(&joined),
        "--keys",
        s(&bob),
        s(&path("none.batch")),
    ]);
    // The whole export joins, in any order of its records.
    let mut records = records_of(&all);
    records.reverse();
    let shuffled = path("reversed.batch");
    std::fs::write(&shuffled, batch_bytes(&group, &records)).unwrap();
    let report = json(
        &ok(&[
            "join",
            s(&joined),
            "--keys",
            s(&bob),
            s(&shuffled),
            "--json",
        ])
        .stdout,
    );
    assert_eq!(report["events"], SAMPLE_EVENTS);
    assert_eq!(report["in_roster"], true);
    assert_eq!(report["role"], "member");
    assert_eq!(report["enabled"], true);
}

#[test]
fn ingest_refuses_bad_batches_whole_and_names_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let Sample { db, founder, .. } = sample(dir.path());
    let copy = path("copy.redb");
    ok(&["backup", s(&db), s(&copy)]);
    let frontier = path("copy.frontier");
    ok(&["frontier", s(&copy), s(&frontier)]);
    append(&db, &founder, "one");
    append(&db, &founder, "two");
    let good = path("good.batch");
    ok(&["export", s(&db), "--frontier", s(&frontier), s(&good)]);
    let records = records_of(&good);
    assert_eq!(records.len(), 2);
    let group = group_of(&db);
    let before = state(&copy);
    let refused_ingest = |bytes: &[u8], name: &str| {
        let batch = path(name);
        std::fs::write(&batch, bytes).unwrap();
        let out = refused(&[
            "ingest",
            s(&copy),
            "--keys",
            s(&founder),
            s(&batch),
            "--json",
        ]);
        assert_eq!(state(&copy), before, "{name} changed the file");
        let report = json(&out.stdout);
        assert_eq!(report["ok"], false, "{name}");
        assert_eq!(report["added"], 0, "{name}");
        report["error"].clone()
    };

    // The second record's signature, damaged: the whole batch is refused.
    let mut damaged = records.clone();
    damaged[1][10] ^= 0x01;
    let error = refused_ingest(&batch_bytes(&group, &damaged), "damaged.batch");
    assert_eq!(error["kind"], "rejected");
    assert_eq!(error["rule_id"], "V6");
    let (hash, seq) = {
        let mesh = Mesh::open_read_only(&db).unwrap();
        let entry = mesh.log().last().unwrap();
        (entry.event.hash().to_string(), entry.event.event().seq)
    };
    assert_eq!(error["hash"], hash);
    assert_eq!(error["author"], member_id(&founder));
    assert_eq!(error["seq"], seq);
    // The text report names the rule and the event too.
    let damaged_file = path("damaged.batch");
    let out = refused(&["ingest", s(&copy), "--keys", s(&founder), s(&damaged_file)]);
    assert!(field(&out.stderr, "rule") == "V6", "{}", out.stderr);
    assert_eq!(field(&out.stderr, "event"), hash);

    // The second event without the first: it waits for an event neither
    // the batch nor the file holds.
    let error = refused_ingest(&batch_bytes(&group, &records[1..]), "gap.batch");
    assert_eq!(error["kind"], "incomplete");
    // Another group's header.
    let mut other = group;
    other[31] ^= 1;
    let error = refused_ingest(&batch_bytes(&other, &records), "foreign.batch");
    assert_eq!(error["kind"], "foreign-batch");
    // Not a batch at all: the command could not run, and wrote nothing.
    std::fs::write(path("junk.batch"), b"hello").unwrap();
    let out = could_not_run(&[
        "ingest",
        s(&copy),
        "--keys",
        s(&founder),
        s(&path("junk.batch")),
        "--json",
    ]);
    assert_eq!(json(&out.stdout)["error"]["kind"], "not-a-batch");
    assert_eq!(state(&copy), before);

    // The good batch, in reverse order, is taken whole.
    let mut reversed = records.clone();
    reversed.reverse();
    std::fs::write(path("reversed.batch"), batch_bytes(&group, &reversed)).unwrap();
    let report = json(
        &ok(&[
            "ingest",
            s(&copy),
            "--keys",
            s(&founder),
            s(&path("reversed.batch")),
            "--json",
        ])
        .stdout,
    );
    assert_eq!(report["added"], 2);
    assert_eq!(verified(&copy)["digest"], verified(&db)["digest"]);
}

#[test]
fn concurrent_rotations_need_a_merge_and_ingest_merge_makes_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let (founder, alice, bob, carol) = (
        path("founder.keys"),
        path("alice.keys"),
        path("bob.keys"),
        path("carol.keys"),
    );
    new_keys(&founder);
    let alice_package = new_keys(&alice);
    let bob_package = new_keys(&bob);
    let carol_package = new_keys(&carol);
    let (db, alice_db) = (path("founder.redb"), path("alice.redb"));
    ok(&["create", s(&db), "--keys", s(&founder), "--name", "ops"]);
    ok(&["enable", s(&db), "--keys", s(&founder)]);
    ok(&[
        "add",
        s(&db),
        "--keys",
        s(&founder),
        "--member",
        &alice_package,
        "--role",
        "admin",
    ]);
    ok(&[
        "add",
        s(&db),
        "--keys",
        s(&founder),
        "--member",
        &bob_package,
    ]);
    let all = path("all.batch");
    ok(&["export", s(&db), s(&all)]);
    ok(&["join", s(&alice_db), "--keys", s(&alice), s(&all)]);
    ok(&["enable", s(&alice_db), "--keys", s(&alice)]);

    // Concurrently: the founder removes bob, alice adds carol.
    ok(&[
        "remove",
        s(&db),
        "--keys",
        s(&founder),
        "--member",
        &member_id(&bob),
    ]);
    ok(&[
        "add",
        s(&alice_db),
        "--keys",
        s(&alice),
        "--member",
        &carol_package,
    ]);

    // Alice takes the founder's removal first, without --merge: the report
    // says a merge is needed and who may make it.
    let alice_frontier = path("alice.frontier");
    ok(&["frontier", s(&alice_db), s(&alice_frontier)]);
    let to_alice = path("to-alice.batch");
    ok(&[
        "export",
        s(&db),
        "--frontier",
        s(&alice_frontier),
        s(&to_alice),
    ]);
    let out = ok(&["ingest", s(&alice_db), "--keys", s(&alice), s(&to_alice)]);
    assert!(
        field(&out.stdout, "merge").starts_with("needed"),
        "{}",
        out.stdout
    );
    assert!(field(&out.stdout, "epoch").starts_with("none: the mesh needs a merge"));
    let report = verified(&alice_db);
    assert_eq!(report["needs_merge"], true);
    assert_eq!(report["current_epoch"], Value::Null);
    assert_eq!(report["tips"].as_array().unwrap().len(), 2);
    // On a copy of alice's file, `meshlog merge` makes the merge: an admin
    // may, and the merge becomes current.
    let trial = path("alice-trial.redb");
    ok(&["backup", s(&alice_db), s(&trial)]);
    let out = ok(&["merge", s(&trial), "--keys", s(&alice)]);
    let made = field(&out.stdout, "event");
    assert_eq!(field(&out.stdout, "epoch"), format!("{made} (current)"));
    let merged = verified(&trial);
    assert_eq!(merged["needs_merge"], false);
    assert_eq!(merged["current_epoch"], made);
    assert_eq!(merged["tips"], serde_json::json!([made]));

    // The founder takes alice's rotation with --merge, and merges at once.
    let founder_frontier = path("founder.frontier");
    ok(&["frontier", s(&db), s(&founder_frontier)]);
    let to_founder = path("to-founder.batch");
    ok(&[
        "export",
        s(&alice_db),
        "--frontier",
        s(&founder_frontier),
        s(&to_founder),
    ]);
    let report = json(
        &ok(&[
            "ingest",
            s(&db),
            "--keys",
            s(&founder),
            s(&to_founder),
            "--merge",
            "--json",
        ])
        .stdout,
    );
    let merge = report["merged"]
        .as_str()
        .expect("a merge was made")
        .to_owned();
    assert_eq!(report["needs_merge"], false);
    assert_eq!(report["current_epoch"], merge);
    let out = ok(&["merge", s(&db), "--keys", s(&founder)]);
    assert!(out.stdout.contains("needs no merge"), "{}", out.stdout);

    // Alice takes the merge: both copies agree; removal and addition both stand.
    let alice_frontier_2 = path("alice-2.frontier");
    ok(&["frontier", s(&alice_db), s(&alice_frontier_2)]);
    let to_alice_2 = path("to-alice-2.batch");
    ok(&[
        "export",
        s(&db),
        "--frontier",
        s(&alice_frontier_2),
        s(&to_alice_2),
    ]);
    ok(&["ingest", s(&alice_db), "--keys", s(&alice), s(&to_alice_2)]);
    let (ours, theirs) = (verified(&db), verified(&alice_db));
    assert_eq!(ours["digest"], theirs["digest"]);
    assert_eq!(theirs["current_epoch"], merge);
    assert_eq!(theirs["members"], 3, "founder, alice, carol");
    let mesh = Mesh::open_read_only(&db).unwrap();
    let bob_id = LocalKeys::load(&bob).unwrap().member_id();
    let carol_id = LocalKeys::load(&carol).unwrap().member_id();
    assert!(mesh.roster().get(bob_id).is_none());
    assert!(mesh.roster().get(carol_id).is_some());
    let shown = json(&ok(&["show", s(&db), "--epoch", &merge, "--json"]).stdout);
    assert_eq!(shown["parents"].as_array().unwrap().len(), 2);
    assert_eq!(shown["current"], true);
    // Carol reads the merge's secret; bob does not.
    ok(&["secret", s(&db), "--keys", s(&carol), "--epoch", &merge]);
    refused(&["secret", s(&db), "--keys", s(&bob), "--epoch", &merge]);
}

#[test]
fn an_equivocation_is_kept_as_evidence_and_listed_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let Sample { db, founder, .. } = sample(dir.path());
    // Two copies of one feed: the founder signs a different event at the
    // same position of its feed on each, the second on a copy restored
    // from a backup, which it must say it means to.
    let copy = dir.path().join("copy.redb");
    ok(&["backup", s(&db), s(&copy)]);
    let ours = append(&db, &founder, "one history");
    // A second later, so that the branches' claimed times do not overlap.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mut args = vec![
        "append",
        s(&copy),
        "--keys",
        s(&founder),
        "--kind",
        "note",
        "--payload",
        "another history",
    ];
    let out = could_not_run(&args);
    assert!(
        out.stderr.contains("older than your feed"),
        "{}",
        out.stderr
    );
    args.push("--accept-restored-copy");
    let theirs = field(&ok(&args).stdout, "event");
    let frontier = dir.path().join("db.frontier");
    ok(&["frontier", s(&db), s(&frontier)]);
    let batch = dir.path().join("fork.batch");
    ok(&["export", s(&copy), "--frontier", s(&frontier), s(&batch)]);
    let out = ok(&["ingest", s(&db), "--keys", s(&founder), s(&batch)]);
    assert_eq!(field(&out.stdout, "added"), "1", "{}", out.stdout);

    // Both events are kept; verify passes and lists the pair.
    let report = verified(&db);
    assert_eq!(report["ok"], true);
    assert_eq!(report["events"], SAMPLE_EVENTS + 2);
    let evidence = report["equivocations"].as_array().unwrap();
    assert_eq!(evidence.len(), 1, "{report}");
    assert_eq!(evidence[0]["author"], member_id(&founder));
    assert_eq!(evidence[0]["seq"], 5);
    let mut expected = vec![ours.clone(), theirs.clone()];
    expected.sort();
    assert_eq!(evidence[0]["events"], serde_json::json!(expected));
    // The later branch begins after the other ends: an honest restore's shape.
    assert_eq!(evidence[0]["shape"], "restore", "{report}");
    assert_eq!(evidence[0]["later_branch"], theirs.as_str());
    let text = ok(&["verify", s(&db)]).stdout;
    assert!(text.contains("consistent with an honest restore"), "{text}");
    assert!(
        field(&text, "WARNING").starts_with("EQUIVOCATION: 1 time"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "seq 5: {} {}:",
            &expected[0][..8],
            &expected[1][..8]
        )),
        "{text}"
    );
    assert!(field(&text, "result").starts_with("OK"), "{text}");
}

#[test]
fn a_write_with_another_members_keys_is_refused_unless_the_copy_is_shared() {
    let dir = tempfile::tempdir().unwrap();
    let Sample {
        db, founder, bob, ..
    } = sample(dir.path());
    let before = state(&db);
    let mut args = vec![
        "append",
        s(&db),
        "--keys",
        s(&bob),
        "--kind",
        "note",
        "--payload",
        "bob's, in the founder's copy",
    ];
    let out = could_not_run(&args);
    assert!(
        out.stderr
            .contains(&format!("belongs to member {}", member_id(&founder))),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("use its key file, or pass --shared-copy"),
        "{}",
        out.stderr
    );
    assert_eq!(state(&db), before, "a refused write wrote");
    // Said to be shared, the copy takes bob's write.
    args.push("--shared-copy");
    ok(&args);
    assert_eq!(state(&db).1, before.1 + 1);
}

#[test]
fn a_write_on_a_copy_restored_from_an_older_backup_is_refused_until_it_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let Sample { db, founder, .. } = sample(dir.path());
    append(&db, &founder, "before the backup");
    let old = path("restored.redb");
    ok(&["backup", s(&db), s(&old)]);
    let newest = append(&db, &founder, "after the backup");

    // The founder's laptop is restored from the backup, and it writes.
    let before = state(&old);
    let out = could_not_run(&[
        "append",
        s(&old),
        "--keys",
        s(&founder),
        "--kind",
        "note",
        "--payload",
        "would fork",
    ]);
    for expected in [
        "this copy is older than your feed",
        newest.as_str(),
        "Sync from a peer first",
        "--accept-restored-copy",
    ] {
        assert!(out.stderr.contains(expected), "{expected}: {}", out.stderr);
    }
    assert_eq!(state(&old), before, "a refused write wrote");

    // A sync from a peer brings its feed back; then it writes, and its
    // feed does not fork.
    ok(&["frontier", s(&old), s(&path("old.frontier"))]);
    ok(&[
        "export",
        s(&db),
        "--frontier",
        s(&path("old.frontier")),
        s(&path("back.batch")),
    ]);
    ok(&[
        "ingest",
        s(&old),
        "--keys",
        s(&founder),
        s(&path("back.batch")),
    ]);
    append(&old, &founder, "after the sync");
    assert_eq!(verified(&old)["equivocations"], serde_json::json!([]));
}

#[test]
fn verify_tells_two_copies_written_at_once_from_an_honest_restore() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.redb"), dir.path().join("b.redb"));
    let keys = || LocalKeys::from_secret_bytes(&[1; 32], &[2; 32]);
    let at = |time: u64| MeshOptions::new().clock(move || time);
    let mut mesh = at(1_000).create(&a, keys(), "forks").unwrap();
    mesh.set_enabled(true).unwrap();
    mesh.close().unwrap();
    Mesh::open_read_only(&a).unwrap().backup(&b).unwrap();
    // The member writes on both copies in turn: the branches' times
    // interleave, as no restore makes them.
    for (path, time) in [(&a, 1_100), (&b, 1_200), (&a, 1_300)] {
        let mut mesh = at(time).open(path, keys()).unwrap();
        mesh.append_app("note", &time.to_be_bytes()).unwrap();
        mesh.close().unwrap();
    }
    let mut mesh = Mesh::open(&a, keys()).unwrap();
    let theirs = Mesh::open_read_only(&b).unwrap();
    // Everything b holds: a frontier does not describe a fork yet (issue
    // 23, item 3).
    mesh.ingest(&theirs.export_all()).unwrap();
    mesh.close().unwrap();

    let report = verified(&a);
    let evidence = report["equivocations"].as_array().unwrap();
    assert_eq!(evidence.len(), 1, "{report}");
    assert_eq!(evidence[0]["shape"], "overlapping", "{report}");
    assert_eq!(evidence[0]["later_branch"], Value::Null);
    let text = ok(&["verify", s(&a)]).stdout;
    assert!(text.contains("overlapping times"), "{text}");
    assert!(
        !text.contains("consistent with an honest restore"),
        "{text}"
    );
}

#[test]
fn a_live_mesh_can_be_read_and_backed_up_but_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let Sample { db, founder, .. } = sample(dir.path());
    let mut held = Mesh::open(&db, LocalKeys::load(&founder).unwrap()).unwrap();
    let event = held.append_app("note", b"while audited").unwrap();

    let report = verified(&db);
    assert_eq!(report["events"], SAMPLE_EVENTS + 1);
    assert_eq!(report["digest"], held.digest().to_string());
    for command in ["log", "show"] {
        ok(&[command, s(&db)]);
    }
    let copy = dir.path().join("copy.redb");
    ok(&["backup", s(&db), s(&copy)]);
    assert_eq!(verified(&copy)["digest"], held.digest().to_string());
    assert!(hashes(&copy).contains(&event.to_string()));

    // Commands that write are refused while another process writes.
    for args in [
        &["enable", s(&db), "--keys", s(&founder)][..],
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
    ] {
        let out = could_not_run(args);
        assert!(
            out.stderr.contains("is open for writing elsewhere"),
            "{args:?}: {}",
            out.stderr
        );
    }
    drop(held);
    assert_eq!(
        verified(&db)["events"],
        SAMPLE_EVENTS + 1,
        "a refused writer wrote"
    );
    ok(&["enable", s(&db), "--keys", s(&founder)]);
}

#[test]
fn a_file_not_closed_cleanly_is_verified_in_a_private_copy() {
    let dir = tempfile::tempdir().unwrap();
    let Sample { db, founder, .. } = sample(dir.path());
    let copy = dir.path().join("live-copy.redb");
    {
        // A plain copy of a file that is open for writing, and written to,
        // looks like a crash. (Until its first write, an open changes no
        // byte of the file.)
        let mut held = Mesh::open(&db, LocalKeys::load(&founder).unwrap()).unwrap();
        held.append_app("note", b"while open").unwrap();
        held.checkpoint().unwrap();
        std::fs::copy(&db, &copy).unwrap();
    }
    let before = std::fs::read(&copy).unwrap();
    let report = verified(&copy);
    assert_eq!(report["verified_private_copy"], true, "{report}");
    assert_eq!(report["events"], SAMPLE_EVENTS + 1);
    let text = ok(&["verify", s(&copy)]).stdout;
    assert!(field(&text, "private").starts_with("yes"), "{text}");
    assert!(std::fs::read(&copy).unwrap() == before);
}

#[test]
fn events_a_live_writer_holds_in_its_journal_are_verified_too() {
    let dir = tempfile::tempdir().unwrap();
    let Sample { db, founder, .. } = sample(dir.path());
    let mut live = Mesh::open(&db, LocalKeys::load(&founder).unwrap()).unwrap();
    live.append_app("note", b"in the journal").unwrap();
    live.append_app("note", b"and this").unwrap();
    // Another process audits the live file: the two notes are in the
    // journal beside it, not yet in the file, and count all the same (the
    // second's signature is in the seal after it, SPEC.md §9.6).
    let report = verified(&db);
    assert_eq!(report["events"], SAMPLE_EVENTS + 2, "{report}");
    assert_eq!(report["journaled"], 2, "{report}");
    assert_eq!(report["awaiting_signature"], 0, "{report}");
    assert_eq!(report["digest"], live.digest().to_string());
    let text = ok(&["verify", s(&db)]).stdout;
    assert!(field(&text, "journal").starts_with("2 events"), "{text}");

    // A power cut before the seal reached the disk, read from the SPEC:
    // the seal is the frame whose body is 96 bytes (§9.6).
    let crashed = dir.path().join("crashed.redb");
    std::fs::copy(&db, &crashed).unwrap();
    let journal = dir.path().join("crashed.redb-journal");
    let mut bytes = std::fs::read(format!("{}-journal", db.display())).unwrap();
    let mut at = 72;
    loop {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if len == 96 {
            bytes[at..at + 4 + 8 + len + 16].fill(0);
            break;
        }
        at += 4 + 8 + len + 16;
    }
    std::fs::write(&journal, bytes).unwrap();
    let report = verified(&crashed);
    assert_eq!(report["events"], SAMPLE_EVENTS + 1, "{report}");
    assert_eq!(report["journaled"], 1, "{report}");
    assert_eq!(report["awaiting_signature"], 1, "{report}");
    let text = ok(&["verify", s(&crashed)]).stdout;
    assert!(
        field(&text, "unsigned").starts_with("1 more event"),
        "{text}"
    );
    live.close().unwrap();
    let report = verified(&db);
    assert_eq!(report["journaled"], 0, "the close wrote them into the file");
    assert_eq!(report["events"], SAMPLE_EVENTS + 2);
}

/// The offsets of the frames of the journal `bytes`, read from SPEC.md
/// §9.6: a 72-byte header, then `len (4) || salt (8) || body || check (16)`.
fn journal_frames(bytes: &[u8]) -> Vec<usize> {
    let salt = &bytes[48..56];
    let mut frames = Vec::new();
    let mut at = 72;
    while bytes.get(at + 4..at + 12) == Some(salt) {
        frames.push(at);
        at += 4 + 8 + u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize + 16;
    }
    frames
}

#[test]
fn verify_reports_what_a_damaged_journal_held_and_a_writer_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let Sample { db, founder, .. } = sample(dir.path());
    let mut live = Mesh::open(&db, LocalKeys::load(&founder).unwrap()).unwrap();
    for note in ["one", "two", "three"] {
        live.append_app("note", note.as_bytes()).unwrap();
    }
    let crashed = dir.path().join("crashed.redb");
    std::fs::copy(&db, &crashed).unwrap();
    let mut bytes = std::fs::read(format!("{}-journal", db.display())).unwrap();
    drop(live);
    // A flip in the second frame's event: the first awaits its signature,
    // which that frame held, and the second and third are lost.
    let second = journal_frames(&bytes)[1];
    bytes[second + 12 + 96 + 5] ^= 1;
    let journal = dir.path().join("crashed.redb-journal");
    std::fs::write(&journal, &bytes).unwrap();
    let report = verified(&crashed);
    assert_eq!(report["journaled"], 0, "{report}");
    assert_eq!(report["awaiting_signature"], 1, "{report}");
    assert_eq!(report["journal_unreplayed"], 2, "{report}");
    assert_eq!(report["journal_unreplayed_offset"], second, "{report}");
    let text = ok(&["verify", s(&crashed)]).stdout;
    assert!(
        field(&text, "unreplayed").starts_with(&format!(
            "2 events the journal held could not be replayed, from byte {second}"
        )),
        "{text}"
    );
    // A writer replays what it can, and keeps the journal under another
    // name before it starts a new one, saying so.
    let out = ok(&[
        "append",
        s(&crashed),
        "--keys",
        s(&founder),
        "--kind",
        "note",
        "--payload",
        "after",
    ]);
    let aside = dir.path().join("crashed.redb-journal.unreplayed");
    assert!(out.stderr.contains(s(&aside)), "{}", out.stderr);
    assert_eq!(std::fs::read(&aside).unwrap(), bytes);
    let report = verified(&crashed);
    assert_eq!(report["journal_unreplayed"], 0, "{report}");
    assert_eq!(report["events"], SAMPLE_EVENTS + 2, "{report}");
}

#[test]
fn a_journal_of_another_copy_beside_the_file_does_not_block_an_audit() {
    let dir = tempfile::tempdir().unwrap();
    let Sample {
        db, founder, bob, ..
    } = sample(dir.path());
    let bobs = dir.path().join("bobs.redb");
    std::fs::copy(&db, &bobs).unwrap();
    let load = |path: &Path| LocalKeys::load(path).unwrap();
    MeshOptions::new()
        .shared_copy(true)
        .open(&bobs, load(&bob))
        .unwrap()
        .append_app("note", b"in bob's file")
        .unwrap();
    let mut live = MeshOptions::new()
        .shared_copy(true)
        .open(&bobs, load(&bob))
        .unwrap();
    live.append_app("note", b"in bob's journal").unwrap();
    // The founder's file holds more events than bob's, but not bob's.
    let mut mesh = Mesh::open(&db, load(&founder)).unwrap();
    for note in ["one", "two"] {
        mesh.append_app("note", note.as_bytes()).unwrap();
    }
    mesh.close().unwrap();
    std::fs::copy(
        format!("{}-journal", bobs.display()),
        format!("{}-journal", db.display()),
    )
    .unwrap();
    let report = verified(&db);
    assert_eq!(report["events"], SAMPLE_EVENTS + 2, "{report}");
    assert_eq!(report["journal_unreplayed"], 1, "{report}");
    let out = ok(&["log", s(&db)]);
    assert!(
        out.stderr.contains("could not be replayed"),
        "{}",
        out.stderr
    );
}

/// A file cut short is damaged data (exit 1) with one message, whether a
/// command opens it to audit or to write (SPEC.md §12.1).
#[test]
fn a_truncated_file_gets_one_answer_from_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let Sample { db, founder, .. } = sample(dir.path());
    let bytes = std::fs::read(&db).unwrap();
    std::fs::write(&db, &bytes[..bytes.len() / 2]).unwrap();
    let report = json(&refused(&["verify", s(&db), "--json"]).stdout);
    assert_eq!(
        report["failure"]["class"], "verification-failure",
        "{report}"
    );
    assert_eq!(report["failure"]["kind"], "truncated", "{report}");
    let message = report["failure"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("is truncated"), "{message}");
    let merge = refused(&["merge", s(&db), "--keys", s(&founder)]);
    assert!(merge.stderr.contains(&message), "{}", merge.stderr);
    let log = refused(&["log", s(&db)]);
    assert!(log.stderr.contains(&message), "{}", log.stderr);
}

#[test]
fn demo_builds_two_copies_that_converge_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("demo");
    let out = ok(&["demo", s(&target)]);
    assert!(out.stdout.contains("result     OK"), "{}", out.stdout);
    assert!(out.stdout.contains("the same digest"), "{}", out.stdout);
    assert!(
        out.stdout.contains("Who can read which epoch"),
        "{}",
        out.stdout
    );
    let founder_db = target.join("founder.redb");
    let alice_db = target.join("alice.redb");
    assert!(
        out.stdout
            .contains(&format!("meshlog log {}", founder_db.display()))
    );

    let (ours, theirs) = (verified(&founder_db), verified(&alice_db));
    assert_eq!(ours["digest"], theirs["digest"]);
    assert_eq!(ours["needs_merge"], false);
    assert_eq!(ours["members"], 4, "founder, alice, bob, dave");
    let shown = json(&ok(&["show", s(&founder_db), "--json"]).stdout);
    let epochs = shown["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 5, "genesis, team, removal, addition, merge");
    let team = epochs[1]["hash"].as_str().unwrap();
    let current = shown["current_epoch"].as_str().unwrap();
    // Carol was removed: her keys open the team's epoch, not the current one.
    let carol = target.join("carol.keys");
    ok(&[
        "secret",
        s(&founder_db),
        "--keys",
        s(&carol),
        "--epoch",
        team,
    ]);
    refused(&[
        "secret",
        s(&founder_db),
        "--keys",
        s(&carol),
        "--epoch",
        current,
    ]);
    ok(&[
        "secret",
        s(&founder_db),
        "--keys",
        s(&target.join("dave.keys")),
    ]);

    let again = could_not_run(&["demo", s(&target)]);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    let temp = ok(&["demo"]);
    assert!(temp.stdout.contains("deleted when this command exits"));
}

/// The README's "Two peers from a shell" walk-through runs as written: bob
/// joins, both write while apart (bob enables himself, the founder posts a
/// note), each takes what its frontier lacked from the other, and both end
/// with the same digest.
#[cfg(unix)]
#[test]
fn readme_two_peers_script_converges() {
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
    // The walk-through is the v3 one: a concurrent write on each side.
    for needle in [
        "meshlog frontier",
        "--frontier",
        "meshlog append",
        "meshlog enable bob.redb",
    ] {
        assert!(
            script.contains(needle),
            "the script lacks {needle}:\n{script}"
        );
    }
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
    // The two digest lines, the founder's then bob's: equal.
    let tail: Vec<&str> = stdout.lines().rev().take(2).collect();
    assert_eq!(tail.len(), 2, "{stdout}");
    assert!(tail[0].starts_with("digest     "), "{stdout}");
    assert_eq!(tail[0], tail[1], "{stdout}");
    // Each side took exactly the other's one new event.
    assert_eq!(stdout.matches("added      1\n").count(), 2, "{stdout}");
    // And the copies verify to the same digest once more, from here.
    let (founder, bob) = (
        verified(&dir.path().join("founder.redb")),
        verified(&dir.path().join("bob.redb")),
    );
    assert_eq!(founder["digest"], bob["digest"]);
    assert_eq!(founder["events"], 5);
    assert_eq!(founder["enabled_members"], 2);
}

#[test]
fn seal_and_open_carry_a_message_between_two_copies() {
    let dir = tempfile::tempdir().unwrap();
    let Sample {
        db,
        founder,
        alice,
        bob,
    } = sample(dir.path());
    // Bob reads from his own copy of the mesh.
    let bobs_copy = dir.path().join("bob.redb");
    ok(&["backup", s(&db), s(&bobs_copy)]);
    let plaintext = dir.path().join("plan.txt");
    std::fs::write(&plaintext, "deploy at five").unwrap();
    let sealed = dir.path().join("plan.sealed");
    let out = ok(&[
        "seal",
        s(&db),
        "--keys",
        s(&alice),
        s(&plaintext),
        "-o",
        s(&sealed),
        "--ad",
        "ops",
    ]);
    assert!(out.stderr.contains("sealed 14 bytes"), "{}", out.stderr);
    let bytes = std::fs::read(&sealed).unwrap();
    assert!(bytes.starts_with(&meshlog::SEALED_MAGIC));
    assert!(
        !bytes.windows(14).any(|window| window == b"deploy at five"),
        "the plaintext is not in the sealed file"
    );

    let opened = json(
        &ok(&[
            "open",
            s(&bobs_copy),
            "--keys",
            s(&bob),
            s(&sealed),
            "--json",
        ])
        .stdout,
    );
    assert_eq!(opened["sender"], member_id(&alice));
    assert_eq!(opened["text"], "deploy at five");
    assert_eq!(opened["plaintext_hex"], hex::encode("deploy at five"));
    assert_eq!(opened["associated_data"], "ops");
    assert_eq!(opened["bytes"], 14);
    assert_eq!(opened["epoch_applied"], true);
    let current = Mesh::open_read_only(&db).unwrap().current_epoch().unwrap();
    assert_eq!(opened["epoch"], current.to_string());
    // Without --json: the plaintext alone on stdout, the sender on stderr;
    // the same message id from the other copy.
    let out = ok(&["open", s(&db), "--keys", s(&founder), s(&sealed)]);
    assert_eq!(out.stdout, "deploy at five");
    assert!(out.stderr.contains(&member_id(&alice)), "{}", out.stderr);
    let again = json(&ok(&["open", s(&db), "--keys", s(&founder), s(&sealed), "--json"]).stdout);
    assert_eq!(again["id"], opened["id"]);

    // Through stdin and stdout, unpadded: the overhead and nothing more.
    let piped = meshlog()
        .args(["seal", s(&db), "--keys", s(&bob), "--padding", "none"])
        .write_stdin("from stdin")
        .output()
        .unwrap();
    assert!(
        piped.status.success(),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
    assert_eq!(
        piped.stdout.len(),
        meshlog::SEALED_OVERHEAD + "from stdin".len()
    );
    let out = meshlog()
        .args(["open", s(&bobs_copy), "--keys", s(&alice)])
        .write_stdin(piped.stdout)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"from stdin");

    // An altered message: exit 1, and no byte of plaintext.
    let mut altered_bytes = bytes.clone();
    *altered_bytes.last_mut().unwrap() ^= 1;
    let altered = dir.path().join("altered.sealed");
    std::fs::write(&altered, &altered_bytes).unwrap();
    let out = refused(&["open", s(&db), "--keys", s(&bob), s(&altered)]);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("does not decrypt"), "{}", out.stderr);
    // Not a sealed message at all: exit 2.
    could_not_run(&["open", s(&db), "--keys", s(&bob), s(&plaintext)]);

    // Bob removed: a message sealed after does not open for him (exit 1);
    // the one sealed while he was in still does.
    let bob_id = member_id(&bob);
    ok(&["remove", s(&db), "--keys", s(&founder), "--member", &bob_id]);
    let after = dir.path().join("after.sealed");
    ok(&[
        "seal",
        s(&db),
        "--keys",
        s(&founder),
        s(&plaintext),
        "-o",
        s(&after),
    ]);
    let out = refused(&["open", s(&db), "--keys", s(&bob), s(&after)]);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("not in the roster"), "{}", out.stderr);
    assert_eq!(
        ok(&["open", s(&db), "--keys", s(&bob), s(&sealed)]).stdout,
        "deploy at five"
    );
    // His old copy does not hold the new epoch: sync first (exit 2).
    let out = could_not_run(&["open", s(&bobs_copy), "--keys", s(&alice), s(&after)]);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

#[test]
fn a_sealed_append_shows_as_sealed_in_the_log_and_opens_with_a_members_keys() {
    let dir = tempfile::tempdir().unwrap();
    let Sample {
        db,
        founder,
        alice,
        bob,
    } = sample(dir.path());
    let secret = "rotate the db password";
    let out = ok(&[
        "append",
        s(&db),
        "--keys",
        s(&alice),
        "--kind",
        "secret-note",
        "--sealed",
        "--shared-copy",
        "--payload",
        secret,
    ]);
    assert!(out.stdout.contains("sealed"), "{}", out.stdout);
    let note = field(&out.stdout, "event");
    /// The line of `event` in a text log.
    fn line_of(text: &str, event: &str) -> String {
        text.lines()
            .find(|line| line.starts_with(&event[..8]))
            .unwrap_or_else(|| panic!("no line for {event} in:\n{text}"))
            .to_owned()
    }

    // Without keys: the kind and the size, not the plaintext.
    let text = ok(&["log", s(&db)]).stdout;
    let line = line_of(&text, &note);
    assert!(line.contains("  sealed  "), "{line}");
    assert!(line.contains("\"secret-note\", sealed"), "{line}");
    assert!(!text.contains(secret), "{text}");
    let lines: Vec<Value> = ok(&["log", s(&db), "--json"])
        .stdout
        .lines()
        .map(json)
        .collect();
    let entry = lines
        .iter()
        .find(|line| line["hash"] == note.as_str())
        .unwrap();
    assert_eq!(entry["kind"], "sealed");
    assert_eq!(entry["app_kind"], "secret-note");
    assert!(entry["sealed_bytes"].as_u64().unwrap() > secret.len() as u64);
    assert!(entry["opened"].is_null(), "{entry}");

    // With a member's keys: opened, its sender the author.
    let text = ok(&["log", s(&db), "--keys", s(&founder)]).stdout;
    let line = line_of(&text, &note);
    assert!(line.contains(&format!("opened {secret:?}")), "{line}");
    let lines: Vec<Value> = ok(&["log", s(&db), "--json", "--keys", s(&founder)])
        .stdout
        .lines()
        .map(json)
        .collect();
    let entry = lines
        .iter()
        .find(|line| line["hash"] == note.as_str())
        .unwrap();
    assert_eq!(entry["opened"]["sender"], member_id(&alice));
    assert_eq!(entry["opened"]["text"], secret);
    assert_eq!(entry["opened"]["associated_data"], "secret-note");

    // Bob removed, then another sealed note: his keys open the first, not
    // the second; the log still lists both and exits 0.
    let bob_id = member_id(&bob);
    ok(&["remove", s(&db), "--keys", s(&founder), "--member", &bob_id]);
    let later = append_sealed(&db, &alice, "after bob left");
    let text = ok(&["log", s(&db), "--keys", s(&bob)]).stdout;
    assert!(
        line_of(&text, &note).contains(&format!("opened {secret:?}")),
        "{text}"
    );
    let line = line_of(&text, &later);
    assert!(line.contains("does not open"), "{line}");
    assert!(!line.contains("after bob left"), "{line}");
    let lines: Vec<Value> = ok(&["log", s(&db), "--json", "--keys", s(&bob)])
        .stdout
        .lines()
        .map(json)
        .collect();
    let entry = lines
        .iter()
        .find(|line| line["hash"] == later.as_str())
        .unwrap();
    assert!(entry["opened"].is_null(), "{entry}");
    assert!(
        entry["open_error"]
            .as_str()
            .is_some_and(|error| error.contains("not in the roster")),
        "{entry}"
    );
    // Auditing needs no keys: the file verifies with its sealed events.
    assert_eq!(verified(&db)["events"], SAMPLE_EVENTS + 3);
}

/// `meshlog append --sealed`, which must succeed; returns the event's hash.
/// The sample's file is shared by its members.
fn append_sealed(db: &Path, keys: &Path, payload: &str) -> String {
    let out = ok(&[
        "append",
        s(db),
        "--keys",
        s(keys),
        "--kind",
        "note",
        "--sealed",
        "--shared-copy",
        "--payload",
        payload,
    ]);
    field(&out.stdout, "event")
}

/// Runs the binary with `stdout` as its standard output; returns its exit
/// code and standard error.
fn run_into(args: &[&str], stdout: std::process::Stdio) -> (i32, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_meshlog"))
        .args(args)
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run meshlog");
    (
        output.status.code().expect("exit code, not a signal"),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Standard output that cannot be written: a full disk exits 2 with the
/// reason, and a pipe whose reader left (`meshlog show DB | head`) ends
/// the output quietly with the command's own exit code; neither panics.
#[test]
fn output_that_cannot_be_written_exits_2_and_a_closed_pipe_keeps_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let Sample { db, founder, .. } = sample(dir.path());
    let commands: Vec<Vec<&str>> = vec![
        vec!["verify", s(&db)],
        vec!["verify", s(&db), "--json"],
        vec!["show", s(&db)],
        vec!["show", s(&db), "--json"],
        vec!["log", s(&db)],
        vec!["keys", "show", s(&founder)],
        vec!["keys", "show", s(&founder), "--public"],
        vec!["secret", s(&db), "--keys", s(&founder)],
    ];
    for args in &commands {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let (code, stderr) = run_into(args, full.into());
        assert_eq!(code, 2, "{args:?} into /dev/full:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}:\n{stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains("No space left on device"),
            "{args:?}:\n{stderr}"
        );

        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let (code, stderr) = run_into(args, writer.into());
        assert_eq!(code, 0, "{args:?} into a closed pipe:\n{stderr}");
        assert!(stderr.is_empty(), "{args:?}:\n{stderr}");
    }
    // A failed verification still exits 1 when nobody reads its report.
    tamper_record(&db, 3, |record| record[10] ^= 0x01);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let (code, stderr) = run_into(&["verify", s(&db)], writer.into());
    assert_eq!(code, 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A change that would be void is refused with the rule of SPEC.md §5.3
/// that voids it and its real reason, not a guess.
#[test]
fn a_void_change_is_refused_naming_its_real_reason() {
    let dir = tempfile::tempdir().unwrap();
    let Sample {
        db,
        founder,
        alice,
        bob,
    } = sample(dir.path());
    let carol = dir.path().join("carol.keys");
    let carol_package = new_keys(&carol);
    let bob_package = ok(&["keys", "show", s(&bob), "--public"])
        .stdout
        .trim()
        .to_owned();
    let void = |args: &[&str], rule: &str, reason: &str| {
        let before = state(&db);
        let out = refused(args);
        assert_eq!(state(&db), before, "{args:?} changed the file");
        assert!(out.stderr.contains(reason), "{args:?}:\n{}", out.stderr);
        assert_eq!(
            field(&out.stderr, "rule"),
            rule,
            "{args:?}:\n{}",
            out.stderr
        );
        out.stderr
    };
    let f = s(&founder);
    let not_permitted = "role does not permit";

    let text = void(
        &["add", s(&db), "--keys", f, "--member", &bob_package],
        "K5",
        "in the roster already",
    );
    assert!(!text.contains(not_permitted), "{text}");
    let text = void(
        &[
            "remove",
            s(&db),
            "--keys",
            f,
            "--member",
            &member_id(&carol),
        ],
        "K5",
        "not in the roster",
    );
    assert!(!text.contains(not_permitted), "{text}");
    ok(&["remove", s(&db), "--keys", f, "--member", &member_id(&bob)]);
    void(
        &["remove", s(&db), "--keys", f, "--member", &member_id(&bob)],
        "K5",
        "not in the roster",
    );
    let text = void(
        &[
            "role",
            s(&db),
            "--keys",
            f,
            "--member",
            &member_id(&alice),
            "--role",
            "admin",
        ],
        "K5",
        "has that role already",
    );
    assert!(!text.contains(not_permitted), "{text}");
    void(
        &[
            "role",
            s(&db),
            "--keys",
            f,
            "--member",
            &member_id(&founder),
            "--role",
            "member",
        ],
        "K2",
        "its author's own entry",
    );
    void(
        &[
            "remove",
            s(&db),
            "--keys",
            s(&alice),
            "--shared-copy",
            "--member",
            &member_id(&founder),
        ],
        "K4",
        "is an owner",
    );
    // An admin may not touch another admin's entry.
    ok(&[
        "add",
        s(&db),
        "--keys",
        f,
        "--member",
        &carol_package,
        "--role",
        "admin",
    ]);
    void(
        &[
            "remove",
            s(&db),
            "--keys",
            s(&alice),
            "--shared-copy",
            "--member",
            &member_id(&carol),
        ],
        "K5",
        not_permitted,
    );
}

/// Enabling a member that is enabled (and disabling one that is disabled)
/// writes nothing and says so.
#[test]
fn enable_and_disable_when_already_so_write_nothing_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let Sample { db, founder, .. } = sample(dir.path());
    let before = state(&db);
    let out = ok(&["enable", s(&db), "--keys", s(&founder)]);
    assert!(
        field(&out.stdout, "done").contains("already enabled"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("nothing was written"), "{}", out.stdout);
    assert_eq!(state(&db), before);

    ok(&["disable", s(&db), "--keys", s(&founder)]);
    let before = state(&db);
    let out = ok(&["disable", s(&db), "--keys", s(&founder)]);
    assert!(
        field(&out.stdout, "done").contains("already disabled"),
        "{}",
        out.stdout
    );
    assert_eq!(state(&db), before);
    // And the change itself still goes through.
    ok(&["enable", s(&db), "--keys", s(&founder)]);
    assert_eq!(state(&db).1, before.1 + 1);
}

/// A key-file argument that is no key file at all is named so, whatever
/// its permissions: `chmod 600` is advice for a key file only.
#[test]
fn a_key_file_argument_of_the_wrong_kind_is_named_before_its_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let Sample { db, .. } = sample(dir.path());
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello\n").unwrap();
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    for wrong in [&db, &text, &folder] {
        for args in [
            vec!["keys", "show", s(wrong)],
            vec![
                "append",
                s(&db),
                "--keys",
                s(wrong),
                "--kind",
                "k",
                "--payload",
                "x",
            ],
        ] {
            let out = could_not_run(&args);
            assert!(
                out.stderr.contains("not a meshlog key file"),
                "{args:?}:\n{}",
                out.stderr
            );
            assert!(!out.stderr.contains("chmod"), "{args:?}:\n{}", out.stderr);
        }
    }
}

/// A file of the wrong kind where a meshlog file, batch, frontier, sealed
/// message or key file is expected is one mistake, with one class: the
/// command could not run (exit 2), from every command.
#[test]
fn a_file_of_the_wrong_kind_exits_2_from_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let Sample {
        db, founder, bob, ..
    } = sample(dir.path());
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello\n").unwrap();
    let all = dir.path().join("all.batch");
    ok(&["export", s(&db), s(&all)]);
    let mut version_99 = b"mlbatch\0".to_vec();
    version_99.push(99);
    version_99.extend_from_slice(&[0; 33]);
    let newer = dir.path().join("newer.batch");
    std::fs::write(&newer, &version_99).unwrap();
    let joined = dir.path().join("joined.redb");
    for wrong in [&db, &text, &newer] {
        for args in [
            vec!["ingest", s(&db), "--keys", s(&founder), s(wrong)],
            vec!["join", s(&joined), "--keys", s(&bob), s(wrong)],
            vec!["export", s(&db), "--frontier", s(wrong), s(&joined)],
            vec!["verify", s(&db), "--expect", s(wrong)],
            vec!["open", s(&db), "--keys", s(&founder), s(wrong)],
        ] {
            could_not_run(&args);
        }
        could_not_run(&["verify", s(&text)]);
        assert!(!joined.exists());
    }
    let out = could_not_run(&["ingest", s(&db), "--keys", s(&founder), s(&text), "--json"]);
    let report = json(&out.stdout);
    assert_eq!(report["error"]["class"], "could-not-run");
    assert_eq!(report["error"]["kind"], "not-a-batch");
    let out = could_not_run(&["ingest", s(&db), "--keys", s(&founder), s(&newer), "--json"]);
    assert_eq!(json(&out.stdout)["error"]["kind"], "unsupported-batch");
}

/// The bytes and the modification time of a file and of its journal.
fn untouched(db: &Path) -> Vec<(Vec<u8>, std::time::SystemTime)> {
    let journal = PathBuf::from(format!("{}-journal", db.display()));
    [db.to_owned(), journal]
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).unwrap();
            let modified = std::fs::metadata(path).unwrap().modified().unwrap();
            (bytes, modified)
        })
        .collect()
}

/// "Nothing was written" is literally true: a refused write, a write with
/// a bad argument, and one with nothing to do leave every byte of the file
/// and of its journal as they were, and their modification times too.
#[test]
fn refused_writes_leave_every_byte_and_time_of_the_file_and_journal() {
    let dir = tempfile::tempdir().unwrap();
    let Sample {
        db,
        founder,
        alice,
        bob,
    } = sample(dir.path());
    let carol = dir.path().join("carol.keys");
    let carol_package = new_keys(&carol);
    let bob_package = ok(&["keys", "show", s(&bob), "--public"])
        .stdout
        .trim()
        .to_owned();
    // Times in the past, so that a write now would show.
    let past = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    for path in [
        db.clone(),
        PathBuf::from(format!("{}-journal", db.display())),
    ] {
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(past)
            .unwrap();
    }
    let before = untouched(&db);
    assert!(before.iter().all(|(_, modified)| *modified == past));
    let f = s(&founder);
    for (code, args) in [
        // Bad arguments, found once the file is open.
        (2, vec!["remove", s(&db), "--keys", f, "--member", "zz"]),
        (
            2,
            vec![
                "role",
                s(&db),
                "--keys",
                f,
                "--member",
                "00000000",
                "--role",
                "admin",
            ],
        ),
        // Refused by the rules.
        (
            1,
            vec![
                "add",
                s(&db),
                "--keys",
                s(&bob),
                "--shared-copy",
                "--member",
                &carol_package,
            ],
        ),
        (
            1,
            vec!["add", s(&db), "--keys", f, "--member", &bob_package],
        ),
        (
            1,
            vec![
                "remove",
                s(&db),
                "--keys",
                s(&alice),
                "--shared-copy",
                "--member",
                &member_id(&founder),
            ],
        ),
        (
            1,
            vec![
                "append",
                s(&db),
                "--keys",
                s(&carol),
                "--shared-copy",
                "--kind",
                "k",
                "--payload",
                "x",
            ],
        ),
        (
            1,
            vec![
                "append",
                s(&db),
                "--keys",
                f,
                "--kind",
                "",
                "--payload",
                "x",
            ],
        ),
        // Nothing to do.
        (0, vec!["merge", s(&db), "--keys", f]),
        (0, vec!["enable", s(&db), "--keys", f]),
    ] {
        exits(code, &args);
        assert!(
            untouched(&db) == before,
            "{args:?} wrote to the file or its journal"
        );
    }
}
