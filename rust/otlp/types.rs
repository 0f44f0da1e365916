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
    pub trace_flags: Py<PyType>,
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

/// The value of `cell`, made by `make` on first use. `make` runs Python code, during which the
/// interpreter may switch threads: were it run inside the cell's own initialisation, a `fork()`
/// from another thread then would leave the child's cell initialising for ever, and any thread
/// that asks for it there would wait for ever (a pre-fork server's child, forked while its
/// parent's worker read its first batch, never exported). So the value is made outside the cell
/// and then stored, which runs no Python code; threads that race each make one, the first stored
/// is kept.
///
/// Inlined, with the making out of line: `on_end` asks for `Types` once per span, and a call that
/// saves the registers the making needs cost 47 instructions of its ~920 (callgrind).
#[inline]
pub fn made_once<'a, T>(
    cell: &'a PyOnceLock<T>,
    py: Python<'_>,
    make: impl FnOnce() -> PyResult<T>,
) -> PyResult<&'a T> {
    match cell.get(py) {
        Some(value) => Ok(value),
        None => make_and_store(cell, py, make),
    }
}

#[cold]
#[inline(never)]
fn make_and_store<'a, T>(
    cell: &'a PyOnceLock<T>,
    py: Python<'_>,
    make: impl FnOnce() -> PyResult<T>,
) -> PyResult<&'a T> {
    let value = make()?;
    // Another thread may have stored its own meanwhile: as good; this one is dropped.
    let _ = cell.set(py, value);
    Ok(cell
        .get(py)
        .expect("stored just above, by this thread or another"))
}

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
    #[inline]
    pub fn get(py: Python<'_>) -> PyResult<&Types> {
        made_once(&TYPES, py, || {
            Ok(Types {
                readable_span: class(py, "opentelemetry.sdk.trace", "ReadableSpan")?,
                event: class(py, "opentelemetry.sdk.trace", "Event")?,
                link: class(py, "opentelemetry.trace", "Link")?,
                status: class(py, "opentelemetry.trace.status", "Status")?,
                span_context: class(py, "opentelemetry.trace.span", "SpanContext")?,
                trace_flags: class(py, "opentelemetry.trace.span", "TraceFlags")?,
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
