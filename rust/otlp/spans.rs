//! Writes one `ReadableSpan` (with its events, links and status) as an OTLP `Span`.
//!
//! Spans, events, links, contexts and statuses of exactly the SDK's types are read
//! through the fields the SDK stores (`_name`, `_context`, ...), which is what their
//! public properties return. Any other type, a subclass included, is read through the
//! public properties the stock encoder uses, so an override is honoured. Fields are
//! read in tag order and written as they are read.

use super::shared_fields::{encode_trace_state, write_memoized};
use super::types::Types;
use super::values::{attributes, dropped_of, fields_of, or_zero, stored, Place, ReadPass};
use super::wire;
use crate::interned::interned;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyIterator, PyString, PyTuple};
use std::borrow::Cow;

/// `SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK`: we always know whether the parent is remote.
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
/// `SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK`
const FLAG_IS_REMOTE: u32 = 0x200;

/// The `flags` field the stock encoder writes for a span's parent or a link's context.
fn remote_flags(is_remote: bool) -> u32 {
    if is_remote {
        FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE
    } else {
        FLAG_HAS_IS_REMOTE
    }
}

/// A span about to be written: its stored fields, when it is exactly a `ReadableSpan`.
pub struct SpanFields<'a, 'py> {
    span: &'a Bound<'py, PyAny>,
    fields: Option<Bound<'py, PyDict>>,
}

/// Reads `$private` from `$fields` (the instance dict of an SDK object), else the `$public` attribute.
macro_rules! field {
    ($object:expr, $fields:expr, $private:literal, $public:literal) => {{
        let py = $object.py();
        match &$fields {
            Some(fields) => stored($object, fields, interned!(py, $private)),
            None => $object.getattr(interned!(py, $public)),
        }
    }};
}

/// Writes `attributes` of a span, event or link (`place`) as field `tag`, then its
/// `dropped_attributes` as field `tag + 1`. `fields`: its stored fields, when it is exactly
/// the SDK's type.
fn attributes_and_dropped(
    buf: &mut Vec<u8>,
    tag: u32,
    object: &Bound<'_, PyAny>,
    fields: Option<&Bound<'_, PyDict>>,
    place: Place,
    types: &Types,
    pass: &mut ReadPass,
) -> PyResult<()> {
    let py = object.py();
    let dropped: u32 = match fields {
        None => {
            let attrs = object.getattr(interned!(py, "attributes"))?;
            attributes(buf, tag, &attrs, place, types, pass)?;
            or_zero(&object.getattr(interned!(py, "dropped_attributes"))?)?
        }
        Some(fields) => {
            let container = stored(object, fields, interned!(py, "_attributes"))?;
            if let Some(inner) = fields_of(&container, &types.bounded_attributes)? {
                let plain = stored(&container, &inner, interned!(py, "_dict"))?;
                attributes(buf, tag, &plain, place, types, pass)?;
                or_zero(&stored(&container, &inner, interned!(py, "dropped"))?)?
            } else {
                attributes(buf, tag, &container, place, types, pass)?;
                dropped_of(&container, &types.bounded_attributes)?
            }
        }
    };
    wire::varint(buf, tag + 1, dropped.into());
    Ok(())
}

/// A protobuf string: `None` leaves it empty; a str that is not valid UTF-8 is an error.
/// protobuf takes UTF-8 `bytes` for a string too.
pub fn or_empty<'p>(value: &'p Bound<'_, PyAny>, pass: &'p mut ReadPass) -> PyResult<Cow<'p, str>> {
    if value.is_none() {
        return Ok(Cow::Borrowed(""));
    }
    if let Ok(bytes) = value.cast::<PyBytes>() {
        return std::str::from_utf8(bytes.as_bytes())
            .map(Cow::Borrowed)
            .map_err(|_| PyValueError::new_err("bytes for a string are not valid UTF-8"));
    }
    pass.text(value.cast::<PyString>()?)
        .map_err(|_| PyValueError::new_err("string is not valid UTF-8 (lone surrogate?)"))
}

/// The parts of a `SpanContext` the encoder needs.
struct Context<'py> {
    trace_id: u128,
    span_id: u64,
    is_remote: bool,
    trace_state: Option<Bound<'py, PyAny>>,
}

/// Which parts of a context a field uses. The stock encoder reads no others (of a parent: the
/// span id and `is_remote`; of a link: no trace state), so neither may we: an object with just
/// those is a context to it.
#[derive(Clone, Copy)]
enum Uses {
    /// The span's own context: trace id, span id, trace state.
    Own,
    /// The parent's: span id and whether it is remote.
    Parent,
    /// A link's: trace id, span id and whether it is remote.
    Link,
}

