//! The Java client as a peer: tests/peers/Peer.java compiled once per test process against a
//! Kafka version's own jars, run with `java -cp`, talking JSON lines (see Peer.java).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use serde_json::Value as Json;

/// The folder of a Kafka version's jars (resolved on first use, then cached).
pub fn kafka_jars(version: &str) -> PathBuf {
    let out = Command::new("bash")
        .arg(super::script("support/kafka/jars.sh"))
        .arg(version)
        .stderr(Stdio::inherit())
        .output()
        .expect("run tests/support/kafka/jars.sh");
    assert!(
        out.status.success(),
        "resolving Kafka {version} jars failed"
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// The class path of the compiled peer and the version's jars.
fn class_path(version: &str) -> String {
    static BUILT: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap();
    built
        .entry(version.to_string())
        .or_insert_with(|| {
            let jars = kafka_jars(version).join("*").display().to_string();
            let classes = std::env::temp_dir().join(format!(
                "kafka1c-java-peer-{version}-{}",
                std::process::id()
            ));
            let status = Command::new("javac")
                .args(["-nowarn", "-cp", &jars, "-d"])
                .arg(&classes)
                .arg(super::script("peers/Peer.java"))
                .status()
                .expect("javac (scripts/install-deps.sh installs a JDK)");
            assert!(status.success(), "compiling tests/peers/Peer.java failed");
            format!("{}:{jars}", classes.display())
        })
        .clone()
}

/// `java Peer COMMAND ARGS...` on the Java client of `version`, ready to spawn.
pub fn java_command(version: &str, command: &str, args: &[&str]) -> Command {
    let mut c = Command::new("java");
    c.args(["-Xmx256m", "-XX:+UseSerialGC", "-cp", &class_path(version)])
        .arg("Peer")
        .arg(command)
        .args(args);
    c
}

/// Runs the Java peer to its end with `stdin`; returns its JSON lines (panics if it failed).
pub fn java_peer(version: &str, command: &str, args: &[&str], stdin: &str) -> Vec<Json> {
    let cmd = java_command(version, command, args);
    super::run_peer(cmd, stdin, &format!("Java peer {command} {args:?}"))
}
