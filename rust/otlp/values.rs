//! Attribute values and attribute maps, read from Python and written as OTLP `KeyValue`s.
//!
//! Mirrors `_encode_value` / `_encode_attributes` of opentelemetry-exporter-otlp-proto-common:
//! the same type order (None, bool, str, int, float, bytes, Sequence, Mapping), and a value
//! it cannot carry (another type, an int outside int64, a str that is not valid UTF-8,
//! nesting too deep) drops that one key, as the stock encoder does, and is counted instead
//! of raising.

use super::types::Types;
use super::wire;
use crate::interned::interned;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::collections::hash_map::Entry;

/// Most messages nested in a `ResourceSpans`, itself counted, that the stock encoder can
/// build: it makes each message from parts that protobuf (upb) copies by parsing them, and
/// that parse stops 100 levels below the part. A value too deep for its own `KeyValue` is
/// left out by the stock encoder; one that fits there but not in its `ResourceSpans` fails
/// the stock encoder's whole batch, where we leave out that one key. Bounds our stack too
/// (a self-containing list, say).
const MOST_LEVELS: u32 = 101;

/// Where an attribute map sits in the request, which decides how deep its values may nest.
#[derive(Clone, Copy)]
pub enum Place {
    Resource,
    Scope,
    Span,
    EventOrLink,
    LogRecord,
}

impl Place {
    /// Message levels left for each `KeyValue` here and all it holds: `MOST_LEVELS` less the
    /// messages around it, up to the `ResourceSpans`.
    fn levels(self) -> u32 {
        let around = match self {
            Self::Resource => 2, // Resource, ResourceSpans
            // InstrumentationScope, Span or LogRecord, ScopeSpans or ScopeLogs, ResourceSpans or ResourceLogs
            Self::Scope | Self::Span | Self::LogRecord => 3,
            Self::EventOrLink => 4, // Event or Link, Span, ScopeSpans, ResourceSpans
        };
        MOST_LEVELS - around
    }
}

/// A value OTLP cannot carry; its key is left out.
pub struct Unencodable;

/// Distinct strings one pass remembers at most.
const STRING_CACHE_LIMIT: usize = 4096;
/// Longer strings (log bodies, mostly) are seldom met twice: borrowed from the `str`, not copied.
const LONGEST_CACHED: usize = 1024;

/// One read pass: what it skipped, and the strings it has already copied.
#[derive(Default)]
pub struct ReadPass {
    pub skipped_values: u64,
    pub skipped_items: u64,
    /// Keys, names and many values are the same `str` objects span after span; copying
    /// each once saves a UTF-8 encoding per use. The entry holds its object, so the
    /// address stays that object's until the pass ends. Keys are addresses, so the fast
    /// Fx hash is enough.
    strings: FxHashMap<usize, (Py<PyString>, String)>,
    /// The encoded `status` field (empty for none) of the last status object read.
    pub statuses: Memo<Vec<u8>>,
    /// The encoded `trace_state` field (empty when it renders empty) of the last one read.
    pub trace_states: Memo<Vec<u8>>,
}

impl ReadPass {
    /// `value` as UTF-8, borrowed from this pass's copy when it has one.
    pub fn text<'s>(
        &'s mut self,
        value: &'s Bound<'_, PyString>,
    ) -> Result<Cow<'s, str>, Unencodable> {
        if value.len().map_or(true, |chars| chars > LONGEST_CACHED) {
            return value.to_str().map(Cow::Borrowed).map_err(|_| Unencodable);
        }
        let address = value.as_ptr() as usize;
        if self.strings.len() >= STRING_CACHE_LIMIT && !self.strings.contains_key(&address) {
            return owned_str(value).map(Cow::Owned);
        }
        let text = match self.strings.entry(address) {
            Entry::Occupied(entry) => &entry.into_mut().1,
            Entry::Vacant(entry) => {
                let text = owned_str(value)?;
                &entry.insert((value.clone().unbind(), text)).1
            }
        };
        Ok(Cow::Borrowed(text))
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

impl<T> Memo<T> {
    pub fn get(&self, object: &Bound<'_, PyAny>) -> Option<&T> {
        self.last
            .as_ref()
            .filter(|(last, _)| object.is(last))
            .map(|(_, value)| value)
    }

    pub fn remember(&mut self, object: &Bound<'_, PyAny>, value: T) {
        self.last = Some((object.clone().unbind(), value));
    }
}

/// Copies a Python `str` into an owned Rust string, refusing strings that are not valid UTF-8.
pub fn owned_str(value: &Bound<'_, PyString>) -> Result<String, Unencodable> {
    value.to_cow().map(Cow::into_owned).map_err(|_| Unencodable)
}

