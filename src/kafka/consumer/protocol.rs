//! The "consumer" embedded protocol: subscriptions in JoinGroup, assignments in SyncGroup.
//! Each is a version (i16) followed by the versioned struct.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::kafka::error::{Error, Result};

/// Version 1 adds owned partitions, which librdkafka and Java read; v0 readers ignore the rest.
const SUBSCRIPTION_VERSION: i16 = 1;
const ASSIGNMENT_VERSION: i16 = 1;

fn proto(e: impl std::fmt::Display) -> Error {
    Error::Protocol(format!("consumer protocol: {e}"))
}

pub fn encode_subscription(topics: &[String], owned: &BTreeMap<String, Vec<i32>>) -> Result<Bytes> {
    let sub = ConsumerProtocolSubscription::default()
        .with_topics(
            topics
                .iter()
                .map(|t| StrBytes::from_string(t.clone()))
                .collect(),
        )
        .with_owned_partitions(
            owned
                .iter()
                .map(|(t, ps)| {
                    OwnedTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(t.clone())))
                        .with_partitions(ps.clone())
                })
                .collect(),
        );
    let mut buf = BytesMut::new();
    buf.put_i16(SUBSCRIPTION_VERSION);
    sub.encode(&mut buf, SUBSCRIPTION_VERSION).map_err(proto)?;
    Ok(buf.freeze())
}

/// Topics of a member's subscription (any version up to the newest we know).
pub fn decode_subscription(mut data: Bytes) -> Result<Vec<String>> {
    if data.remaining() < 2 {
        return Err(proto("short subscription"));
    }
    let version = data.get_i16().clamp(0, 3);
    let sub = ConsumerProtocolSubscription::decode(&mut data, version).map_err(proto)?;
    Ok(sub.topics.iter().map(|t| t.to_string()).collect())
}

pub fn encode_assignment(parts: &BTreeMap<String, Vec<i32>>) -> Result<Bytes> {
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
        parts
            .iter()
            .map(|(t, ps)| {
                AssignedTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(t.clone())))
                    .with_partitions(ps.clone())
            })
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.put_i16(ASSIGNMENT_VERSION);
    a.encode(&mut buf, ASSIGNMENT_VERSION).map_err(proto)?;
    Ok(buf.freeze())
}

/// Our partitions from SyncGroup; empty bytes mean nothing assigned.
pub fn decode_assignment(mut data: Bytes) -> Result<Vec<(String, i32)>> {
    if data.remaining() < 2 {
        return Ok(Vec::new());
    }
    let version = data.get_i16().clamp(0, 3);
    let a = ConsumerProtocolAssignment::decode(&mut data, version).map_err(proto)?;
    Ok(a.assigned_partitions
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.topic.0.to_string(), *p))
        })
        .collect())
}

/// SyncGroup's response (v0-v3) read by hand: librdkafka's mock cluster sends a null
/// assignment (length -1) with errors, which the schema does not allow. Returns (error, assignment).
pub fn decode_sync_response(version: i16, mut body: Bytes) -> Result<(i16, Bytes)> {
    let need = if version >= 1 { 10 } else { 6 };
    if body.remaining() < need {
        return Err(proto("short SyncGroup response"));
    }
    if version >= 1 {
        body.advance(4); // throttle_time_ms
    }
    let error = body.get_i16();
    let len = body.get_i32();
    if len < 0 {
        return Ok((error, Bytes::new()));
    }
    let len = len as usize;
    if body.remaining() < len {
        return Err(proto("SyncGroup assignment past the end"));
    }
    Ok((error, body.split_to(len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let owned = BTreeMap::from([("a".to_string(), vec![1, 2])]);
        let s = encode_subscription(&["a".into(), "тема".into()], &owned).unwrap();
        assert_eq!(decode_subscription(s).unwrap(), ["a", "тема"]);
        let parts = BTreeMap::from([("a".to_string(), vec![0, 3]), ("b".to_string(), vec![1])]);
        let a = encode_assignment(&parts).unwrap();
        assert_eq!(
            decode_assignment(a).unwrap(),
            [
                ("a".to_string(), 0),
                ("a".to_string(), 3),
                ("b".to_string(), 1)
            ]
        );
        assert!(decode_assignment(Bytes::new()).unwrap().is_empty());
    }

    #[test]
    fn sync_response_tolerates_a_null_assignment() {
        let mut b = BytesMut::new();
        b.put_i32(0);
        b.put_i16(27);
        b.put_i32(-1);
        assert_eq!(
            decode_sync_response(3, b.freeze()).unwrap(),
            (27, Bytes::new())
        );
    }
}
