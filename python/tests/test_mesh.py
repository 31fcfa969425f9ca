import os
import time

import pytest

import meshlog


def joined(tmp_path, founder, name, role="member"):
    """A member added by `founder`, with its own copy, enabled."""
    keys = meshlog.LocalKeys.generate()
    founder.add_member(keys.public(), role)
    mesh = meshlog.Mesh.join(tmp_path / f"{name}.redb", keys, founder.export())
    mesh.set_enabled(True)
    founder.ingest(mesh.export(founder.frontier()))
    return keys, mesh


def test_create_describes_the_group(founded, founder_keys):
    assert founded.group_name == "team"
    assert founded.founder == founder_keys.member_id
    assert founded.member_id == founder_keys.member_id
    assert founded.enabled
    assert len(founded) == 2
    [entry] = founded.roster
    assert (entry.member_id, entry.role) == (founder_keys.member_id, "owner")
    assert founded.current_epoch == founded.group
    assert founded.writer_epoch == founded.group
    assert founded.tips == [founded.group]
    assert not founded.needs_merge
    assert not founded.read_only and not founded.closed
    assert founded.equivocations() == []
    assert os.fspath(founded.path).endswith("founder.redb")
    assert not founded.verified_private_copy and founded.journaled >= 0
    assert founded.awaiting_signature == 0


def test_the_context_manager_closes(tmp_path, founder_keys):
    path = tmp_path / "m.redb"
    with meshlog.Mesh.create(str(path), founder_keys, "cm") as mesh:
        digest = mesh.digest
    assert mesh.closed
    with pytest.raises(meshlog.CouldNotRun) as caught:
        len(mesh)
    assert caught.value.kind == "closed"
    with meshlog.Mesh.open(path, founder_keys) as again:
        assert again.digest == digest


def test_another_members_keys_open_only_a_shared_copy(founded, tmp_path):
    founded.close()
    path = tmp_path / "founder.redb"
    bob_keys = meshlog.LocalKeys.generate()
    with pytest.raises(meshlog.CouldNotRun) as caught:
        meshlog.Mesh.open(path, bob_keys)
    assert caught.value.kind == "foreign-copy"
    assert "--shared-copy" in caught.value.message
    with meshlog.Mesh.open(path, bob_keys, shared_copy=True) as shared:
        assert shared.member_id == bob_keys.member_id


def test_a_restored_copy_is_refused_with_a_feed_mark(founded, tmp_path, founder_keys):
    founded.close()
    path, mark = tmp_path / "founder.redb", tmp_path / "founder.keys-mark"
    restored = tmp_path / "restored.redb"
    with meshlog.Mesh.open_read_only(path) as audit:
        audit.backup(restored)
    with meshlog.Mesh.open(path, founder_keys, feed_mark=mark) as mesh:
        mesh.append_app("note", b"after the backup")
    with meshlog.Mesh.open(restored, founder_keys, feed_mark=mark) as old:
        with pytest.raises(meshlog.CouldNotRun) as caught:
            old.append_app("note", b"would fork")
        assert caught.value.kind == "copy-behind-feed"
    # A second later: the branch written on the restored copy begins after
    # the other ends, as an honest restore's does.
    time.sleep(1.1)
    with meshlog.Mesh.open(
        restored, founder_keys, feed_mark=mark, accept_restored_copy=True
    ) as old:
        later = old.append_app("note", b"the newer one was thought lost")
        with meshlog.Mesh.open_read_only(path) as newer:
            old.ingest(newer.export())
        (fork,) = old.equivocations()
        assert fork.shape == "restore" and fork.later_branch == later


def test_open_read_only_never_writes(founded, tmp_path):
    founded.close()
    with meshlog.Mesh.open_read_only(tmp_path / "founder.redb") as audit:
        assert audit.read_only and audit.member_id is None
        with pytest.raises(meshlog.CouldNotRun) as caught:
            audit.append_app("note", b"x")
        assert caught.value.kind == "read-only"


def test_a_file_that_exists_is_not_created_over(founded, tmp_path, founder_keys):
    with pytest.raises(meshlog.CouldNotRun) as caught:
        meshlog.Mesh.create(tmp_path / "founder.redb", founder_keys, "again")
    assert caught.value.kind == "store"


def test_app_events_and_the_log(founded):
    first = founded.append_app("note", b"hello")
    second = founded.append_app("note", b"")
    log = founded.log()
    assert [entry.hash for entry in log[-2:]] == [first, second]
    entry = log[-2]
    assert (entry.kind, entry.app_kind, entry.payload) == ("app", "note", b"hello")
    assert entry.author == founded.member_id and entry.seq == 2
    assert entry.status == "current" and not entry.left_out
    assert entry.epoch == founded.current_epoch
    assert log[0].kind == "genesis" and log[0].epoch is None
    assert log[1].kind == "enable"


