//! The sync commands: `export`, `join`, `ingest`, each one library call on a
//! batch file.
//!
//! meshlog moves no bytes itself: a batch file goes from one peer to the
//! other by any means (scp, a USB stick, mail). The library verifies every
//! event of a batch exactly as it verifies a file on open, so a refused batch
//! changes nothing.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use meshlog::{Batch, Error, Head, LocalKeys, Mesh};
use serde_json::{Value, json};

use crate::{Verdict, shown};

pub(crate) const EXPORT_AFTER_HELP: &str = "\
Writes the events from seq SEQ to the head into OUT, a new batch file (an
existing file is never overwritten). A peer whose head is at seq N needs
--since N+1; a new peer needs --since 0 (the default), for `meshlog join`.

With --keys the export is made as that member, which is refused if the member
is in the current roster but disabled; without keys it is made as an auditor
would. DB is opened read-only: it may be live.

Exit codes: 0 written, 1 refused (the member is disabled, or the file fails
verification), 2 could not run (no such file, OUT exists, SEQ past the head + 1).

Examples:
  meshlog export team.redb --since 0 all.batch
  meshlog export team.redb --keys alice.keys --since 42 new.batch";

pub(crate) const JOIN_AFTER_HELP: &str = "\
Makes a new peer's file DB from BATCH, which must start at the genesis (from
`meshlog export --since 0`). Every event is verified first; on any failure no
file is created. The key file's member need not be in the roster yet: the
report says whether it is. Until it is, `meshlog secret` fails; once an admin
has added it, `meshlog ingest` of the admin's newer events brings the addition
in, and the member then enables itself (members start disabled).

Exit codes: 0 joined, 1 the batch is refused (malformed, not from the genesis,
an event breaks a rule), 2 could not run (DB exists, no such batch or key file).

Examples:
  meshlog export team.redb --since 0 all.batch       # on the admin's machine
  meshlog join bob.redb --keys bob.keys all.batch    # on bob's machine
  meshlog enable bob.redb --keys bob.keys";

pub(crate) const INGEST_AFTER_HELP: &str = "\
Verifies BATCH against DB and appends the events DB lacks, all or nothing.
Events DB already holds (same seq, same hash) are skipped, so batches may
overlap and repeat. A member of DB's current roster must be enabled to
ingest; a peer in no roster yet may ingest, which is how it learns it was added.

A refusal appends nothing and says why:
  fork       another valid event at a seq DB already holds (both hashes shown);
             if one author signed both, that is equivocation, and the pair is
             kept in DB as evidence (`meshlog verify` lists it)
  gap        the batch starts after DB's head + 1 (the missing seq is named)
  foreign    the batch is of another group
  rejected   an event breaks a group rule (seq, hash, rule)
  malformed  the file is not a well-formed batch (bad magic, trailing bytes, …)

Exit codes: 0 ingested (also when nothing was new), 1 refused as above (or the
member is in the roster but disabled), 2 could not run (no such file, DB open for writing
elsewhere, bad arguments).

--json prints one object:
  ok (bool), batch_first, batch_events, added, skipped,
  head_seq, head_hash  (DB's head afterwards; unchanged on refusal)
  error: null, or {kind, message, …} with kind and its fields:
    \"fork\": seq, ours, theirs, ours_author, theirs_author, equivocation (bool)
    \"gap\": missing, first
    \"foreign-batch\": ours, theirs
    \"rejected\": seq, hash, rule_id, rule
    \"malformed-batch\"
    \"refused\" (any other refusal, e.g. a disabled member)
  On exit 2 nothing is printed on stdout; the error is on stderr.

Examples:
  meshlog ingest team.redb --keys alice.keys new.batch
  meshlog ingest team.redb --keys alice.keys new.batch --json";

/// Arguments of `meshlog export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The meshlog database file.
    db: PathBuf,
    /// The batch file to write (must not exist).
    out: PathBuf,
    /// First seq to export: a peer's head seq + 1, or 0 for a new peer.
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    since: u64,
    /// Export as this member (refused if it is a disabled member); without, as an auditor.
    #[arg(long, value_name = "FILE")]
    keys: Option<PathBuf>,
}

/// Arguments of `meshlog join`.
#[derive(Debug, Args)]
pub(crate) struct JoinArgs {
    /// The new database file (must not exist).
    db: PathBuf,
    /// The joining member's key file.
    #[arg(long, value_name = "FILE")]
    keys: PathBuf,
    /// The batch file, starting at the genesis.
    batch: PathBuf,
}

/// Arguments of `meshlog ingest`.
#[derive(Debug, Args)]
pub(crate) struct IngestArgs {
    /// The meshlog database file.
    db: PathBuf,
    /// The acting member's key file.
    #[arg(long, value_name = "FILE")]
    keys: PathBuf,
    /// The batch file.
    batch: PathBuf,
    /// Print JSON (fields listed below).
    #[arg(long)]
    json: bool,
}

