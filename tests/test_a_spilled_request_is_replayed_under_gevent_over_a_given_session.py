"""Under gevent, the spill's replay thread is a real OS thread with a hub of its own, and a gevent socket belongs to
the hub of the thread that made it. An exporter given its ``session`` (or a credential provider's) shares it with
the replay thread: the replay then leaves its keep-alive connection in the pool the exports draw from, and the next
export of the stock processor (a greenlet of the main thread) fails ("cannot switch to a different thread (which
happens to have exited)") and is spilled, behind a backend that is up: replayed 1, spilled 2 where 1 is true."""

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
import requests
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
import spanbatch
from spanbatch.exporter import OTLPSpanExporter

endpoint, spill_dir, processor_name = sys.argv[1:]
exporter = OTLPSpanExporter(endpoint=endpoint, timeout=0.5, spill_dir=spill_dir, session=requests.Session())
assert not exporter.sends_natively
processor = (spanbatch.BatchSpanProcessor if processor_name == "spanbatch" else BatchSpanProcessor)(exporter)
provider = TracerProvider()
provider.add_span_processor(processor)
tracer = provider.get_tracer("app")
tracer.start_span("spilled").end()
processor.force_flush()
print("spilled", exporter.spill_counts().spilled, flush=True)
sys.stdin.readline()  # the backend is up
deadline = time.monotonic() + 3  # probes come 0.5 s, then 1.5 s, after the spill
while exporter.spill_counts().replayed == 0 and time.monotonic() < deadline:
    gevent.sleep(0.05)
tracer.start_span("sent").end()  # straight to the backend again
processor.force_flush()
print("replayed", exporter.spill_counts().replayed, "spilled", exporter.spill_counts().spilled, flush=True)
provider.shutdown()
"""


# Found in review (session 19): not fixed. A copy of the caller's session (its own pools) would be the replay's, but
# it must keep what the caller set on it (auth, hooks, adapters, a sticky cookie), which not every session copies.
# spanbatch's processor (its export thread an OS thread too) fails so at times only: the stock one's every time.
@pytest.mark.xfail(strict=True, reason="the replay thread shares the caller's session's gevent sockets")
@pytest.mark.parametrize("processor", ["stock"])
def test_the_export_after_a_replay_reaches_the_backend(processor: str, tmp_path: Path) -> None:
    with serve_http(down=True, keep_alive=True) as backend:
        with started_app(APP, backend.endpoint, str(tmp_path), processor, env=clean_env()) as app:
            assert app.stdout is not None
            assert app.stdout.readline() == "spilled 1\n"
            backend.come_up()
            out, err = app.communicate("up\n", timeout=30)
        assert (out, app.returncode) == ("replayed 1 spilled 1\n", 0), err
        assert sorted(backend.spans()) == ["sent", "spilled"]
