"""A pipeline's default flush deadline is the longest ``export_timeout_millis`` of its lanes: its log lanes'
too. A backend that takes only log records, with a longer export timeout than every span backend, is waited
for as long as its own setting says, not cut short at the span backends' timeout."""

from __future__ import annotations

import threading
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


def test_a_log_only_backend_is_flushed_within_its_own_export_timeout(
    monkeypatch: pytest.MonkeyPatch, receiver: OTLPReceiver, shutdown_later: Later
) -> None:
    monkeypatch.setenv("SPANBATCH_SPANS_EXPORT_TIMEOUT_MS", "200")
    monkeypatch.setenv("SPANBATCH_SLOW_EXPORT_TIMEOUT_MS", "20000")
    tracer_provider, logger_provider = TracerProvider(), LoggerProvider()
    pipeline = shutdown_later(
        spanbatch.install(
            tracer_provider,
            {"spans": receiver.span_exporter(timeout=10)},
            logger_provider=logger_provider,
            log_exporters={"slow": receiver.log_exporter(timeout=10)},
            schedule_delay_millis=LONG,
        )
    )
    receiver.set_behaviour("hang")
    logger_provider.get_logger("t").emit(LogRecord(body="late"))
    # The backend answers after a second: well within the slow lane's 20 s, well past the span lane's 200 ms.
    answer = threading.Timer(1.0, receiver.set_behaviour, ("ok",))
    answer.start()
    try:
        assert pipeline.flush_by_backend() == {"spans": True, "slow": True}
    finally:
        answer.join()
    assert receiver.stats().log_records == 1
    assert pipeline.logs is not None
    assert balanced(pipeline.logs.stats())
