//! Sync over the network (SPEC.md §17): members' copies meet over TCP,
//! authenticate each other by their member keys, and exchange what the
//! other lacks; with [`watch`] they stay connected and gossip every change.
//!
//! Behind the `net` cargo feature (on by default with the CLI), on tokio.
//!
//! - **Authentication before anything moves.** Noise XX
//!   (`Noise_XX_25519_ChaChaPoly_SHA256`) with each member's X25519 key as
//!   its static key; then each side sends its key package, whose DH key
//!   must be the static key the other saw, and signs the handshake hash
//!   with its ed25519 key. A peer is served only if it is a member of the
//!   current resolved epoch (`R*`), or of the epoch writers name while a
//!   merge is needed: a newcomer's addition is enough to fetch its first
//!   copy ([`join`]). A removed member is refused from the moment its
//!   removal is known, on open connections too.
//! - **The exchange.** Each side sends its [`Frontier`]; each replies with
//!   what the other lacks, in parts, which the other verifies and writes as
//!   they arrive, exactly as [`Mesh::ingest`] does.
//! - **Members before strangers.** The initiator's first message carries
//!   a ticket, a keyed hash of its ephemeral key under a recent epoch
//!   secret, which a server checks before it gives the connection anything:
//!   strangers, and removed members, share a small handshake budget with
//!   newcomers and never take what members need; a server with no room
//!   says so, and the client reports [`NetError::Busy`].
//! - **Bounded.** Every read has a length limit before it is made and a
//!   timeout; a reply is made one part at a time, so it costs about one
//!   part of memory however large; a server caps the connections awaiting
//!   their first message, its connections, the share of them without a
//!   ticket in their handshake, and each member's sessions, and logs
//!   refusals at most once a kind every 10 s; a one-shot exchange has a
//!   deadline. A peer that sends
//!   garbage, too much, or events that break a rule is cut off, and
//!   nothing it sent that breaks a rule is written.
//!
//! ```no_run
//! # async fn example() -> Result<(), meshlog::net::NetError> {
//! use std::net::SocketAddr;
//!
//! use meshlog::net::{self, NetOptions, Node};
//! use meshlog::{LocalKeys, Mesh};
//!
//! let keys = LocalKeys::load("alice.keys").map_err(meshlog::Error::from)?;
//! let node = Node::new(Mesh::open("alice.redb", keys)?, NetOptions::new())?;
//! let server = SocketAddr::from(([192, 0, 2, 7], 7447));
//!
//! // Once: each side gets what the other held when they met.
//! let report = net::sync(&node, server).await?;
//! println!("pulled {}, pushed {}", report.pulled, report.pushed);
//!
//! // A write through the node is announced to connected peers.
//! node.with_mesh(|mesh| mesh.append_app("note", b"hello"))??;
//!
//! // Or stay connected and gossip until `node.stop()`.
//! net::watch(&node, server).await?;
//! # Ok(()) }
//! ```

mod handshake;
mod node;
mod noise;
mod session;
mod ticket;
mod wire;

#[cfg(test)]
mod tests;

/// See [`crate::fuzzing::net_wire`].
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_wire(data: &[u8]) {
    wire::fuzz(data);
}

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use crate::batch::Batch;
use crate::error::{Error, ErrorClass};
use crate::frontier::Frontier;
use crate::ids::{GroupId, MemberId};
use crate::keys::LocalKeys;
use crate::mesh::{Mesh, MeshOptions};
use handshake::{HandshakeError, Opening, Side};
use session::Mode;
use wire::{Message, WireError};

pub use node::{NetOptions, Node, Progress, ProgressFn, Traffic};

/// What one exchange with a peer moved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncReport {
    /// The peer's address.
    pub peer: SocketAddr,
    /// The member the peer proved to be.
    pub member: MemberId,
    /// Records the peer sent that were new here, now written.
    pub pulled: u64,
    /// Records the peer sent that this mesh held already or left out.
    pub pulled_known: u64,
    /// Records sent to the peer.
    pub pushed: u64,
    /// Of those, records the peer said were new to it.
    pub pushed_added: u64,
    /// Bytes sent, framing and encryption included.
    pub bytes_sent: u64,
    /// Bytes received, framing and encryption included.
    pub bytes_received: u64,
    /// From connecting to the end.
    pub elapsed: Duration,
}

