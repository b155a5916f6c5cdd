//! Per-partition queues of batches waiting to be sent, and the rules for when a batch is ready:
//! `linger.ms` elapsed, `batch.size` reached, or someone is waiting (sync send, flush).

use std::collections::VecDeque;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::batch::settle;
use super::batch::{Completion, ProducerBatch};
use super::{ReportGroup, Reports};
use crate::kafka::cluster::TopicInfo;
use crate::kafka::error::Error;
use crate::kafka::partitioner::partition_for_key;
use crate::kafka::records::{OutRecord, RecordView, Stamp};

/// A topic name the broker refuses (outside ASCII letters, digits, '.', '_', '-').
const INVALID_TOPIC_EXCEPTION: i16 = 17;

/// The sequence number after `count` records from `seq`; it wraps to 0 after i32::MAX.
fn next_sequence(seq: i32, count: usize) -> i32 {
    ((seq as i64 + count as i64) % (i32::MAX as i64 + 1)) as i32
}

/// A record on its way into a batch: borrowed (`RecordView`) while it is placed at once, owned
/// (`OutRecord`) while its topic's metadata is still unknown.
pub struct Pending<R> {
    pub id: u64,
    pub topic: Arc<str>,
    /// The partition the caller asked for, if any.
    pub partition: Option<i32>,
    pub record: R,
    /// Its encoded size at most.
    pub size: usize,
    /// When it was queued; `None` while it is placed at once (the clock is read only when a
    /// batch opens or the record has to wait for metadata).
    pub enqueued: Option<Instant>,
    pub completion: Completion,
}

struct Queue {
    topic: Arc<str>,
    partition: i32,
    /// In partition order (by `no`); only the last one takes new records.
    batches: VecDeque<ProducerBatch>,
    /// Numbers of this partition's batches in flight.
    flying: Vec<u64>,
    /// The number the next new batch gets.
    next_no: u64,
    urgent: bool,
    retry_at: Option<Instant>,
    /// The next idempotent sequence number, and the producer id it counts for.
    next_sequence: i32,
    sequence_of: Option<(i64, i16)>,
    /// Bytes of the batch that left last: a new batch starts with that much room, so a busy
    /// partition's batch does not grow (copying and touching fresh pages) from a small buffer.
    recent_bytes: usize,
}

impl Queue {
    fn new(topic: Arc<str>, partition: i32) -> Queue {
        Queue {
            topic,
            partition,
            batches: VecDeque::new(),
            flying: Vec::new(),
            next_no: 0,
            urgent: false,
            retry_at: None,
            next_sequence: 0,
            sequence_of: None,
            recent_bytes: 0,
        }
    }
}

/// The topic of the last record queued, and its queue: consecutive records mostly share
/// them, and finding them again (metadata, name, queue) cost a third of a ProduceAsync.
struct Recent {
    name: Arc<str>,
    /// Its partition count (all a record needs from its metadata), copied so that a record
    /// costs no reference count on the metadata the sender reads too.
    partitions: i32,
    /// The cluster's metadata generation `partitions` is from.
    generation: u64,
    /// (partition, index in `queues`) of the last record of this topic.
    queue: Option<(i32, usize)>,
}

/// Where the idempotent producer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotence {
    Off,
    /// A producer id is needed before anything more is sent.
    Needed,
    /// Asked for; batches wait for it.
    Requested,
    /// Sending under this producer id and epoch.
    Ready(i64, i16),
}

pub type PartitionKey = (Arc<str>, i32);

/// A batch taken out to be sent.
pub struct ReadyBatch {
    pub topic: Arc<str>,
    pub partition: i32,
    pub leader: i32,
    pub batch: ProducerBatch,
}

/// The producer settings the accumulator applies.
pub struct Limits {
    /// Bytes at which a partition's batch is full: batch.size, at most message.max.bytes.
    pub batch_bytes: usize,
    pub max_in_flight: u32,
    pub delivery_timeout: Duration,
    /// How long a record waits for its topic's metadata (max.block.ms).
    pub max_block: Duration,
}

