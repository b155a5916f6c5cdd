//! Cluster behaviour on a 3-node Apache Kafka 4.4.0 (replication factor 3,
//! min.insync.replicas=2), each case with a ledger of what was acknowledged, received and
//! committed: a partition leader killed (kill -9) while producing with acks=all and while a
//! group consumes, the group coordinator's broker killed, two of three brokers down, nodes
//! restarted with the same id; and metadata changes (partitions added while producing, a topic
//! deleted while consumed). Each case prints a `RELIABILITY {json}` line with its figures
//! (scripts/reliability.sh collects them into RELIABILITY.md); KAFKA1C_LONG=1 runs the long
//! variant with more records.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka1c::kafka::consumer::Consumer;
use kafka1c::kafka::{runtime, Client, Config, Record};
use serde_json::{json, Value as Json};
use support::{java_peer, Broker, Cluster, Ledger, KAFKA};

/// How many times more records the long variant moves.
fn scale() -> usize {
    if std::env::var("KAFKA1C_LONG").is_ok_and(|v| v == "1") {
        10
    } else {
        1
    }
}

/// The cluster of this test process. Cases take it in turn (they kill nodes) and leave every
/// node running, as they found it.
fn cluster() -> MutexGuard<'static, Cluster> {
    static CLUSTER: OnceLock<Mutex<Cluster>> = OnceLock::new();
    let c = CLUSTER.get_or_init(|| {
        // Partition leadership goes back to a restarted node within seconds, so a case sees
        // the client follow it there too.
        let spec = Cluster::spec(KAFKA, 3).server("leader.imbalance.check.interval.seconds", 5);
        Mutex::new(Cluster::start(spec))
    });
    let guard = c.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    for node in guard.node_ids() {
        if guard.pid(node).is_none() {
            guard.restart(node);
        }
    }
    guard
}

fn client(b: &Broker, settings: Json) -> Client {
    let mut s = json!({"bootstrap.servers": b.bootstrap(), "session.timeout.ms": 6000,
                       "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest"});
    for (k, v) in settings.as_object().unwrap() {
        s[k] = v.clone();
    }
    runtime::block_on(Client::connect(Config::from_json(&s.to_string()).unwrap())).unwrap()
}

/// A topic with replication factor 3 (the cluster's default).
fn topic(b: &Broker, prefix: &str, partitions: i32) -> String {
    let c = client(b, json!({}));
    let t = support::unique(prefix);
    runtime::block_on(c.create_topic(&t, partitions, -1, &[])).unwrap();
    t
}

/// The Java admin client's `op` (see Peer.java) with more arguments.
fn java_admin(b: &Broker, op: &str, args: &[&str]) -> Vec<Json> {
    let mut all = vec!["--bootstrap", b.bootstrap(), "--op", op];
    all.extend_from_slice(args);
    java_peer(KAFKA, "admin", &all, "")
}

/// Partition → (leader, in-sync replicas), as the Java admin client describes it.
fn describe(b: &Broker, topic: &str) -> BTreeMap<i64, (i64, usize)> {
    java_admin(b, "describe", &["--topic", topic])
        .iter()
        .map(|p| {
            let isr = p["isr"].as_array().unwrap().len();
            (
                p["partition"].as_i64().unwrap(),
                (p["leader"].as_i64().unwrap(), isr),
            )
        })
        .collect()
}

