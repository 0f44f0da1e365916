"""spanbatch looks at a span's class (stock never does) to decide whether to read its stored context directly;
that look must cost the application nothing stock would not: no reference a span kept to the class (the first few
such classes are kept, one reference each, for the fast path), no Ctrl-C lost.

Before, each span of a class that keeps the SDK's ``ReadableSpan.context``, other than the first such class seen,
took one more reference to its class, never given back; and a Ctrl-C landing while the class was looked at (in
its metaclass's own attribute lookup) was swallowed, the span then read as if nothing had happened.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, TraceFlags

from tests.helpers import RecordingExporter, end_spans

SAMPLED = SpanContext(1, 2, False, TraceFlags(TraceFlags.SAMPLED))
UNSAMPLED = SpanContext(1, 2, False, TraceFlags(TraceFlags.DEFAULT))


class Mine(ReadableSpan):
    """A class of the application's that keeps the SDK's ``context``."""


def test_looking_at_a_class_keeps_no_reference_a_span_to_it(processor_class: Any, shutdown_later: Any) -> None:
    processor = shutdown_later(processor_class(RecordingExporter()))
    end_spans(processor, 1)  # a ReadableSpan first: Mine is not the first such class seen
    spans = [Mine("unsampled", context=UNSAMPLED) for _ in range(100)]
    references = sys.getrefcount(Mine)
    for span in spans:
        processor.on_end(span)
    assert sys.getrefcount(Mine) - references <= 1  # kept once among the first few classes, never once a span


class InterruptedLookup(type):
    """A metaclass in whose class attribute lookup the user presses Ctrl-C (a real SIGINT, default handler)."""

    looked_up = 0

    def __getattribute__(cls, name: str) -> Any:
        if name == "context":
            InterruptedLookup.looked_up += 1
            signal.raise_signal(signal.SIGINT)
        return super().__getattribute__(name)


class Interrupted(ReadableSpan, metaclass=InterruptedLookup):
    pass


def test_a_ctrl_c_while_the_class_is_looked_at_reaches_the_caller(processor_class: Any, shutdown_later: Any) -> None:
    processor = shutdown_later(processor_class(RecordingExporter()))
    InterruptedLookup.looked_up = 0
    # As an interactive program has it (a suite started in the background has SIGINT ignored).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        processor.on_end(Interrupted("span", context=SAMPLED))
    except KeyboardInterrupt:
        interrupted = True
    else:
        interrupted = False
    finally:
        signal.signal(signal.SIGINT, previous)
    # Stock never looks at the class; whoever does must let the Ctrl-C through.
    assert interrupted == (InterruptedLookup.looked_up > 0)
