//! The Kafka core as a plain Rust library against real brokers: codecs on the wire, acks,
//! retries that keep order through injected errors, leader moves and a broker outage.

mod support;

use std::time::Duration;

use bytes::Bytes;
use kafka1c::kafka::config::Compression;
use kafka1c::kafka::{runtime, Client, Config, DeliveryReport, Error, Record};
use serde_json::json;
use support::{peer, Broker, KAFKA_3};

fn client(b: &Broker, settings: serde_json::Value) -> Client {
    let mut s = settings;
    s["bootstrap.servers"] = json!(b.bootstrap());
    runtime::block_on(Client::connect(Config::from_json(&s.to_string()).unwrap())).unwrap()
}

fn topic(b: &Broker, c: &Client, partitions: i32) -> String {
    let t = support::unique("core");
    b.create_topic(&t, partitions, |t, n| {
        runtime::block_on(c.create_topic(t, n, 1, &[])).unwrap()
    });
    t
}

fn record(topic: &str, i: usize) -> Record {
    Record {
        topic: topic.to_string(),
        key: Some(Bytes::from(format!("key-{i}"))),
        value: Some(Bytes::from(format!("value-{i}-{}", "x".repeat(i % 300)))),
        headers: vec![("i".into(), Some(Bytes::from(i.to_string())))],
        ..Default::default()
    }
}

/// Values read back by librdkafka, per partition in offset order.
fn read_back(b: &Broker, topic: &str, count: usize) -> Vec<(i64, i64, String)> {
    let mut lines: Vec<(i64, i64, String)> = peer(
        "consume.py",
        &[
            "--bootstrap",
            b.bootstrap(),
            "--topic",
            topic,
            "--count",
            &count.to_string(),
            "--timeout",
            "90",
        ],
        "",
    )
    .iter()
    .map(|l| {
        let v = support::unb64(l["value_b64"].as_str().unwrap());
        (
            l["partition"].as_i64().unwrap(),
            l["offset"].as_i64().unwrap(),
            String::from_utf8(v).unwrap(),
        )
    })
    .collect();
    lines.sort();
    lines
}

fn every_codec(b: &Broker) {
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let c = client(b, json!({"compression.type": codec, "linger.ms": 20}));
        assert_eq!(c.config().compression != Compression::None, codec != "none");
        let t = topic(b, &c, 2);
        for i in 0..300 {
            c.produce_async(record(&t, i)).unwrap();
        }
        let f = runtime::block_on(c.flush(Duration::from_secs(30)));
        assert_eq!(f.pending, 0);
        assert!(
            f.reports.iter().all(|r| r.result.is_ok()),
            "{codec}: {:?}",
            f.reports.iter().find(|r| r.result.is_err())
        );
        let got = read_back(b, &t, 300);
        let mut values: Vec<String> = got.into_iter().map(|(_, _, v)| v).collect();
        values.sort();
        let mut want: Vec<String> = (0..300)
            .map(|i| String::from_utf8(record(&t, i).value.unwrap().to_vec()).unwrap())
            .collect();
        want.sort();
        assert_eq!(values, want, "{codec}");
        runtime::block_on(c.close(Duration::from_secs(5)));
    }
}

#[test]
fn kafka_every_codec_is_read_by_librdkafka() {
    every_codec(Broker::kafka());
}

#[test]
fn kafka_3_every_codec_is_read_by_librdkafka() {
    every_codec(Broker::kafka_version(KAFKA_3));
}

#[test]
fn acks_zero_one_all() {
    let b = Broker::kafka();
    for (acks, expect_offsets) in [("0", false), ("1", true), ("all", true)] {
        let c = client(b, json!({"acks": acks}));
        let t = topic(b, &c, 1);
        let offsets: Vec<i64> = (0..20)
            .map(|i| runtime::block_on(c.produce(record(&t, i))).unwrap().offset)
            .collect();
        if expect_offsets {
            assert_eq!(offsets, (0..20).collect::<Vec<i64>>(), "acks={acks}");
        } else {
            assert!(
                offsets.iter().all(|o| *o == -1),
                "acks=0 has no offsets: {offsets:?}"
            );
        }
        assert_eq!(read_back(b, &t, 20).len(), 20, "acks={acks}");
    }
}

