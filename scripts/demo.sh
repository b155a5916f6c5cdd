#!/usr/bin/env bash
# Builds dist/kafka1c.zip, starts a local broker, and runs a demo through the 1C host emulator
# using the Linux library taken out of the zip, exactly as 1C would load it. Prints a progress
# line at least every 20 s; the full build log is in $KAFKA1C_LOG.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/progress.sh
: >"$KAFKA1C_LOG"
say "the first run installs toolchains and builds three libraries: about 13 minutes and"
say "4.5 GB of disk; later runs take seconds. Full log: $KAFKA1C_LOG"
step "installing what the demo needs (MinGW, Zig, Rust targets, a JDK and Maven)" \
  bash scripts/install-deps.sh demo
bash addin-manifest/build-zip.sh

work=$(mktemp -d)
trap 'exec 3>&- 2>/dev/null; rm -rf "$work"' EXIT
unzip -q dist/kafka1c.zip -d "$work/addin"
step "building the 1C host emulator" \
  gcc -std=c11 -O2 -D_GNU_SOURCE -o "$work/host1c" tests/host/host1c.c -ldl -lpthread
# Apache Kafka's jars: resolved from Maven Central on the first run (about 30 s), then cached.
step "getting Apache Kafka 4.4.0 (first run: from Maven Central)" \
  bash tests/support/kafka/jars.sh 4.4.0
say "starting a single-node Apache Kafka 4.4.0 (about 10 s) ..."

# The broker launcher stops Kafka when its stdin closes (fd 3 below, closed on exit).
mkfifo "$work/ctl"
python3 tests/support/brokers.py kafka '{"version":"4.4.0"}' < "$work/ctl" > "$work/broker.out" 2>>"$KAFKA1C_LOG" &
exec 3>"$work/ctl"
for _ in $(seq 1200); do [ -s "$work/broker.out" ] && break; sleep 0.1; done
bootstrap=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline()).get("bootstrap", ""))' "$work/broker.out" 2>/dev/null || true)
[ -n "${bootstrap:-}" ] || { cat "$work/broker.out" >&2; say "Kafka did not start; log: $KAFKA1C_LOG"; exit 1; }
say "Apache Kafka at $bootstrap; running the demo through the 1C host emulator:"

settings="{\\\"bootstrap.servers\\\":\\\"$bootstrap\\\",\\\"linger.ms\\\":5,\\\"group.id\\\":\\\"демо\\\",\\\"auto.offset.reset\\\":\\\"earliest\\\",\\\"session.timeout.ms\\\":6000,\\\"heartbeat.interval.ms\\\":1000}"
cat > "$work/demo.txt" <<SCRIPT
new
uilang ru
get Версия
call Подключить "$settings"
call СоздатьТему "orders" 3 1
call Отправить "orders" "Заказ №1 на 100 руб." "клиент-42" "{\\"источник\\":\\"1С\\"}"
call ОтправитьАсинхронно "orders" "Заказ №2" 1002
call ОтправитьАсинхронно "orders" x"00ff10" "клиент-8"
call ДождатьсяОтправки 5000
call ОтправитьПакет "orders" "{\\"records\\":[{\\"key\\":\\"a\\",\\"value\\":{\\"sum\\":1}},{\\"value\\":\\"b\\"}]}"
call СписокТем
call Отправить "orders" true
get ОписаниеОшибки
call Подписаться "orders"
call Получить 10000
get Тема
get Раздел
get Смещение
get Ключ
get Значение
get ЗначениеДвоичное
get Заголовки
get Время
call ПолучитьПакет 10 5000
call Зафиксировать
call Назначение
call Закрыть
SCRIPT
"$work/host1c" "$work/addin/libkafka1c_linux_x86_64.so" "$work/demo.txt" \
  | python3 scripts/show-calls.py "$work/demo.txt"
