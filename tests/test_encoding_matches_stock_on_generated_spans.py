"""Found by a differential hunt: inputs where the Rust encoders wrote other bytes than the stock
``encode_spans`` / ``encode_logs`` + ``SerializeToString()``, or a payload where stock refuses the item.

Where stock fails its whole batch, spanbatch leaves out (and counts) the one span or record instead.
"""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")

import enum
import logging
from collections import UserString, deque
from collections.abc import Callable, Iterator
from types import MappingProxyType
from typing import Any

import numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry._logs import SeverityNumber
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.span import TraceState
from spanbatch import BatchSpanProcessor
from spanbatch._core import LogEncoder, SpanEncoder
from spanbatch._encoding import encode_batch
from spanbatch.exporter import OTLPSpanExporter
from spanbatch.testing import OTLPReceiver

from tests.helpers import balanced, provider_with
from tests.helpers.examples import examples
from tests.helpers.otlp_logs import record

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("quiet_stock_encoder")]


class OwnIterTuple(tuple):  # type: ignore[type-arg]
    """A tuple subclass whose ``__iter__`` says what it holds: the stock encoder iterates it."""

    def __iter__(self) -> Iterator[Any]:
        return iter(["from __iter__"])


class OwnIterList(list):  # type: ignore[type-arg]
    def __iter__(self) -> Iterator[Any]:
        return iter(["from __iter__", 2])


def span_with(attributes: Any = None, **fields: Any) -> ReadableSpan:
    return ReadableSpan("s", SpanContext(1, 2, False), attributes=attributes, resource=Resource({}), **fields)


def stock_spans(spans: list[ReadableSpan]) -> bytes:
    return encode_spans(spans).SerializeToString()  # type: ignore[no-any-return]


def stock_logs(records: list[Any]) -> bytes:
    return encode_logs(records).SerializeToString()  # type: ignore[no-any-return]


@pytest.mark.parametrize("value", [OwnIterTuple((1, 2)), OwnIterList([1]), {"m": [OwnIterTuple(())]}], ids=repr)
def test_a_sequence_subclass_is_read_through_its_iter(value: Any) -> None:
    span = span_with({"seq": value, "ok": 1})
    assert SpanEncoder().encode([span]) == stock_spans([span])
    log = record(value, attributes={"seq": value})
    assert LogEncoder().encode([log]) == stock_logs([log])


def test_a_utf8_bytes_key_is_written_as_protobuf_takes_it() -> None:
    # protobuf takes UTF-8 bytes for a string field, so the stock encoder keeps this key;
    # bytes that are not UTF-8 make protobuf raise, and the stock encoder leaves that key out.
    attributes = {b"bytes.key": 1, b"\xff": 2, "ok": 3}
    span = span_with(attributes)
    encoder = SpanEncoder()
    assert encoder.encode([span]) == stock_spans([span])
    assert encoder.skipped_values == 1
    log = record("b", attributes=attributes)
    logs = LogEncoder()
    assert logs.encode([log]) == stock_logs([log])
    assert logs.skipped_values == 1


def test_a_none_key_is_the_empty_key_as_protobuf_reads_it() -> None:
    # protobuf reads key=None as "not set": the stock encoder writes a KeyValue with the empty key.
    attributes = {None: 1, "ok": 2}
    span = span_with(attributes)
    encoder = SpanEncoder()
    assert encoder.encode([span]) == stock_spans([span])
    assert encoder.skipped_values == 0
    log = record("b", attributes=attributes)
    assert LogEncoder().encode([log]) == stock_logs([log])


class Formatted(str):
    """Formats otherwise than it prints, as a str-mixin Enum member does on Python 3.10 (format() gives its value)."""

    def __format__(self, spec: str) -> str:
        return "formatted"

    def __str__(self) -> str:
        return "printed"


def test_a_trace_state_is_rendered_with_format_as_the_stock_f_string_does() -> None:
    state = TraceState()
    state._dict.update({Formatted("k"): Formatted("v"), "plain": 7})  # keys and values as the caller gave them
    span = ReadableSpan("s", SpanContext(1, 2, False, trace_state=state), resource=Resource({}))
    assert SpanEncoder().encode([span]) == stock_spans([span])


