//! The audit commands: `verify`, `log`, `show`. Read-only, no keys.
//!
//! Each opens the file read-only, which verifies every event and every
//! projection before anything is printed, and never writes to the file.
//! What an event's status is, which rotations apply and whether the file
//! still holds a checkpoint are the library's answers; these commands only
//! format them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use meshlog::{
    Body, Change, EpochInfo, Equivocation, ErrorClass, EventHash, ForkShape, Frontier, MemberId,
    Mesh, Roster, SignedEvent,
};
use serde_json::{Value, json};

use crate::{
    Verdict, epoch_line, format_time, plural, print_lines, progress, shorts, shown, strings,
};

pub(crate) const VERIFY_AFTER_HELP: &str = "\
Opening verifies every event (strict decoding, signature, feed rules, the
epoch graph's rules) and every stored projection row against the events. A
file that was not closed cleanly is recovered in a private temporary copy
and verified there; the report says so, and the original is never touched.

A refused file is reported with the rule's id (V1-V10, F1-F7, E1-E8) and the
event: its hash, its author and its position (seq) in the author's feed.

--checkpoint OUT writes the file's frontier (the heads of every feed, among
the events not left out, SPEC.md §6.4) to
OUT, once the file verified. Keep it: every later state of the same file
holds every head it lists.
--expect CHECKPOINT checks that the file still holds such a checkpoint. A
head that is gone means the file was rolled back (for instance an older
backup restored): the report names each missing head, and verify exits 1.

An equivocation by an honest restore: a member restored its copy from a
backup and wrote on it, so its feed forks once. The branch written after the
restore begins (by claimed time) after every event of the branch the backup
lacked; verify says \"consistent with an honest restore\". Branches written at
overlapping times mean two copies written at once (one key file on two
machines, or on purpose). Claimed times can be forged: the shape is a hint,
not proof; ask the member. Both branches are kept either way (SPEC.md §4.4);
the feed mark beside a key file refuses such a write (SPEC.md §11.2).

Exit codes: 0 verified (and the checkpoint held), 1 verification failed or
rolled back, 2 could not run (no such file, not a meshlog file, not a
checkpoint file).

--json prints one object:
  path, ok (bool), verified_private_copy (bool),
  journaled (events verified from the journal beside the file, SPEC.md §9.6),
  awaiting_signature (0 or 1: the journal's newest event, whose signature
           is not on disk yet; only its author's keys can sign it again,
           so it is not among the events verified),
  journal_unreplayed (events the journal held that could not be replayed:
           a damaged frame, or the journal of another copy; the file's own
           events are unaffected, and verify still exits 0),
  journal_unreplayed_offset (null, or the byte of the journal where the
           first of them starts),
  group, name, founder, events, digest,
  current_epoch (null when the mesh needs a merge), needs_merge (bool),
  writer_epoch, tips [hash], members (size of R*), enabled_members,
  equivocations [{author, seq, events [hash], shape, later_branch}]: one
           author signed two events at one position of its feed; kept as
           evidence, it does not fail verification. shape \"restore\": one
           branch (later_branch, its first event) begins after the other
           ends, by the events' claimed times, as when a member writes on a
           copy restored from a backup; \"overlapping\": the branches were
           written at the same time, on two copies at once
  (every field above but path and ok is null when verification failed)
  failure: null, or {class, kind, message} and, for a refused event,
           rule_id, rule, hash, author, seq
  expect: null, or {checkpoint, ok (bool), missing [hash]}
  checkpoint: null, or the file written

Examples:
  meshlog verify mesh.redb
  meshlog verify mesh.redb --json
  meshlog verify mesh.redb --checkpoint monday.checkpoint
  meshlog verify mesh.redb --expect monday.checkpoint";

pub(crate) const LOG_AFTER_HELP: &str = "\
Each line: the event's short hash, its author (short id), its seq in the
author's feed, its kind (genesis, rotate, enable, disable, app, keys,
sealed: a sealed app event), the epoch it opens or was written under (short hash), its
status, and a summary. A sealed app event shows its kind and padded size;
with --keys, a member of its epoch also sees its plaintext (opened and its
sender checked, SPEC.md §16.5), or why it does not open.

