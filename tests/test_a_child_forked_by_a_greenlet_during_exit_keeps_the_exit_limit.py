"""Under gevent, a child forked by a greenlet while its parent runs its atexit hooks is exiting too.

Every greenlet shares the OS thread that runs the hooks: in the child, that thread's main greenlet goes on with the
hooks after the one it was in (a processor's shutdown, spanbatch's last hook). So the child keeps the exit limit,
from its own first shutdown, and a spilling exporter's sends end at its cut-off, as in any exiting process; a
greenlet is no thread of its own that would go on with its work.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from spanbatch.testing import OTLPReceiver

from tests.helpers.apps import clean_env, run_app
from tests.helpers.spill import spill_files

pytest.importorskip("gevent")

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(sys.version_info[:2] == (3, 12), reason="CPython 3.12 forks no child once exit has begun"),
]

EXPORT_TIMEOUT_SECONDS = 20  # what a send waits for a backend that never answers, outside an exit

# argv: the endpoint, the spill directory.
APP = f"""
from gevent import monkey
monkey.patch_all()

import atexit, json, os, sys, threading, time
forked_at = []

def child_reports():  # registered first: runs last, once the child's exit is over
    if forked_at:
        print(json.dumps({{"exit_seconds": time.monotonic() - forked_at[0]}}), flush=True)

atexit.register(child_reports)

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, TraceFlags
import spanbatch
from spanbatch.exporter import OTLPSpanExporter

endpoint, spill = sys.argv[1:]
exporter = OTLPSpanExporter(endpoint=endpoint, spill_dir=spill, timeout={EXPORT_TIMEOUT_SECONDS})
processor = spanbatch.BatchSpanProcessor(exporter)
atexit.register(processor.shutdown)  # as its provider's hook: runs after the one the fork comes from
span = ReadableSpan(name="child", context=SpanContext(1, 1, is_remote=False, trace_flags=TraceFlags(1)))
exit_began, forked = threading.Event(), threading.Event()  # gevent's, as the thread below is a greenlet

def fork_once_the_parent_exits():
    exit_began.wait()
    if os.fork() == 0:
        forked_at.append(time.monotonic())
        processor.on_end(span)  # sent to a backend that never answers
    forked.set()

threading.Thread(target=fork_once_the_parent_exits, daemon=True).start()

def parent_exits():  # runs after spanbatch's first atexit hooks: the exit has begun
    exit_began.set()
    forked.wait(30)  # lets the hub run the greenlet that forks

atexit.register(parent_exits)
"""


def test_its_sends_end_at_its_cutoff_and_its_exit_within_the_limit(tmp_path: Path) -> None:
    with OTLPReceiver("http") as rx:
        rx.set_behaviour("hang")
        env = clean_env(SPANBATCH_EXIT_TIMEOUT_MS="1000")
        app = run_app(APP, rx.endpoint, str(tmp_path), env=env, timeout=75)
        assert app.returncode == 0, app.stderr
        assert "Sends cut off at exit" in app.stderr, app.stderr
        assert len(spill_files(tmp_path)) == 1, app.stderr
        exit_seconds = json.loads(app.stdout)["exit_seconds"]
        # 1 s exit limit, where the send would wait out its 20 s timeout
        assert exit_seconds < EXPORT_TIMEOUT_SECONDS / 2, app.stderr