/// Writes the body of an `AnyValue`: its oneof member, or nothing for `None`. `levels`:
/// how many nested messages this `AnyValue` (one of them) and its contents may use.
fn any_value(
    buf: &mut Vec<u8>,
    value: &Bound<'_, PyAny>,
    types: &Types,
    pass: &mut ReadPass,
    levels: u32,
) -> Result<(), Unencodable> {
    if levels == 0 {
        return Err(Unencodable);
    }
    if value.is_none() {
        // The empty AnyValue the stock encoder writes for a `None` attribute.
    } else if let Ok(s) = value.cast::<PyString>() {
        wire::len_field(buf, 1, pass.text(s)?.as_bytes());
    } else if let Ok(b) = value.cast::<PyBool>() {
        wire::varint_field(buf, 2, u64::from(b.is_true()));
    } else if let Ok(i) = value.cast::<PyInt>() {
        let int = i.extract::<i64>().map_err(|_| Unencodable)?;
        wire::varint_field(buf, 3, wire::int64(int));
    } else if let Ok(f) = value.cast::<PyFloat>() {
        wire::fixed64_field(buf, 4, f.value().to_bits());
    } else if let Ok(b) = value.cast::<PyBytes>() {
        wire::len_field(buf, 7, b.as_bytes());
        // Exactly a tuple or list is walked in place; a subclass goes through its own `__iter__`
        // below, as the stock encoder's list comprehension does.
    } else if let Ok(t) = value.cast_exact::<PyTuple>() {
        array(buf, t.iter().map(Ok), types, pass, levels)?;
    } else if let Ok(l) = value.cast_exact::<PyList>() {
        array(buf, l.iter().map(Ok), types, pass, levels)?;
    } else if value
        .is_instance(types.sequence.bind(value.py()))
        .map_err(|_| Unencodable)?
    {
        let items = value.try_iter().map_err(|_| Unencodable)?;
        array(buf, items, types, pass, levels)?;
    } else if let Ok(d) = value.cast_exact::<PyDict>() {
        kv_list(buf, d.iter().map(Ok), types, pass, levels)?;
    } else if value
        .is_instance(types.mapping.bind(value.py()))
        .map_err(|_| Unencodable)?
    {
        let items = value
            .call_method0(interned!(value.py(), "items"))
            .map_err(|_| Unencodable)?;
        let pairs = items
            .try_iter()
            .map_err(|_| Unencodable)?
            .map(|item| item.and_then(|i| i.extract()));
        kv_list(buf, pairs, types, pass, levels)?;
    } else {
        return Err(Unencodable);
    }
    Ok(())
}

/// Levels for a log record's body: the `AnyValue` itself and all it holds, below the
/// `LogRecord`, `ScopeLogs` and `ResourceLogs` around it.
const BODY_LEVELS: u32 = MOST_LEVELS - 3;

/// A log record's body as field `tag`: an `AnyValue`, present even when empty (`None`), as
/// the stock encoder writes it. Unlike an attribute's, a body it cannot carry fails the stock
/// encoder's whole batch: the caller leaves out the record.
pub fn body(
    buf: &mut Vec<u8>,
    tag: u32,
    value: &Bound<'_, PyAny>,
    types: &Types,
    pass: &mut ReadPass,
) -> Result<(), Unencodable> {
    wire::message(buf, tag, |buf| {
        any_value(buf, value, types, pass, BODY_LEVELS)
    })
}

/// A list message (`ArrayValue`, `KeyValueList`) as oneof `member` of an `AnyValue` with
/// `levels` (itself counted), each entry written by `entry` with the levels left for it: the
/// list, even an empty one, is a level below its `AnyValue`, and each entry one more.
fn list<T>(
    buf: &mut Vec<u8>,
    member: u32,
    entries: impl Iterator<Item = PyResult<T>>,
    levels: u32,
    mut entry: impl FnMut(&mut Vec<u8>, T, u32) -> Result<(), Unencodable>,
) -> Result<(), Unencodable> {
    let entry_levels = levels.checked_sub(2).ok_or(Unencodable)?;
    wire::message(buf, member, |buf| {
        for item in entries {
            entry(buf, item.map_err(|_| Unencodable)?, entry_levels)?;
        }
        Ok(())
    })
}

/// An `ArrayValue` as oneof member 5, in an `AnyValue` with `levels` (itself counted).
fn array<'py>(
    buf: &mut Vec<u8>,
    items: impl Iterator<Item = PyResult<Bound<'py, PyAny>>>,
    types: &Types,
    pass: &mut ReadPass,
    levels: u32,
) -> Result<(), Unencodable> {
    list(buf, 5, items, levels, |buf, item, levels| {
        wire::message(buf, 1, |buf| any_value(buf, &item, types, pass, levels))
    })
}

