//! The Java client (kafka-clients 4.4.0) as the reference, through the 1C host emulator on
//! Apache Kafka 4.4.0: keyed partitioning, records byte for byte in both directions, and
//! read_committed over the Java client's transactions.

mod host;
mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use host::{hex, quote, run_script, Interactive, Platform};
use kafka1c::kafka::{runtime, Client, Config};
use serde_json::{json, Value as Json};
use support::{b64, java_peer, unb64, Broker, KAFKA};

fn topic(b: &Broker, prefix: &str, partitions: i32) -> String {
    let admin = runtime::block_on(Client::connect(
        Config::from_bootstrap(b.bootstrap()).unwrap(),
    ))
    .unwrap();
    let t = support::unique(prefix);
    runtime::block_on(admin.create_topic(&t, partitions, 1, &[])).unwrap();
    t
}

fn settings(b: &Broker) -> String {
    json!({"bootstrap.servers": b.bootstrap(), "linger.ms": 5}).to_string()
}

/// Keys of three kinds: ASCII, Cyrillic, and binary that is not UTF-8.
fn key(i: usize) -> Vec<u8> {
    match i % 3 {
        0 => format!("key-{i}").into_bytes(),
        1 => format!("ключ-{i}-Ёё").into_bytes(),
        _ => {
            let mut k = (i as u32).to_le_bytes().to_vec();
            k.extend_from_slice(&[0x00, 0xff, 0x80, (i % 251) as u8]);
            k
        }
    }
}

/// A key as an emulator argument: a String when it is UTF-8 text, else BinaryData.
fn key_arg(k: &[u8]) -> String {
    match std::str::from_utf8(k) {
        Ok(s) => quote(s),
        Err(_) => hex(k),
    }
}

