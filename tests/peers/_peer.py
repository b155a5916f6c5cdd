"""Shared bits of the peer scripts: JSON-lines output, base64, failing with a message."""
import base64
import json
import sys


def b64(v):
    if v is None:
        return None
    if isinstance(v, str):
        v = v.encode()
    return base64.b64encode(v).decode()


def unb64(s):
    return None if s is None else base64.b64decode(s)


def emit(obj):
    # One JSON object per line, flushed at once so a test can read the stream while we run.
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def record_json(topic, partition, offset, key, value, headers, timestamp):
    return {"topic": topic, "partition": partition, "offset": offset, "key_b64": b64(key),
            "value_b64": b64(value), "headers": [[k, b64(v)] for k, v in (headers or [])],
            "timestamp": timestamp}


def fail(msg, code=1):
    sys.stdout.flush()
    print(f"{sys.argv[0]}: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


def quiet_rdkafka_conf(bootstrap):
    # log_level 3 keeps librdkafka's errors on stderr and drops its chatter.
    return {"bootstrap.servers": bootstrap, "log_level": 3}