/// A `KeyValueList` as oneof member 6, in an `AnyValue` with `levels` (itself counted); keys
/// become `str(key)`, as in the stock encoder: a `str` subclass's `__str__` decides its key.
fn kv_list<'py>(
    buf: &mut Vec<u8>,
    pairs: impl Iterator<Item = PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)>>,
    types: &Types,
    pass: &mut ReadPass,
    levels: u32,
) -> Result<(), Unencodable> {
    list(buf, 6, pairs, levels, |buf, (key, value), levels| {
        let key = match key.cast_exact::<PyString>() {
            Ok(s) => s.clone(),
            Err(_) => key.str().map_err(|_| Unencodable)?,
        };
        key_value(buf, 1, key.as_any(), &value, types, pass, levels)
    })
}

/// One `KeyValue` as field `tag`, with `levels` for itself and its value. `key` is what protobuf
/// takes for a string field: a `str`, UTF-8 `bytes`, or `None` (not set: the empty key).
fn key_value(
    buf: &mut Vec<u8>,
    tag: u32,
    key: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
    types: &Types,
    pass: &mut ReadPass,
    levels: u32,
) -> Result<(), Unencodable> {
    let value_levels = levels.checked_sub(1).ok_or(Unencodable)?;
    wire::message(buf, tag, |buf| {
        if let Ok(key) = key.cast::<PyString>() {
            wire::string(buf, 1, &pass.text(key)?);
        } else if let Ok(key) = key.cast::<PyBytes>() {
            let key = std::str::from_utf8(key.as_bytes()).map_err(|_| Unencodable)?;
            wire::string(buf, 1, key);
        } else if !key.is_none() {
            return Err(Unencodable);
        }
        wire::message(buf, 2, |buf| {
            any_value(buf, value, types, pass, value_levels)
        })
    })
}

/// Writes an attribute mapping (`BoundedAttributes`, `dict`, any `Mapping`, or `None`) found
/// at `place` as repeated field `tag`, leaving out and counting the keys whose values cannot
/// be encoded.
pub fn attributes(
    buf: &mut Vec<u8>,
    tag: u32,
    attributes: &Bound<'_, PyAny>,
    place: Place,
    types: &Types,
    pass: &mut ReadPass,
) -> PyResult<()> {
    let py = attributes.py();
    if attributes.is_none() {
        return Ok(());
    }
    // The SDK's container keeps a plain dict underneath; walking it skips Python-level iteration.
    let plain = if attributes.get_type().is(types.bounded_attributes.bind(py)) {
        attributes.getattr(interned!(py, "_dict"))?
    } else {
        attributes.clone()
    };
    let mut push = |key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>| {
        let mark = buf.len();
        // A top-level key is written as protobuf takes it: the string it is, `str` subclass or not.
        let written = key_value(buf, tag, key, value, types, pass, place.levels());
        if written.is_err() {
            buf.truncate(mark);
            pass.skipped_values += 1;
        }
    };
    if let Ok(dict) = plain.cast_exact::<PyDict>() {
        for (key, value) in dict.iter() {
            push(&key, &value);
        }
    } else if plain.is_truthy()? {
        for item in plain.call_method0(interned!(py, "items"))?.try_iter()? {
            let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
            push(&key, &value);
        }
    }
    Ok(())
}

/// A `dropped_*` count as the SDK computes it: the container's `dropped` if it is a `bounded` one, else 0.
pub fn dropped_of(container: &Bound<'_, PyAny>, bounded: &Py<PyType>) -> PyResult<u32> {
    let py = container.py();
    if container.is_instance(bounded.bind(py))? {
        return or_zero(&container.getattr(interned!(py, "dropped"))?);
    }
    Ok(0)
}

/// A protobuf integer: `None` leaves the field unset, i.e. zero; a `bool` is refused, as
/// protobuf refuses it (the stock encoder then fails its batch, the caller leaves out the item).
pub fn or_zero<'py, T: FromPyObjectOwned<'py> + Default>(value: &Bound<'py, PyAny>) -> PyResult<T> {
    if value.is_none() {
        Ok(T::default())
    } else if value.is_instance_of::<PyBool>() {
        Err(PyTypeError::new_err("an integer field got a bool"))
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
        .getattr(interned!(py, "__dict__"))?
        .cast_into::<PyDict>()
        .ok())
}

/// A stored field; a missing one raises the usual `AttributeError`.
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
