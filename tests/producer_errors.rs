//! Producer failures through the 1C boundary: each gives a clear error within its timeout,
//! never a hang or a crash (issue 3), plus ProduceBatch's REST Proxy shapes.

mod host;
mod support;

use std::net::TcpListener;

use host::{quote, run_script, Platform};
use serde_json::{json, Value as Json};
use support::{Broker, KAFKA_3};

fn calls(script: &str) -> Vec<Json> {
    let run = run_script(Platform::Linux, script);
    run.assert_clean_memory();
    run.of("call").into_iter().cloned().collect()
}

fn error(c: &Json) -> &str {
    assert_eq!(c["ok"], false, "must fail: {c}");
    c["error"].as_str().unwrap()
}

/// Microseconds the call took, as the emulator measured it.
fn took_ms(c: &Json) -> f64 {
    c["us"].as_f64().unwrap() / 1000.0
}

#[test]
fn unreachable_and_silent_brokers_fail_within_their_timeouts() {
    // A port nobody listens on: refused at once.
    let refused =
        json!({"bootstrap.servers": "127.0.0.1:1", "socket.connection.setup.timeout.ms": 1000})
            .to_string();
    // A listener that never answers: the request times out.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_cfg = json!({"bootstrap.servers": silent.local_addr().unwrap().to_string(), "request.timeout.ms": 1500}).to_string();
    let c = calls(&format!(
        "new\ncall Connect {}\ncall Connect {}\nuilang ru\ncall Подключить {}\n",
        quote(&refused),
        quote(&silent_cfg),
        quote(&refused)
    ));
    let e = error(&c[0]);
    assert!(
        e.starts_with("Connect: no Kafka broker reachable at 127.0.0.1:1"),
        "{e}"
    );
    assert!(
        took_ms(&c[0]) < 10_000.0,
        "refused connection took {} ms",
        took_ms(&c[0])
    );
    let e = error(&c[1]);
    assert!(
        e.contains("did not finish within 1500 ms") || e.contains("no answer within"),
        "{e}"
    );
    assert!(
        took_ms(&c[1]) < 1500.0 + 10_000.0,
        "silent broker took {} ms",
        took_ms(&c[1])
    );
    assert!(
        error(&c[2]).starts_with("Подключить: брокер Kafka недоступен по адресу 127.0.0.1:1"),
        "{}",
        error(&c[2])
    );
}

