//! The Confluent REST Proxy v2 produce shapes, so code written for the proxy moves over by
//! replacing the HTTP call with ProduceBatch.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value as Json;

use super::headers;
use super::json::json_to_bytes;

/// One record of a `{"records": [...]}` body; text is borrowed from the body where it can be.
#[derive(Debug)]
pub struct BatchRecord<'a> {
    pub key: Option<Cow<'a, [u8]>>,
    pub value: Option<Cow<'a, [u8]>>,
    pub partition: Option<i32>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Parses `{"records":[{"key":..,"value":..,"partition":..,"headers":..}]}`; a bare array of
/// records is accepted too. `Err` holds (en, ru) details.
pub fn parse_produce(body: &str) -> Result<Vec<BatchRecord<'_>>, (String, String)> {
    match parse_plain(body) {
        Some(records) => Ok(records),
        None => parse_any(body),
    }
}

/// The common shape, read straight into records: keys and values that are strings or null,
/// headers as `[name, value]` pairs. Anything else (base64 or structured values, header
/// objects, bad input) is left to `parse_any`, which reads every shape and explains errors:
/// building its JSON tree took most of a ProduceBatch call.
fn parse_plain(body: &str) -> Option<Vec<BatchRecord<'_>>> {
    #[derive(Deserialize)]
    struct Body<'a> {
        #[serde(borrow)]
        records: Vec<Plain<'a>>,
    }
    let plain: Vec<Plain> = if body.trim_start().starts_with('[') {
        serde_json::from_str(body).ok()?
    } else {
        serde_json::from_str::<Body>(body).ok()?.records
    };
    plain
        .into_iter()
        .map(|r| {
            let partition = match r.partition {
                None => None,
                Some(p) => Some(i32::try_from(p).ok().filter(|p| *p >= 0)?),
            };
            let headers = r
                .headers
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.0.into_owned(), v.map(|v| Bytes::from(v.0.into_owned()))))
                .collect();
            Some(BatchRecord {
                key: r.key.map(|t| text_bytes(t.0)),
                value: r.value.map(|t| text_bytes(t.0)),
                partition,
                headers,
            })
        })
        .collect()
}

/// A record in the plain shape. Read from a JSON object only (a derived reader would take an
/// array of its fields too); a repeated field keeps its last value, as in `parse_any`.
#[derive(Default)]
struct Plain<'a> {
    key: Option<Text<'a>>,
    value: Option<Text<'a>>,
    partition: Option<i64>,
    headers: Option<Vec<(Text<'a>, Option<Text<'a>>)>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Plain<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = Plain<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a record object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> Result<Plain<'a>, M::Error> {
                let mut r = Plain::default();
                while let Some(field) = m.next_key::<Text<'de>>()? {
                    match &*field.0 {
                        "key" => r.key = m.next_value()?,
                        "value" => r.value = m.next_value()?,
                        "partition" => r.partition = m.next_value()?,
                        "headers" => r.headers = m.next_value()?,
                        _ => {
                            m.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(r)
            }
        }
        d.deserialize_map(Visitor(std::marker::PhantomData))
    }
}

/// A JSON string, borrowed from the body unless it had escapes (serde borrows a `Cow` only
/// as a field of its own, not inside an `Option`).
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

fn text_bytes(s: Cow<'_, str>) -> Cow<'_, [u8]> {
    match s {
        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    }
}

/// Any shape `parse_produce` takes, through a JSON tree.
fn parse_any(body: &str) -> Result<Vec<BatchRecord<'static>>, (String, String)> {
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

fn record(r: &Json) -> Result<BatchRecord<'static>, (String, String)> {
    let Json::Object(m) = r else {
        return Err(("must be an object".into(), "должна быть объектом".into()));
    };
    let bytes = |field: &str| {
        json_to_bytes(m.get(field).unwrap_or(&Json::Null))
            .map(|b| b.map(Cow::Owned))
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
        Some(h) => headers::from_json(h)?
            .into_iter()
            .map(|(k, v)| (k, v.map(Bytes::from)))
            .collect(),
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
    fn the_plain_shape_reads_as_any_shape_does_and_borrows_its_text() {
        for body in [
            r#"{"records":[{"key":"k","value":"v","partition":2,"headers":[["h","1"],["h",null]]},{"value":null},{"key":"","value":"esc\"aped \u0416"}]}"#,
            r#"[{"value":"x","extra":1}]"#,
            r#"{"records":[],"other":true}"#,
            r#"[{"value":"a","value":"b","partition":1,"partition":null}]"#,
        ] {
            let plain = parse_plain(body).expect("the plain shape");
            let any = parse_any(body).unwrap();
            assert_eq!(format!("{plain:?}"), format!("{any:?}"), "{body}");
        }
        for other in [
            r#"[{"value":{"base64":"AP8="}}]"#,
            r#"[{"value":{"a":1}}]"#,
            r#"[{"headers":{"h":"v"}}]"#,
            r#"[{"partition":-1}]"#,
            r#"[["k","v"]]"#,
            r#"{"records":[["k","v",1,[["h","x"]]]]}"#,
            r#"[[]]"#,
            "{",
        ] {
            assert!(parse_plain(other).is_none(), "{other}");
        }
        let r = parse_produce(r#"[{"value":"plain"}]"#).unwrap();
        assert!(matches!(r[0].value, Some(Cow::Borrowed(b"plain"))));
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
