#!/usr/bin/env python3
"""Prints the partition librdkafka's murmur2_random partitioner picks for each key.

Keys come as base64 lines on stdin; each is produced with librdkafka to TOPIC (which must have
PARTITIONS partitions) and the delivery report's partition is printed as {"key_b64", "partition"}."""
import argparse
import base64
import json
import sys

from confluent_kafka import Producer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    a = p.parse_args()
    keys = [line.strip() for line in sys.stdin if line.strip()]
    out = {}
    prod = Producer({"bootstrap.servers": a.bootstrap, "partitioner": "murmur2_random", "linger.ms": 5, "log_level": 3})

    def report(err, msg, k):
        if err is not None:
            print(f"delivery failed: {err}", file=sys.stderr)
            sys.exit(1)
        out[k] = msg.partition()

    for k in keys:
        prod.produce(a.topic, key=base64.b64decode(k), value=b"p", on_delivery=lambda e, m, k=k: report(e, m, k))
        prod.poll(0)
    if prod.flush(60) != 0:
        print("flush timed out", file=sys.stderr)
        sys.exit(1)
    for k in keys:
        print(json.dumps({"key_b64": k, "partition": out[k]}))


if __name__ == "__main__":
    main()
