//! The journal: where an event made here becomes durable with one `fsync`
//! of one page, before redb takes it at the next checkpoint (SPEC.md §9.6).
//!
//! A redb commit in the single-writer mode meshlog uses (so that auditors
//! can read a live file) always takes two `fsync`s and writes several
//! scattered pages. SQLite's WAL appends one frame and syncs once. The
//! journal does the same for meshlog: each event made here is written as one
//! checksummed frame into a preallocated file beside the database and synced
//! once; every [`CHECKPOINT_FRAMES`] frames, and when the mesh closes, the
//! events go into redb with their projection rows in one transaction, and
//! the journal starts over. Opening replays what the journal holds beyond
//! the database, through the same verification as everything else.
//!
//! The journal holds signed records only, never a secret.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::error::StoreError;
use crate::ids::GroupId;
use crate::labels::{self, limits};
use crate::signature::SIGNATURE_LEN;

/// First bytes of a journal.
const MAGIC: &[u8; 8] = b"mljrnl3\0";
/// `MAGIC || group (32) || base (8) || salt (8) || check (16)`.
const HEADER_LEN: u64 = 72;
/// `len (4) || salt (8)`, then the record, then a 16-byte check.
const FRAME_OVERHEAD: usize = 4 + 8 + 16;
/// Bytes written as zeros when a journal is made, so that a frame's `fsync`
/// overwrites pages in place rather than growing the file (which would make
/// the file system commit its own metadata too).
const PREALLOCATED: u64 = 1 << 20;
/// Frames after which the mesh checkpoints into redb: SQLite's default for
/// its WAL is 1,000 pages. A checkpoint costs a redb commit (two `fsync`s)
/// and a fresh header (one), spread over this many events; about 440 KB of
/// frames of 64-byte app events, within the preallocated megabyte.
pub(crate) const CHECKPOINT_FRAMES: usize = 1024;
/// Largest record a frame may hold.
const MAX_RECORD: usize = SIGNATURE_LEN + limits::MAX_EVENT_BYTES;

/// Writes `bytes` at `offset` of `file`.
#[cfg(unix)]
fn write_at(file: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(bytes, offset)
}

/// Writes `bytes` at `offset` of `file`.
#[cfg(not(unix))]
fn write_at(mut file: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(bytes)
}

/// Opens (or makes) the journal file so that a write returns only once its
/// data is durable: `O_DSYNC` where the platform has it, which is what
/// `write` then `fdatasync` does (POSIX's synchronized data integrity) in
/// one system call instead of two, and no slower. Elsewhere
/// [`durable_write_at`] syncs each write itself.
fn open_for_durable_writes(path: &Path) -> std::io::Result<File> {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_DSYNC);
    options.open(path)
}

/// Writes `bytes` at `offset` of a file from [`open_for_durable_writes`],
/// durably: when this returns, a crash cannot lose them.
fn durable_write_at(file: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    write_at(file, bytes, offset)?;
    // O_DSYNC has synced them already.
    #[cfg(not(unix))]
    file.sync_data()?;
    Ok(())
}

/// Makes the entry of `path` in its folder durable.
#[cfg(unix)]
fn sync_folder_of(path: &Path) -> std::io::Result<()> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(folder)?.sync_all()
}

