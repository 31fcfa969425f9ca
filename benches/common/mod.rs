//! Bench fixtures and floors.
//!
//! Large meshes are built once per shape and format and cached under
//! `target/bench-cache/` (a cached file is used only if it opens, verified,
//! with the expected number of events), so that `cargo bench` spends its
//! time measuring. They are built in a scratch folder in `/dev/shm` where
//! there is one: building makes each event durable on its own, and a
//! sync to RAM costs little, so a 100k-event fixture takes seconds, not minutes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use meshlog::{Batch, Change, LocalKeys, Mesh, MeshOptions, Role};
use rayon::prelude::*;

/// Keys of bench member `n`, from fixed bytes.
pub fn keys(n: u32) -> LocalKeys {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    seed[31] = 0x5a;
    let mut dh = seed;
    dh[30] = 0xa5;
    LocalKeys::from_secret_bytes(&seed, &dh)
}

/// A fixed generator and clock, so that fixtures are the same every run.
pub fn options() -> MeshOptions {
    options_for(0)
}

/// [`options`] for the copy of bench member `n`: its own generator, so
/// that two copies never draw the same secrets.
pub fn options_for(n: u32) -> MeshOptions {
    let mut seed = [42u8; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    MeshOptions::new()
        .insecure_seed(seed)
        .clock(|| 1_800_000_000)
}

pub fn cache_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-cache");
    std::fs::create_dir_all(&dir).expect("bench cache folder");
    dir
}

/// A folder to build fixtures in: in RAM if the machine has `/dev/shm`.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().expect("temporary folder")
}

/// The additions that make bench members `1..members` members, and those
/// in `admins` admins.
pub fn additions(members: u32, admins: &[u32]) -> Vec<Change> {
    (1..members)
        .into_par_iter()
        .map(|n| Change::Add {
            package: keys(n).package(),
            role: if admins.contains(&n) {
                Role::Admin
            } else {
                Role::Member
            },
        })
        .collect()
}

/// A new mesh at `path` whose founder (bench member 0, owner) is enabled
/// and whose roster holds bench members `0..members`, `admins` among them
/// admins: one rotation adds them all.
pub fn mesh_with_members(path: &Path, members: u32, admins: &[u32]) -> Mesh {
    let mut mesh = options().create(path, keys(0), "bench").expect("create");
    mesh.set_enabled(true).expect("enable");
    if members > 1 {
        mesh.rotate(additions(members, admins), "setup")
            .expect("roster");
    }
    mesh
}

/// `path` copied into the cache as `name`, replacing what was there.
fn cache(path: &Path, name: &str) -> PathBuf {
    let cached = cache_dir().join(name);
    let building = cache_dir().join(format!("{name}.building"));
    std::fs::copy(path, &building).expect("copy into the cache");
    std::fs::rename(&building, &cached).expect("cache");
    cached
}

/// Whether `path` opens, verified, with `len` events.
fn holds(path: &Path, len: usize) -> bool {
    Mesh::open_read_only(path).is_ok_and(|mesh| mesh.len() == len)
}

fn fixture_name(shape: &str) -> String {
    format!(
        "{shape}-v{}-s{}.redb",
        meshlog::FORMAT_VERSION,
        meshlog::STORE_FORMAT
    )
}

/// A mesh of `len` events written by `authors` members (bench members
/// `0..authors`; the founder owner, the rest members), and the same mesh
/// before any of their feed events.
pub struct Feeds {
    /// The founder's genesis, enable and the rotation adding the others.
    pub base: PathBuf,
    /// Everything: each member enables itself and writes app events of 64
    /// bytes, about as many as the others; the founder also refreshes the
    /// epoch every 1,000 of its own events.
    pub full: PathBuf,
    pub len: usize,
}

/// Events of the base: genesis, enable, the rotation adding the members.
const BASE_EVENTS: usize = 3;

