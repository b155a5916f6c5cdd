//! The fetcher: Fetches to each leader broker for its assigned partitions, each broker on its
//! own pace: one that may wait for records, or two at once while partitions have records ready
//! at the broker (each partition in one of them). A response's next position is read from
//! batch headers, so the following Fetch leaves before the records are decoded; a decode task
//! then queues records for Poll in arrival order, advancing positions only for the assignment
//! that asked.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::mpsc;
use tokio::task::{Id, JoinSet};

use super::chunk::Chunk;
use super::state::{Partition, Phase, State, Tp};
use super::Inner;
use crate::kafka::error::Error;
use crate::kafka::records::{next_offset, Batches, RawHeader};
use crate::kafka::Config;

const OFFSET_OUT_OF_RANGE: i16 = 1;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const UNKNOWN_TOPIC_ID: i16 = 100;

/// Responses waiting for the decode task; a full queue holds the fetches back.
const DECODE_QUEUE: usize = 2;

/// A partition to fetch and the position/epochs it was asked with.
#[derive(Clone)]
struct Target {
    tp: Tp,
    offset: i64,
    epoch: u64,
    /// The broker has records ready from `offset` (see `is_ready`).
    ready: bool,
}

/// One broker's answer, handed to the decode task.
struct Fetched {
    assignment_epoch: u64,
    parts: Vec<(Target, PartitionData)>,
}

/// Bytes of records waiting for Poll at which prefetching stops.
fn queue_cap(config: &Config) -> usize {
    (config.fetch_max_bytes as usize).max(1 << 20)
}

/// Once stopped, prefetching resumes when the queue falls below this (Poll wakes the fetcher
/// then, once, rather than on every record).
pub fn resume_below(config: &Config) -> usize {
    queue_cap(config) / 2
}

fn backoff(config: &Config) -> Duration {
    Duration::from_millis(config.retry_backoff_ms.max(50))
}

/// Fetches in flight at once to one broker, at most. A broker answers a connection's requests
/// in order, one after another: with a second Fetch waiting, it starts on it while the first
/// answer travels and is read, rather than after the next request arrives.
const FETCHES_PER_BROKER: usize = 2;

/// What a running task covers: its broker (none for a metadata refresh) and partitions, and
/// whether its answer may be held for fetch.wait.max.ms (none of its partitions had records
/// known to be ready; never for a refresh). Nothing is sent behind such a Fetch: answers come
/// in request order.
struct Busy {
    leader: Option<i32>,
    tps: Vec<Tp>,
    may_wait: bool,
}

/// Whether a Fetch of `p` from `offset` is answered at once: the broker said it has records
/// ready past it, and fetch.min.bytes does not let it hold an answer with fewer bytes.
fn is_ready(p: &Partition, offset: i64, config: &Config) -> bool {
    config.fetch_min_bytes <= 1 && p.ready_end.is_some_and(|end| offset < end)
}

