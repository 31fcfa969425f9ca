//! The sync commands: `frontier`, `export`, `join`, `ingest`, each one
//! library call on a file of bytes.
//!
//! meshlog moves no bytes itself: frontier and batch files go from one peer
//! to the other by any means (scp, a USB stick, mail). Which events a peer
//! lacks is the library's answer to its frontier; the library verifies
//! every event of a batch before it writes any.

use std::path::{Path, PathBuf};

use clap::Args;
use meshlog::{Batch, GroupId, Ingested, Mesh, Role};
use serde_json::{Value, json};

use crate::{Verdict, epoch_line, load_keys, plural, print_lines, shown};

pub(crate) const FRONTIER_AFTER_HELP: &str = "\
Writes what DB holds (the heads of every member's feed, among the events it
does not leave out, SPEC.md §6.4) to OUT, a small file
to hand to a peer, who exports what it lacks with `meshlog export --frontier`.
DB is opened read-only. OUT must not exist.

Examples:
  meshlog frontier bob.redb bob.frontier                       # on bob's machine
  meshlog export team.redb --frontier bob.frontier to-bob.batch   # on the admin's";

pub(crate) const EXPORT_AFTER_HELP: &str = "\
Writes to OUT a batch of the events of DB that a peer with the frontier FILE
lacks, in an order in which each event comes after what it names, but the
events DB leaves out (SPEC.md §6.4). Without --frontier: every event not
left out, for a new peer (`meshlog join`). DB is opened
read-only and may be live; OUT must not exist.

When the peer's frontier covers every event DB would send there is nothing
to send:
export refuses to write an empty batch, says so on stderr (\"nothing to
send\") and exits 1. An empty batch would only hide that the peer is up to
date, or that the wrong frontier was given.

Exit codes: 0 written, 1 nothing to send (no file written) or DB fails
verification, 2 could not run (no such file, OUT exists, FILE is not a
frontier).

Examples:
  meshlog export team.redb all.batch                      # everything not left out, for a new peer
  meshlog export team.redb --frontier bob.frontier to-bob.batch";

pub(crate) const JOIN_AFTER_HELP: &str = "\
Makes a new peer's file DB from BATCH, which must hold the genesis (an export
without --frontier); its events may come in any order. Every event is verified
first; on any failure no file is created. The key file's member need not be
in the roster yet: the report says whether it is. Until an admin adds it,
`meshlog secret` fails; once the admin's rotation is ingested, the member
enables itself (members start disabled).

