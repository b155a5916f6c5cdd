#!/usr/bin/env python3
"""Peer contender: librdkafka through the confluent-kafka Python binding.

    librdkafka_bench.py --bootstrap HOST:PORT --scenario NAME --topic TOPIC
                        --size BYTES --count N [--linger-ms L]

Scenarios: produce-async, produce-sync, produce-batch, consume-poll, consume-batch, e2e.
Diagnostics go to stderr; exactly one JSON result line goes to stdout.
"""
import argparse
import json
import math
import os
import sys
import time

from confluent_kafka import KafkaException, Consumer, Producer

BATCH = 1000
# Give up when nothing moves for this long (group join included); the run has failed then.
STALL_SECS = 60.0


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def fail(msg, code=1):
    log(f"error: {msg}")
    sys.exit(code)


def percentile_us(samples, q):
    # Nearest-rank, the same rule as the C and Rust contenders.
    if not samples:
        return None
    s = sorted(samples)
    i = min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))
    return s[i] * 1e6


def producer(args, linger_ms):
    return Producer({
        "bootstrap.servers": args.bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "compression.type": "none",
        "batch.size": 1000000,
        "linger.ms": linger_ms,
        # The benchmark's message count must fit the local queue (async scenario).
        "queue.buffering.max.messages": max(100000, args.count + BATCH),
        "queue.buffering.max.kbytes": 2097151,
    })


def consumer(args):
    group = f"peer-bench-{args.scenario}-{os.getpid()}-{time.time_ns()}"
    extra = {}
    if os.environ.get("BENCH_FETCH_WAIT_MS"):
        # Brokers here hold an empty Fetch (mock: all of it, Tansu: ~half), so e2e follows it.
        extra["fetch.wait.max.ms"] = int(os.environ["BENCH_FETCH_WAIT_MS"])
    c = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        # Tansu answers the second JoinGroup after about half the session timeout
        # (23 s at the 45 s default); a shorter one only shortens the unmeasured join.
        "session.timeout.ms": 10000,
        **extra,
    })
    c.subscribe([args.topic])
    return c


class Acks:
    """Delivery callback state: counts successes, remembers the first failure."""

    def __init__(self):
        self.ok = 0
        self.failed = 0
        self.first_error = None

    def __call__(self, err, msg):
        if err is None:
            self.ok += 1
        else:
            self.failed += 1
            if self.first_error is None:
                self.first_error = err


def produce_one(p, topic, value, cb):
    # A full local queue is back-pressure, not failure: serve callbacks and retry.
    while True:
        try:
            p.produce(topic, value, on_delivery=cb)
            return
        except BufferError:
            p.poll(0.01)


def flush_all(p, acks, expected):
    deadline = time.monotonic() + STALL_SECS
    while acks.ok + acks.failed < expected:
        p.flush(1.0)
        if time.monotonic() > deadline:
            fail(f"timed out waiting for acks ({acks.ok}/{expected})")
    if acks.failed:
        fail(f"{acks.failed} deliveries failed, first: {acks.first_error}")


def warm_up_producer(p, args):
    # Metadata, connections and the idempotent producer id are set up before the clock
    # starts; the warm-up message itself is not counted (consume scenarios only need "at
    # least count").
    p.list_topics(args.topic, timeout=10)
    p.produce(args.topic, b"warm-up")
    p.flush(30)


def produce_async(args):
    p = producer(args, args.linger_ms)
    warm_up_producer(p, args)
    value = b"x" * args.size
    acks = Acks()
    t0 = time.perf_counter()
    # Delivery callbacks are served by flush(), or by poll() on a full queue.
    for _ in range(args.count):
        produce_one(p, args.topic, value, acks)
    flush_all(p, acks, args.count)
    return acks.ok, time.perf_counter() - t0, []


def produce_sync(args):
    p = producer(args, 0)
    warm_up_producer(p, args)
    value = b"x" * args.size
    acks = Acks()
    lat = []
    t0 = time.perf_counter()
    for i in range(args.count):
        s = time.perf_counter()
        produce_one(p, args.topic, value, acks)
        flush_all(p, acks, i + 1)
        lat.append(time.perf_counter() - s)
    return acks.ok, time.perf_counter() - t0, lat


