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

/// Bytes of a batch header before its first record.
pub const BATCH_OVERHEAD: usize = 61;

fn bytes_len(b: &Option<Bytes>) -> usize {
    match b {
        None => varint_len(-1),
        Some(b) => varint_len(b.len() as i64) + b.len(),
    }
}

fn put_bytes(buf: &mut BytesMut, b: &Option<Bytes>) {
    match b {
        None => put_varint(buf, -1),
        Some(b) => {
            put_varint(buf, b.len() as i64);
            buf.put_slice(b);
        }
    }
}

/// Size of a record's body (everything after its length prefix).
fn body_len(r: &OutRecord, timestamp_delta: i64, offset_delta: i64) -> usize {
    1 + varint_len(timestamp_delta)
        + varint_len(offset_delta)
        + bytes_len(&r.key)
        + bytes_len(&r.value)
        + varint_len(r.headers.len() as i64)
        + r.headers
            .iter()
            .map(|(k, v)| varint_len(k.len() as i64) + k.len() + bytes_len(v))
            .sum::<usize>()
}

/// Upper bound of a record's encoded size in any batch (deltas at their widest).
pub fn record_size(r: &OutRecord) -> usize {
    let body = body_len(r, 0, 0) + 9 + 4;
    body + varint_len(body as i64)
}

/// Encodes `records` as one batch with base offset 0 (the broker assigns offsets).
pub fn encode_batch(records: &[&OutRecord], compression: Compression) -> Result<Bytes> {
    let base_ts = records.iter().map(|r| r.timestamp).min().unwrap_or(0);
    let max_ts = records.iter().map(|r| r.timestamp).max().unwrap_or(0);
    let mut body = BytesMut::with_capacity(records.iter().map(|r| record_size(r)).sum());
    for (i, r) in records.iter().enumerate() {
        let ts_delta = r.timestamp - base_ts;
        let len = body_len(r, ts_delta, i as i64);
        put_varint(&mut body, len as i64);
        body.put_i8(0);
        put_varint(&mut body, ts_delta);
        put_varint(&mut body, i as i64);
        put_bytes(&mut body, &r.key);
        put_bytes(&mut body, &r.value);
        put_varint(&mut body, r.headers.len() as i64);
        for (k, v) in &r.headers {
            put_varint(&mut body, k.len() as i64);
            body.put_slice(k.as_bytes());
            put_bytes(&mut body, v);
        }
    }
    let payload = if compression == Compression::None {
        body.freeze()
    } else {
        Bytes::from(compress(compression, &body)?)
    };

    let mut out = BytesMut::with_capacity(BATCH_OVERHEAD + payload.len());
    out.put_i64(0); // base offset
    out.put_i32((BATCH_OVERHEAD - 12 + payload.len()) as i32); // batch length
    out.put_i32(-1); // partition leader epoch
    out.put_i8(2); // magic
    out.put_u32(0); // crc, filled below
    out.put_i16(compression.attribute());
    out.put_i32(records.len() as i32 - 1); // last offset delta
    out.put_i64(base_ts);
    out.put_i64(max_ts);
    out.put_i64(-1); // producer id
    out.put_i16(-1); // producer epoch
    out.put_i32(-1); // base sequence
    out.put_i32(records.len() as i32);
    out.put_slice(&payload);
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out.freeze())
}
