//! Convergence of ten peers over loopback after 1,000 writes (issue #12's
//! figure): ten copies of a mesh of ten members each write 100 app events
//! while apart; then three serve and gossip with each other, and seven
//! stay connected (`net::watch`) to one server each. Prints the time until
//! every copy has every event, and the records and bytes sent, against the
//! ideal of each event crossing each link of a spanning tree once (nine
//! crossings an event for ten peers).
//!
//! `cargo run --release --example net_converge`

use std::time::{Duration, Instant};

use meshlog::net::{self, NetOptions, Node};
use meshlog::{LocalKeys, Mesh, Role};

const PEERS: usize = 10;
const WRITES: usize = 1_000;

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut founder =
        Mesh::create(dir.path().join("p0.redb"), keys(0), "converge").expect("create");
    founder.set_enabled(true).expect("enable");
    for n in 1..PEERS {
        founder
            .add_member(keys(n).package(), Role::Member)
            .expect("add");
    }
    let all = founder.export_all();
    let mut meshes = vec![founder];
    for i in 1..PEERS {
        let mut mesh =
            Mesh::join(dir.path().join(format!("p{i}.redb")), keys(i), &all).expect("join");
        mesh.set_enabled(true).expect("enable");
        meshes.push(mesh);
    }
    let payload = [0x42u8; 64];
    let mut event_bytes = 0u64;
    let base_len = meshes[0].len();
    for mesh in &mut meshes {
        let kinds = ["note"; WRITES / PEERS];
        let hashes = mesh
            .append_apps(kinds.iter().map(|kind| (*kind, &payload[..])))
            .expect("append");
        for hash in hashes {
            event_bytes += mesh.event(hash).expect("written").to_record().len() as u64;
        }
    }
    // Events each copy lacks: the others' writes and enables.
    let total = base_len + (PEERS - 1) + WRITES;
    let nodes: Vec<Node> = meshes
        .into_iter()
        .map(|mesh| Node::new(mesh, NetOptions::new()).expect("node"))
        .collect();
    let mut listeners = Vec::new();
    for _ in 0..3 {
        listeners.push(
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind"),
        );
    }
    let addrs: Vec<_> = listeners
        .iter()
        .map(|l| l.local_addr().expect("address"))
        .collect();
    let started = Instant::now();
    for (i, listener) in listeners.into_iter().enumerate() {
        let node = nodes[i].clone();
        tokio::spawn(async move { net::serve(&node, listener).await });
    }
    // Servers 1 and 2 gossip with servers 0 and 1, and the seven others
    // each with one server: nine links, a spanning tree.
    for (i, node) in nodes.iter().enumerate().skip(1) {
        let peer = if i < 3 { addrs[i - 1] } else { addrs[i % 3] };
        let node = node.clone();
        tokio::spawn(async move { net::watch(&node, peer).await });
    }
    loop {
        let done = nodes
            .iter()
            .all(|node| node.with_mesh(|mesh| mesh.len()).expect("mesh") == total);
        if done {
            break;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let lens: Vec<usize> = nodes
                .iter()
                .map(|n| n.with_mesh(|m| m.len()).unwrap())
                .collect();
            panic!(
                "no convergence within 120 s: {lens:?} of {total}; {:?}",
                nodes.iter().map(Node::traffic).collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    let digests: Vec<_> = nodes
        .iter()
        .map(|node| node.with_mesh(|mesh| mesh.digest()).expect("mesh"))
        .collect();
    assert!(digests.iter().all(|d| *d == digests[0]), "one digest");
    let traffic = nodes
        .iter()
        .map(Node::traffic)
        .fold((0u64, 0u64), |sum, t| {
            (sum.0 + t.records_sent, sum.1 + t.bytes_sent)
        });
    // Each peer's own enable and writes must reach the nine others.
    let events = (WRITES + PEERS - 1) as u64;
    let ideal_records = events * (PEERS as u64 - 1);
    let ideal_bytes = (event_bytes + (PEERS as u64 - 1) * 150) * (PEERS as u64 - 1);
    println!("{PEERS} peers, {WRITES} writes while apart, spanning-tree links");
    println!("converged in {took:.2?} (every copy holds {total} events, one digest)");
    println!(
        "records sent: {} (ideal {ideal_records}: {:.2}x)",
        traffic.0,
        traffic.0 as f64 / ideal_records as f64
    );
    println!(
        "bytes sent: {} (ideal about {ideal_bytes}: {:.2}x; frames, frontiers and acknowledgements included)",
        traffic.1,
        traffic.1 as f64 / ideal_bytes as f64
    );
    for node in &nodes {
        node.stop();
    }
}

/// Keys of peer `n`, from fixed bytes, so that a copy can be handed to
/// each mesh.
fn keys(n: usize) -> LocalKeys {
    let n = n as u8;
    LocalKeys::from_secret_bytes(&[n + 1; 32], &[n + 101; 32])
}
