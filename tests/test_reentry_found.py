"""Re-entrancy and interruption defects found by an outside hunt: the user's code (a signal handler, an
exporter) calling back into spanbatch at awkward moments.

Each case runs in a child process with a real signal, so that a hang fails the test instead of the run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(120)

# Far below the block timeout (10 s): only an interrupted wait returns this soon.
PROMPT_SECONDS = 3.0

_PRELUDE = """
import json, os, signal, sys, threading, time
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
import spanbatch

# A shell starts background jobs with SIGINT ignored, and children inherit that.
signal.signal(signal.SIGINT, signal.default_int_handler)

class Hanging:
    def __init__(self):
        self.entered = threading.Event()
        self.gate = threading.Event()

    def export(self, batch):
        self.entered.set()
        self.gate.wait(60)
        return self.success

    def shutdown(self):
        self.gate.set()

class HangingSpans(Hanging, SpanExporter):
    success = SpanExportResult.SUCCESS

class HangingLogs(Hanging, LogRecordExporter):
    success = LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis=30000):
        return True

def measure_interrupt(blocked, stats):
    sent = []

    def interrupt():
        time.sleep(0.5)  # the main thread waits for room by then
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    try:
        blocked()
        outcome = "returned"
    except KeyboardInterrupt:
        outcome = "KeyboardInterrupt"
    seconds = time.monotonic() - sent[0] if sent else None
    s = stats()
    print(json.dumps({"outcome": outcome, "seconds": seconds,
                      "balanced": s.enqueued == s.exported + s.queued + s.in_flight + sum(s.dropped.values())}),
          flush=True)

BLOCKING = dict(max_queue_size=1, max_export_batch_size=1, schedule_delay_millis=1, drop_policy="block",
                block_timeout_millis=10_000)
"""


def run_child(body: str) -> dict[str, object]:
    code = _PRELUDE + textwrap.dedent(body)
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90, check=False)
    lines = completed.stdout.strip().splitlines()
    assert lines, completed.stderr
    report: dict[str, object] = json.loads(lines[-1])
    assert completed.returncode == 0, completed.stderr
    return report


# Two backends, each with one item in flight (hanging) and one queued: the next item waits for room in both.
PIPELINE_BLOCKED = {
    "spans": """
        exporters = [HangingSpans(), HangingSpans()]
        provider = TracerProvider(shutdown_on_exit=False)
        pipeline = spanbatch.install(provider, {"a": exporters[0], "b": exporters[1]}, **BLOCKING)
        tracer = provider.get_tracer("t")
        tracer.start_span("in flight").end()
        for exporter in exporters:
            exporter.entered.wait(30)
        tracer.start_span("queued").end()
        measure_interrupt(lambda: tracer.start_span("blocked").end(), pipeline.stats)
        """,
    "logs": """
        exporters = [HangingLogs(), HangingLogs()]
        logger_provider = LoggerProvider(shutdown_on_exit=False)
        pipeline = spanbatch.install(
            TracerProvider(shutdown_on_exit=False), {"a": HangingSpans(), "b": HangingSpans()},
            logger_provider=logger_provider, log_exporters={"a": exporters[0], "b": exporters[1]}, **BLOCKING,
        )
        logger = logger_provider.get_logger("t")
        logger.emit(LogRecord(body="in flight"))
        for exporter in exporters:
            exporter.entered.wait(30)
        logger.emit(LogRecord(body="queued"))
        measure_interrupt(lambda: logger.emit(LogRecord(body="blocked")), pipeline.logs.stats)
        """,
}


@pytest.mark.parametrize("signal_kind", sorted(PIPELINE_BLOCKED))
def test_ctrl_c_ends_a_pipeline_wait_for_room_in_every_lane_at_once(signal_kind: str) -> None:
    # The first lane's wait raised KeyboardInterrupt; the second lane still got the item but waited out its
    # whole block timeout for room before the interrupt reached the application (10 s, per further lane).
    report = run_child(PIPELINE_BLOCKED[signal_kind])
    assert report["outcome"] == "KeyboardInterrupt", report
    assert isinstance(report["seconds"], float)
    assert report["seconds"] < PROMPT_SECONDS, report
    assert report["balanced"], report
