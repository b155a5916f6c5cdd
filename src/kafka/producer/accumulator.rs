//! Per-partition queues of records waiting to be sent, and the rules for when a queue is ready:
//! `linger.ms` elapsed, `batch.size` reached, or someone is waiting (sync send, flush).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::chunked::Chunked;
use super::{Delivered, DeliveryReport};
use crate::kafka::cluster::TopicInfo;
use crate::kafka::error::{Error, Result};
use crate::kafka::partitioner::partition_for_key;
use crate::kafka::records::OutRecord;

/// How a record's outcome reaches its producer.
pub enum Completion {
    /// Kept for the next flush (ProduceAsync).
    Report,
    /// Someone awaits it (Produce, ProduceBatch).
    Waiter(oneshot::Sender<Result<Delivered>>),
}

pub struct Pending {
    pub id: u64,
    pub topic: Arc<str>,
    /// The partition the caller asked for, if any.
    pub partition: Option<i32>,
    pub record: OutRecord,
    pub size: usize,
    pub enqueued: Instant,
    /// delivery.timeout.ms from enqueue.
    pub deadline: Instant,
    /// max.block.ms from enqueue: how long to wait for an unknown topic's metadata.
    pub metadata_deadline: Instant,
    pub attempts: u32,
    pub completion: Completion,
}

#[derive(Default)]
struct Queue {
    records: Chunked<Pending>,
    bytes: usize,
    /// Batches of this partition in flight.
    in_flight: u32,
    urgent: bool,
    retry_at: Option<Instant>,
}

pub type PartitionKey = (Arc<str>, i32);

/// Records for one partition, taken out to be sent together.
pub struct ReadyBatch {
    pub topic: Arc<str>,
    pub partition: i32,
    pub leader: i32,
    pub records: Vec<Pending>,
}

pub struct Accumulator {
    /// Bytes at which a partition's batch is full: batch.size, at most message.max.bytes.
    batch_limit: usize,
    max_in_flight: u32,
    names: HashMap<String, Arc<str>>,
    queues: HashMap<PartitionKey, Queue>,
    /// Records whose topic metadata is not known yet, in arrival order.
    unresolved: Vec<Pending>,
    unresolved_topics: HashSet<Arc<str>>,
    /// Finished ProduceAsync outcomes, until a flush takes them.
    pub reports: VecDeque<DeliveryReport>,
    /// Records queued or in flight.
    pub pending: usize,
    /// Partition for keyless records, per topic; moves on when its batch leaves.
    sticky: HashMap<Arc<str>, i32>,
    flushing: bool,
}

impl Pending {
    /// Hands the outcome to a waiting caller, or returns the report Flush will give out.
    pub fn finish(self, partition: i32, result: Result<Delivered>) -> Option<DeliveryReport> {
        match self.completion {
            Completion::Waiter(tx) => {
                let _ = tx.send(result);
                None
            }
            Completion::Report => Some(DeliveryReport {
                id: self.id,
                topic: self.topic,
                partition,
                result,
            }),
        }
    }
}

impl Accumulator {
    pub fn new(batch_limit: usize, max_in_flight: u32) -> Accumulator {
        Accumulator {
            batch_limit,
            max_in_flight: max_in_flight.max(1),
            names: HashMap::new(),
            queues: HashMap::new(),
            unresolved: Vec::new(),
            unresolved_topics: HashSet::new(),
            reports: VecDeque::new(),
            pending: 0,
            sticky: HashMap::new(),
            flushing: false,
        }
    }

    /// The shared name of a topic, so queued records do not each carry a copy.
    pub fn intern(&mut self, topic: &str) -> Arc<str> {
        if let Some(a) = self.names.get(topic) {
            return a.clone();
        }
        if self.names.len() >= 10_000 {
            // Bounded: an application writing to ever new topic names must not grow this forever.
            self.names.clear();
        }
        let a: Arc<str> = Arc::from(topic);
        self.names.insert(topic.to_string(), a.clone());
        a
    }

    /// Queues a record. Returns whether the sender must look now: a linger window opened, a
    /// batch filled up, the record is urgent or failed, or metadata is needed. Waking the sender
    /// for every record would cost a thread wake-up per ProduceAsync call.
    pub fn push(&mut self, p: Pending, topic: Option<&TopicInfo>, urgent: bool) -> bool {
        self.pending += 1;
        match topic {
            // Records of a topic still waiting for metadata go behind the earlier ones, or a
            // refresh in between would let later records overtake them.
            Some(t) if !self.unresolved_topics.contains(&p.topic) => self.place(p, t, urgent),
            _ => {
                self.unresolved_topics.insert(p.topic.clone());
                self.unresolved.push(p);
                true
            }
        }
    }

