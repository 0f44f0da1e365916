"""Several backends: one lane each, one on_end, flushes and shutdown under one deadline."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import NoOpTracerProvider

from tests.helpers import HangingExporter, RecordingExporter, balanced, end_spans, make_span, provider_with
from tests.helpers.metrics import metric_points

Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


def test_every_backend_gets_every_sampled_span_from_one_on_end(shutdown_later: Later) -> None:
    a, b = RecordingExporter(), RecordingExporter()
    tp = provider_with()
    pipeline = shutdown_later(spanbatch.install(tp, {"a": a, "b": b}, schedule_delay_millis=60_000))
    tracer = tp.get_tracer("t")
    for i in range(10):
        tracer.start_span(f"s{i}").end()
    pipeline.on_end(make_span("unsampled", sampled=False))
    assert pipeline.force_flush(5000)
    assert a.names() == b.names() == [f"s{i}" for i in range(10)]
    by_backend = pipeline.stats_by_backend()
    assert list(by_backend) == ["a", "b"]
    assert all(s.exported == 10 and balanced(s) for s in by_backend.values())
    assert pipeline.stats().exported == 20
    assert balanced(pipeline.stats())
    pipeline.shutdown()


def test_an_error_reading_a_spans_context_reaches_the_caller(shutdown_later: Later) -> None:
    class Broken(ReadableSpan):
        @property
        def context(self) -> Any:
            raise KeyboardInterrupt

    a, b = RecordingExporter(), RecordingExporter()
    pipeline = shutdown_later(spanbatch.Pipeline({"a": a, "b": b}, schedule_delay_millis=60_000))
    with pytest.raises(KeyboardInterrupt):
        pipeline.on_end(Broken("broken"))
    pipeline.on_end(make_span("after"))
    assert pipeline.force_flush(5000)
    assert a.names() == b.names() == ["after"]
    assert balanced(pipeline.stats())


@pytest.mark.timeout(30)
def test_a_hanging_backend_fills_and_drops_only_its_own_lane(
    hanging_exporter: HangingExporter, caplog: pytest.LogCaptureFixture, shutdown_later: Later
) -> None:
    fast = RecordingExporter()
    pipeline = shutdown_later(
        spanbatch.Pipeline(
            {"fast": fast, "stuck": hanging_exporter},
            max_queue_size=50,
            max_export_batch_size=10,
            export_timeout_millis=300,
        )
    )
    end_spans(pipeline, 10)
    assert hanging_exporter.entered.wait(5)
    end_spans(pipeline, 490, "more")
    started = time.monotonic()
    results = pipeline.end_session(500)
    assert time.monotonic() - started < 2
    assert results == {"fast": True, "stuck": False}
    fast_stats, stuck_stats = pipeline.stats_by_backend().values()
    assert fast_stats.exported == 500
    assert fast_stats.dropped_total == 0
    assert stuck_stats.dropped["queue_full"] == 500 - 10 - 50
    assert balanced(stuck_stats)
    with caplog.at_level(logging.WARNING, logger="spanbatch"):
        started = time.monotonic()
        pipeline.shutdown()
        assert time.monotonic() - started < 2
    # Told at once (the first drops, or all of them), the rest at shutdown: each once.
    told = [r.getMessage().split("dropped ")[1] for r in caplog.records if "stuck queue full" in r.getMessage()]
    assert sum(int(words.split()[0]) for words in told) == 440
    assert "fast queue full" not in caplog.text


def test_per_backend_variables_win_over_global_ones(monkeypatch: pytest.MonkeyPatch, shutdown_later: Later) -> None:
    monkeypatch.setenv("SPANBATCH_MAX_QUEUE_SIZE", "300")
    monkeypatch.setenv("SPANBATCH_MY_BACKEND_MAX_QUEUE_SIZE", "100")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "7")  # the stock variables are not this layer's
    pipeline = shutdown_later(spanbatch.Pipeline({"my-backend": RecordingExporter(), "other": RecordingExporter()}))
    mine, other = (lane.settings for lane in pipeline.lanes)
    assert (mine.max_queue_size, other.max_queue_size) == (100, 300)
    assert mine.schedule_delay_millis == other.schedule_delay_millis == 1000
    assert mine.max_export_batch_size == 100  # clamped to its queue, with a warning
    explicit = shutdown_later(
        spanbatch.Pipeline({"x": RecordingExporter()}, max_queue_size=64, max_export_batch_size=8)
    )
    assert explicit.lanes[0].settings.max_queue_size == 64
    pipeline.shutdown()


def test_session_end_flushes_unless_disabled(monkeypatch: pytest.MonkeyPatch, shutdown_later: Later) -> None:
    exporter = RecordingExporter()
    pipeline = shutdown_later(spanbatch.Pipeline({"only": exporter}, schedule_delay_millis=60_000))
    with pipeline.session():
        end_spans(pipeline, 3)
    assert len(exporter.spans) == 3
    monkeypatch.setenv("SPANBATCH_FORCE_FLUSH_ON_SESSION_END", "false")
    with pipeline.session():
        end_spans(pipeline, 2)
    assert len(exporter.spans) == 3
    assert pipeline.end_session() == {}
    assert pipeline.force_flush(5000)
    assert len(exporter.spans) == 5
    pipeline.shutdown()


def test_debug_logs_one_line_per_export_without_span_contents(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, shutdown_later: Later
) -> None:
    monkeypatch.setenv("SPANBATCH_DEBUG", "true")
    pipeline = shutdown_later(spanbatch.Pipeline({"phoenix": RecordingExporter()}, schedule_delay_millis=60_000))
    with caplog.at_level(logging.DEBUG, logger="spanbatch"):
        end_spans(pipeline, 3, "secret-")
        pipeline.force_flush(5000)
    lines = [r.getMessage() for r in caplog.records if "export:" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].startswith("phoenix export: batch=3 spans, retries=0, duration=")
    assert lines[0].endswith("ms, status=ok")
    assert "secret" not in caplog.text
    pipeline.shutdown()


def test_self_metrics_are_per_backend(monkeypatch: pytest.MonkeyPatch, shutdown_later: Later) -> None:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    reader = InMemoryMetricReader()
    pipeline = shutdown_later(
        spanbatch.Pipeline(
            {"a": RecordingExporter(), "b": RecordingExporter()}, meter_provider=MeterProvider(metric_readers=[reader])
        )
    )
    end_spans(pipeline, 4)
    pipeline.force_flush(5000)
    points = metric_points(reader)["otel.sdk.processor.span.processed"]
    processed = {attributes["otel.component.name"]: value for attributes, value in points}
    assert processed == {"a": 4, "b": 4}
    pipeline.shutdown()


@pytest.mark.parametrize(
    ("exporters", "error"),
    [({}, ValueError), ({"": RecordingExporter()}, ValueError), ({3: RecordingExporter()}, ValueError)],
)
def test_bad_backend_lists_are_rejected(exporters: dict[Any, Any], error: type) -> None:
    with pytest.raises(error, match="backend"):
        spanbatch.Pipeline(exporters)


def test_install_needs_an_sdk_provider() -> None:
    with pytest.raises(TypeError, match="SDK TracerProvider"):
        spanbatch.install(NoOpTracerProvider(), {"a": RecordingExporter()})  # type: ignore[arg-type]
