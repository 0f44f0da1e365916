"""The Rust encoder against the stock ``encode_spans(spans).SerializeToString()``: same bytes."""

from __future__ import annotations

import pytest

# spanbatch's encoder and exporters follow the 1.45 generation of the stock OTLP packages
# (None attribute values, the shared HTTP client); older releases (Python 3.9) differ.
pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")

import gc
import gzip
import math
import struct
import weakref
import zlib
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import MappingProxyType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.span import TraceState
from spanbatch._core import SpanEncoder, compress

from tests.helpers.examples import examples
from tests.helpers.otlp_spans import corpus, realistic_batch, stock_bytes


def test_corpus_is_byte_identical() -> None:
    spans = corpus()
    encoder = SpanEncoder()
    assert encoder.encode(spans) == stock_bytes(spans)
    assert (encoder.skipped_values, encoder.skipped_spans) == (0, 0)


@pytest.mark.parametrize("index", range(len(corpus())))
def test_each_span_alone_is_byte_identical(index: int) -> None:
    span = corpus()[index]
    assert SpanEncoder().encode([span]) == stock_bytes([span])


def test_equal_resources_share_a_group_in_first_seen_order() -> None:
    # corpus() makes three resources; the third equals the first but is another object,
    # with its attributes in another order. The stock dict groups it with the first and
    # encodes the group with the first object's attribute order.
    request = ExportTraceServiceRequest.FromString(SpanEncoder().encode(corpus()))
    assert len(request.resource_spans) == 2
    first = request.resource_spans[0]
    assert [kv.key for kv in first.resource.attributes] == ["service.name", "host.id", "tags"]
    assert [s.scope.name for s in first.scope_spans] == ["lib.plain", "lib.scoped"]


def test_empty_batch() -> None:
    assert SpanEncoder().encode([]) == stock_bytes([]) == b""


def test_encoder_reused_across_batches_and_resources() -> None:
    encoder = SpanEncoder()
    for _ in range(3):
        spans = corpus()  # new resource and scope objects every time
        assert encoder.encode(spans) == stock_bytes(spans)
    big = realistic_batch(64)
    assert encoder.encode(big) == stock_bytes(big)
    assert "cached_resources=" in repr(encoder)


def test_resource_cache_stays_bounded() -> None:
    encoder = SpanEncoder()
    for i in range(600):
        span = ReadableSpan("s", SpanContext(1, 2, False), resource=Resource({"i": i}))
        assert encoder.encode([span]) == stock_bytes([span])
    cached = int(repr(encoder).split("cached_resources=")[1].split(",")[0])
    assert cached <= 256


def hand_made(**overrides: Any) -> ReadableSpan:
    fields: dict[str, Any] = {
        "name": "hand",
        "context": SpanContext(0x1234, 0x5678, False, trace_state=TraceState([("k", "v")])),
        "resource": Resource({"r": 1}),
        "attributes": {"a": 1},
    }
    fields.update(overrides)
    return ReadableSpan(**fields)


def test_plain_containers_and_missing_values() -> None:
    # Spans built by hand (or by other SDK versions) need not use BoundedAttributes/BoundedList.
    spans = [
        hand_made(
            attributes={"plain": "dict", "n": None},
            events=[Event("e", {"x": 1.5}, timestamp=7), Event("no-attrs", None, timestamp=8)],
            links=[Link(SpanContext(5, 6, True), {"l": True}), Link(SpanContext(5, 7, False))],
            status=Status(StatusCode.ERROR),
        ),
        hand_made(attributes=None, start_time=None, end_time=None, status=None, events=(), links=()),
        hand_made(attributes=MappingProxyType({"proxy": b"bytes"}), name=""),
        hand_made(
            events=BoundedList.from_seq(1, [Event("kept", BoundedAttributes(1, {"a": 1, "b": 2}), 1)]),
            links=BoundedList.from_seq(0, [Link(SpanContext(1, 1, False))]),
            instrumentation_scope=InstrumentationScope("s", None, None, None),
            parent=SpanContext(1, 0, True),
        ),
    ]
    assert SpanEncoder().encode(spans) == stock_bytes(spans)


