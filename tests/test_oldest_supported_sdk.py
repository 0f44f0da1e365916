"""What spanbatch promises on every opentelemetry release it declares (pyproject's floor, 1.27, on up), checked
against the stock parts of whichever release is installed: the rest of the suite follows the newest one.

Run under an old SDK (for instance a virtualenv with opentelemetry-{api,sdk,proto,exporter-otlp-proto-*}==1.27.0)
this module is the floor check; under the newest it runs as part of the suite.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler, LogRecordProcessor
from opentelemetry.sdk._logs import export as log_export
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor as StockBatchSpanProcessor
from opentelemetry.sdk.trace.export import SpanExportResult
from spanbatch import BatchLogRecordProcessor, BatchSpanProcessor
from spanbatch._releases import installed_release

pytestmark = pytest.mark.timeout(60)


SDK = installed_release("opentelemetry-sdk")
# Named InMemoryLogExporter before 1.39.
# Named LogExportResult before 1.39.
LogResult = getattr(log_export, "LogRecordExportResult", None) or log_export.LogExportResult
InMemoryLogs = getattr(log_export, "InMemoryLogRecordExporter", None) or log_export.InMemoryLogExporter


def _exported_through_a_logging_handler(processor_class: type) -> list[tuple[object, ...]]:
    exporter = InMemoryLogs()
    provider = LoggerProvider(shutdown_on_exit=False)
    processor = processor_class(exporter)
    provider.add_log_record_processor(processor)
    logger = logging.getLogger("tests.floor")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    try:
        logger.info("hello %s", "floor", extra={"k": 1})
        try:
            _ = 1 / 0
        except ZeroDivisionError:
            logger.exception("boom")
        assert processor.force_flush(5_000) is not False  # the stock one returns None on 1.33
        provider.shutdown()
        logger.info("after shutdown")  # ignored by both
    finally:
        logger.removeHandler(handler)
    return [
        (
            type(item).__name__,
            item.log_record.body,
            sorted(dict(item.log_record.attributes or {})),
            item.log_record.severity_text,
            item.instrumentation_scope.name if item.instrumentation_scope else None,
            type(item.log_record).__name__,
        )
        for item in exporter.get_finished_logs()
    ]


def test_the_log_processor_exports_what_the_stock_one_of_this_sdk_exports() -> None:
    # LogData before SDK 1.39, a ReadableLogRecord from 1.39 on: whichever the stock processor exports.
    stock = _exported_through_a_logging_handler(log_export.BatchLogRecordProcessor)
    assert len(stock) == 2
    assert _exported_through_a_logging_handler(BatchLogRecordProcessor) == stock


class _Seen(LogRecordProcessor):
    """Notes the record each emit hands the processors (a ReadWriteLogRecord, or a LogData before 1.39)."""

    def __init__(self) -> None:
        self.records: list[Any] = []

    def on_emit(self, log_record: Any) -> None:
        self.records.append(log_record)

    emit = on_emit  # what SDKs before 1.28 call

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def test_the_log_processor_queues_the_api_record_as_the_stock_one_of_this_sdk_does() -> None:
    # SDKs before 1.44 queue the very API record the other processors see (with its context); from
    # 1.44 a shallow copy whose context is emptied.
    seen, stock_exporter, exporter = _Seen(), InMemoryLogs(), InMemoryLogs()
    stock, ours = log_export.BatchLogRecordProcessor(stock_exporter), BatchLogRecordProcessor(exporter)
    provider = LoggerProvider(shutdown_on_exit=False)
    for processor in (seen, stock, ours):
        provider.add_log_record_processor(processor)
    tracer = TracerProvider().get_tracer("tests.floor")
    logger = logging.getLogger("tests.floor.context")
    logger.propagate = False
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    try:
        with tracer.start_as_current_span("current"):
            logger.warning("in a span")
        stock.force_flush(5_000)  # which returns None on some SDKs (1.33)
        assert ours.force_flush(5_000)
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    [emitted] = [record.log_record for record in seen.records]
    [queued_by_stock] = [item.log_record for item in stock_exporter.get_finished_logs()]
    [queued] = [item.log_record for item in exporter.get_finished_logs()]
    assert (queued is emitted) == (queued_by_stock is emitted)
    assert getattr(queued, "context", None) == getattr(queued_by_stock, "context", None)
    assert queued.span_id == queued_by_stock.span_id != 0


APP = """
from opentelemetry import trace, _logs
spans = trace.get_tracer_provider()._active_span_processor._span_processors
logs = _logs.get_logger_provider()._multi_log_record_processor._log_record_processors
print("processors:", sorted(type(p).__module__.split(".")[0] for p in (*spans, *logs)))
"""


def test_zero_code_batches_with_spanbatch_from_sdk_1_40_and_warns_before() -> None:
    pytest.importorskip("opentelemetry.instrumentation.auto_instrumentation", reason="needs opentelemetry-instrument")
    instrument = Path(sys.executable).with_name("opentelemetry-instrument")
    if not instrument.exists():
        pytest.skip("needs opentelemetry-instrument beside this Python")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SPANBATCH_"))}
    env.update(
        OTEL_PYTHON_CONFIGURATOR="spanbatch",
        OTEL_TRACES_EXPORTER="console",
        OTEL_LOGS_EXPORTER="console",
        OTEL_METRICS_EXPORTER="none",
        # Older SDKs set a logger provider up only when asked to.
        OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED="true",
    )
    done = subprocess.run(
        [str(instrument), sys.executable, "-c", APP], env=env, capture_output=True, text=True, timeout=45, check=False
    )
    assert done.returncode == 0, done.stderr
    # The SDK's set-up takes another batch processor only from 1.40 (export_span_processor and
    # export_log_record_processor); before, the stock ones batch, and spanbatch says so for each signal.
    if SDK is not None and SDK >= (1, 40):
        assert "processors: ['spanbatch', 'spanbatch']" in done.stdout, done.stdout + done.stderr
        assert "cannot take another processor" not in done.stderr
    else:
        assert "processors: ['opentelemetry', 'opentelemetry']" in done.stdout, done.stdout + done.stderr
        assert done.stderr.count("cannot take another processor") == 2, done.stderr


# The stock OTLP encoder spanbatch's Rust encoder matches: from 1.43 a None value is an empty AnyValue;
# before, it left a log body or attribute value out and dropped a span attribute holding None.
ENCODER = installed_release("opentelemetry-exporter-otlp-proto-common")


@pytest.mark.skipif(ENCODER is None or ENCODER >= (1, 43), reason="needs an OTLP encoder older than 1.43")
def test_the_grpc_exporter_refuses_a_stock_encoder_it_would_not_match() -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc", reason="needs the OTLP/gRPC exporter")
    sys.modules.pop("spanbatch.exporter.grpc", None)
    with pytest.raises(ImportError, match=r"opentelemetry-exporter-otlp-proto-grpc>=1\.43.*spanbatch\[otlp-grpc\]"):
        __import__("spanbatch.exporter.grpc")


@pytest.mark.skipif(ENCODER is None or ENCODER < (1, 43), reason="needs an OTLP encoder of 1.43 or later")
def test_the_grpc_exporter_encodes_none_values_as_the_installed_stock_encoder() -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc", reason="needs the OTLP/gRPC exporter")
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: PLC0415
    from opentelemetry.sdk.trace import ReadableSpan  # noqa: PLC0415
    from opentelemetry.trace import SpanContext  # noqa: PLC0415
    from spanbatch.exporter import grpc as spanbatch_grpc  # noqa: PLC0415

    from tests.helpers import otlp_logs, otlp_spans  # noqa: PLC0415

    spans = [
        *otlp_spans.corpus(),
        ReadableSpan("nones", SpanContext(1, 2, False), attributes={"none": None, "list": [1, None], "ok": 1}),
    ]
    records = [
        *otlp_logs.corpus(),
        otlp_logs.record(None, attributes={"none": None, "map": {"none": None}, "list": [None, 1]}),
    ]
    span_exporter = spanbatch_grpc.OTLPSpanExporter(endpoint="127.0.0.1:9", insecure=True)
    log_exporter = spanbatch_grpc.OTLPLogExporter(endpoint="127.0.0.1:9", insecure=True)
    try:
        assert span_exporter.span_encoder.encode(spans) == encode_spans(spans).SerializeToString()
        assert log_exporter.log_encoder.encode(records) == otlp_logs.stock_bytes(records)
    finally:
        span_exporter.shutdown()
        log_exporter.shutdown()


class _Held:
    """An exporter of spans or log records whose exports wait for ``release``: the queue fills behind it."""

    def __init__(self, release: threading.Event, success: Any) -> None:
        self._release, self._success = release, success

    def export(self, batch: Any) -> Any:
        self._release.wait(10)
        return self._success

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _stock_lines_of_a_full_queue(processor_class: type, signal: str, caplog: pytest.LogCaptureFixture) -> set[Any]:
    release = threading.Event()
    success = SpanExportResult.SUCCESS if signal == "spans" else LogResult.SUCCESS
    exporter = _Held(release, success)
    processor = processor_class(exporter, max_queue_size=4, max_export_batch_size=2, schedule_delay_millis=1)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="opentelemetry"):
        if signal == "spans":
            provider = TracerProvider(shutdown_on_exit=False)
            provider.add_span_processor(processor)
            for _ in range(30):
                provider.get_tracer("tests.floor").start_span("x").end()
        else:
            logs = LoggerProvider(shutdown_on_exit=False)
            logs.add_log_record_processor(processor)
            logger = logging.getLogger("tests.floor.full")
            logger.propagate = False
            handler = LoggingHandler(logger_provider=logs)
            logger.addHandler(handler)
            for _ in range(30):
                logger.warning("m")
            logger.removeHandler(handler)
        release.set()
        processor.shutdown()
    return {(r.name, r.levelname, r.getMessage()) for r in caplog.records if r.name.startswith("opentelemetry")}


@pytest.mark.parametrize("signal", ["spans", "logs"])
def test_a_full_queue_is_logged_as_the_stock_processor_of_this_sdk_logs_it(
    signal: str, caplog: pytest.LogCaptureFixture
) -> None:
    # 1.40+: "Queue full, dropping Span./Log." on opentelemetry.sdk._shared_internal; 1.34-1.39: nothing;
    # before: "Queue is full, likely spans will be dropped." on opentelemetry.sdk.trace.export, nothing for logs.
    stock_class, ours_class = {
        "spans": (StockBatchSpanProcessor, BatchSpanProcessor),
        "logs": (log_export.BatchLogRecordProcessor, BatchLogRecordProcessor),
    }[signal]
    stock = _stock_lines_of_a_full_queue(stock_class, signal, caplog)
    assert _stock_lines_of_a_full_queue(ours_class, signal, caplog) == stock


class _Raising(_Held):
    def export(self, batch: Any) -> Any:
        raise RuntimeError("the exporter's bug")


@pytest.mark.parametrize("signal", ["spans", "logs"])
def test_an_exporter_that_raises_is_logged_as_the_stock_processor_of_this_sdk_logs_it(
    signal: str, caplog: pytest.LogCaptureFixture
) -> None:
    # 1.34+: "Exception while exporting Span./Log." on opentelemetry.sdk._shared_internal; before, "Exception
    # while exporting Span batch." on the span processor's logger and "... logs." on the log processor's.
    def lines(processor_class: type) -> set[Any]:
        processor = processor_class(_Raising(threading.Event(), None))
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="opentelemetry"):
            if signal == "spans":
                provider = TracerProvider(shutdown_on_exit=False)
                provider.add_span_processor(processor)
                provider.get_tracer("tests.floor").start_span("x").end()
            else:
                logs = LoggerProvider(shutdown_on_exit=False)
                logs.add_log_record_processor(processor)
                logs.get_logger("tests.floor").emit(_a_log_record())
            processor.force_flush(5_000)
            processor.shutdown()
        return {
            (r.name, r.levelname, r.getMessage(), r.exc_info is not None)
            for r in caplog.records
            if r.name.startswith("opentelemetry")
        }

    stock_class, ours_class = {
        "spans": (StockBatchSpanProcessor, BatchSpanProcessor),
        "logs": (log_export.BatchLogRecordProcessor, BatchLogRecordProcessor),
    }[signal]
    stock = lines(stock_class)
    assert len(stock) == 1
    assert lines(ours_class) == stock


def _a_log_record() -> Any:
    from opentelemetry import _logs as api_logs  # noqa: PLC0415
    from opentelemetry.sdk import _logs as sdk_logs  # noqa: PLC0415

    # The SDK's LogRecord (what its Logger.emit takes before 1.39) where there is one, else the API's.
    record_class = getattr(sdk_logs, "LogRecord", None) or api_logs.LogRecord
    return record_class(body="floor", severity_text="WARN")
