//! The cluster as the client sees it: bootstrap servers, the broker map, one connection per
//! broker, and a metadata cache of topic partitions and their leaders.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::{Request, StrBytes};

use super::config::Config;
use super::connection::Connection;
use super::error::{Error, Result};

/// Leader of one partition; -1 while there is none.
#[derive(Debug, Clone, Copy)]
pub struct PartitionInfo {
    pub leader: i32,
    pub leader_epoch: i32,
}

#[derive(Debug, Clone)]
pub struct TopicInfo {
    pub name: String,
    pub internal: bool,
    /// Indexed by partition id.
    pub partitions: Vec<PartitionInfo>,
}

#[derive(Default)]
struct Metadata {
    brokers: HashMap<i32, String>,
    controller: i32,
    /// Looked up for every produced record: a fast hasher.
    topics: foldhash::HashMap<String, Arc<TopicInfo>>,
    /// Topics the last refresh reported missing, with the broker's error code.
    missing: HashMap<String, i16>,
    refreshed: Option<Instant>,
}

pub struct Cluster {
    pub config: Config,
    tls: Option<Arc<rustls::ClientConfig>>,
    meta: RwLock<Metadata>,
    /// Counts metadata updates, so callers may keep a topic's metadata until it changes.
    generation: std::sync::atomic::AtomicU64,
    conns: tokio::sync::Mutex<HashMap<String, Arc<Connection>>>,
}

impl Cluster {
    /// Reaches a bootstrap server and loads the broker list; fails naming the servers.
    pub async fn connect(config: Config) -> Result<Arc<Cluster>> {
        let tls = super::tls::client_config(&config)?;
        let cluster = Arc::new(Cluster {
            tls,
            config,
            meta: RwLock::new(Metadata::default()),
            generation: Default::default(),
            conns: tokio::sync::Mutex::new(HashMap::new()),
        });
        let deadline = Duration::from_millis(
            cluster
                .config
                .connect_timeout_ms
                .max(cluster.config.request_timeout_ms),
        );
        match tokio::time::timeout(deadline, cluster.refresh(Some(&[]))).await {
            Ok(Ok(())) => Ok(cluster),
            Ok(Err(e)) => Err(Error::Unreachable {
                servers: cluster.config.bootstrap_servers.join(","),
                reason: e.to_string(),
            }),
            Err(_) => Err(Error::Unreachable {
                servers: cluster.config.bootstrap_servers.join(","),
                reason: format!("no answer within {} ms", deadline.as_millis()),
            }),
        }
    }

    fn timeouts(&self) -> (Duration, Duration) {
        (
            Duration::from_millis(self.config.connect_timeout_ms),
            Duration::from_millis(self.config.request_timeout_ms),
        )
    }

    async fn connection_to_addr(&self, addr: &str) -> Result<Arc<Connection>> {
        let mut conns = self.conns.lock().await;
        if let Some(c) = conns.get(addr) {
            if c.is_alive() {
                return Ok(c.clone());
            }
        }
        let (connect, request) = self.timeouts();
        let conn = Connection::connect(
            addr,
            &self.config.client_id,
            self.tls.as_ref(),
            connect,
            request,
        )
        .await?;
        conns.insert(addr.to_string(), conn.clone());
        Ok(conn)
    }

    /// The connection to broker `node`, opened if needed.
    pub async fn connection(&self, node: i32) -> Result<Arc<Connection>> {
        let addr = self.meta.read().unwrap().brokers.get(&node).cloned();
        match addr {
            Some(addr) => self.connection_to_addr(&addr).await,
            None => {
                self.refresh(Some(&[])).await?;
                let addr = self.meta.read().unwrap().brokers.get(&node).cloned();
                // A broker missing from metadata is down or gone: retriable like a lost connection.
                let addr = addr.ok_or_else(|| Error::Disconnected {
                    broker: format!("broker {node}"),
                    reason: "not in the cluster metadata".into(),
                })?;
                self.connection_to_addr(&addr).await
            }
        }
    }

    /// Any working connection: a live one, else known brokers, else the bootstrap list.
    pub async fn any_connection(&self) -> Result<Arc<Connection>> {
        {
            let conns = self.conns.lock().await;
            if let Some(c) = conns.values().find(|c| c.is_alive()) {
                return Ok(c.clone());
            }
        }
        let mut candidates: Vec<String> = self
            .meta
            .read()
            .unwrap()
            .brokers
            .values()
            .cloned()
            .collect();
        candidates.extend(self.config.bootstrap_servers.iter().cloned());
        let mut last = None;
        for addr in candidates {
            match self.connection_to_addr(&addr).await {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::State("no brokers known".into())))
    }

