//! Reads one ReadableSpan (with its events, links and status) into an OTLP `Span`.
//!
//! Spans, events, links, contexts and statuses of exactly the SDK's types are read
//! through the fields the SDK stores (`_name`, `_context`, ...), which is what their
//! public properties return. Any other type, a subclass included, is read through the
//! public properties the stock encoder uses, so an override is honoured.

use super::proto::{self, remote_flags};
use super::types::Types;
use super::values::{
    attributes, dropped_of, fields_of, or_zero, stored, stored_attributes, ReadPass,
};
use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyIterator, PyString, PyTuple};

/// A span read from Python, still holding the objects it is grouped by.
pub struct ReadSpan<'py> {
    pub span: proto::Span,
    pub resource: Bound<'py, PyAny>,
    /// `None` for a missing or falsy scope, as `instrumentation_scope or None` gives.
    pub scope: Option<Bound<'py, PyAny>>,
}

/// Reads `$private` from `$fields` (the instance dict of an SDK object), else the `$public` attribute.
macro_rules! field {
    ($object:expr, $fields:expr, $private:literal, $public:literal) => {{
        let py = $object.py();
        match &$fields {
            Some(fields) => stored($object, fields, intern!(py, $private)),
            None => $object.getattr(intern!(py, $public)),
        }
    }};
}

/// `attributes` and `dropped_attributes` of a span, event or link.
fn attributes_and_dropped(
    object: &Bound<'_, PyAny>,
    fields: &Option<Bound<'_, PyDict>>,
    types: &Types,
    pass: &mut ReadPass,
) -> PyResult<(Vec<proto::KeyValue>, u32)> {
    let py = object.py();
    match fields {
        Some(fields) => stored_attributes(
            &stored(object, fields, intern!(py, "_attributes"))?,
            types,
            pass,
        ),
        None => {
            let attrs = attributes(&object.getattr(intern!(py, "attributes"))?, types, pass)?;
            Ok((
                attrs,
                or_zero(&object.getattr(intern!(py, "dropped_attributes"))?)?,
            ))
        }
    }
}

/// A protobuf string: `None` leaves it empty; a str that is not valid UTF-8 is an error.
pub fn or_empty(value: &Bound<'_, PyAny>, pass: &mut ReadPass) -> PyResult<String> {
    if value.is_none() {
        return Ok(String::new());
    }
    pass.text(value.cast::<PyString>()?)
        .map_err(|_| PyValueError::new_err("string is not valid UTF-8 (lone surrogate?)"))
}

/// The parts of a SpanContext the encoder needs.
struct Context<'py> {
    trace_id: u128,
    span_id: u64,
    is_remote: bool,
    trace_state: Bound<'py, PyAny>,
}

fn context<'py>(context: &Bound<'py, PyAny>, types: &Types) -> PyResult<Context<'py>> {
    let py = context.py();
    if context.get_type().is(types.span_context.bind(py)) {
        // SpanContext is a tuple: (trace_id, span_id, is_remote, trace_flags, trace_state, is_valid).
        let fields = context.cast::<PyTuple>()?;
        return Ok(Context {
            trace_id: fields.get_item(0)?.extract()?,
            span_id: fields.get_item(1)?.extract()?,
            is_remote: fields.get_item(2)?.is_truthy()?,
            trace_state: fields.get_item(4)?,
        });
    }
    Ok(Context {
        trace_id: context.getattr(intern!(py, "trace_id"))?.extract()?,
        span_id: context.getattr(intern!(py, "span_id"))?.extract()?,
        is_remote: context.getattr(intern!(py, "is_remote"))?.is_truthy()?,
        trace_state: context.getattr(intern!(py, "trace_state"))?,
    })
}