/// Why a connection failed, or was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The network or the operating system failed.
    #[error("{peer}: {source}")]
    Io {
        /// The peer, or the listening address.
        peer: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The peer said nothing for too long.
    #[error("{peer}: no message within {}s", waited.as_secs())]
    Timeout {
        /// The peer.
        peer: String,
        /// How long this side waited.
        waited: Duration,
    },
    /// The peer closed the connection before the exchange ended.
    #[error("{peer}: the connection closed")]
    Closed {
        /// The peer.
        peer: String,
    },
    /// The handshake failed: not Noise, a bad key, or a peer that does not
    /// prove the member key it names.
    #[error("{peer}: handshake failed: {detail}")]
    Handshake {
        /// The peer.
        peer: String,
        /// What failed.
        detail: String,
    },
    /// The peer broke the protocol: a message malformed, too large, or out
    /// of turn.
    #[error("{peer}: protocol violation: {detail}")]
    Protocol {
        /// The peer.
        peer: String,
        /// What it did.
        detail: String,
    },
    /// This side refused the peer: not a member (SPEC.md §17.4).
    #[error("{peer}: refused: {reason}")]
    NotAdmitted {
        /// The peer.
        peer: String,
        /// Why.
        reason: String,
    },
    /// The peer refused this side, and said why.
    #[error("{peer}: the peer refused: {reason}")]
    RefusedByPeer {
        /// The peer.
        peer: String,
        /// What it said.
        reason: String,
        /// Whether it refused to admit this member at all (SPEC.md §17.4),
        /// rather than ending a session: [`watch`] stops retrying then.
        admission: bool,
    },
    /// The peer serves or syncs another group.
    #[error("{peer}: the peer is of group {}, not {ours}", theirs.map_or("(none)".to_string(), |g| g.to_string()))]
    ForeignGroup {
        /// The peer.
        peer: String,
        /// This mesh's group, or the group a newcomer expects.
        ours: GroupId,
        /// The peer's.
        theirs: Option<GroupId>,
    },
    /// Records the peer sent were refused: nothing of the refused part was
    /// written.
    #[error("{peer}: records refused: {source}")]
    Ingest {
        /// The peer.
        peer: String,
        /// Why, naming the event and rule.
        source: Box<Error>,
    },
    /// This side is at a limit of [`NetOptions`] for the peer: too many
    /// sessions of its member, say. The peer may try again later.
    #[error("{peer}: busy: {detail}")]
    Busy {
        /// The peer.
        peer: String,
        /// Which limit.
        detail: String,
    },
    /// The local mesh cannot serve or sync (disabled, read-only, no keys),
    /// or could not write.
    #[error(transparent)]
    Mesh(Box<Error>),
    /// A task of this process failed.
    #[error("internal failure: {0}")]
    Internal(String),
}

/// A local mesh call that failed.
impl From<Error> for NetError {
    fn from(error: Error) -> Self {
        NetError::Mesh(Box::new(error))
    }
}

impl NetError {
    /// The class of the error, as for [`Error::class`]: a peer's invalid
    /// bytes or events are verification failures, refusals either way are
    /// refusals, and a network that fails means this could not run.
    pub fn class(&self) -> ErrorClass {
        match self {
            NetError::Handshake { .. } | NetError::Protocol { .. } => {
                ErrorClass::VerificationFailure
            }
            NetError::NotAdmitted { .. }
            | NetError::RefusedByPeer { .. }
            | NetError::ForeignGroup { .. } => ErrorClass::Refusal,
            NetError::Ingest { source, .. } | NetError::Mesh(source) => source.class(),
            NetError::Io { .. }
            | NetError::Busy { .. }
            | NetError::Timeout { .. }
            | NetError::Closed { .. }
            | NetError::Internal(_) => ErrorClass::CouldNotRun,
        }
    }

