//! The `meshlog` command-line tool.
//!
//! A thin shell over the library (STYLE.md §13): every subcommand parses its
//! arguments, makes one library call (or one verifying open and a walk over
//! what the library reports), and formats the result. The rules, the
//! comparison of a file with a checkpoint and the classification of errors
//! all live in the library; this binary only presents them.
//!
//! Exit codes come from one place, [`meshlog::Error::class`]: 0 when the
//! command did what was asked, 1 for a verification failure or a refusal,
//! 2 when the command could not run. The binary's own refusal (`export`
//! with nothing to send) exits 1 as well.

#![deny(clippy::print_stdout)]

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use meshlog::{ErrorClass, EventHash, LocalKeys, MemberId, Mesh, MeshOptions};
use serde_json::{Value, json};

// First, so that its macros are in scope in every module after it.
#[macro_use]
mod output;

mod audit;
mod demo;
mod network;
mod operator;
mod sealing;
mod sync;

/// Logs longer than this get a progress bar while the CLI walks them.
const PROGRESS_THRESHOLD: u64 = 10_000;

/// The shortest member id or event hash prefix the CLI resolves: the
/// `short()` form that `log` and `show` print.
const MIN_PREFIX: usize = 8;

const MAIN_AFTER_HELP: &str = "\
Exit codes:
  0  success; for verify: every event and every projection verified (and the
     file still holds --expect's checkpoint)
  1  verification failure (a tampered or inconsistent file, a batch whose
     events break a rule, an incomplete batch, a rolled-back file) or a
     refusal (the rules say no to a change by the local member: its
     role, a disabled member, a write that waits for a merge, a secret of an
     epoch it is not in); nothing was written. For open: a sealed message
     altered, forged, or of an epoch the member is not in. A refused event is named with
     the rule's id (V1-V10, F1-F7, E1-E8), its hash, author and seq
  2  the command could not run: no such file, not a meshlog file (or a file
     of an older format), the file is open for writing elsewhere, a bad key
     file, another member's copy (--shared-copy if it is shared), a copy
     older than your feed (sync first), bad arguments, standard output that
     cannot be written (a full disk; a reader that closes the pipe early, as
     `| head` does, is no error: the command's own code stands)

`export` refuses to write an empty batch (exit 1): when the peer's frontier
already covers every event this file would send, there is nothing to send.

Audit commands (verify, log, show) need no keys and never change a byte of
the file; like backup, secret, frontier and export they open it read-only, so
they work on a live mesh that another process holds open for writing.
Operator commands need the acting member's key file.

Sync is by frontier: a peer writes what it holds (`meshlog frontier`), the
other exports what that frontier lacks (`meshlog export --frontier`), and the
peer ingests the batch (checked all or nothing; events left out, SPEC.md
§6.4, are not taken). Concurrent writes on two copies are ordinary: both
sides end with the same events, but those left out, and the same digest.

Examples:
  meshlog demo ./demo
  meshlog verify ./demo/founder.redb --json
  meshlog keys new alice.keys
  meshlog add team.redb --keys founder.keys --member \"$(meshlog keys show alice.keys --public)\"
  meshlog export team.redb all.batch && meshlog join alice.redb --keys alice.keys all.batch
  meshlog frontier alice.redb alice.frontier
  meshlog export team.redb --frontier alice.frontier new.batch
  meshlog ingest alice.redb --keys alice.keys new.batch";

/// meshlog: audit and operate a mesh, a signed membership log whose members
/// each write their own feed.
#[derive(Debug, Parser)]
#[command(name = "meshlog", version, after_help = MAIN_AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More log lines on stderr (network commands): -v debug, -vv trace.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only warnings and errors in the log on stderr (network commands).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a sample mesh on two copies, sync them, and verify the result.
    #[command(after_help = demo::DEMO_AFTER_HELP)]
    Demo(demo::DemoArgs),
    /// Verify every event and every stored projection, and report.
    #[command(after_help = audit::VERIFY_AFTER_HELP)]
    Verify(audit::VerifyArgs),
    /// List events, one line each, with their status.
    #[command(after_help = audit::LOG_AFTER_HELP)]
    Log(audit::LogArgs),
    /// Show the resolved roster, the current epoch, the tips and every epoch.
    #[command(after_help = audit::SHOW_AFTER_HELP)]
    Show(audit::ShowArgs),
    /// Make or inspect a member's key file.
    #[command(subcommand)]
    Keys(operator::KeysCommand),
    /// Found a new mesh in a new file; the key file's member is its owner.
    #[command(after_help = operator::CREATE_AFTER_HELP)]
    Create(operator::CreateArgs),
    /// Turn the key file's member on (members start disabled).
    #[command(after_help = operator::ENABLE_AFTER_HELP)]
    Enable(operator::WriterArgs),
    /// Turn the key file's member off.
    #[command(after_help = operator::ENABLE_AFTER_HELP)]
    Disable(operator::WriterArgs),
    /// Add a member from its key package (a rotation).
    #[command(after_help = operator::ADD_AFTER_HELP)]
    Add(operator::AddArgs),
    /// Remove a member (a rotation whose secret it does not get).
    #[command(after_help = operator::REMOVE_AFTER_HELP)]
    Remove(operator::RemoveArgs),
    /// Change a member's role between member and admin (a rotation).
    #[command(after_help = operator::ROLE_AFTER_HELP)]
    Role(operator::RoleArgs),
    /// Rotate to a fresh secret without changing the roster.
    #[command(after_help = operator::REFRESH_AFTER_HELP)]
    Refresh(operator::RefreshArgs),
    /// Merge concurrent rotations, if the mesh needs it.
    #[command(after_help = operator::MERGE_AFTER_HELP)]
    Merge(operator::WriterArgs),
    /// Append an application event.
    #[command(after_help = operator::APPEND_AFTER_HELP)]
    Append(operator::AppendArgs),
    /// Recover an epoch secret with the key file's member; prints its fingerprint.
    #[command(after_help = operator::SECRET_AFTER_HELP)]
    Secret(operator::SecretArgs),
    /// Write a verified, consistent copy of a file to a new file.
    #[command(after_help = operator::BACKUP_AFTER_HELP)]
    Backup(operator::BackupArgs),
    /// Seal a message for the members of the current epoch.
    #[command(after_help = sealing::SEAL_AFTER_HELP)]
    Seal(sealing::SealArgs),
    /// Open a sealed message: check its sender and print its plaintext.
    #[command(after_help = sealing::OPEN_AFTER_HELP)]
    Open(sealing::OpenArgs),
    /// Write what a file holds (its frontier), for a peer to export against.
    #[command(after_help = sync::FRONTIER_AFTER_HELP)]
    Frontier(sync::FrontierArgs),
    /// Write the events a peer lacks into a batch file.
    #[command(after_help = sync::EXPORT_AFTER_HELP)]
    Export(sync::ExportArgs),
    /// Make a new peer's file from a batch that holds the genesis.
    #[command(after_help = sync::JOIN_AFTER_HELP)]
    Join(sync::JoinArgs),
    /// Verify a peer's batch and add the events this file lacks (but those
    /// left out, SPEC.md §6.4).
    #[command(after_help = sync::INGEST_AFTER_HELP)]
    Ingest(sync::IngestArgs),
    /// Serve members over the network until stopped (SPEC.md §17).
    #[command(after_help = network::SERVE_AFTER_HELP)]
    Serve(network::ServeArgs),
    /// Sync with peers over the network; with --watch, stay and gossip.
    #[command(after_help = network::SYNC_AFTER_HELP)]
    Sync(network::SyncArgs),
}

/// What a command concluded, once it ran to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Exit 0.
    Ok,
    /// Exit 1: the report printed says what failed, or what was refused.
    Failed,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    network::init_logging(cli.verbose, cli.quiet);
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Verify(args) => audit::verify(&args),
        Command::Log(args) => audit::log(&args),
        Command::Show(args) => audit::show(&args),
        Command::Keys(command) => operator::keys(&command),
        Command::Create(args) => operator::create(&args),
        Command::Enable(args) => operator::set_enabled(&args, true),
        Command::Disable(args) => operator::set_enabled(&args, false),
        Command::Add(args) => operator::add(&args),
        Command::Remove(args) => operator::remove(&args),
        Command::Role(args) => operator::role(&args),
        Command::Refresh(args) => operator::refresh(&args),
        Command::Merge(args) => operator::merge(&args),
        Command::Append(args) => operator::append(&args),
        Command::Secret(args) => operator::secret(&args),
        Command::Backup(args) => operator::backup(&args),
        Command::Seal(args) => sealing::seal(&args),
        Command::Open(args) => sealing::open(&args),
        Command::Frontier(args) => sync::frontier(&args),
        Command::Export(args) => sync::export(&args),
        Command::Join(args) => sync::join(&args),
        Command::Ingest(args) => sync::ingest(&args),
        Command::Serve(args) => network::serve(&args),
        Command::Sync(args) => network::sync(&args),
    };
    let code = match result {
        Ok(Verdict::Ok) => 0,
        Ok(Verdict::Failed) => 1,
        Err(error) => {
            to_stderr(&error_text(&error));
            exit_code(&error)
        }
    };
    match output::finish() {
        // The reader stopped reading (`meshlog show DB | head`): its choice,
        // and the command's own verdict stands.
        Some(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(code),
        Some(error) => {
            to_stderr(&format!("error: writing to standard output: {error}\n"));
            ExitCode::from(2)
        }
        None => ExitCode::from(code),
    }
}

