"""The Python package's overhead over the same Rust calls, in one process.

    python python/bench/bench.py [EVENTS]     # EVENTS: 100000 by default

Each figure is timed in Python and, for its floor, the very same library
call run in a loop inside Rust (``_meshlog._time_rust``), interleaved and
repeated; the medians are reported with their ratios. The machine is
shared and noisy: read the ratios, not the absolute times.
"""

import os
import statistics
import sys
import tempfile
import time

import meshlog
from meshlog import _meshlog


def median_of(runs, measure):
    return statistics.median(measure() for _ in range(runs))


def main():
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    folder = tempfile.mkdtemp(prefix="meshlog-bench-")
    keys = meshlog.LocalKeys.generate()
    path = os.path.join(folder, "bench.redb")
    mesh = meshlog.Mesh.create(path, keys, "bench")
    mesh.set_enabled(True)

    # A cheap call: reading the state (the local member's flag).
    calls = 200_000

    def python_enabled():
        started = time.perf_counter()
        for _ in range(calls):
            mesh.enabled
        return (time.perf_counter() - started) / calls

    def rust_enabled():
        return _meshlog._time_rust(mesh, "enabled", calls, b"") / calls

    py_call, rust_call = [], []
    for _ in range(7):
        py_call.append(python_enabled())
        rust_call.append(rust_enabled())
    py_call, rust_call = statistics.median(py_call), statistics.median(rust_call)
    print(
        f"cheap call (Mesh.enabled): Python {py_call * 1e6:.2f} us, Rust {rust_call * 1e6:.3f} us,"
        f" overhead {(py_call - rust_call) * 1e6:.2f} us (target <= 5 us)"
    )

    # Seal and open 1 MiB, no padding.
    message = os.urandom(1 << 20)
    rounds = 20

    def python_seal_open():
        started = time.perf_counter()
        for _ in range(rounds):
            mesh.open_sealed(mesh.seal(message, padding="none"))
        return time.perf_counter() - started

    def rust_seal_open():
        return _meshlog._time_rust(mesh, "seal_open", rounds, message)

    # Pairs taken in turn, each side first in every other pair; the ratio
    # is the median of the pairs' ratios, which the machine's drift over
    # the run moves least.
    py_seal, rust_seal, ratios = [], [], []
    for turn in range(15):
        if turn % 2:
            rust, py = rust_seal_open(), python_seal_open()
        else:
            py, rust = python_seal_open(), rust_seal_open()
        py_seal.append(py)
        rust_seal.append(rust)
        ratios.append(rust / py)
    py_seal, rust_seal = statistics.median(py_seal), statistics.median(rust_seal)
    mib = rounds * 2  # each round seals and opens one MiB
    print(
        f"seal + open 1 MiB: Python {mib / py_seal:.0f} MiB/s, Rust {mib / rust_seal:.0f} MiB/s,"
        f" {100 * statistics.median(ratios):.1f}% of Rust's throughput, pair by pair"
        f" (quartiles {100 * statistics.quantiles(ratios)[0]:.1f}%"
        f"-{100 * statistics.quantiles(ratios)[2]:.1f}%; target >= 90%)"
    )

    # Open + verify a file of `events` events.
    started = time.perf_counter()
    batch = 10_000
    for start in range(0, events - len(mesh), batch):
        count = min(batch, events - len(mesh))
        mesh.append_apps([("bench", b"x" * 64)] * count)
    mesh.close()
    print(f"({events} events written in {time.perf_counter() - started:.1f} s)")
    reader = meshlog.Mesh.open_read_only(path)

    def python_open():
        started = time.perf_counter()
        with meshlog.Mesh.open_read_only(path) as opened:
            assert len(opened) == events
        return time.perf_counter() - started

    def rust_open():
        return _meshlog._time_rust(reader, "open_verify", 1, path.encode())

    py_open, rust_open_times = [], []
    for _ in range(5):
        py_open.append(python_open())
        rust_open_times.append(rust_open())
    py_open, rust_open_s = statistics.median(py_open), statistics.median(rust_open_times)
    print(
        f"open + verify {events} events: Python {py_open:.3f} s, Rust {rust_open_s:.3f} s,"
        f" ratio {py_open / rust_open_s:.3f} (target <= 1.05)"
    )
    reader.close()


if __name__ == "__main__":
    main()
