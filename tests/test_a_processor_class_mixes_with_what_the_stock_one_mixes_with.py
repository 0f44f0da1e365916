"""A class made from spanbatch's processor and another class (a plugin base with a metaclass of its own, a
``typing.Protocol``) is made wherever the stock processor's would be: a metaclass of spanbatch's that the stock
class does not have turns that into ``TypeError: metaclass conflict``."""

from __future__ import annotations

import typing

import pytest
import spanbatch
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor as StockBatchLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor as StockBatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class PluginMeta(type):
    """A registry's metaclass, as plugin systems use."""


class PluginBase(metaclass=PluginMeta):
    pass


class Flushes(typing.Protocol):
    def force_flush(self, timeout_millis: int = 30000) -> bool: ...


PAIRS = {
    "spans": (StockBatchSpanProcessor, spanbatch.BatchSpanProcessor),
    "logs": (StockBatchLogRecordProcessor, spanbatch.BatchLogRecordProcessor),
}


def mixed(base: type, other: type) -> type | None:
    """The class made from ``base`` and ``other``, or None where Python refuses it (a metaclass conflict)."""
    try:
        return type("Mix", (base, other), {})
    except TypeError:
        return None


@pytest.mark.parametrize("other", [PluginBase, Flushes], ids=["plugin-metaclass", "protocol"])
@pytest.mark.parametrize("signal", sorted(PAIRS))
def test_spanbatchs_processor_mixes_with_a_class_wherever_stocks_does(signal: str, other: type) -> None:
    stock, ours = PAIRS[signal]
    made = mixed(ours, other)
    # Where stock's refuses (its log processor is an ABC: not with a plugin metaclass of type's), so does ours.
    assert (made is None) == (mixed(stock, other) is None)
    if made is not None:
        assert made.__mro__[1] is ours
        assert other in made.__mro__


def test_a_mixed_span_processor_works() -> None:
    made = mixed(spanbatch.BatchSpanProcessor, PluginBase)
    assert made is not None
    exporter = InMemorySpanExporter()
    processor = made(exporter)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    provider.get_tracer(__name__).start_span("mixed").end()
    assert provider.force_flush(10_000)
    provider.shutdown()
    assert [span.name for span in exporter.get_finished_spans()] == ["mixed"]
