//! The `meshlog` command-line tool.
//!
//! A thin shell over the library (STYLE.md §13): every subcommand parses its
//! arguments, makes one library call (or one verifying open and a walk over
//! the chain), and formats the result. The rules live in the library alone.
//!
//! Exit codes: 0 when the command did what was asked (or the file verified),
//! 1 when the data or the group's rules say no (a chain that fails
//! verification, a head that is not the expected one, a rejected change or
//! batch), 2 when the command could not run at all (missing file, lock, bad
//! arguments).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use clap::{Parser, Subcommand};

mod audit;
mod demo;
mod operator;
mod sync;

/// Chains longer than this get a progress bar while the CLI walks them.
const PROGRESS_THRESHOLD: u64 = 10_000;

const MAIN_AFTER_HELP: &str = "\
Exit codes:
  0  success; for audit commands: the chain and every projection verified
  1  verification failed (a tampered or inconsistent file, or a head other than
     --expect-head), or the group's rules refused a change, or ingest/join
     refused a batch (a fork, a gap, another group, a rejected event, malformed
     bytes); nothing was written
  2  the command could not run: no such file, not a meshlog database, the file
     is open for writing in another process (for commands that write), bad
     arguments

Audit commands (verify, log, show, replay) need no keys and never change a
byte of the file; like backup, secret and export they open it read-only, so
they work on a live mesh that another process holds open for writing.
Operator commands need the acting member's key file; those that write refuse
a file another process holds open for writing.

Sync commands move events between peers' files as batch files, carried by any
means: export writes one, join makes a new peer's file from one, ingest
appends what a file lacks (all or nothing; a fork, a gap or a rejected event
is refused with exit 1).

Examples:
  meshlog demo ./demo
  meshlog verify ./demo/mesh.redb --json
  meshlog keys new alice.keys
  meshlog export team.redb --since 0 all.batch && meshlog join bob.redb --keys bob.keys all.batch
  meshlog ingest team.redb --keys founder.keys from-bob.batch";

/// meshlog: audit and operate a signed, hash-linked membership log.
#[derive(Debug, Parser)]
#[command(name = "meshlog", version, after_help = MAIN_AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify the whole chain and every stored projection, and report.
    #[command(after_help = audit::VERIFY_AFTER_HELP)]
    Verify(audit::VerifyArgs),
    /// List events, one line each.
    #[command(after_help = audit::LOG_AFTER_HELP)]
    Log(audit::LogArgs),
    /// Show the state at a point of the chain, replayed from the events.
    #[command(after_help = audit::SHOW_AFTER_HELP)]
    Show(audit::ShowArgs),
    /// Print the state digest at every epoch boundary up to a seq.
    #[command(after_help = audit::REPLAY_AFTER_HELP)]
    Replay(audit::ReplayArgs),
    /// Make or inspect a member's key file.
    #[command(subcommand)]
    Keys(operator::KeysCommand),
    /// Found a new group in a new file; the key file's member is its first admin.
    #[command(after_help = operator::CREATE_AFTER_HELP)]
    Create(operator::CreateArgs),
    /// Turn the key file's member on (members start disabled).
    #[command(after_help = operator::ENABLE_AFTER_HELP)]
    Enable(operator::MemberArgs),
    /// Turn the key file's member off.
    #[command(after_help = operator::ENABLE_AFTER_HELP)]
    Disable(operator::MemberArgs),
    /// Add a member (rotates to a new epoch).
    #[command(after_help = operator::ADD_AFTER_HELP)]
    Add(operator::AddArgs),
    /// Remove a member (rotates to a new epoch it has no secret of).
    #[command(after_help = operator::REMOVE_AFTER_HELP)]
    Remove(operator::RemoveArgs),
    /// Change a member's role (rotates to a new epoch).
    #[command(after_help = operator::ROLE_AFTER_HELP)]
    Role(operator::RoleArgs),
    /// Recover an epoch secret with the key file's member; prints its fingerprint.
    #[command(after_help = operator::SECRET_AFTER_HELP)]
    Secret(operator::SecretArgs),
    /// Append an application event.
    #[command(after_help = operator::APPEND_AFTER_HELP)]
    Append(operator::AppendArgs),
    /// Write a consistent, verified copy of a database to a new file.
    #[command(after_help = operator::BACKUP_AFTER_HELP)]
    Backup(operator::BackupArgs),
    /// Write the events from a seq on into a batch file, for a peer.
    #[command(after_help = sync::EXPORT_AFTER_HELP)]
    Export(sync::ExportArgs),
    /// Make a new peer's file from a batch that starts at the genesis.
    #[command(after_help = sync::JOIN_AFTER_HELP)]
    Join(sync::JoinArgs),
    /// Verify a peer's batch and append the events this file lacks.
    #[command(after_help = sync::INGEST_AFTER_HELP)]
    Ingest(sync::IngestArgs),
    /// Build a sample group, show who can read which epoch, and verify it.
    #[command(after_help = demo::DEMO_AFTER_HELP)]
    Demo(demo::DemoArgs),
}

