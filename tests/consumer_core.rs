//! The group consumer as a plain Rust library against real brokers.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka1c::kafka::consumer::{Consumer, SeekTo};
use kafka1c::kafka::{runtime, Client, Config, Record};
use serde_json::json;
use support::{Broker, KAFKA, KAFKA_3};

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

/// A fresh topic on the shared Kafka and a client that made it.
fn kafka_topic(version: &str, prefix: &str, partitions: i32) -> (&'static Broker, Client, String) {
    let b = Broker::kafka_version(version);
    let p = client(b, json!({}));
    let topic = support::unique(prefix);
    runtime::block_on(p.create_topic(&topic, partitions, 1, &[])).unwrap();
    (b, p, topic)
}

fn two_members_split(version: &str) {
    let (b, p, topic) = kafka_topic(version, "grp", 6);
    let group = support::unique("g");
    produce(&p, &topic, 3000);
    let (c1, c2) = (client(b, json!({})), client(b, json!({})));
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

#[test]
fn kafka_two_members_split_partitions_and_receive_everything() {
    two_members_split(KAFKA);
}

#[test]
fn kafka_3_two_members_split_partitions_and_receive_everything() {
    two_members_split(KAFKA_3);
}

#[test]
fn tansu_single_member_receives_everything_then_resumes_from_its_commit() {
    let b = Broker::tansu();
    let p = client(&b, json!({}));
    let topic = support::unique("tansu-grp");
    runtime::block_on(p.create_topic(&topic, 3, 1, &[])).unwrap();
    produce(&p, &topic, 500);
    let group = support::unique("g");
    let c = client(&b, json!({"enable.auto.commit": false}));
    let m = subscribe(&c, &topic, &group);
    let started = Instant::now();
    let mut got = BTreeSet::new();
    while got.len() < 500 && started.elapsed() < Duration::from_secs(60) {
        for r in runtime::block_on(m.poll_batch(1000, Duration::from_millis(200))).unwrap() {
            got.insert((r.partition, r.offset));
        }
    }
    eprintln!("tansu: first 500 after {:?}", started.elapsed());
    assert_eq!(got.len(), 500);
    runtime::block_on(m.commit()).unwrap();
    runtime::block_on(m.close()).unwrap();
    // A new member of the same group starts after the committed offsets: only new records.
    produce(&p, &topic, 50);
    let m = subscribe(&c, &topic, &group);
    let mut again = BTreeSet::new();
    let started = Instant::now();
    while again.len() < 50 && started.elapsed() < Duration::from_secs(60) {
        for r in runtime::block_on(m.poll_batch(1000, Duration::from_millis(200))).unwrap() {
            assert!(
                !got.contains(&(r.partition, r.offset)),
                "committed record delivered again: {r:?}"
            );
            again.insert((r.partition, r.offset));
        }
    }
    assert_eq!(again.len(), 50);
    runtime::block_on(m.close()).unwrap();
}

fn drain(m: &Consumer, want: usize, secs: u64) -> Vec<(i32, i64)> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    while out.len() < want && Instant::now() < deadline {
        for r in runtime::block_on(m.poll_batch(1000, Duration::from_millis(200))).unwrap() {
            out.push((r.partition, r.offset));
        }
    }
    out
}

