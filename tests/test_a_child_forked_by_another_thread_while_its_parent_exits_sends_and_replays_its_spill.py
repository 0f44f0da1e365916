"""A child forked by a daemon thread while its parent runs its atexit hooks is a new process that lives on.

A child forked by an atexit hook runs the hooks after that one: it is exiting too (``_exit``). One forked by another
thread goes on with that thread's work: its spilling exporter sends with no cut-off (its parent's has passed), and
replays what it spills once the backend answers again, as any live process does. So it does when the fork comes after
spanbatch's last atexit hook, which ended the parent's replays (an application that sets up tracing after registering
its own hooks: they run after spanbatch's).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from spanbatch.testing import OTLPReceiver

from tests.helpers.apps import clean_env, run_app
from tests.helpers.spill import spill_files

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(sys.version_info[:2] == (3, 12), reason="CPython 3.12 forks no child once exit has begun"),
]

EXIT_TIMEOUT_MILLIS = 200  # the parent's cut-off: four fifths of it after its exit began

# argv: the protocol, the endpoint, the spill directory, where the parent's waiting hook is registered. The
# exporter's timeout is shorter than the stock client's first backoff: a busy answer is not retried, the request is
# spilled at once.
APP = f"""
import atexit, json, os, sys, threading, time
protocol, endpoint, spill, hook_registered = sys.argv[1:]
exit_began, child_done = threading.Event(), threading.Event()

def parent_exits():
    exit_began.set()
    child_done.wait(30)

if hook_registered == "before spanbatch":  # runs after spanbatch's last atexit hook
    atexit.register(parent_exits)

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, TraceFlags
if protocol == "http":
    from spanbatch.exporter import OTLPSpanExporter
    exporter = OTLPSpanExporter(endpoint=endpoint, spill_dir=spill, timeout=0.5)
else:
    from spanbatch.exporter.grpc import OTLPSpanExporter
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True, spill_dir=spill, timeout=0.5)
# The child exports it itself: one forked once its parent's exit began inherits the stdlib's exit too, where the SDK's
# TracerProvider runs its resource detectors (no new futures after interpreter shutdown).
span = ReadableSpan(name="child", context=SpanContext(1, 1, is_remote=False, trace_flags=TraceFlags(1)))

def fork_once_the_parent_exits():
    exit_began.wait()
    time.sleep(1.5 * {EXIT_TIMEOUT_MILLIS} / 1000)  # past the parent's cut-off
    child = os.fork()
    if child:
        os.waitpid(child, 0)
        child_done.set()
        return
    exporter.export([span])
    waited = time.monotonic() + 10
    while exporter.spill_counts().replayed == 0 and time.monotonic() < waited:
        time.sleep(0.05)
    counts = exporter.spill_counts()
    print(json.dumps({{"spilled": counts.spilled, "replayed": counts.replayed}}), flush=True)
    os._exit(0)

threading.Thread(target=fork_once_the_parent_exits, daemon=True).start()
if hook_registered == "after spanbatch":  # runs after spanbatch's first atexit hooks, before its last
    atexit.register(parent_exits)
"""


@pytest.mark.parametrize(
    ("protocol", "hook_registered"),
    [
        ("http", "after spanbatch"),
        ("grpc", "after spanbatch"),
        ("http", "before spanbatch"),
    ],
)
def test_its_span_the_backend_was_busy_for_is_replayed_to_it(
    protocol: str, hook_registered: str, tmp_path: Path
) -> None:
    with OTLPReceiver(protocol) as rx:
        rx.set_behaviour("status", status=503, times=1)
        env = clean_env(SPANBATCH_EXIT_TIMEOUT_MS=str(EXIT_TIMEOUT_MILLIS))
        app = run_app(APP, protocol, rx.endpoint, str(tmp_path), hook_registered, env=env, timeout=45)
        assert app.returncode == 0, app.stderr
        assert json.loads(app.stdout) == {"spilled": 1, "replayed": 1}, app.stderr
        assert rx.span_names() == {"child": 1}
    assert spill_files(tmp_path) == []
