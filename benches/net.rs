//! A full copy over the network (SPEC.md §17): a newcomer's `net::join` of
//! the 100k-event mesh of `open_verify` from a member serving it on
//! loopback (Noise handshake, authentication, the export, every record
//! sent in parts, verified and written), against its floor in the same
//! run: `Mesh::open_read_only` of the same file (every event verified),
//! and that open's own floor, the signatures alone.

mod common;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use meshlog::Mesh;
use meshlog::net::{self, NetOptions, Node};

const EVENTS: usize = 100_000;
const AUTHORS: u32 = 20;

fn full_copy(c: &mut Criterion) {
    let feeds = common::feeds(EVENTS, AUTHORS);
    let dir = common::scratch_dir();
    let served = common::copy_of(&feeds.full, &dir, "served.redb");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = Node::new(
        Mesh::open(&served, common::keys(0)).expect("verifies"),
        NetOptions::new(),
    )
    .expect("node");
    let addr = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let node = server.clone();
        tokio::spawn(async move { net::serve(&node, listener).await });
        addr
    });
    let mut group = c.benchmark_group("net");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(EVENTS as u64));
    let floor = {
        let mesh = Mesh::open_read_only(&feeds.full).expect("verifies");
        common::SignatureFloor::new(mesh.log().map(|entry| entry.event), AUTHORS)
    };
    group.bench_function("signature_floor", |b| b.iter(|| floor.verify()));
    group.bench_function("open_verify_floor", |b| {
        b.iter(|| Mesh::open_read_only(&feeds.full).expect("verifies"))
    });
    let copies = common::scratch_dir();
    let mut n = 0u32;
    let mut bytes = 0u64;
    group.bench_function("full_copy", |b| {
        b.iter_batched(
            || {
                n += 1;
                copies.path().join(format!("copy-{n}.redb"))
            },
            |path| {
                let (mesh, report) = runtime
                    .block_on(net::join(
                        &path,
                        common::keys(1),
                        addr,
                        None,
                        NetOptions::new(),
                    ))
                    .expect("joins");
                assert_eq!(mesh.len(), EVENTS);
                bytes = report.bytes_received;
                (mesh, path)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    println!("full copy: {bytes} bytes received for {EVENTS} events");
    server.stop();
}

criterion_group!(benches, full_copy);
criterion_main!(benches);