/// Writes to standard error; a failure there has nowhere to be reported.
fn to_stderr(text: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// The library error behind an error of this binary, if there is one.
fn library_error(error: &anyhow::Error) -> Option<&meshlog::Error> {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<meshlog::Error>())
}

/// The exit code of an error: the library's class decides; an error of the
/// binary alone (a file it could not read, an argument it could not resolve)
/// means the command could not run.
fn exit_code(error: &anyhow::Error) -> u8 {
    let net_class = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<meshlog::net::NetError>())
        .map(meshlog::net::NetError::class);
    match net_class.or_else(|| library_error(error).map(meshlog::Error::class)) {
        Some(ErrorClass::VerificationFailure | ErrorClass::Refusal) => 1,
        _ => 2,
    }
}

/// `error: …` and, when an event broke a rule, the rule's id and the event.
fn error_text(error: &anyhow::Error) -> String {
    let library = library_error(error);
    let headline = match library {
        // A local write the rules refused was never made: name the rule,
        // not an event hash that does not exist.
        Some(meshlog::Error::Refused(rejection)) => {
            format!(
                "refused by rule {}: {}",
                rejection.rule.id(),
                rejection.rule
            )
        }
        _ => format!("{error:#}"),
    };
    let mut text = format!("error: {headline}\n");
    for (label, value) in library.map(error_lines).unwrap_or_default() {
        text.push_str(&format!("{label:<10} {value}\n"));
    }
    text
}

