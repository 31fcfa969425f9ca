//! The operator commands: key files, and one change to the mesh per command.
//!
//! Each change is one library call on a mesh opened with the acting member's
//! keys. The library checks it against the rules before anything is
//! written, so a refused change leaves the file as it was; its error names
//! the rule, and `main` prints the rule's id and the event.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use meshlog::{EventHash, KeyPackage, LocalKeys, Mesh, Role};
use zeroize::Zeroizing;

use crate::{CopyArgs, Verdict, epoch_line, load_keys, print_lines, shown};

pub(crate) const CREATE_AFTER_HELP: &str = "\
The founder is the mesh's first owner and its only member, and starts
disabled: run `meshlog enable` next. NAME is 1 to 128 bytes; a refused create
(exit 1, rule V4 for a bad name) leaves no file.

Examples:
  meshlog keys new founder.keys
  meshlog create team.redb --keys founder.keys --name \"ops team\"
  meshlog enable team.redb --keys founder.keys";

pub(crate) const ENABLE_AFTER_HELP: &str = "\
Members start disabled. A disabled member can read, verify and enable itself,
but its other events are refused (rule F5). Enabling a member that is enabled
(or disabling one that is disabled) writes nothing, and says so (exit 0).

Exit codes: 0 done, 1 refused (nothing written), 2 could not run.

Examples:
  meshlog enable team.redb --keys alice.keys
  meshlog disable team.redb --keys alice.keys";

