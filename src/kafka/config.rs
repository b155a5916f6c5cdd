//! Client settings with librdkafka/Java names. Unknown keys and bad values are errors naming the
//! key, so a typo never silently falls back to a default.

use serde_json::Value as Json;

use super::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// The codec id in a record batch's attributes.
    pub fn attribute(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignor {
    Range,
    RoundRobin,
}

impl Assignor {
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub bootstrap_servers: Vec<String>,
    pub client_id: String,
    pub request_timeout_ms: u64,
    /// How long a consumer call that waits for the group coordinator (Commit) retries while
    /// the coordinator moves or is down, as the Java client's commitSync does.
    pub default_api_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub metadata_max_age_ms: u64,
    pub retry_backoff_ms: u64,
    /// `security.protocol=SSL`.
    pub tls: bool,
    /// PEM file with the CA certificates to trust; the public web roots when absent.
    pub ssl_ca_location: Option<String>,
    // producer
    /// -1 (all), 0 or 1.
    pub acks: i16,
    pub linger_ms: u64,
    pub batch_size: usize,
    pub compression: Compression,
    pub message_max_bytes: usize,
    pub retries: u32,
    /// Batches per partition in flight at once, when set. Unset: 5 with idempotence (order is
    /// kept by sequence numbers), 1 without it (order is kept by sending one at a time).
    /// Above 1 without idempotence, a retried batch may land after a later one.
    pub max_in_flight: Option<u32>,
    /// `enable.idempotence` when set. Unset means on when acks=all (as in the Java client),
    /// falling back to off if the broker cannot give a producer id.
    pub enable_idempotence: Option<bool>,
    pub delivery_timeout_ms: u64,
    pub max_block_ms: u64,
    pub allow_auto_create_topics: bool,
    // consumer
    pub group_id: Option<String>,
    pub group_instance_id: Option<String>,
    pub session_timeout_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub max_poll_interval_ms: u64,
    pub auto_offset_reset: OffsetReset,
    pub enable_auto_commit: bool,
    pub auto_commit_interval_ms: u64,
    pub assignment_strategy: Vec<Assignor>,
    pub fetch_min_bytes: i32,
    pub fetch_max_bytes: i32,
    pub max_partition_fetch_bytes: i32,
    pub fetch_max_wait_ms: i32,
    pub read_committed: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            bootstrap_servers: Vec::new(),
            client_id: "kafka1c".into(),
            request_timeout_ms: 30_000,
            default_api_timeout_ms: 60_000,
            connect_timeout_ms: 10_000,
            metadata_max_age_ms: 300_000,
            retry_backoff_ms: 100,
            tls: false,
            ssl_ca_location: None,
            acks: -1,
            // librdkafka's defaults: we are compared against it.
            linger_ms: 5,
            batch_size: 1_000_000,
            compression: Compression::None,
            message_max_bytes: 1_000_000,
            retries: i32::MAX as u32,
            max_in_flight: None,
            enable_idempotence: None,
            delivery_timeout_ms: 120_000,
            max_block_ms: 60_000,
            allow_auto_create_topics: true,
            group_id: None,
            group_instance_id: None,
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 3_000,
            max_poll_interval_ms: 300_000,
            auto_offset_reset: OffsetReset::Latest,
            enable_auto_commit: true,
            auto_commit_interval_ms: 5_000,
            assignment_strategy: vec![Assignor::Range, Assignor::RoundRobin],
            fetch_min_bytes: 1,
            fetch_max_bytes: 52_428_800,
            max_partition_fetch_bytes: 1_048_576,
            fetch_max_wait_ms: 500,
            read_committed: false,
        }
    }
}

/// A setting's value as text (JSON strings, numbers and booleans are all accepted).
fn text(key: &str, v: &Json) -> Result<String> {
    match v {
        Json::String(s) => Ok(s.trim().to_string()),
        Json::Number(n) => Ok(n.to_string()),
        Json::Bool(b) => Ok(b.to_string()),
        _ => Err(Error::config(
            key,
            format!("must be a string, number or boolean, got {v}"),
        )),
    }
}

fn number(key: &str, v: &Json, min: u64, max: u64) -> Result<u64> {
    let t = text(key, v)?;
    let n: u64 = t
        .parse()
        .map_err(|_| Error::config(key, format!("must be a whole number, got {t:?}")))?;
    if n < min || n > max {
        return Err(Error::config(
            key,
            format!("must be from {min} to {max}, got {n}"),
        ));
    }
    Ok(n)
}

