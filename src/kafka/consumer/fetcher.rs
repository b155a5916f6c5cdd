//! The fetcher: one Fetch request per leader broker for all its assigned partitions, records
//! queued for Poll up to a bound, positions advanced only for the assignment that asked.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::state::{record_bytes, ConsumedRecord, Phase, Tp};
use super::Inner;
use crate::kafka::records::decode_batches;
use crate::kafka::Config;

const OFFSET_OUT_OF_RANGE: i16 = 1;

/// A partition to fetch and the position/epochs it was asked with.
#[derive(Clone)]
struct Target {
    tp: Tp,
    offset: i64,
    epoch: u64,
}

/// Bytes of records waiting for Poll at which prefetching stops.
fn queue_cap(config: &Config) -> usize {
    (config.fetch_max_bytes as usize).max(1 << 20)
}

/// Once stopped, prefetching resumes when the queue falls below this (Poll wakes the fetcher
/// then, once, rather than on every record).
pub fn resume_below(config: &Config) -> usize {
    queue_cap(config) / 2
}

pub async fn run(inner: Arc<Inner>) {
    let config = inner.cluster.config.clone();
    let (queue_cap, resume_below) = (queue_cap(&config), resume_below(&config));
    let backoff = Duration::from_millis(config.retry_backoff_ms.max(50));
    let mut paused = false;
    loop {
        let wake = inner.fetch_wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let (targets, assignment_epoch) = {
            let st = inner.state.lock().unwrap();
            if st.phase == Phase::Closed {
                return;
            }
            paused = st.queued_bytes >= queue_cap || (paused && st.queued_bytes >= resume_below);
            if st.phase != Phase::Stable || paused {
                (Vec::new(), st.assignment_epoch)
            } else {
                let t: Vec<Target> = st
                    .assigned
                    .iter()
                    .filter_map(|(tp, p)| {
                        p.fetch.map(|offset| Target {
                            tp: tp.clone(),
                            offset,
                            epoch: p.epoch,
                        })
                    })
                    .collect();
                (t, st.assignment_epoch)
            }
        };
        if targets.is_empty() {
            let _ = tokio::time::timeout(Duration::from_millis(200), wake).await;
            continue;
        }
        let mut by_leader: BTreeMap<i32, Vec<Target>> = BTreeMap::new();
        let mut unknown = false;
        for t in targets {
            let leader = inner
                .cluster
                .topic(&t.tp.0)
                .and_then(|i| i.partitions.get(t.tp.1 as usize).map(|p| p.leader))
                .unwrap_or(-1);
            if leader < 0 {
                unknown = true;
            } else {
                by_leader.entry(leader).or_default().push(t);
            }
        }
        if unknown {
            let topics = inner.state.lock().unwrap().topics.clone();
            let _ = inner.cluster.refresh(Some(&topics)).await;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (leader, targets) in by_leader {
            let inner = inner.clone();
            tasks.spawn(async move { fetch_from(&inner, leader, targets, assignment_epoch).await });
        }
        let mut failed = false;
        while let Some(r) = tasks.join_next().await {
            failed |= !matches!(r, Ok(true));
        }
        if failed || unknown {
            tokio::time::sleep(backoff).await;
        }
    }
}

/// One Fetch to one broker; returns false when it failed and the caller should back off.
async fn fetch_from(
    inner: &Inner,
    leader: i32,
    targets: Vec<Target>,
    assignment_epoch: u64,
) -> bool {
    let config = &inner.cluster.config;
    let mut topics: Vec<FetchTopic> = Vec::new();
    for t in &targets {
        let part = FetchPartition::default()
            .with_partition(t.tp.1)
            .with_fetch_offset(t.offset)
            .with_current_leader_epoch(-1)
            .with_last_fetched_epoch(-1)
            .with_log_start_offset(-1)
            .with_partition_max_bytes(config.max_partition_fetch_bytes);
        match topics.iter_mut().find(|f| f.topic.0.as_str() == t.tp.0) {
            Some(f) => f.partitions.push(part),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(t.tp.0.clone())))
                    .with_partitions(vec![part]),
            ),
        }
    }
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(config.fetch_max_wait_ms)
        .with_min_bytes(config.fetch_min_bytes)
        .with_max_bytes(config.fetch_max_bytes)
        .with_isolation_level(i8::from(config.read_committed))
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics)
        .with_rack_id(StrBytes::from_string(config.client_rack.clone()));
    let resp = match inner.cluster.send_to(leader, &req).await {
        Ok(r) => r,
        Err(_) => {
            inner.cluster.mark_stale();
            let topics = inner.state.lock().unwrap().topics.clone();
            let _ = inner.cluster.refresh(Some(&topics)).await;
            return false;
        }
    };
    let mut ok = true;
    let mut reset = Vec::new();
    for topic in &resp.responses {
        let name = topic.topic.0.to_string();
        for part in &topic.partitions {
            let Some(target) = targets
                .iter()
                .find(|t| t.tp.0 == name && t.tp.1 == part.partition_index)
            else {
                continue;
            };
            match part.error_code {
                0 => {
                    if !accept(inner, target, part, assignment_epoch) {
                        ok = false;
                    }
                }
                OFFSET_OUT_OF_RANGE => reset.push(target.tp.clone()),
                _ => {
                    // Leader moved or partition unavailable: refresh and try again.
                    inner.cluster.mark_stale();
                    ok = false;
                }
            }
        }
    }
    if !ok {
        let topics = inner.state.lock().unwrap().topics.clone();
        let _ = inner.cluster.refresh(Some(&topics)).await;
    }
    if !reset.is_empty() {
        {
            let mut st = inner.state.lock().unwrap();
            for tp in &reset {
                if let Some(p) = st.assigned.get_mut(tp) {
                    p.fetch = None;
                }
            }
        }
        if inner.reset_positions(&reset).await.is_err() {
            ok = false;
        }
    }
    inner.records.notify_waiters();
    ok
}

