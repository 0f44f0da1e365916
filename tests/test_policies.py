"""Export policies: retries, linger, blocking, span-start export, async exporters."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import numpy
import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from spanbatch._policies import RetryPolicy, resolve_policies
from spanbatch._setting import LONGEST_MILLIS

from tests.helpers import (
    LONG,
    HangingExporter,
    RaisingExporter,
    RecordingExporter,
    ScriptedExporter,
    balanced,
    end_spans,
    make_span,
    provider_with,
    wait_until,
)


def policy(name: str, value: object = None) -> object:
    """The named export policy resolved from ``value`` (None: not given), then its variable, then its default."""
    return getattr(resolve_policies({name: value}), name)


def retry(*arguments: float) -> RetryPolicy:
    """The retry policy resolved from max_retries, retry_initial_backoff_millis, retry_max_backoff_millis."""
    names = ("max_retries", "retry_initial_backoff_millis", "retry_max_backoff_millis")
    return RetryPolicy.of(resolve_policies(dict(zip(names, arguments, strict=False))))


Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


# --- retries ------------------------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("raises", [False, True])
def test_a_failed_batch_is_retried_until_it_succeeds(
    raises: bool, caplog: pytest.LogCaptureFixture, shutdown_later: Later
) -> None:
    exporter = ScriptedExporter(*["raise" if raises else "fail"] * 2)
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(
            exporter, schedule_delay_millis=LONG, max_retries=3, retry_initial_backoff_millis=1
        )
    )
    end_spans(processor, 3)
    with caplog.at_level(logging.ERROR, logger="spanbatch"):
        assert processor.force_flush(10_000)
    stats = processor.stats()
    assert (exporter.calls, stats.exported, stats.retried) == (3, 3, 2)
    assert stats.dropped["export_failed"] == 0
    assert stats.export_errors == 0
    assert balanced(stats)
    processor.shutdown()


@pytest.mark.timeout(20)
def test_a_batch_that_keeps_failing_counts_as_export_failed_once(shutdown_later: Later) -> None:
    exporter = RaisingExporter()
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(
            exporter, schedule_delay_millis=LONG, max_retries=2, retry_initial_backoff_millis=1
        )
    )
    end_spans(processor, 4)
    assert processor.force_flush(10_000)
    stats = processor.stats()
    assert len(exporter.batches) == 3
    assert (stats.retried, stats.export_errors, stats.batches) == (2, 1, 1)
    assert stats.dropped["export_failed"] == 4
    assert balanced(stats)
    processor.shutdown()


def test_retries_are_off_by_default(shutdown_later: Later) -> None:
    exporter = ScriptedExporter("fail")
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
    processor.on_end(make_span())
    assert processor.force_flush(5000)
    assert (exporter.calls, processor.stats().retried, processor.stats().dropped["export_failed"]) == (1, 0, 1)
    processor.shutdown()


@pytest.mark.timeout(20)
def test_the_export_timeout_bounds_the_whole_retry_series(shutdown_later: Later) -> None:
    exporter = RaisingExporter()
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(
            exporter,
            schedule_delay_millis=LONG,
            export_timeout_millis=300,
            max_retries=1000,
            retry_initial_backoff_millis=40,
            retry_max_backoff_millis=40,
        )
    )
    processor.on_end(make_span())
    started = time.monotonic()
    assert processor.force_flush(10_000)
    assert time.monotonic() - started < 2
    assert processor.stats().dropped["export_failed"] == 1
    assert 1 <= len(exporter.batches) < 100
    processor.shutdown()


@pytest.mark.timeout(20)
def test_shutdown_cuts_a_backoff_short(shutdown_later: Later) -> None:
    exporter = RaisingExporter()
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(
            exporter,
            schedule_delay_millis=LONG,
            max_export_batch_size=1,  # a full batch: exported at once, not at shutdown
            max_retries=5,
            retry_initial_backoff_millis=30_000,
            retry_max_backoff_millis=30_000,
        )
    )
    processor.on_end(make_span())
    assert wait_until(lambda: exporter.batches, timeout=5)
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
    assert retry() == RetryPolicy(0, 100, 5000)
    monkeypatch.setenv("SPANBATCH_MAX_RETRIES", "4")
    monkeypatch.setenv("SPANBATCH_RETRY_INITIAL_BACKOFF_MS", "20")
    monkeypatch.setenv("SPANBATCH_RETRY_MAX_BACKOFF_MS", "200")
    assert retry() == RetryPolicy(4, 20, 200)
    assert retry(1, 5, 50) == RetryPolicy(1, 5, 50)
    monkeypatch.setenv("SPANBATCH_MAX_RETRIES", "-3")
    monkeypatch.setenv("SPANBATCH_RETRY_MAX_BACKOFF_MS", "soon")
    with caplog.at_level(logging.WARNING):
        assert retry() == RetryPolicy(0, 20, 5000)
        assert retry() == RetryPolicy(0, 20, 5000)
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


@pytest.mark.parametrize(
    "number",
    [numpy.int64(7), numpy.float64(7.0), numpy.float32(7.0), numpy.uint16(7), Fraction(7)],
    ids=["int64", "float64", "float32", "uint16", "Fraction"],
)
def test_millisecond_arguments_take_any_real_number(number: object) -> None:
    # As the stock batch settings take numpy's numbers: a value computed with numpy or fractions is a number.
    assert retry(numpy.int64(2), number, number) == RetryPolicy(2, 7, 7)
    spanbatch.BatchSpanProcessor(RecordingExporter(), block_timeout_millis=number, linger_millis=number).shutdown()


@pytest.mark.parametrize("number", [Fraction(10**400), Fraction(-(10**400))], ids=["huge", "hugely negative"])
def test_a_millisecond_fraction_past_a_float_is_clamped_or_refused_as_an_int_is(number: Fraction) -> None:
    # Such an int is a year, or not positive (ValueError); the fraction must not overflow float() instead.
    for huge in (number, int(number)):
        if huge > 0:
            assert retry(1, huge, huge) == RetryPolicy(1, LONGEST_MILLIS, LONGEST_MILLIS)
            spanbatch.BatchSpanProcessor(RecordingExporter(), block_timeout_millis=huge, linger_millis=huge).shutdown()
        else:
            with pytest.raises(ValueError, match="must be positive"):
                spanbatch.BatchSpanProcessor(RecordingExporter(), linger_millis=huge)


def test_pipeline_lanes_retry_too(shutdown_later: Later) -> None:
    exporter = ScriptedExporter("fail")
    pipeline = shutdown_later(spanbatch.Pipeline({"a": exporter}, max_retries=1, retry_initial_backoff_millis=1))
    pipeline.on_end(make_span())
    assert pipeline.force_flush(5000)
    assert (pipeline.stats().exported, pipeline.stats().retried) == (1, 1)
    pipeline.shutdown()


def test_debug_log_shows_retries(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, shutdown_later: Later
) -> None:
    monkeypatch.setenv("SPANBATCH_DEBUG", "true")
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(
            ScriptedExporter("fail"), schedule_delay_millis=LONG, max_retries=1, retry_initial_backoff_millis=1
        )
    )
    with caplog.at_level(logging.DEBUG, logger="spanbatch"):
        processor.on_end(make_span())
        assert processor.force_flush(5000)
    assert "batch=1 spans, retries=1, duration=" in caplog.text
    processor.shutdown()


# --- linger -------------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_linger_caps_the_wait_of_a_partial_batch(shutdown_later: Later) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG, linger_millis=50))
    started = time.monotonic()
    end_spans(processor, 3)
    assert exporter.wait_for(3, timeout=10)
    assert time.monotonic() - started < 5  # not the 60 s schedule delay
    assert [len(b) for b in exporter.batches] == [3]
    processor.shutdown()


@pytest.mark.timeout(20)
def test_with_linger_a_full_batch_still_goes_at_once(shutdown_later: Later) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, 64, LONG, 4, linger_millis=LONG / 2))
    end_spans(processor, 4)
    assert exporter.wait_for(4, timeout=10)
    assert [len(b) for b in exporter.batches] == [4]
    processor.shutdown()


@pytest.mark.timeout(20)
def test_the_earlier_of_schedule_delay_and_linger_wins(shutdown_later: Later) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=50, linger_millis=LONG))
    processor.on_end(make_span())
    assert exporter.wait_for(1, timeout=5)
    assert processor.lanes[0].core.linger_millis == LONG
    processor.shutdown()


def test_linger_is_off_by_default_and_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, shutdown_later: Later
) -> None:
    assert policy("linger_millis") is None
    processor = shutdown_later(spanbatch.BatchSpanProcessor(RecordingExporter()))
    assert processor.lanes[0].core.linger_millis is None
    processor.shutdown()
    monkeypatch.setenv("SPANBATCH_LINGER_MS", "25")
    assert policy("linger_millis") == 25
    assert policy("linger_millis", 10) == 10
    monkeypatch.setenv("SPANBATCH_LINGER_MS", "0")
    with caplog.at_level(logging.WARNING):
        assert policy("linger_millis") is None
    assert "SPANBATCH_LINGER_MS" in caplog.text
    with pytest.raises(ValueError, match="linger_millis"):
        policy("linger_millis", -1)


@pytest.mark.timeout(20)
def test_pipeline_lanes_linger(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, shutdown_later: Later
) -> None:
    monkeypatch.setenv("SPANBATCH_DEBUG", "1")
    exporter = RecordingExporter()
    with caplog.at_level(logging.DEBUG, logger="spanbatch"):
        pipeline = shutdown_later(spanbatch.Pipeline({"a": exporter}, schedule_delay_millis=LONG, linger_millis=50))
    assert "a lane: ExportPolicies(drop_policy='oldest', block_timeout_millis=100.0, max_retries=0," in caplog.text
    assert "linger_millis=50.0," in caplog.text
    pipeline.on_end(make_span())
    assert exporter.wait_for(1, timeout=5)
    pipeline.shutdown()


# --- drop policy "block" ------------------------------------------------------------------


def blocked_processor(
    shutdown_later: Later, exporter: HangingExporter, block_timeout_millis: float
) -> spanbatch.BatchSpanProcessor:
    """A queue of 2 whose worker is stuck exporting 2 spans, with 2 more queued: the next waits."""
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(
            exporter, 2, LONG, 2, drop_policy="block", block_timeout_millis=block_timeout_millis
        )
    )
    processor.on_end(make_span("first"))
    processor.on_end(make_span("second"))
    assert exporter.entered.wait(5)
    processor.on_end(make_span("third"))
    processor.on_end(make_span("fourth"))
    return processor


def end_in_thread(processor: spanbatch.BatchSpanProcessor, name: str) -> threading.Thread:
    thread = threading.Thread(target=processor.on_end, args=(make_span(name),), daemon=True)
    thread.start()
    return thread


@pytest.mark.timeout(20)
def test_block_waits_for_room_instead_of_dropping(hanging_exporter: HangingExporter, shutdown_later: Later) -> None:
    processor = blocked_processor(shutdown_later, hanging_exporter, 30_000)
    producer = end_in_thread(processor, "fifth")
    producer.join(0.3)
    assert producer.is_alive(), "on_end should wait for room"
    assert processor.stats().queued == 3  # the waiting span counts as queued
    assert balanced(processor.stats())
    hanging_exporter.release.set()
    producer.join(10)
    assert not producer.is_alive()
    assert processor.force_flush(10_000)
    assert hanging_exporter.names() == ["first", "second", "third", "fourth", "fifth"]
    assert processor.stats().dropped["queue_full"] == 0
    processor.shutdown()


@pytest.mark.timeout(20)
def test_block_gives_up_after_its_timeout_and_counts_queue_full(
    hanging_exporter: HangingExporter, shutdown_later: Later
) -> None:
    processor = blocked_processor(shutdown_later, hanging_exporter, 100)
    started = time.monotonic()
    processor.on_end(make_span("fifth"))
    assert 0.09 <= time.monotonic() - started < 3
    stats = processor.stats()
    assert stats.dropped["queue_full"] == 1
    assert balanced(stats)
    hanging_exporter.release.set()
    processor.shutdown()


@pytest.mark.timeout(20)
def test_shutdown_wakes_a_blocked_producer_and_counts_its_span(
    hanging_exporter: HangingExporter, shutdown_later: Later
) -> None:
    processor = blocked_processor(shutdown_later, hanging_exporter, 30_000)
    producer = end_in_thread(processor, "fifth")
    producer.join(0.2)
    assert producer.is_alive()
    started = time.monotonic()
    processor.shutdown(300)
    producer.join(5)
    assert not producer.is_alive()
    assert time.monotonic() - started < 5
    stats = processor.stats()
    assert stats.dropped["shutdown"] == 3  # the waiting span and the two queued ones
    assert stats.in_flight == 2
    assert balanced(stats)


class SelfEndingExporter(RecordingExporter):
    """Ends spans through its own processor while exporting, as an instrumented client may."""

    processor: spanbatch.BatchSpanProcessor

    def __init__(self) -> None:
        super().__init__()
        self.ending_seconds: list[float] = []

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        started = time.monotonic()
        end_spans(self.processor, 3, "from-export-", numbered=True)
        self.ending_seconds.append(time.monotonic() - started)
        return super().export(spans)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("concurrency", [1, 2])
def test_a_span_ended_on_an_export_thread_never_blocks(concurrency: int, shutdown_later: Later) -> None:
    exporter = SelfEndingExporter()
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(
            exporter, 1, LONG, 1, drop_policy="block", block_timeout_millis=30_000, max_concurrent_exports=concurrency
        )
    )
    exporter.processor = processor
    processor.on_end(make_span())
    assert exporter.wait_for(1, timeout=10)
    processor.shutdown(2000)
    # Ending spans on an export thread never waits for room (the block timeout is 30 s).
    assert exporter.ending_seconds
    assert max(exporter.ending_seconds) < 5
    stats = processor.stats()
    # With one export thread nobody drains the 1-span queue during an export, so two of its three
    # spans are refused; with two, the other thread may take one meanwhile and make room for another.
    assert stats.dropped["queue_full"] >= (2 if concurrency == 1 else 1)
    assert balanced(stats)


def test_drop_policy_and_block_timeout_resolve_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, shutdown_later: Later
) -> None:
    assert (policy("drop_policy"), policy("block_timeout_millis")) == ("oldest", 100)
    monkeypatch.setenv("SPANBATCH_DROP_POLICY", "Block")
    monkeypatch.setenv("SPANBATCH_BLOCK_TIMEOUT_MS", "250")
    processor = shutdown_later(spanbatch.BatchSpanProcessor(RecordingExporter()))
    assert "drop_policy='block'" in repr(processor)
    assert processor.lanes[0].core.block_timeout_millis == 250
    processor.shutdown()
    assert policy("drop_policy", "newest") == "newest"
    assert policy("block_timeout_millis", 5) == 5
    monkeypatch.setenv("SPANBATCH_DROP_POLICY", "random")
    monkeypatch.setenv("SPANBATCH_BLOCK_TIMEOUT_MS", "-1")
    with caplog.at_level(logging.WARNING):
        assert (policy("drop_policy"), policy("block_timeout_millis")) == ("oldest", 100)
    assert "SPANBATCH_DROP_POLICY" in caplog.text
    assert "SPANBATCH_BLOCK_TIMEOUT_MS" in caplog.text
    with pytest.raises(ValueError, match="block"):
        spanbatch.Pipeline({"a": RecordingExporter()}, drop_policy="sometimes")  # type: ignore[arg-type]


@pytest.mark.timeout(20)
def test_pipeline_lanes_block(hanging_exporter: HangingExporter, shutdown_later: Later) -> None:
    pipeline = shutdown_later(
        spanbatch.Pipeline(
            {"slow": hanging_exporter},
            max_queue_size=1,
            max_export_batch_size=1,
            drop_policy="block",
            block_timeout_millis=100,
        )
    )
    pipeline.on_end(make_span())
    assert hanging_exporter.entered.wait(5)
    pipeline.on_end(make_span())
    started = time.monotonic()
    pipeline.on_end(make_span())
    assert time.monotonic() - started >= 0.09
    assert pipeline.stats().dropped["queue_full"] == 1
    hanging_exporter.release.set()
    pipeline.shutdown()


# --- span-start export --------------------------------------------------------------------


def test_by_default_nothing_is_written_on_span_start(caplog: pytest.LogCaptureFixture, shutdown_later: Later) -> None:
    exporter = RecordingExporter()
    with caplog.at_level(logging.INFO, logger="spanbatch"):
        processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
    assert "span-start export disabled — end-only ingest (SPANBATCH_EXPORT_SPAN_START)" in caplog.text
    span = provider_with(processor).get_tracer("tests").start_span("work")
    assert processor.force_flush(5000)
    assert exporter.spans == []
    assert processor.stats().enqueued == 0
    span.end()
    assert processor.force_flush(5000)
    assert exporter.names() == ["work"]
    processor.shutdown()


@pytest.mark.parametrize("source", ["argument", "variable"])
def test_span_start_export_queues_started_spans(
    source: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, shutdown_later: Later
) -> None:
    exporter = RecordingExporter()
    kwargs: dict[str, Any] = {}
    if source == "argument":
        kwargs["export_span_start"] = True
    else:
        monkeypatch.setenv("SPANBATCH_EXPORT_SPAN_START", "true")
    with caplog.at_level(logging.INFO, logger="spanbatch"):
        processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG, **kwargs))
    assert "span-start export enabled" in caplog.text
    span = provider_with(processor).get_tracer("tests").start_span("work")
    assert processor.force_flush(5000)
    assert exporter.names() == ["work"]
    assert exporter.spans[0].end_time is None  # exported while still in progress
    span.end()
    assert processor.force_flush(5000)
    assert exporter.names() == ["work", "work"]
    stats = processor.stats()
    assert (stats.enqueued, stats.exported) == (2, 2)
    processor.shutdown()


def test_span_start_export_in_a_pipeline_and_bad_values(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, shutdown_later: Later
) -> None:
    a, b = RecordingExporter(), RecordingExporter()
    pipeline = shutdown_later(spanbatch.Pipeline({"a": a, "b": b}, export_span_start=True))
    pipeline.on_start(make_span("started"))  # type: ignore[arg-type]
    pipeline.on_start(make_span("unsampled", sampled=False))  # type: ignore[arg-type]
    assert pipeline.force_flush(5000)
    assert (a.names(), b.names()) == (["started"], ["started"])
    pipeline.shutdown()
    monkeypatch.setenv("SPANBATCH_EXPORT_SPAN_START", "maybe")
    with caplog.at_level(logging.WARNING):
        assert policy("export_span_start") is False
    assert "SPANBATCH_EXPORT_SPAN_START" in caplog.text
    assert policy("export_span_start", True) is True
    with pytest.raises(TypeError, match="export_span_start"):
        policy("export_span_start", "yes")  # type: ignore[arg-type]


# --- async exporters ----------------------------------------------------------------------


class AsyncExporter(RecordingExporter):
    """``export`` is a coroutine function; ``sleep`` seconds of awaiting, then ``result``."""

    def __init__(self, sleep: float = 0.0, failures: int = 0) -> None:
        super().__init__()
        self.sleep = sleep
        self.failures = failures
        self.loops: list[asyncio.AbstractEventLoop] = []
        self.threads: list[str] = []

    async def export(self, spans: Sequence[ReadableSpan]) -> Any:  # type: ignore[override]
        self.loops.append(asyncio.get_running_loop())
        self.threads.append(threading.current_thread().name)
        await asyncio.sleep(self.sleep)
        if len(self.loops) <= self.failures:
            return SpanExportResult.FAILURE
        return super().export(spans)


@pytest.mark.timeout(20)
def test_an_async_exporter_runs_on_the_workers_private_loop(shutdown_later: Later) -> None:
    exporter = AsyncExporter(sleep=0.01)
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, 64, LONG, 2))
    end_spans(processor, 5)
    assert processor.force_flush(10_000)
    assert [len(b) for b in exporter.batches] == [2, 2, 1]
    assert len(set(map(id, exporter.loops))) == 1  # one loop, reused
    assert set(exporter.threads) == {processor.lanes[0].worker.name}  # type: ignore[union-attr]
    stats = processor.stats()
    assert (stats.exported, stats.export_errors) == (5, 0)
    processor.shutdown()
    assert exporter.loops[0].is_closed()


@pytest.mark.timeout(20)
def test_the_export_timeout_cancels_an_async_export(caplog: pytest.LogCaptureFixture, shutdown_later: Later) -> None:
    exporter = AsyncExporter(sleep=30)
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG, export_timeout_millis=200)
    )
    processor.on_end(make_span())
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="spanbatch"):
        assert processor.force_flush(10_000)
    assert time.monotonic() - started < 5
    assert "timed out" in caplog.text
    stats = processor.stats()
    assert stats.dropped["export_failed"] == 1
    assert balanced(stats)
    processor.shutdown()


@pytest.mark.timeout(20)
def test_async_exports_are_retried_and_drained_at_shutdown(shutdown_later: Later) -> None:
    exporter = AsyncExporter(failures=1)
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(
            exporter, schedule_delay_millis=LONG, max_retries=2, retry_initial_backoff_millis=1
        )
    )
    end_spans(processor, 3)
    assert processor.force_flush(10_000)
    processor.on_end(make_span())
    processor.shutdown(10_000)
    stats = processor.stats()
    assert (stats.exported, stats.retried, stats.dropped_total) == (4, 1, 0)
    assert exporter.loops[0].is_closed()


# --- concurrent exports -------------------------------------------------------------------


class OverlapExporter(RecordingExporter):
    """Records how many exports ran at once; each sleeps ``delay``, then waits for ``gate`` (open)."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay
        self.gate = threading.Event()
        self.gate.set()
        self.active = 0
        self.most = 0
        self.entered = threading.Semaphore(0)
        self.count_lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        with self.count_lock:
            self.active += 1
            self.most = max(self.most, self.active)
        self.entered.release()
        time.sleep(self.delay)
        self.gate.wait(30)
        with self.count_lock:
            self.active -= 1
        with self.exported:
            self.batches.append(list(spans))
            self.exported.notify_all()
        return SpanExportResult.SUCCESS


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("settings", "delay", "most"),
    [({}, 0.02, 1), ({"max_concurrent_exports": 3}, 0.2, 3)],
    ids=["never-by-default", "up-to-three"],
)
def test_exports_overlap_up_to_max_concurrent_exports(
    settings: dict[str, Any], delay: float, most: int, shutdown_later: Later
) -> None:
    exporter = OverlapExporter(delay=delay)
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, 64, LONG, 1, **settings))
    end_spans(processor, 6, "s", numbered=True)
    assert processor.force_flush(20_000)
    assert exporter.most == most
    assert sorted(exporter.names()) == [f"s{i}" for i in range(6)]
    stats = processor.stats()
    assert (stats.exported, stats.batches, stats.in_flight) == (6, 6, 0)
    processor.shutdown()


