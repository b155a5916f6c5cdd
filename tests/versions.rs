//! API versions against real brokers: every request our client sends in a full workload
//! (admin, idempotent and plain produce, a group consumer with commits and seeks) uses the
//! highest version both sides support, and none that Kafka 4 removed (KIP-896). Seen from the
//! broker's side: Kafka 3.9.1 still accepts the removed versions, and its request log shows
//! which versions actually arrived.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka1c::kafka::connection::Connection;
use kafka1c::kafka::consumer::{Consumer, SeekTo};
use kafka1c::kafka::{runtime, versions, Client, Config, Record};
use kafka_protocol::messages::ApiVersionsRequest;
use kafka_protocol::protocol::StrBytes;
use serde_json::{json, Value as Json};
use support::{Broker, KafkaSpec, KAFKA, KAFKA_3};

/// The (min, max) version per API key a broker advertises.
fn advertised(b: &Broker) -> HashMap<i16, (i16, i16)> {
    let addr = b.bootstrap().split(',').next().unwrap();
    let conn = runtime::block_on(Connection::connect(
        addr,
        "versions-test",
        None,
        Duration::from_secs(10),
        Duration::from_secs(10),
    ))
    .unwrap();
    let req = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("kafka1c-tests"))
        .with_client_software_version(StrBytes::from_static_str("1"));
    let resp = runtime::block_on(conn.send(&req)).unwrap();
    assert_eq!(resp.error_code, 0);
    conn.close();
    resp.api_keys
        .iter()
        .map(|k| (k.api_key, (k.min_version, k.max_version)))
        .collect()
}

/// Everything our client does, as client `client_id`.
fn workload(b: &Broker, client_id: &str) {
    let connect = |extra: Json| {
        let mut s = json!({"bootstrap.servers": b.bootstrap(), "client.id": client_id,
                           "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                           "auto.offset.reset": "earliest"});
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        runtime::block_on(Client::connect(Config::from_json(&s.to_string()).unwrap())).unwrap()
    };
    let c = connect(json!({"acks": "all"}));
    let topic = support::unique("versions");
    runtime::block_on(c.create_topic(&topic, 2, 1, &[])).unwrap();
    let record = |i: usize| Record {
        topic: topic.clone(),
        key: Some(Bytes::from(format!("k{i}"))),
        value: Some(Bytes::from(format!("v{i}"))),
        ..Default::default()
    };
    for i in 0..20 {
        c.produce_async(record(i)).unwrap();
    }
    assert_eq!(
        runtime::block_on(c.flush(Duration::from_secs(30))).pending,
        0
    );
    for acks in ["1", "0"] {
        let p = connect(json!({"acks": acks, "compression.type": "gzip"}));
        runtime::block_on(p.produce(record(100))).unwrap();
        runtime::block_on(p.close(Duration::from_secs(5)));
    }
    let m = runtime::block_on(Consumer::subscribe(
        Arc::clone(c.cluster()),
        vec![topic.clone()],
        support::unique("g"),
    ))
    .unwrap();
    let mut got = 0;
    for _ in 0..100 {
        got += runtime::block_on(m.poll_batch(100, Duration::from_millis(200)))
            .unwrap()
            .len();
        if got >= 21 {
            break;
        }
    }
    assert!(got >= 21, "{got}");
    // Long enough for heartbeats.
    std::thread::sleep(Duration::from_millis(1500));
    runtime::block_on(m.poll(Duration::from_millis(100))).unwrap();
    runtime::block_on(m.commit()).unwrap();
    runtime::block_on(m.seek(&topic, 0, SeekTo::End)).unwrap();
    runtime::block_on(m.seek(&topic, 1, SeekTo::Timestamp(1))).unwrap();
    runtime::block_on(m.close()).unwrap();
    runtime::block_on(c.list_topics()).unwrap();
    runtime::block_on(c.delete_topic(&topic)).unwrap();
    runtime::block_on(c.close(Duration::from_secs(5)));
}

/// (API key, version) of every request from `client_id` in the broker's request log.
fn requests_seen(b: &Broker, client_id: &str) -> BTreeMap<i16, BTreeSet<i16>> {
    let log = std::fs::read_to_string(b.node_log(1)).unwrap();
    let mut seen: BTreeMap<i16, BTreeSet<i16>> = BTreeMap::new();
    for line in log.lines().filter(|l| l.contains("Completed request:")) {
        let json_start = line.find("Completed request:").unwrap() + "Completed request:".len();
        let Ok(entry) = serde_json::Deserializer::from_str(&line[json_start..])
            .into_iter::<Json>()
            .next()
            .unwrap_or(Ok(Json::Null))
        else {
            continue;
        };
        let header = &entry["requestHeader"];
        if header["clientId"] == client_id {
            let key = header["requestApiKey"].as_i64().unwrap() as i16;
            let version = header["requestApiVersion"].as_i64().unwrap() as i16;
            seen.entry(key).or_default().insert(version);
        }
    }
    seen
}

#[test]
fn every_request_uses_the_best_common_version_and_none_kafka_4_removed() {
    let old = KafkaSpec::new(KAFKA_3).request_log().start();
    let client_id = support::unique("kip896");
    workload(&old, &client_id);
    // The request log is written as requests complete; the last ones may lag a little.
    std::thread::sleep(Duration::from_millis(500));
    let seen = requests_seen(&old, &client_id);
    let old_ranges = advertised(&old);
    let new_ranges = advertised(Broker::kafka());
    let mut report = Vec::new();
    for (key, sent) in &seen {
        let name = versions::api_name(*key);
        let chosen = versions::choose(*key, old_ranges.get(key).copied())
            .unwrap_or_else(|e| panic!("{name}: no common version with {KAFKA_3}: {e:?}"));
        // ApiVersions goes out at v3 first (the version that tells the client software).
        let expected: BTreeSet<i16> = if name == "ApiVersions" {
            [3].into()
        } else {
            [chosen].into()
        };
        assert_eq!(*sent, expected, "{name}: versions sent to {KAFKA_3}");
        let (min4, max4) = new_ranges[key];
        for v in sent {
            assert!(
                (min4..=max4).contains(v),
                "{name} v{v} was sent to {KAFKA_3}, but Kafka {KAFKA} serves only v{min4}..v{max4}"
            );
        }
        report.push(format!("{name} v{sent:?} (4.4: v{min4}..v{max4})"));
    }
    eprintln!("requests sent to {KAFKA_3}: {}", report.join(", "));
    let names: BTreeSet<String> = seen.keys().map(|k| versions::api_name(*k)).collect();
    for api in [
        "Produce",
        "Fetch",
        "ListOffsets",
        "Metadata",
        "OffsetCommit",
        "OffsetFetch",
        "FindCoordinator",
        "JoinGroup",
        "Heartbeat",
        "LeaveGroup",
        "SyncGroup",
        "ApiVersions",
        "CreateTopics",
        "DeleteTopics",
        "InitProducerId",
    ] {
        assert!(names.contains(api), "the workload sent no {api}: {names:?}");
    }
    // Every API we speak has a common version with both brokers.
    for key in 0..100i16 {
        if versions::supported(key).is_some() {
            for (v, ranges) in [(KAFKA_3, &old_ranges), (KAFKA, &new_ranges)] {
                let chosen = versions::choose(key, ranges.get(&key).copied());
                assert!(
                    chosen.is_ok(),
                    "{} on {v}: {chosen:?}",
                    versions::api_name(key)
                );
            }
        }
    }
}
