//! The Kafka client core: no 1C types here.
