//! Fetched records waiting for Poll, kept in the chunks the fetcher decoded them in: one per
//! partition of a Fetch answer. Queueing a chunk is a move and handing records out reads them
//! in place: copying every record into one queue, and out again into the caller's Vec, was a
//! sixth of a PollBatch's CPU time.

use std::collections::VecDeque;

use super::chunk::{Chunk, Run};
use super::state::ConsumedRecord;

/// Emptied chunks kept for the fetcher's next answers, so a large answer is not written into
/// freshly faulted pages each time: a few, as one answer brings a chunk per partition, and no
/// more room in all than about 4 MB, as this memory is not counted as queued.
const SPARE_CHUNKS: usize = 8;
const SPARE_BYTES: usize = 4 << 20;

#[derive(Default)]
pub struct RecordQueue {
    chunks: VecDeque<Chunk>,
    len: usize,
    bytes: usize,
    spare: Vec<Chunk>,
}

impl RecordQueue {
    pub fn len(&self) -> usize {
        self.len
    }

    /// Memory held by the queued records (what the fetcher's pause looks at).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Queues `chunk`'s records after those already queued. `chunk` is left empty, holding a
    /// spare chunk's room when there is one.
    pub fn push(&mut self, chunk: &mut Chunk) {
        if chunk.is_empty() {
            chunk.clear();
            return;
        }
        self.len += chunk.len();
        self.bytes += chunk.bytes();
        let spare = self.spare.pop().unwrap_or_default();
        self.chunks.push_back(std::mem::replace(chunk, spare));
    }

    pub fn pop_front(&mut self) -> Option<ConsumedRecord> {
        let chunk = self.chunks.front_mut()?;
        let r = chunk.pop_front()?;
        self.len -= 1;
        if chunk.is_empty() {
            self.recycle_front();
        }
        Some(r)
    }

    /// The next up-to-`max` records that lie together, all of one partition (fewer when its
    /// chunk ends first). They stay queued until `move_front` or `drop_front`.
    pub fn front_run(&self, max: usize) -> Option<Run<'_>> {
        self.chunks.front().map(|c| c.run(max))
    }

    /// Moves the first `n` records, which `front_run` showed, to the end of `out`.
    pub fn move_front(&mut self, n: usize, out: &mut Vec<ConsumedRecord>) {
        if let Some(run) = self.front_run(n) {
            out.extend(run.iter().map(|r| r.to_consumed()));
        }
        self.drop_front(n);
    }

    /// Drops the first `n` records, which `front_run` showed.
    pub fn drop_front(&mut self, n: usize) {
        let Some(chunk) = self.chunks.front_mut() else {
            return;
        };
        let n = n.min(chunk.len());
        chunk.advance(n);
        self.len -= n;
        if chunk.is_empty() {
            self.recycle_front();
        }
    }

    /// Keeps only the partitions `keep` accepts (by topic and partition).
    pub fn retain(&mut self, mut keep: impl FnMut(&str, i32) -> bool) {
        self.chunks.retain(|c| keep(c.topic(), c.partition()));
        self.len = self.chunks.iter().map(Chunk::len).sum();
        self.bytes = self.chunks.iter().map(Chunk::bytes).sum();
    }

    /// Offset of the first queued record of `partition` of `topic`.
    pub fn first_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.chunks
            .iter()
            .find(|c| c.partition() == partition && **c.topic() == *topic)
            .and_then(Chunk::first_offset)
    }

    /// In the order Poll hands them out.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = super::chunk::QueuedRecord<'_>> {
        self.chunks.iter().flat_map(|c| c.run(usize::MAX).iter())
    }

    fn recycle_front(&mut self) {
        if let Some(mut chunk) = self.chunks.pop_front() {
            self.bytes -= chunk.bytes();
            chunk.clear();
            let kept: usize = self.spare.iter().map(Chunk::capacity_bytes).sum();
            if self.spare.len() < SPARE_CHUNKS && kept + chunk.capacity_bytes() <= SPARE_BYTES {
                self.spare.push(chunk);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::consumer::chunk::chunk_of;
    use crate::kafka::consumer::state::test_record;

    fn chunk(p: i32, offsets: std::ops::Range<i64>) -> Chunk {
        chunk_of(&offsets.map(|o| test_record("t", p, o)).collect::<Vec<_>>())
    }

    fn offsets(q: &RecordQueue) -> Vec<i64> {
        q.iter().map(|r| r.offset()).collect()
    }

    fn run_offsets(q: &RecordQueue, max: usize) -> Vec<i64> {
        q.front_run(max)
            .map_or(vec![], |run| run.iter().map(|r| r.offset()).collect())
    }

    #[test]
    fn chunks_are_read_in_order_in_runs_and_their_room_comes_back() {
        let mut q = RecordQueue::default();
        let (first, second) = (chunk(0, 0..3), chunk(1, 3..5));
        let (b1, b2) = (first.bytes(), second.bytes());
        let mut scratch = first;
        q.push(&mut scratch);
        assert!(scratch.is_empty());
        scratch = second;
        q.push(&mut scratch);
        q.push(&mut Chunk::default());
        assert_eq!((q.len(), q.bytes()), (5, b1 + b2));
        assert_eq!(offsets(&q), [0, 1, 2, 3, 4]);

        // A run stops at the end of its chunk.
        assert_eq!(run_offsets(&q, 10), [0, 1, 2]);
        assert_eq!(run_offsets(&q, 2), [0, 1]);
        q.drop_front(2);
        assert_eq!(
            q.bytes(),
            b1 + b2,
            "held until the chunk's last record goes"
        );
        assert_eq!(q.pop_front().map(|r| r.offset), Some(2));
        assert_eq!((q.len(), q.bytes()), (2, b2));
        let mut out = Vec::new();
        q.move_front(1, &mut out);
        assert_eq!(out.iter().map(|r| r.offset).collect::<Vec<_>>(), [3]);
        assert_eq!(run_offsets(&q, 10), [4], "the rest of the next chunk");
        q.drop_front(10);
        assert_eq!((q.len(), q.bytes()), (0, 0));
        assert!(q.pop_front().is_none() && q.front_run(5).is_none());

        // The emptied chunks' room is handed to the next push.
        let mut next = chunk(0, 5..6);
        q.push(&mut next);
        assert!(next.is_empty() && next.capacity_bytes() > 0);
    }

    #[test]
    fn retain_drops_whole_partitions_and_keeps_order() {
        let mut q = RecordQueue::default();
        let mut kept = 0;
        for (p, o) in [(0, 0), (1, 2), (0, 4)] {
            let mut c = chunk(p, o..o + 2);
            if p == 0 {
                kept += c.bytes();
            }
            q.push(&mut c);
        }
        assert_eq!(q.first_offset("t", 1), Some(2));
        q.retain(|t, p| t == "t" && p == 0);
        assert_eq!(offsets(&q), [0, 1, 4, 5]);
        assert_eq!((q.len(), q.bytes()), (4, kept));
        assert_eq!(
            (q.first_offset("t", 1), q.first_offset("t", 0)),
            (None, Some(0))
        );
        q.drop_front(2);
        assert_eq!(
            run_offsets(&q, 10),
            [4, 5],
            "the dropped middle chunk is gone"
        );
    }
}
