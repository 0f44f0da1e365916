"""A spilling exporter asked to send once the cut-off set at exit has passed (a span ended in a late atexit hook): no
send could end before it, so none is tried; the request goes to disk, and one line says why.

Over ``requests`` (``https://``, a session or a credential provider given) the send was tried with no time left, and
``requests`` refused its timeout ("Attempted to set connect timeout to 0.0"); from Rust and over gRPC it failed as
out of time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from spanbatch.testing import OTLPReceiver

from tests.helpers.apps import clean_env, run_app
from tests.helpers.spill import spill_files

pytestmark = pytest.mark.timeout(60)

EXIT_TIMEOUT_MILLIS = 200  # the cut-off: four fifths of it after the exit began

# argv: the endpoint, the spill directory, the transport (OTLP/HTTP: "requests", a session given; "rust", none; or
# "grpc").
APP = f"""
import atexit, json, sys, time
import requests
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from spanbatch.exporter import OTLPSpanExporter
from spanbatch.exporter.grpc import OTLPSpanExporter as GrpcExporter
endpoint, spill, transport = sys.argv[1:]
if transport == "grpc":
    exporter = GrpcExporter(endpoint=endpoint, insecure=True, spill_dir=spill)
else:
    session = {{"session": requests.Session()}} if transport == "requests" else {{}}
    exporter = OTLPSpanExporter(endpoint=endpoint, spill_dir=spill, **session)
provider = TracerProvider(shutdown_on_exit=False)
provider.add_span_processor(SimpleSpanProcessor(exporter))

def late_hook():  # runs after spanbatch's first atexit hooks, which set the cut-off
    time.sleep(1.5 * {EXIT_TIMEOUT_MILLIS} / 1000)  # past it
    provider.get_tracer("app").start_span("late").end()
    print(json.dumps(exporter.spill_counts().spilled), flush=True)

atexit.register(late_hook)
"""


@pytest.mark.parametrize("transport", ["requests", "rust", "grpc"])
def test_the_late_span_is_spilled_unsent_with_one_line_saying_so(transport: str, tmp_path: Path) -> None:
    with OTLPReceiver("grpc" if transport == "grpc" else "http") as rx:
        env = clean_env(SPANBATCH_EXIT_TIMEOUT_MS=str(EXIT_TIMEOUT_MILLIS))
        app = run_app(APP, rx.endpoint, str(tmp_path), transport, env=env, timeout=30)
        assert app.returncode == 0, app.stderr
        assert json.loads(app.stdout) == 1, app.stderr
        assert rx.stats().requests == 0
    assert len(spill_files(tmp_path)) == 1
    [line] = app.stderr.splitlines()
    assert line.startswith("Sends cut off at exit"), line
