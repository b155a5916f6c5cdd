//! The JSON answers of PollBatch and Flush, serialized straight into text.

use super::json::{push_json_bytes, push_json_headers, push_json_str, to_text};
use crate::boundary::{units, WideOut, WideText};
use crate::kafka::consumer::Run;
use crate::kafka::{FlushOutcome, Reports};

/// PollBatch's answer: `[{"topic","partition","offset","key","value","headers","timestamp"}]`,
/// key and value as text when UTF-8, else `{"base64": "..."}`. Written by hand like Flush's:
/// a batch of a thousand small records spent more in serde's per-byte escaping than in Kafka.
/// Filled a run of records at a time, as the consumer shows them in place. What a run's
/// records share (they are of one partition) is written once and copied per record, with the
/// fixed text around their fields joined into as few pieces as the fields allow.
pub struct PollBatchJson {
    out: String,
    /// `,{"topic":..,"partition":..,"offset":` for the run being written.
    prefix: String,
}

impl PollBatchJson {
    pub fn new() -> PollBatchJson {
        PollBatchJson {
            out: String::from("["),
            prefix: String::new(),
        }
    }

    pub fn push(&mut self, run: Run<'_>) {
        let size: usize = run
            .iter()
            .map(|r| 96 + r.key().map_or(0, <[u8]>::len) + r.value().map_or(0, <[u8]>::len))
            .sum();
        self.out.reserve(size + 1);
        let mut numbers = itoa::Buffer::new();
        self.prefix.clear();
        self.prefix.push_str(",{\"topic\":");
        push_json_str(&mut self.prefix, run.topic());
        self.prefix.push_str(",\"partition\":");
        self.prefix.push_str(numbers.format(run.partition()));
        self.prefix.push_str(",\"offset\":");
        for r in run.iter() {
            let out = &mut self.out;
            // The first record has no comma before it.
            out.push_str(&self.prefix[usize::from(out.len() == 1)..]);
            out.push_str(numbers.format(r.offset()));
            match r.key() {
                None => out.push_str(",\"key\":null,\"value\":"),
                key => {
                    out.push_str(",\"key\":");
                    push_json_bytes(out, key);
                    out.push_str(",\"value\":");
                }
            }
            push_json_bytes(out, r.value());
            out.push_str(",\"headers\":");
            push_json_headers(out, r.headers());
            out.push_str(",\"timestamp\":");
            out.push_str(numbers.format(r.timestamp_ms()));
            out.push('}');
        }
    }

    pub fn finish(mut self) -> String {
        self.out.push(']');
        self.out
    }
}

/// Where Flush's hand-written JSON goes: a String, a count of UTF-16 units (to size the
/// 1C string before writing it), or the 1C string itself. One writer for all three, so the
/// count and the text cannot disagree.
trait Sink {
    fn text(&mut self, s: &str);

    fn u64(&mut self, n: u64) {
        self.text(itoa::Buffer::new().format(n));
    }

    fn i64(&mut self, n: i64) {
        self.text(itoa::Buffer::new().format(n));
    }
}

impl Sink for String {
    fn text(&mut self, s: &str) {
        self.push_str(s);
    }
}

impl Sink for WideOut<'_> {
    fn text(&mut self, s: &str) {
        self.push_str(s);
    }
}

/// Counts UTF-16 units; numbers by their digits, without writing them.
struct Measure(usize);

impl Sink for Measure {
    fn text(&mut self, s: &str) {
        self.0 += units(s);
    }

    fn u64(&mut self, n: u64) {
        self.0 += n.checked_ilog10().map_or(1, |d| d as usize + 1);
    }

    fn i64(&mut self, n: i64) {
        self.0 += usize::from(n < 0);
        self.u64(n.unsigned_abs());
    }
}

/// Flush's answer: `{"reports":[{"id","topic","partition","offset"} | {..,"error",
/// "error_code"}],"pending":N}`. Written by hand, a group (batch) at a time: a Flush after a
/// million ProduceAsync calls returns a million reports, and going through serde cost more
/// than producing them. What a group's reports share is written once and copied per report.
fn write_flush(out: &mut impl Sink, reports: &Reports, pending: usize) {
    out.text("{\"reports\":[");
    let mut numbers = itoa::Buffer::new();
    let mut tail = String::new();
    let mut first = true;
    for group in reports.groups() {
        // After the id: the rest of a delivered report up to its offset, or of a failed one.
        tail.clear();
        tail.push_str(",\"topic\":");
        push_json_str(&mut tail, &group.topic);
        tail.push_str(",\"partition\":");
        tail.push_str(numbers.format(group.partition));
        match &group.error {
            None => tail.push_str(",\"offset\":"),
            Some(e) => {
                tail.push_str(",\"error\":");
                tail.push_str(&to_text(&e.to_string()));
                tail.push_str(",\"error_code\":");
                tail.push_str(&e.code().map_or("null".into(), |c| c.to_string()));
                tail.push('}');
            }
        }
        for &(id, offset) in &group.records {
            out.text(if first { "{\"id\":" } else { ",{\"id\":" });
            first = false;
            out.u64(id);
            out.text(&tail);
            if group.error.is_none() {
                out.i64(offset);
                out.text("}");
            }
        }
    }
    out.text("],\"pending\":");
    out.u64(pending as u64);
    out.text("}");
}

