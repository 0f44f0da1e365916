"""Export policies: retries, linger, blocking, span-start export, async exporters."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from spanbatch._policies import RetryPolicy, resolve_linger, resolve_retry

from tests.conftest import RaisingExporter, RecordingExporter, balanced, make_span

LONG = 60_000  # a schedule delay no test waits for


class FlakyExporter(RecordingExporter):
    """Fails (FAILURE, or raises when ``raises``) the first ``failures`` calls, then succeeds."""

    def __init__(self, failures: int, raises: bool = False) -> None:
        super().__init__()
        self.failures = failures
        self.raises = raises
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            if self.raises:
                raise ConnectionError("backend unavailable")
            return SpanExportResult.FAILURE
        return super().export(spans)


# --- retries ------------------------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("raises", [False, True])
def test_a_failed_batch_is_retried_until_it_succeeds(raises: bool, caplog: pytest.LogCaptureFixture) -> None:
    exporter = FlakyExporter(failures=2, raises=raises)
    processor = spanbatch.BatchSpanProcessor(
        exporter, schedule_delay_millis=LONG, max_retries=3, retry_initial_backoff_millis=1
    )
    for _ in range(3):
        processor.on_end(make_span())
    with caplog.at_level(logging.ERROR, logger="spanbatch"):
        assert processor.force_flush(10_000)
    stats = processor.stats()
    assert (exporter.calls, stats.exported, stats.retried) == (3, 3, 2)
    assert stats.dropped["export_failed"] == 0
    assert stats.export_errors == 0
    assert balanced(stats)
    processor.shutdown()


@pytest.mark.timeout(20)
def test_a_batch_that_keeps_failing_counts_as_export_failed_once() -> None:
    exporter = RaisingExporter()
    processor = spanbatch.BatchSpanProcessor(
        exporter, schedule_delay_millis=LONG, max_retries=2, retry_initial_backoff_millis=1
    )
    for _ in range(4):
        processor.on_end(make_span())
    assert processor.force_flush(10_000)
    stats = processor.stats()
    assert len(exporter.batches) == 3
    assert (stats.retried, stats.export_errors, stats.batches) == (2, 1, 1)
    assert stats.dropped["export_failed"] == 4
    assert balanced(stats)
    processor.shutdown()


def test_retries_are_off_by_default() -> None:
    exporter = FlakyExporter(failures=1)
    processor = spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG)
    processor.on_end(make_span())
    assert processor.force_flush(5000)
    assert (exporter.calls, processor.stats().retried, processor.stats().dropped["export_failed"]) == (1, 0, 1)
    processor.shutdown()


@pytest.mark.timeout(20)
def test_the_export_timeout_bounds_the_whole_retry_series() -> None:
    exporter = RaisingExporter()
    processor = spanbatch.BatchSpanProcessor(
        exporter,
        schedule_delay_millis=LONG,
        export_timeout_millis=300,
        max_retries=1000,
        retry_initial_backoff_millis=40,
        retry_max_backoff_millis=40,
    )
    processor.on_end(make_span())
    started = time.monotonic()
    assert processor.force_flush(10_000)
    assert time.monotonic() - started < 2
    assert processor.stats().dropped["export_failed"] == 1
    assert 1 <= len(exporter.batches) < 100
    processor.shutdown()


@pytest.mark.timeout(20)
def test_shutdown_cuts_a_backoff_short() -> None:
    exporter = RaisingExporter()
    processor = spanbatch.BatchSpanProcessor(
        exporter,
        schedule_delay_millis=LONG,
        max_retries=5,
        retry_initial_backoff_millis=30_000,
        retry_max_backoff_millis=30_000,
    )
    processor.on_end(make_span())
    deadline = time.monotonic() + 5
    while not exporter.batches and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # into the backoff (the first pause is random, so it may be shorter)
    started = time.monotonic()
    processor.shutdown(10_000)
    assert time.monotonic() - started < 3
    stats = processor.stats()
    assert stats.dropped["export_failed"] == 1
    assert stats.exported == 0
    assert balanced(stats)


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    policy = RetryPolicy(max_retries=10, initial_backoff_millis=100, max_backoff_millis=1000)
    for retry, ceiling in [(0, 100), (1, 200), (3, 800), (4, 1000), (60, 1000), (5000, 1000)]:
        pauses = [policy.backoff_millis(retry) for _ in range(200)]
        assert all(0 <= p <= ceiling for p in pauses)
        assert max(pauses) > ceiling / 2  # spread over the whole window, not a fixed value


def test_retry_settings_resolve_argument_then_variable_then_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert resolve_retry() == RetryPolicy(0, 100, 5000)
    monkeypatch.setenv("SPANBATCH_MAX_RETRIES", "4")
    monkeypatch.setenv("SPANBATCH_RETRY_INITIAL_BACKOFF_MS", "20")
    monkeypatch.setenv("SPANBATCH_RETRY_MAX_BACKOFF_MS", "200")
    assert resolve_retry() == RetryPolicy(4, 20, 200)
    assert resolve_retry(1, 5, 50) == RetryPolicy(1, 5, 50)
    monkeypatch.setenv("SPANBATCH_MAX_RETRIES", "-3")
    monkeypatch.setenv("SPANBATCH_RETRY_MAX_BACKOFF_MS", "soon")
    with caplog.at_level(logging.WARNING):
        assert resolve_retry() == RetryPolicy(0, 20, 5000)
        assert resolve_retry() == RetryPolicy(0, 20, 5000)
    assert caplog.text.count("SPANBATCH_MAX_RETRIES") == 1
    assert caplog.text.count("SPANBATCH_RETRY_MAX_BACKOFF_MS") == 1


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_retries": -1}, ValueError),
        ({"max_retries": 1.5}, TypeError),
        ({"retry_initial_backoff_millis": 0}, ValueError),
        ({"retry_max_backoff_millis": "1s"}, TypeError),
    ],
)
def test_bad_retry_arguments_raise(kwargs: dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        spanbatch.BatchSpanProcessor(RecordingExporter(), **kwargs)


def test_pipeline_lanes_retry_too() -> None:
    exporter = FlakyExporter(failures=1)
    pipeline = spanbatch.Pipeline({"a": exporter}, max_retries=1, retry_initial_backoff_millis=1)
    pipeline.on_end(make_span())
    assert pipeline.force_flush(5000)
    assert (pipeline.stats().exported, pipeline.stats().retried) == (1, 1)
    pipeline.shutdown()


def test_debug_log_shows_retries(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("SPANBATCH_DEBUG", "true")
    processor = spanbatch.BatchSpanProcessor(
        FlakyExporter(failures=1), schedule_delay_millis=LONG, max_retries=1, retry_initial_backoff_millis=1
    )
    with caplog.at_level(logging.DEBUG, logger="spanbatch"):
        processor.on_end(make_span())
        assert processor.force_flush(5000)
    assert "batch=1 spans, retries=1, duration=" in caplog.text
    processor.shutdown()


# --- linger -------------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_linger_caps_the_wait_of_a_partial_batch() -> None:
    exporter = RecordingExporter()
    processor = spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG, linger_millis=50)
    started = time.monotonic()
    for _ in range(3):
        processor.on_end(make_span())
    assert exporter.wait_for(3, timeout=10)
    assert time.monotonic() - started < 5  # not the 60 s schedule delay
    assert [len(b) for b in exporter.batches] == [3]
    processor.shutdown()


@pytest.mark.timeout(20)
def test_with_linger_a_full_batch_still_goes_at_once() -> None:
    exporter = RecordingExporter()
    processor = spanbatch.BatchSpanProcessor(exporter, 64, LONG, 4, linger_millis=LONG / 2)
    for _ in range(4):
        processor.on_end(make_span())
    assert exporter.wait_for(4, timeout=10)
    assert [len(b) for b in exporter.batches] == [4]
    processor.shutdown()


@pytest.mark.timeout(20)
def test_the_earlier_of_schedule_delay_and_linger_wins() -> None:
    exporter = RecordingExporter()
    processor = spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=50, linger_millis=LONG)
    processor.on_end(make_span())
    assert exporter.wait_for(1, timeout=5)
    assert processor.lanes[0].core.linger_millis == LONG
    processor.shutdown()


def test_linger_is_off_by_default_and_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert resolve_linger() is None
    processor = spanbatch.BatchSpanProcessor(RecordingExporter())
    assert processor.lanes[0].core.linger_millis is None
    processor.shutdown()
    monkeypatch.setenv("SPANBATCH_LINGER_MS", "25")
    assert resolve_linger() == 25
    assert resolve_linger(10) == 10
    monkeypatch.setenv("SPANBATCH_LINGER_MS", "0")
    with caplog.at_level(logging.WARNING):
        assert resolve_linger() is None
    assert "SPANBATCH_LINGER_MS" in caplog.text
    with pytest.raises(ValueError, match="linger_millis"):
        resolve_linger(-1)


@pytest.mark.timeout(20)
def test_pipeline_lanes_linger(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("SPANBATCH_DEBUG", "1")
    exporter = RecordingExporter()
    with caplog.at_level(logging.DEBUG, logger="spanbatch"):
        pipeline = spanbatch.Pipeline({"a": exporter}, schedule_delay_millis=LONG, linger_millis=50)
    assert "a lane: drop_policy=oldest, max_retries=0, linger_millis=50" in caplog.text
    pipeline.on_end(make_span())
    assert exporter.wait_for(1, timeout=5)
    pipeline.shutdown()