class RenamingSpan(ReadableSpan):
    """A subclass overriding a property: the encoder must honour it, as stock does."""

    @property
    def name(self) -> str:
        return "renamed:" + self._name

    @property
    def attributes(self) -> Mapping[str, Any]:
        return MappingProxyType({"from.property": True})


def test_subclass_is_read_through_public_properties() -> None:
    span = RenamingSpan("orig", SpanContext(1, 2, False), resource=Resource({}), attributes={"hidden": 1})
    data = SpanEncoder().encode([span])
    assert data == stock_bytes([span])
    decoded = ExportTraceServiceRequest.FromString(data).resource_spans[0].scope_spans[0].spans[0]
    assert decoded.name == "renamed:orig"
    assert [kv.key for kv in decoded.attributes] == ["from.property"]


class Opaque:
    """Not an attribute type; ``object.__str__`` only."""


class CustomMapping(Mapping[str, Any]):
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def bad_values() -> dict[Any, Any]:
    loop: list[Any] = []
    loop.append(loop)
    return {
        "object": Opaque(),
        "int.too.big": 2**64,
        "int.too.small": -(2**63) - 1,
        "surrogate": "\ud800",
        "nested.bad": (1, (2, Opaque())),
        "self.containing": loop,
        "set": {1, 2},
        5: "non-str key",
        "\udcff": "surrogate key",
    }


# Values that are not attribute types but that the stock encoder still encodes.
ODD_BUT_ENCODABLE = {
    "bytearray": bytearray(b"ab"),  # a Sequence: an array of ints
    "range": range(3),
    "custom.mapping": CustomMapping({"k": [1, "x"]}),
    "mapping.int.key": {1: "one"},  # keys go through str()
    "mapping.odd.key": {Opaque(): 1},  # ... even object.__str__
    "list": [1, 2],
    "ok": "still here",
}

# How many entries of bad_values() each encoder leaves out.
BAD_VALUE_COUNT = 9


def test_bad_attribute_values_are_left_out_like_stock() -> None:
    # Bypass the SDK's validation by writing into the stored containers, as buggy code might.
    spans = corpus()[:3]
    spans[0]._attributes._dict.update(bad_values())  # type: ignore[union-attr]
    spans[0]._attributes._dict.update(ODD_BUT_ENCODABLE)  # type: ignore[union-attr]
    spans[1]._events[0]._attributes._dict.update(bad_values())  # type: ignore[index]
    spans[2]._links[0]._attributes._dict.update(bad_values())  # type: ignore[index]
    resource = Resource({"fine": 1})
    # Not the non-str keys: they make Resource.__hash__ (json.dumps) raise, which fails the stock batch.
    hashable = {k: v for k, v in bad_values().items() if isinstance(k, str) and k != "self.containing"}
    resource._attributes._dict.update(hashable)  # type: ignore[attr-defined]
    spans.append(hand_made(resource=resource, attributes=bad_values()))
    encoder = SpanEncoder()
    assert encoder.encode(spans) == stock_bytes(spans)
    assert encoder.skipped_values == 5 * BAD_VALUE_COUNT - 2
    assert encoder.skipped_spans == 0


def test_unhashable_resource_groups_by_identity() -> None:
    # Legitimate difference: a resource whose hash raises fails the whole stock batch
    # (it is a dict key there); we group it by identity and export it.
    resource = Resource({"a": 1})
    resource._attributes._dict[5] = "non-str key makes json.dumps(sort_keys=True) raise"  # type: ignore[attr-defined]
    spans = [hand_made(resource=resource), hand_made(resource=resource), hand_made()]
    with pytest.raises(TypeError):
        stock_bytes(spans)
    request = ExportTraceServiceRequest.FromString(SpanEncoder().encode(spans))
    assert [len(r.scope_spans[0].spans) for r in request.resource_spans] == [2, 1]
    assert [kv.key for kv in request.resource_spans[0].resource.attributes] == ["a"]


