//! Decoding record batches from Fetch responses: every codec, CRC checked, a partial trailing
//! batch (the broker cuts at the byte limit) ignored.

use std::ops::Range;

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

/// A batch's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHead {
    pub base_offset: i64,
    pub last_offset: i64,
    pub producer_id: i64,
    pub transactional: bool,
    /// Control batches carry transaction markers, never user data.
    pub control: bool,
}

/// A batch with its records decoded (tests and tools; the consumer decodes lazily).
#[derive(Debug, Clone)]
pub struct Batch {
    pub head: BatchHead,
    pub records: Vec<InRecord>,
}

fn bad(what: &str) -> Error {
    Error::Protocol(format!("malformed record batch: {what}"))
}

/// A length-prefixed field (-1: null) from the front of `r`.
fn get_field<'a>(r: &mut &'a [u8]) -> Result<Option<&'a [u8]>> {
    let len = get_varint(r).ok_or_else(|| bad("length"))?;
    if len < 0 {
        return Ok(None);
    }
    let len = len as usize;
    if r.len() < len {
        return Err(bad("field past the end"));
    }
    let (field, rest) = r.split_at(len);
    *r = rest;
    Ok(Some(field))
}

/// Decodes all complete batches in `data`.
pub fn decode_batches(data: Bytes) -> Result<Vec<Batch>> {
    Batches::new(data)
        .map(|batch| {
            let (head, records) = batch?;
            Ok(Batch {
                head,
                records: records.collect::<Result<_>>()?,
            })
        })
        .collect()
}

/// The complete batches of a Fetch answer, CRC-checked and decompressed one at a time, each
/// with its records still to decode: a consumer decodes them straight into its queue rather
/// than through a vector per batch. Ends after the first bad batch's error, so the batches
/// before it are still handed out.
pub struct Batches {
    data: Bytes,
}

impl Batches {
    pub fn new(data: Bytes) -> Batches {
        Batches { data }
    }
}

impl Iterator for Batches {
    type Item = Result<(BatchHead, Records)>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = next_batch(&mut self.data);
        if next.is_err() {
            self.data = Bytes::new();
        }
        next.transpose()
    }
}

/// A batch's records, decoded as they are read. An error ends them.
pub struct Records {
    body: Bytes,
    /// Where the next record starts in `body`.
    at: usize,
    left: usize,
    base_offset: i64,
    base_ts: i64,
    /// The batch's timestamp for every record when the broker set log-append time.
    append_ts: Option<i64>,
}