@pytest.mark.timeout(30)
def test_flush_waits_for_every_concurrent_export(shutdown_later: Later) -> None:
    exporter = OverlapExporter()
    exporter.gate.clear()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, 64, LONG, 1, max_concurrent_exports=2))
    processor.on_end(make_span("a"))
    processor.on_end(make_span("b"))
    for _ in range(2):
        assert exporter.entered.acquire(timeout=10)
    # The queue is empty and both batches are in flight: the flush must not report done.
    assert processor.force_flush(300) is False
    assert processor.stats().in_flight == 2
    exporter.gate.set()
    assert processor.force_flush(10_000)
    assert processor.stats().exported == 2
    processor.shutdown()


@pytest.mark.timeout(30)
def test_concurrent_exports_keep_the_order_within_a_batch_and_drain_at_shutdown(shutdown_later: Later) -> None:
    exporter = OverlapExporter(delay=0.01)
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, 256, LONG, 4, max_concurrent_exports=3))
    for i in range(40):
        processor.on_end(make_span(f"{i:03}"))
    processor.shutdown(20_000)
    assert all(batch == sorted(batch, key=lambda span: span.name) for batch in exporter.batches)
    assert sorted(exporter.names()) == [f"{i:03}" for i in range(40)]
    stats = processor.stats()
    assert (stats.exported, stats.queued, stats.in_flight) == (40, 0, 0)


