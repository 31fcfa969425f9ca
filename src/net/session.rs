//! One connection after the handshake (SPEC.md §17.5): each side asks with
//! its frontier and replies to the other's with what it lacks.
//!
//! Three tasks per connection, so that neither side's writes can stall its
//! reads (two peers sending each other large replies would otherwise wait
//! on each other for ever): a reader that decrypts messages into a small
//! channel, a writer that sends messages and replies in order, and the
//! session itself, which ingests and decides.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use super::NetError;
use super::node::{Counters, Shared};
use super::wire::{
    MAX_MESSAGE, Message, REPLY_PART_BYTES, Receiver, ReplyCount, Sender, WireError,
};
use crate::frontier::Frontier;
use crate::ids::{EventHash, MemberId};
use crate::mesh::Mesh;

/// How long a session lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Until each side has what the other held when they met.
    Once,
    /// Until the peer leaves or the node stops, announcing every change.
    Stay,
}

/// What moved over one connection.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Moved {
    pub(crate) pulled: u64,
    pub(crate) pulled_known: u64,
    pub(crate) pushed: u64,
    pub(crate) pushed_added: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) bytes_received: u64,
}

/// What the session asks the writer to send.
enum Job {
    Send(Message),
    /// A reply to the peer's frontier: what it lacks, made when it is sent.
    Reply(Frontier),
}

/// What the writer tells the session as it goes.
#[derive(Default)]
struct Written {
    /// Replies whose last part is written: only those may be acknowledged.
    replies: AtomicU64,
    /// Set when the session ends for the peer's sake (a removal, say):
    /// replies still queued are not made.
    closing: AtomicBool,
}

/// The writer's task: sends jobs in order until the channel closes.
async fn write_jobs<W: AsyncWrite + Unpin + Send>(
    mut sender: Sender<W>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    shared: Arc<Shared>,
    written: Arc<Written>,
) -> Result<(u64, u64), WireError> {
    let mut pushed = 0u64;
    let counters = &shared.counters;
    let mut counted = 0u64;
    // A peer that stops reading stalls a write: it gets as long as a peer
    // that stops writing (SPEC.md §17.6).
    let limit = shared.options.idle_timeout;
    let stalled = || {
        WireError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the peer took nothing for too long",
        ))
    };
    while let Some(job) = jobs.recv().await {
        match job {
            Job::Send(message) => tokio::time::timeout(limit, sender.send(&message))
                .await
                .map_err(|_| stalled())??,
            Job::Reply(_) if written.closing.load(Ordering::Acquire) => {}
            Job::Reply(frontier) => {
                let internal = |error: NetError| WireError::Malformed(error.to_string());
                // The reply is what the peer lacks as of its first part
                // (SPEC.md §17.5); each part's records are copied only as
                // the part is made, and the mesh is free between parts.
                let positions: Arc<[usize]> = shared
                    .blocking(move |mesh| mesh.export_positions(&frontier))
                    .await
                    .map_err(internal)?
                    .into();
                let total = positions.len();
                let mut sent = 0usize;
                loop {
                    if written.closing.load(Ordering::Acquire) {
                        break;
                    }
                    let part = positions.clone();
                    let records = shared
                        .blocking(move |mesh| {
                            mesh.export_part(part.get(sent..).unwrap_or_default(), REPLY_PART_BYTES)
                        })
                        .await
                        .map_err(internal)?
                        .ok_or_else(|| WireError::Malformed("an export lost an event".into()))?;
                    let count = records.len();
                    let remaining = total.saturating_sub(sent + count) as u64;
                    let message = Message::Records { remaining, records };
                    if remaining == 0 {
                        // Counted before it is sent: the peer may take the
                        // last part and acknowledge it before this task
                        // runs again, and its `Ingested` must then find the
                        // reply written (a send that fails ends the
                        // connection anyway).
                        written.replies.fetch_add(1, Ordering::AcqRel);
                    }
                    tokio::time::timeout(limit, sender.send(&message))
                        .await
                        .map_err(|_| stalled())??;
                    sent += count;
                    pushed += count as u64;
                    Counters::add(&counters.records_sent, count as u64);
                    Counters::add(&counters.bytes_sent, sender.bytes - counted);
                    counted = sender.bytes;
                    if remaining == 0 {
                        break;
                    }
                }
            }
        }
        Counters::add(&counters.bytes_sent, sender.bytes - counted);
        counted = sender.bytes;
    }
    let _ = tokio::time::timeout(limit, sender.shutdown()).await;
    Ok((pushed, sender.bytes))
}