Status (SPEC.md §6.2), under the current resolution:
  current               written under the epoch writers use now, or is it
  superseded            written under an applied epoch writers moved past
  void epoch            a void rotation, or written under one
  author not in roster  its author has been removed since
  author not in roster, left out
                        a void rotation of an author outside R*, or written
                        by one on such a rotation, and named by no event
                        left in: not in the digest, not exported, not taken
                        from peers (SPEC.md §6.4)
A rotation also says applied or void, and which of its changes are void.

--json prints one object per line (JSON Lines), with the fields:
  hash, author, seq, prev, time, time_rfc3339, kind, epoch, status,
  left_out (bool: signed outside R* on a void rotation and needed by no
  other event, so not in the digest nor exported, SPEC.md §6.4), and by
  kind: genesis: group_name, founder;
  rotate: applied (bool), void_changes [position], parents [hash],
          changes [{change, member, role, void}], reason;
  enable/disable: enabled; app: app_kind, payload_bytes; keys: counter;
  sealed: app_kind, sealed_bytes, and with --keys either opened
          {sender, epoch, epoch_applied, epoch_current, sender_in_roster,
          id, associated_data_hex,
          associated_data, bytes, plaintext_hex, text (when UTF-8)} or
          open_error

Examples:
  meshlog log mesh.redb
  meshlog log mesh.redb --author 3fa2c901 --limit 20
  meshlog log mesh.redb --json | jq .status
  meshlog log mesh.redb --keys alice.keys";

pub(crate) const SHOW_AFTER_HELP: &str = "\
Without --epoch: the resolved roster R* (every member with its role, flag
and keys), the current epoch (or that the mesh needs a merge), the writer
epoch, the tips, and every epoch (rotation) in file order: applied or void,
its author, its parents, its own roster's size and its reason.
--epoch HASH (a full hash or a unique prefix of 8+ digits): that epoch's own
roster, the members its secret was wrapped to.

--json prints one object:
  group, name, founder, events, digest, current_epoch, writer_epoch,
  needs_merge, tips, roster [{member, role, enabled, signing_key, dh_key,
  counter}], epochs [{hash, author, genesis, applied, void_changes, parents,
  roster_size, reason, tip, current}]
with --epoch: {hash, author, genesis, applied, void_changes, parents,
  reason, tip, current, writer, roster [{member, role, signing_key, dh_key,
  counter}]}

Examples:
  meshlog show mesh.redb
  meshlog show mesh.redb --epoch 3fa2c901
  meshlog show mesh.redb --json | jq .roster";

/// Arguments of `meshlog verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The meshlog file.
    db: PathBuf,
    /// Print JSON (fields listed below).
    #[arg(long)]
    json: bool,
    /// Check that the file still holds this checkpoint (rollback check).
    #[arg(long, value_name = "CHECKPOINT")]
    expect: Option<PathBuf>,
    /// Write the file's frontier to this new file as a checkpoint.
    #[arg(long, value_name = "OUT")]
    checkpoint: Option<PathBuf>,
}

/// Arguments of `meshlog log`.
#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// The meshlog file.
    db: PathBuf,
    /// Print JSON Lines (fields listed below).
    #[arg(long)]
    json: bool,
    /// List at most N events.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// List only the newest N events (the others are not read).
    #[arg(long, value_name = "N")]
    tail: Option<u64>,
    /// Only this author's events (an id or a unique prefix of 8+ digits).
    #[arg(long, value_name = "ID")]
    author: Option<String>,
    /// A member's key file: open the sealed app events of its epochs.
    #[arg(long, value_name = "FILE")]
    keys: Option<PathBuf>,
}

/// Arguments of `meshlog show`.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The meshlog file.
    db: PathBuf,
    /// The key file of the member whose copy the file is: its checkpoint
    /// then vouches for what it verified, and only what is new is verified
    /// again (without keys, every event is).
    #[arg(long, value_name = "FILE")]
    keys: Option<PathBuf>,
    /// Print JSON (fields listed below).
    #[arg(long)]
    json: bool,
    /// Show this epoch's own roster (a hash or a unique prefix).
    #[arg(long, value_name = "HASH")]
    epoch: Option<String>,
}

