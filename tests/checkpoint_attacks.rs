//! Attacks on the member's checkpoint and the ledger's rows on disk
//! (SPEC.md §9.7, §10): whoever can write the file but lacks the member's
//! keys must never bring the member's own writable open (which restores
//! its checkpoint) to a state other than a full verification's of the same
//! file; it may only refuse, at open or in the operation that reads a
//! changed row. Each test was an attack; those that found a hole failed
//! before the fix named in its comment.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use meshlog::{
    Equivocation, EventHash, EventStatus, MemberId, Mesh, MeshOptions, Role, Roster, SignedEvent,
};

/// Everything a reader can see of a mesh's state.
#[derive(Debug, PartialEq)]
struct State {
    len: usize,
    digest: String,
    roster: Roster,
    equivocations: Vec<Equivocation>,
    tips: Vec<EventHash>,
    log: Vec<(EventHash, Option<EventStatus>, bool)>,
    enabled: Vec<(MemberId, bool)>,
    epochs: Vec<(EventHash, bool)>,
    secrets: Vec<(EventHash, Option<[u8; 32]>)>,
}

fn state(mesh: &Mesh, members: &[u8]) -> State {
    let epochs: Vec<(EventHash, bool)> = mesh
        .epochs()
        .into_iter()
        .map(|epoch| (epoch.hash, epoch.applied))
        .collect();
    let secrets = epochs
        .iter()
        .map(|(hash, _)| (*hash, mesh.epoch_secret(*hash).ok().map(|s| *s.expose())))
        .collect();
    State {
        len: mesh.len(),
        digest: format!("{:?}", mesh.digest()),
        roster: mesh.roster().clone(),
        equivocations: mesh.equivocations(),
        tips: mesh.tips().to_vec(),
        log: mesh
            .log()
            .map(|entry| (entry.event.hash(), entry.status, entry.left_out))
            .collect(),
        enabled: members
            .iter()
            .map(|n| {
                let id = keys(*n).member_id();
                (id, mesh.is_member_enabled(id))
            })
            .collect(),
        epochs,
        secrets,
    }
}

/// The state a full verification of `path` gives, with member `n`'s keys
/// for the secrets; or `None` if it refuses the file. Reads a copy, so
/// the file is left as it is.
fn full_state(path: &Path, n: u8, members: &[u8]) -> Option<State> {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("audit.redb");
    std::fs::copy(path, &copy).unwrap();
    let journal = PathBuf::from(format!("{}-journal", path.display()));
    if journal.exists() {
        std::fs::copy(&journal, format!("{}-journal", copy.display())).unwrap();
    }
    let mesh = MeshOptions::new()
        .verify_everything(true)
        .open_read_only(&copy, Some(keys(n)))
        .ok()?;
    Some(state(&mesh, members))
}

/// The member's own open, with the default options (its checkpoint).
fn member_open(path: &Path, n: u8) -> meshlog::Result<Mesh> {
    options(n).open(path, keys(n))
}

/// The property of SPEC.md §10: the member's own open refuses, or reaches
/// the full verification's state; if the full verification refuses, the
/// member's open must refuse too, or give the state of the file before it
/// was changed (`pristine`) and refuse every operation reading a changed
/// row. Returns the member's mesh if it opened.
fn assert_same_or_refused(path: &Path, n: u8, members: &[u8], pristine: &State) -> Option<Mesh> {
    let full = full_state(path, n, members);
    let mesh = member_open(path, n).ok()?;
    let ours = state(&mesh, members);
    // A query that cannot fail ends short on a row that does not check,
    // and the mesh names the failure (SPEC.md §9.7): that is a refusal.
    if mesh.check_reads().is_err() {
        return None;
    }
    match full {
        Some(full) => assert_eq!(
            ours, full,
            "the member's open differs from a full verification"
        ),
        None => assert_eq!(
            ours, *pristine,
            "a full verification refuses the file, and the member's open gives another state"
        ),
    }
    Some(mesh)
}

fn seat_key(author: MemberId, seq: u64, hash: EventHash) -> Vec<u8> {
    let mut key = author.as_bytes().to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key.extend_from_slice(hash.as_bytes());
    key
}

fn table_rows(path: &Path, table: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    dump(path)
        .into_iter()
        .filter(|(name, _, _)| name == table)
        .map(|(_, key, value)| (key, value))
        .collect()
}

fn checkpoint_row(path: &Path, n: u8) -> Vec<u8> {
    let key = [&b"checkpoint/"[..], keys(n).member_id().as_bytes()].concat();
    table_rows(path, "meta")
        .into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
        .expect("the member's checkpoint")
}

