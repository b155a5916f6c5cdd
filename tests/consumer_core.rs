//! The group consumer as a plain Rust library against real brokers.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka1c::kafka::consumer::{Consumer, SeekTo};
use kafka1c::kafka::{runtime, Client, Config, Record};
use serde_json::json;
use support::Broker;

fn client(b: &Broker, extra: serde_json::Value) -> Client {
    let mut s = json!({"bootstrap.servers": b.bootstrap(), "session.timeout.ms": 6000,
                       "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest"});
    for (k, v) in extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    runtime::block_on(Client::connect(Config::from_json(&s.to_string()).unwrap())).unwrap()
}

fn produce(c: &Client, topic: &str, n: usize) {
    for i in 0..n {
        c.produce_async(Record {
            topic: topic.into(),
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("{i}"))),
            ..Default::default()
        })
        .unwrap();
    }
    let f = runtime::block_on(c.flush(Duration::from_secs(30)));
    assert_eq!(f.pending, 0);
}

fn subscribe(c: &Client, topic: &str, group: &str) -> Consumer {
    runtime::block_on(Consumer::subscribe(
        Arc::clone(c.cluster()),
        vec![topic.into()],
        group.into(),
    ))
    .unwrap()
}

#[test]
fn two_members_split_partitions_and_receive_everything() {
    let b = Broker::mock(3);
    b.command(json!({"cmd": "group_initial_rebalance_delay_ms", "ms": 0}));
    let topic = support::unique("grp");
    b.create_topic(&topic, 6, |_, _| unreachable!());
    let group = support::unique("g");
    let p = client(&b, json!({}));
    produce(&p, &topic, 3000);
    let (c1, c2) = (client(&b, json!({})), client(&b, json!({})));
    let m1 = subscribe(&c1, &topic, &group);
    let m2 = subscribe(&c2, &topic, &group);
    let mut seen: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Until everything arrived and the group settled with both members holding partitions.
    while (seen.len() < 3000 || m1.assignment().is_empty() || m2.assignment().is_empty())
        && Instant::now() < deadline
    {
        for m in [&m1, &m2] {
            for r in runtime::block_on(m.poll_batch(500, Duration::from_millis(100))).unwrap() {
                *seen.entry((r.partition, r.offset)).or_default() += 1;
            }
        }
    }
    assert_eq!(seen.len(), 3000, "every message received");
    let a1: BTreeSet<i32> = m1.assignment().iter().map(|p| p.partition).collect();
    let a2: BTreeSet<i32> = m2.assignment().iter().map(|p| p.partition).collect();
    assert!(a1.is_disjoint(&a2), "{a1:?} {a2:?}");
    assert_eq!(a1.len() + a2.len(), 6, "{a1:?} {a2:?}");
    // Drain what a rebalance handed back (records after the last commit come again).
    let caught_up = |m: &Consumer| m.assignment().iter().all(|p| p.lag == Some(0));
    while !(caught_up(&m1) && caught_up(&m2)) && Instant::now() < deadline {
        for m in [&m1, &m2] {
            runtime::block_on(m.poll_batch(500, Duration::from_millis(100))).unwrap();
        }
    }
    runtime::block_on(m1.commit()).unwrap();
    runtime::block_on(m2.commit()).unwrap();
    for s in m1.assignment().iter().chain(m2.assignment().iter()) {
        assert_eq!(s.committed, s.high_watermark, "{s:?}");
        assert_eq!(s.lag, Some(0));
    }
    // After one member closes, the other takes all partitions.
    runtime::block_on(m1.close()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while m2.assignment().len() < 6 && Instant::now() < deadline {
        let _ = runtime::block_on(m2.poll(Duration::from_millis(200)));
    }
    assert_eq!(m2.assignment().len(), 6);
    // Seek to the beginning of a partition re-delivers it.
    runtime::block_on(m2.seek(&topic, 0, SeekTo::Beginning)).unwrap();
    let r = runtime::block_on(m2.poll(Duration::from_secs(10)))
        .unwrap()
        .expect("a record after seek");
    assert_eq!((r.partition, r.offset), (0, 0));
    runtime::block_on(m2.close()).unwrap();
}
