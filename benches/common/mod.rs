//! Bench fixtures: chains built once and cached under `target/bench-cache/`,
//! so that `cargo bench` spends its time measuring, not building.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use meshlog::{LocalKeys, Mesh, MeshOptions, Role, RosterEntry};

pub fn keys(n: u32) -> LocalKeys {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    seed[31] = 0x5a;
    let mut dh = seed;
    dh[30] = 0xa5;
    LocalKeys::from_secret_bytes(&seed, &dh)
}

pub fn options() -> MeshOptions {
    MeshOptions::new()
        .insecure_seed([42; 32])
        .clock(|| 1_800_000_000)
}

pub fn cache_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-cache");
    std::fs::create_dir_all(&dir).expect("bench cache folder");
    dir
}

/// The founder (keys 0, admin) and members 1..size.
pub fn roster(size: u32) -> Vec<RosterEntry> {
    let mut roster: Vec<RosterEntry> = (0..size)
        .map(|n| {
            let keys = keys(n).public();
            RosterEntry {
                id: keys.member_id(),
                keys,
                role: if n == 0 { Role::Admin } else { Role::Member },
            }
        })
        .collect();
    roster.sort_by_key(|entry| entry.id);
    roster
}

/// A new mesh in `dir` whose founder is enabled and whose roster has `members`.
pub fn mesh_with_roster(dir: &tempfile::TempDir, members: u32) -> Mesh {
    let mut mesh = options()
        .create(dir.path().join("mesh.redb"), keys(0), "bench")
        .expect("create");
    mesh.set_enabled(true).expect("enable");
    mesh.rotate_to(roster(members), "setup").expect("roster");
    mesh
}

/// A chain of `len` events: mostly app events of 64 bytes, a rotation every
/// `rotate_every` events, rosters of `members`. Built once per shape and
/// format version, then copied from the cache.
pub fn chain(len: u64, rotate_every: u64, members: u32) -> PathBuf {
    let name = format!(
        "chain-v{}-s{}-{len}-{rotate_every}-{members}.redb",
        meshlog::FORMAT_VERSION,
        meshlog::STORE_FORMAT
    );
    let cached = cache_dir().join(&name);
    if Mesh::open_read_only(&cached).is_ok_and(|mesh| mesh.state().len() == len) {
        return cached;
    }
    let _ = std::fs::remove_file(&cached);
    let building = cache_dir().join(format!("{name}.building"));
    let _ = std::fs::remove_file(&building);
    let mut mesh = options()
        .create(&building, keys(0), "bench")
        .expect("create");
    mesh.set_enabled(true).expect("enable");
    let payload = [0x42u8; 64];
    while mesh.state().len() < len {
        let left = len - mesh.state().len();
        let since_rotation = mesh.state().len() % rotate_every;
        if since_rotation == 0 && left > 0 {
            mesh.rotate_to(roster(members), "bench").expect("rotate");
            continue;
        }
        let run = (rotate_every - since_rotation).min(left).min(1000);
        let items = (0..run).map(|_| ("bench", &payload[..]));
        mesh.append_apps(items).expect("append");
    }
    drop(mesh);
    std::fs::rename(&building, &cached).expect("cache");
    cached
}

/// A private copy of a cached chain.
pub fn copy_of(path: &Path, dir: &tempfile::TempDir) -> PathBuf {
    let copy = dir.path().join("copy.redb");
    std::fs::copy(path, &copy).expect("copy");
    copy
}

/// A bare redb file opened as meshlog opens its files (single-writer mode, a
/// 32 MiB page cache), for the floor of one durable commit.
pub struct BareCommits {
    db: redb::Database,
    seq: u64,
}

impl BareCommits {
    pub fn create(dir: &tempfile::TempDir) -> BareCommits {
        let db = redb::Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::SingleWriter)
            .set_cache_size(32 << 20)
            .create(dir.path().join("floor.redb"))
            .expect("redb");
        BareCommits { db, seq: 0 }
    }

    /// One durable two-phase commit of `value` under the next key, as
    /// meshlog commits an event.
    pub fn commit(&mut self, value: &[u8]) {
        const TABLE: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");
        self.seq += 1;
        let mut txn = self.db.begin_write().expect("write");
        txn.set_two_phase_commit(true);
        txn.open_table(TABLE)
            .expect("table")
            .insert(self.seq, value)
            .expect("insert");
        txn.commit().expect("commit");
    }
}

/// The durable append of the design meshlog came from: one row a
/// transaction in SQLite, WAL journal, `synchronous=FULL`.
pub struct SqliteFloor {
    connection: rusqlite::Connection,
    seq: i64,
}

impl SqliteFloor {
    pub fn create(dir: &tempfile::TempDir) -> SqliteFloor {
        let connection =
            rusqlite::Connection::open(dir.path().join("floor.sqlite")).expect("sqlite");
        let mode: String = connection
            .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
            .expect("journal mode");
        assert_eq!(mode, "wal");
        connection
            .execute_batch(
                "PRAGMA synchronous=FULL;
                 CREATE TABLE events (seq INTEGER PRIMARY KEY, record BLOB NOT NULL);",
            )
            .expect("schema");
        SqliteFloor { connection, seq: 0 }
    }

    /// One row in its own (autocommit) transaction, durable on return.
    pub fn insert(&mut self, value: &[u8]) {
        self.seq += 1;
        self.connection
            .execute(
                "INSERT INTO events (seq, record) VALUES (?1, ?2)",
                rusqlite::params![self.seq, value],
            )
            .expect("insert");
    }
}
