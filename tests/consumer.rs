//! Consumer groups through the 1C boundary (issue 4): two of our Clients (each in its own host
//! emulator process) and one librdkafka member share a 6-partition topic; offsets interoperate;
//! killed, stalled and static members; coordinator faults injected on the mock cluster.

mod host;
mod support;

use std::collections::{BTreeSet, HashMap};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use host::{quote, Interactive, Platform};
use kafka1c::kafka::{runtime, Client, Config, Record};
use serde_json::{json, Value as Json};
use support::{Broker, Ledger, Member, KAFKA, KAFKA_3};

const TOTAL: usize = 30_000;

/// Arguments of a peer group member (group_consumer.py and the Java peer's `group` take the
/// same): commits every 200 records, 6 s sessions.
fn member_args<'a>(b: &'a Broker, topic: &'a str, group: &'a str) -> [&'a str; 14] {
    [
        "--bootstrap",
        b.bootstrap(),
        "--group",
        group,
        "--topics",
        topic,
        "--duration",
        "300",
        "--commit-every",
        "200",
        "--session-timeout-ms",
        "6000",
        "--heartbeat-ms",
        "500",
    ]
}

/// A librdkafka group member (tests/peers/group_consumer.py).
fn rdkafka_member(b: &Broker, topic: &str, group: &str) -> Member {
    let mut cmd = Command::new(support::python());
    cmd.arg(support::script("peers/group_consumer.py"))
        .args(member_args(b, topic, group));
    Member::spawn(cmd, "librdkafka")
}

/// A fresh topic of `partitions` on the shared Apache Kafka of `version`, and a fresh group name.
fn kafka_group(version: &str, name: &str, partitions: i32) -> (&'static Broker, String, String) {
    let b = Broker::kafka_version(version);
    let topic = support::unique(name);
    let admin = runtime::block_on(Client::connect(
        Config::from_bootstrap(b.bootstrap()).unwrap(),
    ))
    .unwrap();
    runtime::block_on(admin.create_topic(&topic, partitions, 1, &[])).unwrap();
    (b, topic, support::unique("g"))
}

/// A 3-broker mock cluster that rebalances without delay, a fresh topic and a fresh group name.
fn mock_group(name: &str, partitions: i32) -> (Broker, String, String) {
    let b = Broker::mock(3);
    b.command(json!({"cmd": "group_initial_rebalance_delay_ms", "ms": 0}));
    let topic = support::unique(name);
    b.create_topic(&topic, partitions, |_, _| unreachable!());
    (b, topic, support::unique("g"))
}

/// One of ours: a host emulator with a connected, subscribed Client.
fn member(b: &Broker, topic: &str, group: &str) -> Interactive {
    let mut m = Interactive::start(Platform::Linux);
    m.ok("new");
    let settings = json!({"bootstrap.servers": b.bootstrap(), "group.id": group, "session.timeout.ms": 6000,
                          "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest",
                          "enable.auto.commit": false});
    m.ok(&format!("call Connect {}", quote(&settings.to_string())));
    m.ok(&format!("call Подписаться {}", quote(topic)));
    m
}

/// PollBatch + Commit; returns (partition, offset) of what arrived.
fn poll(m: &mut Interactive) -> Vec<(i64, i64)> {
    poll_logged(m, &mut Ledger::default(), "ours")
}

/// Wall-clock seconds, comparable with the librdkafka peer's event times.
fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The ledger check fails on a record received after a commit had covered it.
#[test]
#[should_panic(expected = "after a commit covered it")]
fn ledger_flags_a_record_received_after_its_commit() {
    let mut l = Ledger::default();
    l.receipts.push((0, 5, 1.0, "a".into()));
    l.commits.push((0, 6, 1.5, "a".into()));
    l.receipts.push((0, 7, 1.6, "b".into()));
    assert_eq!(l.check(), 0, "an uncommitted record may come again");
    l.receipts.push((0, 5, 2.0, "b".into()));
    l.check();
}

