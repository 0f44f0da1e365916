"""Ctrl-C while the exit waits for an export that hangs ends the exit at once, as it does with the stock processor
(whose shutdown's join it interrupts). The interrupted shutdown is still finished by spanbatch's last hook (the
spans left are counted and told, the exporter is shut down: see
``test_a_shutdown_interrupted_by_ctrl_c_is_finished_at_exit.py``), but without waiting for the export again: the
user asked to stop waiting. It waited out what was left of ``SPANBATCH_EXIT_TIMEOUT_MS`` (measured: the process
ended 4.0 s after a Ctrl-C sent 1 s into a 5 s exit limit; the stock processor's, 0.1 s after it).
"""

from __future__ import annotations

import json
import os

import pytest

from tests.helpers import ReportedStats, balanced
from tests.helpers.apps import INTERRUPTIBLE_APP_PROCESSOR, clean_env, run_app

pytestmark = [pytest.mark.timeout(120), pytest.mark.skipif(os.name != "posix", reason="POSIX signals")]

EXIT_LIMIT_SECONDS = 20.0

APP = (
    """
import atexit, json, os, signal, sys, threading, time

def report():
    s = processor.stats()
    print(json.dumps({"stats": [s.enqueued, s.exported, s.queued, s.in_flight, dict(s.dropped)],
                      "interrupted_at": interrupted_at, "ended_at": time.time(),
                      "exporter_shutdowns": exporter.shutdowns}), flush=True)

atexit.register(report)  # before spanbatch's own hook, so after it

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

if sys.argv[1] == "provider-first":
    provider = TracerProvider()  # its atexit hook runs after spanbatch's last one, which the Ctrl-C meets
import spanbatch

"""
    + INTERRUPTIBLE_APP_PROCESSOR
    + """if sys.argv[1] == "spanbatch-first":
    provider = TracerProvider()  # its atexit hook runs first, and the Ctrl-C meets it
provider.add_span_processor(processor)
tracer = provider.get_tracer("app")
for i in range(10):
    tracer.start_span(f"span-{i}").end()
exporter.entered.wait(30)
interrupted_at = None
main_done = threading.Event()
threading._register_atexit(main_done.set)

def interrupt():
    global interrupted_at
    main_done.wait(30)
    time.sleep(0.5)  # the provider's atexit shutdown waits for the export by now
    interrupted_at = time.time()
    os.kill(os.getpid(), signal.SIGINT)

threading.Thread(target=interrupt, daemon=True).start()
"""
)


@pytest.mark.parametrize("order", ["spanbatch-first", "provider-first"])
def test_the_exit_ends_once_interrupted_with_every_span_counted(order: str) -> None:
    env = clean_env(SPANBATCH_EXIT_TIMEOUT_MS=str(int(EXIT_LIMIT_SECONDS * 1000)))
    done = run_app(APP, order, env=env, timeout=EXIT_LIMIT_SECONDS * 3)
    assert done.returncode == 0, done.stderr
    assert "KeyboardInterrupt" in done.stderr, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    stats = ReportedStats(*report["stats"])
    assert balanced(stats), report
    assert (stats.enqueued, stats.exported, stats.queued, stats.in_flight) == (10, 0, 0, 1), report
    assert stats.dropped["shutdown"] == 9, report
    assert "exit interrupted with the worker still busy" in done.stderr, done.stderr  # no deadline had passed
    assert "dropped 9 spans still queued" in done.stderr, done.stderr
    assert report["exporter_shutdowns"] == 1, report
    # Not a speed: what it waited before was the rest of the exit limit, for an export that never returns.
    assert report["ended_at"] - report["interrupted_at"] < EXIT_LIMIT_SECONDS / 2, report
