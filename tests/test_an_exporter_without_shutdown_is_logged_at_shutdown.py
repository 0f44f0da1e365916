"""An exporter with ``export`` and no ``shutdown`` (a duck-typed one): the stock processor's ``shutdown()`` raises its
``AttributeError`` into the caller; spanbatch's shuts the exporter down on a helper thread, and must log it as it logs
any exporter whose ``shutdown`` raised, on its logger, rather than let the helper thread die with it.

Before: the lookup of ``shutdown`` (to see whether it takes a timeout) sat outside the ``try``: the helper thread
ended with an uncaught ``AttributeError`` (``threading.excepthook``), and nothing was logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult
from spanbatch import BatchSpanProcessor

from tests.helpers import LONG, balanced, end_spans


class ExportOnly:
    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: list[object]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS


@pytest.fixture
def thread_exceptions(monkeypatch: pytest.MonkeyPatch) -> list[BaseException | None]:
    caught: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: caught.append(args.exc_value))
    return caught


@pytest.mark.timeout(30)
def test_its_missing_shutdown_is_logged(
    thread_exceptions: list[BaseException | None],
    caplog: pytest.LogCaptureFixture,
    shutdown_later: Callable[[Any], Any],
) -> None:
    exporter = ExportOnly()
    processor = shutdown_later(BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
    end_spans(processor, 3)
    with caplog.at_level(logging.ERROR, logger="spanbatch"):
        processor.shutdown()
    assert exporter.exported == 3
    assert balanced(processor.stats())
    assert thread_exceptions == []
    (record,) = [r for r in caplog.records if r.getMessage() == "Exception while shutting down ExportOnly."]
    assert record.exc_info is not None
    assert record.exc_info[0] is AttributeError
