//! Attribute values and attribute maps, read from Python into OTLP `AnyValue`s.
//!
//! Mirrors `_encode_value` / `_encode_attributes` of opentelemetry-exporter-otlp-proto-common:
//! the same type order (None, bool, str, int, float, bytes, Sequence, Mapping), and a value
//! it cannot carry (another type, an int outside int64, a str that is not valid UTF-8)
//! drops that one key, as the stock encoder does, and is counted instead of raising.

use super::proto::{AnyValue, ArrayValue, KeyValue, KeyValueList, Value};
use super::types::Types;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use rustc_hash::FxHashMap;

/// Deeper nesting is treated as unencodable; it bounds our stack where Python would
/// have raised `RecursionError` (a self-containing list, say).
const MAX_DEPTH: u32 = 64;

/// A value OTLP cannot carry; its key is left out.
pub struct Unencodable;

/// Distinct strings one pass remembers at most.
const STRING_CACHE_LIMIT: usize = 4096;

/// One read pass: what it skipped, and the strings it has already copied.
#[derive(Default)]
pub struct ReadPass {
    pub skipped_values: u64,
    pub skipped_spans: u64,
    /// Keys, names and many values are the same `str` objects span after span; copying
    /// each once saves a UTF-8 encoding and two allocations per use. The entry holds
    /// its object, so the address stays that object's until the pass ends. Keys are
    /// addresses, so the fast Fx hash is enough.
    strings: FxHashMap<usize, (Py<PyString>, String)>,
    pub statuses: Memo<Option<super::proto::Status>>,
    pub trace_states: Memo<String>,
}

impl ReadPass {
    pub fn text(&mut self, value: &Bound<'_, PyString>) -> Result<String, Unencodable> {
        let address = value.as_ptr() as usize;
        if let Some((_, text)) = self.strings.get(&address) {
            return Ok(text.clone());
        }
        let text = owned_str(value)?;
        if self.strings.len() < STRING_CACHE_LIMIT {
            self.strings
                .insert(address, (value.clone().unbind(), text.clone()));
        }
        Ok(text)
    }
}

/// The last object read and what it gave. Spans mostly share one status object (the
/// SDK's default) and one trace state (the API's empty default), so one entry suffices.
pub struct Memo<T> {
    last: Option<(Py<PyAny>, T)>,
}

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Self { last: None }
    }
}

impl<T: Clone> Memo<T> {
    pub fn get(&self, object: &Bound<'_, PyAny>) -> Option<T> {
        self.last
            .as_ref()
            .filter(|(last, _)| object.is(last))
            .map(|(_, value)| value.clone())
    }

    pub fn remember(&mut self, object: &Bound<'_, PyAny>, value: &T) {
        self.last = Some((object.clone().unbind(), value.clone()));
    }
}

/// Copies a Python `str` into an owned Rust string, refusing strings that are not valid UTF-8.
pub fn owned_str(value: &Bound<'_, PyString>) -> Result<String, Unencodable> {
    value
        .to_cow()
        .map(|s| s.into_owned())
        .map_err(|_| Unencodable)
}

pub fn any_value(
    value: &Bound<'_, PyAny>,
    types: &Types,
    pass: &mut ReadPass,
    depth: u32,
) -> Result<AnyValue, Unencodable> {
    if depth > MAX_DEPTH {
        return Err(Unencodable);
    }
    let value = if value.is_none() {
        None
    } else if let Ok(s) = value.cast::<PyString>() {
        Some(Value::String(pass.text(s)?))
    } else if let Ok(b) = value.cast::<PyBool>() {
        Some(Value::Bool(b.is_true()))
    } else if let Ok(i) = value.cast::<PyInt>() {
        Some(Value::Int(i.extract::<i64>().map_err(|_| Unencodable)?))
    } else if let Ok(f) = value.cast::<PyFloat>() {
        Some(Value::Double(f.value()))
    } else if let Ok(b) = value.cast::<PyBytes>() {
        Some(Value::Bytes(b.as_bytes().to_vec()))
    } else if let Ok(t) = value.cast::<PyTuple>() {
        Some(Value::Array(array(t.iter().map(Ok), types, pass, depth)?))
    } else if let Ok(l) = value.cast::<PyList>() {
        Some(Value::Array(array(l.iter().map(Ok), types, pass, depth)?))
    } else if value
        .is_instance(types.sequence.bind(value.py()))
        .map_err(|_| Unencodable)?
    {
        Some(Value::Array(array(
            value.try_iter().map_err(|_| Unencodable)?,
            types,
            pass,
            depth,
        )?))
    } else if let Ok(d) = value.cast_exact::<PyDict>() {
        Some(Value::KvList(kv_list(
            d.iter().map(Ok),
            types,
            pass,
            depth,
        )?))
    } else if value
        .is_instance(types.mapping.bind(value.py()))
        .map_err(|_| Unencodable)?
    {
        let items = value
            .call_method0(intern!(value.py(), "items"))
            .map_err(|_| Unencodable)?;
        let pairs = items
            .try_iter()
            .map_err(|_| Unencodable)?
            .map(|item| item.and_then(|i| i.extract()));
        Some(Value::KvList(kv_list(pairs, types, pass, depth)?))
    } else {
        return Err(Unencodable);
    };
    Ok(AnyValue { value })
}

