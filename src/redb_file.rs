//! The redb file alone: creating, opening (writable, or read-only on a
//! private copy), transactions and their durability (SPEC.md §9.2, §9.4, §10).
//! What the tables hold is the store's concern.

use std::collections::VecDeque;
use std::fs;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use redb::{
    BackendError, Database, Durability, ReadTransaction, ReadableDatabase, StorageBackend,
    WriteTransaction,
};

use crate::error::{Error, StoreError};

/// Every handle opens the file in redb's single-writer mode: one process
/// writes, and any number of others may open it read-only at the same time
/// (an auditor's `meshlog verify`, a `meshlog backup`) and see consistent
/// snapshots. A second writer is refused as locked.
const CONCURRENCY: redb::ConcurrencyMode = redb::ConcurrencyMode::SingleWriter;

/// redb's page cache. Its default (1 GiB) would let a long chain's pages,
/// read once while verifying, fill memory; meshlog reads the chain once, in
/// order, and keeps its state in memory.
const CACHE_BYTES: usize = 32 << 20;

/// An open redb file.
pub(crate) struct RedbFile {
    /// `None` only while the handle is dropped.
    db: Option<Handle>,
    path: PathBuf,
    /// Set when the file could not be opened read-only as it is and a private
    /// copy was opened instead; the copy lives as long as the handle.
    private_copy: Option<tempfile::TempDir>,
    recovered: bool,
    /// The file of a writable open, whose writes wait until the first write
    /// transaction; `None` for a file created here or read-only.
    deferred: Option<Arc<DeferredFile>>,
}

/// How redb holds the file.
enum Handle {
    /// Open for writing (or a private copy, opened so to be recovered).
    Writable(Database),
    /// Open in place, read-only: redb reads it under its own locks, beside
    /// a live writer, and never writes to it.
    ReadOnly(redb::ReadOnlyDatabase),
}

/// The file of a writable open, as redb sees it: its writes wait in memory
/// until [`DeferredFile::release`], and reads see them.
///
/// redb writes as it opens a file for writing (the open's integrity check
/// commits the allocator state it rebuilt; the header says the file is
/// open) and as it closes it. An open that writes no event, such as a
/// refused change, would then rewrite bytes of the file and its time, and
/// "nothing was written" would be untrue (SPEC.md §9.2). So those writes are
/// held, in order with their syncs, and reach the file only once an event
/// is written, replayed exactly as redb made them: a file that crashes
/// during the replay is one that crashed during redb's own open. A handle
/// dropped before that leaves every byte as it was. The locks are taken at
/// once: a second writer is still refused at its open.
#[derive(Debug)]
struct DeferredFile {
    file: redb::backends::FileBackend,
    /// `None` once released: everything goes to the file.
    held: Mutex<Option<Held>>,
}

/// Writes redb made and the file has not seen, in order.
#[derive(Debug)]
struct Held {
    operations: VecDeque<Operation>,
    /// The length the file has as redb sees it.
    len: u64,
}

#[derive(Debug)]
enum Operation {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
    Sync,
}

impl DeferredFile {
    fn held(&self) -> std::sync::MutexGuard<'_, Option<Held>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the held writes, in order, and from then on writes through.
    /// What fails stays held, from the operation that failed on: replaying
    /// a prefix twice gives what replaying it once does.
    fn release(&self) -> std::io::Result<()> {
        let mut held = self.held();
        if let Some(pending) = held.as_mut() {
            while let Some(operation) = pending.operations.front() {
                match operation {
                    Operation::Write { offset, bytes } => self.file.write(*offset, bytes)?,
                    Operation::SetLen(len) => self.file.set_len(*len)?,
                    Operation::Sync => self.file.sync_data()?,
                }
                pending.operations.pop_front();
            }
        }
        *held = None;
        Ok(())
    }
}

/// redb's handle on a [`DeferredFile`], which the [`RedbFile`] shares.
#[derive(Debug)]
struct DeferredBackend(Arc<DeferredFile>);

impl std::ops::Deref for DeferredBackend {
    type Target = DeferredFile;

    fn deref(&self) -> &DeferredFile {
        &self.0
    }
}

