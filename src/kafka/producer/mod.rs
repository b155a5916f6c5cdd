//! The producer: records are appended to per-partition queues (the accumulator) and a background
//! sender turns ready queues into one Produce request per broker. With idempotence (the default
//! with acks=all) up to 5 batches per partition are in flight and sequence numbers keep the
//! partition's order through retries; without it, one batch at a time keeps it
//! (`max.in.flight.requests.per.connection` allows more, without that guarantee).

mod accumulator;
mod batch;
mod reports;
mod sender;
mod turns;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{oneshot, Notify};

use super::cluster::Cluster;
use super::error::{Error, Result};
use super::records::{RecordView, BATCH_OVERHEAD};
use accumulator::{Accumulator, Limits, Pending};
use batch::Completion;
pub use reports::{DeliveryReport, ReportGroup, Reports};

/// A record to produce.
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub topic: String,
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Creation time (ms since the Unix epoch); now when `None`.
    pub timestamp_ms: Option<i64>,
}

/// A record to produce, borrowed: its bytes are encoded straight into their batch, so a caller
/// holding them elsewhere (the 1C boundary) need not copy them first.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub topic: &'a str,
    pub partition: Option<i32>,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [(String, Option<Bytes>)],
    /// Creation time (ms since the Unix epoch); now when `None`.
    pub timestamp_ms: Option<i64>,
}

impl Record {
    pub fn as_ref(&self) -> RecordRef<'_> {
        RecordRef {
            topic: &self.topic,
            partition: self.partition,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            headers: &self.headers,
            timestamp_ms: self.timestamp_ms,
        }
    }
}

/// Where the broker put a record.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    pub topic: Arc<str>,
    pub partition: i32,
    /// The record's offset; -1 with acks=0 (the broker does not say).
    pub offset: i64,
    pub timestamp_ms: i64,
}

/// What Flush returns: reports finished since the previous flush, and how many are still out.
#[derive(Debug)]
pub struct FlushOutcome {
    pub reports: Reports,
    pub pending: usize,
}

pub(crate) struct Shared {
    cluster: Arc<Cluster>,
    acc: Mutex<Accumulator>,
    /// Wakes the sender: new records, a finished request, a flush.
    wake: Notify,
    /// Signalled whenever a record finishes.
    finished: Notify,
    closed: AtomicBool,
    /// The order Produce requests leave in, per broker.
    turns: Arc<turns::Turns>,
}

pub struct Producer {
    shared: Arc<Shared>,
}

fn now_ms() -> i64 {
    // Seconds and millis apart: `as_millis` divides a u128, which showed per ProduceAsync.
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| {
            d.as_secs() as i64 * 1000 + i64::from(d.subsec_millis())
        })
}

impl Producer {
    /// Starts the sender on the current runtime.
    pub fn start(cluster: Arc<Cluster>) -> Producer {
        let config = &cluster.config;
        let shared = Arc::new(Shared {
            acc: Mutex::new(Accumulator::new(
                Limits {
                    batch_bytes: config.batch_size.min(config.message_max_bytes),
                    max_in_flight: config.in_flight(config.idempotent()),
                    delivery_timeout: Duration::from_millis(config.delivery_timeout_ms),
                    max_block: Duration::from_millis(config.max_block_ms),
                },
                config.idempotent(),
            )),
            cluster,
            wake: Notify::new(),
            finished: Notify::new(),
            closed: AtomicBool::new(false),
            turns: Arc::default(),
        });
        tokio::spawn(sender::run(shared.clone()));
        Producer { shared }
    }

