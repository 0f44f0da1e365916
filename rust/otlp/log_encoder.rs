//! `LogEncoder`: `ReadableLogRecord`s in, a serialized `ExportLogsServiceRequest` out,
//! byte for byte what the stock `encode_logs(batch).SerializeToString()` gives.
//!
//! Same shape as `SpanEncoder`: each record is written as it is read, the request's parts
//! are joined detached when it is sent.

use super::builder::{Encoder, Read, RequestBuilder};
use super::encoder::{base, state, PyEncoder, PyRequest};
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

impl PyLogEncoder {
    fn read_records(slf: &Bound<'_, Self>, records: &Bound<'_, PyAny>) -> PyResult<Read> {
        let encoder = state(slf);
        encoder.read(records, |b, log, types| add_log(encoder, b, log, types))
    }
}

#[pymethods]
impl PyLogEncoder {
    /// `max_request_bytes`: no request it makes is larger (serialized, before compression);
    /// a batch over it is cut into parts, and a record over it alone is left out.
    #[new]
    #[pyo3(signature = (max_request_bytes = None))]
    fn new(max_request_bytes: Option<usize>) -> PyResult<PyClassInitializer<Self>> {
        Ok(base(max_request_bytes)?.add_subclass(Self))
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
        Ok(Self::read_records(slf, records)?.to_bytes(slf.py()))
    }

    /// Reads `records` (counting what `encode` would leave out) into a request not yet
    /// serialized, for a sender to write and send later without the GIL.
    fn read<'py>(
        slf: &Bound<'py, Self>,
        records: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyLogRequest>> {
        PyLogRequest::wrap(slf.py(), Self::read_records(slf, records)?)
    }

    /// Log records left out so far because they could not be encoded.
    #[getter]
    fn skipped_records(slf: &Bound<'_, Self>) -> u64 {
        state(slf).skipped_items()
    }

    /// Log records left out so far because each alone was over `max_request_bytes`.
    #[getter]
    fn too_large_records(slf: &Bound<'_, Self>) -> u64 {
        state(slf).too_large_items()
    }

    fn __repr__(slf: &Bound<'_, Self>) -> String {
        state(slf).describe("LogEncoder", "records")
    }
}

/// Log records read into an `ExportLogsServiceRequest`.
#[pyclass(frozen, extends = PyRequest, name = "LogRequest", module = "spanbatch._core")]
pub struct PyLogRequest;

impl PyLogRequest {
    pub(crate) fn wrap(py: Python<'_>, read: Read) -> PyResult<Bound<'_, Self>> {
        Bound::new(
            py,
            PyClassInitializer::from(PyRequest(read)).add_subclass(Self),
        )
    }
}

#[pymethods]
impl PyLogRequest {
    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        PyRequest::describe(slf.as_any(), "records")
    }
}
