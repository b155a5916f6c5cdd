//! Apache Kafka for tests (the work is done by tests/support/kafka_broker.py): one shared
//! single node per test process and version, nodes or clusters of a test's own with extra
//! listeners, server properties and JVM options, and node kill/stop/restart by id.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde_json::{json, Value as Json};

use super::Broker;

/// The current Kafka: every suite runs on it.
pub const KAFKA: &str = "4.4.0";
/// The last 3.x line, still what many corporate clusters run: the compatibility suites.
pub const KAFKA_3: &str = "3.9.1";

/// What to start; see kafka_broker.py for every key. `KafkaSpec::new(KAFKA)` is one node with
/// Kafka's defaults (auto.create.topics.enable=true included) plus quick group start-up.
#[derive(Clone, Debug)]
pub struct KafkaSpec {
    spec: Json,
}

impl KafkaSpec {
    pub fn new(version: &str) -> KafkaSpec {
        KafkaSpec {
            spec: json!({"version": version, "nodes": 1, "server": {}, "node_server": {},
                         "listeners": [], "jvm": [], "format": []}),
        }
    }

    pub fn nodes(mut self, n: u32) -> KafkaSpec {
        self.spec["nodes"] = json!(n);
        self
    }

    /// A server.properties line for every node.
    pub fn server(mut self, key: &str, value: impl ToString) -> KafkaSpec {
        self.spec["server"][key] = json!(value.to_string());
        self
    }

    /// A server.properties line for one node.
    pub fn node_server(mut self, node: i32, key: &str, value: impl ToString) -> KafkaSpec {
        let n = node.to_string();
        if self.spec["node_server"].get(&n).is_none() {
            self.spec["node_server"][&n] = json!({});
        }
        self.spec["node_server"][&n][key] = json!(value.to_string());
        self
    }

    /// A client listener beside PLAINTEXT (name as in `listener.name.<name>.*` keys, protocol
    /// e.g. SASL_SSL); its bootstrap list is `Broker::listener(name)`.
    pub fn listener(mut self, name: &str, protocol: &str) -> KafkaSpec {
        let l = self.spec["listeners"].as_array_mut().unwrap();
        l.push(json!({"name": name, "protocol": protocol}));
        self
    }

    /// A JVM option for every node (e.g. `-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=`).
    pub fn jvm(mut self, option: &str) -> KafkaSpec {
        self.spec["jvm"].as_array_mut().unwrap().push(json!(option));
        self
    }

    /// Extra `StorageTool format` arguments (e.g. `--add-scram`, `SCRAM-SHA-256=[...]`).
    pub fn format_arg(mut self, arg: &str) -> KafkaSpec {
        self.spec["format"].as_array_mut().unwrap().push(json!(arg));
        self
    }

    /// Every request the broker receives goes to its log (`Broker::node_log`).
    pub fn request_log(mut self) -> KafkaSpec {
        self.spec["request_log"] = json!(true);
        self
    }

    pub fn start(self) -> Broker {
        Broker::start(&["kafka", &self.spec.to_string()], "kafka")
    }
}

impl Broker {
    /// The Kafka 4.4.0 single node shared by the tests of this process (tests use unique
    /// topic and group names, so they do not meet).
    pub fn kafka() -> &'static Broker {
        Broker::kafka_version(KAFKA)
    }

    /// A shared single node of another version (e.g. `KAFKA_3`).
    pub fn kafka_version(version: &str) -> &'static Broker {
        static SHARED: OnceLock<Mutex<HashMap<String, &'static Broker>>> = OnceLock::new();
        let mut shared = SHARED.get_or_init(Default::default).lock().unwrap();
        // Started under the lock: two tests asking at once get the same node. The launcher
        // stops it when this process exits and closes its stdin.
        shared.entry(version.to_string()).or_insert_with(|| {
            let b = Box::leak(Box::new(KafkaSpec::new(version).start()));
            eprintln!(
                "Apache Kafka {version} at {} (start-up {})",
                b.bootstrap(),
                b.hello["startup"]
            );
            b
        })
    }

    /// The bootstrap list of an extra listener (see `KafkaSpec::listener`).
    pub fn listener(&self, name: &str) -> String {
        let nodes = self.hello["nodes"].as_array().expect("a Kafka broker");
        let addrs: Vec<&str> = nodes
            .iter()
            .map(|n| {
                n["listeners"][name]
                    .as_str()
                    .unwrap_or_else(|| panic!("no listener {name}"))
            })
            .collect();
        addrs.join(",")
    }

    /// The server log file of a Kafka node.
    pub fn node_log(&self, node: i32) -> String {
        let nodes = self.hello["nodes"].as_array().expect("a Kafka broker");
        let n = nodes.iter().find(|n| n["id"] == node).expect("node id");
        n["log"].as_str().unwrap().to_string()
    }

    /// The Kafka version (for messages).
    pub fn version(&self) -> &str {
        self.hello["version"].as_str().unwrap_or(self.kind)
    }
}

/// A Kafka cluster of a test's own, whose nodes may be killed and restarted.
pub struct Cluster {
    pub broker: Broker,
}

impl std::ops::Deref for Cluster {
    type Target = Broker;
    fn deref(&self) -> &Broker {
        &self.broker
    }
}

impl Cluster {
    /// `nodes` Kafka 4.4.0 nodes; topics default to replication factor `nodes` (at most 3)
    /// with min.insync.replicas 2.
    pub fn kafka(nodes: u32) -> Cluster {
        Cluster::start(Cluster::spec(KAFKA, nodes))
    }

    /// The spec `Cluster::kafka` starts, to add to.
    pub fn spec(version: &str, nodes: u32) -> KafkaSpec {
        KafkaSpec::new(version)
            .nodes(nodes)
            .server("default.replication.factor", nodes.min(3))
            .server("min.insync.replicas", nodes.clamp(1, 2))
    }

    pub fn start(spec: KafkaSpec) -> Cluster {
        let broker = spec.start();
        eprintln!(
            "Apache Kafka cluster {} at {} (start-up {})",
            broker.version(),
            broker.bootstrap(),
            broker.hello["startup"]
        );
        Cluster { broker }
    }

    fn node_command(&self, cmd: &str, node: i32) -> Json {
        let r = self.command(json!({"cmd": cmd, "node": node}));
        assert_eq!(r["ok"], true, "{cmd} node {node}: {r}");
        r
    }

    /// kill -9 of the node's process.
    pub fn kill(&self, node: i32) {
        self.node_command("kill", node);
    }

    /// SIGTERM: a controlled shutdown (leadership moves away first).
    pub fn stop(&self, node: i32) {
        self.node_command("stop", node);
    }

    /// Starts a stopped or killed node again with the same id, ports and data; returns once
    /// it answers Metadata listing every running node, with how long that took.
    pub fn restart(&self, node: i32) -> Duration {
        let r = self.node_command("start", node);
        Duration::from_secs_f64(r["seconds"].as_f64().unwrap())
    }

    /// The pid of a running node.
    pub fn pid(&self, node: i32) -> Option<u32> {
        let r = self.command(json!({"cmd": "nodes"}));
        let nodes = r["nodes"].as_array().unwrap();
        let n = nodes.iter().find(|n| n["id"] == node)?;
        n["pid"].as_u64().map(|p| p as u32)
    }

    /// Node ids, 1..=nodes.
    pub fn node_ids(&self) -> Vec<i32> {
        let nodes = self.hello["nodes"].as_array().unwrap();
        nodes
            .iter()
            .map(|n| n["id"].as_i64().unwrap() as i32)
            .collect()
    }
}
