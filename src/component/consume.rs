//! Subscribe, Poll, PollBatch, Commit, CommitOffsets, Seek, Assignment.

use serde_json::Value as Json;

use super::args::Args;
use super::client::Client;
use super::error::{CallError, TypeName};
use super::time;
use crate::boundary::Value;

/// Where Seek moves a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Offset(i64),
    /// First message at or after this time (ms since the Unix epoch, UTC).
    Timestamp(i64),
    Beginning,
    End,
}

/// Topics as `a,b,c` or a JSON array of names.
fn topics(a: &mut Args, i: usize) -> Result<Vec<String>, CallError> {
    let text = a.string(i)?.trim();
    let names: Vec<String> = if text.starts_with('[') {
        serde_json::from_str::<Vec<String>>(text).map_err(|e| {
            a.invalid(
                i,
                format!("must be a JSON array of topic names or a comma-separated list: {e}"),
                format!("должен быть JSON-массивом имён тем или списком через запятую: {e}"),
            )
        })?
    } else {
        text.split(',').map(|t| t.trim().to_string()).collect()
    };
    if names.is_empty() || names.iter().any(String::is_empty) {
        return Err(a.invalid(
            i,
            format!("must name at least one topic, without empty names, got {text:?}"),
            format!("должен содержать хотя бы одну тему без пустых имён, получено {text:?}"),
        ));
    }
    Ok(names)
}

pub fn subscribe(c: &mut Client, a: &mut Args) -> Result<Value, CallError> {
    let topics = topics(a, 0)?;
    let group = a.opt_string(1)?.map(str::to_string);
    c.session()?.subscribe(topics, group)?;
    Ok(Value::Empty)
}

pub fn poll(c: &mut Client, a: &mut Args) -> Result<Value, CallError> {
    let timeout = a.int_in(0, 0, i32::MAX as i64)? as u64;
    let message = c.session()?.poll(timeout)?;
    let got = message.is_some();
    c.message = message;
    Ok(Value::Bool(got))
}

pub fn poll_batch(c: &mut Client, a: &mut Args) -> Result<Value, CallError> {
    let max = a.int_in(0, 1, 100_000)? as usize;
    let timeout = a.int_in(1, 0, i32::MAX as i64)? as u64;
    c.session()?.poll_batch(max, timeout).map(Value::Str)
}

pub fn commit(c: &mut Client, _: &mut Args) -> Result<Value, CallError> {
    c.session()?.commit()?;
    Ok(Value::Empty)
}

/// `[{"topic":"t","partition":0,"offset":42}, ...]` (or `{"offsets": [...]}`): the offset is the
/// next message to read, as in Kafka.
fn offsets(a: &mut Args, i: usize) -> Result<Vec<(String, i32, i64)>, CallError> {
    let bad = |en: String, ru: String| a.invalid(i, en, ru);
    let json: Json = serde_json::from_str(a.string(i)?).map_err(|e| {
        bad(
            format!("is not valid JSON: {e}"),
            format!("не является корректным JSON: {e}"),
        )
    })?;
    let items = match &json {
        Json::Array(items) => items,
        Json::Object(m) => m.get("offsets").and_then(Json::as_array).ok_or_else(|| {
            bad(
                "must be an array of {\"topic\",\"partition\",\"offset\"}".into(),
                "должен быть массивом {\"topic\",\"partition\",\"offset\"}".into(),
            )
        })?,
        _ => {
            return Err(bad(
                "must be an array of {\"topic\",\"partition\",\"offset\"}".into(),
                "должен быть массивом {\"topic\",\"partition\",\"offset\"}".into(),
            ))
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(k, item)| {
            let topic = item["topic"].as_str();
            let partition = item["partition"].as_i64().and_then(|p| i32::try_from(p).ok()).filter(|p| *p >= 0);
            let offset = item["offset"].as_i64().filter(|o| *o >= 0);
            match (topic, partition, offset) {
                (Some(t), Some(p), Some(o)) => Ok((t.to_string(), p, o)),
                _ => Err(bad(
                    format!("item {} must have \"topic\" (string), \"partition\" and \"offset\" (non-negative integers), got {item}", k + 1),
                    format!("элемент {} должен содержать \"topic\" (строка), \"partition\" и \"offset\" (неотрицательные целые), получено {item}", k + 1),
                )),
            }
        })
        .collect()
}

pub fn commit_offsets(c: &mut Client, a: &mut Args) -> Result<Value, CallError> {
    let offsets = offsets(a, 0)?;
    c.session()?.commit_offsets(offsets)?;
    Ok(Value::Empty)
}

fn position(a: &mut Args, i: usize) -> Result<Position, CallError> {
    match a.raw(i) {
        Value::Int(_) | Value::Double(_) => {
            let offset = a.int(i)?;
            if offset < 0 {
                return Err(a.invalid(
                    i,
                    format!("must not be negative, got {offset}"),
                    format!("не может быть отрицательным, получено {offset}"),
                ));
            }
            Ok(Position::Offset(offset))
        }
        Value::Date(d) => Ok(Position::Timestamp(time::local_date_to_unix_ms(*d))),
        Value::Str(s) => match s.trim().to_lowercase().as_str() {
            "earliest" | "beginning" | "начало" => Ok(Position::Beginning),
            "latest" | "end" | "конец" => Ok(Position::End),
            other => Err(a.invalid(
                i,
                format!("must be an offset, a Date, \"earliest\" or \"latest\", got {other:?}"),
                format!(
                    "должен быть смещением, датой, \"начало\" или \"конец\", получено {other:?}"
                ),
            )),
        },
        _ => Err(a.type_error(i, &[TypeName::Number, TypeName::Date, TypeName::String])),
    }
}

pub fn seek(c: &mut Client, a: &mut Args) -> Result<Value, CallError> {
    let topic = a.string(0)?.to_string();
    let partition = a.int_in(1, 0, i32::MAX as i64)? as i32;
    let position = position(a, 2)?;
    c.session()?.seek(topic, partition, position)?;
    Ok(Value::Empty)
}

pub fn assignment(c: &mut Client, _: &mut Args) -> Result<Value, CallError> {
    c.session()?.assignment().map(Value::Str)
}
