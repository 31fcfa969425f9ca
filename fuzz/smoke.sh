#!/usr/bin/env bash
# A short smoke run of every fuzz target: fails on any crash. Installs what it
# needs (cargo-fuzz; the nightly toolchain must be present, as on every
# machine of this project). FUZZ_SECONDS sets the time per target.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-30}"

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz smoke: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
    exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# Seed corpus from valid chains.
(cd .. && cargo run --quiet --example fuzz_corpus --features fuzzing -- fuzz/corpus)

cargo +nightly fuzz build
for target in reducer decode open converge sealed net; do
    # The corpus example seeds the first four targets only (sealed makes
    # its real messages itself; net starts from nothing, and its encrypted
    # pieces are made from the fuzzer's plaintext); a target without seeds
    # starts empty.
    mkdir -p "corpus/${target}"
    log="$(mktemp)"
    echo "==> fuzz ${target} for ${seconds}s"
    if ! cargo +nightly fuzz run "${target}" "corpus/${target}" -- \
        -max_total_time="${seconds}" -print_final_stats=1 >"${log}" 2>&1; then
        tail -n 60 "${log}"
        echo "fuzz smoke: ${target} crashed; the input is in fuzz/artifacts/${target}/" >&2
        exit 1
    fi
    grep -E '^(stat::number_of_executed_units|Done)' "${log}" | tr '\n' ' '
    echo
    rm -f "${log}"
done
