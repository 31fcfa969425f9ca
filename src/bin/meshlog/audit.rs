//! The audit commands: `verify`, `log`, `show`, `replay`. Read-only, no keys.
//!
//! Each opens the file with [`Mesh::open_read_only`], which verifies the
//! whole chain and every projection before anything is printed, and which
//! never writes to the file.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use meshlog::{
    Body, Equivocation, Error, EventHash, MemberId, Mesh, MeshState, Role, RosterEntry, Rule,
    SignedEvent, StoreError,
};
use serde_json::{Value, json};

use crate::{Verdict, format_time, open_audit, progress, shown};

pub(crate) const VERIFY_AFTER_HELP: &str = "\
Opening verifies every event (strict decoding, signature, hash link, every
group rule) and every stored projection row against the chain. A file that was
not closed cleanly is recovered in a private temporary copy and verified there;
the report says so, and the original is never touched.

--expect-head HASH compares the head with a hash obtained elsewhere:
  head == HASH                        OK
  HASH found at an earlier seq        FAILED: this copy extends the expected head
  HASH not in the chain, with --expect-seq N:
    head seq < N                      FAILED: rolled back or truncated
    head seq >= N                     FAILED: forked at or before seq N
  HASH not in the chain, no --expect-seq:
                                      FAILED: truncated, rolled back or forked
                                      (pass --expect-seq to tell which)

Exit codes: 0 verified (and head as expected), 1 verification failed or head
mismatch, 2 could not run (no such file, not a meshlog database).

--json prints one object:
  path, ok (bool), verified_private_copy (bool),
  group, name, head_seq, head_hash, events, epochs, current_epoch, members,
  enabled_members, digest   (null when verification failed)
  equivocations: [{seq, author, ours, theirs}] evidence of one author signing
           two events at one seq, kept by `meshlog ingest` (null when
           verification failed). Evidence does not fail verification; the
           text report shows it as a WARNING.
  failure: null, or {kind: \"rejected\", seq, hash, rule_id, rule, message}
           or {kind: \"projection\", table, key, problem, message}
           or {kind: \"corrupt\", message}
  expect_head: null, or {expected, expected_seq, status, found_seq, message}
           status: \"match\" | \"extends\" | \"rolled-back\" | \"forked\" | \"not-found\"

Examples:
  meshlog verify mesh.redb
  meshlog verify mesh.redb --json
  meshlog verify mesh.redb --expect-head 3f9a…e1 --expect-seq 41";

pub(crate) const LOG_AFTER_HELP: &str = "\
Each line: seq, time (RFC 3339, as claimed by the author), author (short id),
kind, summary. A rotation's summary lists members added (+), removed (-) and
role changes (~), diffed against the previous epoch, and the reason.

--json prints one object per line (JSON Lines), with the fields:
  seq, hash, time (unix seconds), time_rfc3339, author (full id), kind, summary,
  and by kind: genesis: group_name, founder;
  rotate: epoch, added [{member, role}], removed [member],
          role_changes [{member, from, to}], reason;
  set-enabled: enabled; app: app_kind, payload_bytes

Examples:
  meshlog log mesh.redb
  meshlog log mesh.redb --from 100 --limit 20
  meshlog log mesh.redb --json | jq .kind";

pub(crate) const SHOW_AFTER_HELP: &str = "\
The state is replayed from the genesis through the reducer up to the chosen
point: --at SEQ, or --epoch N (the event that opened epoch N), or the head.

--json prints one object:
  at_seq, at_hash, group, name, epoch, opened_at_seq, opened_by, opened_time,
  reason, members [{id, role, enabled, signing_key, dh_key}],
  envelope {ephemeral, commitment, recipients [id]}, digest

Examples:
  meshlog show mesh.redb
  meshlog show mesh.redb --epoch 2
  meshlog show mesh.redb --at 17 --json";

pub(crate) const REPLAY_AFTER_HELP: &str = "\
Replays the chain up to SEQ (default: the head) and prints the state digest
after every epoch boundary (genesis and rotations) and after SEQ, so that two
auditors holding copies can compare them line by line (e.g. with diff).

--json prints one object: {at, points: [{seq, epoch, kind, digest}]}

Examples:
  meshlog replay mesh.redb --at 120
  diff <(meshlog replay a.redb --at 120) <(meshlog replay b.redb --at 120)";

/// Arguments of `meshlog verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The meshlog database file.
    db: PathBuf,
    /// The head hash the auditor expects (obtained elsewhere).
    #[arg(long, value_name = "HASH")]
    expect_head: Option<EventHash>,
    /// The seq of the expected head, to tell a rolled-back copy from a fork.
    #[arg(long, value_name = "N", requires = "expect_head")]
    expect_seq: Option<u64>,
    /// Print JSON (fields listed below).
    #[arg(long)]
    json: bool,
}

/// Arguments of `meshlog log`.
#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// The meshlog database file.
    db: PathBuf,
    /// First seq to list.
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    from: u64,
    /// List at most N events.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// Print JSON Lines (fields listed below).
    #[arg(long)]
    json: bool,
}

/// Arguments of `meshlog show`.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The meshlog database file.
    db: PathBuf,
    /// Show the state just after the event that opened epoch N.
    #[arg(long, value_name = "N", conflicts_with = "at")]
    epoch: Option<u64>,
    /// Show the state just after event SEQ.
    #[arg(long, value_name = "SEQ")]
    at: Option<u64>,
    /// Print JSON (fields listed below).
    #[arg(long)]
    json: bool,
}

