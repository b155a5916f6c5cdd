//! The Confluent REST Proxy v2 produce shapes, so code written for the proxy moves over by
//! replacing the HTTP call with ProduceBatch.

use serde_json::Value as Json;

use super::headers::{self, Headers};
use super::json::json_to_bytes;

/// One record of a `{"records": [...]}` body.
#[derive(Debug)]
pub struct BatchRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub partition: Option<i32>,
    pub headers: Headers,
}

/// Parses `{"records":[{"key":..,"value":..,"partition":..,"headers":..}]}`; a bare array of
/// records is accepted too. `Err` holds (en, ru) details.
pub fn parse_produce(body: &str) -> Result<Vec<BatchRecord>, (String, String)> {
    let json: Json = serde_json::from_str(body).map_err(|e| {
        (
            format!("is not valid JSON: {e}"),
            format!("не является корректным JSON: {e}"),
        )
    })?;
    let records = match &json {
        Json::Object(m) => m.get("records").and_then(Json::as_array),
        Json::Array(a) => Some(a),
        _ => None,
    }
    .ok_or_else(|| {
        (
            "must be {\"records\": [...]} as for the REST Proxy".to_string(),
            "должен иметь вид {\"records\": [...]}, как для REST Proxy".to_string(),
        )
    })?;
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            record(r).map_err(|(en, ru)| {
                (
                    format!("record {}: {en}", i + 1),
                    format!("запись {}: {ru}", i + 1),
                )
            })
        })
        .collect()
}

fn record(r: &Json) -> Result<BatchRecord, (String, String)> {
    let Json::Object(m) = r else {
        return Err(("must be an object".into(), "должна быть объектом".into()));
    };
    let bytes = |field: &str| {
        json_to_bytes(m.get(field).unwrap_or(&Json::Null))
            .map_err(|e| (format!("{field}: {e}"), format!("{field}: {e}")))
    };
    let partition = match m.get("partition") {
        None | Some(Json::Null) => None,
        Some(p) => Some(
            p.as_i64()
                .and_then(|p| i32::try_from(p).ok())
                .filter(|p| *p >= 0)
                .ok_or_else(|| {
                    (
                        format!("partition must be a non-negative integer, got {p}"),
                        format!("partition должен быть неотрицательным целым, получено {p}"),
                    )
                })?,
        ),
    };
    let headers = match m.get("headers") {
        None => Vec::new(),
        Some(h) => headers::from_json(h)?,
    };
    Ok(BatchRecord {
        key: bytes("key")?,
        value: bytes("value")?,
        partition,
        headers,
    })
}

/// One entry of the response's `offsets`, in input order.
pub enum Outcome {
    Delivered { partition: i32, offset: i64 },
    Failed { code: i32, message: String },
}

#[derive(serde::Serialize)]
struct OffsetOut<'a> {
    partition: Option<i32>,
    offset: Option<i64>,
    error_code: Option<i32>,
    error: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct ResponseOut<'a> {
    key_schema_id: Option<i32>,
    value_schema_id: Option<i32>,
    offsets: Vec<OffsetOut<'a>>,
}

/// `{"offsets":[{"partition":..,"offset":..,"error_code":..,"error":..}]}` like the REST Proxy.
pub fn response(outcomes: &[Outcome]) -> String {
    let offsets = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Delivered { partition, offset } => OffsetOut {
                partition: Some(*partition),
                offset: Some(*offset),
                error_code: None,
                error: None,
            },
            Outcome::Failed { code, message } => OffsetOut {
                partition: None,
                offset: None,
                error_code: Some(*code),
                error: Some(message),
            },
        })
        .collect();
    super::json::to_text(&ResponseOut {
        key_schema_id: None,
        value_schema_id: None,
        offsets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rest_proxy_body() {
        let r = parse_produce(
            r#"{"records":[{"key":"k","value":{"a":1},"partition":2,"headers":[["h","v"]]},{"value":"x"},{"value":{"base64":"AP8="}}]}"#,
        )
        .unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(r[0].value.as_deref(), Some(&br#"{"a":1}"#[..]));
        assert_eq!(r[0].partition, Some(2));
        assert_eq!(r[0].headers.len(), 1);
        assert_eq!(r[1].key, None);
        assert_eq!(r[2].value.as_deref(), Some(&[0u8, 255][..]));
    }

    #[test]
    fn errors_name_the_record() {
        let e = parse_produce(r#"{"records":[{"value":"a"},{"partition":-1}]}"#).unwrap_err();
        assert!(e.0.starts_with("record 2: partition"), "{}", e.0);
        assert!(parse_produce(r#"{"rows":[]}"#).is_err());
        assert!(parse_produce("{").is_err());
    }

    #[test]
    fn response_shape() {
        let s = response(&[
            Outcome::Delivered {
                partition: 1,
                offset: 5,
            },
            Outcome::Failed {
                code: 40801,
                message: "boom".into(),
            },
        ]);
        let v: Json = serde_json::from_str(&s).unwrap();
        assert_eq!(v["offsets"][0]["offset"], 5);
        assert_eq!(v["offsets"][1]["error_code"], 40801);
        assert!(v["offsets"][0]["error"].is_null());
    }
}