/// The reader's task: messages into `messages`, each read within `timeout`.
pub(crate) async fn read_messages<R: AsyncRead + Unpin + Send>(
    mut receiver: Receiver<R>,
    messages: mpsc::Sender<Result<Message, NetError>>,
    timeout: Duration,
    peer: String,
    received: Arc<AtomicU64>,
    counters: Arc<Counters>,
) {
    let mut counted = 0u64;
    loop {
        let read = tokio::time::timeout(timeout, receiver.recv(MAX_MESSAGE)).await;
        let message = match read {
            Ok(Ok(message)) => Ok(message),
            Ok(Err(WireError::Closed)) => Err(NetError::Closed { peer: peer.clone() }),
            Ok(Err(error)) => Err(NetError::wire(&peer, error)),
            Err(_) => Err(NetError::Timeout {
                peer: peer.clone(),
                waited: timeout,
            }),
        };
        received.store(receiver.bytes, Ordering::Relaxed);
        Counters::add(&counters.bytes_received, receiver.bytes - counted);
        counted = receiver.bytes;
        let stop = message.is_err();
        if messages.send(message).await.is_err() || stop {
            return;
        }
    }
}

/// Whether `frontier` names a head `mesh` does not hold.
fn lacks_any(mesh: &Mesh, frontier: &Frontier) -> bool {
    frontier
        .head_hashes()
        .any(|hash| mesh.event(hash).is_none())
}

/// Whether `member` may sync with this mesh (SPEC.md §17.4): a member of
/// `R*`. (While a merge is needed, the writer epoch's members are all in
/// `R*` by definition, SPEC.md §5.5.)
pub(crate) fn admits(mesh: &Mesh, member: MemberId) -> Result<(), String> {
    if mesh.roster().contains(member) {
        return Ok(());
    }
    let was_member = mesh
        .epochs()
        .iter()
        .any(|epoch| epoch.roster.contains(member));
    Err(if was_member {
        format!("{member} is not in the current epoch's roster (removed)")
    } else {
        format!("{member} is not a member of this mesh")
    })
}

/// The session state of one connection.
struct Session {
    shared: Arc<Shared>,
    peer: String,
    member: MemberId,
    mode: Mode,
    jobs: mpsc::UnboundedSender<Job>,
    /// Our request (a frontier sent) whose reply has not ended.
    asking: bool,
    /// The peer announced heads we lack while we were asking: ask again
    /// after the reply, if its frontier still names one.
    ask_again: bool,
    /// Our mesh changed while we were asking: announce after the reply,
    /// if our frontier is still news to the peer.
    announce: bool,
    /// The peer's latest frontier.
    theirs: Option<Frontier>,
    /// The frontier we sent last.
    sent: Option<Frontier>,
    /// Replies we sent that the peer has not acknowledged.
    unacknowledged: u64,
    /// Replies the peer has acknowledged.
    acknowledged: u64,
    /// The counts of the reply being received.
    reply: ReplyCount,
    reply_added: u64,
    reply_known: u64,
    /// Records of the reply being received that were left out (SPEC.md
    /// §6.4): handed on to its next part, where an event may name them.
    carry: Vec<Vec<u8>>,
    moved: Moved,
}

impl Session {
    fn send(&self, message: Message) -> Result<(), NetError> {
        self.jobs
            .send(Job::Send(message))
            .map_err(|_| NetError::Closed {
                peer: self.peer.clone(),
            })
    }

