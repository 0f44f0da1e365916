//! OTLP/protobuf encoding of finished spans and log records, for spanbatch's own OTLP exporters.

mod buffers;
mod builder;
pub mod compress;
pub mod encoder;
mod groups;
pub mod log_encoder;
mod logs;
/// prost's derived messages: the reference our writer is tested against.
#[cfg(test)]
mod proto;
pub mod reader;
mod request;
mod shared_fields;
mod spans;
pub(crate) mod types;
mod values;
mod wire;
