//! The Kafka side of a Client between Connect and Close: the only place the component talks to
//! the Kafka core, blocking the 1C thread on the core's futures.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value as Json};

use super::answers::{flush_answer, PollBatchJson};
use super::consume::Position;
use super::error::CallError;
use super::kafka_errors::from_kafka;
use super::produce::Outgoing;
use super::rest_proxy::{self, BatchRecord, Outcome};
use crate::boundary::WideText;
use crate::kafka::consumer::{ConsumedRecord, Consumer, Run, SeekTo};
use crate::kafka::{runtime, Client, Config, Record, RecordRef};

/// The message Poll received; its fields are the message properties.
pub type Message = ConsumedRecord;

pub enum ConnectError {
    /// The settings text is wrong: (en, ru) details for an argument error.
    Settings(String, String),
    Other(CallError),
}

pub struct Session {
    client: Client,
    /// Present after Subscribe.
    consumer: Option<Consumer>,
}

fn not_subscribed() -> CallError {
    CallError::failed(
        "not subscribed: call Subscribe(Topics, Group) first",
        "нет подписки: сначала вызовите Подписаться(Темы, Группа)",
    )
}

/// How long Close waits for pending deliveries.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// A core record from what 1C gave; the core's timestamp is "now".
fn record(
    topic: String,
    partition: Option<i32>,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: super::headers::Headers,
) -> Record {
    Record {
        topic,
        partition,
        key: key.map(Bytes::from),
        value: value.map(Bytes::from),
        headers: header_bytes(headers),
        timestamp_ms: None,
    }
}

fn header_bytes(headers: super::headers::Headers) -> Vec<(String, Option<Bytes>)> {
    headers
        .into_iter()
        .map(|(k, v)| (k, v.map(Bytes::from)))
        .collect()
}

fn outgoing(r: Outgoing) -> Record {
    record(r.topic, r.partition, r.key, Some(r.value), r.headers)
}

impl Session {
    pub fn connect(settings: &str) -> Result<Session, ConnectError> {
        let config = Config::parse(settings).map_err(|e| {
            let ru = from_kafka(&e).text(super::lang::Lang::Ru);
            ConnectError::Settings(e.to_string(), ru)
        })?;
        let client = runtime::block_on(Client::connect(config))
            .map_err(|e| ConnectError::Other(from_kafka(&e)))?;
        Ok(Session {
            client,
            consumer: None,
        })
    }

    pub fn produce(&self, r: Outgoing) -> Result<i64, CallError> {
        runtime::block_on(self.client.produce(outgoing(r)))
            .map(|d| d.offset)
            .map_err(|e| from_kafka(&e))
    }

    pub fn produce_async(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: &[u8],
        headers: super::headers::Headers,
    ) -> Result<u64, CallError> {
        let headers = header_bytes(headers);
        let record = RecordRef {
            topic,
            partition,
            key,
            value: Some(value),
            headers: &headers,
            timestamp_ms: None,
        };
        self.client
            .produce_async_ref(record)
            .map_err(|e| from_kafka(&e))
    }

    /// Every report finished since the last Flush, as JSON (see `answers::flush_answer`).
    pub fn flush(&self, timeout_ms: u64) -> Result<WideText, CallError> {
        let outcome = runtime::block_on(self.client.flush(Duration::from_millis(timeout_ms)));
        Ok(flush_answer(outcome))
    }

