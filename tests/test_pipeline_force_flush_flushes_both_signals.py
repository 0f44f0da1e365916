"""``Pipeline.force_flush`` flushes every backend, as it says: both signals' lanes, as ``flush_by_backend`` and
``shutdown`` do. A user who calls it before a hand-off (a serverless return, a test's assertion) gets the log
records already emitted to the backends too, not only the spans."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import spanbatch
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider
from spanbatch.testing import OTLPReceiver

from tests.helpers import LONG, balanced

pytestmark = pytest.mark.timeout(60)
Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


def test_force_flush_delivers_the_log_records_as_well_as_the_spans(
    receiver: OTLPReceiver, shutdown_later: Later
) -> None:
    tracer_provider, logger_provider = TracerProvider(), LoggerProvider()
    receivers = {"a": receiver}
    pipeline = shutdown_later(
        spanbatch.install(
            tracer_provider,
            {name: rx.span_exporter(timeout=5) for name, rx in receivers.items()},
            logger_provider=logger_provider,
            log_exporters={name: rx.log_exporter(timeout=5) for name, rx in receivers.items()},
            schedule_delay_millis=LONG,
        )
    )
    tracer_provider.get_tracer("t").start_span("s").end()
    logger_provider.get_logger("t").emit(LogRecord(body="said"))

    assert pipeline.force_flush(10_000)

    # Flushed: on the receivers now, without waiting for the (long) schedule delay.
    assert [rx.stats().spans for rx in receivers.values()] == [1]
    assert [rx.stats().log_records for rx in receivers.values()] == [1]
    assert pipeline.logs is not None
    assert pipeline.logs.stats().exported == 1
    assert balanced(pipeline.logs.stats())
    assert balanced(pipeline.stats())