pub(crate) const ADD_AFTER_HELP: &str = "\
PACKAGE is the new member's key package: the hex that `meshlog keys show
FILE --public` prints on the new member's machine. The member signed it, so
nobody can substitute keys of their own. The acting member must be an
enabled admin or owner; only an owner may add an owner (--role owner).
Adding is a rotation: a fresh secret wrapped to every member of the new
roster, the new member included.

Exit codes: 0 added, 1 refused by the rules (nothing written), 2 could not run.

Examples:
  meshlog add team.redb --keys founder.keys --member \"$(meshlog keys show alice.keys --public)\"
  meshlog add team.redb --keys founder.keys --member 8139…0203 --role admin";

pub(crate) const REMOVE_AFTER_HELP: &str = "\
ID is a member id, or a unique prefix of at least 8 hex digits (as `meshlog
log` and `meshlog show` print). Removing is a rotation whose secret the
removed member does not get; it keeps the secrets it had. An admin may
remove members; only an owner may remove an admin. Owners are never removed.

Exit codes: 0 removed, 1 refused by the rules (nothing written), 2 could not run.

Examples:
  meshlog remove team.redb --keys founder.keys --member 3fa2c901";

pub(crate) const ROLE_AFTER_HELP: &str = "\
ID is a member id, or a unique prefix of at least 8 hex digits. An admin may
promote a member to admin; only an owner may demote an admin. Owners are made
by `meshlog add --role owner` with the member's package, never by a role
change.

Exit codes: 0 changed, 1 refused by the rules (nothing written), 2 could not run.

Examples:
  meshlog role team.redb --keys founder.keys --member 3fa2c901 --role admin";

pub(crate) const REFRESH_AFTER_HELP: &str = "\
A rotation without changes: a fresh secret for the same roster, for instance
after a device was lost. The acting member must be an enabled admin or owner.

Examples:
  meshlog refresh team.redb --keys founder.keys --reason \"laptop stolen\"";

pub(crate) const MERGE_AFTER_HELP: &str = "\
Concurrent rotations (two admins rotating on copies that had not synced) fork
the epoch graph; after a sync the mesh may need a merge: a rotation naming
every tip, whose secret goes to the resolved roster R*. An enabled admin or
owner makes it. When the mesh needs no merge, nothing is written (exit 0).
`meshlog ingest --merge` merges right after an ingest that needs it.

Exit codes: 0 merged or nothing to merge, 1 refused (nothing written), 2 could
not run.

Examples:
  meshlog merge team.redb --keys founder.keys";

pub(crate) const SECRET_AFTER_HELP: &str = "\
Prints the secret's fingerprint, which tells secrets apart without revealing
them; --reveal prints the secret itself as hex. Without --epoch: the current
epoch. The key file's member must be in the epoch's own roster. DB is opened
read-only: it may be live (open for writing in another process), and not a
byte of it changes.

Exit codes: 0 recovered, 1 not a recipient of that epoch, or the envelope does
not open, 2 could not run (no such epoch).

Examples:
  meshlog secret team.redb --keys alice.keys
  meshlog secret team.redb --keys alice.keys --epoch 3fa2c901 --reveal";

pub(crate) const APPEND_AFTER_HELP: &str = "\
The acting member must be enabled. KIND is 1 to 64 bytes; the payload at most
64 KiB. The event is written under the current epoch (or, while the mesh
needs a merge, the writer epoch).

--sealed seals the payload under that epoch's secret (SPEC.md §16.5): anyone
with the file still checks every signature and rule and sees KIND and the
padded size; only the epoch's members read it (`meshlog log --keys`).

Examples:
  meshlog append team.redb --keys alice.keys --kind note --payload \"deployed\"
  meshlog append team.redb --keys alice.keys --kind report --payload-file report.json
  meshlog append team.redb --keys alice.keys --kind secret-note --sealed --payload \"rotate the db password\"";

pub(crate) const BACKUP_AFTER_HELP: &str = "\
Verifies DB and writes a copy to OUT, which must not exist: the same events in
the same order. The copy holds no secret keys and can be handed to an
auditor. DB may be live; the copy is a consistent snapshot. Never `cp` a live
file: the copy may not open.

Examples:
  meshlog backup team.redb audit-copy.redb
  meshlog verify audit-copy.redb";

pub(crate) const KEYS_NEW_AFTER_HELP: &str = "\
The file holds both secret keys and is created readable by its owner only;
an existing file is never overwritten. Hand the printed key package to an
admin, who passes it to `meshlog add --member`.

Examples:
  meshlog keys new alice.keys";

pub(crate) const KEYS_SHOW_AFTER_HELP: &str = "\
Prints the member id, the public keys and the key package; never the secret
keys. --public prints only the key package (hex), for scripts: it is what
`meshlog add --member` takes, signed by the member itself.

Examples:
  meshlog keys show alice.keys
  meshlog add team.redb --keys founder.keys --member \"$(meshlog keys show alice.keys --public)\"";

/// `meshlog keys …`.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Generate a member's keys into a new owner-only key file.
    #[command(after_help = KEYS_NEW_AFTER_HELP)]
    New {
        /// The key file to create.
        file: PathBuf,
    },
    /// Print a key file's member id, public keys and key package.
    #[command(after_help = KEYS_SHOW_AFTER_HELP)]
    Show {
        /// The key file.
        file: PathBuf,
        /// Print only the key package (hex), for `meshlog add --member`.
        #[arg(long)]
        public: bool,
    },
}

/// Arguments of `meshlog create`.
#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The new meshlog file (must not exist).
    db: PathBuf,
    /// The founder's key file.
    #[arg(long, value_name = "FILE")]
    keys: PathBuf,
    /// The mesh's name.
    #[arg(long)]
    name: String,
}

/// A meshlog file and the acting member's key file.
#[derive(Debug, Args)]
pub(crate) struct MemberArgs {
    /// The meshlog file.
    pub(crate) db: PathBuf,
    /// The acting member's key file.
    #[arg(long, value_name = "FILE")]
    pub(crate) keys: PathBuf,
}

/// A meshlog file and the key file of the member who writes on it.
#[derive(Debug, Args)]
pub(crate) struct WriterArgs {
    #[command(flatten)]
    pub(crate) member: MemberArgs,
    #[command(flatten)]
    pub(crate) copy: CopyArgs,
}

/// A role a member is added with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum NewRole {
    /// May append and turn itself on and off.
    Member,
    /// May also add members and admins, promote members and remove members.
    Admin,
    /// May also remove and demote admins, and make owners; never removed.
    Owner,
}

/// A role a role change may set (owners come by `add --role owner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ChangedRole {
    /// May append and turn itself on and off.
    Member,
    /// May also add members and admins, promote members and remove members.
    Admin,
}

/// Arguments of `meshlog add`.
#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    #[command(flatten)]
    actor: WriterArgs,
    /// The new member's key package (hex, from `meshlog keys show --public`).
    #[arg(long, value_name = "PACKAGE")]
    member: KeyPackage,
    /// The new member's role.
    #[arg(long, value_enum, default_value_t = NewRole::Member)]
    role: NewRole,
}

/// Arguments of `meshlog remove`.
#[derive(Debug, Args)]
pub(crate) struct RemoveArgs {
    #[command(flatten)]
    actor: WriterArgs,
    /// The member to remove: its id or a unique prefix of it.
    #[arg(long, value_name = "ID")]
    member: String,
}

/// Arguments of `meshlog role`.
#[derive(Debug, Args)]
pub(crate) struct RoleArgs {
    #[command(flatten)]
    actor: WriterArgs,
    /// The member whose role changes: its id or a unique prefix of it.
    #[arg(long, value_name = "ID")]
    member: String,
    /// The new role.
    #[arg(long, value_enum)]
    role: ChangedRole,
}

/// Arguments of `meshlog refresh`.
#[derive(Debug, Args)]
pub(crate) struct RefreshArgs {
    #[command(flatten)]
    actor: WriterArgs,
    /// Why (recorded in the rotation, at most 256 bytes).
    #[arg(long, value_name = "TEXT", default_value = "refresh")]
    reason: String,
}

