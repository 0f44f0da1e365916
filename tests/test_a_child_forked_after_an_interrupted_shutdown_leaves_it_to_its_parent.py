"""A shutdown interrupted by Ctrl-C is the parent's to finish (``ShutdownSteps``): a child forked after it does not
finish it. The lane stays shut down in the child, as a stock processor's does, and the child's exit neither shuts
the exporter it inherited down (stock's child never calls it: its processor is already shut down) nor tells the
parent's spans as lost; the parent's own exit finishes the shutdown.

The child gets its parent's ``interrupted`` mark with the rest of its memory, and the exit's shutdown of a lane
looks for that mark on every lane it is given, the parent's untouched ones included.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.helpers.apps import clean_env

pytestmark = [pytest.mark.timeout(120), pytest.mark.skipif(sys.platform == "win32", reason="fork")]

PROGRAM = """
import atexit, json, os, signal, sys, threading, time

def report():
    print(json.dumps({"pid": os.getpid(), "parent": os.getpid() == parent_pid,
                      "exporter_shutdowns": exporter.shutdowns}), flush=True)

atexit.register(report)  # before spanbatch's own hook, so after it

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
import spanbatch

signal.signal(signal.SIGINT, signal.default_int_handler)

class HangingExporter(SpanExporter):
    def __init__(self):
        self.entered = threading.Event()
        self.shutdowns = 0

    def export(self, spans):
        self.entered.set()
        time.sleep(60)
        return SpanExportResult.SUCCESS

    def shutdown(self):
        self.shutdowns += 1

exporter = HangingExporter()
processor = spanbatch.BatchSpanProcessor(exporter, max_export_batch_size=1, schedule_delay_millis=60_000)
provider = TracerProvider()
provider.add_span_processor(processor)
tracer = provider.get_tracer("interrupted")
parent_pid = os.getpid()
for i in range(10):
    tracer.start_span(f"span-{i}").end()
exporter.entered.wait(30)

def interrupt():
    time.sleep(0.3)  # the main thread is in the shutdown's wait by now
    os.kill(parent_pid, signal.SIGINT)

threading.Thread(target=interrupt, daemon=True).start()
try:
    provider.shutdown()
except KeyboardInterrupt:
    pass
child = os.fork()
if child == 0:
    sys.exit(0)  # a normal exit: the provider's atexit shutdown, then spanbatch's
os.waitpid(child, 0)
"""


def test_the_child_does_not_finish_its_parents_interrupted_shutdown() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PROGRAM)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env=clean_env(SPANBATCH_EXIT_TIMEOUT_MS="3000"),
    )
    assert completed.returncode == 0, completed.stderr
    reports = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    by_process = {"parent" if r["parent"] else "child": r for r in reports}
    assert set(by_process) == {"parent", "child"}, completed.stdout
    assert by_process["child"]["exporter_shutdowns"] == 0, (reports, completed.stderr)
    assert by_process["parent"]["exporter_shutdowns"] == 1, (reports, completed.stderr)
    # The nine queued spans are the parent's to tell of: once, from the parent.
    assert completed.stderr.count("dropped 9 spans still queued") == 1, completed.stderr
