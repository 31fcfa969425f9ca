//! The redb file alone: creating, opening (writable, or read-only on a
//! private copy), transactions and their durability (SPEC.md §9.2, §9.4, §10).
//! What the tables hold is the store's concern.

use std::fs;
use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadTransaction, ReadableDatabase, WriteTransaction};

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
    db: Database,
    path: PathBuf,
    /// Set when the file could not be opened read-only as it is and a private
    /// copy was opened instead; the copy lives as long as the handle.
    private_copy: Option<tempfile::TempDir>,
    recovered: bool,
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
fn or_truncated(path: &Path, error: StoreError) -> StoreError {
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
            db,
            path: path.to_owned(),
            private_copy: None,
            recovered: false,
        })
    }

    /// Opens an existing file for reading and writing.
    pub(crate) fn open(path: &Path) -> Result<RedbFile, StoreError> {
        Self::open_as_is(path).map_err(|error| or_truncated(path, error))
    }

    fn open_as_is(path: &Path) -> Result<RedbFile, StoreError> {
        if !path.exists() {
            return Err(StoreError::NotFound {
                path: path.to_owned(),
            });
        }
        // The integrity check verifies every page's checksum before anything
        // is read: a plain read of a damaged page may panic inside redb.
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .set_concurrency_mode(CONCURRENCY)
            .set_check_integrity_on_open(true)
            .open(path)
            .map_err(|e| map_open_error(path, e))?;
        Ok(RedbFile {
            db,
            path: path.to_owned(),
            private_copy: None,
            recovered: false,
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
        Self::open_private_copy(path).map_err(|error| or_truncated(path, error))
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
                db,
                path: path.to_owned(),
                private_copy: Some(dir),
                recovered,
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

    pub(crate) fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(self.db.begin_read()?)
    }

    pub(crate) fn begin_write(&self) -> Result<WriteTransaction, Error> {
        if self.private_copy.is_some() {
            return Err(Error::ReadOnly);
        }
        let mut txn = self.db.begin_write().map_err(StoreError::from)?;
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
