"""An ``async def export`` that hands its blocking send to a thread (``asyncio.to_thread``,
``loop.run_in_executor(None, ...)``; asyncio's own ``getaddrinfo`` does the same) uses the default executor of the
worker's private loop. That send hanging on a dead backend must not hold the interpreter's exit past its bound:
the loop's default executor was the standard ``ThreadPoolExecutor``, whose threads every interpreter exit joins
(``concurrent.futures``' exit hook), so the process never exited. (The stock processor never awaits an async
export; a synchronous send hanging on its daemon worker thread does not hold the exit either.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

APP = textwrap.dedent(
    """
    import asyncio, threading
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    import spanbatch

    never = threading.Event()

    class SendsOnAThread(SpanExporter):
        async def export(self, spans):
            await SEND  # a blocking send to a backend that never answers
            return SpanExportResult.SUCCESS

    processor = spanbatch.BatchSpanProcessor(SendsOnAThread(), schedule_delay_millis=60_000, export_timeout_millis=300)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    for _ in range(3):
        trace.get_tracer("exit").start_span("stuck").end()
    print("flushed", processor.force_flush(10_000), flush=True)  # the export timed out: its thread still hangs
    stats = processor.stats()
    print("settled", stats.exported, stats.dropped["export_failed"], stats.queued, stats.in_flight, flush=True)
    """
)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "send", ["asyncio.to_thread(never.wait)", "asyncio.get_running_loop().run_in_executor(None, never.wait)"]
)
def test_a_send_hanging_on_a_thread_of_the_private_loop_does_not_hold_the_exit(send: str) -> None:
    try:
        done = subprocess.run(
            [sys.executable, "-c", APP.replace("SEND", send)], check=False, capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired as hung:
        pytest.fail(f"the process did not exit within 30 s: {hung.stdout!r}")
    assert done.returncode == 0, done.stderr
    assert "flushed True" in done.stdout, done.stdout
    assert "settled 0 3 0 0" in done.stdout, done.stdout  # timed out: failed, counted


DRAINED_AT_EXIT = textwrap.dedent(
    """
    import asyncio, time
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    import spanbatch

    class SendsOnAThread(SpanExporter):
        async def export(self, spans):
            await asyncio.to_thread(time.sleep, 0.01)  # a blocking send that answers
            print("sent", len(spans), flush=True)
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(spanbatch.BatchSpanProcessor(SendsOnAThread(), schedule_delay_millis=60_000))
    trace.set_tracer_provider(provider)
    for _ in range(3):
        trace.get_tracer("exit").start_span("queued at exit").end()
    """
)


@pytest.mark.timeout(120)
def test_spans_queued_at_exit_are_sent_through_a_thread_of_the_private_loop() -> None:
    # The exit's drain runs after concurrent.futures' exit hook has shut every standard pool: the send failed with
    # "cannot schedule new futures after interpreter shutdown" and the spans were dropped (export_failed).
    done = subprocess.run(
        [sys.executable, "-c", DRAINED_AT_EXIT], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "sent 3\n", done.stderr
