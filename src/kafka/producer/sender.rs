//! The background sender: takes ready batches, sends one Produce request per broker, and
//! completes, retries or fails each batch from the response.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    InitProducerIdRequest, ProduceRequest, ProduceResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::accumulator::ReadyBatch;
use super::batch::{settle, Acked};
use super::turns::Turn;
use super::Shared;
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

        if shared.acc.lock().unwrap().take_producer_id_request() {
            tokio::spawn(init_producer_id(shared.clone()));
        }
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
        let (dispatches, next, need_metadata) = take_ready(&shared, now, linger);
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
                    Some(t) => cluster.refresh_used(&t).await,
                    None => refresh_known(&cluster).await,
                };
                s.wake.notify_one();
            });
        }

        for d in dispatches {
            tokio::spawn(send_request(shared.clone(), d));
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

/// Asks any broker for an idempotent producer id, retrying what is retriable. A broker that
/// cannot give one turns idempotence off if it was only the default; if it was asked for, the
/// queued records fail with the reason (and the next records ask again).
async fn init_producer_id(shared: Arc<Shared>) {
    let config = &shared.cluster.config;
    let req = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let backoff = Duration::from_millis(config.retry_backoff_ms);
    let refused = loop {
        if shared.closed.load(Ordering::SeqCst) {
            shared.acc.lock().unwrap().producer_id_failed();
            // The sender decides what the closing means for the records still queued.
            shared.wake.notify_one();
            return;
        }
        match shared.cluster.send_any(&req).await {
            Ok(r) if r.error_code == 0 => {
                let mut acc = shared.acc.lock().unwrap();
                acc.set_producer_id(r.producer_id.0, r.producer_epoch);
                drop(acc);
                shared.wake.notify_one();
                return;
            }
            Ok(r) if !crate::kafka::error::is_retriable(r.error_code) => {
                break Error::broker(r.error_code, None, None, None);
            }
            Err(e) if !e.is_retriable() => break e,
            _ => tokio::time::sleep(backoff).await,
        }
    };
    let mut acc = shared.acc.lock().unwrap();
    if config.enable_idempotence == Some(true) {
        let e = Error::Config {
            key: "enable.idempotence".into(),
            reason: format!("the broker gives no producer id: {refused}"),
        };
        acc.fail_all(&e);
        acc.producer_id_failed();
    } else {
        acc.idempotence_off(config.in_flight(false));
    }
    drop(acc);
    finished(&shared);
    shared.wake.notify_one();
}

/// One Produce request to be: a broker's ready batches and their place in its line.
struct Dispatch {
    broker: i32,
    turn: Turn,
    batches: Vec<ReadyBatch>,
}

/// Takes the ready batches, grouped per broker, each group with its place in the broker's line
/// taken under the same lock: the order of the lines is the order batches left their queues.
fn take_ready(
    shared: &Shared,
    now: Instant,
    linger: Duration,
) -> (Vec<Dispatch>, Option<Instant>, bool) {
    let cluster = &shared.cluster;
    let mut acc = shared.acc.lock().unwrap();
    let (batches, next, need_metadata) = acc.ready(now, linger, |t, p| {
        cluster
            .topic(t)
            .and_then(|info| info.partitions.get(p as usize).map(|i| i.leader))
            .unwrap_or(-1)
    });
    let groups = requests_by_broker(batches);
    let dispatches = groups
        .into_iter()
        .flat_map(|(broker, requests)| requests.into_iter().map(move |r| (broker, r)))
        .map(|(broker, batches)| Dispatch {
            broker,
            turn: shared.turns.take(broker),
            batches,
        })
        .collect();
    drop(acc);
    (dispatches, next, need_metadata)
}

/// Per broker, a request carries one batch per partition: a partition's k-th batch goes in the
/// broker's k-th request, which leaves after the earlier ones (turns are taken in order).
/// ready() hands a partition's batches out one after another, so k is a run length.
fn requests_by_broker(batches: Vec<ReadyBatch>) -> HashMap<i32, Vec<Vec<ReadyBatch>>> {
    let mut groups: HashMap<i32, Vec<Vec<ReadyBatch>>> = HashMap::new();
    let mut k = 0;
    let mut previous: Option<(Arc<str>, i32)> = None;
    for b in batches {
        let same = previous
            .as_ref()
            .is_some_and(|(t, p)| Arc::ptr_eq(t, &b.topic) && *p == b.partition);
        k = if same { k + 1 } else { 0 };
        previous = Some((b.topic.clone(), b.partition));
        let requests = groups.entry(b.leader).or_default();
        if requests.len() <= k {
            requests.push(Vec::new());
        }
        requests[k].push(b);
    }
    groups
}

/// Sends what is ready from the caller's own task (a sync Produce waits anyway): handing its
/// record to the background sender would cost a thread wake-up before every acknowledged
/// record. Anything it cannot do (metadata, nothing ready) is left to the sender, woken here.
pub async fn send_now(shared: &Arc<Shared>) {
    let linger = Duration::from_millis(shared.cluster.config.linger_ms);
    let (dispatches, _, need_metadata) = take_ready(shared, Instant::now(), linger);
    // ready() may have failed expired records: flushers hear of it as from the sender.
    finished(shared);
    if dispatches.is_empty() || need_metadata || shared.acc.lock().unwrap().has_unresolved() {
        shared.wake.notify_one();
    }
    let mut groups = dispatches.into_iter();
    let mine = groups.next();
    for d in groups {
        tokio::spawn(send_request(shared.clone(), d));
    }
    if let Some(d) = mine {
        send_request(shared.clone(), d).await;
    }
}

/// Refreshes the topics already known (leader changes) without asking for every topic, and
/// without creating any: one deleted meanwhile leaves the cache instead of coming back (records
/// still waiting for it then ask for it as a topic in use).
async fn refresh_known(cluster: &crate::kafka::cluster::Cluster) -> Result<()> {
    let names: Vec<String> = cluster.topics().iter().map(|t| t.name.clone()).collect();
    cluster.refresh(Some(&names)).await
}

/// Wakes flushers when records have finished, and resets linger once idle.
fn finished(shared: &Shared) {
    shared.acc.lock().unwrap().settle();
    shared.finished.notify_waiters();
}

async fn send_request(shared: Arc<Shared>, d: Dispatch) {
    let Dispatch {
        broker,
        turn,
        batches,
    } = d;
    let config = &shared.cluster.config;
    let mut encoded = Vec::with_capacity(batches.len());
    let mut sendable = Vec::with_capacity(batches.len());
    for mut b in batches {
        match b.batch.seal(config.compression) {
            Ok(bytes) => {
                encoded.push((b.topic.clone(), b.partition, bytes));
                sendable.push(b);
            }
            Err(e) => complete_batch(&shared, b, Err(e)),
        }
    }
    if sendable.is_empty() {
        wake_if_queued(&shared);
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
    turn.wait().await;
    let conn = shared.cluster.connection(broker).await;
    if config.acks == 0 {
        let result = conn.and_then(|conn| conn.send_no_response(&req));
        turn.end();
        for b in unsettled.take() {
            match &result {
                Ok(()) => {
                    let unknown = Acked {
                        base_offset: -1,
                        log_append_ms: -1,
                    };
                    complete_batch(&shared, b, Ok(unknown));
                }
                Err(e) => retry_or_fail(&shared, b, e.clone()),
            }
        }
        wake_if_queued(&shared);
        return;
    }

    let started = conn.and_then(|conn| conn.send_started(&req));
    turn.end();
    let response = match started {
        Ok(started) => started.response().await,
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
        // The broker already stored this batch (an earlier attempt's answer was lost).
        let duplicate = part.error_code == DUPLICATE_SEQUENCE_NUMBER && b.batch.stamp.is_some();
        if part.error_code != 0 && !duplicate {
            let message = part.error_message.as_ref().map(|m| m.to_string());
            let e = Error::broker(part.error_code, Some(&b.topic), Some(b.partition), message);
            retry_or_fail(shared, b, e);
            continue;
        }
        let acked = Acked {
            base_offset: part.base_offset,
            log_append_ms: part.log_append_time_ms,
        };
        complete_batch(shared, b, Ok(acked));
    }
}

const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
const UNKNOWN_PRODUCER_ID: i16 = 59;

fn complete_batch(shared: &Shared, b: ReadyBatch, result: Result<Acked>) {
    // Outcomes are built, and the batch dropped, outside the accumulator lock: the 1C thread
    // takes that lock for every ProduceAsync and would otherwise wait for a whole batch.
    let ReadyBatch {
        topic,
        partition,
        batch,
        ..
    } = b;
    let (no, stamp, failed) = (batch.no, batch.stamp, result.is_err());
    let done = batch.entries.len();
    let reports = settle(batch.entries, &topic, partition, result);
    let mut acc = shared.acc.lock().unwrap();
    acc.finished(done, reports);
    acc.release(&topic, partition, no);
    if failed {
        acc.sequence_lost(stamp);
    }
    acc.settle();
    drop(acc);
    shared.finished.notify_waiters();
}

/// Retriable errors put the batch back in its partition's order; others, or exhausted retries
/// and delivery timeouts, fail every record in it. With idempotence, a sequence the broker
/// does not expect is retriable too: either an earlier batch's retry fills the gap, or (when
/// this is the oldest batch) the broker lost the producer's state and a new producer id
/// starts the partition's sequence again.
fn retry_or_fail(shared: &Shared, mut b: ReadyBatch, e: Error) {
    let config = &shared.cluster.config;
    let now = Instant::now();
    b.batch.attempts += 1;
    let expired = now >= b.batch.created + Duration::from_millis(config.delivery_timeout_ms);
    let sequence_error = b.batch.stamp.is_some()
        && matches!(
            e.code(),
            Some(OUT_OF_ORDER_SEQUENCE_NUMBER | UNKNOWN_PRODUCER_ID)
        );
    if (e.is_retriable() || sequence_error)
        && b.batch.attempts <= config.retries
        && !expired
        && !shared.closed.load(Ordering::SeqCst)
    {
        let retry_at = now + Duration::from_millis(config.retry_backoff_ms);
        let stamp = b.batch.stamp;
        if matches!(e, Error::Broker { .. }) {
            b.batch.last_error = Some(e);
        }
        let mut acc = shared.acc.lock().unwrap();
        let oldest = acc.requeue(&b.topic, b.partition, b.batch, retry_at);
        if sequence_error && oldest {
            acc.sequence_lost(stamp);
        }
        drop(acc);
        // A leader move or a dead broker: the next round refreshes metadata.
        shared.cluster.mark_stale();
    } else {
        complete_batch(shared, b, Err(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::producer::batch::ProducerBatch;

    #[test]
    fn a_request_carries_one_batch_per_partition_in_order() {
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let ready = |topic: &Arc<str>, partition, leader, no| ReadyBatch {
            topic: topic.clone(),
            partition,
            leader,
            batch: ProducerBatch::new(no, Instant::now(), 0, 1000),
        };
        let batches = vec![
            ready(&a, 0, 1, 0),
            ready(&a, 0, 1, 1),
            ready(&a, 0, 1, 2),
            ready(&a, 1, 1, 0),
            ready(&b, 0, 2, 0),
            ready(&b, 0, 2, 1),
        ];
        let shape = |rs: &Vec<Vec<ReadyBatch>>| -> Vec<Vec<(String, i32, u64)>> {
            rs.iter()
                .map(|r| {
                    r.iter()
                        .map(|x| (x.topic.to_string(), x.partition, x.batch.no))
                        .collect()
                })
                .collect()
        };
        let groups = requests_by_broker(batches);
        let s = |t: &str| t.to_string();
        assert_eq!(
            shape(&groups[&1]),
            [
                vec![(s("a"), 0, 0), (s("a"), 1, 0)],
                vec![(s("a"), 0, 1)],
                vec![(s("a"), 0, 2)]
            ]
        );
        assert_eq!(
            shape(&groups[&2]),
            [vec![(s("b"), 0, 0)], vec![(s("b"), 0, 1)]]
        );
    }
}