pub async fn run(inner: Arc<Inner>) {
    let config = inner.cluster.config.clone();
    let (queue_cap, resume_below) = (queue_cap(&config), resume_below(&config));
    let (decoded, to_decode) = mpsc::channel(DECODE_QUEUE);
    tokio::spawn(decode(inner.clone(), to_decode));
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut busy: HashMap<Id, Busy> = HashMap::new();
    let mut paused = false;
    let mut turn = 0usize;
    loop {
        let wake = inner.fetch_wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let (targets, assignment_epoch) = {
            let busy_tps: HashSet<&Tp> = busy.values().flat_map(|b| &b.tps).collect();
            let st = inner.state.lock().unwrap();
            if st.phase == Phase::Closed {
                return; // dropping the set stops the fetches, and with them the decode task
            }
            paused = st.queue.bytes() >= queue_cap || (paused && st.queue.bytes() >= resume_below);
            let targets: Vec<Target> = if st.phase != Phase::Stable || paused {
                Vec::new()
            } else {
                st.assigned
                    .iter()
                    .filter(|(tp, _)| !busy_tps.contains(tp))
                    .filter_map(|(tp, p)| {
                        let offset = p.fetch.map(|at| p.fetch_ahead.unwrap_or(at))?;
                        Some(Target {
                            tp: tp.clone(),
                            offset,
                            epoch: p.epoch,
                            ready: is_ready(p, offset, &config),
                        })
                    })
                    .collect()
            };
            (targets, st.assignment_epoch)
        };
        let mut by_leader: BTreeMap<i32, Vec<Target>> = BTreeMap::new();
        let mut unknown = Vec::new();
        for t in targets {
            let leader = inner
                .cluster
                .topic(&t.tp.0)
                .and_then(|i| i.partitions.get(t.tp.1 as usize).map(|p| p.leader))
                .unwrap_or(-1);
            if leader < 0 {
                unknown.push(t.tp);
            } else {
                by_leader.entry(leader).or_default().push(t);
            }
        }
        if !unknown.is_empty() && !busy.values().any(|b| b.leader.is_none()) {
            let inner = inner.clone();
            let task = tasks.spawn(async move {
                refresh(&inner, &HashSet::new()).await;
                tokio::time::sleep(backoff(&inner.cluster.config)).await;
            });
            busy.insert(
                task.id(),
                Busy {
                    leader: None,
                    tps: unknown,
                    may_wait: false,
                },
            );
        }
        for (leader, targets) in by_leader {
            let in_flight: Vec<&Busy> =
                busy.values().filter(|b| b.leader == Some(leader)).collect();
            turn = turn.wrapping_add(1);
            for (group, may_wait) in plan(&in_flight, targets, turn) {
                let tps = group.iter().map(|t| t.tp.clone()).collect();
                let (inner, decoded) = (inner.clone(), decoded.clone());
                let task = tasks.spawn(async move {
                    fetch_from(&inner, leader, group, assignment_epoch, &decoded).await
                });
                busy.insert(
                    task.id(),
                    Busy {
                        leader: Some(leader),
                        tps,
                        may_wait,
                    },
                );
            }
        }
        if tasks.is_empty() {
            let _ = tokio::time::timeout(Duration::from_millis(200), wake).await;
            continue;
        }
        tokio::select! {
            done = tasks.join_next_with_id() => {
                let id = match done {
                    Some(Ok((id, ()))) => id,
                    Some(Err(e)) => e.id(),
                    None => continue,
                };
                busy.remove(&id);
            }
            _ = wake => {}
        }
    }
}

/// The Fetches to send one broker now, given its Fetches in flight and its free partitions,
/// each with whether the broker may hold it. `turn` rotates where each starts: a broker fills
/// an answer partition by partition up to fetch.max.bytes, so starting at the next partition
/// each time keeps the first ones from starving the rest.
fn plan(in_flight: &[&Busy], mut targets: Vec<Target>, turn: usize) -> Vec<(Vec<Target>, bool)> {
    let n_ready = targets.iter().filter(|t| t.ready).count();
    let fetches = fetches_to_send(in_flight, n_ready);
    if fetches == 0 || targets.is_empty() {
        return Vec::new();
    }
    let n = targets.len();
    targets.rotate_left(turn % n);
    let may_wait = |g: Vec<Target>| {
        let wait = !g.iter().any(|t| t.ready);
        (g, wait)
    };
    split(targets, fetches).into_iter().map(may_wait).collect()
}

/// How many Fetches to send a broker now (0: none until one in flight comes back), given its
/// Fetches in flight and how many of its free partitions have records ready. Only Fetches the
/// broker answers at once go out together or behind another.
fn fetches_to_send(in_flight: &[&Busy], ready: usize) -> usize {
    match in_flight.len() {
        0 if ready >= 2 => FETCHES_PER_BROKER,
        0 => 1,
        n if n < FETCHES_PER_BROKER && ready > 0 && in_flight.iter().all(|b| !b.may_wait) => 1,
        _ => 0,
    }
}

/// Deals `targets` into at most `n` Fetches, those with records ready spread evenly so each
/// Fetch is answered at once; order within a Fetch is kept.
fn split(targets: Vec<Target>, n: usize) -> Vec<Vec<Target>> {
    let mut groups: Vec<Vec<Target>> = (0..n).map(|_| Vec::new()).collect();
    let (mut next_ready, mut next_other) = (0, 0);
    for t in targets {
        let slot = if t.ready {
            &mut next_ready
        } else {
            &mut next_other
        };
        groups[*slot % n].push(t);
        *slot += 1;
    }
    groups.retain(|g| !g.is_empty());
    groups
}

