//! The network protocol: the Noise layer against the cacophony vector,
//! SPEC.md §17's vectors, the wire's limits, and sessions over loopback
//! between honest, foreign and hostile peers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use snow::StatelessTransportState;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::handshake::{self, Opening, Side};
use super::ticket::{self, TicketKey};
use super::wire::{self, MAX_AUTH_MESSAGE, MAX_MESSAGE, Message, Receiver, Sender, WireError};
use super::{NetError, NetOptions, Node, noise};
use crate::error::ErrorClass;
use crate::event::SignedEvent;
use crate::frontier::Frontier;
use crate::graph::Role;
use crate::ids::GroupId;
use crate::keys::LocalKeys;
use crate::labels;
use crate::mesh::Mesh;

fn hex(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap()
}

/// The Noise layer alone, on meshlog's resolver: the cacophony suite's
/// `Noise_XX_25519_ChaChaPoly_SHA256` vector, byte for byte.
#[test]
fn noise_matches_the_cacophony_vector() {
    let prologue = hex("4a6f686e2047616c74");
    let init_static = hex("e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1");
    let init_ephemeral = hex("893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a");
    let resp_static = hex("4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893");
    let resp_ephemeral = hex("bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b");
    let messages = [
        (
            "4c756477696720766f6e204d69736573",
            "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444c756477696720766f6e204d69736573",
        ),
        (
            "4d757272617920526f746862617264",
            "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f14480884381cbad1f276e038c48378ffce2b65285e08d6b68aaa3629a5a8639392490e5b9bd5269c2f1e4f488ed8831161f19b7815528f8982ffe09be9b5c412f8a0db50f8814c7194e83f23dbd8d162c9326ad",
        ),
        (
            "462e20412e20486179656b",
            "c7195ffacac1307ff99046f219750fc47693e23c3cb08b89c2af808b444850a80ae475b9df0f169ae80a89be0865b57f58c9fea0d4ec82a286427402f113e4b6ae769a1d95941d49b25030",
        ),
        (
            "4361726c204d656e676572",
            "96763ed773f8e47bb3712f0e29b3060ffc956ffc146cee53d5e1df",
        ),
        (
            "4a65616e2d426170746973746520536179",
            "3e40f15f6f3a46ae446b253bf8b1d9ffb6ed9b174d272328ff91a7e2e5c79c07f5",
        ),
        (
            "457567656e2042f6686d20766f6e2042617765726b",
            "eb3f3515110702e047a6c9da4478b6ead94873c11c0f2d710ddb3f09fce024b3a58502ae3f",
        ),
    ];
    let mut initiator = noise::builder()
        .prologue(&prologue)
        .unwrap()
        .local_private_key(&init_static)
        .unwrap()
        .fixed_ephemeral_key_for_testing_only(&init_ephemeral)
        .build_initiator()
        .unwrap();
    let mut responder = noise::builder()
        .prologue(&prologue)
        .unwrap()
        .local_private_key(&resp_static)
        .unwrap()
        .fixed_ephemeral_key_for_testing_only(&resp_ephemeral)
        .build_responder()
        .unwrap();
    let plains: Vec<Vec<u8>> = messages
        .iter()
        .take(3)
        .map(|(plain, _)| hex(plain))
        .collect();
    let plains: Vec<&[u8]> = plains.iter().map(Vec::as_slice).collect();
    let sent = wire::handshake_in_memory(&mut initiator, &mut responder, &plains);
    for (index, (sealed, (_, expected))) in sent.iter().zip(&messages).enumerate() {
        assert_eq!(hex::encode(sealed), *expected, "handshake message {index}");
    }
    let mut buffer = vec![0u8; 65_535];
    let mut payload = vec![0u8; 65_535];
    assert_eq!(
        hex::encode(initiator.get_handshake_hash()),
        "c8e5f64e846193be2a834104c2a009868d6c9f3bd3c186299888b488b2f1f58e"
    );
    let mut initiator = initiator.into_transport_mode().unwrap();
    let mut responder = responder.into_transport_mode().unwrap();
    for (index, (plain, sealed)) in messages.iter().enumerate().skip(3) {
        let (writer, reader) = if index % 2 == 0 {
            (&mut initiator, &mut responder)
        } else {
            (&mut responder, &mut initiator)
        };
        let len = writer.write_message(&hex(plain), &mut buffer).unwrap();
        assert_eq!(
            hex::encode(&buffer[..len]),
            *sealed,
            "transport message {index}"
        );
        let read = reader.read_message(&buffer[..len], &mut payload).unwrap();
        assert_eq!(hex::encode(&payload[..read]), *plain);
    }
}

/// A low-order public key gives an all-zero shared secret: refused.
#[test]
fn a_non_contributory_key_is_refused() {
    let keys = LocalKeys::from_secret_bytes(&[1; 32], &[101; 32]);
    let mut initiator = noise::builder()
        .local_private_key(&keys.dh_secret().to_bytes())
        .unwrap()
        .build_initiator()
        .unwrap();
    let mut responder = noise::builder()
        .local_private_key(&[7; 32])
        .unwrap()
        .build_responder()
        .unwrap();
    let mut buffer = vec![0u8; 65_535];
    let mut payload = vec![0u8; 65_535];
    let len = initiator.write_message(&[], &mut buffer).unwrap();
    // The initiator's ephemeral replaced by the identity point (u = 0).
    buffer[..32].fill(0);
    assert!(responder.read_message(&buffer[..len], &mut payload).is_ok());
    // The responder's `ee` with u = 0 is all zero: its message fails.
    assert!(matches!(
        responder.write_message(&[], &mut buffer),
        Err(snow::Error::Dh)
    ));
}

fn spec_keys(seed: u8) -> LocalKeys {
    LocalKeys::from_secret_bytes(&[seed; 32], &[seed.wrapping_add(100); 32])
}

/// The ticket key of SPEC.md §17.7's vectors: of the epoch secret of 32
/// bytes of `0x5e`.
fn spec_ticket_key() -> TicketKey {
    TicketKey::derive(&crate::envelope::EpochSecret::from_bytes_for_test(
        [0x5e; 32],
    ))
}

/// One value of [`spec_vectors`].
fn vector(name: &str) -> String {
    spec_vectors()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, value)| value)
        .unwrap_or_else(|| panic!("no vector {name}"))
}