    fn place(&mut self, p: Pending, topic: &TopicInfo, urgent: bool) -> bool {
        let count = topic.partitions.len() as i32;
        let partition = match (p.partition, &p.record.key) {
            (Some(n), _) if n < count => n,
            (Some(n), _) => {
                let e = Error::UnknownPartition {
                    topic: topic.name.clone(),
                    partition: n,
                    count,
                };
                self.complete(p, -1, Err(e));
                return true;
            }
            (None, Some(key)) => partition_for_key(key, count),
            (None, None) => *self
                .sticky
                .entry(p.topic.clone())
                .or_insert_with(|| (rand::random::<u32>() % count.max(1) as u32) as i32),
        };
        let q = self.queues.entry((p.topic.clone(), partition)).or_default();
        let opens_window = q.records.is_empty();
        let before = q.bytes;
        q.bytes += p.size;
        q.urgent |= urgent;
        q.records.push_back(p);
        opens_window || urgent || (before < self.batch_limit && q.bytes >= self.batch_limit)
    }

    /// Places records whose topic is now known; fails those past max.block.ms.
    /// Returns the topics still unknown (to refresh).
    pub fn resolve(
        &mut self,
        lookup: impl Fn(&str) -> Option<Arc<TopicInfo>>,
        missing: impl Fn(&str) -> Option<i16>,
        now: Instant,
    ) -> Vec<String> {
        let mut still = Vec::new();
        let mut unknown = Vec::new();
        for p in std::mem::take(&mut self.unresolved) {
            match lookup(&p.topic) {
                Some(t) => {
                    let urgent = matches!(p.completion, Completion::Waiter(_)) || self.flushing;
                    // The sender is the caller here: it looks at the queues next anyway.
                    let _ = self.place(p, &t, urgent);
                }
                None if now >= p.metadata_deadline => {
                    let e = match missing(&p.topic) {
                        Some(3) | None => Error::UnknownTopic {
                            topic: p.topic.to_string(),
                        },
                        Some(code) => Error::broker(code, Some(&p.topic), None, None),
                    };
                    self.complete(p, -1, Err(e));
                }
                None => {
                    if !unknown.iter().any(|t: &String| **t == *p.topic) {
                        unknown.push(p.topic.to_string());
                    }
                    still.push(p);
                }
            }
        }
        self.unresolved_topics = still.iter().map(|p| p.topic.clone()).collect();
        self.unresolved = still;
        unknown
    }

    pub fn has_unresolved(&self) -> bool {
        !self.unresolved.is_empty()
    }

    /// Takes the batches ready to go; returns them, the next time something becomes ready,
    /// and whether a leader is unknown (metadata should be refreshed).
    pub fn ready(
        &mut self,
        now: Instant,
        linger: Duration,
        leader_of: impl Fn(&str, i32) -> i32,
    ) -> (Vec<ReadyBatch>, Option<Instant>, bool) {
        let limit = self.batch_limit;
        let mut out = Vec::new();
        let mut next: Option<Instant> = None;
        let mut need_metadata = false;
        let mut expired = Vec::new();
        let flushing = self.flushing;
        for ((topic, partition), q) in self.queues.iter_mut() {
            if q.in_flight >= self.max_in_flight || q.records.is_empty() {
                continue;
            }
            // Records past delivery.timeout.ms fail rather than wait forever.
            while q.records.front().is_some_and(|p| now >= p.deadline) {
                let p = q.records.pop_front().unwrap();
                q.bytes -= p.size;
                expired.push(p);
            }
            let Some(front) = q.records.front() else {
                continue;
            };
            if let Some(at) = q.retry_at {
                if now < at {
                    next = Some(next.map_or(at, |n| n.min(at)));
                    continue;
                }
            }
            let due = front.enqueued + linger;
            if !(q.urgent || flushing || q.bytes >= limit || now >= due) {
                next = Some(next.map_or(due, |n| n.min(due)));
                continue;
            }
            let leader = leader_of(topic, *partition);
            if leader < 0 {
                need_metadata = true;
                continue;
            }
            let mut records = Vec::new();
            let mut bytes = 0;
            while let Some(p) = q.records.front() {
                if !records.is_empty() && bytes + p.size > limit {
                    break;
                }
                bytes += p.size;
                records.push(q.records.pop_front().unwrap());
            }
            q.bytes -= bytes;
            q.in_flight += 1;
            q.urgent = q.urgent && !q.records.is_empty();
            q.retry_at = None;
            if self.sticky.get(topic) == Some(partition) {
                self.sticky.remove(topic);
            }
            out.push(ReadyBatch {
                topic: topic.clone(),
                partition: *partition,
                leader,
                records,
            });
        }
        for p in expired {
            let e = Error::Timeout {
                operation: format!("delivery to {}", p.topic),
                ms: (p.deadline - p.enqueued).as_millis() as u64,
            };
            self.complete(p, -1, Err(e));
        }
        (out, next, need_metadata)
    }

