//! The feed mark: the newest event of the local member's own feed, per
//! group, kept in a small file beside its key file (SPEC.md §11.2).
//!
//! A member that writes on a copy older than its own feed (a laptop
//! restored from a backup) signs a second event at a position its feed
//! already holds: an equivocation, which every peer keeps as evidence
//! forever (§4.4). The copy cannot tell by itself; the key file's folder
//! can, since the key file travels with the member rather than with the
//! copy. The mark names the newest own event an acknowledged write made;
//! a copy that lacks it is older than the feed, and the mesh refuses to
//! write on it until a sync brings the event back.
//!
//! The mark only ever names an event that is durable in the copy (written
//! at a checkpoint, after redb took it), so a crash never leaves a mark
//! ahead of what the next open recovers. It may lag behind: a crash before
//! the checkpoint leaves the previous mark, which blocks nothing and only
//! narrows what is detected. It holds no secret.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::ids::{EventHash, GroupId};

/// The first line of a feed mark.
const MAGIC_LINE: &str = "meshlog-feed-mark-v1";
/// What the feed mark's name adds to its key file's.
const SUFFIX: &str = "-mark";
/// A mark longer than this is not one: a line is at most 152 bytes, and a
/// member in 10,000 groups needs 1.5 MB.
const MAX_BYTES: u64 = 4 << 20;

/// The newest event of a member's own feed in one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    /// Its position in the feed.
    pub(crate) seq: u64,
    /// The event.
    pub(crate) event: EventHash,
}

/// The feed mark of the key file at `key_file`: beside it, its name with
/// `-mark` added (`alice.keys` → `alice.keys-mark`, SPEC.md §11.2).
pub fn feed_mark_path(key_file: impl AsRef<Path>) -> PathBuf {
    let mut name = key_file.as_ref().as_os_str().to_owned();
    name.push(SUFFIX);
    PathBuf::from(name)
}

fn mark_error(path: &Path, detail: impl ToString) -> Error {
    Error::FeedMark {
        path: path.to_owned(),
        detail: detail.to_string(),
    }
}

/// Every group's mark in the file at `path`; none if there is no file.
pub(crate) fn read(path: &Path) -> Result<BTreeMap<GroupId, Mark>, Error> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(BTreeMap::new());
        }
        Err(error) => return Err(mark_error(path, error)),
    };
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_BYTES + 1), &mut text)
        .map_err(|error| mark_error(path, error))?;
    parse(&text).ok_or_else(|| {
        mark_error(
            path,
            "not a feed mark, or damaged; delete it (the next write makes a new one) after checking that this copy holds your newest events",
        )
    })
}

/// Strict parsing: the magic line, then one line per group, groups in
/// increasing order, each `group seq event` in lowercase hex and decimal,
/// every line ending with `\n`.
fn parse(text: &str) -> Option<BTreeMap<GroupId, Mark>> {
    if text.len() as u64 > MAX_BYTES {
        return None;
    }
    let body = text.strip_prefix(MAGIC_LINE)?.strip_prefix('\n')?;
    let mut marks = BTreeMap::new();
    let mut last: Option<GroupId> = None;
    for line in body.split_terminator('\n') {
        let mut fields = line.split(' ');
        let group: GroupId = fields.next()?.parse().ok()?;
        let seq: u64 = fields.next()?.parse().ok()?;
        let event: EventHash = fields.next()?.parse().ok()?;
        if fields.next().is_some() || last.is_some_and(|last| last >= group) {
            return None;
        }
        last = Some(group);
        marks.insert(group, Mark { seq, event });
    }
    // Re-encoding must give the same bytes: no other spelling is a mark.
    (render(&marks) == text).then_some(marks)
}

fn render(marks: &BTreeMap<GroupId, Mark>) -> String {
    let mut text = format!("{MAGIC_LINE}\n");
    for (group, mark) in marks {
        text.push_str(&format!("{group} {} {}\n", mark.seq, mark.event));
    }
    text
}

/// Sets `group`'s mark in the file at `path`, atomically: a new file
/// (readable by its owner only) is written, synced and renamed over the
/// old one, and the folder synced, so that a crash leaves the old mark or
/// the new one.
pub(crate) fn write(path: &Path, group: GroupId, mark: Mark) -> Result<(), Error> {
    let mut marks = read(path)?;
    if marks.get(&group) == Some(&mark) {
        return Ok(());
    }
    marks.insert(group, mark);
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let io = |error: std::io::Error| mark_error(path, error);
    // `tempfile` creates the file with mode 0600 where modes exist.
    let mut file = tempfile::NamedTempFile::new_in(folder).map_err(io)?;
    file.write_all(render(&marks).as_bytes()).map_err(io)?;
    file.as_file().sync_all().map_err(io)?;
    file.persist(path).map_err(|error| io(error.error))?;
    crate::journal::sync_folder_of(path).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(seq: u64, byte: u8) -> Mark {
        Mark {
            seq,
            event: EventHash::from_bytes([byte; 32]),
        }
    }

    #[test]
    fn marks_round_trip_per_group_and_the_file_is_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = feed_mark_path(dir.path().join("alice.keys"));
        assert_eq!(path, dir.path().join("alice.keys-mark"));
        assert!(read(&path).unwrap().is_empty(), "no file: no mark");
        let (one, two) = (GroupId::from_bytes([2; 32]), GroupId::from_bytes([1; 32]));
        write(&path, one, mark(3, 7)).unwrap();
        write(&path, two, mark(0, 8)).unwrap();
        write(&path, one, mark(4, 9)).unwrap();
        let marks = read(&path).unwrap();
        assert_eq!(marks.get(&one), Some(&mark(4, 9)));
        assert_eq!(marks.get(&two), Some(&mark(0, 8)));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!(
                "meshlog-feed-mark-v1\n{} 0 {}\n{} 4 {}\n",
                "01".repeat(32),
                "08".repeat(32),
                "02".repeat(32),
                "09".repeat(32)
            )
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_damaged_mark_is_refused_not_guessed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k-mark");
        let good = format!(
            "meshlog-feed-mark-v1\n{} 1 {}\n",
            "01".repeat(32),
            "02".repeat(32)
        );
        assert!(parse(&good).is_some());
        for bad in [
            String::new(),
            good.replace("v1", "v9"),
            good.trim_end().to_owned(),
            good.replace(" 1 ", " 01 "),
            good.replace("0202", "0G02"),
            good.replace(" 1 ", " 1  "),
            format!("{good}{}", good.lines().nth(1).unwrap()),
        ] {
            std::fs::write(&path, &bad).unwrap();
            assert!(
                matches!(read(&path), Err(Error::FeedMark { .. })),
                "{bad:?}"
            );
        }
    }
}
