//! Errors of the Kafka core, structured so the 1C layer can explain them in its own words.

use std::fmt;

use kafka_protocol::error::ResponseError;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A setting is unknown or has a bad value. `value` is never a secret.
    Config {
        key: String,
        reason: String,
    },
    /// No bootstrap server answered.
    Unreachable {
        servers: String,
        reason: String,
    },
    /// An operation did not finish in time.
    Timeout {
        operation: String,
        ms: u64,
    },
    /// The broker answered with an error code.
    Broker {
        code: i16,
        topic: Option<String>,
        partition: Option<i32>,
        message: Option<String>,
    },
    MessageTooLarge {
        size: usize,
        max: usize,
    },
    UnknownTopic {
        topic: String,
    },
    UnknownPartition {
        topic: String,
        partition: i32,
        count: i32,
    },
    /// A connection broke while a request was in flight.
    Disconnected {
        broker: String,
        reason: String,
    },
    /// The broker is older than Kafka 2.1 for an API we need.
    UnsupportedVersion {
        api: String,
        broker_max: i16,
        needed: i16,
    },
    /// The client was closed.
    Closed,
    /// Bytes from the broker could not be decoded.
    Protocol(String),
    /// Misuse of the API, e.g. consuming without Subscribe.
    State(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// `NotLeaderOrFollower` → `NOT_LEADER_OR_FOLLOWER`, the name Kafka's documentation uses.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".into(),
        Some(ResponseError::Unknown(c)) => format!("UNKNOWN_ERROR_{c}"),
        Some(e) => {
            let camel = format!("{e:?}");
            let mut out = String::with_capacity(camel.len() + 8);
            for (i, c) in camel.chars().enumerate() {
                if c.is_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_uppercase());
            }
            out
        }
    }
}

/// Whether the broker error is worth retrying (leader moves, timeouts, coordinator loads).
pub fn is_retriable(code: i16) -> bool {
    ResponseError::try_from_code(code).is_some_and(|e| e.is_retriable())
}

impl Error {
    pub fn broker(
        code: i16,
        topic: Option<&str>,
        partition: Option<i32>,
        message: Option<String>,
    ) -> Error {
        Error::Broker {
            code,
            topic: topic.map(str::to_string),
            partition,
            message,
        }
    }

    pub fn config(key: &str, reason: impl Into<String>) -> Error {
        Error::Config {
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    /// Errors after which the same request may succeed later.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Broker { code, .. } => is_retriable(*code),
            Error::Disconnected { .. } | Error::Timeout { .. } | Error::Unreachable { .. } => true,
            _ => false,
        }
    }

    /// The broker's error code, when it is one.
    pub fn code(&self) -> Option<i16> {
        match self {
            Error::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config { key, reason } => write!(f, "setting {key:?}: {reason}"),
            Error::Unreachable { servers, reason } => {
                write!(f, "no Kafka broker reachable at {servers}: {reason}")
            }
            Error::Timeout { operation, ms } => write!(f, "{operation} did not finish within {ms} ms"),
            Error::Broker {
                code,
                topic,
                partition,
                message,
            } => {
                write!(f, "broker error {} ({code})", error_name(*code))?;
                match (topic, partition) {
                    (Some(t), Some(p)) => write!(f, " for {t}[{p}]")?,
                    (Some(t), None) => write!(f, " for topic {t}")?,
                    _ => {}
                }
                if let Some(m) = message.as_deref().filter(|m| !m.is_empty()) {
                    write!(f, ": {m}")?;
                }
                Ok(())
            }
            Error::MessageTooLarge { size, max } => write!(
                f,
                "message of {size} bytes is larger than message.max.bytes ({max})"
            ),
            Error::UnknownTopic { topic } => write!(f, "topic {topic:?} does not exist"),
            Error::UnknownPartition {
                topic,
                partition,
                count,
            } => write!(
                f,
                "topic {topic:?} has no partition {partition} (it has {count})"
            ),
            Error::Disconnected { broker, reason } => {
                write!(f, "connection to {broker} lost: {reason}")
            }
            Error::UnsupportedVersion {
                api,
                broker_max,
                needed,
            } => write!(
                f,
                "the broker supports {api} only up to version {broker_max}, Kafka 2.1+ (version {needed}) is required"
            ),
            Error::Closed => write!(f, "the client is closed"),
            Error::Protocol(m) => write!(f, "protocol error: {m}"),
            Error::State(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(0), "NONE");
        assert!(is_retriable(6));
        assert!(!is_retriable(10));
        let e = Error::broker(6, Some("t"), Some(2), None);
        assert_eq!(
            e.to_string(),
            "broker error NOT_LEADER_OR_FOLLOWER (6) for t[2]"
        );
    }
}