/// What a verified file looks like.
struct Summary {
    private_copy: bool,
    journaled: usize,
    awaiting_signature: usize,
    journal_unreplayed: usize,
    journal_unreplayed_offset: Option<u64>,
    group: String,
    name: String,
    founder: MemberId,
    events: usize,
    digest: String,
    current_epoch: Option<EventHash>,
    writer_epoch: Option<EventHash>,
    needs_merge: bool,
    tips: Vec<EventHash>,
    members: usize,
    enabled_members: usize,
    /// Evidence of equivocation: it does not fail the verification, but is
    /// shown prominently.
    equivocations: Vec<Equivocation>,
    /// Each equivocation's shape, in the same order.
    fork_shapes: Vec<ForkShape>,
    epoch_line: String,
}

/// How the file compares with a checkpoint given with `--expect`.
struct Expectation {
    checkpoint: PathBuf,
    /// The library's answer: the checkpoint's heads the file lacks.
    missing: Vec<EventHash>,
}

/// The outcome of `meshlog verify`, also printed by `meshlog demo`.
pub(crate) struct VerifyReport {
    path: PathBuf,
    summary: Option<Summary>,
    failure: Option<meshlog::Error>,
    expect: Option<Expectation>,
    checkpoint: Option<PathBuf>,
}

impl VerifyReport {
    /// Whether the file verified and holds the expected checkpoint.
    pub(crate) fn is_ok(&self) -> bool {
        self.failure.is_none() && self.expect.as_ref().is_none_or(|e| e.missing.is_empty())
    }
}

/// Opens and verifies `path`, and compares it with `expect`. A file that
/// fails verification is a report, not an error; an error means the check
/// could not run.
pub(crate) fn verify_file(
    path: &Path,
    expect: Option<(&Path, &Frontier)>,
) -> anyhow::Result<(VerifyReport, Option<Mesh>)> {
    let mut report = VerifyReport {
        path: path.to_owned(),
        summary: None,
        failure: None,
        expect: None,
        checkpoint: None,
    };
    // The report says what the journal could not replay: no warning too.
    let (options, finish) = crate::with_progress(meshlog::MeshOptions::new());
    let opened = options.open_read_only(path, None);
    finish();
    let mesh = match opened {
        Ok(mesh) => mesh,
        Err(error) if error.class() == ErrorClass::VerificationFailure => {
            report.failure = Some(error);
            return Ok((report, None));
        }
        Err(error) => return Err(error.into()),
    };
    let roster = mesh.roster();
    report.summary = Some(Summary {
        private_copy: mesh.report().verified_private_copy,
        journaled: mesh.report().journaled,
        awaiting_signature: mesh.report().awaiting_signature,
        journal_unreplayed: mesh.report().journal_unreplayed,
        journal_unreplayed_offset: mesh.report().journal_unreplayed_offset,
        group: mesh.group().to_string(),
        name: mesh.group_name().to_owned(),
        founder: mesh.founder(),
        events: mesh.len(),
        digest: mesh.digest().to_string(),
        current_epoch: mesh.current_epoch(),
        writer_epoch: mesh.writer_epoch(),
        needs_merge: mesh.needs_merge(),
        tips: mesh.tips().to_vec(),
        members: roster.len(),
        enabled_members: roster
            .iter()
            .filter(|(id, _)| mesh.is_member_enabled(**id))
            .count(),
        fork_shapes: mesh
            .equivocations()
            .iter()
            .map(|fork| mesh.fork_shape(fork))
            .collect(),
        equivocations: mesh.equivocations(),
        epoch_line: epoch_line(&mesh),
    });
    if let Some((checkpoint, frontier)) = expect {
        let missing = match mesh.expect(frontier) {
            Ok(()) => Vec::new(),
            Err(meshlog::Error::RolledBack { missing }) => missing,
            Err(error) => return Err(error.into()),
        };
        report.expect = Some(Expectation {
            checkpoint: checkpoint.to_owned(),
            missing,
        });
    }
    Ok((report, Some(mesh)))
}

