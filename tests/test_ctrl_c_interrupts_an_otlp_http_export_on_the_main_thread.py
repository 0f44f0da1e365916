"""Ctrl-C while an OTLP/HTTP export runs on the main thread (``SimpleSpanProcessor``, or ``export()`` called by hand).

The stock exporter's ``requests`` returns to Python when a signal interrupts its socket wait, so ``KeyboardInterrupt``
is raised at once. spanbatch's exporter sends from Rust, detached from the interpreter: the signal handler must
still run at once, not when the send gives up at its timeout.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(60)

TIMEOUT_SECONDS = 10  # the exporter's: only a send that waited it out returns this late
PROMPT_SECONDS = 3.0

_CHILD = """
import os, signal, sys, threading, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

# A shell starts background jobs with SIGINT ignored, and children inherit that.
signal.signal(signal.SIGINT, signal.default_int_handler)
if sys.argv[1] == "stock":
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
else:
    from spanbatch.exporter import OTLPSpanExporter
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[2], timeout={timeout})))
sent = []

def interrupt():
    time.sleep(1.0)  # the span's export is waiting for the answer by then
    sent.append(time.monotonic())
    os.kill(os.getpid(), signal.SIGINT)

threading.Thread(target=interrupt, daemon=True).start()
try:
    with provider.get_tracer("ctrl-c").start_as_current_span("waits"):
        pass
    print("returned", time.monotonic() - sent[0] if sent else None)
except KeyboardInterrupt:
    print("interrupted", time.monotonic() - sent[0])
"""


@pytest.mark.parametrize("exporter", ["stock", "spanbatch"])
def test_ctrl_c_interrupts_an_export_waiting_for_its_answer(exporter: str) -> None:
    # A listener that never accepts: the kernel completes the connection and takes the request, nobody answers.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}/v1/traces"
        child = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_CHILD.format(timeout=TIMEOUT_SECONDS)), exporter, endpoint],
            capture_output=True,
            text=True,
            timeout=45,
            check=True,
        )
    outcome, seconds = child.stdout.split()
    assert outcome == "interrupted", child.stdout + child.stderr
    assert float(seconds) < PROMPT_SECONDS
