//! The group consumer: Subscribe, Poll, Commit, Seek, Assignment, Close, on the classic group
//! protocol. Two background tasks run per consumer: membership (`group`) and fetching (`fetcher`).

mod assignor;
mod chunk;
mod fetcher;
mod group;
mod offsets;
mod protocol;
mod queue;
mod state;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::cluster::Cluster;
use super::error::{self, Error, Result};
#[cfg(test)]
pub use chunk::chunk_of;
pub use chunk::{QueuedRecord, Run};
pub use state::ConsumedRecord;
use state::{Phase, State, Tp};

/// Where Seek moves a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeekTo {
    Offset(i64),
    /// The first message at or after this time (ms since the Unix epoch).
    Timestamp(i64),
    Beginning,
    End,
}

/// One assigned partition as Assignment reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionState {
    pub topic: String,
    pub partition: i32,
    /// Next offset the application will get.
    pub position: Option<i64>,
    pub committed: Option<i64>,
    pub high_watermark: Option<i64>,
    pub lag: Option<i64>,
}

pub(crate) struct Inner {
    cluster: Arc<Cluster>,
    group: String,
    instance: Option<String>,
    state: Mutex<State>,
    coordinator: Mutex<Option<i32>>,
    /// Records arrived (or an error for the next poll).
    records: Notify,
    /// Wakes the membership task (Close, a rejoin, a poll after leaving).
    wake: Notify,
    /// Wakes the fetcher (new assignment, queue drained, Seek).
    fetch_wake: Notify,
}

pub struct Consumer {
    inner: Arc<Inner>,
}

impl Consumer {
    /// Joins `group` for `topics` and starts the background tasks. Runs on the library runtime.
    pub async fn subscribe(
        cluster: Arc<Cluster>,
        topics: Vec<String>,
        group: String,
    ) -> Result<Consumer> {
        if group.is_empty() {
            return Err(Error::config("group.id", "is required to subscribe"));
        }
        cluster.refresh_used(&topics).await?;
        // A topic the broker refuses for good (an invalid name, no permission) would leave the
        // member waiting for records that can never come.
        for t in &topics {
            if let Some(code) = cluster.missing(t).filter(|c| !error::is_retriable(*c)) {
                return Err(Error::broker(code, Some(t), None, None));
            }
        }
        let mut st = State::new();
        st.topics = topics;
        st.phase = Phase::Joining;
        let inner = Arc::new(Inner {
            instance: cluster.config.group_instance_id.clone(),
            cluster,
            group,
            state: Mutex::new(st),
            coordinator: Mutex::new(None),
            records: Notify::new(),
            wake: Notify::new(),
            fetch_wake: Notify::new(),
        });
        tokio::spawn(group::run(inner.clone()));
        tokio::spawn(fetcher::run(inner.clone()));
        Ok(Consumer { inner })
    }

    /// Notes that the application polled (max.poll.interval.ms) and rejoins after a stall.
    fn touch(&self, st: &mut State) {
        st.last_poll = Instant::now();
        if st.left_for_inactivity && st.phase == Phase::Unjoined {
            // Polling again after max.poll.interval.ms: rejoin the group.
            st.left_for_inactivity = false;
            st.phase = Phase::Joining;
            self.inner.wake.notify_one();
        }
    }

    /// Up to `max` records that have already arrived; never waits, so the caller needs no
    /// runtime (Poll from 1C takes this path whenever records are buffered).
    pub fn poll_now(&self, max: usize) -> Result<Vec<ConsumedRecord>> {
        let mut out = Vec::new();
        self.take_now(|st| st.take_into(max, &mut out))?;
        Ok(out)
    }

    /// `poll_now` for one record, without a Vec per call.
    pub fn poll_one_now(&self) -> Result<Option<ConsumedRecord>> {
        let mut out = None;
        self.take_now(|st| out = st.take())?;
        Ok(out)
    }

    /// Like `poll_now`, but shows the records to `read` where they lie, a run at a time,
    /// instead of moving them out: for callers that only turn them into something else.
    /// `read` runs under the consumer's lock, so it must not call back into the consumer.
    /// Returns how many records were handed out.
    pub fn read_now(&self, max: usize, read: impl FnMut(Run<'_>)) -> Result<usize> {
        let mut n = 0;
        self.take_now(|st| n = st.read_into(max, read))?;
        Ok(n)
    }

    fn take_now(&self, take: impl FnOnce(&mut State)) -> Result<()> {
        let mut st = self.inner.state.lock().unwrap();
        self.touch(&mut st);
        if let Some(e) = st.take_error() {
            return Err(e);
        }
        if st.phase == Phase::Closed {
            return Err(Error::Closed);
        }
        let before = st.queue.bytes();
        take(&mut st);
        // A wake-up per record would cost a thread switch each: only the crossing counts.
        let low = fetcher::resume_below(&self.inner.cluster.config);
        let wake = before >= low && st.queue.bytes() < low;
        drop(st);
        if wake {
            self.inner.fetch_wake.notify_one();
        }
        Ok(())
    }

    /// The next record, waiting up to `timeout`; `Ok(None)` when none came.
    pub async fn poll(&self, timeout: Duration) -> Result<Option<ConsumedRecord>> {
        Ok(self.poll_batch(1, timeout).await?.pop())
    }

    /// Up to `max` records, waiting up to `timeout` for the first one.
    pub async fn poll_batch(&self, max: usize, timeout: Duration) -> Result<Vec<ConsumedRecord>> {
        let mut out = Vec::new();
        self.wait_for_records(timeout, || {
            self.take_now(|st| st.take_into(max, &mut out))?;
            Ok(!out.is_empty())
        })
        .await?;
        Ok(out)
    }

    /// `read_now`, waiting up to `timeout` for the first record.
    pub async fn read_batch(
        &self,
        max: usize,
        timeout: Duration,
        mut read: impl FnMut(Run<'_>),
    ) -> Result<usize> {
        let mut n = 0;
        self.wait_for_records(timeout, || {
            n = self.read_now(max, &mut read)?;
            Ok(n > 0)
        })
        .await?;
        Ok(n)
    }

    /// Runs `take` until it reports records or `timeout` passes, again each time records arrive.
    async fn wait_for_records(
        &self,
        timeout: Duration,
        mut take: impl FnMut() -> Result<bool>,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.inner.records.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if take()? || tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return Ok(());
            }
        }
    }

