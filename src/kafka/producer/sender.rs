//! The background sender: takes ready batches, sends one Produce request per broker, and
//! completes, retries or fails each batch from the response.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::accumulator::ReadyBatch;
use super::{Delivered, Shared};
use crate::kafka::error::{Error, Result};

pub async fn run(shared: Arc<Shared>) {
    let config = shared.cluster.config.clone();
    let linger = Duration::from_millis(config.linger_ms);
    let backoff = Duration::from_millis(config.retry_backoff_ms);
    let mut last_metadata_try: Option<Instant> = None;
    loop {
        if shared.closed.load(Ordering::SeqCst) && shared.acc.lock().unwrap().pending == 0 {
            return;
        }
        let wake = shared.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();

        let now = Instant::now();
        // Unknown topics and leaders need metadata; refresh at most once per backoff.
        let unknown = {
            let cluster = &shared.cluster;
            shared
                .acc
                .lock()
                .unwrap()
                .resolve(|t| cluster.topic(t), |t| cluster.missing(t), now)
        };
        let (batches, next, need_metadata) = take_ready(&shared, now, linger);
        finished(&shared);
        let wants_metadata = !unknown.is_empty() || need_metadata || shared.cluster.is_stale();
        if wants_metadata && last_metadata_try.is_none_or(|t| t.elapsed() >= backoff) {
            last_metadata_try = Some(Instant::now());
            let topics = if unknown.is_empty() {
                None
            } else {
                Some(unknown)
            };
            let cluster = shared.cluster.clone();
            let s = shared.clone();
            tokio::spawn(async move {
                let _ = match topics {
                    Some(t) => cluster.refresh(Some(&t)).await,
                    None => refresh_known(&cluster).await,
                };
                s.wake.notify_one();
            });
        }

        for (broker, batches) in by_broker(batches) {
            tokio::spawn(send_request(shared.clone(), broker, batches));
        }

        let mut wait = next.map(|n| n.saturating_duration_since(Instant::now()));
        if wants_metadata || shared.acc.lock().unwrap().has_unresolved() {
            wait = Some(wait.map_or(backoff, |w| w.min(backoff)));
        }
        match wait {
            Some(d) => {
                let _ = tokio::time::timeout(d, wake).await;
            }
            None => wake.await,
        }
    }
}

fn take_ready(
    shared: &Shared,
    now: Instant,
    linger: Duration,
) -> (Vec<ReadyBatch>, Option<Instant>, bool) {
    let cluster = &shared.cluster;
    shared.acc.lock().unwrap().ready(now, linger, |t, p| {
        cluster
            .topic(t)
            .and_then(|info| info.partitions.get(p as usize).map(|i| i.leader))
            .unwrap_or(-1)
    })
}

fn by_broker(batches: Vec<ReadyBatch>) -> HashMap<i32, Vec<ReadyBatch>> {
    let mut out: HashMap<i32, Vec<ReadyBatch>> = HashMap::new();
    for b in batches {
        out.entry(b.leader).or_default().push(b);
    }
    out
}

/// Sends what is ready from the caller's own task (a sync Produce waits anyway): handing its
/// record to the background sender would cost a thread wake-up before every acknowledged
/// record. Anything it cannot do (metadata, nothing ready) is left to the sender, woken here.
pub async fn send_now(shared: &Arc<Shared>) {
    let linger = Duration::from_millis(shared.cluster.config.linger_ms);
    let (batches, _, need_metadata) = take_ready(shared, Instant::now(), linger);
    // ready() may have failed expired records: flushers hear of it as from the sender.
    finished(shared);
    if batches.is_empty() || need_metadata || shared.acc.lock().unwrap().has_unresolved() {
        shared.wake.notify_one();
    }
    let mut groups = by_broker(batches).into_iter();
    let mine = groups.next();
    for (broker, batches) in groups {
        tokio::spawn(send_request(shared.clone(), broker, batches));
    }
    if let Some((broker, batches)) = mine {
        send_request(shared.clone(), broker, batches).await;
    }
}

