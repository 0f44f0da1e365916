"""The stock processor's public behaviour, run against both, and where spanbatch does better."""

from __future__ import annotations

import gc
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.helpers import (
    LONG,
    CountingExporter,
    HangingExporter,
    RaisingExporter,
    RecordingExporter,
    balanced,
    end_spans,
    make_span,
    provider_with,
    run_in_threads,
    wait_until,
)

Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture

# --- behaviour shared with the stock processor -------------------------------------------


def test_unsampled_spans_are_ignored(processor_class: Any, shutdown_later: Later) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(processor_class(exporter, schedule_delay_millis=LONG))
    processor.on_end(make_span("kept"))
    processor.on_end(make_span("dropped", sampled=False))
    assert processor.force_flush(5000)
    assert exporter.names() == ["kept"]
    processor.shutdown()


@pytest.mark.timeout(20)
def test_a_full_batch_goes_without_waiting_for_the_timer(processor_class: Any, shutdown_later: Later) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(
        processor_class(exporter, max_queue_size=64, max_export_batch_size=8, schedule_delay_millis=LONG)
    )
    end_spans(provider_with(processor), 8)
    assert exporter.wait_for(8, timeout=5)
    assert [len(b) for b in exporter.batches] == [8]
    processor.shutdown()


@pytest.mark.timeout(20)
def test_a_partial_batch_goes_after_the_schedule_delay(processor_class: Any, shutdown_later: Later) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(
        processor_class(exporter, max_queue_size=64, max_export_batch_size=32, schedule_delay_millis=100)
    )
    started = time.monotonic()
    end_spans(provider_with(processor), 3)
    assert exporter.wait_for(3, timeout=5)
    assert time.monotonic() - started >= 0.09
    processor.shutdown()


def test_batches_keep_end_order_and_never_exceed_the_limit(processor_class: Any, shutdown_later: Later) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(
        processor_class(exporter, max_queue_size=1000, max_export_batch_size=7, schedule_delay_millis=LONG)
    )
    end_spans(provider_with(processor), 100, "s", numbered=True)
    assert processor.force_flush(5000)
    assert exporter.names() == [f"s{i}" for i in range(100)]
    assert max(len(b) for b in exporter.batches) <= 7
    processor.shutdown()


def test_exports_run_with_instrumentation_suppressed(processor_class: Any, shutdown_later: Later) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(processor_class(exporter, schedule_delay_millis=LONG))
    end_spans(provider_with(processor), 3)
    processor.force_flush(5000)
    assert exporter.suppressed
    assert all(exporter.suppressed)
    processor.shutdown()


def test_shutdown_drains_and_shuts_the_exporter_down_once(processor_class: Any, shutdown_later: Later) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(processor_class(exporter, schedule_delay_millis=LONG))
    end_spans(provider_with(processor), 10)
    processor.shutdown()
    processor.shutdown()
    assert len(exporter.spans) == 10
    assert len(exporter.shutdown_calls) == 1
    assert 0 <= exporter.shutdown_calls[0]["timeout_millis"] <= 30000


def test_after_shutdown_spans_are_ignored_and_flush_fails(processor_class: Any, shutdown_later: Later) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(processor_class(exporter, schedule_delay_millis=LONG))
    processor.shutdown()
    processor.on_end(make_span("late"))
    assert processor.force_flush(1000) is False
    assert exporter.spans == []


@pytest.mark.parametrize("exporter_cls", [RaisingExporter, lambda: RecordingExporter(SpanExportResult.FAILURE)])
def test_a_failing_exporter_never_harms_the_app_or_the_worker(
    processor_class: Any, exporter_cls: Callable[[], RecordingExporter], shutdown_later: Later
) -> None:
    exporter = exporter_cls()
    processor = shutdown_later(
        processor_class(exporter, max_queue_size=100, max_export_batch_size=5, schedule_delay_millis=LONG)
    )
    end_spans(provider_with(processor), 5)
    processor.force_flush(5000)
    end_spans(provider_with(processor), 5, "again")
    processor.force_flush(5000)
    assert len(exporter.spans) == 10, "the worker must survive the first failure"
    processor.shutdown()


# --- spanbatch only: accounting, deadlines, fork, metrics ----------------------------------


