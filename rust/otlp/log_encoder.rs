//! `LogEncoder`: `ReadableLogRecord`s in, a serialized `ExportLogsServiceRequest` out,
//! byte for byte what the stock `encode_logs(batch).SerializeToString()` gives.
//!
//! Same shape as `SpanEncoder`: each record is written as it is read, the request's parts
//! are joined detached when it is sent.

use super::builder::{Encoder, Read, RequestBuilder};
use super::logs::{write_log, LogTypes};
use super::types::Types;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3::{PyTraverseError, PyVisit};

#[pyclass(frozen, name = "LogEncoder", module = "spanbatch._core")]
#[derive(Default)]
pub struct PyLogEncoder {
    pub(crate) encoder: Encoder,
}

impl PyLogEncoder {
    /// Reads `record` into `builder`; a record that cannot be read is left out and counted.
    pub(crate) fn add(
        &self,
        builder: &mut RequestBuilder,
        record: &Bound<'_, PyAny>,
        types: &Types,
    ) {
        self.encoder.add(builder, types, |scratch, pass| {
            let logs = LogTypes::get(record.py())?;
            write_log(scratch, record, types, logs, pass)
        });
    }
}

#[pymethods]
impl PyLogEncoder {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Serializes `records` as the stock `encode_logs(records).SerializeToString()` would.
    ///
    /// Attribute values OTLP cannot carry are left out (as stock does) and counted in
    /// `skipped_values`; a record that cannot be encoded (its body, say) is left out and
    /// counted in `skipped_records`, where the stock encoder would fail the whole batch.
    fn encode<'py>(
        &self,
        py: Python<'py>,
        records: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        Ok(self.read(records)?.0.to_bytes(py))
    }

    /// Reads `records` (counting what `encode` would leave out) into a request not yet
    /// serialized, for a sender to write and send later without the GIL.
    fn read(&self, records: &Bound<'_, PyAny>) -> PyResult<PyLogRequest> {
        let read = self
            .encoder
            .read(records, |b, record, types| self.add(b, record, types))?;
        Ok(PyLogRequest(read))
    }

    /// Attribute values left out so far because OTLP cannot carry them.
    #[getter]
    fn skipped_values(&self) -> u64 {
        self.encoder.skipped_values()
    }

    /// Log records left out so far because they could not be encoded.
    #[getter]
    fn skipped_records(&self) -> u64 {
        self.encoder.skipped_items()
    }

    #[getter]
    fn last_skip_reason(&self) -> Option<String> {
        self.encoder.last_skip_reason()
    }

    fn __repr__(&self) -> String {
        let (resources, scopes) = self.encoder.cached();
        format!(
            "LogEncoder(cached_resources={resources}, cached_scopes={scopes}, skipped_values={}, skipped_records={})",
            self.skipped_values(),
            self.skipped_records(),
        )
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.encoder.traverse(&visit)
    }

    fn __clear__(&self) {
        self.encoder.clear();
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
