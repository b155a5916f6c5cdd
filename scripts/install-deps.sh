#!/usr/bin/env bash
# Installs what building the add-in zip needs: Rust targets for Windows, MinGW cross compilers,
# zip. Quick when everything is already there.
#   scripts/install-deps.sh build
set -euo pipefail

need_apt=()
command -v x86_64-w64-mingw32-gcc >/dev/null || need_apt+=(gcc-mingw-w64-x86-64)
command -v i686-w64-mingw32-gcc >/dev/null || need_apt+=(gcc-mingw-w64-i686)
command -v zip >/dev/null || need_apt+=(zip)
command -v unzip >/dev/null || need_apt+=(unzip)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

installed=$(rustup target list --installed)
for t in x86_64-pc-windows-gnu i686-pc-windows-gnu; do
  if ! grep -qx "$t" <<<"$installed"; then
    echo "install-deps: rustup target add $t"
    rustup target add "$t" >/dev/null
  fi
done
