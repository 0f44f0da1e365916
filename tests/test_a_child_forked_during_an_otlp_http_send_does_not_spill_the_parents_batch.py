"""A child forked by a signal handler while the main thread waits for an OTLP/HTTP send comes out of that send with
a failed result (``ForkedDuringSendError``): the send, and the batch, are the parent's, which goes on waiting for its
answer. With a spill directory, the child must not store that batch as undelivered: the parent delivers it, and a
stored copy would be replayed (by either process, or the next one on the directory), so the backend would get it
twice.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from spanbatch.exporter import OTLPSpanExporter

from tests.helpers.apps import clean_env, run_app
from tests.helpers.receivers import serve_http

pytestmark = [pytest.mark.timeout(90), pytest.mark.skipif(os.name != "posix", reason="POSIX signals and fork")]

APP = """
import os, signal, sys, threading, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from spanbatch.exporter import OTLPSpanExporter

exporter = OTLPSpanExporter(endpoint=sys.argv[1], timeout=10, spill_dir=sys.argv[2])
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
forked = []
signal.signal(signal.SIGUSR1, lambda signum, frame: forked.append(os.fork()))
threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGUSR1)).start()  # the send waits for its answer by then
with provider.get_tracer("app").start_as_current_span("once"):
    pass
if forked == [0]:
    os.write(1, b"child spilled %d\\n" % exporter.spill_counts().spilled)
    os._exit(0)
os.waitpid(forked[0], 0)
provider.shutdown()
print("parent spilled", exporter.spill_counts().spilled, flush=True)
"""


def test_the_child_spills_nothing_and_the_backend_gets_the_batch_once(tmp_path: Path) -> None:
    with serve_http() as backend:
        backend.delay = 1.5  # the answer comes after the fork: the parent's send delivers the batch
        done = run_app(APP, backend.endpoint, str(tmp_path), env=clean_env(), timeout=60)
        assert done.returncode == 0, done.stderr
        assert sorted(done.stdout.splitlines()) == ["child spilled 0", "parent spilled 0"], done.stdout + done.stderr
        # What a later process on the directory replays: nothing (its first probe comes within 0.5 s).
        backend.delay = 0.0
        later = OTLPSpanExporter(endpoint=backend.endpoint, timeout=2, spill_dir=tmp_path)
        threading.Event().wait(2.0)
        later.shutdown()
        assert len(backend.received) == 1
