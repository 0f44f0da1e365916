"""Corners of attribute values where the stock encoder's own rules decide: the Rust encoder follows them.

- A key inside a nested mapping becomes ``str(key)``, so a ``str`` subclass's ``__str__`` decides
  it (a top-level key is written as the string it is).
- Nesting: the stock encoder builds each message from parts that protobuf (upb) copies by
  parsing them, which fails past 101 nested messages. A value too deep for its own ``KeyValue``
  is left out (logged); one that fits there but not in its ``ResourceSpans`` makes the stock
  encoder fail the whole batch, where spanbatch leaves that one attribute out instead.
"""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")

from collections.abc import Callable
from typing import Any

from google.protobuf.internal import api_implementation
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext
from spanbatch._core import SpanEncoder

from tests.helpers.otlp_spans import stock_bytes


class Shout(str):
    def __str__(self) -> str:
        return self.upper()


class NotAString(str):
    def __str__(self) -> Any:
        return 5  # noqa: PLE0307 -- str() of it raises TypeError, which the stock encoder catches


pytestmark = pytest.mark.usefixtures("quiet_stock_encoder")


class Plain(str):
    pass


def span_with(attributes: dict[Any, Any]) -> ReadableSpan:
    return ReadableSpan("s", SpanContext(1, 2, False), attributes=attributes, resource=Resource({}))


@pytest.mark.parametrize(
    ("attributes", "skipped"),
    [
        pytest.param({"m": {Shout("key"): 1}}, 0, id="nested-str-subclass-key"),
        pytest.param({"m": {"n": [{Shout("deep"): "v"}]}}, 0, id="deeper-str-subclass-key"),
        pytest.param({"m": {Plain("key"): 1}}, 0, id="nested-plain-subclass-key"),
        pytest.param({"m": {NotAString("key"): 1}, "ok": 1}, 1, id="nested-key-whose-str-fails"),
        pytest.param({Shout("key"): 1}, 0, id="top-level-str-subclass-key"),
        pytest.param({"v": Shout("val"), "l": [Shout("x")], "m": {"k": Shout("y")}}, 0, id="str-subclass-values"),
        pytest.param({"m": {5: 1, None: 2, (1, 2): 3}}, 0, id="nested-non-str-keys"),
    ],
)
def test_keys_are_the_stock_encoders(attributes: dict[Any, Any], skipped: int) -> None:
    span = span_with(attributes)
    encoder = SpanEncoder()
    assert encoder.encode([span]) == stock_bytes([span])
    assert encoder.skipped_values == skipped


# ---- nesting ----------------------------------------------------------------------------------


def lists(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def maps(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"k": value}
    return value


def alternating(depth: int) -> Any:
    value: Any = None
    for level in range(depth):
        value = [value, 1] if level % 2 else {"k": value}
    return value


SHAPES: dict[str, Callable[[int], Any]] = {
    "lists": lists,
    "maps": maps,
    "empty-list-leaf": lambda depth: lists(depth - 1, []),
    "empty-map-leaf": lambda depth: maps(depth - 1, {}),
    "none-leaf": lambda depth: lists(depth, None),
    "alternating": alternating,
}

CONTEXT = SpanContext(1, 2, False)


def placed(place: str, attributes: dict[str, Any]) -> ReadableSpan:
    """A span carrying ``attributes`` as the attributes of ``place``."""
    if place == "resource":
        return ReadableSpan("s", CONTEXT, resource=Resource(attributes))
    if place == "scope":
        scope = InstrumentationScope("lib", "1", None, attributes)
        return ReadableSpan("s", CONTEXT, resource=Resource({}), instrumentation_scope=scope)
    if place == "event":
        return ReadableSpan("s", CONTEXT, resource=Resource({}), events=[Event("e", attributes, timestamp=1)])
    if place == "link":
        return ReadableSpan("s", CONTEXT, resource=Resource({}), links=[Link(SpanContext(1, 3, False), attributes)])
    return ReadableSpan("s", CONTEXT, resource=Resource({}), attributes=attributes)


def stock_outcome(place: str, value: Any) -> tuple[bytes, int]:
    """The stock bytes for ``{"deep": value, "ok": 1}`` at ``place``, and whether they leave ``deep`` out.

    Where the stock encoder fails the whole batch, spanbatch leaves out the one attribute.
    """
    without = stock_bytes([placed(place, {"ok": 1})])
    try:
        encoded = encode_spans([placed(place, {"deep": value, "ok": 1})]).SerializeToString()
    except Exception:
        return without, 1
    return encoded, int(encoded == without)


@pytest.mark.skipif(api_implementation.Type() != "upb", reason="the nesting limits are those of upb's copies")
@pytest.mark.parametrize("place", ["span", "event", "link", "resource", "scope"])
@pytest.mark.parametrize("shape", SHAPES)
def test_nesting_gives_the_stock_bytes_or_the_stock_skip(place: str, shape: str) -> None:
    outcomes = set()
    for depth in range(1, 60):
        value = SHAPES[shape](depth)
        expected, skipped = stock_outcome(place, value)
        outcomes.add(skipped)
        encoder = SpanEncoder()
        same = encoder.encode([placed(place, {"deep": value, "ok": 1})]) == expected
        assert (same, encoder.skipped_values) == (True, skipped), f"depth {depth}"
    assert outcomes == {0, 1}  # the range reaches past the limit


def test_a_self_containing_list_is_left_out() -> None:
    looped: list[Any] = []
    looped.append(looped)
    span = span_with({"loop": looped, "ok": 1})
    encoder = SpanEncoder()
    assert encoder.encode([span]) == stock_bytes([span])
    assert encoder.skipped_values == 1
