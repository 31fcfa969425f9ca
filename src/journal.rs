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
//! A frame holds an event's bytes, and the signature of the event of the
//! frame before it. The frame is written and its writeback started, the
//! event is signed meanwhile, and it is acknowledged once the frame is
//! durable; its signature reaches the disk with the next frame or the
//! checkpoint. So signing, most of an append's own work, overlaps the
//! disk's. Ed25519's signature is a function of the key and the bytes, so
//! the key's holder makes the same one again after a crash. Every frame's
//! event carries a tag keyed by that key, and only the next event of its
//! author's feed is signed again, so that the engine never signs bytes it
//! did not make, nor a second event at a position of its own feed.
//!
//! The journal holds events and signatures, never a secret.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::StoreError;
use crate::ids::GroupId;
use crate::keys::LocalKeys;
use crate::labels::{self, limits};
use crate::signature::SIGNATURE_LEN;

/// First bytes of a journal.
const MAGIC: &[u8; 8] = b"mljrnl3\0";
/// `MAGIC || group (32) || base (8) || salt (8) || check (16)`.
const HEADER_LEN: u64 = 72;
/// `len (4) || salt (8)`, then the body, then a 16-byte check.
const FRAME_OVERHEAD: usize = 4 + 8 + 16;
/// Length of the tag of a frame's event.
const TAG_LEN: usize = 32;
/// A frame's body: the signature of the frame before's event (64 zero bytes
/// in the first frame), the tag of its own event, then the event's bytes.
/// A frame with no event is a *seal*: it only carries the signature, and
/// ends the journal.
const BODY_PREFIX: usize = SIGNATURE_LEN + TAG_LEN;
/// Bytes written as zeros when a journal is made, so that a frame's `fsync`
/// overwrites pages in place rather than growing the file (which would make
/// the file system commit its own metadata too).
const PREALLOCATED: u64 = 1 << 20;
/// Frames after which the mesh checkpoints into redb: SQLite's default for
/// its WAL is 1,000 pages. A checkpoint costs a redb commit (two `fsync`s)
/// and a fresh header (one), spread over this many events; about 470 KB of
/// frames of 64-byte app events, within the preallocated megabyte.
pub(crate) const CHECKPOINT_FRAMES: usize = 1024;
/// Largest body a frame may hold.
const MAX_BODY: usize = BODY_PREFIX + limits::MAX_EVENT_BYTES;

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

/// Writes `bytes` at `offset` of `file`, durably: when this returns, a
/// crash cannot lose them.
fn durable_write_at(file: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    write_at(file, bytes, offset)?;
    file.sync_data()
}

/// Starts writing `len` bytes of `file` from `offset` to the disk, without
/// waiting for them: the `fdatasync` that follows then finds them on their
/// way. Only a head start; durability is that `fdatasync`'s.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn start_writeback(file: &File, offset: u64, len: usize) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: `sync_file_range` reads and writes no memory of this
    // process: it takes a descriptor that `file` keeps open for the call,
    // two integers and a flag. Its failure only costs the head start.
    let _ = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
}

/// Elsewhere there is no head start: the `fdatasync` writes the frame.
#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: usize) {}

/// Makes the entry of `path` in its folder durable.
#[cfg(unix)]
pub(crate) fn sync_folder_of(path: &Path) -> std::io::Result<()> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(folder)?.sync_all()
}