pub struct Accumulator {
    limits: Limits,
    names: HashMap<String, Arc<str>>,
    /// Never removed, so an index stays valid.
    queues: Vec<Queue>,
    index: HashMap<PartitionKey, usize>,
    recent: Option<Recent>,
    /// Records whose topic metadata is not known yet, in arrival order.
    unresolved: Vec<Pending<OutRecord>>,
    unresolved_topics: HashSet<Arc<str>>,
    /// Finished ProduceAsync outcomes, until a flush takes them.
    pub reports: Reports,
    /// The delivery id the next record gets.
    next_id: u64,
    /// Records queued or in flight.
    pub pending: usize,
    /// Partition for keyless records, per topic; moves on when its batch leaves.
    sticky: HashMap<Arc<str>, i32>,
    flushing: bool,
    idempotence: Idempotence,
}

impl<R> Pending<R> {
    fn fail(self, timestamp: i64, e: Error) -> ReportGroup {
        let entry = super::batch::Entry {
            id: self.id,
            timestamp,
            completion: self.completion,
        };
        settle(vec![entry], &self.topic, -1, Err(e))
    }

    fn with_record<S>(self, record: S) -> (Pending<S>, R) {
        let Pending {
            id,
            topic,
            partition,
            record: old,
            size,
            enqueued,
            completion,
        } = self;
        let p = Pending {
            id,
            topic,
            partition,
            record,
            size,
            enqueued,
            completion,
        };
        (p, old)
    }
}

impl Accumulator {
    pub fn new(mut limits: Limits, idempotent: bool) -> Accumulator {
        limits.max_in_flight = limits.max_in_flight.max(1);
        Accumulator {
            limits,
            names: HashMap::new(),
            queues: Vec::new(),
            index: HashMap::new(),
            recent: None,
            unresolved: Vec::new(),
            unresolved_topics: HashSet::new(),
            reports: Reports::default(),
            next_id: 1,
            pending: 0,
            sticky: HashMap::new(),
            flushing: false,
            idempotence: if idempotent {
                Idempotence::Needed
            } else {
                Idempotence::Off
            },
        }
    }

    /// A new delivery id: records are numbered from 1 in the order they are queued.
    pub fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
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

    /// The shared name of a topic and its metadata (`lookup` asks the cluster), kept from the
    /// previous record while the name and the metadata `generation` stay the same.
    pub fn topic(
        &mut self,
        name: &str,
        generation: u64,
        lookup: impl FnOnce(&str) -> Option<Arc<TopicInfo>>,
    ) -> (Arc<str>, Option<i32>) {
        if let Some(r) = &self.recent {
            if r.generation == generation && *r.name == *name {
                return (r.name.clone(), Some(r.partitions));
            }
        }
        let interned = self.intern(name);
        let partitions = lookup(name).map(|info| partition_count(&info));
        self.recent = partitions.map(|partitions| Recent {
            name: interned.clone(),
            partitions,
            generation,
            queue: None,
        });
        (interned, partitions)
    }

    /// The index of a partition's queue, made if new.
    fn queue_index(&mut self, topic: &Arc<str>, partition: i32) -> usize {
        if let Some(r) = &self.recent {
            if let Some((p, i)) = r.queue {
                if p == partition && Arc::ptr_eq(&r.name, topic) {
                    return i;
                }
            }
        }
        let i = match self.index.get(&(topic.clone(), partition)) {
            Some(&i) => i,
            None => {
                self.queues.push(Queue::new(topic.clone(), partition));
                self.index
                    .insert((topic.clone(), partition), self.queues.len() - 1);
                self.queues.len() - 1
            }
        };
        if let Some(r) = &mut self.recent {
            if Arc::ptr_eq(&r.name, topic) {
                r.queue = Some((partition, i));
            }
        }
        i
    }

    /// Queues a record. Returns whether the sender must look now: a linger window opened, a
    /// batch filled up, the record is urgent or failed, or metadata is needed. Waking the sender
    /// for every record would cost a thread wake-up per ProduceAsync call.
    pub fn push(&mut self, p: Pending<RecordView>, partitions: Option<i32>, urgent: bool) -> bool {
        self.pending += 1;
        match partitions {
            // Records of a topic still waiting for metadata go behind the earlier ones, or a
            // refresh in between would let later records overtake them.
            Some(n) if !self.unresolved_topics.contains(&p.topic) => self.place(p, n, urgent),
            _ => {
                self.unresolved_topics.insert(p.topic.clone());
                let owned = p.record.to_owned();
                let (mut waiting, _) = p.with_record(owned);
                waiting.enqueued.get_or_insert_with(Instant::now);
                self.unresolved.push(waiting);
                true
            }
        }
    }