/// NOT_LEADER_OR_FOLLOWER and REQUEST_TIMED_OUT injected into Produce, a leader move and a
/// broker outage, with the first records waiting for the new topic's metadata: every record
/// is acknowledged and stored exactly in the order it was produced.
///
/// One batch at a time: the mock cluster checks sequence numbers only for transactional
/// producers, so with several batches in flight it would store one sent after a failed one
/// (a real broker answers OUT_OF_ORDER_SEQUENCE_NUMBER, tested below).
#[test]
fn retries_keep_partition_order_through_errors_leader_moves_and_outages() {
    let b = Broker::mock(3);
    let c = client(
        &b,
        json!({"linger.ms": 2, "batch.size": 2000, "retry.backoff.ms": 50, "max.in.flight": 1}),
    );
    let t = topic(&b, &c, 1);
    let r = b.command(json!({"cmd": "push_request_errors", "api_key": 0, "errors": [6, 7, 6, 6]}));
    assert_eq!(r["ok"], true);
    let mut ids = Vec::with_capacity(1000);
    for i in 0..400 {
        ids.push(c.produce_async(record(&t, i)).unwrap());
    }
    let first = runtime::block_on(c.flush(Duration::from_secs(60)));
    assert_eq!(first.pending, 0);
    // Move the leader, then take the new leader down for a while during sends.
    b.command(json!({"cmd": "set_leader", "topic": t, "partition": 0, "broker": 2}));
    for i in 400..700 {
        ids.push(c.produce_async(record(&t, i)).unwrap());
    }
    b.command(json!({"cmd": "broker_down", "broker": 2}));
    for i in 700..1000 {
        ids.push(c.produce_async(record(&t, i)).unwrap());
    }
    std::thread::sleep(Duration::from_millis(1500));
    b.command(json!({"cmd": "broker_up", "broker": 2}));
    let second = runtime::block_on(c.flush(Duration::from_secs(60)));
    assert_eq!(second.pending, 0);
    let reports: Vec<_> = first.reports.iter().chain(second.reports.iter()).collect();
    assert_eq!(reports.len(), 1000);
    assert!(
        reports.iter().all(|r| r.result.is_ok()),
        "{:?}",
        reports.iter().find(|r| r.result.is_err())
    );
    assert_acked_in_order(&ids, reports);
    let got = read_back(&b, &t, 1000);
    // Values are "value-<n>-...": the sequence must be 0..1000 in offset order.
    let seq: Vec<(i64, usize)> = got
        .iter()
        .map(|(_, o, v)| (*o, v.split('-').nth(1).unwrap().parse().unwrap()))
        .collect();
    if let Some(i) = (0..seq.len()).find(|i| seq[*i] != (*i as i64, *i)) {
        panic!(
            "librdkafka read (offset, record) {:?} from index {}",
            &seq[i.saturating_sub(3)..(i + 10).min(seq.len())],
            i.saturating_sub(3)
        );
    }
    assert_eq!(seq.len(), 1000);
}

/// The idempotent producer's answers to a sequence the broker does not expect: a new producer
/// id and the partition's sequence again from 0, resending in order; nothing is lost or
/// doubled (one batch in flight on the mock, as above). Also many batches in flight on Kafka,
/// in order.
#[test]
fn sequence_errors_get_a_new_producer_id_and_keep_order() {
    let b = Broker::mock(1);
    let c = client(
        &b,
        json!({"linger.ms": 2, "batch.size": 2000, "retry.backoff.ms": 20, "max.in.flight": 1}),
    );
    let t = topic(&b, &c, 1);
    // OUT_OF_ORDER_SEQUENCE_NUMBER, then UNKNOWN_PRODUCER_ID, on the first two requests.
    let r = b.command(json!({"cmd": "push_request_errors", "api_key": 0, "errors": [45, 59]}));
    assert_eq!(r["ok"], true);
    produce_in_order(&c, &t, 300);
    let got = read_back(&b, &t, 300);
    assert!(got
        .iter()
        .enumerate()
        .all(|(i, (_, o, v))| *o == i as i64 && v.starts_with(&format!("value-{i}-"))));

    let kafka = Broker::kafka();
    let c = client(kafka, json!({"linger.ms": 0, "batch.size": 1500}));
    let t = topic(kafka, &c, 1);
    produce_in_order(&c, &t, 2000);
}