/// The labelled lines that name what a library error is about: the rule and
/// the event for a refused event, the missing heads of a rollback.
fn error_lines(error: &meshlog::Error) -> Vec<(&'static str, String)> {
    let mut lines = Vec::new();
    if let Some(rule) = error.rule_id() {
        lines.push(("rule", rule.to_owned()));
    }
    if let Some(rejection) = error.rejection() {
        let made = rejection.hash != EventHash::ZERO;
        lines.push((
            "event",
            if made {
                rejection.hash.to_string()
            } else {
                "none: refused before it was made".to_owned()
            },
        ));
        lines.push(("author", rejection.author.to_string()));
        lines.push((
            "seq",
            if made {
                rejection.seq.to_string()
            } else {
                format!("{} (the position it would have taken)", rejection.seq)
            },
        ));
    }
    match error {
        meshlog::Error::RolledBack { missing } => {
            for head in missing {
                lines.push(("missing", head.to_string()));
            }
        }
        meshlog::Error::Incomplete { waiting, .. } => {
            lines.push(("waiting", waiting.to_string()));
        }
        _ => {}
    }
    lines
}

/// A library error as `--json` prints it: `{class, kind, message}` and, for
/// a refused event, `rule_id, rule, hash, author, seq`; for a rollback,
/// `missing`.
/// [`error_json`] of any error of a network command: the library error
/// behind it if there is one, else the network error's class (kind
/// "network"), else the binary's own (class "could-not-run").
fn any_error_json(error: &anyhow::Error) -> Value {
    let net = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<meshlog::net::NetError>());
    match (library_error(error), net) {
        (Some(library), _) => error_json(library),
        (None, Some(net)) => json!({
            "class": net.class().name(),
            "kind": "network",
            "message": net.to_string(),
        }),
        (None, None) => json!({
            "class": ErrorClass::CouldNotRun.name(),
            "kind": "other",
            "message": format!("{error:#}"),
        }),
    }
}

