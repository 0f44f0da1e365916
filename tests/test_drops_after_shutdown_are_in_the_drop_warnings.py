"""Items handed to a processor after its shutdown (a provider that still holds it) are counted ``shutdown`` and
told in spanbatch's drop warnings, as every other drop is: the first at once (no worker is left to tell of it
later), the rest at most once per interval, and whatever the interval left unsaid at exit. The lines read as
written: "1 span", "1 log record", and "in the last second" for a report within one (not "in the last 0 s")."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import textwrap
import warnings

import pytest
import spanbatch
from opentelemetry.sdk._logs import LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

from tests.helpers import RecordingExporter, provider_with
from tests.helpers.logs import emit_events, logger_provider_with

LINE = re.compile(r"^shut down — dropped (\d+) (spans?|log records?) in the last (?:second|\d+ s)$")


def said(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    """(count, items) of each shutdown drop line spanbatch logged."""
    found = (LINE.match(r.getMessage()) for r in caplog.records if r.name == "spanbatch")
    return [(int(m.group(1)), m.group(2)) for m in found if m]


@pytest.mark.timeout(20)
def test_the_first_span_ended_after_shutdown_is_warned_at_once(caplog: pytest.LogCaptureFixture) -> None:
    processor = spanbatch.BatchSpanProcessor(RecordingExporter())
    tracer = provider_with(processor).get_tracer("tests")
    processor.shutdown()
    with caplog.at_level(logging.WARNING, logger="spanbatch"):
        tracer.start_span("late").end()
        assert said(caplog) == [(1, "span")]
        assert "shut down — dropped 1 span in the last second" in caplog.messages
        for _ in range(4):  # within the interval: counted, told later
            tracer.start_span("late").end()
    assert said(caplog) == [(1, "span")]
    assert processor.stats().dropped["shutdown"] == 5


@pytest.mark.timeout(20)
def test_the_first_record_emitted_after_shutdown_is_warned_at_once(caplog: pytest.LogCaptureFixture) -> None:
    processor = spanbatch.BatchLogRecordProcessor(InMemoryLogRecordExporter())
    provider = logger_provider_with(processor)
    processor.shutdown()
    with caplog.at_level(logging.WARNING, logger="spanbatch"):
        emit_events(provider, 3)
    assert said(caplog) == [(1, "log record")]
    assert processor.stats().dropped["shutdown"] == 3


APP = """
import logging
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import spanbatch

logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
processor = spanbatch.BatchSpanProcessor(InMemorySpanExporter())
provider = TracerProvider(shutdown_on_exit=False)
provider.add_span_processor(processor)
processor.shutdown()
tracer = provider.get_tracer("app")
for _ in range(7):
    tracer.start_span("late").end()
print("dropped at shutdown:", processor.stats().dropped["shutdown"], flush=True)
"""


@pytest.mark.timeout(60)
def test_spans_ended_after_shutdown_that_the_interval_left_unsaid_are_warned_at_exit() -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(APP)], capture_output=True, text=True, timeout=50, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "dropped at shutdown: 7" in done.stdout
    lines = [LINE.match(line.removeprefix("spanbatch: ")) for line in done.stderr.splitlines()]
    counts = [int(m.group(1)) for m in lines if m]
    assert counts == [1, 6], done.stderr


@pytest.mark.timeout(20)
def test_a_drop_line_a_logging_handler_brings_back_to_the_shut_down_processor_is_not_told_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The line about the first record goes through a ``LoggingHandler`` into the same processor: one more
    drop, counted, and left for later (it would otherwise feed itself, or wait for its own lock)."""
    processor = spanbatch.BatchLogRecordProcessor(InMemoryLogRecordExporter())
    provider = logger_provider_with(processor)
    processor.shutdown()
    with warnings.catch_warnings():  # SDK 1.45 points to the contrib handler; the SDK's is what apps still use
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(logger_provider=provider)
    logging.getLogger("spanbatch").addHandler(handler)
    try:
        with caplog.at_level(logging.WARNING, logger="spanbatch"):
            emit_events(provider, 1)
    finally:
        logging.getLogger("spanbatch").removeHandler(handler)
    assert said(caplog) == [(1, "log record")]
    assert processor.stats().dropped["shutdown"] == 2
