"""An outage across a restart: process A ends its spans while the backend is down and exits; process B,
started with the same spill directory once the backend is back, delivers every one of them exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from spanbatch.testing import OTLPReceiver

pytestmark = pytest.mark.timeout(120)

SPANS = 10_000
EXIT_TIMEOUT_SECONDS = 5  # SPANBATCH_EXIT_TIMEOUT_MS's default

# The exporter at its default timeout (10 s, past the exit deadline) and retries; nothing tuned for the test.
_CHILD = """
import atexit, json, sys, threading, time
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from spanbatch import BatchSpanProcessor

role, protocol, endpoint, spill_dir, spans = sys.argv[1:6]
if protocol == "http":
    from spanbatch.exporter import OTLPSpanExporter
    exporter = OTLPSpanExporter(endpoint=endpoint, spill_dir=spill_dir)
else:
    from spanbatch.exporter.grpc import OTLPSpanExporter
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True, spill_dir=spill_dir)
processor = BatchSpanProcessor(exporter, max_queue_size=int(spans))
exit_started = None

def report():  # registered before the provider's hook, so it runs after it: the stats after shutdown
    s = processor.stats()
    print(json.dumps({"enqueued": s.enqueued, "exported": s.exported, "spilled": s.spilled,
                      "replayed": s.replayed, "queued": s.queued, "in_flight": s.in_flight,
                      "dropped": dict(s.dropped), "exit_seconds": time.monotonic() - exit_started}), flush=True)

def mark_exit():
    global exit_started
    exit_started = time.monotonic()

atexit.register(report)
threading._register_atexit(mark_exit)
provider = TracerProvider(resource=Resource.create({"service.name": role}))
provider.add_span_processor(processor)
tracer = provider.get_tracer(role)
if role == "a":
    for i in range(int(spans)):
        tracer.start_span(f"s{i}").end()
else:  # B ends nothing: it only starts with the directory, and waits for it to be delivered
    deadline = time.monotonic() + 60
    while processor.stats().replayed < int(spans) and time.monotonic() < deadline:
        time.sleep(0.05)
"""

NO_DROPS = {"queue_full": 0, "shutdown": 0, "export_failed": 0, "fork": 0, "unencodable": 0, "too_large": 0}


def run(role: str, rx: OTLPReceiver, spill_dir: Path) -> dict[str, object]:
    argv = [sys.executable, "-c", textwrap.dedent(_CHILD), role, rx.protocol, rx.endpoint, str(spill_dir), str(SPANS)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    report: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_spans_ended_during_an_outage_reach_the_backend_once_after_a_restart(
    receiver: OTLPReceiver, tmp_path: Path
) -> None:
    receiver.set_behaviour("down")
    a = run("a", receiver, tmp_path)
    assert (a["enqueued"], a["spilled"], a["exported"], a["dropped"]) == (SPANS, SPANS, 0, NO_DROPS)
    assert isinstance(a["exit_seconds"], float)
    assert a["exit_seconds"] < EXIT_TIMEOUT_SECONDS
    assert receiver.stats().spans == 0
    assert list(tmp_path.glob("*/*.spill"))

    receiver.set_behaviour("ok")
    started = time.monotonic()
    b = run("b", receiver, tmp_path)
    assert b["replayed"] == SPANS
    assert (b["enqueued"], b["spilled"]) == (0, 0)
    assert receiver.wait_for_spans(SPANS, timeout=10)
    received = receiver.stats()
    assert (received.spans, received.unique_spans, received.duplicates) == (SPANS, SPANS, 0)
    assert set(receiver.span_names()) == {f"s{i}" for i in range(SPANS)}
    assert list(tmp_path.glob("*/*.spill")) == []
    assert time.monotonic() - started < 60
