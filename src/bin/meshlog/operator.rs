//! The operator commands: key files, and one change to the group per command.
//!
//! Each change is one library call on a mesh opened with the acting member's
//! keys. The library checks it against the group's rules before anything is
//! written, so a refused change leaves the file as it was; its error, which
//! names the rule, is printed as is.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use meshlog::{LocalKeys, MemberId, MemberKeys, Mesh, Receipt, Role};
use zeroize::Zeroizing;

use crate::Verdict;

pub(crate) const CREATE_AFTER_HELP: &str = "\
The founder is the only member and admin of epoch 0, and starts disabled:
run `meshlog enable` next.

Examples:
  meshlog keys new founder.keys
  meshlog create team.redb --keys founder.keys --name \"ops team\"
  meshlog enable team.redb --keys founder.keys";

pub(crate) const ENABLE_AFTER_HELP: &str = "\
Members start disabled. A disabled member can read, verify and enable itself,
but cannot append or rotate.

Examples:
  meshlog enable team.redb --keys alice.keys
  meshlog disable team.redb --keys alice.keys";

pub(crate) const ADD_AFTER_HELP: &str = "\
PUBKEYS is the 128 hex digits that `meshlog keys show` prints for the new
member. The acting member must be an enabled admin. Adding rotates to a new
epoch whose fresh secret is wrapped to every member, the new one included.

Exit codes: 0 added, 1 refused by the group's rules (nothing written), 2 could not run.

Examples:
  meshlog add team.redb --keys founder.keys --member 5b1c…9e02
  meshlog add team.redb --keys founder.keys --member \"$(meshlog keys show bob.keys --public)\" --admin";

pub(crate) const REMOVE_AFTER_HELP: &str = "\
ID is a member id, or a unique prefix of at least 8 hex digits (as `meshlog log`
shows). Removing rotates to a new epoch: the removed member keeps the secrets
of the epochs it was in, and gets none of the new one.

Exit codes: 0 removed, 1 refused by the group's rules (nothing written), 2 could not run.

Examples:
  meshlog remove team.redb --keys founder.keys --member 3fa2c901";

pub(crate) const ROLE_AFTER_HELP: &str = "\
ID is a member id, or a unique prefix of at least 8 hex digits. `--admin` is
short for `--role admin`. A roster always keeps at least one admin.

Exit codes: 0 changed, 1 refused by the group's rules (nothing written), 2 could not run.

Examples:
  meshlog role team.redb --keys founder.keys --member 3fa2c901 --admin
  meshlog role team.redb --keys founder.keys --member 3fa2c901 --role member";

pub(crate) const SECRET_AFTER_HELP: &str = "\
Prints the secret's fingerprint, which tells secrets apart without revealing
them; --reveal prints the secret itself as hex. The key file's member must be
in the epoch, and the secret must match the epoch's public commitment. DB is
opened read-only: it may be live (open for writing in another process), and
not a byte of it changes.

Exit codes: 0 recovered, 1 not a member of that epoch or the envelope does not
open, 2 could not run.

Examples:
  meshlog secret team.redb --keys alice.keys --epoch 3
  meshlog secret team.redb --keys alice.keys --epoch 3 --reveal";

pub(crate) const APPEND_AFTER_HELP: &str = "\
The acting member must be enabled. KIND is 1 to 64 bytes; the payload at most 64 KiB.

Examples:
  meshlog append team.redb --keys alice.keys --kind note --payload \"deployed v2\"
  meshlog append team.redb --keys alice.keys --kind report --payload-file report.json";

pub(crate) const BACKUP_AFTER_HELP: &str = "\
Verifies DB and writes a consistent copy to OUT, which must not exist. The
copy holds no secret keys and can be handed to an auditor. DB may be live:
another process may hold it open for writing, and the copy is a consistent
snapshot of it. Never `cp` a live file: the copy may not open.

Examples:
  meshlog backup team.redb audit-copy.redb
  meshlog verify audit-copy.redb";

pub(crate) const KEYS_NEW_AFTER_HELP: &str = "\
The file holds both secret keys and is created readable by its owner only;
an existing file is never overwritten. Hand the printed public keys (128 hex
digits) to an admin, who passes them to `meshlog add --member`.

Examples:
  meshlog keys new alice.keys";

pub(crate) const KEYS_SHOW_AFTER_HELP: &str = "\
Prints the member id and the public keys; never the secret keys.
--public prints only the 128 hex digits, for scripts.

Examples:
  meshlog keys show alice.keys
  meshlog keys show alice.keys --public";

/// `meshlog keys …`.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Generate a member's keys into a new owner-only key file.
    #[command(after_help = KEYS_NEW_AFTER_HELP)]
    New {
        /// The key file to create.
        file: PathBuf,
    },
    /// Print a key file's member id and public keys.
    #[command(after_help = KEYS_SHOW_AFTER_HELP)]
    Show {
        /// The key file.
        file: PathBuf,
        /// Print only the public keys.
        #[arg(long)]
        public: bool,
    },
}