fn array<'py>(
    items: impl Iterator<Item = PyResult<Bound<'py, PyAny>>>,
    types: &Types,
    pass: &mut ReadPass,
    depth: u32,
) -> Result<ArrayValue, Unencodable> {
    let values = items
        .map(|item| any_value(&item.map_err(|_| Unencodable)?, types, pass, depth + 1))
        .collect::<Result<_, _>>()?;
    Ok(ArrayValue { values })
}

/// A mapping value: keys become `str(key)`, as in the stock encoder.
fn kv_list<'py>(
    pairs: impl Iterator<Item = PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)>>,
    types: &Types,
    pass: &mut ReadPass,
    depth: u32,
) -> Result<KeyValueList, Unencodable> {
    let mut values = Vec::new();
    for pair in pairs {
        let (key, value) = pair.map_err(|_| Unencodable)?;
        let key = match key.cast::<PyString>() {
            Ok(s) => pass.text(s)?,
            Err(_) => owned_str(&key.str().map_err(|_| Unencodable)?)?,
        };
        let value = any_value(&value, types, pass, depth + 1)?;
        values.push(KeyValue {
            key,
            value: Some(value),
        });
    }
    Ok(KeyValueList { values })
}

/// One attribute: a `str` key and an encodable value, or nothing.
fn key_value(
    key: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
    types: &Types,
    pass: &mut ReadPass,
) -> Result<KeyValue, Unencodable> {
    let key = pass.text(key.cast::<PyString>().map_err(|_| Unencodable)?)?;
    Ok(KeyValue {
        key,
        value: Some(any_value(value, types, pass, 0)?),
    })
}

/// Encodes an attribute mapping (`BoundedAttributes`, `dict`, any `Mapping`, or `None`),
/// leaving out and counting the keys whose values cannot be encoded.
pub fn attributes(
    attributes: &Bound<'_, PyAny>,
    types: &Types,
    pass: &mut ReadPass,
) -> PyResult<Vec<KeyValue>> {
    let py = attributes.py();
    if attributes.is_none() {
        return Ok(Vec::new());
    }
    // The SDK's container keeps a plain dict underneath; walking it skips Python-level iteration.
    let plain = if attributes.get_type().is(types.bounded_attributes.bind(py)) {
        attributes.getattr(intern!(py, "_dict"))?
    } else {
        attributes.clone()
    };
    let dict = plain.cast_exact::<PyDict>().ok();
    let mut out = Vec::with_capacity(dict.as_ref().map_or(0, |d| d.len()));
    let mut push =
        |key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>| match key_value(key, value, types, pass)
        {
            Ok(kv) => out.push(kv),
            Err(Unencodable) => pass.skipped_values += 1,
        };
    if let Some(dict) = dict {
        for (key, value) in dict.iter() {
            push(&key, &value);
        }
    } else if plain.is_truthy()? {
        for item in plain.call_method0(intern!(py, "items"))?.try_iter()? {
            let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
            push(&key, &value);
        }
    }
    Ok(out)
}

/// A `dropped_*` count as the SDK computes it: the container's `dropped` if it is a `bounded` one, else 0.
pub fn dropped_of(container: &Bound<'_, PyAny>, bounded: &Py<PyType>) -> PyResult<u32> {
    let py = container.py();
    if container.is_instance(bounded.bind(py))? {
        return container.getattr(intern!(py, "dropped"))?.extract();
    }
    Ok(0)
}

/// A protobuf scalar: `None` leaves the field unset, i.e. zero.
pub fn or_zero<'py, T: FromPyObjectOwned<'py> + Default>(value: &Bound<'py, PyAny>) -> PyResult<T> {
    if value.is_none() {
        Ok(T::default())
    } else {
        value.extract().map_err(Into::into)
    }
}

/// The instance dict of an object of exactly type `class`: its stored fields are what the
/// public properties return, and a dict lookup skips the class attribute search.
pub fn fields_of<'py>(
    object: &Bound<'py, PyAny>,
    class: &Py<PyType>,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    let py = object.py();
    if !object.get_type().is(class.bind(py)) {
        return Ok(None);
    }
    Ok(object
        .getattr(intern!(py, "__dict__"))?
        .cast_into::<PyDict>()
        .ok())
}

/// A stored field; a missing one raises the usual AttributeError.
pub fn stored<'py>(
    object: &Bound<'py, PyAny>,
    fields: &Bound<'py, PyDict>,
    name: &Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyAny>> {
    match fields.get_item(name)? {
        Some(value) => Ok(value),
        None => object.getattr(name),
    }
}

/// A span's, event's or link's stored `_attributes` with the dropped count the SDK reports.
pub fn stored_attributes(
    container: &Bound<'_, PyAny>,
    types: &Types,
    pass: &mut ReadPass,
) -> PyResult<(Vec<KeyValue>, u32)> {
    let py = container.py();
    if let Some(fields) = fields_of(container, &types.bounded_attributes)? {
        let plain = stored(container, &fields, intern!(py, "_dict"))?;
        let dropped = or_zero(&stored(container, &fields, intern!(py, "dropped"))?)?;
        return Ok((attributes(&plain, types, pass)?, dropped));
    }
    let dropped = dropped_of(container, &types.bounded_attributes)?;
    Ok((attributes(container, types, pass)?, dropped))
}
