#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs, checks formatting and lints,
# builds the Windows DLLs for the Wine tests, runs every test, then builds the add-in zip.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh test

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo build --lib --target x86_64-pc-windows-gnu
cargo build --lib --target i686-pc-windows-gnu
cargo test --no-fail-fast -- --test-threads 2

bash addin-manifest/build-zip.sh
unzip -l dist/kafka1c.zip
