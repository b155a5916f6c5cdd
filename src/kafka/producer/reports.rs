//! Delivery reports waiting for Flush, kept as one group per finished batch: its topic,
//! partition and outcome once, and per record only the delivery id and offset. A report per
//! record with its own topic and result was 90 bytes and two atomic counts; a million of them
//! cost Flush more to build and drop than the records cost to send.

use std::sync::Arc;

use crate::kafka::error::{Error, Result};

/// The reports of one batch (or of one record that never reached a batch).
#[derive(Debug, Clone)]
pub struct ReportGroup {
    pub topic: Arc<str>,
    /// -1 when the record failed before a partition was chosen.
    pub partition: i32,
    /// Delivery ids with the offset each record got (-1 when the broker did not say, or when
    /// the group failed).
    pub records: Vec<(u64, i64)>,
    /// Why every record of the group failed; `None` when they were delivered.
    pub error: Option<Error>,
}

/// The outcome of one ProduceAsync, one at a time (see `Reports::iter`).
#[derive(Debug, Clone)]
pub struct DeliveryReport {
    pub id: u64,
    pub topic: Arc<str>,
    pub partition: i32,
    /// The offset the record got (-1 when the broker did not say), or why it failed.
    pub result: Result<i64>,
}

#[derive(Debug, Default)]
pub struct Reports {
    groups: Vec<ReportGroup>,
    len: usize,
}

impl Reports {
    /// Appends a batch's reports after the earlier ones.
    pub fn push(&mut self, group: ReportGroup) {
        if !group.records.is_empty() {
            self.len += group.records.len();
            self.groups.push(group);
        }
    }

    /// Appends all of `other` after these.
    pub fn append(&mut self, other: Reports) {
        self.len += other.len;
        self.groups.extend(other.groups);
    }

    /// Reports, not groups.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// In the order the batches finished.
    pub fn groups(&self) -> &[ReportGroup] {
        &self.groups
    }

    /// Each record's report, in the order the records finished.
    pub fn iter(&self) -> impl Iterator<Item = DeliveryReport> + '_ {
        self.groups.iter().flat_map(|g| {
            g.records.iter().map(move |&(id, offset)| DeliveryReport {
                id,
                topic: Arc::clone(&g.topic),
                partition: g.partition,
                result: match &g.error {
                    None => Ok(offset),
                    Some(e) => Err(e.clone()),
                },
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(records: &[(u64, i64)], error: Option<Error>) -> ReportGroup {
        ReportGroup {
            topic: Arc::from("t"),
            partition: 3,
            records: records.to_vec(),
            error,
        }
    }

    #[test]
    fn groups_read_back_as_reports_in_order() {
        let mut a = Reports::default();
        a.push(group(&[(1, 10), (2, 11)], None));
        a.push(group(&[], None));
        let mut b = Reports::default();
        b.push(group(&[(3, -1)], Some(Error::Closed)));
        a.append(b);
        assert_eq!((a.len(), a.is_empty(), a.groups().len()), (3, false, 2));
        let got: Vec<(u64, i32, std::result::Result<i64, String>)> = a
            .iter()
            .map(|r| (r.id, r.partition, r.result.map_err(|e| e.to_string())))
            .collect();
        let closed = Error::Closed.to_string();
        assert_eq!(got, [(1, 3, Ok(10)), (2, 3, Ok(11)), (3, 3, Err(closed))]);
        assert!(Reports::default().is_empty());
    }
}
