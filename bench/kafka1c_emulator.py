#!/usr/bin/env python3
"""Contender: kafka1c as 1C sees it, driven through the host emulator (tests/host/host1c.c).

    kafka1c_emulator.py --bootstrap HOST:PORT --scenario NAME --topic TOPIC --size BYTES
                        --count N [--linger-ms L] [--emulator PATH] [--library PATH]
                        [--timeout-s S]

Scenarios: produce-async, produce-sync, produce-batch, consume-poll, consume-batch, e2e,
boundary, rss-idle, rss-soak. The timed loops run inside the emulator (its `bench` command), so
the pipe to this script is never measured. Diagnostics go to stderr; one JSON line to stdout.
"""
import argparse
import json
import os
import subprocess
import sys
import time
import uuid

# The consumers' fetch wait, the same for every contender (bench/README.md).
FETCH_WAIT_MS = int(os.environ.get("BENCH_FETCH_WAIT_MS", 500))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "tests", "host", "host1c.c")
BATCH = 1000
SOAK_CHUNK = 100_000
# Enough iterations for any `stop-after` loop: those end on the message count or max-ms.
UNBOUNDED = 1 << 60


def log(*args):
    print(*args, file=sys.stderr, flush=True)


class Failure(Exception):
    pass


def quote(s):
    """A script string literal (the emulator reads JSON-like escapes)."""
    out = ['"']
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def build_emulator(path):
    """Builds the emulator when missing or older than its source."""
    if os.path.exists(path) and os.path.getmtime(path) >= os.path.getmtime(SOURCE):
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    log(f"building {path}")
    tmp = f"{path}.tmp{os.getpid()}"
    subprocess.run(["gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-D_GNU_SOURCE", "-o", tmp,
                    SOURCE, "-ldl", "-lpthread"], check=True)
    os.replace(tmp, path)


class Emulator:
    """One host1c process driven interactively: a line in, a JSON line out."""

    def __init__(self, emulator, library):
        self.proc = subprocess.Popen([emulator, library], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, encoding="utf-8")
        first = self._read()
        if first.get("cmd") != "load":
            raise Failure(f"emulator did not load {library}: {first}")

    def _read(self):
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise Failure(f"emulator exited (status {self.proc.wait()})")
            v = json.loads(line)
            if v.get("cmd") == "host-warning":
                log(f"emulator: {v}")
            if v.get("cmd") not in ("event", "host-warning"):
                return v

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self._read()

    def ok(self, line):
        v = self.send(line)
        if v.get("ok") is False:
            raise Failure(f"{line[:200]} failed: {v.get('error') or v.get('host_error') or v}")
        return v

    def bench(self, spec):
        """Runs `bench SPEC`; raises unless every call succeeded."""
        v = self.ok("bench " + spec)
        if v.get("errors"):
            raise Failure(f"bench {spec[:200]}: {v['errors']} errors, last: {v.get('error')}")
        return v

    def finish(self):
        """Closes stdin (the emulator destroys its objects) and returns the exit line."""
        self.proc.stdin.close()
        last = {}
        for line in self.proc.stdout:
            v = json.loads(line)
            if v.get("cmd") == "exit":
                last = v
        last["status"] = self.proc.wait()
        return last


def producer_settings(a, linger):
    return {"bootstrap.servers": a.bootstrap, "acks": "all", "enable.idempotence": True,
            "compression.type": "none", "batch.size": 1_000_000, "linger.ms": linger}