/// PollBatch + Commit, noting receipts and successful commits in the ledger.
fn poll_logged(m: &mut Interactive, ledger: &mut Ledger, who: &str) -> Vec<(i64, i64)> {
    let asked = now();
    let r = m.ok("call PollBatch 1000 200");
    let batch: Json = serde_json::from_str(r["ret"]["value"].as_str().unwrap()).unwrap();
    let got: Vec<(i64, i64)> = batch
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["partition"].as_i64().unwrap(),
                r["offset"].as_i64().unwrap(),
            )
        })
        .collect();
    ledger
        .receipts
        .extend(got.iter().map(|&(p, o)| (p, o, asked, who.to_string())));
    // A commit may be refused mid-rebalance; what it covered then comes again.
    let c = if got.is_empty() {
        Json::Null
    } else {
        m.send("call Commit")
    };
    if c["ok"] == true {
        let done = now();
        for (p, c) in committed(m) {
            ledger.commits.push((p, c, done, who.to_string()));
        }
    }
    got
}

fn assigned(m: &mut Interactive) -> BTreeSet<i64> {
    let r = m.ok("call Assignment");
    let a: Json = serde_json::from_str(r["ret"]["value"].as_str().unwrap()).unwrap();
    a.as_array()
        .unwrap()
        .iter()
        .map(|p| p["partition"].as_i64().unwrap())
        .collect()
}

/// One of ours: a name for the ledger and its emulator.
type Ours = (String, Interactive);

/// Two of our Clients (each in its own host emulator process) and a peer member share a topic
/// of `partitions`: they split it three ways without overlap, one of ours leaves and the others
/// take its partitions over, a new one of ours joins and gets a share; every record arrives,
/// and none is received again after a commit had covered it (ledger of receipts and commits).
fn shared_group(b: &Broker, topic: &str, group: &str, peer: Member, partitions: usize) {
    let mut ours: Vec<Ours> = vec![
        ("ours-1".into(), member(b, topic, group)),
        ("ours-2".into(), member(b, topic, group)),
    ];
    let mut seen: BTreeSet<(i64, i64)> = BTreeSet::new();
    let mut ledger = Ledger::default();
    // Each round: our members poll and commit; the peer runs on its own.
    let round = |ours: &mut Vec<Ours>, ledger: &mut Ledger, seen: &mut BTreeSet<_>| {
        for (who, m) in ours.iter_mut() {
            seen.extend(poll_logged(m, ledger, who));
        }
        seen.extend(peer.received());
    };
    // Until every member holds partitions, together all of them, none twice.
    let split = |ours: &mut Vec<Ours>, ledger: &mut Ledger, seen: &mut BTreeSet<_>| {
        let started = Instant::now();
        loop {
            round(ours, ledger, seen);
            let mut held: Vec<BTreeSet<i64>> = ours.iter_mut().map(|(_, m)| assigned(m)).collect();
            held.push(peer.assigned());
            let all: BTreeSet<i64> = held.iter().flatten().copied().collect();
            let total: usize = held.iter().map(BTreeSet::len).sum();
            if held.iter().all(|h| !h.is_empty()) && total == partitions && all.len() == total {
                eprintln!(
                    "{}-way split after {:?}: {held:?}",
                    held.len(),
                    started.elapsed()
                );
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "no split: {held:?} ({} of the peer's events: {:?})",
                peer.who,
                peer.events().iter().rev().take(5).collect::<Vec<_>>()
            );
        }
    };
    let receive = |ours: &mut Vec<Ours>, ledger: &mut Ledger, seen: &mut BTreeSet<_>, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while seen.len() < n {
            round(ours, ledger, seen);
            assert!(
                Instant::now() < deadline,
                "only {} of {n} received",
                seen.len()
            );
        }
    };

    split(&mut ours, &mut ledger, &mut seen);
    produce_n(b, topic, 0, TOTAL / 3);
    receive(&mut ours, &mut ledger, &mut seen, TOTAL / 3);

    // One of ours leaves; the other and the peer take its partitions over.
    let (_, mut gone) = ours.remove(0);
    gone.ok("call Закрыть");
    let (exit, status) = gone.finish();
    assert_eq!((exit["leaked"].as_i64(), status), (Some(0), 0), "{exit}");
    produce_n(b, topic, TOTAL / 3, TOTAL / 3);
    split(&mut ours, &mut ledger, &mut seen);
    receive(&mut ours, &mut ledger, &mut seen, 2 * TOTAL / 3);

    // A new one of ours joins and gets a share of what is left.
    ours.push(("ours-3".into(), member(b, topic, group)));
    split(&mut ours, &mut ledger, &mut seen);
    produce_n(b, topic, 2 * TOTAL / 3, TOTAL - 2 * TOTAL / 3);
    receive(&mut ours, &mut ledger, &mut seen, TOTAL);
    for (_, mut m) in ours {
        // Drained and committed: nothing left for the next member of the group.
        while !poll_logged(&mut m, &mut ledger, "last").is_empty() {}
        m.ok("call Close");
        let (exit, status) = m.finish();
        assert_eq!((exit["leaked"].as_i64(), status), (Some(0), 0), "{exit}");
    }

    // No message was received twice unless it had never been committed.
    let who = peer.who;
    ledger.add_peer(&peer.stop(), who);
    assert_eq!(seen.len(), TOTAL, "every record received");
    let twice = ledger.check();
    eprintln!(
        "{} receipts, {} commits, {twice} records received more than once (never committed then)",
        ledger.receipts.len(),
        ledger.commits.len()
    );
    if let Ok(f) = std::env::var("KAFKA1C_LEDGER") {
        let dump = json!({"receipts": ledger.receipts, "commits": ledger.commits});
        std::fs::write(f, dump.to_string()).unwrap();
    }
}