def test_stats_account_for_every_span(shutdown_later: Later) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, 8, LONG, 4))
    end_spans(processor, 20, "s", numbered=True)
    stats = processor.stats()
    assert balanced(stats)
    assert stats.enqueued == 20
    assert processor.force_flush(5000)
    stats = processor.stats()
    # A queue of 8 filled faster than it drained loses its oldest spans, like the stock one.
    assert stats.exported == len(exporter.spans)
    assert stats.dropped["queue_full"] == 20 - stats.exported
    assert exporter.names()[-1] == "s19"
    assert (stats.queued, stats.in_flight) == (0, 0)
    assert balanced(stats)
    processor.shutdown()


def test_stats_count_spans_after_shutdown_and_are_immutable(shutdown_later: Later) -> None:
    processor = shutdown_later(spanbatch.BatchSpanProcessor(RecordingExporter()))
    processor.shutdown()
    processor.on_end(make_span())
    stats = processor.stats()
    assert stats.dropped["shutdown"] == 1
    assert balanced(stats)
    with pytest.raises(AttributeError):
        stats.enqueued = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        stats.dropped["shutdown"] = 0  # type: ignore[index]


@pytest.mark.parametrize(
    ("result", "reason"),
    [(SpanExportResult.FAILURE, "export_failed"), (None, "export_failed"), ("junk", "export_failed")],
)
def test_failed_exports_are_counted(
    result: object, reason: str, caplog: pytest.LogCaptureFixture, shutdown_later: Later
) -> None:
    processor = shutdown_later(spanbatch.BatchSpanProcessor(RecordingExporter(result), schedule_delay_millis=LONG))
    end_spans(processor, 3)
    with caplog.at_level(logging.WARNING, logger="spanbatch"):
        assert processor.force_flush(5000)
    stats = processor.stats()
    assert stats.dropped[reason] == 3
    assert (stats.export_errors, stats.batches) == (1, 1)
    if result is not SpanExportResult.FAILURE:
        assert "not a SpanExportResult" in caplog.text
    processor.shutdown()


def test_an_exporter_that_raises_is_logged_and_counted(caplog: pytest.LogCaptureFixture, shutdown_later: Later) -> None:
    processor = shutdown_later(spanbatch.BatchSpanProcessor(RaisingExporter(), schedule_delay_millis=LONG))
    processor.on_end(make_span())
    with caplog.at_level(logging.ERROR, logger="spanbatch"):
        assert processor.force_flush(5000)
    assert "backend exploded" in caplog.text
    assert processor.stats().dropped["export_failed"] == 1
    processor.shutdown()


@pytest.mark.timeout(20)
def test_force_flush_keeps_its_deadline_when_the_exporter_hangs(
    hanging_exporter: HangingExporter, shutdown_later: Later
) -> None:
    processor = shutdown_later(spanbatch.BatchSpanProcessor(hanging_exporter, schedule_delay_millis=LONG))
    processor.on_end(make_span())
    started = time.monotonic()
    assert processor.force_flush(200) is False
    assert 0.15 <= time.monotonic() - started < 2
    assert processor.stats().in_flight == 1
    hanging_exporter.release.set()
    assert processor.force_flush(5000)
    assert processor.stats().exported == 1
    processor.shutdown()


@pytest.mark.timeout(20)
def test_shutdown_keeps_its_deadline_when_export_and_exporter_shutdown_hang(shutdown_later: Later) -> None:
    exporter = HangingExporter(hang_shutdown=True)
    try:
        processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, 100, LONG, 10, export_timeout_millis=300))
        end_spans(processor, 25)
        assert exporter.entered.wait(5)
        started = time.monotonic()
        processor.shutdown()
        assert time.monotonic() - started < 1.5
        stats = processor.stats()
        # One batch is stuck in the exporter; the rest was given up and counted.
        assert stats.in_flight == 10
        assert stats.dropped["shutdown"] == 15
        assert balanced(stats)
    finally:
        exporter.release.set()


@pytest.mark.timeout(20)
def test_force_flush_waits_for_everything_enqueued_before_it(shutdown_later: Later) -> None:
    exporter = RecordingExporter(delay=0.02)
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, 10_000, LONG, 16))
    end_spans(processor, 200, "s", numbered=True)
    assert processor.force_flush(10_000)
    assert len(exporter.spans) == 200
    processor.shutdown()


