//! One partition's records from one Fetch answer, kept as positions in the batches they came
//! in: no reference count, allocation or drop per record. A record becomes an owned
//! `ConsumedRecord` only when Poll hands out one; PollBatch reads them where they lie.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use super::state::ConsumedRecord;
use crate::kafka::records::{RawHeader, RawRecord};

/// A field's place in its batch's body; `NULL` as `len` for a null field.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    const NULL: Span = Span {
        start: 0,
        len: u32::MAX,
    };

    /// Bodies are shorter than u32::MAX bytes (the decoder refuses longer ones).
    fn of(r: Option<Range<usize>>) -> Span {
        r.map_or(Span::NULL, |r| Span {
            start: r.start as u32,
            len: (r.end - r.start) as u32,
        })
    }

    fn range(self) -> Option<Range<usize>> {
        (self.len != u32::MAX).then(|| self.start as usize..(self.start + self.len) as usize)
    }
}

/// A record: its numbers, and where its fields and headers lie.
#[derive(Debug, Clone, Copy)]
struct Slot {
    offset: i64,
    timestamp_ms: i64,
    /// Its batch: an index into `Chunk::bodies`.
    body: u32,
    key: Span,
    value: Span,
    /// Its headers: `headers[first_header..first_header + n_headers]`.
    first_header: u32,
    n_headers: u32,
}

#[derive(Debug, Clone, Copy)]
struct HeaderSlot {
    name: Span,
    value: Span,
}

/// One partition's records from one answer, with the batches they lie in.
#[derive(Debug)]
pub struct Chunk {
    topic: Arc<str>,
    partition: i32,
    /// The batches' bodies (slices of the answer, or decompressed), held while records remain.
    bodies: Vec<Bytes>,
    slots: Vec<Slot>,
    /// Records before this one were handed out.
    read: usize,
    headers: Vec<HeaderSlot>,
    body_bytes: usize,
}

impl Default for Chunk {
    fn default() -> Chunk {
        Chunk::new(Arc::from(""), 0)
    }
}

impl Chunk {
    pub fn new(topic: Arc<str>, partition: i32) -> Chunk {
        Chunk {
            topic,
            partition,
            bodies: Vec::new(),
            slots: Vec::new(),
            read: 0,
            headers: Vec::new(),
            body_bytes: 0,
        }
    }

    /// Empties the chunk for records of `partition` of `topic`, keeping its room.
    pub fn reset(&mut self, topic: Arc<str>, partition: i32) {
        self.clear();
        self.topic = topic;
        self.partition = partition;
    }

    /// Drops the records and releases their batches, keeping the room.
    pub fn clear(&mut self) {
        self.bodies.clear();
        self.slots.clear();
        self.headers.clear();
        self.read = 0;
        self.body_bytes = 0;
    }

    pub fn topic(&self) -> &Arc<str> {
        &self.topic
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Records not yet handed out.
    pub fn len(&self) -> usize {
        self.slots.len() - self.read
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Memory the chunk holds until its last record goes: its batches and its slots.
    pub fn bytes(&self) -> usize {
        self.body_bytes
            + self.slots.len() * std::mem::size_of::<Slot>()
            + self.headers.len() * std::mem::size_of::<HeaderSlot>()
    }

    /// Room kept when emptied (what a spare chunk costs).
    pub fn capacity_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.headers.capacity() * std::mem::size_of::<HeaderSlot>()
    }

    /// Adds a batch's body for the records pushed after it.
    pub fn add_body(&mut self, body: Bytes) {
        self.body_bytes += body.len();
        self.bodies.push(body);
    }

    /// Room for `n` more records.
    pub fn reserve(&mut self, n: usize) {
        self.slots.reserve(n);
    }

    /// Adds a record of the last added body; `headers` are its headers.
    pub fn push(&mut self, r: &RawRecord, headers: &[RawHeader]) {
        debug_assert!(!self.bodies.is_empty());
        let first_header = self.headers.len() as u32;
        self.headers.extend(headers.iter().map(|h| HeaderSlot {
            name: Span::of(Some(h.name.clone())),
            value: Span::of(h.value.clone()),
        }));
        self.slots.push(Slot {
            offset: r.offset,
            timestamp_ms: r.timestamp,
            body: (self.bodies.len() - 1) as u32,
            key: Span::of(r.key.clone()),
            value: Span::of(r.value.clone()),
            first_header,
            n_headers: headers.len() as u32,
        });
    }

    /// Where the chunk ends now, for `truncate`.
    pub fn mark(&self) -> Mark {
        Mark {
            bodies: self.bodies.len(),
            slots: self.slots.len(),
            headers: self.headers.len(),
            body_bytes: self.body_bytes,
        }
    }

    /// Drops what was added after `mark` (a bad batch gives none of its records).
    pub fn truncate(&mut self, mark: Mark) {
        self.bodies.truncate(mark.bodies);
        self.slots.truncate(mark.slots);
        self.headers.truncate(mark.headers);
        self.body_bytes = mark.body_bytes;
    }

    /// Drops the records written before `ts` (after a Seek by time), before the chunk is
    /// queued. Their batches stay until the chunk goes (they are counted in `bytes`).
    pub fn drop_older_than(&mut self, ts: i64) {
        debug_assert_eq!(self.read, 0, "only a chunk not yet queued");
        self.slots.retain(|s| s.timestamp_ms >= ts);
    }

    /// Up to `max` records not yet handed out.
    pub fn run(&self, max: usize) -> Run<'_> {
        let slots = &self.slots[self.read..];
        Run {
            chunk: self,
            slots: &slots[..slots.len().min(max)],
        }
    }