/// Waits until every partition has a leader and `isr` in-sync replicas.
fn wait_isr(b: &Broker, topic: &str, isr: usize, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let d = describe(b, topic);
        if d.values().all(|(leader, n)| *leader >= 0 && *n == isr) {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "ISR never reached {isr}: {d:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Every record of a topic, read by the Java client up to the end offsets: (partition,
/// offset, value).
fn read_all(b: &Broker, topic: &str) -> Vec<(i64, i64, String)> {
    java_peer(
        KAFKA,
        "consume",
        &[
            "--bootstrap",
            b.bootstrap(),
            "--topic",
            topic,
            "--count",
            "end",
            "--timeout",
            "120",
        ],
        "",
    )
    .iter()
    .map(|r| {
        (
            r["partition"].as_i64().unwrap(),
            r["offset"].as_i64().unwrap(),
            String::from_utf8(support::unb64(r["value_b64"].as_str().unwrap())).unwrap(),
        )
    })
    .collect()
}

fn figures(scenario: &str, f: Json) {
    let mut line = json!({"scenario": scenario});
    for (k, v) in f.as_object().unwrap() {
        line[k] = v.clone();
    }
    eprintln!("RELIABILITY {line}");
    if let Ok(path) = std::env::var("KAFKA1C_RELIABILITY_OUT") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        writeln!(f, "{line}").unwrap();
    }
}

fn record(topic: &str, i: usize) -> Record {
    Record {
        topic: topic.to_string(),
        key: Some(Bytes::from(format!("k{i}"))),
        value: Some(Bytes::from(format!("r{i}"))),
        ..Default::default()
    }
}

/// What a producing run saw: per record its offset or error.
#[derive(Default)]
struct ProduceLedger {
    acked: HashMap<usize, (i32, i64)>,
    failed: Vec<(usize, String)>,
}

impl ProduceLedger {
    /// Produces records `from..to` with ProduceAsync and notes every report; returns how long
    /// the Flush took.
    fn round(&mut self, c: &Client, topic: &str, from: usize, to: usize) -> Duration {
        let started = Instant::now();
        let mut index = HashMap::new();
        for i in from..to {
            index.insert(c.produce_async(record(topic, i)).unwrap(), i);
        }
        let out = runtime::block_on(c.flush(Duration::from_secs(180)));
        assert_eq!(out.pending, 0, "Flush left records pending");
        for r in out.reports.iter() {
            let i = index[&r.id];
            match r.result {
                Ok(offset) => {
                    self.acked.insert(i, (r.partition, offset));
                }
                Err(e) => self.failed.push((i, e.to_string())),
            }
        }
        started.elapsed()
    }

    /// Checks the topic's content against the acknowledgements: (lost, duplicates).
    fn check(&self, b: &Broker, topic: &str) -> (usize, usize) {
        let stored = read_all(b, topic);
        let mut at: HashMap<(i32, i64), &str> = HashMap::new();
        let mut copies: HashMap<&str, usize> = HashMap::new();
        for (p, o, v) in &stored {
            at.insert((*p as i32, *o), v);
            *copies.entry(v).or_default() += 1;
        }
        let lost = self
            .acked
            .iter()
            .filter(|(i, po)| at.get(po).copied() != Some(format!("r{i}").as_str()))
            .count();
        let duplicates = copies.values().filter(|n| **n > 1).count();
        (lost, duplicates)
    }
}

fn leader_of(c: &Client, topic: &str, partition: usize) -> i32 {
    runtime::block_on(c.cluster().refresh(Some(&[topic.to_string()]))).unwrap();
    c.cluster().topic(topic).unwrap().partitions[partition].leader
}

/// The leader of a partition is killed (kill -9) while ProduceAsync streams records with
/// acks=all and idempotence; later it comes back with the same id and leads again.
#[test]
fn leader_killed_while_producing_with_acks_all() {
    let cl = cluster();
    let b: &Broker = &cl;
    let t = topic(b, "produce-kill", 6);
    let c = client(b, json!({"acks": "all", "linger.ms": 5}));
    let (rounds, per_round) = (12, 1000 * scale());
    let mut ledger = ProduceLedger::default();
    let (mut recovery, mut victim) = (Duration::ZERO, 0);
    for r in 0..rounds {
        let (from, to) = (r * per_round, (r + 1) * per_round);
        if r == 3 {
            // Recovery: from the kill until every record of this round was acknowledged.
            victim = leader_of(&c, &t, 0);
            let killed = Instant::now();
            cl.kill(victim);
            ledger.round(&c, &t, from, to);
            recovery = killed.elapsed();
        } else {
            ledger.round(&c, &t, from, to);
        }
        if r == 7 {
            cl.restart(victim);
        }
    }
    // The restarted node is in sync again and, after the preferred-leader election, leads
    // partitions that the same client then produces to.
    wait_isr(b, &t, 3, Duration::from_secs(120));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !describe(b, &t).values().any(|(l, _)| *l == victim as i64) {
        assert!(Instant::now() < deadline, "node {victim} never led again");
        std::thread::sleep(Duration::from_secs(1));
    }
    let total = (rounds + 1) * per_round;
    ledger.round(&c, &t, rounds * per_round, total);
    let led = describe(b, &t);
    let on_victim: BTreeSet<i32> = ledger
        .acked
        .iter()
        .filter(|(i, (p, _))| **i >= rounds * per_round && led[&(*p as i64)].0 == victim as i64)
        .map(|(_, (p, _))| *p)
        .collect();
    assert!(
        !on_victim.is_empty(),
        "nothing produced to the restarted node"
    );
    runtime::block_on(c.close(Duration::from_secs(10)));

    let (lost, duplicates) = ledger.check(b, &t);
    for (i, e) in &ledger.failed {
        assert!(
            e.contains(&t) || e.contains("timed out"),
            "record {i}: unclear error {e}"
        );
    }
    figures(
        "leader kill -9 during ProduceAsync, acks=all, idempotent",
        json!({"records": total, "acknowledged": ledger.acked.len(), "lost": lost,
               "duplicates": duplicates, "errors": ledger.failed.len(),
               "error_sample": ledger.failed.first().map(|f| f.1.clone()),
               "recovery_s": recovery.as_secs_f64()}),
    );
    assert_eq!(lost, 0, "acknowledged records lost");
    assert_eq!(duplicates, 0, "duplicates despite idempotence");
    assert_eq!(ledger.acked.len() + ledger.failed.len(), total);
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A group member that commits after it processed each batch, noting both in the ledger.
struct Worker {
    name: String,
    consumer: Consumer,
    _client: Client,
    commit_errors: Vec<String>,
    poll_errors: Vec<String>,
}

impl Worker {
    fn start(b: &Broker, topic: &str, group: &str, name: &str) -> Worker {
        let c = client(b, json!({"enable.auto.commit": false}));
        let consumer = runtime::block_on(Consumer::subscribe(
            Arc::clone(c.cluster()),
            vec![topic.to_string()],
            group.to_string(),
        ))
        .unwrap();
        Worker {
            name: name.into(),
            consumer,
            _client: c,
            commit_errors: Vec::new(),
            poll_errors: Vec::new(),
        }
    }

    /// One poll, "processing", commit; returns the values received.
    fn step(&mut self, ledger: &mut Ledger) -> Vec<String> {
        let asked = now();
        let batch =
            match runtime::block_on(self.consumer.poll_batch(500, Duration::from_millis(200))) {
                Ok(b) => b,
                Err(e) => {
                    self.poll_errors.push(e.to_string());
                    return Vec::new();
                }
            };
        let mut values = Vec::new();
        for r in &batch {
            ledger
                .receipts
                .push((r.partition as i64, r.offset, asked, self.name.clone()));
            values
                .push(String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned());
        }
        if !batch.is_empty() {
            match runtime::block_on(self.consumer.commit()) {
                Ok(()) => {
                    let done = now();
                    for s in self.consumer.assignment() {
                        if let Some(c) = s.committed {
                            ledger
                                .commits
                                .push((s.partition as i64, c, done, self.name.clone()));
                        }
                    }
                }
                Err(e) => self.commit_errors.push(e.to_string()),
            }
        }
        values
    }
}

/// The node coordinating a group, as the Java admin client finds it.
fn coordinator(b: &Broker, group: &str) -> i32 {
    let r = java_admin(b, "coordinator", &["--group", group]);
    r[0]["coordinator"].as_i64().unwrap() as i32
}

/// Two members consume with commit-after-process while first a partition leader (not the
/// coordinator) and then the group coordinator's broker are killed (kill -9) and restarted:
/// nothing is skipped, a record comes again only if no commit had covered it, and the group
/// re-forms and goes on.
#[test]
fn leader_and_coordinator_killed_while_a_group_consumes() {
    let cl = cluster();
    let b: &Broker = &cl;
    let total = 30_000 * scale();
    let t = topic(b, "consume-kill", 6);
    let p = client(b, json!({"acks": "all"}));
    let mut produced = ProduceLedger::default();
    produced.round(&p, &t, 0, total);
    assert_eq!(produced.acked.len(), total);
    let group = support::unique("g");
    let mut workers = vec![
        Worker::start(b, &t, &group, "a"),
        Worker::start(b, &t, &group, "b"),
    ];
    let mut ledger = Ledger::default();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    // Consumes until `n` records arrived; returns the longest time nothing arrived (from the
    // start, or between two receipts): how long a failure held the group up.
    let mut run_until = |workers: &mut Vec<Worker>, ledger: &mut Ledger, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(180);
        let (mut last, mut stall) = (Instant::now(), Duration::ZERO);
        while seen.len() < n {
            let before = seen.len();
            for w in workers.iter_mut() {
                seen.extend(w.step(ledger));
            }
            if seen.len() > before {
                stall = stall.max(last.elapsed());
                last = Instant::now();
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} received",
                seen.len()
            );
        }
        stall
    };
    run_until(&mut workers, &mut ledger, total / 4);

    // A partition leader that is not the coordinator.
    let coord = coordinator(b, &group);
    let leaders = describe(b, &t);
    let victim = leaders
        .values()
        .map(|(l, _)| *l as i32)
        .find(|l| *l != coord)
        .expect("a leader other than the coordinator");
    cl.kill(victim);
    let leader_recovery = run_until(&mut workers, &mut ledger, total / 2);
    cl.restart(victim);

    // The coordinator's broker.
    let coord = coordinator(b, &group);
    cl.kill(coord);
    let coordinator_recovery = run_until(&mut workers, &mut ledger, 3 * total / 4);
    cl.restart(coord);
    run_until(&mut workers, &mut ledger, total);
    let new_coordinator = coordinator(b, &group);

    let redelivered = ledger.check();
    let errors: Vec<String> = workers
        .iter()
        .flat_map(|w| w.commit_errors.iter().chain(&w.poll_errors).cloned())
        .collect();
    for w in workers {
        runtime::block_on(w.consumer.close()).unwrap();
    }
    figures(
        "leader, then group coordinator kill -9 during group consume, commit after process",
        json!({"records": total, "received": seen.len(), "skipped": total - seen.len(),
               "received_again": redelivered, "commit_or_poll_errors": errors.len(),
               "error_sample": errors.first(),
               "coordinator": [coord, new_coordinator],
               "recovery_s": [leader_recovery.as_secs_f64(), coordinator_recovery.as_secs_f64()]}),
    );
    assert_eq!(seen.len(), total, "records skipped");
    // The failovers are not the application's business: Commit waits for the coordinator
    // (as the Java client's commitSync does) and only a rebalance may refuse it.
    for e in &errors {
        assert!(e.starts_with("commit refused: the group rebalanced"), "{e}");
    }
}