def unreadable_spans() -> list[ReadableSpan]:
    return [
        hand_made(name="\ud800"),  # not UTF-8: protobuf refuses it
        hand_made(context=None),
        hand_made(kind="SERVER"),  # not a SpanKind
        hand_made(start_time=-1),
        hand_made(events=[object()]),
        hand_made(context=SpanContext(2**128, 1, False)),
        # Fails after its attributes are written, alone in its resource group: no empty group is left.
        hand_made(resource=Resource({"only": "a bad span"}), attributes={"a": 1}, events=[object()]),
    ]


def test_unreadable_span_is_left_out_not_the_batch() -> None:
    good = corpus()
    bad = unreadable_spans()
    mixed = [*good[:5], *bad, *good[5:]]
    for span in bad:
        # Legitimate difference: the stock encoder fails the whole batch on any of these.
        with pytest.raises(Exception):  # noqa: B017, PT011
            stock_bytes([*good, span])
    encoder = SpanEncoder()
    assert encoder.encode(mixed) == stock_bytes(good)
    assert encoder.skipped_spans == len(bad)
    assert encoder.last_skip_reason


def test_not_iterable_raises_type_error() -> None:
    with pytest.raises(TypeError):
        SpanEncoder().encode(42)


def test_nan_payloads_and_signed_zero_survive() -> None:
    (nan_payload,) = struct.unpack("<d", (0xFFF8_0000_0000_0001).to_bytes(8, "little"))  # signed, with a payload
    assert math.isnan(nan_payload)
    span = hand_made(attributes={"nan": nan_payload, "negzero": -0.0, "inf": math.inf})
    assert SpanEncoder().encode([span]) == stock_bytes([span])


@pytest.mark.parametrize(("encoding", "decompress"), [("gzip", gzip.decompress), ("deflate", zlib.decompress)])
def test_compress_round_trips(encoding: str, decompress: Any) -> None:
    data = stock_bytes(realistic_batch(32))
    packed = compress(data, encoding)
    assert len(packed) < len(data)
    assert decompress(packed) == data


def test_compress_rejects_unknown_encodings() -> None:
    with pytest.raises(ValueError, match="unknown content encoding"):
        compress(b"x", "br")


# ---- property test over random spans -------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)  # includes values outside int64
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.binary(max_size=12)
    # Long enough that the messages around them need a two-byte length, which the writer back-patches.
    | st.text(min_size=100, max_size=200)
    | st.binary(min_size=120, max_size=200)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4).map(tuple)
        | st.lists(children, max_size=3)
        | st.dictionaries(st.text(min_size=1, max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)
attribute_maps = st.dictionaries(st.text(min_size=1, max_size=10), values, max_size=6)


@st.composite
def containers(draw: st.DrawFn, limit: int | None = None) -> Any:
    """An attribute container as the SDK stores it (bounded) or as hand-made spans do (dict)."""
    attrs = draw(attribute_maps)
    if draw(st.booleans()):
        bounded = BoundedAttributes(maxlen=limit, immutable=False)
        bounded._dict.update(attrs)  # keep values as drawn, as a buggy caller could
        bounded.dropped = draw(st.integers(0, 2**32 - 1))
        return bounded
    return attrs


ids = st.integers(min_value=1, max_value=2**64 - 1)
contexts = st.builds(
    SpanContext,
    trace_id=st.integers(min_value=1, max_value=2**128 - 1),
    span_id=ids,
    is_remote=st.booleans(),
    trace_state=st.none()
    | st.lists(st.tuples(st.sampled_from(["a", "vendor", "x@y"]), st.sampled_from(["1", "v"])), max_size=2).map(
        TraceState
    ),
)
resources = st.sampled_from(
    [Resource({"service.name": "a"}), Resource({"service.name": "b"}, "https://s"), Resource({})]
)
scopes = st.sampled_from(
    [None, InstrumentationScope("x"), InstrumentationScope("y", "1", "https://y", {"k": "v"}), InstrumentationScope("")]
)


@st.composite
def spans(draw: st.DrawFn) -> ReadableSpan:
    events = [
        Event(draw(st.text(max_size=8)), draw(containers()), timestamp=draw(st.integers(0, 2**64 - 1)))
        for _ in range(draw(st.integers(0, 2)))
    ]
    links = [Link(draw(contexts), draw(containers())) for _ in range(draw(st.integers(0, 2)))]
    status = draw(st.sampled_from([Status(StatusCode.UNSET), Status(StatusCode.OK), Status(StatusCode.ERROR, "bad ü")]))
    return ReadableSpan(
        name=draw(st.text(max_size=16)),
        context=draw(contexts),
        parent=draw(st.none() | contexts),
        resource=draw(resources),
        attributes=draw(containers()),
        events=events,
        links=links,
        kind=draw(st.sampled_from(list(SpanKind))),
        status=status,
        start_time=draw(st.none() | st.integers(0, 2**64 - 1)),
        end_time=draw(st.none() | st.integers(0, 2**64 - 1)),
        instrumentation_scope=draw(scopes),
    )


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(spans(), max_size=6))
def test_random_spans_are_byte_identical(batch: list[ReadableSpan]) -> None:
    assert SpanEncoder().encode(batch) == stock_bytes(batch)


