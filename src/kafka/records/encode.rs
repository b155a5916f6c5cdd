//! Encoding a record batch, v2 format ("magic 2"), written once per produce batch.

use bytes::{BufMut, Bytes, BytesMut};

use super::compression::compress;
use super::varint::{put_varint, varint_len};
use crate::kafka::config::Compression;
use crate::kafka::error::Result;

/// One record to send.
#[derive(Debug, Clone)]
pub struct OutRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Creation time, ms since the Unix epoch.
    pub timestamp: i64,
}

/// A record to encode, borrowed: a caller's bytes go straight into the batch.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [(String, Option<Bytes>)],
    pub timestamp: i64,
}

impl OutRecord {
    pub fn view(&self) -> RecordView<'_> {
        RecordView {
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            headers: &self.headers,
            timestamp: self.timestamp,
        }
    }
}

impl RecordView<'_> {
    pub fn to_owned(&self) -> OutRecord {
        OutRecord {
            key: self.key.map(Bytes::copy_from_slice),
            value: self.value.map(Bytes::copy_from_slice),
            headers: self.headers.to_vec(),
            timestamp: self.timestamp,
        }
    }

    /// Upper bound of the record's encoded size in any batch (deltas at their widest).
    pub fn size(&self) -> usize {
        let body = body_len(self, 0, 0) + 9 + 4;
        body + varint_len(body as i64)
    }
}

/// Bytes of a batch header before its first record.
pub const BATCH_OVERHEAD: usize = 61;

fn bytes_len(b: Option<&[u8]>) -> usize {
    match b {
        None => varint_len(-1),
        Some(b) => varint_len(b.len() as i64) + b.len(),
    }
}

fn put_bytes(buf: &mut BytesMut, b: Option<&[u8]>) {
    match b {
        None => put_varint(buf, -1),
        Some(b) => {
            put_varint(buf, b.len() as i64);
            buf.put_slice(b);
        }
    }
}

/// Size of a record's body (everything after its length prefix).
fn body_len(r: &RecordView, timestamp_delta: i64, offset_delta: i64) -> usize {
    1 + varint_len(timestamp_delta)
        + varint_len(offset_delta)
        + bytes_len(r.key)
        + bytes_len(r.value)
        + varint_len(r.headers.len() as i64)
        + r.headers
            .iter()
            .map(|(k, v)| varint_len(k.len() as i64) + k.len() + bytes_len(v.as_deref()))
            .sum::<usize>()
}

/// Upper bound of a record's encoded size in any batch (deltas at their widest).
pub fn record_size(r: &OutRecord) -> usize {
    r.view().size()
}

/// A batch encoded as records arrive, so a queued record costs its encoded bytes and nothing
/// else: no per-record struct to move around, and sending adds only the header and the CRC.
#[derive(Debug)]
pub struct BatchBuilder {
    /// Header space, then the records.
    buf: BytesMut,
    count: i32,
    base_ts: i64,
    max_ts: i64,
}

impl BatchBuilder {
    /// `capacity`: the record bytes expected, allocated at once.
    pub fn new(capacity: usize) -> BatchBuilder {
        let mut buf = BytesMut::with_capacity(BATCH_OVERHEAD + capacity);
        buf.put_bytes(0, BATCH_OVERHEAD);
        BatchBuilder {
            buf,
            count: 0,
            base_ts: 0,
            max_ts: 0,
        }
    }

    pub fn count(&self) -> usize {
        self.count as usize
    }

    /// Encoded bytes so far, the header included.
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    /// Appends a record; timestamps are deltas from the first record's, as the format says.
    pub fn append(&mut self, r: &RecordView) {
        if self.count == 0 {
            self.base_ts = r.timestamp;
            self.max_ts = r.timestamp;
        }
        self.max_ts = self.max_ts.max(r.timestamp);
        let ts_delta = r.timestamp - self.base_ts;
        let offset_delta = self.count as i64;
        let body = &mut self.buf;
        put_varint(body, body_len(r, ts_delta, offset_delta) as i64);
        body.put_i8(0);
        put_varint(body, ts_delta);
        put_varint(body, offset_delta);
        put_bytes(body, r.key);
        put_bytes(body, r.value);
        put_varint(body, r.headers.len() as i64);
        for (k, v) in r.headers {
            put_varint(body, k.len() as i64);
            body.put_slice(k.as_bytes());
            put_bytes(body, v.as_deref());
        }
        self.count += 1;
    }

    /// The finished batch, base offset 0 (the broker assigns offsets), stamped for an
    /// idempotent producer when `stamp` is given.
    pub fn finish(self, compression: Compression, stamp: Option<Stamp>) -> Result<Bytes> {
        let mut out = if compression == Compression::None {
            self.buf
        } else {
            let payload = compress(compression, &self.buf[BATCH_OVERHEAD..])?;
            let mut out = BytesMut::with_capacity(BATCH_OVERHEAD + payload.len());
            out.put_bytes(0, BATCH_OVERHEAD);
            out.put_slice(&payload);
            out
        };
        let batch_len = (out.len() - 12) as i32;
        let mut h = &mut out[..BATCH_OVERHEAD];
        h.put_i64(0); // base offset
        h.put_i32(batch_len);
        h.put_i32(-1); // partition leader epoch
        h.put_i8(2); // magic
        h.put_u32(0); // crc, filled below
        h.put_i16(compression.attribute());
        h.put_i32(self.count - 1); // last offset delta
        h.put_i64(self.base_ts);
        h.put_i64(self.max_ts);
        h.put_i64(-1); // producer id, epoch and base sequence: see put_stamp
        h.put_i16(-1);
        h.put_i32(-1);
        h.put_i32(self.count);
        put_stamp(&mut out, stamp.unwrap_or(Stamp::NONE));
        Ok(out.freeze())
    }
}

/// An idempotent producer's id and epoch, and the sequence number of a batch's first record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub producer_id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
}

impl Stamp {
    /// What a producer without idempotence writes.
    pub const NONE: Stamp = Stamp {
        producer_id: -1,
        epoch: -1,
        base_sequence: -1,
    };
}

/// Writes the producer fields of an encoded batch header and its CRC (which covers them).
fn put_stamp(batch: &mut [u8], stamp: Stamp) {
    let mut h = &mut batch[43..57];
    h.put_i64(stamp.producer_id);
    h.put_i16(stamp.epoch);
    h.put_i32(stamp.base_sequence);
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// A copy of an encoded batch under another stamp (a new producer id renumbers a batch that
/// was already sent under the old one).
pub fn restamp(batch: &[u8], stamp: Stamp) -> Bytes {
    let mut out = BytesMut::from(batch);
    put_stamp(&mut out, stamp);
    out.freeze()
}

/// Encodes `records` as one batch.
pub fn encode_batch(records: &[&OutRecord], compression: Compression) -> Result<Bytes> {
    let mut b = BatchBuilder::new(records.iter().map(|r| record_size(r)).sum());
    for r in records {
        b.append(&r.view());
    }
    b.finish(compression, None)
}
