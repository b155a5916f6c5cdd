//! Topic administration: create, delete, list. Create/Delete go to the controller.

use std::time::Duration;

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::{CreateTopicsRequest, DeleteTopicsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::cluster::Cluster;
use super::error::{Error, Result};

/// A topic in ListTopics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSummary {
    pub name: String,
    pub partitions: i32,
    pub internal: bool,
}

/// NOT_CONTROLLER: the controller moved; refresh and try again.
const NOT_CONTROLLER: i16 = 41;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

pub async fn create_topic(
    cluster: &Cluster,
    topic: &str,
    partitions: i32,
    replication: i16,
    configs: &[(String, String)],
) -> Result<()> {
    let timeout_ms = cluster.config.request_timeout_ms.min(i32::MAX as u64) as i32;
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(timeout_ms)
        .with_topics(vec![CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(replication)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(k.clone()))
                            .with_value(Some(StrBytes::from_string(v.clone())))
                    })
                    .collect(),
            )]);
    for attempt in 0..3 {
        let resp = cluster.send_to(cluster.controller(), &req).await?;
        let result = resp.topics.iter().find(|t| t.name.0.as_str() == topic);
        let code = result.map_or(0, |r| r.error_code);
        if code == NOT_CONTROLLER && attempt < 2 {
            cluster.refresh(Some(&[])).await?;
            continue;
        }
        if code != 0 {
            let message = result
                .and_then(|r| r.error_message.as_ref())
                .map(|m| m.to_string());
            return Err(Error::broker(code, Some(topic), None, message));
        }
        // Let the new topic's metadata reach the cache before anyone produces to it.
        wait_for_topic(cluster, topic, true).await;
        return Ok(());
    }
    unreachable!("the loop returns on its last attempt")
}

pub async fn delete_topic(cluster: &Cluster, topic: &str) -> Result<()> {
    let timeout_ms = cluster.config.request_timeout_ms.min(i32::MAX as u64) as i32;
    let req = DeleteTopicsRequest::default()
        .with_timeout_ms(timeout_ms)
        .with_topic_names(vec![name(topic)]);
    for attempt in 0..3 {
        let resp = cluster.send_to(cluster.controller(), &req).await?;
        let result = resp
            .responses
            .iter()
            .find(|r| r.name.as_ref().is_some_and(|n| n.0.as_str() == topic));
        let code = result.map_or(0, |r| r.error_code);
        if code == NOT_CONTROLLER && attempt < 2 {
            cluster.refresh(Some(&[])).await?;
            continue;
        }
        if code == 3 {
            return Err(Error::UnknownTopic {
                topic: topic.to_string(),
            });
        }
        if code != 0 {
            let message = result
                .and_then(|r| r.error_message.as_ref())
                .map(|m| m.to_string());
            return Err(Error::broker(code, Some(topic), None, message));
        }
        wait_for_topic(cluster, topic, false).await;
        return Ok(());
    }
    unreachable!("the loop returns on its last attempt")
}

/// Polls metadata briefly until the topic appears (or disappears); creation is asynchronous
/// in Kafka, and a best effort here saves the caller's first produce a retry.
async fn wait_for_topic(cluster: &Cluster, topic: &str, exists: bool) {
    let topics = [topic.to_string()];
    for _ in 0..50 {
        if cluster.refresh(Some(&topics)).await.is_ok() {
            let present = cluster.topic(topic).is_some_and(|t| {
                !t.partitions.is_empty() && t.partitions.iter().all(|p| p.leader >= 0)
            });
            if present == exists {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn list_topics(cluster: &Cluster) -> Result<Vec<TopicSummary>> {
    cluster.refresh(None).await?;
    let mut out: Vec<TopicSummary> = cluster
        .topics()
        .iter()
        .map(|t| TopicSummary {
            name: t.name.clone(),
            partitions: t.partitions.len() as i32,
            internal: t.internal,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