/// Two of three brokers down: with acks=all and min.insync.replicas=2 every record fails with
/// a clear error within delivery.timeout.ms; once the brokers are back the same client produces
/// again without the application reconnecting.
#[test]
fn two_of_three_down_fails_clearly_then_producing_resumes() {
    let cl = cluster();
    let b: &Broker = &cl;
    let t = topic(b, "two-down", 3);
    let delivery_ms = 10_000u64;
    let c = client(
        b,
        json!({"acks": "all", "delivery.timeout.ms": delivery_ms, "request.timeout.ms": 5000,
               "linger.ms": 5}),
    );
    let mut ledger = ProduceLedger::default();
    ledger.round(&c, &t, 0, 100);
    assert_eq!(ledger.acked.len(), 100);
    // One crashes; once the cluster has dropped it from the in-sync replicas, a second one is
    // shut down (its own controlled shutdown takes it out of them): one in-sync replica left.
    let nodes = cl.node_ids();
    let (crashed, stopped) = (nodes[0], nodes[1]);
    cl.kill(crashed);
    wait_isr(b, &t, 2, Duration::from_secs(60));
    cl.stop(stopped);
    let down = Instant::now();
    let n = 50 * scale();
    let took = ledger.round(&c, &t, 100, 100 + n);
    let errors: Vec<&String> = ledger.failed.iter().map(|(_, e)| e).collect();
    figures(
        "two of three brokers down, acks=all, min.insync.replicas=2",
        json!({"records": n, "acknowledged": ledger.acked.len() - 100, "errors": errors.len(),
               "error_sample": errors.first(), "failed_within_s": took.as_secs_f64(),
               "delivery_timeout_s": delivery_ms as f64 / 1000.0}),
    );
    assert_eq!(
        errors.len(),
        n,
        "records acknowledged with two of three brokers down"
    );
    for e in &errors {
        assert!(
            e.contains("NOT_ENOUGH_REPLICAS") && e.contains(&t),
            "unclear error: {e}"
        );
    }
    assert!(
        took < Duration::from_millis(delivery_ms + 5000),
        "failing took {took:?}"
    );

    // Both come back; the same client goes on by itself.
    cl.restart(stopped);
    cl.restart(crashed);
    let back = Instant::now();
    let before = ledger.acked.len();
    let resumed = loop {
        let from = 100 + n + ledger.acked.len() + ledger.failed.len();
        ledger.round(&c, &t, from, from + 10);
        if ledger.acked.len() > before {
            break back.elapsed();
        }
        assert!(
            back.elapsed() < Duration::from_secs(120),
            "producing never resumed"
        );
    };
    let from = 100 + n + ledger.acked.len() + ledger.failed.len();
    let failed_before = ledger.failed.len();
    ledger.round(&c, &t, from, from + 100);
    assert_eq!(
        ledger.failed.len(),
        failed_before,
        "{:?}",
        ledger.failed.last()
    );
    let (lost, duplicates) = ledger.check(b, &t);
    figures(
        "two of three brokers back",
        json!({"outage_s": down.elapsed().as_secs_f64() - resumed.as_secs_f64(),
               "resumed_after_restart_s": resumed.as_secs_f64(), "lost": lost,
               "duplicates": duplicates}),
    );
    assert_eq!((lost, duplicates), (0, 0));
    runtime::block_on(c.close(Duration::from_secs(10)));
}