/// Arguments of `meshlog replay`.
#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// The meshlog database file.
    db: PathBuf,
    /// Replay up to and including this seq (default: the head).
    #[arg(long, value_name = "SEQ")]
    at: Option<u64>,
    /// Print JSON (fields listed below).
    #[arg(long)]
    json: bool,
}

/// What a verified file looks like.
struct Summary {
    private_copy: bool,
    group: String,
    name: String,
    head_seq: u64,
    head_hash: EventHash,
    events: u64,
    epochs: u64,
    current_epoch: u64,
    members: u64,
    enabled_members: u64,
    digest: String,
    /// Evidence of equivocation that ingest kept: it does not fail the
    /// verification, but is shown prominently.
    equivocations: Vec<Equivocation>,
}

/// Why a file failed verification.
enum Failure {
    Rejected {
        seq: u64,
        hash: EventHash,
        rule: Rule,
    },
    Projection {
        table: &'static str,
        key: String,
        message: String,
    },
    Corrupt {
        message: String,
    },
}

/// How the head compares with the one the auditor expected.
struct Expectation {
    expected: EventHash,
    expected_seq: Option<u64>,
    found_seq: Option<u64>,
    status: &'static str,
    message: String,
}

impl Expectation {
    fn is_ok(&self) -> bool {
        self.status == "match"
    }
}

/// The outcome of `meshlog verify`, also printed by `meshlog demo`.
pub(crate) struct VerifyReport {
    path: PathBuf,
    summary: Option<Summary>,
    failure: Option<Failure>,
    expect: Option<Expectation>,
}

impl VerifyReport {
    /// Whether the file verified and the head is as expected.
    pub(crate) fn is_ok(&self) -> bool {
        self.failure.is_none() && self.expect.as_ref().is_none_or(Expectation::is_ok)
    }
}

