"""Under gevent's monkey-patching, a request spilled while the backend was down is replayed by the process that
spilled it once the backend is up, not only by the next process on the directory.

The spill happens on spanbatch's export thread, a real OS thread with a hub of its own. A replay thread started
there with ``threading.Thread`` is a greenlet on that hub, which never runs: the export thread waits in Rust and
never yields to it. Measured before the fix: 0 replays in 3 s (the first probe after the backend is up comes within
1.5 s), the next span spilled behind it, and the exporter's shutdown waited its whole 5 s for that thread to end.

A replay on a thread of its own must not share the exports' requests connections (HTTPS, or what Rust does not send):
a gevent socket belongs to the hub of the thread that made it. Shared, the export after the replay failed ("cannot
switch to a different thread") and was spilled.
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
import requests
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
import spanbatch
from spanbatch.exporter import OTLPSpanExporter

endpoint, spill_dir, processor_name, transport = sys.argv[1:]
headers = {"x-tenant": "caf\u00e9"} if transport == "requests" else None  # not ASCII: sent by requests, not Rust
session = requests.Session() if transport == "given session" else None
exporter = OTLPSpanExporter(endpoint=endpoint, timeout=0.5, spill_dir=spill_dir, headers=headers, session=session)
assert exporter.sends_natively is (transport == "native")
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
    gevent.sleep(0.05)  # as a gevent application's greenlets do
tracer.start_span("sent").end()  # straight to the backend again
processor.force_flush()
print("replayed", exporter.spill_counts().replayed, "spilled", exporter.spill_counts().spilled, flush=True)
provider.shutdown()
"""


# spanbatch's processor exports on a thread of its own; the stock one in a greenlet of the main thread's hub, where
# the replay thread's requests connections must not be handed to it (gevent sockets belong to the hub that made them).
# A session the caller gave is shared with the replay thread (found in review, not fixed: a copy of it would have to
# keep what the caller set on it, auth, hooks, adapters, a sticky cookie, which not every session copies): the next
# export of the stock processor takes the replay's keep-alive socket, fails ("cannot switch to a different thread")
# and is spilled behind a backend that is up (spanbatch's processor, on an OS thread too, fails so at times only).
@pytest.mark.parametrize(
    ("processor", "transport"),
    [
        ("spanbatch", "native"),
        ("stock", "requests"),
        pytest.param(
            "stock",
            "given session",
            # Not strict: whether the next export takes the replay's socket is a race (at 1b7a0bf it passed 1 run
            # of 5, at 122c62f 2 of 4), which failed the local CI of 122c62f on 3.11 as an XPASS(strict).
            marks=pytest.mark.xfail(
                strict=False, reason="the replay thread shares the caller's session's gevent sockets (a race)"
            ),
        ),
    ],
)
def test_the_live_process_replays_once_the_backend_is_up(processor: str, transport: str, tmp_path: Path) -> None:
    with serve_http(down=True, keep_alive=True) as backend:
        with started_app(APP, backend.endpoint, str(tmp_path), processor, transport, env=clean_env()) as app:
            assert app.stdout is not None
            assert app.stdout.readline() == "spilled 1\n"
            backend.come_up()
            out, err = app.communicate("up\n", timeout=30)
        assert (out, app.returncode) == ("replayed 1 spilled 1\n", 0), err
        assert sorted(backend.spans()) == ["sent", "spilled"]