    /// Runs `f` on the mesh off the async threads.
    async fn with_mesh<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Mesh) -> T + Send + 'static,
    ) -> Result<T, NetError> {
        self.shared.blocking(f).await
    }

    /// Sends our frontier as a request, unless one is out.
    async fn ask(&mut self) -> Result<(), NetError> {
        // A one-shot asks once: its reply, made as it is sent, holds what
        // the peer held when they met, and a busy peer cannot keep it going
        // with news (SPEC.md §17.5).
        if self.mode == Mode::Once && self.sent.is_some() {
            return Ok(());
        }
        if self.asking {
            self.ask_again = true;
            return Ok(());
        }
        let frontier = self.with_mesh(|mesh| mesh.frontier()).await?;
        self.send_frontier(frontier)
    }

    /// Sends `frontier`: a request for what we lack, and an announcement of
    /// what we hold (SPEC.md §17.5).
    fn send_frontier(&mut self, frontier: Frontier) -> Result<(), NetError> {
        self.asking = true;
        self.ask_again = false;
        self.announce = false;
        self.sent = Some(frontier.clone());
        self.send(Message::Frontier(frontier))
    }

    /// Whether `frontier` is news to the peer: not what we sent last, nor
    /// what the peer holds.
    fn is_news(&self, frontier: &Frontier) -> bool {
        self.sent.as_ref() != Some(frontier) && self.theirs.as_ref() != Some(frontier)
    }

    async fn on_frontier(&mut self, frontier: Frontier) -> Result<(), NetError> {
        // An honest peer asks again only once our last reply has ended and
        // it has said so: one export at a time per connection, whatever a
        // member sends.
        if self.unacknowledged > 0 {
            return Err(self.violation("a request before its last reply was acknowledged"));
        }
        self.jobs
            .send(Job::Reply(frontier.clone()))
            .map_err(|_| NetError::Closed {
                peer: self.peer.clone(),
            })?;
        self.unacknowledged += 1;
        let probe = frontier.clone();
        let lacking = self.with_mesh(move |mesh| lacks_any(mesh, &probe)).await?;
        self.theirs = Some(frontier);
        if lacking {
            self.ask().await?;
        }
        Ok(())
    }

    async fn on_records(&mut self, remaining: u64, records: Vec<Vec<u8>>) -> Result<(), NetError> {
        if !self.asking {
            return Err(self.violation("records it was not asked for"));
        }
        let progress = self
            .reply
            .part(records.len(), remaining)
            .map_err(|what| self.violation(what))?;
        if !records.is_empty() {
            let mut batch = std::mem::take(&mut self.carry);
            batch.extend(records);
            let (ingested, left_out) = self
                .with_mesh(move |mesh| mesh.ingest_records_leaving_out(&batch))
                .await?
                .map_err(|error| NetError::Ingest {
                    peer: self.peer.clone(),
                    source: Box::new(error),
                })?;
            self.carry = left_out;
            self.reply_added += ingested.added as u64;
            Counters::add(&self.shared.counters.records_added, ingested.added as u64);
            self.reply_known += ingested.known as u64;
        }
        if let Some(report) = &self.shared.options.progress {
            report(progress);
        }
        if remaining == 0 {
            self.reply_known += std::mem::take(&mut self.carry).len() as u64;
            self.send(Message::Ingested {
                added: self.reply_added,
                known: self.reply_known,
            })?;
            self.moved.pulled += self.reply_added;
            self.moved.pulled_known += self.reply_known;
            self.reply_added = 0;
            self.reply_known = 0;
            self.asking = false;
            let ask_again = std::mem::take(&mut self.ask_again);
            let announce = std::mem::take(&mut self.announce);
            if ask_again || announce {
                let theirs = self.theirs.clone();
                let (ours, lacking) = self
                    .with_mesh(move |mesh| {
                        let lacking = theirs.is_some_and(|theirs| lacks_any(mesh, &theirs));
                        (mesh.frontier(), lacking)
                    })
                    .await?;
                if (ask_again && lacking) || (announce && self.is_news(&ours)) {
                    self.send_frontier(ours)?;
                }
            }
        }
        Ok(())
    }

    /// Sends our frontier if it changed since we sent one, and drops a
    /// peer that is no longer admitted.
    async fn on_change(&mut self) -> Result<(), NetError> {
        let member = self.member;
        let announce = self.mode == Mode::Stay;
        let (frontier, admitted, enabled) = self
            .with_mesh(move |mesh| (mesh.frontier(), admits(mesh, member), mesh.is_enabled()))
            .await?;
        if let Err(reason) = admitted {
            // `run` tells the peer why.
            return Err(NetError::NotAdmitted {
                peer: self.peer.clone(),
                reason,
            });
        }
        if !enabled {
            return Err(NetError::Mesh(Box::new(crate::Error::Disabled {
                member: self.shared.keys.member_id(),
            })));
        }
        if !announce || !self.is_news(&frontier) {
            return Ok(());
        }
        if self.asking {
            // One request at a time: announce once the reply has ended.
            self.announce = true;
            return Ok(());
        }
        self.send_frontier(frontier)
    }

    fn violation(&self, what: &'static str) -> NetError {
        NetError::Protocol {
            peer: self.peer.clone(),
            detail: what.to_string(),
        }
    }

    /// Whether a [`Mode::Once`] initiator is done: its request answered,
    /// and its replies taken.
    fn settled(&self) -> bool {
        !self.asking && !self.ask_again && self.unacknowledged == 0 && self.theirs.is_some()
    }
}

