//! `meshlog demo`: a sample mesh built with the library, in well under a
//! second.
//!
//! It walks the life of a small group on two copies: the founder creates the
//! mesh and adds an admin and two members; the admin makes her own copy from
//! the founder's export; then, before they sync again, the founder removes a
//! member while the admin adds another, and both post a note. The two
//! copies sync by frontier, export and ingest, as `meshlog` does between
//! machines; the founder merges the two concurrent rotations, and both
//! copies end with the same digest; the founder posts a sealed note. Then a
//! table shows who can read which epoch's secret, each person tries to open
//! the note, and the founder's copy is verified as `meshlog verify` does.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use meshlog::{Batch, Change, EventHash, LocalKeys, MemberId, Mesh, MeshOptions, Role};

use crate::{Verdict, shown};

pub(crate) const DEMO_AFTER_HELP: &str = "\
Without DIR the sample lives in a temporary folder deleted when the command
exits; with DIR it is kept there (DIR is created if needed, and must not
already hold the demo's files): founder.redb and alice.redb (two copies of
one mesh), and founder.keys, alice.keys, bob.keys, carol.keys, dave.keys.

Examples:
  meshlog demo
  meshlog demo ./demo && meshlog log ./demo/founder.redb";

/// Arguments of `meshlog demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Keep the sample in this folder.
    dir: Option<PathBuf>,
}

const NAMES: [&str; 5] = ["founder", "alice", "bob", "carol", "dave"];
const FOUNDER_DB: &str = "founder.redb";
const ALICE_DB: &str = "alice.redb";

/// One person of the demo: a name, a key file, an id.
struct Person {
    name: &'static str,
    keys: PathBuf,
    id: MemberId,
}

impl Person {
    fn keys(&self) -> anyhow::Result<LocalKeys> {
        crate::load_keys(&self.keys)
    }
}

/// Moves a batch as bytes, as a file between two machines would.
fn carry(batch: &Batch) -> anyhow::Result<Batch> {
    Ok(Batch::from_bytes(&batch.to_bytes()).map_err(meshlog::Error::from)?)
}

/// Sends `to` what its frontier says it lacks from `from`; returns how many
/// events were new to it.
fn sync(from: &Mesh, to: &mut Mesh) -> anyhow::Result<usize> {
    let frontier = meshlog::Frontier::from_bytes(&to.frontier().to_bytes())
        .context("a frontier round-trips through its bytes")?;
    let batch = carry(&from.export(&frontier))?;
    Ok(to.ingest(&batch)?.added)
}