/// `key1=value1,key2=value2`, the stock rendering of a TraceState; `None` renders as nothing.
fn trace_state(state: &Bound<'_, PyAny>, types: &Types, pass: &mut ReadPass) -> PyResult<String> {
    if let Some(rendered) = pass.trace_states.get(state) {
        return Ok(rendered);
    }
    let rendered = render_trace_state(state, types, pass)?;
    pass.trace_states.remember(state, &rendered);
    Ok(rendered)
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
        out.push_str(&or_empty(&key.str()?.into_any(), pass)?);
        out.push('=');
        out.push_str(&or_empty(&value.str()?.into_any(), pass)?);
        Ok(())
    };
    if state.get_type().is(types.trace_state.bind(py)) {
        if let Ok(pairs) = state.getattr(intern!(py, "_dict"))?.cast_exact::<PyDict>() {
            for (key, value) in pairs.iter() {
                add(key, value)?;
            }
            return Ok(out);
        }
    }
    for item in state.call_method0(intern!(py, "items"))?.try_iter()? {
        let (key, value) = item?.extract()?;
        add(key, value)?;
    }
    Ok(out)
}

fn kind(kind: &Bound<'_, PyAny>, types: &Types) -> PyResult<i32> {
    let py = kind.py();
    for (number, member) in (1..).zip(&types.span_kinds) {
        if kind.is(member.bind(py)) {
            return Ok(number);
        }
    }
    Err(PyValueError::new_err(format!("unknown span kind {kind}")))
}

fn status(
    status: &Bound<'_, PyAny>,
    types: &Types,
    pass: &mut ReadPass,
) -> PyResult<Option<proto::Status>> {
    if let Some(encoded) = pass.statuses.get(status) {
        return Ok(encoded);
    }
    let encoded = read_status(status, types, pass)?;
    pass.statuses.remember(status, &encoded);
    Ok(encoded)
}

fn read_status(
    status: &Bound<'_, PyAny>,
    types: &Types,
    pass: &mut ReadPass,
) -> PyResult<Option<proto::Status>> {
    let py = status.py();
    if status.is_none() {
        return Ok(None);
    }
    let fields = fields_of(status, &types.status)?;
    let code = field!(status, fields, "_status_code", "status_code")?;
    let code = match (0..)
        .zip(&types.status_codes)
        .find(|(_, member)| code.is(member.bind(py)))
    {
        Some((number, _)) => number,
        None => code.getattr(intern!(py, "value"))?.extract()?,
    };
    let message = or_empty(
        &field!(status, fields, "_description", "description")?,
        pass,
    )?;
    Ok(Some(proto::Status { message, code }))
}

/// Iterates events or links with their dropped count; the SDK's BoundedList is walked through its deque.
fn elements<'py>(
    container: &Bound<'py, PyAny>,
    types: &Types,
) -> PyResult<(Bound<'py, PyIterator>, u32)> {
    let py = container.py();
    if let Some(fields) = fields_of(container, &types.bounded_list)? {
        let items = stored(container, &fields, intern!(py, "_dq"))?.try_iter()?;
        return Ok((
            items,
            or_zero(&stored(container, &fields, intern!(py, "dropped"))?)?,
        ));
    }
    Ok((
        container.try_iter()?,
        dropped_of(container, &types.bounded_list)?,
    ))
}

fn event(event: &Bound<'_, PyAny>, types: &Types, pass: &mut ReadPass) -> PyResult<proto::Event> {
    let fields = fields_of(event, &types.event)?;
    let (attrs, dropped) = attributes_and_dropped(event, &fields, types, pass)?;
    Ok(proto::Event {
        time_unix_nano: or_zero(&field!(event, fields, "_timestamp", "timestamp")?)?,
        name: or_empty(&field!(event, fields, "_name", "name")?, pass)?,
        attributes: attrs,
        dropped_attributes_count: dropped,
    })
}