def test_default_force_flush_timeout_is_the_export_timeout(
    hanging_exporter: HangingExporter, shutdown_later: Later
) -> None:
    processor = shutdown_later(spanbatch.BatchSpanProcessor(hanging_exporter, export_timeout_millis=150))
    processor.on_end(make_span())
    started = time.monotonic()
    assert processor.force_flush() is False
    assert time.monotonic() - started < 2
    hanging_exporter.release.set()
    processor.shutdown()


@pytest.mark.timeout(60)
def test_eight_threads_keep_the_accounting_exact(shutdown_later: Later) -> None:
    exporter = RecordingExporter(delay=0.001)
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, 256, 5, 64))
    per_thread, threads = 5_000, 8
    unbalanced: list[spanbatch.SpanStats] = []
    stop = threading.Event()

    def produce() -> None:
        span = make_span()
        for _ in range(per_thread):
            processor.on_end(span)

    def watch() -> None:
        while not stop.is_set():
            stats = processor.stats()
            if not balanced(stats) or min(stats.queued, stats.in_flight) < 0:
                unbalanced.append(stats)

    watcher = threading.Thread(target=watch)
    watcher.start()
    run_in_threads([produce] * threads)
    assert processor.force_flush(20_000)
    stop.set()
    watcher.join()
    stats = processor.stats()
    assert not unbalanced, unbalanced[:3]
    assert stats.enqueued == per_thread * threads
    assert stats.exported == len(exporter.spans)
    assert stats.exported + stats.dropped["queue_full"] == per_thread * threads
    assert (stats.queued, stats.in_flight) == (0, 0)
    processor.shutdown()


@pytest.mark.timeout(20)
def test_drop_warnings_are_aggregated_not_one_per_span(
    hanging_exporter: HangingExporter, caplog: pytest.LogCaptureFixture, shutdown_later: Later
) -> None:
    processor = shutdown_later(spanbatch.BatchSpanProcessor(hanging_exporter, 10, LONG, 10, export_timeout_millis=200))
    with caplog.at_level(logging.WARNING, logger="spanbatch"):
        end_spans(processor, 10)
        assert hanging_exporter.entered.wait(5)
        end_spans(processor, 500)
        processor.shutdown()
    lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage() and "—" in r.getMessage()]
    # The full queue told at once (the first drops, or all of them where the line came after), the rest at shutdown.
    full = [line for line in lines if line.startswith("queue full — dropped ")]
    assert 1 <= len(full) <= 2, lines
    assert sum(int(line.split("dropped ")[1].split()[0]) for line in full) == 490
    assert lines == [*full, lines[-1]]
    assert "shut down — dropped 10 spans in the last" in lines[-1]


def test_the_processor_is_collectable_after_shutdown(shutdown_later: Later) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
    end_spans(provider_with(processor), 5)
    processor.shutdown()
    refs = [weakref.ref(processor), weakref.ref(exporter)]
    del processor, exporter
    gc.collect()
    assert [r() for r in refs] == [None, None]


@pytest.mark.timeout(20)
def test_a_forgotten_processor_stops_its_worker(shutdown_later: Later) -> None:
    processor = shutdown_later(spanbatch.BatchSpanProcessor(RecordingExporter()))
    worker = processor.lanes[0].worker
    assert worker is not None
    assert worker.is_alive()
    del processor
    gc.collect()
    worker.join(5)
    assert not worker.is_alive()


def test_spans_without_the_sdk_internals_use_the_public_context(shutdown_later: Later) -> None:
    class Foreign(ReadableSpan):
        def __init__(self, span: ReadableSpan) -> None:
            self._wrapped = span

        @property
        def context(self) -> Any:
            return self._wrapped.context

        @property
        def name(self) -> str:
            return self._wrapped.name

    exporter = RecordingExporter()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
    processor.on_end(Foreign(make_span("foreign")))
    processor.on_end(Foreign(make_span("unsampled", sampled=False)))
    processor.on_end(Foreign(ReadableSpan("no-context")))
    assert processor.force_flush(5000)
    assert exporter.names() == ["foreign"]
    processor.shutdown()