def consumer_settings(a):
    return {"bootstrap.servers": a.bootstrap, "group.id": f"kafka1c-bench-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "session.timeout.ms": 6000, "fetch.wait.max.ms": FETCH_WAIT_MS}


def connect(emu, settings):
    emu.ok("new")
    emu.ok("call Connect " + quote(json.dumps(settings)))


def percentiles_us(b):
    return b["p50_ns"] / 1000.0, b["p99_ns"] / 1000.0


def produce_call(a):
    return f"call ProduceAsync {quote(a.topic)} {quote('x' * a.size)}"


def flush_delivered(emu, timeout_ms):
    """Flush inside the emulator; the count of reports with an offset is the delivered count."""
    b = emu.bench(f'1 match "\\"offset\\":" call Flush {timeout_ms}')
    return b["matches"], b["total_ns"]


def warm_up(emu, a):
    """One acknowledged record before the clock starts (metadata, connections, the idempotent
    producer id), as every contender does; it is not counted."""
    emu.ok(f"call Produce {quote(a.topic)} {quote('warm-up')}")


def produce_async(emu, a):
    connect(emu, producer_settings(a, a.linger_ms))
    warm_up(emu, a)
    b = emu.bench(f"{a.count} {produce_call(a)}")
    delivered, flush_ns = flush_delivered(emu, a.timeout_s * 1000)
    if delivered != a.count:
        raise Failure(f"{delivered} of {a.count} delivered")
    # The gap between the two commands (one pipe round trip) is not counted.
    call50, call99 = percentiles_us(b)
    return {"count": delivered, "secs": (b["total_ns"] + flush_ns) / 1e9, "p50_us": None,
            "p99_us": None, "call_p50_us": call50, "call_p99_us": call99,
            "flush_secs": flush_ns / 1e9}


def produce_sync(emu, a):
    connect(emu, producer_settings(a, 0))
    warm_up(emu, a)
    b = emu.bench(f"{a.count} call Produce {quote(a.topic)} {quote('x' * a.size)}")
    p50, p99 = percentiles_us(b)
    return {"count": b["count"], "secs": b["total_ns"] / 1e9, "p50_us": p50, "p99_us": p99}


def produce_batch(emu, a):
    connect(emu, producer_settings(a, a.linger_ms))
    warm_up(emu, a)
    total_ns, done, times = 0, 0, []
    full, rest = divmod(a.count, BATCH)
    for calls, n in ((full, BATCH), (1, rest)):
        if not calls or not n:
            continue
        body = json.dumps({"records": [{"value": "x" * a.size}] * n}, separators=(",", ":"))
        b = emu.bench(f'{calls} match "\\"error_code\\":null" '
                      f"call ProduceBatch {quote(a.topic)} {quote(body)}")
        if b["matches"] != calls * n:
            raise Failure(f"{b['matches']} of {calls * n} records delivered")
        total_ns += b["total_ns"]
        done += b["matches"]
        times.append(b)
    p50, p99 = percentiles_us(times[0])
    return {"count": done, "secs": total_ns / 1e9, "p50_us": p50, "p99_us": p99,
            "records_per_call": BATCH}


def consume(emu, a, step):
    """Subscribes with a fresh group and polls the pre-filled topic dry in one loop on the
    wall clock. The first message waits for the group join, so the time runs from the call that
    brought it to the call that brought the last, as the other contenders measure. Later results
    are not counted inside the loop (the fetcher works on meanwhile); the positions afterwards
    prove every message came."""
    connect(emu, consumer_settings(a))
    emu.ok(f"call Subscribe {quote(a.topic)}")
    b = emu.bench(f"{UNBOUNDED} max-ms {a.timeout_s * 1000} wall-clock until-dry {step}")
    if not b["hits"]:
        raise Failure(f"no message within {a.timeout_s} s of Subscribe")
    if b["timed_out"]:
        raise Failure(f"messages still came after {a.timeout_s} s")
    parts = json.loads(emu.ok("call Assignment")["ret"]["value"])
    read = sum(p["position"] or 0 for p in parts)
    end = sum(p["high_watermark"] or 0 for p in parts)
    if read != end or read < a.count:
        raise Failure(f"read {read} messages of {end} (expected at least {a.count})")
    p50, p99 = percentiles_us(b)
    # The messages that came with the first are not counted: the clock starts after them.
    return {"count": read - b["first_hit_items"],
            "secs": (b["last_hit_ns"] - b["first_hit_ns"]) / 1e9,
            "p50_us": p50, "p99_us": p99, "join_ms": b["first_hit_ns"] / 1e6}


def consume_poll(emu, a):
    return consume(emu, a, "call Poll 1000 ; then get Value")


def consume_batch(emu, a):
    return consume(emu, a, f"call PollBatch {BATCH} 1000")


def e2e(emu, a):
    connect(emu, consumer_settings(a))  # object 0
    emu.ok(f"call Subscribe {quote(a.topic)}")
    connect(emu, producer_settings(a, 0))  # object 1
    trip = f"use 1 ; {produce_call(a)} ; use 0 ; until-hit call Poll 1000 ; then get Value"
    warm = emu.bench(f"1 max-ms {a.timeout_s * 1000} {trip}")
    if not warm["items"]:
        raise Failure(f"the warm-up message did not come back within {a.timeout_s} s")
    b = emu.bench(f"{a.count} max-ms {a.timeout_s * 1000} {trip}")
    if b["items"] != a.count:
        raise Failure(f"only {b['items']} of {a.count} round trips completed")
    # A leftover message means the topic was not empty and polls matched older messages.
    if emu.ok("call Poll 500")["ret"]["value"]:
        raise Failure("a message was left over: the topic was not empty before the run")
    p50, p99 = percentiles_us(b)
    return {"count": b["items"], "secs": b["total_ns"] / 1e9, "p50_us": p50, "p99_us": p99,
            "warmup_ms": warm["total_ns"] / 1e6}


def boundary(emu, a):
    emu.ok("new")
    v = emu.ok(f"bench-prop Version {a.count}")
    return {"count": v["ok"], "secs": v["ns_per_call"] * a.count / 1e9, "p50_us": None,
            "p99_us": None, "ns_per_call": v["ns_per_call"], "prop": "Version"}


def rss(emu):
    return emu.ok("rss")["kb"]


def rss_idle(emu, a):
    before = rss(emu)
    t0 = time.perf_counter()
    settings = quote(json.dumps({"bootstrap.servers": a.bootstrap}))
    for _ in range(a.count):
        emu.ok("new")
        emu.ok("call Connect " + settings)
    secs = time.perf_counter() - t0
    emu.ok("sleep 1000")  # let background connects and allocations settle
    after = rss(emu)
    return {"count": a.count, "secs": secs, "p50_us": None, "p99_us": None,
            "rss_before_kb": before, "rss_after_kb": after,
            "rss_per_client_kb": (after - before) / max(a.count, 1)}


def slope(ys):
    """Least-squares slope of ys against 0, 1, 2, ..."""
    n = len(ys)
    if n < 2:
        return None
    mx, my = (n - 1) / 2, sum(ys) / n
    return sum((x - mx) * (y - my) for x, y in enumerate(ys)) / sum((x - mx) ** 2 for x in range(n))


def rss_soak(emu, a):
    connect(emu, producer_settings(a, a.linger_ms))  # object 0
    connect(emu, consumer_settings(a))  # object 1
    emu.ok(f"call Subscribe {quote(a.topic)}")
    before = rss(emu)
    samples, produced, consumed = [], 0, 0
    t0 = time.perf_counter()
    while consumed < a.count:
        n = min(SOAK_CHUNK, a.count - consumed)
        emu.ok("use 0")
        emu.bench(f"{n} {produce_call(a)}")
        delivered, _ = flush_delivered(emu, a.timeout_s * 1000)
        if delivered != n:
            raise Failure(f"chunk {len(samples) + 1}: {delivered} of {n} delivered")
        produced += n
        emu.ok("use 1")
        b = emu.bench(f"{UNBOUNDED} stop-after {n} max-ms {a.timeout_s * 1000} "
                      "call Poll 1000 ; then get Value")
        consumed += b["items"]
        if b["items"] < n:
            raise Failure(f"chunk {len(samples) + 1}: {b['items']} of {n} consumed")
        samples.append(rss(emu))
        log(f"rss-soak: {consumed} messages, rss {samples[-1]} kB")
    secs = time.perf_counter() - t0
    half = samples[len(samples) // 2:]
    s = slope(half)
    return {"count": consumed, "secs": secs, "p50_us": None, "p99_us": None,
            "rss_before_kb": before, "rss_kb": samples,
            "rss_slope_kb_per_100k": s * 100_000 / SOAK_CHUNK if s is not None else None}


SCENARIOS = {
    "produce-async": produce_async, "produce-sync": produce_sync, "produce-batch": produce_batch,
    "consume-poll": consume_poll, "consume-batch": consume_batch, "e2e": e2e,
    "boundary": boundary, "rss-idle": rss_idle, "rss-soak": rss_soak,
}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--scenario", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--linger-ms", type=int, default=5)
    p.add_argument("--emulator", default=os.path.join(ROOT, "target", "bench", "host1c"))
    p.add_argument("--library", default=os.path.join(ROOT, "target", "release", "libkafka1c.so"))
    p.add_argument("--timeout-s", type=int, default=120,
                   help="give up on a consume loop or a flush after this long")
    a = p.parse_args()
    run = SCENARIOS.get(a.scenario)
    if run is None:
        log(f"error: unsupported scenario {a.scenario!r}")
        return 2
    if a.count <= 0 or a.size < 0:
        log("error: --count must be positive and --size not negative")
        return 2
    if not os.path.exists(a.library):
        log(f"error: {a.library} missing (cargo build --release --lib)")
        return 2
    try:
        build_emulator(a.emulator)
    except (OSError, subprocess.CalledProcessError) as e:
        log(f"error: cannot build the emulator: {e}")
        return 2
    emu = Emulator(a.emulator, a.library)
    try:
        result = run(emu, a)
    except Failure as e:
        log(f"error: {a.scenario}: {e}")
        emu.proc.kill()
        return 1
    exit_line = emu.finish()
    if exit_line.get("leaked") or exit_line.get("bad_frees") or exit_line.get("status"):
        log(f"error: host memory check failed: {exit_line}")
        return 3
    print(json.dumps({"scenario": a.scenario, **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