/// Refreshes the subscribed topics' metadata. A topic whose partition leader answered that it
/// does not exist and that the refreshed metadata no longer lists was deleted under the
/// consumer: Poll reports it and the group rebalances without it, instead of fetching it
/// forever.
async fn refresh(inner: &Inner, unknown_to_leader: &HashSet<String>) {
    let topics = inner.state.lock().unwrap().topics.clone();
    if inner.cluster.refresh_used(&topics).await.is_err() {
        return;
    }
    let deleted = unknown_to_leader.iter().find(|t| {
        inner.cluster.topic(t).is_none()
            && inner.cluster.missing(t) == Some(UNKNOWN_TOPIC_OR_PARTITION)
    });
    if let Some(topic) = deleted {
        let topic = topic.clone();
        inner
            .state
            .lock()
            .unwrap()
            .fail(Error::UnknownTopic { topic });
        inner.records.notify_waiters();
        inner.rejoin_soon();
    }
}

/// One Fetch to one broker: positions read ahead, records sent for decoding, errors handled
/// (with a backoff before the broker is asked again).
async fn fetch_from(
    inner: &Inner,
    leader: i32,
    targets: Vec<Target>,
    assignment_epoch: u64,
    decoded: &mpsc::Sender<Fetched>,
) {
    let config = &inner.cluster.config;
    let mut topics: Vec<FetchTopic> = Vec::new();
    for t in &targets {
        let part = FetchPartition::default()
            .with_partition(t.tp.1)
            .with_fetch_offset(t.offset)
            .with_current_leader_epoch(-1)
            .with_last_fetched_epoch(-1)
            .with_log_start_offset(-1)
            .with_partition_max_bytes(config.max_partition_fetch_bytes);
        match topics.iter_mut().find(|f| f.topic.0.as_str() == t.tp.0) {
            Some(f) => f.partitions.push(part),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(t.tp.0.clone())))
                    .with_partitions(vec![part]),
            ),
        }
    }
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(config.fetch_max_wait_ms)
        .with_min_bytes(config.fetch_min_bytes)
        .with_max_bytes(config.fetch_max_bytes)
        .with_isolation_level(i8::from(config.read_committed))
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics)
        // No rack: a broker would then point to a follower (preferred_read_replica), and
        // fetching from followers is not implemented.
        .with_rack_id(StrBytes::default());
    let resp = match inner.cluster.send_to(leader, &req).await {
        Ok(r) => r,
        Err(_) => {
            inner.cluster.mark_stale();
            refresh(inner, &HashSet::new()).await;
            tokio::time::sleep(backoff(config)).await;
            return;
        }
    };
    let mut ok = true;
    let mut unknown_topics = HashSet::new();
    let mut out_of_range = Vec::new();
    let mut parts = Vec::new();
    for topic in resp.responses {
        for part in topic.partitions {
            let Some(target) = targets
                .iter()
                .find(|t| t.tp.1 == part.partition_index && t.tp.0 == topic.topic.0.as_str())
            else {
                continue;
            };
            match part.error_code {
                0 => parts.push((target.clone(), part)),
                OFFSET_OUT_OF_RANGE => out_of_range.push(target.clone()),
                code => {
                    if matches!(code, UNKNOWN_TOPIC_OR_PARTITION | UNKNOWN_TOPIC_ID) {
                        unknown_topics.insert(target.tp.0.clone());
                    }
                    // Leader moved or partition unavailable: refresh and try again.
                    inner.cluster.mark_stale();
                    ok = false;
                }
            }
        }
    }
    if !parts.is_empty() {
        read_ahead(inner, &parts, assignment_epoch, config.read_committed);
        let job = Fetched {
            assignment_epoch,
            parts,
        };
        if decoded.send(job).await.is_err() {
            // Only a closing consumer drops the decode task; otherwise say so rather than
            // fetch on with nobody queueing the records.
            {
                let mut st = inner.state.lock().unwrap();
                if st.phase != Phase::Closed {
                    st.fail(Error::State("the consumer's decode task stopped".into()));
                }
            }
            inner.records.notify_waiters();
            tokio::time::sleep(backoff(config)).await;
            return;
        }
    }
    let reset = out_of_range_resets(inner, &out_of_range, assignment_epoch);
    if !reset.is_empty() {
        ok &= inner.reset_positions(&reset).await.is_ok();
    }
    if !ok {
        refresh(inner, &unknown_topics).await;
        tokio::time::sleep(backoff(config)).await;
    }
}