@pytest.mark.parametrize("error", [RuntimeError("broken span"), KeyboardInterrupt()])
def test_an_error_reading_a_spans_context_reaches_the_caller_as_with_stock(
    processor_class: Any, error: BaseException, shutdown_later: Later
) -> None:
    # Stock reads `span.context.trace_flags.sampled` and lets what it raises through to `span.end()`; a
    # Ctrl-C that lands in a `context` property must reach the application, not drop the span unseen.
    class Broken(ReadableSpan):
        @property
        def context(self) -> Any:
            raise error

    exporter = RecordingExporter()
    processor = shutdown_later(processor_class(exporter, schedule_delay_millis=LONG))
    with pytest.raises(type(error)):
        processor.on_end(Broken("broken"))
    processor.on_end(make_span("after"))
    assert processor.force_flush(5000)
    assert exporter.names() == ["after"]
    processor.shutdown()


def test_a_span_whose_context_is_falsy_is_passed_over(processor_class: Any, shutdown_later: Later) -> None:
    # Stock reads `span.context and span.context.trace_flags.sampled`: any falsy context, not only None.
    class Falsy:
        def __bool__(self) -> bool:
            return False

    class FalsyContext(ReadableSpan):
        @property
        def context(self) -> Any:
            return Falsy()

    exporter = RecordingExporter()
    processor = shutdown_later(processor_class(exporter, schedule_delay_millis=LONG))
    processor.on_end(FalsyContext("falsy"))
    processor.on_end(make_span("after"))
    assert processor.force_flush(5000)
    assert exporter.names() == ["after"]
    processor.shutdown()


def test_newest_drop_policy_keeps_the_queue_and_refuses_new_spans(shutdown_later: Later) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, 4, LONG, 4, drop_policy="newest"))
    end_spans(processor, 10, "s", numbered=True)
    assert processor.force_flush(5000)
    stats = processor.stats()
    assert exporter.names()[:4] == ["s0", "s1", "s2", "s3"]
    assert stats.dropped["queue_full"] + stats.exported == 10
    processor.shutdown()


def test_unknown_drop_policy_is_rejected() -> None:
    with pytest.raises(ValueError, match="drop_policy"):
        spanbatch.BatchSpanProcessor(RecordingExporter(), drop_policy="random")  # type: ignore[arg-type]


def test_repr_shows_settings_and_counters(shutdown_later: Later) -> None:
    processor = shutdown_later(spanbatch.BatchSpanProcessor(RecordingExporter(), 16, 100, 8, 1000))
    text = repr(processor)
    assert "max_queue_size=16" in text
    assert "enqueued=0" in text
    assert "max_queue_size=16" in repr(processor.lanes[0].core)
    processor.shutdown()


def test_a_real_tracer_provider_flushes_and_shuts_down_through_it(shutdown_later: Later) -> None:
    exporter = RecordingExporter()
    provider = provider_with(shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG)))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("parent"), tracer.start_as_current_span("child"):
        pass
    assert provider.force_flush(5000)
    assert exporter.names() == ["child", "parent"]
    provider.shutdown()
    assert exporter.shutdown_calls


@pytest.mark.timeout(20)
def test_a_subclass_that_overrides_on_end_is_called_for_every_span(processor_class: Any, shutdown_later: Later) -> None:
    # A subclass's on_end is the user's code: the SDK calls it, and only what it passes on is exported.
    class Redacting(processor_class):  # type: ignore[misc, valid-type]
        def on_end(self, span: ReadableSpan) -> None:
            if span.name != "secret":
                super().on_end(span)

    exporter = RecordingExporter()
    processor = shutdown_later(Redacting(exporter))
    tracer = provider_with(processor).get_tracer("t")
    for name in ("hello", "secret", "bye"):
        tracer.start_span(name).end()
    assert processor.force_flush(5000)
    assert exporter.names() == ["hello", "bye"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("concurrent", [1, 2])
def test_the_worker_holds_no_exported_span_while_it_waits_for_the_next(shutdown_later: Later, concurrent: int) -> None:
    # As the stock worker lets each batch go once exported: spans kept until the next batch live through the
    # garbage collector's young collections on the application thread and are promoted to the old generation.
    refs: list[weakref.ref[ReadableSpan]] = []

    class Watch(SpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            refs.append(weakref.ref(span))

    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(CountingExporter(), schedule_delay_millis=LONG, max_concurrent_exports=concurrent)
    )
    tracer = provider_with(Watch(), processor).get_tracer("tests")
    for i in range(5):
        tracer.start_span(f"span-{i}").end()
    assert processor.force_flush(10_000)
    # The worker now waits up to a minute for the next batch: the exported spans are gone already.
    assert wait_until(lambda: all(ref() is None for ref in refs), 5), [ref() is not None for ref in refs]
