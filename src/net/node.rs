//! A mesh shared by the connections of one process, and the options they
//! run under.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, oneshot, watch};

use super::NetError;
use super::ticket::{self, Admission, Replays, TicketKey};
use crate::ids::{EventHash, GroupId, MemberId};
use crate::keys::LocalKeys;
use crate::mesh::Mesh;

/// How far a reply being received has come, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Records of the reply received so far.
    pub received: u64,
    /// Records the reply holds.
    pub total: u64,
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Limits and timeouts of the network protocol (SPEC.md §17.6).
#[derive(Clone)]
#[non_exhaustive]
pub struct NetOptions {
    /// The handshake and both authentications must end within this.
    pub handshake_timeout: Duration,
    /// A connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Each side says something at least this often, so that an idle but
    /// live connection is not closed.
    pub ping_interval: Duration,
    /// Connecting must succeed within this.
    pub connect_timeout: Duration,
    /// A server waits this long at most for a connection's first message,
    /// which an honest peer sends at once (SPEC.md §17.6).
    pub first_message_timeout: Duration,
    /// Most connections a server holds whose first message has not
    /// arrived; the oldest of them is closed to make room for a new one.
    pub max_pending: usize,
    /// Most connections a server holds at once, handshakes included; more
    /// are closed on arrival.
    pub max_connections: usize,
    /// Most of those still in their handshake whose first message carried
    /// no ticket that proves a member (SPEC.md §17.4, §17.6): newcomers,
    /// members whose copy lags behind a removal, and strangers, who can
    /// hold no more. Taken as at most [`NetOptions::max_connections`]; a
    /// member's ticket needs none of these.
    pub max_handshakes: usize,
    /// Most of those handshakes at once from one IP address (an IPv6
    /// address counts by its /64, which one host commonly holds whole).
    pub max_handshakes_per_address: usize,
    /// Most sessions one member holds with a server at once; another is
    /// refused once authenticated, and the member may try again later.
    pub max_sessions_per_member: usize,
    /// A one-shot [`super::sync`]'s session, or a [`super::join`]'s copy,
    /// must end within this, from its first request (connecting and the
    /// handshake have their own timeouts), however busy or slow the peer.
    pub sync_timeout: Duration,
    /// Called as a reply's records arrive.
    pub progress: Option<ProgressFn>,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(45),
            ping_interval: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(10),
            first_message_timeout: Duration::from_secs(5),
            max_pending: 1024,
            max_connections: 64,
            max_handshakes: 16,
            max_handshakes_per_address: 4,
            max_sessions_per_member: 4,
            sync_timeout: Duration::from_secs(600),
            progress: None,
        }
    }
}

impl NetOptions {
    /// The default options.
    pub fn new() -> NetOptions {
        NetOptions::default()
    }

    /// Sets [`NetOptions::progress`].
    pub fn progress(mut self, progress: impl Fn(Progress) + Send + Sync + 'static) -> NetOptions {
        self.progress = Some(Arc::new(progress));
        self
    }
}

impl std::fmt::Debug for NetOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetOptions")
            .field("handshake_timeout", &self.handshake_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("ping_interval", &self.ping_interval)
            .field("connect_timeout", &self.connect_timeout)
            .field("first_message_timeout", &self.first_message_timeout)
            .field("max_pending", &self.max_pending)
            .field("max_connections", &self.max_connections)
            .field("max_handshakes", &self.max_handshakes)
            .field(
                "max_handshakes_per_address",
                &self.max_handshakes_per_address,
            )
            .field("max_sessions_per_member", &self.max_sessions_per_member)
            .field("sync_timeout", &self.sync_timeout)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// What a node's connections moved so far, over every connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Traffic {
    /// Bytes sent, Noise framing and tags included.
    pub bytes_sent: u64,
    /// Bytes received, the same way.
    pub bytes_received: u64,
    /// Records sent in replies.
    pub records_sent: u64,
    /// Records received that were new, now written.
    pub records_added: u64,
}

/// [`Traffic`], counted as it happens.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) records_sent: AtomicU64,
    pub(crate) records_added: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Counts held per key (an address, a member), each count given back when
/// its [`Held`] is dropped.
pub(crate) struct Tally<K> {
    counts: Mutex<HashMap<K, usize>>,
}

