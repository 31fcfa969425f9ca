//! `meshlog seal` and `meshlog open`: messages sealed under the epoch
//! secret (SPEC.md §16), from a file or stdin to a file or stdout, like age.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use meshlog::{Opened, Padding, Sealed, limits};
use serde_json::{Value, json};

use crate::operator::MemberArgs;
use crate::{Verdict, load_keys, shown};

pub(crate) const SEAL_AFTER_HELP: &str = "\
Seals IN (stdin without it) for the members of the epoch the key file's
member writes under, and writes the sealed message to OUT (stdout without
it). Any member of that epoch can open it and learns who sealed it; no
other member can make a message that opens as this member's. An outsider
sees the group, the epoch, the associated data and the padded size.

Every message has its own key, from a fresh random salt: nothing to keep
between runs. There is no forward secrecy within an epoch: whoever holds
the epoch's secret reads all of its messages; rotate (`meshlog refresh`)
after a member leaves or a key leaks.

--padding: padme (the default: at most 12% more bytes, and only a length's
top bits show), none, or a block size in bytes (up to the next multiple).

Examples:
  meshlog seal team.redb --keys alice.keys report.pdf -o report.sealed
  echo 'deploy at 5' | meshlog seal team.redb --keys alice.keys --ad ops > msg.sealed";

pub(crate) const OPEN_AFTER_HELP: &str = "\
Opens a sealed message from IN (stdin without it) and writes its plaintext
to OUT (stdout without it; OUT is made new, readable by its owner only).
Before any plaintext byte is written: the message is of this mesh's group,
the file holds its epoch, the key file's member is in that epoch's roster,
the encryption verifies, the sender is in that epoch's roster and its
signature holds. The sender and epoch go to stderr.

--json prints {sender, epoch, epoch_applied, epoch_current,
sender_in_roster, id, associated_data_hex, associated_data (when UTF-8),
bytes} on stdout, with the plaintext as plaintext_hex (and text, when
UTF-8) unless -o takes it. A message that opens is genuine, but may be
stale, and open says so (a note on stderr; false in the JSON):
epoch_applied is false when its epoch lost the resolution (a fired admin's
rotation, say); epoch_current is false for an epoch writers have moved
past, in which anyone who was a member then can still seal; and
sender_in_roster is false once the sender has been removed.

A sealed app event's payload lifted from a file does not open here (it is
not a message its author sent): `meshlog log --keys` reads those.

Exit 1 when the message is altered or forged or the member is not in its
epoch; 2 when it is not a sealed message, of another group, or of an epoch
this file does not hold yet (sync first).

Examples:
  meshlog open team.redb --keys bob.keys report.sealed -o report.pdf
  meshlog open team.redb --keys bob.keys --json < msg.sealed";

/// Arguments of `meshlog seal`.
#[derive(Debug, Args)]
pub(crate) struct SealArgs {
    #[command(flatten)]
    actor: MemberArgs,
    /// The plaintext (stdin without it).
    input: Option<PathBuf>,
    /// Where the sealed message goes (a new file; stdout without it).
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
    /// Associated data, bound to the message and sent in the clear.
    #[arg(long, value_name = "TEXT", default_value = "")]
    ad: String,
    /// padme, none, or a block size in bytes.
    #[arg(long, value_name = "PADDING", default_value = "padme", value_parser = parse_padding)]
    padding: Padding,
}

/// Arguments of `meshlog open`.
#[derive(Debug, Args)]
pub(crate) struct OpenArgs {
    #[command(flatten)]
    actor: MemberArgs,
    /// The sealed message (stdin without it).
    input: Option<PathBuf>,
    /// Where the plaintext goes (a new file, mode 0600; stdout without it).
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
    /// Print what was opened as JSON (fields listed below).
    #[arg(long)]
    json: bool,
}

fn parse_padding(text: &str) -> Result<Padding, String> {
    match text {
        "padme" => Ok(Padding::Padme),
        "none" => Ok(Padding::None),
        block => block
            .parse::<std::num::NonZeroU32>()
            .map(Padding::Multiple)
            .map_err(|_| format!("{block:?}: give padme, none, or a block size in bytes")),
    }
}

/// Reads `input` (stdin when `None`), refusing more than `max` bytes
/// before holding them.
fn read_bounded(input: Option<&Path>, max: usize, what: &str) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let limit = max as u64 + 1;
    match input {
        Some(path) => {
            let file =
                std::fs::File::open(path).with_context(|| format!("opening {}", shown(path)))?;
            // Sized once from the file's length: no copy left behind by a
            // buffer that grows.
            let len = file.metadata().map_or(0, |metadata| metadata.len());
            bytes.reserve(usize::try_from(len.min(limit)).unwrap_or(0));
            file.take(limit)
                .read_to_end(&mut bytes)
                .with_context(|| format!("reading {}", shown(path)))?
        }
        None => std::io::stdin()
            .lock()
            .take(limit)
            .read_to_end(&mut bytes)
            .context("reading stdin")?,
    };
    if bytes.len() > max {
        bail!("{what} is larger than the {max} bytes a sealed message allows");
    }
    Ok(bytes)
}