    /// Hands out the next record as an owned one.
    pub fn pop_front(&mut self) -> Option<ConsumedRecord> {
        let r = self.run(1).iter().next()?.to_consumed();
        self.read += 1;
        Some(r)
    }

    /// Marks the next `n` records handed out.
    pub fn advance(&mut self, n: usize) {
        self.read += n.min(self.len());
    }

    /// Offset of the next record not yet handed out.
    pub fn first_offset(&self) -> Option<i64> {
        self.slots.get(self.read).map(|s| s.offset)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Mark {
    bodies: usize,
    slots: usize,
    headers: usize,
    body_bytes: usize,
}

/// Records of one chunk, one partition, that lie together.
#[derive(Clone, Copy)]
pub struct Run<'a> {
    chunk: &'a Chunk,
    slots: &'a [Slot],
}

impl<'a> Run<'a> {
    pub fn topic(&self) -> &'a Arc<str> {
        &self.chunk.topic
    }

    pub fn partition(&self) -> i32 {
        self.chunk.partition
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn last_offset(&self) -> Option<i64> {
        self.slots.last().map(|s| s.offset)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = QueuedRecord<'a>> + 'a {
        let chunk = self.chunk;
        self.slots
            .iter()
            .map(move |slot| QueuedRecord { chunk, slot })
    }
}

/// A queued record, read where it lies.
#[derive(Clone, Copy)]
pub struct QueuedRecord<'a> {
    chunk: &'a Chunk,
    slot: &'a Slot,
}

impl<'a> QueuedRecord<'a> {
    pub fn topic(&self) -> &'a str {
        &self.chunk.topic
    }

    pub fn partition(&self) -> i32 {
        self.chunk.partition
    }

    pub fn offset(&self) -> i64 {
        self.slot.offset
    }

    pub fn timestamp_ms(&self) -> i64 {
        self.slot.timestamp_ms
    }

    fn body(&self) -> &'a Bytes {
        &self.chunk.bodies[self.slot.body as usize]
    }

    fn field(&self, span: Span) -> Option<&'a [u8]> {
        span.range().map(|r| &self.body()[r])
    }

    pub fn key(&self) -> Option<&'a [u8]> {
        self.field(self.slot.key)
    }

    pub fn value(&self) -> Option<&'a [u8]> {
        self.field(self.slot.value)
    }

    fn header_slots(&self) -> &'a [HeaderSlot] {
        let first = self.slot.first_header as usize;
        &self.chunk.headers[first..first + self.slot.n_headers as usize]
    }

    fn header_name(&self, h: &HeaderSlot) -> &'a str {
        // The decoder checked the name is UTF-8.
        std::str::from_utf8(self.field(h.name).unwrap_or_default()).unwrap_or_default()
    }

    /// Header names and values, in their order, duplicates kept.
    pub fn headers(&self) -> impl ExactSizeIterator<Item = (&'a str, Option<&'a [u8]>)> + 'a {
        let this = *self;
        self.header_slots()
            .iter()
            .map(move |h| (this.header_name(h), this.field(h.value)))
    }

    /// The record as an owned one, sharing the batch's bytes.
    pub fn to_consumed(&self) -> ConsumedRecord {
        let body = self.body();
        let field = |span: Span| span.range().map(|r| body.slice(r));
        ConsumedRecord {
            topic: Arc::clone(&self.chunk.topic),
            partition: self.chunk.partition,
            offset: self.slot.offset,
            key: field(self.slot.key),
            value: field(self.slot.value),
            headers: self
                .header_slots()
                .iter()
                .map(|h| (self.header_name(h).to_owned(), field(h.value)))
                .collect(),
            timestamp_ms: self.slot.timestamp_ms,
        }
    }
}

