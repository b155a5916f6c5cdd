//! The JSON answers of PollBatch and Flush, serialized straight into text.

use bytes::Bytes;
use serde::Serialize;

use super::json::{to_text, JsonBytes, JsonHeaders};
use crate::kafka::consumer::ConsumedRecord;
use crate::kafka::Reports;

/// PollBatch's answer: `[{"topic","partition","offset","key","value","headers","timestamp"}]`,
/// key and value as text when UTF-8, else `{"base64": "..."}`. Written by hand like Flush's:
/// a batch of a thousand small records spent more in serde's per-byte escaping than in Kafka.
pub fn poll_batch_json(records: &[ConsumedRecord]) -> String {
    let size: usize = records
        .iter()
        .map(|r| 96 + r.key.as_ref().map_or(0, Bytes::len) + r.value.as_ref().map_or(0, Bytes::len))
        .sum();
    let mut out = String::with_capacity(size + 2);
    out.push('[');
    let mut numbers = itoa::Buffer::new();
    let mut quoted = QuotedTopic::default();
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"topic\":");
        out.push_str(quoted.of(&r.topic));
        out.push_str(",\"partition\":");
        out.push_str(numbers.format(r.partition));
        out.push_str(",\"offset\":");
        out.push_str(numbers.format(r.offset));
        out.push_str(",\"key\":");
        push_json_bytes(&mut out, r.key.as_deref());
        out.push_str(",\"value\":");
        push_json_bytes(&mut out, r.value.as_deref());
        out.push_str(",\"headers\":");
        if r.headers.is_empty() {
            out.push_str("[]");
        } else {
            out.push_str(&to_text(&JsonHeaders(&r.headers)));
        }
        out.push_str(",\"timestamp\":");
        out.push_str(numbers.format(r.timestamp_ms));
        out.push('}');
    }
    out.push(']');
    out
}

/// A topic's name as a JSON string, made again only when the topic changes: records and
/// reports come in runs of one topic.
#[derive(Default)]
struct QuotedTopic<'a> {
    topic: Option<&'a str>,
    text: String,
}

impl<'a> QuotedTopic<'a> {
    fn of(&mut self, topic: &'a str) -> &str {
        // By address: records of one fetch share one name, and comparing text per record showed
        // in profiles. Another copy of the same name is only quoted again.
        if !self.topic.is_some_and(|t| std::ptr::eq(t, topic)) {
            self.text.clear();
            push_json_str(&mut self.text, topic);
            self.topic = Some(topic);
        }
        &self.text
    }
}

/// `s` as a JSON string. Most text needs no escapes: checked in one branch-free pass, so it is
/// copied whole; the rest goes through serde_json.
fn push_json_str(out: &mut String, s: &str) {
    let plain = s
        .bytes()
        .fold(true, |ok, b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'));
    if plain {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&to_text(&s));
    }
}

/// Bytes as JsonBytes writes them: a string when UTF-8, else `{"base64": "..."}`; null for none.
fn push_json_bytes(out: &mut String, bytes: Option<&[u8]>) {
    match bytes.map(std::str::from_utf8) {
        None => out.push_str("null"),
        Some(Ok(text)) => push_json_str(out, text),
        Some(Err(_)) => out.push_str(&to_text(&JsonBytes(bytes.unwrap_or_default()))),
    }
}

/// A failed delivery in Flush's JSON.
#[derive(Serialize)]
struct FailedOut<'a> {
    id: u64,
    topic: &'a str,
    partition: i32,
    error: String,
    error_code: Option<i16>,
}

