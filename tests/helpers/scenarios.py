"""Steps several tests go through the same way."""

from __future__ import annotations

import time
from collections.abc import Callable

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider
from spanbatch import BatchLogRecordProcessor, BatchSpanProcessor, SpanStats

from tests.helpers.spans import end_spans


def flush_then_shut_down_while_stuck(
    processor: BatchSpanProcessor | BatchLogRecordProcessor,
    provider: TracerProvider | LoggerProvider,
    queue_40: Callable[[], object] | None = None,
) -> tuple[float, float, SpanStats]:
    """With an export stuck: a 300 ms flush (must fail), 40 more spans (or what ``queue_40`` queues), then shutdown.

    Returns the flush and shutdown durations in seconds and the stats right after shutdown.
    """
    started = time.monotonic()
    assert processor.force_flush(300) is False
    flush_seconds = time.monotonic() - started
    if queue_40 is not None:
        queue_40()
    else:
        assert isinstance(provider, TracerProvider)
        end_spans(provider, 40, name="queued")
    started = time.monotonic()
    provider.shutdown()
    return flush_seconds, time.monotonic() - started, processor.stats()
