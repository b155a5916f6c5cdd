//! Fetched records waiting for Poll, kept in the chunks the fetcher decoded them in: one per
//! partition of a Fetch answer. Queueing a chunk is a move and handing records out reads them
//! in place: copying every record into one queue, and out again into the caller's Vec, was a
//! sixth of a PollBatch's CPU time.

use std::collections::vec_deque::Drain;
use std::collections::VecDeque;

use super::state::ConsumedRecord;

/// Emptied chunk buffers kept for the fetcher's next answers, so a large answer is not written
/// into freshly faulted pages each time: a few, as one answer brings a chunk per partition, and
/// no more records' room in all than about 4 MB, as this memory is not counted as queued.
const SPARE_BUFFERS: usize = 8;
const SPARE_RECORDS: usize = (4 << 20) / std::mem::size_of::<ConsumedRecord>();

/// One partition's records from one answer, and the memory they hold: their batches' bytes,
/// which stay allocated until the chunk's last record is gone, and the records themselves.
struct Chunk {
    records: VecDeque<ConsumedRecord>,
    bytes: usize,
}

#[derive(Default)]
pub struct RecordQueue {
    chunks: VecDeque<Chunk>,
    len: usize,
    bytes: usize,
    spare: Vec<Vec<ConsumedRecord>>,
}

impl RecordQueue {
    pub fn len(&self) -> usize {
        self.len
    }

    /// Memory held by the queued records (what the fetcher's pause looks at).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Queues `records`, all of one partition, after those already queued; `data_bytes` is
    /// the size of the batches they were decoded from. `records` is left empty, holding a
    /// spare buffer when there is one.
    pub fn push(&mut self, records: &mut Vec<ConsumedRecord>, data_bytes: usize) {
        if records.is_empty() {
            return;
        }
        debug_assert!(records
            .windows(2)
            .all(|w| w[0].partition == w[1].partition && w[0].topic == w[1].topic));
        let bytes = data_bytes + records.len() * std::mem::size_of::<ConsumedRecord>();
        self.len += records.len();
        self.bytes += bytes;
        let spare = self.spare.pop().unwrap_or_default();
        let records = std::mem::replace(records, spare).into();
        self.chunks.push_back(Chunk { records, bytes });
    }

    pub fn pop_front(&mut self) -> Option<ConsumedRecord> {
        let chunk = self.chunks.front_mut()?;
        let r = chunk.records.pop_front()?;
        self.len -= 1;
        if chunk.records.is_empty() {
            self.recycle_front();
        }
        Some(r)
    }

    /// The next up-to-`max` records that lie together in memory, all of one partition (fewer
    /// when its chunk ends first). They stay queued until `move_front` or `drop_front`.
    pub fn front_run(&self, max: usize) -> &[ConsumedRecord] {
        let run = self.chunks.front().map_or(&[][..], |c| {
            // A chunk is made from a Vec and only drained from the front: it never wraps.
            debug_assert!(c.records.as_slices().1.is_empty());
            c.records.as_slices().0
        });
        &run[..run.len().min(max)]
    }

    /// Moves the first `n` records, which `front_run` showed, to the end of `out`.
    pub fn move_front(&mut self, n: usize, out: &mut Vec<ConsumedRecord>) {
        self.remove_front(n, |taken| out.extend(taken));
    }

    /// Drops the first `n` records, which `front_run` showed.
    pub fn drop_front(&mut self, n: usize) {
        self.remove_front(n, |taken| taken.for_each(drop));
    }