/// Partitions added to a topic while a producer streams keyed records and a group consumes
/// it: once the producer's metadata shows them (metadata.max.age.ms), keys go where the Java
/// client's partitioner puts them for the new count, the new partitions included; the group's
/// leader notices too and rebalances, so the new partitions are read; nothing fails or is
/// lost on the way.
#[test]
fn partitions_added_while_producing_and_consuming_are_followed() {
    let cl = cluster();
    let b: &Broker = &cl;
    let t = topic(b, "grow", 3);
    let reader = client(b, json!({"metadata.max.age.ms": 1000}));
    let m = runtime::block_on(Consumer::subscribe(
        Arc::clone(reader.cluster()),
        vec![t.clone()],
        support::unique("g"),
    ))
    .unwrap();
    let c = client(
        b,
        json!({"acks": "all", "metadata.max.age.ms": 1000, "linger.ms": 5}),
    );
    let mut ledger = ProduceLedger::default();
    let per_round = 300;
    ledger.round(&c, &t, 0, per_round);
    java_admin(b, "partitions", &["--topic", &t, "--count", "6"]);
    let grown = Instant::now();
    let key_partition = |i: usize, n: i32| {
        kafka1c::kafka::partitioner::partition_for_key(format!("k{i}").as_bytes(), n)
    };
    let mut round = 1;
    let followed = loop {
        let from = round * per_round;
        ledger.round(&c, &t, from, from + per_round);
        round += 1;
        let on_six = (from..from + per_round).all(|i| ledger.acked[&i].0 == key_partition(i, 6));
        if on_six {
            break grown.elapsed();
        }
        // Until then, the old count.
        assert!(
            (from..from + per_round).all(|i| ledger.acked[&i].0 == key_partition(i, 3)
                || ledger.acked[&i].0 == key_partition(i, 6))
        );
        assert!(
            grown.elapsed() < Duration::from_secs(30),
            "the producer never saw 6 partitions"
        );
    };
    let total = round * per_round;
    let (lost, duplicates) = ledger.check(b, &t);
    let used: BTreeSet<i32> = ledger.acked.values().map(|(p, _)| *p).collect();
    figures(
        "partitions added while producing (3 -> 6)",
        json!({"records": total, "acknowledged": ledger.acked.len(), "lost": lost,
               "duplicates": duplicates, "errors": ledger.failed.len(),
               "followed_after_s": followed.as_secs_f64()}),
    );
    assert_eq!(used.len(), 6, "{used:?}");
    assert_eq!((lost, duplicates, ledger.failed.len()), (0, 0, 0));
    runtime::block_on(c.close(Duration::from_secs(10)));

    let mut read: BTreeSet<(i32, i64)> = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while read.len() < total {
        for r in runtime::block_on(m.poll_batch(1000, Duration::from_millis(200))).unwrap() {
            read.insert((r.partition, r.offset));
        }
        assert!(
            Instant::now() < deadline,
            "the group read {} of {total}; partitions {:?}",
            read.len(),
            m.assignment()
                .iter()
                .map(|a| a.partition)
                .collect::<Vec<_>>()
        );
    }
    let read_from: BTreeSet<i32> = read.iter().map(|(p, _)| *p).collect();
    assert_eq!(read_from.len(), 6, "{read_from:?}");
    runtime::block_on(m.close()).unwrap();
}

