#!/usr/bin/env python3
"""Reads COUNT records of a topic from the beginning with librdkafka or kafka-python and prints
each as a JSON line: topic, partition, offset, key_b64, value_b64, headers [[name, b64|null]],
timestamp. Exits non-zero if COUNT records did not arrive within TIMEOUT seconds."""
import argparse
import base64
import json
import sys
import time
import uuid


def b64(v):
    return None if v is None else base64.b64encode(v).decode()


def dump(topic, partition, offset, key, value, headers, ts):
    print(json.dumps({"topic": topic, "partition": partition, "offset": offset, "key_b64": b64(key),
                      "value_b64": b64(value), "headers": [[k, b64(v)] for k, v in (headers or [])],
                      "timestamp": ts}))


def rdkafka(a):
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": a.group or f"peer-{uuid.uuid4()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "api.version.request": True, "log_level": 3})
    if a.group:
        c.subscribe([a.topic])
    else:
        # No group: assign every partition from the start, skipping the group join.
        from confluent_kafka import TopicPartition, OFFSET_BEGINNING
        deadline = time.time() + a.timeout
        while True:
            md = c.list_topics(a.topic, timeout=10).topics.get(a.topic)
            if md is not None and md.error is None and md.partitions:
                break
            if time.time() > deadline:
                print(f"topic {a.topic} not found", file=sys.stderr)
                sys.exit(1)
            time.sleep(0.2)
        c.assign([TopicPartition(a.topic, p, OFFSET_BEGINNING) for p in md.partitions])
    got, deadline = 0, time.time() + a.timeout
    while got < a.count and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            print(f"consumer error: {m.error()}", file=sys.stderr)
            continue
        hdrs = m.headers() or []
        dump(m.topic(), m.partition(), m.offset(), m.key(), m.value(), hdrs, m.timestamp()[1])
        got += 1
    c.close()
    return got


def kafka_python(a):
    from kafka import KafkaConsumer

    c = KafkaConsumer(a.topic, bootstrap_servers=a.bootstrap.split(","), group_id=a.group,
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      consumer_timeout_ms=int(a.timeout * 1000))
    got, deadline = 0, time.time() + a.timeout
    while got < a.count and time.time() < deadline:
        batch = c.poll(timeout_ms=500)
        for records in batch.values():
            for m in records:
                dump(m.topic, m.partition, m.offset, m.key, m.value, m.headers, m.timestamp)
                got += 1
    c.close()
    return got


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--client", choices=["rdkafka", "kafka-python"], default="rdkafka")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--group")
    p.add_argument("--timeout", type=float, default=60)
    a = p.parse_args()
    got = rdkafka(a) if a.client == "rdkafka" else kafka_python(a)
    sys.stdout.flush()
    if got < a.count:
        print(f"only {got} of {a.count} records arrived within {a.timeout}s", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