/// Flush's answer as a String.
#[cfg(test)]
fn flush_json(reports: &Reports, pending: usize) -> String {
    let mut out = String::with_capacity(32 + reports.len() * 64);
    write_flush(&mut out, reports, pending);
    out
}

/// Flush's answer written straight into the string 1C receives, sized first: after a million
/// ProduceAsync calls it is over a hundred megabytes, and a String of it on the way doubled
/// the memory touched.
pub fn flush_answer(outcome: FlushOutcome) -> WideText {
    let mut size = Measure(0);
    write_flush(&mut size, &outcome.reports, outcome.pending);
    WideText::new(size.0, move |out| {
        write_flush(out, &outcome.reports, outcome.pending)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::{Error, ReportGroup};
    use std::sync::Arc;

    fn group(
        topic: &str,
        partition: i32,
        records: &[(u64, i64)],
        error: Option<Error>,
    ) -> ReportGroup {
        ReportGroup {
            topic: Arc::from(topic),
            partition,
            records: records.to_vec(),
            error,
        }
    }

    #[test]
    fn flush_json_is_valid_and_keeps_every_report() {
        let failure = Error::UnknownTopic { topic: "t".into() };
        let error = failure.to_string();
        let refused = Error::broker(10, Some("t"), Some(1), Some("too \"big\"".into()));
        let refused_text = refused.to_string();
        // Groups, as batches' reports arrive.
        let mut reports = Reports::default();
        reports.push(group("t", 2, &[(1, 10)], None));
        reports.push(group("odd \"name\" тема🙂", 2, &[(2, i64::MAX)], None));
        reports.push(group("t", -1, &[(3, -1)], Some(failure)));
        reports.push(group("t", 2, &[(4, -1), (5, 11)], None));
        reports.push(group("t", 1, &[(6, -1), (7, -1)], Some(refused)));
        let text = flush_json(&reports, 7);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        // What 1C gets is the same text, in exactly the units it was sized for.
        let wide = flush_answer(FlushOutcome {
            reports,
            pending: 7,
        });
        assert_eq!(wide.to_units(), text.encode_utf16().collect::<Vec<_>>());
        assert_eq!(wide.units(), text.encode_utf16().count());
        assert_eq!(
            v,
            serde_json::json!({"reports": [
                {"id": 1, "topic": "t", "partition": 2, "offset": 10},
                {"id": 2, "topic": "odd \"name\" тема🙂", "partition": 2, "offset": i64::MAX},
                {"id": 3, "topic": "t", "partition": -1,
                 "error": error, "error_code": null},
                {"id": 4, "topic": "t", "partition": 2, "offset": -1},
                {"id": 5, "topic": "t", "partition": 2, "offset": 11},
                {"id": 6, "topic": "t", "partition": 1, "error": refused_text, "error_code": 10},
                {"id": 7, "topic": "t", "partition": 1, "error": refused_text, "error_code": 10},
            ], "pending": 7})
        );
        assert_eq!(
            flush_json(&Reports::default(), 0),
            r#"{"reports":[],"pending":0}"#
        );
    }

    use crate::kafka::consumer::{chunk_of, ConsumedRecord};
    use bytes::Bytes;

    fn consumed(
        topic: &str,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> ConsumedRecord {
        ConsumedRecord {
            topic: Arc::from(topic),
            partition: 1,
            offset,
            key: key.map(Bytes::copy_from_slice),
            value: value.map(Bytes::copy_from_slice),
            headers: vec![],
            timestamp_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn poll_batch_json_escapes_what_needs_it_and_base64s_binary() {
        let mut with_headers = consumed("t", 3, None, Some(b""));
        with_headers.headers = vec![
            ("h".into(), Some(Bytes::from_static(b"1"))),
            ("h".into(), None),
            ("bin".into(), Some(Bytes::from_static(&[0xff]))),
        ];
        let records = [
            consumed("t", 0, Some(b"k"), Some(b"plain ascii ~\x7f")),
            consumed("t", 1, None, Some("Привет, \"мир\"\\\n\t".as_bytes())),
            consumed("odd \"topic\"", i64::MAX, Some(&[0, 159, 146, 150]), None),
            with_headers,
        ];
        // In runs, as the consumer shows them.
        let mut json = PollBatchJson::new();
        for run in [&records[..1], &records[1..2], &records[2..3], &records[3..]] {
            json.push(chunk_of(run).run(usize::MAX));
        }
        let text = json.finish();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let ts = 1_700_000_000_000i64;
        assert_eq!(
            v,
            serde_json::json!([
                {"topic": "t", "partition": 1, "offset": 0, "key": "k",
                 "value": "plain ascii ~\x7f", "headers": [], "timestamp": ts},
                {"topic": "t", "partition": 1, "offset": 1, "key": null,
                 "value": "Привет, \"мир\"\\\n\t", "headers": [], "timestamp": ts},
                {"topic": "odd \"topic\"", "partition": 1, "offset": i64::MAX,
                 "key": {"base64": "AJ+Slg=="}, "value": null, "headers": [], "timestamp": ts},
                {"topic": "t", "partition": 1, "offset": 3, "key": null, "value": "",
                 "headers": [["h", "1"], ["h", null], ["bin", {"base64": "/w=="}]],
                 "timestamp": ts},
            ])
        );
        assert_eq!(PollBatchJson::new().finish(), "[]");
    }
}
