"""``SPANBATCH_FLUSH_ON_SIGTERM`` when the signal interrupts the main thread inside a logging handler.

The handler runs on the main thread, which may be in the middle of ``Handler.emit`` (holding the handler's
lock) when SIGTERM comes. An exporter that logs through that handler then waits for the main thread, which
would wait for the exporter until the exit limit passed and the queued spans were dropped. The main thread
must be let go on instead, so the export logs, returns, and the process still dies of SIGTERM after it.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.helpers.apps import clean_env, go_on, run_app, signalled_once_ready, started_app

pytestmark = [pytest.mark.timeout(90), pytest.mark.skipif(os.name != "posix", reason="POSIX signals")]

EXIT_TIMEOUT_MILLIS = 10_000
# Far less than the exit limit the deadlocked flush would wait out.
MARGIN_SECONDS = 3.0

APP = """
import logging, sys, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from spanbatch import BatchSpanProcessor

handler = logging.StreamHandler(sys.stderr)
logging.getLogger().addHandler(handler)
log = logging.getLogger("app.exporter")

class LoggingExporter(SpanExporter):
    def export(self, spans):
        log.warning("exporting %d", len(spans))
        print("exported", len(spans), flush=True)
        return SpanExportResult.SUCCESS

processor = BatchSpanProcessor(LoggingExporter(), schedule_delay_millis=60_000)
provider = TracerProvider()
provider.add_span_processor(processor)
provider.get_tracer("app").start_span("queued").end()
with handler.lock:  # as in the middle of handler.emit when the signal comes
    print("ready", flush=True)
    sys.stdin.readline()
time.sleep(30)
print("SIGTERM did not end the process", flush=True)
"""


def test_the_queued_span_is_exported_and_the_process_dies_of_sigterm() -> None:
    env = clean_env(SPANBATCH_FLUSH_ON_SIGTERM="true", SPANBATCH_EXIT_TIMEOUT_MS=str(EXIT_TIMEOUT_MILLIS))
    with started_app(APP, env=env) as app:
        sent_at = signalled_once_ready(app)
        go_on(app)
        out, err = app.communicate(timeout=60)
        ended_at = time.time()
    assert app.returncode == -signal.SIGTERM, (out, err)
    assert "exported 1" in out, (out, err)
    assert "exporting 1" in err
    assert ended_at - sent_at < MARGIN_SECONDS, (ended_at - sent_at, err)


APP_RETURNS_WHILE_THE_SHUTDOWN_WAITS = """
import logging, os, signal, sys, threading
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from spanbatch import BatchSpanProcessor

handler = logging.StreamHandler(sys.stderr)
logging.getLogger().addHandler(handler)

class HangingExporter(SpanExporter):
    def export(self, spans):
        threading.Event().wait()

processor = BatchSpanProcessor(HangingExporter(), schedule_delay_millis=60_000)
provider = TracerProvider()
provider.add_span_processor(processor)
provider.get_tracer("app").start_span("queued").end()
with handler.lock:
    os.kill(os.getpid(), signal.SIGTERM)
print("main returns", flush=True)
"""


def test_the_process_still_dies_of_sigterm_when_the_app_returns_while_the_shutdown_waits() -> None:
    # The shutdown runs on a thread (the main thread held the lock); the app returns before it is done: the exit
    # waits for it within the limit, and the process still ends by the signal, never as a clean exit.
    env = clean_env(SPANBATCH_FLUSH_ON_SIGTERM="true", SPANBATCH_EXIT_TIMEOUT_MS="1000")
    done = run_app(APP_RETURNS_WHILE_THE_SHUTDOWN_WAITS, env=env, timeout=60)
    assert "main returns" in done.stdout, done.stderr
    assert done.returncode == -signal.SIGTERM, (done.stdout, done.stderr)


APP_IN_THE_EXIT_BUDGET = """
import os, signal, sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanbatch import BatchSpanProcessor, _exit

processor = BatchSpanProcessor(InMemorySpanExporter())
provider = TracerProvider()
provider.add_span_processor(processor)
with _exit._budget.holding_exit():  # as inside a force_flush's bookkeeping when the signal comes
    with _exit._budget._lock:
        os.kill(os.getpid(), signal.SIGTERM)
        print("SIGTERM did not end the process", flush=True)
"""


def test_sigterm_inside_a_flush_of_the_main_thread_ends_the_process() -> None:
    env = clean_env(SPANBATCH_FLUSH_ON_SIGTERM="true", SPANBATCH_EXIT_TIMEOUT_MS="1000")
    done = run_app(APP_IN_THE_EXIT_BUDGET, env=env, timeout=30)
    assert done.returncode == -signal.SIGTERM, (done.stdout, done.stderr)