impl VerifyReport {
    /// The report as `--json` prints it.
    pub(crate) fn to_json(&self) -> Value {
        let s = self.summary.as_ref();
        let hash = |h: &Option<EventHash>| h.map(|h| h.to_string());
        json!({
            "path": shown(&self.path),
            "ok": self.is_ok(),
            "verified_private_copy": s.map(|s| s.private_copy),
            "journaled": s.map(|s| s.journaled),
            "awaiting_signature": s.map(|s| s.awaiting_signature),
            "journal_unreplayed": s.map(|s| s.journal_unreplayed),
            "journal_unreplayed_offset": s.and_then(|s| s.journal_unreplayed_offset),
            "group": s.map(|s| s.group.clone()),
            "name": s.map(|s| s.name.clone()),
            "founder": s.map(|s| s.founder.to_string()),
            "events": s.map(|s| s.events),
            "digest": s.map(|s| s.digest.clone()),
            "current_epoch": s.and_then(|s| hash(&s.current_epoch)),
            "needs_merge": s.map(|s| s.needs_merge),
            "writer_epoch": s.and_then(|s| hash(&s.writer_epoch)),
            "tips": s.map(|s| strings(&s.tips)),
            "members": s.map(|s| s.members),
            "enabled_members": s.map(|s| s.enabled_members),
            "equivocations": s.map(|s| s.equivocations.iter().zip(&s.fork_shapes).map(|(e, shape)| equivocation_json(e, *shape)).collect::<Vec<_>>()),
            "failure": self.failure.as_ref().map(crate::error_json),
            "expect": self.expect.as_ref().map(|e| json!({
                "checkpoint": shown(&e.checkpoint),
                "ok": e.missing.is_empty(),
                "missing": strings(&e.missing),
            })),
            "checkpoint": self.checkpoint.as_deref().map(shown),
        })
    }

    /// The report as text, one `label  value` line each.
    pub(crate) fn to_text(&self) -> String {
        let mut lines: Vec<(&str, String)> = vec![("file", shown(&self.path))];
        if let Some(s) = &self.summary {
            lines.push(("events", s.events.to_string()));
            lines.push(("group", format!("{} {:?}", s.group, s.name)));
            lines.push(("founder", s.founder.to_string()));
            lines.push(("digest", s.digest.clone()));
            lines.push(("epoch", s.epoch_line.clone()));
            lines.push(("tips", shorts(&s.tips)));
            lines.push((
                "roster",
                format!(
                    "{} member{} in R*, {} enabled",
                    s.members,
                    plural(s.members),
                    s.enabled_members
                ),
            ));
            if !s.equivocations.is_empty() {
                let n = s.equivocations.len();
                lines.push((
                    "WARNING",
                    format!(
                        "EQUIVOCATION: {n} time{} an author signed two events at one position \
                         of its feed; both are kept as evidence (treat content on more than one \
                         head of that feed with suspicion)",
                        plural(n)
                    ),
                ));
                for (e, shape) in s.equivocations.iter().zip(&s.fork_shapes) {
                    let reading = match shape {
                        ForkShape::Restore { later } => format!(
                            "consistent with an honest restore (branch {} begins after the \
                             other ends, by claimed times)",
                            later.short()
                        ),
                        _ => "branches written at overlapping times: two copies written at \
                              once, not one restored copy"
                            .to_owned(),
                    };
                    lines.push((
                        "",
                        format!(
                            "author {} seq {}: {}: {reading}",
                            e.author,
                            e.seq,
                            shorts(&e.events)
                        ),
                    ));
                }
                lines.push((
                    "",
                    "an honest restore (a member writing on a copy restored from a backup) forks \
                     its feed once, the later branch beginning after the other ends; claimed \
                     times can be forged, so ask the member before calling it an attack"
                        .to_owned(),
                ));
            }
            lines.push((
                "private",
                if s.private_copy {
                    "yes: the file had not been closed cleanly; a private temporary copy was \
                     recovered and verified, the original is untouched"
                        .to_owned()
                } else {
                    "no: the file itself was verified".to_owned()
                },
            ));
            if s.journaled > 0 {
                lines.push((
                    "journal",
                    format!(
                        "{} event{} beyond the file, in its journal (a writer between \
                         checkpoints, or one that crashed), verified with the rest",
                        s.journaled,
                        plural(s.journaled)
                    ),
                ));
            }
            if s.awaiting_signature > 0 {
                lines.push((
                    "unsigned",
                    "1 more event in the journal awaits its signature (a live writer's \
                     newest, or a crashed one's): its author's keys sign it again on \
                     open; not verified here"
                        .to_owned(),
                ));
            }
            if s.journal_unreplayed > 0 {
                lines.push((
                    "unreplayed",
                    crate::unreplayed_warning(
                        s.journal_unreplayed,
                        s.journal_unreplayed_offset,
                        &self.path,
                    ),
                ));
            }
        }
        if let Some(e) = &self.expect {
            if e.missing.is_empty() {
                lines.push((
                    "expected",
                    format!("OK: the file holds every head of {}", shown(&e.checkpoint)),
                ));
            } else {
                lines.push((
                    "expected",
                    format!(
                        "ROLLED BACK: {} head{} of {} {} gone from the file",
                        e.missing.len(),
                        plural(e.missing.len()),
                        shown(&e.checkpoint),
                        if e.missing.len() == 1 { "is" } else { "are" }
                    ),
                ));
                for head in &e.missing {
                    lines.push(("missing", head.to_string()));
                }
            }
        }
        if let Some(checkpoint) = &self.checkpoint {
            lines.push(("checkpoint", format!("wrote {}", shown(checkpoint))));
        }
        match &self.failure {
            None if self.is_ok() => lines.push((
                "result",
                "OK: every event and every projection row verified".to_owned(),
            )),
            None => lines.push((
                "result",
                "FAILED: the file no longer holds the checkpoint (rolled back)".to_owned(),
            )),
            Some(error) => {
                lines.push(("result", format!("FAILED: {error}")));
                lines.extend(crate::error_lines(error));
            }
        }
        let mut out = String::new();
        for (label, value) in lines {
            out.push_str(&format!("{label:<10} {value}\n"));
        }
        out
    }
}