/// The values of SPEC.md §17's vectors, computed with snow directly.
fn spec_vectors() -> Vec<(String, String)> {
    let (founder, admin) = (spec_keys(1), spec_keys(2));
    let group = GroupId::from_bytes([0x47; 32]);
    let mut out = Vec::new();
    let mut push = |name: &str, value: String| out.push((name.to_owned(), value));
    let build = |keys: &LocalKeys, ephemeral: &[u8; 32], initiator: bool| {
        let secret = keys.dh_secret().to_bytes();
        let builder = noise::builder()
            .prologue(labels::NET_PROLOGUE)
            .unwrap()
            .local_private_key(&secret)
            .unwrap()
            .fixed_ephemeral_key_for_testing_only(ephemeral);
        if initiator {
            builder.build_initiator().unwrap()
        } else {
            builder.build_responder().unwrap()
        }
    };
    let mut initiator = build(&founder, &[0x11; 32], true);
    let mut responder = build(&admin, &[0x22; 32], false);
    let sent = wire::handshake_in_memory(&mut initiator, &mut responder, &[&[], &[], &[]]);
    for (index, message) in sent.iter().enumerate() {
        push(&format!("net.message{}", index + 1), hex::encode(message));
    }
    // The ticket, computed from its definition rather than by the code
    // under test: derive_key, then keyed hashes.
    let key = blake3::derive_key("meshlog v3 net ticket", &[0x5e; 32]);
    push("net.ticket.key", hex::encode(key));
    let hint = blake3::keyed_hash(&key, &[0x00]);
    push("net.ticket.hint", hex::encode(&hint.as_bytes()[..8]));
    let e: [u8; 32] = sent[0].as_slice().try_into().unwrap();
    let mut tagged = vec![0x01];
    tagged.extend_from_slice(&e);
    let tag = blake3::keyed_hash(&key, &tagged);
    push("net.ticket.tag", hex::encode(tag.as_bytes()));
    let mut first = e.to_vec();
    first.push(1);
    first.extend_from_slice(&hint.as_bytes()[..8]);
    first.extend_from_slice(tag.as_bytes());
    assert_eq!(
        &first[32..],
        ticket::ticket(&e, &[Arc::new(spec_ticket_key())]).as_slice()
    );
    push("net.first", hex::encode(&first));
    push("net.first.frame", {
        let mut frame = (first.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(&first);
        hex::encode(frame)
    });
    push("net.busy", hex::encode(handshake::BUSY));
    let mut buffer = vec![0u8; 65_535];
    let hash: [u8; 32] = initiator.get_handshake_hash().try_into().unwrap();
    assert_eq!(hash, responder.get_handshake_hash());
    push("net.handshake_hash", hex::encode(hash));
    let initiator = initiator.into_stateless_transport_mode().unwrap();
    let responder = responder.into_stateless_transport_mode().unwrap();
    for (name, keys, side, transport) in [
        ("initiator", &founder, Side::Initiator, &initiator),
        ("responder", &admin, Side::Responder, &responder),
    ] {
        push(
            &format!("net.{name}.signed"),
            hex::encode(handshake::auth_message(side, &hash, Some(group))),
        );
        let auth = Message::Auth(Box::new(handshake::auth(keys, side, &hash, Some(group))));
        let body = crate::codec::encode(&auth);
        push(&format!("net.{name}.auth"), hex::encode(&body));
        let mut plain = (body.len() as u32).to_be_bytes().to_vec();
        plain.extend_from_slice(&body);
        let len = transport.write_message(0, &plain, &mut buffer).unwrap();
        let mut frame = (len as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(&buffer[..len]);
        push(&format!("net.{name}.frame"), hex::encode(frame));
    }
    push(
        "net.newcomer.signed",
        hex::encode(handshake::auth_message(Side::Initiator, &hash, None)),
    );
    let newcomer = Message::Auth(Box::new(handshake::auth(
        &founder,
        Side::Initiator,
        &hash,
        None,
    )));
    push(
        "net.newcomer.auth",
        hex::encode(crate::codec::encode(&newcomer)),
    );
    for (name, message) in [
        ("net.frontier.empty", Message::Frontier(Frontier::default())),
        (
            "net.records",
            Message::Records {
                remaining: 0,
                records: vec![vec![1, 2, 3]],
            },
        ),
        ("net.ingested", Message::Ingested { added: 1, known: 0 }),
        ("net.ping", Message::Ping),
        (
            "net.refused",
            Message::Refused {
                reason: "no".into(),
            },
        ),
    ] {
        push(name, hex::encode(crate::codec::encode(&message)));
    }
    out
}

#[test]
fn spec_net_vectors_match() {
    let text: String = spec_vectors()
        .iter()
        .map(|(name, value)| format!("{name}: {value}\n"))
        .collect();
    crate::tests::vectors::check_spec_block(
        "<!-- net-vectors:begin -->\n```text\n",
        "```\n<!-- net-vectors:end -->",
        &text,
    );
}

/// `secure` and the auth exchange over a real byte stream give what the
/// vectors give, and each side proves the member the other expects.
#[tokio::test]
async fn secure_over_a_stream_matches_the_vectors() {
    let (founder, admin) = (spec_keys(1), spec_keys(2));
    let (a, b) = tokio::io::duplex(1 << 16);
    let (ar, aw) = tokio::io::split(a);
    let (br, bw) = tokio::io::split(b);
    let tickets = [Arc::new(spec_ticket_key())];
    let responder = async {
        let mut br = br;
        let first = handshake::read_first(&mut br).await.unwrap();
        assert_eq!(hex::encode(&first), vector("net.first"));
        handshake::secure(br, bw, &admin, Opening::Answer(&first), Some([0x22; 32])).await
    };
    let (left, right) = tokio::join!(
        handshake::secure(
            ar,
            aw,
            &founder,
            Opening::Initiate(&tickets),
            Some([0x11; 32])
        ),
        responder,
    );
    let (mut left, mut right) = (left.unwrap(), right.unwrap());
    let vectors = spec_vectors();
    let expected = &vectors
        .iter()
        .find(|(n, _)| n == "net.handshake_hash")
        .unwrap()
        .1;
    assert_eq!(&hex::encode(left.handshake_hash), expected);
    assert_eq!(left.handshake_hash, right.handshake_hash);
    assert_eq!(&left.remote_static, admin.public().dh.as_bytes());
    assert_eq!(&right.remote_static, founder.public().dh.as_bytes());
    let group = Some(GroupId::from_bytes([0x47; 32]));
    let auth = handshake::auth(&founder, Side::Initiator, &left.handshake_hash, group);
    left.sender
        .send(&Message::Auth(Box::new(auth)))
        .await
        .unwrap();
    let (member, named) = handshake::receive_auth(
        &mut right.receiver,
        Side::Responder,
        &right.handshake_hash,
        &right.remote_static,
    )
    .await
    .unwrap();
    assert_eq!((member, named), (founder.member_id(), group));
}

/// Each way an auth can lie is refused: another side's role, another
/// connection's hash, another group, a package whose DH key is not the
/// Noise key, another member's package, another version.
#[test]
fn a_lying_auth_is_refused() {
    let (founder, admin) = (spec_keys(1), spec_keys(2));
    let hash = [9u8; 32];
    let static_key = *founder.public().dh.as_bytes();
    let group = Some(GroupId::from_bytes([0x47; 32]));
    let good = handshake::auth(&founder, Side::Initiator, &hash, group);
    assert_eq!(
        handshake::check_auth(&good, Side::Initiator, &hash, &static_key).unwrap(),
        founder.member_id()
    );
    let refused = |auth: &wire::Auth, side, hash: &[u8; 32], key: &[u8; 32]| {
        handshake::check_auth(auth, side, hash, key).is_err()
    };
    assert!(refused(&good, Side::Responder, &hash, &static_key));
    assert!(refused(&good, Side::Initiator, &[8; 32], &static_key));
    assert!(refused(
        &good,
        Side::Initiator,
        &hash,
        admin.public().dh.as_bytes()
    ));
    let mut other_group = good.clone();
    other_group.group = Some(GroupId::from_bytes([0x48; 32]));
    assert!(refused(&other_group, Side::Initiator, &hash, &static_key));
    let mut newcomer = good.clone();
    newcomer.group = None;
    assert!(refused(&newcomer, Side::Initiator, &hash, &static_key));
    // The admin's package with the founder's signature: the package is
    // public, the signing key is not.
    let mut borrowed = good.clone();
    borrowed.package = admin.package();
    assert!(refused(
        &borrowed,
        Side::Initiator,
        &hash,
        admin.public().dh.as_bytes()
    ));
    let mut version = good;
    version.version += 1;
    assert!(refused(&version, Side::Initiator, &hash, &static_key));
}

/// A transport pair, for the wire's own tests.
fn transports() -> (Arc<StatelessTransportState>, Arc<StatelessTransportState>) {
    wire::transport_pair()
}

#[tokio::test]
async fn the_wire_round_trips_and_enforces_its_limits() {
    let (sending, receiving) = transports();
    let (a, b) = tokio::io::duplex(1 << 20);
    let mut sender = Sender::new(a, sending);
    let mut receiver = Receiver::new(b, receiving);
    // A message of several Noise messages.
    let records = vec![vec![7u8; 200_000], vec![8u8; wire::MIN_RECORD]];
    let message = Message::Records {
        remaining: 5,
        records,
    };
    let (sent, received) = tokio::join!(sender.send(&message), receiver.recv(MAX_MESSAGE));
    sent.unwrap();
    assert_eq!(received.unwrap(), message);
    // A record shorter than any event is refused while decoding: a message
    // of empty records would allocate far more than its bytes.
    let short = Message::Records {
        remaining: 0,
        records: vec![vec![0u8; wire::MIN_RECORD - 1]],
    };
    let (sent, received) = tokio::join!(sender.send(&short), receiver.recv(MAX_MESSAGE));
    sent.unwrap();
    assert!(matches!(received, Err(WireError::Malformed(_))));
    // Too large for the limit before authentication: refused by its length,
    // before its body is read.
    let big = Message::Refused {
        reason: "x".repeat(MAX_AUTH_MESSAGE),
    };
    let (sent, received) = tokio::join!(sender.send(&big), receiver.recv(MAX_AUTH_MESSAGE));
    sent.unwrap();
    assert!(matches!(received, Err(WireError::TooLarge { .. })));
}

#[tokio::test]
async fn the_wire_refuses_garbage_and_truncation() {
    let (sending, receiving) = transports();
    // Bytes that are no Noise message under the key.
    let (mut a, b) = tokio::io::duplex(1 << 16);
    let mut receiver = Receiver::new(b, receiving.clone());
    a.write_all(&[0, 20]).await.unwrap();
    a.write_all(&[0x55; 20]).await.unwrap();
    assert!(matches!(
        receiver.recv(MAX_MESSAGE).await,
        Err(WireError::Decrypt)
    ));
    // A message cut short by the peer closing.
    let (a, b) = tokio::io::duplex(1 << 16);
    let mut sender = Sender::new(a, sending.clone());
    let mut receiver = Receiver::new(b, receiving.clone());
    let mut plain = 1000u32.to_be_bytes().to_vec();
    plain.extend_from_slice(&[0; 10]);
    let mut sealed = vec![0u8; 65_535];
    let len = sending.write_message(0, &plain, &mut sealed).unwrap();
    wire::write_noise(&mut sender_writer(&mut sender), &sealed[..len])
        .await
        .unwrap();
    drop(sender);
    assert!(receiver.recv(MAX_MESSAGE).await.is_err());
    // Bytes after the end of a message, in the same Noise message.
    let (a, b) = tokio::io::duplex(1 << 16);
    let mut writer = a;
    let mut receiver = Receiver::new(b, receiving);
    let body = crate::codec::encode(&Message::Ping);
    let mut plain = (body.len() as u32).to_be_bytes().to_vec();
    plain.extend_from_slice(&body);
    plain.push(0);
    let len = sending.write_message(0, &plain, &mut sealed).unwrap();
    wire::write_noise(&mut writer, &sealed[..len])
        .await
        .unwrap();
    assert!(matches!(
        receiver.recv(MAX_MESSAGE).await,
        Err(WireError::Malformed(_))
    ));
}

fn sender_writer<W: tokio::io::AsyncWrite + Unpin>(sender: &mut Sender<W>) -> &mut W {
    sender.writer_mut()
}

/// A founder's mesh, enabled, with `members` added (each enabled on no
/// copy yet); returns the mesh and the members' keys.
fn founded(dir: &std::path::Path, members: usize) -> (Mesh, Vec<LocalKeys>) {
    let mut mesh = Mesh::create(dir.join("founder.redb"), LocalKeys::generate(), "net").unwrap();
    mesh.set_enabled(true).unwrap();
    let keys: Vec<LocalKeys> = (0..members).map(|_| LocalKeys::generate()).collect();
    for member in &keys {
        mesh.add_member(member.package(), Role::Member).unwrap();
    }
    (mesh, keys)
}

fn fast() -> NetOptions {
    let mut options = NetOptions::new();
    options.handshake_timeout = Duration::from_secs(5);
    options.idle_timeout = Duration::from_secs(5);
    options.ping_interval = Duration::from_millis(500);
    options
}

async fn serving(node: &Node) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let node = node.clone();
    tokio::spawn(async move { super::serve(&node, listener).await });
    addr
}

/// A founder's node with `members` added, serving on loopback under
/// `options`; returns it, its address and the members' keys.
async fn served(
    dir: &std::path::Path,
    members: usize,
    options: NetOptions,
) -> (Node, SocketAddr, Vec<LocalKeys>) {
    let (mesh, keys) = founded(dir, members);
    let server = Node::new(mesh, options).unwrap();
    let addr = serving(&server).await;
    (server, addr, keys)
}

/// Waits (up to 10 s) until `a` holds what `b` holds.
async fn caught_up(a: &Node, b: &Node, what: &str) {
    let waiting = async {
        while digest(a) != digest(b) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .unwrap_or_else(|_| panic!("{what}"));
}

/// A member's copy joined over the network, enabled.
async fn joined(dir: &std::path::Path, name: &str, keys: LocalKeys, server: SocketAddr) -> Node {
    let (mut mesh, report) = super::join(dir.join(name), keys, server, None, fast())
        .await
        .unwrap();
    assert!(report.pulled > 0);
    mesh.set_enabled(true).unwrap();
    Node::new(mesh, fast()).unwrap()
}

fn digest(node: &Node) -> crate::ids::StateDigest {
    node.with_mesh(|mesh| mesh.digest()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_converge_over_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr, mut keys) = served(dir.path(), 2, fast()).await;
    let bob = joined(dir.path(), "bob.redb", keys.pop().unwrap(), addr).await;
    let alice = joined(dir.path(), "alice.redb", keys.pop().unwrap(), addr).await;
    // Everyone writes while apart.
    for (node, text) in [(&server, "founder"), (&alice, "alice"), (&bob, "bob")] {
        node.with_mesh(|mesh| mesh.append_app("note", text.as_bytes()).unwrap())
            .unwrap();
    }
    // Alice pulls the founder's note and pushes her enable and note.
    let report = super::sync(&alice, addr).await.unwrap();
    assert_eq!((report.pulled, report.pushed_added), (1, 2));
    let report = super::sync(&bob, addr).await.unwrap();
    assert_eq!((report.pulled, report.pushed_added), (3, 2));
    let report = super::sync(&alice, addr).await.unwrap();
    assert_eq!(
        report.pulled, 2,
        "bob's enable and note, through the server"
    );
    assert_eq!(digest(&alice), digest(&server));
    assert_eq!(digest(&bob), digest(&server));
    // Nothing left to move.
    let report = super::sync(&bob, addr).await.unwrap();
    assert_eq!((report.pulled, report.pushed), (0, 0));
    server.stop();
}

/// A member restores its copy from a backup and writes, so its feed forks;
/// the server holds the longer branch. One one-shot sync gives each side
/// the other's branch (SPEC.md §7.1, §17.5): a reply covers only what the
/// asker's frontier lists, whichever side is further on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_copy_and_a_server_ahead_on_its_feed_meet_in_one_sync() {
    let dir = tempfile::tempdir().unwrap();
    let alice_keys = || LocalKeys::from_secret_bytes(&[7; 32], &[107; 32]);
    let (mut founder, _) = founded(dir.path(), 0);
    founder
        .add_member(alice_keys().package(), Role::Member)
        .unwrap();
    let server = Node::new(founder, fast()).unwrap();
    let addr = serving(&server).await;
    let alice = joined(dir.path(), "alice.redb", alice_keys(), addr).await;
    let backup = dir.path().join("alice-backup.redb");
    alice
        .with_mesh(|mesh| {
            mesh.backup(&backup).unwrap();
            for n in 0..3u8 {
                mesh.append_app("note", &[n]).unwrap();
            }
        })
        .unwrap();
    super::sync(&alice, addr).await.unwrap();
    assert_eq!(digest(&alice), digest(&server));

    let mut restored = Mesh::open(&backup, alice_keys()).unwrap();
    let note = restored.append_app("note", b"after the restore").unwrap();
    let restored = Node::new(restored, fast()).unwrap();
    super::sync(&restored, addr).await.unwrap();
    assert!(server.with_mesh(|mesh| mesh.event(note).is_some()).unwrap());
    assert_eq!(digest(&restored), digest(&server));
    assert_eq!(
        server.with_mesh(|mesh| mesh.equivocations().len()).unwrap(),
        1
    );
    server.stop();
}

/// With `watch`, a write on one copy reaches a copy that is connected to
/// the same server, without anyone syncing by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_gossip_through_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr, mut keys) = served(dir.path(), 2, fast()).await;
    let bob = joined(dir.path(), "bob.redb", keys.pop().unwrap(), addr).await;
    let alice = joined(dir.path(), "alice.redb", keys.pop().unwrap(), addr).await;
    for node in [&alice, &bob] {
        let node = node.clone();
        tokio::spawn(async move { super::watch(&node, addr).await });
    }
    let hash = alice
        .with_mesh(|mesh| mesh.append_app("note", b"gossip").unwrap())
        .unwrap();
    let reached = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if bob.with_mesh(|mesh| mesh.event(hash).is_some()).unwrap() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "bob never heard of alice's note");
    // And the three converge.
    tokio::time::timeout(Duration::from_secs(10), async {
        while digest(&alice) != digest(&server) || digest(&bob) != digest(&server) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    for node in [&alice, &bob, &server] {
        node.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_and_removed_members_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr, mut keys) = served(dir.path(), 1, fast()).await;
    let carol_keys = keys.pop().unwrap();
    let carol_id = carol_keys.member_id();
    let carol = joined(dir.path(), "carol.redb", carol_keys, addr).await;
    // A stranger cannot even fetch a first copy, and leaves no file.
    let stranger = super::join(
        dir.path().join("x.redb"),
        LocalKeys::generate(),
        addr,
        None,
        fast(),
    )
    .await;
    let error = stranger.unwrap_err();
    assert!(matches!(error, NetError::RefusedByPeer { .. }), "{error}");
    assert_eq!(error.class(), ErrorClass::Refusal);
    assert!(!dir.path().join("x.redb").exists());
    // Carol watches; the founder removes her; the open connection ends and
    // a new one is refused.
    let watcher = {
        let carol = carol.clone();
        tokio::spawn(async move { super::watch(&carol, addr).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    server
        .with_mesh(|mesh| mesh.remove_member(carol_id).unwrap())
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), watcher).await;
    let error = ended
        .expect("the removed member's session ends")
        .unwrap()
        .unwrap_err();
    assert!(matches!(error, NetError::RefusedByPeer { .. }), "{error}");
    let error = super::sync(&carol, addr).await.unwrap_err();
    assert!(error.to_string().contains("removed"), "{error}");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_member_neither_serves_nor_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let (mut mesh, _) = founded(dir.path(), 0);
    mesh.set_enabled(false).unwrap();
    let node = Node::new(mesh, fast()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let error = super::serve(&node, listener).await.unwrap_err();
    assert!(matches!(
        error.mesh_error(),
        Some(crate::Error::Disabled { .. })
    ));
    assert_eq!(error.class(), ErrorClass::Refusal);
    assert!(super::sync(&node, addr).await.is_err());
}

/// An authenticated member that answers with a forged record is cut off;
/// nothing it sent is written, and the server goes on serving others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_sending_invalid_records_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let (mesh, mut keys) = founded(dir.path(), 2);
    let group = mesh.group();
    let server = Node::new(mesh, fast()).unwrap();
    let addr = serving(&server).await;
    let mallory = keys.pop().unwrap();
    let honest = keys.pop().unwrap();
    // Mallory's copy, with a record of her own whose signature is broken.
    let mallory_node = joined(dir.path(), "mallory.redb", mallory.duplicate(), addr).await;
    let note = mallory_node
        .with_mesh(|mesh| mesh.append_app("note", b"mine").unwrap())
        .unwrap();
    let mut forged = mallory_node
        .with_mesh(|mesh| mesh.event(note).unwrap().to_record())
        .unwrap();
    forged[5] ^= 1;
    let before = server.with_mesh(|mesh| mesh.len()).unwrap();
    // Mallory by hand: a valid handshake, then the forged record as reply.
    let (mut sender, mut receiver) = by_hand(addr, &mallory, group).await;
    let mut refused = None;
    while let Ok(message) = receiver.recv(MAX_MESSAGE).await {
        match message {
            Message::Frontier(_) => {
                sender
                    .send(&Message::Records {
                        remaining: 0,
                        records: vec![forged.clone()],
                    })
                    .await
                    .unwrap();
            }
            Message::Refused { reason } => refused = Some(reason),
            _ => {}
        }
    }
    let reason = refused.expect("the server says why it cuts mallory off");
    assert!(reason.contains("records refused"), "{reason}");
    assert_eq!(server.with_mesh(|mesh| mesh.len()).unwrap(), before);
    // An honest member is still served.
    let honest = joined(dir.path(), "honest.redb", honest, addr).await;
    super::sync(&honest, addr).await.unwrap();
    assert_eq!(digest(&honest), digest(&server));
    server.stop();
}

/// Garbage instead of a handshake, a handshake then silence, and more
/// connections than allowed: each is dropped, and the server still serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_silence_and_floods_do_not_hurt_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = fast();
    options.max_connections = 2;
    options.handshake_timeout = Duration::from_millis(500);
    let (server, addr, mut keys) = served(dir.path(), 1, options).await;
    // Garbage.
    let mut garbage = TcpStream::connect(addr).await.unwrap();
    garbage.write_all(&[0xff; 4096]).await.unwrap();
    // Silence: two idle connections fill the cap, then time out.
    let idle: Vec<TcpStream> = vec![
        TcpStream::connect(addr).await.unwrap(),
        TcpStream::connect(addr).await.unwrap(),
    ];
    tokio::time::sleep(Duration::from_millis(1200)).await;
    drop(idle);
    let member = joined(dir.path(), "m.redb", keys.pop().unwrap(), addr).await;
    super::sync(&member, addr).await.unwrap();
    assert_eq!(digest(&member), digest(&server));
    server.stop();
}

/// Ten nodes in a spanning tree (two servers chained to a third, seven
/// watchers on them), each with writes of its own made while apart,
/// converge, time after time: a lost announcement would leave a copy short
/// for good (one did, before a change made while a request was out was
/// announced after its reply).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_nodes_in_a_tree_always_converge() {
    for round in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let (founder, keys) = founded(dir.path(), 9);
        let all = founder.export_all();
        let mut meshes = vec![founder];
        for (i, member) in keys.into_iter().enumerate() {
            let mut mesh = Mesh::join(dir.path().join(format!("{i}.redb")), member, &all).unwrap();
            mesh.set_enabled(true).unwrap();
            meshes.push(mesh);
        }
        for (i, mesh) in meshes.iter_mut().enumerate() {
            for n in 0..(5 + i) {
                mesh.append_app("note", format!("{round}/{i}/{n}").as_bytes())
                    .unwrap();
            }
        }
        let nodes: Vec<Node> = meshes
            .into_iter()
            .map(|mesh| Node::new(mesh, fast()).unwrap())
            .collect();
        let mut addrs = Vec::new();
        for node in nodes.iter().take(3) {
            addrs.push(serving(node).await);
        }
        for (i, node) in nodes.iter().enumerate().skip(1) {
            let peer = if i < 3 { addrs[i - 1] } else { addrs[i % 3] };
            let node = node.clone();
            tokio::spawn(async move { super::watch(&node, peer).await });
        }
        let converged = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let digests: Vec<_> = nodes.iter().map(digest).collect();
                let lens: Vec<_> = nodes
                    .iter()
                    .map(|n| n.with_mesh(|m| m.len()).unwrap())
                    .collect();
                if digests.iter().all(|d| *d == digests[0]) && lens.iter().all(|l| *l == lens[0]) {
                    return lens[0];
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        // Genesis, enable, nine additions, nine enables, and the notes.
        let notes: usize = (0..10).map(|i| 5 + i).sum();
        assert_eq!(
            converged.expect("round {round} converges"),
            1 + 1 + 9 + 9 + notes
        );
        for node in &nodes {
            node.stop();
        }
    }
}

