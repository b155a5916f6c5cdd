//! The Kafka client core: our own client on the `kafka-protocol` message codecs, tokio and
//! no 1C types, usable as a plain Rust library.

pub mod config;
pub mod error;
pub mod records;
pub mod runtime;
pub mod tls;

pub use config::Config;
pub use error::{Error, Result};
pub mod admin;
pub mod client;
pub mod cluster;
pub mod connection;
pub mod partitioner;
pub mod producer;
pub mod versions;

pub use client::Client;
pub use producer::{
    Delivered, DeliveryReport, FlushOutcome, Record, RecordRef, ReportGroup, Reports,
};
pub mod consumer;