A batch is refused (exit 1, no file) when it is malformed (kind
\"malformed-batch\"), holds no genesis (\"no-genesis\": an empty batch, or
an export against a frontier), names another group in its header than its
genesis's (\"foreign-batch\"), or an event breaks a rule (\"rejected\", named
with the rule's id and the event). A file that is no batch at all
(\"not-a-batch\") or one of another format version (\"unsupported-batch\")
is the wrong file: exit 2, as from every command given a file of the wrong
kind.

With --peer ADDR instead of BATCH, the first copy comes over the network
from a member who serves it (`meshlog serve`, SPEC.md §17): the serving
member admits only a member its roster names, and the copy must name the
server as a member. Its parts are verified and written as they arrive; on
any failure the file is removed. A large copy in a terminal shows progress.
With --group HEX (the group id that came with the invitation: `meshlog
show` prints it) a server of any other group is refused; without, the
newcomer takes the group the server serves. The copy gives up after 10
minutes.

Exit codes: 0 joined, 1 the batch is refused (or the server refuses the
member, or sends an invalid event), 2 could not run (DB exists, no such
batch or key file, no connection).

--json prints one object:
  ok (bool), path, group, name, events, member, in_roster (bool), role,
  enabled (bool), current_epoch, needs_merge, digest,
  error: null, or {class, kind, message} and, for a refused event,
         rule_id, rule, hash, author, seq
  With --peer, a network failure is kind \"network\". On an error that is
  not the library's (an unreadable batch file) nothing is printed on
  stdout; the error is on stderr.

Examples:
  meshlog export team.redb all.batch                 # on the admin's machine
  meshlog join bob.redb --keys bob.keys all.batch    # on bob's machine
  meshlog join bob.redb --keys bob.keys --peer 10.0.0.1:7447   # or over the network
  meshlog enable bob.redb --keys bob.keys";

pub(crate) const INGEST_AFTER_HELP: &str = "\
Verifies BATCH against DB and adds the events DB lacks but those left out
(SPEC.md §6.4: checked, not taken), in any order, checked all or nothing: one
event that breaks a rule refuses the whole batch (named with the
rule's id, the event's hash, author and seq), and so does a batch whose
events wait for events neither it nor DB holds (incomplete). Events DB holds
already are skipped, so batches may overlap and repeat. Concurrent writes are
ordinary; concurrent rotations may leave the mesh needing a merge, which the
report says. With --merge, the key file's member makes that merge at once
if it may (an enabled admin or owner).

Exit codes: 0 ingested (also when nothing was new), 1 refused as above
(nothing written), 2 could not run (no such file, DB open for writing
elsewhere, BATCH is no batch or of another format version, bad arguments).

--json prints one object:
  ok (bool), batch_events, added, known, left_out (valid events not
  taken: signed by authors outside the roster on void rotations, SPEC.md
  §6.4), needs_merge (bool, after the
  ingest and any merge), merged (the merge's hash, or null), current_epoch,
  digest,
  error: null, or {class, kind, message} with kind one of
    \"rejected\" (and rule_id, rule, hash, author, seq), \"incomplete\",
    \"foreign-batch\" (and ours, theirs), \"malformed-batch\",
    \"not-a-batch\", \"unsupported-batch\", or another;
    also a merge that --merge asked for and the rules refused (the ingest
    itself was written then: added counts it)
  On an error that is not the library's (an unreadable batch file) nothing
  is printed on stdout; the error is on stderr.

Examples:
  meshlog ingest team.redb --keys alice.keys new.batch
  meshlog ingest team.redb --keys founder.keys new.batch --merge --json";

/// Arguments of `meshlog frontier`.
#[derive(Debug, Args)]
pub(crate) struct FrontierArgs {
    /// The meshlog file.
    db: PathBuf,
    /// The frontier file to write (must not exist).
    out: PathBuf,
}

/// Arguments of `meshlog export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The meshlog file.
    db: PathBuf,
    /// The peer's frontier (`meshlog frontier`); without it, everything not
    /// left out.
    #[arg(long, value_name = "FILE")]
    frontier: Option<PathBuf>,
    /// The batch file to write (must not exist).
    out: PathBuf,
}

/// Arguments of `meshlog join`.
#[derive(Debug, Args)]
pub(crate) struct JoinArgs {
    /// The new meshlog file (must not exist).
    db: PathBuf,
    /// The joining member's key file.
    #[arg(long, value_name = "FILE")]
    keys: PathBuf,
    /// The batch file, holding the genesis.
    #[arg(required_unless_present = "peer", conflicts_with = "peer")]
    batch: Option<PathBuf>,
    /// Fetch the first copy over the network from a member who serves
    /// (host:port), instead of from a batch file.
    #[arg(long, value_name = "ADDR")]
    peer: Option<String>,
    /// With --peer: the group id (hex) the peer must serve, as an
    /// invitation names it; without, the newcomer takes the peer's group.
    #[arg(long, value_name = "HEX", requires = "peer")]
    group: Option<GroupId>,
    /// Print JSON (fields listed below).
    #[arg(long)]
    json: bool,
}

/// Arguments of `meshlog ingest`.
#[derive(Debug, Args)]
pub(crate) struct IngestArgs {
    /// The meshlog file.
    db: PathBuf,
    /// The acting member's key file.
    #[arg(long, value_name = "FILE")]
    keys: PathBuf,
    /// The batch file.
    batch: PathBuf,
    /// Print JSON (fields listed below).
    #[arg(long)]
    json: bool,
    /// Merge right away if the mesh then needs it and the member may.
    #[arg(long)]
    merge: bool,
    #[command(flatten)]
    copy: crate::CopyArgs,
}

/// Reads and strictly decodes a batch file. Unreadable is "could not run";
/// malformed bytes are the library's verification failure.
fn read_batch(path: &Path) -> anyhow::Result<Result<Batch, meshlog::Error>> {
    let bytes = crate::read_input(path, "batch")?;
    Ok(Batch::from_bytes(&bytes).map_err(meshlog::Error::from))
}

/// `meshlog frontier`.
pub(crate) fn frontier(args: &FrontierArgs) -> anyhow::Result<Verdict> {
    let mesh = crate::open_read_only(&args.db, None)?;
    let bytes = mesh.frontier().to_bytes();
    crate::write_new(&args.out, &bytes)?;
    print_lines(&[
        (
            "frontier",
            format!("of {} ({} events)", shown(&args.db), mesh.len()),
        ),
        (
            "wrote",
            format!("{} ({} bytes)", shown(&args.out), bytes.len()),
        ),
    ]);
    Ok(Verdict::Ok)
}

/// `meshlog export`.
pub(crate) fn export(args: &ExportArgs) -> anyhow::Result<Verdict> {
    // An unreadable frontier means the command cannot run: read it first.
    let frontier = match &args.frontier {
        Some(path) => Some(crate::read_frontier(path, "frontier")?),
        None => None,
    };
    let mesh = crate::open_read_only(&args.db, None)?;
    let batch = match &frontier {
        Some(frontier) => mesh.export(frontier),
        None => mesh.export_all(),
    };
    let peer = match &args.frontier {
        Some(path) => format!("a peer with the frontier {}", shown(path)),
        None => "a new peer: everything not left out, from the genesis".to_owned(),
    };
    if batch.is_empty() {
        eprintln!(
            "error: nothing to send: {peer} holds every event {} would send ({} events held); \
             no file written",
            shown(&args.db),
            mesh.len()
        );
        return Ok(Verdict::Failed);
    }
    // A batch cut short by a row that did not check is not written.
    mesh.check_reads()?;
    let bytes = batch.to_bytes();
    crate::write_new(&args.out, &bytes)?;
    print_lines(&[
        (
            "exported",
            format!(
                "{} event{} of {} of group {} {:?}",
                batch.len(),
                plural(batch.len()),
                mesh.len(),
                mesh.group(),
                mesh.group_name()
            ),
        ),
        ("for", peer),
        (
            "wrote",
            format!("{} ({} bytes)", shown(&args.out), bytes.len()),
        ),
    ]);
    Ok(Verdict::Ok)
}

/// Where the local member stands in `mesh`: (in R*, its role, enabled).
fn standing(mesh: &Mesh) -> (Option<Role>, bool) {
    let role = mesh
        .member_id()
        .and_then(|id| mesh.roster().get(id).map(|entry| entry.role()));
    (role, mesh.is_enabled())
}

/// Prints a library error as JSON on stdout when `--json` asked for it,
/// then hands it on (to stderr and the exit code).
fn failed(json_out: bool, fields: Value, error: meshlog::Error) -> anyhow::Result<Verdict> {
    if json_out {
        let mut object = fields;
        if let Some(map) = object.as_object_mut() {
            map.insert("ok".into(), json!(false));
            map.insert("error".into(), crate::error_json(&error));
        }
        outln!("{}", serde_json::to_string_pretty(&object)?);
    }
    Err(error.into())
}

/// `meshlog join`.
pub(crate) fn join(args: &JoinArgs) -> anyhow::Result<Verdict> {
    let keys = load_keys(&args.keys)?;
    let member = keys.member_id();
    let empty = json!({"path": shown(&args.db), "member": member.to_string()});
    let mut fetched = None;
    let mesh = match (&args.peer, &args.batch) {
        (Some(peer), _) => match crate::network::join(&args.db, keys, peer, args.group) {
            Ok((mesh, report)) => {
                fetched = Some(report);
                mesh
            }
            Err(error) => {
                if args.json {
                    let mut object = empty;
                    if let Some(map) = object.as_object_mut() {
                        map.insert("ok".into(), json!(false));
                        map.insert("error".into(), crate::any_error_json(&error));
                    }
                    outln!("{}", serde_json::to_string_pretty(&object)?);
                }
                return Err(error);
            }
        },
        (None, Some(batch)) => {
            let batch = match read_batch(batch)? {
                Ok(batch) => batch,
                Err(error) => return failed(args.json, empty, error),
            };
            let joined = crate::with_spinner("verifying every event of the batch…", || {
                Mesh::join(&args.db, keys, &batch)
            });
            match joined {
                Ok(mesh) => mesh,
                Err(error) => return failed(args.json, empty, error),
            }
        }
        (None, None) => anyhow::bail!("give a batch file or --peer"),
    };
    let (role, enabled) = standing(&mesh);
    if args.json {
        let value = json!({
            "ok": true,
            "path": shown(&args.db),
            "group": mesh.group().to_string(),
            "name": mesh.group_name(),
            "events": mesh.len(),
            "member": member.to_string(),
            "in_roster": role.is_some(),
            "role": role.map(|role| role.to_string()),
            "enabled": enabled,
            "current_epoch": mesh.current_epoch().map(|h| h.to_string()),
            "needs_merge": mesh.needs_merge(),
            "digest": mesh.digest().to_string(),
            "error": Value::Null,
        });
        outln!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(Verdict::Ok);
    }
    let mut lines = vec![
        (
            "joined",
            format!(
                "group {} {:?} into {}",
                mesh.group(),
                mesh.group_name(),
                shown(&args.db)
            ),
        ),
        (
            "verified",
            format!("{} event{}", mesh.len(), plural(mesh.len())),
        ),
        ("epoch", epoch_line(&mesh)),
    ];
    if let Some(report) = fetched {
        lines.insert(1, ("from", report));
    }
    match role {
        Some(role) => {
            let on = if enabled { "enabled" } else { "disabled" };
            lines.push(("member", format!("{member} is in R* as {role}, {on}")));
            if !enabled {
                lines.push((
                    "next",
                    format!(
                        "meshlog enable {} --keys {}",
                        shown(&args.db),
                        shown(&args.keys)
                    ),
                ));
            }
        }
        None => {
            lines.push(("member", format!("{member} is not in R* yet")));
            lines.push((
                "next",
                format!(
                    "an admin adds it (meshlog add ADMIN.redb --keys ADMIN.keys --member \
                     \"$(meshlog keys show {} --public)\"); ingest the admin's export into {}, \
                     then enable",
                    shown(&args.keys),
                    shown(&args.db)
                ),
            ));
        }
    }
    lines.push(("digest", mesh.digest().to_string()));
    print_lines(&lines);
    Ok(Verdict::Ok)
}

/// `meshlog ingest`.
pub(crate) fn ingest(args: &IngestArgs) -> anyhow::Result<Verdict> {
    let keys = load_keys(&args.keys)?;
    let empty = json!({"batch_events": Value::Null, "added": 0, "known": 0});
    // A malformed batch is refused before the file is opened.
    let batch = match read_batch(&args.batch)? {
        Ok(batch) => batch,
        Err(error) => return failed(args.json, empty, error),
    };
    let refused_fields = json!({"batch_events": batch.len(), "added": 0, "known": 0});
    let mut mesh = crate::open_writer(&args.db, &args.keys, keys, args.copy)?;
    let ingested = crate::with_spinner("verifying the batch…", || mesh.ingest(&batch));
    let ingested: Ingested = match ingested {
        Ok(ingested) => ingested,
        Err(error) => return failed(args.json, refused_fields, error),
    };
    // The merge: only when asked, needed, and the rules allow it (the
    // library says); otherwise the report says who must make it.
    let may_merge = mesh.may_merge();
    // The ingest is written whatever becomes of the merge: report it first,
    // then a refused merge.
    let (merged, merge_error) = if args.merge && ingested.needs_merge && may_merge {
        match mesh.merge() {
            Ok(merged) => (merged, None),
            Err(error) => (None, Some(error)),
        }
    } else {
        (None, None)
    };
    if args.json {
        let value = json!({
            "ok": merge_error.is_none(),
            "batch_events": batch.len(),
            "added": ingested.added,
            "known": ingested.known,
            "left_out": ingested.left_out,
            "needs_merge": mesh.needs_merge(),
            "merged": merged.map(|h| h.to_string()),
            "current_epoch": mesh.current_epoch().map(|h| h.to_string()),
            "digest": mesh.digest().to_string(),
            "error": merge_error.as_ref().map(crate::error_json),
        });
        outln!("{}", serde_json::to_string_pretty(&value)?);
        return match merge_error {
            Some(error) => Err(error.into()),
            None => Ok(Verdict::Ok),
        };
    }
    let mut lines = vec![
        (
            "ingested",
            format!(
                "{} event{} from {}",
                batch.len(),
                plural(batch.len()),
                shown(&args.batch)
            ),
        ),
        ("added", ingested.added.to_string()),
        ("known", format!("{} (already held)", ingested.known)),
    ];
    if ingested.left_out > 0 {
        lines.push((
            "left out",
            format!(
                "{} (valid, but signed outside the roster on void rotations: not taken, SPEC.md §6.4)",
                ingested.left_out
            ),
        ));
    }
    if let Some(merge) = merged {
        lines.push(("merged", format!("{merge} (the tips, now one epoch)")));
    } else if mesh.needs_merge() {
        let who = if may_merge {
            format!(
                "run `meshlog merge {} --keys {}` (or ingest with --merge)",
                shown(&args.db),
                shown(&args.keys)
            )
        } else {
            "an enabled admin or owner must make it; this member may not".to_owned()
        };
        lines.push(("merge", format!("needed: {who}")));
    }
    lines.push(("epoch", epoch_line(&mesh)));
    lines.push(("digest", mesh.digest().to_string()));
    print_lines(&lines);
    match merge_error {
        Some(error) => Err(error.into()),
        None => Ok(Verdict::Ok),
    }
}