/// A member's connection made by hand, authenticated, for tests that then
/// break the protocol.
async fn by_hand(
    addr: SocketAddr,
    keys: &LocalKeys,
    group: GroupId,
) -> (
    Sender<tokio::net::tcp::OwnedWriteHalf>,
    Receiver<tokio::net::tcp::OwnedReadHalf>,
) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let ((sender, receiver), _, _) = super::initiate(stream, keys, &[], Some(group), "by hand")
        .await
        .unwrap();
    (sender, receiver)
}

/// A member that asks again and again without taking the replies is cut
/// off at its second request: a connection costs one export at a time.
/// Records nobody asked for, and a second auth, are cut off too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_turn_messages_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let (mesh, mut keys) = founded(dir.path(), 1);
    let group = mesh.group();
    let server = Node::new(mesh, fast()).unwrap();
    let addr = serving(&server).await;
    let member = keys.pop().unwrap();
    let wrongs: [Vec<Message>; 3] = [
        vec![
            Message::Frontier(Frontier::default()),
            Message::Frontier(Frontier::default()),
        ],
        // The server asks first: an empty reply is due, a second is not.
        vec![
            Message::Records {
                remaining: 0,
                records: Vec::new(),
            },
            Message::Records {
                remaining: 0,
                records: Vec::new(),
            },
        ],
        vec![Message::Auth(Box::new(handshake::auth(
            &member,
            Side::Initiator,
            &[0; 32],
            Some(group),
        )))],
    ];
    for wrong in wrongs {
        let (mut sender, mut receiver) = by_hand(addr, &member, group).await;
        for message in &wrong {
            sender.send(message).await.unwrap();
        }
        let mut refused = None;
        while let Ok(message) = receiver.recv(MAX_MESSAGE).await {
            if let Message::Refused { reason } = message {
                refused = Some(reason);
            }
        }
        let reason = refused.expect("the server says why");
        assert!(reason.contains("protocol violation"), "{reason}");
    }
    server.stop();
}

