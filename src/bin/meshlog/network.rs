//! The network commands: `serve`, `sync`, and `join --peer`, each a thin
//! shell over `meshlog::net` (SPEC.md §17) on a tokio runtime.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow};
use clap::Args;
use meshlog::net::{self, NetOptions, Node, Progress, SyncReport};
use meshlog::{GroupId, LocalKeys, Mesh};

use crate::{Verdict, load_keys, plural, print_lines, shown};

pub(crate) const SERVE_AFTER_HELP: &str = "\
Listens on ADDR for members of DB's mesh and keeps them in step: each
connection is authenticated (Noise XX with the member's X25519 key, and the
member's signature over the handshake, SPEC.md §17), checked against the
current roster, and then exchanges what either side lacks, as long as it
stays connected. A removed member is refused, and dropped the moment its
removal arrives. A newcomer that a rotation DB holds names fetches its first
copy here (`meshlog join NEW.redb --keys K --peer ADDR`).

With --peer, serve also connects out to those peers and gossips with them
(as `meshlog sync --watch` does), so servers can form a mesh of their own.

Runs until SIGINT or SIGTERM, then closes DB cleanly. The local member must
be enabled. Logs go to stderr (-q: warnings only; -v: more).

At most --max-connections at once (64). A member's first message carries a
ticket that proves it (SPEC.md §17.4); of those without one (newcomers,
strangers) a quarter at most are in their handshake at once (4 from one
address, or one IPv6 /64), so that strangers cannot hold what members need;
and 4 sessions of one member (SPEC.md §17.6).

Exit codes: 0 stopped by a signal, 1 refused (the local member is disabled),
2 could not run (no such file, the address is taken).

Examples:
  meshlog serve team.redb --keys founder.keys --listen 127.0.0.1:7447
  meshlog serve team.redb --keys founder.keys --listen 0.0.0.0:7447 --peer 10.0.0.2:7447";

pub(crate) const SYNC_AFTER_HELP: &str = "\
Connects to each PEER (a member running `meshlog serve`), proves the key
file's member, exchanges frontiers, pulls what DB lacks and pushes what the
peer lacks, and prints what moved. Every event pulled is verified before it
is written, exactly as `meshlog ingest` does; a peer that sends an invalid
event is cut off and nothing it sent that breaks a rule is written.

With --watch, sync stays connected and gossips: every event DB takes from
one peer is announced to the others, so a mesh of many peers converges
without anyone running a command. It reconnects after a failure and runs
until SIGINT or SIGTERM.

The local member must be enabled. A large pull in a terminal shows progress.
A sync without --watch asks once and gives up after 10 minutes, however
busy the peer. A server holds at most 4 sessions of one member: another is
refused as busy, and --watch tries again later.

Exit codes: 0 every peer synced, 1 a peer refused this member or sent
something invalid, 2 could not run (no such file, no connection).

Examples:
  meshlog sync alice.redb --keys alice.keys --peer 127.0.0.1:7447
  meshlog sync alice.redb --keys alice.keys --peer 10.0.0.1:7447 --peer 10.0.0.2:7447 --watch";

/// Arguments of `meshlog serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The meshlog file.
    db: PathBuf,
    /// The serving member's key file.
    #[arg(long, value_name = "FILE")]
    keys: PathBuf,
    /// The address to listen on (host:port).
    #[arg(long, value_name = "ADDR")]
    listen: String,
    /// Peers to connect out to and gossip with.
    #[arg(long, value_name = "ADDR")]
    peer: Vec<String>,
    /// Most connections at once.
    #[arg(long, value_name = "N", default_value_t = 64)]
    max_connections: usize,
    #[command(flatten)]
    copy: crate::CopyArgs,
}

/// Arguments of `meshlog sync`.
#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    /// The meshlog file.
    db: PathBuf,
    /// The syncing member's key file.
    #[arg(long, value_name = "FILE")]
    keys: PathBuf,
    /// A peer that serves (host:port); several may be given.
    #[arg(long, value_name = "ADDR", required = true)]
    peer: Vec<String>,
    /// Stay connected and gossip until stopped.
    #[arg(long)]
    watch: bool,
    #[command(flatten)]
    copy: crate::CopyArgs,
}

