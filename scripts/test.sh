#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs, checks formatting and lints,
# builds the add-in zip, then runs every test: Linux x86_64 natively, the zip's Windows DLLs under
# Wine and its aarch64 library under qemu-user (tests/package.rs loads each library of the zip).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

bash scripts/install-deps.sh test
# Apache Kafka's jars (first run: resolved from Maven Central, then cached).
for v in 4.4.0 3.9.1; do bash tests/support/kafka/jars.sh "$v" >/dev/null; done

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
bash addin-manifest/build-zip.sh
cargo test --no-fail-fast -- --test-threads 2
echo "test: all passed in $((SECONDS - start)) s"