/// auto.offset.reset as in the Java client, and Seek to the end.
#[test]
fn auto_offset_reset_earliest_latest_none() {
    let (b, p, topic) = kafka_topic(KAFKA, "reset", 1);
    produce(&p, &topic, 10);

    let earliest = client(b, json!({"auto.offset.reset": "earliest"}));
    let m = subscribe(&earliest, &topic, &support::unique("g"));
    let got = drain(&m, 10, 30);
    assert_eq!(got.first(), Some(&(0, 0)));
    assert_eq!(got.len(), 10);
    // Seek to the end: only what is produced next arrives.
    runtime::block_on(m.seek(&topic, 0, SeekTo::End)).unwrap();
    produce(&p, &topic, 1);
    assert_eq!(drain(&m, 1, 30), [(0, 10)]);

    let latest = client(b, json!({"auto.offset.reset": "latest"}));
    let m = subscribe(&latest, &topic, &support::unique("g"));
    // Wait for the assignment, then only records produced after it arrive.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !m.assignment().iter().all(|s| s.position.is_some()) || m.assignment().is_empty() {
        assert!(runtime::block_on(m.poll(Duration::from_millis(100)))
            .unwrap()
            .is_none());
        assert!(Instant::now() < deadline, "no assignment");
    }
    produce(&p, &topic, 1);
    assert_eq!(drain(&m, 1, 30), [(0, 11)]);

    let none = client(b, json!({"auto.offset.reset": "none"}));
    let m = subscribe(&none, &topic, &support::unique("g"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let err = loop {
        match runtime::block_on(m.poll(Duration::from_millis(200))) {
            Err(e) => break e,
            Ok(r) => assert!(r.is_none()),
        }
        assert!(
            Instant::now() < deadline,
            "no error for auto.offset.reset=none"
        );
    };
    assert!(
        err.to_string().contains("auto.offset.reset is none"),
        "{err}"
    );
}

/// The next Fetch leaves before the previous answer is decoded, each broker at its own pace:
/// with answers cut small (many Fetches per partition, leaders on three brokers) every
/// partition still arrives whole and in order, and a Seek in the middle of that restarts the
/// partition exactly where asked.
#[test]
fn fetching_ahead_keeps_every_partition_in_order_through_a_seek() {
    let b = Broker::mock(3);
    b.command(json!({"cmd": "group_initial_rebalance_delay_ms", "ms": 0}));
    let topic = support::unique("ahead");
    b.create_topic(&topic, 3, |_, _| unreachable!());
    let p = client(&b, json!({"linger.ms": 0}));
    // 3 MB in all: above the 1 MB the consumer buffers, so Fetches go on while it polls.
    for i in 0..3000 {
        let record = Record {
            topic: topic.clone(),
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(vec![b'v'; 1000])),
            ..Default::default()
        };
        p.produce_async(record).unwrap();
    }
    assert_eq!(
        runtime::block_on(p.flush(Duration::from_secs(30))).pending,
        0
    );
    let c = client(
        &b,
        json!({"max.partition.fetch.bytes": 1024, "fetch.max.bytes": 1024}),
    );
    let m = subscribe(&c, &topic, &support::unique("g"));
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    let (mut got, mut sought) = (0, false);
    let deadline = Instant::now() + Duration::from_secs(60);
    while got < 3000 + 200 && Instant::now() < deadline {
        let mut seek_now = false;
        for r in runtime::block_on(m.poll_batch(7, Duration::from_millis(200))).unwrap() {
            if seek_now && r.partition == 0 {
                continue; // taken before the Seek below: partition 0 starts again from 100
            }
            let expected = last.get(&r.partition).map_or(0, |o| o + 1);
            assert_eq!(r.offset, expected, "partition {} out of order", r.partition);
            last.insert(r.partition, r.offset);
            got += 1;
            seek_now |= !sought && r.partition == 0 && r.offset == 299;
        }
        if seek_now {
            // Back by 200: those come again, and nothing fetched ahead slips in before.
            runtime::block_on(m.seek(&topic, 0, SeekTo::Offset(100))).unwrap();
            last.insert(0, 99);
            sought = true;
        }
    }
    assert!(sought, "partition 0 never reached offset 299");
    let ends: BTreeMap<i32, i64> = m
        .assignment()
        .iter()
        .map(|s| (s.partition, s.high_watermark.unwrap()))
        .collect();
    assert_eq!(ends.values().sum::<i64>(), 3000);
    let lasts: BTreeMap<i32, i64> = ends.iter().map(|(p, e)| (*p, e - 1)).collect();
    assert_eq!(last, lasts, "every partition read to its end");
    assert_eq!(got, 3000 + 200);
}

