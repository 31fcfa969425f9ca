//! Network sync between real `meshlog` processes on loopback (SPEC.md §17):
//! eleven peers, some serving and some gossiping with `sync --watch`, after
//! concurrent writes and concurrent admin rotations, converge to one digest;
//! a killed peer restarts and catches up; a newcomer fetches its first copy
//! over the network; a stranger and a removed member are refused; a peer
//! that sends garbage is cut off and the mesh is unharmed.
#![cfg(feature = "net")]

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use meshlog::{LocalKeys, Mesh, Role};

fn binary() -> PathBuf {
    assert_cmd::cargo::cargo_bin("meshlog")
}

fn run(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .output()
        .expect("run meshlog")
}

/// A free loopback port (bound, read and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A long-running meshlog process, killed when dropped.
struct Peer {
    child: Child,
    log: PathBuf,
}

impl Peer {
    fn start(args: &[String], log: PathBuf) -> Peer {
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary())
            .args(args)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start meshlog");
        Peer { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops it with SIGTERM, as an operator would, and waits.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        wait_for(Duration::from_secs(20), || {
            self.child.try_wait().unwrap().is_some()
        });
        self.child.wait().unwrap()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

/// The digest `meshlog verify` reads from a live file.
fn digest(db: &Path) -> Option<String> {
    let out = run(&["verify", db.to_str().unwrap(), "--json"]);
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    value["digest"].as_str().map(str::to_owned)
}

fn wait_until_listening(port: u16) {
    assert!(
        wait_for(Duration::from_secs(20), || TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "nothing listens on {port}"
    );
}

struct Member {
    name: String,
    db: PathBuf,
    keys: PathBuf,
}

#[test]
fn eleven_processes_converge_and_hostile_peers_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    // The founder, two admins and eight members; each writes on its own
    // copy while apart, and the two admins rotate concurrently from the
    // same epoch: one adds a newcomer, the other removes the last member.
    let founder_keys = LocalKeys::generate();
    founder_keys.save(path("founder.keys")).unwrap();
    let mut founder = Mesh::create(path("founder.redb"), founder_keys, "net test").unwrap();
    founder.set_enabled(true).unwrap();
    let keys: Vec<LocalKeys> = (0..10).map(|_| LocalKeys::generate()).collect();
    for (i, member) in keys.iter().enumerate() {
        let role = if i < 2 { Role::Admin } else { Role::Member };
        founder.add_member(member.package(), role).unwrap();
    }
    let all = founder.export_all();
    let mut members = vec![Member {
        name: "founder".into(),
        db: path("founder.redb"),
        keys: path("founder.keys"),
    }];
    let newcomer = LocalKeys::generate();
    newcomer.save(path("newcomer.keys")).unwrap();
    let removed_id = keys[9].member_id();
    for (i, member_keys) in keys.into_iter().enumerate() {
        let name = format!("p{i}");
        member_keys.save(path(&format!("{name}.keys"))).unwrap();
        let mut mesh = Mesh::join(path(&format!("{name}.redb")), member_keys, &all).unwrap();
        mesh.set_enabled(true).unwrap();
        mesh.append_app("note", format!("written by {name} while apart").as_bytes())
            .unwrap();
        if i == 0 {
            mesh.add_member(newcomer.package(), Role::Member).unwrap();
        }
        if i == 1 {
            mesh.remove_member(removed_id).unwrap();
        }
        mesh.close().unwrap();
        members.push(Member {
            name: name.clone(),
            db: path(&format!("{name}.redb")),
            keys: path(&format!("{name}.keys")),
        });
    }
    founder
        .append_app("note", b"the founder, while apart")
        .unwrap();
    founder.close().unwrap();

    // Three servers that gossip with each other, and eight watchers, each
    // connected to one server.
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let addr = |i: usize| format!("127.0.0.1:{}", ports[i]);
    let args = |member: &Member, rest: Vec<String>| {
        let mut args: Vec<String> = rest;
        args.splice(
            1..1,
            [
                member.db.to_str().unwrap().to_owned(),
                "--keys".into(),
                member.keys.to_str().unwrap().to_owned(),
            ],
        );
        args
    };
    let start_peer = |i: usize| -> Peer {
        let member = &members[i];
        let rest: Vec<String> = if i < 3 {
            let mut rest = vec!["serve".to_owned(), "--listen".into(), addr(i)];
            for other in (0..3).filter(|&o| o != i) {
                rest.push("--peer".into());
                rest.push(addr(other));
            }
            rest
        } else {
            vec![
                "sync".into(),
                "--watch".into(),
                "--peer".into(),
                addr(i % 3),
            ]
        };
        Peer::start(&args(member, rest), path(&format!("{}.log", member.name)))
    };
    let started = Instant::now();
    let mut peers: Vec<Peer> = (0..members.len()).map(start_peer).collect();
    for port in &ports {
        wait_until_listening(*port);
    }

    // A peer that sends garbage is cut off; the server keeps serving.
    {
        let mut garbage = TcpStream::connect(("127.0.0.1", ports[0])).unwrap();
        let _ = garbage.write_all(&[0x42; 70_000]);
    }

    // Every peer but the removed one converges to one digest.
    let live: Vec<usize> = (0..members.len() - 1).collect();
    let converged = wait_for(Duration::from_secs(90), || {
        let digests: Vec<Option<String>> = live.iter().map(|&i| digest(&members[i].db)).collect();
        digests[0].is_some() && digests.iter().all(|d| *d == digests[0])
    });
    let took = started.elapsed();
    println!("{} peers converged in {took:.2?} (bound 90 s)", live.len());
    if !converged {
        for peer in &peers {
            eprintln!("--- {}\n{}", peer.log.display(), peer.log());
        }
    }
    assert!(converged, "the peers did not converge");
    assert!(
        peers[0].log().contains("bad first message"),
        "the garbage peer is logged: {}",
        peers[0].log()
    );

    // The removed member is cut off: its watch ends, refused.
    let removed = &mut peers[members.len() - 1];
    assert!(
        wait_for(Duration::from_secs(30), || removed
            .child
            .try_wait()
            .unwrap()
            .is_some()),
        "the removed member's watch goes on"
    );
    assert_eq!(removed.child.wait().unwrap().code(), Some(1));
    let out = run(&[
        "sync",
        members[10].db.to_str().unwrap(),
        "--keys",
        members[10].keys.to_str().unwrap(),
        "--peer",
        &addr(0),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("removed"));

    // A stranger is refused, and no file is left.
    let stranger = LocalKeys::generate();
    stranger.save(path("stranger.keys")).unwrap();
    let out = run(&[
        "join",
        path("stranger.redb").to_str().unwrap(),
        "--keys",
        path("stranger.keys").to_str().unwrap(),
        "--peer",
        &addr(1),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a member"));
    assert!(!path("stranger.redb").exists());

    // The newcomer the first admin added fetches its first copy: not from
    // a server of a group other than the one it pins, and from its own.
    let group = meshlog::Mesh::open_read_only(&members[0].db)
        .unwrap()
        .group()
        .to_string();
    let newcomer_joins = |pinned: &str| {
        run(&[
            "join",
            path("newcomer.redb").to_str().unwrap(),
            "--keys",
            path("newcomer.keys").to_str().unwrap(),
            "--peer",
            &addr(2),
            "--group",
            pinned,
        ])
    };
    let out = newcomer_joins(&"ab".repeat(32));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("is of group"));
    assert!(!path("newcomer.redb").exists());
    let out = newcomer_joins(&group);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(digest(&path("newcomer.redb")), digest(&members[0].db));

    // A killed peer: it misses a write, restarts, and catches up; its own
    // write made while it was down reaches everyone.
    let victim = 5;
    let _ = peers[victim].child.kill();
    let _ = peers[victim].child.wait();
    // The founder's server stops cleanly to write, and starts again.
    assert!(peers[0].terminate().success());
    let out = run(&[
        "append",
        members[0].db.to_str().unwrap(),
        "--keys",
        members[0].keys.to_str().unwrap(),
        "--kind",
        "note",
        "--payload",
        "while p4 is down",
    ]);
    assert!(out.status.success());
    peers[0] = start_peer(0);
    let out = run(&[
        "append",
        members[victim].db.to_str().unwrap(),
        "--keys",
        members[victim].keys.to_str().unwrap(),
        "--kind",
        "note",
        "--payload",
        "written while killed",
    ]);
    assert!(out.status.success());
    let restarted = Instant::now();
    peers[victim] = start_peer(victim);
    let caught_up = wait_for(Duration::from_secs(60), || {
        let digests: Vec<Option<String>> = live.iter().map(|&i| digest(&members[i].db)).collect();
        digests[0].is_some() && digests.iter().all(|d| *d == digests[0])
    });
    println!(
        "after a restart, converged again in {:.2?}",
        restarted.elapsed()
    );
    assert!(caught_up, "the restarted peer did not catch up");

    // Servers stop cleanly on SIGTERM and leave files that verify.
    for peer in peers.iter_mut().take(3) {
        assert!(peer.terminate().success());
    }
    for member in &members {
        let out = run(&["verify", member.db.to_str().unwrap()]);
        assert!(out.status.success(), "{} does not verify", member.name);
    }
}
