//! Real brokers and peer clients for integration tests, started on free loopback ports.
#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use serde_json::Value as Json;

mod java;
mod kafka;
mod ledger;
mod member;
#[allow(unused_imports)] // each test binary uses a different part
pub use java::{java_command, java_peer, kafka_jars};
#[allow(unused_imports)] // each test binary uses a different part
pub use kafka::{Cluster, KafkaSpec, KAFKA, KAFKA_3};
#[allow(unused_imports)]
pub use ledger::Ledger;
#[allow(unused_imports)]
pub use member::Member;

pub fn python() -> String {
    std::env::var("KAFKA1C_PYTHON").unwrap_or_else(|_| "python3".into())
}

pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

/// A running broker; stopped when dropped (its launcher exits when its stdin closes, also when
/// the test process dies, so a failed test leaves nothing running).
pub struct Broker {
    child: Child,
    io: Mutex<Option<(ChildStdin, BufReader<ChildStdout>)>>,
    bootstrap: String,
    pub kind: &'static str,
    /// The CA certificate (PEM file) of a TLS broker.
    pub ca: Option<String>,
    /// The launcher's first line (for Kafka: nodes, listeners, log files, start-up times).
    pub hello: Json,
}

impl Broker {
    fn start(args: &[&str], kind: &'static str) -> Broker {
        let mut child = Command::new(python())
            .arg(script("support/brokers.py"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tests/support/brokers.py (run scripts/install-deps.sh test)");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let hello: Json = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("broker launcher {args:?} said {line:?}: {e}"));
        if let Some(e) = hello["error"].as_str() {
            let _ = child.wait();
            panic!("{kind} broker did not start: {e}");
        }
        Broker {
            child,
            io: Mutex::new(Some((stdin, stdout))),
            bootstrap: hello["bootstrap"].as_str().unwrap().to_string(),
            kind,
            ca: hello["ca"].as_str().map(str::to_string),
            hello,
        }
    }

    pub fn tansu() -> Broker {
        Broker::start(&["tansu"], "tansu")
    }

    /// Tansu behind a TLS proxy with a self-signed certificate (`ca`).
    pub fn tansu_tls() -> Broker {
        Broker::start(&["tansu-tls"], "tansu")
    }

    /// A librdkafka mock cluster with `brokers` brokers (ids 1..=brokers).
    pub fn mock(brokers: u32) -> Broker {
        Broker::start(&["mock", &brokers.to_string()], "mock")
    }

    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Sends a control command (see brokers.py) and returns its answer.
    pub fn command(&self, cmd: Json) -> Json {
        let mut guard = self.io.lock().unwrap();
        let io = guard.as_mut().expect("broker stopped");
        writeln!(io.0, "{cmd}").unwrap();
        io.0.flush().unwrap();
        let mut line = String::new();
        io.1.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad answer {line:?}: {e}"))
    }

    /// Creates a topic: through the mock's API on the mock cluster (its CreateTopics is not
    /// served), through the protocol elsewhere (`create` is the caller's way to do that).
    pub fn create_topic(&self, topic: &str, partitions: i32, create: impl FnOnce(&str, i32)) {
        if self.kind == "mock" {
            let r = self.command(serde_json::json!({"cmd": "create_topic", "topic": topic, "partitions": partitions, "replication": 1}));
            assert_eq!(r["ok"], true, "{r}");
        } else {
            create(topic, partitions);
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // Closing stdin makes the launcher stop the broker and exit.
        drop(self.io.lock().map(|mut io| io.take()));
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A topic or group name unique within this test process.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Runs a peer script from tests/peers with arguments and stdin; returns its JSON lines.
pub fn peer(script_name: &str, args: &[&str], stdin: &str) -> Vec<Json> {
    let mut cmd = Command::new(python());
    cmd.arg(script(&format!("peers/{script_name}"))).args(args);
    run_peer(cmd, stdin, &format!("peer {script_name} {args:?}"))
}

/// Runs a peer to its end with `stdin`; returns its JSON lines (panics, naming `what`, if it
/// failed).
pub fn run_peer(mut cmd: Command, stdin: &str, what: &str) -> Vec<Json> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_string();
    // Fed from another thread: the peer's output could otherwise fill its pipe first.
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    let _ = feeder.join();
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_lines(&out.stdout)
}

/// A peer's output, one JSON object per line.
pub fn json_lines(out: &[u8]) -> Vec<Json> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad peer line {l:?}: {e}")))
        .collect()
}

pub fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                A[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

pub fn unb64(s: &str) -> Vec<u8> {
    const A: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for c in s.trim_end_matches('=').chars() {
        acc = acc << 6 | A.find(c).expect("base64") as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
