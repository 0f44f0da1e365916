"""Under gevent's monkey-patching, a request spilled while the backend was down is replayed by the process that
spilled it once the backend is up, not only by the next process on the directory.

The spill happens on spanbatch's export thread, a real OS thread with a hub of its own. A replay thread started
there with ``threading.Thread`` is a greenlet on that hub, which never runs: the export thread waits in Rust and
never yields to it. Measured before the fix: 0 replays in 3 s (the first probe after the backend is up comes within
1.5 s), and the exporter's shutdown waited its whole 5 s for that thread to end.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.apps import clean_env, started_app
from tests.helpers.receivers import serve_http

pytest.importorskip("gevent")

pytestmark = pytest.mark.timeout(60)

APP = """
from gevent import monkey

monkey.patch_all()
import sys, time

import gevent
from opentelemetry.sdk.trace import TracerProvider
import spanbatch
from spanbatch.exporter import OTLPSpanExporter

processor = spanbatch.BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1], timeout=0.5, spill_dir=sys.argv[2]))
provider = TracerProvider()
provider.add_span_processor(processor)
with provider.get_tracer("app").start_as_current_span("spilled"):
    pass
processor.force_flush()
print("spilled", processor.stats().spilled, flush=True)
sys.stdin.readline()  # the backend is up
deadline = time.monotonic() + 3  # probes come 0.5 s, then 1.5 s, after the spill
while processor.stats().replayed == 0 and time.monotonic() < deadline:
    gevent.sleep(0.05)  # as a gevent application's greenlets do
print("replayed", processor.stats().replayed, flush=True)
provider.shutdown()
"""


def test_the_live_process_replays_once_the_backend_is_up(tmp_path: Path) -> None:
    with serve_http(down=True) as backend:
        with started_app(APP, backend.endpoint, str(tmp_path), env=clean_env()) as app:
            assert app.stdout is not None
            assert app.stdout.readline() == "spilled 1\n"
            backend.come_up()
            out, err = app.communicate("up\n", timeout=30)
        assert (out, app.returncode) == ("replayed 1\n", 0), err
        assert backend.span_count() == 1