class FalsyContext:
    """A link context that is falsy: the stock encoder's ``context and context.is_remote`` gives no remote bit."""

    trace_id, span_id, is_remote = 1, 3, True

    def __bool__(self) -> bool:
        return False


def test_a_falsy_link_context_gets_no_remote_flag() -> None:
    span = span_with(links=[Link(FalsyContext())])  # type: ignore[arg-type]
    assert SpanEncoder().encode([span]) == stock_spans([span])


def test_values_a_cached_resource_or_scope_leaves_out_are_counted_in_every_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The stock encoder encodes (and logs the failure of) a resource and a scope in each batch they are
    # in; spanbatch keeps their encoding from batch to batch, but must count what it leaves out each time.
    resource = Resource({"a": 1})
    resource._attributes._dict["too.big"] = 2**64  # type: ignore[attr-defined]
    scope = InstrumentationScope("lib", "1", None, {"ok": 1})
    scope._attributes._dict["odd"] = object()  # type: ignore[attr-defined]
    encoder, logs = SpanEncoder(), LogEncoder()
    for batch in range(1, 4):
        span = ReadableSpan("s", SpanContext(1, 2, False), resource=resource, instrumentation_scope=scope)
        assert encoder.encode([span, span]) == stock_spans([span, span])
        assert encoder.skipped_values == 2 * batch
        log = record("b", resource=resource, scope=scope)
        assert logs.encode([log]) == stock_logs([log])
        assert logs.skipped_values == 2 * batch
    with caplog.at_level(logging.WARNING, logger="spanbatch.exporter"):
        encode_batch(encoder, [span])
    assert "Left out 2 attribute value(s)" in caplog.text


def bounded(dropped: Any) -> BoundedAttributes:
    attributes = BoundedAttributes(immutable=False)
    attributes["a"] = 1
    attributes.dropped = dropped
    return attributes


def with_dropped_events(dropped: Any) -> ReadableSpan:
    events = BoundedList.from_seq(2, [Event("e", None, timestamp=1)])
    events.dropped = dropped
    return span_with(events=events)


BOOL_IN_INT_FIELD: dict[str, Callable[[], ReadableSpan]] = {
    "start_time": lambda: span_with(start_time=True),
    "end_time": lambda: span_with(end_time=False),
    "event_timestamp": lambda: span_with(events=[Event("e", None, timestamp=True)]),
    "dropped_attributes": lambda: span_with(bounded(True)),
    "event_dropped_attributes": lambda: span_with(events=[Event("e", bounded(True), timestamp=1)]),
    "dropped_events": lambda: with_dropped_events(True),
}


@pytest.mark.parametrize("make", BOOL_IN_INT_FIELD.values(), ids=BOOL_IN_INT_FIELD.keys())
def test_a_bool_in_an_integer_span_field_leaves_the_span_out(make: Callable[[], ReadableSpan]) -> None:
    # protobuf refuses a bool for an integer field: the stock encoder fails the whole batch,
    # spanbatch leaves out that span, counted, and exports the others.
    bad, good = make(), span_with({"fine": 1})
    with pytest.raises(TypeError, match="got a bool"):
        stock_spans([bad])
    encoder = SpanEncoder()
    assert encoder.encode([bad, good]) == stock_spans([good])
    assert encoder.skipped_spans == 1
    assert encoder.last_skip_reason


class TrueSeverity(enum.Enum):
    ON = True


@pytest.mark.parametrize("field", ["timestamp", "observed_timestamp", "severity_number"])
def test_a_bool_timestamp_leaves_the_log_record_out(field: str) -> None:
    bad, good = record("x", **{field: TrueSeverity.ON if field == "severity_number" else True}), record("fine")
    with pytest.raises(TypeError, match="got a bool"):
        stock_logs([bad])
    encoder = LogEncoder()
    assert encoder.encode([bad, good]) == stock_logs([good])
    assert encoder.skipped_records == 1


# ---- the differential property test the cases above came from ---------------------------------------------


class Number(int):
    pass


class Text(str):
    pass


class Real(float):
    pass


class Raw(bytes):
    pass


