import pytest

import meshlog


@pytest.fixture
def founder_keys():
    return meshlog.LocalKeys.generate()


@pytest.fixture
def founded(tmp_path, founder_keys):
    """A founder's mesh, enabled."""
    mesh = meshlog.Mesh.create(tmp_path / "founder.redb", founder_keys, "team")
    mesh.set_enabled(True)
    yield mesh
    mesh.close()
