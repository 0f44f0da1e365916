"""An exporter that calls its processor's ``force_flush`` in every ``export`` (a flush it means for its own buffer,
sent to the processor by a shared helper) is told once per lane that the flush does not wait there, not once per
export: a busy service logged a warning per batch, with the same words each time. Every call still asks the worker to
flush and returns False (stock's waits for ever there)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan

from tests.helpers import RecordingExporter, end_spans, provider_with

pytestmark = pytest.mark.timeout(30)


class FlushesEachTime(RecordingExporter):
    def __init__(self) -> None:
        super().__init__()
        self.processor: Any = None
        self.flushed: list[bool] = []

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        self.flushed.append(self.processor.force_flush())
        return super().export(spans)


def test_the_warning_is_told_once_per_lane(
    caplog: pytest.LogCaptureFixture, shutdown_later: Callable[[Any], Any]
) -> None:
    exporter = FlushesEachTime()
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(exporter, max_export_batch_size=2, schedule_delay_millis=60_000)
    )
    exporter.processor = processor
    with caplog.at_level(logging.WARNING, logger="spanbatch"):
        end_spans(provider_with(processor), 10)
        assert processor.force_flush(10_000)
    assert len(exporter.spans) == 10
    assert exporter.flushed == [False] * 5
    told = [record for record in caplog.records if "own export thread" in record.getMessage()]
    assert len(told) == 1, [record.getMessage() for record in told]
