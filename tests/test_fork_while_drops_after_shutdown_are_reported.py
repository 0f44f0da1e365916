"""A process forked while its threads hand spans to a shut-down processor: the child ends spans without waiting
on a lock the parent's threads held at the fork."""

from __future__ import annotations

import os
import signal
import threading
from typing import cast

import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@pytest.mark.timeout(60)
def test_a_child_forked_while_spans_go_to_a_shut_down_processor_can_end_a_span() -> None:
    """Each span handed to a shut-down processor is reported in its drop warnings, under the reporter's lock. A
    child forked while another thread held it must still end a span (a lock held at the fork stays held in the
    child for ever; found by review: 23 of 30 children hung)."""
    processor = spanbatch.BatchSpanProcessor(InMemorySpanExporter())
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    processor.shutdown()
    stop = threading.Event()

    def spin() -> None:
        live = tracer.start_span("x")
        live.end()
        span = cast(ReadableSpan, live)
        while not stop.is_set():
            processor.on_end(span)

    threads = [threading.Thread(target=spin, daemon=True) for _ in range(3)]
    for thread in threads:
        thread.start()
    hung = 0
    try:
        for _ in range(20):
            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGALRM, signal.SIG_DFL)  # not pytest-timeout's handler
                signal.alarm(1)  # a child that hangs dies of SIGALRM (one span takes microseconds)
                tracer.start_span("child").end()
                os._exit(0)
            _, status = os.waitpid(pid, 0)
            hung += os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGALRM
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert hung == 0