/// The [`Feeds`] fixture of `len` events by `authors` authors.
pub fn feeds(len: usize, authors: u32) -> Feeds {
    let full_name = fixture_name(&format!("feeds-{len}-{authors}"));
    let base_name = fixture_name(&format!("feeds-{len}-{authors}-base"));
    let (full, base) = (cache_dir().join(&full_name), cache_dir().join(&base_name));
    if holds(&base, BASE_EVENTS) && holds(&full, len) {
        return Feeds { base, full, len };
    }
    let started = std::time::Instant::now();
    let scratch = scratch_dir();
    let founder_path = scratch.path().join("founder.redb");
    let mut founder = mesh_with_members(&founder_path, authors, &[]);
    let base_path = scratch.path().join("base.redb");
    founder.backup(&base_path).expect("backup");
    let everything = founder.export_all();
    let per_author = (len - BASE_EVENTS) / authors as usize;
    let payload = [0x42u8; 64];
    // Each member writes its feed in its own copy, which the founder then
    // takes in one batch.
    for n in 1..authors {
        let path = scratch.path().join(format!("member-{n}.redb"));
        let mut member = options().join(&path, keys(n), &everything).expect("join");
        member.set_enabled(true).expect("enable");
        for _ in 1..per_author {
            member.append_app("bench", &payload).expect("append");
        }
        founder
            .ingest(&member.export(&founder.frontier()))
            .expect("ingest");
        drop(member);
        std::fs::remove_file(&path).expect("remove member copy");
    }
    let mut own = 0u64;
    while founder.len() < len {
        own += 1;
        if own.is_multiple_of(1000) {
            founder.refresh("bench").expect("refresh");
        } else {
            founder.append_app("bench", &payload).expect("append");
        }
    }
    drop(founder);
    let base = cache(&base_path, &base_name);
    let full = cache(&founder_path, &full_name);
    eprintln!(
        "built the {len}-event fixture of {authors} authors in {:?}",
        started.elapsed()
    );
    Feeds { base, full, len }
}

/// A mesh of `len` events, its roster bench members `0..members`: the
/// founder's app events of 64 bytes, and `rotations` rotations spread
/// evenly (the first adds the members, the others refresh the epoch).
pub fn epochs(len: usize, members: u32, rotations: usize) -> PathBuf {
    let name = fixture_name(&format!("epochs-{len}-{members}-{rotations}"));
    let cached = cache_dir().join(&name);
    if holds(&cached, len) {
        return cached;
    }
    let started = std::time::Instant::now();
    let scratch = scratch_dir();
    let path = scratch.path().join("epochs.redb");
    let mut mesh = options().create(&path, keys(0), "bench").expect("create");
    mesh.set_enabled(true).expect("enable");
    mesh.rotate(additions(members, &[]), "setup")
        .expect("roster");
    let every = len / rotations;
    let payload = [0x42u8; 64];
    while mesh.len() < len {
        if mesh.len().is_multiple_of(every) {
            mesh.refresh("bench").expect("refresh");
        } else {
            mesh.append_app("bench", &payload).expect("append");
        }
    }
    drop(mesh);
    let cached = cache(&path, &name);
    eprintln!(
        "built the {len}-event fixture with {rotations} rotations of {members} in {:?}",
        started.elapsed()
    );
    cached
}

/// A mesh of bench members `0..members` (the founder owner, the rest
/// members) whose founder then refreshed the epoch `epochs` times, one
/// after another: a long linear history of epochs (issue 24).
pub fn deep_history(epochs: usize, members: u32) -> PathBuf {
    let name = fixture_name(&format!("deep-{epochs}-{members}"));
    let cached = cache_dir().join(&name);
    // The genesis, the enable and the rotation adding the members.
    let len = epochs + 3;
    if holds(&cached, len) {
        return cached;
    }
    let started = std::time::Instant::now();
    let scratch = scratch_dir();
    let path = scratch.path().join("deep.redb");
    let mut mesh = mesh_with_members(&path, members, &[]);
    for _ in 0..epochs {
        mesh.refresh("bench").expect("refresh");
    }
    assert_eq!(mesh.len(), len);
    drop(mesh);
    let cached = cache(&path, &name);
    eprintln!(
        "built the {epochs}-epoch fixture of {members} members in {:?}",
        started.elapsed()
    );
    cached
}

