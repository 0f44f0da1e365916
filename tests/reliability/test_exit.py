"""Interpreter exit: queued spans are delivered, a dead back end cannot hold exit up, threads cannot crash it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest
from spanbatch.testing import OTLPReceiver

from tests.helpers import ReportedStats, balanced

pytestmark = pytest.mark.timeout(90)

# Every child builds the same pipeline: a stock OTLP exporter behind spanbatch, on a provider that
# shuts down at exit (the SDK's default atexit hook). It prints its processor's stats as the last
# thing at exit: this hook is registered before the provider's, and atexit runs hooks in reverse.
_PRELUDE = """
import atexit, json, sys, threading, time
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from spanbatch import BatchSpanProcessor

protocol, endpoint, exporter_timeout, export_timeout_millis = sys.argv[1:5]
if protocol == "http":
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=float(exporter_timeout))
else:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=float(exporter_timeout))
processor = BatchSpanProcessor(
    exporter, max_queue_size=100_000, schedule_delay_millis=60_000,
    export_timeout_millis=float(export_timeout_millis),
)

def report():
    s = processor.stats()
    print(json.dumps({"stats": [s.enqueued, s.exported, s.queued, s.in_flight, dict(s.dropped)],
                      "exit_started": exit_started}), flush=True)

atexit.register(report)
exit_started = None
def mark_exit():
    global exit_started
    exit_started = time.time()

provider = TracerProvider(resource=Resource.create({"service.name": "exit"}))
provider.add_span_processor(processor)
threading._register_atexit(mark_exit)  # the main thread is done: before any atexit hook, spanbatch's too
tracer = provider.get_tracer("exit")
"""


class ChildResult:
    def __init__(self, completed: subprocess.CompletedProcess[str], exited_at: float) -> None:
        self.returncode = completed.returncode
        self.stderr = completed.stderr
        report = json.loads(completed.stdout.strip().splitlines()[-1])
        self.stats = ReportedStats(*report["stats"])
        self.exit_seconds = exited_at - report["exit_started"]

    def assert_no_crash(self) -> None:
        assert "Traceback" not in self.stderr, self.stderr
        assert "Fatal Python error" not in self.stderr, self.stderr


def run_child(
    body: str, rx: OTLPReceiver, exporter_timeout: float = 10, export_timeout_millis: float = 30_000
) -> ChildResult:
    code = _PRELUDE + textwrap.dedent(body)
    argv = [sys.executable, "-c", code, rx.protocol, rx.endpoint, str(exporter_timeout), str(export_timeout_millis)]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    exited_at = time.time()
    assert completed.stdout.strip(), completed.stderr
    return ChildResult(completed, exited_at)


def test_normal_exit_delivers_everything_queued(receiver: OTLPReceiver) -> None:
    child = run_child(
        """
        for i in range(5000):
            tracer.start_span("queued").end()
        """,
        receiver,
    )
    child.assert_no_crash()
    assert child.returncode == 0
    assert receiver.wait_for_spans(5000)
    received = receiver.stats()
    assert received.spans == received.unique_spans == 5000
    assert child.stats.exported == 5000
    assert child.stats.dropped == {
        "queue_full": 0,
        "shutdown": 0,
        "export_failed": 0,
        "fork": 0,
        "unencodable": 0,
        "too_large": 0,
    }


@pytest.mark.parametrize("fault", ["down", "hang"])
def test_exit_with_unreachable_backend_keeps_the_deadline(receiver: OTLPReceiver, fault: str) -> None:
    receiver.set_behaviour(fault)  # type: ignore[arg-type]
    # The exporter would keep retrying for 30 s; the processor's deadline is 1.5 s.
    child = run_child(
        """
        for i in range(1000):
            tracer.start_span("lost").end()
        """,
        receiver,
        exporter_timeout=30,
        export_timeout_millis=1_500,
    )
    child.assert_no_crash()
    assert child.returncode == 0
    assert 1.4 <= child.exit_seconds < 4.0, child.exit_seconds  # 1.5 s deadline + interpreter teardown
    assert child.stats.exported == 0
    assert child.stats.in_flight + child.stats.dropped["shutdown"] + child.stats.dropped["export_failed"] == 1000
    assert balanced(child.stats)
    receiver.set_behaviour("ok")


def test_sys_exit_from_another_thread(receiver: OTLPReceiver) -> None:
    # sys.exit in a thread ends only that thread; a non-daemon thread still ending spans is joined
    # before atexit, so everything it ended is delivered, and main's own exit code wins.
    child = run_child(
        """
        def quitter():
            for i in range(300):
                tracer.start_span("quitter").end()
            sys.exit(3)

        def busy():
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline:
                tracer.start_span("busy").end()
                time.sleep(0.001)

        threading.Thread(target=quitter).start()
        threading.Thread(target=busy).start()
        sys.exit(5)
        """,
        receiver,
    )
    child.assert_no_crash()
    assert child.returncode == 5
    names = receiver.span_names()
    assert names["quitter"] == 300
    assert names["busy"] > 0
    assert receiver.stats().spans == child.stats.enqueued == child.stats.exported
    assert receiver.stats().duplicates == 0


def test_daemon_thread_ending_spans_during_shutdown_does_not_crash(receiver: OTLPReceiver) -> None:
    child = run_child(
        """
        def forever():
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with tracer.start_as_current_span("daemon"):
                    pass

        threading.Thread(target=forever, daemon=True).start()
        time.sleep(0.3)
        """,
        receiver,
        export_timeout_millis=5_000,
    )
    child.assert_no_crash()
    assert child.returncode == 0
    assert child.stats.exported > 0
    # Whatever the daemon ended after shutdown began is dropped and counted, never exported.
    assert balanced(child.stats)
    assert receiver.wait_for_spans(child.stats.exported)
    received = receiver.stats()
    assert received.spans == received.unique_spans == child.stats.exported