fn context<'py>(context: &Bound<'py, PyAny>, types: &Types, uses: Uses) -> PyResult<Context<'py>> {
    let py = context.py();
    if context.get_type().is(types.span_context.bind(py)) {
        // SpanContext is a tuple: (trace_id, span_id, is_remote, trace_flags, trace_state, is_valid).
        let fields = context.cast::<PyTuple>()?;
        return Ok(Context {
            trace_id: fields.get_item(0)?.extract()?,
            span_id: fields.get_item(1)?.extract()?,
            is_remote: fields.get_item(2)?.is_truthy()?,
            trace_state: Some(fields.get_item(4)?),
        });
    }
    let (trace_id, is_remote, trace_state) = match uses {
        Uses::Own => (true, false, true),
        Uses::Parent => (false, true, false),
        Uses::Link => (true, true, false),
    };
    Ok(Context {
        trace_id: if trace_id {
            context.getattr(interned!(py, "trace_id"))?.extract()?
        } else {
            0
        },
        span_id: context.getattr(interned!(py, "span_id"))?.extract()?,
        // `context and context.is_remote`, as the stock `_span_flags` reads it.
        is_remote: is_remote
            && context.is_truthy()?
            && context.getattr(interned!(py, "is_remote"))?.is_truthy()?,
        trace_state: if trace_state {
            Some(context.getattr(interned!(py, "trace_state"))?)
        } else {
            None
        },
    })
}

/// Field 6: OTLP numbers `SpanKind.INTERNAL` … `CONSUMER` from 1.
fn kind(kind: &Bound<'_, PyAny>, types: &Types) -> PyResult<u64> {
    let py = kind.py();
    for (number, member) in (1..).zip(&types.span_kinds) {
        if kind.is(member.bind(py)) {
            return Ok(number);
        }
    }
    Err(PyValueError::new_err(format!("unknown span kind {kind}")))
}

/// Field 15, present whenever the span has a status object.
fn encode_status(
    status: &Bound<'_, PyAny>,
    types: &Types,
    pass: &mut ReadPass,
) -> PyResult<Vec<u8>> {
    let py = status.py();
    let mut encoded = Vec::new();
    if status.is_none() {
        return Ok(encoded);
    }
    let fields = fields_of(status, &types.status)?;
    let code = field!(status, fields, "_status_code", "status_code")?;
    let code: i32 = match (0..)
        .zip(&types.status_codes)
        .find(|(_, member)| code.is(member.bind(py)))
    {
        Some((number, _)) => number,
        None => code.getattr(interned!(py, "value"))?.extract()?,
    };
    let message = field!(status, fields, "_description", "description")?;
    wire::message(&mut encoded, 15, |buf| {
        wire::string(buf, 2, &or_empty(&message, pass)?);
        // An int32 goes on the wire sign-extended to 64 bits.
        wire::varint(buf, 3, wire::int64(code.into()));
        Ok::<_, PyErr>(())
    })?;
    Ok(encoded)
}

/// Iterates events or links with their dropped count; the SDK's `BoundedList` is walked through its deque.
fn elements<'py>(
    container: &Bound<'py, PyAny>,
    types: &Types,
) -> PyResult<(Bound<'py, PyIterator>, u32)> {
    let py = container.py();
    if let Some(fields) = fields_of(container, &types.bounded_list)? {
        let items = stored(container, &fields, interned!(py, "_dq"))?.try_iter()?;
        return Ok((
            items,
            or_zero(&stored(container, &fields, interned!(py, "dropped"))?)?,
        ));
    }
    Ok((
        container.try_iter()?,
        dropped_of(container, &types.bounded_list)?,
    ))
}

fn write_event(
    buf: &mut Vec<u8>,
    event: &Bound<'_, PyAny>,
    types: &Types,
    pass: &mut ReadPass,
) -> PyResult<()> {
    let fields = fields_of(event, &types.event)?;
    wire::fixed64(
        buf,
        1,
        or_zero(&field!(event, fields, "_timestamp", "timestamp")?)?,
    );
    let name = field!(event, fields, "_name", "name")?;
    wire::string(buf, 2, &or_empty(&name, pass)?);
    let place = Place::EventOrLink;
    attributes_and_dropped(buf, 3, event, fields.as_ref(), place, types, pass)
}

fn write_link(
    buf: &mut Vec<u8>,
    link: &Bound<'_, PyAny>,
    types: &Types,
    pass: &mut ReadPass,
) -> PyResult<()> {
    let fields = fields_of(link, &types.link)?;
    let linked = context(
        &field!(link, fields, "_context", "context")?,
        types,
        Uses::Link,
    )?;
    wire::bytes(buf, 1, &linked.trace_id.to_be_bytes());
    wire::bytes(buf, 2, &linked.span_id.to_be_bytes());
    // The stock encoder leaves the link's trace_state (field 3) out, and so do we.
    let place = Place::EventOrLink;
    attributes_and_dropped(buf, 4, link, fields.as_ref(), place, types, pass)?;
    wire::fixed32(buf, 6, remote_flags(linked.is_remote));
    Ok(())
}