fn set_checkpoint(path: &Path, n: u8, value: &[u8]) {
    let key = [&b"checkpoint/"[..], keys(n).member_id().as_bytes()].concat();
    edit_projection(path, "meta", |meta| {
        meta.insert(key.as_slice(), value).unwrap();
    });
}

/// The position of the event `hash` in the file.
fn position_of(path: &Path, hash: EventHash) -> u64 {
    dump(path)
        .into_iter()
        .filter(|(name, _, _)| name == "events")
        .find(|(_, _, record)| record_hash(record) == hash)
        .map(|(_, key, _)| u64::from_be_bytes(key.try_into().unwrap()))
        .expect("held")
}

/// A founder (1) with an enabled member (2), a few events each, closed.
fn small_group(dir: &tempfile::TempDir) -> (PathBuf, PathBuf) {
    let path = db_path(dir, "founder.redb");
    let bob_path = db_path(dir, "bob.redb");
    let mut founder = options(1).create(&path, keys(1), "attacks").unwrap();
    founder.set_enabled(true).unwrap();
    founder.add_member(package(2), Role::Member).unwrap();
    let mut bob = join(&founder, &bob_path, 2);
    bob.set_enabled(true).unwrap();
    for i in 0..3 {
        founder
            .append_app("note", format!("f{i}").as_bytes())
            .unwrap();
        bob.append_app("note", format!("b{i}").as_bytes()).unwrap();
    }
    exchange(&mut founder, &mut bob);
    founder.close().unwrap();
    bob.close().unwrap();
    (path, bob_path)
}

fn copy_of(dir: &tempfile::TempDir, path: &Path, name: &str) -> PathBuf {
    let copy = db_path(dir, name);
    std::fs::copy(path, &copy).unwrap();
    copy
}

// ---------------------------------------------------------------------
// Holes.
// ---------------------------------------------------------------------

/// Deleting the `seats` and `hashes` rows of one event of a forked
/// position: the forked position is in the checkpoint (memory), so
/// `MeshState::holds` finds the position "held" and reports no lost row,
/// and `Ledger::contains` finds no hash row. Offered again, the event is
/// taken a second time and written at a new position: the file then holds
/// it twice, and every audit refuses it from then on.
#[test]

fn the_rows_of_a_forked_event_deleted_let_it_be_taken_twice() {
    let dir = fast_tempdir();
    let path = db_path(&dir, "founder.redb");
    let mut founder = options(1).create(&path, keys(1), "fork").unwrap();
    founder.set_enabled(true).unwrap();
    let copy = db_path(&dir, "copy.redb");
    founder.backup(&copy).unwrap();
    let mut twin = options(9).open(&copy, keys(1)).unwrap();
    founder.append_app("note", b"one story").unwrap();
    let two = twin.append_app("note", b"another story").unwrap();
    // `two` is no head: its branch goes on.
    twin.append_app("note", b"and on").unwrap();
    send(&twin, &mut founder);
    assert_eq!(founder.equivocations().len(), 1);
    let record = founder.event(two).unwrap().to_record();
    let seq = founder.event(two).unwrap().event().seq;
    let group = founder.group();
    founder.close().unwrap();
    drop(twin);
    let pristine = full_state(&path, 1, &[1]).unwrap();
    let pristine_len = pristine.len;

    let key = seat_key(keys(1).member_id(), seq, two);
    edit_projection(&path, "seats", |seats| {
        seats.remove(key.as_slice()).unwrap().expect("the row");
    });
    edit_projection(&path, "hashes", |hashes| {
        hashes
            .remove(&two.as_bytes()[..])
            .unwrap()
            .expect("the row");
    });
    assert!(full_state(&path, 1, &[1]).is_none(), "an audit refuses");

    let Ok(mut mesh) = member_open(&path, 1) else {
        return;
    };
    let taken = mesh.ingest(&batch_of(group, vec![record]));
    if let Ok(taken) = taken {
        assert_eq!(
            (taken.added, mesh.len()),
            (0, pristine_len),
            "an event the file holds was taken again"
        );
    }
    drop(mesh);
    // Had it been written twice, no audit would ever open the file again.
    assert!(
        member_open(&path, 1).is_err() || full_state(&path, 1, &[1]).is_none(),
        "unreachable if the assertion above held"
    );
}

