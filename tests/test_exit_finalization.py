"""Threads inside spanbatch while the interpreter finalises.

Once finalization begins, CPython before 3.14 ends a thread that asks for the GIL back by unwinding
it (``pthread_exit``) from wherever it is: through Rust frames, that is undefined behaviour and
crashed the process now and then (SIGSEGV, SIGABRT). So no thread detached in spanbatch asks for the
GIL once spanbatch's last atexit hook has run: it parks for good, and the process's exit ends it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.helpers.receivers import serve_http

pytestmark = pytest.mark.timeout(120)

RUNS = 6

APP = textwrap.dedent(
    """
    import logging, threading, time
    import spanbatch
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry._logs import LogRecord

    logging.basicConfig(level=logging.INFO)  # the stock line for each refused item is logged, not skipped
    tracer_provider = TracerProvider()  # shutdown_on_exit: its atexit hook shuts the processor down
    tracer_provider.add_span_processor(spanbatch.BatchSpanProcessor(InMemorySpanExporter()))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(spanbatch.BatchLogRecordProcessor(InMemoryLogRecordExporter()))
    tracer, logger = tracer_provider.get_tracer("t"), logger_provider.get_logger("t")

    def work():
        while True:
            tracer.start_span("s").end()
            logger.emit(LogRecord(body="r"))

    for _ in range(8):
        threading.Thread(target=work, daemon=True).start()
    time.sleep(0.2)
    """
)


def test_daemon_threads_ending_items_through_exit_never_abort_it() -> None:
    # The providers' atexit hooks shut the processors down while these threads run on: what a
    # thread does with an item refused after shutdown must never leave it detached. Each run is a
    # few hundred ms; the race it guards against needs several runs to show.
    for run in range(RUNS):
        done = subprocess.run([sys.executable, "-c", APP], capture_output=True, text=True, timeout=60, check=False)
        assert "Fatal Python error" not in done.stderr, (run, done.stderr[-2000:])
        assert done.returncode == 0, (run, done.returncode, done.stderr[-2000:])


# Keeps the interpreter finalizing for argv[-1] seconds (its module is torn down then), and says how
# many of the process's threads ended meanwhile: a thread unwound at exit ends, a parked one does not.
TEARDOWN = textwrap.dedent(
    """
    import os, sys, time, types

    class Teardown:
        def __init__(self):
            self.wait, self.sleep, self.write, self.listdir = float(sys.argv[-1]), time.sleep, os.write, os.listdir

        def __del__(self):
            before = set(self.listdir("/proc/self/task"))
            self.sleep(self.wait)
            ended = before - set(self.listdir("/proc/self/task"))
            self.write(1, f"threads ended: {len(ended)}".encode())

    # In a module of its own: __main__'s globals outlive finalization while a thread runs a function of it.
    sys.modules["teardown"] = types.ModuleType("teardown")
    sys.modules["teardown"].teardown = Teardown()
    """
)

ANSWERED_DURING_FINALIZATION = textwrap.dedent(
    """
    import sys
    import spanbatch
    from spanbatch.exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider

    processor = spanbatch.BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1], timeout=10))
    provider = TracerProvider()
    provider.add_span_processor(processor)
    provider.get_tracer("t").start_span("s").end()
    """
)

READ_DURING_FINALIZATION = textwrap.dedent(
    """
    import sys, time
    import spanbatch
    from spanbatch.exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

    class SlowSpan(ReadableSpan):
        @property
        def attributes(self):
            time.sleep(float(sys.argv[2]))  # a property doing I/O, read by the worker as exit drains it
            return {}

    processor = spanbatch.BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1], timeout=10))
    provider = TracerProvider()
    provider.add_span_processor(processor)
    span = provider.get_tracer("t").start_span("s")
    span.end()
    processor.on_end(SlowSpan(name="slow", context=span.get_span_context(), resource=span.resource))
    """
)


def run_app(app: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", app, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def run_through_finalization(app: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_app(app + TEARDOWN, *args, env={"SPANBATCH_EXIT_TIMEOUT_MS": "100"})


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads the process's threads from /proc")
def test_a_worker_answered_during_finalization_parks_instead_of_being_unwound() -> None:
    answer_after = 0.8
    with serve_http() as collector:
        collector.delay = answer_after
        # Finalizing until a second after the collector answers the export that outlived the exit deadline.
        done = run_through_finalization(ANSWERED_DURING_FINALIZATION, collector.endpoint, str(answer_after + 1.0))
        assert len(collector.received) == 1
    assert done.returncode == 0, done.stderr[-2000:]
    assert "shutdown deadline passed with the worker still busy" in done.stderr
    # Unwound, the export's thread would be gone (or the process, crashed); parked, it is there until the end.
    assert done.stdout == "threads ended: 0", done.stderr[-2000:]


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads the process's threads from /proc")
def test_a_worker_in_a_span_property_during_finalization_hangs_instead_of_being_unwound() -> None:
    reading = 0.6
    with serve_http() as collector:
        # The worker reads the span past the exit deadline and past the exit gate's wait; finalizing
        # until a second after the property returns into spanbatch's frames.
        done = run_through_finalization(READ_DURING_FINALIZATION, collector.endpoint, str(reading), str(reading + 1.0))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "shutdown deadline passed with the worker still busy" in done.stderr
    assert done.stdout == "threads ended: 0", done.stderr[-2000:]


STOCK_PROCESSOR_BUILT_BEFORE_SPANBATCH = textwrap.dedent(
    """
    import sys
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()  # its atexit hook runs after spanbatch's, registered when spanbatch is imported
    from spanbatch.exporter import OTLPSpanExporter

    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1], timeout=5)))
    tracer = provider.get_tracer("t")
    for i in range(10):
        tracer.start_span(f"s{i}").end()
    """
)


def test_spanbatchs_exporter_still_exports_for_a_stock_processor_shut_down_after_spanbatchs_exit_hook() -> None:
    # The exit gate stops spanbatch's lanes only: the stock worker exporting through spanbatch's
    # exporter is not parked (it was, and the stock shutdown waited out its 30 s with nothing sent).
    with serve_http() as collector:
        done = run_app(STOCK_PROCESSOR_BUILT_BEFORE_SPANBATCH, collector.endpoint)
        assert done.returncode == 0, done.stderr[-2000:]
        assert collector.span_count() == 10, done.stderr[-2000:]


LANE_MADE_AFTER_SPANBATCHS_EXIT_HOOK = textwrap.dedent(
    """
    import atexit, sys
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(shutdown_on_exit=False)

    def late():
        import spanbatch
        from spanbatch.exporter import OTLPSpanExporter

        provider.add_span_processor(spanbatch.BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1], timeout=5)))
        tracer = provider.get_tracer("t")
        for i in range(10):
            tracer.start_span(f"s{i}").end()
        if sys.argv[2] == "flush":
            print(provider.force_flush(10_000), end="")
        provider.shutdown()  # drains what is queued

    atexit.register(late)  # registered before spanbatch is imported: runs after spanbatch's last hook
    import spanbatch
    """
)


@pytest.mark.skipif(sys.version_info[:2] == (3, 12), reason="CPython 3.12 starts no thread once exit has begun")
@pytest.mark.parametrize("ending", ["flush", "shutdown"])
def test_a_lane_made_after_spanbatchs_exit_hook_still_exports(ending: str) -> None:
    # The exit gate stops the lanes shut down before it closed, not one made after it (it did: its
    # worker parked and the flush waited out its timeout, or, shut down, stopped reading, nothing sent).
    with serve_http() as collector:
        done = run_app(LANE_MADE_AFTER_SPANBATCHS_EXIT_HOOK, collector.endpoint, ending)
        assert (done.returncode, done.stdout) == (0, "True" if ending == "flush" else ""), done.stderr[-2000:]
        assert collector.span_count() == 10, done.stderr[-2000:]