    pub async fn send_to<R: Request>(&self, node: i32, req: &R) -> Result<R::Response> {
        self.connection(node).await?.send(req).await
    }

    pub async fn send_any<R: Request>(&self, req: &R) -> Result<R::Response> {
        self.any_connection().await?.send(req).await
    }

    /// Refreshes metadata for `topics` (`None`: all topics; `Some(&[])`: brokers only). Never
    /// asks the broker to create a missing topic: a lookup (admin calls, leader changes) must
    /// not bring back a topic that was just deleted.
    pub async fn refresh(&self, topics: Option<&[String]>) -> Result<()> {
        self.refresh_with(topics, false).await
    }

    /// Refreshes metadata for topics this client produces to or subscribes to: those, and only
    /// those, a broker with auto.create.topics.enable creates when allow.auto.create.topics is
    /// on (as the Java producer and consumer do).
    pub async fn refresh_used(&self, topics: &[String]) -> Result<()> {
        let create = self.config.allow_auto_create_topics;
        self.refresh_with(Some(topics), create).await
    }

    async fn refresh_with(&self, topics: Option<&[String]>, auto_create: bool) -> Result<()> {
        let req = MetadataRequest::default()
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|t| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(t.clone()))))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(auto_create);
        let resp = self.send_any(&req).await?;
        self.apply(resp, topics.is_none());
        Ok(())
    }

    fn apply(&self, resp: MetadataResponse, all_topics: bool) {
        let mut meta = self.meta.write().unwrap();
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        meta.brokers = resp
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
            .collect();
        meta.controller = resp.controller_id.0;
        if all_topics {
            meta.topics.clear();
        }
        for t in resp.topics {
            let Some(name) = t.name.map(|n| n.0.to_string()) else {
                continue;
            };
            if t.error_code != 0 && t.partitions.is_empty() {
                meta.topics.remove(&name);
                meta.missing.insert(name, t.error_code);
                continue;
            }
            let count = t
                .partitions
                .iter()
                .map(|p| p.partition_index + 1)
                .max()
                .unwrap_or(0)
                .max(0) as usize;
            let mut partitions = vec![
                PartitionInfo {
                    leader: -1,
                    leader_epoch: -1
                };
                count
            ];
            for p in &t.partitions {
                if let Some(slot) = partitions.get_mut(p.partition_index as usize) {
                    *slot = PartitionInfo {
                        leader: if p.error_code == 0 || p.leader_id.0 >= 0 {
                            p.leader_id.0
                        } else {
                            -1
                        },
                        leader_epoch: p.leader_epoch,
                    };
                }
            }
            meta.missing.remove(&name);
            meta.topics.insert(
                name.clone(),
                Arc::new(TopicInfo {
                    name,
                    internal: t.is_internal,
                    partitions,
                }),
            );
        }
        meta.refreshed = Some(Instant::now());
    }

    /// Changes whenever metadata is updated.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Cached metadata of a topic.
    pub fn topic(&self, name: &str) -> Option<Arc<TopicInfo>> {
        self.meta.read().unwrap().topics.get(name).cloned()
    }

    /// The error code the last refresh gave for a missing topic.
    pub fn missing(&self, name: &str) -> Option<i16> {
        self.meta.read().unwrap().missing.get(name).copied()
    }

    /// All cached topics (after `refresh(None)`: all topics of the cluster).
    pub fn topics(&self) -> Vec<Arc<TopicInfo>> {
        self.meta.read().unwrap().topics.values().cloned().collect()
    }

    pub fn controller(&self) -> i32 {
        self.meta.read().unwrap().controller
    }

    /// Whether the cache is older than metadata.max.age.ms.
    pub fn is_stale(&self) -> bool {
        let max_age = Duration::from_millis(self.config.metadata_max_age_ms);
        self.meta
            .read()
            .unwrap()
            .refreshed
            .is_none_or(|t| t.elapsed() > max_age)
    }

    /// Makes the next `is_stale` true, e.g. after NOT_LEADER_OR_FOLLOWER.
    pub fn mark_stale(&self) {
        self.meta.write().unwrap().refreshed = None;
    }

    /// Topic metadata, refreshing when unknown. `Ok(None)` when the broker says it does not exist.
    pub async fn topic_or_refresh(&self, name: &str) -> Result<Option<Arc<TopicInfo>>> {
        if let Some(t) = self.topic(name) {
            return Ok(Some(t));
        }
        self.refresh(Some(&[name.to_string()])).await?;
        Ok(self.topic(name))
    }

    /// Closes every connection.
    pub async fn close(&self) {
        let conns: Vec<_> = self.conns.lock().await.drain().map(|(_, c)| c).collect();
        for c in conns {
            c.close();
        }
    }
}