class Pair(tuple):  # type: ignore[type-arg]
    pass


class Items(list):  # type: ignore[type-arg]
    pass


class Level(enum.IntEnum):
    HIGH = 3


class Colour(str, enum.Enum):
    RED = "red"


class Bits(enum.IntFlag):
    A = 1
    B = 2


class OwnItems(dict):  # type: ignore[type-arg]
    """A dict subclass whose ``items()`` the stock encoder calls."""

    def items(self) -> Any:
        return [("own", 1), *super().items()]


def odd_scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**64), max_value=2**64),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=8),
        st.sampled_from(["\ud800", "a\udcffb", "x" * 3000, "\x00"]),
        st.binary(max_size=8),
        st.integers(-(2**63), 2**63 - 1).map(Number),
        st.text(max_size=4).map(Text),
        st.floats(allow_nan=True).map(Real),
        st.binary(max_size=4).map(Raw),
        st.sampled_from([Level.HIGH, Colour.RED, Bits.A | Bits.B, Bits(0)]),
        st.sampled_from([numpy.float64(1.5), numpy.int64(3), numpy.str_("np"), numpy.bool_(True)]),
        st.sampled_from([bytearray(b"ab"), range(2), deque([1, "d"]), memoryview(b"m"), UserString("u")]),
        st.sampled_from([{1, 2}, 1j, object()]),
    )


def odd_values() -> st.SearchStrategy[Any]:
    keys = st.one_of(st.text(max_size=4), st.text(max_size=3).map(Text), st.integers(0, 3), st.binary(max_size=3))
    return st.recursive(
        odd_scalars(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.lists(inner, max_size=3).map(tuple),
            st.lists(inner, max_size=3).map(Pair),
            st.lists(inner, max_size=3).map(Items),
            st.lists(inner, max_size=3).map(OwnIterTuple),
            st.dictionaries(keys, inner, max_size=3),
            st.dictionaries(st.text(max_size=3), inner, max_size=2).map(OwnItems),
            st.dictionaries(st.text(max_size=3), inner, max_size=2).map(MappingProxyType),
        ),
        max_leaves=8,
    )


TOP_KEYS = st.one_of(
    st.text(max_size=6),
    st.text(max_size=4).map(Text),
    st.sampled_from([b"utf8", b"\xff", 7, None, Colour.RED, "\ud800"]),
)


@st.composite
def attribute_containers(draw: st.DrawFn) -> Any:
    attrs = draw(st.dictionaries(TOP_KEYS, odd_values(), max_size=4))
    kind = draw(st.sampled_from(["dict", "bounded", "none", "proxy"]))
    if kind == "bounded":
        bounded = BoundedAttributes(immutable=False)
        bounded._dict.update(attrs)
        bounded.dropped = draw(st.integers(0, 2**32 - 1))
        return bounded
    if kind == "proxy":
        return MappingProxyType(attrs)
    return None if kind == "none" else attrs


# Equal but distinct resources and scopes, and ones that compare equal with other hashes: the grouping order counts.
RESOURCES = [
    Resource({"service.name": "a"}),
    Resource({"service.name": "a"}),
    Resource({"service.name": "b"}, "https://b"),
    Resource({"n": 1}),
    Resource({"n": True}),
    Resource({"n": 1.0}),
    Resource({}),
]
SCOPES = [
    None,
    InstrumentationScope("lib"),
    InstrumentationScope("lib"),
    InstrumentationScope("lib", "1", "https://s", {"k": 1}),
    InstrumentationScope("lib", "1", "https://s", {"k": True}),
    InstrumentationScope("lib", "1", "https://s", {"k": 2}),
    InstrumentationScope("", None, None, {"bad": 2**64}),
]


class SubContext(SpanContext):
    pass


CONTEXTS = st.sampled_from([SpanContext, SubContext]).flatmap(
    lambda context: st.builds(
        context,
        trace_id=st.integers(0, 2**128 - 1),
        span_id=st.integers(0, 2**64 - 1),
        is_remote=st.sampled_from([True, False, 0, 1, None]),
        trace_state=st.none() | st.just(TraceState([("k", "v"), ("x@y", "1")])),
    )
)
TIMES = st.none() | st.integers(0, 2**64 - 1)