    /// A short, stable name of what went wrong, as [`Error::kind`] gives
    /// for the library's errors (whose kind a failed mesh call keeps).
    pub fn kind(&self) -> &'static str {
        match self {
            NetError::Io { .. } => "network-io",
            NetError::Timeout { .. } => "timeout",
            NetError::Closed { .. } => "closed-by-peer",
            NetError::Handshake { .. } => "handshake",
            NetError::Protocol { .. } => "protocol",
            NetError::NotAdmitted { .. } => "not-admitted",
            NetError::RefusedByPeer { .. } => "refused-by-peer",
            NetError::ForeignGroup { .. } => "foreign-group",
            NetError::Busy { .. } => "busy",
            NetError::Ingest { source, .. } | NetError::Mesh(source) => source.kind(),
            NetError::Internal(_) => "internal",
        }
    }

    /// The peer, when the error is about one.
    pub fn peer(&self) -> Option<&str> {
        match self {
            NetError::Io { peer, .. }
            | NetError::Timeout { peer, .. }
            | NetError::Closed { peer }
            | NetError::Handshake { peer, .. }
            | NetError::Protocol { peer, .. }
            | NetError::NotAdmitted { peer, .. }
            | NetError::RefusedByPeer { peer, .. }
            | NetError::ForeignGroup { peer, .. }
            | NetError::Ingest { peer, .. }
            | NetError::Busy { peer, .. } => Some(peer),
            NetError::Mesh(_) | NetError::Internal(_) => None,
        }
    }

    /// The library error, when a mesh call failed.
    pub fn mesh_error(&self) -> Option<&Error> {
        match self {
            NetError::Ingest { source, .. } | NetError::Mesh(source) => Some(source),
            _ => None,
        }
    }

    fn wire(peer: &str, error: WireError) -> NetError {
        let peer = peer.to_string();
        match error {
            WireError::Io(source) => NetError::Io { peer, source },
            WireError::Closed => NetError::Closed { peer },
            other => NetError::Protocol {
                peer,
                detail: other.to_string(),
            },
        }
    }

    fn handshake(peer: &str, error: HandshakeError) -> NetError {
        match error {
            HandshakeError::Wire(error) => NetError::wire(peer, error),
            HandshakeError::Refused(reason) => NetError::RefusedByPeer {
                peer: peer.to_string(),
                reason,
                admission: true,
            },
            HandshakeError::Busy => NetError::Busy {
                peer: peer.to_string(),
                detail: "the peer has no room for another handshake; try again later".into(),
            },
            other => NetError::Handshake {
                peer: peer.to_string(),
                detail: other.to_string(),
            },
        }
    }

    /// What to tell the peer before closing, if this side ends the
    /// connection for something the peer did.
    fn reason_for_peer(&self) -> Option<String> {
        let mut reason = match self {
            NetError::NotAdmitted { reason, .. } => reason.clone(),
            NetError::Protocol { detail, .. } => format!("protocol violation: {detail}"),
            NetError::ForeignGroup { ours, .. } => format!("this side is of group {ours}"),
            NetError::Ingest { source, .. } => format!("records refused: {source}"),
            NetError::Busy { detail, .. } => format!("busy: {detail}"),
            _ => return None,
        };
        // Cut at a character boundary: `truncate` elsewhere panics.
        let mut end = reason.len().min(wire::MAX_REFUSAL_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        Some(reason)
    }
}

fn mesh_error(error: Error) -> NetError {
    NetError::Mesh(Box::new(error))
}

/// The local member may serve or sync only while enabled (SPEC.md §17.4).
async fn check_enabled(node: &Node) -> Result<(), NetError> {
    let member = node.shared.keys.member_id();
    if node.shared.blocking(|mesh| mesh.is_enabled()).await? {
        Ok(())
    } else {
        Err(mesh_error(Error::Disabled { member }))
    }
}

/// `work`, or a timeout once `limit` has passed.
async fn within<T>(
    limit: Duration,
    peer: &str,
    work: impl Future<Output = Result<T, NetError>>,
) -> Result<T, NetError> {
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(NetError::Timeout {
            peer: peer.to_string(),
            waited: limit,
        })
    })
}