/// A deleted `hashes` row is never reported as a failed read: `position`
/// answers `None` as for an event never held. `Mesh::event` then says the
/// member holds no such event, and the digest leaves it out, silently.
#[test]

fn a_deleted_hash_row_is_answered_as_an_absent_event() {
    let dir = fast_tempdir();
    let (path, _) = small_group(&dir);
    let pristine = full_state(&path, 1, &[1, 2]).unwrap();
    // An old event of the founder's, no head and no rotation.
    let mesh = Mesh::open_read_only(&path).unwrap();
    let old = mesh
        .log()
        .map(|entry| entry.event.into_owned())
        .find(|event| {
            event.event().author == keys(1).member_id()
                && matches!(event.event().body, meshlog::Body::App { .. })
        })
        .unwrap()
        .hash();
    drop(mesh);
    edit_projection(&path, "hashes", |hashes| {
        hashes
            .remove(&old.as_bytes()[..])
            .unwrap()
            .expect("the row");
    });
    assert!(full_state(&path, 1, &[1, 2]).is_none(), "an audit refuses");
    let Ok(mesh) = member_open(&path, 1) else {
        return;
    };
    assert!(
        mesh.event(old).is_some(),
        "the member's mesh says it does not hold an event its file holds"
    );
    assert_eq!(
        format!("{:?}", mesh.digest()),
        pristine.digest,
        "a digest over rows that did not check"
    );
}

/// The row tags bind an event's hash, which covers the event's bytes but
/// not its signature: a record below the checkpoint whose signature was
/// changed is read back without complaint, and sent to peers, which
/// refuse the whole batch (and no one can join from this member).
#[test]

fn a_changed_signature_below_the_checkpoint_is_sent() {
    let dir = fast_tempdir();
    let (path, _) = small_group(&dir);
    let pristine = full_state(&path, 1, &[1, 2]).unwrap();
    let position = 3;
    let original = record(&path, position);
    edit_events(&path, |events| {
        let mut changed = original.clone();
        changed[5] ^= 0x40;
        events.insert(position, changed.as_slice()).unwrap();
    });
    assert!(full_state(&path, 1, &[1, 2]).is_none(), "an audit refuses");
    let Some(mesh) = assert_same_or_refused(&path, 1, &[1, 2], &pristine) else {
        return;
    };
    let sent = mesh.export_all();
    assert!(
        !sent
            .records()
            .iter()
            .any(|r| r[64..] == original[64..] && *r != original),
        "a record with a forged signature is sent"
    );
    // What a peer makes of it.
    let joined = options(3).join(db_path(&dir, "newcomer.redb"), keys(3), &carried(&sent));
    assert!(joined.is_ok(), "{:?}", joined.err());
}

/// Rows tagged by the member in another copy of its own file (a backup it
/// later opened and wrote to: SPEC.md §9.4, the scenario of
/// `an_author_writing_on_two_copies_of_its_file_is_kept_as_evidence`)
/// check in this one: the tag binds neither the file nor the event's
/// record. A `seats` row of an event only the other copy holds makes the
/// member's open believe it holds that event: offered it, the member
/// answers "known" and never takes it (and its author's feed stalls).
#[test]

fn a_row_from_another_copy_of_the_members_file_makes_an_event_look_held() {
    let dir = fast_tempdir();
    let (path, bob_path) = small_group(&dir);
    let mut founder = member_open(&path, 1).unwrap();
    let other = db_path(&dir, "other-copy.redb");
    founder.backup(&other).unwrap();
    // The other copy takes a new event of Bob's; this one does not, and
    // grows past it with events of its own.
    let mut bob = options(2).open(&bob_path, keys(2)).unwrap();
    let mut copy = member_open(&other, 1).unwrap();
    let y = bob.append_app("note", b"only in the other copy").unwrap();
    send(&bob, &mut copy);
    let y_record = bob.event(y).unwrap().to_record();
    let y_seq = bob.event(y).unwrap().event().seq;
    for i in 0..4 {
        founder
            .append_app("note", format!("more {i}").as_bytes())
            .unwrap();
    }
    let group = founder.group();
    founder.close().unwrap();
    copy.close().unwrap();
    bob.close().unwrap();
    let key = seat_key(keys(2).member_id(), y_seq, y);
    let (_, row) = table_rows(&other, "seats")
        .into_iter()
        .find(|(k, _)| *k == key)
        .unwrap();
    let y_position = u64::from_be_bytes(row[..8].try_into().unwrap());
    assert!(y_position < Mesh::open_read_only(&path).unwrap().len() as u64);
    let pristine = full_state(&path, 1, &[1, 2]).unwrap();

    edit_projection(&path, "seats", |seats| {
        seats.insert(key.as_slice(), row.as_slice()).unwrap();
    });
    assert!(full_state(&path, 1, &[1, 2]).is_none(), "an audit refuses");
    let Some(mut mesh) = assert_same_or_refused(&path, 1, &[1, 2], &pristine) else {
        return;
    };
    match mesh.ingest(&batch_of(group, vec![y_record])) {
        Err(_) => {}
        Ok(taken) => assert_eq!(
            taken.added, 1,
            "an event the file does not hold is answered as known, and never taken"
        ),
    }
}

