//! Group membership: find the coordinator, join and sync (the leader assigns), heartbeat,
//! rejoin on rebalances, leave. Runs as one background task per consumer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
    SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::assignor::{self, Member};
use super::offsets;
use super::protocol;
use super::state::{Phase, Tp};
use super::Inner;
use crate::kafka::config::{Assignor, OffsetReset};
use crate::kafka::error::{Error, Result};

const MEMBER_ID_REQUIRED: i16 = 79;
const REBALANCE_IN_PROGRESS: i16 = 27;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const FENCED_INSTANCE_ID: i16 = 82;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Errors that mean "ask who the coordinator is again".
fn coordinator_moved(e: &Error) -> bool {
    matches!(e.code(), Some(14..=16))
        || matches!(e, Error::Disconnected { .. } | Error::Timeout { .. })
}

impl Inner {
    fn group_id(&self) -> GroupId {
        GroupId(s(&self.group))
    }

    fn instance(&self) -> Option<StrBytes> {
        self.instance.as_deref().map(s)
    }

    /// The coordinator's node id, found with FindCoordinator when not known.
    pub async fn coordinator(&self) -> Result<i32> {
        if let Some(c) = *self.coordinator.lock().unwrap() {
            return Ok(c);
        }
        let req = FindCoordinatorRequest::default()
            .with_key(s(&self.group))
            .with_key_type(0);
        let resp = self.cluster.send_any(&req).await?;
        if resp.error_code != 0 {
            return Err(Error::broker(
                resp.error_code,
                None,
                None,
                Some(format!("FindCoordinator for group {}", self.group)),
            ));
        }
        let node = resp.node_id.0;
        // The coordinator may be a broker our metadata has not listed yet.
        if self.cluster.connection(node).await.is_err() {
            self.cluster.refresh(Some(&[])).await?;
        }
        *self.coordinator.lock().unwrap() = Some(node);
        Ok(node)
    }

    pub fn forget_coordinator(&self) {
        *self.coordinator.lock().unwrap() = None;
    }

    /// JoinGroup + SyncGroup; on success the new assignment is in the state with positions set.
    async fn join(&self) -> Result<()> {
        let config = &self.cluster.config;
        let coordinator = self.coordinator().await?;
        let (topics, owned, mut member_id) = {
            let st = self.state.lock().unwrap();
            let mut owned: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for (t, p) in st.assigned.keys() {
                owned.entry(t.clone()).or_default().push(*p);
            }
            (st.topics.clone(), owned, st.member_id.clone())
        };
        let metadata = protocol::encode_subscription(&topics, &owned)?;
        let protocols: Vec<JoinGroupRequestProtocol> = config
            .assignment_strategy
            .iter()
            .map(|a| {
                JoinGroupRequestProtocol::default()
                    .with_name(s(a.name()))
                    .with_metadata(metadata.clone())
            })
            .collect();
        // The broker holds JoinGroup until every member rejoined: up to the rebalance timeout.
        let join_timeout = Duration::from_millis(config.max_poll_interval_ms + 5_000);
        let conn = self.cluster.connection(coordinator).await?;
        let mut attempts = 0;
        let resp = loop {
            let req = JoinGroupRequest::default()
                .with_group_id(self.group_id())
                .with_session_timeout_ms(config.session_timeout_ms as i32)
                .with_rebalance_timeout_ms(config.max_poll_interval_ms as i32)
                .with_member_id(s(&member_id))
                .with_group_instance_id(self.instance())
                .with_protocol_type(s("consumer"))
                .with_protocols(protocols.clone());
            let resp = conn.send_timeout(&req, join_timeout).await?;
            attempts += 1;
            if resp.error_code == MEMBER_ID_REQUIRED && attempts < 3 {
                member_id = resp.member_id.to_string();
                continue;
            }
            if resp.error_code == UNKNOWN_MEMBER_ID && attempts < 3 {
                member_id.clear();
                continue;
            }
            if resp.error_code != 0 {
                return Err(Error::broker(
                    resp.error_code,
                    None,
                    None,
                    Some(format!("JoinGroup {}", self.group)),
                ));
            }
            break resp;
        };
        let member_id = resp.member_id.to_string();
        let generation = resp.generation_id;
        // Keep the id at once: a failed SyncGroup must rejoin as the same member, or the group
        // waits for a member that no longer exists and every sync ends in REBALANCE_IN_PROGRESS.
        {
            let mut st = self.state.lock().unwrap();
            st.member_id = member_id.clone();
            st.generation = generation;
        }
        let protocol_name = resp
            .protocol_name
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let (assignments, led_counts) = if resp.leader.as_str() == member_id {
            let (assignments, counts) = self.lead(&resp.members, &protocol_name).await?;
            (assignments, Some(counts))
        } else {
            (Vec::new(), None)
        };
        self.state.lock().unwrap().led_counts = led_counts;
        let sync = SyncGroupRequest::default()
            .with_group_id(self.group_id())
            .with_generation_id(generation)
            .with_member_id(s(&member_id))
            .with_group_instance_id(self.instance())
            .with_protocol_type(Some(s("consumer")))
            .with_protocol_name(Some(s(&protocol_name)))
            .with_assignments(assignments);
        let (version, body) = conn.send_raw(&sync, join_timeout).await?;
        let (error_code, assignment) = protocol::decode_sync_response(version, body)?;
        if error_code != 0 {
            return Err(Error::broker(
                error_code,
                None,
                None,
                Some(format!("SyncGroup {}", self.group)),
            ));
        }
        let parts = protocol::decode_assignment(assignment)?;
        self.state.lock().unwrap().set_assignment(parts);
        self.init_positions().await?;
        let mut st = self.state.lock().unwrap();
        if st.phase == Phase::Joining {
            st.phase = Phase::Stable;
        }
        drop(st);
        self.fetch_wake.notify_one();
        Ok(())
    }