/// Connects to `peer` within the connect timeout.
async fn connect(peer: SocketAddr, timeout: Duration) -> Result<TcpStream, NetError> {
    let name = peer.to_string();
    let connecting = async {
        TcpStream::connect(peer)
            .await
            .map_err(|source| NetError::Io {
                peer: name.clone(),
                source,
            })
    };
    let stream = within(timeout, &name, connecting).await?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

type Halves = (
    wire::Sender<tokio::net::tcp::OwnedWriteHalf>,
    wire::Receiver<tokio::net::tcp::OwnedReadHalf>,
);

/// The Noise handshake over `stream` as `side` (SPEC.md §17.2): the
/// transport, the handshake hash and the peer's static key.
async fn secure(
    stream: TcpStream,
    keys: &LocalKeys,
    opening: Opening<'_>,
    peer: &str,
) -> Result<(Halves, [u8; 32], [u8; 32]), NetError> {
    let (reader, writer) = stream.into_split();
    let secured = handshake::secure(
        reader,
        writer,
        keys,
        opening,
        #[cfg(test)]
        None,
    )
    .await
    .map_err(|error| NetError::handshake(peer, error))?;
    Ok((
        (secured.sender, secured.receiver),
        secured.handshake_hash,
        secured.remote_static,
    ))
}

/// The initiator's handshake: Noise, its first message carrying a ticket
/// that names `tickets`' epochs, our auth, then the responder's, checked.
/// Returns the transport, the responder's member and its group.
async fn initiate(
    stream: TcpStream,
    keys: &LocalKeys,
    tickets: &[std::sync::Arc<ticket::TicketKey>],
    group: Option<GroupId>,
    peer: &str,
) -> Result<(Halves, MemberId, Option<GroupId>), NetError> {
    let ((mut sender, mut receiver), handshake_hash, remote_static) =
        secure(stream, keys, Opening::Initiate(tickets), peer).await?;
    let auth = handshake::auth(keys, Side::Initiator, &handshake_hash, group);
    sender
        .send(&Message::Auth(Box::new(auth)))
        .await
        .map_err(|error| NetError::wire(peer, error))?;
    let (member, their_group) = handshake::receive_auth(
        &mut receiver,
        Side::Initiator,
        &handshake_hash,
        &remote_static,
    )
    .await
    .map_err(|error| NetError::handshake(peer, error))?;
    Ok(((sender, receiver), member, their_group))
}

/// Sends `error`'s reason to the peer, if it has one, and returns it. A
/// courtesy: a peer that takes nothing gets 5 s.
async fn refuse<W: tokio::io::AsyncWrite + Unpin>(
    sender: &mut wire::Sender<W>,
    error: NetError,
) -> NetError {
    if let Some(reason) = error.reason_for_peer() {
        let refused = Message::Refused { reason };
        let _ = tokio::time::timeout(Duration::from_secs(5), sender.send(&refused)).await;
    }
    error
}

/// Sends `message`, which the peer must take within `limit` (SPEC.md
/// §17.6: a peer that stops reading is closed like one that stops writing).
async fn send_within<W: tokio::io::AsyncWrite + Unpin>(
    sender: &mut wire::Sender<W>,
    message: &Message,
    limit: Duration,
    peer: &str,
) -> Result<(), NetError> {
    let sending = async {
        sender
            .send(message)
            .await
            .map_err(|error| NetError::wire(peer, error))
    };
    within(limit, peer, sending).await
}

/// One session with `peer` as the initiator.
async fn dial(node: &Node, peer: SocketAddr, mode: Mode) -> Result<SyncReport, NetError> {
    let started = Instant::now();
    let shared = &node.shared;
    let name = peer.to_string();
    let group = shared.group;
    let stream = connect(peer, shared.options.connect_timeout).await?;
    let admission = shared.admission();
    let handshake = initiate(stream, &shared.keys, &admission.named, Some(group), &name);
    let ((mut sender, receiver), member, theirs) =
        within(shared.options.handshake_timeout, &name, handshake).await?;
    if theirs != Some(group) {
        let error = NetError::ForeignGroup {
            peer: name,
            ours: group,
            theirs,
        };
        return Err(refuse(&mut sender, error).await);
    }
    if let Err(reason) = shared
        .blocking(move |mesh| session::admits(mesh, member))
        .await?
    {
        warn!(peer = %name, %member, %reason, "refused the peer");
        let error = NetError::NotAdmitted { peer: name, reason };
        return Err(refuse(&mut sender, error).await);
    }
    info!(peer = %name, %member, "connected");
    let moved = session::run(
        shared.clone(),
        sender,
        receiver,
        name,
        member,
        mode,
        shared.stopped(),
    )
    .await?;
    Ok(SyncReport {
        peer,
        member,
        pulled: moved.pulled,
        pulled_known: moved.pulled_known,
        pushed: moved.pushed,
        pushed_added: moved.pushed_added,
        bytes_sent: moved.bytes_sent,
        bytes_received: moved.bytes_received,
        elapsed: started.elapsed(),
    })
}

/// Exchanges with `peer` once: each side gets what the other held when
/// they met (SPEC.md §17.5), within [`NetOptions::sync_timeout`]. The local
/// member must be enabled.
pub async fn sync(node: &Node, peer: SocketAddr) -> Result<SyncReport, NetError> {
    check_enabled(node).await?;
    dial(node, peer, Mode::Once).await
}

/// Stays connected to `peer` and gossips: every change of the mesh is
/// announced, and what the peer announces is fetched. Reconnects after a
/// failure, waiting longer each time (up to 30 s), until [`Node::stop`].
/// Returns the error that makes retrying pointless: the local member
/// disabled, or this side refused by the peer.
pub async fn watch(node: &Node, peer: SocketAddr) -> Result<(), NetError> {
    let mut stop = node.shared.stopped();
    let mut backoff = Duration::from_millis(250);
    while !node.is_stopped() {
        check_enabled(node).await?;
        match dial(node, peer, Mode::Stay).await {
            Ok(report) => {
                info!(peer = %peer, pulled = report.pulled, pushed = report.pushed, "disconnected");
                // Only a session that lasted starts the back-off over: a
                // peer that accepts and closes at once is not hammered.
                if report.elapsed > Duration::from_secs(10) {
                    backoff = Duration::from_millis(250);
                }
            }
            Err(
                error @ (NetError::RefusedByPeer {
                    admission: true, ..
                }
                | NetError::ForeignGroup { .. }),
            ) => return Err(error),
            Err(error) => warn!(peer = %peer, %error, "sync failed; will retry"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
    Ok(())
}

/// What counts as one address for [`NetOptions::max_handshakes_per_address`]:
/// an IPv4 address (a mapped one too), or an IPv6 address's /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !((1u128 << 64) - 1),
            )),
        },
    }
}