#[test]
fn two_of_ours_and_librdkafka_share_a_group_through_a_leave_and_a_join() {
    let (b, topic, group) = kafka_group(KAFKA, "group", 6);
    let peer = rdkafka_member(b, &topic, &group);
    shared_group(b, &topic, &group, peer, 6);
}

/// The same with the Java client as the third member, on 12 partitions; afterwards a fresh
/// Java member of the group finds every partition committed at its end (lag 0).
#[test]
fn two_of_ours_and_the_java_client_share_a_group_and_leave_lag_zero() {
    let (b, topic, group) = kafka_group(KAFKA, "java-group", 12);
    let args = member_args(b, &topic, &group);
    let peer = Member::spawn(support::java_command(KAFKA, "group", &args), "java");
    shared_group(b, &topic, &group, peer, 12);
    let lag = support::java_peer(
        KAFKA,
        "lag",
        &[
            "--bootstrap",
            b.bootstrap(),
            "--group",
            &group,
            "--topic",
            &topic,
        ],
        "",
    );
    let (parts, done) = lag.split_at(lag.len() - 1);
    assert_eq!(parts.len(), 12, "{lag:?}");
    for p in parts {
        assert_eq!(p["lag"], 0, "{p}");
        assert_eq!(p["committed"], p["end"], "{p}");
    }
    assert_eq!(done[0]["received"], 0, "the fresh member received records");
}

fn produce_n(b: &Broker, topic: &str, from: usize, n: usize) {
    let producer = runtime::block_on(Client::connect(
        Config::from_bootstrap(b.bootstrap()).unwrap(),
    ))
    .unwrap();
    for i in from..from + n {
        producer
            .produce_async(Record {
                topic: topic.into(),
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("v{i}"))),
                ..Default::default()
            })
            .unwrap();
    }
    assert_eq!(
        runtime::block_on(producer.flush(Duration::from_secs(60))).pending,
        0
    );
}

