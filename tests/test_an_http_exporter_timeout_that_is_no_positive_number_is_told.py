"""An OTLP/HTTP exporter whose timeout is 0, negative or NaN (``OTEL_EXPORTER_OTLP_TIMEOUT=0``) fails every export,
as the stock exporter does; the stock one's log line names the cause (requests refuses the timeout), spanbatch's
only said "due to timeout, max retries or shutdown" (revM). Now its constructor says why."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult
from spanbatch.exporter import OTLPLogExporter, OTLPSpanExporter

from tests.helpers import make_span

EXPORTERS = {"spans": (OTLPSpanExporter, "/v1/traces"), "logs": (OTLPLogExporter, "/v1/logs")}


def forget_duplicates(exporter_class: type, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stock exporters' loggers drop a line logged from the same place within 20 s (the SDK's DuplicateFilter):
    each case starts with that memory empty."""
    for log_filter in exporter_class._logger.filters:  # type: ignore[attr-defined]
        monkeypatch.setattr(log_filter, "last_log", None, raising=False)


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
@pytest.mark.parametrize("signal", sorted(EXPORTERS))
def test_the_constructor_says_every_export_will_fail(
    signal: str, value: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    exporter_class, path = EXPORTERS[signal]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", value)
    forget_duplicates(exporter_class, monkeypatch)
    with caplog.at_level(logging.WARNING):
        exporter = exporter_class(endpoint=f"http://127.0.0.1:9{path}")
    try:
        told = [r.getMessage() for r in caplog.records if "not a positive number of seconds" in r.getMessage()]
        assert len(told) == 1, caplog.text
        if signal == "spans":
            assert exporter.export([make_span()]) is SpanExportResult.FAILURE
    finally:
        exporter.shutdown()


def test_a_positive_timeout_is_not_told(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "0.5")
    forget_duplicates(OTLPSpanExporter, monkeypatch)
    with caplog.at_level(logging.WARNING):
        OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces").shutdown()
    assert "not a positive number of seconds" not in caplog.text
