"""``force_flush(0)`` (or a negative timeout) asks the worker to export what is queued and returns False at once:
not done yet. The stock processor ignores its timeout, exports everything before it returns, and says True; here
the spans go out right after the call, not at the end of the 5 s schedule delay (revM asked what it does)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import spanbatch

from tests.helpers import RecordingExporter, end_spans, provider_with

pytestmark = pytest.mark.timeout(20)


@pytest.mark.parametrize("timeout", [0, -1])
def test_the_spans_go_out_without_waiting_for_the_schedule_delay(
    timeout: int, shutdown_later: Callable[[Any], Any]
) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    end_spans(provider_with(processor), 3)
    flushed = processor.force_flush(timeout)
    assert not flushed or len(exporter.spans) == 3  # True only if the worker had sent them already
    asked = time.monotonic()
    while len(exporter.spans) < 3 and time.monotonic() < asked + 5:
        time.sleep(0.005)
    assert len(exporter.spans) == 3
    stats = processor.stats()
    assert (stats.exported, stats.queued, stats.in_flight) == (3, 0, 0)
