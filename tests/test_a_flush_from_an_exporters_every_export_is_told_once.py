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
from tests.helpers.apps import clean_env, run_app

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
    # At least the 5 full batches; each flush asked from an export may send a partial one sooner.
    assert len(exporter.flushed) >= 5
    assert not any(exporter.flushed)
    told = [record for record in caplog.records if "own export thread" in record.getMessage()]
    assert len(told) == 1, [record.getMessage() for record in told]


FORKING_APP = """
import os, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
import spanbatch


class FlushesEachTime(SpanExporter):
    def export(self, spans):
        processor.force_flush(1000)
        return SpanExportResult.SUCCESS


processor = spanbatch.BatchSpanProcessor(FlushesEachTime(), max_export_batch_size=1)
provider = TracerProvider(shutdown_on_exit=False)
provider.add_span_processor(processor)
tracer = provider.get_tracer("t")
tracer.start_span("parent").end()
assert processor.force_flush(10_000)
child = os.fork()
tracer.start_span("both").end()  # in the child: its own lane's first export
assert processor.force_flush(10_000)
processor.shutdown()
if child:
    os.waitpid(child, 0)
"""


def test_a_forked_child_tells_its_own_once() -> None:
    done = run_app(FORKING_APP, env=clean_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    # The parent's first export, and the child's: the child's lane is told afresh (a copy of the parent's flag
    # kept it quiet there).
    assert done.stderr.count("own export thread") == 2, done.stderr
