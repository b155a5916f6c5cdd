//! Producing through the 1C boundary (the host emulator) to Apache Kafka 4.4.0 and 3.9.1, read
//! back by librdkafka and kafka-python (issue 3).

mod host;
mod support;

use std::collections::{HashMap, HashSet};

use host::{hex, quote, run_script, Platform};
use serde_json::{json, Value as Json};
use support::{b64, peer, Broker, KAFKA_3};

const HEADERS: &str = r#"[["h","1"],["h","значение"],["имя","v"],["n",null]]"#;

fn value_for(i: usize) -> Vec<u8> {
    // Binary on purpose: bytes that are not UTF-8 must arrive unchanged.
    (0..(i % 50 + 1))
        .map(|k| ((i * 31 + k * 7) % 256) as u8)
        .collect()
}

fn settings(b: &Broker) -> String {
    json!({"bootstrap.servers": b.bootstrap(), "linger.ms": 5, "client.id": "kafka1c-test"})
        .to_string()
}

/// Creates a topic through the emulator.
fn create_topic(p: Platform, b: &Broker, topic: &str, partitions: i32) {
    b.create_topic(topic, partitions, |t, n| {
        let run = run_script(
            p,
            &format!(
                "new\ncall Connect {}\ncall CreateTopic {} {n} 1\n",
                quote(&settings(b)),
                quote(t)
            ),
        );
        run.assert_clean_memory();
        assert_eq!(run.of("call")[1]["ok"], true, "{:?}", run.lines);
    });
}

struct Consumed {
    partition: i64,
    offset: i64,
    key: Vec<u8>,
    value: Vec<u8>,
    headers: Json,
}

fn consume(client: &str, b: &Broker, topic: &str, count: usize) -> HashMap<String, Consumed> {
    let lines = peer(
        "consume.py",
        &[
            "--client",
            client,
            "--bootstrap",
            b.bootstrap(),
            "--topic",
            topic,
            "--count",
            &count.to_string(),
            "--timeout",
            "120",
        ],
        "",
    );
    assert_eq!(
        lines.len(),
        count,
        "{client} read {} of {count}",
        lines.len()
    );
    lines
        .into_iter()
        .map(|l| {
            let key = support::unb64(l["key_b64"].as_str().unwrap());
            (
                String::from_utf8(key.clone()).unwrap(),
                Consumed {
                    partition: l["partition"].as_i64().unwrap(),
                    offset: l["offset"].as_i64().unwrap(),
                    key,
                    value: support::unb64(l["value_b64"].as_str().unwrap()),
                    headers: l["headers"].clone(),
                },
            )
        })
        .collect()
}

fn expected_headers() -> Json {
    json!([
        ["h", b64(b"1")],
        ["h", b64("значение".as_bytes())],
        ["имя", b64(b"v")],
        ["n", null]
    ])
}

