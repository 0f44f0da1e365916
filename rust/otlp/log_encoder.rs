//! `LogEncoder`: `ReadableLogRecord`s in, a serialized `ExportLogsServiceRequest` out,
//! byte for byte what the stock `encode_logs(batch).SerializeToString()` gives.
//!
//! Same shape as `SpanEncoder`: each record is written as it is read, the request's parts
//! are joined detached when it is sent.

use super::builder::{Encoder, Read, RequestBuilder};
use super::encoder::{state, PyEncoder};
use super::logs::{write_log, LogTypes};
use super::types::Types;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Reads `record` into `builder`; a record that cannot be encoded is left out and counted.
pub(crate) fn add_log(
    encoder: &Encoder,
    builder: &mut RequestBuilder,
    record: &Bound<'_, PyAny>,
    types: &Types,
) {
    encoder.add(builder, types, |scratch, pass| {
        let logs = LogTypes::get(record.py())?;
        write_log(scratch, record, types, logs, pass)
    });
}

#[pyclass(frozen, extends = PyEncoder, name = "LogEncoder", module = "spanbatch._core")]
pub struct PyLogEncoder;

#[pymethods]
impl PyLogEncoder {
    #[new]
    fn new() -> PyClassInitializer<Self> {
        PyClassInitializer::from(PyEncoder::default()).add_subclass(Self)
    }

    /// Serializes `records` as the stock `encode_logs(records).SerializeToString()` would.
    ///
    /// Attribute values OTLP cannot carry are left out (as stock does) and counted in
    /// `skipped_values`; a record that cannot be encoded (its body, say) is left out and
    /// counted in `skipped_records`, where the stock encoder would fail the whole batch.
    fn encode<'py>(
        slf: &Bound<'py, Self>,
        records: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        Ok(Self::read(slf, records)?.0.to_bytes(slf.py()))
    }

    /// Reads `records` (counting what `encode` would leave out) into a request not yet
    /// serialized, for a sender to write and send later without the GIL.
    fn read(slf: &Bound<'_, Self>, records: &Bound<'_, PyAny>) -> PyResult<PyLogRequest> {
        let encoder = state(slf);
        let read = encoder.read(records, |b, log, types| add_log(encoder, b, log, types))?;
        Ok(PyLogRequest(read))
    }

    /// Log records left out so far because they could not be encoded.
    #[getter]
    fn skipped_records(slf: &Bound<'_, Self>) -> u64 {
        state(slf).skipped_items()
    }

    fn __repr__(slf: &Bound<'_, Self>) -> String {
        state(slf).describe("LogEncoder", "skipped_records")
    }
}

/// Log records read into an `ExportLogsServiceRequest`, serialized only when sent.
#[pyclass(frozen, name = "LogRequest", module = "spanbatch._core")]
pub struct PyLogRequest(pub(crate) Read);

#[pymethods]
impl PyLogRequest {
    /// The serialized request, as `LogEncoder.encode` returns it.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        self.0.to_bytes(py)
    }

    /// The records it was read from, those left out included: what its export settles.
    fn __len__(&self) -> usize {
        self.0.taken
    }

    /// The records it was read from that could not be encoded, and are not in it.
    #[getter]
    fn left_out(&self) -> u64 {
        self.0.left_out
    }

    fn __repr__(&self) -> String {
        let records = self.0.request.span_count();
        format!("LogRequest(records={records}, taken={})", self.0.taken)
    }
}
