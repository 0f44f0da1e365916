"""An exporter class with ``__slots__`` (no instance ``__dict__``) whose ``__getattr__`` answers every name, as
some proxies and test doubles do: the stock processor takes it and calls its ``export`` with lists of spans, and
so must spanbatch's. Its fast paths are decided on the class, which declares none.

Before: the constructor raised ``TypeError: argument of type 'function' is not iterable``, having asked the
instance for its ``__dict__`` (which ``__getattr__`` answered with a function).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from spanbatch._capabilities import encodes_logs, encodes_spans, exports_many, spills

from tests.helpers import LONG, end_spans


class AnswersEverything:
    __slots__ = ("handed",)

    def __init__(self) -> None:
        self.handed: list[object] = []

    def export(self, spans: object) -> SpanExportResult:
        self.handed.append(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def __getattr__(self, name: str) -> Callable[..., Any]:
        return lambda *args, **kwargs: None


def test_the_class_declares_no_fast_path() -> None:
    exporter = AnswersEverything()
    assert (exports_many(exporter), encodes_spans(exporter), encodes_logs(exporter), spills(exporter)) == (
        False,
        False,
        False,
        False,
    )


@pytest.mark.timeout(30)
def test_its_export_gets_the_spans_as_lists(processor_class: Any, shutdown_later: Callable[[Any], Any]) -> None:
    exporter = AnswersEverything()
    processor = shutdown_later(processor_class(exporter, schedule_delay_millis=LONG))
    end_spans(processor, 3)
    assert processor.force_flush(5_000)
    (batch,) = exporter.handed
    assert isinstance(batch, list)
    assert len(batch) == 3
    assert all(isinstance(span, ReadableSpan) for span in batch)
