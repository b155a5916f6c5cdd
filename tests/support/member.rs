//! A long-running peer group member (tests/peers/group_consumer.py or the Java peer's `group`)
//! whose JSON-line events are collected while the test runs.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::Value as Json;

pub struct Member {
    child: Child,
    events: Arc<Mutex<Vec<Json>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// Who it is, for ledgers ("librdkafka", "java").
    pub who: &'static str,
}

impl Member {
    /// Spawns `cmd` with piped stdin/stdout and collects its event lines.
    pub fn spawn(mut cmd: Command, who: &'static str) -> Member {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {who} peer: {e}"));
        let events = Arc::new(Mutex::new(Vec::new()));
        let out = BufReader::new(child.stdout.take().unwrap());
        let sink = events.clone();
        let reader = std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Json>(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        Member {
            child,
            events,
            reader: Some(reader),
            who,
        }
    }

    pub fn events(&self) -> Vec<Json> {
        self.events.lock().unwrap().clone()
    }

    /// (partition, offset) of every record received so far.
    pub fn received(&self) -> Vec<(i64, i64)> {
        let ev = self.events.lock().unwrap();
        ev.iter()
            .filter(|e| e["event"] == "record")
            .map(|e| {
                (
                    e["partition"].as_i64().unwrap(),
                    e["offset"].as_i64().unwrap(),
                )
            })
            .collect()
    }

    /// The partitions held after the last rebalance event.
    pub fn assigned(&self) -> BTreeSet<i64> {
        let ev = self.events.lock().unwrap();
        ev.iter()
            .rev()
            .find(|e| e["event"] == "assigned" || e["event"] == "revoked")
            .filter(|e| e["event"] == "assigned")
            .map(|e| {
                e["partitions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p[1].as_i64().unwrap())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many assigned/revoked events came so far.
    pub fn rebalances(&self) -> usize {
        let ev = self.events.lock().unwrap();
        ev.iter()
            .filter(|e| e["event"] == "assigned" || e["event"] == "revoked")
            .count()
    }

    /// Sends a command line ({"cmd": ...}).
    pub fn send(&mut self, cmd: &Json) {
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = writeln!(stdin, "{cmd}");
            let _ = stdin.flush();
        }
    }

    /// Stops it (it commits what it received and leaves) and returns all its events.
    pub fn stop(mut self) -> Vec<Json> {
        self.finish();
        self.events()
    }

    fn finish(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        // A failed test must not leave a member running: it would hold partitions.
        if self.reader.is_some() {
            let _ = self.child.kill();
            self.finish();
        }
    }
}
