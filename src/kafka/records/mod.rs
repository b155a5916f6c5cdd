//! Kafka record batches (magic 2): our own codec, because headers must keep order and duplicate
//! names (kafka-protocol's record type keeps them in a map).

mod compression;
mod decode;
mod encode;
mod varint;

pub use decode::{
    decode_batches, next_offset, Batch, BatchHead, Batches, InRecord, RawHeader, RawRecord, Records,
};
pub use encode::{
    encode_batch, record_size, restamp, BatchBuilder, OutRecord, RecordView, Stamp, BATCH_OVERHEAD,
};