    /// The leader's part: assign partitions of every member's topics; also returns the
    /// partition count of every topic the plan covers.
    async fn lead(
        &self,
        members: &[kafka_protocol::messages::join_group_response::JoinGroupResponseMember],
        protocol_name: &str,
    ) -> Result<(Vec<SyncGroupRequestAssignment>, BTreeMap<String, i32>)> {
        let mut subs = Vec::with_capacity(members.len());
        for m in members {
            subs.push(Member {
                id: m.member_id.to_string(),
                topics: protocol::decode_subscription(m.metadata.clone())?,
            });
        }
        let topics = assignor::all_topics(&subs);
        self.cluster.refresh_used(&topics).await?;
        let counts: BTreeMap<String, i32> = topics
            .iter()
            .filter_map(|t| {
                self.cluster
                    .topic(t)
                    .map(|i| (t.clone(), i.partitions.len() as i32))
            })
            .collect();
        let kind = if protocol_name == Assignor::RoundRobin.name() {
            Assignor::RoundRobin
        } else {
            Assignor::Range
        };
        let plan = assignor::assign(kind, &subs, &counts);
        let assignments = plan
            .iter()
            .map(|(member, parts)| {
                Ok(SyncGroupRequestAssignment::default()
                    .with_member_id(s(member))
                    .with_assignment(protocol::encode_assignment(parts)?))
            })
            .collect::<Result<_>>()?;
        // Every assigned topic, 0 for one that did not exist: its creation counts as a change.
        let counts = topics
            .iter()
            .map(|t| (t.clone(), counts.get(t).copied().unwrap_or(0)))
            .collect();
        Ok((assignments, counts))
    }

    /// The leader checks, with metadata no older than metadata.max.age.ms, whether the
    /// assigned topics' partition counts changed (partitions added, a topic deleted or
    /// created); if so the group rebalances, so new partitions get a reader - as the Java
    /// client's leader does.
    async fn check_partition_counts(&self) {
        let Some(led) = self.state.lock().unwrap().led_counts.clone() else {
            return;
        };
        let topics: Vec<String> = led.keys().cloned().collect();
        if self.cluster.is_stale() && self.cluster.refresh_used(&topics).await.is_err() {
            return;
        }
        let now: BTreeMap<String, i32> = topics
            .iter()
            .map(|t| {
                let count = self.cluster.topic(t).map_or(0, |i| i.partitions.len());
                (t.clone(), count as i32)
            })
            .collect();
        if now != led {
            self.state.lock().unwrap().led_counts = None;
            self.rejoin_soon();
        }
    }

    /// Positions of new partitions: the committed offset, else auto.offset.reset.
    async fn init_positions(&self) -> Result<()> {
        let need: Vec<Tp> = {
            let st = self.state.lock().unwrap();
            st.assigned
                .iter()
                .filter(|(_, p)| p.fetch.is_none())
                .map(|(tp, _)| tp.clone())
                .collect()
        };
        if need.is_empty() {
            return Ok(());
        }
        let coordinator = self.coordinator().await?;
        let committed =
            offsets::fetch_committed(&self.cluster, coordinator, &self.group, &need).await?;
        let mut reset = Vec::new();
        {
            let mut st = self.state.lock().unwrap();
            for tp in &need {
                match (committed.get(tp), st.assigned.get_mut(tp)) {
                    (Some(&c), Some(p)) => {
                        p.fetch = Some(c);
                        p.committed = Some(c);
                    }
                    (None, Some(_)) => reset.push(tp.clone()),
                    _ => {}
                }
            }
        }
        self.reset_positions(&reset).await
    }

