//! `LogEncoder`: `ReadableLogRecord`s in, a serialized `ExportLogsServiceRequest` out,
//! byte for byte what the stock `encode_logs(batch).SerializeToString()` gives.
//!
//! Same shape as `SpanEncoder`: each record is written as it is read, the request's parts
//! are joined detached when it is sent.

use super::builder::{Encoder, RequestBuilder};
use super::logs::{write_log, LogTypes};
use super::types::Types;
use pyo3::prelude::*;

/// Reads `record` into `builder`; a record that cannot be encoded is left out and counted.
pub(crate) fn add_log(
    encoder: &Encoder,
    builder: &mut RequestBuilder,
    record: &Bound<'_, PyAny>,
    types: &Types,
) -> PyResult<()> {
    encoder.add(record.py(), builder, types, |scratch, pass| {
        let logs = LogTypes::get(record.py())?;
        write_log(scratch, record, types, logs, pass)
    })
}

super::encoder::encoder_classes! {
    PyLogEncoder = "LogEncoder", PyLogRequest = "LogRequest" of "ExportLogsServiceRequest";
    records: "Log records", one "record", added by add_log, as stock "encode_logs";
    skipped_records if it "cannot be encoded (its body, say)" (could not be "encoded"),
    too_large_records;
}
