//! The OpenTelemetry classes and constants the reader recognises, imported once per interpreter.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

pub struct Types {
    /// Spans of exactly this type are read through their stored `_fields`.
    pub readable_span: Py<PyType>,
    pub event: Py<PyType>,
    pub link: Py<PyType>,
    pub status: Py<PyType>,
    pub span_context: Py<PyType>,
    pub trace_state: Py<PyType>,
    pub bounded_attributes: Py<PyType>,
    pub bounded_list: Py<PyType>,
    pub sequence: Py<PyType>,
    pub mapping: Py<PyType>,
    /// `SpanKind.INTERNAL` … `CONSUMER`; OTLP numbers them from 1 in this order.
    pub span_kinds: [Py<PyAny>; 5],
    /// `StatusCode.UNSET`, `OK`, `ERROR`: OTLP codes 0, 1, 2.
    pub status_codes: [Py<PyAny>; 3],
}

static TYPES: PyOnceLock<Types> = PyOnceLock::new();

fn class(py: Python<'_>, module: &str, name: &str) -> PyResult<Py<PyType>> {
    Ok(py
        .import(module)?
        .getattr(name)?
        .cast_into::<PyType>()?
        .unbind())
}

fn members<const N: usize>(
    py: Python<'_>,
    module: &str,
    enum_name: &str,
    names: [&str; N],
) -> PyResult<[Py<PyAny>; N]> {
    let enum_class = py.import(module)?.getattr(enum_name)?;
    let mut found = Vec::with_capacity(N);
    for name in names {
        found.push(enum_class.getattr(name)?.unbind());
    }
    Ok(found
        .try_into()
        .unwrap_or_else(|_| unreachable!("one member per name")))
}

impl Types {
    pub fn get(py: Python<'_>) -> PyResult<&Types> {
        TYPES.get_or_try_init(py, || {
            Ok(Types {
                readable_span: class(py, "opentelemetry.sdk.trace", "ReadableSpan")?,
                event: class(py, "opentelemetry.sdk.trace", "Event")?,
                link: class(py, "opentelemetry.trace", "Link")?,
                status: class(py, "opentelemetry.trace.status", "Status")?,
                span_context: class(py, "opentelemetry.trace.span", "SpanContext")?,
                trace_state: class(py, "opentelemetry.trace.span", "TraceState")?,
                bounded_attributes: class(py, "opentelemetry.attributes", "BoundedAttributes")?,
                bounded_list: class(py, "opentelemetry.sdk.util", "BoundedList")?,
                sequence: class(py, "collections.abc", "Sequence")?,
                mapping: class(py, "collections.abc", "Mapping")?,
                span_kinds: members(
                    py,
                    "opentelemetry.trace",
                    "SpanKind",
                    ["INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"],
                )?,
                status_codes: members(
                    py,
                    "opentelemetry.trace.status",
                    "StatusCode",
                    ["UNSET", "OK", "ERROR"],
                )?,
            })
        })
    }
}