def test_a_disabled_member_is_refused_with_the_rule(tmp_path, founder_keys):
    with meshlog.Mesh.create(tmp_path / "d.redb", founder_keys, "off") as mesh:
        assert not mesh.enabled
        with pytest.raises(meshlog.Refusal) as caught:
            mesh.append_app("note", b"x")
        error = caught.value
        assert error.kind == "refused" and error.class_name == "refusal"
        assert error.rule_id == "F5"
        assert error.author == founder_keys.member_id
        assert error.seq == 1
        assert "F5" in error.rule or "disabled" in error.rule
        assert len(mesh) == 1


def test_rotations_change_the_roster(founded, tmp_path):
    alice_keys, alice = joined(tmp_path, founded, "alice", "admin")
    bob_keys = meshlog.LocalKeys.generate()
    carol_keys = meshlog.LocalKeys.generate()
    epoch = founded.rotate(
        "two join", add=[(bob_keys.public(), "member"), (carol_keys.public(), "member")]
    )
    assert founded.current_epoch == epoch
    roles = {entry.member_id: entry.role for entry in founded.roster}
    assert roles[bob_keys.member_id] == roles[carol_keys.member_id] == "member"
    founded.set_role(bob_keys.member_id, "admin")
    founded.remove_member(carol_keys.member_id)
    roles = {entry.member_id: entry.role for entry in founded.roster}
    assert roles[bob_keys.member_id] == "admin" and carol_keys.member_id not in roles
    refreshed = founded.refresh("new secret")
    info = founded.epoch(refreshed)
    assert info.applied and info.changes == 0 and info.reason == "new secret"
    assert info.parents == [founded.epochs()[-2].hash]
    assert {entry.member_id for entry in info.roster} == set(roles)
    assert founded.epoch("00" * 32) is None
    alice.close()


def test_a_change_the_rules_would_void_is_refused(founded, founder_keys):
    with pytest.raises(meshlog.Refusal) as caught:
        founded.remove_member(founder_keys.member_id)
    assert caught.value.kind == "void-change"
    assert len(founded) == 2


def test_concurrent_rotations_merge(founded, tmp_path):
    alice_keys, alice = joined(tmp_path, founded, "alice", "admin")
    founded.add_member(meshlog.LocalKeys.generate().public())
    alice.add_member(meshlog.LocalKeys.generate().public())
    founded.ingest(alice.export(founded.frontier()))
    alice.ingest(founded.export(alice.frontier()))
    assert founded.needs_merge and founded.current_epoch is None
    assert founded.may_merge()
    merge = founded.merge()
    assert merge is not None and founded.merge() is None
    alice.ingest(founded.export(alice.frontier()))
    assert alice.digest == founded.digest and not alice.needs_merge
    assert len(founded.roster) == 4
    alice.close()


def test_secrets_only_for_the_roster(founded, tmp_path):
    alice_keys, alice = joined(tmp_path, founded, "alice")
    shared = founded.current_secret()
    assert alice.epoch_secret(shared.epoch).expose() == shared.expose()
    assert len(shared.expose()) == 32
    assert "redacted" in repr(shared) and shared.fingerprint() in repr(shared)
    founded.remove_member(alice_keys.member_id)
    alice.ingest(founded.export(alice.frontier()))
    with pytest.raises(meshlog.Refusal) as caught:
        alice.epoch_secret(founded.current_epoch)
    assert caught.value.kind == "secret"
    assert caught.value.epoch == founded.current_epoch
    assert caught.value.member == alice_keys.member_id
    with pytest.raises(meshlog.CouldNotRun):
        founded.epoch_secret("ab" * 32)
    alice.close()


