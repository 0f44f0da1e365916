"""Daemon threads that keep ending spans and emitting log records while the interpreter exits.

The providers' atexit hooks shut the processors down while those threads run on; once finalization
begins, CPython ends a daemon thread that asks for the GIL back by unwinding it from wherever it is.
Unwound through Rust frames, that aborts the process: so what a thread does with an item refused
after shutdown must never run Python code called from Rust. Each run is a few hundred ms; the race
it guards against needs several runs to show.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(120)

RUNS = 6

APP = textwrap.dedent(
    """
    import logging, threading, time
    import spanbatch
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry._logs import LogRecord

    logging.basicConfig(level=logging.INFO)  # the stock line for each refused item is logged, not skipped
    tracer_provider = TracerProvider()  # shutdown_on_exit: its atexit hook shuts the processor down
    tracer_provider.add_span_processor(spanbatch.BatchSpanProcessor(InMemorySpanExporter()))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(spanbatch.BatchLogRecordProcessor(InMemoryLogRecordExporter()))
    tracer, logger = tracer_provider.get_tracer("t"), logger_provider.get_logger("t")

    def work():
        while True:
            tracer.start_span("s").end()
            logger.emit(LogRecord(body="r"))

    for _ in range(8):
        threading.Thread(target=work, daemon=True).start()
    time.sleep(0.2)
    """
)


def test_daemon_threads_ending_items_through_exit_never_abort_it() -> None:
    for run in range(RUNS):
        done = subprocess.run([sys.executable, "-c", APP], capture_output=True, text=True, timeout=60, check=False)
        assert "Fatal Python error" not in done.stderr, (run, done.stderr[-2000:])
        assert done.returncode == 0, (run, done.returncode, done.stderr[-2000:])