/// A reply cut into parts where the first holds an event the receiver
/// leaves out (a fired admin's refresh, SPEC.md §6.4) and a later one an
/// event that names it (another admin's refresh on top): the left-out
/// event is handed on to the next part, so both are taken, as from one
/// batch. Without that, the second part would be refused every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_left_out_event_named_in_a_later_part_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let mut founder = Mesh::create(dir.path().join("f.redb"), spec_keys(9), "parts").unwrap();
    founder.set_enabled(true).unwrap();
    let (carol, dave) = (LocalKeys::generate(), LocalKeys::generate());
    let carol_id = carol.member_id();
    founder.add_member(carol.package(), Role::Admin).unwrap();
    founder.add_member(dave.package(), Role::Admin).unwrap();
    let all = founder.export_all();
    let mut carol_mesh = Mesh::join(dir.path().join("c.redb"), carol, &all).unwrap();
    let mut dave_mesh = Mesh::join(dir.path().join("d.redb"), dave.duplicate(), &all).unwrap();
    carol_mesh.set_enabled(true).unwrap();
    dave_mesh.set_enabled(true).unwrap();
    // The founder fires carol; carol, not knowing, refreshes; dave takes
    // her refresh and refreshes on top of it.
    founder.remove_member(carol_id).unwrap();
    let carols = carol_mesh.refresh("carol, fired unknowingly").unwrap();
    dave_mesh
        .ingest(&carol_mesh.export(&dave_mesh.frontier()))
        .unwrap();
    let daves = dave_mesh.refresh("dave, on top").unwrap();
    let mut records = dave_mesh.export(&founder.frontier()).records().to_vec();
    // Alone, the first part's records leave carol's refresh out.
    founder.backup(dir.path().join("copy.redb")).unwrap();
    let mut copy = Mesh::open(dir.path().join("copy.redb"), spec_keys(9)).unwrap();
    let last = records.pop().unwrap();
    assert_eq!(copy.ingest_records(&records).unwrap().left_out, 1);
    drop(copy);
    let group = founder.group();
    let server = Node::new(founder, fast()).unwrap();
    let addr = serving(&server).await;
    assert_eq!(SignedEvent::from_record(&last).unwrap().hash(), daves);
    let (mut sender, mut receiver) = by_hand(addr, &dave, group).await;
    let mut answered = None;
    while let Ok(message) = receiver.recv(MAX_MESSAGE).await {
        match message {
            Message::Frontier(_) => {
                sender
                    .send(&Message::Records {
                        remaining: 1,
                        records: records.clone(),
                    })
                    .await
                    .unwrap();
                sender
                    .send(&Message::Records {
                        remaining: 0,
                        records: vec![last.clone()],
                    })
                    .await
                    .unwrap();
            }
            Message::Ingested { added, known } => {
                answered = Some((added, known));
                break;
            }
            Message::Refused { reason } => panic!("refused: {reason}"),
            _ => {}
        }
    }
    let (added, _) = answered.expect("the server took the reply");
    assert_eq!(added as usize, records.len() + 1);
    assert!(
        server
            .with_mesh(|mesh| mesh.event(carols).is_some() && mesh.event(daves).is_some())
            .unwrap()
    );
    server.stop();
}

