"""Drop warnings read as a sentence: one item is "1 span" or "1 log record", and a report told within a second
(a first full queue, a first item after shutdown: told at once) says "in the last second", not "in the last 0 s"."""

from __future__ import annotations

import logging
import re

import pytest
import spanbatch
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

from tests.helpers import RecordingExporter, provider_with
from tests.helpers.logs import emit_events, logger_provider_with

LINE = re.compile(r"^shut down — dropped (\d+ [a-z ]+) in the last (.+)$")


def told(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    found = (LINE.match(r.getMessage()) for r in caplog.records if r.name == "spanbatch")
    return [(m.group(1), m.group(2)) for m in found if m]


@pytest.mark.timeout(20)
def test_one_span_dropped_at_once_is_one_span_in_the_last_second(caplog: pytest.LogCaptureFixture) -> None:
    processor = spanbatch.BatchSpanProcessor(RecordingExporter())
    tracer = provider_with(processor).get_tracer("tests")
    processor.shutdown()
    with caplog.at_level(logging.WARNING, logger="spanbatch"):
        tracer.start_span("late").end()
    [(count, elapsed)] = told(caplog)
    assert (count, elapsed) == ("1 span", "second")


@pytest.mark.timeout(20)
def test_one_log_record_dropped_is_one_log_record(caplog: pytest.LogCaptureFixture) -> None:
    processor = spanbatch.BatchLogRecordProcessor(InMemoryLogRecordExporter())
    provider = logger_provider_with(processor)
    processor.shutdown()
    with caplog.at_level(logging.WARNING, logger="spanbatch"):
        emit_events(provider, 1)
    assert [count for count, _ in told(caplog)] == ["1 log record"]
