"""The first drop of a lane is told at once, as the stock processor logs its first full-queue line at once; the
next ones at most once per interval (10 s), aggregated. A user watching the log of a process that starts to lose
spans must not wait ten seconds to learn of it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan

from tests.helpers import RecordingExporter, provider_with

pytestmark = pytest.mark.timeout(30)

# Generous: stock tells it on the thread that ends the item, before the next one ends.
TOLD_WITHIN_SECONDS = 10.0


class HeldExporter(RecordingExporter):
    """Each export waits until the test lets it go: the queue behind it fills."""

    def __init__(self) -> None:
        super().__init__()
        self.go = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        self.go.wait(10)
        return super().export(spans)


def queue_full_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "spanbatch" and "queue full" in r.getMessage()]


def told_within(caplog: pytest.LogCaptureFixture, seconds: float) -> list[str]:
    """The queue-full lines once there is one, or after ``seconds``: the first comes from the drop teller, a thread of
    its own, which a loaded machine may run only after the flush has returned."""
    deadline = time.monotonic() + seconds
    while not queue_full_lines(caplog) and time.monotonic() < deadline:
        time.sleep(0.02)
    return queue_full_lines(caplog)


def test_a_full_queue_is_told_at_once_then_at_most_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    exporter = HeldExporter()
    processor = spanbatch.BatchSpanProcessor(exporter, max_queue_size=4, max_export_batch_size=2)
    tracer = provider_with(processor).get_tracer("tests")
    with caplog.at_level(logging.WARNING):
        for _ in range(20):
            tracer.start_span("s").end()
        exporter.go.set()
        assert processor.force_flush(10_000)
        first = told_within(caplog, TOLD_WITHIN_SECONDS)
        exporter.go.clear()
        for _ in range(20):  # more drops within the interval: told later, with their count
            tracer.start_span("s").end()
        exporter.go.set()
        assert processor.force_flush(10_000)
        within_the_interval = queue_full_lines(caplog)
        processor.shutdown()
        at_shutdown = queue_full_lines(caplog)
    assert len(first) == 1, first
    assert within_the_interval == first
    assert len(at_shutdown) == 2, at_shutdown
    dropped = processor.stats().dropped["queue_full"]
    counts = [int(line.split("dropped ")[1].split()[0]) for line in at_shutdown]
    assert sum(counts) == dropped > 0