fn error_json(error: &meshlog::Error) -> Value {
    use meshlog::Error;
    let mut object = json!({
        "class": error.class().name(),
        "kind": error.kind(),
        "message": error.to_string(),
    });
    if let Some(fields) = object.as_object_mut() {
        if let Some(rule) = error.rule_id() {
            fields.insert("rule_id".into(), json!(rule));
        }
        if let Some(rejection) = error.rejection() {
            fields.insert("rule".into(), json!(rejection.rule.to_string()));
            // An event refused before it was made has no hash.
            let hash = (rejection.hash != EventHash::ZERO).then(|| rejection.hash.to_string());
            fields.insert("hash".into(), json!(hash));
            fields.insert("author".into(), json!(rejection.author.to_string()));
            fields.insert("seq".into(), json!(rejection.seq));
        }
        match error {
            Error::RolledBack { missing } => {
                fields.insert("missing".into(), json!(strings(missing)));
            }
            Error::ForeignBatch { ours, theirs } => {
                fields.insert("ours".into(), json!(ours.to_string()));
                fields.insert("theirs".into(), json!(theirs.to_string()));
            }
            _ => {}
        }
    }
    object
}

/// A spinner on stderr while a single long library call runs (the verifying
/// open has no progress hook), only when someone is watching.
fn spinner(message: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(message.to_owned());
    spinner.enable_steady_tick(Duration::from_millis(120));
    Some(spinner)
}

/// A progress bar on stderr for a walk over `total` events, when the walk is
/// long and someone is watching.
fn progress(total: u64) -> Option<indicatif::ProgressBar> {
    if total <= PROGRESS_THRESHOLD || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} events ({eta} left)")
    {
        bar.set_style(style);
    }
    Some(bar)
}

/// Runs a verifying open under a spinner.
fn with_spinner<T>(message: &str, open: impl FnOnce() -> T) -> T {
    let spinner = spinner(message);
    let opened = open();
    if let Some(spinner) = spinner {
        spinner.finish_and_clear();
    }
    opened
}

/// Options whose verifying open shows a progress bar on stderr (events
/// verified, rate and time left) when someone is watching and the open
/// verifies many events: a member's own open, which verifies only what its
/// checkpoint does not cover, seldom does.
fn with_progress(options: MeshOptions) -> (MeshOptions, impl FnOnce()) {
    let bar: std::sync::Arc<std::sync::OnceLock<indicatif::ProgressBar>> = Default::default();
    let shown = std::sync::Arc::clone(&bar);
    let options = if std::io::stderr().is_terminal() {
        options.progress(move |verified, total| {
            if total <= PROGRESS_THRESHOLD {
                return;
            }
            let bar = bar.get_or_init(|| {
                let bar = indicatif::ProgressBar::new(total);
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "verifying {bar:40} {pos}/{len} events ({per_sec}, {eta} left)",
                ) {
                    bar.set_style(style);
                }
                bar
            });
            bar.set_position(verified);
        })
    } else {
        options
    };
    let finish = move || {
        if let Some(bar) = shown.get() {
            bar.finish_and_clear();
        }
    };
    (options, finish)
}