fn link(link: &Bound<'_, PyAny>, types: &Types, pass: &mut ReadPass) -> PyResult<proto::Link> {
    let fields = fields_of(link, &types.link)?;
    let linked = context(&field!(link, fields, "_context", "context")?, types)?;
    let (attrs, dropped) = attributes_and_dropped(link, &fields, types, pass)?;
    Ok(proto::Link {
        trace_id: linked.trace_id.to_be_bytes().to_vec(),
        span_id: linked.span_id.to_be_bytes().to_vec(),
        attributes: attrs,
        dropped_attributes_count: dropped,
        flags: remote_flags(linked.is_remote),
    })
}

/// Events or links with their dropped count, from the stored container or the public properties.
fn sequence<T>(
    span: &Bound<'_, PyAny>,
    stored: Option<Bound<'_, PyAny>>,
    public_items: &Bound<'_, PyString>,
    public_dropped: &Bound<'_, PyString>,
    types: &Types,
    pass: &mut ReadPass,
    read: fn(&Bound<'_, PyAny>, &Types, &mut ReadPass) -> PyResult<T>,
) -> PyResult<(Vec<T>, u32)> {
    let (items, dropped) = match stored {
        Some(container) => elements(&container, types)?,
        None => (
            span.getattr(public_items)?.try_iter()?,
            or_zero(&span.getattr(public_dropped)?)?,
        ),
    };
    let read = items
        .map(|item| read(&item?, types, pass))
        .collect::<PyResult<_>>()?;
    Ok((read, dropped))
}

pub fn read_span<'py>(
    span: &Bound<'py, PyAny>,
    types: &Types,
    pass: &mut ReadPass,
) -> PyResult<ReadSpan<'py>> {
    let py = span.py();
    let fields = fields_of(span, &types.readable_span)?;
    let own = match &fields {
        Some(fields) => stored(span, fields, intern!(py, "_context"))?,
        None => span.call_method0(intern!(py, "get_span_context"))?,
    };
    let own = context(&own, types)?;
    let parent = field!(span, fields, "_parent", "parent")?;
    let (parent_span_id, parent_is_remote) = if parent.is_truthy()? {
        let parent = context(&parent, types)?;
        (parent.span_id.to_be_bytes().to_vec(), parent.is_remote)
    } else {
        (Vec::new(), false)
    };
    let (attrs, dropped_attributes) = attributes_and_dropped(span, &fields, types, pass)?;
    let container = |name: &Bound<'py, PyString>| {
        fields
            .as_ref()
            .map(|fields| stored(span, fields, name))
            .transpose()
    };
    let (events, dropped_events) = sequence(
        span,
        container(intern!(py, "_events"))?,
        intern!(py, "events"),
        intern!(py, "dropped_events"),
        types,
        pass,
        event,
    )?;
    let (links, dropped_links) = sequence(
        span,
        container(intern!(py, "_links"))?,
        intern!(py, "links"),
        intern!(py, "dropped_links"),
        types,
        pass,
        link,
    )?;
    let scope = field!(
        span,
        fields,
        "_instrumentation_scope",
        "instrumentation_scope"
    )?;
    let encoded = proto::Span {
        trace_id: own.trace_id.to_be_bytes().to_vec(),
        span_id: own.span_id.to_be_bytes().to_vec(),
        trace_state: trace_state(&own.trace_state, types, pass)?,
        parent_span_id,
        name: or_empty(&field!(span, fields, "_name", "name")?, pass)?,
        kind: kind(&field!(span, fields, "_kind", "kind")?, types)?,
        start_time_unix_nano: or_zero(&field!(span, fields, "_start_time", "start_time")?)?,
        end_time_unix_nano: or_zero(&field!(span, fields, "_end_time", "end_time")?)?,
        attributes: attrs,
        dropped_attributes_count: dropped_attributes,
        events,
        dropped_events_count: dropped_events,
        links,
        dropped_links_count: dropped_links,
        status: status(&field!(span, fields, "_status", "status")?, types, pass)?,
        flags: remote_flags(parent_is_remote),
    };
    Ok(ReadSpan {
        span: encoded,
        resource: field!(span, fields, "_resource", "resource")?,
        scope: scope.is_truthy()?.then_some(scope),
    })
}