    /// Queues a record; returns its id and whether the sender should look now.
    fn enqueue(
        &self,
        record: RecordRef,
        completion: Completion,
        urgent: bool,
    ) -> Result<(u64, bool)> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        let config = &self.shared.cluster.config;
        if let Some(p) = record.partition {
            if p < 0 {
                return Err(Error::UnknownPartition {
                    topic: record.topic.to_string(),
                    partition: p,
                    count: 0,
                });
            }
        }
        let out = RecordView {
            key: record.key,
            value: record.value,
            headers: record.headers,
            timestamp: record.timestamp_ms.unwrap_or_else(now_ms),
        };
        let size = out.size();
        if size + BATCH_OVERHEAD > config.message_max_bytes {
            return Err(Error::MessageTooLarge {
                size: size + BATCH_OVERHEAD,
                max: config.message_max_bytes,
            });
        }
        let cluster = &self.shared.cluster;
        let generation = cluster.generation();
        let mut acc = self.shared.acc.lock().unwrap();
        // Numbered under the lock already held: an atomic of its own cost as much again.
        let id = acc.next_id();
        let (name, topic) = acc.topic(record.topic, generation, |t| cluster.topic(t));
        let pending = Pending {
            id,
            topic: name,
            partition: record.partition,
            record: out,
            size,
            enqueued: None,
            completion,
        };
        let wake = acc.push(pending, topic, urgent);
        Ok((id, wake))
    }

    /// Sends one record and waits until the broker acknowledged it (sent at once, no linger).
    pub async fn send(&self, record: Record) -> Result<Delivered> {
        let (tx, rx) = oneshot::channel();
        self.enqueue(record.as_ref(), Completion::Waiter(tx), true)?;
        sender::send_now(&self.shared).await;
        rx.await.unwrap_or(Err(Error::Closed))
    }

    /// Queues a record; its report comes from a later `flush`. Returns the delivery id.
    pub fn send_async(&self, record: RecordRef) -> Result<u64> {
        let (id, wake) = self.enqueue(record, Completion::Report, false)?;
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(id)
    }

    /// Sends several records concurrently and waits for all; results in input order.
    pub async fn send_batch(&self, records: Vec<Record>) -> Vec<Result<Delivered>> {
        let refs: Vec<RecordRef> = records.iter().map(Record::as_ref).collect();
        self.send_batch_refs(&refs).await
    }

    /// `send_batch` of borrowed records: they are encoded into their batches as they are
    /// queued, so the caller need not own copies.
    pub async fn send_batch_refs(&self, records: &[RecordRef<'_>]) -> Vec<Result<Delivered>> {
        let receivers: Vec<_> = records
            .iter()
            .map(|r| {
                let (tx, rx) = oneshot::channel();
                // The sender is woken once below, for all of them.
                self.enqueue(*r, Completion::Waiter(tx), false).map(|_| rx)
            })
            .collect();
        self.shared.acc.lock().unwrap().urgent_all();
        sender::send_now(&self.shared).await;
        let mut out = Vec::with_capacity(receivers.len());
        for r in receivers {
            out.push(match r {
                Ok(rx) => rx.await.unwrap_or(Err(Error::Closed)),
                Err(e) => Err(e),
            });
        }
        out
    }

    /// Sends everything queued now and waits up to `timeout` for it to finish; returns every
    /// report finished since the previous flush (each report is returned exactly once).
    pub async fn flush(&self, timeout: Duration) -> FlushOutcome {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let finished = self.shared.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            {
                let mut acc = self.shared.acc.lock().unwrap();
                if acc.pending == 0 {
                    break;
                }
                acc.urgent_all();
            }
            self.shared.wake.notify_one();
            if tokio::time::timeout_at(deadline, finished).await.is_err() {
                break;
            }
        }
        let mut acc = self.shared.acc.lock().unwrap();
        FlushOutcome {
            // Hands over the chunks rather than copying a million reports.
            reports: std::mem::take(&mut acc.reports),
            pending: acc.pending,
        }
    }

    /// Records queued or in flight.
    pub fn pending(&self) -> usize {
        self.shared.acc.lock().unwrap().pending
    }

    /// Delivers what is pending (bounded by `timeout`), then stops; the rest fail with Closed.
    pub async fn close(&self, timeout: Duration) -> FlushOutcome {
        let mut outcome = self.flush(timeout).await;
        self.shared.closed.store(true, Ordering::SeqCst);
        let mut acc = self.shared.acc.lock().unwrap();
        acc.fail_all(&Error::Closed);
        outcome.reports.append(std::mem::take(&mut acc.reports));
        outcome.pending = acc.pending;
        drop(acc);
        self.shared.finished.notify_waiters();
        self.shared.wake.notify_one();
        outcome
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
    }
}