/// A broker that refuses a producer id (CLUSTER_AUTHORIZATION_FAILED on InitProducerId): by
/// default the producer goes on without idempotence; asked for explicitly, the waiting record
/// fails naming the setting, and a later record asks again.
#[test]
fn a_refused_producer_id_falls_back_or_fails_as_configured() {
    let b = Broker::mock(1);
    let refuse = || {
        let r = b.command(json!({"cmd": "push_request_errors", "api_key": 22, "errors": [31]}));
        assert_eq!(r["ok"], true);
    };
    let c = client(&b, json!({"linger.ms": 2, "batch.size": 2000}));
    let t = topic(&b, &c, 1);
    refuse();
    produce_in_order(&c, &t, 200);

    let c = client(&b, json!({"enable.idempotence": true}));
    let t = topic(&b, &c, 1);
    refuse();
    let e = runtime::block_on(c.produce(record(&t, 0))).unwrap_err();
    assert!(e.to_string().contains("enable.idempotence"), "{e}");
    let d = runtime::block_on(c.produce(record(&t, 1))).expect("a producer id the second time");
    assert_eq!(d.offset, 0, "the refused record was never sent");
}

/// Produces records 0..n to a fresh topic and checks they were acknowledged at offsets 0..n.
fn produce_in_order(c: &Client, t: &str, n: usize) {
    let ids: Vec<u64> = (0..n)
        .map(|i| c.produce_async(record(t, i)).unwrap())
        .collect();
    let out = runtime::block_on(c.flush(Duration::from_secs(60)));
    assert_eq!(out.pending, 0);
    assert_acked_in_order(&ids, out.reports.iter());
}

/// The acknowledged offsets, in produce order, must be 0, 1, 2, ...
fn assert_acked_in_order(ids: &[u64], reports: impl IntoIterator<Item = DeliveryReport>) {
    let offset_of: std::collections::HashMap<u64, i64> = reports
        .into_iter()
        .map(|r| (r.id, r.result.expect("delivered")))
        .collect();
    let acked: Vec<i64> = ids.iter().map(|id| offset_of[id]).collect();
    assert!(
        acked.iter().enumerate().all(|(i, o)| *o == i as i64),
        "records were acknowledged out of produce order: {}",
        runs(&acked)
    );
}

/// "records a..b at offsets x..y" for each contiguous stretch, to show a reordering briefly.
fn runs(offsets: &[i64]) -> String {
    let mut out = Vec::new();
    let mut start = 0;
    for j in 1..=offsets.len() {
        if j == offsets.len() || offsets[j] != offsets[j - 1] + 1 {
            out.push(format!(
                "records {start}..{} at offsets {}..{}",
                j - 1,
                offsets[start],
                offsets[j - 1]
            ));
            start = j;
        }
    }
    out.join(", ")
}

/// A sync Produce given up by its own timeout while its request is still on the wire must not
/// strand the partition: the next Produce goes through and nothing stays pending.
#[test]
fn a_produce_given_up_mid_request_leaves_its_partition_usable() {
    let b = Broker::mock(1);
    // Produce waits delivery.timeout.ms + 1 s at most; the broker will answer after 4 s.
    let c = client(
        &b,
        json!({"delivery.timeout.ms": 500, "request.timeout.ms": 20000}),
    );
    let t = topic(&b, &c, 1);
    runtime::block_on(c.produce(record(&t, 0))).unwrap();
    assert_eq!(
        b.command(json!({"cmd": "set_rtt", "broker": 1, "ms": 4000}))["ok"],
        true
    );
    let e = runtime::block_on(c.produce(record(&t, 1))).unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    b.command(json!({"cmd": "set_rtt", "broker": 1, "ms": 0}));
    let d = runtime::block_on(c.produce(record(&t, 2))).expect("the partition is not stuck");
    assert!(d.offset >= 1, "{d:?}");
    assert_eq!(
        runtime::block_on(c.flush(Duration::from_secs(10))).pending,
        0
    );
}