/// Opens and verifies `path`. A file that fails verification is a report, not
/// an error; an error means the check could not run.
pub(crate) fn verify_file(
    path: &Path,
    expect_head: Option<EventHash>,
    expect_seq: Option<u64>,
) -> anyhow::Result<VerifyReport> {
    // A file that fails verification is a report; any other error, a failure to run.
    let failed = |error: Error| -> anyhow::Result<VerifyReport> {
        if error.is_verification_failure() {
            Ok(VerifyReport {
                path: path.to_owned(),
                summary: None,
                failure: Some(failure_of(error)),
                expect: None,
            })
        } else {
            Err(error.into())
        }
    };
    let mesh = match open_audit(path) {
        Ok(mesh) => mesh,
        Err(error) => return failed(error),
    };
    let equivocations = match mesh.equivocations() {
        Ok(evidence) => evidence,
        Err(error) => return failed(error),
    };
    let state = mesh.state();
    let head = state.head().context("the verified chain has no head")?;
    let current = state.current_epoch();
    let summary = Summary {
        private_copy: mesh.report().verified_private_copy,
        group: mesh.group().to_string(),
        name: state.identity().map(|i| i.name.clone()).unwrap_or_default(),
        head_seq: head.seq,
        head_hash: head.hash,
        events: state.len(),
        epochs: state.epochs().len() as u64,
        current_epoch: current.map_or(0, |epoch| epoch.epoch),
        members: current.map_or(0, |epoch| epoch.roster.len() as u64),
        enabled_members: state.enabled_flags().values().filter(|on| **on).count() as u64,
        digest: mesh.digest().to_string(),
        equivocations,
    };
    let expect = match expect_head {
        Some(expected) => Some(compare_head(
            &mesh, head.seq, head.hash, expected, expect_seq,
        )?),
        None => None,
    };
    Ok(VerifyReport {
        path: path.to_owned(),
        summary: Some(summary),
        failure: None,
        expect,
    })
}

fn failure_of(error: Error) -> Failure {
    match error {
        Error::Rejected(rejection) => Failure::Rejected {
            seq: rejection.seq,
            hash: rejection.hash,
            rule: rejection.rule,
        },
        Error::Store(store @ StoreError::ProjectionMismatch { .. }) => Failure::Projection {
            table: store.table().unwrap_or("?"),
            key: match &store {
                StoreError::ProjectionMismatch { key, .. } => key.clone(),
                _ => String::new(),
            },
            message: store.to_string(),
        },
        other => Failure::Corrupt {
            message: other.to_string(),
        },
    }
}

