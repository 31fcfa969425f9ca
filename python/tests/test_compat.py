"""The original design's typical flow, through meshlog.compat: found,
enable, add two members, kick one, recover secrets on each side."""

import os
import stat

import pytest

import meshlog
from meshlog import compat


@pytest.fixture(autouse=True)
def closed_after():
    yield
    compat.close()


def test_the_original_flow(tmp_path):
    founder_path = tmp_path / "founder.redb"
    me = compat.init_identity(founder_path, group_name="ops")
    assert me["group_name"] == "ops"
    assert stat.S_IMODE(os.stat(me["keys_path"]).st_mode) == 0o600
    assert not compat.is_enabled()
    compat.set_enabled(True)
    assert compat.is_enabled()
    genesis = compat.current_epoch()
    assert [row["member_id"] for row in compat.roster_at()] == [me["member_id"]]

    # Two members-to-be make their keys and hand over their packages.
    bob_package = compat.member_keys(tmp_path / "bob.redb")
    carol_package = compat.member_keys(tmp_path / "carol.redb")
    epoch = compat.rotate_epoch(
        new_members=[me["member_id"], bob_package, {"package": carol_package, "role": "member"}],
        reason="bob and carol join",
        actor_member_id=me["member_id"],
    )
    assert compat.current_epoch() == epoch != genesis
    members = {row["member_id"]: row["role"] for row in compat.roster_at(epoch)}
    bob_id = meshlog.package_member_id(bob_package)
    carol_id = meshlog.package_member_id(carol_package)
    assert members == {me["member_id"]: "owner", bob_id: "member", carol_id: "member"}
    with_three = compat.recover_epoch_secret(epoch_id=epoch)
    founder = compat.identity()

    # Kick carol: name the roster without her.
    kicked = compat.rotate_epoch(
        new_members=[me["member_id"], bob_id], reason="carol leaves", actor_member_id=me["member_id"]
    )
    assert {row["member_id"] for row in compat.roster_at()} == {me["member_id"], bob_id}
    after_kick = compat.recover_epoch_secret()
    assert after_kick != with_three and len(after_kick) == 32
    # The roster of the earlier epoch is kept.
    assert carol_id in {row["member_id"] for row in compat.roster_at(epoch)}
    batch = founder.mesh.export()

    # Each side recovers what it may: bob both epochs, carol only the first.
    bob = compat.join_identity(tmp_path / "bob.redb", batch)
    assert bob["member_id"] == bob_id
    assert compat.recover_epoch_secret(epoch_id=epoch) == with_three
    assert compat.recover_epoch_secret(epoch_id=kicked) == after_kick
    # A member may not rotate: the library's rules say no, not compat.
    compat.set_enabled(True)
    with pytest.raises(meshlog.Refusal) as caught:
        compat.rotate_epoch(new_members=[bob_id], reason="coup", actor_member_id=bob_id)
    assert caught.value.rule_id == "E7"
    compat.join_identity(tmp_path / "carol.redb", batch)
    assert compat.recover_epoch_secret(epoch_id=epoch) == with_three
    with pytest.raises(meshlog.Refusal):
        compat.recover_epoch_secret(epoch_id=kicked)
    assert compat.current_epoch() == kicked


def test_authority_is_enforced(tmp_path):
    me = compat.init_identity(tmp_path / "f.redb")
    with pytest.raises(meshlog.Refusal) as caught:
        compat.rotate_epoch(new_members=[me["member_id"]], actor_member_id="ab" * 16)
    assert caught.value.kind == "not-the-actor" and caught.value.member == "ab" * 16
    with pytest.raises(ValueError):
        compat.rotate_epoch(new_members=[me["member_id"], "cd" * 16])
    with pytest.raises(KeyError):
        compat.roster_at("ef" * 32)


def test_init_identity_opens_an_existing_one(tmp_path):
    first = compat.init_identity(tmp_path / "f.redb", group_name="one")
    compat.set_enabled(True)
    again = compat.init_identity(tmp_path / "f.redb", group_name="ignored")
    assert again["member_id"] == first["member_id"] and again["group_id"] == first["group_id"]
    assert compat.is_enabled()


def test_no_identity_yet():
    with pytest.raises(RuntimeError):
        compat.current_epoch()


def test_a_mesh_without_its_keys_is_not_given_new_ones(tmp_path):
    compat.init_identity(tmp_path / "f.redb")
    compat.close()
    os.remove(str(tmp_path / "f.redb") + ".keys")
    with pytest.raises(FileNotFoundError):
        compat.init_identity(tmp_path / "f.redb")