/// Makes the entry of `path` in its folder durable (where the platform
/// offers no way to, the file's own sync has to do).
#[cfg(not(unix))]
fn sync_folder_of(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// The journal's path beside the database at `path`.
pub(crate) fn path_beside(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-journal");
    PathBuf::from(name)
}

/// What a journal holds: the records written since its base.
#[derive(Debug)]
pub(crate) struct Contents {
    /// The group the journal belongs to (zero: no valid header).
    pub(crate) group: GroupId,
    /// How many events the database held when the journal started over.
    pub(crate) base: u64,
    /// The records, in the order they were written.
    pub(crate) records: Vec<Vec<u8>>,
}

impl Contents {
    fn empty() -> Contents {
        Contents {
            group: GroupId::ZERO,
            base: 0,
            records: Vec::new(),
        }
    }
}

/// An open journal, for writing.
pub(crate) struct Journal {
    file: File,
    path: PathBuf,
    group: GroupId,
    salt: u64,
    /// Where the next frame goes.
    end: u64,
    frames: usize,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The check of a header's fields.
fn header_check(group: &GroupId, base: u64, salt: u64) -> [u8; 16] {
    let mut hasher = blake3::Hasher::new_derive_key(labels::JOURNAL_CHECK);
    hasher.update(MAGIC);
    hasher.update(group.as_bytes());
    hasher.update(&base.to_le_bytes());
    hasher.update(&salt.to_le_bytes());
    truncated(hasher.finalize())
}

/// The check of a frame: it binds the record to this journal's salt, so a
/// frame left from before the journal started over never reads as current.
fn frame_check(salt: u64, record: &[u8]) -> [u8; 16] {
    let mut hasher = blake3::Hasher::new_derive_key(labels::JOURNAL_CHECK);
    hasher.update(&salt.to_le_bytes());
    hasher.update(&(record.len() as u64).to_le_bytes());
    hasher.update(record);
    truncated(hasher.finalize())
}

fn truncated(hash: blake3::Hash) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(hash.as_bytes().get(..16).unwrap_or(&[0; 16]));
    out
}

/// Reads the journal at `path` without writing to it. A missing file, or
/// one without a valid header, holds nothing; reading stops at the first
/// frame that is torn, stale (another salt) or damaged, since a frame is
/// acknowledged only once it and everything before it is on disk.
pub(crate) fn read(path: &Path) -> Result<Contents, StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Contents::empty()),
        Err(error) => return Err(io_error(path)(error)),
    };
    let Some((group, base, salt)) = parse_header(&bytes) else {
        return Ok(Contents::empty());
    };
    let mut records = Vec::new();
    let mut at = HEADER_LEN as usize;
    while let Some((record, next)) = parse_frame(&bytes, at, salt) {
        records.push(record);
        at = next;
    }
    Ok(Contents {
        group,
        base,
        records,
    })
}

fn parse_header(bytes: &[u8]) -> Option<(GroupId, u64, u64)> {
    let header = bytes.get(..HEADER_LEN as usize)?;
    let (magic, rest) = header.split_first_chunk::<8>()?;
    let (group, rest) = rest.split_first_chunk::<32>()?;
    let (base, rest) = rest.split_first_chunk::<8>()?;
    let (salt, rest) = rest.split_first_chunk::<8>()?;
    let (check, _) = rest.split_first_chunk::<16>()?;
    let group = GroupId::from_bytes(*group);
    let (base, salt) = (u64::from_le_bytes(*base), u64::from_le_bytes(*salt));
    (magic == MAGIC && *check == header_check(&group, base, salt)).then_some((group, base, salt))
}

fn parse_frame(bytes: &[u8], at: usize, salt: u64) -> Option<(Vec<u8>, usize)> {
    let frame = bytes.get(at..)?;
    let (len, rest) = frame.split_first_chunk::<4>()?;
    let len = u32::from_le_bytes(*len) as usize;
    if len == 0 || len > MAX_RECORD {
        return None;
    }
    let (frame_salt, rest) = rest.split_first_chunk::<8>()?;
    if u64::from_le_bytes(*frame_salt) != salt {
        return None;
    }
    let record = rest.get(..len)?;
    let check = rest.get(len..len + 16)?;
    (check == frame_check(salt, record)).then(|| (record.to_vec(), at + FRAME_OVERHEAD + len))
}

impl Journal {
    /// Opens (or makes) the journal at `path` for `group`, empty, starting
    /// over from `base` events: whatever it held must already be in the
    /// database (or replayed into it) before this is called.
    pub(crate) fn start(path: &Path, group: GroupId, base: u64) -> Result<Journal, StoreError> {
        let io = io_error(path);
        let file = open_for_durable_writes(path).map_err(&io)?;
        if file.metadata().map_err(&io)?.len() < PREALLOCATED {
            file.set_len(0).map_err(&io)?;
            write_at(&file, &vec![0u8; PREALLOCATED as usize], 0).map_err(&io)?;
        }
        let mut journal = Journal {
            file,
            path: path.to_owned(),
            group,
            salt: 0,
            end: HEADER_LEN,
            frames: 0,
        };
        journal.start_over(base)?;
        // The file's length and its preallocated pages are durable before
        // any frame relies on them, and so is its name in the folder: a
        // journal that vanished with a power cut would take acknowledged
        // events with it.
        journal.file.sync_all().map_err(&io)?;
        sync_folder_of(path).map_err(&io)?;
        Ok(journal)
    }