/// `Store::write` checks `Ledger::failure` before it computes the
/// projection rows and the checkpoint: a read that fails while the
/// checkpoint's left-out set is computed (it reads every record when a
/// rotation is void) ends the read short, and the set computed from what
/// was read is written under the member's tag, and the write succeeds.
/// Once the changed record is put back, the member's next open restores
/// a wrong left-out set: every check passes, and its digest, log and
/// exports differ from a full verification's, for good.
#[test]

fn a_read_failing_while_the_checkpoint_is_computed_is_tagged_into_it() {
    let dir = fast_tempdir();
    let mut founder = options(1)
        .create(db_path(&dir, "founder.redb"), keys(1), "void")
        .unwrap();
    founder.set_enabled(true).unwrap();
    founder.add_member(package(2), Role::Admin).unwrap();
    founder.add_member(package(3), Role::Member).unwrap();
    let mut admin = join(&founder, &db_path(&dir, "admin.redb"), 2);
    admin.set_enabled(true).unwrap();
    send(&admin, &mut founder);
    let member_path = db_path(&dir, "member.redb");
    let mut member = join(&founder, &member_path, 3);
    member.set_enabled(true).unwrap();
    send(&member, &mut founder);
    send(&founder, &mut admin);
    // The admin, apart, refreshes; meanwhile the founder fires it. The
    // member takes the refresh first, then the firing: its copy keeps the
    // void refresh, left out (SPEC.md §6.4).
    let refresh = admin.refresh("apart").unwrap();
    founder.remove_member(keys(2).member_id()).unwrap();
    send(&admin, &mut member);
    send(&founder, &mut member);
    assert!(
        member
            .log()
            .any(|entry| entry.event.hash() == refresh && entry.left_out)
    );
    member.close().unwrap();
    drop((founder, admin));
    let members = [1, 2, 3];
    let truth = full_state(&member_path, 3, &members).unwrap();
    let position = 1;
    assert!(position < position_of(&member_path, refresh));
    let original = record(&member_path, position);

    // A record below the void rotation is changed while the admin
    // writes...
    edit_events(&member_path, |events| {
        let mut changed = original.clone();
        *changed.last_mut().unwrap() ^= 1;
        events.insert(position, changed.as_slice()).unwrap();
    });
    // (Both succeed: the failed read came after `Store::write`'s check.)
    if let Ok(mut mesh) = member_open(&member_path, 3) {
        let _ = mesh.append_app("note", b"written while a record is changed");
        let _ = mesh.close();
    }
    // ...and comes back.
    edit_events(&member_path, |events| {
        events.insert(position, original.as_slice()).unwrap();
    });
    let Some(full) = full_state(&member_path, 3, &members) else {
        return;
    };
    assert!(full.len >= truth.len);
    let mesh = member_open(&member_path, 3).unwrap();
    assert_eq!(
        state(&mesh, &members),
        full,
        "the member's checkpoint now states another left-out set"
    );
}

// ---------------------------------------------------------------------
// Attacks that fail (regression tests).
// ---------------------------------------------------------------------

/// The member's open restores its checkpoint on an untouched file, and
/// gives a full verification's state.
#[test]
fn an_untouched_file_opens_from_its_checkpoint_to_the_full_state() {
    let dir = fast_tempdir();
    let (path, _) = small_group(&dir);
    let full = full_state(&path, 1, &[1, 2]).unwrap();
    let mesh = member_open(&path, 1).unwrap();
    assert_eq!(mesh.report().checkpointed, mesh.len());
    assert_eq!(state(&mesh, &[1, 2]), full);
}