/// Arguments of `meshlog secret`.
#[derive(Debug, Args)]
pub(crate) struct SecretArgs {
    #[command(flatten)]
    actor: MemberArgs,
    /// The epoch whose secret to recover (a hash or a unique prefix);
    /// without it, the current epoch.
    #[arg(long, value_name = "HASH")]
    epoch: Option<String>,
    /// Print the secret itself (hex), not only its fingerprint.
    #[arg(long)]
    reveal: bool,
}

/// Arguments of `meshlog append`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("payload_source").required(true).args(["payload", "payload_file"])))]
pub(crate) struct AppendArgs {
    #[command(flatten)]
    actor: WriterArgs,
    /// The application-defined kind of the event.
    #[arg(long)]
    kind: String,
    /// The payload, as text.
    #[arg(long, value_name = "TEXT")]
    payload: Option<String>,
    /// Read the payload from a file.
    #[arg(long, value_name = "F")]
    payload_file: Option<PathBuf>,
    /// Seal the payload: only the epoch's members can read it.
    #[arg(long)]
    sealed: bool,
}

/// Arguments of `meshlog backup`.
#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    /// The meshlog file to copy.
    db: PathBuf,
    /// The new file to write (must not exist).
    out: PathBuf,
}

/// `meshlog keys new|show`.
pub(crate) fn keys(command: &KeysCommand) -> anyhow::Result<Verdict> {
    match command {
        KeysCommand::New { file } => {
            let keys = LocalKeys::generate();
            keys.save(file).map_err(meshlog::Error::from)?;
            outln!("wrote      {} (readable by its owner only)", shown(file));
            print_public(&keys);
        }
        KeysCommand::Show { file, public } => {
            let keys = load_keys(file)?;
            if *public {
                outln!("{}", keys.package());
            } else {
                print_public(&keys);
            }
        }
    }
    Ok(Verdict::Ok)
}

fn print_public(keys: &LocalKeys) {
    let public = keys.public();
    print_lines(&[
        ("member", keys.member_id().to_string()),
        ("signing", public.signing.to_string()),
        ("dh", public.dh.to_string()),
        ("package", keys.package().to_string()),
    ]);
}

/// Opens `db` to act on it as the key file's member.
fn open_as(args: &WriterArgs) -> anyhow::Result<Mesh> {
    let MemberArgs { db, keys: key_file } = &args.member;
    let keys = load_keys(key_file)?;
    Ok(crate::open_writer(db, key_file, keys, args.copy)?)
}

/// What a write did: a headline, the event and where the mesh stands.
fn print_done(mesh: &Mesh, what: String, event: EventHash) {
    print_lines(&[
        ("done", what),
        ("event", event.to_string()),
        ("epoch", epoch_line(mesh)),
    ]);
}

/// `meshlog create`.
pub(crate) fn create(args: &CreateArgs) -> anyhow::Result<Verdict> {
    let keys = load_keys(&args.keys)?;
    let mesh = Mesh::create(&args.db, keys, &args.name)?;
    print_lines(&[
        (
            "created",
            format!("mesh {:?} in {}", args.name, shown(&args.db)),
        ),
        ("group", mesh.group().to_string()),
        ("founder", format!("{} (owner, disabled)", mesh.founder())),
        ("epoch", epoch_line(&mesh)),
        (
            "next",
            format!(
                "meshlog enable {} --keys {}",
                shown(&args.db),
                shown(&args.keys)
            ),
        ),
    ]);
    Ok(Verdict::Ok)
}

/// `meshlog enable` and `meshlog disable`.
pub(crate) fn set_enabled(args: &WriterArgs, enabled: bool) -> anyhow::Result<Verdict> {
    let mut mesh = open_as(args)?;
    let member = mesh.member_id().map(|m| m.to_string()).unwrap_or_default();
    let state = if enabled { "enabled" } else { "disabled" };
    // A flag already so would be an event that changes nothing. A member
    // outside `R*` goes on to the library, which says why it may not.
    let in_roster = mesh.member_id().is_some_and(|m| mesh.roster().contains(m));
    if in_roster && mesh.is_enabled() == enabled {
        print_lines(&[
            (
                "done",
                format!("nothing: member {member} is already {state}; nothing was written"),
            ),
            ("epoch", epoch_line(&mesh)),
        ]);
        return Ok(Verdict::Ok);
    }
    let event = mesh.set_enabled(enabled)?;
    print_done(&mesh, format!("member {member} {state}"), event);
    Ok(Verdict::Ok)
}