/// A batch that fails its CRC: Poll reports it (naming the CRC) every time it is asked again,
/// the position stays in front of it, records before it come, and a Seek past it goes on.
#[test]
fn a_corrupt_batch_is_reported_at_every_poll_and_a_seek_goes_past_it() {
    use kafka1c::kafka::records::{encode_batch, OutRecord};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;

    let b = Broker::mock(1);
    b.command(json!({"cmd": "group_initial_rebalance_delay_ms", "ms": 0}));
    let topic = support::unique("corrupt");
    b.create_topic(&topic, 1, |_, _| unreachable!());
    let p = client(&b, json!({}));
    produce(&p, &topic, 5);
    // One record whose bytes no longer match the batch CRC, sent as it is.
    let record = OutRecord {
        key: None,
        value: Some(Bytes::from_static(b"intact")),
        headers: vec![],
        timestamp: 0,
    };
    let mut bytes = encode_batch(&[&record], kafka1c::kafka::config::Compression::None)
        .unwrap()
        .to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x20;
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.clone())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(bytes)))])]);
    let resp = runtime::block_on(p.cluster().send_any(&req)).unwrap();
    let code = resp.responses[0].partition_responses[0].error_code;
    assert_eq!(code, 0, "the mock cluster stores the batch unchecked");
    produce(&p, &topic, 5);

    let c = client(&b, json!({}));
    let m = subscribe(&c, &topic, &support::unique("g"));
    let good = drain(&m, 5, 30);
    assert_eq!(good, (0..5).map(|o| (0, o)).collect::<Vec<_>>());
    for round in 0..2 {
        let deadline = Instant::now() + Duration::from_secs(10);
        let err = loop {
            match runtime::block_on(m.poll(Duration::from_millis(200))) {
                Err(e) => break e,
                Ok(r) => assert!(r.is_none(), "round {round}: {r:?} came past the bad batch"),
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: no error for the bad batch"
            );
        };
        assert!(err.to_string().contains("CRC"), "{err}");
        assert_eq!(m.assignment()[0].position, Some(5), "the position stays");
    }
    runtime::block_on(m.seek(&topic, 0, SeekTo::Offset(6))).unwrap();
    assert_eq!(
        drain(&m, 5, 30),
        (6..11).map(|o| (0, o)).collect::<Vec<_>>()
    );
}

/// Seek by offset, by time, to the beginning and to the end.
#[test]
fn seek_by_offset_time_beginning_and_end() {
    let (b, p, topic) = kafka_topic(KAFKA, "seek", 1);
    let t0 = 1_700_000_000_000i64;
    for i in 0..10 {
        p.produce_async(Record {
            topic: topic.clone(),
            value: Some(Bytes::from(format!("{i}"))),
            timestamp_ms: Some(t0 + i * 1000),
            ..Default::default()
        })
        .unwrap();
    }
    assert_eq!(
        runtime::block_on(p.flush(Duration::from_secs(30))).pending,
        0
    );
    let c = client(b, json!({}));
    let m = subscribe(&c, &topic, &support::unique("g"));
    assert_eq!(drain(&m, 10, 60).len(), 10);
    let first = |m: &Consumer| {
        runtime::block_on(m.poll(Duration::from_secs(10)))
            .unwrap()
            .map(|r| r.offset)
    };
    runtime::block_on(m.seek(&topic, 0, SeekTo::Offset(7))).unwrap();
    assert_eq!(first(&m), Some(7));
    runtime::block_on(m.seek(&topic, 0, SeekTo::Timestamp(t0 + 4500))).unwrap();
    assert_eq!(first(&m), Some(5), "first message at or after the time");
    runtime::block_on(m.seek(&topic, 0, SeekTo::Beginning)).unwrap();
    assert_eq!(first(&m), Some(0));
    // The end: the next record produced comes first; a time after all but it finds it.
    runtime::block_on(m.seek(&topic, 0, SeekTo::End)).unwrap();
    produce(&p, &topic, 1);
    assert_eq!(first(&m), Some(10));
    runtime::block_on(m.seek(&topic, 0, SeekTo::Timestamp(t0 + 60_000))).unwrap();
    assert_eq!(first(&m), Some(10));
    assert!(
        runtime::block_on(m.seek(&topic, 5, SeekTo::Beginning)).is_err(),
        "unassigned partition"
    );
}