/// `n_async` async records + sync ones with keys, headers and binary values; checks every byte,
/// every delivery report, sync offsets and murmur2 partitions against librdkafka's.
fn produce_and_read_back(b: &Broker, n_async: usize) {
    const SYNC: usize = 50;
    const PARTITIONS: i32 = 6;
    let p = Platform::Linux;
    let topic = support::unique("produce");
    create_topic(p, b, &topic, PARTITIONS);

    let mut script = format!("new\ncall Connect {}\n", quote(&settings(b)));
    for i in 0..n_async {
        script.push_str(&format!(
            "call ProduceAsync {} {} {} {}\n",
            quote(&topic),
            hex(&value_for(i)),
            quote(&format!("key-{i}")),
            quote(HEADERS)
        ));
    }
    script.push_str("call Flush 60000\n");
    for i in n_async..n_async + SYNC {
        script.push_str(&format!(
            "call Отправить {} {} {} {}\n",
            quote(&topic),
            hex(&value_for(i)),
            quote(&format!("key-{i}")),
            quote(HEADERS)
        ));
    }
    script.push_str("call Flush 1000\ncall Close\n");
    let run = run_script(p, &script);
    run.assert_clean_memory();
    let calls = run.of("call");
    for c in &calls {
        assert_eq!(c["ok"], true, "{c}");
    }

    // Every async id reported exactly once, with an offset; nothing left pending.
    let flush: Json =
        serde_json::from_str(calls[n_async + 1]["ret"]["value"].as_str().unwrap()).unwrap();
    assert_eq!(flush["pending"], 0);
    let reports = flush["reports"].as_array().unwrap();
    assert_eq!(reports.len(), n_async);
    let ids: HashSet<i64> = reports.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), n_async, "every delivery id exactly once");
    let async_ids: Vec<i64> = calls[1..=n_async]
        .iter()
        .map(|c| c["ret"]["value"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, async_ids.iter().copied().collect::<HashSet<_>>());
    let second_flush: Json =
        serde_json::from_str(calls[n_async + 2 + SYNC]["ret"]["value"].as_str().unwrap()).unwrap();
    assert_eq!(
        second_flush["reports"].as_array().unwrap().len(),
        0,
        "no report repeated"
    );
    let id_to_index: HashMap<i64, usize> = async_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i))
        .collect();
    let mut reported: HashMap<usize, (i64, i64)> = HashMap::new();
    for r in reports {
        assert!(r.get("error").is_none(), "{r}");
        let i = id_to_index[&r["id"].as_i64().unwrap()];
        reported.insert(
            i,
            (
                r["partition"].as_i64().unwrap(),
                r["offset"].as_i64().unwrap(),
            ),
        );
    }
    let sync_offsets: Vec<i64> = calls[n_async + 2..n_async + 2 + SYNC]
        .iter()
        .map(|c| c["ret"]["value"].as_i64().unwrap())
        .collect();

    let total = n_async + SYNC;
    for client in ["rdkafka", "kafka-python"] {
        let got = consume(client, b, &topic, total);
        for i in 0..total {
            let key = format!("key-{i}");
            let m = got
                .get(&key)
                .unwrap_or_else(|| panic!("{client}: {key} missing"));
            assert_eq!(m.key, key.as_bytes());
            assert_eq!(m.value, value_for(i), "{client}: value of {key}");
            assert_eq!(m.headers, expected_headers(), "{client}: headers of {key}");
            if i < n_async {
                assert_eq!(
                    reported[&i],
                    (m.partition, m.offset),
                    "{client}: report of {key}"
                );
            } else {
                assert_eq!(
                    sync_offsets[i - n_async],
                    m.offset,
                    "{client}: sync offset of {key}"
                );
            }
        }
    }

    // Same keys, same partitions as librdkafka's murmur2_random.
    let check_topic = support::unique("partitions");
    create_topic(p, b, &check_topic, PARTITIONS);
    let keys: String = (0..total)
        .step_by(7)
        .map(|i| b64(format!("key-{i}").as_bytes()) + "\n")
        .collect();
    let rd = peer(
        "partitions.py",
        &["--bootstrap", b.bootstrap(), "--topic", &check_topic],
        &keys,
    );
    let got = consume("rdkafka", b, &topic, total);
    for l in rd {
        let key = String::from_utf8(support::unb64(l["key_b64"].as_str().unwrap())).unwrap();
        assert_eq!(
            got[&key].partition,
            l["partition"].as_i64().unwrap(),
            "partition of {key}"
        );
    }
}

#[test]
fn kafka_produce_10000_read_back_by_librdkafka_and_kafka_python() {
    produce_and_read_back(Broker::kafka(), 10_000);
}

#[test]
fn kafka_3_produce_10000_read_back_by_librdkafka_and_kafka_python() {
    produce_and_read_back(Broker::kafka_version(KAFKA_3), 10_000);
}

/// Tansu stays as a second, fast broker: a smoke run.
#[test]
fn tansu_smoke_produce_1000_read_back_by_librdkafka_and_kafka_python() {
    produce_and_read_back(&Broker::tansu(), 1_000);
}

/// A cross-built library (a Windows DLL under Wine, the aarch64 .so under qemu-user), run by the
/// emulator built for the same platform, produces to the same kind of broker and the records are
/// read back by librdkafka.
fn cross_built_produce(p: Platform) {
    host::require_platform(p);
    const N: usize = 300;
    let b = Broker::kafka();
    let topic = support::unique("wine");
    create_topic(Platform::Linux, b, &topic, 3);
    let mut script = format!("new\ncall Connect {}\n", quote(&settings(b)));
    for i in 0..N {
        let method = if i % 2 == 0 {
            "ProduceAsync"
        } else {
            "Produce"
        };
        script.push_str(&format!(
            "call {method} {} {} {} {}\n",
            quote(&topic),
            hex(&value_for(i)),
            quote(&format!("key-{i}")),
            quote(HEADERS)
        ));
    }
    script.push_str("call Flush 30000\ncall Close\n");
    let run = run_script(p, &script);
    run.assert_clean_memory();
    for c in run.of("call") {
        assert_eq!(c["ok"], true, "{c}");
    }
    let got = consume("rdkafka", b, &topic, N);
    for i in 0..N {
        let m = &got[&format!("key-{i}")];
        assert_eq!(m.value, value_for(i));
        assert_eq!(m.headers, expected_headers());
    }
}

#[test]
fn win64_dll_under_wine_produces_to_kafka() {
    cross_built_produce(Platform::Win64);
}

#[test]
fn win32_dll_under_wine_produces_to_kafka() {
    cross_built_produce(Platform::Win32);
}

#[test]
fn linux_arm64_under_qemu_produces_to_kafka() {
    cross_built_produce(Platform::LinuxArm64);
}