/// Where the records the broker has ready for us end, after an answer that held records (one
/// that held none says nothing is ready). read_committed reads only up to the last stable
/// offset: from there a Fetch would wait for the open transaction.
fn ready_end(part: &PartitionData, read_committed: bool) -> Option<i64> {
    if part.records.as_ref().is_none_or(|r| r.is_empty()) {
        return None;
    }
    match read_committed {
        true if part.last_stable_offset >= 0 => Some(part.last_stable_offset),
        _ => Some(part.high_watermark),
    }
}

/// The partition `t` was asked for, if the answer still belongs to it: same assignment, and
/// no Seek since (positions are checked by the caller, who knows which one counts).
fn asked<'a>(st: &'a mut State, t: &Target, assignment_epoch: u64) -> Option<&'a mut Partition> {
    if st.assignment_epoch != assignment_epoch {
        return None;
    }
    st.assigned.get_mut(&t.tp).filter(|p| p.epoch == t.epoch)
}

/// Partitions whose position really is out of range: the answer must be for the position
/// itself. An answer for a position read ahead may come while earlier records still wait to be
/// decoded (they come first), or after a Seek; then only the read-ahead is dropped.
fn out_of_range_resets(inner: &Inner, targets: &[Target], assignment_epoch: u64) -> Vec<Tp> {
    let mut reset = Vec::new();
    let mut st = inner.state.lock().unwrap();
    for t in targets {
        if let Some(p) = asked(&mut st, t, assignment_epoch) {
            p.fetch_ahead = None;
            if p.fetch == Some(t.offset) {
                p.fetch = None;
                reset.push(t.tp.clone());
            }
        }
    }
    reset
}

/// Notes, for each partition of this answer, where its next Fetch starts (from the batch
/// headers, when the answer continues the partition's current position) and where the records
/// the broker has ready end.
fn read_ahead(
    inner: &Inner,
    parts: &[(Target, PartitionData)],
    assignment_epoch: u64,
    read_committed: bool,
) {
    let noted: Vec<(&Target, Option<i64>, Option<i64>)> = parts
        .iter()
        .map(|(t, part)| {
            let next = part.records.as_deref().and_then(next_offset);
            let next = next.filter(|&next| next > t.offset);
            (t, next, ready_end(part, read_committed))
        })
        .collect();
    let mut st = inner.state.lock().unwrap();
    for (t, next, end) in noted {
        if let Some(p) = asked(&mut st, t, assignment_epoch) {
            p.ready_end = end;
            if next.is_some() && p.fetch_ahead.or(p.fetch) == Some(t.offset) {
                p.fetch_ahead = next;
            }
        }
    }
}

/// The decode task: answers in the order they came, so each partition's records queue in order.
async fn decode(inner: Arc<Inner>, mut to_decode: mpsc::Receiver<Fetched>) {
    let mut decoded = Chunk::default();
    let mut headers = Vec::new();
    while let Some(job) = to_decode.recv().await {
        let mut failed = false;
        for (target, part) in &job.parts {
            let scratch = (&mut decoded, &mut headers);
            failed |= !accept(&inner, target, part, job.assignment_epoch, scratch);
        }
        inner.records.notify_waiters();
        if headers.capacity() > 4096 {
            headers = Vec::new(); // a record with many headers should not keep its room
        }
        if failed {
            // A batch that cannot be decoded comes back on every Fetch: do not spin on it.
            tokio::time::sleep(backoff(&inner.cluster.config)).await;
        }
    }
}

/// Queues the partition's records if the partition is still ours at the asked position.
/// `scratch` is the decode task's chunk (empty between answers, holding a spare chunk's room so
/// a large answer's records are not written into freshly faulted pages each time) and a
/// record's headers.
fn accept(
    inner: &Inner,
    target: &Target,
    part: &PartitionData,
    assignment_epoch: u64,
    (decoded, headers): (&mut Chunk, &mut Vec<RawHeader>),
) -> bool {
    let data = part.records.clone().unwrap_or_default();
    let (next, bad) = decode_into(target, part, data, decoded, headers);
    let ok = match bad {
        Some(e) if next == target.offset => fail(inner, target, assignment_epoch, e),
        _ => {
            let decoded = Decoded {
                next,
                cut_short: bad.is_some(),
                records: decoded,
            };
            queue(inner, target, part, assignment_epoch, decoded)
        }
    };
    // Records left here were not queued (a stale answer): they would keep its buffer alive.
    decoded.clear();
    ok
}