/// Refreshes the topics the producer uses (leader changes) without asking for every topic.
async fn refresh_known(cluster: &crate::kafka::cluster::Cluster) -> Result<()> {
    let names: Vec<String> = cluster.topics().iter().map(|t| t.name.clone()).collect();
    cluster.refresh(Some(&names)).await
}

/// Wakes flushers when records have finished, and resets linger once idle.
fn finished(shared: &Shared) {
    shared.acc.lock().unwrap().settle();
    shared.finished.notify_waiters();
}

async fn send_request(shared: Arc<Shared>, broker: i32, batches: Vec<ReadyBatch>) {
    let config = &shared.cluster.config;
    let mut encoded = Vec::with_capacity(batches.len());
    let mut sendable = Vec::with_capacity(batches.len());
    for mut b in batches {
        match b.batch.seal(config.compression) {
            Ok(bytes) => {
                encoded.push((b.topic.clone(), b.partition, bytes));
                sendable.push(b);
            }
            Err(e) => finish_batch(&shared, b, Err(e)),
        }
    }
    if sendable.is_empty() {
        return;
    }
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for (topic, partition, bytes) in encoded {
        let data = PartitionProduceData::default()
            .with_index(partition)
            .with_records(Some(bytes));
        match topics.iter_mut().find(|t| t.name.0.as_str() == &*topic) {
            Some(t) => t.partition_data.push(data),
            None => topics.push(
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partition_data(vec![data]),
            ),
        }
    }
    let req = ProduceRequest::default()
        .with_acks(config.acks)
        .with_timeout_ms(config.request_timeout_ms.min(i32::MAX as u64) as i32)
        .with_topic_data(topics);

    // Until the outcome is known the batches stay in a guard: a caller that stops waiting (a
    // sync Produce given up by its timeout) hands them back for a retry rather than losing them.
    let mut unsettled = Unsettled {
        shared: shared.clone(),
        broker,
        batches: sendable,
    };
    if config.acks == 0 {
        let result = match shared.cluster.connection(broker).await {
            Ok(conn) => conn.send_no_response(&req),
            Err(e) => Err(e),
        };
        for b in unsettled.take() {
            match &result {
                Ok(()) => {
                    let (topic, partition) = (b.topic.clone(), b.partition);
                    complete_batch(&shared, b, Ok(()), |_, ts| Delivered {
                        topic: topic.to_string(),
                        partition,
                        offset: -1,
                        timestamp_ms: ts,
                    });
                }
                Err(e) => retry_or_fail(&shared, b, e.clone()),
            }
        }
        wake_if_queued(&shared);
        return;
    }

    let response = match shared.cluster.connection(broker).await {
        Ok(conn) => conn.send(&req).await,
        Err(e) => Err(e),
    };
    let sendable = unsettled.take();
    match response {
        Ok(resp) => handle_response(&shared, resp, sendable),
        Err(e) => {
            for b in sendable {
                retry_or_fail(&shared, b, e.clone());
            }
        }
    }
    wake_if_queued(&shared);
}

/// Batches of a request whose outcome is not known yet.
struct Unsettled {
    shared: Arc<Shared>,
    broker: i32,
    batches: Vec<ReadyBatch>,
}

impl Unsettled {
    fn take(&mut self) -> Vec<ReadyBatch> {
        std::mem::take(&mut self.batches)
    }
}

impl Drop for Unsettled {
    fn drop(&mut self) {
        if self.batches.is_empty() {
            return;
        }
        // The request may have reached the broker: resending is a retry, as after a timeout.
        let e = Error::Disconnected {
            broker: format!("broker {}", self.broker),
            reason: "the waiting caller gave up on the request".into(),
        };
        for b in self.take() {
            retry_or_fail(&self.shared, b, e.clone());
        }
        self.shared.wake.notify_one();
    }
}