    pub fn produce_batch(&self, topic: &str, records: &[BatchRecord]) -> Result<String, CallError> {
        let records: Vec<RecordRef> = records
            .iter()
            .map(|r| RecordRef {
                topic,
                partition: r.partition,
                key: r.key.as_deref(),
                value: r.value.as_deref(),
                headers: &r.headers,
                timestamp_ms: None,
            })
            .collect();
        let results = runtime::block_on(self.client.produce_batch_refs(&records));
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

    fn consumer(&self) -> Result<&Consumer, CallError> {
        self.consumer.as_ref().ok_or_else(not_subscribed)
    }

    pub fn subscribe(
        &mut self,
        topics: Vec<String>,
        group: Option<String>,
    ) -> Result<(), CallError> {
        let group = group
            .or_else(|| self.client.config().group_id.clone())
            .ok_or_else(|| {
                CallError::failed(
                "no consumer group: pass Group or set group.id in the settings",
                "не задана группа потребителей: передайте Группа или укажите group.id в настройках",
            )
            })?;
        // A new Subscribe replaces the old membership (committing and leaving first).
        if let Some(old) = self.consumer.take() {
            let _ = runtime::block_on(old.close());
        }
        let cluster = Arc::clone(self.client.cluster());
        let consumer = runtime::block_on(Consumer::subscribe(cluster, topics, group))
            .map_err(|e| from_kafka(&e))?;
        self.consumer = Some(consumer);
        Ok(())
    }

    pub fn poll(&mut self, timeout_ms: u64) -> Result<Option<Message>, CallError> {
        let consumer = self.consumer()?;
        let ready = consumer.poll_one_now().map_err(|e| from_kafka(&e))?;
        if ready.is_some() || timeout_ms == 0 {
            return Ok(ready);
        }
        runtime::block_on(consumer.poll(Duration::from_millis(timeout_ms)))
            .map_err(|e| from_kafka(&e))
    }

    /// Buffered records straight away; only when there are none does the 1C thread wait on
    /// the runtime (entering it costs more than taking a record). Records are written into
    /// the answer where they lie in the consumer's queue.
    pub fn poll_batch(&mut self, max: usize, timeout_ms: u64) -> Result<String, CallError> {
        let consumer = self.consumer()?;
        let mut json = PollBatchJson::new();
        let mut read = |run: Run<'_>| json.push(run);
        let n = consumer
            .read_now(max, &mut read)
            .map_err(|e| from_kafka(&e))?;
        if n == 0 && timeout_ms > 0 {
            let wait = consumer.read_batch(max, Duration::from_millis(timeout_ms), &mut read);
            runtime::block_on(wait).map_err(|e| from_kafka(&e))?;
        }
        Ok(json.finish())
    }

    pub fn commit(&mut self) -> Result<(), CallError> {
        runtime::block_on(self.consumer()?.commit()).map_err(|e| from_kafka(&e))
    }

    pub fn commit_offsets(&mut self, offsets: Vec<(String, i32, i64)>) -> Result<(), CallError> {
        runtime::block_on(self.consumer()?.commit_offsets(offsets)).map_err(|e| from_kafka(&e))
    }

    pub fn seek(
        &mut self,
        topic: String,
        partition: i32,
        position: Position,
    ) -> Result<(), CallError> {
        let to = match position {
            Position::Offset(o) => SeekTo::Offset(o),
            Position::Timestamp(ms) => SeekTo::Timestamp(ms),
            Position::Beginning => SeekTo::Beginning,
            Position::End => SeekTo::End,
        };
        runtime::block_on(self.consumer()?.seek(&topic, partition, to)).map_err(|e| from_kafka(&e))
    }

    /// `[{"topic","partition","position","committed","high_watermark","lag"}]`
    pub fn assignment(&mut self) -> Result<String, CallError> {
        let parts = self.consumer()?.assignment();
        let list: Vec<Json> = parts
            .iter()
            .map(|p| {
                json!({"topic": p.topic, "partition": p.partition, "position": p.position,
                       "committed": p.committed, "high_watermark": p.high_watermark, "lag": p.lag})
            })
            .collect();
        Ok(Json::Array(list).to_string())
    }

    /// Delivers what is pending (bounded) and closes connections.
    pub fn close(self) {
        if let Some(consumer) = &self.consumer {
            let _ = runtime::block_on(consumer.close());
        }
        runtime::block_on(self.client.close(CLOSE_TIMEOUT));
    }
}