    fn place(&mut self, p: Pending<RecordView>, count: i32, urgent: bool) -> bool {
        let partition = match (p.partition, p.record.key) {
            (Some(n), _) if n < count => n,
            (Some(n), _) => {
                let e = Error::UnknownPartition {
                    topic: p.topic.to_string(),
                    partition: n,
                    count,
                };
                let ts = p.record.timestamp;
                let report = p.fail(ts, e);
                self.finished(1, report);
                return true;
            }
            (None, Some(key)) => partition_for_key(key, count),
            (None, None) => match self.sticky.get(&p.topic) {
                Some(&n) => n,
                None => {
                    let n = (rand::random::<u32>() % count.max(1) as u32) as i32;
                    self.sticky.insert(p.topic.clone(), n);
                    n
                }
            },
        };
        let limit = self.limits.batch_bytes;
        let i = self.queue_index(&p.topic, partition);
        let q = &mut self.queues[i];
        let opens = match q.batches.back() {
            Some(b) => !b.fits(p.size, limit),
            None => true,
        };
        if opens {
            let recent = q.batches.back().map_or(q.recent_bytes, |b| b.size());
            let room = p.size.max(recent.min(limit));
            let created = p.enqueued.unwrap_or_else(Instant::now);
            q.batches
                .push_back(ProducerBatch::new(q.next_no, created, room, limit));
            q.next_no += 1;
        }
        let batch = q.batches.back_mut().expect("a batch was just ensured");
        batch.append(&p.record, p.id, p.completion);
        q.urgent |= urgent;
        // A new batch opens a linger window, or follows a full one that can go now.
        opens || urgent
    }

