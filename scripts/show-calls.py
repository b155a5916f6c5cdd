#!/usr/bin/env python3
"""Prints the host emulator's JSON lines as a readable list of calls and results."""
import json
import sys

for line in sys.stdin:
    m = json.loads(line)
    cmd = m.get("cmd")
    if cmd in ("call", "get"):
        name = m.get("method") or m.get("prop")
        if m.get("ok"):
            v = m.get("ret", m.get("value"))
            v = v.get("value", v.get("hex", "")) if isinstance(v, dict) else ""
            print(f"  {name:22} -> {v}")
        else:
            print(f"  {name:22} !! {m.get('error')}")
    elif cmd == "exit":
        print(f"demo: host memory check: {m['allocs']} allocations, {m['leaked']} leaked, "
              f"{m['bad_frees']} freed twice")
        sys.exit(m["status"])
