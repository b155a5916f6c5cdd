//! What the consumer knows, shared by the application's calls and the background tasks:
//! membership, assigned partitions with their positions, and fetched records not yet handed out.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::chunk::{Chunk, Run};
use super::queue::RecordQueue;
use crate::kafka::error::Error;

pub type Tp = (String, i32);

/// A record handed to the application.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumedRecord {
    /// Shared by the records of one fetched partition: no allocation per record.
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    pub timestamp_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct Partition {
    /// Next offset to fetch; `None` until initialised from the committed offset or the reset policy.
    pub fetch: Option<i64>,
    /// Where the next Fetch starts while the records before it are still being decoded: read
    /// from batch headers, so the next request goes out before decoding. Only a hint; records
    /// are queued only when they start at `fetch`.
    pub fetch_ahead: Option<i64>,
    /// Where the records the broker has ready end, from the last answer (`None` after one
    /// that held no records): a Fetch from below it is answered at once. Only a hint.
    pub ready_end: Option<i64>,
    /// Offset after the last record handed to the application: what Commit commits.
    pub delivered: Option<i64>,
    /// Last committed offset we know of.
    pub committed: Option<i64>,
    pub high_watermark: Option<i64>,
    /// Bumped by Seek so fetches started before it are discarded.
    pub epoch: u64,
    /// After a Seek by time: records older than this are skipped (a broker may answer the time
    /// lookup with the start of a batch that holds older records too).
    pub skip_before_ms: Option<i64>,
}

/// Membership phases (franz-go style: explicit, one at a time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not in the group (before Subscribe, after leaving for a stalled application).
    Unjoined,
    /// JoinGroup/SyncGroup under way.
    Joining,
    /// Member of generation `generation`, heartbeating.
    Stable,
    /// Close was called.
    Closed,
}

pub struct State {
    pub phase: Phase,
    pub topics: Vec<String>,
    pub member_id: String,
    pub generation: i32,
    pub assigned: BTreeMap<Tp, Partition>,
    /// Bumped at every new assignment: fetches of an older one are dropped.
    pub assignment_epoch: u64,
    /// When this member led the last assignment: the partition count of every topic it
    /// assigned (0 for one that did not exist), to notice when they change.
    pub led_counts: Option<BTreeMap<String, i32>>,
    pub queue: RecordQueue,
    /// An error for a poll (e.g. no offset and auto.offset.reset=none), set by `fail`.
    error: Option<Error>,
    /// Records handed out so far, and how many of them have to come before `error`: the
    /// records queued when it happened precede it.
    taken: u64,
    error_after: u64,
    pub last_poll: Instant,
    /// Set when max.poll.interval.ms passed without a poll: the next poll rejoins.
    pub left_for_inactivity: bool,
    /// Partition of the last record handed out: records come in runs per partition, so the
    /// assignment key is built once per run instead of once per record.
    last_taken: Option<Tp>,
}

impl State {
    pub fn new() -> State {
        State {
            phase: Phase::Unjoined,
            topics: Vec::new(),
            member_id: String::new(),
            generation: -1,
            assigned: BTreeMap::new(),
            assignment_epoch: 0,
            led_counts: None,
            queue: RecordQueue::default(),
            error: None,
            taken: 0,
            error_after: 0,
            last_poll: Instant::now(),
            left_for_inactivity: false,
            last_taken: None,
        }
    }

    /// Takes a new assignment: positions of partitions we keep stay, records of partitions we
    /// lose are dropped, so nothing from a revoked partition reaches the application.
    pub fn set_assignment(&mut self, parts: Vec<Tp>) {
        let mut next = BTreeMap::new();
        for tp in parts {
            let mut kept = self.assigned.remove(&tp).unwrap_or_default();
            // Decodes of the old assignment are dropped, so nothing runs ahead of `fetch` now.
            kept.fetch_ahead = None;
            next.insert(tp, kept);
        }
        self.assigned = next;
        self.assignment_epoch += 1;
        let assigned = &self.assigned;
        self.queue
            .retain(|t, p| assigned.contains_key(&(t.to_string(), p)));
    }

    /// Drops queued records of one partition (after Seek).
    pub fn purge(&mut self, tp: &Tp) {
        self.queue.retain(|t, p| !(t == tp.0 && p == tp.1));
    }

    /// Notes an error for a poll, after the records queued so far.
    pub fn fail(&mut self, e: Error) {
        self.error_after = self.taken + self.queue.len() as u64;
        self.error = Some(e);
    }