#[test]
fn bad_settings_name_the_key_and_never_echo_secrets() {
    let c = calls(&format!(
        "new\ncall Connect {}\ncall Connect {}\ncall Connect {}\ncall Connect {}\nuilang ru\ncall Connect {}\n",
        quote("{bad json"),
        quote(r#"{"bootstrap.servers":"127.0.0.1:9","lingerr.ms":5}"#),
        quote(r#"{"bootstrap.servers":"127.0.0.1:9","acks":"maybe"}"#),
        quote(r#"{"bootstrap.servers":"127.0.0.1:9","sasl.password":"S3cr3t-Pa55"}"#),
        quote(r#"{"bootstrap.servers":"127.0.0.1:9","lingerr.ms":5}"#),
    ));
    assert!(
        error(&c[0])
            .starts_with("Connect: argument 1 (Settings) setting \"(settings)\": not valid JSON"),
        "{}",
        error(&c[0])
    );
    assert_eq!(
        error(&c[1]),
        "Connect: argument 1 (Settings) setting \"lingerr.ms\": unknown setting"
    );
    assert!(
        error(&c[2]).contains("\"acks\": must be all, -1, 0 or 1, got \"maybe\""),
        "{}",
        error(&c[2])
    );
    assert!(error(&c[3]).contains("sasl.password"), "{}", error(&c[3]));
    assert!(
        !error(&c[3]).contains("S3cr3t"),
        "secret leaked: {}",
        error(&c[3])
    );
    assert_eq!(
        error(&c[4]),
        "Подключить: аргумент 1 (Настройки) настройка \"lingerr.ms\": неизвестная настройка"
    );
}

fn broker_errors(b: &Broker) {
    let topic = support::unique("errors");
    let settings = json!({"bootstrap.servers": b.bootstrap(), "allow.auto.create.topics": false,
                          "max.block.ms": 1500, "message.max.bytes": 1000, "linger.ms": 0});
    b.create_topic(&topic, 2, |t, n| {
        let c = calls(&format!(
            "new\ncall Connect {}\ncall CreateTopic {} {n} 1\n",
            quote(&settings.to_string()),
            quote(t)
        ));
        assert_eq!(c[1]["ok"], true, "{}", c[1]);
    });
    let missing = support::unique("missing");
    let big = "x".repeat(5000);
    let c = calls(&format!(
        "new\ncall Connect {s}\ncall Produce {m} \"v\"\ncall Produce {t} {big}\ncall Produce {t} \"v\" undefined undefined 7\n\
         call Produce {t} \"ok\" \"k\"\ncall ProduceBatch {t} \"{{not json\"\ncall Close\ncall Produce {t} \"v\"\ncall Close\n",
        s = quote(&settings.to_string()),
        m = quote(&missing),
        t = quote(&topic),
        big = quote(&big),
    ));
    assert_eq!(c[0]["ok"], true, "{}", c[0]);
    let e = error(&c[1]);
    assert_eq!(e, format!("Produce: topic \"{missing}\" does not exist"));
    assert!(
        took_ms(&c[1]) < 1500.0 + 10_000.0,
        "unknown topic took {} ms",
        took_ms(&c[1])
    );
    assert!(
        error(&c[2]).contains("larger than message.max.bytes (1000)"),
        "{}",
        error(&c[2])
    );
    assert_eq!(
        error(&c[3]),
        format!("Produce: topic \"{topic}\" has no partition 7 (it has 2)")
    );
    assert_eq!(c[4]["ok"], true, "{}", c[4]);
    assert!(
        error(&c[5]).starts_with("ProduceBatch: argument 2 (RecordsJSON) is not valid JSON"),
        "{}",
        error(&c[5])
    );
    assert_eq!(c[6]["ok"], true, "Close");
    assert_eq!(
        error(&c[7]),
        "Produce: not connected: call Connect(Settings) first"
    );
    assert_eq!(c[8]["ok"], true, "a second Close is harmless");
}

#[test]
fn kafka_unknown_topic_oversized_bad_partition() {
    broker_errors(Broker::kafka());
}

#[test]
fn kafka_3_unknown_topic_oversized_bad_partition() {
    broker_errors(Broker::kafka_version(KAFKA_3));
}

/// Code written for Confluent's REST Proxy moves over: same request body, same response shape.
fn produce_batch_rest_proxy_shapes(b: &Broker) {
    let topic = support::unique("batch");
    let settings = json!({"bootstrap.servers": b.bootstrap()}).to_string();
    b.create_topic(&topic, 3, |t, n| {
        let c = calls(&format!(
            "new\ncall Connect {}\ncall CreateTopic {} {n} 1\n",
            quote(&settings),
            quote(t)
        ));
        assert_eq!(c[1]["ok"], true, "{}", c[1]);
    });
    let mut records: Vec<Json> = (0..1000)
        .map(|i| json!({"key": format!("k{i}"), "value": {"n": i, "name": "запись"}, "headers": [["h", "1"], ["h", "2"]]}))
        .collect();
    records.push(json!({"value": "to partition 2", "partition": 2}));
    records.push(json!({"value": "bad", "partition": 99}));
    let body = json!({"records": records}).to_string();
    let c = calls(&format!(
        "new\ncall Connect {}\ncall ОтправитьПакет {} {}\n",
        quote(&settings),
        quote(&topic),
        quote(&body)
    ));
    let resp: Json = serde_json::from_str(c[1]["ret"]["value"].as_str().unwrap()).unwrap();
    let offsets = resp["offsets"].as_array().unwrap();
    assert_eq!(offsets.len(), 1002);
    for o in &offsets[..1001] {
        assert!(
            o["error"].is_null() && o["offset"].as_i64().unwrap() >= 0,
            "{o}"
        );
    }
    assert_eq!(offsets[1000]["partition"], 2);
    assert!(
        offsets[1001]["error"]
            .as_str()
            .unwrap()
            .contains("no partition 99"),
        "{}",
        offsets[1001]
    );
    let got = support::peer(
        "consume.py",
        &[
            "--bootstrap",
            b.bootstrap(),
            "--topic",
            &topic,
            "--count",
            "1001",
            "--timeout",
            "60",
        ],
        "",
    );
    assert_eq!(got.len(), 1001);
}

#[test]
fn kafka_produce_batch_rest_proxy_shapes() {
    produce_batch_rest_proxy_shapes(Broker::kafka());
}

#[test]
fn kafka_3_produce_batch_rest_proxy_shapes() {
    produce_batch_rest_proxy_shapes(Broker::kafka_version(KAFKA_3));
}

/// Kafka refuses topic names outside ASCII letters, digits, '.', '_' and '-' - a likely first
/// try from 1C is a Russian name. Every call fails at once with Kafka's reason instead of
/// waiting out max.block.ms (60 s by default) or polling forever. (Tansu accepted such names.)
#[test]
fn kafka_refuses_a_cyrillic_topic_name_at_once() {
    let b = Broker::kafka();
    let settings = json!({"bootstrap.servers": b.bootstrap(), "group.id": support::unique("g")});
    let c = calls(&format!(
        "new\ncall Connect {}\ncall CreateTopic \"заказы\" 1 1\ncall Produce \"заказы\" \"v\"\n\
         call ProduceAsync \"заказы\" \"v\"\ncall Flush 10000\ncall Subscribe \"заказы\"\n",
        quote(&settings.to_string())
    ));
    let e = error(&c[1]);
    assert!(
        e.contains("INVALID_TOPIC_EXCEPTION") && e.contains("ASCII"),
        "{e}"
    );
    let e = error(&c[2]);
    assert!(
        e.contains("INVALID_TOPIC_EXCEPTION") && e.contains("заказы"),
        "{e}"
    );
    assert!(
        took_ms(&c[2]) < 10_000.0,
        "Produce took {} ms",
        took_ms(&c[2])
    );
    let flush: Json = serde_json::from_str(c[4]["ret"]["value"].as_str().unwrap()).unwrap();
    let report = &flush["reports"][0];
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("INVALID_TOPIC_EXCEPTION"),
        "{flush}"
    );
    assert!(
        took_ms(&c[4]) < 10_000.0,
        "Flush took {} ms",
        took_ms(&c[4])
    );
    let e = error(&c[5]);
    assert!(
        e.contains("INVALID_TOPIC_EXCEPTION") && e.contains("заказы"),
        "{e}"
    );
}
