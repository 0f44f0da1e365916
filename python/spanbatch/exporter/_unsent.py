"""What spanbatch's OTLP exporters count in their own metrics (``otel.sdk.exporter.*.exported``) as failed
without sending it: the items a batch's request left out, and the parts after one that failed.

The stock exporters count a batch they could not send as one failed operation; spanbatch's send what they can
of it, in parts, and count the rest beside those parts, each with an ``error.type`` naming why.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from spanbatch._core import LogRequest, NotSentError, SpanRequest


class Operation(Protocol):
    """What ``export_operation`` yields: the outcome the ``with`` block sets (the stock ``ExportResult``)."""

    error: Exception | None


class ExporterMetrics(Protocol):
    """The stock exporters' own metrics (``_metrics``, SDK 1.45+): one ``export_operation`` per request."""

    def export_operation(self, num_items: int) -> AbstractContextManager[Operation]: ...


class UnencodableItemError(Exception):
    """An item the encoder could not read (spanbatch's processors drop it as ``unencodable``)."""


def count_failed(metrics: ExporterMetrics | None, items: int, error: Exception) -> None:
    """``items`` counted by an exporter's metrics (the stock ``_metrics``) as one operation failed with ``error``."""
    if metrics is not None and items > 0:
        with metrics.export_operation(items) as result:
            result.error = error


def count_left_out(metrics: ExporterMetrics | None, request: SpanRequest | LogRequest, too_large: Exception) -> None:
    """The items ``request`` left out: over the byte limit as ``too_large``, unreadable as unencodable."""
    count_failed(metrics, request.too_large, too_large)
    count_failed(metrics, request.left_out - request.too_large, UnencodableItemError("left out: unreadable"))


def count_unsent(metrics: ExporterMetrics | None, request: SpanRequest | LogRequest, parts: list[int]) -> None:
    """The items of ``parts``, never sent because an earlier part of their batch failed."""
    items = sum(request.part_items(index) for index in parts)
    count_failed(metrics, items, NotSentError("an earlier part of the batch failed"))
