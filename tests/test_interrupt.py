"""Ctrl-C: a real SIGINT interrupts every wait of the application's thread, as it does the stock processor's.

Each case runs in a child process whose exporter hangs. A timer thread sends the child SIGINT once the
export has begun; the wait under test (30 s long) must raise ``KeyboardInterrupt`` soon after, and every
span must still be accounted for.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import ReportedStats, balanced

pytestmark = pytest.mark.timeout(120)

# Far below every wait's own 30 s: only an interrupted wait returns this soon.
PROMPT_SECONDS = 3.0

_PRELUDE = """
import json, os, signal, sys, threading, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
import spanbatch

# A shell starts background jobs with SIGINT ignored, and children inherit that: restore what an
# interactive program has, so the test does not depend on how it was started.
signal.signal(signal.SIGINT, signal.default_int_handler)

class HangingExporter(SpanExporter):
    def __init__(self):
        self.entered = threading.Event()
        self.gate = threading.Event()

    def export(self, spans):
        self.entered.set()
        self.gate.wait(60)
        return SpanExportResult.SUCCESS

    def shutdown(self):
        self.gate.set()

exporter = HangingExporter()
sent = []

def interrupt_once_exporting():
    exporter.entered.wait(30)
    time.sleep(0.3)  # let the main thread settle into its wait
    sent.append(time.monotonic())
    os.kill(os.getpid(), signal.SIGINT)

def interrupt_soon():
    threading.Thread(target=interrupt_once_exporting, daemon=True).start()

def report(outcome, stats):
    seconds = time.monotonic() - sent[0] if sent else None
    print(json.dumps({"outcome": outcome, "seconds": seconds,
                      "stats": [stats.enqueued, stats.exported, stats.queued, stats.in_flight, dict(stats.dropped)]}),
          flush=True)

def measure(wait, stats):
    interrupt_soon()
    try:
        result = wait()
    except KeyboardInterrupt:
        report("KeyboardInterrupt", stats())
    else:
        report(f"returned {result!r}", stats())
    exporter.gate.set()

provider = TracerProvider(shutdown_on_exit=False)
tracer = provider.get_tracer("interrupt")
"""


def run_child(body: str) -> dict[str, object]:
    code = _PRELUDE + textwrap.dedent(body)
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90, check=False)
    lines = completed.stdout.strip().splitlines()
    assert lines, completed.stderr
    report: dict[str, object] = json.loads(lines[-1])
    assert completed.returncode == 0, completed.stderr
    return report


def assert_interrupted_promptly(report: dict[str, object]) -> None:
    assert report["outcome"] == "KeyboardInterrupt", report
    seconds = report["seconds"]
    assert isinstance(seconds, float)
    assert seconds < PROMPT_SECONDS, report
    stats = report["stats"]
    assert isinstance(stats, list)
    assert balanced(ReportedStats(*stats)), report


# Each wait of the application's thread, 30 s long, with the exporter hanging.
WAITS = {
    "force_flush": """
        processor = spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=60_000)
        provider.add_span_processor(processor)
        tracer.start_span("hangs").end()
        measure(lambda: processor.force_flush(30_000), processor.stats)
        """,
    "pipeline_end_session": """
        pipeline = spanbatch.install(provider, {"hangs": exporter}, schedule_delay_millis=60_000)
        tracer.start_span("hangs").end()
        measure(lambda: pipeline.end_session(30_000), pipeline.stats)
        """,
    "pipeline_session_exit": """
        pipeline = spanbatch.install(provider, {"hangs": exporter}, schedule_delay_millis=60_000)

        def session():
            with pipeline.session(30_000):
                tracer.start_span("hangs").end()

        measure(session, pipeline.stats)
        """,
    "shutdown": """
        processor = spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=60_000)
        provider.add_span_processor(processor)
        tracer.start_span("hangs").end()
        processor.force_flush(1)
        measure(lambda: processor.shutdown(30_000), processor.stats)
        """,
}


@pytest.mark.parametrize("wait", sorted(WAITS))
def test_ctrl_c_interrupts_the_wait(wait: str) -> None:
    assert_interrupted_promptly(run_child(WAITS[wait]))


def test_ctrl_c_interrupts_a_blocked_on_end_and_counts_its_span() -> None:
    # One span in flight (hanging), one queued: the third waits for room, 30 s at most.
    report = run_child(
        """
        processor = spanbatch.BatchSpanProcessor(
            exporter, max_queue_size=1, max_export_batch_size=1, schedule_delay_millis=1,
            drop_policy="block", block_timeout_millis=30_000,
        )
        provider.add_span_processor(processor)
        tracer.start_span("in flight").end()
        exporter.entered.wait(30)
        tracer.start_span("queued").end()
        measure(lambda: tracer.start_span("blocked").end(), processor.stats)
        """
    )
    assert_interrupted_promptly(report)
    assert report["stats"] == [
        3,
        0,
        1,
        1,
        {**dict.fromkeys(("shutdown", "export_failed", "fork", "unencodable", "too_large"), 0), "queue_full": 1},
    ]


def test_a_sigint_handler_that_does_not_raise_runs_during_the_wait() -> None:
    # The user's handler wins: it runs at once, and the flush goes on (here it lets the export finish).
    report = run_child(
        """
        processor = spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=60_000)
        provider.add_span_processor(processor)
        signal.signal(signal.SIGINT, lambda signum, frame: exporter.gate.set())
        tracer.start_span("released by the handler").end()
        measure(lambda: processor.force_flush(30_000), processor.stats)
        """
    )
    assert report["outcome"] == "returned True", report
    assert isinstance(report["seconds"], float)
    assert report["seconds"] < PROMPT_SECONDS, report
    assert report["stats"][:4] == [1, 1, 0, 0], report  # type: ignore[index]
