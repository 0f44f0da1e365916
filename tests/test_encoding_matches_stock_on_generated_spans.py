"""Found by a differential hunt: inputs where the Rust encoders wrote other bytes than the stock
``encode_spans`` / ``encode_logs`` + ``SerializeToString()``, or a payload where stock refuses the item.

Where stock fails its whole batch, spanbatch leaves out (and counts) the one span or record instead.
"""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")

import logging
from collections.abc import Callable, Iterator
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import SpanContext
from spanbatch._core import LogEncoder, SpanEncoder

from tests.helpers.otlp_logs import record

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def quiet_stock_encoder() -> Iterator[None]:
    stock = logging.getLogger("opentelemetry.exporter.otlp.proto.common._internal")
    stock.disabled = True
    yield
    stock.disabled = False


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


@pytest.mark.parametrize("field", ["timestamp", "observed_timestamp"])
def test_a_bool_timestamp_leaves_the_log_record_out(field: str) -> None:
    bad, good = record("x", **{field: True}), record("fine")
    with pytest.raises(TypeError, match="got a bool"):
        stock_logs([bad])
    encoder = LogEncoder()
    assert encoder.encode([bad, good]) == stock_logs([good])
    assert encoder.skipped_records == 1
