//! The Kafka side of a Client between Connect and Close: the only place the component talks to
//! the Kafka core. Temporary until the core lands: every call fails with "not implemented yet".

use super::consume::Position;
use super::error::CallError;
use super::produce::Outgoing;
use super::rest_proxy::BatchRecord;

/// A received message, kept for the message properties until the next Poll.
pub struct Message {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp_ms: i64,
}

pub enum ConnectError {
    /// The settings text is wrong: (en, ru) details for an argument error.
    Settings(String, String),
    Other(CallError),
}

pub struct Session {}

fn pending<T>() -> Result<T, CallError> {
    Err(CallError::failed(
        "not implemented yet",
        "ещё не реализовано",
    ))
}

impl Session {
    pub fn connect(_settings: &str) -> Result<Session, ConnectError> {
        pending().map_err(ConnectError::Other)
    }
    pub fn produce(&self, _r: Outgoing) -> Result<i64, CallError> {
        pending()
    }
    pub fn produce_async(&self, _r: Outgoing) -> Result<u64, CallError> {
        pending()
    }
    pub fn flush(&self, _timeout_ms: u64) -> Result<String, CallError> {
        pending()
    }
    pub fn produce_batch(
        &self,
        _topic: &str,
        _records: Vec<BatchRecord>,
    ) -> Result<String, CallError> {
        pending()
    }
    pub fn create_topic(
        &self,
        _name: String,
        _partitions: i32,
        _rf: i16,
        _configs: Vec<(String, String)>,
    ) -> Result<(), CallError> {
        pending()
    }
    pub fn delete_topic(&self, _name: String) -> Result<(), CallError> {
        pending()
    }
    pub fn list_topics(&self) -> Result<String, CallError> {
        pending()
    }
    pub fn subscribe(
        &mut self,
        _topics: Vec<String>,
        _group: Option<String>,
    ) -> Result<(), CallError> {
        pending()
    }
    pub fn poll(&mut self, _timeout_ms: u64) -> Result<Option<Message>, CallError> {
        pending()
    }
    pub fn poll_batch(&mut self, _max: usize, _timeout_ms: u64) -> Result<String, CallError> {
        pending()
    }
    pub fn commit(&mut self) -> Result<(), CallError> {
        pending()
    }
    pub fn commit_offsets(&mut self, _offsets: Vec<(String, i32, i64)>) -> Result<(), CallError> {
        pending()
    }
    pub fn seek(
        &mut self,
        _topic: String,
        _partition: i32,
        _position: Position,
    ) -> Result<(), CallError> {
        pending()
    }
    pub fn assignment(&mut self) -> Result<String, CallError> {
        pending()
    }
    pub fn close(self) {}
}
