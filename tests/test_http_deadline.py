"""One deadline per OTLP/HTTP export: a slow collector costs at most one ``timeout`` and one send.

The stock client gives each ``export`` one deadline, ``timeout`` seconds from its start, and
retries within it: a timed-out attempt that used the whole deadline is not sent again. spanbatch's
exporter makes its first attempt from Rust and must carry that same deadline into the stock
client's retries, not start a fresh one.
"""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")

import time

import requests
from opentelemetry.sdk.trace.export import SpanExportResult
from spanbatch.exporter import OTLPSpanExporter

from tests.helpers.otlp_spans import corpus
from tests.helpers.receivers import HttpRecorder

TIMEOUT = 1.0  # the exporter's timeout, seconds
SLACK = 0.4  # scheduling and connection set-up on a busy 2-core machine; far below another TIMEOUT


def slow(collector: HttpRecorder, delay: float, statuses: list[int] | None = None) -> HttpRecorder:
    """Makes ``collector`` answer each request after ``delay`` seconds, with ``statuses`` first."""
    collector.delay = delay
    collector.statuses = list(statuses or [])
    return collector


def timed_export(exporter: OTLPSpanExporter) -> tuple[SpanExportResult, float]:
    started = time.monotonic()
    result = exporter.export(corpus())
    return result, time.monotonic() - started


@pytest.mark.timeout(60)
def test_a_collector_slower_than_the_timeout_gets_one_request_within_one_timeout(http_recorder: HttpRecorder) -> None:
    slow_collector = slow(http_recorder, 3 * TIMEOUT)
    exporter = OTLPSpanExporter(endpoint=slow_collector.endpoint, timeout=TIMEOUT)
    assert exporter.sends_natively
    result, elapsed = timed_export(exporter)
    assert result is SpanExportResult.FAILURE
    assert len(slow_collector.received) == 1  # the batch may have arrived: not sent twice
    assert elapsed < TIMEOUT + SLACK


@pytest.mark.timeout(60)
def test_export_many_gives_each_batch_one_deadline(http_recorder: HttpRecorder) -> None:
    slow_collector = slow(http_recorder, 3 * TIMEOUT)
    exporter = OTLPSpanExporter(endpoint=slow_collector.endpoint, timeout=TIMEOUT)
    spans = corpus()
    started = time.monotonic()
    # The first batch times out; the second, not sent with it, gets its own export and deadline.
    assert exporter.export_many([spans[:2], spans[2:]]) == [SpanExportResult.FAILURE] * 2
    elapsed = time.monotonic() - started
    assert len(slow_collector.received) == 2
    assert elapsed < 2 * TIMEOUT + SLACK


@pytest.mark.timeout(60)
def test_a_retry_after_a_slow_rejection_stays_within_the_first_deadline(http_recorder: HttpRecorder) -> None:
    slow_collector = slow(http_recorder, 0.6 * TIMEOUT, [503])
    # 503 after 0.6 s, retried at once (Retry-After: 0) with the 0.4 s left, which run out
    # before the second answer: the stock retry rules, one deadline.
    exporter = OTLPSpanExporter(endpoint=slow_collector.endpoint, timeout=TIMEOUT)
    result, elapsed = timed_export(exporter)
    assert result is SpanExportResult.FAILURE
    assert len(slow_collector.received) == 2
    assert elapsed < TIMEOUT + SLACK


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("delay", "statuses"), [(3 * TIMEOUT, []), (0.6 * TIMEOUT, [503])])
def test_the_stock_transport_makes_the_same_attempts(
    http_recorder: HttpRecorder, delay: float, statuses: list[int]
) -> None:
    slow_collector = slow(http_recorder, delay, statuses)
    # The reference the tests above hold spanbatch to: the stock client over requests.
    exporter = OTLPSpanExporter(endpoint=slow_collector.endpoint, timeout=TIMEOUT, session=requests.Session())
    assert not exporter.sends_natively
    result, elapsed = timed_export(exporter)
    assert result is SpanExportResult.FAILURE
    assert len(slow_collector.received) == (1 if slow_collector.delay > TIMEOUT else 2)
    assert elapsed < TIMEOUT + SLACK


@pytest.mark.timeout(60)
@pytest.mark.parametrize("timeout", [1e19, float("inf")])
def test_a_timeout_too_long_for_the_clock_sends_as_a_very_long_one(http_recorder: HttpRecorder, timeout: float) -> None:
    # Far past what the clock can add: a year is "never" in practice, and never a panic or an error.
    exporter = OTLPSpanExporter(endpoint=http_recorder.endpoint, timeout=timeout)
    assert exporter.sends_natively
    assert exporter.export(corpus()) is SpanExportResult.SUCCESS
    assert len(http_recorder.received) == 1
