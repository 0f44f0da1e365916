"""Exporters with ``export_many``: the worker hands them every due batch in one call."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from spanbatch._core import BatchCore
from spanbatch._export import BATCHES_PER_CALL

from tests.helpers import LONG, RecordingExporter, balanced, end_spans

Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


class ManyExporter(RecordingExporter):
    """Records the batches of each ``export_many`` call; each call waits for ``release``; ``entered`` is set
    once a call has begun."""

    def __init__(self, results: Any = None) -> None:
        super().__init__()
        self.calls: list[list[int]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.results = results

    def export_many(self, batches: Sequence[Sequence[ReadableSpan]]) -> Any:
        self.entered.set()
        self.release.wait(10)
        self.calls.append([len(batch) for batch in batches])
        results = [self.export(batch) for batch in batches]
        return results if self.results is None else self.results(batches)


def test_next_batches_takes_the_full_batches_and_keeps_the_rest_until_due() -> None:
    core = BatchCore(100, LONG, 10)
    end_spans(core, 25)
    batches = core.next_batches(8)
    assert batches is not None
    assert [len(b) for b in batches] == [10, 10]
    assert [s.context.span_id for b in batches for s in b] == list(range(1, 21))
    core.begin_shutdown()  # draining: the partial batch is due now
    rest = core.next_batches(8) or []
    assert [len(b) for b in rest] == [5]
    assert core.next_batches(8) is None
    for batch in [*batches, *rest]:
        core.finish_batch(batch, True)
    s = core.stats()
    assert (s.enqueued, s.exported, s.queued, s.in_flight) == (25, 25, 0, 0)


def test_next_batches_takes_at_most_the_limit() -> None:
    core = BatchCore(100, LONG, 10)
    end_spans(core, 50)
    assert [len(b) for b in core.next_batches(3) or []] == [10, 10, 10]
    assert core.queue_len() == 20
    core.begin_shutdown()
    assert core.next_batches(0) is not None  # asks for at least one batch
    core.abandon()


@pytest.mark.timeout(20)
def test_the_worker_passes_every_due_batch_in_one_call(shutdown_later: Later) -> None:
    exporter = ManyExporter()
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(exporter, max_queue_size=200, max_export_batch_size=10, schedule_delay_millis=LONG)
    )
    end_spans(processor, 10)
    # Once the first call has its batch, it is held: the next 50 spans queue up behind it.
    assert exporter.entered.wait(5)
    end_spans(processor, 50)
    exporter.release.set()
    assert exporter.wait_for(60)
    assert processor.force_flush(5000)
    assert exporter.calls[0] == [10]
    assert exporter.calls[1] == [10] * 5
    assert all(len(call) <= BATCHES_PER_CALL for call in exporter.calls)
    stats = processor.stats()
    assert (stats.exported, stats.batches, stats.dropped_total) == (60, 6, 0)
    assert balanced(stats)
    processor.shutdown()


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("results", "message"),
    [
        (lambda batches: [SpanExportResult.FAILURE] * len(batches), None),
        (lambda batches: [SpanExportResult.SUCCESS] * (len(batches) + 1), "returned"),
        (lambda batches: None, "returned None"),
        (lambda batches: 1 / 0, "Exception while exporting"),
    ],
)
def test_a_failing_or_broken_export_many_is_counted(
    results: Any, message: str | None, caplog: pytest.LogCaptureFixture, shutdown_later: Later
) -> None:
    exporter = ManyExporter(results)
    exporter.release.set()
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(exporter, max_queue_size=100, max_export_batch_size=10, schedule_delay_millis=LONG)
    )
    end_spans(processor, 25)
    with caplog.at_level(logging.ERROR, logger="spanbatch"):
        assert processor.force_flush(5000)
    stats = processor.stats()
    assert stats.dropped["export_failed"] == 25
    assert (stats.exported, stats.export_errors) == (0, stats.batches)
    assert balanced(stats)
    if message is not None:
        assert message in caplog.text
    processor.shutdown()


@pytest.mark.timeout(20)
def test_a_batch_failed_in_export_many_is_retried_on_its_own(shutdown_later: Later) -> None:
    outcomes = iter([SpanExportResult.FAILURE, SpanExportResult.SUCCESS, SpanExportResult.SUCCESS])
    exporter = ManyExporter()
    exporter.result = lambda spans: next(outcomes)
    exporter.release.set()
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(
            exporter, max_queue_size=100, max_export_batch_size=10, schedule_delay_millis=LONG, max_retries=2
        )
    )
    end_spans(processor, 20)
    assert processor.force_flush(10_000)
    stats = processor.stats()
    assert (stats.exported, stats.retried, stats.dropped_total) == (20, 1, 0)
    assert [len(b) for b in exporter.batches] == [10, 10, 10]  # the failed batch once more, by export()
    processor.shutdown()