/// Places the expected head relative to this copy's chain.
fn compare_head(
    mesh: &Mesh,
    head_seq: u64,
    head_hash: EventHash,
    expected: EventHash,
    expected_seq: Option<u64>,
) -> anyhow::Result<Expectation> {
    let found_seq = mesh.find(expected)?;
    let (status, message) = if expected == head_hash {
        ("match", "the head is the expected head".to_owned())
    } else if let Some(found) = found_seq {
        let ahead = head_seq.saturating_sub(found);
        let mut message = format!(
            "this copy extends the expected head (seq {found}) by {ahead} event{}",
            plural(ahead)
        );
        if let Some(n) = expected_seq.filter(|n| *n != found) {
            message.push_str(&format!(
                "; note: the expected hash is at seq {found}, not {n}"
            ));
        }
        ("extends", message)
    } else {
        match expected_seq {
            Some(n) if head_seq < n => (
                "rolled-back",
                format!(
                    "rolled back or truncated: the copy ends at seq {head_seq}, the expected head is at seq {n}"
                ),
            ),
            Some(n) => {
                let here = mesh.event(n)?.hash();
                (
                    "forked",
                    format!(
                        "forked at or before seq {n}: this copy has {here} there, not the expected head"
                    ),
                )
            }
            None => (
                "not-found",
                format!(
                    "the expected head is not in this chain: the copy (head at seq {head_seq}) is truncated, rolled back or forked; pass --expect-seq to tell which"
                ),
            ),
        }
    };
    Ok(Expectation {
        expected,
        expected_seq,
        found_seq,
        status,
        message,
    })
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The SPEC.md rule number and a stable kebab-case name of a rule.
fn rule_id(rule: &Rule) -> (&'static str, &'static str) {
    (rule.code(), rule.name())
}

impl VerifyReport {
    /// The report as `--json` prints it.
    pub(crate) fn to_json(&self) -> Value {
        let s = self.summary.as_ref();
        let failure = self.failure.as_ref().map(|failure| match failure {
            Failure::Rejected { seq, hash, rule } => {
                let (id, name) = rule_id(rule);
                json!({
                    "kind": "rejected",
                    "seq": seq,
                    "hash": hash.to_string(),
                    "rule_id": id,
                    "rule": name,
                    "message": rule.to_string(),
                })
            }
            Failure::Projection {
                table,
                key,
                message,
            } => json!({
                "kind": "projection",
                "table": table,
                "key": key,
                "message": message,
            }),
            Failure::Corrupt { message } => json!({"kind": "corrupt", "message": message}),
        });
        let expect = self.expect.as_ref().map(|e| {
            json!({
                "expected": e.expected.to_string(),
                "expected_seq": e.expected_seq,
                "found_seq": e.found_seq,
                "status": e.status,
                "message": e.message,
            })
        });
        json!({
            "path": shown(&self.path),
            "ok": self.is_ok(),
            "verified_private_copy": s.is_some_and(|s| s.private_copy),
            "group": s.map(|s| s.group.clone()),
            "name": s.map(|s| s.name.clone()),
            "head_seq": s.map(|s| s.head_seq),
            "head_hash": s.map(|s| s.head_hash.to_string()),
            "events": s.map(|s| s.events),
            "epochs": s.map(|s| s.epochs),
            "current_epoch": s.map(|s| s.current_epoch),
            "members": s.map(|s| s.members),
            "enabled_members": s.map(|s| s.enabled_members),
            "digest": s.map(|s| s.digest.clone()),
            "equivocations": s.map(|s| s.equivocations.iter().map(|e| json!({
                "seq": e.seq,
                "author": e.author().to_string(),
                "ours": e.ours.hash().to_string(),
                "theirs": e.theirs.hash().to_string(),
            })).collect::<Vec<_>>()),
            "failure": failure,
            "expect_head": expect,
        })
    }

    /// The report as text, one `label  value` line each.
    pub(crate) fn to_text(&self) -> String {
        let mut out = format!("file      {}\n", shown(&self.path));
        if let Some(s) = &self.summary {
            out.push_str(&format!("group     {} {:?}\n", s.group, s.name));
            out.push_str(&format!("head      seq {}  {}\n", s.head_seq, s.head_hash));
            out.push_str(&format!("events    {}\n", s.events));
            out.push_str(&format!(
                "epochs    {} (current epoch {})\n",
                s.epochs, s.current_epoch
            ));
            out.push_str(&format!(
                "members   {} ({} enabled)\n",
                s.members, s.enabled_members
            ));
            out.push_str(&format!("digest    {}\n", s.digest));
            if !s.equivocations.is_empty() {
                let n = s.equivocations.len() as u64;
                out.push_str(&format!(
                    "WARNING   EQUIVOCATION: {n} pair{} of conflicting events signed by one \
                     author, kept as evidence by ingest (the chain itself holds only one of \
                     each pair)\n",
                    plural(n)
                ));
                for e in &s.equivocations {
                    out.push_str(&format!(
                        "  seq {}  author {}\n    ours    {}\n    theirs  {}\n",
                        e.seq,
                        e.author(),
                        e.ours.hash(),
                        e.theirs.hash()
                    ));
                }
            }
            if s.private_copy {
                out.push_str(
                    "note      the file had not been closed cleanly: a private temporary copy was \
                     recovered and verified; the original is untouched\n",
                );
            }
        }
        if let Some(e) = &self.expect {
            let mark = if e.is_ok() { "OK" } else { "MISMATCH" };
            out.push_str(&format!("expected  {mark}: {}\n", e.message));
        }
        match &self.failure {
            None if self.is_ok() => {
                out.push_str("result    OK: every event and every projection row verified\n");
                if self
                    .summary
                    .as_ref()
                    .is_some_and(|s| !s.equivocations.is_empty())
                {
                    out.push_str(
                        "          (the equivocation evidence above does not fail verification, \
                         but its author signed two histories)\n",
                    );
                }
            }
            None => out.push_str("result    FAILED: the head is not the expected head\n"),
            Some(Failure::Rejected { seq, hash, rule }) => {
                let (id, name) = rule_id(rule);
                out.push_str(&format!(
                    "result    FAILED at seq {seq} (event {hash})\n\
                     rule      {id} {name}: {rule}\n"
                ));
            }
            Some(Failure::Projection { table, message, .. }) => out.push_str(&format!(
                "result    FAILED: projection table `{table}` disagrees with the chain\n\
                 detail    {message}\n"
            )),
            Some(Failure::Corrupt { message }) => {
                out.push_str(&format!("result    FAILED: {message}\n"))
            }
        }
        out
    }
}

/// `meshlog verify`.
pub(crate) fn verify(args: &VerifyArgs) -> anyhow::Result<Verdict> {
    let report = verify_file(&args.db, args.expect_head, args.expect_seq)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.is_ok() {
        Verdict::Ok
    } else {
        Verdict::Failed
    })
}