/// A connection's hold on the handshake budget of the open tier (SPEC.md
/// §17.6), given back once the peer is known.
struct Handshaking {
    _any: tokio::sync::OwnedSemaphorePermit,
    _address: node::Held<IpAddr>,
}

/// Serves members who connect to `listener` until [`Node::stop`]: each is
/// authenticated, checked against the roster, and kept in step with this
/// mesh as long as it stays connected. A connection's first message is
/// awaited for at most [`NetOptions::first_message_timeout`], among at most
/// [`NetOptions::max_pending`] such connections (the oldest is closed to
/// make room). A first message whose ticket proves a member takes one of
/// [`NetOptions::max_connections`]; one without takes one of
/// [`NetOptions::max_handshakes`] as well (and of
/// [`NetOptions::max_handshakes_per_address`] from one address) until its
/// member is known. With no room, the peer is told it is busy. A member
/// holds at most [`NetOptions::max_sessions_per_member`] sessions.
pub async fn serve(node: &Node, listener: TcpListener) -> Result<(), NetError> {
    check_enabled(node).await?;
    let shared = &node.shared;
    let local = listener
        .local_addr()
        .map_or_else(|_| "listener".to_string(), |addr| addr.to_string());
    let mut stop = shared.stopped();
    let mut sessions = tokio::task::JoinSet::new();
    info!(listen = %local, "serving");
    // A stop made before `stop` subscribed is seen here; one made after,
    // by `changed`.
    while !node.is_stopped() {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, addr) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors, say: wait rather than spin.
                        if let Some(held_back) = shared.warnings.allow("accept failed") {
                            warn!(%error, held_back, "accept failed");
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let node = node.clone();
                sessions.spawn(async move { let_in(&node, stream, addr).await });
            }
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    info!(listen = %local, "stopping");
    // Sessions see the stop too; give them a moment to say goodbye.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

/// Tells the peer this side has no room (SPEC.md §17.2), and closes.
async fn say_busy(mut stream: TcpStream) {
    use tokio::io::AsyncWriteExt;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(&handshake::BUSY).await?;
        stream.shutdown().await
    })
    .await;
}

/// One accepted connection: its first message, then a slot as its ticket
/// allows, then [`answer`] (SPEC.md §17.4, §17.6). Refusals of connections
/// whose member is not known are logged at most once a kind per
/// [`node::WARN_EVERY`], with the count held back.
async fn let_in(node: &Node, mut stream: TcpStream, addr: SocketAddr) {
    let shared = &node.shared;
    let options = &shared.options;
    let refused = |kind: &'static str, detail: &dyn std::fmt::Display| {
        if let Some(held_back) = shared.warnings.allow(kind) {
            warn!(peer = %addr, held_back, "{kind}: {detail}");
        }
    };
    let (waiting, evicted) = shared.pending.wait();
    let mut stop = shared.stopped();
    if node.is_stopped() {
        return;
    }
    let reading = tokio::time::timeout(
        options.first_message_timeout,
        handshake::read_first(&mut stream),
    );
    let first = tokio::select! {
        first = reading => first,
        _ = stop.changed() => return,
        _ = evicted => {
            refused("closed to make room", &"its first message had not come");
            say_busy(stream).await;
            return;
        }
    };
    drop(waiting);
    let first = match first {
        Ok(Ok(first)) => first,
        // A probe (a health check, a port scan) that says nothing.
        Ok(Err(HandshakeError::Wire(WireError::Closed))) => {
            return debug!(peer = %addr, "closed before its first message");
        }
        Ok(Err(error)) => return refused("bad first message", &error),
        Err(_) => {
            let waited = options.first_message_timeout.as_secs_f64();
            return refused("no first message", &format!("none within {waited}s"));
        }
    };
    let Ok((ephemeral, entries)) = ticket::parse(&first) else {
        return refused("bad first message", &"malformed");
    };
    let verdict = shared.admission().verdict(ephemeral, entries);
    let handshaking = match verdict {
        ticket::Verdict::Member => {
            let fresh = shared
                .replays
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .first_use(ephemeral);
            if !fresh {
                return refused("replayed ticket", &"a first message seen before");
            }
            None
        }
        // Strangers can hold only the open handshake budget, and one
        // address only part of it; members' tickets need none of it.
        ticket::Verdict::Open => {
            let Some(address) = shared
                .handshakes_by_address
                .take(address_key(addr.ip()), options.max_handshakes_per_address)
            else {
                refused(
                    "busy",
                    &"too many handshakes without a ticket from this address",
                );
                return say_busy(stream).await;
            };
            let Ok(any) = shared.handshakes.clone().try_acquire_owned() else {
                refused("busy", &"too many handshakes without a ticket");
                return say_busy(stream).await;
            };
            Some(Handshaking {
                _any: any,
                _address: address,
            })
        }
    };
    let Ok(_permit) = shared.connections.clone().try_acquire_owned() else {
        refused("busy", &"too many connections");
        return say_busy(stream).await;
    };
    if let Err(error) = check_enabled(node).await {
        // Disabled since it started: it serves no one until it turns
        // itself on again (SPEC.md §17.4).
        warn!(peer = %addr, %error, "closed");
        return;
    }
    let member = verdict == ticket::Verdict::Member;
    match answer(node, stream, addr, &first, handshaking).await {
        Ok(()) => {}
        // A ticket proved a member: its failures are worth a line each.
        Err(error @ NetError::NotAdmitted { .. }) if member => {
            warn!(peer = %addr, %error, "refused")
        }
        Err(error) if member => warn!(peer = %addr, %error, "connection ended"),
        Err(error @ NetError::NotAdmitted { .. }) => refused("refused", &error),
        Err(error) => refused("connection ended", &error),
    }
}