/// `meshlog demo`.
pub(crate) fn run(args: &DemoArgs) -> anyhow::Result<Verdict> {
    // Held until the end of the run: dropping it deletes the folder.
    let (_temp, dir) = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", shown(dir)))?;
            (None, dir.clone())
        }
        None => {
            let temp = tempfile::TempDir::new().context("creating a temporary folder")?;
            let dir = temp.path().to_owned();
            (Some(temp), dir)
        }
    };
    let founder_db = dir.join(FOUNDER_DB);
    let alice_db = dir.join(ALICE_DB);
    // Check every file first, so a refused run leaves nothing half-built.
    for file in NAMES
        .iter()
        .map(|name| dir.join(format!("{name}.keys")))
        .chain([founder_db.clone(), alice_db.clone()])
    {
        if file.exists() {
            bail!(
                "{} already exists; give `meshlog demo` an empty or new folder",
                shown(&file)
            );
        }
    }
    let mut people = Vec::new();
    for name in NAMES {
        let keys = LocalKeys::generate();
        let path = dir.join(format!("{name}.keys"));
        keys.save(&path).map_err(meshlog::Error::from)?;
        people.push(Person {
            name,
            keys: path,
            id: keys.member_id(),
        });
    }
    let [founder, alice, bob, carol, dave] = people.as_slice() else {
        bail!("the demo needs five people");
    };
    let name_of = |id: MemberId| {
        people
            .iter()
            .find(|person| person.id == id)
            .map_or_else(|| id.short(), |person| person.name.to_owned())
    };

    outln!("Building a sample mesh in {}", shown(&dir));
    let step = |what: String| outln!("  • {what}");
    // What each epoch is, in the words of the walk-through, for the table.
    let mut labels: Vec<(EventHash, &str)> = Vec::new();
    let (merge, digests, note) = {
        let mut ours = Mesh::create(&founder_db, founder.keys()?, "demo team")?;
        ours.set_enabled(true)?;
        step(
            "founder creates the mesh \"demo team\" in founder.redb: the founder is its owner, \
             and enables itself"
                .to_owned(),
        );
        let team = ours.rotate(
            vec![
                Change::Add {
                    package: alice.keys()?.package(),
                    role: Role::Admin,
                },
                Change::Add {
                    package: bob.keys()?.package(),
                    role: Role::Member,
                },
                Change::Add {
                    package: carol.keys()?.package(),
                    role: Role::Member,
                },
            ],
            "team",
        )?;
        labels.push((team, "team: + alice, bob, carol"));
        step(format!(
            "founder adds alice (admin), bob and carol (members), each from the key package \
             they signed: a rotation, epoch {}",
            team.short()
        ));

        let everything = carry(&ours.export_all())?;
        let mut theirs = Mesh::join(&alice_db, alice.keys()?, &everything)?;
        theirs.set_enabled(true)?;
        step(format!(
            "alice makes her own copy, alice.redb, from the founder's export ({} events), \
             and enables herself",
            everything.len()
        ));

        outln!("  Now both write before they sync again:");
        let removal = ours.remove_member(carol.id)?;
        labels.push((removal, "founder removes carol"));
        ours.append_app("note", b"carol has left the team")?;
        step(format!(
            "founder removes carol (epoch {}) and posts a note",
            removal.short()
        ));
        let addition = theirs.add_member(dave.keys()?.package(), Role::Member)?;
        labels.push((addition, "alice adds dave"));
        theirs.append_app("note", b"welcome, dave")?;
        step(format!(
            "alice, who has not seen that yet, adds dave (epoch {}) and posts a note",
            addition.short()
        ));

        let to_founder = sync(&theirs, &mut ours)?;
        let needs = if ours.needs_merge() {
            "the two concurrent rotations fork the epoch graph: the mesh needs a merge"
        } else {
            "no merge needed"
        };
        step(format!(
            "alice's copy sends what the founder's frontier lacks: {to_founder} events; {needs}"
        ));
        let merge = ours.merge()?;
        if let Some(merge) = merge {
            labels.push((merge, "founder's merge"));
            step(format!(
                "founder merges: epoch {} names both and wraps a fresh secret to the resolved \
                 roster (removal wins: no carol; dave stays)",
                merge.short()
            ));
        }
        let note = ours.append_sealed("note", b"the deploy key rotates on friday")?;
        step(format!(
            "founder posts a sealed note ({}): the file shows its kind and size, and only \
             the members of its epoch can read it",
            note.short()
        ));
        let to_alice = sync(&ours, &mut theirs)?;
        step(format!(
            "the founder's copy sends what alice's frontier lacks: {to_alice} events"
        ));
        let digests = (ours.digest(), theirs.digest());
        let same = if digests.0 == digests.1 {
            "the same digest"
        } else {
            "DIFFERENT digests"
        };
        step(format!(
            "both copies hold {} events and {same}: {}",
            ours.len(),
            digests.0
        ));
        let roster: Vec<String> = ours
            .roster()
            .iter()
            .map(|(id, entry)| format!("{} ({})", name_of(*id), entry.role()))
            .collect();
        step(format!("the resolved roster R*: {}", roster.join(", ")));
        (merge, digests, note)
        // Both meshes close here: a file has one handle per process.
    };

    outln!();
    print_secret_table(&founder_db, &people, &labels)?;

    outln!();
    print_sealed_note(&founder_db, &people, note)?;

    outln!();
    outln!("Verifying founder.redb, as `meshlog verify` does:");
    let (report, _) = crate::audit::verify_file(&founder_db, None)?;
    for line in report.to_text().lines() {
        outln!("  {line}");
    }

    outln!();
    outln!("Explore it further:");
    outln!("  meshlog log {}", shown(&founder_db));
    outln!("  meshlog show {}", shown(&founder_db));
    outln!("  meshlog verify {} --json", shown(&alice_db));
    if let Some(merge) = merge {
        outln!(
            "  meshlog secret {} --keys {} --epoch {}    # refused: carol was removed",
            shown(&founder_db),
            shown(&dir.join("carol.keys")),
            merge.short()
        );
    }
    if args.dir.is_none() {
        outln!(
            "({} is deleted when this command exits; run `meshlog demo ./demo` to keep it)",
            shown(&dir)
        );
    }
    Ok(if report.is_ok() && digests.0 == digests.1 {
        Verdict::Ok
    } else {
        Verdict::Failed
    })
}