/// The seq range a batch covers, for reports.
fn range(batch: &Batch) -> String {
    match batch.len() {
        0 => format!("no events (from seq {})", batch.first()),
        len => format!(
            "seq {} to {} ({len} event{})",
            batch.first(),
            batch.first().saturating_add(len as u64 - 1),
            if len == 1 { "" } else { "s" }
        ),
    }
}

fn head_line(head: Option<Head>) -> String {
    head.map_or_else(
        || "none".to_owned(),
        |head| format!("seq {}  {}", head.seq, head.hash),
    )
}

/// Reads and strictly decodes a batch file. Unreadable is "could not run";
/// malformed bytes are a refusal ([`Error::Batch`]).
fn read_batch(path: &Path) -> anyhow::Result<Result<Batch, Error>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", shown(path)))?;
    Ok(Batch::from_bytes(&bytes).map_err(Error::from))
}

/// Writes `bytes` to a new file; never overwrites, and removes a partial file.
fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!(
                "{} already exists; meshlog will not overwrite it",
                shown(path)
            )
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", shown(path))),
    };
    if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(e).with_context(|| format!("writing {}", shown(path)));
    }
    Ok(())
}

/// `meshlog export`.
pub(crate) fn export(args: &ExportArgs) -> anyhow::Result<Verdict> {
    let keys = args.keys.as_deref().map(LocalKeys::load).transpose()?;
    let mesh = crate::open_read_only(&args.db, keys)?;
    let len = mesh.state().len();
    if args.since > len {
        bail!(
            "--since {}: the chain has {len} events (seq 0 to {}), so a peer can need at most --since {len}",
            args.since,
            len.saturating_sub(1)
        );
    }
    let batch = mesh.export_since(args.since)?;
    let bytes = batch.to_bytes();
    write_new(&args.out, &bytes)?;
    let by = match mesh.member_id() {
        Some(member) => format!("member {member}"),
        None => "an auditor (no keys)".to_owned(),
    };
    println!("exported  {} of group {}", range(&batch), mesh.group());
    println!("as        {by}");
    println!("head      {}", head_line(mesh.state().head()));
    println!("wrote     {} ({} bytes)", shown(&args.out), bytes.len());
    Ok(Verdict::Ok)
}

/// `meshlog join`.
pub(crate) fn join(args: &JoinArgs) -> anyhow::Result<Verdict> {
    let keys = LocalKeys::load(&args.keys)?;
    let batch = read_batch(&args.batch)?
        .with_context(|| format!("{} is not a valid batch", shown(&args.batch)))?;
    let mesh = Mesh::join(&args.db, keys, &batch)?;
    let state = mesh.state();
    let name = state
        .identity()
        .map(|i| i.name.as_str())
        .unwrap_or_default();
    println!(
        "joined    group {} {name:?} into {}",
        mesh.group(),
        shown(&args.db)
    );
    println!("verified  {}", range(&batch));
    println!("head      {}", head_line(state.head()));
    let current = state.current_epoch();
    let epoch = current.map_or(0, |e| e.epoch);
    let Some(member) = mesh.member_id() else {
        return Ok(Verdict::Ok);
    };
    match current.and_then(|e| e.member(member)) {
        Some(entry) => {
            let on = if state.is_enabled(member) {
                "enabled"
            } else {
                "disabled"
            };
            println!(
                "member    {member} is in the current roster (epoch {epoch}) as {}, {on}",
                entry.role
            );
            if !state.is_enabled(member) {
                println!(
                    "next      meshlog enable {} --keys {}",
                    shown(&args.db),
                    shown(&args.keys)
                );
            }
        }
        None => {
            println!("member    {member} is not in the current roster (epoch {epoch})");
            println!(
                "note      an admin can add it later (meshlog add ADMIN_DB --keys ADMIN.keys \
                 --member \"$(meshlog keys show {} --public)\"); until then `meshlog secret` \
                 fails. Then ingest the admin's newer events into {} and enable",
                shown(&args.keys),
                shown(&args.db)
            );
        }
    }
    Ok(Verdict::Ok)
}