/// An older checkpoint of the same file (valid tag) put back: the events
/// after it are verified as new, and the state is the full one.
#[test]
fn an_older_checkpoint_replayed_gives_the_full_state() {
    let dir = fast_tempdir();
    let (path, _) = small_group(&dir);
    let old = checkpoint_row(&path, 1);
    let mut founder = member_open(&path, 1).unwrap();
    founder.rotate(vec![], "refresh").unwrap();
    founder.add_member(package(3), Role::Member).unwrap();
    founder.append_app("note", b"later").unwrap();
    founder.close().unwrap();
    let full = full_state(&path, 1, &[1, 2, 3]).unwrap();
    set_checkpoint(&path, 1, &old);
    let mesh = member_open(&path, 1).unwrap();
    assert!(mesh.report().checkpointed < mesh.len());
    assert_eq!(state(&mesh, &[1, 2, 3]), full);
    drop(mesh);
    // Its next write tags the events after the old checkpoint again.
    let mut mesh = member_open(&path, 1).unwrap();
    mesh.append_app("note", b"again").unwrap();
    mesh.close().unwrap();
    let full = full_state(&path, 1, &[1, 2, 3]).unwrap();
    let mesh = member_open(&path, 1).unwrap();
    assert_eq!(mesh.report().checkpointed, mesh.len());
    assert_eq!(state(&mesh, &[1, 2, 3]), full);
}

/// A newer checkpoint over an older copy of the file's rows and events
/// (the events table cut short): more events than the file holds, so the
/// checkpoint is not used, and the open is a full verification.
#[test]
fn a_newer_checkpoint_over_older_events_is_not_used() {
    let dir = fast_tempdir();
    let (path, _) = small_group(&dir);
    let older = copy_of(&dir, &path, "older.redb");
    let mut founder = member_open(&path, 1).unwrap();
    founder.append_app("note", b"newer").unwrap();
    founder.close().unwrap();
    let newer = checkpoint_row(&path, 1);
    set_checkpoint(&older, 1, &newer);
    let full = full_state(&older, 1, &[1, 2]).unwrap();
    let mesh = member_open(&older, 1).unwrap();
    assert_eq!(mesh.report().checkpointed, 0);
    assert_eq!(state(&mesh, &[1, 2]), full);
}

/// The events table of the newer copy under the rows and checkpoint of
/// the older: the newer events are verified as new.
#[test]
fn newer_events_under_an_older_checkpoint_and_rows_give_the_full_state() {
    let dir = fast_tempdir();
    let (path, _) = small_group(&dir);
    let older = copy_of(&dir, &path, "older.redb");
    let mut founder = member_open(&path, 1).unwrap();
    founder.rotate(vec![], "newer").unwrap();
    founder.append_app("note", b"newer").unwrap();
    founder.close().unwrap();
    let newer_events = table_rows(&path, "events");
    let old_len = table_rows(&older, "events").len();
    edit_events(&older, |events| {
        for (key, value) in &newer_events[old_len..] {
            let position = u64::from_be_bytes(key.as_slice().try_into().unwrap());
            events.insert(position, value.as_slice()).unwrap();
        }
    });
    let full = full_state(&older, 1, &[1, 2]);
    let mesh = member_open(&older, 1);
    match (full, mesh) {
        (Some(full), Ok(mesh)) => assert_eq!(state(&mesh, &[1, 2]), full),
        (None, Ok(mesh)) => {
            // The audit refuses for the missing rows; the member's open
            // verified the new events as new: the truth of the events.
            assert_eq!(
                state(&mesh, &[1, 2]),
                full_state(&path, 1, &[1, 2]).unwrap()
            );
        }
        (_, Err(_)) => {}
    }
}

/// Every byte of every `seats`, `hashes` and `rotations` row and of the
/// checkpoint, flipped one at a time: the member's open refuses, or gives
/// the full verification's state (the pristine one when the audit
/// refuses).
#[test]

fn every_flipped_byte_of_the_ledger_rows_is_refused_or_harmless() {
    let dir = fast_tempdir();
    let (path, _) = small_group(&dir);
    let pristine = full_state(&path, 1, &[1, 2]).unwrap();
    let mut failures = Vec::new();
    let mut tried = 0;
    for table in ["seats", "hashes", "rotations", "meta"] {
        for (key, value) in table_rows(&path, table) {
            if table == "meta" && !key.starts_with(b"checkpoint/") {
                continue;
            }
            for index in 0..value.len() {
                tried += 1;
                let copy = copy_of(&dir, &path, "flipped.redb");
                let mut changed = value.clone();
                changed[index] ^= 1;
                edit_projection(&copy, table, |rows| {
                    rows.insert(key.as_slice(), changed.as_slice()).unwrap();
                });
                let full = full_state(&copy, 1, &[1, 2]);
                if let Ok(mesh) = member_open(&copy, 1) {
                    let ours = state(&mesh, &[1, 2]);
                    let wanted = full.as_ref().unwrap_or(&pristine);
                    // A read that did not check is named (SPEC.md §9.7).
                    if ours != *wanted && mesh.check_reads().is_ok() {
                        failures.push(format!("{table} byte {index}"));
                    }
                }
                drop(std::fs::remove_file(&copy));
                drop(std::fs::remove_file(copy.with_extension("redb-journal")));
            }
        }
    }
    assert!(tried > 100);
    assert!(
        failures.is_empty(),
        "{} of {tried}: {failures:?}",
        failures.len()
    );
}

