"""Ctrl-C while a provider's shutdown in an atexit hook that runs after spanbatch's last hook waits for the lane's
export raises ``KeyboardInterrupt`` out of that shutdown, as the stock processor's (whose join it interrupts) does,
and the exit waits for no export any more: the spans still queued are counted (``shutdown``) and told, the export
under way counts as in flight, and the exporter is shut down, at once, since no later hook would finish that
shutdown."""

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

def report():  # registered first: runs last of all
    s = processor.stats()
    print(json.dumps({"stats": [s.enqueued, s.exported, s.queued, s.in_flight, dict(s.dropped)],
                      "interrupted_at": interrupted_at, "ended_at": time.time(),
                      "exporter_shutdowns": exporter.shutdowns}), flush=True)

atexit.register(report)

def on_exit():
    tracer = provider.get_tracer("app")
    for i in range(5):
        tracer.start_span(f"late-{i}").end()
    provider.shutdown()  # waits for the worker's export until Ctrl-C

atexit.register(on_exit)  # before spanbatch is imported: runs after spanbatch's last hook

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
import spanbatch

"""
    + INTERRUPTIBLE_APP_PROCESSOR
    + """provider = TracerProvider(shutdown_on_exit=False)
provider.add_span_processor(processor)
interrupted_at = None

def interrupt():  # started now: 3.12 starts no thread at exit
    global interrupted_at
    exporter.entered.wait(60)
    time.sleep(0.3)  # the export is hung in its sleep by now
    interrupted_at = time.time()
    os.kill(os.getpid(), signal.SIGINT)

threading.Thread(target=interrupt, daemon=True).start()
"""
)


def test_the_exit_ends_once_interrupted_with_every_span_counted() -> None:
    env = clean_env(SPANBATCH_EXIT_TIMEOUT_MS=str(int(EXIT_LIMIT_SECONDS * 1000)))
    done = run_app(APP, env=env, timeout=EXIT_LIMIT_SECONDS * 3)
    assert done.returncode == 0, done.stderr
    assert "KeyboardInterrupt" in done.stderr, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    stats = ReportedStats(*report["stats"])
    assert balanced(stats), report
    assert (stats.enqueued, stats.exported, stats.queued, stats.in_flight) == (5, 0, 0, 1), report
    assert (stats.dropped["export_failed"], stats.dropped["shutdown"]) == (0, 4), report
    assert "exit interrupted with the worker still busy" in done.stderr, done.stderr
    assert "dropped 4 spans still queued" in done.stderr, done.stderr
    assert report["exporter_shutdowns"] == 1, report
    # Not a speed: each batch left would have hung its export for 60 s, the exit limit being 20 s.
    assert report["ended_at"] - report["interrupted_at"] < EXIT_LIMIT_SECONDS / 2, report