def test_max_concurrent_exports_resolution(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    assert policy("max_concurrent_exports") == 1
    monkeypatch.setenv("SPANBATCH_MAX_CONCURRENT_EXPORTS", "4")
    assert policy("max_concurrent_exports") == 4
    assert policy("max_concurrent_exports", 2) == 2
    monkeypatch.setenv("SPANBATCH_MAX_CONCURRENT_EXPORTS", "0")
    with caplog.at_level(logging.WARNING):
        assert policy("max_concurrent_exports") == 1
    assert "SPANBATCH_MAX_CONCURRENT_EXPORTS" in caplog.text
    with pytest.raises(ValueError, match="max_concurrent_exports"):
        spanbatch.Pipeline({"a": RecordingExporter()}, max_concurrent_exports=0)


@pytest.mark.timeout(30)
def test_more_export_threads_than_a_lane_can_start_are_refused(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, shutdown_later: Later
) -> None:
    # Each concurrent export is a thread: 2**63 of them raised "can't start new thread" from the
    # constructor and leaked the threads it had started.
    with pytest.raises(ValueError, match="max_concurrent_exports must be at most 256"):
        spanbatch.BatchSpanProcessor(RecordingExporter(), max_concurrent_exports=10**6)
    monkeypatch.setenv("SPANBATCH_MAX_CONCURRENT_EXPORTS", str(2**63))
    with caplog.at_level(logging.WARNING):
        processor = shutdown_later(spanbatch.BatchSpanProcessor(RecordingExporter()))
    assert processor._policies.max_concurrent_exports == 1
    assert "SPANBATCH_MAX_CONCURRENT_EXPORTS" in caplog.text
    assert "at most 256" in caplog.text


@pytest.mark.timeout(20)
def test_the_spec_proposals_queue_full_variables_are_aliases(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, shutdown_later: Later
) -> None:
    # opentelemetry-specification PR #5181 (open): OTEL_BSP_ON_QUEUE_FULL=drop|block and
    # OTEL_BSP_BLOCK_ON_QUEUE_FULL_TIMEOUT. Ours win where both are set.
    monkeypatch.setenv("OTEL_BSP_ON_QUEUE_FULL", "BLOCK")
    monkeypatch.setenv("OTEL_BSP_BLOCK_ON_QUEUE_FULL_TIMEOUT", "250")
    assert (policy("drop_policy"), policy("block_timeout_millis")) == ("block", 250)
    processor = shutdown_later(spanbatch.BatchSpanProcessor(RecordingExporter()))
    assert processor.lanes[0].core.block_timeout_millis == 250
    processor.shutdown()
    monkeypatch.setenv("OTEL_BSP_ON_QUEUE_FULL", "drop")  # the stock behaviour: the oldest span goes
    assert policy("drop_policy") == "oldest"
    monkeypatch.setenv("SPANBATCH_DROP_POLICY", "newest")
    monkeypatch.setenv("SPANBATCH_BLOCK_TIMEOUT_MS", "40")
    assert (policy("drop_policy"), policy("block_timeout_millis")) == ("newest", 40)
    monkeypatch.delenv("SPANBATCH_DROP_POLICY")
    monkeypatch.setenv("OTEL_BSP_ON_QUEUE_FULL", "sometimes")
    with caplog.at_level(logging.WARNING):
        assert policy("drop_policy") == "oldest"
    assert "OTEL_BSP_ON_QUEUE_FULL" in caplog.text