impl<K: Eq + Hash + Copy> Tally<K> {
    fn new() -> Arc<Tally<K>> {
        Arc::new(Tally {
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// One more for `key`, unless it holds `limit` already. The lock is held
    /// for a map update only, so it may be taken on an async thread.
    pub(crate) fn take(self: &Arc<Self>, key: K, limit: usize) -> Option<Held<K>> {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if counts.get(&key).copied().unwrap_or(0) >= limit {
            return None;
        }
        *counts.entry(key).or_insert(0) += 1;
        Some(Held {
            tally: self.clone(),
            key,
        })
    }
}

/// One count of a [`Tally`], given back on drop.
pub(crate) struct Held<K: Eq + Hash + Copy> {
    tally: Arc<Tally<K>>,
    key: K,
}

impl<K: Eq + Hash + Copy> Drop for Held<K> {
    fn drop(&mut self) {
        let mut counts = self
            .tally
            .counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// What every connection of a [`Node`] shares.
pub(crate) struct Shared {
    pub(crate) mesh: Mutex<Mesh>,
    /// The mesh's group, which never changes: read without the lock.
    pub(crate) group: GroupId,
    /// The local member's keys, for handshakes (the mesh holds them too).
    pub(crate) keys: LocalKeys,
    /// Counts changes of the mesh; sessions announce each.
    changes: watch::Sender<u64>,
    /// Set when the node stops.
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) connections: Arc<Semaphore>,
    /// Connections in their handshake (SPEC.md §17.6).
    pub(crate) handshakes: Arc<Semaphore>,
    pub(crate) handshakes_by_address: Arc<Tally<IpAddr>>,
    pub(crate) sessions_by_member: Arc<Tally<MemberId>>,
    /// Which tickets this node accepts and sends (SPEC.md §17.4), remade
    /// under the mesh's lock whenever a rotation arrives.
    pub(crate) admission: Mutex<Arc<Admission>>,
    /// Ticket keys by epoch: each costs an envelope's opening once.
    ticket_keys: Mutex<HashMap<EventHash, Arc<TicketKey>>>,
    pub(crate) replays: Mutex<Replays>,
    /// Connections whose first message has not arrived.
    pub(crate) pending: Pending,
    /// Warnings about refused connections, at most one line a kind per
    /// [`WARN_EVERY`].
    pub(crate) warnings: Throttle,
    pub(crate) options: NetOptions,
    pub(crate) counters: Arc<Counters>,
}

/// The mesh's lock; a poisoned one means a mesh call panicked, which no
/// input may cause, so it is reported rather than passed over.
pub(crate) fn lock(mesh: &Mutex<Mesh>) -> Result<MutexGuard<'_, Mesh>, NetError> {
    mesh.lock()
        .map_err(|_| NetError::Internal("a mesh call panicked earlier".into()))
}

impl Shared {
    /// Runs `f` on the mesh and tells the sessions if it changed.
    pub(crate) fn with_mesh<T>(&self, f: impl FnOnce(&mut Mesh) -> T) -> Result<T, NetError> {
        let mut mesh = lock(&self.mesh)?;
        let before = mesh.len();
        let out = f(&mut mesh);
        let changed = mesh.len() != before;
        if changed && self.admission().rotations != mesh.resolution().statuses.len() {
            self.remake_admission(&mesh);
        }
        drop(mesh);
        if changed {
            self.changes.send_modify(|count| *count += 1);
        }
        Ok(out)
    }

    /// [`Shared::with_mesh`] off the async threads: the lock may be held
    /// by a long ingest or export part.
    pub(crate) async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Mesh) -> T + Send + 'static,
    ) -> Result<T, NetError> {
        let shared = self.clone();
        tokio::task::spawn_blocking(move || shared.with_mesh(f))
            .await
            .map_err(|error| NetError::Internal(error.to_string()))?
    }

    /// The admission as of the last rotation.
    pub(crate) fn admission(&self) -> Arc<Admission> {
        self.admission
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn remake_admission(&self, mesh: &Mesh) {
        let mut keys = self
            .ticket_keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let made = Arc::new(ticket::admission(mesh, &mut keys));
        *self
            .admission
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = made;
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub(crate) fn stopped(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }
}

/// A mesh that serves and syncs over the network ([`super::serve`],
/// [`super::sync`], [`super::watch`]), shared by every connection of the
/// process. Cloning it gives another handle to the same mesh.
///
/// Writes through [`Node::with_mesh`] are announced to every connected
/// peer, as are events ingested from any of them.
#[derive(Clone)]
pub struct Node {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("member", &self.shared.keys.member_id())
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// A node over `mesh`, which must be writable and hold the local
    /// member's keys: they authenticate every connection (SPEC.md §17.4).
    pub fn new(mesh: Mesh, options: NetOptions) -> Result<Node, NetError> {
        let keys = mesh
            .local_keys()
            .map_err(|error| NetError::Mesh(Box::new(error)))?
            .duplicate();
        let (changes, _) = watch::channel(0);
        let (stop, _) = watch::channel(false);
        let mut ticket_keys = HashMap::new();
        let admission = Arc::new(ticket::admission(&mesh, &mut ticket_keys));
        Ok(Node {
            shared: Arc::new(Shared {
                group: mesh.group(),
                mesh: Mutex::new(mesh),
                keys,
                changes,
                stop,
                connections: Arc::new(Semaphore::new(options.max_connections)),
                handshakes: Arc::new(Semaphore::new(
                    options.max_handshakes.min(options.max_connections),
                )),
                handshakes_by_address: Tally::new(),
                sessions_by_member: Tally::new(),
                admission: Mutex::new(admission),
                ticket_keys: Mutex::new(ticket_keys),
                replays: Mutex::default(),
                pending: Pending::new(options.max_pending),
                warnings: Throttle::new(WARN_EVERY),
                options,
                counters: Arc::default(),
            }),
        })
    }

    /// Runs `f` on the mesh; if it wrote, connected peers hear of it. `f`
    /// runs on the caller's thread and holds the mesh meanwhile: from async
    /// code, call it inside `tokio::task::spawn_blocking`.
    pub fn with_mesh<T>(&self, f: impl FnOnce(&mut Mesh) -> T) -> Result<T, NetError> {
        self.shared.with_mesh(f)
    }

    /// What this node's connections moved so far.
    pub fn traffic(&self) -> Traffic {
        let counters = &self.shared.counters;
        Traffic {
            bytes_sent: counters.bytes_sent.load(Ordering::Relaxed),
            bytes_received: counters.bytes_received.load(Ordering::Relaxed),
            records_sent: counters.records_sent.load(Ordering::Relaxed),
            records_added: counters.records_added.load(Ordering::Relaxed),
        }
    }

    /// Ends every session and server of this node; they return soon after.
    pub fn stop(&self) {
        self.shared.stop.send_replace(true);
    }

    /// Whether [`Node::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        *self.shared.stop.borrow()
    }

    /// The mesh back, once this is the last handle and no session runs;
    /// otherwise the node itself.
    pub fn into_mesh(self) -> Result<Mesh, Node> {
        match Arc::try_unwrap(self.shared) {
            Ok(shared) => shared
                .mesh
                .into_inner()
                .map_err(|poisoned| poisoned.into_inner())
                .or_else(Ok),
            Err(shared) => Err(Node { shared }),
        }
    }
}

/// Connections whose first message a server awaits, oldest first: when
/// there are as many as it allows, the oldest is told it is closed to make
/// room (SPEC.md §17.6). An honest initiator sends its first message at
/// once, so it is rarely the oldest.
pub(crate) struct Pending {
    limit: usize,
    waiting: Mutex<(u64, BTreeMap<u64, oneshot::Sender<()>>)>,
}

/// A connection's place among the [`Pending`], given back on drop.
pub(crate) struct Waiting<'a> {
    pending: &'a Pending,
    id: u64,
}

impl Pending {
    fn new(limit: usize) -> Pending {
        Pending {
            limit: limit.max(1),
            waiting: Mutex::new((0, BTreeMap::new())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, (u64, BTreeMap<u64, oneshot::Sender<()>>)> {
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A place for a new connection, and what resolves once it is evicted;
    /// the oldest is evicted if there is no room.
    pub(crate) fn wait(&self) -> (Waiting<'_>, oneshot::Receiver<()>) {
        let (evict, evicted) = oneshot::channel();
        let mut waiting = self.lock();
        let (next, by_age) = &mut *waiting;
        while by_age.len() >= self.limit {
            // Dropping its sender wakes the oldest, which closes.
            by_age.pop_first();
        }
        let id = *next;
        *next += 1;
        by_age.insert(id, evict);
        (Waiting { pending: self, id }, evicted)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.pending.lock().1.remove(&self.id);
    }
}

/// How often at most a server writes one warning line of a kind about the
/// connections it refuses; the others are counted into the next line.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(10);

/// At most one warning line per kind per period, so that a flood of
/// refused connections does not flood the log.
pub(crate) struct Throttle {
    every: Duration,
    kinds: Mutex<HashMap<&'static str, (Instant, u64)>>,
}

impl Throttle {
    pub(crate) fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            kinds: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a line of `kind` may be written now, and if so how many
    /// were held back since the last one.
    pub(crate) fn allow(&self, kind: &'static str) -> Option<u64> {
        self.allow_at(kind, Instant::now())
    }

    pub(crate) fn allow_at(&self, kind: &'static str, now: Instant) -> Option<u64> {
        let mut kinds = self
            .kinds
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match kinds.get_mut(kind) {
            Some((last, held)) if now.saturating_duration_since(*last) < self.every => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                *last = now;
                Some(std::mem::take(held))
            }
            None => {
                kinds.insert(kind, (now, 0));
                Some(0)
            }
        }
    }
}