/// Arguments of `meshlog create`.
#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The new database file (must not exist).
    db: PathBuf,
    /// The founder's key file.
    #[arg(long, value_name = "FILE")]
    keys: PathBuf,
    /// The group's name.
    #[arg(long)]
    name: String,
}

/// A database and the acting member's key file.
#[derive(Debug, Args)]
pub(crate) struct MemberArgs {
    /// The meshlog database file.
    db: PathBuf,
    /// The acting member's key file.
    #[arg(long, value_name = "FILE")]
    keys: PathBuf,
}

/// Arguments of `meshlog add`.
#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    #[command(flatten)]
    actor: MemberArgs,
    /// The new member's public keys (128 hex digits, from `meshlog keys show`).
    #[arg(long, value_name = "PUBKEYS")]
    member: MemberKeys,
    /// Make the new member an admin.
    #[arg(long)]
    admin: bool,
}

/// Arguments of `meshlog remove`.
#[derive(Debug, Args)]
pub(crate) struct RemoveArgs {
    #[command(flatten)]
    actor: MemberArgs,
    /// The member to remove: its id or a unique prefix of it.
    #[arg(long, value_name = "ID")]
    member: String,
}

/// A role as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RoleArg {
    /// May also rotate: add, remove, change roles.
    Admin,
    /// May append and toggle its own flag.
    Member,
}

/// Arguments of `meshlog role`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("new_role").required(true).args(["admin", "role"])))]
pub(crate) struct RoleArgs {
    #[command(flatten)]
    actor: MemberArgs,
    /// The member whose role changes: its id or a unique prefix of it.
    #[arg(long, value_name = "ID")]
    member: String,
    /// Make the member an admin (same as `--role admin`).
    #[arg(long)]
    admin: bool,
    /// The new role.
    #[arg(long, value_enum)]
    role: Option<RoleArg>,
}

/// Arguments of `meshlog secret`.
#[derive(Debug, Args)]
pub(crate) struct SecretArgs {
    #[command(flatten)]
    actor: MemberArgs,
    /// The epoch whose secret to recover.
    #[arg(long, value_name = "N")]
    epoch: u64,
    /// Print the secret itself (hex), not only its fingerprint.
    #[arg(long)]
    reveal: bool,
}

/// Arguments of `meshlog append`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("payload_source").required(true).args(["payload", "payload_file"])))]
pub(crate) struct AppendArgs {
    #[command(flatten)]
    actor: MemberArgs,
    /// The application-defined kind of the event.
    #[arg(long)]
    kind: String,
    /// The payload, as text.
    #[arg(long, value_name = "TEXT")]
    payload: Option<String>,
    /// Read the payload from a file.
    #[arg(long, value_name = "F")]
    payload_file: Option<PathBuf>,
}

/// Arguments of `meshlog backup`.
#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    /// The database to copy.
    db: PathBuf,
    /// The new file to write (must not exist).
    out: PathBuf,
}

/// `meshlog keys new|show`.
pub(crate) fn keys(command: &KeysCommand) -> anyhow::Result<Verdict> {
    match command {
        KeysCommand::New { file } => {
            let keys = LocalKeys::generate();
            keys.save(file)?;
            println!("wrote   {} (readable by its owner only)", file.display());
            print_public(&keys);
        }
        KeysCommand::Show { file, public } => {
            let keys = LocalKeys::load(file)?;
            if *public {
                println!("{}", keys.public());
            } else {
                print_public(&keys);
            }
        }
    }
    Ok(Verdict::Ok)
}

fn print_public(keys: &LocalKeys) {
    println!("member  {}", keys.member_id());
    println!("public  {}", keys.public());
}

fn load_keys(path: &Path) -> anyhow::Result<LocalKeys> {
    Ok(LocalKeys::load(path)?)
}

/// Opens `db` to act on it as the key file's member.
fn open_as(args: &MemberArgs) -> anyhow::Result<Mesh> {
    let keys = load_keys(&args.keys)?;
    Ok(Mesh::open(&args.db, keys)?)
}

fn print_receipt(what: &str, receipt: Receipt) {
    println!("{what}");
    println!("event   seq {}  {}", receipt.seq, receipt.hash);
}

/// `meshlog create`.
pub(crate) fn create(args: &CreateArgs) -> anyhow::Result<Verdict> {
    let keys = load_keys(&args.keys)?;
    let mesh = Mesh::create(&args.db, keys, &args.name)?;
    println!("created group {:?} in {}", args.name, args.db.display());
    println!("group   {}", mesh.group());
    if let Some(founder) = mesh.member_id() {
        println!("founder {founder} (admin, disabled)");
    }
    println!(
        "next    meshlog enable {} --keys {}",
        args.db.display(),
        args.keys.display()
    );
    Ok(Verdict::Ok)
}

/// `meshlog enable` and `meshlog disable`.
pub(crate) fn set_enabled(args: &MemberArgs, enabled: bool) -> anyhow::Result<Verdict> {
    let mut mesh = open_as(args)?;
    let receipt = mesh.set_enabled(enabled)?;
    let member = mesh.member_id().map(|m| m.to_string()).unwrap_or_default();
    let state = if enabled { "enabled" } else { "disabled" };
    print_receipt(&format!("member {member} {state}"), receipt);
    Ok(Verdict::Ok)
}

