//! Produce, ProduceAsync, Flush, ProduceBatch.

use std::borrow::Cow;

use super::args::Args;
use super::client::Client;
use super::error::CallError;
use super::headers::{self, Headers};
use crate::boundary::Value;

/// One record as 1C described it.
pub struct Outgoing {
    pub topic: String,
    pub value: Vec<u8>,
    pub key: Option<Vec<u8>>,
    pub headers: Headers,
    pub partition: Option<i32>,
}

/// The optional arguments of Produce and ProduceAsync after (Topic, Value, Key): Headers and
/// Partition.
fn headers_and_partition(a: &Args) -> Result<(Headers, Option<i32>), CallError> {
    let headers = match a.opt_string(3)? {
        None => Vec::new(),
        Some(text) => headers::parse(text).map_err(|(en, ru)| a.invalid(3, en, ru))?,
    };
    let partition = a.opt_int_in(4, 0, i32::MAX as i64)?.map(|p| p as i32);
    Ok((headers, partition))
}

/// Produce's arguments: (Topic, Value, Key, Headers, Partition).
fn outgoing(a: &mut Args) -> Result<Outgoing, CallError> {
    let topic = a.take_string(0)?;
    let value = a.take_bytes(1)?;
    let key = a.opt_key(2)?.map(Cow::into_owned);
    let (headers, partition) = headers_and_partition(a)?;
    Ok(Outgoing {
        topic,
        value,
        key,
        headers,
        partition,
    })
}

pub fn produce(c: &mut Client, a: &mut Args) -> Result<Value, CallError> {
    let record = outgoing(a)?;
    let session = c.session()?;
    session.produce(record).map(Value::Int)
}

/// Reads its arguments in place: the topic and value go from the call's own strings straight
/// into the batch, with no copies made for the record on the way.
pub fn produce_async(c: &mut Client, a: &mut Args) -> Result<Value, CallError> {
    let topic = a.string(0)?;
    let value = a.bytes_ref(1)?;
    let key = a.opt_key(2)?;
    let (headers, partition) = headers_and_partition(a)?;
    let session = c.session()?;
    session
        .produce_async(topic, partition, key.as_deref(), value, headers)
        .map(|id| Value::Int(id as i64))
}

pub fn flush(c: &mut Client, a: &mut Args) -> Result<Value, CallError> {
    let timeout = a.int_in(0, 0, i32::MAX as i64)?;
    let session = c.session()?;
    session.flush(timeout as u64).map(Value::Wide)
}

pub fn produce_batch(c: &mut Client, a: &mut Args) -> Result<Value, CallError> {
    let topic = a.string(0)?.to_string();
    let body = a.string(1)?;
    let records =
        super::rest_proxy::parse_produce(body).map_err(|(en, ru)| a.invalid(1, en, ru))?;
    let session = c.session()?;
    session.produce_batch(&topic, &records).map(Value::Str)
}