/// Committed positions per partition, from Assignment.
fn committed(m: &mut Interactive) -> HashMap<i64, i64> {
    let r = m.ok("call Назначение");
    let a: Json = serde_json::from_str(r["ret"]["value"].as_str().unwrap()).unwrap();
    a.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["partition"].as_i64().unwrap(),
                p["committed"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

/// Offsets committed by our Client are where librdkafka starts in the same group, and the
/// other way round.
fn commits_interoperate(version: &str) {
    let (b, topic, group) = kafka_group(version, "interop", 3);
    produce_n(b, &topic, 0, 300);

    let mut ours = member(b, &topic, &group);
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while got < 100 && Instant::now() < deadline {
        let r = ours.ok("call PollBatch 40 200");
        got += serde_json::from_str::<Json>(r["ret"]["value"].as_str().unwrap())
            .unwrap()
            .as_array()
            .unwrap()
            .len();
    }
    ours.ok("call Commit");
    let ours_committed = committed(&mut ours);
    ours.ok("call Close");
    assert_eq!(ours.finish().1, 0);
    assert_eq!(
        ours_committed.values().sum::<i64>() as usize,
        got,
        "committed exactly what was received"
    );

    // librdkafka continues from our commits.
    let peer = rdkafka_member(b, &topic, &group);
    let deadline = Instant::now() + Duration::from_secs(60);
    while peer.received().len() < 300 - got && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let received = peer.received();
    let mut first: HashMap<i64, i64> = HashMap::new();
    for (p, o) in &received {
        first
            .entry(*p)
            .and_modify(|f| *f = (*f).min(*o))
            .or_insert(*o);
    }
    for (p, o) in &first {
        assert_eq!(
            ours_committed.get(p).copied().unwrap_or(0),
            *o,
            "librdkafka starts partition {p} at our commit"
        );
    }
    assert_eq!(received.len(), 300 - got);
    // Closing its stdin makes it commit what it received and leave.
    peer.stop();

    // And ours continues from librdkafka's commits: only new records arrive.
    produce_n(b, &topic, 300, 30);
    let mut again = member(b, &topic, &group);
    let mut offsets = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while offsets.len() < 30 && Instant::now() < deadline {
        let r = again.ok("call PollBatch 100 200");
        let batch: Json = serde_json::from_str(r["ret"]["value"].as_str().unwrap()).unwrap();
        for rec in batch.as_array().unwrap() {
            offsets.push(rec["value"].as_str().unwrap().to_string());
        }
    }
    offsets.sort();
    let mut want: Vec<String> = (300..330).map(|i| format!("v{i}")).collect();
    want.sort();
    assert_eq!(offsets, want, "only the records after librdkafka's commits");
    again.ok("call Close");
    assert_eq!(again.finish().1, 0);
}

#[test]
fn kafka_commits_interoperate_with_librdkafka_both_ways() {
    commits_interoperate(KAFKA);
}

#[test]
fn kafka_3_commits_interoperate_with_librdkafka_both_ways() {
    commits_interoperate(KAFKA_3);
}

/// A member killed without Close (a crashed 1C worker) is evicted after session.timeout.ms and
/// the other member continues from the last commit.
#[test]
fn killed_member_is_evicted_and_consumption_continues() {
    let (b, topic, group) = kafka_group(KAFKA, "kill", 4);
    produce_n(b, &topic, 0, 2000);
    let mut a = member(b, &topic, &group);
    let mut c = member(b, &topic, &group);
    let mut seen: BTreeSet<(i64, i64)> = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (assigned(&mut a).is_empty() || assigned(&mut c).is_empty() || seen.len() < 400)
        && Instant::now() < deadline
    {
        for m in [&mut a, &mut c] {
            seen.extend(poll(m));
        }
    }
    a.kill();
    let killed_at = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (seen.len() < 2000 || assigned(&mut c).len() < 4) && Instant::now() < deadline {
        seen.extend(poll(&mut c));
    }
    assert_eq!(
        assigned(&mut c).len(),
        4,
        "the survivor took every partition"
    );
    assert!(
        killed_at.elapsed() >= Duration::from_secs(5),
        "taken over only after the session timeout"
    );
    assert_eq!(seen.len(), 2000, "every message received");
    c.ok("call Close");
    assert_eq!(c.finish().1, 0);
}

/// Poll's message properties, in both languages, binary-safe, headers in order with duplicates.
#[test]
fn poll_fills_the_message_properties() {
    let (b, topic, group) = kafka_group(KAFKA, "props", 1);
    let mut m = member(b, &topic, &group);
    m.ok(&format!(
        "call Produce {} x\"41ff42\" \"ключ\" {}",
        quote(&topic),
        quote(r#"[["h","1"],["h","2"],["имя","значение"]]"#)
    ));
    let r = m.ok("call Получить 20000");
    assert_eq!(r["ret"]["value"], true, "{r}");
    let get = |m: &mut Interactive, p: &str| m.ok(&format!("get {p}"))["value"].clone();
    assert_eq!(get(&mut m, "Тема")["value"], topic.as_str());
    assert_eq!(get(&mut m, "Partition")["value"], 0);
    assert_eq!(get(&mut m, "Смещение")["value"], 0);
    assert_eq!(get(&mut m, "Key")["value"], "ключ");
    assert_eq!(get(&mut m, "КлючДвоичный")["hex"], "d0bad0bbd18ed187");
    assert_eq!(get(&mut m, "ЗначениеДвоичное")["hex"], "41ff42");
    assert_eq!(
        get(&mut m, "Value")["value"],
        "A\u{FFFD}B",
        "invalid UTF-8 shows as U+FFFD in the text property"
    );
    assert_eq!(
        get(&mut m, "Заголовки")["value"],
        r#"[["h","1"],["h","2"],["имя","значение"]]"#
    );
    assert_eq!(get(&mut m, "Timestamp")["type"], "Date");
    assert!(get(&mut m, "ВремяМс")["value"].as_i64().unwrap() > 1_600_000_000_000);
    // Nothing more: Poll returns false after its timeout and the properties stay as they were.
    assert_eq!(m.ok("call Poll 300")["ret"]["value"], false);
    m.ok("call Close");
    let (exit, status) = m.finish();
    assert_eq!((exit["leaked"].as_i64(), status), (Some(0), 0));
}

/// A member that stops polling for max.poll.interval.ms leaves, so its partitions move on;
/// polling again rejoins.
#[test]
fn a_stalled_member_leaves_and_rejoins_when_it_polls_again() {
    let (b, topic, group) = kafka_group(KAFKA, "stall", 2);
    let settings = |b: &Broker| {
        json!({"bootstrap.servers": b.bootstrap(), "group.id": group, "session.timeout.ms": 6000,
               "heartbeat.interval.ms": 500, "max.poll.interval.ms": 3000, "auto.offset.reset": "earliest"})
        .to_string()
    };
    let mut ms: Vec<Interactive> = (0..2)
        .map(|_| {
            let mut m = Interactive::start(Platform::Linux);
            m.ok("new");
            m.ok(&format!("call Connect {}", quote(&settings(b))));
            m.ok(&format!("call Subscribe {}", quote(&topic)));
            m
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while assigned(&mut ms[0]).is_empty() || assigned(&mut ms[1]).is_empty() {
        for m in ms.iter_mut() {
            m.ok("call Poll 100");
        }
        assert!(Instant::now() < deadline, "no split");
    }
    // Only member 1 keeps polling; member 0 stalls past max.poll.interval.ms.
    let deadline = Instant::now() + Duration::from_secs(30);
    while assigned(&mut ms[1]).len() < 2 {
        ms[1].ok("call Poll 200");
        assert!(
            Instant::now() < deadline,
            "the stalled member kept its partition"
        );
    }
    assert!(assigned(&mut ms[0]).is_empty());
    // It polls again: it rejoins and gets a partition back.
    let deadline = Instant::now() + Duration::from_secs(30);
    while assigned(&mut ms[0]).is_empty() {
        for m in ms.iter_mut() {
            m.ok("call Poll 200");
        }
        assert!(Instant::now() < deadline, "no rejoin");
    }
    for mut m in ms {
        m.ok("call Close");
        assert_eq!(m.finish().1, 0);
    }
}

/// Static membership: a short-lived 1C job with group.instance.id closes without leaving the
/// group, so the other member (librdkafka) keeps its partitions and sees no rebalance; the next
/// run of the job, with the same id, takes its old partitions back, again without a rebalance,
/// and continues from the commit: nothing lost, nothing twice.
#[test]
fn a_static_member_closes_without_leaving_and_its_next_run_continues() {
    let (b, topic, group) = kafka_group(KAFKA, "static", 4);
    let job = |b: &Broker| {
        let mut m = Interactive::start(Platform::Linux);
        m.ok("new");
        let settings = json!({"bootstrap.servers": b.bootstrap(), "group.id": group,
                              "group.instance.id": "1c-job-1", "session.timeout.ms": 6000,
                              "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest",
                              "enable.auto.commit": false});
        m.ok(&format!("call Connect {}", quote(&settings.to_string())));
        m.ok(&format!("call Subscribe {}", quote(&topic)));
        m
    };
    let peer = rdkafka_member(b, &topic, &group);
    let mut first = job(b);
    let deadline = Instant::now() + Duration::from_secs(60);
    let theirs = loop {
        poll(&mut first);
        let (a, ap) = (assigned(&mut first), peer.assigned());
        if !a.is_empty() && !ap.is_empty() && a.len() + ap.len() == 4 {
            break ap;
        }
        assert!(Instant::now() < deadline, "no split: {a:?} {ap:?}");
    };
    let rebalances = |p: &Member| p.rebalances();
    produce_n(b, &topic, 0, 400);
    let mut ledger = Ledger::default();
    let mut seen: BTreeSet<(i64, i64)> = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < 400 {
        seen.extend(poll_logged(&mut first, &mut ledger, "first run"));
        seen.extend(peer.received());
        assert!(Instant::now() < deadline, "the first run got too little");
    }
    let before = rebalances(&peer);
    first.ok("call Close");
    assert_eq!(first.finish().1, 0);

    // A dynamic member's Close makes the others rebalance at once; a static one's does not.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        rebalances(&peer),
        before,
        "the static member left the group"
    );
    assert_eq!(peer.assigned(), theirs);

    // Messages arrive while the job is away; its next run picks up its share of them.
    produce_n(b, &topic, 400, 400);
    let mut second = job(b);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut second_got = Vec::new();
    while seen.len() < 800 {
        let got = poll_logged(&mut second, &mut ledger, "second run");
        second_got.extend(got.iter().copied());
        seen.extend(got);
        seen.extend(peer.received());
        assert!(Instant::now() < deadline, "{} of 800 received", seen.len());
    }
    assert!(!second_got.is_empty(), "the next run read nothing");
    // Kafka hands the returning static member its old partitions without a rebalance
    // (KIP-345): the other member saw none.
    assert_eq!(rebalances(&peer), before, "the return caused a rebalance");
    assert_eq!(peer.assigned(), theirs);
    second.ok("call Close");
    assert_eq!(second.finish().1, 0);
    // Redelivered only what was never committed.
    ledger.add_peer(&peer.stop(), "librdkafka");
    ledger.check();
}

/// Through the 1C boundary: NOT_COORDINATOR and REBALANCE_IN_PROGRESS injected into Heartbeat and
/// OffsetCommit, then the coordinator broker going down and coming back. Every message arrives,
/// nothing committed comes again, and the commits end up at the end of every partition.
#[test]
fn survives_coordinator_faults_through_the_boundary() {
    let (b, topic, group) = mock_group("faults", 4);
    produce_n(&b, &topic, 0, 2000);
    let mut m = member(&b, &topic, &group);
    let mut ledger = Ledger::default();
    let mut seen: BTreeSet<(i64, i64)> = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < 300 {
        seen.extend(poll_logged(&mut m, &mut ledger, "ours"));
        assert!(Instant::now() < deadline, "nothing arrives");
    }
    // Heartbeat = 12, OffsetCommit = 8; 16 = NOT_COORDINATOR, 27 = REBALANCE_IN_PROGRESS.
    for api in [12, 8] {
        let r = b
            .command(json!({"cmd": "push_request_errors", "api_key": api, "errors": [16, 27, 16]}));
        assert_eq!(r["ok"], true, "{r}");
    }
    let mut failed_commits = 0;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let before = ledger.commits.len();
        let got = poll_logged(&mut m, &mut ledger, "ours");
        if !got.is_empty() && ledger.commits.len() == before {
            failed_commits += 1;
        }
        seen.extend(got);
    }
    // The coordinator moves to broker 2, which then goes down for a while.
    b.command(json!({"cmd": "coordinator_set", "key_type": "group", "key": group, "broker": 2}));
    b.command(json!({"cmd": "broker_down", "broker": 2}));
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        seen.extend(poll_logged(&mut m, &mut ledger, "ours"));
    }
    b.command(json!({"cmd": "broker_up", "broker": 2}));
    let deadline = Instant::now() + Duration::from_secs(90);
    while seen.len() < 2000 {
        seen.extend(poll_logged(&mut m, &mut ledger, "ours"));
        assert!(Instant::now() < deadline, "only {} of 2000", seen.len());
    }
    // Commits complete once the coordinator is back: committed == end of every partition.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let commit = m.send("call Commit");
        let r = m.ok("call Assignment");
        let a: Json = serde_json::from_str(r["ret"]["value"].as_str().unwrap()).unwrap();
        let done =
            a.as_array().unwrap().iter().all(|p| {
                p["committed"].as_i64().is_some() && p["committed"] == p["high_watermark"]
            });
        if commit["ok"] == true && done && a.as_array().unwrap().len() == 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "commits never completed: {a} {commit}"
        );
        m.send("call Poll 100");
    }
    ledger.check();
    eprintln!("{failed_commits} commits refused while faults were injected");
    m.ok("call Close");
    let (exit, status) = m.finish();
    assert_eq!((exit["leaked"].as_i64(), status), (Some(0), 0), "{exit}");
}