impl StorageBackend for DeferredBackend {
    fn len(&self) -> std::io::Result<u64> {
        match self.held().as_ref() {
            Some(pending) => Ok(pending.len),
            None => self.file.len(),
        }
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        let held = self.held();
        let Some(pending) = held.as_ref() else {
            return self.file.read(offset, out);
        };
        let end = offset.saturating_add(out.len() as u64);
        if end > pending.len {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        // The file's bytes (zeros past its end), then every held write over
        // them in order; a shortening zeroes what it cut, as growing again
        // reads zeros.
        out.fill(0);
        let on_file = self.file.len()?.clamp(offset, end) - offset;
        if let Some(part) = out.get_mut(..on_file as usize) {
            self.file.read(offset, part)?;
        }
        for operation in &pending.operations {
            match operation {
                Operation::Write { offset: at, bytes } => {
                    let from = (*at).max(offset);
                    let to = at.saturating_add(bytes.len() as u64).min(end);
                    if from < to
                        && let (Some(dst), Some(src)) = (
                            out.get_mut((from - offset) as usize..(to - offset) as usize),
                            bytes.get((from - at) as usize..(to - at) as usize),
                        )
                    {
                        dst.copy_from_slice(src);
                    }
                }
                Operation::SetLen(len) if *len < end => {
                    let from = (*len).max(offset) - offset;
                    if let Some(cut) = out.get_mut(from as usize..) {
                        cut.fill(0);
                    }
                }
                Operation::SetLen(_) | Operation::Sync => {}
            }
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        match self.held().as_mut() {
            Some(pending) => {
                pending.operations.push_back(Operation::SetLen(len));
                pending.len = len;
                Ok(())
            }
            None => self.file.set_len(len),
        }
    }

    fn sync_data(&self) -> std::io::Result<()> {
        match self.held().as_mut() {
            Some(pending) => {
                pending.operations.push_back(Operation::Sync);
                Ok(())
            }
            None => self.file.sync_data(),
        }
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        match self.held().as_mut() {
            Some(pending) => {
                pending.operations.push_back(Operation::Write {
                    offset,
                    bytes: data.to_vec(),
                });
                pending.len = pending.len.max(offset.saturating_add(data.len() as u64));
                Ok(())
            }
            None => self.file.write(offset, data),
        }
    }

    fn close(&self) -> std::io::Result<()> {
        self.file.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}

fn map_open_error(path: &Path, error: redb::DatabaseError) -> StoreError {
    match error {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked {
            path: path.to_owned(),
        },
        redb::DatabaseError::Storage(redb::StorageError::Io(source)) => match source.kind() {
            std::io::ErrorKind::NotFound => StoreError::NotFound {
                path: path.to_owned(),
            },
            std::io::ErrorKind::InvalidData => StoreError::NotMeshlog {
                path: path.to_owned(),
                detail: "not a redb database".into(),
            },
            _ => StoreError::Io {
                path: path.to_owned(),
                source,
            },
        },
        other => StoreError::from(redb::Error::from(other)),
    }
}

/// Copies of a file an audit takes before it gives up on one that opens
/// as damaged (see [`RedbFile::open_read_only`]).
const COPIES: usize = 3;

/// Whether `error`, from opening a copy, says the copy is damaged (rather
/// than not a database at all, say).
fn is_damage(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Corrupt { .. } | StoreError::Redb(_) | StoreError::Io { .. }
    )
}

/// `error`, met while opening the file at `path`, or
/// [`StoreError::Truncated`] if it says the file ended before its layout
/// did: redb says so in two ways (a short read, or a length check), one of
/// which depends on how the file is opened, and a file cut short is one
/// error either way.
pub(crate) fn or_truncated(path: &Path, error: StoreError) -> StoreError {
    let short_read = |io: &std::io::Error| io.kind() == std::io::ErrorKind::UnexpectedEof;
    let truncated = match &error {
        StoreError::Io { source, .. } => short_read(source),
        StoreError::Redb(redb) => matches!(redb.as_ref(), redb::Error::Io(io) if short_read(io)),
        // redb's check of the file's length against its layout.
        StoreError::Corrupt { detail } => detail.starts_with("File truncated"),
        _ => false,
    };
    match fs::metadata(path) {
        Ok(metadata) if truncated => StoreError::Truncated {
            path: path.to_owned(),
            len: metadata.len(),
        },
        _ => error,
    }
}

/// Runs `access` to a redb file, turning a panic inside redb (a page
/// damaged outside redb, read without the integrity check) into
/// [`StoreError::Corrupt`]. The panic's message is not printed: it is the
/// error.
pub(crate) fn guarded<T, E: From<StoreError>>(
    access: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    quiet_panics();
    GUARDED.with(|guarded| guarded.set(guarded.get() + 1));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(access));
    GUARDED.with(|guarded| guarded.set(guarded.get() - 1));
    result.unwrap_or_else(|_| {
        Err(StoreError::Corrupt {
            detail: "a page damaged outside redb".into(),
        }
        .into())
    })
}

thread_local! {
    /// How deep this thread is in [`guarded`] accesses.
    static GUARDED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Installs, once, a panic hook that prints nothing for a panic inside a
/// [`guarded`] access and hands every other to the hook it replaces.
fn quiet_panics() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.with(std::cell::Cell::get) == 0 {
                previous(info);
            }
        }));
    });
}

