//! The Kafka side of a Client between Connect and Close: the only place the component talks to
//! the Kafka core, blocking the 1C thread on the core's futures.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value as Json};

use super::consume::Position;
use super::error::CallError;
use super::kafka_errors::from_kafka;
use super::produce::Outgoing;
use super::rest_proxy::{self, BatchRecord, Outcome};
use crate::kafka::{runtime, Client, Config, Record};

/// A received message, kept for the message properties until the next Poll.
pub struct Message {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp_ms: i64,
}

pub enum ConnectError {
    /// The settings text is wrong: (en, ru) details for an argument error.
    Settings(String, String),
    Other(CallError),
}

pub struct Session {
    client: Client,
}

/// How long Close waits for pending deliveries.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

fn record(r: Outgoing) -> Record {
    Record {
        topic: r.topic,
        partition: r.partition,
        key: r.key.map(Bytes::from),
        value: Some(Bytes::from(r.value)),
        headers: r
            .headers
            .into_iter()
            .map(|(k, v)| (k, v.map(Bytes::from)))
            .collect(),
        timestamp_ms: None,
    }
}

/// Consumer methods arrive with consumer-group support (issue 4).
fn no_consumer<T>() -> Result<T, CallError> {
    Err(CallError::failed(
        "consuming is not available in this build: consumer groups are being added (issue 4)",
        "получение сообщений недоступно в этой сборке: группы потребителей добавляются (задача 4)",
    ))
}

impl Session {
    pub fn connect(settings: &str) -> Result<Session, ConnectError> {
        let config = Config::parse(settings).map_err(|e| {
            let ru = from_kafka(&e).text(super::lang::Lang::Ru);
            ConnectError::Settings(e.to_string(), ru)
        })?;
        let client = runtime::block_on(Client::connect(config))
            .map_err(|e| ConnectError::Other(from_kafka(&e)))?;
        Ok(Session { client })
    }

    pub fn produce(&self, r: Outgoing) -> Result<i64, CallError> {
        runtime::block_on(self.client.produce(record(r)))
            .map(|d| d.offset)
            .map_err(|e| from_kafka(&e))
    }

    pub fn produce_async(&self, r: Outgoing) -> Result<u64, CallError> {
        self.client
            .produce_async(record(r))
            .map_err(|e| from_kafka(&e))
    }

    /// `{"reports":[{"id","topic","partition","offset"} | {..,"error","error_code"}],"pending":N}`
    pub fn flush(&self, timeout_ms: u64) -> Result<String, CallError> {
        let outcome = runtime::block_on(self.client.flush(Duration::from_millis(timeout_ms)));
        let reports: Vec<Json> = outcome
            .reports
            .iter()
            .map(|r| match &r.result {
                Ok(d) => json!({"id": r.id, "topic": r.topic, "partition": d.partition, "offset": d.offset}),
                Err(e) => json!({"id": r.id, "topic": r.topic, "partition": r.partition,
                                 "error": e.to_string(), "error_code": e.code()}),
            })
            .collect();
        Ok(json!({"reports": reports, "pending": outcome.pending}).to_string())
    }

    pub fn produce_batch(
        &self,
        topic: &str,
        records: Vec<BatchRecord>,
    ) -> Result<String, CallError> {
        let records = records
            .into_iter()
            .map(|r| Record {
                topic: topic.to_string(),
                partition: r.partition,
                key: r.key.map(Bytes::from),
                value: r.value.map(Bytes::from),
                headers: r
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k, v.map(Bytes::from)))
                    .collect(),
                timestamp_ms: None,
            })
            .collect();
        let results = runtime::block_on(self.client.produce_batch(records));
        let outcomes: Vec<Outcome> = results
            .into_iter()
            .map(|r| match r {
                Ok(d) => Outcome::Delivered {
                    partition: d.partition,
                    offset: d.offset,
                },
                // REST Proxy reports Kafka's own code, or 50002 for client-side failures.
                Err(e) => Outcome::Failed {
                    code: e.code().map_or(50002, i32::from),
                    message: e.to_string(),
                },
            })
            .collect();
        Ok(rest_proxy::response(&outcomes))
    }

    pub fn create_topic(
        &self,
        name: String,
        partitions: i32,
        rf: i16,
        configs: Vec<(String, String)>,
    ) -> Result<(), CallError> {
        runtime::block_on(self.client.create_topic(&name, partitions, rf, &configs))
            .map_err(|e| from_kafka(&e))
    }

    pub fn delete_topic(&self, name: String) -> Result<(), CallError> {
        runtime::block_on(self.client.delete_topic(&name)).map_err(|e| from_kafka(&e))
    }

    /// `[{"name":..,"partitions":..,"internal":..}]`, sorted by name.
    pub fn list_topics(&self) -> Result<String, CallError> {
        let topics = runtime::block_on(self.client.list_topics()).map_err(|e| from_kafka(&e))?;
        let list: Vec<Json> = topics
            .iter()
            .map(|t| json!({"name": t.name, "partitions": t.partitions, "internal": t.internal}))
            .collect();
        Ok(Json::Array(list).to_string())
    }

    pub fn subscribe(
        &mut self,
        _topics: Vec<String>,
        _group: Option<String>,
    ) -> Result<(), CallError> {
        no_consumer()
    }
    pub fn poll(&mut self, _timeout_ms: u64) -> Result<Option<Message>, CallError> {
        no_consumer()
    }
    pub fn poll_batch(&mut self, _max: usize, _timeout_ms: u64) -> Result<String, CallError> {
        no_consumer()
    }
    pub fn commit(&mut self) -> Result<(), CallError> {
        no_consumer()
    }
    pub fn commit_offsets(&mut self, _offsets: Vec<(String, i32, i64)>) -> Result<(), CallError> {
        no_consumer()
    }
    pub fn seek(
        &mut self,
        _topic: String,
        _partition: i32,
        _position: Position,
    ) -> Result<(), CallError> {
        no_consumer()
    }
    pub fn assignment(&mut self) -> Result<String, CallError> {
        no_consumer()
    }

    /// Delivers what is pending (bounded) and closes connections.
    pub fn close(self) {
        runtime::block_on(self.client.close(CLOSE_TIMEOUT));
    }
}
