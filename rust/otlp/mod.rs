//! OTLP/protobuf encoding of finished spans, for spanbatch's own OTLP exporters.

pub mod compress;
pub mod encoder;
mod groups;
pub mod proto;
mod spans;
pub(crate) mod types;
mod values;
pub(crate) mod write;