    /// Starts the journal over from `base`: a new salt makes every frame
    /// written so far stale.
    pub(crate) fn start_over(&mut self, base: u64) -> Result<(), StoreError> {
        let salt = rand::random::<u64>();
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(self.group.as_bytes());
        header.extend_from_slice(&base.to_le_bytes());
        header.extend_from_slice(&salt.to_le_bytes());
        header.extend_from_slice(&header_check(&self.group, base, salt));
        let io = io_error(&self.path);
        durable_write_at(&self.file, &header, 0).map_err(&io)?;
        self.salt = salt;
        self.end = HEADER_LEN;
        self.frames = 0;
        Ok(())
    }

    /// Writes `record` as the next frame and makes it durable: when this
    /// returns, a crash cannot lose it (SPEC.md §9.6).
    pub(crate) fn append(&mut self, record: &[u8]) -> Result<(), StoreError> {
        let len = u32::try_from(record.len())
            .ok()
            .filter(|len| *len as usize <= MAX_RECORD && *len > 0)
            .ok_or_else(|| StoreError::Io {
                path: self.path.clone(),
                source: std::io::Error::new(ErrorKind::InvalidInput, "record too large"),
            })?;
        let mut frame = Vec::with_capacity(FRAME_OVERHEAD + record.len());
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(&self.salt.to_le_bytes());
        frame.extend_from_slice(record);
        frame.extend_from_slice(&frame_check(self.salt, record));
        let io = io_error(&self.path);
        durable_write_at(&self.file, &frame, self.end).map_err(&io)?;
        self.end += frame.len() as u64;
        self.frames += 1;
        Ok(())
    }

    /// Whether it has grown past its preallocated pages, so that frames now
    /// cost a metadata commit too: time to checkpoint.
    pub(crate) fn is_full(&self) -> bool {
        self.frames >= CHECKPOINT_FRAMES || self.end >= PREALLOCATED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> GroupId {
        GroupId::from_bytes([7; 32])
    }

    #[test]
    fn frames_survive_and_a_fresh_start_makes_them_stale() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let mut journal = Journal::start(&path, group(), 5).unwrap();
        journal.append(b"first record").unwrap();
        journal.append(&[9u8; 300]).unwrap();
        let read_back = read(&path).unwrap();
        assert_eq!(read_back.group, group());
        assert_eq!(read_back.base, 5);
        assert_eq!(
            read_back.records,
            vec![b"first record".to_vec(), vec![9u8; 300]]
        );
        journal.start_over(7).unwrap();
        let read_back = read(&path).unwrap();
        assert_eq!(read_back.base, 7);
        assert!(read_back.records.is_empty(), "old frames are stale");
        journal.append(b"x").unwrap();
        assert_eq!(read(&path).unwrap().records, vec![b"x".to_vec()]);
    }

    #[test]
    fn reading_stops_at_a_torn_or_damaged_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let mut journal = Journal::start(&path, group(), 0).unwrap();
        for n in 0..3u8 {
            journal.append(&[n; 40]).unwrap();
        }
        drop(journal);
        let bytes = std::fs::read(&path).unwrap();
        // Damage the second frame's record: the first alone is read.
        let second = HEADER_LEN as usize + FRAME_OVERHEAD + 40 + 12;
        let mut damaged = bytes.clone();
        damaged[second + 3] ^= 1;
        std::fs::write(&path, &damaged).unwrap();
        assert_eq!(read(&path).unwrap().records, vec![vec![0u8; 40]]);
        // A damaged header: nothing is read.
        let mut damaged = bytes;
        damaged[10] ^= 1;
        std::fs::write(&path, &damaged).unwrap();
        assert!(read(&path).unwrap().records.is_empty());
        // No file at all: nothing either.
        assert!(read(&dir.path().join("none")).unwrap().records.is_empty());
    }
}