fn current_epoch(mesh: &Mesh) -> u64 {
    mesh.state().current_epoch().map_or(0, |epoch| epoch.epoch)
}

/// `meshlog add`.
pub(crate) fn add(args: &AddArgs) -> anyhow::Result<Verdict> {
    let mut mesh = open_as(&args.actor)?;
    let role = if args.admin {
        Role::Admin
    } else {
        Role::Member
    };
    let receipt = mesh.add_member(args.member, role)?;
    print_receipt(
        &format!(
            "added {} as {role}: epoch {} opened",
            args.member.member_id(),
            current_epoch(&mesh)
        ),
        receipt,
    );
    Ok(Verdict::Ok)
}

/// Resolves a member id, or a unique prefix of a current member's id.
fn resolve_member(mesh: &Mesh, text: &str) -> anyhow::Result<MemberId> {
    let text = text.trim().to_ascii_lowercase();
    if let Ok(id) = text.parse::<MemberId>() {
        // A full id goes to the library as typed: it names what is wrong with it.
        return Ok(id);
    }
    if text.len() < 8 || !text.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("--member {text:?}: expected a member id (32 hex digits) or a prefix of at least 8");
    }
    let roster = mesh
        .state()
        .current_epoch()
        .map(|epoch| epoch.roster.as_slice())
        .unwrap_or_default();
    let mut matches = roster
        .iter()
        .map(|entry| entry.id)
        .filter(|id| id.to_string().starts_with(&text));
    match (matches.next(), matches.next()) {
        (Some(id), None) => Ok(id),
        (None, _) => bail!("no current member's id starts with {text}"),
        (Some(_), Some(_)) => {
            bail!("{text} is the prefix of several members' ids; give more digits")
        }
    }
}

/// `meshlog remove`.
pub(crate) fn remove(args: &RemoveArgs) -> anyhow::Result<Verdict> {
    let mut mesh = open_as(&args.actor)?;
    let member = resolve_member(&mesh, &args.member)?;
    let receipt = mesh.remove_member(member)?;
    print_receipt(
        &format!("removed {member}: epoch {} opened", current_epoch(&mesh)),
        receipt,
    );
    Ok(Verdict::Ok)
}

/// `meshlog role`.
pub(crate) fn role(args: &RoleArgs) -> anyhow::Result<Verdict> {
    // clap's `new_role` group makes `--admin` and `--role` exclusive, and one required.
    let role = match (args.admin, args.role) {
        (true, _) | (false, Some(RoleArg::Admin)) => Role::Admin,
        (false, Some(RoleArg::Member)) => Role::Member,
        (false, None) => bail!("give --admin or --role admin|member"),
    };
    let mut mesh = open_as(&args.actor)?;
    let member = resolve_member(&mesh, &args.member)?;
    let receipt = mesh.set_role(member, role)?;
    print_receipt(
        &format!(
            "{member} is now {role}: epoch {} opened",
            current_epoch(&mesh)
        ),
        receipt,
    );
    Ok(Verdict::Ok)
}

/// `meshlog secret`.
pub(crate) fn secret(args: &SecretArgs) -> anyhow::Result<Verdict> {
    let keys = load_keys(&args.actor.keys)?;
    let mesh = crate::open_read_only(&args.actor.db, Some(keys))?;
    let secret = mesh.epoch_secret(args.epoch)?;
    println!("epoch        {}", args.epoch);
    println!("fingerprint  {}", secret.fingerprint());
    if args.reveal {
        let revealed = Zeroizing::new(hex::encode(secret.expose()));
        println!("secret       {}", revealed.as_str());
    }
    Ok(Verdict::Ok)
}

/// `meshlog append`.
pub(crate) fn append(args: &AppendArgs) -> anyhow::Result<Verdict> {
    let payload = match (&args.payload, &args.payload_file) {
        (Some(text), _) => text.as_bytes().to_vec(),
        (None, Some(file)) => {
            std::fs::read(file).with_context(|| format!("reading {}", file.display()))?
        }
        (None, None) => bail!("give --payload or --payload-file"),
    };
    let mut mesh = open_as(&args.actor)?;
    let receipt = mesh.append_app(&args.kind, &payload)?;
    print_receipt(
        &format!("appended {:?} ({} bytes)", args.kind, payload.len()),
        receipt,
    );
    Ok(Verdict::Ok)
}

/// `meshlog backup`.
pub(crate) fn backup(args: &BackupArgs) -> anyhow::Result<Verdict> {
    let mesh = crate::open_audit(&args.db)?;
    mesh.backup(&args.out)?;
    println!(
        "verified {} ({} events) and wrote a consistent copy to {}",
        args.db.display(),
        mesh.state().len(),
        args.out.display()
    );
    if mesh.report().verified_private_copy {
        println!(
            "note: {} had not been closed cleanly; the copy was taken from a privately recovered \
             copy, the original is untouched",
            args.db.display()
        );
    }
    Ok(Verdict::Ok)
}
