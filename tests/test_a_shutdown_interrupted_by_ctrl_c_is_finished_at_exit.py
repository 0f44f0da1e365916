"""Ctrl-C during a shutdown's wait raises ``KeyboardInterrupt`` (as stock's does), and that shutdown is then
finished by the next one, the exit's included: the spans still queued are counted (``shutdown``) and told, and
the exporter is shut down once. Interrupted, the lane used to stay half shut down for good: every later
``shutdown()`` returned at once, so exit neither counted nor told the spans lost, and the exporter never heard
of its shutdown.

Each case runs in a child process whose export hangs (one span in flight, nine queued, a batch of one). Its
report is printed by an atexit hook registered before spanbatch is imported: it runs after every other one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import ReportedStats, balanced
from tests.helpers.apps import INTERRUPTIBLE_APP_PROCESSOR, clean_env

pytestmark = pytest.mark.timeout(120)

EXIT_LIMIT_SECONDS = 3.0

_PRELUDE = (
    """
import atexit, json, os, signal, sys, threading, time

def report():
    s = processor.stats()
    print(json.dumps({"stats": [s.enqueued, s.exported, s.queued, s.in_flight, dict(s.dropped)],
                      "exporter_shutdowns": exporter.shutdowns, "interrupted": interrupted,
                      "parent": os.getpid() == parent_pid}), flush=True)

atexit.register(report)  # before spanbatch's own hook, so after it

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
import spanbatch

"""
    + INTERRUPTIBLE_APP_PROCESSOR
    + """provider = TracerProvider()
provider.add_span_processor(processor)
tracer = provider.get_tracer("interrupted")
interrupted = []
parent_pid = os.getpid()

def interrupt_after(event):
    def send():
        event.wait(30)
        time.sleep(0.3)  # the main thread is in the shutdown's wait by now
        os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=send, daemon=True).start()

for i in range(10):
    tracer.start_span(f"span-{i}").end()
exporter.entered.wait(30)
"""
)

CASES = {
    # The application's own shutdown, interrupted and caught; the process then exits as usual.
    "explicit shutdown": """
        interrupt_after(exporter.entered)
        try:
            provider.shutdown()
        except KeyboardInterrupt:
            interrupted.append(True)
        """,
    # The provider's own atexit shutdown, interrupted: the interpreter prints the exception and goes on.
    "exit": """
        main_done = threading.Event()
        threading._register_atexit(main_done.set)
        interrupt_after(main_done)
        interrupted.append(True)
        """,
}


# The application's own shutdown, interrupted and caught; then a child is forked and exits as usual.
FORKED_AFTER = """
interrupt_after(exporter.entered)
try:
    provider.shutdown()
except KeyboardInterrupt:
    interrupted.append(True)
child = os.fork()
if child == 0:
    sys.exit(0)  # a normal exit: the provider's atexit shutdown, then spanbatch's
os.waitpid(child, 0)
"""


def run(program: str) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, "-c", _PRELUDE + textwrap.dedent(program)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env=clean_env(SPANBATCH_EXIT_TIMEOUT_MS=str(int(EXIT_LIMIT_SECONDS * 1000))),
    )
    assert completed.returncode == 0, completed.stderr
    return completed


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_shutdown_interrupted_by_ctrl_c_is_finished_by_the_exit(case: str) -> None:
    completed = run(CASES[case])
    assert "KeyboardInterrupt" in completed.stderr or case == "explicit shutdown", completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["interrupted"] == [True], report
    stats = ReportedStats(*report["stats"])
    assert balanced(stats), report
    # The export still hangs; the nine spans behind it never reached the exporter, and are counted so.
    assert (stats.enqueued, stats.exported, stats.queued, stats.in_flight) == (10, 0, 0, 1), report
    assert stats.dropped["shutdown"] == 9, report
    assert "dropped 9 spans still queued" in completed.stderr, completed.stderr
    assert report["exporter_shutdowns"] == 1, report


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork")
def test_a_child_forked_after_it_leaves_it_to_its_parent() -> None:
    # The child inherits the parent's mark of the interrupted shutdown with the rest of its memory; the exit's
    # shutdown of a lane looked for that mark on every lane it was given, the parent's untouched ones included, so
    # the child finished it: it shut the inherited exporter down (stock's child never calls it: its processor is
    # already shut down) and told the parent's spans as lost. Only the parent's own exit finishes it.
    completed = run(FORKED_AFTER)
    reports = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    by_process = {"parent" if r["parent"] else "child": r for r in reports}
    assert set(by_process) == {"parent", "child"}, completed.stdout
    assert by_process["child"]["exporter_shutdowns"] == 0, (reports, completed.stderr)
    assert by_process["parent"]["exporter_shutdowns"] == 1, (reports, completed.stderr)
    # The nine queued spans are the parent's to tell of: once, from the parent.
    assert completed.stderr.count("dropped 9 spans still queued") == 1, completed.stderr