class SubSpan(ReadableSpan):
    """Not exactly the SDK's types: the encoder reads these through their public properties."""


class SubEvent(Event):
    pass


class SubLink(Link):
    pass


class SubStatus(Status):
    pass


@st.composite
def odd_spans(draw: st.DrawFn, scopes: list[InstrumentationScope | None] = SCOPES) -> ReadableSpan:
    sub = draw(st.booleans())
    event, link, span = (SubEvent, SubLink, SubSpan) if sub else (Event, Link, ReadableSpan)
    events = [
        event(draw(st.text(max_size=4)), draw(attribute_containers()), timestamp=draw(TIMES))
        for _ in range(draw(st.integers(0, 2)))
    ]
    links = [link(draw(CONTEXTS), draw(attribute_containers())) for _ in range(draw(st.integers(0, 2)))]
    status = draw(
        st.sampled_from(
            [Status(StatusCode.UNSET), Status(StatusCode.ERROR, "bad"), SubStatus(StatusCode.OK), None],
        )
    )
    return span(
        name=draw(st.one_of(st.text(max_size=6), st.sampled_from([b"bytes", Text("t"), None]))),
        context=draw(CONTEXTS),
        parent=draw(st.none() | CONTEXTS),
        resource=draw(st.sampled_from(RESOURCES)),
        attributes=draw(attribute_containers()),
        events=BoundedList.from_seq(8, events) if draw(st.booleans()) else events,
        links=links,
        kind=draw(st.sampled_from(list(SpanKind))),
        status=status,
        start_time=draw(TIMES),
        end_time=draw(TIMES),
        instrumentation_scope=draw(st.sampled_from(scopes)),
    )


def stock_or_none(encode: Callable[[list[Any]], bytes], items: list[Any]) -> bytes | None:
    try:
        return encode(items)
    except Exception:
        return None


def expected(encode: Callable[[list[Any]], bytes], batch: list[Any]) -> tuple[bytes, int]:
    """Stock's bytes for ``batch``; where stock fails it, its bytes for the items it can encode alone, and how
    many it cannot (spanbatch leaves those out)."""
    whole = stock_or_none(encode, batch)
    if whole is not None:
        return whole, 0
    good = [item for item in batch if stock_or_none(encode, [item]) is not None]
    return encode(good), len(batch) - len(good)


@pytest.mark.timeout(240)
@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(odd_spans(), max_size=5))
def test_generated_spans_give_the_stock_bytes_or_leave_out_what_stock_refuses(batch: list[ReadableSpan]) -> None:
    data, left_out = expected(stock_spans, batch)
    encoder = SpanEncoder()
    assert encoder.encode(batch) == data
    assert encoder.skipped_spans == left_out
    assert encoder.read(batch).to_bytes() == data  # the path spanbatch's processor reads batches by


@st.composite
def odd_records(draw: st.DrawFn, scopes: list[InstrumentationScope | None] = SCOPES) -> Any:
    log = record(
        draw(odd_values()),
        timestamp=draw(TIMES),
        observed_timestamp=draw(st.integers(0, 2**64 - 1)),
        trace_id=draw(st.integers(0, 2**128 - 1)),
        span_id=draw(st.integers(0, 2**64 - 1)),
        trace_flags=draw(st.integers(0, 255)),
        severity_text=draw(st.none() | st.text(max_size=4) | st.just(b"bytes")),
        severity_number=draw(st.none() | st.sampled_from(list(SeverityNumber))),
        attributes=draw(attribute_containers()),
        event_name=draw(st.none() | st.text(max_size=4) | st.just(Text("ev"))),
        resource=draw(st.sampled_from(RESOURCES)),
        scope=draw(st.sampled_from(scopes)),
    )
    return log


@pytest.mark.timeout(240)
@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(odd_records(), max_size=5))
def test_generated_records_give_the_stock_bytes_or_leave_out_what_stock_refuses(batch: list[Any]) -> None:
    data, left_out = expected(stock_logs, batch)
    encoder = LogEncoder()
    assert encoder.encode(batch) == data
    assert encoder.skipped_records == left_out
    assert encoder.read(batch).to_bytes() == data