/// A private copy of a file, named `name` in `dir`.
pub fn copy_of(path: &Path, dir: &tempfile::TempDir, name: &str) -> PathBuf {
    let copy = dir.path().join(name);
    std::fs::copy(path, &copy).expect("copy");
    copy
}

/// What a peer at `base` lacks of `full`, as one batch.
pub fn batch_between(base: &Path, full: &Path) -> Batch {
    let base = Mesh::open_read_only(base).expect("base verifies");
    let full = Mesh::open_read_only(full).expect("full verifies");
    full.export(&base.frontier())
}

/// The floor of verifying events: their signatures checked as meshlog
/// checks them (ZIP-215, batches of 512 spread over every core), each
/// batch item built in the timed part as meshlog builds it (the challenge
/// hash is computed then). The messages (label and event bytes) are
/// prepared beforehand.
pub struct SignatureFloor {
    checks: Vec<(ed25519_zebra::VerificationKeyBytes, [u8; 64], Vec<u8>)>,
}

impl SignatureFloor {
    /// The checks of `events`, signed by bench members `0..authors`.
    pub fn new(
        events: impl Iterator<Item = impl std::ops::Deref<Target = meshlog::SignedEvent>>,
        authors: u32,
    ) -> SignatureFloor {
        let prefix: Vec<u8> = meshlog::DOMAIN_LABELS
            .iter()
            .find(|(name, _)| *name == "EVENT_SIGNATURE")
            .map(|(_, label)| [label.as_bytes(), &[0]].concat())
            .expect("the event signature label");
        let keys: std::collections::HashMap<meshlog::MemberId, _> = (0..authors)
            .map(|n| {
                let public = keys(n).public();
                (
                    public.member_id(),
                    ed25519_zebra::VerificationKeyBytes::from(*public.signing.as_bytes()),
                )
            })
            .collect();
        let checks = events
            .map(|event| {
                let record = event.to_record();
                let (signature, bytes) = record.split_at(meshlog::SIGNATURE_LEN);
                let key = keys[&event.event().author];
                let signature: [u8; 64] = signature.try_into().expect("64 bytes");
                (key, signature, [&prefix[..], bytes].concat())
            })
            .collect();
        SignatureFloor { checks }
    }

    pub fn len(&self) -> usize {
        self.checks.len()
    }

    /// Verifies every signature; panics if one fails.
    pub fn verify(&self) {
        let ok = self.checks.par_chunks(512).all(|chunk| {
            let mut verifier = ed25519_zebra::batch::Verifier::new();
            for (key, signature, message) in chunk {
                verifier.queue((
                    *key,
                    ed25519_zebra::Signature::from_bytes(signature),
                    &message[..],
                ));
            }
            verifier.verify(rand::rng()).is_ok()
        });
        assert!(ok, "a signature of the fixture does not verify");
    }
}

/// The floor of wrapping a secret to `recipients`: one ephemeral key, then
/// one X25519 agreement a recipient, spread over every core as meshlog
/// spreads them. [`WrapFloor::agree`] computes them as meshlog does (on the
/// Edwards form, src/agreement.rs); [`WrapFloor::agree_ladder`] with
/// x25519-dalek's Montgomery ladder, the textbook route, for reference.
pub struct WrapFloor {
    recipients: Vec<[u8; 32]>,
}

impl WrapFloor {
    /// The DH keys of bench members `members`.
    pub fn new(members: impl IntoIterator<Item = u32>) -> WrapFloor {
        let recipients = members
            .into_iter()
            .map(|n| *keys(n).public().dh.as_bytes())
            .collect();
        WrapFloor { recipients }
    }

