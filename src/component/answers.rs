//! The JSON answers of PollBatch and Flush, serialized straight into text.

use bytes::Bytes;
use serde::Serialize;

use super::json::{JsonBytes, JsonHeaders};
use crate::kafka::consumer::ConsumedRecord;
use crate::kafka::DeliveryReport;

/// A record in PollBatch's JSON: key and value as text when UTF-8, else `{"base64": "..."}`.
#[derive(Serialize)]
pub struct RecordOut<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    key: Option<JsonBytes<'a>>,
    value: Option<JsonBytes<'a>>,
    headers: JsonHeaders<'a, Bytes>,
    timestamp: i64,
}

impl<'a> From<&'a ConsumedRecord> for RecordOut<'a> {
    fn from(r: &'a ConsumedRecord) -> Self {
        RecordOut {
            topic: &r.topic,
            partition: r.partition,
            offset: r.offset,
            key: r.key.as_deref().map(JsonBytes),
            value: r.value.as_deref().map(JsonBytes),
            headers: JsonHeaders(&r.headers),
            timestamp: r.timestamp_ms,
        }
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
pub fn flush_json(reports: &[DeliveryReport], pending: usize) -> String {
    let mut out = String::with_capacity(32 + reports.len() * 64);
    out.push_str("{\"reports\":[");
    let mut numbers = itoa::Buffer::new();
    // Reports come in runs of one topic: its quoted name is made once per run.
    let mut quoted: (Option<&str>, String) = (None, String::new());
    for (i, r) in reports.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match &r.result {
            Ok(d) => {
                if quoted.0 != Some(&*r.topic) {
                    quoted = (
                        Some(&*r.topic),
                        serde_json::to_string(&*r.topic).unwrap_or_default(),
                    );
                }
                out.push_str("{\"id\":");
                out.push_str(numbers.format(r.id));
                out.push_str(",\"topic\":");
                out.push_str(&quoted.1);
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
    use crate::kafka::{Delivered, Error};
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
        let reports = [
            delivered(1, "t", 10),
            delivered(2, "odd \"name\"", i64::MAX),
            failed,
            delivered(4, "t", -1),
        ];
        let text = flush_json(&reports, 7);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"reports": [
                {"id": 1, "topic": "t", "partition": 2, "offset": 10},
                {"id": 2, "topic": "odd \"name\"", "partition": 2, "offset": i64::MAX},
                {"id": 3, "topic": "t", "partition": 0,
                 "error": reports[2].result.as_ref().unwrap_err().to_string(), "error_code": null},
                {"id": 4, "topic": "t", "partition": 2, "offset": -1},
            ], "pending": 7})
        );
        assert_eq!(flush_json(&[], 0), r#"{"reports":[],"pending":0}"#);
    }
}
