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
    assert caught.value.kind == "network" and caught.value.peer == address
    assert not (tmp_path / "x.redb").exists()
    with pytest.raises(meshlog.Refusal):
        meshlog.Mesh.join_peer(
            tmp_path / "y.redb", meshlog.LocalKeys.generate(), address, group="ab" * 32
        )
    founded.close()
    assert founded.serving is None


def test_nothing_listening_could_not_run(founded):
    with pytest.raises(meshlog.CouldNotRun) as caught:
        founded.sync("127.0.0.1:9")
    assert caught.value.kind == "network"


def test_calls_release_the_gil(founded):
    """A thread blocked in a network call does not stop Python's others."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    address = "127.0.0.1:%d" % listener.getsockname()[1]
    done = threading.Event()
    errors = []

    def stuck():
        # Accepted but never answered: the sync waits for the handshake.
        try:
            founded.sync(address)
        except meshlog.MeshlogError as error:
            errors.append(error)
        done.set()

    thread = threading.Thread(target=stuck)
    thread.start()
    counted = 0
    while not done.is_set() and counted < 200_000:
        counted += 1
    assert counted == 200_000, "the main thread ran while the sync waited"
    listener.close()
    thread.join(30)
    assert errors and isinstance(errors[0], meshlog.CouldNotRun)