fn equivocation_json(e: &Equivocation, shape: ForkShape) -> Value {
    let later = match shape {
        ForkShape::Restore { later } => Some(later.to_string()),
        _ => None,
    };
    json!({
        "author": e.author.to_string(),
        "seq": e.seq,
        "events": strings(&e.events),
        "shape": shape.name(),
        "later_branch": later,
    })
}

/// `meshlog verify`.
pub(crate) fn verify(args: &VerifyArgs) -> anyhow::Result<Verdict> {
    // A checkpoint that cannot be read means the check cannot run: read it
    // before the file is opened.
    let expect = match &args.expect {
        Some(path) => Some((path.as_path(), crate::read_frontier(path, "checkpoint")?)),
        None => None,
    };
    let (mut report, mesh) = verify_file(&args.db, expect.as_ref().map(|(path, f)| (*path, f)))?;
    if let (Some(out), Some(mesh)) = (&args.checkpoint, &mesh)
        && report.is_ok()
    {
        crate::write_new(out, &mesh.frontier().to_bytes())?;
        report.checkpoint = Some(out.clone());
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        out!("{}", report.to_text());
    }
    Ok(if report.is_ok() {
        Verdict::Ok
    } else {
        Verdict::Failed
    })
}

/// The epoch an event opens (genesis, rotation) or was written under.
fn epoch_of(event: &SignedEvent) -> EventHash {
    event.event().epoch().unwrap_or_else(|| event.hash())
}

/// One change of a rotation: its name, the member, the role if any.
fn change_parts(change: &Change) -> (&'static str, MemberId, Option<String>) {
    match change {
        Change::Add { package, role } => ("add", package.member(), Some(role.to_string())),
        Change::Remove { member } => ("remove", *member, None),
        Change::SetRole { member, role } => ("set-role", *member, Some(role.to_string())),
        Change::UpdateKeys { package } => ("update-keys", package.member(), None),
    }
}

