"""The Rust ``LogEncoder`` against the stock ``encode_logs(batch).SerializeToString()``: same bytes."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")

import math
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext
from spanbatch._core import LogEncoder, LogRequest, SpanEncoder

from tests.helpers.examples import examples
from tests.helpers.otlp_logs import BODIES, corpus, genai_batch, record, stock_bytes


def test_corpus_is_byte_identical() -> None:
    records = corpus()
    encoder = LogEncoder()
    assert encoder.encode(records) == stock_bytes(records)
    assert (encoder.skipped_values, encoder.skipped_records) == (0, 0)


@pytest.mark.parametrize("index", range(len(corpus())))
def test_each_record_alone_is_byte_identical(index: int) -> None:
    log = corpus()[index]
    assert LogEncoder().encode([log]) == stock_bytes([log])


def test_the_corpus_covers_every_field() -> None:
    request = ExportLogsServiceRequest.FromString(LogEncoder().encode(corpus()))
    assert len(request.resource_logs) == 4  # "a" (and an equal one), "b", the default, the empty one
    logs = [log for r in request.resource_logs for s in r.scope_logs for log in s.log_records]
    kinds = {log.body.WhichOneof("value") for log in logs}
    assert kinds == {None, "string_value", "bytes_value", "int_value", "double_value", "bool_value"} | {
        "array_value",
        "kvlist_value",
    }
    assert {log.severity_number for log in logs} == {s.value for s in SeverityNumber}
    assert any(log.dropped_attributes_count for log in logs)
    assert any(log.event_name for log in logs)
    assert any(log.flags == 255 for log in logs)


def test_empty_batch_and_request() -> None:
    assert LogEncoder().encode([]) == stock_bytes([]) == b""
    request = LogEncoder().read([record(), record()])
    assert isinstance(request, LogRequest)
    assert (len(request), request.left_out) == (2, 0)
    assert request.to_bytes() == stock_bytes([record(), record()])
    assert "records=2" in repr(request)


@pytest.mark.parametrize("size", [100_000, 1_000_000])
@pytest.mark.parametrize("kind", ["ascii", "unicode", "bytes", "nested"])
def test_large_bodies(size: int, kind: str) -> None:
    body: Any = {
        "ascii": "x" * size,
        "unicode": ("é🌍" * size)[:size],
        "bytes": bytes(range(256)) * (size // 256),
        "nested": {"content": "y" * size, "parts": ["z" * (size // 4)] * 2},
    }[kind]
    batch = [record(body), record("small"), record(body, event_name="again")]
    assert LogEncoder().encode(batch) == stock_bytes(batch)


def test_genai_batch_is_byte_identical() -> None:
    batch = genai_batch(64)
    encoder = LogEncoder()
    for _ in range(2):  # the second time through the encoder's caches
        assert encoder.encode(batch) == stock_bytes(batch)


def test_utf8_bytes_for_strings_like_stock() -> None:
    log = record(severity_text=b"WARN", event_name="caf\xc3\xa9".encode("latin-1"))  # type: ignore[arg-type]
    assert LogEncoder().encode([log]) == stock_bytes([log])


def test_utf8_bytes_for_strings_in_spans_too() -> None:
    # The string rule is the span encoder's too: a bytes span name encodes as stock encodes it.
    span = ReadableSpan(b"bytes name", SpanContext(1, 2, False))  # type: ignore[arg-type]
    assert SpanEncoder().encode([span]) == encode_spans([span]).SerializeToString()


def test_plain_int_severity_is_left_unset_like_stock() -> None:
    # The stock encoder writes ``getattr(severity_number, "value", None)``: an int has no ``value``.
    log = record(severity_number=9)  # type: ignore[arg-type]
    assert LogEncoder().encode([log]) == stock_bytes([log])
    assert (
        ExportLogsServiceRequest.FromString(stock_bytes([log]))
        .resource_logs[0]
        .scope_logs[0]
        .log_records[0]
        .severity_number
        == 0
    )


@dataclass(frozen=True)
class _Redacted(ReadableLogRecord):
    """A subclass overriding what it exposes: read through its public attributes, as stock does."""

    @property
    def dropped_attributes(self) -> int:
        return 7

    @property
    def resource(self) -> Resource:  # type: ignore[override]
        return Resource({"redacted": True})

    @resource.setter
    def resource(self, _: Resource) -> None:
        pass


def test_subclass_is_read_through_public_attributes() -> None:
    base = record("secret", attributes={"a": 1})
    log = _Redacted(base.log_record, base.resource, InstrumentationScope("s"))
    assert LogEncoder().encode([log, base]) == stock_bytes([log, base])


def _stock_raises(log: ReadableLogRecord) -> bool:
    try:
        stock_bytes([log])
    except Exception:
        return True
    return False


def _unencodable() -> list[ReadableLogRecord]:
    bad_resource = record()
    object.__setattr__(bad_resource, "resource", None)
    return [
        record(object()),
        record({"k": object()}),
        record([1, [2, {3: set()}]]),
        record(2**64),
        record(-(2**63) - 1),
        record("\ud800 lone surrogate"),
        record({"nested": "\udfff"}),
        record(timestamp=-1),
        record(observed_timestamp=2**64),
        record(trace_id=-5),
        record(span_id=2**64),
        record(severity_text=b"\xff not UTF-8"),  # type: ignore[arg-type]
        bad_resource,
    ]


@pytest.mark.parametrize("index", range(len(_unencodable())))
def test_unencodable_record_is_left_out_and_counted(index: int) -> None:
    bad = _unencodable()[index]
    assert _stock_raises(bad)  # the stock encoder fails the whole batch
    good = [record("before"), record("after", event_name="e")]
    encoder = LogEncoder()
    request = encoder.read([good[0], bad, good[1]])
    assert (len(request), request.left_out) == (3, 1)
    assert request.to_bytes() == stock_bytes(good)
    assert encoder.skipped_records == 1
    assert encoder.last_skip_reason


def test_left_out_record_gives_its_new_groups_no_place() -> None:
    bad = record(object(), resource=Resource({"only": "bad"}), scope=InstrumentationScope("bad"))
    good = [record("a", scope=InstrumentationScope("x")), record("b", resource=Resource({"r": 2}))]
    assert LogEncoder().encode([bad, *good]) == stock_bytes(good)


def test_bad_attribute_values_are_left_out_like_stock() -> None:
    log = record(attributes={"ok": 1, "bad": object(), "big": 2**64, "also": "fine"})
    encoder = LogEncoder()
    assert encoder.encode([log]) == stock_bytes([log])
    assert (encoder.skipped_values, encoder.skipped_records) == (2, 0)


def _nested(depth: int) -> Any:
    body: Any = "leaf"
    for level in range(depth):
        body = [body] if level % 2 else {"k": body}
    return body


def test_body_nesting_limit_matches_stock() -> None:
    deepest = max(d for d in range(30, 110) if not _stock_raises(record(_nested(d))))
    for depth in (deepest - 1, deepest):
        assert LogEncoder().encode([record(_nested(depth))]) == stock_bytes([record(_nested(depth))])
    request = LogEncoder().read([record(_nested(deepest + 1))])
    assert (request.left_out, request.to_bytes()) == (1, b"")


def test_attribute_nesting_limit_matches_stock() -> None:
    def nested_attribute(depth: int) -> ReadableLogRecord:
        return record(attributes={"ok": 1, "deep": _nested(depth)})

    deepest = max(d for d in range(30, 110) if not _stock_raises(nested_attribute(d)))
    for depth in (deepest - 1, deepest):
        assert LogEncoder().encode([nested_attribute(depth)]) == stock_bytes([nested_attribute(depth)])
    # Deeper, the stock encoder drops the key or fails the whole batch; we drop the key, counted.
    encoder = LogEncoder()
    assert encoder.encode([nested_attribute(deepest + 1)]) == stock_bytes([record(attributes={"ok": 1})])
    assert (encoder.skipped_values, encoder.skipped_records) == (1, 0)


def test_nan_and_signed_zero_bodies_survive() -> None:
    for body in (math.nan, -0.0, -math.inf):
        decoded = ExportLogsServiceRequest.FromString(LogEncoder().encode([record(body)]))
        value = decoded.resource_logs[0].scope_logs[0].log_records[0].body.double_value
        assert math.copysign(1, value) == math.copysign(1, body)


# Hypothesis: random bodies, attributes and fields against stock.
_keys = st.text(max_size=8)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.binary(max_size=40),
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.lists(inner, max_size=3).map(tuple) | st.dictionaries(_keys, inner, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def log_records(draw: st.DrawFn) -> ReadableLogRecord:
    return record(
        draw(_values),
        timestamp=draw(st.none() | st.integers(min_value=0, max_value=2**64 - 1)),
        observed_timestamp=draw(st.integers(min_value=0, max_value=2**64 - 1)),
        trace_id=draw(st.integers(min_value=0, max_value=2**128 - 1)),
        span_id=draw(st.integers(min_value=0, max_value=2**64 - 1)),
        trace_flags=draw(st.integers(min_value=0, max_value=255)),
        severity_text=draw(st.none() | st.text(max_size=10)),
        severity_number=draw(st.none() | st.sampled_from(list(SeverityNumber))),
        attributes=draw(st.none() | st.dictionaries(_keys, _values, max_size=5)),
        event_name=draw(st.none() | st.text(max_size=10)),
        resource=draw(st.sampled_from([Resource({"a": 1}), Resource({"b": 2}, "u"), Resource({})])),
        scope=draw(st.sampled_from([None, InstrumentationScope("s"), InstrumentationScope("t", "1", "u", {"x": 1})])),
    )


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(log_records(), max_size=6))
def test_random_records_are_byte_identical(batch: list[ReadableLogRecord]) -> None:
    assert LogEncoder().encode(batch) == stock_bytes(batch)


@settings(max_examples=examples(100), deadline=None)
@given(st.sampled_from(BODIES), st.text(max_size=3))
def test_reader_and_encoder_agree(body: Any, name: str) -> None:
    batch = [record(body, event_name=name), record(name)]
    encoder = LogEncoder()
    assert encoder.read(batch).to_bytes() == encoder.encode(batch) == stock_bytes(batch)