/// Why an ingest was refused, for the text and JSON reports.
fn refusal(error: &Error, db: &Path) -> (String, Vec<(&'static str, String)>, Value) {
    match error {
        Error::Fork(fork) => {
            let (ours, theirs) = (fork.ours.event(), fork.theirs.event());
            let mut lines = vec![
                ("ours", format!("{}  by {}", fork.ours.hash(), ours.author)),
                (
                    "theirs",
                    format!("{}  by {}", fork.theirs.hash(), theirs.author),
                ),
            ];
            lines.push(if fork.equivocation {
                (
                    "evidence",
                    format!(
                        "EQUIVOCATION: member {} signed both events; the pair is kept in {} as \
                         evidence (`meshlog verify` lists it)",
                        ours.author,
                        shown(db)
                    ),
                )
            } else {
                (
                    "cause",
                    "two authors changed the group from the same head: the histories diverged \
                     (not equivocation, nothing kept)"
                        .to_owned(),
                )
            });
            let kind = if fork.equivocation {
                ": equivocation"
            } else {
                ""
            };
            (
                format!("fork at seq {}{kind}", fork.seq),
                lines,
                json!({
                    "kind": "fork",
                    "seq": fork.seq,
                    "ours": fork.ours.hash().to_string(),
                    "theirs": fork.theirs.hash().to_string(),
                    "ours_author": ours.author.to_string(),
                    "theirs_author": theirs.author.to_string(),
                    "equivocation": fork.equivocation,
                }),
            )
        }
        Error::Gap { missing, first } => (
            format!(
                "gap: the batch starts at seq {first}, but this chain needs seq {missing} next"
            ),
            vec![(
                "next",
                format!("ask the peer for `meshlog export DB --since {missing}`"),
            )],
            json!({"kind": "gap", "missing": missing, "first": first}),
        ),
        Error::ForeignBatch { ours, theirs } => (
            format!("the batch is of group {theirs}, this chain is group {ours}"),
            Vec::new(),
            json!({
                "kind": "foreign-batch",
                "ours": ours.to_string(),
                "theirs": theirs.to_string(),
            }),
        ),
        Error::Rejected(rejection) => {
            let rule = &rejection.rule;
            (
                format!(
                    "the event at seq {} breaks rule {} {}",
                    rejection.seq,
                    rule.code(),
                    rule.name()
                ),
                vec![
                    ("event", rejection.hash.to_string()),
                    ("rule", rule.to_string()),
                ],
                json!({
                    "kind": "rejected",
                    "seq": rejection.seq,
                    "hash": rejection.hash.to_string(),
                    "rule_id": rule.code(),
                    "rule": rule.name(),
                }),
            )
        }
        Error::Batch(e) => (
            format!("not a valid batch: {e}"),
            Vec::new(),
            json!({"kind": "malformed-batch"}),
        ),
        other => (other.to_string(), Vec::new(), json!({"kind": "refused"})),
    }
}

/// `meshlog ingest`.
pub(crate) fn ingest(args: &IngestArgs) -> anyhow::Result<Verdict> {
    let keys = LocalKeys::load(&args.keys)?;
    // A malformed batch is refused before the database is opened.
    let batch = match read_batch(&args.batch)? {
        Ok(batch) => batch,
        Err(error) => {
            print_refusal(args, &error, None, None)?;
            return Ok(Verdict::Failed);
        }
    };
    let mut mesh = Mesh::open(&args.db, keys)?;
    let report = match mesh.ingest(&batch) {
        Ok(report) => report,
        Err(error) if crate::is_refusal(&error) => {
            print_refusal(args, &error, Some(&batch), mesh.state().head())?;
            return Ok(Verdict::Failed);
        }
        Err(error) => return Err(error.into()),
    };
    if args.json {
        let value = json!({
            "ok": true,
            "batch_first": batch.first(),
            "batch_events": batch.len(),
            "added": report.added,
            "skipped": report.skipped,
            "head_seq": report.head.map(|h| h.seq),
            "head_hash": report.head.map(|h| h.hash.to_string()),
            "error": Value::Null,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("ingested  {} from {}", range(&batch), shown(&args.batch));
        println!("added     {}", report.added);
        println!("skipped   {} (already held)", report.skipped);
        println!("head      {}", head_line(report.head));
    }
    Ok(Verdict::Ok)
}

fn print_refusal(
    args: &IngestArgs,
    error: &Error,
    batch: Option<&Batch>,
    head: Option<Head>,
) -> anyhow::Result<()> {
    let (headline, lines, mut object) = refusal(error, &args.db);
    if args.json {
        if let Some(fields) = object.as_object_mut() {
            fields.insert("message".to_owned(), json!(error.to_string()));
        }
        let value = json!({
            "ok": false,
            "batch_first": batch.map(Batch::first),
            "batch_events": batch.map(Batch::len),
            "added": 0,
            "skipped": 0,
            "head_seq": head.map(|h| h.seq),
            "head_hash": head.map(|h| h.hash.to_string()),
            "error": object,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    match batch {
        Some(batch) => println!("batch     {} from {}", range(batch), shown(&args.batch)),
        None => println!("batch     {}", shown(&args.batch)),
    }
    println!("result    REFUSED: {headline}; nothing was appended");
    for (label, text) in lines {
        println!("{label:<9} {text}");
    }
    if head.is_some() {
        println!("head      {} (unchanged)", head_line(head));
    }
    Ok(())
}