/// A changed checkpoint (any byte) is not used: the open verifies
/// everything and gives the full state.
#[test]
fn a_changed_checkpoint_is_not_used() {
    let dir = fast_tempdir();
    let (path, _) = small_group(&dir);
    let full = full_state(&path, 1, &[1, 2]).unwrap();
    let checkpoint = checkpoint_row(&path, 1);
    for index in (0..checkpoint.len()).step_by(7) {
        let copy = copy_of(&dir, &path, "changed.redb");
        let mut changed = checkpoint.clone();
        changed[index] ^= 0x10;
        set_checkpoint(&copy, 1, &changed);
        let mesh = member_open(&copy, 1).unwrap();
        assert_eq!(mesh.report().checkpointed, 0, "byte {index}");
        assert_eq!(state(&mesh, &[1, 2]), full, "byte {index}");
    }
    // Another member's checkpoint under this member's key: not used.
    let bob_checkpoint = checkpoint_row(&db_path(&dir, "bob.redb"), 2);
    let copy = copy_of(&dir, &path, "foreign.redb");
    set_checkpoint(&copy, 1, &bob_checkpoint);
    let mesh = member_open(&copy, 1).unwrap();
    assert_eq!(mesh.report().checkpointed, 0);
    assert_eq!(state(&mesh, &[1, 2]), full);
}

/// A `rotations` row dropped, added or moved: the count and digest under
/// the checkpoint's tag catch it (the checkpoint is not used), and the
/// full verification refuses the rows.
#[test]
fn the_rotations_rows_cannot_be_changed_unseen() {
    let dir = fast_tempdir();
    let (path, _) = small_group(&dir);
    let mut founder = member_open(&path, 1).unwrap();
    founder.rotate(vec![], "one").unwrap();
    founder.append_app("note", b"between").unwrap();
    founder.rotate(vec![], "two").unwrap();
    founder.close().unwrap();
    let pristine = full_state(&path, 1, &[1, 2]).unwrap();
    let rows = table_rows(&path, "rotations");
    assert!(rows.len() >= 3);
    type Edit<'a> = Box<dyn Fn(&mut redb::Table<&[u8], &[u8]>) + 'a>;
    let edits: Vec<Edit> = vec![
        Box::new(|t| {
            t.remove(&rows[1].0[..]).unwrap();
        }),
        Box::new(|t| {
            t.insert(&1u64.to_be_bytes()[..], &[][..]).unwrap();
        }),
        Box::new(|t| {
            t.remove(&rows[1].0[..]).unwrap();
            t.insert(&1u64.to_be_bytes()[..], &[][..]).unwrap();
        }),
        Box::new(|t| {
            t.insert(&u64::MAX.to_be_bytes()[..], &[][..]).unwrap();
        }),
    ];
    for (n, edit) in edits.iter().enumerate() {
        let copy = copy_of(&dir, &path, "rotations.redb");
        edit_projection(&copy, "rotations", |t| edit(t));
        if let Some(mesh) = assert_same_or_refused(&copy, 1, &[1, 2], &pristine) {
            // A row past every position the checkpoint covers is not
            // read by it (harmless, though an audit refuses the file).
            if n != 3 {
                assert_eq!(
                    mesh.report().checkpointed,
                    0,
                    "edit {n}: the checkpoint was used"
                );
            }
        }
    }
}