/// Writes `bytes` to a new file at `path` (owner-only when `private`), or
/// to stdout.
fn write_out(output: Option<&Path>, bytes: &[u8], private: bool) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            if private {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let _ = private;
            let mut file = options
                .open(path)
                .with_context(|| format!("creating {} (it must not exist)", shown(path)))?;
            file.write_all(bytes)
                .and_then(|()| file.sync_all())
                .with_context(|| format!("writing {}", shown(path)))
        }
        None => {
            crate::output::bytes(bytes);
            Ok(())
        }
    }
}

/// `meshlog seal`.
pub(crate) fn seal(args: &SealArgs) -> anyhow::Result<Verdict> {
    let keys = load_keys(&args.actor.keys)?;
    let mesh = crate::open_read_only(&args.actor.db, Some(keys))?;
    let plaintext = zeroize::Zeroizing::new(read_bounded(
        args.input.as_deref(),
        limits::MAX_SEALED_PLAINTEXT,
        "the plaintext",
    )?);
    let sealed = mesh.seal_with(&plaintext, args.ad.as_bytes(), args.padding)?;
    write_out(args.output.as_deref(), sealed.as_bytes(), false)?;
    eprintln!(
        "sealed {} bytes in epoch {} ({} bytes sealed)",
        plaintext.len(),
        sealed.epoch().short(),
        sealed.as_bytes().len()
    );
    Ok(Verdict::Ok)
}

/// `meshlog open`.
pub(crate) fn open(args: &OpenArgs) -> anyhow::Result<Verdict> {
    let keys = load_keys(&args.actor.keys)?;
    let mesh = crate::open_read_only(&args.actor.db, Some(keys))?;
    let bytes = read_bounded(args.input.as_deref(), Sealed::MAX_BYTES, "the input")?;
    let sealed = Sealed::from_vec(bytes).map_err(meshlog::Error::from)?;
    let opened = mesh.open_sealed(&sealed)?;
    if args.json {
        if let Some(path) = &args.output {
            write_out(Some(path), &opened.plaintext, true)?;
        }
        outln!("{}", opened_json(&opened, args.output.is_none()));
    } else {
        write_out(args.output.as_deref(), &opened.plaintext, true)?;
        eprintln!(
            "opened {} bytes from {} in epoch {}",
            opened.plaintext.len(),
            opened.sender,
            opened.epoch.short(),
        );
        for warning in warnings(&opened) {
            eprintln!("note: {warning}");
        }
    }
    Ok(Verdict::Ok)
}

/// What a reader should know about a message that opened: it is genuine,
/// but may be stale.
pub(crate) fn warnings(opened: &Opened) -> Vec<&'static str> {
    let mut warnings = Vec::new();
    if !opened.epoch_applied {
        warnings.push("its epoch is void: a rotation that lost the resolution chose its secret");
    } else if !opened.epoch_current {
        warnings
            .push("its epoch is not the current one: anyone who was a member then can seal in it");
    }
    if !opened.sender_in_roster {
        warnings.push("its sender is no longer in the roster");
    }
    warnings
}

/// What was opened, as JSON; the plaintext too when `with_plaintext`.
pub(crate) fn opened_json(opened: &Opened, with_plaintext: bool) -> Value {
    let mut fields = serde_json::Map::new();
    fields.insert("sender".into(), json!(opened.sender.to_string()));
    fields.insert("epoch".into(), json!(opened.epoch.to_string()));
    fields.insert("epoch_applied".into(), json!(opened.epoch_applied));
    fields.insert("epoch_current".into(), json!(opened.epoch_current));
    fields.insert("sender_in_roster".into(), json!(opened.sender_in_roster));
    fields.insert("id".into(), json!(opened.id.to_string()));
    fields.insert("bytes".into(), json!(opened.plaintext.len()));
    insert_bytes(
        &mut fields,
        ("associated_data_hex", "associated_data"),
        &opened.associated_data,
    );
    if with_plaintext {
        insert_bytes(&mut fields, ("plaintext_hex", "text"), &opened.plaintext);
    }
    Value::Object(fields)
}

/// `bytes` in hex under `hex_name`, and as text under `text_name` too when
/// they are UTF-8.
fn insert_bytes(
    fields: &mut serde_json::Map<String, Value>,
    (hex_name, text_name): (&str, &str),
    bytes: &[u8],
) {
    fields.insert(hex_name.into(), json!(hex::encode(bytes)));
    if let Ok(text) = std::str::from_utf8(bytes) {
        fields.insert(text_name.into(), json!(text));
    }
}
