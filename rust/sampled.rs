//! The one check the span push makes before queueing: is the ended span sampled?
//!
//! The SDK calls `on_end` for every recording span, sampled or not; the stock processor queues
//! only sampled ones. It is the largest part of `on_end`'s own cost, so it reads the SDK's stored
//! context directly where it can.

use crate::interned::interned;
use pyo3::exceptions::PyAttributeError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// Whether an ended span is sampled, reading the SDK's stored context when it has one.
///
/// What reading the public `context` raises reaches the caller, as with the stock processor (whose
/// `span.context.trace_flags.sampled` lets it through to `span.end()`): a Ctrl-C that lands in a
/// span's own property is the application's, and a span that cannot be read is not taken for an
/// unsampled one. A span without a context (None, or any falsy one, as stock tests it) is passed over.
pub(crate) fn is_sampled(span: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = span.py();
    match span.getattr(interned!(py, "_context")) {
        Ok(context) => {
            // The SDK's SpanContext is a tuple: (trace_id, span_id, is_remote, trace_flags, ...).
            if let Ok(fields) = context.cast::<PyTuple>() {
                // Borrowed: the tuple holds it while it is read, and no reference count moves.
                if let Some(flags) = fields
                    .get_borrowed_item(3)
                    .ok()
                    .and_then(|f| f.extract::<u64>().ok())
                {
                    return Ok(flags & 1 == 1);
                }
            }
        }
        // Only a span without the SDK's internals goes the public way; anything else it raised is real.
        Err(error) if !error.is_instance_of::<PyAttributeError>(py) => return Err(error),
        Err(_) => {}
    }
    // Any other ReadableSpan: the public path, as the stock processor reads it.
    let context = span.getattr(interned!(py, "context"))?;
    if !context.is_truthy()? {
        return Ok(false);
    }
    context
        .getattr(interned!(py, "trace_flags"))?
        .getattr(interned!(py, "sampled"))?
        .is_truthy()
}
