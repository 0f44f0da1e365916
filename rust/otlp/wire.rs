//! Protobuf fields written straight into one growing buffer.
//!
//! Keys and varints are prost's own encoders; what is ours is the order and the lengths.
//! Callers write fields in tag order and these helpers leave proto3 defaults out, as upb
//! (the stock encoder's runtime) and prost do, so equal messages give identical bytes.
//! A nested message is written in place behind a one-byte length that is widened only
//! when its body reaches 128 bytes: nothing is measured twice, nothing is allocated per
//! message, and a message that fails half-way is undone by truncating the buffer.

use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};

/// A length-delimited field written even when empty: a oneof member or a present message.
pub fn len_field(buf: &mut Vec<u8>, tag: u32, value: &[u8]) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(value.len() as u64, buf);
    buf.extend_from_slice(value);
}

/// A `string` or `bytes` field; empty means unset.
pub fn bytes(buf: &mut Vec<u8>, tag: u32, value: &[u8]) {
    if !value.is_empty() {
        len_field(buf, tag, value);
    }
}

/// A `string` field; empty means unset.
pub fn string(buf: &mut Vec<u8>, tag: u32, value: &str) {
    bytes(buf, tag, value.as_bytes());
}

/// An `int64` (or a sign-extended `int32`) as the varint protobuf writes: its two's complement.
#[allow(clippy::cast_sign_loss)] // the point
pub fn int64(value: i64) -> u64 {
    value as u64
}

/// A varint field (`uint32`, `int32`, `int64`, `bool`) written even when zero: a oneof member.
pub fn varint_field(buf: &mut Vec<u8>, tag: u32, value: u64) {
    encode_key(tag, WireType::Varint, buf);
    encode_varint(value, buf);
}

/// A varint field; zero means unset. A negative `int32` or `int64` is passed sign-extended.
pub fn varint(buf: &mut Vec<u8>, tag: u32, value: u64) {
    if value != 0 {
        varint_field(buf, tag, value);
    }
}

/// A `fixed64` or `double` field written even when zero: a oneof member.
pub fn fixed64_field(buf: &mut Vec<u8>, tag: u32, value: u64) {
    encode_key(tag, WireType::SixtyFourBit, buf);
    buf.extend_from_slice(&value.to_le_bytes());
}

/// A `fixed64` field; zero means unset.
pub fn fixed64(buf: &mut Vec<u8>, tag: u32, value: u64) {
    if value != 0 {
        fixed64_field(buf, tag, value);
    }
}

