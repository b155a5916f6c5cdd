//! Property getters. Message fields describe the last message Poll returned, Undefined before.

use super::client::Client;
use super::session::Message;
use super::time;
use crate::boundary::Value;
use bytes::Bytes;

pub fn version(_: &Client) -> Value {
    Value::Str(env!("CARGO_PKG_VERSION").to_string())
}

pub fn last_error(c: &Client) -> Value {
    Value::Str(c.last_error.clone())
}

fn field(c: &Client, f: impl FnOnce(&Message) -> Value) -> Value {
    c.message.as_ref().map_or(Value::Empty, f)
}

/// Text for bytes that may not be UTF-8: invalid sequences become U+FFFD (the *Binary
/// properties give the exact bytes). Decoded by the boundary straight into 1C's memory.
fn text(bytes: &Option<Bytes>) -> Value {
    bytes.clone().map_or(Value::Empty, Value::Text)
}

fn binary(bytes: &Option<Bytes>) -> Value {
    bytes
        .as_ref()
        .map_or(Value::Empty, |b| Value::Blob(b.to_vec()))
}

pub fn topic(c: &Client) -> Value {
    field(c, |m| Value::Str(m.topic.to_string()))
}
pub fn partition(c: &Client) -> Value {
    field(c, |m| Value::Int(m.partition as i64))
}
pub fn offset(c: &Client) -> Value {
    field(c, |m| Value::Int(m.offset))
}
pub fn key(c: &Client) -> Value {
    field(c, |m| text(&m.key))
}
pub fn key_binary(c: &Client) -> Value {
    field(c, |m| binary(&m.key))
}
pub fn value(c: &Client) -> Value {
    field(c, |m| text(&m.value))
}
pub fn value_binary(c: &Client) -> Value {
    field(c, |m| binary(&m.value))
}
pub fn headers(c: &Client) -> Value {
    field(c, |m| {
        let mut text = String::new();
        let headers = m.headers.iter().map(|(k, v)| (k.as_str(), v.as_deref()));
        super::json::push_json_headers(&mut text, headers);
        Value::Str(text)
    })
}
pub fn timestamp(c: &Client) -> Value {
    field(c, |m| {
        Value::Date(time::unix_ms_to_local_date(m.timestamp_ms))
    })
}
pub fn timestamp_ms(c: &Client) -> Value {
    field(c, |m| Value::Int(m.timestamp_ms))
}
