//! OTLP/protobuf encoding of finished spans, for spanbatch's own OTLP exporters.

mod buffers;
pub mod compress;
pub mod encoder;
mod groups;
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