    fn remove_front(&mut self, n: usize, take: impl FnOnce(Drain<'_, ConsumedRecord>)) {
        let Some(chunk) = self.chunks.front_mut() else {
            return;
        };
        let n = n.min(chunk.records.len());
        take(chunk.records.drain(..n));
        self.len -= n;
        if chunk.records.is_empty() {
            self.recycle_front();
        }
    }

    /// Keeps only the partitions `keep` accepts (by topic and partition).
    pub fn retain(&mut self, mut keep: impl FnMut(&str, i32) -> bool) {
        self.chunks.retain(|c| {
            c.records
                .front()
                .is_some_and(|r| keep(&r.topic, r.partition))
        });
        self.len = self.chunks.iter().map(|c| c.records.len()).sum();
        self.bytes = self.chunks.iter().map(|c| c.bytes).sum();
    }

    /// In the order Poll hands them out.
    pub fn iter(&self) -> impl Iterator<Item = &ConsumedRecord> {
        self.chunks.iter().flat_map(|c| &c.records)
    }

    fn recycle_front(&mut self) {
        if let Some(chunk) = self.chunks.pop_front() {
            self.bytes -= chunk.bytes;
            let kept: usize = self.spare.iter().map(Vec::capacity).sum();
            if self.spare.len() < SPARE_BUFFERS && kept + chunk.records.capacity() <= SPARE_RECORDS
            {
                // Empty, so turning it back into a Vec moves nothing.
                self.spare.push(chunk.records.into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::consumer::state::test_record;

    fn rec(p: i32, o: i64) -> ConsumedRecord {
        test_record("t", p, o)
    }

    fn offsets(q: &RecordQueue) -> Vec<i64> {
        q.iter().map(|r| r.offset).collect()
    }

    #[test]
    fn chunks_are_read_in_order_in_runs_and_their_buffers_come_back() {
        let mut q = RecordQueue::default();
        let mut scratch: Vec<ConsumedRecord> = (0..3).map(|o| rec(0, o)).collect();
        q.push(&mut scratch, 100);
        assert!(scratch.is_empty());
        scratch.extend((3..5).map(|o| rec(1, o)));
        q.push(&mut scratch, 50);
        q.push(&mut Vec::new(), 7);
        let size = std::mem::size_of::<ConsumedRecord>();
        assert_eq!((q.len(), q.bytes()), (5, 150 + 5 * size));
        assert_eq!(offsets(&q), [0, 1, 2, 3, 4]);

        // A run stops at the end of its chunk.
        let run: Vec<i64> = q.front_run(10).iter().map(|r| r.offset).collect();
        assert_eq!(run, [0, 1, 2]);
        assert_eq!(q.front_run(2).len(), 2);
        q.drop_front(2);
        assert_eq!(
            q.bytes(),
            150 + 5 * size,
            "held until the chunk's last record goes"
        );
        assert_eq!(q.pop_front().map(|r| r.offset), Some(2));
        assert_eq!((q.len(), q.bytes()), (2, 50 + 2 * size));
        assert_eq!(q.front_run(10).len(), 2, "the next chunk's run");
        q.drop_front(10);
        assert_eq!((q.len(), q.bytes()), (0, 0));
        assert!(q.pop_front().is_none() && q.front_run(5).is_empty());

        // The emptied buffers are handed to the next push.
        let mut next = vec![rec(0, 5)];
        q.push(&mut next, 0);
        assert!(next.is_empty() && next.capacity() >= 2);
    }

    #[test]
    fn retain_drops_whole_partitions_and_keeps_order() {
        let mut q = RecordQueue::default();
        for p in [0, 1, 0] {
            let o = q.len() as i64;
            q.push(&mut vec![rec(p, o), rec(p, o + 1)], 10);
        }
        q.retain(|t, p| t == "t" && p == 0);
        assert_eq!(offsets(&q), [0, 1, 4, 5]);
        let size = std::mem::size_of::<ConsumedRecord>();
        assert_eq!((q.len(), q.bytes()), (4, 2 * (10 + 2 * size)));
        assert_eq!(q.front_run(10).len(), 2);
        q.drop_front(2);
        assert_eq!(
            q.front_run(10)[0].offset,
            4,
            "the dropped middle chunk is gone"
        );
    }
}
