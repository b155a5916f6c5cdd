//! Delivery reports waiting for Flush, kept in the chunks they were made in (one per finished
//! batch): handing a batch's reports over under the accumulator lock is then a move, where
//! appending them to one queue copied them, and faulted in fresh pages, while ProduceAsync
//! calls waited for that lock.

use std::iter::Flatten;

use super::DeliveryReport;

#[derive(Debug, Default)]
pub struct Reports {
    chunks: Vec<Vec<DeliveryReport>>,
    len: usize,
}

impl Reports {
    /// Appends a batch's reports after the earlier ones.
    pub fn push_chunk(&mut self, chunk: Vec<DeliveryReport>) {
        if !chunk.is_empty() {
            self.len += chunk.len();
            self.chunks.push(chunk);
        }
    }

    /// Appends all of `other` after these.
    pub fn append(&mut self, other: Reports) {
        self.len += other.len;
        self.chunks.extend(other.chunks);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// In the order the records finished.
    pub fn iter(&self) -> impl Iterator<Item = &DeliveryReport> {
        self.chunks.iter().flatten()
    }
}

impl IntoIterator for Reports {
    type Item = DeliveryReport;
    type IntoIter = Flatten<std::vec::IntoIter<Vec<DeliveryReport>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.chunks.into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn report(id: u64) -> DeliveryReport {
        DeliveryReport {
            id,
            topic: Arc::from("t"),
            partition: 0,
            result: Err(crate::kafka::Error::Closed),
        }
    }

    #[test]
    fn chunks_read_back_in_order() {
        let mut a = Reports::default();
        a.push_chunk(vec![report(1), report(2)]);
        a.push_chunk(Vec::new());
        let mut b = Reports::default();
        b.push_chunk(vec![report(3)]);
        a.append(b);
        assert_eq!((a.len(), a.is_empty()), (3, false));
        assert_eq!(a.iter().map(|r| r.id).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(a.into_iter().map(|r| r.id).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(Reports::default().is_empty());
    }
}
