#!/usr/bin/env bash
# Benchmarks (not part of the test suite): builds every contender, starts its own broker and runs
# them all side by side, printing one table and writing BENCHMARKS.md.
#   scripts/bench.sh [--quick] [--broker mock|tansu] [--repeat N] [--only produce-async,...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh test >/dev/null
log="${TMPDIR:-/tmp}/kafka1c-bench-build.log"
build() { "$@" >>"$log" 2>&1 || { tail -n 40 "$log"; echo "bench: build failed: $*" >&2; exit 1; }; }
: >"$log"
echo "bench: building the add-in, the emulator and the peers (log: $log)" >&2
build cargo build --release --lib --example bench_core
mkdir -p target/bench
build gcc -std=c11 -O2 -D_GNU_SOURCE -o target/bench/host1c tests/host/host1c.c -ldl -lpthread
build bash bench/peers/build-librdkafka-bench.sh target/bench/librdkafka_bench
build cargo build --release --manifest-path bench/rskafka/Cargo.toml --target-dir target/bench-rskafka
exec python3 bench/run.py "$@"
