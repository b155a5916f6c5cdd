#!/usr/bin/env python3
"""A librdkafka consumer-group member for interoperability tests. Prints JSON lines (events):
  {"event": "assigned", "partitions": [[topic, partition], ...]}   after each rebalance
  {"event": "revoked", "partitions": [...]}
  {"event": "record", topic, partition, offset, key_b64, value_b64, headers, timestamp}
  {"event": "committed", "offsets": [[topic, partition, offset], ...]}   (next offset to read)
Record and committed events also carry "t", the wall-clock time (seconds) when they happened.
  {"event": "error", "error": "..."}
  {"event": "closed", "received": N}
It commits synchronously after every --commit-every records (0: only when stopping; with
--no-commit never) and on revocation, so a commit never covers a record it did not print.
It stops cleanly (commit, leave the group, close) on stdin EOF, after --duration seconds or
after --max-records records. Commands on stdin, one JSON line each:
  {"cmd": "commit"}   commit now
  {"cmd": "crash"}    exit at once without committing or leaving (a killed member)
  {"cmd": "stop"}     same as EOF."""
import argparse
import json
import os
import queue
import sys
import threading
import time

from _peer import emit, quiet_rdkafka_conf, record_json


def event(obj):
    # Wall-clock time of the event, so a test can order it against its own members' calls.
    obj["t"] = time.time()
    emit(obj)


def stdin_reader(q):
    for line in sys.stdin:
        if line.strip():
            try:
                q.put(json.loads(line))
            except ValueError:
                emit({"event": "error", "error": f"bad command {line.strip()!r}"})
    q.put({"cmd": "stop"})


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--topics", required=True, help="comma-separated")
    p.add_argument("--duration", type=float, default=60)
    p.add_argument("--max-records", type=int, default=0)
    p.add_argument("--commit-every", type=int, default=100)
    p.add_argument("--no-commit", action="store_true")
    p.add_argument("--reset", choices=["earliest", "latest", "error"], default="earliest")
    p.add_argument("--strategy", default="range,roundrobin",
                   help="partition.assignment.strategy (eager protocols only)")
    p.add_argument("--session-timeout-ms", type=int, default=10000)
    p.add_argument("--heartbeat-ms", type=int, default=1000)
    p.add_argument("--instance-id", help="group.instance.id (static membership)")
    p.add_argument("--client-id", default="peer-group-consumer")
    a = p.parse_args()

    from confluent_kafka import Consumer, KafkaException

    conf = quiet_rdkafka_conf(a.bootstrap)
    conf.update({"group.id": a.group, "client.id": a.client_id, "auto.offset.reset": a.reset,
                 "enable.auto.commit": False, "partition.assignment.strategy": a.strategy,
                 "session.timeout.ms": a.session_timeout_ms,
                 "heartbeat.interval.ms": a.heartbeat_ms})
    if a.instance_id:
        conf["group.instance.id"] = a.instance_id
    c = Consumer(conf)
    uncommitted = {}  # (topic, partition) -> next offset, only for records already printed

    def commit(partitions=None):
        offs = {tp: o for tp, o in uncommitted.items() if partitions is None or tp in partitions}
        if a.no_commit or not offs:
            return
        from confluent_kafka import TopicPartition

        try:
            res = c.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offs.items()],
                           asynchronous=False)
            event({"event": "committed",
                  "offsets": [[tp.topic, tp.partition, tp.offset] for tp in res if tp.error is None]})
            for tp in res:
                if tp.error is None:
                    uncommitted.pop((tp.topic, tp.partition), None)
                else:
                    emit({"event": "error", "error": f"commit {tp.topic}/{tp.partition}: {tp.error}"})
        except KafkaException as e:
            emit({"event": "error", "error": f"commit: {e}"})

    def on_assign(consumer, parts):
        emit({"event": "assigned", "partitions": sorted([tp.topic, tp.partition] for tp in parts)})

    def on_revoke(consumer, parts):
        commit({(tp.topic, tp.partition) for tp in parts})
        for tp in parts:
            uncommitted.pop((tp.topic, tp.partition), None)
        emit({"event": "revoked", "partitions": sorted([tp.topic, tp.partition] for tp in parts)})

    c.subscribe(a.topics.split(","), on_assign=on_assign, on_revoke=on_revoke)
    cmds = queue.Queue()
    threading.Thread(target=stdin_reader, args=(cmds,), daemon=True).start()
    received, since_commit, deadline = 0, 0, time.time() + a.duration
    while time.time() < deadline and not (a.max_records and received >= a.max_records):
        try:
            cmd = cmds.get_nowait().get("cmd")
        except queue.Empty:
            cmd = None
        if cmd == "stop":
            break
        if cmd == "crash":
            sys.stdout.flush()
            os._exit(3)
        if cmd == "commit":
            commit()
        m = c.poll(0.1)
        if m is None:
            continue
        if m.error():
            emit({"event": "error", "error": str(m.error())})
            continue
        event({"event": "record", **record_json(m.topic(), m.partition(), m.offset(), m.key(),
                                                m.value(), m.headers(), m.timestamp()[1])})
        uncommitted[(m.topic(), m.partition())] = m.offset() + 1
        received += 1
        since_commit += 1
        if a.commit_every and since_commit >= a.commit_every:
            commit()
            since_commit = 0
    commit()
    c.close()  # leaves the group, so the others rebalance at once
    emit({"event": "closed", "received": received})


if __name__ == "__main__":
    main()
