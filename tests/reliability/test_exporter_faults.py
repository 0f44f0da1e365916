"""Exporters that raise, hang, or return the wrong thing: counted, bounded, never fatal to the worker."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from spanbatch import BatchSpanProcessor

from tests.helpers import ScriptedExporter, balanced, end_spans, provider_with, wait_until
from tests.helpers.scenarios import flush_then_shut_down_while_stuck

pytestmark = pytest.mark.timeout(60)
Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


@pytest.mark.parametrize("action", ["fail", "raise", "exit", "none", "junk"])
def test_failed_export_drops_its_batch_and_the_worker_goes_on(
    action: str, caplog: pytest.LogCaptureFixture, shutdown_later: Later
) -> None:
    exporter = ScriptedExporter(action)
    processor = shutdown_later(BatchSpanProcessor(exporter, max_export_batch_size=50, schedule_delay_millis=10_000))
    provider = provider_with(processor)

    end_spans(provider, 50, name="first")
    assert processor.force_flush(5_000)
    end_spans(provider, 30, name="second")
    assert processor.force_flush(5_000)
    stats = processor.stats()
    provider.shutdown()

    assert exporter.calls == 2
    assert exporter.names() == ["second"] * 30
    assert stats.enqueued == 80
    assert stats.exported == 30
    assert stats.export_errors == 1
    assert dict(stats.dropped) == {
        "queue_full": 0,
        "shutdown": 0,
        "export_failed": 50,
        "fork": 0,
        "unencodable": 0,
        "too_large": 0,
    }
    assert balanced(stats)
    if action in ("raise", "exit", "none", "junk"):
        # Every failure that is not a plain FAILURE says what happened.
        assert any(record.levelno >= logging.WARNING and record.name == "spanbatch" for record in caplog.records)


def test_hanging_exporter_bounds_flush_and_shutdown(shutdown_later: Later) -> None:
    exporter = ScriptedExporter("block")
    processor = shutdown_later(BatchSpanProcessor(exporter, max_export_batch_size=100, export_timeout_millis=1_000))
    provider = provider_with(processor)
    end_spans(provider, 100, name="stuck")
    assert wait_until(lambda: exporter.calls == 1)

    flush_seconds, shutdown_seconds, at_shutdown = flush_then_shut_down_while_stuck(processor, provider)
    exporter.release.set()
    # The abandoned export finishes later; its spans count as exported when it returns.
    assert wait_until(lambda: processor.stats().in_flight == 0)
    final = processor.stats()

    assert 0.25 <= flush_seconds < 1.0
    assert 0.9 <= shutdown_seconds < 2.0
    assert at_shutdown.in_flight == 100
    assert at_shutdown.dropped["shutdown"] == 40
    assert balanced(at_shutdown)
    assert final.exported == 100
    assert final.dropped_total == 40
    assert balanced(final)
    assert exporter.names() == ["stuck"] * 100


def test_force_flush_after_shutdown_returns_false_at_once(shutdown_later: Later) -> None:
    processor = shutdown_later(BatchSpanProcessor(ScriptedExporter()))
    processor.shutdown()
    started = time.monotonic()
    assert processor.force_flush(5_000) is False
    assert time.monotonic() - started < 0.5


def test_spans_ended_after_shutdown_are_counted_as_dropped(shutdown_later: Later) -> None:
    exporter = ScriptedExporter()
    processor = shutdown_later(BatchSpanProcessor(exporter))
    provider = provider_with(processor)
    end_spans(provider, 10)
    processor.shutdown()
    end_spans(provider, 7, name="late")
    stats = processor.stats()

    assert len(exporter.shutdown_calls) == 1
    assert stats.exported == 10
    assert stats.dropped["shutdown"] == 7
    assert balanced(stats)


class _HangingShutdownExporter(ScriptedExporter):
    def shutdown(self) -> None:
        self.release.wait(30)


def test_exporter_whose_shutdown_hangs_holds_shutdown_no_longer_than_its_deadline(
    caplog: pytest.LogCaptureFixture, shutdown_later: Later
) -> None:
    # The exports drained, so the exporter's own shutdown gets the rest of the shutdown's deadline, as stock gives it
    # (stock waits for one that takes no timeout for ever); a hung one is let go at that deadline, with a warning.
    exporter = _HangingShutdownExporter()
    processor = shutdown_later(BatchSpanProcessor(exporter, export_timeout_millis=500))
    provider = provider_with(processor)
    end_spans(provider, 5)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="spanbatch"):
        processor.shutdown(timeout_millis=1_000)
    elapsed = time.monotonic() - started
    exporter.release.set()

    assert 0.9 < elapsed < 2.0
    assert "exporter shutdown did not return by the deadline" in caplog.text
    assert processor.stats().exported == 5