def test_seal_and_open(founded, tmp_path):
    alice_keys, alice = joined(tmp_path, founded, "alice")
    sealed = founded.seal(b"deploy at 5", b"ops")
    opened = alice.open_sealed(sealed)
    assert (opened.plaintext, opened.associated_data) == (b"deploy at 5", b"ops")
    assert opened.sender == founded.member_id and opened.epoch_current
    assert opened.epoch_applied and opened.sender_in_roster and len(opened.id) == 64
    assert len(founded.seal(b"x" * 10, padding="none")) < len(founded.seal(b"x" * 10, padding=4096))
    with pytest.raises(ValueError):
        founded.seal(b"x", padding="zigzag")
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    with pytest.raises(meshlog.VerificationFailure) as caught:
        alice.open_sealed(bytes(tampered))
    assert caught.value.kind == "sealed-message"
    assert caught.value.epoch == founded.current_epoch
    with pytest.raises(meshlog.CouldNotRun):
        alice.open_sealed(b"not sealed")
    event = founded.append_sealed("order", b"secret order")
    alice.ingest(founded.export(alice.frontier()))
    assert alice.open_event(event).plaintext == b"secret order"
    entry = [e for e in alice.log() if e.hash == event][0]
    assert entry.kind == "sealed" and entry.app_kind == "order" and entry.payload is None
    alice.close()


def test_export_ingest_and_a_refused_batch(founded, tmp_path):
    alice_keys, alice = joined(tmp_path, founded, "alice")
    alice.append_app("note", b"from alice")
    batch = alice.export(founded.frontier())
    ingested = founded.ingest(batch)
    assert (ingested.added, ingested.left_out, ingested.needs_merge) == (1, 0, False)
    assert founded.ingest(batch).known == 1
    alice.append_app("note", b"tampered later")
    tampered = bytearray(alice.export(founded.frontier()))
    tampered[-1] ^= 1
    before = founded.digest
    with pytest.raises(meshlog.VerificationFailure) as caught:
        founded.ingest(bytes(tampered))
    error = caught.value
    assert error.kind == "rejected" and error.rule_id.startswith("V")
    assert error.author == alice_keys.member_id and isinstance(error.seq, int)
    assert founded.digest == before
    with pytest.raises(meshlog.CouldNotRun) as caught:
        founded.ingest(b"garbage")
    assert caught.value.kind == "not-a-batch"
    alice.close()


def test_checkpoints_report_a_rollback(founded, tmp_path):
    checkpoint = founded.frontier()
    founded.expect(checkpoint)
    founded.backup(tmp_path / "old.redb")
    founded.append_app("note", b"later")
    later = founded.frontier()
    founded.checkpoint()
    with meshlog.Mesh.open_read_only(tmp_path / "old.redb") as old:
        old.expect(checkpoint)
        with pytest.raises(meshlog.VerificationFailure) as caught:
            old.expect(later)
    assert caught.value.kind == "rolled-back" and len(caught.value.missing) == 1
    with pytest.raises(ValueError):
        founded.expect(b"\xff")


def test_verify_reports(founded, tmp_path):
    checkpoint = founded.frontier()
    founded.append_app("note", b"x")
    founded.backup(tmp_path / "copy.redb")
    report = meshlog.verify(tmp_path / "copy.redb", expect=checkpoint)
    assert report.ok and report.failure is None and report.missing == []
    assert report.events == len(founded) and report.digest == founded.digest
    assert report.members == 1 and report.enabled_members == 1
    assert report.journaled == 0 and report.awaiting_signature == 0
    assert report.journal_unreplayed == 0 and report.journal_unreplayed_offset is None
    assert report.to_dict()["digest"] == founded.digest
    later = founded.frontier()
    founded.append_app("note", b"y")
    old = meshlog.verify(tmp_path / "copy.redb", expect=founded.frontier())
    assert not old.ok and len(old.missing) == 1
    assert meshlog.verify(tmp_path / "copy.redb", expect=later).ok
    with pytest.raises(meshlog.CouldNotRun):
        meshlog.verify(tmp_path / "none.redb")


def test_bad_ids_are_value_errors(founded):
    with pytest.raises(ValueError):
        founded.remove_member("not hex")
    with pytest.raises(ValueError):
        founded.epoch_secret("12")
    with pytest.raises(ValueError):
        founded.add_member("nonsense")
    with pytest.raises(ValueError):
        founded.set_role(founded.member_id, "emperor")


def test_one_rotation_adds_removes_and_re_roles(founded, tmp_path):
    alice_keys, alice = joined(tmp_path, founded, "alice")
    bob_keys, bob = joined(tmp_path, founded, "bob")
    dave = meshlog.LocalKeys.generate()
    founded.rotate(
        "mixed",
        add=[(dave.public(), "admin")],
        remove=[bob_keys.member_id],
        set_role={alice_keys.member_id: "admin"},
    )
    roles = {entry.member_id: entry.role for entry in founded.roster}
    assert roles == {
        founded.member_id: "owner",
        alice_keys.member_id: "admin",
        dave.member_id: "admin",
    }
    hashes = founded.append_apps([("note", b"one"), ("note", b"two")])
    assert [entry.hash for entry in founded.log()[-2:]] == hashes
    alice.close()
    bob.close()