/// Runs a session with an authenticated `member` until it ends.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run<R, W>(
    shared: Arc<Shared>,
    sender: Sender<W>,
    receiver: Receiver<R>,
    peer: String,
    member: MemberId,
    mode: Mode,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Moved, NetError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let options = shared.options.clone();
    let (jobs, job_queue) = mpsc::unbounded_channel();
    let written = Arc::new(Written::default());
    let mut writer = tokio::spawn(write_jobs(
        sender,
        job_queue,
        shared.clone(),
        written.clone(),
    ));
    let (message_tx, mut messages) = mpsc::channel(2);
    let received = Arc::new(AtomicU64::new(0));
    let reader = tokio::spawn(read_messages(
        receiver,
        message_tx,
        options.idle_timeout,
        peer.clone(),
        received.clone(),
        shared.counters.clone(),
    ));
    let mut changes = shared.subscribe();
    let mut session = Session {
        shared,
        peer: peer.clone(),
        member,
        mode,
        jobs,
        asking: false,
        ask_again: false,
        announce: false,
        theirs: None,
        sent: None,
        unacknowledged: 0,
        acknowledged: 0,
        reply: ReplyCount::default(),
        reply_added: 0,
        reply_known: 0,
        carry: Vec::new(),
        moved: Moved::default(),
    };
    let mut ping = tokio::time::interval(options.ping_interval.max(Duration::from_millis(1)));
    ping.tick().await;
    let once = mode == Mode::Once;
    let deadline = Deadline::after(options.sync_timeout);
    let outcome: Result<(), NetError> = async {
        session.ask().await?;
        loop {
            if session.mode == Mode::Once && session.settled() {
                return Ok(());
            }
            if once {
                deadline.check(&session.peer)?;
            }
            tokio::select! {
                message = messages.recv() => {
                    let Some(message) = message else {
                        return Err(NetError::Closed { peer: session.peer.clone() });
                    };
                    match message? {
                        Message::Frontier(frontier) => session.on_frontier(frontier).await?,
                        Message::Records { remaining, records } => {
                            session.on_records(remaining, records).await?;
                        }
                        Message::Ingested { added, .. } => {
                            // Only a reply whose last part is written may be
                            // acknowledged (SPEC.md §17.5).
                            let acknowledged = session.acknowledged + 1;
                            if session.unacknowledged == 0
                                || acknowledged > written.replies.load(Ordering::Acquire)
                            {
                                return Err(session.violation("an acknowledgement of nothing"));
                            }
                            session.acknowledged = acknowledged;
                            session.unacknowledged -= 1;
                            session.moved.pushed_added =
                                session.moved.pushed_added.saturating_add(added);
                        }
                        Message::Ping => {}
                        Message::Refused { reason } => {
                            return Err(NetError::RefusedByPeer {
                                peer: session.peer.clone(),
                                reason,
                                admission: false,
                            });
                        }
                        Message::Auth(_) => return Err(session.violation("a second authentication")),
                    }
                }
                changed = changes.changed() => {
                    if changed.is_ok() {
                        session.on_change().await?;
                    }
                }
                _ = ping.tick() => session.send(Message::Ping)?,
                _ = deadline.reached(), if once => deadline.check(&session.peer)?,
                // A stop made before this session subscribed counts too.
                _ = stopped(&mut stop) => return Ok(()),
            }
        }
    }
    .await;
    // A refusal says why before the connection closes.
    if let Err(error) = &outcome
        && let Some(reason) = error.reason_for_peer()
    {
        // Nothing more is exported to a peer being refused.
        written.closing.store(true, Ordering::Release);
        let _ = session.send(Message::Refused { reason });
    }
    let mut moved = session.moved;
    drop(session);
    if let Ok(Ok(Ok((pushed, sent)))) =
        tokio::time::timeout(options.idle_timeout, &mut writer).await
    {
        moved.pushed = pushed;
        moved.bytes_sent = sent;
    }
    writer.abort();
    reader.abort();
    moved.bytes_received = received.load(Ordering::Relaxed);
    match outcome {
        // A peer that leaves after a settled exchange ends a served session.
        Err(NetError::Closed { .. }) if mode == Mode::Stay => Ok(moved),
        Err(error) => Err(error),
        Ok(()) => Ok(moved),
    }
}

/// The hashes a frontier names, for [`lacks_any`].
impl Frontier {
    pub(crate) fn head_hashes(&self) -> impl Iterator<Item = EventHash> + '_ {
        self.heads_iter().map(|(_, hash)| hash)
    }
}

/// When a one-shot exchange must have ended (SPEC.md §17.6).
pub(crate) struct Deadline {
    at: tokio::time::Instant,
    limit: Duration,
}

impl Deadline {
    pub(crate) fn after(limit: Duration) -> Deadline {
        Deadline {
            at: tokio::time::Instant::now() + limit,
            limit,
        }
    }

    /// A timeout once the deadline has passed. Checked each turn of a
    /// loop as well as waited for: with messages always ready, `select!`
    /// might not pick [`Deadline::reached`] for a while.
    pub(crate) fn check(&self, peer: &str) -> Result<(), NetError> {
        if tokio::time::Instant::now() < self.at {
            return Ok(());
        }
        Err(NetError::Timeout {
            peer: peer.to_string(),
            waited: self.limit,
        })
    }

    /// Resolves at the deadline.
    pub(crate) async fn reached(&self) {
        tokio::time::sleep_until(self.at).await;
    }
}

/// Resolves once the node is stopped, even if it was before the call.
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await.map(|_| ());
}