/// A topic deleted while a member consumes it: Poll reports it clearly within seconds instead
/// of waiting forever, and the member does not bring the topic back by itself.
#[test]
fn a_topic_deleted_while_consumed_gives_a_clear_error() {
    let cl = cluster();
    let b: &Broker = &cl;
    let t = topic(b, "deleted-while-consumed", 3);
    let p = client(b, json!({}));
    let mut produced = ProduceLedger::default();
    produced.round(&p, &t, 0, 300);
    let c = client(b, json!({"allow.auto.create.topics": false}));
    let m = runtime::block_on(Consumer::subscribe(
        Arc::clone(c.cluster()),
        vec![t.clone()],
        support::unique("g"),
    ))
    .unwrap();
    let mut got = 0;
    while got < 300 {
        got += runtime::block_on(m.poll_batch(500, Duration::from_millis(200)))
            .unwrap()
            .len();
    }
    // Timed from the request: the consumer may notice before the admin call returns.
    let deleted = Instant::now();
    java_admin(b, "delete", &["--topic", &t]);
    let err = loop {
        match runtime::block_on(m.poll(Duration::from_millis(500))) {
            Err(e) => break e.to_string(),
            Ok(r) => assert!(r.is_none(), "{r:?}"),
        }
        assert!(
            deleted.elapsed() < Duration::from_secs(60),
            "no error after the topic was deleted"
        );
    };
    let took = deleted.elapsed();
    figures(
        "topic deleted while consumed",
        json!({"error": err, "reported_within_s": took.as_secs_f64()}),
    );
    assert!(
        err.contains(&t) && err.contains("does not exist"),
        "unclear: {err}"
    );
    runtime::block_on(m.close()).unwrap();
    let topics = runtime::block_on(p.list_topics()).unwrap();
    assert!(!topics.iter().any(|x| x.name == t), "the topic came back");
}
