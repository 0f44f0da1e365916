"""A real OTLP exporter against a receiver that is down, rejects, throttles or never answers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.version import __version__ as _sdk_version
from spanbatch import BatchSpanProcessor
from spanbatch.testing import OTLPReceiver

from tests.helpers import balanced, end_spans, provider_with, wait_until
from tests.helpers.scenarios import flush_then_shut_down_while_stuck

pytestmark = pytest.mark.timeout(90)
Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


def test_receiver_down_from_the_start(receiver: OTLPReceiver, shutdown_later: Later) -> None:
    receiver.set_behaviour("down")
    processor = shutdown_later(BatchSpanProcessor(receiver.span_exporter(timeout=1), export_timeout_millis=3_000))
    provider = provider_with(processor)
    end_spans(provider, 100)

    started = time.monotonic()
    flushed = processor.force_flush(5_000)
    flush_seconds = time.monotonic() - started
    end_spans(provider, 20)
    started = time.monotonic()
    provider.shutdown()
    shutdown_seconds = time.monotonic() - started
    stats = processor.stats()

    # The exporter gives up after its own 1 s timeout, so the flush completes (as a failure).
    assert flushed
    assert flush_seconds < 4.0
    assert shutdown_seconds < 4.0
    assert stats.enqueued == 120
    assert stats.exported == 0
    # The 20 late spans are drained at shutdown and fail like the rest, well within the deadline.
    assert dict(stats.dropped) == {
        "queue_full": 0,
        "shutdown": 0,
        "export_failed": 120,
        "fork": 0,
        "unencodable": 0,
        "too_large": 0,
    }
    assert balanced(stats)
    receiver.set_behaviour("ok")
    assert receiver.stats().requests == 0


def test_receiver_goes_down_and_comes_back(receiver: OTLPReceiver, shutdown_later: Later) -> None:
    processor = shutdown_later(BatchSpanProcessor(receiver.span_exporter(timeout=3), schedule_delay_millis=50))
    provider = provider_with(processor)

    end_spans(provider, 200, name="before")
    assert processor.force_flush(10_000)
    assert receiver.wait_for_spans(200)
    receiver.set_behaviour("down")
    end_spans(provider, 300, name="gap")
    assert processor.force_flush(10_000)
    receiver.set_behaviour("ok")
    after_ids = end_spans(provider, 400, name="after")
    assert processor.force_flush(10_000)
    stats = processor.stats()
    provider.shutdown()

    assert receiver.span_names() == {"before": 200, "after": 400}
    assert after_ids <= receiver.span_ids()
    assert receiver.stats().duplicates == 0
    assert stats.exported == 600
    assert dict(stats.dropped) == {
        "queue_full": 0,
        "shutdown": 0,
        "export_failed": 300,
        "fork": 0,
        "unencodable": 0,
        "too_large": 0,
    }
    assert balanced(stats)


sdk_version = tuple(int(part) for part in _sdk_version.split(".")[:2])


@pytest.mark.parametrize("status", [503, 429])
def test_transient_rejection_is_retried_once_per_rejection(
    receiver: OTLPReceiver, status: int, shutdown_later: Later
) -> None:
    if receiver.protocol == "http" and status == 429 and sdk_version < (1, 45):
        pytest.skip("the stock HTTP exporter retries 429 from 1.45 on (1.41 retries only 408 and 5xx)")
    receiver.set_behaviour("status", status=status, retry_after=0.2, times=2)
    processor = shutdown_later(BatchSpanProcessor(receiver.span_exporter(timeout=10)))
    provider = provider_with(processor)
    ids = end_spans(provider, 150)

    started = time.monotonic()
    assert processor.force_flush(15_000)
    elapsed = time.monotonic() - started
    stats = processor.stats()
    provider.shutdown()
    received = receiver.stats()

    # Two rejections, each followed by the back end's requested 0.2 s pause, then one success.
    # Older stock exporters retry without honouring Retry-After (seen with 1.41); 1.45 does.
    if sdk_version >= (1, 45):
        assert elapsed >= 0.4
    assert received.rejected == 2
    assert received.accepted == 1
    assert received.spans == received.unique_spans == 150
    assert receiver.span_ids() == ids
    assert stats.exported == 150
    assert stats.export_errors == 0
    assert stats.dropped_total == 0


def test_permanent_503_is_counted_as_export_failed(receiver: OTLPReceiver, shutdown_later: Later) -> None:
    receiver.set_behaviour("status", status=503, retry_after=0.3)
    processor = shutdown_later(BatchSpanProcessor(receiver.span_exporter(timeout=1), export_timeout_millis=2_000))
    provider = provider_with(processor)
    end_spans(provider, 80)

    started = time.monotonic()
    assert processor.force_flush(5_000)
    elapsed = time.monotonic() - started
    stats = processor.stats()
    provider.shutdown()

    assert elapsed < 3.0
    assert receiver.stats().rejected >= 1
    assert receiver.stats().spans == 0
    assert stats.exported == 0
    assert stats.dropped["export_failed"] == 80
    assert balanced(stats)


def test_receiver_that_never_answers(receiver: OTLPReceiver, shutdown_later: Later) -> None:
    receiver.set_behaviour("hang")
    # The exporter's own timeout (3 s) is longer than the processor's deadline (1 s).
    processor = shutdown_later(BatchSpanProcessor(receiver.span_exporter(timeout=3), export_timeout_millis=1_000))
    provider = provider_with(processor)
    end_spans(provider, 100, name="hung")
    assert receiver.wait_for_requests(1)

    flush_seconds, shutdown_seconds, at_shutdown = flush_then_shut_down_while_stuck(processor, provider)
    # The exporter gives up on its own timeout; the abandoned batch is then counted as failed.
    assert wait_until(lambda: processor.stats().in_flight == 0, timeout=10)
    final = processor.stats()
    receiver.set_behaviour("ok")

    assert 0.25 <= flush_seconds < 1.0
    assert shutdown_seconds < 2.0
    # The stuck batch is still in flight, or already failed if the exporter's shutdown cancelled it
    # (gRPC on CPython 3.13 closes the channel fast enough): either way it is accounted for.
    assert at_shutdown.in_flight + at_shutdown.dropped["export_failed"] == 100
    assert at_shutdown.dropped["shutdown"] == 40
    assert balanced(at_shutdown)
    assert final.exported == 0
    assert dict(final.dropped) == {
        "queue_full": 0,
        "shutdown": 40,
        "export_failed": 100,
        "fork": 0,
        "unencodable": 0,
        "too_large": 0,
    }
    assert receiver.stats().spans == 0