    /// Applies auto.offset.reset to partitions with no usable position.
    pub async fn reset_positions(&self, parts: &[Tp]) -> Result<()> {
        if parts.is_empty() {
            return Ok(());
        }
        let config = &self.cluster.config;
        let at = match config.auto_offset_reset {
            OffsetReset::Earliest => offsets::EARLIEST,
            OffsetReset::Latest => offsets::LATEST,
            OffsetReset::None => {
                let names: Vec<String> = parts.iter().map(|(t, p)| format!("{t}[{p}]")).collect();
                let e = Error::State(format!(
                    "no committed offset for {} and auto.offset.reset is none",
                    names.join(", ")
                ));
                self.state.lock().unwrap().fail(e.clone());
                self.records.notify_waiters();
                return Err(e);
            }
        };
        let found = offsets::list(&self.cluster, parts, at, config.read_committed).await?;
        let mut st = self.state.lock().unwrap();
        for (tp, o) in found {
            // Only where no position came meanwhile (a Seek during the lookup wins).
            if let Some(p) = st.assigned.get_mut(&tp).filter(|p| p.fetch.is_none()) {
                p.fetch = Some(o);
                p.fetch_ahead = None;
            }
        }
        Ok(())
    }

    async fn heartbeat(&self) -> Result<()> {
        let coordinator = self.coordinator().await?;
        let (generation, member) = {
            let st = self.state.lock().unwrap();
            (st.generation, st.member_id.clone())
        };
        let req = HeartbeatRequest::default()
            .with_group_id(self.group_id())
            .with_generation_id(generation)
            .with_member_id(s(&member))
            .with_group_instance_id(self.instance());
        let resp = self.cluster.send_to(coordinator, &req).await?;
        if resp.error_code != 0 {
            return Err(Error::broker(
                resp.error_code,
                None,
                None,
                Some("Heartbeat".into()),
            ));
        }
        Ok(())
    }

    /// LeaveGroup, so the others rebalance at once instead of after session.timeout.ms.
    pub async fn leave(&self) {
        let member = self.state.lock().unwrap().member_id.clone();
        if member.is_empty() {
            return;
        }
        let Ok(coordinator) = self.coordinator().await else {
            return;
        };
        // LeaveGroup v2 (one member, by id): the mock cluster answers v3 without its member list.
        let req = LeaveGroupRequest::default()
            .with_group_id(self.group_id())
            .with_member_id(s(&member));
        let _ = self.cluster.send_to(coordinator, &req).await;
        let mut st = self.state.lock().unwrap();
        if self.instance.is_none() {
            st.member_id.clear();
        }
        st.generation = -1;
    }

    /// Commits what the application has received. `Ok(false)` when there was nothing to commit.
    pub async fn commit_delivered(&self) -> Result<bool> {
        let (offsets, generation, member) = {
            let st = self.state.lock().unwrap();
            (st.uncommitted(), st.generation, st.member_id.clone())
        };
        if offsets.is_empty() {
            return Ok(false);
        }
        self.commit_offsets(&offsets, generation, &member).await?;
        Ok(true)
    }

    /// Commits `offsets`; while the coordinator moves or is down (a broker failing over), it
    /// finds the coordinator again and retries for up to default.api.timeout.ms, as the Java
    /// client's commitSync does, so a failover does not surface as a failed Commit.
    pub async fn commit_offsets(
        &self,
        offsets: &[(Tp, i64)],
        generation: i32,
        member: &str,
    ) -> Result<()> {
        let config = &self.cluster.config;
        let deadline = Instant::now() + Duration::from_millis(config.default_api_timeout_ms);
        let backoff = Duration::from_millis(config.retry_backoff_ms.max(100));
        loop {
            let result = self.commit_once(offsets, generation, member).await;
            match result {
                Err(e) if coordinator_moved(&e) && Instant::now() + backoff < deadline => {
                    tokio::time::sleep(backoff).await;
                }
                other => return other,
            }
        }
    }

    async fn commit_once(
        &self,
        offsets: &[(Tp, i64)],
        generation: i32,
        member: &str,
    ) -> Result<()> {
        let coordinator = self.coordinator().await?;
        let result = offsets::commit(
            &self.cluster,
            coordinator,
            &self.group,
            generation,
            member,
            self.instance.as_deref(),
            offsets,
        )
        .await;
        match result {
            Ok(()) => {
                let mut st = self.state.lock().unwrap();
                for (tp, o) in offsets {
                    if let Some(p) = st.assigned.get_mut(tp) {
                        p.committed = Some(p.committed.map_or(*o, |c| c.max(*o)));
                    }
                }
                Ok(())
            }
            Err(e) => {
                if coordinator_moved(&e) {
                    self.forget_coordinator();
                }
                if matches!(
                    e.code(),
                    Some(
                        ILLEGAL_GENERATION
                            | UNKNOWN_MEMBER_ID
                            | REBALANCE_IN_PROGRESS
                            | FENCED_INSTANCE_ID
                    )
                ) {
                    self.rejoin_soon();
                    let names: Vec<String> = offsets
                        .iter()
                        .map(|((t, p), _)| format!("{t}[{p}]"))
                        .collect();
                    return Err(Error::State(format!(
                        "commit refused: the group rebalanced and {} may have been given to another member ({})",
                        names.join(", "),
                        e
                    )));
                }
                Err(e)
            }
        }
    }