/// Tries to open the sealed note with each person's keys.
fn print_sealed_note(db: &Path, people: &[Person], note: EventHash) -> anyhow::Result<()> {
    outln!(
        "Who can open the founder's sealed note {} (SPEC.md §16):",
        note.short()
    );
    for person in people {
        let mesh = MeshOptions::new().open_read_only(db, Some(person.keys()?))?;
        let line = match mesh.open_event(note) {
            Ok(opened) => format!(
                "✓ {:?}, sealed by {}",
                String::from_utf8_lossy(&opened.plaintext),
                if Some(opened.sender) == mesh.founder().into() {
                    "the founder".to_owned()
                } else {
                    opened.sender.short()
                }
            ),
            Err(error) => format!("✗ {error}"),
        };
        outln!("  {:<9}{line}", person.name);
    }
    Ok(())
}

/// Width of one cell of the secret table.
const CELL: usize = 11;
/// Width of the table's first column.
const LABEL: usize = 37;

/// Tries every member × epoch with that member's own keys.
fn print_secret_table(
    db: &Path,
    people: &[Person],
    labels: &[(EventHash, &str)],
) -> anyhow::Result<()> {
    let mut columns = Vec::new();
    let mut rows: Vec<(EventHash, String, bool)> = Vec::new();
    for person in people {
        let mesh = MeshOptions::new().open_read_only(db, Some(person.keys()?))?;
        if rows.is_empty() {
            let current = mesh.current_epoch();
            rows = mesh
                .epochs()
                .iter()
                .map(|epoch| {
                    let label = match labels.iter().find(|(hash, _)| *hash == epoch.hash) {
                        Some((_, label)) => (*label).to_owned(),
                        None if epoch.is_genesis => "genesis: the founder alone".to_owned(),
                        None => epoch.reason.clone(),
                    };
                    (epoch.hash, label, current == Some(epoch.hash))
                })
                .collect();
        }
        let cells: Vec<String> = rows
            .iter()
            .map(|(epoch, _, _)| match mesh.epoch_secret(*epoch) {
                Ok(secret) => format!("✓ {}", secret.fingerprint().get(..6).unwrap_or_default()),
                Err(_) => "✗".to_owned(),
            })
            .collect();
        columns.push(cells);
    }
    outln!("Who can read which epoch's secret (✓ with the start of its fingerprint):");
    let mut header = format!("  {:<LABEL$}", "epoch");
    for person in people {
        header.push_str(&format!("{:<CELL$}", person.name));
    }
    outln!("{}", header.trim_end());
    for (row, (epoch, label, current)) in rows.iter().enumerate() {
        let mark = if *current { " (current)" } else { "" };
        let label = format!("{} {label}{mark}", epoch.short());
        let mut line = format!("  {label:<LABEL$}");
        for column in &columns {
            let cell = column.get(row).map(String::as_str).unwrap_or("");
            // `{:<N}` pads by chars, and ✓/✗ are one char wide on a terminal.
            line.push_str(&format!("{cell:<CELL$}"));
        }
        outln!("{}", line.trim_end());
    }
    outln!(
        "  A rotation's secret goes to the roster its author saw: carol can read \"alice adds \
         dave\",\n  which alice made before she saw carol's removal. That epoch never became \
         current; the\n  merge is, and carol has no part of its secret, nor of any later one. \
         A removed member\n  keeps the secrets it had."
    );
    Ok(())
}