    /// Puts a batch back at the front of its queue after a retriable failure.
    pub fn requeue(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        records: Vec<Pending>,
        retry_at: Instant,
    ) {
        let q = self.queues.entry((topic.clone(), partition)).or_default();
        for p in records.into_iter().rev() {
            q.bytes += p.size;
            q.records.push_front(p);
        }
        q.in_flight = q.in_flight.saturating_sub(1);
        q.retry_at = Some(retry_at);
        q.urgent = true;
    }

    /// The partition's batch came back (done or failed): the next one may go.
    pub fn release(&mut self, topic: &Arc<str>, partition: i32) {
        if let Some(q) = self.queues.get_mut(&(topic.clone(), partition)) {
            q.in_flight = q.in_flight.saturating_sub(1);
        }
    }

    /// Finishes a record with its outcome.
    pub fn complete(&mut self, p: Pending, partition: i32, result: Result<Delivered>) {
        let report = p.finish(partition, result);
        self.finished(1, report.into_iter().collect());
    }

    /// Counts `done` records as finished and keeps their reports for Flush.
    pub fn finished(&mut self, done: usize, reports: Vec<DeliveryReport>) {
        self.pending -= done;
        self.reports.extend(reports);
    }

    /// Everything queued goes out without waiting for linger.ms.
    pub fn urgent_all(&mut self) {
        self.flushing = true;
        for q in self.queues.values_mut() {
            q.urgent = !q.records.is_empty();
        }
    }

    /// Called when nothing is pending any more: linger applies again.
    pub fn settle(&mut self) {
        if self.pending == 0 {
            self.flushing = false;
        }
    }

