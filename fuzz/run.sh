#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: fuzz/run.sh [seconds per target, default 60].
# Needs a nightly toolchain and cargo-fuzz (installed here when missing). New inputs go to
# fuzz/work/TARGET (not committed); the seeds in fuzz/corpus/TARGET are only read. A crash
# leaves its input in fuzz/artifacts/TARGET and makes this script fail: add that input to
# fuzz/corpus/TARGET once fixed, so tests/fuzz_corpus.rs keeps it fixed on stable.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: no nightly toolchain, skipped (cargo-fuzz needs nightly)" >&2
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo +nightly install cargo-fuzz --locked
fi
for target in safetensors csv; do
    mkdir -p "work/$target"
    echo "fuzz: $target for ${seconds}s"
    cargo +nightly fuzz run "$target" "work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done