/// A `fixed32` field; zero means unset.
pub fn fixed32(buf: &mut Vec<u8>, tag: u32, value: u32) {
    if value != 0 {
        encode_key(tag, WireType::ThirtyTwoBit, buf);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

/// A nested message, written by `body` in place. On an error the buffer holds a partial
/// field: the caller that recovers truncates it to where it was.
pub fn message<E>(
    buf: &mut Vec<u8>,
    tag: u32,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    encode_key(tag, WireType::LengthDelimited, buf);
    let at = buf.len();
    buf.push(0);
    body(buf)?;
    let end = buf.len();
    let len = (end - at - 1) as u64;
    let width = encoded_len_varint(len);
    if width > 1 {
        buf.resize(end + width - 1, 0);
        buf.copy_within(at + 1..end, at + width);
    }
    encode_varint(len, &mut &mut buf[at..at + width]);
    Ok(())
}

/// The size of a length-delimited field whose body is `body` bytes long.
pub fn field_len(tag: u32, body: usize) -> usize {
    prost::encoding::key_len(tag) + encoded_len_varint(body as u64) + body
}

/// The size of `string(tag, value)`.
pub fn string_len(tag: u32, value: &str) -> usize {
    if value.is_empty() {
        0
    } else {
        field_len(tag, value.len())
    }
}

/// The header of a length-delimited field whose `len`-byte body the caller writes next.
pub fn open(buf: &mut Vec<u8>, tag: u32, len: usize) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::proto::{AnyValue, ArrayValue, KeyValue, Span, Status, Value};
    use prost::Message;
    use std::convert::Infallible;

    fn written(write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut buf = Vec::new();
        write(&mut buf);
        buf
    }

    fn key_value(buf: &mut Vec<u8>, key: &str, value: impl FnOnce(&mut Vec<u8>)) {
        message(buf, 1, |b| {
            string(b, 1, key);
            message(b, 2, |b| {
                value(b);
                Ok::<_, Infallible>(())
            })
        })
        .unwrap();
    }

    fn prost_key_value(key: &str, value: Option<Value>) -> Vec<u8> {
        let kv = KeyValue {
            key: key.into(),
            value: Some(AnyValue { value }),
        };
        // As field 1 of an enclosing message, the way `key_value` writes it.
        written(|b| len_field(b, 1, &kv.encode_to_vec()))
    }

    #[test]
    fn oneof_zero_values_are_written() {
        // Presence matters in a oneof: an empty string, a 0 or false must reach the wire.
        type Write = fn(&mut Vec<u8>);
        let cases: [(Value, Write); 5] = [
            (Value::String(String::new()), |b| len_field(b, 1, b"")),
            (Value::Bool(false), |b| varint_field(b, 2, 0)),
            (Value::Int(0), |b| varint_field(b, 3, 0)),
            (Value::Double(0.0), |b| fixed64_field(b, 4, 0)),
            (Value::Bytes(Vec::new()), |b| len_field(b, 7, b"")),
        ];
        for (value, write) in cases {
            assert_eq!(
                written(|b| key_value(b, "k", write)),
                prost_key_value("k", Some(value))
            );
        }
    }

    #[test]
    fn negative_and_extreme_scalars_match_prost() {
        for int in [i64::MIN, -1, 1, i64::MAX] {
            assert_eq!(
                written(|b| key_value(b, "i", |b| varint_field(b, 3, int64(int)))),
                prost_key_value("i", Some(Value::Int(int)))
            );
        }
        for double in [f64::NAN, f64::NEG_INFINITY, -0.0, 1.5e300] {
            assert_eq!(
                written(|b| key_value(b, "d", |b| fixed64_field(b, 4, double.to_bits()))),
                prost_key_value("d", Some(Value::Double(double)))
            );
        }
        let status = Status {
            message: "m".into(),
            code: -3,
        };
        let ours = written(|b| {
            string(b, 2, "m");
            varint(b, 3, int64((-3i32).into()));
        });
        assert_eq!(ours, status.encode_to_vec());
    }

    #[test]
    fn empty_value_message_is_still_present() {
        assert_eq!(
            written(|b| key_value(b, "", |_| {})),
            prost_key_value("", None)
        );
    }

    #[test]
    fn lengths_are_widened_across_varint_boundaries() {
        for size in [0, 1, 126, 127, 128, 129, 16_383, 16_384, 70_000] {
            let text = "x".repeat(size);
            let nested = Value::Array(ArrayValue {
                values: vec![AnyValue {
                    value: Some(Value::String(text.clone())),
                }],
            });
            let ours = written(|b| {
                key_value(b, "a", |b| {
                    message(b, 5, |b| {
                        message(b, 1, |b| {
                            len_field(b, 1, text.as_bytes());
                            Ok::<_, Infallible>(())
                        })
                    })
                    .unwrap();
                });
            });
            assert_eq!(ours, prost_key_value("a", Some(nested)), "size {size}");
        }
    }

    #[test]
    fn defaults_are_left_out_in_tag_order() {
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "n".into(),
            kind: 1,
            end_time_unix_nano: 9,
            status: Some(Status::default()),
            flags: 0x100,
            ..Span::default()
        };
        let ours = written(|b| {
            bytes(b, 1, &[1; 16]);
            bytes(b, 2, &[2; 8]);
            string(b, 3, "");
            bytes(b, 4, &[]);
            string(b, 5, "n");
            varint(b, 6, 1);
            fixed64(b, 7, 0);
            fixed64(b, 8, 9);
            varint(b, 10, 0);
            len_field(b, 15, &[]);
            fixed32(b, 16, 0x100);
        });
        assert_eq!(ours, span.encode_to_vec());
    }

    #[test]
    fn a_failed_message_leaves_what_the_caller_truncates() {
        let mut buf = vec![7];
        let failed = message(&mut buf, 1, |b| {
            b.extend_from_slice(&[0; 300]);
            Err("unreadable")
        });
        assert_eq!(failed, Err("unreadable"));
        buf.truncate(1);
        assert_eq!(buf, [7]);
    }

    #[test]
    fn sizes_match_what_is_written() {
        for size in [0, 5, 127, 128, 20_000] {
            let text = "y".repeat(size);
            assert_eq!(written(|b| string(b, 3, &text)).len(), string_len(3, &text));
            assert_eq!(
                written(|b| len_field(b, 2, text.as_bytes())).len(),
                field_len(2, size)
            );
        }
    }
}