    /// Marks the membership for a rejoin on the background task's next round.
    pub fn rejoin_soon(&self) {
        let mut st = self.state.lock().unwrap();
        if st.phase == Phase::Stable {
            st.phase = Phase::Joining;
        }
        drop(st);
        self.wake.notify_one();
    }
}

/// The membership loop: join, heartbeat, auto-commit, rejoin, until Close.
pub async fn run(inner: Arc<Inner>) {
    let config = inner.cluster.config.clone();
    let heartbeat = Duration::from_millis(config.heartbeat_interval_ms);
    let backoff = Duration::from_millis(config.retry_backoff_ms.max(100));
    let auto_commit = Duration::from_millis(config.auto_commit_interval_ms);
    let max_poll = Duration::from_millis(config.max_poll_interval_ms);
    let mut last_commit = Instant::now();
    loop {
        let phase = inner.state.lock().unwrap().phase;
        match phase {
            Phase::Closed => return,
            Phase::Unjoined => {
                let _ = tokio::time::timeout(heartbeat, inner.wake.notified()).await;
            }
            Phase::Joining => {
                if let Err(e) = inner.join().await {
                    if coordinator_moved(&e) || matches!(e.code(), Some(14..=16)) {
                        inner.forget_coordinator();
                    }
                    if matches!(e.code(), Some(ILLEGAL_GENERATION | UNKNOWN_MEMBER_ID))
                        && inner.instance.is_none()
                    {
                        inner.state.lock().unwrap().member_id.clear();
                    }
                    if e.code() == Some(FENCED_INSTANCE_ID) {
                        let mut st = inner.state.lock().unwrap();
                        st.fail(e.clone());
                        st.phase = Phase::Unjoined;
                        inner.records.notify_waiters();
                    }
                    // A rebalance that restarted under us: rejoin at once, as the Java client does.
                    // (The mock cluster answers such a SyncGroup with a null assignment, which
                    // does not decode: treated the same way.)
                    let restarted =
                        e.code() == Some(REBALANCE_IN_PROGRESS) || matches!(e, Error::Protocol(_));
                    if !restarted {
                        tokio::time::sleep(backoff).await;
                    }
                }
            }
            Phase::Stable => {
                let _ = tokio::time::timeout(heartbeat, inner.wake.notified()).await;
                if inner.state.lock().unwrap().phase != Phase::Stable {
                    continue;
                }
                // An application that stopped polling leaves, so its partitions move on.
                let idle = inner.state.lock().unwrap().last_poll.elapsed();
                if idle > max_poll {
                    if config.enable_auto_commit {
                        let _ = inner.commit_delivered().await;
                    }
                    inner.leave().await;
                    let mut st = inner.state.lock().unwrap();
                    st.phase = Phase::Unjoined;
                    st.left_for_inactivity = true;
                    st.set_assignment(Vec::new());
                    continue;
                }
                if config.enable_auto_commit && last_commit.elapsed() >= auto_commit {
                    last_commit = Instant::now();
                    let _ = inner.commit_delivered().await;
                }
                match inner.heartbeat().await {
                    Ok(()) => inner.check_partition_counts().await,
                    Err(e) => match e.code() {
                        Some(REBALANCE_IN_PROGRESS) => {
                            // Eager protocol: commit what the application has, then rejoin.
                            if config.enable_auto_commit {
                                let _ = inner.commit_delivered().await;
                            }
                            inner.rejoin_soon();
                        }
                        Some(ILLEGAL_GENERATION | UNKNOWN_MEMBER_ID) => {
                            if inner.instance.is_none() {
                                inner.state.lock().unwrap().member_id.clear();
                            }
                            inner.rejoin_soon();
                        }
                        Some(FENCED_INSTANCE_ID) => {
                            let mut st = inner.state.lock().unwrap();
                            st.fail(e.clone());
                            st.phase = Phase::Unjoined;
                            inner.records.notify_waiters();
                        }
                        _ => {
                            if coordinator_moved(&e) {
                                inner.forget_coordinator();
                            }
                            tokio::time::sleep(backoff).await;
                        }
                    },
                }
            }
        }
    }
}