/// A refusal's reason is cut to its limit at a character boundary (a cut
/// inside a character would panic).
#[test]
fn a_long_reason_is_cut_at_a_character() {
    let error = NetError::NotAdmitted {
        peer: "peer".into(),
        reason: "é".repeat(wire::MAX_REFUSAL_REASON),
    };
    let reason = error.reason_for_peer().unwrap();
    assert!(reason.len() <= wire::MAX_REFUSAL_REASON);
    assert_eq!(reason.chars().count(), wire::MAX_REFUSAL_REASON / 2);
}

/// A TCP connection from `source`, a loopback address of its own.
async fn connect_from(source: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    socket.connect(addr).await.unwrap()
}

/// A connection from `source` whose first message is a bare Noise message
/// 1 (an ephemeral key and no ticket), as a newcomer's or a stranger's.
async fn open_handshake(source: [u8; 4], addr: SocketAddr) -> TcpStream {
    let mut stream = connect_from(source, addr).await;
    let mut first = vec![0u8, 32];
    first.extend(rand::random::<[u8; 32]>());
    stream.write_all(&first).await.unwrap();
    stream
}

/// Whether the server answers `stream`'s first message with the busy
/// signal, `be16(0)`, and closes (SPEC.md §17.2).
async fn says_busy(mut stream: TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut answer));
    matches!(read.await, Ok(Ok(_))) && answer == handshake::BUSY
}

/// Whether the server keeps `stream` open for a second, as it does for a
/// connection in its handshake, or one whose first message it awaits.
async fn held_open(mut stream: TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut answer = vec![0u8; 256];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut answer)).await {
            Err(_) => return true,
            Ok(Ok(0) | Err(_)) => return false,
            // Message 2 of the handshake: the server waits for message 3.
            Ok(Ok(_)) => {}
        }
    }
}

