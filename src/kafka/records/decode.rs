//! Decoding record batches from Fetch responses: every codec, CRC checked, a partial trailing
//! batch (the broker cuts at the byte limit) ignored.

use bytes::{Buf, Bytes};

use super::compression::decompress;
use super::varint::get_varint;
use crate::kafka::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct InRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

#[derive(Debug, Clone)]
pub struct Batch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub producer_id: i64,
    pub transactional: bool,
    /// Control batches carry transaction markers, never user data.
    pub control: bool,
    pub records: Vec<InRecord>,
}

fn bad(what: &str) -> Error {
    Error::Protocol(format!("malformed record batch: {what}"))
}

fn get_bytes(buf: &mut Bytes) -> Result<Option<Bytes>> {
    let len = get_varint(buf).ok_or_else(|| bad("length"))?;
    if len < 0 {
        return Ok(None);
    }
    let len = len as usize;
    if buf.remaining() < len {
        return Err(bad("field past the end"));
    }
    Ok(Some(buf.split_to(len)))
}

/// Decodes all complete batches in `data`.
pub fn decode_batches(data: Bytes) -> Result<Vec<Batch>> {
    match decode_until_error(data) {
        (batches, None) => Ok(batches),
        (_, Some(e)) => Err(e),
    }
}

