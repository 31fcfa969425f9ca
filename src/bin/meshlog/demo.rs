//! `meshlog demo`: a sample group built with the library, in a few seconds.
//!
//! It walks the life of a small group (found, enable, add three members,
//! promote one, remove one, post notes), then shows which member can recover
//! which epoch's secret, and verifies the result as `meshlog verify` would.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use meshlog::{Error, LocalKeys, MemberId, Mesh, Role};

use crate::Verdict;

pub(crate) const DEMO_AFTER_HELP: &str = "\
Without DIR the sample lives in a temporary folder deleted when the command
exits; with DIR it is kept there (DIR is created if needed, and must not
already hold the demo's files): mesh.redb, founder.keys, alice.keys,
bob.keys, carol.keys.

Examples:
  meshlog demo
  meshlog demo ./demo && meshlog log ./demo/mesh.redb";

/// Arguments of `meshlog demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Keep the sample in this folder.
    dir: Option<PathBuf>,
}

const NAMES: [&str; 4] = ["founder", "alice", "bob", "carol"];
const DB_FILE: &str = "mesh.redb";

/// One person of the demo: a name, a key file, an id.
struct Person {
    name: &'static str,
    keys: PathBuf,
    id: MemberId,
}

impl Person {
    fn keys(&self) -> anyhow::Result<LocalKeys> {
        Ok(LocalKeys::load(&self.keys)?)
    }
}

/// `meshlog demo`.
pub(crate) fn run(args: &DemoArgs) -> anyhow::Result<Verdict> {
    // Held until the end of the run: dropping it deletes the folder.
    let (_temp, dir) = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            (None, dir.clone())
        }
        None => {
            let temp = tempfile::TempDir::new().context("creating a temporary folder")?;
            let dir = temp.path().to_owned();
            (Some(temp), dir)
        }
    };
    let db = dir.join(DB_FILE);
    // Check every file first, so a refused run leaves nothing half-built.
    for file in NAMES
        .iter()
        .map(|name| dir.join(format!("{name}.keys")))
        .chain([db.clone()])
    {
        if file.exists() {
            bail!(
                "{} already exists; give `meshlog demo` an empty or new folder",
                file.display()
            );
        }
    }

    let mut people = Vec::new();
    for name in NAMES {
        let keys = LocalKeys::generate();
        let path = dir.join(format!("{name}.keys"));
        keys.save(&path)?;
        people.push(Person {
            name,
            keys: path,
            id: keys.member_id(),
        });
    }
    let [founder, alice, bob, carol] = people.as_slice() else {
        bail!("the demo needs four people");
    };

    println!("Building a sample group in {}", dir.display());
    let step = |what: &str| println!("  • {what}");
    {
        let mut mesh = Mesh::create(&db, founder.keys()?, "demo team")?;
        step("founder creates \"demo team\" (epoch 0) and enables itself");
        mesh.set_enabled(true)?;
        for person in [alice, bob, carol] {
            mesh.add_member(person.keys()?.public(), Role::Member)?;
            step(&format!(
                "founder adds {} → epoch {}",
                person.name,
                current_epoch(&mesh)
            ));
        }
        mesh.set_role(alice.id, Role::Admin)?;
        step(&format!(
            "founder promotes alice to admin → epoch {}",
            current_epoch(&mesh)
        ));
        mesh.remove_member(carol.id)?;
        step(&format!(
            "founder removes carol → epoch {}",
            current_epoch(&mesh)
        ));
        mesh.append_app("note", b"welcome, alice and bob")?;
        step("founder posts a note");
    }
    // One file has one open handle: the founder's is closed above.
    {
        let mut mesh = Mesh::open(&db, alice.keys()?)?;
        mesh.set_enabled(true)?;
        mesh.append_app("note", b"thanks! alice here")?;
        step("alice enables herself and posts a note");
    }

    println!();
    print_secret_table(&db, &people)?;

    println!();
    println!("Verifying the result, as `meshlog verify` does:");
    let report = crate::audit::verify_file(&db, None, None)?;
    for line in report.to_text().lines() {
        println!("  {line}");
    }

    println!();
    println!("Explore it further:");
    let shown = db.display();
    println!("  meshlog log {shown}");
    println!("  meshlog show {shown} --epoch 2");
    println!("  meshlog verify {shown} --json");
    println!(
        "  meshlog secret {shown} --keys {} --epoch 5",
        dir.join("bob.keys").display()
    );
    if args.dir.is_none() {
        println!(
            "({} is deleted when this command exits; run `meshlog demo ./demo` to keep it)",
            dir.display()
        );
    }
    Ok(if report.is_ok() {
        Verdict::Ok
    } else {
        Verdict::Failed
    })
}

fn current_epoch(mesh: &Mesh) -> u64 {
    mesh.state().current_epoch().map_or(0, |epoch| epoch.epoch)
}

/// Width of one cell of the secret table.
const CELL: usize = 18;

/// Tries every member × epoch with that member's own keys.
fn print_secret_table(db: &Path, people: &[Person]) -> anyhow::Result<()> {
    let mut columns = Vec::new();
    let mut reasons = Vec::new();
    for person in people {
        let mesh = Mesh::open(db, person.keys()?)?;
        let epochs: Vec<_> = mesh
            .state()
            .epochs()
            .iter()
            .map(|e| (e.epoch, e.reason.clone()))
            .collect();
        if reasons.is_empty() {
            reasons = epochs.clone();
        }
        let cells: Vec<String> = epochs
            .iter()
            .map(|(epoch, _)| match mesh.epoch_secret(*epoch) {
                Ok(secret) => format!("✓ {}", secret.fingerprint().get(..8).unwrap_or_default()),
                Err(error) => format!("✗ {}", error_kind(&error)),
            })
            .collect();
        columns.push(cells);
    }
    println!("Who can recover which epoch secret (✓ with the secret's fingerprint):");
    let mut header = format!("  {:<32}", "epoch");
    for person in people {
        header.push_str(&format!("{:<CELL$}", person.name));
    }
    println!("{}", header.trim_end());
    for (row, (epoch, reason)) in reasons.iter().enumerate() {
        let reason = people.iter().fold(reason.clone(), |text, person| {
            text.replace(&person.id.to_string(), person.name)
        });
        let label = format!("{epoch} {}", shorten(&reason, 30));
        let mut line = format!("  {label:<32}");
        for column in &columns {
            let cell = column.get(row).map(String::as_str).unwrap_or("");
            // `{:<N}` pads by chars, and ✓/✗ are one char wide on a terminal.
            line.push_str(&format!("{cell:<CELL$}"));
        }
        println!("{}", line.trim_end());
    }
    println!("  (a removed member keeps the secrets it had, and gets none after)");
    Ok(())
}

/// A few words for why an epoch secret could not be recovered.
fn error_kind(error: &Error) -> &'static str {
    match error {
        Error::NotAMember { .. } => "not a member",
        Error::Envelope(_) => "does not open",
        Error::DhKeyMismatch { .. } => "other key",
        Error::NoSuchEpoch { .. } => "no such epoch",
        _ => "error",
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
        short.push('…');
        short
    }
}