/// An answer whose first batch is bad: the error for Poll, if the partition is still ours at
/// the asked position.
fn fail(inner: &Inner, target: &Target, assignment_epoch: u64, e: Error) -> bool {
    let mut st = inner.state.lock().unwrap();
    let Some(p) = asked(&mut st, target, assignment_epoch) else {
        return true; // a rebalance or a Seek moved on
    };
    // The position stays before the bad batch (the next Fetch asks for it again), or
    // this was asked ahead of an answer that was not queued: start from the position.
    p.fetch_ahead = None;
    if p.fetch != Some(target.offset) {
        return true;
    }
    st.fail(e);
    false
}

/// Decodes an answer's records into `out` up to the first bad batch; returns the position
/// after the last good batch and the bad batch's error. A bad batch gives none of its
/// records, so the position can stay on it.
fn decode_into(
    target: &Target,
    part: &PartitionData,
    data: bytes::Bytes,
    out: &mut Chunk,
    headers: &mut Vec<RawHeader>,
) -> (i64, Option<Error>) {
    // Transactions: skip records of aborted ones (read_committed brokers list them). Each
    // listed abort applies from its first offset up to its producer's next marker, once: the
    // same producer's later transactions in this answer may have committed.
    let mut aborted: Vec<(i64, i64)> = part
        .aborted_transactions
        .iter()
        .flatten()
        .map(|a| (a.first_offset, a.producer_id.0))
        .collect();
    aborted.sort_unstable();
    let mut aborted = aborted.into_iter().peekable();
    let mut aborting: HashSet<i64> = HashSet::new();
    let mut next = target.offset;
    out.reset(Arc::from(target.tp.0.as_str()), target.tp.1);
    headers.clear();
    for batch in Batches::new(data) {
        let (head, mut records) = match batch {
            Ok(batch) => batch,
            Err(e) => return (next, Some(e)),
        };
        while let Some((_, pid)) = aborted.next_if(|(first, _)| *first <= head.last_offset) {
            aborting.insert(pid);
        }
        if head.control {
            aborting.remove(&head.producer_id);
        } else if !(head.transactional && aborting.contains(&head.producer_id)) {
            let (mark, before) = (out.mark(), out.len());
            out.add_body(records.body().clone());
            out.reserve(records.capacity_hint());
            while let Some(r) = records.next_raw(headers) {
                let r = match r {
                    Ok(r) => r,
                    Err(e) => {
                        out.truncate(mark);
                        return (next, Some(e));
                    }
                };
                // A batch may start before the asked offset (compressed batches come whole).
                if r.offset >= target.offset {
                    out.push(&r, headers);
                }
                headers.clear();
            }
            if out.len() == before {
                // None of its records is handed out (it lies before the asked offset): do not
                // hold its bytes.
                out.truncate(mark);
            }
        }
        next = next.max(head.last_offset.saturating_add(1));
    }
    (next, None)
}

/// One partition's decoded answer.
struct Decoded<'a> {
    /// The position after the last good batch.
    next: i64,
    /// A bad batch follows (the position points past it only as a hint).
    cut_short: bool,
    records: &'a mut Chunk,
}