/// What a command concluded, once it ran to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Exit 0.
    Ok,
    /// Exit 1: the report printed says what failed.
    Failed,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Verify(args) => audit::verify(&args),
        Command::Log(args) => audit::log(&args),
        Command::Show(args) => audit::show(&args),
        Command::Replay(args) => audit::replay(&args),
        Command::Keys(command) => operator::keys(&command),
        Command::Create(args) => operator::create(&args),
        Command::Enable(args) => operator::set_enabled(&args, true),
        Command::Disable(args) => operator::set_enabled(&args, false),
        Command::Add(args) => operator::add(&args),
        Command::Remove(args) => operator::remove(&args),
        Command::Role(args) => operator::role(&args),
        Command::Secret(args) => operator::secret(&args),
        Command::Append(args) => operator::append(&args),
        Command::Backup(args) => operator::backup(&args),
        Command::Export(args) => sync::export(&args),
        Command::Join(args) => sync::join(&args),
        Command::Ingest(args) => sync::ingest(&args),
        Command::Demo(args) => demo::run(&args),
    };
    match result {
        Ok(Verdict::Ok) => ExitCode::SUCCESS,
        Ok(Verdict::Failed) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(exit_code(&error))
        }
    }
}

/// 1 when the data or the group's rules refused, 2 when the command could not run.
fn exit_code(error: &anyhow::Error) -> u8 {
    let refused = error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<meshlog::Error>())
        .any(is_refusal);
    if refused { 1 } else { 2 }
}

/// Whether the library said no because of the data or the group's rules, as
/// opposed to not being able to look (file, lock, keys, arguments).
fn is_refusal(error: &meshlog::Error) -> bool {
    use meshlog::Error;
    error.is_verification_failure()
        || matches!(
            error,
            Error::Disabled { .. }
                | Error::NotAMember { .. }
                | Error::AlreadyMember { .. }
                | Error::UnknownMember { .. }
                | Error::RoleUnchanged { .. }
                | Error::InadmissibleKey { .. }
                | Error::DhKeyMismatch { .. }
                | Error::Envelope(_)
                | Error::Fork(_)
                | Error::Gap { .. }
                | Error::ForeignBatch { .. }
                | Error::Batch(_)
        )
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

/// Opens a file for auditing, with a spinner while the chain is verified.
fn open_audit(path: &std::path::Path) -> meshlog::Result<meshlog::Mesh> {
    open_read_only(path, None)
}

/// Opens a file read-only, with the local member's keys if given, and a
/// spinner while the chain is verified.
fn open_read_only(
    path: &std::path::Path,
    keys: Option<meshlog::LocalKeys>,
) -> meshlog::Result<meshlog::Mesh> {
    let spinner = spinner("verifying the chain…");
    let opened = meshlog::MeshOptions::new().open_read_only(path, keys);
    if let Some(spinner) = spinner {
        spinner.finish_and_clear();
    }
    opened
}

/// An event's claimed time as RFC 3339, or the raw number if it is beyond
/// what the platform's clock can represent (the field is not checked).
fn format_time(unix: u64) -> String {
    UNIX_EPOCH
        .checked_add(Duration::from_secs(unix))
        .map(|time| humantime::format_rfc3339_seconds(time).to_string())
        .unwrap_or_else(|| format!("@{unix}"))
}

/// The path as the user should type it again.
fn shown(path: &std::path::Path) -> String {
    path.display().to_string()
}