/// What a rotation changed relative to the epoch before it.
struct RosterDiff {
    added: Vec<RosterEntry>,
    removed: Vec<MemberId>,
    role_changes: Vec<(MemberId, Role, Role)>,
}

fn diff_rosters(before: &[RosterEntry], after: &[RosterEntry]) -> RosterDiff {
    let find = |roster: &[RosterEntry], id: MemberId| roster.iter().find(|e| e.id == id).copied();
    RosterDiff {
        added: after
            .iter()
            .filter(|entry| find(before, entry.id).is_none())
            .copied()
            .collect(),
        removed: before
            .iter()
            .filter(|entry| find(after, entry.id).is_none())
            .map(|entry| entry.id)
            .collect(),
        role_changes: after
            .iter()
            .filter_map(|entry| {
                find(before, entry.id)
                    .filter(|old| old.role != entry.role)
                    .map(|old| (entry.id, old.role, entry.role))
            })
            .collect(),
    }
}

/// One log line's summary and its kind-specific JSON fields.
fn describe(state: &MeshState, event: &SignedEvent) -> (String, Value) {
    match &event.event().body {
        Body::Genesis(genesis) => (
            format!(
                "group {:?}, founder {} (admin)",
                genesis.group_name,
                genesis.founder.member_id().short()
            ),
            json!({
                "group_name": genesis.group_name,
                "founder": genesis.founder.member_id().to_string(),
            }),
        ),
        Body::Rotate(rotate) => {
            let before = rotate
                .epoch
                .checked_sub(1)
                .and_then(|previous| state.epoch(previous))
                .map(|record| record.roster.as_slice())
                .unwrap_or_default();
            let diff = diff_rosters(before, &rotate.roster);
            let mut parts = Vec::new();
            for entry in &diff.added {
                parts.push(format!("+{} ({})", entry.id.short(), entry.role));
            }
            for member in &diff.removed {
                parts.push(format!("-{}", member.short()));
            }
            for (member, from, to) in &diff.role_changes {
                parts.push(format!("~{} {from}→{to}", member.short()));
            }
            if parts.is_empty() {
                parts.push("same roster, new secret".to_owned());
            }
            let summary = format!(
                "epoch {}: {}; {} member{}; reason {:?}",
                rotate.epoch,
                parts.join(" "),
                rotate.roster.len(),
                plural(rotate.roster.len() as u64),
                rotate.reason
            );
            let details = json!({
                "epoch": rotate.epoch,
                "added": diff.added.iter().map(|e| json!({
                    "member": e.id.to_string(),
                    "role": e.role.to_string(),
                })).collect::<Vec<_>>(),
                "removed": diff.removed.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "role_changes": diff.role_changes.iter().map(|(member, from, to)| json!({
                    "member": member.to_string(),
                    "from": from.to_string(),
                    "to": to.to_string(),
                })).collect::<Vec<_>>(),
                "reason": rotate.reason,
            });
            (summary, details)
        }
        Body::SetEnabled { enabled } => (
            if *enabled { "on" } else { "off" }.to_owned(),
            json!({"enabled": enabled}),
        ),
        Body::App { kind, payload } => (
            format!(
                "{kind:?}, {} byte{}",
                payload.len(),
                plural(payload.len() as u64)
            ),
            json!({"app_kind": kind, "payload_bytes": payload.len()}),
        ),
    }
}