/// `host:port` as one socket address.
pub(crate) fn resolve_addr(text: &str) -> anyhow::Result<SocketAddr> {
    text.to_socket_addrs()
        .with_context(|| format!("cannot resolve {text:?} (expected host:port)"))?
        .next()
        .ok_or_else(|| anyhow!("{text:?} resolves to no address"))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Resolves when SIGINT or SIGTERM arrives.
async fn signalled() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// A progress bar for large pulls, made when the first large reply starts.
fn progress_options() -> NetOptions {
    let bar: Arc<Mutex<Option<indicatif::ProgressBar>>> = Arc::default();
    NetOptions::new().progress(move |progress: Progress| {
        let Ok(mut bar) = bar.lock() else { return };
        if bar.is_none() && progress.received < progress.total {
            *bar = crate::progress(progress.total);
        }
        if let Some(shown) = bar.as_ref() {
            shown.set_length(progress.total);
            shown.set_position(progress.received);
            if progress.received >= progress.total {
                shown.finish_and_clear();
                *bar = None;
            }
        }
    })
}

fn open_node(
    db: &std::path::Path,
    key_file: &std::path::Path,
    copy: crate::CopyArgs,
    options: NetOptions,
) -> anyhow::Result<Node> {
    let keys = load_keys(key_file)?;
    let mesh = crate::open_writer(db, key_file, keys, copy)?;
    Ok(Node::new(mesh, options)?)
}

/// Closes the node's mesh (a checkpoint) once every session has ended.
fn close(node: Node) -> anyhow::Result<()> {
    match node.into_mesh() {
        Ok(mesh) => Ok(mesh.close()?),
        // A session still holds it: dropping checkpoints too.
        Err(_) => Ok(()),
    }
}

/// `meshlog serve`.
pub(crate) fn serve(args: &ServeArgs) -> anyhow::Result<Verdict> {
    let listen = resolve_addr(&args.listen)?;
    let peers = args
        .peer
        .iter()
        .map(|peer| resolve_addr(peer))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut options = NetOptions::new();
    options.max_connections = args.max_connections;
    // A quarter for handshakes, as by default (16 of 64).
    options.max_handshakes = (args.max_connections / 4).max(1);
    let node = open_node(&args.db, &args.keys, args.copy, options)?;
    let runtime = runtime()?;
    let result: anyhow::Result<()> = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let bound = listener.local_addr()?;
        eprintln!("serving {} on {bound}", shown(&args.db));
        let stopper = node.clone();
        tokio::spawn(async move {
            signalled().await;
            stopper.stop();
        });
        for peer in peers {
            let node = node.clone();
            tokio::spawn(async move {
                if let Err(error) = net::watch(&node, peer).await {
                    tracing::warn!(%peer, %error, "stopped gossiping with the peer");
                }
            });
        }
        net::serve(&node, listener).await?;
        Ok(())
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    result?;
    close(node)?;
    eprintln!("stopped; {} closed", shown(&args.db));
    Ok(Verdict::Ok)
}

/// `meshlog sync`.
pub(crate) fn sync(args: &SyncArgs) -> anyhow::Result<Verdict> {
    let peers = args
        .peer
        .iter()
        .map(|peer| resolve_addr(peer))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let node = open_node(&args.db, &args.keys, args.copy, progress_options())?;
    let runtime = runtime()?;
    let outcome = runtime.block_on(async {
        if args.watch {
            let stopper = node.clone();
            tokio::spawn(async move {
                signalled().await;
                stopper.stop();
            });
            let mut watchers = tokio::task::JoinSet::new();
            for peer in peers {
                let node = node.clone();
                watchers.spawn(async move { net::watch(&node, peer).await });
            }
            let mut first_error = None;
            while let Some(joined) = watchers.join_next().await {
                if let Ok(Err(error)) = joined {
                    tracing::error!(%error, "stopped");
                    first_error.get_or_insert(error);
                }
            }
            return first_error.map_or(Ok(Vec::new()), Err);
        }
        // Every peer is tried, whatever the others did.
        let mut outcomes = Vec::new();
        for peer in peers {
            outcomes.push((peer, net::sync(&node, peer).await));
        }
        Ok(outcomes)
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    let outcomes = outcome?;
    let digest = node.with_mesh(|mesh| (mesh.digest(), mesh.len()))?;
    close(node)?;
    let mut lines: Vec<(&str, String)> = Vec::new();
    let mut first_error = None;
    for (peer, outcome) in outcomes {
        match outcome {
            Ok(report) => lines.push(("synced", report_line(&report))),
            Err(error) => {
                lines.push(("failed", format!("{peer}: {error}")));
                first_error.get_or_insert(error);
            }
        }
    }
    lines.push(("holds", format!("{} event{}", digest.1, plural(digest.1))));
    lines.push(("digest", digest.0.to_string()));
    print_lines(&lines);
    match first_error {
        // The exit code is the first failure's class; every line is out.
        Some(error) => Err(error.into()),
        None => Ok(Verdict::Ok),
    }
}

fn report_line(report: &SyncReport) -> String {
    format!(
        "{} (member {}): pulled {} new{}, pushed {} ({} new to it), {} bytes out, {} in, {:.2?}",
        report.peer,
        report.member,
        report.pulled,
        if report.pulled_known > 0 {
            format!(" ({} known)", report.pulled_known)
        } else {
            String::new()
        },
        report.pushed,
        report.pushed_added,
        report.bytes_sent,
        report.bytes_received,
        report.elapsed
    )
}

/// `meshlog join --peer`: a first copy over the network.
pub(crate) fn join(
    db: &std::path::Path,
    keys: LocalKeys,
    peer: &str,
    group: Option<GroupId>,
) -> anyhow::Result<(Mesh, String)> {
    let peer = resolve_addr(peer)?;
    let runtime = runtime()?;
    let (mesh, report) = runtime.block_on(net::join(db, keys, peer, group, progress_options()))?;
    Ok((mesh, report_line(&report)))
}

/// Sets up the logger on stderr: warnings with -q, info by default,
/// debug with -v, trace with -vv; `RUST_LOG` overrides.
pub(crate) fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("meshlog={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
