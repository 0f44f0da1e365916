//! The one check the span push makes before queueing: is the ended span sampled?
//!
//! The SDK calls `on_end` for every recording span, sampled or not; the stock processor queues
//! only sampled ones, reading `span.context.trace_flags.sampled`. It is the largest part of
//! `on_end`'s own cost, so for a span whose class reads `context` with the SDK's own property
//! it reads what that property returns, the stored `_context`, directly. Decided on the class,
//! never on the instance: a `NonRecordingSpan` has a `_context` too but no `context` (stock
//! raises `AttributeError`, and so do we), and a subclass may override `context`. Decided on what
//! it stores too: only the API's `SpanContext` holding its `TraceFlags` is read directly.

use crate::interned::interned;
use crate::otlp::types::Types;
use pyo3::exceptions::{PyAttributeError, PyException};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyTuple, PyType};

/// The first span classes found to read `context` with the SDK's property (in practice the SDK's
/// `_Span`, the only one a provider makes, and `ReadableSpan` if an application makes its own),
/// kept for good: comparing them costs a load each, where the check walks the MRO (several hundred
/// ns). More than one, so that a hand-made `ReadableSpan` ended first does not leave every SDK span
/// walking it. Filled in order, each stored with the GIL held and no Python code run (see
/// `interned`), so a `fork()` from another thread cannot leave a child waiting on one.
static STORED_CONTEXT_CLASSES: [PyOnceLock<Py<PyType>>; 4] = [const { PyOnceLock::new() }; 4];

/// Whether `span`'s class reads `context` with the SDK's `ReadableSpan.context` property (not
/// overridden). Stock never looks at the class: what looking raises (a metaclass's own lookup)
/// means "ask the span", except an interrupt (not an `Exception`: a Ctrl-C that landed there), the
/// application's.
///
/// The known classes are compared by pointer (`is_exactly`).
fn reads_stored_context(span: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = span.py();
    let mut stored = STORED_CONTEXT_CLASSES.iter().map_while(|slot| slot.get(py));
    if stored.any(|stored| is_exactly(span, stored)) {
        return Ok(true);
    }
    looked_up(&span.get_type())
}

/// Whether `object`'s class is `class` itself. By pointer, the class not taken: `get_type` and
/// `is_exact_instance` take it, which moves its reference count twice, two calls into the
/// interpreter under the stable ABI (callgrind: each cost `on_end` 4 to 8 instructions).
fn is_exactly(object: &Bound<'_, PyAny>, class: &Py<PyType>) -> bool {
    object.get_type_ptr() == class.as_ptr().cast()
}

/// `reads_stored_context` for a class not known yet: it walks the class's MRO.
#[cold]
fn looked_up(class: &Bound<'_, PyType>) -> PyResult<bool> {
    let py = class.py();
    match inherits_stored_context(class) {
        Ok(inherits) => Ok(inherits),
        Err(error) if error.is_instance_of::<PyException>(py) => Ok(false),
        Err(interrupt) => Err(interrupt),
    }
}

fn inherits_stored_context(class: &Bound<'_, PyType>) -> PyResult<bool> {
    let py = class.py();
    let name = interned!(py, "context");
    for base in class.mro().iter() {
        let base = base.cast_into::<PyType>()?;
        if base.name()? == "ReadableSpan" && base.module()? == "opentelemetry.sdk.trace" {
            let same = class.getattr(name)?.is(&base.getattr(name)?);
            if same {
                // The first free slot; another thread may take it meanwhile, and keeps it.
                if let Some(free) = STORED_CONTEXT_CLASSES
                    .iter()
                    .find(|slot| slot.get(py).is_none())
                {
                    let _ = free.set(py, class.clone().unbind());
                }
            }
            return Ok(same);
        }
    }
    Ok(false)
}

/// Whether an ended span is sampled, reading the SDK's stored context when it has one.
///
/// What reading the public `context` raises reaches the caller, as with the stock processor (whose
/// `span.context.trace_flags.sampled` lets it through to `span.end()`): a Ctrl-C that lands in a
/// span's own property is the application's, and a span that cannot be read is not taken for an
/// unsampled one. A span without a context (None, or any falsy one, as stock tests it) is passed over.
pub(crate) fn is_sampled(span: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = span.py();
    if !reads_stored_context(span)? {
        return is_sampled_as_stock(span);
    }
    match span.getattr(interned!(py, "_context")) {
        Ok(context) => {
            // The API's SpanContext is a tuple: (trace_id, span_id, is_remote, trace_flags, ...).
            // Only it, holding the API's TraceFlags, answers `trace_flags.sampled` with that low
            // bit: a context built by hand (flags a plain int, a plain tuple) goes the public way.
            let types = Types::get(py)?;
            if !is_exactly(&context, &types.span_context) {
                return is_sampled_as_stock(span);
            }
            if let Ok(fields) = context.cast::<PyTuple>() {
                // Borrowed: the tuple holds it while it is read, and no reference count moves.
                if let Some(flags) = fields
                    .get_borrowed_item(3)
                    .ok()
                    .filter(|f| is_exactly(f, &types.trace_flags))
                    // As i64, which PyO3 reads with one call where u64 first checks the type (a call
                    // under the stable ABI): an int, as TraceFlags is. Its low bit is Python's `& 1`
                    // for a negative one too; one out of range goes the public way, as before.
                    .and_then(|f| f.extract::<i64>().ok())
                {
                    return Ok(flags & 1 == 1);
                }
            }
        }
        // Only a span without the SDK's internals goes the public way; anything else it raised is real.
        Err(error) if !error.is_instance_of::<PyAttributeError>(py) => return Err(error),
        Err(_) => {}
    }
    is_sampled_as_stock(span)
}

/// The public path, as the stock processor reads it.
fn is_sampled_as_stock(span: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = span.py();
    let context = span.getattr(interned!(py, "context"))?;
    if !context.is_truthy()? {
        return Ok(false);
    }
    context
        .getattr(interned!(py, "trace_flags"))?
        .getattr(interned!(py, "sampled"))?
        .is_truthy()
}