/// A shared writer's events (rows untagged, no checkpoint of its own)
/// followed by the owner's open: the honest accident opens, the shared
/// events are verified as new, and the owner's next write tags them.
#[test]
fn a_shared_writers_events_are_verified_anew_by_the_owner() {
    let dir = fast_tempdir();
    let (path, _) = small_group(&dir);
    let mut shared = options(2).shared_copy(true).open(&path, keys(2)).unwrap();
    shared
        .append_app("note", b"bob on the founder's copy")
        .unwrap();
    shared.close().unwrap();
    let full = full_state(&path, 1, &[1, 2]).unwrap();
    let mut mesh = member_open(&path, 1).unwrap();
    assert!(mesh.report().checkpointed < mesh.len());
    assert_eq!(state(&mesh, &[1, 2]), full);
    mesh.append_app("note", b"the owner again").unwrap();
    mesh.close().unwrap();
    let full = full_state(&path, 1, &[1, 2]).unwrap();
    let mesh = member_open(&path, 1).unwrap();
    assert_eq!(mesh.report().checkpointed, mesh.len());
    assert_eq!(state(&mesh, &[1, 2]), full);
}

/// A shared writer whose untagged rows are then changed (their positions
/// made to point below the checkpoint): refused or harmless.
#[test]
fn a_shared_writers_rows_changed_are_refused_or_harmless() {
    let dir = fast_tempdir();
    let (path, _) = small_group(&dir);
    let mut shared = options(2).shared_copy(true).open(&path, keys(2)).unwrap();
    let new = shared
        .append_app("note", b"bob on the founder's copy")
        .unwrap();
    shared.close().unwrap();
    let pristine = full_state(&path, 1, &[1, 2]).unwrap();
    let copy = copy_of(&dir, &path, "moved.redb");
    edit_projection(&copy, "hashes", |t| {
        let mut value = 2u64.to_be_bytes().to_vec();
        value.extend_from_slice(&[0; 16]);
        t.insert(&new.as_bytes()[..], value.as_slice()).unwrap();
    });
    if let Some(mut mesh) = assert_same_or_refused(&copy, 1, &[1, 2], &pristine) {
        mesh.append_app("note", b"after").unwrap();
    }
}

/// A file of store format 3 (no ledger rows, no checkpoint): read with a
/// full verification, upgraded by the first write, then restored from its
/// checkpoint with the same state.
#[test]
fn a_format_3_file_is_upgraded_and_then_restored() {
    let dir = fast_tempdir();
    let (path, _) = small_group(&dir);
    let full = full_state(&path, 1, &[1, 2]).unwrap();
    downgrade(&path);
    let mesh = member_open(&path, 1).unwrap();
    assert_eq!(mesh.report().checkpointed, 0);
    assert_eq!(state(&mesh, &[1, 2]), full);
    drop(mesh);
    let mut mesh = member_open(&path, 1).unwrap();
    mesh.append_app("note", b"upgrades").unwrap();
    mesh.close().unwrap();
    let full = full_state(&path, 1, &[1, 2]).unwrap();
    let mesh = member_open(&path, 1).unwrap();
    assert_eq!(mesh.report().checkpointed, mesh.len());
    assert_eq!(state(&mesh, &[1, 2]), full);
}

/// A format-3 file that still holds ledger tables (left by whoever wrote
/// it): the upgrade's write must not keep rows it did not write, or every
/// later open is refused.
#[test]
fn a_format_3_file_with_stray_rows_upgrades_to_a_file_that_opens() {
    let dir = fast_tempdir();
    let (path, _) = small_group(&dir);
    let key = [&b"checkpoint/"[..], keys(1).member_id().as_bytes()].concat();
    edit_projection(&path, "meta", |meta| {
        meta.insert(&b"format"[..], &3u16.to_be_bytes()[..])
            .unwrap();
        meta.remove(key.as_slice()).unwrap();
    });
    // A stray rotations row at a position holding no rotation.
    edit_projection(&path, "rotations", |t| {
        t.insert(&3u64.to_be_bytes()[..], &[][..]).unwrap();
    });
    let mut mesh = member_open(&path, 1).unwrap();
    mesh.append_app("note", b"upgrades").unwrap();
    mesh.close().unwrap();
    let full = full_state(&path, 1, &[1, 2]);
    let mesh = member_open(&path, 1);
    assert!(
        full.is_some() || mesh.is_ok(),
        "a file this build upgraded is refused by every open"
    );
    if let (Some(full), Ok(mesh)) = (full, mesh) {
        assert_eq!(state(&mesh, &[1, 2]), full);
    }
}