/// Handshakes whose first message carries no ticket hold at most the open
/// budget, and one address at most its share of it; past it they are told
/// the server is busy. Silent connections hold none of it. A member's
/// ticket needs none of it, so the member is served while it is full; a
/// newcomer is told it is busy, typed, and served once the strangers leave
/// (SPEC.md §17.4, §17.6). Binds 127.0.0.2–6, which only Linux's loopback
/// has.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_hold_only_the_open_budget() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = fast();
    options.max_connections = 8;
    options.max_handshakes = 3;
    options.max_handshakes_per_address = 2;
    options.handshake_timeout = Duration::from_secs(10);
    options.first_message_timeout = Duration::from_secs(20);
    let (server, addr, mut keys) = served(dir.path(), 2, options).await;
    let newcomer = keys.pop().unwrap();
    // The member's first copy, before the strangers come.
    let member = joined(dir.path(), "m.redb", keys.pop().unwrap(), addr).await;
    let silent: Vec<TcpStream> = silent_pair(addr).await;
    let mut held = vec![
        open_handshake([127, 0, 0, 2], addr).await,
        open_handshake([127, 0, 0, 2], addr).await,
    ];
    // A third from the same address is told the server is busy; one from
    // another address takes the last open slot; a fifth finds none.
    assert!(says_busy(open_handshake([127, 0, 0, 2], addr).await).await);
    held.push(open_handshake([127, 0, 0, 3], addr).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(says_busy(open_handshake([127, 0, 0, 4], addr).await).await);
    // A member's ticket needs no open slot.
    server
        .with_mesh(|mesh| mesh.append_app("note", b"while the strangers wait"))
        .unwrap()
        .unwrap();
    super::sync(&member, addr).await.unwrap();
    assert_eq!(digest(&member), digest(&server));
    // A newcomer has no ticket: it hears that the server is busy.
    let error = super::join(
        dir.path().join("n.redb"),
        newcomer.duplicate(),
        addr,
        None,
        fast(),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, NetError::Busy { .. }), "{error}");
    assert_eq!(
        (error.kind(), error.class()),
        ("busy", ErrorClass::CouldNotRun)
    );
    assert!(!dir.path().join("n.redb").exists());
    // Each stranger's slot is its own until its handshake times out.
    for stream in held.drain(..).chain(silent) {
        assert!(held_open(stream).await);
    }
    // The strangers gone, their slots are free: the newcomer is served.
    let (joined, _) = super::join(dir.path().join("n.redb"), newcomer, addr, None, fast())
        .await
        .unwrap();
    assert_eq!(joined.digest(), digest(&server));
    server.stop();
}

/// Two connections from 127.0.0.5 and .6 that say nothing at all.
async fn silent_pair(addr: SocketAddr) -> Vec<TcpStream> {
    vec![
        connect_from([127, 0, 0, 5], addr).await,
        connect_from([127, 0, 0, 6], addr).await,
    ]
}

/// One member holds at most `max_sessions_per_member` sessions: another is
/// refused as busy, once authenticated, and does not stop a watcher; the
/// member's open session is not disturbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_holds_a_bounded_number_of_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = fast();
    options.max_sessions_per_member = 1;
    let (server, addr, mut keys) = served(dir.path(), 1, options).await;
    let member = joined(dir.path(), "m.redb", keys.pop().unwrap(), addr).await;
    let watcher = {
        let member = member.clone();
        tokio::spawn(async move { super::watch(&member, addr).await })
    };
    // The watcher is connected once a write of the server reaches it.
    server
        .with_mesh(|mesh| mesh.append_app("note", b"one"))
        .unwrap()
        .unwrap();
    caught_up(&member, &server, "the watcher catches up").await;
    let error = super::sync(&member, addr).await.unwrap_err();
    match &error {
        NetError::RefusedByPeer {
            reason, admission, ..
        } => {
            assert!(reason.contains("busy"), "{reason}");
            assert!(!admission, "a busy server does not refuse the member");
        }
        other => panic!("expected a busy refusal, got {other}"),
    }
    // The watcher's session still carries writes.
    server
        .with_mesh(|mesh| mesh.append_app("note", b"two"))
        .unwrap()
        .unwrap();
    caught_up(&member, &server, "the open session goes on").await;
    assert!(!watcher.is_finished());
    member.stop();
    server.stop();
}

/// A newcomer that names the group it expects is refused by a server of
/// another group, and leaves no file; naming the right one, it joins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_may_pin_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let (mesh, mut keys) = founded(dir.path(), 1);
    let group = mesh.group();
    let server = Node::new(mesh, fast()).unwrap();
    let addr = serving(&server).await;
    let newcomer = keys.pop().unwrap();
    let other = GroupId::from_bytes([7; 32]);
    let path = dir.path().join("n.redb");
    let error = super::join(&path, newcomer.duplicate(), addr, Some(other), fast())
        .await
        .unwrap_err();
    assert!(matches!(error, NetError::RefusedByPeer { .. }), "{error}");
    assert!(error.to_string().contains("is of group"), "{error}");
    assert!(!path.exists());
    let (mesh, _) = super::join(&path, newcomer, addr, Some(group), fast())
        .await
        .unwrap();
    assert_eq!(mesh.group(), group);
    server.stop();
}

/// The parts a reply is made of, one at a time, are exactly the export's
/// records, in order, each part but the last reaching the part size.
#[test]
fn export_parts_are_the_export_cut_in_order() {
    use super::wire::REPLY_PART_BYTES;
    let dir = tempfile::tempdir().unwrap();
    let (mut mesh, _) = founded(dir.path(), 2);
    for n in 0..40u8 {
        mesh.append_app("blob", &vec![n; 50 * 1024]).unwrap();
        mesh.append_app("note", &[n]).unwrap();
    }
    for frontier in [Frontier::default(), mesh.frontier()] {
        let positions = mesh.export_positions(&frontier);
        let mut parts = Vec::new();
        let mut at = 0;
        while at < positions.len() {
            let part = mesh
                .export_part(&positions[at..], REPLY_PART_BYTES)
                .unwrap();
            at += part.len();
            parts.push(part);
        }
        let (last, full) = parts
            .split_last()
            .map_or((None, &[][..]), |(l, f)| (Some(l), f));
        for part in full {
            let bytes: usize = part.iter().map(Vec::len).sum();
            let before_last: usize = part[..part.len() - 1].iter().map(Vec::len).sum();
            assert!(bytes >= REPLY_PART_BYTES && before_last < REPLY_PART_BYTES);
        }
        if let Some(last) = last {
            assert!(!last.is_empty());
        }
        assert_eq!(parts.concat(), mesh.export(&frontier).records().to_vec());
    }
    assert!(mesh.export_part(&[usize::MAX], REPLY_PART_BYTES).is_none());
}

/// A newcomer's copy has a deadline too, and leaves no file when it fails
/// on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_gives_up_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr, mut keys) = served(dir.path(), 1, fast()).await;
    let mut options = fast();
    options.sync_timeout = Duration::ZERO;
    let path = dir.path().join("late.redb");
    let error = super::join(&path, keys.pop().unwrap(), addr, None, options)
        .await
        .unwrap_err();
    assert!(matches!(error, NetError::Timeout { .. }), "{error}");
    assert!(!path.exists());
    server.stop();
}

/// A reply over a mebibyte goes in parts, made one at a time from the
/// mesh; the receiver's progress sees each, and the copy is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_reply_streams_in_parts() {
    let dir = tempfile::tempdir().unwrap();
    let (mut mesh, mut keys) = founded(dir.path(), 1);
    let payload = vec![0x5a; 64 * 1024];
    for _ in 0..40 {
        mesh.append_app("blob", &payload).unwrap();
    }
    let server = Node::new(mesh, fast()).unwrap();
    let addr = serving(&server).await;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let options = {
        let seen = seen.clone();
        fast().progress(move |progress| seen.lock().unwrap().push(progress))
    };
    let (mesh, report) = super::join(
        dir.path().join("m.redb"),
        keys.pop().unwrap(),
        addr,
        None,
        options,
    )
    .await
    .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.len() >= 3,
        "40 × 64 KiB is at least three parts: {seen:?}"
    );
    let total = seen[0].total;
    assert!(
        seen.windows(2)
            .all(|pair| pair[0].received < pair[1].received)
    );
    assert_eq!(seen.last().map(|last| last.received), Some(total));
    assert_eq!(report.pulled, total);
    assert_eq!(mesh.len() as u64, total);
    server.stop();
}