/// A chunk holding `records`, all of one partition, each field in one shared body (tests).
#[cfg(test)]
pub fn chunk_of(records: &[ConsumedRecord]) -> Chunk {
    let first = records.first().expect("a test chunk has records");
    let mut chunk = Chunk::new(Arc::clone(&first.topic), first.partition);
    let mut body = Vec::new();
    let mut span = |b: Option<&[u8]>| {
        b.map(|b| {
            body.extend_from_slice(b);
            body.len() - b.len()..body.len()
        })
    };
    let mut raws = Vec::new();
    for r in records {
        assert!(r.topic == first.topic && r.partition == first.partition);
        let raw = RawRecord {
            offset: r.offset,
            timestamp: r.timestamp_ms,
            key: span(r.key.as_deref()),
            value: span(r.value.as_deref()),
        };
        let headers: Vec<RawHeader> = r
            .headers
            .iter()
            .map(|(name, value)| RawHeader {
                name: span(Some(name.as_bytes())).unwrap(),
                value: span(value.as_deref()),
            })
            .collect();
        raws.push((raw, headers));
    }
    chunk.add_body(Bytes::from(body));
    for (raw, headers) in &raws {
        chunk.push(raw, headers);
    }
    chunk
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: i64, key: Option<&str>, value: Option<&str>) -> ConsumedRecord {
        ConsumedRecord {
            topic: Arc::from("тема"),
            partition: 3,
            offset,
            key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
            headers: vec![],
            timestamp_ms: 100 + offset,
        }
    }

    #[test]
    fn records_read_in_place_and_owned_agree_with_what_went_in() {
        let mut with_headers = record(2, Some(""), None);
        with_headers.headers = vec![
            ("h".into(), Some(Bytes::from_static(b"1"))),
            ("h".into(), None),
            ("имя".into(), Some(Bytes::from_static(&[0xff]))),
        ];
        let records = [
            record(0, None, Some("v0")),
            record(1, Some("k1"), Some("")),
            with_headers,
            record(3, None, None),
        ];
        let mut chunk = chunk_of(&records);
        assert_eq!((chunk.len(), chunk.first_offset()), (4, Some(0)));
        let run = chunk.run(10);
        assert_eq!(
            (run.len(), run.last_offset(), run.partition()),
            (4, Some(3), 3)
        );
        for (r, want) in run.iter().zip(&records) {
            assert_eq!(r.topic(), "тема");
            assert_eq!(r.offset(), want.offset);
            assert_eq!(r.timestamp_ms(), want.timestamp_ms);
            assert_eq!(r.key(), want.key.as_deref());
            assert_eq!(r.value(), want.value.as_deref());
            let headers: Vec<(&str, Option<&[u8]>)> = r.headers().collect();
            let wanted: Vec<(&str, Option<&[u8]>)> = want
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_deref()))
                .collect();
            assert_eq!(headers, wanted);
            assert_eq!(r.to_consumed(), *want);
        }
        assert_eq!(chunk.run(2).len(), 2);
        chunk.advance(1);
        assert_eq!(chunk.pop_front().as_ref(), Some(&records[1]));
        assert_eq!(chunk.run(10).iter().next().unwrap().offset(), 2);
        chunk.advance(10);
        assert!(chunk.is_empty() && chunk.pop_front().is_none() && chunk.run(5).is_empty());
        assert!(chunk.bytes() > 0, "held until the chunk goes");
        chunk.clear();
        assert_eq!(chunk.bytes(), 0);
    }

    #[test]
    fn dropping_older_records_keeps_the_newer_ones_and_the_bytes_count() {
        let mut chunk = chunk_of(
            &(0..5)
                .map(|o| record(o, None, Some("v")))
                .collect::<Vec<_>>(),
        );
        chunk.drop_older_than(103);
        let left: Vec<i64> = chunk.run(10).iter().map(|r| r.offset()).collect();
        assert_eq!(left, [3, 4]);
        assert_eq!(chunk.len(), 2);
    }
}
