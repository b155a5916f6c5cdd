//! The client facade: one cluster view shared by the producer, admin calls and consumers.

use std::sync::Arc;
use std::time::Duration;

use super::admin::{self, TopicSummary};
use super::cluster::Cluster;
use super::config::Config;
use super::error::{Error, Result};
use super::producer::{Delivered, FlushOutcome, Producer, Record, RecordRef};

pub struct Client {
    cluster: Arc<Cluster>,
    producer: Producer,
}

impl Client {
    /// Connects (bootstrap + metadata) and starts the producer. Must run on the library runtime.
    pub async fn connect(config: Config) -> Result<Client> {
        let cluster = Cluster::connect(config).await?;
        let producer = Producer::start(cluster.clone());
        Ok(Client { cluster, producer })
    }

    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    pub fn config(&self) -> &Config {
        &self.cluster.config
    }

    /// Produces one record and waits for the broker's acknowledgement.
    pub async fn produce(&self, record: Record) -> Result<Delivered> {
        let timeout = Duration::from_millis(self.config().delivery_timeout_ms + 1000);
        tokio::time::timeout(timeout, self.producer.send(record))
            .await
            .unwrap_or_else(|_| {
                Err(Error::Timeout {
                    operation: "produce".into(),
                    ms: timeout.as_millis() as u64,
                })
            })
    }

    /// Queues a record; returns its delivery id at once.
    pub fn produce_async(&self, record: Record) -> Result<u64> {
        self.producer.send_async(record.as_ref())
    }

    /// Like `produce_async`, with the record borrowed: it is encoded into its batch at once.
    pub fn produce_async_ref(&self, record: RecordRef) -> Result<u64> {
        self.producer.send_async(record)
    }

    pub async fn flush(&self, timeout: Duration) -> FlushOutcome {
        self.producer.flush(timeout).await
    }

    pub async fn produce_batch(&self, records: Vec<Record>) -> Vec<Result<Delivered>> {
        self.producer.send_batch(records).await
    }

    /// `produce_batch` of borrowed records.
    pub async fn produce_batch_refs(&self, records: &[RecordRef<'_>]) -> Vec<Result<Delivered>> {
        self.producer.send_batch_refs(records).await
    }

    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
        configs: &[(String, String)],
    ) -> Result<()> {
        admin::create_topic(&self.cluster, name, partitions, replication, configs).await
    }

    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        admin::delete_topic(&self.cluster, name).await
    }

    pub async fn list_topics(&self) -> Result<Vec<TopicSummary>> {
        admin::list_topics(&self.cluster).await
    }

    /// Delivers what is pending (bounded by `timeout`) and closes connections. Idempotent.
    pub async fn close(&self, timeout: Duration) -> FlushOutcome {
        let outcome = self.producer.close(timeout).await;
        self.cluster.close().await;
        outcome
    }
}