/// One log line's summary and its kind-specific JSON fields.
fn describe(event: &SignedEvent, epochs: &HashMap<EventHash, EpochInfo>) -> (String, Value) {
    match &event.event().body {
        Body::Genesis {
            group_name,
            founder,
            ..
        } => (
            format!(
                "mesh {group_name:?} founded by {} (owner)",
                founder.member().short()
            ),
            json!({
                "group_name": group_name,
                "founder": founder.member().to_string(),
            }),
        ),
        Body::Rotate {
            parents,
            changes,
            reason,
            ..
        } => {
            let info = epochs.get(&event.hash());
            let applied = info.is_some_and(|info| info.applied);
            let void_changes: Vec<usize> = info.map(|i| i.void_changes.clone()).unwrap_or_default();
            let mut parts = Vec::new();
            let mut listed = Vec::new();
            for (position, change) in changes.iter().enumerate() {
                let (name, member, role) = change_parts(change);
                let void = !applied || void_changes.contains(&position);
                let text = match (name, &role) {
                    ("add", Some(role)) => format!("+{} ({role})", member.short()),
                    ("remove", _) => format!("-{}", member.short()),
                    ("set-role", Some(role)) => format!("~{}→{role}", member.short()),
                    _ => format!("keys of {}", member.short()),
                };
                let void_mark = if void && applied { " [void]" } else { "" };
                parts.push(format!("{text}{void_mark}"));
                listed.push(json!({
                    "change": name,
                    "member": member.to_string(),
                    "role": role,
                    "void": void,
                }));
            }
            if parts.is_empty() {
                parts.push(if parents.len() > 1 {
                    "merge".to_owned()
                } else {
                    "refresh: same roster, new secret".to_owned()
                });
            }
            let verdict = if applied { "applied" } else { "VOID" };
            (
                format!(
                    "{verdict}: {}; {} parent{}; reason {reason:?}",
                    parts.join(" "),
                    parents.len(),
                    plural(parents.len())
                ),
                json!({
                    "applied": applied,
                    "void_changes": void_changes,
                    "parents": strings(parents),
                    "changes": listed,
                    "reason": reason,
                }),
            )
        }
        Body::SetEnabled { enabled, .. } => (
            if *enabled { "on" } else { "off" }.to_owned(),
            json!({"enabled": enabled}),
        ),
        Body::App { kind, payload, .. } => (
            format!("{kind:?}, {} byte{}", payload.len(), plural(payload.len())),
            json!({"app_kind": kind, "payload_bytes": payload.len()}),
        ),
        Body::Keys { package, .. } => (
            format!("new key package, counter {}", package.counter()),
            json!({"counter": package.counter()}),
        ),
        Body::SealedApp { kind, sealed, .. } => (
            format!("{kind:?}, sealed, {} bytes", sealed.len()),
            json!({"app_kind": kind, "sealed_bytes": sealed.len()}),
        ),
    }
}

/// What a member's key opens of a sealed app event: a summary to append
/// and the JSON fields to add.
fn opened_parts(mesh: &Mesh, event: &SignedEvent) -> Option<(String, Value)> {
    if !matches!(event.event().body, Body::SealedApp { .. }) {
        return None;
    }
    Some(match mesh.open_event(event.hash()) {
        Ok(opened) => {
            let fields = crate::sealing::opened_json(&opened, true);
            let shown = String::from_utf8_lossy(&opened.plaintext);
            let mut preview: String = shown.chars().take(60).collect();
            if preview.len() < shown.len() {
                preview.push('…');
            }
            (format!(": opened {preview:?}"), json!({"opened": fields}))
        }
        Err(error) => (
            format!(": does not open ({error})"),
            json!({"open_error": error.to_string()}),
        ),
    })
}

