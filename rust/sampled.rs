//! The one check the span push makes before queueing: is the ended span sampled?
//!
//! The SDK calls `on_end` for every recording span, sampled or not; the stock processor queues
//! only sampled ones. It is the largest part of `on_end`'s own cost, so it reads the SDK's stored
//! context directly where it can.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// Whether an ended span is sampled, reading the SDK's stored context when it has one.
pub(crate) fn is_sampled(span: &Bound<'_, PyAny>) -> bool {
    let py = span.py();
    if let Ok(context) = span.getattr(intern!(py, "_context")) {
        // The SDK's SpanContext is a tuple: (trace_id, span_id, is_remote, trace_flags, ...).
        if let Ok(fields) = context.cast::<PyTuple>() {
            // Borrowed: the tuple holds it while it is read, and no reference count moves.
            if let Some(flags) = fields
                .get_borrowed_item(3)
                .ok()
                .and_then(|f| f.extract::<u64>().ok())
            {
                return flags & 1 == 1;
            }
        }
    }
    // Any other ReadableSpan: the public path, as the stock processor reads it.
    let public = || -> PyResult<bool> {
        let context = span.getattr(intern!(py, "context"))?;
        if !context.is_truthy()? {
            return Ok(false);
        }
        context
            .getattr(intern!(py, "trace_flags"))?
            .getattr(intern!(py, "sampled"))?
            .is_truthy()
    };
    public().unwrap_or(false)
}
