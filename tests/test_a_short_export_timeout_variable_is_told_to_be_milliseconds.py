"""An export timeout read from a variable under a second: likely seconds written for milliseconds (revM).

The stock processors never read ``OTEL_BSP_EXPORT_TIMEOUT`` / ``OTEL_BLRP_EXPORT_TIMEOUT``; spanbatch bounds
each export by it, so ``OTEL_BSP_EXPORT_TIMEOUT=10`` (the OTLP exporters' own timeout variable is in seconds)
made ``shutdown()`` give up a 50 ms export and the spans queued behind it: 0 to 512 of 1200 delivered where
stock delivered 1200. The value is still used as given; spanbatch says once what it means, naming the
variable, and the give-up names the timeout it went by.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from spanbatch import _setting

from tests.helpers import RecordingExporter

CONFIG_LOGGER = "spanbatch._config"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in (
        "OTEL_BSP_EXPORT_TIMEOUT",
        "SPANBATCH_EXPORT_TIMEOUT_MS",
        "OTEL_BLRP_EXPORT_TIMEOUT",
        "SPANBATCH_LOGS_EXPORT_TIMEOUT_MS",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(_setting, "_warned", set())


def told(caplog: pytest.LogCaptureFixture, variable: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == CONFIG_LOGGER and variable in record.getMessage() and "milliseconds" in record.getMessage()
    ]


@pytest.mark.parametrize(
    ("variable", "make"),
    [
        ("OTEL_BSP_EXPORT_TIMEOUT", lambda: spanbatch.BatchSpanProcessor(RecordingExporter())),
        ("OTEL_BLRP_EXPORT_TIMEOUT", lambda: spanbatch.BatchLogRecordProcessor(RecordingExporter())),
    ],
)
def test_a_variable_under_a_second_is_told_once_and_used_as_given(
    variable: str, make: object, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(variable, "10")
    with caplog.at_level(logging.WARNING, logger=CONFIG_LOGGER):
        processors = [make(), make()]  # type: ignore[operator]
    for processor in processors:
        assert processor.settings.export_timeout_millis == 10
        processor.shutdown()
    messages = told(caplog, variable)
    assert len(messages) == 1, caplog.text
    assert f"{variable}=10 is in milliseconds" in messages[0]
    assert "OTEL_EXPORTER_OTLP_TIMEOUT" in messages[0]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_BSP_EXPORT_TIMEOUT", "1000"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "30000"),
        # spanbatch's own variables say milliseconds in their names.
        ("SPANBATCH_EXPORT_TIMEOUT_MS", "10"),
    ],
)
def test_a_variable_of_a_second_or_more_or_named_in_milliseconds_is_not_told(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(variable, value)
    with caplog.at_level(logging.WARNING, logger=CONFIG_LOGGER):
        spanbatch.BatchSpanProcessor(RecordingExporter()).shutdown()
    assert not told(caplog, variable), caplog.text


def test_an_argument_under_a_second_is_not_told(caplog: pytest.LogCaptureFixture) -> None:
    # The argument's name says milliseconds: the caller meant it.
    with caplog.at_level(logging.WARNING, logger=CONFIG_LOGGER):
        spanbatch.BatchSpanProcessor(RecordingExporter(), export_timeout_millis=10).shutdown()
    assert not [record for record in caplog.records if "milliseconds" in record.getMessage()], caplog.text


class SlowExporter(SpanExporter):
    """Each export takes 300 ms: healthy, but past the 100 ms export timeout."""

    def __init__(self) -> None:
        self.released = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.released.wait(0.3)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.released.set()


def test_the_give_up_names_the_export_timeout_it_went_by(caplog: pytest.LogCaptureFixture) -> None:
    processor = spanbatch.BatchSpanProcessor(SlowExporter(), max_export_batch_size=8, export_timeout_millis=100.0)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    for _ in range(40):
        tracer.start_span("s").end()
    with caplog.at_level(logging.WARNING, logger="spanbatch"):
        processor.shutdown()
    stats = processor.stats()
    assert stats.enqueued == stats.exported + stats.queued + stats.in_flight + sum(stats.dropped.values())
    given_up = [record.getMessage() for record in caplog.records if "stalled" in record.getMessage()]
    assert given_up, caplog.text
    assert "export_timeout_millis=100" in given_up[0]
    # What the export still holds is said too (revP: "dropped 0 spans" was all a hung export's give-up said).
    assert "; 8 in flight are counted as their export ends" in given_up[0]  # the one batch the 300 ms export holds