/// Makes `path` a file of store format 3: no ledger tables, no
/// checkpoint, the format marker 3.
fn downgrade(path: &Path) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    for table in ["seats", "hashes", "rotations"] {
        txn.delete_table(redb::TableDefinition::<&[u8], &[u8]>::new(table))
            .unwrap();
    }
    {
        let mut meta = txn
            .open_table(redb::TableDefinition::<&[u8], &[u8]>::new("meta"))
            .unwrap();
        meta.insert(&b"format"[..], &3u16.to_be_bytes()[..])
            .unwrap();
        let stale: Vec<Vec<u8>> = {
            use redb::ReadableTable;
            meta.iter()
                .unwrap()
                .map(|row| row.unwrap().0.value().to_vec())
                .filter(|key| key.starts_with(b"checkpoint/"))
                .collect()
        };
        for key in stale {
            meta.remove(key.as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
}

/// The events table cut short (the newest events gone), rows and
/// checkpoint kept: the checkpoint covers more than the file holds, and a
/// full verification refuses the rows of events it does not hold.
#[test]
fn a_shortened_events_table_is_refused() {
    let dir = fast_tempdir();
    let (path, _) = small_group(&dir);
    let len = table_rows(&path, "events").len() as u64;
    edit_events(&path, |events| {
        events.remove(len - 1).unwrap();
    });
    assert!(full_state(&path, 1, &[1, 2]).is_none());
    assert!(member_open(&path, 1).is_err());
}

/// An event of the file replaced by another (its rows kept): the
/// replacement's seat row is missing, so its read fails.
#[test]
fn a_replaced_record_fails_its_read() {
    let dir = fast_tempdir();
    let (path, _) = small_group(&dir);
    let pristine = full_state(&path, 1, &[1, 2]).unwrap();
    let len = table_rows(&path, "events").len() as u64;
    let last = record(&path, len - 1);
    edit_events(&path, |events| {
        events.insert(2, last.as_slice()).unwrap();
    });
    if let Some(mut mesh) = assert_same_or_refused(&path, 1, &[1, 2], &pristine) {
        assert!(mesh.append_app("note", b"after").is_err());
    }
}

/// A `seats` row deleted below a feed's furthest head: the member's next
/// write through that feed fails (SPEC.md §10), and nothing is written.
#[test]
fn a_deleted_seat_row_fails_the_operation_that_reads_it() {
    let dir = fast_tempdir();
    let (path, _) = small_group(&dir);
    let mesh = Mesh::open_read_only(&path).unwrap();
    let bob = keys(2).member_id();
    let events: Vec<SignedEvent> = mesh
        .log()
        .map(|entry| entry.event.into_owned())
        .filter(|event| event.event().author == bob)
        .collect();
    let group = mesh.group();
    drop(mesh);
    // Bob's first event: no head.
    let first = &events[0];
    let key = seat_key(bob, first.event().seq, first.hash());
    edit_projection(&path, "seats", |seats| {
        seats.remove(key.as_slice()).unwrap().expect("the row");
    });
    let Ok(mut mesh) = member_open(&path, 1) else {
        return;
    };
    let before = std::fs::read(&path).unwrap();
    let again = mesh.ingest(&batch_of(group, vec![first.to_record()]));
    match again {
        Err(_) => assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "a refused ingest wrote"
        ),
        Ok(taken) => assert_eq!(taken.added, 0, "taken twice"),
    }
}

/// A crash mid-session (the journal holds events the file lacks): the
/// member's open replays the journal onto its checkpoint and reaches the
/// full state.
#[test]
fn a_journal_replayed_onto_the_checkpoint_gives_the_full_state() {
    let dir = fast_tempdir();
    let (path, _) = small_group(&dir);
    let mut founder = member_open(&path, 1).unwrap();
    founder.append_app("note", b"journaled one").unwrap();
    founder.append_app("note", b"journaled two").unwrap();
    // A crash: no checkpoint on the way out. The file and its journal as
    // the crash left them, at another path (this process still holds the
    // lock of the first).
    std::mem::forget(founder);
    let crashed = db_path(&dir, "crashed.redb");
    std::fs::copy(&path, &crashed).unwrap();
    std::fs::copy(
        format!("{}-journal", path.display()),
        format!("{}-journal", crashed.display()),
    )
    .unwrap();
    let path = crashed;
    let full = full_state(&path, 1, &[1, 2]);
    let mesh = member_open(&path, 1).unwrap();
    if let Some(full) = full {
        assert_eq!(state(&mesh, &[1, 2]), full);
    }
    assert_eq!(mesh.report().journaled, 2);
    drop(mesh);
    let full = full_state(&path, 1, &[1, 2]).unwrap();
    let mesh = member_open(&path, 1).unwrap();
    assert_eq!(state(&mesh, &[1, 2]), full);
}