fn boolean(key: &str, v: &Json) -> Result<bool> {
    match text(key, v)?.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(Error::config(
            key,
            format!("must be true or false, got {other:?}"),
        )),
    }
}

fn servers(key: &str, list: &str) -> Result<Vec<String>> {
    let servers: Vec<String> = list
        .split(',')
        .map(|s| s.trim().trim_start_matches("PLAINTEXT://").to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if servers.is_empty() {
        return Err(Error::config(key, "must list at least one host:port"));
    }
    for s in &servers {
        let port = s.rsplit_once(':').map(|(_, p)| p);
        if port.and_then(|p| p.parse::<u16>().ok()).is_none() {
            return Err(Error::config(key, format!("{s:?} is not host:port")));
        }
    }
    Ok(servers)
}

const MAX_MS: u64 = i32::MAX as u64;

/// `security.protocol`: whether connections use TLS.
fn tls_protocol(key: &str, v: &Json) -> Result<bool> {
    match text(key, v)?.to_ascii_uppercase().as_str() {
        "PLAINTEXT" => Ok(false),
        "SSL" => Ok(true),
        other => Err(Error::config(
            key,
            format!("{other:?} is not supported by this version of kafka1c (PLAINTEXT or SSL)"),
        )),
    }
}

impl Config {
    /// A bare `host:port,host:port` list.
    pub fn from_bootstrap(list: &str) -> Result<Config> {
        Ok(Config {
            bootstrap_servers: servers("bootstrap.servers", list)?,
            ..Config::default()
        })
    }

    /// A JSON object of settings, or a bare bootstrap list when the text is not an object.
    pub fn parse(text: &str) -> Result<Config> {
        if text.trim_start().starts_with('{') {
            Config::from_json(text)
        } else {
            Config::from_bootstrap(text)
        }
    }

    pub fn from_json(json: &str) -> Result<Config> {
        let value: Json = serde_json::from_str(json)
            .map_err(|e| Error::config("(settings)", format!("not valid JSON: {e}")))?;
        let Json::Object(map) = value else {
            return Err(Error::config("(settings)", "must be a JSON object"));
        };
        let mut c = Config::default();
        for (key, v) in &map {
            c.set(key, v)?;
        }
        if c.bootstrap_servers.is_empty() {
            return Err(Error::config("bootstrap.servers", "is required"));
        }
        c.check_idempotence()?;
        if c.heartbeat_interval_ms >= c.session_timeout_ms {
            return Err(Error::config(
                "heartbeat.interval.ms",
                format!(
                    "must be lower than session.timeout.ms ({}), got {}",
                    c.session_timeout_ms, c.heartbeat_interval_ms
                ),
            ));
        }
        Ok(c)
    }

    /// Whether the producer asks for idempotence: set, or by default with acks=all and at most
    /// 5 batches in flight (brokers remember only a producer's last 5), as the Java client does.
    pub fn idempotent(&self) -> bool {
        self.enable_idempotence
            .unwrap_or(self.acks == -1 && self.max_in_flight.is_none_or(|n| n <= 5))
    }

    /// Batches per partition in flight when the producer is (or is not) idempotent.
    pub fn in_flight(&self, idempotent: bool) -> u32 {
        self.max_in_flight.unwrap_or(if idempotent { 5 } else { 1 })
    }

    /// Idempotence asked for explicitly must be possible as configured.
    fn check_idempotence(&self) -> Result<()> {
        if self.enable_idempotence != Some(true) {
            return Ok(());
        }
        if self.acks != -1 {
            return Err(Error::config(
                "enable.idempotence",
                format!("needs acks=all, got acks={}", self.acks),
            ));
        }
        match self.max_in_flight {
            // Brokers keep the last 5 batches of a producer to spot duplicates and gaps.
            Some(n) if n > 5 => Err(Error::config(
                "max.in.flight.requests.per.connection",
                format!("must be at most 5 with enable.idempotence=true, got {n}"),
            )),
            _ => Ok(()),
        }
    }

    fn set(&mut self, key: &str, v: &Json) -> Result<()> {
        match key {
            "bootstrap.servers" | "metadata.broker.list" => {
                self.bootstrap_servers = servers(key, &text(key, v)?)?
            }
            "client.id" => self.client_id = text(key, v)?,
            "request.timeout.ms" | "socket.timeout.ms" => {
                self.request_timeout_ms = number(key, v, 1, MAX_MS)?
            }
            "default.api.timeout.ms" => self.default_api_timeout_ms = number(key, v, 1, MAX_MS)?,
            "socket.connection.setup.timeout.ms" => {
                self.connect_timeout_ms = number(key, v, 1, MAX_MS)?
            }
            "metadata.max.age.ms" => self.metadata_max_age_ms = number(key, v, 1, MAX_MS)?,
            "retry.backoff.ms" => self.retry_backoff_ms = number(key, v, 1, MAX_MS)?,
            "security.protocol" => self.tls = tls_protocol(key, v)?,
            "ssl.ca.location" => {
                self.ssl_ca_location = Some(text(key, v)?).filter(|s| !s.is_empty())
            }
            "acks" | "request.required.acks" => {
                self.acks = match text(key, v)?.to_ascii_lowercase().as_str() {
                    "all" | "-1" => -1,
                    "0" => 0,
                    "1" => 1,
                    other => {
                        return Err(Error::config(
                            key,
                            format!("must be all, -1, 0 or 1, got {other:?}"),
                        ))
                    }
                }
            }
            "linger.ms" | "queue.buffering.max.ms" => self.linger_ms = number(key, v, 0, 900_000)?,
            "batch.size" => self.batch_size = number(key, v, 1, 100_000_000)? as usize,
            "compression.type" | "compression.codec" => {
                self.compression = match text(key, v)?.to_ascii_lowercase().as_str() {
                    "none" => Compression::None,
                    "gzip" => Compression::Gzip,
                    "snappy" => Compression::Snappy,
                    "lz4" => Compression::Lz4,
                    "zstd" => Compression::Zstd,
                    other => {
                        return Err(Error::config(
                            key,
                            format!("must be none, gzip, snappy, lz4 or zstd, got {other:?}"),
                        ))
                    }
                }
            }
            "message.max.bytes" | "max.request.size" => {
                self.message_max_bytes = number(key, v, 1000, 1_000_000_000)? as usize
            }
            "retries" | "message.send.max.retries" => {
                self.retries = number(key, v, 0, i32::MAX as u64)? as u32
            }
            "delivery.timeout.ms" | "message.timeout.ms" => {
                self.delivery_timeout_ms = number(key, v, 1, MAX_MS)?
            }
            "max.block.ms" => self.max_block_ms = number(key, v, 0, MAX_MS)?,
            "allow.auto.create.topics" => self.allow_auto_create_topics = boolean(key, v)?,
            "max.in.flight.requests.per.connection" | "max.in.flight" => {
                self.max_in_flight = Some(number(key, v, 1, 1_000_000)? as u32)
            }
            "enable.idempotence" => self.enable_idempotence = Some(boolean(key, v)?),
            "group.id" => self.group_id = Some(text(key, v)?).filter(|s| !s.is_empty()),
            "group.instance.id" => {
                self.group_instance_id = Some(text(key, v)?).filter(|s| !s.is_empty())
            }
            "session.timeout.ms" => self.session_timeout_ms = number(key, v, 1, MAX_MS)?,
            "heartbeat.interval.ms" => self.heartbeat_interval_ms = number(key, v, 1, MAX_MS)?,
            "max.poll.interval.ms" => self.max_poll_interval_ms = number(key, v, 1, MAX_MS)?,
            "auto.offset.reset" => {
                self.auto_offset_reset = match text(key, v)?.to_ascii_lowercase().as_str() {
                    "earliest" | "smallest" | "beginning" => OffsetReset::Earliest,
                    "latest" | "largest" | "end" => OffsetReset::Latest,
                    "none" | "error" => OffsetReset::None,
                    other => {
                        return Err(Error::config(
                            key,
                            format!("must be earliest, latest or none, got {other:?}"),
                        ))
                    }
                }
            }
            "enable.auto.commit" => self.enable_auto_commit = boolean(key, v)?,
            "auto.commit.interval.ms" => self.auto_commit_interval_ms = number(key, v, 1, MAX_MS)?,
            "partition.assignment.strategy" => {
                let list = text(key, v)?;
                let mut out = Vec::new();
                for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    out.push(match name.to_ascii_lowercase().as_str() {
                        "range" | "org.apache.kafka.clients.consumer.rangeassignor" => {
                            Assignor::Range
                        }
                        "roundrobin" | "org.apache.kafka.clients.consumer.roundrobinassignor" => {
                            Assignor::RoundRobin
                        }
                        _ => {
                            return Err(Error::config(
                                key,
                                format!("unknown assignor {name:?}: use range and/or roundrobin"),
                            ))
                        }
                    });
                }
                if out.is_empty() {
                    return Err(Error::config(key, "must name at least one assignor"));
                }
                self.assignment_strategy = out;
            }
            "fetch.min.bytes" => self.fetch_min_bytes = number(key, v, 1, 100_000_000)? as i32,
            "fetch.max.bytes" => {
                self.fetch_max_bytes = number(key, v, 1024, i32::MAX as u64)? as i32
            }
            "max.partition.fetch.bytes" => {
                self.max_partition_fetch_bytes = number(key, v, 1024, i32::MAX as u64)? as i32
            }
            "fetch.max.wait.ms" | "fetch.wait.max.ms" => {
                self.fetch_max_wait_ms = number(key, v, 0, 300_000)? as i32
            }
            "isolation.level" => {
                self.read_committed = match text(key, v)?.to_ascii_lowercase().as_str() {
                    "read_committed" => true,
                    "read_uncommitted" => false,
                    other => {
                        return Err(Error::config(
                            key,
                            format!("must be read_committed or read_uncommitted, got {other:?}"),
                        ))
                    }
                }
            }
            // Accepted so shared settings still load; not sent, as fetching from a follower
            // replica is not implemented.
            "client.rack" => {
                text(key, v)?;
            }
            _ => return Err(Error::config(key, "unknown setting")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_bootstrap_list() {
        let c = Config::parse("a:9092, b:9093").unwrap();
        assert_eq!(c.bootstrap_servers, ["a:9092", "b:9093"]);
        assert!(Config::parse("nohost").is_err());
    }

    #[test]
    fn max_in_flight_is_bounded() {
        let c = Config::parse(r#"{"bootstrap.servers":"h:1","max.in.flight":7}"#).unwrap();
        assert_eq!(c.in_flight(c.idempotent()), 7);
        assert!(
            !c.idempotent(),
            "more than 5 in flight turns the default off"
        );
        let e = Config::parse(
            r#"{"bootstrap.servers":"h:1","max.in.flight.requests.per.connection":0}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("max.in.flight"), "{e}");
    }

    #[test]
    fn idempotence_default_and_conflicts() {
        let c = Config::parse(r#"{"bootstrap.servers":"h:1","acks":"1"}"#).unwrap();
        assert!(!c.idempotent(), "acks=1 turns the default off");
        let e =
            Config::parse(r#"{"bootstrap.servers":"h:1","acks":"1","enable.idempotence":true}"#)
                .unwrap_err();
        assert!(e.to_string().contains("acks=all"), "{e}");
        let e = Config::parse(
            r#"{"bootstrap.servers":"h:1","enable.idempotence":true,"max.in.flight":6}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("at most 5"), "{e}");
        let c = Config::parse(r#"{"bootstrap.servers":"h:1","enable.idempotence":false}"#).unwrap();
        assert!(!c.idempotent());
    }

    #[test]
    fn json_settings() {
        let c = Config::parse(
            r#"{"bootstrap.servers":"h:1","acks":"all","linger.ms":0,"compression.type":"zstd",
                "enable.auto.commit":false,"auto.offset.reset":"earliest","group.id":"g",
                "partition.assignment.strategy":"roundrobin,range"}"#,
        )
        .unwrap();
        assert_eq!(c.acks, -1);
        assert_eq!(c.linger_ms, 0);
        assert!(c.idempotent(), "on by default with acks=all");
        assert_eq!(c.in_flight(true), 5);
        assert_eq!(
            c.in_flight(false),
            1,
            "order-keeping default without idempotence"
        );
        assert_eq!(c.compression, Compression::Zstd);
        assert!(!c.enable_auto_commit);
        assert_eq!(c.auto_offset_reset, OffsetReset::Earliest);
        assert_eq!(c.group_id.as_deref(), Some("g"));
        assert_eq!(
            c.assignment_strategy,
            [Assignor::RoundRobin, Assignor::Range]
        );
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::parse(r#"{"bootstrap.servers":"h:1","lingerr.ms":5}"#).unwrap_err();
        assert_eq!(e.to_string(), "setting \"lingerr.ms\": unknown setting");
        let e = Config::parse(r#"{"bootstrap.servers":"h:1","acks":"2"}"#).unwrap_err();
        assert!(e.to_string().contains("\"acks\""));
        let e = Config::parse(r#"{"bootstrap.servers":"h:1","linger.ms":"soon"}"#).unwrap_err();
        assert!(e.to_string().contains("whole number"));
        assert!(Config::parse(r#"{"acks":1}"#).is_err());
        assert!(Config::parse("{").is_err());
        let e = Config::parse(
            r#"{"bootstrap.servers":"h:1","session.timeout.ms":1000,"heartbeat.interval.ms":3000}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("heartbeat.interval.ms"));
    }
}
