"""A span whose stored context is not the SDK's own ``SpanContext`` holding the SDK's own ``TraceFlags`` is read
the public way, ``span.context.trace_flags.sampled``, as the stock processor reads every span.

spanbatch reads the flags out of the stored tuple directly; it took any tuple whose fourth item is an int, so a
context made with ``trace_flags=1`` (an int: stock raises ``AttributeError``, it has no ``sampled``), a plain
tuple, or flags whose class answers ``sampled`` otherwise were queued where stock refuses or passes them over.
"""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, TraceFlags

from tests.helpers import RecordingExporter, balanced


class NeverSampled(TraceFlags):
    """Flags whose own ``sampled`` is the contract, whatever their bits."""

    @property
    def sampled(self) -> bool:
        return False


def test_int_flags_and_a_plain_tuple_are_refused(processor_class: Any, shutdown_later: Any) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(processor_class(exporter))
    for context in [SpanContext(1, 2, False, trace_flags=1), (1, 2, False, 1, None, True)]:  # type: ignore[arg-type]
        with pytest.raises(AttributeError, match="object has no attribute"):
            processor.on_end(ReadableSpan("refused", context=context))
    processor.on_end(ReadableSpan("taken", context=SpanContext(1, 2, False, TraceFlags(TraceFlags.SAMPLED))))

    assert processor.force_flush(5000)
    assert [span.name for span in exporter.spans] == ["taken"]
    if hasattr(processor, "stats"):
        assert (processor.stats().enqueued, processor.stats().exported) == (1, 1)
        assert balanced(processor.stats())


def test_flags_that_answer_unsampled_are_passed_over(processor_class: Any, shutdown_later: Any) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(processor_class(exporter))
    processor.on_end(ReadableSpan("skipped", context=SpanContext(1, 2, False, NeverSampled(TraceFlags.SAMPLED))))

    assert processor.force_flush(5000)
    assert exporter.spans == []


def test_flags_past_a_machine_word_or_negative_are_read_by_their_low_bit(
    processor_class: Any, shutdown_later: Any
) -> None:
    # ``sampled`` is ``bool(flags & 1)`` whatever the int; spanbatch reads the low bit itself within an i64.
    exporter = RecordingExporter()
    processor = shutdown_later(processor_class(exporter))
    flags = {"minus one": -1, "minus two": -2, "2**63 + 1": 2**63 + 1, "2**64": 2**64, "2**64 + 3": 2**64 + 3}
    for name, value in flags.items():
        processor.on_end(ReadableSpan(name, context=SpanContext(1, 2, False, TraceFlags(value))))

    assert processor.force_flush(5000)
    assert [span.name for span in exporter.spans] == ["minus one", "2**63 + 1", "2**64 + 3"]