/// Makes the entry of `path` in its folder durable (where the platform
/// offers no way to, the file's own sync has to do).
#[cfg(not(unix))]
pub(crate) fn sync_folder_of(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// The journal's path beside the database at `path`.
pub(crate) fn path_beside(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-journal");
    PathBuf::from(name)
}

/// Moves the journal at `path` to the first free name of
/// `PATH.unreplayed`, `PATH.unreplayed.1`, …, durably, and returns it: a
/// writable open keeps so what it could not replay, rather than start the
/// journal over it (SPEC.md §9.6).
pub(crate) fn set_aside(path: &Path) -> Result<PathBuf, StoreError> {
    let io = io_error(path);
    let mut name = path.as_os_str().to_owned();
    name.push(".unreplayed");
    let mut aside = PathBuf::from(&name);
    let mut n = 0u32;
    while aside.try_exists().map_err(&io)? {
        n += 1;
        let mut numbered = name.clone();
        numbered.push(format!(".{n}"));
        aside = PathBuf::from(numbered);
    }
    std::fs::rename(path, &aside).map_err(&io)?;
    sync_folder_of(path).map_err(&io)?;
    Ok(aside)
}

/// What a journal holds: the events written since its base.
#[derive(Debug)]
pub(crate) struct Contents {
    /// The group the journal belongs to (zero: no valid header).
    pub(crate) group: GroupId,
    /// How many events the database held when the journal started over.
    pub(crate) base: u64,
    /// The records (`signature || event bytes`) of every frame's event but
    /// the newest, whose signature the frame after it holds, in the order
    /// they were written.
    pub(crate) records: Vec<Vec<u8>>,
    /// Where in the journal the frame of each record's event starts.
    pub(crate) offsets: Vec<u64>,
    /// The newest frame's event, whose signature is not on disk.
    pub(crate) awaiting: Option<Awaiting>,
    /// A damaged frame that current frames follow, so that it was once
    /// durable, and with it every event after it, lost to reading.
    pub(crate) damaged: Option<Damaged>,
}

/// Frames the journal held durably and that reading cannot take: a frame
/// that is damaged although frames of this journal follow it (a torn
/// frame is always the newest, since a frame is written only once the one
/// before is durable), and every frame after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Damaged {
    /// Where the damaged frame starts.
    pub(crate) offset: u64,
    /// Frames lost: the damaged one, and those with an event after it.
    pub(crate) frames: usize,
}

impl Contents {
    fn empty() -> Contents {
        Contents {
            group: GroupId::ZERO,
            base: 0,
            records: Vec::new(),
            offsets: Vec::new(),
            awaiting: None,
            damaged: None,
        }
    }
}

/// The newest frame's event: acknowledged, its signature not on disk.
#[derive(Debug)]
pub(crate) struct Awaiting {
    /// The event's bytes (SPEC.md §3.4).
    pub(crate) event: Vec<u8>,
    tag: [u8; TAG_LEN],
    salt: u64,
    /// Where its frame starts in the journal.
    pub(crate) offset: u64,
}

impl Awaiting {
    /// Whether `keys`'s holder wrote it, so that they may sign it again.
    pub(crate) fn is_tagged_by(&self, keys: &LocalKeys) -> bool {
        // blake3's `Hash` compares in constant time.
        frame_tag(&keys.journal_tag_key(), self.salt, &self.event) == blake3::Hash::from(self.tag)
    }
}

/// The tag of an event in a frame: `keyed_hash(tag key, le64(salt) ||
/// le64(len) || event)`.
fn frame_tag(key: &[u8; 32], salt: u64, event: &[u8]) -> blake3::Hash {
    use zeroize::Zeroize;
    let mut hasher = blake3::Hasher::new_keyed(key);
    hasher.update(&salt.to_le_bytes());
    hasher.update(&(event.len() as u64).to_le_bytes());
    hasher.update(event);
    let tag = hasher.finalize();
    // The hasher's state holds the key.
    hasher.zeroize();
    tag
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
    tag_key: Zeroizing<[u8; 32]>,
    /// The signature of the newest durable frame's event, which the next
    /// frame carries; `None` before the first.
    previous: Option<[u8; SIGNATURE_LEN]>,
    /// Where a frame written and not yet synced ends.
    written: Option<u64>,
    /// The `base` of a start over not made yet: put off by the open of a
    /// journal that was there, or one that failed (the header on disk may
    /// have either salt). No frame is written until one succeeds.
    unstarted: Option<u64>,
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
    // A full disk is said as the file's own is: what was asked is undone.
    move |source| StoreError::io(path, source)
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

/// The check of a frame: it binds the body to this journal's salt, so a
/// frame left from before the journal started over never reads as current.
fn frame_check(salt: u64, body: &[u8]) -> [u8; 16] {
    let mut hasher = blake3::Hasher::new_derive_key(labels::JOURNAL_CHECK);
    hasher.update(&salt.to_le_bytes());
    hasher.update(&(body.len() as u64).to_le_bytes());
    hasher.update(body);
    truncated(hasher.finalize())
}

/// `len (4) || le64(salt) || body || check`, the body given in parts
/// (within [`MAX_BODY`], which the callers keep to).
fn encode_frame(salt: u64, body: &[&[u8]]) -> Vec<u8> {
    let body = body.concat();
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let mut frame = Vec::with_capacity(FRAME_OVERHEAD + body.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&salt.to_le_bytes());
    frame.extend_from_slice(&body);
    frame.extend_from_slice(&frame_check(salt, &body));
    frame
}

fn truncated(hash: blake3::Hash) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(hash.as_bytes().get(..16).unwrap_or(&[0; 16]));
    out
}

