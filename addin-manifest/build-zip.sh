#!/usr/bin/env bash
# Builds dist/kafka1c.zip: MANIFEST.XML at the root and every binary it names
# (Linux x86_64 .so, Windows x86_64 and i386 .dll), ready for a 1C template of type
# "Внешняя компонента". Installs the cross toolchains it needs when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/install-deps.sh build

build() { # target, source file name, name in the zip
  local target=$1 file=$2 name=$3 dir
  if [ -z "$target" ]; then
    cargo build --release --lib
    dir=target/release
  else
    cargo build --release --lib --target "$target"
    dir=target/$target/release
  fi
  cp "$dir/$file" "dist/zip/$name"
}

rm -rf dist/zip && mkdir -p dist/zip
build "" libkafka1c.so libkafka1c_linux_x86_64.so
build x86_64-pc-windows-gnu kafka1c.dll kafka1c_windows_x86_64.dll
build i686-pc-windows-gnu kafka1c.dll kafka1c_windows_i386.dll
cp MANIFEST.XML dist/zip/

# Every path the manifest names must be in the zip.
for path in $(grep -o 'path="[^"]*"' MANIFEST.XML | cut -d'"' -f2); do
  [ -f "dist/zip/$path" ] || { echo "MANIFEST.XML names $path but it was not built" >&2; exit 1; }
done
rm -f dist/kafka1c.zip
(cd dist/zip && zip -q -X "$root/dist/kafka1c.zip" MANIFEST.XML *.so *.dll)
unzip -l dist/kafka1c.zip