/// One accepted connection whose `first` message is read and let in:
/// handshake, admission, then a session.
async fn answer(
    node: &Node,
    stream: TcpStream,
    addr: SocketAddr,
    first: &[u8],
    handshaking: Option<Handshaking>,
) -> Result<(), NetError> {
    let shared = &node.shared;
    let peer = addr.to_string();
    let _ = stream.set_nodelay(true);
    let accept = async {
        let ((mut sender, mut receiver), handshake_hash, remote_static) =
            secure(stream, &shared.keys, Opening::Answer(first), &peer).await?;
        let (member, theirs) = handshake::receive_auth(
            &mut receiver,
            Side::Responder,
            &handshake_hash,
            &remote_static,
        )
        .await
        .map_err(|error| NetError::handshake(&peer, error))?;
        let group = shared.group;
        // Admission first: a stranger does not learn the group's id.
        let refusal = match shared
            .blocking(move |mesh| session::admits(mesh, member))
            .await?
        {
            Err(reason) => Some(NetError::NotAdmitted {
                peer: peer.clone(),
                reason,
            }),
            Ok(()) if theirs.is_some() && theirs != Some(group) => Some(NetError::ForeignGroup {
                peer: peer.clone(),
                ours: group,
                theirs,
            }),
            Ok(()) => None,
        };
        if let Some(refusal) = refusal {
            return Err(refuse(&mut sender, refusal).await);
        }
        let auth = handshake::auth(&shared.keys, Side::Responder, &handshake_hash, Some(group));
        sender
            .send(&Message::Auth(Box::new(auth)))
            .await
            .map_err(|error| NetError::wire(&peer, error))?;
        Ok((sender, receiver, member, theirs.is_none()))
    };
    let (mut sender, receiver, member, newcomer) =
        within(shared.options.handshake_timeout, &peer, accept).await?;
    drop(handshaking);
    // Admitted, but one member holds only so many sessions: it hears why
    // and may come back (SPEC.md §17.6).
    let limit = shared.options.max_sessions_per_member;
    let Some(_slot) = shared.sessions_by_member.take(member, limit) else {
        let busy = NetError::Busy {
            peer,
            detail: format!("{member} holds {limit} sessions already"),
        };
        let busy = refuse(&mut sender, busy).await;
        // The peer has sent its frontier by now: closing on it unread
        // would reset the connection, and the reset could overtake the
        // refusal. Close this side's half, and read until the peer does.
        sender.shutdown().await;
        let mut receiver = receiver;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while receiver.recv(wire::MAX_MESSAGE).await.is_ok() {}
        })
        .await;
        return Err(busy);
    };
    info!(peer = %peer, %member, newcomer, "accepted");
    let moved = session::run(
        shared.clone(),
        sender,
        receiver,
        peer.clone(),
        member,
        Mode::Stay,
        shared.stopped(),
    )
    .await?;
    info!(peer = %peer, %member, pulled = moved.pulled, pushed = moved.pushed, "peer left");
    Ok(())
}

