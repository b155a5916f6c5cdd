//! Consumer groups through the 1C boundary (issue 4): two of our Clients (each in its own host
//! emulator process) and one librdkafka member share a 6-partition topic.

mod host;
mod support;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use host::{quote, Interactive, Platform};
use kafka1c::kafka::{runtime, Client, Config, Record};
use serde_json::{json, Value as Json};
use support::Broker;

const TOTAL: usize = 30_000;

/// A librdkafka group member (tests/peers/group_consumer.py) whose events are collected.
struct Peer {
    child: std::process::Child,
    events: Arc<Mutex<Vec<Json>>>,
}

impl Peer {
    fn start(b: &Broker, topic: &str, group: &str) -> Peer {
        let mut child = Command::new(support::python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/peers/group_consumer.py"
            ))
            .args([
                "--bootstrap",
                b.bootstrap(),
                "--group",
                group,
                "--topics",
                topic,
                "--duration",
                "240",
                "--commit-every",
                "200",
                "--session-timeout-ms",
                "6000",
                "--heartbeat-ms",
                "500",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let out = BufReader::new(child.stdout.take().unwrap());
        let sink = events.clone();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Json>(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        Peer { child, events }
    }

    fn received(&self) -> Vec<(i64, i64)> {
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

    fn assigned(&self) -> BTreeSet<i64> {
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

    fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
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
    if !got.is_empty() {
        // A commit may be refused mid-rebalance; what it covered then comes again.
        m.send("call Commit");
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

#[test]
fn two_of_ours_and_librdkafka_split_partitions_take_over_and_receive_everything() {
    let b = Broker::mock(3);
    b.command(json!({"cmd": "group_initial_rebalance_delay_ms", "ms": 0}));
    let topic = support::unique("group");
    b.create_topic(&topic, 6, |_, _| unreachable!());
    let group = support::unique("g");
    produce_n(&b, &topic, 0, TOTAL);

    let peer = Peer::start(&b, &topic, &group);
    let mut ours = vec![member(&b, &topic, &group), member(&b, &topic, &group)];
    let mut seen: HashMap<(i64, i64), usize> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut split_checked = false;
    let mut closed_one = false;
    loop {
        for m in ours.iter_mut() {
            for k in poll(m) {
                *seen.entry(k).or_default() += 1;
            }
        }
        let peer_got: BTreeSet<(i64, i64)> = peer.received().into_iter().collect();
        let all: BTreeSet<(i64, i64)> = seen
            .keys()
            .copied()
            .chain(peer_got.iter().copied())
            .collect();
        // All three hold partitions: the split must have no overlap.
        if !split_checked {
            let (a0, a1, ap) = (
                assigned(&mut ours[0]),
                assigned(&mut ours[1]),
                peer.assigned(),
            );
            if !a0.is_empty()
                && !a1.is_empty()
                && !ap.is_empty()
                && a0.len() + a1.len() + ap.len() == 6
            {
                assert!(
                    a0.is_disjoint(&a1) && a0.is_disjoint(&ap) && a1.is_disjoint(&ap),
                    "{a0:?} {a1:?} {ap:?}"
                );
                split_checked = true;
            }
        }
        // Halfway, one of ours closes; the others take its partitions over.
        if split_checked && !closed_one && all.len() > TOTAL / 2 {
            let mut gone = ours.remove(0);
            gone.ok("call Закрыть");
            let (exit, status) = gone.finish();
            assert_eq!(exit["leaked"], 0, "{exit}");
            assert_eq!(status, 0);
            closed_one = true;
        }
        if all.len() == TOTAL && closed_one {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {TOTAL} received; split seen: {split_checked}",
            all.len()
        );
    }
    // After the close the remaining member of ours and librdkafka share all six partitions.
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        poll(&mut ours[0]);
        let (a, ap) = (assigned(&mut ours[0]), peer.assigned());
        if a.len() + ap.len() == 6 && a.is_disjoint(&ap) {
            break;
        }
        assert!(
            Instant::now() < end,
            "no takeover: ours {a:?}, librdkafka {ap:?}"
        );
    }
    for m in ours {
        let (exit, status) = {
            let mut m = m;
            m.ok("call Close");
            m.finish()
        };
        assert_eq!(exit["leaked"], 0, "{exit}");
        assert_eq!(status, 0);
    }
    peer.stop();
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
#[test]
fn commits_interoperate_with_librdkafka_both_ways() {
    let b = Broker::mock(3);
    b.command(json!({"cmd": "group_initial_rebalance_delay_ms", "ms": 0}));
    let topic = support::unique("interop");
    b.create_topic(&topic, 3, |_, _| unreachable!());
    let group = support::unique("g");
    produce_n(&b, &topic, 0, 300);

    let mut ours = member(&b, &topic, &group);
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
    let peer = Peer::start(&b, &topic, &group);
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
    produce_n(&b, &topic, 300, 30);
    let mut again = member(&b, &topic, &group);
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

/// A member killed without Close (a crashed 1C worker) is evicted after session.timeout.ms and
/// the other member continues from the last commit.
#[test]
fn killed_member_is_evicted_and_consumption_continues() {
    let b = Broker::mock(3);
    b.command(json!({"cmd": "group_initial_rebalance_delay_ms", "ms": 0}));
    let topic = support::unique("kill");
    b.create_topic(&topic, 4, |_, _| unreachable!());
    let group = support::unique("g");
    produce_n(&b, &topic, 0, 2000);
    let mut a = member(&b, &topic, &group);
    let mut c = member(&b, &topic, &group);
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
    let b = Broker::mock(1);
    let topic = support::unique("props");
    b.create_topic(&topic, 1, |_, _| unreachable!());
    let group = support::unique("g");
    let mut m = member(&b, &topic, &group);
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
    let b = Broker::mock(3);
    b.command(json!({"cmd": "group_initial_rebalance_delay_ms", "ms": 0}));
    let topic = support::unique("stall");
    b.create_topic(&topic, 2, |_, _| unreachable!());
    let group = support::unique("g");
    let settings = |b: &Broker| {
        json!({"bootstrap.servers": b.bootstrap(), "group.id": group, "session.timeout.ms": 6000,
               "heartbeat.interval.ms": 500, "max.poll.interval.ms": 3000, "auto.offset.reset": "earliest"})
        .to_string()
    };
    let mut ms: Vec<Interactive> = (0..2)
        .map(|_| {
            let mut m = Interactive::start(Platform::Linux);
            m.ok("new");
            m.ok(&format!("call Connect {}", quote(&settings(&b))));
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