def test_a_newer_package_replaces_the_keys(founded, founder_keys):
    before = founded.roster[0].package_counter
    newer = founder_keys.package_with_counter(before + 1)
    founded.post_package(newer)
    founded.rotate("carry the package", update_keys=[newer])
    assert founded.roster[0].package_counter == before + 1


def test_more_failures_and_their_kinds(founded, tmp_path, founder_keys):
    # A second writable handle of a file held open.
    with pytest.raises(meshlog.CouldNotRun) as caught:
        meshlog.Mesh.open(tmp_path / "founder.redb", founder_keys)
    assert caught.value.kind == "store"
    # A join needs the genesis.
    alice_keys = meshlog.LocalKeys.generate()
    founded.add_member(alice_keys.public())
    with pytest.raises(meshlog.VerificationFailure) as caught:
        meshlog.Mesh.join(tmp_path / "a.redb", alice_keys, founded.export(founded.frontier()))
    assert caught.value.kind == "no-genesis"
    assert not (tmp_path / "a.redb").exists()
    # A removed member may read but not write.
    alice = meshlog.Mesh.join(tmp_path / "a.redb", alice_keys, founded.export())
    alice.set_enabled(True)
    founded.ingest(alice.export(founded.frontier()))
    founded.remove_member(alice_keys.member_id)
    alice.ingest(founded.export(alice.frontier()))
    with pytest.raises(meshlog.Refusal) as caught:
        alice.append_app("note", b"after removal")
    assert caught.value.kind == "not-in-roster" and caught.value.member == alice_keys.member_id
    alice.close()
    # A disabled member does not seal.
    founded.set_enabled(False)
    with pytest.raises(meshlog.Refusal) as caught:
        founded.seal(b"x")
    assert caught.value.kind == "disabled" and caught.value.member == founder_keys.member_id
    # A void change names its member.
    founded.set_enabled(True)
    with pytest.raises(meshlog.Refusal) as caught:
        founded.set_role(founder_keys.member_id, "admin")
    assert caught.value.kind == "void-change" and caught.value.member == founder_keys.member_id


def test_read_only_with_keys_recovers_secrets(founded, tmp_path, founder_keys):
    secret = founded.current_secret().expose()
    event = founded.append_app("note", b"x")
    founded.close()
    with meshlog.Mesh.open_read_only(tmp_path / "founder.redb", founder_keys) as copy:
        assert copy.read_only and copy.member_id == founder_keys.member_id
        assert copy.current_secret().expose() == secret
        entry = copy.event(event)
        assert entry.payload == b"x" and entry.status == "current"
        assert copy.event("00" * 32) is None
        assert copy.events_verified == len(copy)
        assert isinstance(copy.path, os.PathLike)


def test_padding_choices(founded):
    plain = len(founded.seal(b"x" * 1000, padding="none"))
    assert len(founded.seal(b"x" * 1000, padding="padme")) >= plain
    assert len(founded.seal(b"x" * 1000)) == len(founded.seal(b"x" * 1000, padding="padme"))
    with pytest.raises(ValueError):
        founded.seal(b"x", padding=0)


def test_sealed_and_plaintext_are_bytes_like(founded, tmp_path):
    alice_keys, alice = joined(tmp_path, founded, "alice")
    sealed = founded.seal("héllo".encode(), b"ad")
    assert isinstance(sealed, meshlog.Sealed)
    raw = bytes(sealed)
    assert sealed == raw and memoryview(sealed).tobytes() == raw and len(sealed) == len(raw)
    assert (sealed.group, sealed.epoch) == (founded.group, founded.current_epoch)
    assert sealed.associated_data == b"ad" and "bytes" in repr(sealed)
    parsed = meshlog.Sealed.from_bytes(bytearray(raw))
    assert parsed == sealed
    with pytest.raises(meshlog.CouldNotRun):
        meshlog.Sealed.from_bytes(b"short")
    for given in (sealed, raw, bytearray(raw), memoryview(raw)):
        opened = alice.open_sealed(given)
        assert isinstance(opened.plaintext, meshlog.Plaintext)
        assert opened.plaintext == "héllo".encode() and opened.plaintext.decode() == "héllo"
        assert bytes(opened.plaintext) == "héllo".encode() and len(opened.plaintext) == 6
        assert opened.plaintext != b"hello!" and "redacted" in repr(opened.plaintext)
    assert memoryview(sealed).readonly
    with pytest.raises(TypeError):
        memoryview(sealed)[0] = 0
    alice.close()