# ---- end to end: the processor and exporter count what the encoder leaves out ------------------------------


def test_a_span_ended_at_true_is_dropped_as_unencodable_and_the_rest_arrive(
    http_receiver: OTLPReceiver, shutdown_later: Callable[[Any], Any]
) -> None:
    # The SDK stores span.end(end_time=True) as it is; the stock exporter then fails its whole batch.
    exporter = OTLPSpanExporter(endpoint=http_receiver.endpoint, timeout=5)
    processor = shutdown_later(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    tracer = provider_with(processor).get_tracer("t")
    for name in ("a", "b"):
        tracer.start_span(name, attributes={"level": Level.HIGH, "pair": Pair((1, 2))}).end()
    tracer.start_span("bool.end").end(end_time=True)  # type: ignore[arg-type]
    assert processor.force_flush(10_000)
    assert http_receiver.wait_for_spans(2)
    stats = processor.stats()
    assert (stats.enqueued, stats.exported, stats.dropped["unencodable"]) == (3, 2, 1)
    assert balanced(stats)
    assert http_receiver.span_names() == {"a": 1, "b": 1}


# ---- a request cut to a byte limit: each part is the stock request for its items ---------------------------


CUT_SIGNALS: dict[str, tuple[Callable[..., Any], Callable[[list[Any]], bytes], Callable[[int], Any]]] = {
    "spans": (lambda text, scope: span_with({"text": text}, instrumentation_scope=scope), stock_spans, SpanEncoder),
    "logs": (lambda body, scope: record(body, scope=scope), stock_logs, LogEncoder),
}


@pytest.mark.parametrize("scope", [InstrumentationScope("lib"), None], ids=["scope", "no scope"])
@pytest.mark.parametrize("signal", CUT_SIGNALS)
def test_an_item_too_large_between_two_of_its_group_leaves_them_one_group(
    signal: str, scope: InstrumentationScope | None
) -> None:
    # The stock encoder given the two that fit writes one ScopeSpans/ScopeLogs holding both.
    make, stock, encoder = CUT_SIGNALS[signal]
    batch = [make("x", scope), make("B" * 3000, scope), make("y", scope)]
    request = encoder(1000).read(batch)
    assert (request.parts, request.too_large, request.part_items(0)) == (1, 1, 2)
    assert request.part_to_bytes(0) == stock([batch[0], batch[2]])


def in_group_order(batch: list[Any]) -> list[Any]:
    """``batch`` in the order its request holds the items: by resource, then scope, first seen first."""
    groups: dict[Any, dict[Any, list[Any]]] = {}
    for item in batch:
        groups.setdefault(item.resource, {}).setdefault(item.instrumentation_scope or None, []).append(item)
    return [item for scopes in groups.values() for items in scopes.values() for item in items]


# Scopes that are equal only if they encode the same: a part of a request keeps the group's first
# object, which the stock encoder, given only that part's items, may not meet first.
SAME_ENCODING_SCOPES = [scope for scope in SCOPES if not (scope and scope.attributes.get("k") is True)]


@pytest.mark.timeout(240)
@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.integers(1, 1500), st.booleans())
def test_each_part_of_a_cut_request_is_the_stock_request_for_its_items(data: Any, limit: int, logs: bool) -> None:
    items, stock, encoder = (
        (odd_records(SAME_ENCODING_SCOPES), stock_logs, LogEncoder(limit))
        if logs
        else (odd_spans(SAME_ENCODING_SCOPES), stock_spans, SpanEncoder(limit))
    )
    batch = [item for item in data.draw(st.lists(items, max_size=8)) if stock_or_none(stock, [item]) is not None]
    fits = [item for item in in_group_order(batch) if len(stock([item])) <= limit]
    request = encoder.read(batch)  # type: ignore[attr-defined]
    assert request.too_large == len(batch) - len(fits)
    start = 0
    for index in range(request.parts):
        count = request.part_items(index)
        part = request.part_to_bytes(index)
        assert len(part) <= limit
        assert part == stock(fits[start : start + count])
        start += count
    assert start == len(fits)
