//! Batch codecs. gzip, snappy and lz4 are pure Rust; zstd uses the reference C library.

use std::io::{Read, Write};

use crate::kafka::config::Compression;
use crate::kafka::error::{Error, Result};

pub fn compress(codec: Compression, data: &[u8]) -> Result<Vec<u8>> {
    let fail = |e: std::io::Error| Error::Protocol(format!("{codec:?} compression failed: {e}"));
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(data).map_err(fail)?;
            enc.finish().map_err(fail)
        }
        // Raw snappy blocks: librdkafka, the Java client and kafka-python all read them.
        Compression::Snappy => snap::raw::Encoder::new()
            .compress_vec(data)
            .map_err(|e| Error::Protocol(format!("snappy compression failed: {e}"))),
        // Kafka's lz4 is the LZ4 frame format.
        Compression::Lz4 => {
            let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
            enc.write_all(data).map_err(fail)?;
            enc.finish()
                .map_err(|e| Error::Protocol(format!("lz4 compression failed: {e}")))
        }
        Compression::Zstd => zstd::bulk::compress(data, 1).map_err(fail),
    }
}

/// Java's snappy-java framing ("xerial"): a magic header, then length-prefixed raw blocks.
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";

pub fn decompress(codec: i16, data: &[u8]) -> Result<Vec<u8>> {
    let fail = |what: &str, e: String| Error::Protocol(format!("{what} decompression failed: {e}"));
    match codec {
        0 => Ok(data.to_vec()),
        1 => {
            let mut out = Vec::with_capacity(data.len() * 4);
            flate2::read::MultiGzDecoder::new(data)
                .read_to_end(&mut out)
                .map_err(|e| fail("gzip", e.to_string()))?;
            Ok(out)
        }
        2 => {
            if data.starts_with(XERIAL_MAGIC) && data.len() >= 16 {
                let mut out = Vec::new();
                let mut rest = &data[16..];
                while rest.len() >= 4 {
                    let n = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
                    let block = rest
                        .get(4..4 + n)
                        .ok_or_else(|| fail("snappy", "truncated block".into()))?;
                    out.extend(
                        snap::raw::Decoder::new()
                            .decompress_vec(block)
                            .map_err(|e| fail("snappy", e.to_string()))?,
                    );
                    rest = &rest[4 + n..];
                }
                Ok(out)
            } else {
                snap::raw::Decoder::new()
                    .decompress_vec(data)
                    .map_err(|e| fail("snappy", e.to_string()))
            }
        }
        3 => {
            let mut out = Vec::with_capacity(data.len() * 4);
            lz4_flex::frame::FrameDecoder::new(data)
                .read_to_end(&mut out)
                .map_err(|e| fail("lz4", e.to_string()))?;
            Ok(out)
        }
        4 => {
            let mut out = Vec::new();
            zstd::stream::read::Decoder::new(data)
                .and_then(|mut d| d.read_to_end(&mut out))
                .map_err(|e| fail("zstd", e.to_string()))?;
            Ok(out)
        }
        other => Err(Error::Protocol(format!(
            "unknown compression codec {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..20_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let packed = compress(codec, &data).unwrap();
            assert_eq!(
                decompress(codec.attribute(), &packed).unwrap(),
                data,
                "{codec:?}"
            );
        }
    }

    #[test]
    fn xerial_snappy_is_read() {
        let block = snap::raw::Encoder::new()
            .compress_vec(b"hello xerial")
            .unwrap();
        let mut framed = XERIAL_MAGIC.to_vec();
        framed.extend([0, 0, 0, 1, 0, 0, 0, 1]);
        framed.extend((block.len() as u32).to_be_bytes());
        framed.extend(&block);
        assert_eq!(decompress(2, &framed).unwrap(), b"hello xerial");
    }
}