/// Opens a file read-only (never a byte written), with the local member's
/// keys if given, and a progress bar while every event is verified.
fn open_read_only(path: &Path, keys: Option<LocalKeys>) -> meshlog::Result<Mesh> {
    let (options, finish) = with_progress(MeshOptions::new());
    let opened = options.open_read_only(path, keys);
    finish();
    let mesh = opened?;
    warn_unreplayed(&mesh);
    Ok(mesh)
}

/// How a command that writes treats the copy it writes on: whose copy it
/// is (SPEC.md §9.1) and the member's feed mark (§11.2).
#[derive(Debug, Clone, Copy, Default, Args)]
pub(crate) struct CopyArgs {
    /// Write on a copy that belongs to another member than the key file's:
    /// only for a copy deliberately shared by several members.
    #[arg(long)]
    shared_copy: bool,
    /// Write even though this copy lacks the newest event of your feed that
    /// the feed mark beside your key file names: only when that event is
    /// lost and reached no peer (otherwise sync from a peer first).
    #[arg(long)]
    accept_restored_copy: bool,
}

/// Opens a file to write to it as the member of the key file at
/// `key_file`, with a spinner while every event is verified. The member's
/// feed mark beside its key file guards its feed (SPEC.md §11.2).
fn open_writer(
    path: &Path,
    key_file: &Path,
    keys: LocalKeys,
    copy: CopyArgs,
) -> meshlog::Result<Mesh> {
    let (options, finish) = with_progress(MeshOptions::new());
    let opened = options
        .shared_copy(copy.shared_copy)
        .feed_mark(meshlog::feed_mark_path(key_file))
        .accept_restored_copy(copy.accept_restored_copy)
        .open(path, keys);
    finish();
    let mesh = opened?;
    warn_unreplayed(&mesh);
    Ok(mesh)
}

/// Says on stderr what the journal beside the file held and the open could
/// not replay, and where a writer kept it (SPEC.md §9.6).
fn warn_unreplayed(mesh: &Mesh) {
    let report = mesh.report();
    if report.journal_unreplayed == 0 {
        return;
    }
    let mut warning = unreplayed_warning(
        report.journal_unreplayed,
        report.journal_unreplayed_offset,
        &report.path,
    );
    if let Some(aside) = &report.journal_set_aside {
        warning.push_str(&format!(
            "; the journal was kept as {} and a new one started. If this member's \
             own events were among them, sync with a peer before writing again, so as \
             not to fork its feed",
            aside.display()
        ));
    }
    to_stderr(&format!("warning: {warning}\n"));
}

/// What a journal held and could not replay, in words.
fn unreplayed_warning(events: usize, offset: Option<u64>, path: &Path) -> String {
    let from = offset.map_or_else(String::new, |offset| format!(", from byte {offset}"));
    format!(
        "{events} event{} the journal held could not be replayed{from} of {}-journal \
         (a damaged frame, or the journal of another copy of the group); the file's \
         own events are unaffected",
        if events == 1 { "" } else { "s" },
        path.display()
    )
}

/// Loads a key file; its errors are the library's (exit 2).
fn load_keys(path: &Path) -> anyhow::Result<LocalKeys> {
    Ok(LocalKeys::load(path).map_err(meshlog::Error::from)?)
}

/// An event's claimed time as RFC 3339, or the raw number if it is beyond
/// what the platform's clock can represent (the field is not checked).
fn format_time(unix: u64) -> String {
    UNIX_EPOCH
        .checked_add(Duration::from_secs(unix))
        .map(|time| humantime::format_rfc3339_seconds(time).to_string())
        .unwrap_or_else(|| format!("@{unix}"))
}