/// `meshlog add`.
pub(crate) fn add(args: &AddArgs) -> anyhow::Result<Verdict> {
    let mut mesh = open_as(&args.actor)?;
    let role = match args.role {
        NewRole::Member => Role::Member,
        NewRole::Admin => Role::Admin,
        NewRole::Owner => Role::Owner,
    };
    let member = args.member.member();
    let event = mesh.add_member(args.member, role)?;
    print_done(&mesh, format!("added {member} as {role}"), event);
    Ok(Verdict::Ok)
}

/// `meshlog remove`.
pub(crate) fn remove(args: &RemoveArgs) -> anyhow::Result<Verdict> {
    let mut mesh = open_as(&args.actor)?;
    let member = crate::resolve_member(&mesh, &args.member)?;
    let event = mesh.remove_member(member)?;
    print_done(&mesh, format!("removed {member}"), event);
    Ok(Verdict::Ok)
}

/// `meshlog role`.
pub(crate) fn role(args: &RoleArgs) -> anyhow::Result<Verdict> {
    let role = match args.role {
        ChangedRole::Member => Role::Member,
        ChangedRole::Admin => Role::Admin,
    };
    let mut mesh = open_as(&args.actor)?;
    let member = crate::resolve_member(&mesh, &args.member)?;
    let event = mesh.set_role(member, role)?;
    print_done(&mesh, format!("{member} is now {role}"), event);
    Ok(Verdict::Ok)
}

/// `meshlog refresh`.
pub(crate) fn refresh(args: &RefreshArgs) -> anyhow::Result<Verdict> {
    let mut mesh = open_as(&args.actor)?;
    let event = mesh.refresh(&args.reason)?;
    print_done(
        &mesh,
        format!("refreshed: a fresh secret, reason {:?}", args.reason),
        event,
    );
    Ok(Verdict::Ok)
}

/// `meshlog merge`.
pub(crate) fn merge(args: &WriterArgs) -> anyhow::Result<Verdict> {
    let mut mesh = open_as(args)?;
    match mesh.merge()? {
        Some(event) => print_done(
            &mesh,
            "merged the tips: a rotation naming every tip (in steps of at most sixteen, SPEC.md §5.1)".to_owned(),
            event,
        ),
        None => print_lines(&[
            (
                "done",
                "nothing: the mesh needs no merge; nothing was written".to_owned(),
            ),
            ("epoch", epoch_line(&mesh)),
        ]),
    }
    Ok(Verdict::Ok)
}

/// `meshlog secret`.
pub(crate) fn secret(args: &SecretArgs) -> anyhow::Result<Verdict> {
    let keys = load_keys(&args.actor.keys)?;
    let mesh = crate::open_read_only(&args.actor.db, Some(keys))?;
    let (epoch, secret) = match &args.epoch {
        Some(text) => {
            let epoch = crate::resolve_epoch(&mesh, text)?;
            (epoch, mesh.epoch_secret(epoch)?)
        }
        None => mesh.current_secret()?,
    };
    print_lines(&[
        ("epoch", epoch.to_string()),
        ("fingerprint", secret.fingerprint()),
    ]);
    if args.reveal {
        let revealed = Zeroizing::new(hex::encode(secret.expose()));
        outln!("{:<10} {}", "secret", revealed.as_str());
    }
    Ok(Verdict::Ok)
}

/// `meshlog append`.
pub(crate) fn append(args: &AppendArgs) -> anyhow::Result<Verdict> {
    let payload = match (&args.payload, &args.payload_file) {
        (Some(text), _) => text.as_bytes().to_vec(),
        (None, Some(file)) => {
            std::fs::read(file).with_context(|| format!("reading {}", shown(file)))?
        }
        (None, None) => bail!("give --payload or --payload-file"),
    };
    let mut mesh = open_as(&args.actor)?;
    let (event, sealed) = if args.sealed {
        (mesh.append_sealed(&args.kind, &payload)?, "sealed, ")
    } else {
        (mesh.append_app(&args.kind, &payload)?, "")
    };
    print_done(
        &mesh,
        format!("appended {:?} ({sealed}{} bytes)", args.kind, payload.len()),
        event,
    );
    Ok(Verdict::Ok)
}

/// `meshlog backup`.
pub(crate) fn backup(args: &BackupArgs) -> anyhow::Result<Verdict> {
    let mesh = crate::open_read_only(&args.db, None)?;
    mesh.backup(&args.out)?;
    print_lines(&[
        (
            "verified",
            format!("{} ({} events)", shown(&args.db), mesh.len()),
        ),
        ("wrote", format!("{} (a consistent copy)", shown(&args.out))),
        ("digest", mesh.digest().to_string()),
    ]);
    if mesh.report().verified_private_copy {
        outln!(
            "{:<10} {} had not been closed cleanly; the copy was taken from a privately \
             recovered copy, the original is untouched",
            "note",
            shown(&args.db)
        );
    }
    Ok(Verdict::Ok)
}
