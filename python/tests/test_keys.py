import os
import stat

import pytest

import meshlog


def test_generate_save_load_round_trip(tmp_path):
    keys = meshlog.LocalKeys.generate()
    path = tmp_path / "alice.keys"
    keys.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = meshlog.LocalKeys.load(str(path))
    assert loaded.member_id == keys.member_id
    assert loaded.public() == keys.public()


def test_save_refuses_to_overwrite(tmp_path):
    path = tmp_path / "k.keys"
    meshlog.LocalKeys.generate().save(path)
    with pytest.raises(meshlog.CouldNotRun) as caught:
        meshlog.LocalKeys.generate().save(path)
    assert caught.value.kind == "keys"
    assert caught.value.class_name == "could-not-run"


def test_load_of_nothing_could_not_run(tmp_path):
    with pytest.raises(meshlog.CouldNotRun) as caught:
        meshlog.LocalKeys.load(tmp_path / "none.keys")
    assert caught.value.kind == "keys"
    assert isinstance(caught.value, meshlog.MeshlogError)


def test_secrets_never_show(tmp_path):
    keys = meshlog.LocalKeys.generate()
    assert "redacted" in repr(keys)
    assert keys.member_id in repr(keys)


def test_the_package_names_the_member():
    keys = meshlog.LocalKeys.generate()
    package = keys.public()
    assert meshlog.package_member_id(package) == keys.member_id
    newer = keys.package_with_counter(7)
    assert newer != package
    assert meshlog.package_member_id(newer) == keys.member_id
    assert len(keys.member_id) == 32 and int(keys.member_id, 16) >= 0


def test_a_bad_package_is_a_value_error():
    with pytest.raises(ValueError):
        meshlog.package_member_id("not a package")