/// 10,000 keys land in the partition the Java producer's default partitioner picks for the
/// same key and partition count.
#[test]
fn keyed_records_land_where_the_java_producer_puts_them() {
    const N: usize = 10_000;
    const PARTITIONS: i32 = 7;
    let b = Broker::kafka();
    let (ours, theirs) = (
        topic(b, "part-ours", PARTITIONS),
        topic(b, "part-java", PARTITIONS),
    );
    let mut script = format!("new\ncall Connect {}\n", quote(&settings(b)));
    for i in 0..N {
        script.push_str(&format!(
            "call ProduceAsync {} \"v\" {}\n",
            quote(&ours),
            key_arg(&key(i))
        ));
    }
    script.push_str("call Flush 60000\ncall Close\n");
    let run = run_script(Platform::Linux, &script);
    run.assert_clean_memory();
    let calls = run.of("call");
    let ids: Vec<i64> = calls[1..=N]
        .iter()
        .map(|c| c["ret"]["value"].as_i64().unwrap())
        .collect();
    let flush: Json = serde_json::from_str(calls[N + 1]["ret"]["value"].as_str().unwrap()).unwrap();
    let partition_of: std::collections::HashMap<i64, i64> = flush["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_i64().unwrap(), r["partition"].as_i64().unwrap()))
        .collect();
    assert_eq!(partition_of.len(), N, "a report for every record");

    let input: String = (0..N)
        .map(|i| json!({"key_b64": b64(&key(i)), "value_b64": b64(b"v")}).to_string() + "\n")
        .collect();
    let java = java_peer(
        KAFKA,
        "produce",
        &["--bootstrap", b.bootstrap(), "--topic", &theirs],
        &input,
    );
    assert_eq!(java.len(), N);
    let mut used = std::collections::BTreeSet::new();
    for (i, j) in java.iter().enumerate() {
        let p = j["partition"].as_i64().unwrap_or_else(|| panic!("{j}"));
        used.insert(p);
        assert_eq!(
            partition_of[&ids[i]],
            p,
            "key {:?} ({})",
            String::from_utf8_lossy(&key(i)),
            b64(&key(i))
        );
    }
    assert_eq!(
        used.len(),
        PARTITIONS as usize,
        "keys spread over every partition"
    );
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// What we produce, as (key, value, headers as [name, value] JSON, header bytes for Java).
struct Sent {
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    headers: &'static str,
    expect_headers: Json,
}

fn our_records() -> Vec<Sent> {
    let h = |v: &[u8]| json!(b64(v));
    vec![
        Sent {
            key: Some(b"plain".to_vec()),
            value: b"ascii value".to_vec(),
            headers: r#"[["h","1"],["h","2"],["имя","значение"],["n",null],["h","1"]]"#,
            expect_headers: json!([
                ["h", h(b"1")],
                ["h", h(b"2")],
                ["имя", h("значение".as_bytes())],
                ["n", null],
                ["h", h(b"1")]
            ]),
        },
        Sent {
            key: Some("ключ Ёё".as_bytes().to_vec()),
            value: "Заказ №1 на 100 руб.".as_bytes().to_vec(),
            headers: r#"{"источник":"1С","z":"last","a":"first"}"#,
            expect_headers: json!([
                ["источник", h("1С".as_bytes())],
                ["z", h(b"last")],
                ["a", h(b"first")]
            ]),
        },
        Sent {
            key: Some(vec![0x00, 0xff, 0xfe, 0x80, 0x00]),
            value: (0..=255u8).collect(),
            headers: "[]",
            expect_headers: json!([]),
        },
        Sent {
            key: None,
            value: Vec::new(),
            headers: r#"[["пусто",""],["число",12345678901234]]"#,
            expect_headers: json!([["пусто", h(b"")], ["число", h(b"12345678901234")]]),
        },
    ]
}

/// Records we produce read back in Java byte for byte: key, value, headers in order with
/// duplicates, and the producer's CreateTime.
#[test]
fn our_records_read_back_byte_for_byte_in_java() {
    let b = Broker::kafka();
    let t = topic(b, "bytes-ours", 1);
    let records = our_records();
    let mut script = format!("new\ncall Connect {}\n", quote(&settings(b)));
    for r in &records {
        let value = match std::str::from_utf8(&r.value) {
            Ok(s) => quote(s),
            Err(_) => hex(&r.value),
        };
        let key = r.key.as_deref().map_or("undefined".to_string(), key_arg);
        script.push_str(&format!(
            "call Produce {} {value} {key} {}\n",
            quote(&t),
            quote(r.headers)
        ));
    }
    let before = now_ms();
    let run = run_script(Platform::Linux, &script);
    let after = now_ms();
    run.assert_clean_memory();
    for c in run.of("call") {
        assert_eq!(c["ok"], true, "{c}");
    }
    let got = java_peer(
        KAFKA,
        "consume",
        &[
            "--bootstrap",
            b.bootstrap(),
            "--topic",
            &t,
            "--count",
            &records.len().to_string(),
        ],
        "",
    );
    for (i, (r, j)) in records.iter().zip(&got).enumerate() {
        assert_eq!(j["offset"], i, "{j}");
        assert_eq!(j["key_b64"], json!(r.key.as_deref().map(b64)), "key {i}");
        assert_eq!(j["value_b64"], json!(b64(&r.value)), "value {i}");
        assert_eq!(j["headers"], r.expect_headers, "headers {i}");
        assert_eq!(j["timestamp_type"], "CreateTime");
        let ts = j["timestamp"].as_i64().unwrap();
        assert!(
            (before..=after).contains(&ts),
            "timestamp {ts} not in {before}..{after}"
        );
    }
}

/// Records the Java producer writes, with explicit timestamps, null and binary values and
/// binary header values, read through 1C: every byte and the timestamp as sent.
#[test]
fn java_records_read_back_byte_for_byte_in_1c() {
    let b = Broker::kafka();
    let t = topic(b, "bytes-java", 1);
    let t0 = 1_700_000_000_123i64;
    let sent = [
        json!({"key_b64": b64("ключ".as_bytes()), "value_b64": b64("значение".as_bytes()), "timestamp": t0,
               "headers": [["h", b64(b"1")], ["h", b64(b"1")], ["имя", b64("знач".as_bytes())]]}),
        json!({"key_b64": b64(&[0, 0xff, 0x10]), "value_b64": b64(&[0x41, 0xff, 0x42]), "timestamp": t0 + 1,
               "headers": [["bin", b64(&[0xff, 0x00, 0xfe])], ["null", null]]}),
        json!({"key_b64": null, "value_b64": b64(b""), "timestamp": t0 + 2, "headers": []}),
        json!({"key_b64": b64(b"k"), "value_b64": null, "timestamp": 0, "headers": []}),
    ];
    let input: String = sent.iter().map(|s| s.to_string() + "\n").collect();
    let out = java_peer(
        KAFKA,
        "produce",
        &["--bootstrap", b.bootstrap(), "--topic", &t],
        &input,
    );
    assert!(out.iter().all(|o| o["error"].is_null()), "{out:?}");

    let mut m = Interactive::start(Platform::Linux);
    m.ok("new");
    let s = json!({"bootstrap.servers": b.bootstrap(), "group.id": support::unique("g"),
                   "auto.offset.reset": "earliest"});
    m.ok(&format!("call Connect {}", quote(&s.to_string())));
    m.ok(&format!("call Subscribe {}", quote(&t)));
    let props = [
        "Offset",
        "Key",
        "KeyBinary",
        "Value",
        "ValueBinary",
        "Headers",
        "TimestampMs",
    ];
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < sent.len() {
        assert!(
            Instant::now() < deadline,
            "{} of {} arrived",
            got.len(),
            sent.len()
        );
        if m.ok("call Poll 500")["ret"]["value"] == true {
            let one: Vec<Json> = props
                .iter()
                .map(|p| m.ok(&format!("get {p}"))["value"].clone())
                .collect();
            got.push(one);
        }
    }
    m.ok("call Close");
    assert_eq!(m.finish().1, 0);
    let bin = |j: &Json| {
        j["hex"].as_str().map(|h| {
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect::<Vec<u8>>()
        })
    };
    for (i, (s, g)) in sent.iter().zip(&got).enumerate() {
        assert_eq!(g[0]["value"], i, "offset");
        let want_key = s["key_b64"].as_str().map(unb64);
        assert_eq!(bin(&g[2]), want_key, "key {i}: {:?}", g[2]);
        let want_value = s["value_b64"].as_str().map(unb64);
        assert_eq!(bin(&g[4]), want_value, "value {i}: {:?}", g[4]);
        if want_key.is_none() {
            assert_eq!(
                g[1]["type"], "Undefined",
                "a null key is Undefined: {:?}",
                g[1]
            );
        }
        if want_value.is_none() {
            assert_eq!(
                g[3]["type"], "Undefined",
                "a null value is Undefined: {:?}",
                g[3]
            );
        }
        assert_eq!(g[6]["value"], s["timestamp"], "timestamp {i}");
    }
    let headers =
        |i: usize| -> Json { serde_json::from_str(got[i][5]["value"].as_str().unwrap()).unwrap() };
    assert_eq!(headers(0), json!([["h", "1"], ["h", "1"], ["имя", "знач"]]));
    assert_eq!(
        headers(1),
        json!([["bin", {"base64": b64(&[0xff, 0x00, 0xfe])}], ["null", null]])
    );
    assert_eq!(headers(2), json!([]));
    assert_eq!(got[0][1]["value"], "ключ");
    assert_eq!(got[0][3]["value"], "значение");
}

/// The Java client's transactions: with isolation.level=read_committed 1C receives only the
/// committed ones, in order, and never an aborted record or a transaction marker; with the
/// default read_uncommitted it receives the aborted records too.
#[test]
fn read_committed_skips_the_java_clients_aborted_transactions() {
    let b = Broker::kafka();
    let t = topic(b, "txn", 1);
    let txn = |from: usize, to: usize, end: &str| {
        let input: String = (from..to)
            .map(|i| json!({"value_b64": b64(format!("{end}-{i}").as_bytes())}).to_string() + "\n")
            .collect();
        let id = format!("transactional.id={}", support::unique("tx"));
        let out = java_peer(
            KAFKA,
            "produce",
            &[
                "--bootstrap",
                b.bootstrap(),
                "--topic",
                &t,
                "--transaction",
                end,
                "--prop",
                &id,
            ],
            &input,
        );
        assert!(out.iter().all(|o| o["error"].is_null()), "{out:?}");
    };
    txn(0, 50, "commit");
    txn(50, 80, "abort");
    txn(80, 100, "commit");
    txn(100, 110, "abort");
    let read = |isolation: &str, want: usize| -> Vec<String> {
        let mut m = Interactive::start(Platform::Linux);
        m.ok("new");
        let s = json!({"bootstrap.servers": b.bootstrap(), "group.id": support::unique("g"),
                       "auto.offset.reset": "earliest", "isolation.level": isolation});
        m.ok(&format!("call Connect {}", quote(&s.to_string())));
        m.ok(&format!("call Subscribe {}", quote(&t)));
        let mut values = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        // Past `want`, a little longer: nothing more may come.
        let mut quiet_until = None;
        loop {
            let r = m.ok("call PollBatch 1000 300");
            let batch: Json = serde_json::from_str(r["ret"]["value"].as_str().unwrap()).unwrap();
            values.extend(
                batch
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["value"].as_str().unwrap().to_string()),
            );
            if values.len() >= want {
                let until = *quiet_until.get_or_insert(Instant::now() + Duration::from_secs(2));
                if Instant::now() > until {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{isolation}: {} of {want}",
                values.len()
            );
        }
        m.ok("call Close");
        assert_eq!(m.finish().1, 0);
        values
    };
    let committed = read("read_committed", 70);
    let want: Vec<String> = (0..50)
        .chain(80..100)
        .map(|i| format!("commit-{i}"))
        .collect();
    assert_eq!(committed, want);
    let all = read("read_uncommitted", 110);
    assert_eq!(all.len(), 110, "read_uncommitted sees aborted records too");
    assert_eq!(all.iter().filter(|v| v.starts_with("abort")).count(), 40);
}