/// Owned records (tests and tools); the consumer reads positions with `next_raw`.
impl Iterator for Records {
    type Item = Result<InRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut headers = Vec::new();
        let raw = match self.next_raw(&mut headers)? {
            Ok(raw) => raw,
            Err(e) => return Some(Err(e)),
        };
        let body = &self.body;
        let field = |r: Option<Range<usize>>| r.map(|r| body.slice(r));
        Some(Ok(InRecord {
            offset: raw.offset,
            timestamp: raw.timestamp,
            key: field(raw.key),
            value: field(raw.value),
            headers: headers
                .into_iter()
                .map(|h| {
                    let name = String::from_utf8_lossy(&body[h.name]).into_owned();
                    (name, field(h.value))
                })
                .collect(),
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

impl Records {
    /// Room to reserve for the records still to read: the header's count, but no more than
    /// the bytes can hold, so a bogus count cannot make a caller allocate gigabytes.
    pub fn capacity_hint(&self) -> usize {
        self.left.min((self.body.len() - self.at) / MIN_RECORD)
    }

    /// The batch's records' bytes (decompressed), which `next_raw`'s positions point into.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The next record as positions in `body()`, its headers appended to `headers`: the
    /// consumer keeps positions rather than a shared `Bytes` per field, as each of those is an
    /// atomic count taken on the fetch thread and dropped on the Poll thread.
    pub fn next_raw(&mut self, headers: &mut Vec<RawHeader>) -> Option<Result<RawRecord>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let start = headers.len();
        let next = self.record(headers);
        if next.is_err() {
            self.left = 0;
            headers.truncate(start);
        }
        Some(next)
    }

    /// Parses on a plain slice; fields are returned as positions in the body.
    fn record(&mut self, headers: &mut Vec<RawHeader>) -> Result<RawRecord> {
        let body = &self.body[..];
        let mut rest = &body[self.at..];
        let len = get_varint(&mut rest).ok_or_else(|| bad("record length"))?;
        if len < 0 || rest.len() < len as usize {
            return Err(bad("record past the end"));
        }
        let (mut r, after) = rest.split_at(len as usize);
        self.at = body.len() - after.len();
        if r.is_empty() {
            return Err(bad("empty record"));
        }
        r = &r[1..]; // attributes
        let ts_delta = get_varint(&mut r).ok_or_else(|| bad("timestamp"))?;
        let offset_delta = get_varint(&mut r).ok_or_else(|| bad("offset"))?;
        let key = get_span(&mut r, body)?;
        let value = get_span(&mut r, body)?;
        let n_headers = get_varint(&mut r)
            .ok_or_else(|| bad("header count"))?
            .max(0) as usize;
        headers.reserve(n_headers.min(r.len() / 2)); // a header takes at least 2 bytes
        for _ in 0..n_headers {
            let name = get_span(&mut r, body)?.ok_or_else(|| bad("null header name"))?;
            std::str::from_utf8(&body[name.clone()])
                .map_err(|_| bad("header name is not UTF-8"))?;
            let value = get_span(&mut r, body)?;
            headers.push(RawHeader { name, value });
        }
        Ok(RawRecord {
            offset: self.base_offset.wrapping_add(offset_delta),
            timestamp: self
                .append_ts
                .unwrap_or(self.base_ts.wrapping_add(ts_delta)),
            key,
            value,
        })
    }
}

/// A record's fields as positions in its batch's body (`Records::body`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Range<usize>>,
    pub value: Option<Range<usize>>,
}

/// A header as positions in its batch's body; the name was checked to be UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHeader {
    pub name: Range<usize>,
    pub value: Option<Range<usize>>,
}

/// A length-prefixed field from the front of `r` (a part of `body`), as its position in `body`.
fn get_span(r: &mut &[u8], body: &[u8]) -> Result<Option<Range<usize>>> {
    Ok(get_field(r)?.map(|f| {
        let start = f.as_ptr() as usize - body.as_ptr() as usize;
        start..start + f.len()
    }))
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

/// The next complete batch of `data`, if any, CRC-checked and decompressed.
fn next_batch(data: &mut Bytes) -> Result<Option<(BatchHead, Records)>> {
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
    let body = if codec == 0 {
        b
    } else {
        Bytes::from(decompress(codec, &b)?)
    };
    // The consumer keeps positions in a body as u32 (u32::MAX marks a null field).
    if body.len() >= u32::MAX as usize {
        return Err(bad("over 4 GB decompressed"));
    }
    let head = BatchHead {
        base_offset,
        last_offset: base_offset.wrapping_add(last_offset_delta as i64),
        producer_id,
        transactional: attributes & 0x10 != 0,
        control: attributes & 0x20 != 0,
    };
    let records = Records {
        body,
        at: 0,
        left: count,
        base_offset,
        base_ts,
        append_ts: (attributes & 0x8 != 0).then_some(max_ts),
    };
    Ok(Some((head, records)))
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

/// The shortest record: length, attributes, timestamp and offset deltas, key and value
/// lengths, header count (one byte each).
const MIN_RECORD: usize = 7;

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
            assert_eq!(b.head.base_offset, 100);
            assert_eq!(b.head.last_offset, 149);
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
        assert_eq!(decoded.last().unwrap().head.last_offset, 199);
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
        let mut batches = Batches::new(Bytes::from(data.clone()));
        let (head, records) = batches.next().unwrap().unwrap();
        assert_eq!((head.base_offset, records.capacity_hint()), (0, 50));
        let error = batches.next().unwrap().err().unwrap();
        assert!(error.to_string().contains("CRC"));
        assert!(batches.next().is_none(), "nothing after the bad batch");
        assert!(decode_batches(Bytes::from(data)).is_err());
    }

    #[test]
    fn a_count_past_the_records_ends_them_with_an_error_and_reserves_little() {
        let recs = sample();
        let refs: Vec<&OutRecord> = recs.iter().collect();
        let mut data = encode_batch(&refs, Compression::None).unwrap().to_vec();
        // A batch whose CRC holds but whose header counts more records than it has.
        data[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        let crc = crc32c::crc32c(&data[21..]);
        data[17..21].copy_from_slice(&crc.to_be_bytes());
        let len = data.len();
        let (_, records) = Batches::new(Bytes::from(data)).next().unwrap().unwrap();
        assert!(records.capacity_hint() <= len / MIN_RECORD);
        let read: Vec<_> = records.collect();
        assert_eq!(read.len(), 51, "50 records, then the error, then nothing");
        assert!(read[..50].iter().all(Result::is_ok));
        assert!(read[50].is_err());
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
        assert_eq!(decode_batches(plain).unwrap()[0].head.producer_id, -1);
        // Our decoder checks the CRC; librdkafka's view of the same fields via kafka-protocol.
        assert_eq!(
            decode_batches(stamped.clone()).unwrap()[0].head.producer_id,
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
