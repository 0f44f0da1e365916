"""With the disk spill on, a backend that came back after an outage gets, at exit, what is ended from then on (revR).

The spiller sends new requests to disk while its backend is known down, until a replay probe delivers a file; the
probes back off to 30 s apart, and none starts at exit. So a job that ended its last spans after the backend came
back and exited before the next probe put them all on disk, for a next process that may never run: 0 of 500
reached the backend, where the stock exporter, spill or no spill, would have sent them. At exit the backend gets one
more try: a send that fails goes to disk as before (and the ones after it straight there), and the exit's cut-off
bounds one that hangs.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from spanbatch.testing import OTLPReceiver

from tests.helpers.apps import clean_env, started_app

pytestmark = pytest.mark.timeout(60)

# argv: the endpoint, the spill directory. Probes a minute apart: none comes between the outage and the exit.
APP = """
import sys, time
import spanbatch.exporter._spilling as spilling
spilling.FIRST_PROBE_SECONDS = 60.0
from opentelemetry.sdk.trace import TracerProvider
from spanbatch import BatchSpanProcessor
from spanbatch.exporter import OTLPSpanExporter

processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1], spill_dir=sys.argv[2], timeout=1))
provider = TracerProvider()
provider.add_span_processor(processor)
tracer = provider.get_tracer("app")
for _ in range(20):
    tracer.start_span("during the outage").end()
processor.force_flush()
print(f"spilled {processor.stats().spilled}", flush=True)
sys.stdin.readline()  # the backend is back
for _ in range(500):
    tracer.start_span("after it").end()
"""


def test_the_spans_ended_after_the_backend_came_back_are_sent_at_exit(tmp_path: Path) -> None:
    with OTLPReceiver("http") as rx:
        rx.set_behaviour("down")
        with started_app(APP, rx.endpoint, str(tmp_path), env=clean_env()) as app:
            assert app.stdout is not None
            assert app.stdin is not None
            assert app.stdout.readline().strip() == "spilled 20"
            rx.set_behaviour("ok")
            app.stdin.write("\n")
            app.stdin.flush()
            try:
                out, err = app.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                app.kill()
                out, err = app.communicate()
        assert app.returncode == 0, (out, err)
        assert rx.span_names().get("after it", 0) == 500, (out, err)
