//! CreateTopic, DeleteTopic, ListTopics.

use serde_json::Value as Json;

use super::args::Args;
use super::client::Client;
use super::error::CallError;
use crate::boundary::Value;

pub fn create_topic(c: &mut Client, a: &mut Args) -> Result<Value, CallError> {
    let name = a.string(0)?.to_string();
    let partitions = a.int_in(1, 1, i32::MAX as i64)? as i32;
    let replication = a.int_in(2, -1, i16::MAX as i64)? as i16;
    if replication == 0 {
        return Err(a.invalid(
            2,
            "must be positive, or -1 for the broker's default",
            "должен быть положительным или -1 (значение брокера по умолчанию)",
        ));
    }
    let configs = match a.opt_string(3)? {
        None => Vec::new(),
        Some(text) => topic_configs(text).map_err(|(en, ru)| a.invalid(3, en, ru))?,
    };
    c.session()?
        .create_topic(name, partitions, replication, configs)?;
    Ok(Value::Empty)
}

/// `{"cleanup.policy":"compact","retention.ms":86400000}`: values may be strings, numbers or bools.
fn topic_configs(text: &str) -> Result<Vec<(String, String)>, (String, String)> {
    let json: Json = serde_json::from_str(text).map_err(|e| {
        (
            format!("is not valid JSON: {e}"),
            format!("не является корректным JSON: {e}"),
        )
    })?;
    let Json::Object(map) = json else {
        return Err((
            "must be a JSON object of topic settings".into(),
            "должен быть JSON-объектом настроек темы".into(),
        ));
    };
    map.into_iter()
        .map(|(k, v)| match v {
            Json::String(s) => Ok((k, s)),
            Json::Number(n) => Ok((k, n.to_string())),
            Json::Bool(b) => Ok((k, b.to_string())),
            other => Err((
                format!("setting {k:?} must be a string, number or boolean, got {other}"),
                format!(
                    "настройка {k:?} должна быть строкой, числом или булевым, получено {other}"
                ),
            )),
        })
        .collect()
}

pub fn delete_topic(c: &mut Client, a: &mut Args) -> Result<Value, CallError> {
    let name = a.string(0)?.to_string();
    c.session()?.delete_topic(name)?;
    Ok(Value::Empty)
}

pub fn list_topics(c: &mut Client, _: &mut Args) -> Result<Value, CallError> {
    c.session()?.list_topics().map(Value::Str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs() {
        let c =
            topic_configs(r#"{"cleanup.policy":"compact","retention.ms":1000,"x":true}"#).unwrap();
        assert_eq!(c[1], ("retention.ms".to_string(), "1000".to_string()));
        assert!(topic_configs("[]").is_err());
        assert!(topic_configs(r#"{"a":[1]}"#)
            .unwrap_err()
            .0
            .contains("\"a\""));
    }
}