/// NOT_COORDINATOR and REBALANCE_IN_PROGRESS on Heartbeat and OffsetCommit, then the
/// coordinator broker going down: everything still arrives and the commits end up complete.
#[test]
fn survives_coordinator_errors_and_outage() {
    let b = Broker::mock(3);
    b.command(json!({"cmd": "group_initial_rebalance_delay_ms", "ms": 0}));
    let topic = support::unique("faults");
    b.create_topic(&topic, 4, |_, _| unreachable!());
    let p = client(&b, json!({}));
    produce(&p, &topic, 2000);
    let group = support::unique("g");
    let c = client(&b, json!({"enable.auto.commit": false}));
    let m = subscribe(&c, &topic, &group);
    let mut seen: BTreeSet<(i32, i64)> = drain(&m, 500, 60).into_iter().collect();
    // Heartbeat = 12, OffsetCommit = 8.
    b.command(json!({"cmd": "push_request_errors", "api_key": 12, "errors": [16, 27]}));
    b.command(json!({"cmd": "push_request_errors", "api_key": 8, "errors": [16, 27]}));
    let _ = runtime::block_on(m.commit());
    b.command(json!({"cmd": "coordinator_set", "key_type": "group", "key": group, "broker": 2}));
    b.command(json!({"cmd": "broker_down", "broker": 2}));
    seen.extend(drain(&m, 700, 5));
    b.command(json!({"cmd": "broker_up", "broker": 2}));
    let deadline = Instant::now() + Duration::from_secs(90);
    while seen.len() < 2000 && Instant::now() < deadline {
        seen.extend(drain(&m, 1, 1));
        let _ = runtime::block_on(m.commit());
    }
    assert_eq!(seen.len(), 2000, "no message lost");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let _ = runtime::block_on(m.poll(Duration::from_millis(100)));
        if runtime::block_on(m.commit()).is_ok()
            && m.assignment()
                .iter()
                .all(|s| s.committed == s.high_watermark)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "commits never completed: {:?}",
            m.assignment()
        );
    }
    runtime::block_on(m.close()).unwrap();
}

/// With fetch.max.bytes reached by the first partition of every Fetch, the others still get
/// their turn: each Fetch starts at another partition.
#[test]
fn a_full_answer_does_not_starve_the_partitions_after_the_first() {
    let mock = Broker::mock(1);
    for b in [&mock, Broker::kafka()] {
        // One batch per record, so an answer can stop after any of them.
        let topic = single_record_batches(b, "turns", 3, 300);
        let limits = json!({"fetch.max.bytes": 1024, "max.partition.fetch.bytes": 1024});
        let c = client(b, limits);
        let m = subscribe(&c, &topic, &support::unique("g"));
        let started = Instant::now();
        let mut first = Vec::new();
        while first.len() < 60 && started.elapsed() < Duration::from_secs(60) {
            let polled = runtime::block_on(m.poll_batch(60, Duration::from_millis(200))).unwrap();
            first.extend(polled.iter().map(|r| r.partition));
        }
        let seen: BTreeSet<i32> = first.iter().take(60).copied().collect();
        assert_eq!(
            seen.len(),
            3,
            "{}: the first 60 records came from {seen:?}",
            b.kind
        );
        runtime::block_on(m.close()).unwrap();
    }
}