/// Queues decoded records and moves the position to `next`, if the partition is still ours
/// at the asked position.
fn queue(
    inner: &Inner,
    target: &Target,
    part: &PartitionData,
    assignment_epoch: u64,
    decoded: Decoded,
) -> bool {
    let Decoded {
        next,
        cut_short,
        records: decoded,
    } = decoded;
    let mut st = inner.state.lock().unwrap();
    let Some(p) = asked(&mut st, target, assignment_epoch) else {
        return true; // a rebalance or a Seek moved on: these records are not ours to give
    };
    if p.fetch != Some(target.offset) {
        // Asked ahead of an answer that was not queued: start again from the position.
        p.fetch_ahead = None;
        return true;
    }
    p.fetch = Some(next);
    if p.fetch_ahead == Some(next) || cut_short {
        // Caught up (a later answer may have moved it further), or it points past a bad batch.
        p.fetch_ahead = None;
    }
    if part.high_watermark >= 0 {
        p.high_watermark = Some(part.high_watermark);
    }
    if let Some(ts) = p.skip_before_ms {
        decoded.drop_older_than(ts);
        if !decoded.is_empty() {
            p.skip_before_ms = None;
        }
    }
    st.queue_all(decoded);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::config::Compression;
    use crate::kafka::consumer::ConsumedRecord;
    use crate::kafka::records::{encode_batch, restamp, OutRecord, Stamp};
    use bytes::Bytes;
    use kafka_protocol::messages::fetch_response::AbortedTransaction;
    use kafka_protocol::messages::ProducerId;

    /// Partition `partition` asked from offset 10; `ready`: the broker has records past it.
    fn target(partition: i32, ready: bool) -> Target {
        let tp = ("t".to_string(), partition);
        Target {
            tp,
            offset: 10,
            epoch: 0,
            ready,
        }
    }

    /// Partitions 0-3, those in `ready` with records ready.
    fn targets(ready: &[i32]) -> Vec<Target> {
        (0..4).map(|p| target(p, ready.contains(&p))).collect()
    }

    fn flight(may_wait: bool) -> Busy {
        let (leader, tps) = (Some(1), Vec::new());
        Busy {
            leader,
            tps,
            may_wait,
        }
    }

    fn partitions(groups: &[(Vec<Target>, bool)]) -> Vec<(Vec<i32>, bool)> {
        let parts = |g: &Vec<Target>| g.iter().map(|t| t.tp.1).collect();
        groups.iter().map(|(g, w)| (parts(g), *w)).collect()
    }

    #[test]
    fn a_second_fetch_goes_out_only_beside_one_answered_at_once() {
        let (waiting, prompt) = (flight(true), flight(false));
        assert_eq!(fetches_to_send(&[], 0), 1);
        assert_eq!(fetches_to_send(&[], 1), 1);
        assert_eq!(fetches_to_send(&[], 3), FETCHES_PER_BROKER);
        assert_eq!(fetches_to_send(&[&prompt], 1), 1);
        assert_eq!(
            fetches_to_send(&[&prompt], 0),
            0,
            "it could wait, holding the other"
        );
        assert_eq!(
            fetches_to_send(&[&waiting], 2),
            0,
            "it would queue behind a held one"
        );
        assert_eq!(fetches_to_send(&[&prompt, &prompt], 2), 0);
    }

    #[test]
    fn records_are_ready_up_to_the_high_watermark_or_the_last_stable_offset() {
        let part = PartitionData::default()
            .with_high_watermark(100)
            .with_last_stable_offset(40)
            .with_records(Some(Bytes::from_static(b"batch")));
        assert_eq!(ready_end(&part, false), Some(100));
        assert_eq!(ready_end(&part, true), Some(40));
        let old_broker = part.clone().with_last_stable_offset(-1);
        assert_eq!(ready_end(&old_broker, true), Some(100));
        let nothing = part.with_records(Some(Bytes::new()));
        assert_eq!(
            ready_end(&nothing, false),
            None,
            "an empty answer: none known ready"
        );
    }

    #[test]
    fn a_fetch_is_ready_below_the_end_unless_fetch_min_bytes_may_hold_it() {
        let p = Partition {
            ready_end: Some(20),
            ..Partition::default()
        };
        let config = Config::default();
        assert!(is_ready(&p, 10, &config));
        assert!(!is_ready(&p, 20, &config), "caught up");
        assert!(!is_ready(&p, 25, &config));
        assert!(
            !is_ready(&Partition::default(), 10, &config),
            "nothing known"
        );
        // fetch.min.bytes above 1: a broker may hold any Fetch, so one at a time.
        let min_bytes = Config {
            fetch_min_bytes: 100,
            ..Config::default()
        };
        assert!(!is_ready(&p, 10, &min_bytes));
    }

    #[test]
    fn plan_sends_each_partition_once_and_nothing_behind_a_held_fetch() {
        let (waiting, prompt) = (flight(true), flight(false));
        let ready = || targets(&[0, 1, 3]);
        let two = partitions(&plan(&[], ready(), 0));
        assert_eq!(two, vec![(vec![0, 2, 3], false), (vec![1], false)]);
        let rotated = partitions(&plan(&[], ready(), 1));
        assert_eq!(rotated, vec![(vec![1, 2, 0], false), (vec![3], false)]);
        let beside = partitions(&plan(&[&prompt], ready(), 0));
        assert_eq!(beside, vec![(vec![0, 1, 2, 3], false)]);
        assert!(plan(&[&waiting], ready(), 0).is_empty());
        assert!(plan(&[&prompt, &prompt], ready(), 0).is_empty());
        assert!(plan(&[&prompt], targets(&[]), 0).is_empty());
        let held = partitions(&plan(&[], targets(&[]), 0));
        assert_eq!(held, vec![(vec![0, 1, 2, 3], true)]);
        let one_ready = partitions(&plan(&[], targets(&[2]), 0));
        assert_eq!(one_ready, vec![(vec![0, 1, 2, 3], false)]);
    }

    #[test]
    fn split_spreads_ready_partitions_and_keeps_order() {
        let targets: Vec<Target> = (0..5).map(|p| target(p, p % 2 == 0)).collect();
        let groups = split(targets.clone(), 2);
        let parts: Vec<Vec<i32>> = groups
            .iter()
            .map(|g| g.iter().map(|t| t.tp.1).collect())
            .collect();
        assert_eq!(parts, vec![vec![0, 1, 4], vec![2, 3]]);
        assert!(groups.iter().all(|g| g.iter().any(|t| t.ready)));
        let one: Vec<Vec<i32>> = split(targets, 1)
            .iter()
            .map(|g| g.iter().map(|t| t.tp.1).collect())
            .collect();
        assert_eq!(one, vec![vec![0, 1, 2, 3, 4]]);
        assert_eq!(split(vec![target(0, true)], 2).len(), 1, "no empty Fetch");
    }

    /// A batch of `values` at `base`; `producer` makes it transactional, `control` a marker.
    fn batch(base: i64, values: &[&str], producer: Option<i64>, control: bool) -> Vec<u8> {
        let recs: Vec<OutRecord> = values
            .iter()
            .map(|v| OutRecord {
                key: None,
                value: Some(Bytes::copy_from_slice(v.as_bytes())),
                headers: vec![],
                timestamp: 1,
            })
            .collect();
        let refs: Vec<&OutRecord> = recs.iter().collect();
        let mut b = encode_batch(&refs, Compression::None).unwrap();
        if let Some(producer_id) = producer {
            let stamp = Stamp {
                producer_id,
                epoch: 0,
                base_sequence: 0,
            };
            b = restamp(&b, stamp);
        }
        let mut b = b.to_vec();
        b[..8].copy_from_slice(&base.to_be_bytes());
        let attributes: i16 =
            if producer.is_some() { 0x10 } else { 0 } | if control { 0x20 } else { 0 };
        b[21..23].copy_from_slice(&attributes.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn decode(offset: i64, data: Vec<u8>, aborted: &[(i64, i64)]) -> (Vec<String>, i64) {
        let target = Target {
            tp: ("t".into(), 0),
            offset,
            epoch: 0,
            ready: false,
        };
        let part = PartitionData::default().with_aborted_transactions(Some(
            aborted
                .iter()
                .map(|&(pid, first)| {
                    AbortedTransaction::default()
                        .with_producer_id(ProducerId(pid))
                        .with_first_offset(first)
                })
                .collect(),
        ));
        let mut out = Chunk::default();
        let (next, bad) = decode_into(&target, &part, Bytes::from(data), &mut out, &mut vec![]);
        assert!(bad.is_none());
        let values = out
            .run(usize::MAX)
            .iter()
            .map(|r| String::from_utf8(r.value().unwrap().to_vec()).unwrap())
            .collect();
        (values, next)
    }

    #[test]
    fn records_kept_as_positions_read_back_as_the_owned_decoder_gives_them() {
        let recs: Vec<OutRecord> = (0..20)
            .map(|i| OutRecord {
                key: (i % 3 != 0).then(|| Bytes::from(format!("ключ-{i}"))),
                value: (i % 5 != 0).then(|| Bytes::from(vec![i as u8; i * 3])),
                headers: (0..i % 4)
                    .map(|h| (format!("h{h}"), (h != 1).then(|| Bytes::from("з"))))
                    .collect(),
                timestamp: 1_700_000_000_000 + i as i64,
            })
            .collect();
        let refs: Vec<&OutRecord> = recs.iter().collect();
        let mut data = Vec::new();
        for (base, codec) in [(0i64, Compression::Lz4), (20, Compression::None)] {
            let mut b = encode_batch(&refs, codec).unwrap().to_vec();
            b[..8].copy_from_slice(&base.to_be_bytes());
            data.extend(b);
        }
        let data = Bytes::from(data);
        let first_len = encode_batch(&refs, Compression::Lz4).unwrap().len();
        let target = Target {
            tp: ("t".into(), 4),
            offset: 3,
            epoch: 0,
            ready: false,
        };
        let mut chunk = Chunk::default();
        let part = PartitionData::default();
        let (next, bad) = decode_into(&target, &part, data.clone(), &mut chunk, &mut vec![]);
        assert_eq!((next, bad.is_none()), (40, true));
        let got: Vec<ConsumedRecord> = chunk
            .run(usize::MAX)
            .iter()
            .map(|r| r.to_consumed())
            .collect();
        // What was encoded: both batches, from offset 3 on.
        let want: Vec<ConsumedRecord> = recs
            .iter()
            .chain(&recs)
            .enumerate()
            .skip(3)
            .map(|(offset, r)| ConsumedRecord {
                topic: "t".into(),
                partition: 4,
                offset: offset as i64,
                key: r.key.clone(),
                value: r.value.clone(),
                headers: r.headers.clone(),
                timestamp_ms: r.timestamp,
            })
            .collect();
        assert_eq!(got.len(), 37);
        assert_eq!(got, want);

        // A batch wholly before the asked offset gives no records and is not held.
        let from_second = Target {
            offset: 20,
            ..target
        };
        decode_into(&from_second, &part, data.clone(), &mut chunk, &mut vec![]);
        let second_only = chunk.bytes();
        decode_into(
            &from_second,
            &part,
            data.slice(first_len..),
            &mut chunk,
            &mut vec![],
        );
        assert_eq!((chunk.len(), chunk.bytes()), (20, second_only));
    }

    #[test]
    fn a_batch_bad_inside_gives_none_of_its_records() {
        let good = batch(0, &["a", "b"], None, false);
        let mut bad = batch(2, &["c", "d"], None, false);
        // The header counts more records than the batch has; its CRC still holds.
        bad[57..61].copy_from_slice(&3i32.to_be_bytes());
        let crc = crc32c::crc32c(&bad[21..]);
        bad[17..21].copy_from_slice(&crc.to_be_bytes());
        let target = Target {
            tp: ("t".into(), 0),
            offset: 0,
            epoch: 0,
            ready: false,
        };
        let mut chunk = Chunk::default();
        let data = Bytes::from([good, bad].concat());
        let part = PartitionData::default();
        let (next, error) = decode_into(&target, &part, data, &mut chunk, &mut vec![]);
        assert_eq!((next, error.is_some()), (2, true));
        let offsets: Vec<i64> = chunk.run(usize::MAX).iter().map(|r| r.offset()).collect();
        assert_eq!(offsets, [0, 1]);
        let one_batch = chunk.bytes();
        chunk.reset("t".into(), 0);
        let data = Bytes::from(batch(0, &["a", "b"], None, false));
        decode_into(&target, &part, data, &mut chunk, &mut vec![]);
        assert_eq!(chunk.bytes(), one_batch, "the bad batch's body is not held");
    }

    #[test]
    fn aborted_transactions_are_skipped_and_a_later_commit_of_the_same_producer_is_kept() {
        let data = [
            batch(0, &["plain-0", "plain-1"], None, false),
            batch(2, &["aborted-2", "aborted-3"], Some(7), false),
            batch(4, &["abort-marker"], Some(7), true),
            batch(5, &["committed-5", "committed-6"], Some(7), false),
            batch(7, &["commit-marker"], Some(7), true),
            batch(8, &["other-8"], Some(9), false),
        ]
        .concat();
        let (values, next) = decode(0, data.clone(), &[(7, 2)]);
        assert_eq!(
            values,
            [
                "plain-0",
                "plain-1",
                "committed-5",
                "committed-6",
                "other-8"
            ]
        );
        assert_eq!(
            next, 9,
            "the position moves past skipped batches and markers"
        );
        // Asked from the middle of a batch: the records before the position are not handed out.
        let (values, _) = decode(6, data, &[(7, 2)]);
        assert_eq!(values, ["committed-6", "other-8"]);
    }
}
