"""Apache Kafka (KRaft) for tests: one node or a cluster, each node broker and controller in one
JVM, every listener on 127.0.0.1 at a free port. Used by brokers.py (`brokers.py kafka SPEC`).

SPEC is a JSON object, every key optional:
  "version":  Kafka version, "4.4.0" (jars from Maven Central via kafka/jars.sh)
  "nodes":    number of nodes, 1
  "server":   {"key": "value"} server.properties added to (or replacing) the defaults below
  "node_server": {"ID": {"key": "value"}} properties for one node only
  "listeners": [{"name": "SASL_SSL", "protocol": "SASL_SSL"}] more client listeners beside
              PLAINTEXT (the name is also the listener's name in listener.name.<name>.* keys)
  "jvm":      extra JVM options for every node, e.g. "-Dorg.apache.kafka...=..."
  "heap":     -Xmx, "512m"
  "format":   extra `StorageTool format` arguments, e.g. ["--add-scram", "SCRAM-SHA-256=[...]"]
  "request_log": true writes every request the broker receives (kafka.request.logger at
              DEBUG) to the node's log, to see which API versions clients send
  "keep":     true keeps the data and log folder after stopping (its path is in "dir"); so
              does the environment variable KAFKA1C_KEEP_KAFKA=1

A node is ready when it answers a Metadata request that lists every running node (a KRaft
broker accepts connections before it has registered, so an open port is not enough).
"""
import base64
import ctypes
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CONTROLLER = "CONTROLLER"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jars(version):
    """The folder of the version's jars, resolved on first use (progress on stderr)."""
    out = subprocess.run(["bash", os.path.join(HERE, "kafka", "jars.sh"), version],
                         stdout=subprocess.PIPE, check=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def die_with_parent():
    # A JVM must not outlive this launcher, even if the launcher itself is killed.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def metadata_brokers(port, timeout=2.0):
    """Node ids in a Metadata (v7, all brokers, no topics) answer from 127.0.0.1:port, or None."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            client = b"kafka1c-launcher"
            # Header v1: api key 3, version 7, correlation 1, client id; body: no topics, no
            # auto-creation.
            body = struct.pack(">hhih", 3, 7, 1, len(client)) + client + struct.pack(">i?", 0, False)
            s.sendall(struct.pack(">i", len(body)) + body)
            size = struct.unpack(">i", recv_exact(s, 4))[0]
            data = recv_exact(s, size)
    except (OSError, struct.error):
        return None
    # correlation id, throttle time, then the brokers array: id, host, port, rack.
    pos = 8
    count = struct.unpack_from(">i", data, pos)[0]
    pos += 4
    ids = []
    for _ in range(count):
        node = struct.unpack_from(">i", data, pos)[0]
        pos += 4
        host_len = struct.unpack_from(">h", data, pos)[0]
        pos += 2 + host_len + 4
        rack_len = struct.unpack_from(">h", data, pos)[0]
        pos += 2 + max(rack_len, 0)
        ids.append(node)
    return sorted(ids)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed")
        buf += chunk
    return buf


class Node:
    def __init__(self, cluster, node_id):
        self.cluster, self.id = cluster, node_id
        self.port = free_port()
        self.controller_port = free_port()
        self.extra_ports = {l["name"]: free_port() for l in cluster.listeners}
        self.dir = os.path.join(cluster.dir, f"node-{node_id}")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.props = os.path.join(self.dir, "server.properties")
        self.proc = None
        os.makedirs(self.data)

    def listeners(self):
        out = {"PLAINTEXT": f"127.0.0.1:{self.port}"}
        out.update({name: f"127.0.0.1:{p}" for name, p in self.extra_ports.items()})
        return out

    def write_properties(self, voters):
        c = self.cluster
        client = [f"PLAINTEXT://127.0.0.1:{self.port}"] + [
            f"{name}://127.0.0.1:{p}" for name, p in self.extra_ports.items()]
        protocols = {"PLAINTEXT": "PLAINTEXT", CONTROLLER: "PLAINTEXT"}
        protocols.update({l["name"]: l["protocol"] for l in c.listeners})
        rf = min(3, c.nodes)
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.id),
            "controller.quorum.voters": voters,
            "listeners": ",".join(client + [f"{CONTROLLER}://127.0.0.1:{self.controller_port}"]),
            "advertised.listeners": ",".join(client),
            "controller.listener.names": CONTROLLER,
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": ",".join(f"{k}:{v}" for k, v in protocols.items()),
            "log.dirs": self.data,
            "offsets.topic.replication.factor": str(rf),
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": str(rf),
            "transaction.state.log.min.isr": str(min(2, rf)),
            "transaction.state.log.num.partitions": "10",
            "share.coordinator.state.topic.replication.factor": str(rf),
            "share.coordinator.state.topic.min.isr": str(min(2, rf)),
            "group.initial.rebalance.delay.ms": "0",
        }
        props.update(c.server)
        props.update(c.node_server.get(str(self.id), {}))
        with open(self.props, "w") as f:
            for k, v in props.items():
                f.write(f"{k}={v}\n")

    def java(self, main, *args, heap="256m"):
        c = self.cluster
        return ["java", f"-Xmx{heap}", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={os.path.join(HERE, 'kafka', 'log4j2.properties')}",
                f"-Dlog4j.configuration=file:{os.path.join(HERE, 'kafka', 'log4j.properties')}",
                f"-Dkafka1c.request.log={'DEBUG' if c.request_log else 'WARN'}",
                *c.jvm, "-cp", os.path.join(c.libs, "*"), main, *args]

    def format(self, cluster_id):
        cmd = self.java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", self.props,
                        *self.cluster.format_args)
        # A short-lived tool: start-up time is all that counts.
        cmd[1:1] = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
        return subprocess.Popen(cmd,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def start(self):
        log = open(self.log, "a")
        cmd = self.java("kafka.Kafka", self.props, heap=self.cluster.heap)
        # Kafka's own start script options that matter on a small machine.
        cmd[1:1] = ["-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+ExitOnOutOfMemoryError"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=die_with_parent)
        log.close()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.running():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, grace=30):
        if self.running():
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines=30):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def info(self):
        return {"id": self.id, "pid": self.proc.pid if self.running() else None,
                "running": self.running(), "listeners": self.listeners(), "log": self.log}


class Kafka:
    def __init__(self, spec):
        self.version = spec.get("version", "4.4.0")
        self.nodes = int(spec.get("nodes", 1))
        self.server = {k: str(v) for k, v in spec.get("server", {}).items()}
        self.node_server = {str(n): {k: str(v) for k, v in p.items()}
                            for n, p in spec.get("node_server", {}).items()}
        self.listeners = spec.get("listeners", [])
        self.jvm = list(spec.get("jvm", []))
        self.heap = spec.get("heap", "512m")
        self.format_args = list(spec.get("format", []))
        self.request_log = bool(spec.get("request_log", False))
        self.keep = bool(spec.get("keep", False) or os.environ.get("KAFKA1C_KEEP_KAFKA"))
        started = time.time()
        self.libs = jars(self.version)
        resolved = time.time()
        self.dir = tempfile.mkdtemp(prefix=f"kafka1c-kafka-{self.version}-")
        self.members = {i: Node(self, i) for i in range(1, self.nodes + 1)}
        voters = ",".join(f"{n.id}@127.0.0.1:{n.controller_port}" for n in self.members.values())
        for n in self.members.values():
            n.write_properties(voters)
        try:
            self.format_all()
            formatted = time.time()
            for n in self.members.values():
                n.start()
            self.wait_ready(timeout=float(spec.get("ready_timeout", 120)))
        except BaseException:
            self.stop()
            raise
        ready = time.time()
        self.timings = {"jars_s": round(resolved - started, 1), "format_s": round(formatted - resolved, 1),
                        "ready_s": round(ready - formatted, 1), "total_s": round(ready - started, 1)}
        self.bootstrap = ",".join(n.listeners()["PLAINTEXT"] for n in self.members.values())

    def format_all(self):
        # What `StorageTool random-uuid` prints (Kafka's Uuid: 16 random bytes, URL-safe
        # base64 without padding), without starting a JVM for it.
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        # One JVM per node, side by side: formatting is mostly JVM start-up.
        procs = [(n, n.format(cluster_id)) for n in self.members.values()]
        for n, p in procs:
            out, _ = p.communicate()
            if p.returncode != 0:
                raise RuntimeError(f"formatting node {n.id} failed: {out[-2000:]}")

    def wait_ready(self, timeout=120.0, node=None):
        """Until every running node (or just `node`) lists every running node in Metadata."""
        deadline = time.time() + timeout
        while True:
            running = [n for n in self.members.values() if n.running()]
            want = sorted(n.id for n in running)
            asked = [self.members[node]] if node is not None else running
            pending = [n.id for n in asked if metadata_brokers(n.port) != want]
            if not pending:
                return
            for n in asked:
                if not n.running():
                    raise RuntimeError(f"Kafka node {n.id} exited during start-up:\n{n.tail()}")
            if time.time() > deadline:
                tails = "\n".join(f"--- node {i}:\n{self.members[i].tail()}" for i in pending)
                raise RuntimeError(f"Kafka nodes {pending} not ready within {timeout:.0f} s:\n{tails}")
            time.sleep(0.2)

    def hello(self):
        return {"bootstrap": self.bootstrap, "kind": "kafka", "version": self.version,
                "nodes": [n.info() for n in self.members.values()], "dir": self.dir,
                "libs": self.libs, "startup": self.timings,
                "pid": self.members[1].proc.pid if self.nodes == 1 else None}

    def command(self, c):
        cmd = c.get("cmd")
        if cmd == "ping":
            return {"ok": all(n.running() for n in self.members.values())}
        if cmd == "nodes":
            return {"ok": True, "nodes": [n.info() for n in self.members.values()]}
        if cmd in ("kill", "stop", "start"):
            node = self.members.get(int(c["node"]))
            if node is None:
                return {"ok": False, "error": f"no node {c['node']}"}
            started = time.time()
            if cmd == "kill":
                node.kill()
            elif cmd == "stop":
                node.stop()
            else:
                if node.running():
                    return {"ok": False, "error": f"node {node.id} is running"}
                node.start()
                if c.get("wait", True):
                    self.wait_ready(timeout=float(c.get("timeout", 120)), node=node.id)
            return {"ok": True, "seconds": round(time.time() - started, 2), "node": node.info()}
        if cmd == "ready":
            self.wait_ready(timeout=float(c.get("timeout", 120)))
            return {"ok": True}
        return {"ok": False, "error": f"unknown command {cmd!r}"}

    def stop(self):
        # The data is thrown away: no controlled shutdown needed, and with the quorum going
        # away at the same time it could wait for a long while.
        for n in self.members.values():
            n.kill()
        if self.keep:
            print(f"kafka: data and logs kept in {self.dir}", file=sys.stderr, flush=True)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


