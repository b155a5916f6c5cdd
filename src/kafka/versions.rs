//! API versions we speak: the Kafka 2.1 baseline as the floor (never lower), and as the ceiling
//! the newest version whose fields we fill (later ones switch to topic ids, which we don't use).
//! Group and fetch APIs stay below their flexible versions: librdkafka's mock cluster advertises
//! them but drops the connection on them, and the older versions carry everything we send.

use kafka_protocol::messages::ApiKey;

/// (min, max) version for an API key; `None` for APIs we never send.
pub fn supported(api_key: i16) -> Option<(i16, i16)> {
    let key = ApiKey::try_from(api_key).ok()?;
    Some(match key {
        ApiKey::Produce => (7, 11),
        ApiKey::Fetch => (10, 11),
        ApiKey::ListOffsets => (4, 5),
        ApiKey::Metadata => (7, 12),
        ApiKey::OffsetCommit => (6, 7),
        ApiKey::OffsetFetch => (5, 5),
        ApiKey::FindCoordinator => (2, 3),
        ApiKey::JoinGroup => (3, 5),
        ApiKey::Heartbeat => (2, 3),
        ApiKey::LeaveGroup => (2, 2),
        ApiKey::SyncGroup => (2, 3),
        ApiKey::ApiVersions => (0, 3),
        ApiKey::CreateTopics => (3, 7),
        ApiKey::DeleteTopics => (2, 5),
        ApiKey::InitProducerId => (0, 4),
        _ => return None,
    })
}

/// Name for messages, e.g. "Produce".
pub fn api_name(api_key: i16) -> String {
    ApiKey::try_from(api_key).map_or_else(|_| format!("API {api_key}"), |k| format!("{k:?}"))
}

/// The version to use given the broker's range, or the reason there is none.
pub fn choose(api_key: i16, broker: Option<(i16, i16)>) -> Result<i16, (i16, i16)> {
    let (min, max) = supported(api_key).unwrap_or((0, 0));
    match broker {
        Some((bmin, bmax)) => {
            let v = max.min(bmax);
            if v < min.max(bmin) {
                Err((bmax, min))
            } else {
                Ok(v)
            }
        }
        None => Err((-1, min)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_highest_common_version_above_baseline() {
        assert_eq!(choose(0, Some((0, 9))), Ok(9));
        assert_eq!(choose(0, Some((3, 13))), Ok(11));
        assert_eq!(choose(0, Some((0, 5))), Err((5, 7)));
        assert_eq!(choose(0, None), Err((-1, 7)));
        assert_eq!(api_name(0), "Produce");
    }
}
