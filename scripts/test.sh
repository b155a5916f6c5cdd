#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs, checks formatting and lints,
# builds the add-in zip and the debug cross-built libraries (Windows DLLs for the Wine tests, the
# aarch64 library for the qemu tests), then runs every test
# (tests/package.rs loads each library of the zip in the host emulator).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

bash scripts/install-deps.sh test
# Apache Kafka's jars (first run: resolved from Maven Central, then cached).
for v in 4.4.0 3.9.1; do bash tests/support/kafka/jars.sh "$v" >/dev/null; done

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
bash addin-manifest/build-zip.sh
cargo build --lib --target x86_64-pc-windows-gnu
cargo build --lib --target i686-pc-windows-gnu
cargo zigbuild --lib --target aarch64-unknown-linux-gnu.2.17
cargo test --no-fail-fast -- --test-threads 2
echo "test: all passed in $((SECONDS - start)) s"