/// A newcomer's first copy: connects to `peer`, a member who serves,
/// proves the member `keys` are of, and makes the file `path` from what the
/// peer sends, exactly as [`Mesh::join`] does from a batch (SPEC.md
/// §17.5). With `group`, the peer must serve that group (the id an
/// invitation names, say); without, the newcomer takes the group the peer
/// serves. The peer serves only a member its roster names; the copy must
/// name the peer as a member too. On any failure once the file exists, it
/// is removed: a partial copy would leave the newcomer unable to join
/// again. The copy must end within [`NetOptions::sync_timeout`].
pub async fn join(
    path: impl AsRef<Path>,
    keys: LocalKeys,
    peer: SocketAddr,
    group: Option<GroupId>,
    options: NetOptions,
) -> Result<(Mesh, SyncReport), NetError> {
    let started = Instant::now();
    let path = path.as_ref().to_owned();
    let name = peer.to_string();
    let stream = connect(peer, options.connect_timeout).await?;
    // A newcomer holds no epoch secret yet: its first message has no ticket.
    let handshake = initiate(stream, &keys, &[], group, &name);
    let ((mut sender, receiver), member, theirs) =
        within(options.handshake_timeout, &name, handshake).await?;
    let Some(theirs) = theirs else {
        let error = NetError::Protocol {
            peer: name,
            detail: "a server that names no group".into(),
        };
        return Err(refuse(&mut sender, error).await);
    };
    if group.is_some_and(|group| group != theirs) {
        let error = NetError::ForeignGroup {
            peer: name,
            ours: group.unwrap_or(theirs),
            theirs: Some(theirs),
        };
        return Err(refuse(&mut sender, error).await);
    }
    info!(peer = %name, %member, group = %theirs, "connected to fetch a first copy");
    // A reader task, so that the newcomer pings on time while it waits.
    let (message_tx, mut messages) = tokio::sync::mpsc::channel(2);
    let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = tokio::spawn(session::read_messages(
        receiver,
        message_tx,
        options.idle_timeout,
        name.clone(),
        received.clone(),
        std::sync::Arc::default(),
    ));
    let mut copy = FirstCopy {
        path: path.clone(),
        peer: name.clone(),
        group: theirs,
        keys: Some(keys),
        mesh: None,
        carry: Vec::new(),
        pulled: 0,
        pulled_known: 0,
    };
    let fetched = copy
        .fetch(&mut sender, &mut messages, &options)
        .await
        .and_then(|()| match &copy.mesh {
            // The server is a member of the copy it gave.
            Some(mesh) => session::admits(mesh, member).map_err(|reason| NetError::NotAdmitted {
                peer: name.clone(),
                reason: format!("the server's own copy does not admit it: {reason}"),
            }),
            None => Err(NetError::Protocol {
                peer: name.clone(),
                detail: "the server sent no events".into(),
            }),
        });
    reader.abort();
    let mesh = match (fetched, copy.mesh.take()) {
        (Ok(()), Some(mesh)) => mesh,
        (result, made) => {
            if made.is_some() {
                drop(made);
                crate::mesh::remove_file_and_journal(&path);
            }
            let error = result
                .err()
                .unwrap_or_else(|| NetError::Internal("no copy".into()));
            return Err(refuse(&mut sender, error).await);
        }
    };
    let ingested = Message::Ingested {
        added: copy.pulled,
        known: copy.pulled_known,
    };
    let _ = send_within(&mut sender, &ingested, options.idle_timeout, &name).await;
    let _ = tokio::time::timeout(options.idle_timeout, sender.shutdown()).await;
    debug!(peer = %name, events = mesh.len(), "joined");
    Ok((
        mesh,
        SyncReport {
            peer,
            member,
            pulled: copy.pulled,
            pulled_known: copy.pulled_known,
            pushed: 0,
            pushed_added: 0,
            bytes_sent: sender.bytes,
            bytes_received: received.load(std::sync::atomic::Ordering::Relaxed),
            elapsed: started.elapsed(),
        },
    ))
}

/// A newcomer's copy as it arrives.
struct FirstCopy {
    path: std::path::PathBuf,
    peer: String,
    group: GroupId,
    /// Until the file is made.
    keys: Option<LocalKeys>,
    mesh: Option<Mesh>,
    /// Records left out so far, for the next part (SPEC.md §17.5).
    carry: Vec<Vec<u8>>,
    pulled: u64,
    pulled_known: u64,
}

