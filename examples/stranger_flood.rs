//! Members' syncs while strangers flood a server (issue 23 §6's figure):
//! a server on loopback, a member that syncs with it once after each of the
//! server's writes, first in quiet, then while 1,000 strangers from 256
//! loopback addresses (127.0.2.0 on; Linux's loopback takes any 127/8
//! address) hold connections: a third silent, a third stalling after a
//! bare message 1, a third sending a malformed first message, each
//! connecting again a second after the server closes it. The server, the
//! strangers and the member run on runtimes of their own. Prints how many
//! syncs succeeded and their p50 and p99, quiet and flooded.
//!
//! `cargo run --release --example stranger_flood [syncs]`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use meshlog::net::{self, NetOptions, Node};
use meshlog::{LocalKeys, Mesh, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const STRANGERS: usize = 1_000;
const ADDRESSES: usize = 256;

fn main() {
    let syncs: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().expect("temporary folder");
    let member_keys = LocalKeys::generate();
    let mut founder = Mesh::create(
        dir.path().join("server.redb"),
        LocalKeys::generate(),
        "flood",
    )
    .expect("create");
    founder.set_enabled(true).expect("enable");
    founder
        .add_member(member_keys.package(), Role::Member)
        .expect("add");
    let mut copy = Mesh::join(
        dir.path().join("member.redb"),
        member_keys,
        &founder.export_all(),
    )
    .expect("join");
    copy.set_enabled(true).expect("enable");
    let server = Node::new(founder, NetOptions::new()).expect("server node");
    let member = Node::new(copy, NetOptions::new()).expect("member node");

    let server_runtime = runtime(2);
    let listener = server_runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("listen");
    let addr = listener.local_addr().expect("address");
    {
        let server = server.clone();
        server_runtime.spawn(async move { net::serve(&server, listener).await });
    }
    let member_runtime = runtime(1);
    let quiet = member_runtime.block_on(timed_syncs(&member, &server, addr, syncs));

    let flood_runtime = runtime(1);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let strangers = flood_runtime.spawn(flood(addr, stopped));
    std::thread::sleep(Duration::from_secs(3));
    let flooded = member_runtime.block_on(timed_syncs(&member, &server, addr, syncs));
    stop.send_replace(true);
    let connections = flood_runtime.block_on(strangers).expect("strangers");
    server.stop();

    report("quiet", &quiet, syncs);
    report("flooded", &flooded, syncs);
    println!("stranger connections made: {connections}");
    let ratio = p(&flooded.1, 99).as_secs_f64() / p(&quiet.1, 99).as_secs_f64();
    println!("flooded p99 / quiet p99: {ratio:.2}");
}

fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn timed_syncs(
    member: &Node,
    server: &Node,
    addr: SocketAddr,
    runs: usize,
) -> (usize, Vec<Duration>) {
    let mut times = Vec::with_capacity(runs);
    let mut served = 0;
    for round in 0..runs {
        server
            .with_mesh(|mesh| mesh.append_app("note", &round.to_be_bytes()))
            .expect("mesh")
            .expect("write");
        let started = Instant::now();
        let synced = tokio::time::timeout(Duration::from_secs(15), net::sync(member, addr)).await;
        times.push(started.elapsed());
        if matches!(synced, Ok(Ok(_))) {
            served += 1;
        }
    }
    times.sort();
    (served, times)
}

fn p(times: &[Duration], percent: usize) -> Duration {
    times[(times.len() * percent).div_ceil(100).saturating_sub(1)]
}

fn report(name: &str, (served, times): &(usize, Vec<Duration>), runs: usize) {
    println!(
        "{name}: served {served}/{runs}, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        p(times, 50).as_secs_f64() * 1e3,
        p(times, 99).as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

/// The strangers, until `stop`; returns the connections they made.
async fn flood(addr: SocketAddr, stop: tokio::sync::watch::Receiver<bool>) -> u64 {
    let mut strangers = tokio::task::JoinSet::new();
    for index in 0..STRANGERS {
        let host = index % ADDRESSES;
        let source = [127, 0, 2 + (host / 256) as u8, (host % 256) as u8];
        let mut stop = stop.clone();
        strangers.spawn(async move {
            let mut connections = 0u64;
            while !*stop.borrow() {
                let Ok(socket) = tokio::net::TcpSocket::new_v4() else {
                    break;
                };
                if socket.bind(SocketAddr::from((source, 0))).is_err() {
                    break;
                }
                let connecting = tokio::time::timeout(Duration::from_secs(2), socket.connect(addr));
                if let Ok(Ok(mut stream)) = connecting.await {
                    connections += 1;
                    let first = match index % 3 {
                        0 => Vec::new(),
                        1 => [[0u8, 32].as_slice(), &rand::random::<[u8; 32]>()].concat(),
                        _ => vec![0, 5, 1, 2, 3, 4, 5],
                    };
                    let _ = stream.write_all(&first).await;
                    let mut sink = [0u8; 256];
                    let held =
                        async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} };
                    tokio::select! {
                        _ = tokio::time::timeout(Duration::from_secs(10), held) => {}
                        _ = stop.changed() => break,
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => break,
                }
            }
            connections
        });
    }
    let mut total = 0;
    while let Some(made) = strangers.join_next().await {
        total += made.unwrap_or(0);
    }
    total
}
