#!/bin/sh
# Builds the C librdkafka contender against the librdkafka inside the confluent-kafka wheel.
# usage: build-librdkafka-bench.sh [OUTPUT]   (default /work/main/target/bench/librdkafka_bench)
set -eu
out=${1:-/work/main/target/bench/librdkafka_bench}
here=$(cd "$(dirname "$0")" && pwd)
lib=$(python3 -c '
import confluent_kafka, glob, os
d = os.path.join(os.path.dirname(os.path.dirname(confluent_kafka.__file__)), "confluent_kafka.libs")
libs = sorted(glob.glob(os.path.join(d, "librdkafka*.so*")))
if not libs:
    raise SystemExit("librdkafka not found in " + d)
print(libs[0])
')
libdir=$(dirname "$lib")
mkdir -p "$(dirname "$out")"
# rpath: the wheel directory is not on the loader path.
gcc -O2 -std=gnu11 -Wall -Wextra -o "$out" "$here/librdkafka_bench.c" \
    -L"$libdir" -l:"$(basename "$lib")" -Wl,-rpath,"$libdir" -lm
echo "built $out against $lib" >&2