    /// Fails every queued (not in-flight) record.
    pub fn fail_all(&mut self, e: &Error) {
        self.unresolved_topics.clear();
        let mut all: Vec<(Pending, i32)> = self.unresolved.drain(..).map(|p| (p, -1)).collect();
        for ((_, partition), q) in self.queues.iter_mut() {
            q.bytes = 0;
            all.extend(q.records.take_all().map(|p| (p, *partition)));
        }
        for (p, partition) in all {
            self.complete(p, partition, Err(e.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::cluster::PartitionInfo;
    use bytes::Bytes;

    fn topic(n: usize) -> TopicInfo {
        TopicInfo {
            name: "t".into(),
            internal: false,
            partitions: vec![
                PartitionInfo {
                    leader: 1,
                    leader_epoch: 0
                };
                n
            ],
        }
    }

    fn pending(id: u64, key: Option<&str>, partition: Option<i32>, now: Instant) -> Pending {
        Pending {
            id,
            topic: Arc::from("t"),
            partition,
            record: OutRecord {
                key: key.map(|k| Bytes::from(k.to_string())),
                value: Some(Bytes::from_static(b"v")),
                headers: vec![],
                timestamp: 0,
            },
            size: 100,
            enqueued: now,
            deadline: now + Duration::from_secs(60),
            metadata_deadline: now + Duration::from_secs(1),
            attempts: 0,
            completion: Completion::Report,
        }
    }

    #[test]
    fn linger_then_ready_in_order_one_batch_in_flight() {
        let now = Instant::now();
        let t = topic(3);
        let mut acc = Accumulator::new(1_000_000, 1);
        for i in 0..5 {
            acc.push(pending(i, None, Some(1), now), Some(&t), false);
        }
        let linger = Duration::from_millis(5);
        let (ready, next, _) = acc.ready(now, linger, |_, _| 1);
        assert!(ready.is_empty());
        assert_eq!(next, Some(now + linger));
        let (ready, _, _) = acc.ready(now + linger, linger, |_, _| 1);
        assert_eq!(ready.len(), 1);
        let ids: Vec<u64> = ready[0].records.iter().map(|p| p.id).collect();
        assert_eq!(ids, [0, 1, 2, 3, 4]);
        // While in flight, new records for the partition wait.
        acc.push(pending(9, None, Some(1), now), Some(&t), true);
        assert!(acc.ready(now + linger, linger, |_, _| 1).0.is_empty());
        // A retry puts the batch back before the newer record.
        let batch = ready.into_iter().next().unwrap();
        acc.requeue(&batch.topic, 1, batch.records, now);
        let (ready, _, _) = acc.ready(now + linger, linger, |_, _| 1);
        let ids: Vec<u64> = ready[0].records.iter().map(|p| p.id).collect();
        assert_eq!(ids, [0, 1, 2, 3, 4, 9]);
    }

    #[test]
    fn max_in_flight_pipelines_batches_of_a_partition() {
        let now = Instant::now();
        let t = topic(1);
        let mut acc = Accumulator::new(250, 2);
        for i in 0..6 {
            acc.push(pending(i, None, Some(0), now), Some(&t), true);
        }
        let linger = Duration::from_millis(5);
        let first = acc.ready(now, linger, |_, _| 1).0;
        let second = acc.ready(now, linger, |_, _| 1).0;
        assert_eq!((first.len(), second.len()), (1, 1), "two batches in flight");
        assert!(acc.ready(now, linger, |_, _| 1).0.is_empty(), "not a third");
        acc.release(&first[0].topic, 0);
        let third = acc.ready(now, linger, |_, _| 1).0;
        let ids: Vec<u64> = [&first, &second, &third]
            .iter()
            .flat_map(|b| b[0].records.iter().map(|p| p.id))
            .collect();
        assert_eq!(ids, [0, 1, 2, 3, 4, 5], "in order");
    }

    #[test]
    fn batch_size_limits_a_batch() {
        let now = Instant::now();
        let t = topic(1);
        let mut acc = Accumulator::new(250, 1);
        for i in 0..5 {
            acc.push(pending(i, None, None, now), Some(&t), false);
        }
        let (ready, _, _) = acc.ready(now, Duration::from_secs(10), |_, _| 1);
        assert_eq!(
            ready[0].records.len(),
            2,
            "full batches go without waiting for linger"
        );
    }

    #[test]
    fn keys_use_murmur2_and_bad_partitions_fail() {
        let now = Instant::now();
        let t = topic(6);
        let mut acc = Accumulator::new(1_000_000, 1);
        acc.push(pending(1, Some("key-1"), None, now), Some(&t), true);
        acc.push(pending(2, None, Some(6), now), Some(&t), true);
        let (ready, _, _) = acc.ready(now, Duration::ZERO, |_, _| 1);
        assert_eq!(ready[0].partition, partition_for_key(b"key-1", 6));
        let report = acc.reports.pop_front().unwrap();
        assert_eq!(report.id, 2);
        assert!(matches!(report.result, Err(Error::UnknownPartition { .. })));
    }

    #[test]
    fn records_waiting_for_metadata_are_not_overtaken() {
        let now = Instant::now();
        let t = topic(1);
        let mut acc = Accumulator::new(1_000_000, 1);
        acc.push(pending(1, None, Some(0), now), None, false);
        // Metadata arrived: a later record must still queue behind the first.
        acc.push(pending(2, None, Some(0), now), Some(&t), false);
        acc.resolve(|_| Some(Arc::new(topic(1))), |_| None, now);
        let (ready, _, _) = acc.ready(now, Duration::ZERO, |_, _| 1);
        let ids: Vec<u64> = ready[0].records.iter().map(|p| p.id).collect();
        assert_eq!(ids, [1, 2]);
    }

    #[test]
    fn unknown_topics_fail_after_max_block() {
        let now = Instant::now();
        let mut acc = Accumulator::new(1_000_000, 1);
        acc.push(pending(1, None, None, now), None, false);
        assert_eq!(acc.resolve(|_| None, |_| Some(3), now), ["t"]);
        assert!(acc
            .resolve(|_| None, |_| Some(3), now + Duration::from_secs(2))
            .is_empty());
        let r = acc.reports.pop_front().unwrap();
        assert!(matches!(r.result, Err(Error::UnknownTopic { .. })));
        assert_eq!(acc.pending, 0);
    }
}