def test_cached_objects_in_a_cycle_are_collected() -> None:
    # The encoder holds its cached resources strongly; __traverse__/__clear__ let the GC
    # break a cycle running through it.
    encoder = SpanEncoder()
    resource = Resource({"cycle": True})
    resource.encoder = encoder  # type: ignore[attr-defined]
    assert encoder.encode([hand_made(resource=resource)])
    watch = weakref.ref(resource)
    del encoder, resource
    gc.collect()
    assert watch() is None


@pytest.mark.timeout(60)
def test_one_encoder_shared_by_threads() -> None:
    encoder = SpanEncoder()
    batches = [corpus() for _ in range(4)]
    expected = [stock_bytes(b) for b in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(5):
            assert list(pool.map(encoder.encode, batches)) == expected


class NoResourceSpan(ReadableSpan):
    @property
    def resource(self) -> Any:
        return None


class BrokenScope:
    @property
    def name(self) -> str:
        raise RuntimeError("scope broken")


def test_span_with_unreadable_resource_or_scope_is_left_out() -> None:
    good = corpus()
    no_resource = NoResourceSpan("r", SpanContext(1, 2, False))
    broken_scope = hand_made(resource=Resource({"only": "this span"}), instrumentation_scope=BrokenScope())
    encoder = SpanEncoder()
    # Legitimate difference: stock fails the batch; we leave out the two spans and say why.
    assert encoder.encode([no_resource, *good, broken_scope]) == stock_bytes(good)
    assert encoder.skipped_spans == 2
    assert "scope broken" in (encoder.last_skip_reason or "")


def test_a_left_out_span_does_not_reorder_the_groups() -> None:
    # Each left-out span is the first of its resource (and scope): the groups of the spans
    # that follow must still come out in their own first-seen order, as stock orders them.
    r1, r2, r3 = Resource({"r": 1}), Resource({"r": 2}), Resource({"r": 3})
    s1, s2 = InstrumentationScope("s1"), InstrumentationScope("s2")
    fails_half_way = hand_made(resource=r2, instrumentation_scope=s2, attributes={"a": 1}, events=[object()])
    broken_scope = hand_made(resource=r3, instrumentation_scope=BrokenScope())
    good = [
        hand_made(resource=r1, instrumentation_scope=s1),
        hand_made(resource=r2, instrumentation_scope=s1),
        hand_made(resource=r2, instrumentation_scope=s2),
        hand_made(resource=r3, instrumentation_scope=s1),
    ]
    encoder = SpanEncoder()
    assert encoder.encode([fails_half_way, broken_scope, *good]) == stock_bytes(good)
    assert encoder.skipped_spans == 2


class FreshResourceSpan(ReadableSpan):
    """Builds a new (short-lived) Resource on every read, as a careless subclass might."""

    @property
    def resource(self) -> Resource:
        return Resource({"shard": self._name})


def test_short_lived_resources_group_by_equality() -> None:
    # More fresh objects than the resource cache holds: addresses may be reused once an
    # object dies, so grouping must not confuse a new object with a dead one.
    spans = [FreshResourceSpan(str(i % 3), SpanContext(1, i + 1, False)) for i in range(600)]
    encoder = SpanEncoder()
    data = encoder.encode(spans)
    assert data == stock_bytes(spans)
    assert len(ExportTraceServiceRequest.FromString(data).resource_spans) == 3