    /// Places records whose topic is now known; fails those past max.block.ms, and at once
    /// those whose topic name the broker called invalid (it stays invalid; a refused
    /// permission may be granted meanwhile, so that waits like an unknown topic).
    /// Returns the topics still unknown (to refresh).
    pub fn resolve(
        &mut self,
        lookup: impl Fn(&str) -> Option<Arc<TopicInfo>>,
        missing: impl Fn(&str) -> Option<i16>,
        now: Instant,
    ) -> Vec<String> {
        let mut still = Vec::new();
        let mut unknown = Vec::new();
        // One answer per topic for the whole pass: metadata may arrive meanwhile, and records
        // placed after it would overtake the earlier ones of the same topic left waiting.
        let mut known: HashMap<Arc<str>, Option<Arc<TopicInfo>>> = HashMap::new();
        for p in std::mem::take(&mut self.unresolved) {
            let info = known
                .entry(p.topic.clone())
                .or_insert_with(|| lookup(&p.topic))
                .clone();
            match info {
                Some(t) => {
                    let urgent = matches!(p.completion, Completion::Waiter(_)) || self.flushing;
                    // The sender is the caller here: it looks at the queues next anyway.
                    let (shell, record) = p.with_record(());
                    let count = partition_count(&t);
                    let _ = self.place(shell.with_record(record.view()).0, count, urgent);
                }
                None if p
                    .enqueued
                    .is_some_and(|at| now >= at + self.limits.max_block)
                    || missing(&p.topic) == Some(INVALID_TOPIC_EXCEPTION) =>
                {
                    let e = match missing(&p.topic) {
                        Some(3) | None => Error::UnknownTopic {
                            topic: p.topic.to_string(),
                        },
                        Some(code) => Error::broker(code, Some(&p.topic), None, None),
                    };
                    let ts = p.record.timestamp;
                    let report = p.fail(ts, e);
                    self.finished(1, report);
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
        let limits = &self.limits;
        let mut out = Vec::new();
        let mut next: Option<Instant> = None;
        let mut need_metadata = false;
        let mut expired = Vec::new();
        let flushing = self.flushing;
        let producer = match self.idempotence {
            Idempotence::Ready(id, epoch) => Some((id, epoch)),
            _ => None,
        };
        // Nothing goes out before the producer id is known (but batches still expire).
        let waiting = matches!(
            self.idempotence,
            Idempotence::Needed | Idempotence::Requested
        );
        for q in self.queues.iter_mut() {
            let (topic, partition) = (&q.topic, &q.partition);
            if q.flying.len() as u32 >= limits.max_in_flight || q.batches.is_empty() {
                continue;
            }
            // Batches past delivery.timeout.ms fail rather than wait forever.
            while q
                .batches
                .front()
                .is_some_and(|b| now >= b.created + limits.delivery_timeout)
            {
                expired.push((topic.clone(), *partition, q.batches.pop_front().unwrap()));
            }
            // As many batches as are ready and may be in flight, oldest first.
            while let Some(front) = q.batches.front() {
                let flying = q.flying.len() as u32;
                if flying >= limits.max_in_flight {
                    break;
                }
                if waiting {
                    // They still expire while no producer id comes.
                    let expiry = front.created + limits.delivery_timeout;
                    next = Some(next.map_or(expiry, |n| n.min(expiry)));
                    break;
                }
                if let Some(at) = q.retry_at {
                    // A retry waits for the batches sent after it: they come back failed on
                    // its gap, and then all go again in order.
                    if flying > 0 {
                        break;
                    }
                    if now < at {
                        next = Some(next.map_or(at, |n| n.min(at)));
                        break;
                    }
                }
                let full = q.batches.len() > 1 || front.size() >= limits.batch_bytes;
                let due = front.created + linger;
                if !(q.urgent || flushing || full || now >= due) {
                    next = Some(next.map_or(due, |n| n.min(due)));
                    break;
                }
                let leader = leader_of(topic, *partition);
                if leader < 0 {
                    need_metadata = true;
                    break;
                }
                if let Some(p) = producer {
                    if q.sequence_of != Some(p) {
                        // Batches sent under the old producer id must be back before the
                        // partition's sequence starts again from 0 under the new one.
                        if flying > 0 {
                            break;
                        }
                        q.sequence_of = Some(p);
                        q.next_sequence = 0;
                    }
                }
                let mut batch = q.batches.pop_front().expect("checked above");
                q.recent_bytes = batch.size();
                match producer {
                    Some((producer_id, epoch)) => {
                        let current = batch.stamp.map(|s| (s.producer_id, s.epoch));
                        if current != Some((producer_id, epoch)) {
                            batch.stamp = Some(Stamp {
                                producer_id,
                                epoch,
                                base_sequence: q.next_sequence,
                            });
                            q.next_sequence = next_sequence(q.next_sequence, batch.entries.len());
                        }
                    }
                    // Idempotence turned off after it was stamped: sent without a stamp.
                    None => batch.stamp = None,
                }
                q.flying.push(batch.no);
                q.urgent = q.urgent && !q.batches.is_empty();
                q.retry_at = None;
                if self.sticky.get(topic) == Some(partition) {
                    self.sticky.remove(topic);
                }
                out.push(ReadyBatch {
                    topic: topic.clone(),
                    partition: *partition,
                    leader,
                    batch,
                });
            }
        }
        let timeout = self.limits.delivery_timeout;
        for (topic, partition, mut batch) in expired {
            // The broker's reason (e.g. NOT_ENOUGH_REPLICAS) says more than the timeout.
            let e = batch.last_error.take().unwrap_or_else(|| Error::Timeout {
                operation: format!("delivery to {topic}"),
                ms: timeout.as_millis() as u64,
            });
            self.fail_batch(&topic, partition, batch, &e);
        }
        (out, next, need_metadata)
    }

    fn fail_batch(&mut self, topic: &Arc<str>, partition: i32, batch: ProducerBatch, e: &Error) {
        self.sequence_lost(batch.stamp);
        let done = batch.entries.len();
        let reports = settle(batch.entries, topic, partition, Err(e.clone()));
        self.finished(done, reports);
    }

    /// Puts a batch back in its partition's order after a retriable failure. Returns whether
    /// it is now the partition's oldest unfinished batch (nothing before it queued or in flight).
    pub fn requeue(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        batch: ProducerBatch,
        retry_at: Instant,
    ) -> bool {
        let i = self.queue_index(topic, partition);
        let q = &mut self.queues[i];
        let no = batch.no;
        q.flying.retain(|n| *n != no);
        let at = q
            .batches
            .iter()
            .position(|b| b.no > no)
            .unwrap_or(q.batches.len());
        q.batches.insert(at, batch);
        q.retry_at = Some(retry_at);
        q.urgent = true;
        at == 0 && q.flying.iter().all(|n| *n > no)
    }

    /// The partition's batch `no` came back (done or failed): the next one may go.
    pub fn release(&mut self, topic: &Arc<str>, partition: i32, no: u64) {
        if let Some(&i) = self.index.get(&(topic.clone(), partition)) {
            self.queues[i].flying.retain(|n| *n != no);
        }
    }

    /// A batch sent (or numbered) under `stamp` will never be stored: the broker would see a
    /// gap in the sequence, so the next batches go under a new producer id.
    pub fn sequence_lost(&mut self, stamp: Option<Stamp>) {
        if let Some(s) = stamp {
            if self.idempotence == Idempotence::Ready(s.producer_id, s.epoch) {
                self.idempotence = Idempotence::Needed;
            }
        }
    }

    /// Whether a producer id must be asked for now (one is needed and records wait for it);
    /// the caller asks. A client that never produces never asks.
    pub fn take_producer_id_request(&mut self) -> bool {
        let needed = self.idempotence == Idempotence::Needed && self.pending > 0;
        if needed {
            self.idempotence = Idempotence::Requested;
        }
        needed
    }

    pub fn set_producer_id(&mut self, id: i64, epoch: i16) {
        self.idempotence = Idempotence::Ready(id, epoch);
    }

    /// The broker cannot give a producer id: send without idempotence, `max_in_flight` at once.
    pub fn idempotence_off(&mut self, max_in_flight: u32) {
        self.idempotence = Idempotence::Off;
        self.limits.max_in_flight = max_in_flight.max(1);
    }

    /// Back to waiting for a producer id, which will be asked for again.
    pub fn producer_id_failed(&mut self) {
        self.idempotence = Idempotence::Needed;
    }

    /// Counts `done` records as finished and keeps their reports for Flush.
    pub fn finished(&mut self, done: usize, reports: ReportGroup) {
        self.pending -= done;
        self.reports.push(reports);
    }

    /// Everything queued goes out without waiting for linger.ms.
    pub fn urgent_all(&mut self) {
        self.flushing = true;
        for q in self.queues.iter_mut() {
            q.urgent = !q.batches.is_empty();
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
        for p in std::mem::take(&mut self.unresolved) {
            let ts = p.record.timestamp;
            let report = p.fail(ts, e.clone());
            self.finished(1, report);
        }
        let mut all = Vec::new();
        for q in self.queues.iter_mut() {
            let (topic, partition) = (q.topic.clone(), q.partition);
            all.extend(q.batches.drain(..).map(|b| (topic.clone(), partition, b)));
        }
        for (topic, partition, batch) in all {
            self.fail_batch(&topic, partition, batch, e);
        }
    }
}

fn partition_count(topic: &TopicInfo) -> i32 {
    i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::cluster::PartitionInfo;

    /// What `Accumulator::topic` gives for a topic whose metadata is known.
    fn known(t: &TopicInfo) -> Option<i32> {
        Some(partition_count(t))
    }

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

    fn limits(batch_bytes: usize, max_in_flight: u32) -> Limits {
        Limits {
            batch_bytes,
            max_in_flight,
            delivery_timeout: Duration::from_secs(60),
            max_block: Duration::from_secs(1),
        }
    }

    static VALUE: [u8; 100] = [b'v'; 100];

    fn record(key: Option<&'static str>) -> RecordView<'static> {
        RecordView {
            key: key.map(str::as_bytes),
            value: Some(&VALUE),
            headers: &[],
            timestamp: 0,
        }
    }

    /// Batch bytes that hold exactly `n` of these records.
    fn holding(n: usize) -> usize {
        61 + n * record(None).size()
    }

    fn pending(
        id: u64,
        key: Option<&'static str>,
        partition: Option<i32>,
        now: Instant,
    ) -> Pending<RecordView<'static>> {
        let record = record(key);
        Pending {
            id,
            topic: Arc::from("t"),
            partition,
            size: record.size(),
            record,
            enqueued: Some(now),
            completion: Completion::Report,
        }
    }

    fn ids(b: &ReadyBatch) -> Vec<u64> {
        b.batch.entries.iter().map(|e| e.id).collect()
    }

    #[test]
    fn linger_then_ready_in_order_one_batch_in_flight() {
        let now = Instant::now();
        let t = topic(3);
        let mut acc = Accumulator::new(limits(1_000_000, 1), false);
        for i in 0..5 {
            acc.push(pending(i, None, Some(1), now), known(&t), false);
        }
        let linger = Duration::from_millis(5);
        let (ready, next, _) = acc.ready(now, linger, |_, _| 1);
        assert!(ready.is_empty());
        assert_eq!(next, Some(now + linger));
        let (ready, _, _) = acc.ready(now + linger, linger, |_, _| 1);
        assert_eq!(ready.len(), 1);
        assert_eq!(ids(&ready[0]), [0, 1, 2, 3, 4]);
        // While in flight, new records for the partition wait.
        acc.push(pending(9, None, Some(1), now), known(&t), true);
        assert!(acc.ready(now + linger, linger, |_, _| 1).0.is_empty());
        // A retry puts the batch back before the newer record.
        let batch = ready.into_iter().next().unwrap();
        acc.requeue(&batch.topic, 1, batch.batch, now);
        let (ready, _, _) = acc.ready(now + linger, linger, |_, _| 1);
        assert_eq!(ids(&ready[0]), [0, 1, 2, 3, 4]);
        acc.release(&ready[0].topic, 1, ready[0].batch.no);
        let (ready, _, _) = acc.ready(now + linger, linger, |_, _| 1);
        assert_eq!(ids(&ready[0]), [9]);
    }

    #[test]
    fn max_in_flight_pipelines_batches_of_a_partition() {
        let now = Instant::now();
        let t = topic(1);
        let mut acc = Accumulator::new(limits(holding(2), 2), false);
        for i in 0..6 {
            acc.push(pending(i, None, Some(0), now), known(&t), true);
        }
        let linger = Duration::from_millis(5);
        let first = acc.ready(now, linger, |_, _| 1).0;
        assert_eq!(first.len(), 2, "two batches in flight, taken at once");
        assert!(acc.ready(now, linger, |_, _| 1).0.is_empty(), "not a third");
        acc.release(&first[0].topic, 0, first[0].batch.no);
        let third = acc.ready(now, linger, |_, _| 1).0;
        let all: Vec<u64> = first.iter().chain(&third).flat_map(ids).collect();
        assert_eq!(all, [0, 1, 2, 3, 4, 5], "in order");
    }

    #[test]
    fn batch_size_limits_a_batch() {
        let now = Instant::now();
        let t = topic(1);
        let mut acc = Accumulator::new(limits(holding(2), 1), false);
        let wakes: Vec<bool> = (0..5)
            .map(|i| acc.push(pending(i, None, None, now), known(&t), false))
            .collect();
        assert_eq!(
            wakes,
            [true, false, true, false, true],
            "the sender hears of each new batch, not of every record"
        );
        let (ready, _, _) = acc.ready(now, Duration::from_secs(10), |_, _| 1);
        assert_eq!(
            ids(&ready[0]),
            [0, 1],
            "full batches go without waiting for linger"
        );
    }

    #[test]
    fn keys_use_murmur2_and_bad_partitions_fail() {
        let now = Instant::now();
        let t = topic(6);
        let mut acc = Accumulator::new(limits(1_000_000, 1), false);
        acc.push(pending(1, Some("key-1"), None, now), known(&t), true);
        acc.push(pending(2, None, Some(6), now), known(&t), true);
        let (ready, _, _) = acc.ready(now, Duration::ZERO, |_, _| 1);
        assert_eq!(ready[0].partition, partition_for_key(b"key-1", 6));
        let report = std::mem::take(&mut acc.reports).iter().next().unwrap();
        assert_eq!(report.id, 2);
        assert!(matches!(report.result, Err(Error::UnknownPartition { .. })));
    }

    #[test]
    fn records_waiting_for_metadata_are_not_overtaken() {
        let now = Instant::now();
        let t = topic(1);
        let mut acc = Accumulator::new(limits(1_000_000, 1), false);
        acc.push(pending(1, None, Some(0), now), None, false);
        // Metadata arrived: a later record must still queue behind the first.
        acc.push(pending(2, None, Some(0), now), known(&t), false);
        acc.resolve(|_| Some(Arc::new(topic(1))), |_| None, now);
        let (ready, _, _) = acc.ready(now, Duration::ZERO, |_, _| 1);
        assert_eq!(ids(&ready[0]), [1, 2]);
    }

    #[test]
    fn metadata_arriving_during_a_resolve_pass_does_not_reorder() {
        let now = Instant::now();
        let mut acc = Accumulator::new(limits(1_000_000, 1), false);
        for i in 1..=3 {
            acc.push(pending(i, None, Some(0), now), None, false);
        }
        // The refresh lands between the first lookup and the second.
        let calls = std::cell::Cell::new(0);
        let lookup = |_: &str| {
            calls.set(calls.get() + 1);
            (calls.get() > 1).then(|| Arc::new(topic(1)))
        };
        acc.resolve(lookup, |_| None, now);
        acc.resolve(lookup, |_| None, now);
        let (ready, _, _) = acc.ready(now, Duration::ZERO, |_, _| 1);
        assert_eq!(ids(&ready[0]), [1, 2, 3]);
    }

    /// Every batch ready now (one call takes one batch per partition).
    fn all_ready(acc: &mut Accumulator, now: Instant) -> Vec<ReadyBatch> {
        let mut out = Vec::new();
        loop {
            let got = acc.ready(now, Duration::ZERO, |_, _| 1).0;
            if got.is_empty() {
                return out;
            }
            out.extend(got);
        }
    }

    fn seqs(b: &[ReadyBatch]) -> Vec<(u64, i64, i32)> {
        b.iter()
            .map(|r| {
                let s = r.batch.stamp.unwrap();
                (r.batch.entries[0].id, s.producer_id, s.base_sequence)
            })
            .collect()
    }

    #[test]
    fn idempotent_batches_are_numbered_once_and_retried_in_order() {
        let now = Instant::now();
        let t = topic(1);
        let mut acc = Accumulator::new(limits(holding(2), 5), true);
        assert!(
            !acc.take_producer_id_request(),
            "nothing to send: no request"
        );
        for i in 0..6 {
            acc.push(pending(i, None, Some(0), now), known(&t), true);
        }
        assert!(all_ready(&mut acc, now).is_empty(), "no producer id yet");
        assert!(acc.take_producer_id_request());
        assert!(!acc.take_producer_id_request(), "asked once");
        acc.set_producer_id(9, 0);
        let sent = all_ready(&mut acc, now);
        assert_eq!(seqs(&sent), [(0, 9, 0), (2, 9, 2), (4, 9, 4)]);
        // The first fails, the later two come back out of sequence: all three go again, in
        // order, with the numbers they had.
        let mut sent = sent.into_iter();
        let (a, b, c) = (
            sent.next().unwrap(),
            sent.next().unwrap(),
            sent.next().unwrap(),
        );
        assert!(acc.requeue(&a.topic, 0, a.batch, now), "the oldest");
        assert!(all_ready(&mut acc, now).is_empty(), "waits for the rest");
        assert!(!acc.requeue(&c.topic, 0, c.batch, now));
        assert!(!acc.requeue(&b.topic, 0, b.batch, now));
        let again = all_ready(&mut acc, now);
        assert_eq!(seqs(&again), [(0, 9, 0), (2, 9, 2), (4, 9, 4)]);
        // A lost sequence: a new producer id, and the partition counts from 0 once its
        // batches are back.
        acc.sequence_lost(again[0].batch.stamp);
        assert!(acc.take_producer_id_request());
        acc.set_producer_id(10, 0);
        for b in again {
            acc.requeue(&b.topic, 0, b.batch, now);
        }
        let renumbered = all_ready(&mut acc, now);
        assert_eq!(seqs(&renumbered), [(0, 10, 0), (2, 10, 2), (4, 10, 4)]);
        // The broker gives no producer id any more: the batches go again without stamps.
        acc.sequence_lost(renumbered[0].batch.stamp);
        assert!(acc.take_producer_id_request());
        acc.idempotence_off(1);
        for b in renumbered {
            acc.requeue(&b.topic, 0, b.batch, now);
        }
        let plain = all_ready(&mut acc, now);
        assert_eq!(plain.len(), 1, "one at a time without idempotence");
        assert!(plain[0].batch.stamp.is_none());
    }

    #[test]
    fn sequences_wrap_after_i32_max() {
        assert_eq!(next_sequence(i32::MAX - 1, 1), i32::MAX);
        assert_eq!(next_sequence(i32::MAX - 1, 3), 1);
    }

    #[test]
    fn topic_metadata_is_kept_until_it_changes() {
        let mut acc = Accumulator::new(limits(1_000_000, 1), false);
        let calls = std::cell::Cell::new(0);
        let lookup = |_: &str| {
            calls.set(calls.get() + 1);
            Some(Arc::new(topic(2)))
        };
        let (a, _) = acc.topic("t", 1, lookup);
        let (b, info) = acc.topic("t", 1, lookup);
        assert!(Arc::ptr_eq(&a, &b) && info.is_some());
        assert_eq!(calls.get(), 1, "the same topic and generation: no lookup");
        acc.topic("t", 2, lookup);
        acc.topic("u", 2, lookup);
        assert_eq!(calls.get(), 3, "a new generation or another topic looks up");
        // Unknown topics are not kept.
        acc.topic("gone", 2, |_| None);
        acc.topic("gone", 2, |_| None);
        let (_, info) = acc.topic("gone", 2, lookup);
        assert!(info.is_some());
    }

    #[test]
    fn unknown_topics_fail_after_max_block() {
        let now = Instant::now();
        let mut acc = Accumulator::new(limits(1_000_000, 1), false);
        acc.push(pending(1, None, None, now), None, false);
        assert_eq!(acc.resolve(|_| None, |_| Some(3), now), ["t"]);
        assert!(acc
            .resolve(|_| None, |_| Some(3), now + Duration::from_secs(2))
            .is_empty());
        let r = std::mem::take(&mut acc.reports).iter().next().unwrap();
        assert!(matches!(r.result, Err(Error::UnknownTopic { .. })));
        assert_eq!(acc.pending, 0);
    }

    #[test]
    fn an_invalid_topic_name_fails_at_once_a_refused_permission_waits() {
        let now = Instant::now();
        let mut acc = Accumulator::new(limits(1_000_000, 1), false);
        acc.push(pending(1, None, None, now), None, false);
        // TOPIC_AUTHORIZATION_FAILED: an ACL may be granted before max.block.ms.
        assert_eq!(acc.resolve(|_| None, |_| Some(29), now), ["t"]);
        assert!(acc.resolve(|_| None, |_| Some(17), now).is_empty());
        let r = std::mem::take(&mut acc.reports).iter().next().unwrap();
        assert!(
            matches!(r.result, Err(Error::Broker { code: 17, .. })),
            "{r:?}"
        );
        assert_eq!(acc.pending, 0);
    }

    #[test]
    fn batches_past_the_delivery_timeout_fail_whole() {
        let now = Instant::now();
        let t = topic(1);
        let mut acc = Accumulator::new(limits(1_000_000, 1), false);
        acc.push(pending(1, None, Some(0), now), known(&t), false);
        acc.push(pending(2, None, Some(0), now), known(&t), false);
        let later = now + Duration::from_secs(61);
        assert!(acc.ready(later, Duration::ZERO, |_, _| 1).0.is_empty());
        let failed: Vec<u64> = std::mem::take(&mut acc.reports)
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(failed, [1, 2]);
        assert_eq!(acc.pending, 0);
    }
}