/// What a handle being dropped answers.
fn closed() -> StoreError {
    StoreError::Corrupt {
        detail: "the file is being closed".into(),
    }
}

impl Drop for RedbFile {
    /// redb commits its allocator's state as it closes a file; on a file
    /// damaged outside redb, opened without the integrity check, that may
    /// panic, and a drop has no one to report to: the panic is caught and
    /// the close left undone (a writable open's writes wait in memory until
    /// its first write, so a file nothing was written to is left as it was).
    fn drop(&mut self) {
        if let Some(db) = self.db.take() {
            let _ = guarded(|| {
                drop(db);
                Ok::<(), StoreError>(())
            });
        }
    }
}

impl RedbFile {
    /// Creates a new file; refuses to touch an existing one.
    pub(crate) fn create(path: &Path) -> Result<RedbFile, StoreError> {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::AlreadyExists => StoreError::Exists {
                    path: path.to_owned(),
                },
                _ => StoreError::Io {
                    path: path.to_owned(),
                    source,
                },
            })?;
        // The file is this process's from here on: a failure removes it.
        let made = redb::backends::FileBackend::new(file).and_then(|backend| {
            Database::builder()
                .set_cache_size(CACHE_BYTES)
                .set_concurrency_mode(CONCURRENCY)
                .create_with_backend(backend)
        });
        let db = match made {
            Ok(db) => db,
            Err(error) => {
                let _ = fs::remove_file(path);
                return Err(map_open_error(path, error));
            }
        };
        Ok(RedbFile {
            db: Some(Handle::Writable(db)),
            path: path.to_owned(),
            private_copy: None,
            recovered: false,
            deferred: None,
        })
    }

    /// Opens an existing file for reading and writing. Nothing reaches the
    /// file before the first write transaction ([`DeferredFile`]).
    ///
    /// With `check_integrity`, redb verifies the checksum of every page
    /// first, which reads the whole file. Without it (the member's own
    /// copy, whose every row it reads is checked against its tag, SPEC.md
    /// §9.7), a page damaged outside redb may make a read panic inside
    /// redb: every access to such a file goes through [`guarded`].
    pub(crate) fn open(path: &Path, check_integrity: bool) -> Result<RedbFile, StoreError> {
        guarded(|| Self::open_as_is(path, check_integrity))
            .map_err(|error| or_truncated(path, error))
    }

    fn open_as_is(path: &Path, check_integrity: bool) -> Result<RedbFile, StoreError> {
        if !path.exists() {
            return Err(StoreError::NotFound {
                path: path.to_owned(),
            });
        }
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|source| StoreError::Io {
                path: path.to_owned(),
                source,
            })?;
        let file = redb::backends::FileBackend::new(file).map_err(|e| map_open_error(path, e))?;
        let len = file.len().map_err(|source| StoreError::Io {
            path: path.to_owned(),
            source,
        })?;
        if len == 0 {
            // redb would make a database of an empty file.
            return Err(StoreError::NotMeshlog {
                path: path.to_owned(),
                detail: "an empty file".into(),
            });
        }
        let deferred = Arc::new(DeferredFile {
            file,
            held: Mutex::new(Some(Held {
                operations: VecDeque::new(),
                len,
            })),
        });
        // The integrity check verifies every page's checksum before anything
        // is read: a plain read of a damaged page may panic inside redb.
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .set_concurrency_mode(CONCURRENCY)
            .set_check_integrity_on_open(check_integrity)
            .create_with_backend(DeferredBackend(Arc::clone(&deferred)))
            .map_err(|e| map_open_error(path, e))?;
        Ok(RedbFile {
            db: Some(Handle::Writable(db)),
            path: path.to_owned(),
            private_copy: None,
            recovered: false,
            deferred: Some(deferred),
        })
    }

    /// Opens a file without ever writing to it: the file is copied to a
    /// private temporary folder and the copy is opened, with redb's integrity
    /// check, which verifies the checksum of every page before anything is
    /// trusted (a plain read of a damaged page may panic inside redb). While
    /// the copy is taken, a shared read-only handle pins a consistent snapshot,
    /// so that a live writer cannot reuse its pages. A file that was not closed
    /// cleanly cannot be opened so; its copy is recovered instead, and
    /// [`RedbFile::recovered`] says so.
    pub(crate) fn open_read_only(path: &Path) -> Result<RedbFile, StoreError> {
        Self::open_in_place(path)
            .transpose()
            .unwrap_or_else(|| Self::open_private_copy(path))
            .map_err(|error| or_truncated(path, error))
    }

    /// Opens a file that was closed cleanly (or whose writer is live) in
    /// place, read-only, without the integrity check: nothing is copied,
    /// and every access goes through [`guarded`]. `None`: redb would have
    /// to recover the file first, which only a copy allows.
    fn open_in_place(path: &Path) -> Result<Option<RedbFile>, StoreError> {
        if !path.exists() {
            return Err(StoreError::NotFound {
                path: path.to_owned(),
            });
        }
        let opened = guarded(|| {
            Ok::<_, StoreError>(
                redb::Builder::new()
                    .set_cache_size(CACHE_BYTES)
                    .set_concurrency_mode(CONCURRENCY)
                    .open_read_only(path),
            )
        })?;
        match opened {
            Ok(db) => Ok(Some(RedbFile {
                db: Some(Handle::ReadOnly(db)),
                path: path.to_owned(),
                private_copy: None,
                recovered: false,
                deferred: None,
            })),
            Err(redb::DatabaseError::RepairAborted) => Ok(None),
            Err(error) => Err(map_open_error(path, error)),
        }
    }

    /// Copies the file and opens the copy, copying it again if the copy
    /// opens as damaged, up to [`COPIES`] copies: a live writer's header
    /// write, which redb's own readers read under a lock and a plain copy
    /// cannot, may be copied half done (SPEC.md §9.4). A file damaged on
    /// disk is damaged in every copy.
    fn open_private_copy(path: &Path) -> Result<RedbFile, StoreError> {
        let mut copies = 1;
        loop {
            match Self::copy_once(path)? {
                Ok(file) => return Ok(file),
                Err(error) if copies < COPIES && is_damage(&error) => {
                    copies += 1;
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Pins a snapshot, copies the file, and opens the copy: the outer
    /// error is the file's, the inner one the copy's.
    fn copy_once(path: &Path) -> Result<Result<RedbFile, StoreError>, StoreError> {
        let io = |source| StoreError::Io {
            path: path.to_owned(),
            source,
        };
        let pin = match redb::Builder::new()
            .set_concurrency_mode(CONCURRENCY)
            .open_read_only(path)
        {
            Ok(db) => {
                let snapshot = db.begin_read()?;
                Some((db, snapshot))
            }
            Err(redb::DatabaseError::RepairAborted) => None,
            Err(e) => return Err(map_open_error(path, e)),
        };
        let recovered = pin.is_none();
        let dir = tempfile::tempdir().map_err(io)?;
        let copy = dir.path().join("copy.redb");
        fs::copy(path, &copy).map_err(io)?;
        drop(pin);
        let opened = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .set_check_integrity_on_open(true)
            .open(&copy);
        Ok(opened
            .map(|db| RedbFile {
                db: Some(Handle::Writable(db)),
                path: path.to_owned(),
                private_copy: Some(dir),
                recovered,
                deferred: None,
            })
            .map_err(|e| map_open_error(path, e)))
    }

    /// Whether the file had not been closed cleanly, so that its private copy
    /// had to be recovered before it could be read.
    pub(crate) fn recovered(&self) -> bool {
        self.recovered
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn is_private_copy(&self) -> bool {
        self.private_copy.is_some()
    }

    /// Whether no write can go through this handle.
    pub(crate) fn is_read_only(&self) -> bool {
        self.private_copy.is_some() || matches!(self.db, Some(Handle::ReadOnly(_)))
    }

    pub(crate) fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(match &self.db {
            Some(Handle::Writable(db)) => db.begin_read()?,
            Some(Handle::ReadOnly(db)) => db.begin_read()?,
            None => return Err(closed()),
        })
    }

    pub(crate) fn begin_write(&self) -> Result<WriteTransaction, Error> {
        let Some(Handle::Writable(db)) = &self.db else {
            return Err(Error::ReadOnly);
        };
        if self.private_copy.is_some() {
            return Err(Error::ReadOnly);
        }
        if let Some(deferred) = &self.deferred {
            deferred
                .release()
                .map_err(|source| StoreError::io(&self.path, source))?;
        }
        let mut txn = db.begin_write().map_err(StoreError::from)?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| StoreError::Redb(redb::Error::from(e).into()))?;
        txn.set_two_phase_commit(true);
        Ok(txn)
    }

    /// Closes the file and deletes it. Only for a file this process has
    /// just created and written nothing acknowledged to.
    pub(crate) fn discard(self) {
        let path = self.path.clone();
        drop(self);
        // Best effort: a file that cannot be removed is reported by the
        // next create, as existing.
        let _ = fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: redb::TableDefinition<'static, u64, &[u8]> = redb::TableDefinition::new("t");

    fn put(file: &RedbFile, key: u64, value: &[u8]) {
        let txn = file.begin_write().unwrap();
        txn.open_table(TABLE).unwrap().insert(key, value).unwrap();
        txn.commit().unwrap();
    }

    fn get(file: &RedbFile, key: u64) -> Option<Vec<u8>> {
        let txn = file.begin_read().unwrap();
        let table = txn.open_table(TABLE).unwrap();
        table.get(key).unwrap().map(|value| value.value().to_vec())
    }

    fn bytes_and_time(path: &Path) -> (Vec<u8>, std::time::SystemTime) {
        let modified = fs::metadata(path).unwrap().modified().unwrap();
        (fs::read(path).unwrap(), modified)
    }

    /// SPEC.md §9.2: a writable open that writes nothing leaves every byte
    /// and the time of the file; the first write transaction replays what
    /// redb held, and the file then opens and reads as written.
    #[test]
    fn a_writable_open_writes_nothing_until_the_first_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.redb");
        put(&RedbFile::create(&path).unwrap(), 1, b"one");
        let before = bytes_and_time(&path);
        for _ in 0..2 {
            let file = RedbFile::open(&path, true).unwrap();
            assert_eq!(get(&file, 1).as_deref(), Some(&b"one"[..]));
            drop(file);
            assert!(bytes_and_time(&path) == before, "an open wrote");
        }
        // A second writer is refused while one holds the file, written or not.
        let file = RedbFile::open(&path, true).unwrap();
        assert!(matches!(
            RedbFile::open(&path, true),
            Err(StoreError::Locked { .. })
        ));
        put(&file, 2, b"two");
        assert!(bytes_and_time(&path).0 != before.0);
        drop(file);
        let file = RedbFile::open(&path, true).unwrap();
        assert_eq!(get(&file, 2).as_deref(), Some(&b"two"[..]));
        drop(file);
        // Closed cleanly: a plain read-only open takes it as it is.
        let read_only = RedbFile::open_read_only(&path).unwrap();
        assert!(!read_only.recovered());
        assert_eq!(get(&read_only, 2).as_deref(), Some(&b"two"[..]));
    }

    /// Reads see the held writes over the file's bytes, a shortening
    /// included, exactly as the file would after the replay.
    #[test]
    fn reads_see_held_writes_as_the_file_will() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raw");
        fs::write(&path, [1u8; 16]).unwrap();
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let deferred = DeferredBackend(Arc::new(DeferredFile {
            file: redb::backends::FileBackend::new(file).unwrap(),
            held: Mutex::new(Some(Held {
                operations: VecDeque::new(),
                len: 16,
            })),
        }));
        deferred.write(4, &[2; 4]).unwrap();
        deferred.set_len(6).unwrap();
        deferred.set_len(12).unwrap();
        deferred.write(10, &[3; 4]).unwrap();
        deferred.sync_data().unwrap();
        let expected = [1, 1, 1, 1, 2, 2, 0, 0, 0, 0, 3, 3, 3, 3];
        assert_eq!(deferred.len().unwrap(), 14);
        let mut seen = [9u8; 14];
        deferred.read(0, &mut seen).unwrap();
        assert_eq!(seen, expected);
        let mut part = [9u8; 5];
        deferred.read(3, &mut part).unwrap();
        assert_eq!(part, expected[3..8]);
        assert!(deferred.read(10, &mut [0; 5]).is_err(), "past the end");
        assert_eq!(fs::read(&path).unwrap(), [1u8; 16], "held, not written");
        deferred.release().unwrap();
        assert_eq!(fs::read(&path).unwrap(), expected);
        deferred.write(0, &[7]).unwrap();
        assert_eq!(fs::read(&path).unwrap()[0], 7, "written through");
    }
}