    /// Records that may still be handed out before the pending error (all of them if none).
    pub fn before_error(&self) -> usize {
        match self.error {
            None => self.queue.len(),
            Some(_) => (self.error_after.saturating_sub(self.taken) as usize).min(self.queue.len()),
        }
    }

    /// The pending error, once the records that came before it are handed out.
    pub fn take_error(&mut self) -> Option<Error> {
        if self.before_error() == 0 {
            self.error.take()
        } else {
            None
        }
    }

    /// Queues one partition's records after those already queued, leaving `chunk` empty.
    pub fn queue_all(&mut self, chunk: &mut Chunk) {
        self.queue.push(chunk);
    }

    /// Hands out the next record and remembers its position for Commit.
    pub fn take(&mut self) -> Option<ConsumedRecord> {
        if self.before_error() == 0 {
            return None;
        }
        let r = self.queue.pop_front()?;
        self.taken += 1;
        delivered(
            &mut self.assigned,
            &mut self.last_taken,
            &r.topic,
            r.partition,
            r.offset,
        );
        Some(r)
    }

    /// Moves up to `max` records to the end of `out`.
    pub fn take_into(&mut self, max: usize, out: &mut Vec<ConsumedRecord>) {
        self.take_runs(max, |queue, n| queue.move_front(n, out));
    }

