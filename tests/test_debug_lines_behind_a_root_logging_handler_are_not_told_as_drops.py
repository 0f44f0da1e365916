"""SPANBATCH_DEBUG=true beside a LoggingHandler on the root logger (the README says the debug lines then reach stderr
beside it): a log lane's per-batch debug line, logged on its export thread, comes back to that lane and is dropped
there (``export_thread``: never queued, so never exported into the next batch's line and so on). It is spanbatch's own
line, shown on stderr, not a record of the application's: counted, as every record handed to the processor is, but
not told as 'emitted on its own export thread — dropped N log records' while every application record arrived. A
record of the application's logged on that thread is told, as before."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(60)

APP = textwrap.dedent(
    """
    import logging, sys, warnings
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
    import spanbatch

    class Chatty(InMemoryLogRecordExporter):
        def export(self, batch):
            if sys.argv[1] == "chatty":
                logging.getLogger("exporter").info("sent %d", len(batch))
            return super().export(batch)

    exporter = Chatty()
    processor = spanbatch.BatchLogRecordProcessor(exporter)
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(processor)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        root.addHandler(LoggingHandler(logger_provider=provider))
    for i in range(5):
        logging.getLogger("app").info("record %d", i)
        assert provider.force_flush(10_000)
    provider.shutdown()
    s = processor.stats()
    balanced = s.enqueued == s.exported + s.queued + s.in_flight + s.dropped_total
    print("exported", len(exporter.get_finished_logs()), "export_thread", s.dropped["export_thread"], balanced)
    """
)


def run(exporter: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", APP, exporter],
        capture_output=True,
        text=True,
        timeout=50,
        check=True,
        env={**os.environ, "SPANBATCH_DEBUG": "true"},
    )


def test_debug_lines_of_a_log_lane_are_counted_but_not_told_as_drops() -> None:
    done = run("quiet")
    # One debug line per batch, each dropped on the export thread that logged it.
    assert "exported 5 export_thread 5 True" in done.stdout, done.stdout + done.stderr
    assert len(re.findall(r"export: batch=1 log records", done.stderr)) == 5, done.stderr
    assert "emitted on its own export thread" not in done.stderr, done.stderr


def test_the_exporters_own_lines_beside_the_debug_lines_are_still_told() -> None:
    done = run("chatty")
    assert "exported 5 export_thread 10 True" in done.stdout, done.stdout + done.stderr
    told = [int(n) for n in re.findall(r"emitted on its own export thread — dropped (\d+) log record", done.stderr)]
    assert told == [5], done.stderr