/// Reads of a journal that finds damage: a reader of a live journal may
/// see a frame being written, or a start over half done, as damage.
const READS_ON_DAMAGE: usize = 3;

/// [`read_once`], read again while it finds damage (up to
/// [`READS_ON_DAMAGE`] reads), so that what a live writer was writing
/// while it was read is not reported as lost.
pub(crate) fn read(path: &Path) -> Result<Contents, StoreError> {
    let mut contents = read_once(path)?;
    for _ in 1..READS_ON_DAMAGE {
        if contents.damaged.is_none() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
        contents = read_once(path)?;
    }
    Ok(contents)
}

/// The newest frame read so far.
struct Newest<'a> {
    event: &'a [u8],
    tag: [u8; TAG_LEN],
    /// Its whole body, to pass over a repeat of it.
    body: &'a [u8],
    /// Where it starts.
    offset: usize,
}

/// Reads the journal at `path` without writing to it. A missing file, or
/// one without a valid header, holds nothing; reading stops at the first
/// frame that is torn, stale (another salt) or damaged, since a frame is
/// acknowledged only once it and everything before it is on disk. A frame
/// repeated right after itself holds nothing new and is passed over. A
/// damaged frame that frames of this journal follow is reported
/// ([`Contents::damaged`]): those frames were durable, and are lost.
fn read_once(path: &Path) -> Result<Contents, StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Contents::empty()),
        Err(error) => return Err(io_error(path)(error)),
    };
    let Some((group, base, salt)) = parse_header(&bytes) else {
        return Ok(Contents::empty());
    };
    let mut records = Vec::new();
    let mut offsets = Vec::new();
    let mut newest: Option<Newest<'_>> = None;
    let mut at = HEADER_LEN as usize;
    let mut sealed = false;
    while let Some((body, next)) = parse_frame(&bytes, at, salt) {
        // An honest writer never writes the same body twice: each frame
        // carries the signature of the event before it.
        if newest.as_ref().is_some_and(|newest| newest.body == body) {
            at = next;
            continue;
        }
        let Some((signature, rest)) = body.split_first_chunk::<SIGNATURE_LEN>() else {
            break;
        };
        let Some((tag, event)) = rest.split_first_chunk::<TAG_LEN>() else {
            break;
        };
        // This frame signs the event of the one before.
        if let Some(previous) = newest.take() {
            let mut record = Vec::with_capacity(SIGNATURE_LEN + previous.event.len());
            record.extend_from_slice(signature);
            record.extend_from_slice(previous.event);
            records.push(record);
            offsets.push(previous.offset as u64);
        }
        if event.is_empty() {
            // A seal: the next frame is written over it.
            sealed = true;
            break;
        }
        newest = Some(Newest {
            event,
            tag: *tag,
            body,
            offset: at,
        });
        at = next;
    }
    let damaged = if sealed {
        None
    } else {
        frames_after(&bytes, at, salt).map(|events| Damaged {
            offset: at as u64,
            frames: events + 1,
        })
    };
    Ok(Contents {
        group,
        base,
        records,
        offsets,
        awaiting: newest.map(|newest| Awaiting {
            event: newest.event.to_vec(),
            tag: newest.tag,
            salt,
            offset: newest.offset as u64,
        }),
        damaged,
    })
}