/// Decodes complete batches up to the first bad one: the batches before it, and its error.
/// A consumer hands out the good records and reports the error when it reaches the bad batch.
pub fn decode_until_error(mut data: Bytes) -> (Vec<Batch>, Option<Error>) {
    let mut out = Vec::new();
    loop {
        match next_batch(&mut data) {
            Ok(Some(batch)) => out.push(batch),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

/// Where the first batch of `data` ends, read from its header: the framing rules shared by
/// decoding and by `next_offset`.
enum Frame {
    /// A complete v2 batch of this many bytes.
    Batch(usize),
    /// Nothing more, or a batch the broker cut at its byte limit.
    End,
    Bad(Error),
}

fn frame(data: &[u8]) -> Frame {
    if data.len() < BATCH_HEADER_MIN {
        return Frame::End;
    }
    let batch_len = i32::from_be_bytes(data[8..12].try_into().unwrap());
    let Ok(len) = usize::try_from(batch_len) else {
        return Frame::Bad(bad("negative length"));
    };
    let total = 12 + len;
    if data.len() < total {
        return Frame::End; // partial trailing batch
    }
    if total < BATCH_HEADER_MIN {
        return Frame::Bad(bad("shorter than its header"));
    }
    let magic = data[16] as i8;
    if magic != 2 {
        return Frame::Bad(Error::Protocol(format!(
            "record format v{magic} (before Kafka 0.11) is not supported"
        )));
    }
    if total < V2_HEADER {
        return Frame::Bad(bad("shorter than its header"));
    }
    Frame::Batch(total)
}

/// The next complete batch of `data`, if any.
fn next_batch(data: &mut Bytes) -> Result<Option<Batch>> {
    let total = match frame(data) {
        Frame::Batch(total) => total,
        Frame::End => return Ok(None),
        Frame::Bad(e) => return Err(e),
    };
    let mut b = data.split_to(total);
    let crc = u32::from_be_bytes(b[17..21].try_into().unwrap());
    if crc32c::crc32c(&b[21..]) != crc {
        return Err(bad("CRC mismatch"));
    }
    let base_offset = b.get_i64();
    b.advance(4 + 4 + 1 + 4); // length, leader epoch, magic, crc
    let attributes = b.get_i16();
    let last_offset_delta = b.get_i32();
    let base_ts = b.get_i64();
    let max_ts = b.get_i64();
    let producer_id = b.get_i64();
    b.advance(2 + 4); // producer epoch, base sequence
    let count = b.get_i32().max(0) as usize;
    let codec = attributes & 0x7;
    let log_append_time = attributes & 0x8 != 0;
    let mut body = if codec == 0 {
        b
    } else {
        Bytes::from(decompress(codec, &b)?)
    };
    let mut records = Vec::with_capacity(count);
    for _ in 0..count {
        let len = get_varint(&mut body).ok_or_else(|| bad("record length"))?;
        if len < 0 || body.remaining() < len as usize {
            return Err(bad("record past the end"));
        }
        let mut r = body.split_to(len as usize);
        if !r.has_remaining() {
            return Err(bad("empty record"));
        }
        r.advance(1); // attributes
        let ts_delta = get_varint(&mut r).ok_or_else(|| bad("timestamp"))?;
        let offset_delta = get_varint(&mut r).ok_or_else(|| bad("offset"))?;
        let key = get_bytes(&mut r)?;
        let value = get_bytes(&mut r)?;
        let n_headers = get_varint(&mut r)
            .ok_or_else(|| bad("header count"))?
            .max(0) as usize;
        let mut headers = Vec::with_capacity(n_headers.min(1024));
        for _ in 0..n_headers {
            let name = get_bytes(&mut r)?.ok_or_else(|| bad("null header name"))?;
            let name =
                String::from_utf8(name.to_vec()).map_err(|_| bad("header name is not UTF-8"))?;
            headers.push((name, get_bytes(&mut r)?));
        }
        records.push(InRecord {
            offset: base_offset + offset_delta,
            timestamp: if log_append_time {
                max_ts
            } else {
                base_ts + ts_delta
            },
            key,
            value,
            headers,
        });
    }
    Ok(Some(Batch {
        base_offset,
        last_offset: base_offset + last_offset_delta as i64,
        producer_id,
        transactional: attributes & 0x10 != 0,
        control: attributes & 0x20 != 0,
        records,
    }))
}

/// The offset after the last complete batch in `data`, read from batch headers alone (no CRC,
/// no records): lets the fetcher ask for what follows while the records are still decoded.
/// `None` when no complete v2 batch is there.
pub fn next_offset(data: &[u8]) -> Option<i64> {
    let mut rest = data;
    let mut next = None;
    while let Frame::Batch(total) = frame(rest) {
        let base = i64::from_be_bytes(rest[0..8].try_into().unwrap());
        // After base offset 8, length 4, leader epoch 4, magic 1, crc 4, attributes 2.
        let delta = i32::from_be_bytes(rest[23..27].try_into().unwrap());
        next = Some(base + delta as i64 + 1);
        rest = &rest[total..];
    }
    next
}

/// Bytes needed to read a batch's length and magic.
const BATCH_HEADER_MIN: usize = 17;

/// A v2 batch header: up to the record count.
const V2_HEADER: usize = 61;

#[cfg(test)]
mod tests {
    use super::super::encode::{encode_batch, OutRecord};
    use super::*;
    use crate::kafka::config::Compression;

    fn sample() -> Vec<OutRecord> {
        (0..50)
            .map(|i| OutRecord {
                key: if i % 3 == 0 {
                    None
                } else {
                    Some(Bytes::from(format!("key-{i}")))
                },
                value: Some(Bytes::from(vec![i as u8; i * 7])),
                headers: vec![
                    ("h".into(), Some(Bytes::from_static(b"1"))),
                    ("h".into(), Some(Bytes::from("значение"))),
                    ("n".into(), None),
                ],
                timestamp: 1_700_000_000_000 + i as i64,
            })
            .collect()
    }

    #[test]
    fn round_trip_all_codecs_keeps_header_order_and_duplicates() {
        let recs = sample();
        let refs: Vec<&OutRecord> = recs.iter().collect();
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut data = encode_batch(&refs, codec).unwrap().to_vec();
            // Fake the broker's base offset assignment.
            data[..8].copy_from_slice(&100i64.to_be_bytes());
            let crc = crc32c::crc32c(&data[21..]);
            data[17..21].copy_from_slice(&crc.to_be_bytes());
            // A partial batch after a complete one is ignored.
            let mut with_tail = data.clone();
            with_tail.extend_from_slice(&data[..30]);
            let batches = decode_batches(Bytes::from(with_tail)).unwrap();
            assert_eq!(batches.len(), 1, "{codec:?}");
            let b = &batches[0];
            assert_eq!(b.base_offset, 100);
            assert_eq!(b.last_offset, 149);
            assert_eq!(b.records.len(), 50);
            for (i, (r, o)) in b.records.iter().zip(&recs).enumerate() {
                assert_eq!(r.offset, 100 + i as i64);
                assert_eq!(r.key, o.key);
                assert_eq!(r.value, o.value);
                assert_eq!(r.headers, o.headers);
                assert_eq!(r.timestamp, o.timestamp);
            }
        }
    }

    #[test]
    fn next_offset_reads_headers_and_ignores_a_partial_tail() {
        let recs = sample();
        let refs: Vec<&OutRecord> = recs.iter().collect();
        // The base offset is outside the CRC, so batches can be placed at any offset.
        let at = |base: i64, codec| {
            let mut b = encode_batch(&refs, codec).unwrap().to_vec();
            b[..8].copy_from_slice(&base.to_be_bytes());
            b
        };
        let mut data = at(100, Compression::None);
        data.extend_from_slice(&at(150, Compression::Lz4));
        let decoded = decode_batches(Bytes::from(data.clone())).unwrap();
        assert_eq!(decoded.last().unwrap().last_offset, 199);
        assert_eq!(next_offset(&data), Some(200));
        // The broker cuts at its byte limit: the cut batch does not count.
        assert_eq!(next_offset(&data[..data.len() - 1]), Some(150));
        assert_eq!(next_offset(&data[..20]), None);
        assert_eq!(next_offset(&[]), None);
    }

    #[test]
    fn a_batch_shorter_than_its_header_is_an_error_not_a_panic() {
        let recs = sample();
        let refs: Vec<&OutRecord> = recs.iter().collect();
        let whole = encode_batch(&refs, Compression::None).unwrap().to_vec();
        for len in [0i32, 4, 5, 30, 48] {
            let mut data = whole.clone();
            data[8..12].copy_from_slice(&len.to_be_bytes());
            assert!(decode_batches(Bytes::from(data)).is_err(), "length {len}");
        }
    }

    #[test]
    fn batches_before_a_corrupt_one_still_decode() {
        let recs = sample();
        let refs: Vec<&OutRecord> = recs.iter().collect();
        let good = encode_batch(&refs, Compression::None).unwrap().to_vec();
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        let data = [good.clone(), bad, good].concat();
        let (batches, error) = decode_until_error(Bytes::from(data.clone()));
        assert_eq!(batches.len(), 1);
        assert!(error.unwrap().to_string().contains("CRC"));
        assert!(decode_batches(Bytes::from(data)).is_err());
    }

    #[test]
    fn corrupt_batch_is_an_error() {
        let recs = sample();
        let refs: Vec<&OutRecord> = recs.iter().collect();
        let mut data = encode_batch(&refs, Compression::None).unwrap().to_vec();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        assert!(decode_batches(Bytes::from(data)).is_err());
    }

    #[test]
    fn restamped_batches_carry_the_producer_and_a_valid_crc() {
        let recs = sample();
        let refs: Vec<&OutRecord> = recs.iter().collect();
        let plain = encode_batch(&refs, Compression::None).unwrap();
        let stamp = super::super::encode::Stamp {
            producer_id: 4242,
            epoch: 3,
            base_sequence: 17,
        };
        let stamped = super::super::encode::restamp(&plain, stamp);
        assert_eq!(decode_batches(plain).unwrap()[0].producer_id, -1);
        // Our decoder checks the CRC; librdkafka's view of the same fields via kafka-protocol.
        assert_eq!(
            decode_batches(stamped.clone()).unwrap()[0].producer_id,
            4242
        );
        let mut buf = stamped;
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).unwrap();
        let first = &set.records[0];
        assert_eq!((first.producer_epoch, first.sequence), (3, 17));
        assert_eq!(set.records[1].sequence, 18);
    }

    #[test]
    fn record_size_is_an_upper_bound() {
        for r in sample() {
            let one = encode_batch(&[&r], Compression::None).unwrap();
            assert!(
                one.len()
                    <= super::super::encode::record_size(&r) + super::super::encode::BATCH_OVERHEAD
            );
        }
    }
}