/// `meshlog log`.
pub(crate) fn log(args: &LogArgs) -> anyhow::Result<Verdict> {
    use std::io::{IsTerminal, Write};
    let keys = match &args.keys {
        Some(path) => Some(crate::load_keys(path)?),
        None => None,
    };
    let opens = keys.is_some();
    let mesh = crate::open_read_only(&args.db, keys)?;
    let author = match &args.author {
        Some(text) => Some(crate::resolve_member(&mesh, text)?),
        None => None,
    };
    let epochs: HashMap<EventHash, EpochInfo> = mesh
        .epochs()
        .into_iter()
        .map(|info| (info.hash, info))
        .collect();
    let limit = args.limit.unwrap_or(u64::MAX);
    // A bar would interleave with the lines when both go to the terminal.
    let bar = if std::io::stdout().is_terminal() {
        None
    } else {
        progress((mesh.len() as u64).min(limit))
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    let mut result = Ok(());
    let from = args.tail.map_or(0, |tail| {
        mesh.len()
            .saturating_sub(usize::try_from(tail).unwrap_or(usize::MAX))
    });
    for entry in mesh.log_from(from) {
        if printed >= limit {
            break;
        }
        let fields = entry.event.event();
        if author.is_some_and(|author| author != fields.author) {
            continue;
        }
        let (mut summary, mut details) = describe(&entry.event, &epochs);
        if let Some((opened, fields)) = opens.then(|| opened_parts(&mesh, &entry.event)).flatten() {
            summary.push_str(&opened);
            if let (Some(details), Value::Object(fields)) = (details.as_object_mut(), fields) {
                details.extend(fields);
            }
        }
        let mut status = entry
            .status
            .map_or_else(|| "-".to_owned(), |status| status.to_string());
        if entry.left_out {
            status.push_str(", left out");
        }
        let line = if args.json {
            let mut object = json!({
                "hash": entry.event.hash().to_string(),
                "author": fields.author.to_string(),
                "seq": fields.seq,
                "prev": fields.prev.to_string(),
                "time": fields.time,
                "time_rfc3339": format_time(fields.time),
                "kind": fields.body.kind_name(),
                "epoch": epoch_of(&entry.event).to_string(),
                "status": entry.status.map(|status| status.to_string()),
                "left_out": entry.left_out,
            });
            if let (Some(object), Value::Object(details)) = (object.as_object_mut(), details) {
                object.extend(details);
            }
            object.to_string()
        } else {
            format!(
                "{}  {}  {:>5}  {:<7}  {}  {:<20}  {}",
                entry.event.hash().short(),
                fields.author.short(),
                fields.seq,
                fields.body.kind_name(),
                epoch_of(&entry.event).short(),
                status,
                summary
            )
        };
        result = writeln!(out, "{line}");
        if result.is_err() {
            break;
        }
        printed += 1;
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    // A row that did not check ended the log short: that is the answer.
    mesh.check_reads()?;
    match result.and_then(|()| out.flush()) {
        // A closed pipe (`meshlog log | head`) is the reader's choice, not a failure.
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(error).context("writing the log")
        }
        _ => Ok(Verdict::Ok),
    }
}

/// A roster's members as JSON, with their flags when `mesh` knows them.
fn roster_json(roster: &Roster, enabled: Option<&Mesh>) -> Vec<Value> {
    roster
        .iter()
        .map(|(id, entry)| {
            let mut object = json!({
                "member": id.to_string(),
                "role": entry.role().to_string(),
                "signing_key": entry.keys().signing.to_string(),
                "dh_key": entry.keys().dh.to_string(),
                "counter": entry.package_counter(),
            });
            if let (Some(mesh), Some(fields)) = (enabled, object.as_object_mut()) {
                fields.insert("enabled".into(), json!(mesh.is_member_enabled(*id)));
            }
            object
        })
        .collect()
}

/// A roster as text lines, with flags when `mesh` knows them.
fn roster_lines(roster: &Roster, enabled: Option<&Mesh>) -> Vec<String> {
    roster
        .iter()
        .map(|(id, entry)| {
            let flag = match enabled {
                Some(mesh) if mesh.is_member_enabled(*id) => "  on ",
                Some(_) => "  off",
                None => "",
            };
            format!(
                "  {id}  {:<6}{flag}  dh {}  counter {}",
                entry.role().to_string(),
                entry.keys().dh,
                entry.package_counter()
            )
        })
        .collect()
}

/// `meshlog show`.
pub(crate) fn show(args: &ShowArgs) -> anyhow::Result<Verdict> {
    let keys = match &args.keys {
        Some(path) => Some(crate::load_keys(path)?),
        None => None,
    };
    let mesh = crate::open_read_only(&args.db, keys)?;
    match &args.epoch {
        Some(text) => {
            let hash = crate::resolve_epoch(&mesh, text)?;
            show_epoch(&mesh, hash, args.json)?;
        }
        None => show_mesh(&mesh, args.json)?,
    }
    mesh.check_reads()?;
    Ok(Verdict::Ok)
}

fn show_epoch(mesh: &Mesh, hash: EventHash, json_out: bool) -> anyhow::Result<()> {
    let info = mesh
        .epoch(hash)
        .with_context(|| format!("{hash} is not an epoch of this mesh"))?;
    let tip = mesh.tips().contains(&hash);
    let current = mesh.current_epoch() == Some(hash);
    let writer = mesh.writer_epoch() == Some(hash);
    if json_out {
        let value = json!({
            "hash": hash.to_string(),
            "author": info.author.to_string(),
            "genesis": info.is_genesis,
            "applied": info.applied,
            "void_changes": info.void_changes,
            "parents": strings(&info.parents),
            "reason": info.reason,
            "tip": tip,
            "current": current,
            "writer": writer,
            "roster": roster_json(&info.roster, None),
        });
        outln!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let mut standing = vec![if info.applied { "applied" } else { "VOID" }.to_owned()];
    if current {
        standing.push("current".to_owned());
    } else if writer {
        standing.push("writer epoch".to_owned());
    }
    if tip {
        standing.push("tip".to_owned());
    }
    let mut lines = vec![
        ("epoch", hash.to_string()),
        ("status", standing.join(", ")),
        (
            "opened",
            if info.is_genesis {
                format!("genesis, by the founder {}", info.author)
            } else {
                format!("by {}; reason {:?}", info.author, info.reason)
            },
        ),
        ("parents", shorts(&info.parents)),
    ];
    if !info.void_changes.is_empty() {
        lines.push((
            "void",
            format!(
                "changes at positions {}",
                strings(&info.void_changes).join(", ")
            ),
        ));
    }
    lines.push((
        "roster",
        format!(
            "{} member{}: its own roster, whom its secret was wrapped to",
            info.roster.len(),
            plural(info.roster.len())
        ),
    ));
    print_lines(&lines);
    for line in roster_lines(&info.roster, None) {
        outln!("{line}");
    }
    Ok(())
}

fn show_mesh(mesh: &Mesh, json_out: bool) -> anyhow::Result<()> {
    let epochs = mesh.epochs();
    let tips = mesh.tips();
    let current = mesh.current_epoch();
    if json_out {
        let value = json!({
            "group": mesh.group().to_string(),
            "name": mesh.group_name(),
            "founder": mesh.founder().to_string(),
            "events": mesh.len(),
            "digest": mesh.digest().to_string(),
            "current_epoch": current.map(|h| h.to_string()),
            "writer_epoch": mesh.writer_epoch().map(|h| h.to_string()),
            "needs_merge": mesh.needs_merge(),
            "tips": strings(tips),
            "roster": roster_json(mesh.roster(), Some(mesh)),
            "epochs": epochs.iter().map(|info| json!({
                "hash": info.hash.to_string(),
                "author": info.author.to_string(),
                "genesis": info.is_genesis,
                "applied": info.applied,
                "void_changes": info.void_changes,
                "parents": strings(&info.parents),
                "roster_size": info.roster.len(),
                "reason": info.reason,
                "tip": tips.contains(&info.hash),
                "current": current == Some(info.hash),
            })).collect::<Vec<_>>(),
        });
        outln!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let roster = mesh.roster();
    print_lines(&[
        ("group", format!("{} {:?}", mesh.group(), mesh.group_name())),
        ("founder", mesh.founder().to_string()),
        ("events", mesh.len().to_string()),
        ("epoch", epoch_line(mesh)),
        (
            "writer",
            mesh.writer_epoch()
                .map_or_else(|| "none".to_owned(), |h| h.to_string()),
        ),
        ("tips", shorts(tips)),
        (
            "R*",
            format!(
                "{} member{} (the resolved roster)",
                roster.len(),
                plural(roster.len())
            ),
        ),
    ]);
    for line in roster_lines(roster, Some(mesh)) {
        outln!("{line}");
    }
    outln!(
        "{:<10} {} (file order; own roster size, author, reason)",
        "epochs",
        epochs.len()
    );
    for info in &epochs {
        let mut marks = Vec::new();
        if current == Some(info.hash) {
            marks.push("current");
        }
        if tips.contains(&info.hash) {
            marks.push("tip");
        }
        let verdict = if info.applied { "applied" } else { "VOID   " };
        let void = if info.void_changes.is_empty() {
            String::new()
        } else {
            format!(" void changes {}", strings(&info.void_changes).join(","))
        };
        outln!(
            "  {}  {verdict}  roster {:>3}  by {}  parents {}  {:?}{void}{}",
            info.hash.short(),
            info.roster.len(),
            info.author.short(),
            if info.is_genesis {
                "-".to_owned()
            } else {
                shorts(&info.parents)
            },
            if info.is_genesis {
                "genesis"
            } else {
                info.reason.as_str()
            },
            if marks.is_empty() {
                String::new()
            } else {
                format!("  ({})", marks.join(", "))
            }
        );
    }
    outln!("{:<10} {}", "digest", mesh.digest());
    Ok(())
}
