#!/usr/bin/env bash
# Resolves Apache Kafka VERSION (broker, tools, Java client, log binding) from Maven Central
# with tests/support/kafka/pom.xml and prints the folder holding the jars, for
# `java -cp 'DIR/*'`. Cached in $KAFKA1C_CACHE (default ~/.cache/kafka1c/kafka-VERSION);
# deleting that folder is safe: the next run resolves again (about 30 s).
set -euo pipefail
version=${1:?usage: jars.sh KAFKA_VERSION}
here=$(cd "$(dirname "$0")" && pwd)
cache=${KAFKA1C_CACHE:-$HOME/.cache/kafka1c}
dir=$cache/kafka-$version
if [ -f "$dir/complete" ]; then
  echo "$dir/libs"
  exit 0
fi
mkdir -p "$cache"
# Test binaries, the demo and other checkouts may ask at once: one resolves, the rest wait.
exec 9>"$cache/.lock-kafka-$version"
flock 9
if [ ! -f "$dir/complete" ]; then
  echo "kafka: resolving Apache Kafka $version from Maven Central (first run only)..." >&2
  started=$SECONDS
  tmp=$(mktemp -d "$cache/.kafka-$version.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  mvn=(mvn -q -B -f "$here/pom.xml" -Dkafka.version="$version" dependency:copy-dependencies
       -DoutputDirectory="$tmp/libs")
  "${mvn[@]}" >"$tmp/mvn.log" 2>&1 || { cat "$tmp/mvn.log" >&2; exit 1; }
  # Kafka 4 logs through log4j2 without an SLF4J binding: add the one matching its log4j-core.
  core=$(compgen -G "$tmp/libs/log4j-core-*.jar" || true)
  if [ -n "$core" ] && ! compgen -G "$tmp/libs/log4j-slf4j*.jar" >/dev/null; then
    log4j=${core##*/log4j-core-}
    "${mvn[@]}" -Dlog4j2.version="${log4j%.jar}" >"$tmp/mvn.log" 2>&1 || { cat "$tmp/mvn.log" >&2; exit 1; }
  fi
  rm -rf "$dir"
  mkdir -p "$tmp/out"
  mv "$tmp/libs" "$tmp/out/libs"
  touch "$tmp/out/complete"
  mv "$tmp/out" "$dir"
  echo "kafka: Apache Kafka $version ready in $((SECONDS - started)) s ($dir)" >&2
fi
echo "$dir/libs"
