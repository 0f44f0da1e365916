"""A subclass of spanbatch's OTLP exporter made with a metaclass whose ``__subclasscheck__`` raises (some proxying and
registry metaclasses refuse such checks): the stock processor never asks, so it takes the exporter; spanbatch decides
its fast paths from the classes' own namespaces and must not run that hook either. Its overridden ``export`` gets lists.

Before: the constructor raised the metaclass's ``RuntimeError`` from ``issubclass`` in the fast-path decision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult
from spanbatch import BatchSpanProcessor
from spanbatch.exporter import OTLPSpanExporter

from tests.helpers import LONG, end_spans


class RefusesSubclassChecks(type(OTLPSpanExporter)):  # type: ignore[misc]
    def __subclasscheck__(cls, subclass: type) -> bool:
        raise RuntimeError("no subclass checks here")


class RefusesComparisons(RefusesSubclassChecks):
    """Its classes compared with ``==`` raise too (a metaclass whose ``__eq__`` builds an expression)."""

    def __eq__(cls, other: object) -> bool:
        raise RuntimeError("no comparisons here")

    __hash__ = type.__hash__


class Redacting(OTLPSpanExporter, metaclass=RefusesSubclassChecks):
    def __init__(self) -> None:
        super().__init__(endpoint="http://127.0.0.1:9/v1/traces")  # never sent to
        self.handed: list[object] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.handed.append(spans)
        return SpanExportResult.SUCCESS


class RedactingUncompared(Redacting, metaclass=RefusesComparisons):
    def export(self, spans: Any) -> SpanExportResult:
        return super().export(spans)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("exporter_class", [Redacting, RedactingUncompared])
def test_its_export_gets_the_spans_as_lists(
    exporter_class: type[Redacting], shutdown_later: Callable[[Any], Any]
) -> None:
    exporter = exporter_class()
    processor = shutdown_later(BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
    end_spans(processor, 3)
    assert processor.force_flush(5_000)
    (batch,) = exporter.handed
    assert isinstance(batch, list)
    assert len(batch) == 3
