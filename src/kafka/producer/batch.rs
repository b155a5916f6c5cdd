//! One partition's batch: records are encoded into it as they are queued, and it is sent (and
//! resent on a retry) as the same bytes.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{Delivered, ReportGroup};
use crate::kafka::config::Compression;
use crate::kafka::error::{Error, Result};
use crate::kafka::records::{restamp, BatchBuilder, RecordView, Stamp};

/// Initial room for a batch's records; it grows to batch.size only when records come that fast.
const INITIAL_BYTES: usize = 16 * 1024;

/// How a record's outcome reaches its producer.
pub enum Completion {
    /// Kept for the next flush (ProduceAsync).
    Report,
    /// Someone awaits it (Produce, ProduceBatch).
    Waiter(oneshot::Sender<Result<Delivered>>),
}

/// What is kept per record beside its encoded bytes.
pub struct Entry {
    pub id: u64,
    pub timestamp: i64,
    pub completion: Completion,
}

enum Body {
    /// Still taking records.
    Open(BatchBuilder),
    /// Sent at least once: a retry sends exactly these bytes again.
    Sealed(Bytes),
}

pub struct ProducerBatch {
    body: Body,
    pub entries: Vec<Entry>,
    /// When its first record was queued: linger.ms and delivery.timeout.ms count from here.
    pub created: Instant,
    pub attempts: u32,
    /// Its place in its partition's order (batches are numbered as they open).
    pub no: u64,
    /// The idempotent producer id and sequence it is sent under; fixed at its first send and
    /// kept for retries, so the broker can tell a resend from a new batch.
    pub stamp: Option<Stamp>,
    /// The stamp the sealed bytes carry.
    sealed_with: Option<Stamp>,
    /// The broker's answer to the last attempt, when it was an error worth retrying: what the
    /// records fail with if delivery.timeout.ms runs out before a retry succeeds.
    pub last_error: Option<Error>,
}

impl ProducerBatch {
    /// A batch with `room` bytes reserved (at least a small buffer, grown on demand).
    pub fn new(no: u64, created: Instant, room: usize, limit: usize) -> ProducerBatch {
        ProducerBatch {
            body: Body::Open(BatchBuilder::new(room.max(INITIAL_BYTES.min(limit)))),
            entries: Vec::new(),
            created,
            attempts: 0,
            no,
            stamp: None,
            sealed_with: None,
            last_error: None,
        }
    }

    /// Encoded bytes (header included); a sealed batch counts as full.
    pub fn size(&self) -> usize {
        match &self.body {
            Body::Open(b) => b.size(),
            Body::Sealed(b) => b.len(),
        }
    }

    /// Whether `record_size` more bytes fit under `limit` (an empty batch takes any record).
    pub fn fits(&self, record_size: usize, limit: usize) -> bool {
        match &self.body {
            Body::Open(b) => b.count() == 0 || b.size() + record_size <= limit,
            Body::Sealed(_) => false,
        }
    }

    /// Appends a record; the caller checked `fits`.
    pub fn append(&mut self, record: &RecordView, id: u64, completion: Completion) {
        if let Body::Open(b) = &mut self.body {
            b.append(record);
            self.entries.push(Entry {
                id,
                timestamp: record.timestamp,
                completion,
            });
        }
    }

    /// The bytes to send under `stamp`; the first call finishes the encoding.
    pub fn seal(&mut self, compression: Compression) -> Result<Bytes> {
        match &mut self.body {
            Body::Open(b) => {
                let builder = std::mem::replace(b, BatchBuilder::new(0));
                self.body = Body::Sealed(builder.finish(compression, self.stamp)?);
            }
            Body::Sealed(bytes) if self.sealed_with != self.stamp => {
                *bytes = restamp(bytes, self.stamp.unwrap_or(Stamp::NONE));
            }
            Body::Sealed(_) => {}
        }
        self.sealed_with = self.stamp;
        match &self.body {
            Body::Sealed(bytes) => Ok(bytes.clone()),
            Body::Open(_) => unreachable!("sealed above"),
        }
    }
}

/// What the broker said of a stored batch.
#[derive(Debug, Clone, Copy)]
pub struct Acked {
    /// The first record's offset; -1 when the broker does not say (acks=0).
    pub base_offset: i64,
    /// The broker's log-append time for every record; -1 when each keeps its creation time.
    pub log_append_ms: i64,
}

/// Hands every record's outcome to its waiting caller (Produce), and returns the outcomes of
/// ProduceAsync records as one group of reports for Flush.
pub fn settle(
    entries: Vec<Entry>,
    topic: &Arc<str>,
    partition: i32,
    outcome: Result<Acked>,
) -> ReportGroup {
    let reported = entries
        .iter()
        .filter(|e| matches!(e.completion, Completion::Report))
        .count();
    let mut records = Vec::with_capacity(reported);
    for (i, entry) in entries.into_iter().enumerate() {
        let offset = match &outcome {
            Ok(a) if a.base_offset >= 0 => a.base_offset + i as i64,
            _ => -1,
        };
        match entry.completion {
            Completion::Report => records.push((entry.id, offset)),
            Completion::Waiter(tx) => {
                let result = match &outcome {
                    Ok(a) => Ok(Delivered {
                        topic: topic.clone(),
                        partition,
                        offset,
                        timestamp_ms: if a.log_append_ms >= 0 {
                            a.log_append_ms
                        } else {
                            entry.timestamp
                        },
                    }),
                    Err(e) => Err(e.clone()),
                };
                let _ = tx.send(result);
            }
        }
    }
    ReportGroup {
        topic: topic.clone(),
        partition,
        records,
        error: outcome.err(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::records::{decode_batches, record_size, OutRecord};

    fn record(ts: i64, value: &str) -> OutRecord {
        OutRecord {
            key: None,
            value: Some(Bytes::from(value.repeat(100))),
            headers: vec![],
            timestamp: ts,
        }
    }

    #[test]
    fn encodes_as_queued_and_resends_the_same_bytes() {
        let r = record(1000, "a");
        let size = record_size(&r);
        let mut b = ProducerBatch::new(0, Instant::now(), size, 2 * size + 61);
        assert!(b.fits(size, 2 * size + 61));
        b.append(&r.view(), 1, Completion::Report);
        assert!(b.fits(size, 2 * size + 61));
        b.append(&record(990, "b").view(), 2, Completion::Report);
        assert!(!b.fits(size, 2 * size + 61), "the limit holds");
        let first = b.seal(Compression::None).unwrap();
        assert!(!b.fits(1, usize::MAX), "sealed batches take nothing more");
        assert_eq!(
            b.seal(Compression::None).unwrap(),
            first,
            "a retry resends it"
        );
        // A new producer id renumbers it: same records, new stamp.
        b.stamp = Some(Stamp {
            producer_id: 7,
            epoch: 0,
            base_sequence: 40,
        });
        let renumbered = b.seal(Compression::None).unwrap();
        assert_eq!(
            decode_batches(renumbered.clone()).unwrap()[0]
                .head
                .producer_id,
            7
        );
        assert_eq!(renumbered.len(), first.len());
        let batches = decode_batches(first).unwrap();
        let values: Vec<_> = batches
            .iter()
            .flat_map(|b| b.records.iter())
            .map(|r| (r.timestamp, r.value.clone().unwrap()))
            .collect();
        assert_eq!(
            values,
            [
                (1000, Bytes::from("a".repeat(100))),
                (990, Bytes::from("b".repeat(100)))
            ],
            "an earlier timestamp after the first is a negative delta"
        );
    }
}
