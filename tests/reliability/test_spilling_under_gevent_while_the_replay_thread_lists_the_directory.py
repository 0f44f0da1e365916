"""Under gevent, the spill's replay thread is a real OS thread, and the spill store it shares with the application's
greenlets must lock with the OS's locks. A gevent lock held by the replay thread (listing a large directory) while a
greenlet of the main thread, with nothing else for its hub to run, wants it raises ``LoopExit`` ("This operation
would block forever") in that greenlet: there, a span exported by ``SimpleSpanProcessor`` whose file was already
written to disk. Measured before the fix: about 1 in 40 of the spans ended failed so ("Exception while exporting
Span."), on disk but never counted as spilled."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from spanbatch._spill import SpillStore
from spanbatch.exporter._spilling import backend_directory

from tests.helpers.apps import clean_env, started_app
from tests.helpers.receivers import serve_http

pytest.importorskip("gevent")

pytestmark = pytest.mark.timeout(90)

APP = """
from gevent import monkey

monkey.patch_all()
import sys, time

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from spanbatch.exporter import OTLPSpanExporter

endpoint, spill_dir = sys.argv[1:]
exporter = OTLPSpanExporter(endpoint=endpoint, timeout=0.5, spill_dir=spill_dir)
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("app")
ended = 0
deadline = time.monotonic() + 3  # the replay thread lists the directory at its probes: 0 s, 0.5 s, then 1.5 s later
while time.monotonic() < deadline:
    tracer.start_span("s").end()  # the backend is down: each goes to disk, once the first failed
    ended += 1
print("ended", ended, "spilled", exporter.spill_counts().spilled, flush=True)
provider.shutdown()
"""

# Files a long outage left behind: listing them (and reading each one's size) takes the replay thread a while.
LEFT_BEHIND = 30_000


def test_every_span_ended_is_spilled_and_counted(tmp_path: Path) -> None:
    with serve_http(down=True) as backend:
        directory = backend_directory(tmp_path, "http", backend.endpoint)
        assert SpillStore(directory, 1 << 30).write(b"left by an earlier process", 1)
        (left,) = directory.glob("*.spill")
        for n in range(LEFT_BEHIND):  # the same file under as many names: quick to make
            os.link(left, directory / f"{1:020d}-1-{n:08d}.spill")
        with started_app(APP, backend.endpoint, str(tmp_path), env=clean_env()) as app:
            out, err = app.communicate(timeout=60)
    assert app.returncode == 0, err
    assert "Exception while exporting" not in err, err[-3000:]
    ended, spilled = (int(n) for n in out.split()[1::2])
    assert spilled == ended
    assert [path.name for path in tmp_path.iterdir()] == [directory.name]  # the directory its exporter used
