"""spanbatch.BatchLogRecordProcessor: the stock log processor's contract on spanbatch's engine."""

from __future__ import annotations

import inspect
import logging
import logging.config
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.context import Context, create_key, set_value
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor as StockBatchLogRecordProcessor,
)
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    LogExportResult,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from spanbatch import _log_readable

from tests.helpers import LONG, balanced, in_child, libc_fork, run_in_threads, wait_until
from tests.helpers.metrics import metric_points

pytestmark = pytest.mark.timeout(60)
Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture
NO_DROPS = {
    "queue_full": 0,
    "shutdown": 0,
    "export_failed": 0,
    "fork": 0,
    "unencodable": 0,
    "export_thread": 0,
    "too_large": 0,
}


def emitted(body: str, context: Context | None = None) -> ReadWriteLogRecord:
    return ReadWriteLogRecord(
        LogRecord(body=body, severity_number=SeverityNumber.WARN, context=context),
        resource=Resource.create({"service.name": "tests"}),
        instrumentation_scope=InstrumentationScope("tests"),
    )


def bodies(exporter: InMemoryLogRecordExporter) -> list[Any]:
    return [record.log_record.body for record in exporter.get_finished_logs()]


class GatedExporter(LogRecordExporter):
    """Records each batch; while ``gate`` is clear, ``export`` waits for it (``entered`` says one began)."""

    def __init__(self, result: object = LogRecordExportResult.SUCCESS) -> None:
        self.batches: list[list[ReadableLogRecord]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.result = result

    def export(self, batch: Sequence[ReadableLogRecord]) -> Any:
        self.entered.set()
        self.gate.wait(30)
        self.batches.append(list(batch))
        return self.result

    def shutdown(self) -> None:
        self.gate.set()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


# --- the stock constructor, variables and errors ---------------------------------------------------


def test_positional_arguments_are_in_the_stock_order(shutdown_later: Later) -> None:
    exporter = InMemoryLogRecordExporter()
    processor = shutdown_later(spanbatch.BatchLogRecordProcessor(exporter, 2500, 256, 15000, 1024))
    assert processor.settings == spanbatch.BatchSettings(1024, 2500.0, 256, 15000.0)
    assert processor.exporter is exporter


def test_the_policies_are_keyword_only_and_spelled_as_the_span_processors() -> None:
    logs = inspect.signature(spanbatch.BatchLogRecordProcessor.__init__).parameters
    spans = inspect.signature(spanbatch.BatchSpanProcessor.__init__).parameters
    keywords = [name for name, p in logs.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    span_keywords = [n for n, p in spans.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert keywords == [name for name in span_keywords if name != "export_span_start"]
    stock = inspect.signature(StockBatchLogRecordProcessor.__init__).parameters
    assert list(logs)[: len(stock)] == list(stock)


def test_the_repr_shows_the_policies_each_processor_takes(shutdown_later: Later) -> None:
    # A log processor has no span-start export: its repr does not show one.
    logs = repr(shutdown_later(spanbatch.BatchLogRecordProcessor(InMemoryLogRecordExporter())))
    spans = repr(shutdown_later(spanbatch.BatchSpanProcessor(InMemorySpanExporter())))
    assert "export_span_start" not in logs
    assert "export_span_start=False" in spans
    assert "drop_policy='oldest'" in logs
    pipeline = spanbatch.Pipeline({"a": InMemorySpanExporter()}, log_exporters={"a": InMemoryLogRecordExporter()})
    try:
        assert pipeline.logs is not None
        assert "export_span_start" not in repr(pipeline.logs)
        assert "export_span_start=False" in repr(pipeline)
    finally:
        pipeline.shutdown()


def test_defaults_are_the_stock_log_defaults(monkeypatch: pytest.MonkeyPatch, shutdown_later: Later) -> None:
    for name in ("OTEL_BSP_SCHEDULE_DELAY", "SPANBATCH_SCHEDULE_DELAY_MS"):
        monkeypatch.setenv(name, "7")  # the span processor's variables are not the log processor's
    processor = shutdown_later(spanbatch.BatchLogRecordProcessor(InMemoryLogRecordExporter()))
    assert processor.settings == spanbatch.BatchSettings(2048, 1000.0, 512, 30000.0)


def test_otel_blrp_variables_and_spanbatch_logs_overrides(
    monkeypatch: pytest.MonkeyPatch, shutdown_later: Later
) -> None:
    monkeypatch.setenv("OTEL_BLRP_MAX_QUEUE_SIZE", "1024")
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "2500")
    monkeypatch.setenv("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "256")
    monkeypatch.setenv("OTEL_BLRP_EXPORT_TIMEOUT", "15000")
    processor = shutdown_later(spanbatch.BatchLogRecordProcessor(InMemoryLogRecordExporter()))
    assert processor.settings == spanbatch.BatchSettings(1024, 2500.0, 256, 15000.0)
    monkeypatch.setenv("SPANBATCH_LOGS_MAX_QUEUE_SIZE", "64")
    monkeypatch.setenv("SPANBATCH_LOGS_SCHEDULE_DELAY_MS", "20")
    monkeypatch.setenv("SPANBATCH_LOGS_MAX_EXPORT_BATCH_SIZE", "8")
    monkeypatch.setenv("SPANBATCH_LOGS_EXPORT_TIMEOUT_MS", "900")
    overridden = shutdown_later(spanbatch.BatchLogRecordProcessor(InMemoryLogRecordExporter()))
    assert overridden.settings == spanbatch.BatchSettings(64, 20.0, 8, 900.0)
    explicit = shutdown_later(spanbatch.BatchLogRecordProcessor(InMemoryLogRecordExporter(), max_queue_size=32))
    assert explicit.settings.max_queue_size == 32


def test_an_unparsable_otel_blrp_variable_is_reported_as_stock_reports_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, shutdown_later: Later
) -> None:
    monkeypatch.setattr(spanbatch._setting, "_warned", set())
    monkeypatch.setenv("OTEL_BLRP_MAX_QUEUE_SIZE", "a")
    with caplog.at_level(logging.ERROR):
        processor = shutdown_later(spanbatch.BatchLogRecordProcessor(InMemoryLogRecordExporter()))
    assert processor.settings.max_queue_size == 2048
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        (
            "opentelemetry.sdk._logs._internal.export",
            "Unable to parse value for OTEL_BLRP_MAX_QUEUE_SIZE as integer. Defaulting to 2048.",
        )
    ]


@pytest.mark.parametrize(
    "arguments",
    [
        {"max_queue_size": 0},
        {"max_queue_size": -1},
        {"schedule_delay_millis": 0},
        {"schedule_delay_millis": -1},
        {"max_export_batch_size": 0},
        {"max_export_batch_size": -1},
        {"max_queue_size": 100, "max_export_batch_size": 101},
    ],
    ids=repr,
)
def test_bad_arguments_raise_the_stock_errors(arguments: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be") as stock:
        StockBatchLogRecordProcessor(InMemoryLogRecordExporter(), **arguments)
    with pytest.raises(ValueError, match=f"^{stock.value}$"):
        spanbatch.BatchLogRecordProcessor(InMemoryLogRecordExporter(), **arguments)


# --- on_emit, flush, shutdown ----------------------------------------------------------------------


@pytest.mark.skipif(not _log_readable._STOCK_COPIES, reason="the stock processor copies records from SDK 1.44")
def test_on_emit_queues_what_stock_queues(shutdown_later: Later) -> None:
    """A shallow copy of the API record with an empty context, as a ReadableLogRecord; the original is untouched."""
    exporter = InMemoryLogRecordExporter()
    processor = shutdown_later(spanbatch.BatchLogRecordProcessor(exporter, schedule_delay_millis=LONG))
    context = set_value(create_key("big"), "payload")
    record = emitted("hello", context)
    processor.on_emit(record)
    assert processor.force_flush(5000)
    (exported,) = exporter.get_finished_logs()
    assert type(exported) is ReadableLogRecord
    assert exported.log_record is not record.log_record
    assert exported.log_record.context == Context()
    assert record.log_record.context is context
    assert exported.log_record.body == "hello"
    assert exported.resource is record.resource
    assert exported.instrumentation_scope is record.instrumentation_scope
    assert processor.stats() == spanbatch.SpanStats(1, 1, 0, 0, 1, 0, NO_DROPS)


def test_a_record_without_a_resource_gets_an_empty_one_as_stock(shutdown_later: Later) -> None:
    exporter = InMemoryLogRecordExporter()
    processor = shutdown_later(spanbatch.BatchLogRecordProcessor(exporter))
    record = emitted("no resource")
    record.resource = None  # type: ignore[assignment]
    processor.on_emit(record)
    assert processor.force_flush(5000)
    (exported,) = exporter.get_finished_logs()
    assert exported.resource == Resource.create({})


def test_records_from_many_threads_through_a_logging_handler_are_all_exported(shutdown_later: Later) -> None:
    exporter = InMemoryLogRecordExporter()
    processor = shutdown_later(
        spanbatch.BatchLogRecordProcessor(exporter, max_queue_size=100_000, max_export_batch_size=50)
    )
    provider = LoggerProvider()
    provider.add_log_record_processor(processor)
    logger = logging.getLogger("tests.log_processor.threads")
    logger.propagate = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the SDK's LoggingHandler is deprecated, still used
        handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    try:

        def emit(thread: int) -> Callable[[], None]:
            return lambda: [logger.warning("t%d-%d", thread, i) for i in range(500)]  # type: ignore[func-returns-value]

        run_in_threads([emit(t) for t in range(8)])
        assert processor.force_flush(10_000)
    finally:
        logger.removeHandler(handler)
    assert sorted(bodies(exporter)) == sorted(f"t{t}-{i}" for t in range(8) for i in range(500))
    stats = processor.stats()
    assert (stats.enqueued, stats.exported, stats.dropped_total) == (4000, 4000, 0)
    assert balanced(stats)
    provider.shutdown()


def test_a_full_queue_drops_and_warns_in_log_record_words(
    caplog: pytest.LogCaptureFixture, shutdown_later: Later
) -> None:
    exporter = GatedExporter()
    processor = shutdown_later(
        spanbatch.BatchLogRecordProcessor(
            exporter, schedule_delay_millis=LONG, max_export_batch_size=1, max_queue_size=2
        )
    )
    exporter.gate.clear()
    processor.on_emit(emitted("first"))
    assert exporter.entered.wait(10)
    with caplog.at_level(logging.WARNING):
        for i in range(5):
            processor.on_emit(emitted(f"more{i}"))
        exporter.gate.set()
        assert processor.force_flush(10_000)
        processor.shutdown()
    stats = processor.stats()
    assert (stats.enqueued, stats.exported, dict(stats.dropped)) == (6, 3, {**NO_DROPS, "queue_full": 3})
    assert balanced(stats)
    messages = [(r.name, r.getMessage()) for r in caplog.records]
    assert ("opentelemetry.sdk._shared_internal", "Queue full, dropping Log.") in messages
    # Told at once (the first drop, or all three where the line came after them), the rest after the export.
    told = [text.split("dropped ")[1] for name, text in messages if name == "spanbatch" and "queue full" in text]
    assert told, messages
    assert all(" log record" in words for words in told), messages
    assert sum(int(words.split()[0]) for words in told) == 3


def test_export_results_old_and_new_are_counted(shutdown_later: Later, caplog: pytest.LogCaptureFixture) -> None:
    outcomes = {}
    with caplog.at_level(logging.WARNING):
        for result in (LogRecordExportResult.SUCCESS, LogExportResult.SUCCESS, LogRecordExportResult.FAILURE):
            processor = shutdown_later(spanbatch.BatchLogRecordProcessor(GatedExporter(result)))
            processor.on_emit(emitted("x"))
            assert processor.force_flush(5000)
            outcomes[result] = (processor.stats().exported, processor.stats().dropped["export_failed"])
    assert outcomes == {
        LogRecordExportResult.SUCCESS: (1, 0),
        LogExportResult.SUCCESS: (1, 0),
        LogRecordExportResult.FAILURE: (0, 1),
    }
    assert not [r for r in caplog.records if "not a" in r.getMessage()]


def test_an_odd_result_is_named_as_a_log_record_export_result(
    shutdown_later: Later, caplog: pytest.LogCaptureFixture
) -> None:
    processor = shutdown_later(spanbatch.BatchLogRecordProcessor(GatedExporter("done")))
    with caplog.at_level(logging.WARNING):
        processor.on_emit(emitted("x"))
        assert processor.force_flush(5000)
    assert any("'done', not a LogRecordExportResult" in r.getMessage() for r in caplog.records)


def test_an_exporter_that_raises_is_logged_as_stock(shutdown_later: Later, caplog: pytest.LogCaptureFixture) -> None:
    class Raising(GatedExporter):
        def export(self, batch: Sequence[ReadableLogRecord]) -> Any:
            raise BrokenPipeError("down")

    processor = shutdown_later(spanbatch.BatchLogRecordProcessor(Raising()))
    with caplog.at_level(logging.ERROR):
        processor.on_emit(emitted("x"))
        assert processor.force_flush(5000)
    assert ("opentelemetry.sdk._shared_internal", "Exception while exporting Log.") in [
        (r.name, r.getMessage()) for r in caplog.records
    ]
    assert processor.stats().dropped["export_failed"] == 1


class Stuck(GatedExporter):
    """Its export hangs until the test releases it; its shutdown does not release it."""

    def shutdown(self) -> None:
        pass


def test_shutdown_is_bounded_when_the_exporter_hangs(shutdown_later: Later) -> None:
    exporter = Stuck()
    processor = spanbatch.BatchLogRecordProcessor(exporter, export_timeout_millis=300, max_export_batch_size=1)
    exporter.gate.clear()
    for i in range(3):
        processor.on_emit(emitted(f"r{i}"))
    assert exporter.entered.wait(10)
    assert not processor.force_flush(200)
    processor.shutdown()
    stats = processor.stats()
    assert balanced(stats)
    assert stats.in_flight == 1
    assert stats.dropped["shutdown"] == 2
    processor.on_emit(emitted("late"))
    assert processor.stats().dropped["shutdown"] == 3
    exporter.gate.set()
    assert wait_until(lambda: processor.stats().in_flight == 0)
    assert processor.stats().exported == 1


def test_retries_apply_to_log_records(shutdown_later: Later) -> None:
    class FailsOnce(GatedExporter):
        def export(self, batch: Sequence[ReadableLogRecord]) -> Any:
            super().export(batch)
            return LogRecordExportResult.FAILURE if len(self.batches) == 1 else LogRecordExportResult.SUCCESS

    processor = shutdown_later(
        spanbatch.BatchLogRecordProcessor(FailsOnce(), max_retries=2, retry_initial_backoff_millis=1)
    )
    processor.on_emit(emitted("x"))
    assert processor.force_flush(5000)
    stats = processor.stats()
    assert (stats.exported, stats.retried, stats.dropped_total) == (1, 1, 0)


def test_self_metrics_are_named_as_the_stock_log_processors(
    monkeypatch: pytest.MonkeyPatch, shutdown_later: Later
) -> None:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    reader = InMemoryMetricReader()
    processor = shutdown_later(
        spanbatch.BatchLogRecordProcessor(
            InMemoryLogRecordExporter(), 1000, 8, None, 8, meter_provider=MeterProvider(metric_readers=[reader])
        )
    )
    processor.on_emit(emitted("x"))
    assert processor.force_flush(5000)
    points = metric_points(reader)
    assert set(points) == {
        "otel.sdk.processor.log.processed",
        "otel.sdk.processor.log.queue.size",
        "otel.sdk.processor.log.queue.capacity",
    }
    (attributes, value), *_ = points["otel.sdk.processor.log.processed"]
    assert value == 1
    assert attributes["otel.component.type"] == "batching_log_processor"
    assert attributes["otel.component.name"].startswith("batching_log_processor/")
    assert points["otel.sdk.processor.log.queue.capacity"][0][1] == 8
    units = {
        m.name: (m.unit, m.description)
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert units["otel.sdk.processor.log.processed"][0] == "{log_record}"
    assert units["otel.sdk.processor.log.queue.size"][0] == "{log}"


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_exports_its_own_records_only(shutdown_later: Later) -> None:
    exporter = InMemoryLogRecordExporter()
    processor = shutdown_later(spanbatch.BatchLogRecordProcessor(exporter, schedule_delay_millis=LONG))
    for i in range(3):
        processor.on_emit(emitted(f"parent{i}"))

    def child() -> dict[str, Any]:
        processor.on_emit(emitted("child"))
        flushed = processor.force_flush(10_000)
        stats = processor.stats()
        return {"flushed": flushed, "bodies": bodies(exporter), "balanced": balanced(stats), "enqueued": stats.enqueued}

    report = in_child(child)
    assert report == {"flushed": True, "bodies": ["child"], "balanced": True, "enqueued": 1}
    assert processor.force_flush(5000)
    assert bodies(exporter) == ["parent0", "parent1", "parent2"]


@pytest.mark.alone  # a fork without Python's hooks: no other thread may want the GIL then
@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_child_forked_from_c_without_python_hooks_exports_its_records(shutdown_later: Later) -> None:
    """As uWSGI forks: no register_at_fork hook runs; the child notices at its first record (the parent was idle)."""
    exporter = InMemoryLogRecordExporter()
    processor = shutdown_later(spanbatch.BatchLogRecordProcessor(exporter, schedule_delay_millis=LONG))
    processor.on_emit(emitted("parent"))
    assert processor.force_flush(5000)

    def child() -> dict[str, Any]:
        for i in range(3):
            processor.on_emit(emitted(f"child{i}"))
        flushed = processor.force_flush(10_000)
        stats = processor.stats()
        return {"flushed": flushed, "bodies": bodies(exporter), "balanced": balanced(stats), "exported": stats.exported}

    report = in_child(child, libc_fork)
    assert report == {
        "flushed": True,
        "bodies": ["parent", "child0", "child1", "child2"],
        "balanced": True,
        "exported": 3,
    }
    assert bodies(exporter) == ["parent"]


# --- records emitted on the export thread (opentelemetry-python #4585, #3193) ----------------------


class LoggingExporter(GatedExporter):
    """An exporter whose own logging (as urllib3's or grpc's) goes to whatever handlers the app installed."""

    def export(self, batch: Sequence[ReadableLogRecord]) -> Any:
        logging.getLogger("tests.log_processor.exporter").warning("exporting %d records", len(batch))
        return super().export(batch)


@pytest.fixture(params=[1, 2], ids=["one-export-thread", "two-export-threads"])
def bridged_root(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[spanbatch.BatchLogRecordProcessor, LoggingExporter, LoggerProvider]]:
    """A processor behind a real LoggingHandler on the root logger: every logger's records reach it."""
    exporter = LoggingExporter()
    processor = spanbatch.BatchLogRecordProcessor(
        exporter, schedule_delay_millis=LONG, max_export_batch_size=4, max_concurrent_exports=request.param
    )
    provider = LoggerProvider()
    provider.add_log_record_processor(processor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(logger_provider=provider)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield processor, exporter, provider
    finally:
        root.removeHandler(handler)
        exporter.gate.set()
        processor.shutdown()


def test_block_policy_loses_nothing_while_the_exporter_is_slow(shutdown_later: Later) -> None:
    exporter = GatedExporter()
    processor = shutdown_later(
        spanbatch.BatchLogRecordProcessor(exporter, LONG, 2, None, 4, drop_policy="block", block_timeout_millis=30_000)
    )
    exporter.gate.clear()
    producer = threading.Thread(target=lambda: [processor.on_emit(emitted(f"r{i}")) for i in range(20)], daemon=True)
    producer.start()
    assert wait_until(lambda: processor.stats().queued >= 4)
    assert balanced(processor.stats())
    exporter.gate.set()
    producer.join(30)
    assert not producer.is_alive()
    assert processor.force_flush(10_000)
    stats = processor.stats()
    assert (stats.enqueued, stats.exported, stats.dropped_total) == (20, 20, 0)
    assert sorted(r.log_record.body for b in exporter.batches for r in b) == sorted(f"r{i}" for i in range(20))


def test_a_record_the_exporter_logs_is_dropped_and_counted_never_exported(
    bridged_root: tuple[spanbatch.BatchLogRecordProcessor, LoggingExporter, LoggerProvider],
) -> None:
    processor, exporter, _ = bridged_root
    app = logging.getLogger("tests.log_processor.app")
    for i in range(10):
        app.warning("app %d", i)
    assert processor.force_flush(10_000)
    exported = [record.log_record.body for batch in exporter.batches for record in batch]
    assert sorted(exported) == sorted(f"app {i}" for i in range(10))
    stats = processor.stats()
    # One record per export call (three batches of at most four), each dropped where it was emitted.
    assert (stats.enqueued, stats.exported, stats.batches, stats.dropped["export_thread"]) == (13, 10, 3, 3)
    assert balanced(stats)


def test_a_logging_reset_during_a_flush_neither_deadlocks_nor_loses_count(
    bridged_root: tuple[spanbatch.BatchLogRecordProcessor, LoggingExporter, LoggerProvider],
) -> None:
    """dictConfig holds logging's module lock while it flushes and closes the root's handlers, and the
    exporter logs (``getLogger`` takes that lock) in the middle of the export a flush waits for."""
    processor, exporter, _ = bridged_root
    app = logging.getLogger("tests.log_processor.app")
    for i in range(6):
        app.warning("app %d", i)
    exporter.gate.clear()
    flushed: list[bool] = []
    flusher = threading.Thread(target=lambda: flushed.append(processor.force_flush(20_000)), daemon=True)
    flusher.start()
    assert exporter.entered.wait(10)
    root_handlers = list(logging.getLogger().handlers)

    def reset() -> None:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})

    resetter = threading.Thread(target=reset, daemon=True)
    resetter.start()
    exporter.gate.set()
    resetter.join(30)
    flusher.join(30)
    assert not resetter.is_alive()
    assert not flusher.is_alive()
    assert flushed == [True]
    for handler in root_handlers:  # what dictConfig removed, back for the fixture to take off again
        logging.getLogger().addHandler(handler)
    stats = processor.stats()
    exported = sorted(record.log_record.body for batch in exporter.batches for record in batch)
    assert exported == sorted(f"app {i}" for i in range(6))
    assert stats.exported == 6
    assert stats.dropped["export_thread"] == stats.batches == 2
    assert balanced(stats)


def test_export_thread_is_listed_for_log_records_only(shutdown_later: Later) -> None:
    """Spans are never dropped for it (a span ended on an export thread is queued): their stats stay as they were."""
    logs = shutdown_later(spanbatch.BatchLogRecordProcessor(InMemoryLogRecordExporter()))
    spans = shutdown_later(spanbatch.BatchSpanProcessor(InMemorySpanExporter()))
    assert dict(logs.stats().dropped) == NO_DROPS
    assert dict(spans.stats().dropped) == {reason: 0 for reason in NO_DROPS if reason != "export_thread"}


def test_the_spec_proposals_blrp_queue_full_variables_apply_to_log_records_only(
    monkeypatch: pytest.MonkeyPatch, shutdown_later: Later
) -> None:
    # opentelemetry-specification PR #5181 (open) names OTEL_BLRP_ON_QUEUE_FULL and
    # OTEL_BLRP_BLOCK_ON_QUEUE_FULL_TIMEOUT for the log processor; the OTEL_BSP_ ones are the span processor's.
    monkeypatch.setenv("OTEL_BLRP_ON_QUEUE_FULL", "block")
    monkeypatch.setenv("OTEL_BLRP_BLOCK_ON_QUEUE_FULL_TIMEOUT", "250")
    monkeypatch.setenv("OTEL_BSP_ON_QUEUE_FULL", "drop")
    monkeypatch.setenv("OTEL_BSP_BLOCK_ON_QUEUE_FULL_TIMEOUT", "40")
    logs = shutdown_later(spanbatch.BatchLogRecordProcessor(InMemoryLogRecordExporter()))
    spans = shutdown_later(spanbatch.BatchSpanProcessor(InMemorySpanExporter()))
    assert (logs.lanes[0].policies.drop_policy, logs.lanes[0].core.block_timeout_millis) == ("block", 250)
    assert (spans.lanes[0].policies.drop_policy, spans.lanes[0].core.block_timeout_millis) == ("oldest", 40)


class ChattyExporter(LogRecordExporter):
    """Logs a line on every export, as the OTLP exporters do on every retry."""

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        logging.getLogger("tests.chatty_exporter").warning("Transient error, retrying")
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@pytest.mark.timeout(20)
def test_under_block_a_record_logged_through_a_handler_never_waits_for_the_worker_that_needs_its_lock(
    shutdown_later: Later,
) -> None:
    # The application thread emits while holding the LoggingHandler's lock; the worker's exporter logs
    # through that same handler. Waiting there for room would stall both until block_timeout_millis
    # (30 s here: past the test's timeout) for every record that found the queue full.
    processor = shutdown_later(
        spanbatch.BatchLogRecordProcessor(
            ChattyExporter(),
            max_queue_size=10,
            max_export_batch_size=5,
            schedule_delay_millis=5,
            drop_policy="block",
            block_timeout_millis=30_000,
        )
    )
    provider = LoggerProvider()
    provider.add_log_record_processor(processor)
    handler = LoggingHandler(logger_provider=provider)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        for i in range(200):
            logging.getLogger("tests.app").warning("record %d", i)
        assert processor.force_flush(10_000)
    finally:
        root.removeHandler(handler)
    stats = processor.stats()
    assert stats.dropped["export_thread"] > 0  # the worker did log through the handler meanwhile
    assert stats.exported + stats.dropped["queue_full"] + stats.dropped["export_thread"] == stats.enqueued
    assert balanced(stats)
    # Emitted from no handler (the SDK's logger API), a record still waits for room, as block promises.
    direct = provider.get_logger("tests.direct")
    for i in range(50):
        direct.emit(body=f"direct {i}")
    assert processor.force_flush(10_000)
    assert processor.stats().dropped["queue_full"] == stats.dropped["queue_full"]


@pytest.mark.parametrize("processor_cls", [StockBatchLogRecordProcessor, spanbatch.BatchLogRecordProcessor])
@pytest.mark.parametrize("drop_policy", ["oldest", "block"])
def test_a_subclass_that_overrides_on_emit_is_called_for_every_record(
    processor_cls: Any, drop_policy: str, shutdown_later: Later
) -> None:
    # A subclass's on_emit is the user's code: the SDK calls it, and only what it passes on is exported.
    class Redacting(processor_cls):  # type: ignore[misc, valid-type]
        def on_emit(self, log_record: ReadWriteLogRecord) -> None:
            if log_record.log_record.body != "secret":
                super().on_emit(log_record)

    exporter = InMemoryLogRecordExporter()
    policies = {"drop_policy": drop_policy} if processor_cls is spanbatch.BatchLogRecordProcessor else {}
    processor = shutdown_later(Redacting(exporter, **policies))
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(processor)
    for body in ("hello", "secret", "bye"):
        provider.get_logger("t").emit(LogRecord(body=body, severity_number=SeverityNumber.INFO))
    assert processor.force_flush(5000)
    assert [record.log_record.body for record in exporter.get_finished_logs()] == ["hello", "bye"]


OLD_SDK_SUBCLASS = """
from opentelemetry.sdk._logs import LogRecordProcessor
del LogRecordProcessor.on_emit  # SDKs before 1.28: no on_emit, their LoggerProvider calls processor.emit(...)
import spanbatch
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
calls = []
class Redacting(spanbatch.BatchLogRecordProcessor):
    def on_emit(self, record):
        calls.append(record)
processor = Redacting(InMemoryLogRecordExporter())
processor.emit(object())
processor.shutdown()
print(len(calls))
"""


def test_on_sdks_that_call_emit_a_subclass_override_of_on_emit_is_called() -> None:
    app = [sys.executable, "-c", OLD_SDK_SUBCLASS]
    done = subprocess.run(app, capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "1"), done.stderr
