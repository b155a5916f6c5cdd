//! kafka1c: an Apache Kafka client for 1C:Enterprise, packaged as a Native API add-in.
//!
//! Layers, outermost first:
//! - [`boundary`]: the 1C Native API ABI (exports, vtables, tVariant, host memory). Knows nothing of Kafka.
//! - [`component`]: the `Client` object 1C sees: method/property table, argument conversion, errors.
//! - [`kafka`]: the Kafka client core, a plain Rust library with no 1C types.

mod boundary;
mod component;
pub mod kafka;

/// Classes the library offers to 1C (GetClassNames / GetClassObject).
const ADDIN_CLASSES: &[(&str, boundary::Factory)] = &[("Client", component::create)];