/// A finished request may let queued batches (or a retry) go, or let a closed producer's
/// sender stop. Otherwise, as after a sync Produce, the sender sleeps on: waking it would
/// cost a thread switch per record.
fn wake_if_queued(shared: &Shared) {
    if shared.acc.lock().unwrap().pending > 0 || shared.closed.load(Ordering::SeqCst) {
        shared.wake.notify_one();
    }
}

fn handle_response(shared: &Arc<Shared>, resp: ProduceResponse, batches: Vec<ReadyBatch>) {
    for b in batches {
        let part = resp
            .responses
            .iter()
            .filter(|t| t.name.0.as_str() == &*b.topic)
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == b.partition);
        let Some(part) = part else {
            let e = Error::Protocol(format!(
                "no produce result for {}[{}]",
                b.topic, b.partition
            ));
            retry_or_fail(shared, b, e);
            continue;
        };
        if part.error_code != 0 {
            let message = part.error_message.as_ref().map(|m| m.to_string());
            let e = Error::broker(part.error_code, Some(&b.topic), Some(b.partition), message);
            retry_or_fail(shared, b, e);
            continue;
        }
        let base = part.base_offset;
        let log_append = part.log_append_time_ms;
        let (topic, partition) = (b.topic.clone(), b.partition);
        complete_batch(shared, b, Ok(()), |i, ts| Delivered {
            topic: topic.to_string(),
            partition,
            offset: base + i as i64,
            timestamp_ms: if log_append >= 0 { log_append } else { ts },
        });
    }
}

fn complete_batch(
    shared: &Shared,
    b: ReadyBatch,
    result: Result<()>,
    delivered: impl Fn(usize, i64) -> Delivered,
) {
    // Outcomes are built, and the batch dropped, outside the accumulator lock: the 1C thread
    // takes that lock for every ProduceAsync and would otherwise wait for a whole batch.
    let ReadyBatch {
        topic,
        partition,
        batch,
        ..
    } = b;
    let done = batch.entries.len();
    let mut reports = Vec::new();
    for (i, entry) in batch.entries.into_iter().enumerate() {
        let r = match &result {
            Ok(()) => Ok(delivered(i, entry.timestamp)),
            Err(e) => Err(e.clone()),
        };
        if let Some(report) = entry.finish(&topic, partition, r) {
            reports.push(report);
        }
    }
    let mut acc = shared.acc.lock().unwrap();
    acc.finished(done, reports);
    acc.release(&topic, partition);
    acc.settle();
    drop(acc);
    shared.finished.notify_waiters();
}

fn finish_batch(shared: &Shared, b: ReadyBatch, result: Result<()>) {
    complete_batch(shared, b, result, |_, _| unreachable_delivery());
}

fn unreachable_delivery() -> Delivered {
    Delivered {
        topic: String::new(),
        partition: -1,
        offset: -1,
        timestamp_ms: -1,
    }
}

/// Retriable errors put the batch back (order kept: the partition has nothing else in
/// flight); others, or exhausted retries and delivery timeouts, fail every record in it.
fn retry_or_fail(shared: &Shared, mut b: ReadyBatch, e: Error) {
    let config = &shared.cluster.config;
    let now = Instant::now();
    b.batch.attempts += 1;
    let expired = now >= b.batch.created + Duration::from_millis(config.delivery_timeout_ms);
    if e.is_retriable()
        && b.batch.attempts <= config.retries
        && !expired
        && !shared.closed.load(Ordering::SeqCst)
    {
        let retry_at = now + Duration::from_millis(config.retry_backoff_ms);
        shared
            .acc
            .lock()
            .unwrap()
            .requeue(&b.topic, b.partition, b.batch, retry_at);
        // A leader move or a dead broker: the next round refreshes metadata.
        shared.cluster.mark_stale();
    } else {
        finish_batch(shared, b, Err(e));
    }
}