/// `meshlog log`.
pub(crate) fn log(args: &LogArgs) -> anyhow::Result<Verdict> {
    use std::io::{IsTerminal, Write};
    let mesh = open_audit(&args.db)?;
    let state = mesh.state();
    let len = state.len();
    let limit = args.limit.unwrap_or(u64::MAX);
    // A bar would interleave with the lines when both go to the terminal.
    let bar = if std::io::stdout().is_terminal() {
        None
    } else {
        progress(len.saturating_sub(args.from).min(limit))
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    let mut write_error = None;
    mesh.for_each_event(args.from, |event| {
        if printed >= limit {
            return false;
        }
        let fields = event.event();
        let (summary, details) = describe(state, event);
        let line = if args.json {
            let mut object = json!({
                "seq": fields.seq,
                "hash": event.hash().to_string(),
                "time": fields.time,
                "time_rfc3339": crate::format_time(fields.time),
                "author": fields.author.to_string(),
                "kind": fields.body.kind_name(),
                "summary": summary,
            });
            if let (Some(object), Value::Object(details)) = (object.as_object_mut(), details) {
                object.extend(details);
            }
            object.to_string()
        } else {
            format!(
                "{:>6}  {}  {}  {:<11}  {}",
                fields.seq,
                format_time(fields.time),
                fields.author.short(),
                fields.body.kind_name(),
                summary
            )
        };
        if let Err(error) = writeln!(out, "{line}") {
            write_error = Some(error);
            return false;
        }
        printed += 1;
        if let Some(bar) = &bar {
            bar.inc(1);
        }
        true
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    match write_error {
        // A closed pipe (`meshlog log | head`) is the reader's choice, not a failure.
        Some(error) if error.kind() == std::io::ErrorKind::BrokenPipe => return Ok(Verdict::Ok),
        Some(error) => return Err(error).context("writing the log"),
        None => {}
    }
    match out.flush() {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(error).context("writing the log")?
        }
        _ => {}
    }
    Ok(Verdict::Ok)
}

/// The seq at which to stop, checked against the chain.
fn checked_seq(mesh: &Mesh, seq: u64) -> anyhow::Result<u64> {
    let len = mesh.state().len();
    if seq >= len {
        bail!(
            "no event at seq {seq}: the chain has {len} events (seq 0 to {})",
            len.saturating_sub(1)
        );
    }
    Ok(seq)
}

/// Replays up to `upto`, with a progress bar on long chains.
fn replay_with_progress(
    mesh: &Mesh,
    upto: u64,
    mut visit: impl FnMut(&SignedEvent, &MeshState),
) -> anyhow::Result<MeshState> {
    let bar = progress(upto.saturating_add(1));
    let state = mesh.replay(upto, |event, state| {
        visit(event, state);
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(state)
}

/// `meshlog show`.
pub(crate) fn show(args: &ShowArgs) -> anyhow::Result<Verdict> {
    let mesh = open_audit(&args.db)?;
    let head = mesh
        .state()
        .head()
        .context("the verified chain has no head")?;
    let upto = match (args.epoch, args.at) {
        (Some(epoch), _) => {
            let record = mesh.state().epoch(epoch).with_context(|| {
                format!(
                    "no epoch {epoch}: the current epoch is {}",
                    mesh.state().current_epoch().map_or(0, |e| e.epoch)
                )
            })?;
            record.seq
        }
        (None, Some(at)) => checked_seq(&mesh, at)?,
        (None, None) => head.seq,
    };
    let state = replay_with_progress(&mesh, upto, |_, _| {})?;
    let at = state.head().context("the replayed chain has no head")?;
    let identity = state
        .identity()
        .context("the replayed chain has no genesis")?;
    let epoch = state
        .current_epoch()
        .context("the replayed chain has no epoch")?;
    let digest = state.digest();
    if args.json {
        let members: Vec<Value> = epoch
            .roster
            .iter()
            .map(|entry| {
                json!({
                    "id": entry.id.to_string(),
                    "role": entry.role.to_string(),
                    "enabled": state.is_enabled(entry.id),
                    "signing_key": entry.keys.signing.to_string(),
                    "dh_key": entry.keys.dh.to_string(),
                })
            })
            .collect();
        let value = json!({
            "at_seq": at.seq,
            "at_hash": at.hash.to_string(),
            "group": identity.group.to_string(),
            "name": identity.name,
            "epoch": epoch.epoch,
            "opened_at_seq": epoch.seq,
            "opened_by": epoch.author.to_string(),
            "opened_time": epoch.time,
            "reason": epoch.reason,
            "members": members,
            "envelope": {
                "ephemeral": epoch.envelope.ephemeral.to_string(),
                "commitment": epoch.envelope.commitment.to_string(),
                "recipients": epoch.envelope.wrapped.iter()
                    .map(|w| w.member.to_string()).collect::<Vec<_>>(),
            },
            "digest": digest.to_string(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(Verdict::Ok);
    }
    println!("group       {} {:?}", identity.group, identity.name);
    println!("at          seq {}  {}", at.seq, at.hash);
    println!(
        "epoch       {} (opened at seq {} by {}, {}; reason {:?})",
        epoch.epoch,
        epoch.seq,
        epoch.author.short(),
        format_time(epoch.time),
        epoch.reason
    );
    println!("members     {}", epoch.roster.len());
    for entry in &epoch.roster {
        println!(
            "  {}  {:<6}  {:<3}  signing {}\n  {}  {:<6}  {:<3}  dh      {}",
            entry.id,
            entry.role,
            if state.is_enabled(entry.id) {
                "on"
            } else {
                "off"
            },
            entry.keys.signing,
            " ".repeat(32),
            "",
            "",
            entry.keys.dh
        );
    }
    let recipients: Vec<String> = epoch
        .envelope
        .wrapped
        .iter()
        .map(|w| w.member.short())
        .collect();
    println!("recipients  {}", recipients.join(" "));
    println!("ephemeral   {}", epoch.envelope.ephemeral);
    println!("commitment  {}", epoch.envelope.commitment);
    println!("digest      {digest}");
    Ok(Verdict::Ok)
}

/// `meshlog replay`.
pub(crate) fn replay(args: &ReplayArgs) -> anyhow::Result<Verdict> {
    let mesh = open_audit(&args.db)?;
    let head = mesh
        .state()
        .head()
        .context("the verified chain has no head")?;
    let at = match args.at {
        Some(at) => checked_seq(&mesh, at)?,
        None => head.seq,
    };
    let mut points = Vec::new();
    replay_with_progress(&mesh, at, |event, state| {
        let fields = event.event();
        let boundary = matches!(fields.body, Body::Genesis(_) | Body::Rotate(_));
        if boundary || fields.seq == at {
            points.push((
                fields.seq,
                state.current_epoch().map_or(0, |e| e.epoch),
                fields.body.kind_name(),
                state.digest(),
            ));
        }
    })?;
    if args.json {
        let points: Vec<Value> = points
            .iter()
            .map(|(seq, epoch, kind, digest)| {
                json!({"seq": seq, "epoch": epoch, "kind": kind, "digest": digest.to_string()})
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"at": at, "points": points}))?
        );
    } else {
        for (seq, epoch, kind, digest) in &points {
            println!("seq {seq:>6}  epoch {epoch:>4}  {kind:<11}  {digest}");
        }
    }
    Ok(Verdict::Ok)
}
