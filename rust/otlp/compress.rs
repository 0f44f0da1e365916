//! Request body compression for OTLP/HTTP: the `gzip` and `deflate` content codings.

use flate2::write::{GzEncoder, ZlibEncoder};
use std::io::Write;

/// A `Content-Encoding` the OTLP/HTTP exporter can send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    None,
    Gzip,
    /// `deflate` means zlib-wrapped DEFLATE (RFC 9110), what Python's `zlib.compress` writes.
    Deflate,
}

impl Codec {
    /// Parses the value of the stock `Compression` enum (`"none"`, `"gzip"`, `"deflate"`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "none" => Some(Self::None),
            "gzip" => Some(Self::Gzip),
            "deflate" => Some(Self::Deflate),
            _ => None,
        }
    }

    /// Compresses `data`; `Codec::None` returns a copy.
    pub fn apply(self, data: &[u8]) -> Vec<u8> {
        // The default level: level 9 (Python's gzip default) costs far more CPU for a few percent.
        let level = flate2::Compression::default();
        // Writing into a Vec cannot fail, so neither can the encoders.
        let finish =
            |result: std::io::Result<Vec<u8>>| result.expect("writing to a Vec cannot fail");
        match self {
            Self::None => data.to_vec(),
            Self::Gzip => {
                let mut encoder = GzEncoder::new(Vec::with_capacity(data.len() / 4), level);
                finish(encoder.write_all(data).and_then(|()| encoder.finish()))
            }
            Self::Deflate => {
                let mut encoder = ZlibEncoder::new(Vec::with_capacity(data.len() / 4), level);
                finish(encoder.write_all(data).and_then(|()| encoder.finish()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::{GzDecoder, ZlibDecoder};
    use std::io::Read;

    fn sample() -> Vec<u8> {
        (0..10_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn gzip_and_deflate_round_trip() {
        let packed = Codec::Gzip.apply(&sample());
        assert_eq!(&packed[..2], &[0x1f, 0x8b]);
        let mut out = Vec::new();
        GzDecoder::new(packed.as_slice())
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, sample());
        let packed = Codec::Deflate.apply(&sample());
        out.clear();
        ZlibDecoder::new(packed.as_slice())
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, sample());
    }

    #[test]
    fn names() {
        for codec in [Codec::None, Codec::Gzip, Codec::Deflate] {
            assert_eq!(
                Codec::parse(&format!("{codec:?}").to_lowercase()),
                Some(codec)
            );
        }
        assert_eq!(Codec::parse("br"), None);
        assert_eq!(Codec::None.apply(&[1, 2]), vec![1, 2]);
    }
}