/// "s" unless there is one.
fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The path as the user should type it again.
fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// Each value's `Display`, for JSON lists.
fn strings<T: ToString>(values: &[T]) -> Vec<String> {
    values.iter().map(ToString::to_string).collect()
}

/// Hashes by their short form, space-separated.
fn shorts(hashes: &[EventHash]) -> String {
    if hashes.is_empty() {
        return "none".to_owned();
    }
    hashes
        .iter()
        .map(EventHash::short)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Resolves what the user typed to one of `known`: a full hex value as
/// typed (the library names what is wrong with it), or a unique prefix of
/// at least [`MIN_PREFIX`] hex digits.
fn resolve<T: Copy + ToString + std::str::FromStr>(
    what: &str,
    text: &str,
    known: impl IntoIterator<Item = T>,
) -> anyhow::Result<T> {
    let text = text.trim().to_ascii_lowercase();
    if let Ok(value) = text.parse::<T>() {
        return Ok(value);
    }
    if text.len() < MIN_PREFIX || !text.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!(
            "{text:?}: expected a {what} (hex) or a prefix of it of at least {MIN_PREFIX} digits"
        );
    }
    let mut matches: Vec<T> = known
        .into_iter()
        .filter(|value| value.to_string().starts_with(&text))
        .collect();
    matches.dedup_by_key(|value| value.to_string());
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => bail!("no {what} starts with {text}"),
        _ => bail!("{text} is the prefix of several {what}s; give more digits"),
    }
}

/// A member id or a unique prefix of the id of a member of `R*` or of an
/// author of the file.
fn resolve_member(mesh: &Mesh, text: &str) -> anyhow::Result<MemberId> {
    let mut known: Vec<MemberId> = mesh.roster().iter().map(|(id, _)| *id).collect();
    known.extend(mesh.log().map(|entry| entry.event.event().author));
    known.sort();
    known.dedup();
    resolve("member id", text, known)
}

/// An epoch (rotation) hash or a unique prefix of one.
fn resolve_epoch(mesh: &Mesh, text: &str) -> anyhow::Result<EventHash> {
    let known: Vec<EventHash> = mesh.epochs().iter().map(|epoch| epoch.hash).collect();
    let hash = resolve("epoch hash", text, known)?;
    if mesh.epoch(hash).is_none() {
        bail!("{hash} is not an epoch of this mesh (`meshlog show` lists them)");
    }
    Ok(hash)
}

/// Reads a file the user named, as the CLI's own input.
fn read_input(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading the {what} {}", shown(path)))
}

/// Writes `bytes` to a new file; never overwrites, and removes a partial file.
fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
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

/// Reads a frontier (or checkpoint) file that `meshlog frontier` or
/// `meshlog verify --checkpoint` wrote.
fn read_frontier(path: &Path, what: &str) -> anyhow::Result<meshlog::Frontier> {
    let bytes = read_input(path, what)?;
    match meshlog::Frontier::from_bytes(&bytes) {
        Ok(frontier) => Ok(frontier),
        Err(error) => bail!(
            "{} is not a {what} file (as `meshlog frontier` or `meshlog verify --checkpoint` write): {error}",
            shown(path)
        ),
    }
}

/// One line about where the mesh stands: its current epoch, or that it
/// needs a merge (and which epoch writers use meanwhile).
fn epoch_line(mesh: &Mesh) -> String {
    match (mesh.current_epoch(), mesh.writer_epoch()) {
        (Some(current), _) => format!("{current} (current)"),
        (None, Some(writer)) => format!(
            "none: the mesh needs a merge (tips {}; writers use {} meanwhile)",
            shorts(mesh.tips()),
            writer.short()
        ),
        (None, None) => format!(
            "none: the mesh needs a merge (tips {}; app writes wait for it)",
            shorts(mesh.tips())
        ),
    }
}

/// Prints `label value` lines, aligned.
fn print_lines(lines: &[(&str, String)]) {
    for (label, value) in lines {
        outln!("{label:<10} {value}");
    }
}