/// A one-shot sync with a server that keeps writing ends once its own
/// request is answered, rather than asking after every write; and one that
/// cannot end in time ends at its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_shot_sync_ends_with_a_busy_peer() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr, mut keys) = served(dir.path(), 1, fast()).await;
    let member = joined(dir.path(), "m.redb", keys.pop().unwrap(), addr).await;
    let writer = {
        let server = server.clone();
        tokio::spawn(async move {
            while !server.is_stopped() {
                let server = server.clone();
                tokio::task::spawn_blocking(move || {
                    server.with_mesh(|mesh| mesh.append_app("tick", b"busy"))
                })
                .await
                .unwrap()
                .unwrap()
                .unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    for _ in 0..5 {
        let report = tokio::time::timeout(Duration::from_secs(20), super::sync(&member, addr))
            .await
            .expect("a one-shot sync ends")
            .unwrap();
        assert!(report.pulled > 0);
    }
    let mut options = fast();
    options.sync_timeout = Duration::ZERO;
    let hurried = Node::new(member.into_mesh().unwrap(), options).unwrap();
    let error = super::sync(&hurried, addr).await.unwrap_err();
    assert!(matches!(error, NetError::Timeout { .. }), "{error}");
    server.stop();
    writer.await.unwrap();
}

/// A server stopped before its loop began (at once after starting it)
/// still stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_at_once_stops() {
    let dir = tempfile::tempdir().unwrap();
    let (mesh, _) = founded(dir.path(), 0);
    let node = Node::new(mesh, fast()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    node.stop();
    let served = tokio::time::timeout(Duration::from_secs(5), super::serve(&node, listener)).await;
    assert!(matches!(served, Ok(Ok(()))), "{served:?}");
}

/// Strangers from several addresses, some silent and some sending a first
/// message of garbage (any 32 bytes pass for Noise's `e`), then stalling.
/// Each returned stream is held open by the caller.
#[cfg(target_os = "linux")]
async fn strangers(addr: SocketAddr, addresses: u8, per_address: usize) -> Vec<TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut held = Vec::new();
    for host in 0..addresses {
        for index in 0..per_address {
            let source = [127, 0, 1 + host / 250, 2 + host % 250];
            let Ok(Ok(mut stream)) = tokio::time::timeout(
                Duration::from_secs(2),
                tokio::net::TcpSocket::new_v4()
                    .and_then(|socket| socket.bind(SocketAddr::from((source, 0))).map(|()| socket))
                    .unwrap()
                    .connect(addr),
            )
            .await
            else {
                continue;
            };
            if index % 2 == 1 {
                let mut garbage = vec![0u8, 32];
                garbage.extend([host ^ index as u8; 32]);
                let _ = stream.write_all(&garbage).await;
            }
            held.push(stream);
        }
    }
    held
}

/// Strangers that hold the handshake budget (silent, or a garbage first
/// message and then nothing) from many addresses lock no member out: its
/// first message proves it a member, so it needs none of their slots
/// (SPEC.md §17.4, §17.6). Binds 127.0.1.2 on, which only Linux's loopback
/// has.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_from_many_addresses_lock_no_member_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = fast();
    options.handshake_timeout = Duration::from_secs(10);
    let (server, addr, mut keys) = served(dir.path(), 1, options).await;
    let member = joined(dir.path(), "m.redb", keys.pop().unwrap(), addr).await;
    let held = strangers(addr, 40, 4).await;
    assert!(held.len() >= 100, "only {} strangers connected", held.len());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut served = 0;
    for round in 0..10u8 {
        server
            .with_mesh(|mesh| mesh.append_app("note", &[round]))
            .unwrap()
            .unwrap();
        if tokio::time::timeout(Duration::from_secs(5), super::sync(&member, addr))
            .await
            .is_ok_and(|result| result.is_ok())
        {
            served += 1;
        }
    }
    assert_eq!(served, 10, "honest syncs served while strangers hold slots");
    assert_eq!(digest(&member), digest(&server));
    drop(held);
    server.stop();
}

/// The verdict `server` gives a first message made by `client` as it would
/// connect now (SPEC.md §17.4).
fn verdict(server: &Mesh, client: &Mesh) -> ticket::Verdict {
    let mut cache = std::collections::HashMap::new();
    let named = ticket::admission(client, &mut cache).named;
    let ephemeral: [u8; 32] = rand::random();
    let mut first = ephemeral.to_vec();
    first.extend(ticket::ticket(&ephemeral, &named));
    let (ephemeral, entries) = ticket::parse(&first).unwrap();
    ticket::admission(server, &mut std::collections::HashMap::new()).verdict(ephemeral, entries)
}

/// Tickets across epochs: a member's copy rotations behind or ahead of the
/// server's still proves it; once the server knows of a removal, the
/// removed member's tickets prove nothing, and neither do those of a copy
/// that has not heard of the removal yet and names only epochs the removed
/// member held too (it must take the open budget, or any peer, to catch
/// up); a copy that has heard of it proves its member again. A newcomer's,
/// and guessed ones, prove nothing; malformed ones are refused.
#[test]
fn tickets_follow_the_epochs_a_server_trusts() {
    use ticket::Verdict::{Member, Open};
    let dir = tempfile::tempdir().unwrap();
    let (mut founder, _) = founded(dir.path(), 0);
    let (admin, member, fired) = (
        LocalKeys::generate(),
        LocalKeys::generate(),
        LocalKeys::generate(),
    );
    founder.add_member(admin.package(), Role::Admin).unwrap();
    founder.add_member(member.package(), Role::Member).unwrap();
    founder.add_member(fired.package(), Role::Member).unwrap();
    assert_eq!(
        ticket::admission(&founder, &mut std::collections::HashMap::new()).accepted_epochs(),
        4,
        "the genesis and three rotations"
    );
    let copy = |name: &str, keys: &LocalKeys, from: &Mesh| {
        Mesh::join(dir.path().join(name), keys.duplicate(), &from.export_all()).unwrap()
    };
    let mut admin_copy = copy("admin.redb", &admin, &founder);
    let member_copy = copy("member.redb", &member, &founder);
    let fired_copy = copy("fired.redb", &fired, &founder);
    assert_eq!(verdict(&founder, &member_copy), Member);
    // Ahead of the server by two rotations, behind it by one: still a member.
    admin_copy.set_enabled(true).unwrap();
    admin_copy.refresh("one").unwrap();
    admin_copy.refresh("two").unwrap();
    assert_eq!(verdict(&founder, &admin_copy), Member);
    founder.refresh("three").unwrap();
    assert_eq!(verdict(&founder, &member_copy), Member);
    assert_eq!(verdict(&admin_copy, &founder), Member);
    let late = LocalKeys::generate();
    founder.add_member(late.package(), Role::Member).unwrap();
    let mut late_copy = copy("late.redb", &late, &founder);
    // The removal known, the removed member is a stranger at once, and so
    // is a copy that has not heard of it and holds only epochs the removed
    // member held too. A copy that also names an epoch from before the
    // removed member came is still a member.
    founder.remove_member(fired.member_id()).unwrap();
    assert_eq!(verdict(&founder, &fired_copy), Open);
    assert_eq!(verdict(&founder, &late_copy), Open);
    assert_eq!(verdict(&founder, &member_copy), Member);
    late_copy.ingest(&founder.export_all()).unwrap();
    assert_eq!(verdict(&founder, &late_copy), Member);
    assert_eq!(verdict(&late_copy, &founder), Member);
    // A newcomer sends no ticket; a guessed one proves nothing.
    let ephemeral = [7u8; 32];
    let (e, entries) = ticket::parse(&ephemeral).unwrap();
    let admission = ticket::admission(&founder, &mut std::collections::HashMap::new());
    assert_eq!(admission.verdict(e, entries), Open);
    let mut guessed = ephemeral.to_vec();
    guessed.push(1);
    guessed.extend([0x42; 40]);
    let (e, entries) = ticket::parse(&guessed).unwrap();
    assert_eq!(admission.verdict(e, entries), Open);
    // Malformed: short, a count of 0 or 9, a count that is not the length.
    for bad in [
        &ephemeral[..31],
        &[[0u8; 32].as_slice(), &[0]].concat(),
        &[[0u8; 32].as_slice(), &[9], &[0; 360]].concat(),
        &[[0u8; 32].as_slice(), &[2], &[0; 40]].concat(),
    ] {
        assert!(ticket::parse(bad).is_err(), "{}", bad.len());
    }
}

/// A server writes one warning line a kind per period at most, and the
/// next line counts those held back.
#[test]
fn warnings_about_refusals_are_throttled() {
    let throttle = super::node::Throttle::new(Duration::from_secs(10));
    let start = std::time::Instant::now();
    assert_eq!(throttle.allow_at("busy", start), Some(0));
    for second in 1..10 {
        assert_eq!(
            throttle.allow_at("busy", start + Duration::from_secs(second)),
            None
        );
    }
    assert_eq!(throttle.allow_at("refused", start), Some(0), "kinds apart");
    assert_eq!(
        throttle.allow_at("busy", start + Duration::from_secs(10)),
        Some(9)
    );
    assert_eq!(
        throttle.allow_at("busy", start + Duration::from_secs(11)),
        None
    );
}

/// Keeps `count` strangers connected to `addr` from `addresses` loopback
/// addresses (127.0.2.0 on) until `stop`: a third silent, a third sending a
/// bare message 1 and stalling, a third a malformed first message. Each
/// connects again a second after the server closes it (or after 10 s).
#[cfg(target_os = "linux")]
fn flood(
    addr: SocketAddr,
    count: usize,
    addresses: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinSet<u64> {
    use tokio::io::AsyncReadExt;
    let mut strangers = tokio::task::JoinSet::new();
    for index in 0..count {
        let host = index % addresses;
        let source = [127, 0, 2 + (host / 256) as u8, (host % 256) as u8];
        let mut stop = stop.clone();
        strangers.spawn(async move {
            let mut connections = 0;
            while !*stop.borrow() {
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.bind(SocketAddr::from((source, 0))).unwrap();
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
    strangers
}

/// `runs` one-shot syncs of `member` with `server`, each after a write of
/// the server's: how many succeeded, and each one's time, sorted.
async fn timed_syncs(
    member: &Node,
    server: &Node,
    addr: SocketAddr,
    runs: usize,
) -> (usize, Vec<Duration>) {
    let mut times = Vec::new();
    let mut served = 0;
    for round in 0..runs {
        server
            .with_mesh(|mesh| mesh.append_app("note", &round.to_be_bytes()))
            .unwrap()
            .unwrap();
        let started = std::time::Instant::now();
        let synced = tokio::time::timeout(Duration::from_secs(10), super::sync(member, addr)).await;
        times.push(started.elapsed());
        if matches!(synced, Ok(Ok(_))) {
            served += 1;
        }
    }
    times.sort();
    (served, times)
}

fn p99(times: &[Duration]) -> Duration {
    times[(times.len() * 99).div_ceil(100).saturating_sub(1)]
}

/// Counts the warning lines about peers at 127.0.2.x, the flood's
/// addresses, once installed as the process's subscriber.
#[cfg(feature = "cli")]
fn flood_warnings() -> &'static std::sync::atomic::AtomicU64 {
    use tracing_subscriber::layer::SubscriberExt;
    struct Count;
    struct Peer(bool);
    impl tracing::field::Visit for Peer {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            if field.name() == "peer" {
                self.0 |= format!("{value:?}").starts_with("127.0.2.");
            }
        }
    }
    static WARNINGS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Count {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let mut peer = Peer(false);
            event.record(&mut peer);
            if *event.metadata().level() == tracing::Level::WARN && peer.0 {
                WARNINGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Count));
    });
    &WARNINGS
}

/// The target of issue 23 §6: with 1,000 strangers connected from 256
/// addresses, silent, stalling after message 1 or sending garbage, and
/// connecting again a second after they are closed, at least 99% of a
/// member's syncs succeed. Prints the quiet and the flooded p99; asserts
/// only a loose bound on the latter (the machine is shared).
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_strangers_leave_members_served() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr, mut keys) = served(dir.path(), 1, NetOptions::new()).await;
    let member = joined(dir.path(), "m.redb", keys.pop().unwrap(), addr).await;
    let (quiet_served, quiet) = timed_syncs(&member, &server, addr, 30).await;
    assert_eq!(quiet_served, 30);
    #[cfg(feature = "cli")]
    let warnings = flood_warnings();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut strangers = flood(addr, 1000, 256, stopped);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (served, flooded) = timed_syncs(&member, &server, addr, 100).await;
    stop.send_replace(true);
    let mut connections = 0;
    while let Some(made) = strangers.join_next().await {
        connections += made.unwrap();
    }
    eprintln!(
        "quiet p99 {:?}, flooded p99 {:?}, served {served}/100, {connections} stranger connections",
        p99(&quiet),
        p99(&flooded)
    );
    assert!(
        connections >= 1000,
        "only {connections} stranger connections"
    );
    assert!(
        served >= 99,
        "only {served} of 100 syncs served under the flood"
    );
    assert!(
        p99(&flooded) < Duration::from_secs(3),
        "{:?}",
        p99(&flooded)
    );
    assert_eq!(digest(&member), digest(&server));
    server.stop();
    // One line a kind every 10 s at most: the flood's refusals (pushed out,
    // malformed, none, busy, refused, ended) are a handful of kinds.
    #[cfg(feature = "cli")]
    {
        let lines = warnings.load(std::sync::atomic::Ordering::Relaxed);
        eprintln!("{lines} warning lines about the flood's {connections} connections");
        assert!(lines <= 20, "{lines} warning lines");
    }
}

