//! Committed offsets (OffsetFetch/OffsetCommit) and log offsets (ListOffsets).

use std::collections::BTreeMap;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    BrokerId, GroupId, ListOffsetsRequest, OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::state::Tp;
use crate::kafka::cluster::Cluster;
use crate::kafka::error::{Error, Result};

/// ListOffsets timestamps with special meaning.
pub const EARLIEST: i64 = -2;
pub const LATEST: i64 = -1;

fn name(t: &str) -> TopicName {
    TopicName(StrBytes::from_string(t.to_string()))
}

fn by_topic(parts: &[Tp]) -> BTreeMap<&str, Vec<i32>> {
    let mut m: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in parts {
        m.entry(t.as_str()).or_default().push(*p);
    }
    m
}

/// Committed offsets of the group for `parts`; partitions without one are absent.
pub async fn fetch_committed(
    cluster: &Cluster,
    coordinator: i32,
    group: &str,
    parts: &[Tp],
) -> Result<BTreeMap<Tp, i64>> {
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_topics(Some(
            by_topic(parts)
                .into_iter()
                .map(|(t, ps)| {
                    OffsetFetchRequestTopic::default()
                        .with_name(name(t))
                        .with_partition_indexes(ps)
                })
                .collect(),
        ));
    let resp = cluster.send_to(coordinator, &req).await?;
    if resp.error_code != 0 {
        return Err(Error::broker(
            resp.error_code,
            None,
            None,
            Some(format!("OffsetFetch for group {group}")),
        ));
    }
    let mut out = BTreeMap::new();
    for t in &resp.topics {
        for p in &t.partitions {
            if p.error_code != 0 {
                return Err(Error::broker(
                    p.error_code,
                    Some(t.name.0.as_str()),
                    Some(p.partition_index),
                    None,
                ));
            }
            if p.committed_offset >= 0 {
                out.insert(
                    (t.name.0.to_string(), p.partition_index),
                    p.committed_offset,
                );
            }
        }
    }
    Ok(out)
}

/// Commits `offsets` for the group's current generation.
pub async fn commit(
    cluster: &Cluster,
    coordinator: i32,
    group: &str,
    generation: i32,
    member: &str,
    instance: Option<&str>,
    offsets: &[(Tp, i64)],
) -> Result<()> {
    let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for ((t, p), o) in offsets {
        topics.entry(t.as_str()).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(*p)
                .with_committed_offset(*o)
                .with_committed_leader_epoch(-1),
        );
    }
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(StrBytes::from_string(member.to_string()))
        .with_group_instance_id(instance.map(|i| StrBytes::from_string(i.to_string())))
        .with_topics(
            topics
                .into_iter()
                .map(|(t, ps)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(name(t))
                        .with_partitions(ps)
                })
                .collect(),
        );
    let resp = cluster.send_to(coordinator, &req).await?;
    for t in &resp.topics {
        for p in &t.partitions {
            if p.error_code != 0 {
                return Err(Error::broker(
                    p.error_code,
                    Some(t.name.0.as_str()),
                    Some(p.partition_index),
                    None,
                ));
            }
        }
    }
    Ok(())
}

/// Offsets at `timestamp` (or EARLIEST/LATEST) per partition, asking each partition's leader.
/// A timestamp after the last message gives -1 (Kafka's answer); callers treat it as the end.
pub async fn list(
    cluster: &Cluster,
    parts: &[Tp],
    timestamp: i64,
    read_committed: bool,
) -> Result<BTreeMap<Tp, i64>> {
    let mut by_leader: BTreeMap<i32, Vec<Tp>> = BTreeMap::new();
    for tp in parts {
        let leader = cluster
            .topic_or_refresh(&tp.0)
            .await?
            .and_then(|t| t.partitions.get(tp.1 as usize).map(|p| p.leader))
            .unwrap_or(-1);
        if leader < 0 {
            cluster.mark_stale();
            return Err(Error::broker(5, Some(&tp.0), Some(tp.1), None));
        }
        by_leader.entry(leader).or_default().push(tp.clone());
    }
    let mut out = BTreeMap::new();
    for (leader, tps) in by_leader {
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(i8::from(read_committed))
            .with_topics(
                by_topic(&tps)
                    .into_iter()
                    .map(|(t, ps)| {
                        ListOffsetsTopic::default()
                            .with_name(name(t))
                            .with_partitions(
                                ps.into_iter()
                                    .map(|p| {
                                        ListOffsetsPartition::default()
                                            .with_partition_index(p)
                                            .with_current_leader_epoch(-1)
                                            .with_timestamp(timestamp)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let resp = cluster.send_to(leader, &req).await?;
        for t in &resp.topics {
            for p in &t.partitions {
                if p.error_code != 0 {
                    cluster.mark_stale();
                    return Err(Error::broker(
                        p.error_code,
                        Some(t.name.0.as_str()),
                        Some(p.partition_index),
                        None,
                    ));
                }
                out.insert((t.name.0.to_string(), p.partition_index), p.offset);
            }
        }
    }
    Ok(out)
}