/// A new topic of `partitions` holding `n` records of 600 bytes, dealt over the partitions in
/// turn, each record in a batch of its own.
fn single_record_batches(b: &Broker, prefix: &str, partitions: i32, n: i32) -> String {
    let p = client(b, json!({"linger.ms": 0}));
    let topic = support::unique(prefix);
    b.create_topic(&topic, partitions, |t, n| {
        runtime::block_on(p.create_topic(t, n, 1, &[])).unwrap()
    });
    for i in 0..n {
        let record = Record {
            topic: topic.clone(),
            partition: Some(i % partitions),
            value: Some(Bytes::from(format!("{i:0>600}"))),
            ..Default::default()
        };
        runtime::block_on(p.produce(record)).unwrap();
    }
    topic
}

/// Fetch arrival times (µs) the mock saw since the last call.
fn fetch_arrivals(b: &Broker) -> Vec<i64> {
    let answer = b.command(json!({"cmd": "take_requests"}));
    let requests = answer["requests"].as_array().cloned().unwrap_or_default();
    let fetch = requests.iter().filter(|r| r["api_key"] == 1);
    fetch.map(|r| r["at_us"].as_i64().unwrap()).collect()
}

/// While partitions have records ready, a broker gets two Fetches at once (it can work on one
/// while the other's answer travels), never more; once every partition is caught up, one
/// waiting Fetch at a time, so no request queues behind a Fetch the broker holds. Seen from
/// the mock's arrival times with a 200 ms round trip: a Fetch that arrives sooner than that
/// after another was sent before the other's answer could have come back.
#[test]
fn two_fetches_in_flight_only_while_records_are_ready() {
    const RTT_US: i64 = 200_000;
    let b = Broker::mock(1);
    b.command(json!({"cmd": "group_initial_rebalance_delay_ms", "ms": 0}));
    // One batch per record and about one batch per partition per answer: many Fetches.
    let topic = single_record_batches(&b, "pairs", 4, 80);
    // The round trip is added before the consumer starts, so no Fetch runs at loopback speed.
    b.command(json!({"cmd": "set_rtt", "broker": 1, "ms": RTT_US / 1000}));
    fetch_arrivals(&b); // starts tracking
    let c = client(&b, json!({"max.partition.fetch.bytes": 1024}));
    let m = subscribe(&c, &topic, &support::unique("g"));
    let got = drain(&m, 80, 90);
    let draining = fetch_arrivals(&b);
    let mut by_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (partition, offset) in &got {
        by_partition.entry(*partition).or_default().push(*offset);
    }
    for (partition, offsets) in &by_partition {
        assert_eq!(
            *offsets,
            (0..20).collect::<Vec<i64>>(),
            "partition {partition}"
        );
    }
    assert_eq!(by_partition.len(), 4);
    let gaps: Vec<i64> = draining.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().any(|&g| g < RTT_US / 2),
        "no two Fetches in flight at once while draining: gaps {gaps:?} µs"
    );
    let spans: Vec<i64> = draining.windows(3).map(|w| w[2] - w[0]).collect();
    assert!(
        spans.iter().all(|&s| s > RTT_US * 3 / 4),
        "three Fetches in flight at once: {spans:?} µs"
    );
    // Caught up: let the last answers come, then watch one waiting Fetch at a time.
    assert!(drain(&m, 1, 2).is_empty());
    fetch_arrivals(&b);
    assert!(drain(&m, 1, 3).is_empty());
    let idle = fetch_arrivals(&b);
    assert!(idle.len() >= 2, "Fetches while caught up: {idle:?}");
    let gaps: Vec<i64> = idle.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().all(|&g| g > RTT_US * 3 / 4),
        "Fetches in flight together with nothing ready: gaps {gaps:?} µs"
    );
    runtime::block_on(m.close()).unwrap();
}