type WriteElement = fn(&mut Vec<u8>, &Bound<'_, PyAny>, &Types, &mut ReadPass) -> PyResult<()>;

impl<'a, 'py> SpanFields<'a, 'py> {
    pub fn of(span: &'a Bound<'py, PyAny>, types: &Types) -> PyResult<Self> {
        Ok(Self {
            span,
            fields: fields_of(span, &types.readable_span)?,
        })
    }

    pub fn resource(&self) -> PyResult<Bound<'py, PyAny>> {
        field!(self.span, self.fields, "_resource", "resource")
    }

    /// `None` for a missing or falsy scope, as `instrumentation_scope or None` gives.
    pub fn scope(&self) -> PyResult<Option<Bound<'py, PyAny>>> {
        let scope = field!(
            self.span,
            self.fields,
            "_instrumentation_scope",
            "instrumentation_scope"
        )?;
        Ok(scope.is_truthy()?.then_some(scope))
    }

    /// Events or links as repeated field `tag`, then their dropped count as field `tag + 1`.
    fn write_elements(
        &self,
        buf: &mut Vec<u8>,
        tag: u32,
        [private, public_items, public_dropped]: [&Bound<'py, PyString>; 3],
        types: &Types,
        pass: &mut ReadPass,
        write: WriteElement,
    ) -> PyResult<()> {
        let (items, dropped) = match &self.fields {
            Some(fields) => elements(&stored(self.span, fields, private)?, types)?,
            None => (
                self.span.getattr(public_items)?.try_iter()?,
                or_zero(&self.span.getattr(public_dropped)?)?,
            ),
        };
        for item in items {
            let item = item?;
            wire::message(buf, tag, |buf| write(buf, &item, types, pass))?;
        }
        wire::varint(buf, tag + 1, dropped.into());
        Ok(())
    }

    /// Writes the body of the OTLP `Span`; on an error `buf` holds part of it.
    pub fn write(&self, buf: &mut Vec<u8>, types: &Types, pass: &mut ReadPass) -> PyResult<()> {
        let (span, fields) = (self.span, &self.fields);
        let py = span.py();
        let own = match fields {
            Some(fields) => stored(span, fields, interned!(py, "_context"))?,
            None => span.call_method0(interned!(py, "get_span_context"))?,
        };
        let own = context(&own, types, Uses::Own)?;
        let parent = field!(span, fields, "_parent", "parent")?;
        let parent = if parent.is_truthy()? {
            Some(context(&parent, types, Uses::Parent)?)
        } else {
            None
        };
        wire::bytes(buf, 1, &own.trace_id.to_be_bytes());
        wire::bytes(buf, 2, &own.span_id.to_be_bytes());
        // Always read for `Uses::Own`.
        if let Some(state) = &own.trace_state {
            write_memoized(
                buf,
                state,
                pass,
                |pass| &mut pass.trace_states,
                |pass| encode_trace_state(state, types, pass),
            )?;
        }
        if let Some(parent) = &parent {
            wire::bytes(buf, 4, &parent.span_id.to_be_bytes());
        }
        let name = field!(span, fields, "_name", "name")?;
        wire::string(buf, 5, &or_empty(&name, pass)?);
        let kind = kind(&field!(span, fields, "_kind", "kind")?, types)?;
        wire::varint(buf, 6, kind);
        let start = or_zero(&field!(span, fields, "_start_time", "start_time")?)?;
        wire::fixed64(buf, 7, start);
        let end = or_zero(&field!(span, fields, "_end_time", "end_time")?)?;
        wire::fixed64(buf, 8, end);
        attributes_and_dropped(buf, 9, span, fields.as_ref(), Place::Span, types, pass)?;
        let events = [
            interned!(py, "_events"),
            interned!(py, "events"),
            interned!(py, "dropped_events"),
        ];
        self.write_elements(buf, 11, events, types, pass, write_event)?;
        let links = [
            interned!(py, "_links"),
            interned!(py, "links"),
            interned!(py, "dropped_links"),
        ];
        self.write_elements(buf, 13, links, types, pass, write_link)?;
        let status = field!(span, fields, "_status", "status")?;
        write_memoized(
            buf,
            &status,
            pass,
            |pass| &mut pass.statuses,
            |pass| encode_status(&status, types, pass),
        )?;
        let parent_is_remote = parent.is_some_and(|p| p.is_remote);
        wire::fixed32(buf, 16, remote_flags(parent_is_remote));
        Ok(())
    }
}
