import threading

import pytest

import meshlog


def test_two_peers_converge_over_the_network(founded, tmp_path):
    bob_keys = meshlog.LocalKeys.generate()
    founded.add_member(bob_keys.public())
    address = founded.serve("127.0.0.1:0")
    assert founded.serving == address
    bob, report = meshlog.Mesh.join_peer(
        tmp_path / "bob.redb", bob_keys, address, group=founded.group
    )
    assert report.pulled == len(founded) and report.member == founded.member_id
    with bob:
        bob.set_enabled(True)
        for n in range(5):
            bob.append_app("note", b"bob %d" % n)
            founded.append_app("note", b"founder %d" % n)
        report = bob.sync(address)
        assert report.pushed >= 6 and report.pulled == 5
        assert bob.digest == founded.digest
        # A write made while serving reaches a peer that syncs again.
        founded.append_app("note", b"after")
        assert bob.sync(address).pulled == 1
        assert bob.digest == founded.digest
    founded.stop_serving()
    assert founded.serving is None
    founded.append_app("note", b"still writable")


def test_a_stranger_is_refused(founded, tmp_path):
    address = founded.serve("127.0.0.1:0")
    with pytest.raises(meshlog.Refusal) as caught:
        meshlog.Mesh.join_peer(tmp_path / "x.redb", meshlog.LocalKeys.generate(), address)
    assert caught.value.kind == "refused-by-peer" and caught.value.peer == address
    assert not (tmp_path / "x.redb").exists()
    founded.close()
    assert founded.serving is None


def test_a_newcomer_pins_the_group(founded, tmp_path):
    newcomer = meshlog.LocalKeys.generate()
    founded.add_member(newcomer.public())
    address = founded.serve("127.0.0.1:0")
    with pytest.raises(meshlog.Refusal) as caught:
        meshlog.Mesh.join_peer(tmp_path / "n.redb", newcomer, address, group="ab" * 32)
    assert caught.value.kind == "refused-by-peer" and "group" in caught.value.message
    assert not (tmp_path / "n.redb").exists()
    mesh, _ = meshlog.Mesh.join_peer(tmp_path / "n.redb", newcomer, address, group=founded.group)
    with mesh:
        assert mesh.group == founded.group


def test_serving_twice_and_stopping_nothing(founded, tmp_path):
    founded.stop_serving()
    founded.serve("127.0.0.1:0")
    with pytest.raises(meshlog.CouldNotRun) as caught:
        founded.serve("127.0.0.1:0")
    assert caught.value.kind == "busy"
    founded.stop_serving()
    founded.stop_serving()
    # Serving again after a stop works on a fresh node.
    again = founded.serve("127.0.0.1:0")
    bob = meshlog.LocalKeys.generate()
    founded.add_member(bob.public())
    mesh, report = meshlog.Mesh.join_peer(tmp_path / "b.redb", bob, again)
    assert report.pulled == len(founded)
    mesh.close()


def test_a_disabled_member_neither_serves_nor_syncs(tmp_path, founder_keys):
    with meshlog.Mesh.create(tmp_path / "off.redb", founder_keys, "off") as mesh:
        with pytest.raises(meshlog.Refusal) as caught:
            mesh.serve("127.0.0.1:0")
        assert caught.value.kind == "disabled" and caught.value.member == founder_keys.member_id
        assert mesh.serving is None
        with pytest.raises(meshlog.Refusal) as caught:
            mesh.sync("127.0.0.1:9")
        assert caught.value.kind == "disabled"


def test_a_read_only_mesh_does_not_sync(founded, tmp_path):
    founded.close()
    with meshlog.Mesh.open_read_only(tmp_path / "founder.redb") as audit:
        with pytest.raises(meshlog.CouldNotRun) as caught:
            audit.sync("127.0.0.1:9")
        assert caught.value.kind == "read-only"


def test_nothing_listening_could_not_run(founded):
    with pytest.raises(meshlog.CouldNotRun) as caught:
        founded.sync("127.0.0.1:9")
    assert caught.value.kind == "network-io"


def test_calls_release_the_gil(founded):
    """A thread blocked in a network call does not stop Python's others."""
    import socket
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    address = "127.0.0.1:%d" % listener.getsockname()[1]
    started, done = threading.Event(), threading.Event()
    errors = []

    def stuck():
        # Accepted by the kernel but never answered: the sync waits for a
        # handshake (up to 10 s) until the listener closes.
        started.set()
        try:
            founded.sync(address)
        except meshlog.MeshlogError as error:
            errors.append(error)
        done.set()

    thread = threading.Thread(target=stuck)
    thread.start()
    started.wait()
    time.sleep(0.3)
    began = time.perf_counter()
    total = sum(range(1_000_000))
    spent = time.perf_counter() - began
    assert total and not done.is_set(), "the sync thread was still waiting"
    assert spent < 5, "the main thread ran while the sync waited"
    listener.close()
    thread.join(30)
    assert errors and isinstance(errors[0], meshlog.CouldNotRun)