    pub fn agree(&self) -> Vec<[u8; 32]> {
        let ephemeral = x25519_dalek::StaticSecret::random_from_rng(&mut rand::rng()).to_bytes();
        self.recipients
            .par_chunks(32)
            .flat_map_iter(|chunk| agree_edwards(&ephemeral, chunk))
            .collect()
    }

    pub fn agree_ladder(&self) -> Vec<[u8; 32]> {
        let ephemeral = x25519_dalek::StaticSecret::random_from_rng(&mut rand::rng());
        self.recipients
            .par_iter()
            .map(|recipient| {
                *ephemeral
                    .diffie_hellman(&x25519_dalek::PublicKey::from(*recipient))
                    .as_bytes()
            })
            .collect()
    }
}

/// X25519 of `secret` with each of `publics`, on the Edwards form, as
/// meshlog computes it (src/agreement.rs; the bench keeps its own copy, as
/// the library's is private): `u((k/8)·(8·P))`, the conversions back to
/// Montgomery form sharing one inversion. The floor's keys are all on the
/// curve, so it needs no ladder for twist points.
pub fn agree_edwards(secret: &[u8; 32], publics: &[[u8; 32]]) -> Vec<[u8; 32]> {
    use curve25519_dalek::{montgomery::MontgomeryPoint, scalar::Scalar};
    let clamped = curve25519_dalek::scalar::clamp_integer(*secret);
    let mut quotient = [0u8; 32];
    let mut carry = 0u8;
    for (out, byte) in quotient.iter_mut().zip(clamped.iter()).rev() {
        *out = (byte >> 3) | carry;
        carry = byte << 5;
    }
    let scalar = Scalar::from_bytes_mod_order(quotient);
    let products: Vec<_> = publics
        .iter()
        .map(|public| {
            let point = MontgomeryPoint(*public)
                .to_edwards(0)
                .expect("a curve point");
            scalar * point.mul_by_cofactor()
        })
        .collect();
    curve25519_dalek::edwards::EdwardsPoint::to_montgomery_batch(&products)
        .iter()
        .map(|point| point.to_bytes())
        .collect()
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

/// The floor of one durable frame, the disk's part of meshlog's journal
/// (SPEC.md §9.6): the record written in place into a preallocated file
/// opened `O_DSYNC`, one system call that returns once the write is durable
/// (the journal writes, starts the writeback, signs, then `fdatasync`s: the
/// same disk work). No checksum, no signature, no checkpoint.
pub struct SyncFloor {
    file: std::fs::File,
    end: u64,
}

/// Bytes preallocated, as the journal preallocates them.
const SYNC_FLOOR_BYTES: u64 = 1 << 20;

impl SyncFloor {
    pub fn create(dir: &tempfile::TempDir) -> SyncFloor {
        // O_DSYNC: the cheapest durable write of one record.
        let file = std::os::unix::fs::OpenOptionsExt::custom_flags(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true),
            libc::O_DSYNC,
        )
        .open(dir.path().join("floor.journal"))
        .expect("journal floor");
        std::os::unix::fs::FileExt::write_all_at(&file, &vec![0; SYNC_FLOOR_BYTES as usize], 0)
            .expect("preallocate");
        file.sync_all().expect("sync");
        SyncFloor { file, end: 0 }
    }

    /// `record` written after the last one (from the start again once the
    /// preallocated bytes are used), durable on return.
    pub fn write(&mut self, record: &[u8]) {
        if self.end + record.len() as u64 > SYNC_FLOOR_BYTES {
            self.end = 0;
        }
        // Durable on return: the file is O_DSYNC.
        std::os::unix::fs::FileExt::write_all_at(&self.file, record, self.end).expect("write");
        self.end += record.len() as u64;
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
