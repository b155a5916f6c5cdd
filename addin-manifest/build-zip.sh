#!/usr/bin/env bash
# Builds dist/kafka1c.zip: MANIFEST.XML at the root and every library it names (Linux x86_64 and
# aarch64 .so, Windows x86_64 and i386 .dll), ready for a 1C template of type "Внешняя компонента".
# Installs the toolchains it needs when they are missing. Build output goes to $KAFKA1C_LOG.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
KAFKA1C_WHO=${KAFKA1C_WHO:-build-zip}
. scripts/progress.sh

step "installing build tools (MinGW, Zig, Rust targets)" bash scripts/install-deps.sh build

rm -rf dist/zip && mkdir -p dist/zip
# Linux: linked against glibc 2.17 (cargo-zigbuild), so the library loads on the distributions 1C
# servers run (RHEL/CentOS 7, Astra Linux SE 1.7, RED OS 7.3, Debian 10+, Ubuntu 18.04+), not only
# on the build machine's glibc.
step "building Linux x86_64 (glibc 2.17)" \
  cargo zigbuild --release --lib --target x86_64-unknown-linux-gnu.2.17
cp target/x86_64-unknown-linux-gnu/release/libkafka1c.so dist/zip/libkafka1c_linux_x86_64.so
step "building Linux aarch64 (glibc 2.17)" \
  cargo zigbuild --release --lib --target aarch64-unknown-linux-gnu.2.17
cp target/aarch64-unknown-linux-gnu/release/libkafka1c.so dist/zip/libkafka1c_linux_aarch64.so
step "building Windows x86_64" cargo build --release --lib --target x86_64-pc-windows-gnu
cp target/x86_64-pc-windows-gnu/release/kafka1c.dll dist/zip/kafka1c_windows_x86_64.dll
step "building Windows x86" cargo build --release --lib --target i686-pc-windows-gnu
cp target/i686-pc-windows-gnu/release/kafka1c.dll dist/zip/kafka1c_windows_i386.dll
cp MANIFEST.XML dist/zip/

# The manifest and the zip name exactly the same libraries.
named=$(grep -o 'path="[^"]*"' MANIFEST.XML | cut -d'"' -f2 | sort)
built=$(cd dist/zip && ls -- *.so *.dll | sort)
[ "$named" = "$built" ] || { say "MANIFEST.XML names [$named] but the zip holds [$built]"; exit 1; }
rm -f dist/kafka1c.zip
(cd dist/zip && zip -q -X "$root/dist/kafka1c.zip" MANIFEST.XML -- *.so *.dll)
say "built dist/kafka1c.zip ($(du -k dist/kafka1c.zip | cut -f1) KB)"
