"""At exit, a processor whose backend hangs does not take the other processors' spans with it.

Each provider shuts its processors down one after the other from its atexit hook, and every spanbatch
``shutdown()`` then waits at most what is left of the one exit deadline. The first one to wait on a hung
backend used all of it: a processor shut down after it (the next one of the same ``TracerProvider``, or the
span processor after the ``LoggerProvider``'s) found no time left and dropped everything it held as
``shutdown``, its own backend healthy, where the stock processors deliver it (late). The README promises
every lane flushed in parallel within the deadline, and a dead backend that drops its own lane only.
"""

from __future__ import annotations

import time

import pytest
from spanbatch.testing import OTLPReceiver

from tests.helpers.apps import clean_env, run_app

pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="the apps use the OTLP/HTTP exporters")

pytestmark = pytest.mark.timeout(120)

EXIT_TIMEOUT_MILLIS = 1000
# Interpreter start-up is not timed; teardown after the exit hooks, and a loaded CI machine, are.
SLACK_SECONDS = 2.0
SPANS = 100

# argv: the hanging endpoint, the receiver's. The processor to the hung backend is shut down first: added first
# to the TracerProvider, or on the LoggerProvider, made later, whose atexit hook runs first.
APP = f"""
import sys, time
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry._logs import LogRecord
import spanbatch

hung, healthy = sys.argv[2] + "/v1/traces", sys.argv[3] + "/v1/traces"
tracer_provider = TracerProvider()
if sys.argv[1] == "two span processors":
    tracer_provider.add_span_processor(spanbatch.BatchSpanProcessor(OTLPSpanExporter(endpoint=hung)))
    tracer_provider.add_span_processor(spanbatch.BatchSpanProcessor(OTLPSpanExporter(endpoint=healthy)))
else:
    tracer_provider.add_span_processor(spanbatch.BatchSpanProcessor(OTLPSpanExporter(endpoint=healthy)))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(
        spanbatch.BatchLogRecordProcessor(OTLPLogExporter(endpoint=sys.argv[2] + "/v1/logs"))
    )
    logger_provider.get_logger("app").emit(LogRecord(body="to the hung backend"))
tracer = tracer_provider.get_tracer("app")
for _ in range({SPANS}):
    tracer.start_span("queued").end()
print("main done at", repr(time.time()), flush=True)
"""


@pytest.mark.parametrize("layout", ["two span processors", "a log processor shut down first"])
def test_the_healthy_processor_delivers_its_spans_within_the_exit_deadline(layout: str, hanging_endpoint: str) -> None:
    with OTLPReceiver("http") as receiver:
        env = clean_env(SPANBATCH_EXIT_TIMEOUT_MS=str(EXIT_TIMEOUT_MILLIS))
        done = run_app(APP, layout, hanging_endpoint, f"http://127.0.0.1:{receiver.port}", env=env, timeout=90)
        exited_at = time.time()
        assert done.returncode == 0, done.stderr
        main_done = float(done.stdout.split("main done at ")[1])
        assert exited_at - main_done < EXIT_TIMEOUT_MILLIS / 1000 + SLACK_SECONDS, done.stderr
        receiver.wait_for_spans(SPANS, timeout=5)
        assert receiver.stats().spans == SPANS, done.stderr
        # Only the processor to the hung backend was still exporting when the deadline passed: the healthy one, its
        # worker idle but not joined in the no time left, has nothing to tell.
        assert done.stderr.count("with the worker still busy") == 1, done.stderr
