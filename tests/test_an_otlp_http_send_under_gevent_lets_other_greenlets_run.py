"""Under gevent's monkey-patching, spanbatch's OTLP/HTTP exporter behind a processor whose export runs in a greenlet
(the stock BatchSpanProcessor, whose worker thread is then a greenlet, or SimpleSpanProcessor) must not stop the hub.

The stock exporter's ``requests`` uses gevent's patched sockets: while it waits for an answer the other greenlets run.
spanbatch's Rust transport blocks the OS thread, hub included, for the whole send: a backend that never answers
freezes every greenlet of the process (a gevent web server's requests) for the exporter's timeout, at each export.
(spanbatch's own processors export on real OS threads under gevent, and are not affected.)

Measured before the send moved to a real OS thread: stock 0.03 s longest pause of a 10 ms ticker greenlet,
spanbatch 3.11 s (the 3 s timeout), behind either processor.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("gevent")

pytestmark = pytest.mark.timeout(60)

TIMEOUT_SECONDS = 3  # the exporter's: a send that blocks the hub blocks it this long

_CHILD = """
from gevent import monkey

monkey.patch_all()
import os, socket, sys, time

import gevent
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

if sys.argv[1] == "stock":
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
else:
    from spanbatch.exporter import OTLPSpanExporter

silent = socket.create_server(("127.0.0.1", 0))  # never accepts, never answers
endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}/v1/traces"
provider = TracerProvider()
exporter = OTLPSpanExporter(endpoint=endpoint, timeout=%d)
if sys.argv[2] == "simple":  # the export runs in the greenlet that ends the span
    provider.add_span_processor(SimpleSpanProcessor(exporter))
else:  # the stock worker thread is a greenlet
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=100))
gaps = []

def tick():
    last = time.monotonic()
    for _ in range(200):
        gevent.sleep(0.01)
        now = time.monotonic()
        gaps.append(now - last)
        last = now

ticker = gevent.spawn(tick)
with provider.get_tracer("gevent").start_as_current_span("s"):
    pass
ticker.join()
print(max(gaps), flush=True)
os._exit(0)
"""


@pytest.mark.parametrize("processor", ["batch", "simple"])
@pytest.mark.parametrize("exporter", ["stock", "spanbatch"])
def test_a_send_to_a_silent_backend_lets_other_greenlets_run(exporter: str, processor: str) -> None:
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_CHILD % TIMEOUT_SECONDS), exporter, processor],
        capture_output=True,
        text=True,
        timeout=45,
        check=True,
    )
    longest_pause = float(child.stdout)
    assert longest_pause < TIMEOUT_SECONDS / 3, child.stderr