/// Queues the partition's records if the partition is still ours at the asked position.
fn accept(inner: &Inner, target: &Target, part: &PartitionData, assignment_epoch: u64) -> bool {
    let batches = match part.records.clone().map(decode_batches).transpose() {
        Ok(b) => b.unwrap_or_default(),
        Err(e) => {
            inner.state.lock().unwrap().error = Some(e);
            return false;
        }
    };
    // Transactions: skip records of aborted ones (read_committed brokers list them).
    let aborted: Vec<(i64, i64)> = part
        .aborted_transactions
        .iter()
        .flatten()
        .map(|a| (a.producer_id.0, a.first_offset))
        .collect();
    let mut aborting: HashSet<i64> = HashSet::new();
    let mut records = Vec::new();
    let mut next = target.offset;
    let topic: Arc<str> = Arc::from(target.tp.0.as_str());
    for batch in batches {
        for (pid, first) in &aborted {
            if *first <= batch.last_offset {
                aborting.insert(*pid);
            }
        }
        next = next.max(batch.last_offset + 1);
        if batch.control {
            aborting.remove(&batch.producer_id);
            continue;
        }
        if batch.transactional && aborting.contains(&batch.producer_id) {
            continue;
        }
        for r in batch.records {
            // A batch may start before the asked offset (compressed batches come whole).
            if r.offset < target.offset {
                continue;
            }
            records.push(ConsumedRecord {
                topic: topic.clone(),
                partition: target.tp.1,
                offset: r.offset,
                key: r.key,
                value: r.value,
                headers: r.headers,
                timestamp_ms: r.timestamp,
            });
        }
    }
    let mut st = inner.state.lock().unwrap();
    if st.assignment_epoch != assignment_epoch {
        return true; // a rebalance happened meanwhile: these records are not ours to give
    }
    let Some(p) = st.assigned.get_mut(&target.tp) else {
        return true;
    };
    if p.epoch != target.epoch || p.fetch != Some(target.offset) {
        return true; // a Seek moved the partition
    }
    p.fetch = Some(next);
    if part.high_watermark >= 0 {
        p.high_watermark = Some(part.high_watermark);
    }
    if let Some(ts) = p.skip_before_ms {
        records.retain(|r| r.timestamp_ms >= ts);
        if !records.is_empty() {
            p.skip_before_ms = None;
        }
    }
    for r in records {
        st.queued_bytes += record_bytes(&r);
        st.queue.push_back(r);
    }
    true
}