/// If frames of the journal of `salt` lie beyond the frame at `at`, where
/// reading stopped, how many of them hold an event (a seal after it counts
/// as none, but shows the frame was durable too). Looked for wherever the
/// salt appears, since the damage may be in a length.
fn frames_after(bytes: &[u8], at: usize, salt: u64) -> Option<usize> {
    let salt_bytes = salt.to_le_bytes();
    let mut found_any = false;
    let mut events = 0;
    let mut start = at + 1;
    while let Some(found) = bytes
        .get(start + 4..)
        .and_then(|rest| rest.windows(8).position(|window| window == salt_bytes))
    {
        let candidate = start + found;
        match parse_frame(bytes, candidate, salt) {
            Some((body, next)) => {
                found_any = true;
                events += usize::from(body.len() > BODY_PREFIX);
                start = next;
            }
            None => start = candidate + 1,
        }
    }
    found_any.then_some(events)
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

/// The body of the frame at `at` and where the next one starts, if the
/// frame is whole, current and undamaged.
fn parse_frame(bytes: &[u8], at: usize, salt: u64) -> Option<(&[u8], usize)> {
    let frame = bytes.get(at..)?;
    let (len, rest) = frame.split_first_chunk::<4>()?;
    let len = u32::from_le_bytes(*len) as usize;
    if !(BODY_PREFIX..=MAX_BODY).contains(&len) {
        return None;
    }
    let (frame_salt, rest) = rest.split_first_chunk::<8>()?;
    if u64::from_le_bytes(*frame_salt) != salt {
        return None;
    }
    let body = rest.get(..len)?;
    let check = rest.get(len..len + 16)?;
    (check == frame_check(salt, body)).then_some((body, at + FRAME_OVERHEAD + len))
}

impl Journal {
    /// Opens (or makes) the journal at `path` for `group`, empty, starting
    /// over from `base` events, for events made with `keys`: whatever it
    /// held must already be in the database (or replayed into it) before
    /// this is called.
    pub(crate) fn start(
        path: &Path,
        group: GroupId,
        base: u64,
        keys: &LocalKeys,
    ) -> Result<Journal, StoreError> {
        let io = io_error(path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(&io)?;
        let made = file.metadata().map_err(&io)?.len() < PREALLOCATED;
        if made {
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
            tag_key: keys.journal_tag_key(),
            previous: None,
            written: None,
            unstarted: None,
        };
        if made {
            journal.start_over(base)?;
        } else {
            // A journal there already starts over with the first frame
            // written (`write`), not now: an open that writes no event
            // changes no byte of it, and what it holds is in the database
            // already (SPEC.md §9.6).
            journal.unstarted = Some(base);
        }
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
        self.unstarted = Some(base);
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
        self.previous = None;
        self.written = None;
        self.unstarted = None;
        Ok(())
    }

    /// Writes the bytes of `event`, made here, as the next frame, with the
    /// signature of the frame before's event, and starts it on its way to
    /// the disk without waiting: [`Journal::sync`] waits. Until then the
    /// event is not acknowledged, and another `write` replaces the frame.
    pub(crate) fn write(&mut self, event: &[u8]) -> Result<(), StoreError> {
        if let Some(base) = self.unstarted {
            self.start_over(base)?;
        }
        if event.is_empty() || BODY_PREFIX + event.len() > MAX_BODY {
            return Err(StoreError::Io {
                path: self.path.clone(),
                source: std::io::Error::new(ErrorKind::InvalidInput, "event too large"),
            });
        }
        let tag = frame_tag(&self.tag_key, self.salt, event);
        let mut frame = self.frame(tag.as_bytes(), event);
        // A longer frame written and not synced before is zeroed past this
        // one, so that no part of it reads as a frame.
        let end = self.end + frame.len() as u64;
        let before = self.written.take().unwrap_or(end);
        frame.resize(frame.len() + before.saturating_sub(end) as usize, 0);
        if let Err(error) = write_at(&self.file, &frame, self.end) {
            // Part of it may be written, over the seal.
            self.written = Some(end.max(before));
            self.abandon();
            return Err(io_error(&self.path)(error));
        }
        start_writeback(&self.file, self.end, frame.len());
        self.written = Some(end);
        Ok(())
    }

    /// Gives up the frame [`Journal::write`] wrote, whose event will not be
    /// acknowledged: the seal of the newest event goes back over it (best
    /// effort), so that readers of the live journal see the newest event
    /// signed again. A crash may still leave the frame on disk; it is then
    /// the next event of its author's feed, and so taken, only if no other
    /// event took its place (SPEC.md §9.6).
    pub(crate) fn abandon(&mut self) {
        if let Some(before) = self.written.take() {
            let mut seal = match self.previous {
                Some(_) => self.seal(),
                None => Vec::new(),
            };
            seal.resize(before.saturating_sub(self.end) as usize, 0);
            let _ = write_at(&self.file, &seal, self.end);
        }
    }

    /// Makes the frame [`Journal::write`] wrote durable: when this returns,
    /// a crash cannot lose its event (SPEC.md §9.6). `signature` is that
    /// event's, for the next frame to carry.
    pub(crate) fn sync(&mut self, signature: [u8; SIGNATURE_LEN]) -> Result<(), StoreError> {
        let io = io_error(&self.path);
        let end = self.written.ok_or_else(|| {
            io(std::io::Error::new(
                ErrorKind::InvalidInput,
                "no frame written",
            ))
        })?;
        self.file.sync_data().map_err(&io)?;
        self.written = None;
        self.end = end;
        self.frames += 1;
        self.previous = Some(signature);
        // A seal after it, not synced, so that a reader of the live journal
        // (an audit, a backup) finds the signature at once; after a power
        // cut it may be gone, and the key's holder signs again. The next
        // frame is written over it. Best effort: a seal that cannot be
        // written costs only readers without the key that one event.
        let seal = self.seal();
        if self.end + seal.len() as u64 <= PREALLOCATED {
            let _ = write_at(&self.file, &seal, self.end);
        }
        Ok(())
    }

    /// A frame: the newest event's signature, `tag`, `event`.
    fn frame(&self, tag: &[u8], event: &[u8]) -> Vec<u8> {
        let previous = self.previous.unwrap_or([0; SIGNATURE_LEN]);
        encode_frame(self.salt, &[&previous, tag, event])
    }

    /// A seal: the newest event's signature alone.
    fn seal(&self) -> Vec<u8> {
        self.frame(&[0; TAG_LEN], &[])
    }

    /// Whether it has grown past its preallocated pages, so that frames now
    /// cost a metadata commit too: time to checkpoint.
    pub(crate) fn is_full(&self) -> bool {
        self.frames >= CHECKPOINT_FRAMES || self.end >= PREALLOCATED
    }
}

/// Zeroes the seal at the end of the journal, as a power cut before it
/// reached the disk would leave it; returns whether there was one.
#[cfg(test)]
pub(crate) fn lose_seal(path: &Path) -> bool {
    let mut bytes = std::fs::read(path).unwrap();
    let (_, _, salt) = parse_header(&bytes).unwrap();
    let mut at = HEADER_LEN as usize;
    while let Some((body, next)) = parse_frame(&bytes, at, salt) {
        if body.len() == BODY_PREFIX {
            bytes[at..next].fill(0);
            std::fs::write(path, bytes).unwrap();
            return true;
        }
        at = next;
    }
    false
}

/// Replaces the event of the journal's newest frame with `event`, its
/// check made good and its tag left as it was: what a forger who can write
/// the journal, but has not the key, can do.
#[cfg(test)]
pub(crate) fn replace_newest_event(path: &Path, event: &[u8]) {
    let mut bytes = std::fs::read(path).unwrap();
    let (_, _, salt) = parse_header(&bytes).unwrap();
    let mut at = HEADER_LEN as usize;
    let mut newest = at;
    while let Some((_, next)) = parse_frame(&bytes, at, salt) {
        newest = at;
        at = next;
    }
    let old_len = u32::from_le_bytes(bytes[newest..newest + 4].try_into().unwrap()) as usize;
    let prefix = bytes[newest + 12..newest + 12 + BODY_PREFIX].to_vec();
    let frame = encode_frame(salt, &[&prefix, event]);
    bytes.splice(newest..newest + FRAME_OVERHEAD + old_len, frame);
    std::fs::write(path, bytes).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> GroupId {
        GroupId::from_bytes([7; 32])
    }

    fn keys(n: u8) -> LocalKeys {
        LocalKeys::from_secret_bytes(&[n; 32], &[n.wrapping_add(100); 32])
    }

    fn record(signature: [u8; 64], event: &[u8]) -> Vec<u8> {
        [&signature[..], event].concat()
    }

    #[test]
    fn each_frame_carries_the_signature_of_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let mut journal = Journal::start(&path, group(), 5, &keys(1)).unwrap();
        assert!(journal.sync([0; 64]).is_err(), "nothing written");
        journal.write(b"first event").unwrap();
        journal.sync([1; 64]).unwrap();
        // A frame written and not synced is replaced by the next.
        journal.write(b"replaced").unwrap();
        journal.write(&[9u8; 300]).unwrap();
        journal.sync([2; 64]).unwrap();
        journal.write(b"third").unwrap();
        journal.sync([3; 64]).unwrap();
        let read_back = read(&path).unwrap();
        assert_eq!(read_back.group, group());
        assert_eq!(read_back.base, 5);
        // The seal after the third frame carries its signature.
        let signed = vec![
            record([1; 64], b"first event"),
            record([2; 64], &[9u8; 300]),
            record([3; 64], b"third"),
        ];
        assert_eq!(read_back.records, signed);
        assert!(read_back.awaiting.is_none());

        // A frame not synced yet is what a power cut during the sync
        // leaves: its event awaits a signature, which its tag says who
        // may make.
        journal.write(b"fourth").unwrap();
        let read_back = read(&path).unwrap();
        assert_eq!(read_back.records, signed);
        let awaiting = read_back.awaiting.unwrap();
        assert_eq!(awaiting.event, b"fourth");
        assert!(awaiting.is_tagged_by(&keys(1)));
        assert!(!awaiting.is_tagged_by(&keys(2)), "another key's tag");

        journal.start_over(7).unwrap();
        let read_back = read(&path).unwrap();
        assert_eq!(read_back.base, 7);
        assert!(read_back.records.is_empty(), "old frames are stale");
        assert!(read_back.awaiting.is_none());
        // After starting over, the first frame carries no signature.
        journal.write(b"x").unwrap();
        let read_back = read(&path).unwrap();
        assert!(read_back.records.is_empty());
        assert_eq!(read_back.awaiting.unwrap().event, b"x");
        journal.sync([4; 64]).unwrap();
        assert_eq!(read(&path).unwrap().records, vec![record([4; 64], b"x")]);
    }

    /// The crate writes SPEC.md §9.6's vector frame byte for byte (a test
    /// in tests/spec_vectors.rs recomputes it from the prose).
    #[test]
    fn the_frame_is_the_spec_vector() {
        let spec = include_str!("../SPEC.md");
        let start = spec.find("<!-- journal-vector:begin -->").unwrap();
        let end = spec.find("<!-- journal-vector:end -->").unwrap();
        let block = &spec[start..end];
        let value = |name: &str| {
            let line = block
                .lines()
                .find_map(|line| line.strip_prefix(&format!("{name}: ")))
                .unwrap();
            hex::decode(line).unwrap()
        };
        let seed: [u8; 32] = value("seed").try_into().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let keys = LocalKeys::from_secret_bytes(&seed, &[2; 32]);
        let mut journal = Journal::start(&dir.path().join("j"), group(), 0, &keys).unwrap();
        assert_eq!(keys.journal_tag_key().as_slice(), value("K").as_slice());
        journal.salt = u64::from_be_bytes(value("salt").try_into().unwrap());
        journal.previous = Some(value("previous").try_into().unwrap());
        let event = value("event");
        let tag = frame_tag(&journal.tag_key, journal.salt, &event);
        assert_eq!(tag.as_bytes().as_slice(), value("tag").as_slice());
        let frame = journal.frame(tag.as_bytes(), &event);
        assert_eq!(frame, value("frame"));
        // And what reading it gives back.
        let mut bytes = vec![0u8; HEADER_LEN as usize];
        bytes.extend_from_slice(&frame);
        let (body, next) = parse_frame(&bytes, HEADER_LEN as usize, journal.salt).unwrap();
        assert_eq!(next, bytes.len());
        assert_eq!(&body[BODY_PREFIX..], event.as_slice());
    }

    #[test]
    fn a_tag_binds_the_event_and_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let mut journal = Journal::start(&path, group(), 0, &keys(1)).unwrap();
        journal.write(b"an event").unwrap();
        let awaiting = read(&path).unwrap().awaiting.unwrap();
        assert!(awaiting.is_tagged_by(&keys(1)));
        let other_event = Awaiting {
            event: b"an evenT".to_vec(),
            ..awaiting
        };
        assert!(!other_event.is_tagged_by(&keys(1)));
        let other_salt = Awaiting {
            event: b"an event".to_vec(),
            salt: other_event.salt ^ 1,
            ..other_event
        };
        assert!(!other_salt.is_tagged_by(&keys(1)));
    }

    #[test]
    fn reading_stops_at_a_torn_or_damaged_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let mut journal = Journal::start(&path, group(), 0, &keys(1)).unwrap();
        for n in 0..3u8 {
            journal.write(&[n; 40]).unwrap();
            journal.sync([n + 10; 64]).unwrap();
        }
        drop(journal);
        let bytes = std::fs::read(&path).unwrap();
        let frame = FRAME_OVERHEAD + BODY_PREFIX + 40;
        let all: Vec<_> = (0..3u8).map(|n| record([n + 10; 64], &[n; 40])).collect();
        assert_eq!(read(&path).unwrap().records, all);
        // Damage the second frame's event: the first alone is read, and
        // its signature, in the damaged frame, is not.
        let second = HEADER_LEN as usize + frame;
        let mut damaged = bytes.clone();
        damaged[second + 12 + BODY_PREFIX + 3] ^= 1;
        std::fs::write(&path, &damaged).unwrap();
        let read_back = read(&path).unwrap();
        assert!(read_back.records.is_empty());
        assert_eq!(read_back.awaiting.unwrap().event, vec![0u8; 40]);
        // The third frame and the seal follow it: it was durable, and it
        // and the third are lost.
        let lost = Some(Damaged {
            offset: second as u64,
            frames: 2,
        });
        assert_eq!(read_back.damaged, lost);
        // So too with its length damaged.
        damaged[second] ^= 0x40;
        std::fs::write(&path, &damaged).unwrap();
        assert_eq!(read(&path).unwrap().damaged, lost);
        // A torn third frame: the second is the newest, and nothing is
        // damaged.
        let torn = HEADER_LEN as usize + 3 * frame - 1;
        std::fs::write(&path, &bytes[..torn]).unwrap();
        let read_back = read(&path).unwrap();
        assert_eq!(read_back.records, all[..1]);
        assert_eq!(read_back.awaiting.unwrap().event, vec![1u8; 40]);
        assert_eq!(read_back.damaged, None);
        // The seal lost (a power cut before it reached the disk): the
        // third awaits its signature.
        std::fs::write(&path, &bytes[..HEADER_LEN as usize + 3 * frame]).unwrap();
        let read_back = read(&path).unwrap();
        assert_eq!(read_back.records, all[..2]);
        assert_eq!(read_back.awaiting.unwrap().event, vec![2u8; 40]);
        assert_eq!(read_back.damaged, None);
        // A frame repeated right after itself is read once.
        let mut repeated = bytes.clone();
        let copy = repeated[second..second + frame].to_vec();
        repeated.splice(second + frame..second + frame, copy);
        std::fs::write(&path, &repeated).unwrap();
        let read_back = read(&path).unwrap();
        assert_eq!(read_back.records, all);
        assert_eq!(read_back.damaged, None);
        // A damaged header: nothing is read.
        let mut damaged = bytes;
        damaged[10] ^= 1;
        std::fs::write(&path, &damaged).unwrap();
        let read_back = read(&path).unwrap();
        assert!(read_back.records.is_empty() && read_back.awaiting.is_none());
        // No file at all: nothing either.
        assert!(read(&dir.path().join("none")).unwrap().awaiting.is_none());
    }
}