/// A member whose server holds as many connections as it allows is told
/// so: `busy`, a could-not-run failure, not a closed connection; a watcher
/// keeps trying (SPEC.md §17.1, §17.6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_tells_a_member_it_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = fast();
    options.max_connections = 1;
    let (server, addr, mut keys) = served(dir.path(), 2, options).await;
    let first = joined(dir.path(), "a.redb", keys.pop().unwrap(), addr).await;
    let second = joined(dir.path(), "b.redb", keys.pop().unwrap(), addr).await;
    let watcher = {
        let first = first.clone();
        tokio::spawn(async move { super::watch(&first, addr).await })
    };
    server
        .with_mesh(|mesh| mesh.append_app("note", b"one"))
        .unwrap()
        .unwrap();
    caught_up(&first, &server, "the watcher holds the one connection").await;
    let error = super::sync(&second, addr).await.unwrap_err();
    assert!(matches!(error, NetError::Busy { .. }), "{error}");
    assert_eq!(
        (error.kind(), error.class()),
        ("busy", ErrorClass::CouldNotRun)
    );
    first.stop();
    let _ = watcher.await;
    // The connection given back, the member is served.
    let waiting = async {
        while super::sync(&second, addr).await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("served once the watcher left");
    server.stop();
}

/// A member's first message sent again, as one copied off the network
/// would be, is dropped: no slot, no message 2 (SPEC.md §17.4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_first_message_is_dropped() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let (server, addr, mut keys) = served(dir.path(), 1, fast()).await;
    let member = joined(dir.path(), "m.redb", keys.pop().unwrap(), addr).await;
    let ephemeral: [u8; 32] = rand::random();
    let mut first = ephemeral.to_vec();
    first.extend(ticket::ticket(&ephemeral, &member.shared.admission().named));
    let mut frame = (first.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(&first);
    let mut answers = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(&frame).await.unwrap();
        // Message 2's length, or the busy signal, or nothing.
        let mut length = [0u8; 2];
        let read = tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut length));
        answers.push(matches!(read.await, Ok(Ok(_))) && length != handshake::BUSY);
        // Hold the first until both are answered.
        std::mem::forget(stream);
    }
    assert_eq!(answers, [true, false], "message 2 once, then nothing");
    server.stop();
}
