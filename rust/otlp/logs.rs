//! Writes one `ReadableLogRecord` as an OTLP `LogRecord`.
//!
//! Mirrors the stock `_encode_log`: what it reads, and the values it refuses (then failing
//! its whole batch, where the caller leaves out this one record). A `ReadableLogRecord` or
//! API `LogRecord` of exactly the SDK's type is read through its instance dict (its fields
//! are plain attributes); any other type through its public attributes, so an override is
//! honoured. Fields are written in tag order.

use super::builder::Placed;
use super::spans::or_empty;
use super::types::{made_once, Types};
use super::values::{attributes, body, dropped_of, fields_of, or_zero, stored, Place, ReadPass};
use super::wire;
use crate::interned::interned;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyInt, PyString, PyType};

/// The log classes the writer recognises, imported on first use (span users never pay for them).
pub struct LogTypes {
    readable_log_record: Py<PyType>,
    log_record: Py<PyType>,
    /// Each `SeverityNumber` member with its value: compared by identity, which skips the
    /// `value` property lookup the stock encoder makes.
    severities: Vec<(Py<PyAny>, i32)>,
}

static LOG_TYPES: PyOnceLock<LogTypes> = PyOnceLock::new();

impl LogTypes {
    pub fn get(py: Python<'_>) -> PyResult<&LogTypes> {
        made_once(&LOG_TYPES, py, || {
            let class = |module: &str, name: &str| -> PyResult<Py<PyType>> {
                Ok(py
                    .import(module)?
                    .getattr(name)?
                    .cast_into::<PyType>()?
                    .unbind())
            };
            let severity = py
                .import("opentelemetry._logs")?
                .getattr("SeverityNumber")?;
            let mut severities = Vec::new();
            for member in severity.try_iter()? {
                let member = member?;
                let value = member.getattr("value")?.extract()?;
                severities.push((member.unbind(), value));
            }
            Ok(LogTypes {
                readable_log_record: class("opentelemetry.sdk._logs", "ReadableLogRecord")?,
                log_record: class("opentelemetry._logs", "LogRecord")?,
                severities,
            })
        })
    }
}

/// An attribute of an object, from its instance dict when it is exactly the SDK's type.
fn get<'py>(
    object: &Bound<'py, PyAny>,
    fields: Option<&Bound<'py, PyDict>>,
    name: &Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyAny>> {
    match fields {
        Some(fields) => stored(object, fields, name),
        None => object.getattr(name),
    }
}

/// Field 2: `getattr(severity_number, "value", None)`, an enum (int32) written sign-extended.
fn severity(value: &Bound<'_, PyAny>, logs: &LogTypes) -> PyResult<u64> {
    let py = value.py();
    if let Some((_, number)) = logs.severities.iter().find(|(m, _)| value.is(m)) {
        return Ok(wire::int64((*number).into()));
    }
    match value.getattr_opt(interned!(py, "value"))? {
        Some(number) => Ok(wire::int64(or_zero::<i32>(&number)?.into())),
        None => Ok(0),
    }
}

/// Fields 9 and 10: a trace or span id of `width` bytes, left unset when it `== 0`, else
/// its big-endian bytes, as `int.to_bytes` gives them (which refuses what does not fit).
fn id(buf: &mut Vec<u8>, tag: u32, value: &Bound<'_, PyAny>, width: usize) -> PyResult<()> {
    if let Ok(int) = value.cast::<PyInt>() {
        let id: u128 = int.extract()?;
        if width < 16 && id >> (8 * width) != 0 {
            return Err(PyValueError::new_err("int too big to convert"));
        }
        if id != 0 {
            wire::bytes(buf, tag, &id.to_be_bytes()[16 - width..]);
        }
        return Ok(());
    }
    if value.eq(0)? {
        return Ok(());
    }
    Err(PyTypeError::new_err(format!(
        "a trace or span id must be an int, not {}",
        value.get_type().name()?
    )))
}

/// Field 8: `int(trace_flags)`, a fixed32.
fn flags(value: &Bound<'_, PyAny>) -> PyResult<u32> {
    if let Ok(int) = value.cast::<PyInt>() {
        return int.extract();
    }
    value.py().get_type::<PyInt>().call1((value,))?.extract()
}

/// Writes the body of the OTLP `LogRecord` for `record` into `buf`; its resource and scope.
pub fn write_log<'py>(
    buf: &mut Vec<u8>,
    record: &Bound<'py, PyAny>,
    types: &Types,
    logs: &LogTypes,
    pass: &mut ReadPass,
) -> PyResult<Placed<'py>> {
    let py = record.py();
    let outer = fields_of(record, &logs.readable_log_record)?;
    let resource = get(record, outer.as_ref(), interned!(py, "resource"))?;
    let scope = get(
        record,
        outer.as_ref(),
        interned!(py, "instrumentation_scope"),
    )?;
    let scope = scope.is_truthy()?.then_some(scope);
    let log = get(record, outer.as_ref(), interned!(py, "log_record"))?;
    let fields = fields_of(&log, &logs.log_record)?;
    macro_rules! field {
        ($name:literal) => {
            get(&log, fields.as_ref(), interned!(py, $name))
        };
    }

    wire::fixed64(buf, 1, or_zero(&field!("timestamp")?)?);
    wire::varint(buf, 2, severity(&field!("severity_number")?, logs)?);
    wire::string(buf, 3, &or_empty(&field!("severity_text")?, pass)?);
    body(buf, 5, &field!("body")?, types, pass).map_err(|_| {
        PyValueError::new_err("the log record's body holds a value OTLP cannot carry")
    })?;
    let attrs = field!("attributes")?;
    attributes(buf, 6, &attrs, Place::LogRecord, types, pass)?;
    let dropped: u32 = match outer {
        Some(_) => dropped_of(&attrs, &types.bounded_attributes)?,
        None => or_zero(&record.getattr(interned!(py, "dropped_attributes"))?)?,
    };
    wire::varint(buf, 7, dropped.into());
    wire::fixed32(buf, 8, flags(&field!("trace_flags")?)?);
    id(buf, 9, &field!("trace_id")?, 16)?;
    id(buf, 10, &field!("span_id")?, 8)?;
    wire::fixed64(buf, 11, or_zero(&field!("observed_timestamp")?)?);
    wire::string(buf, 12, &or_empty(&field!("event_name")?, pass)?);
    Ok((resource, scope))
}
