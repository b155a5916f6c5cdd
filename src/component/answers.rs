//! The JSON answers of PollBatch and Flush, serialized straight into text.

use bytes::Bytes;
use serde::Serialize;

use super::json::{JsonBytes, JsonHeaders};
use crate::kafka::consumer::ConsumedRecord;

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

/// One delivery report in Flush's JSON.
#[derive(Serialize)]
#[serde(untagged)]
pub enum ReportOut<'a> {
    Delivered {
        id: u64,
        topic: &'a str,
        partition: i32,
        offset: i64,
    },
    Failed {
        id: u64,
        topic: &'a str,
        partition: i32,
        error: String,
        error_code: Option<i16>,
    },
}

#[derive(Serialize)]
pub struct FlushOut<'a> {
    pub reports: Vec<ReportOut<'a>>,
    pub pending: usize,
}
