//! Encoded bytes of one rotation at 100, 1,000 and 10,000 members: a
//! refresh (no changes: the envelope, 64 bytes a member, and little else),
//! and a rotation adding one member (the refresh plus the newcomer's key
//! package). A bench cannot assert sizes; this prints them:
//!
//! `cargo run --release --example rotation_size`

#[path = "../benches/common/mod.rs"]
mod common;

use meshlog::{Change, Role};

fn main() {
    println!("| members | refresh, bytes | per member | adding one member, bytes |");
    println!("|---|---|---|---|");
    for members in [100u32, 1_000, 10_000] {
        let dir = tempfile::tempdir().expect("temporary folder");
        let mut mesh = common::mesh_with_members(&dir.path().join("mesh.redb"), members, &[]);
        let size =
            |mesh: &meshlog::Mesh, hash| mesh.event(hash).expect("the rotation").to_record().len();
        let refresh = mesh.refresh("size").expect("refresh");
        let refresh_bytes = size(&mesh, refresh);
        let newcomer = common::keys(members);
        let addition = mesh
            .rotate(
                vec![Change::Add {
                    package: newcomer.package(),
                    role: Role::Member,
                }],
                "size",
            )
            .expect("add");
        println!(
            "| {members} | {refresh_bytes} | {:.1} | {} |",
            refresh_bytes as f64 / f64::from(members),
            size(&mesh, addition)
        );
    }
}