impl FirstCopy {
    fn violation(&self, detail: &str) -> NetError {
        NetError::Protocol {
            peer: self.peer.clone(),
            detail: detail.to_string(),
        }
    }

    /// Asks for everything and takes the reply, part by part, pinging every
    /// ping interval so that the server does not take a long copy for a
    /// silent peer. A part being written is never cut short: the deadline
    /// is checked between messages, so the caller can remove the file.
    async fn fetch(
        &mut self,
        sender: &mut wire::Sender<tokio::net::tcp::OwnedWriteHalf>,
        messages: &mut tokio::sync::mpsc::Receiver<Result<Message, NetError>>,
        options: &NetOptions,
    ) -> Result<(), NetError> {
        let peer = self.peer.clone();
        let limit = options.idle_timeout;
        send_within(
            sender,
            &Message::Frontier(Frontier::default()),
            limit,
            &peer,
        )
        .await?;
        // Our empty reply to the server's request awaits its `Ingested`:
        // one request at a time, as in any session (SPEC.md §17.5).
        let mut unacknowledged = false;
        let mut ping = tokio::time::interval(options.ping_interval.max(Duration::from_millis(1)));
        ping.tick().await;
        let deadline = session::Deadline::after(options.sync_timeout);
        let mut reply = wire::ReplyCount::default();
        loop {
            deadline.check(&self.peer)?;
            let message = tokio::select! {
                message = messages.recv() => message,
                _ = ping.tick() => {
                    send_within(sender, &Message::Ping, limit, &peer).await?;
                    continue;
                }
                _ = deadline.reached() => {
                    deadline.check(&self.peer)?;
                    continue;
                }
            };
            let Some(message) = message else {
                return Err(NetError::Closed {
                    peer: self.peer.clone(),
                });
            };
            match message? {
                // The server asks too; a newcomer holds nothing to send.
                Message::Frontier(_) => {
                    if unacknowledged {
                        return Err(
                            self.violation("a request before its last reply was acknowledged")
                        );
                    }
                    let empty = Message::Records {
                        remaining: 0,
                        records: Vec::new(),
                    };
                    send_within(sender, &empty, limit, &peer).await?;
                    unacknowledged = true;
                }
                Message::Ingested { .. } if unacknowledged => unacknowledged = false,
                Message::Ingested { .. } => {
                    return Err(self.violation("an acknowledgement of nothing"));
                }
                Message::Records { remaining, records } => {
                    let progress = reply
                        .part(records.len(), remaining)
                        .map_err(|what| self.violation(what))?;
                    self.take(records).await?;
                    if let Some(report) = &options.progress {
                        report(progress);
                    }
                    if remaining == 0 {
                        self.pulled_known += std::mem::take(&mut self.carry).len() as u64;
                        return Ok(());
                    }
                }
                Message::Ping => {}
                Message::Refused { reason } => {
                    return Err(NetError::RefusedByPeer {
                        peer: self.peer.clone(),
                        reason,
                        admission: false,
                    });
                }
                Message::Auth(_) => return Err(self.violation("a second authentication")),
            }
        }
    }

    /// Makes the file from the first part, which holds the genesis, and
    /// ingests the others.
    async fn take(&mut self, records: Vec<Vec<u8>>) -> Result<(), NetError> {
        if records.is_empty() && self.carry.is_empty() {
            return Ok(());
        }
        let mut batch = std::mem::take(&mut self.carry);
        batch.extend(records);
        let count = batch.len();
        let task = match (self.mesh.take(), self.keys.take()) {
            (None, Some(keys)) => {
                let batch = Batch::new(self.group, batch);
                let path = self.path.clone();
                tokio::task::spawn_blocking(move || {
                    MeshOptions::new().join_leaving_out(path, keys, &batch).map(
                        |(joined, left_out)| {
                            let added = joined.len();
                            (joined, added, count - added - left_out.len(), left_out)
                        },
                    )
                })
            }
            (Some(mut joined), _) => tokio::task::spawn_blocking(move || {
                joined
                    .ingest_records_leaving_out(&batch)
                    .map(|(ingested, left_out)| (joined, ingested.added, ingested.known, left_out))
            }),
            (None, None) => return Err(NetError::Internal("no keys to join with".into())),
        };
        let (mesh, added, known, left_out) = task
            .await
            .map_err(|error| NetError::Internal(error.to_string()))?
            .map_err(|error| NetError::Ingest {
                peer: self.peer.clone(),
                source: Box::new(error),
            })?;
        self.mesh = Some(mesh);
        self.carry = left_out;
        self.pulled += added as u64;
        self.pulled_known += known as u64;
        Ok(())
    }
}