    /// Commits, for every assigned partition, the position after the last record handed out.
    pub async fn commit(&self) -> Result<()> {
        self.inner.commit_delivered().await.map(|_| ())
    }

    /// Commits explicit offsets (the next offset to read, as in Kafka).
    pub async fn commit_offsets(&self, offsets: Vec<(String, i32, i64)>) -> Result<()> {
        let (generation, member) = {
            let st = self.inner.state.lock().unwrap();
            (st.generation, st.member_id.clone())
        };
        let offsets: Vec<(Tp, i64)> = offsets.into_iter().map(|(t, p, o)| ((t, p), o)).collect();
        self.inner
            .commit_offsets(&offsets, generation, &member)
            .await
    }

    /// Moves an assigned partition's position.
    pub async fn seek(&self, topic: &str, partition: i32, to: SeekTo) -> Result<()> {
        let tp: Tp = (topic.to_string(), partition);
        if !self.inner.state.lock().unwrap().assigned.contains_key(&tp) {
            return Err(Error::State(format!(
                "{topic}[{partition}] is not assigned to this consumer"
            )));
        }
        let offset = match to {
            SeekTo::Offset(o) => o,
            SeekTo::Beginning => self.offset_at(&tp, offsets::EARLIEST).await?,
            SeekTo::End => self.offset_at(&tp, offsets::LATEST).await?,
            SeekTo::Timestamp(ms) => match self.offset_at(&tp, ms).await? {
                // Nothing at or after that time: the end of the partition.
                -1 => self.offset_at(&tp, offsets::LATEST).await?,
                found => found,
            },
        };
        let mut st = self.inner.state.lock().unwrap();
        st.purge(&tp);
        if let Some(p) = st.assigned.get_mut(&tp) {
            p.fetch = Some(offset);
            p.fetch_ahead = None;
            p.epoch += 1;
            p.skip_before_ms = match to {
                SeekTo::Timestamp(ms) => Some(ms),
                _ => None,
            };
        }
        drop(st);
        self.inner.fetch_wake.notify_one();
        Ok(())
    }

    /// The partition's offset at `at` (a time in ms, or EARLIEST/LATEST).
    async fn offset_at(&self, tp: &Tp, at: i64) -> Result<i64> {
        let read_committed = self.inner.cluster.config.read_committed;
        let found = offsets::list(
            &self.inner.cluster,
            std::slice::from_ref(tp),
            at,
            read_committed,
        )
        .await?;
        found
            .get(tp)
            .copied()
            .ok_or_else(|| Error::Protocol(format!("no ListOffsets answer for {}[{}]", tp.0, tp.1)))
    }

    /// Assigned partitions with position, committed offset, high watermark and lag.
    pub fn assignment(&self) -> Vec<PartitionState> {
        let st = self.inner.state.lock().unwrap();
        st.assigned
            .iter()
            .map(|((t, p), s)| {
                // The next record the application gets: the first queued one, else the fetch position.
                let queued = st.queue.first_offset(t, *p);
                let position = queued.or(s.fetch);
                PartitionState {
                    topic: t.clone(),
                    partition: *p,
                    position,
                    committed: s.committed,
                    high_watermark: s.high_watermark,
                    lag: match (s.high_watermark, position) {
                        (Some(h), Some(pos)) => Some((h - pos).max(0)),
                        _ => None,
                    },
                }
            })
            .collect()
    }

    /// Whether the member currently has an assignment from a completed join.
    pub fn is_stable(&self) -> bool {
        self.inner.state.lock().unwrap().phase == Phase::Stable
    }

    /// Commits (with auto-commit on) and leaves the group so the others rebalance at once.
    /// Static members (group.instance.id) do not leave: they come back without a rebalance.
    pub async fn close(&self) -> Result<()> {
        let phase = self.inner.state.lock().unwrap().phase;
        if phase == Phase::Closed {
            return Ok(());
        }
        let mut result = Ok(());
        if self.inner.cluster.config.enable_auto_commit && phase == Phase::Stable {
            result = self.inner.commit_delivered().await.map(|_| ());
        }
        if self.inner.instance.is_none() {
            self.inner.leave().await;
        }
        self.inner.state.lock().unwrap().phase = Phase::Closed;
        self.inner.wake.notify_one();
        self.inner.fetch_wake.notify_one();
        self.inner.records.notify_waiters();
        result
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        // Stop the background tasks; a dropped consumer is evicted after session.timeout.ms.
        self.inner.state.lock().unwrap().phase = Phase::Closed;
        self.inner.wake.notify_one();
        self.inner.fetch_wake.notify_one();
    }
}