def produce_batch(args):
    p = producer(args, args.linger_ms)
    warm_up_producer(p, args)
    value = b"x" * args.size
    acks = Acks()
    done = 0
    t0 = time.perf_counter()
    while done < args.count:
        n = min(BATCH, args.count - done)
        for _ in range(n):
            produce_one(p, args.topic, value, acks)
        done += n
        flush_all(p, acks, done)
    return acks.ok, time.perf_counter() - t0, []


def check(msg):
    """True for a data message; logs and skips broker/client events."""
    if msg is None:
        return False
    if msg.error():
        if msg.error().fatal():
            raise KafkaException(msg.error())
        log(f"consumer event: {msg.error()}")
        return False
    return True


def consume(args, take):
    """Receives args.count messages with take(consumer, still_wanted) -> messages received;
    timed from the first message (the group join and first fetch are left out)."""
    c = consumer(args)
    got, t0 = 0, None
    last = time.monotonic()
    try:
        while got < args.count:
            n = take(c, args.count - got)
            if n:
                if t0 is None:
                    t0 = time.perf_counter()
                    log(f"first message after {time.monotonic() - last:.3f}s (group join + fetch)")
                got += n
                last = time.monotonic()
            elif time.monotonic() - last > STALL_SECS:
                fail(f"stalled at {got}/{args.count} messages")
        secs = time.perf_counter() - t0
    finally:
        c.close()
    return got, secs, []


def consume_poll(args):
    return consume(args, lambda c, _: 1 if check(c.poll(1.0)) else 0)


def consume_batch(args):
    return consume(args, lambda c, want: sum(
        1 for m in c.consume(num_messages=min(BATCH, want), timeout=1.0) if check(m)))


def e2e_value(run, seq, size):
    # A run id and sequence number lead the value when they fit, so each round trip
    # is matched to its own message (and a non-empty topic is detected).
    tag = f"{run}-{seq}-".encode()
    return tag + b"x" * (size - len(tag)) if len(tag) <= size else b"x" * size


def e2e(args):
    c = consumer(args)
    p = producer(args, 0)
    acks = Acks()
    run = f"{os.getpid()}.{time.time_ns()}"

    def round_trip(seq):
        value = e2e_value(run, seq, args.size)
        s = time.perf_counter()
        produce_one(p, args.topic, value, acks)
        deadline = time.monotonic() + STALL_SECS
        while True:
            p.poll(0)
            msg = c.poll(0.1)
            if check(msg):
                took = time.perf_counter() - s
                if msg.value() != value:
                    fail(f"round trip {seq}: unexpected message (topic not empty?)")
                return took
            if time.monotonic() > deadline:
                fail(f"round trip {seq}: message never arrived")

    try:
        w = time.monotonic()
        round_trip(-1)  # warm-up: group join, assignment, connections
        log(f"warm-up round trip took {time.monotonic() - w:.3f}s")
        lat = []
        t0 = time.perf_counter()
        for i in range(args.count):
            lat.append(round_trip(i))
        secs = time.perf_counter() - t0
        flush_all(p, acks, args.count + 1)
    finally:
        c.close()
    return len(lat), secs, lat


SCENARIOS = {
    "produce-async": produce_async,
    "produce-sync": produce_sync,
    "produce-batch": produce_batch,
    "consume-poll": consume_poll,
    "consume-batch": consume_batch,
    "e2e": e2e,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--linger-ms", type=int, default=5)
    args = ap.parse_args()
    run = SCENARIOS.get(args.scenario)
    if run is None:
        fail(f"unsupported scenario {args.scenario!r}", 2)
    if args.size < 0 or args.count <= 0:
        fail("--size must be >= 0 and --count > 0", 2)
    try:
        count, secs, lat = run(args)
    except KafkaException as e:
        fail(f"kafka: {e}")
    print(json.dumps({
        "scenario": args.scenario,
        "count": count,
        "secs": secs,
        "p50_us": percentile_us(lat, 0.50),
        "p99_us": percentile_us(lat, 0.99),
    }), flush=True)


if __name__ == "__main__":
    main()
