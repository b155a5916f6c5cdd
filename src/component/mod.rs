//! The `Client` component 1C sees: member table, argument conversion, errors, dispatch.
//! Thin by design: Kafka work happens in [`crate::kafka`].

mod admin;
mod answers;
mod args;
mod client;
mod connection;
mod consume;
mod error;
mod headers;
mod json;
mod kafka_errors;
mod lang;
mod produce;
mod props;
mod rest_proxy;
mod session;
mod table;
mod time;

use crate::boundary::AddIn;

/// Factory registered with the boundary for the `Client` class.
pub fn create() -> Box<dyn AddIn> {
    Box::<client::Client>::default()
}