    /// Shows up to `max` records to `read`, a run of them at a time, in place; they are
    /// dropped after each run. Returns how many were handed out.
    pub fn read_into(&mut self, max: usize, mut read: impl FnMut(Run<'_>)) -> usize {
        self.take_runs(max, |queue, n| {
            if let Some(run) = queue.front_run(n) {
                read(run);
            }
            queue.drop_front(n);
        })
    }

    /// Up to `max` records, in runs that lie together in the queue; `take` removes the `n`
    /// at its front. A run is of one partition, so its position is noted once, after `take`
    /// has handed the run out.
    fn take_runs(&mut self, max: usize, mut take: impl FnMut(&mut RecordQueue, usize)) -> usize {
        let wanted = max.min(self.before_error());
        let mut left = wanted;
        while left > 0 {
            let Some(run) = self.queue.front_run(left) else {
                break;
            };
            let Some(offset) = run.last_offset() else {
                break;
            };
            let (topic, partition, n) = (Arc::clone(run.topic()), run.partition(), run.len());
            take(&mut self.queue, n);
            delivered(
                &mut self.assigned,
                &mut self.last_taken,
                &topic,
                partition,
                offset,
            );
            self.taken += n as u64;
            left -= n;
        }
        wanted - left
    }

    /// Offsets to commit: positions after delivered records not yet committed.
    pub fn uncommitted(&self) -> Vec<(Tp, i64)> {
        self.assigned
            .iter()
            .filter_map(|(tp, p)| match (p.delivered, p.committed) {
                (Some(d), Some(c)) if d <= c => None,
                (Some(d), _) => Some((tp.clone(), d)),
                _ => None,
            })
            .collect()
    }
}

/// Remembers that the record at `offset` reached the application: Commit commits the offset
/// after it. `last_taken` caches the assignment key, built once per run of one partition.
fn delivered(
    assigned: &mut BTreeMap<Tp, Partition>,
    last_taken: &mut Option<Tp>,
    topic: &str,
    partition: i32,
    offset: i64,
) {
    let same = matches!(last_taken, Some((t, p)) if *p == partition && t == topic);
    if !same {
        *last_taken = Some((topic.to_string(), partition));
    }
    if let Some(p) = last_taken.as_ref().and_then(|tp| assigned.get_mut(tp)) {
        p.delivered = Some(offset + 1);
    }
}

/// A one-byte record at `offset` of `partition` of `topic`, for the consumer's tests.
#[cfg(test)]
pub fn test_record(topic: &str, partition: i32, offset: i64) -> ConsumedRecord {
    ConsumedRecord {
        topic: topic.into(),
        partition,
        offset,
        key: None,
        value: Some(Bytes::from_static(b"v")),
        headers: vec![],
        timestamp_ms: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_record as rec;
    use crate::kafka::consumer::chunk::chunk_of;

    #[test]
    fn revoked_partitions_lose_queued_records_and_commits_follow_delivery() {
        let mut s = State::new();
        s.set_assignment(vec![("t".into(), 0), ("t".into(), 1)]);
        for (p, o) in [(0, 5), (1, 7), (0, 6)] {
            s.queue_all(&mut chunk_of(&[rec("t", p, o)]));
        }
        assert_eq!(s.take().unwrap().offset, 5);
        assert_eq!(s.uncommitted(), [(("t".to_string(), 0), 6)]);
        s.set_assignment(vec![("t".into(), 0)]);
        assert_eq!(
            s.queue.len(),
            1,
            "the record of revoked partition 1 is gone"
        );
        assert_eq!(s.take().unwrap().offset, 6);
        assert_eq!(s.uncommitted(), [(("t".to_string(), 0), 7)]);
        assert_eq!(s.queue.bytes(), 0);
    }

    #[test]
    fn an_error_comes_after_the_records_queued_before_it() {
        let mut s = State::new();
        s.set_assignment(vec![("t".into(), 0), ("t".into(), 1)]);
        let queue = |s: &mut State, p, o| s.queue_all(&mut chunk_of(&[rec("t", p, o)]));
        for o in 0..3 {
            queue(&mut s, 1, o);
        }
        assert_eq!(s.take().map(|r| r.offset), Some(0));
        s.fail(Error::State("bad batch".into()));
        queue(&mut s, 1, 3);
        assert!(s.take_error().is_none(), "two records came before it");
        let mut out = Vec::new();
        s.take_into(10, &mut out);
        assert_eq!(out.iter().map(|r| r.offset).collect::<Vec<_>>(), [1, 2]);
        assert!(s.take().is_none(), "nothing passes the error");
        assert!(s.take_error().is_some());
        assert_eq!(s.take().map(|r| r.offset), Some(3));
        // Records dropped meanwhile (a Seek) do not hold the error back.
        queue(&mut s, 0, 9);
        s.fail(Error::State("again".into()));
        s.purge(&("t".to_string(), 0));
        assert!(s.take_error().is_some());
    }

    #[test]
    fn a_batch_take_notes_the_last_record_of_every_partition() {
        let mut s = State::new();
        s.set_assignment(vec![("t".into(), 0), ("t".into(), 1), ("u".into(), 0)]);
        for (t, p, o) in [
            ("t", 0, 5),
            ("t", 0, 6),
            ("t", 1, 7),
            ("u", 0, 2),
            ("t", 0, 7),
        ] {
            s.queue_all(&mut chunk_of(&[rec(t, p, o)]));
        }
        let mut out = Vec::new();
        s.take_into(4, &mut out);
        assert_eq!(
            out.iter().map(|r| r.offset).collect::<Vec<_>>(),
            [5, 6, 7, 2]
        );
        let mut due = s.uncommitted();
        due.sort();
        assert_eq!(
            due,
            [
                (("t".to_string(), 0), 7),
                (("t".to_string(), 1), 8),
                (("u".to_string(), 0), 3)
            ]
        );
        s.take_into(10, &mut out);
        assert_eq!(out.len(), 5);
        assert_eq!(s.queue.bytes(), 0);
        assert_eq!(s.assigned[&("t".to_string(), 0)].delivered, Some(8));
    }

    #[test]
    fn read_into_shows_runs_across_chunks_and_notes_each_partition_delivered() {
        let mut s = State::new();
        s.set_assignment(vec![("t".into(), 0), ("t".into(), 1)]);
        s.queue_all(&mut chunk_of(
            &(0..3).map(|o| rec("t", 0, o)).collect::<Vec<_>>(),
        ));
        s.queue_all(&mut chunk_of(
            &(7..9).map(|o| rec("t", 1, o)).collect::<Vec<_>>(),
        ));
        s.queue_all(&mut chunk_of(&[rec("t", 0, 3)]));
        let mut runs = Vec::new();
        let n = s.read_into(4, |run| {
            runs.push(run.iter().map(|r| r.offset()).collect::<Vec<_>>())
        });
        assert_eq!(n, 4);
        assert_eq!(runs, [vec![0, 1, 2], vec![7]]);
        let mut due = s.uncommitted();
        due.sort();
        assert_eq!(due, [(("t".to_string(), 0), 3), (("t".to_string(), 1), 8)]);
        s.fail(Error::State("bad".into()));
        let mut lens = Vec::new();
        assert_eq!(s.read_into(10, |run| lens.push(run.len())), 2);
        assert_eq!(lens, [1, 1], "up to the error, which comes next");
        assert_eq!(s.read_into(10, |_| panic!("nothing passes the error")), 0);
        assert!(s.take_error().is_some());
        assert_eq!(s.queue.bytes(), 0);
    }
}