/// Flush's answer: `{"reports":[{"id","topic","partition","offset"} | {..,"error",
/// "error_code"}],"pending":N}`. Delivered reports are written by hand: a Flush after a
/// million ProduceAsync calls returns a million of them, and going through serde cost more
/// than producing them.
pub fn flush_json(reports: &Reports, pending: usize) -> String {
    let mut out = String::with_capacity(32 + reports.len() * 64);
    out.push_str("{\"reports\":[");
    let mut numbers = itoa::Buffer::new();
    let mut quoted = QuotedTopic::default();
    for (i, r) in reports.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match &r.result {
            Ok(d) => {
                out.push_str("{\"id\":");
                out.push_str(numbers.format(r.id));
                out.push_str(",\"topic\":");
                out.push_str(quoted.of(&r.topic));
                out.push_str(",\"partition\":");
                out.push_str(numbers.format(d.partition));
                out.push_str(",\"offset\":");
                out.push_str(numbers.format(d.offset));
                out.push('}');
            }
            Err(e) => {
                let failed = FailedOut {
                    id: r.id,
                    topic: &r.topic,
                    partition: r.partition,
                    error: e.to_string(),
                    error_code: e.code(),
                };
                out.push_str(&serde_json::to_string(&failed).unwrap_or_default());
            }
        }
    }
    out.push_str("],\"pending\":");
    out.push_str(numbers.format(pending));
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::{Delivered, DeliveryReport, Error};
    use std::sync::Arc;

    fn delivered(id: u64, topic: &str, offset: i64) -> DeliveryReport {
        let topic: Arc<str> = Arc::from(topic);
        DeliveryReport {
            id,
            topic: topic.clone(),
            partition: 2,
            result: Ok(Delivered {
                topic,
                partition: 2,
                offset,
                timestamp_ms: 0,
            }),
        }
    }

    #[test]
    fn flush_json_is_valid_and_keeps_every_report() {
        let failed = DeliveryReport {
            id: 3,
            topic: Arc::from("t"),
            partition: 0,
            result: Err(Error::UnknownTopic { topic: "t".into() }),
        };
        let error = failed.result.as_ref().unwrap_err().to_string();
        // Two chunks, as two batches' reports arrive.
        let mut reports = Reports::default();
        reports.push_chunk(vec![
            delivered(1, "t", 10),
            delivered(2, "odd \"name\"", i64::MAX),
        ]);
        reports.push_chunk(vec![failed, delivered(4, "t", -1)]);
        let text = flush_json(&reports, 7);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"reports": [
                {"id": 1, "topic": "t", "partition": 2, "offset": 10},
                {"id": 2, "topic": "odd \"name\"", "partition": 2, "offset": i64::MAX},
                {"id": 3, "topic": "t", "partition": 0,
                 "error": error, "error_code": null},
                {"id": 4, "topic": "t", "partition": 2, "offset": -1},
            ], "pending": 7})
        );
        assert_eq!(
            flush_json(&Reports::default(), 0),
            r#"{"reports":[],"pending":0}"#
        );
    }

    fn consumed(
        topic: &str,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> ConsumedRecord {
        ConsumedRecord {
            topic: Arc::from(topic),
            partition: 1,
            offset,
            key: key.map(Bytes::copy_from_slice),
            value: value.map(Bytes::copy_from_slice),
            headers: vec![],
            timestamp_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn poll_batch_json_escapes_what_needs_it_and_base64s_binary() {
        let mut with_headers = consumed("t", 3, None, Some(b""));
        with_headers.headers = vec![
            ("h".into(), Some(Bytes::from_static(b"1"))),
            ("h".into(), None),
            ("bin".into(), Some(Bytes::from_static(&[0xff]))),
        ];
        let records = [
            consumed("t", 0, Some(b"k"), Some(b"plain ascii ~\x7f")),
            consumed("t", 1, None, Some("Привет, \"мир\"\\\n\t".as_bytes())),
            consumed("odd \"topic\"", i64::MAX, Some(&[0, 159, 146, 150]), None),
            with_headers,
        ];
        let text = poll_batch_json(&records);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let ts = 1_700_000_000_000i64;
        assert_eq!(
            v,
            serde_json::json!([
                {"topic": "t", "partition": 1, "offset": 0, "key": "k",
                 "value": "plain ascii ~\x7f", "headers": [], "timestamp": ts},
                {"topic": "t", "partition": 1, "offset": 1, "key": null,
                 "value": "Привет, \"мир\"\\\n\t", "headers": [], "timestamp": ts},
                {"topic": "odd \"topic\"", "partition": 1, "offset": i64::MAX,
                 "key": {"base64": "AJ+Slg=="}, "value": null, "headers": [], "timestamp": ts},
                {"topic": "t", "partition": 1, "offset": 3, "key": null, "value": "",
                 "headers": [["h", "1"], ["h", null], ["bin", {"base64": "/w=="}]],
                 "timestamp": ts},
            ])
        );
        assert_eq!(poll_batch_json(&[]), "[]");
    }
}
