//! Span fields that most spans share one object for (the SDK's default status, the API's empty
//! trace state): each is encoded once per object and its bytes reused.

use super::spans::or_empty;
use super::types::Types;
use super::values::{Memo, ReadPass};
use super::wire;
use crate::interned::interned;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

/// Writes the field `encode` makes of `object`: its bytes are reused while spans keep
/// sharing one object, which they mostly do (the SDK's default status, the API's empty
/// trace state).
pub(super) fn write_memoized(
    buf: &mut Vec<u8>,
    object: &Bound<'_, PyAny>,
    pass: &mut ReadPass,
    memo: fn(&mut ReadPass) -> &mut Memo<Vec<u8>>,
    encode: impl FnOnce(&mut ReadPass) -> PyResult<Vec<u8>>,
) -> PyResult<()> {
    if let Some(encoded) = memo(pass).get(object) {
        buf.extend_from_slice(encoded);
        return Ok(());
    }
    let encoded = encode(pass)?;
    buf.extend_from_slice(&encoded);
    memo(pass).remember(object, encoded);
    Ok(())
}

/// Field 3: `key1=value1,key2=value2`, the stock rendering of a `TraceState`; `None` renders as nothing.
pub(super) fn encode_trace_state(
    state: &Bound<'_, PyAny>,
    types: &Types,
    pass: &mut ReadPass,
) -> PyResult<Vec<u8>> {
    let mut encoded = Vec::new();
    wire::string(&mut encoded, 3, &render_trace_state(state, types, pass)?);
    Ok(encoded)
}

fn render_trace_state(
    state: &Bound<'_, PyAny>,
    types: &Types,
    pass: &mut ReadPass,
) -> PyResult<String> {
    let py = state.py();
    if state.is_none() {
        return Ok(String::new());
    }
    let mut out = String::new();
    let mut add = |key: Bound<'_, PyAny>, value: Bound<'_, PyAny>| -> PyResult<()> {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&or_empty(&formatted(key)?, pass)?);
        out.push('=');
        out.push_str(&or_empty(&formatted(value)?, pass)?);
        Ok(())
    };
    if state.get_type().is(types.trace_state.bind(py)) {
        if let Ok(pairs) = state
            .getattr(interned!(py, "_dict"))?
            .cast_exact::<PyDict>()
        {
            for (key, value) in pairs.iter() {
                add(key, value)?;
            }
            return Ok(out);
        }
    }
    for item in state.call_method0(interned!(py, "items"))?.try_iter()? {
        let (key, value) = item?.extract()?;
        add(key, value)?;
    }
    Ok(out)
}

/// `f"{value}"`, as the stock rendering has it: `format(value)`, which is `str(value)` for most
/// objects but not all (a str-mixin `Enum` member formats to its value on Python 3.10).
fn formatted(value: Bound<'_, PyAny>) -> PyResult<Bound<'_, PyAny>> {
    if value.is_exact_instance_of::<PyString>() {
        return Ok(value);
    }
    let py = value.py();
    py.import(interned!(py, "builtins"))?
        .getattr(interned!(py, "format"))?
        .call1((value,))
}
