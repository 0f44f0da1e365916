"""A child forked while another thread of the parent made a processor (forced here by holding the numbering lock
at the fork) makes one of its own: the self-metrics' module locks are the process's own. Found by review."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import spanbatch
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanbatch import _metrics


@pytest.mark.timeout(30)
def test_a_child_forked_while_a_processor_is_being_numbered_makes_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    provider = MeterProvider()
    held, release = threading.Event(), threading.Event()

    def maker() -> None:
        with _metrics._numbers_lock.get():
            held.set()
            release.wait(10)

    thread = threading.Thread(target=maker, daemon=True)
    thread.start()
    held.wait()
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(5)
        spanbatch.BatchSpanProcessor(InMemorySpanExporter(), meter_provider=provider).shutdown()
        os._exit(0)
    release.set()
    _, status = os.waitpid(pid, 0)
    time.sleep(0)
    assert not os.WIFSIGNALED(status), "the child hung making a processor"
