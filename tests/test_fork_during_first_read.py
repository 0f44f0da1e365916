"""A pre-fork server's child, forked while its parent's export worker was making the OTLP types it makes once
per process, exports all the same.

Each case runs in a fresh interpreter (a subprocess with a timeout): the one-time work must not be done yet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from spanbatch.testing import OTLPReceiver

pytestmark = [pytest.mark.timeout(120)]

# A pre-fork server (gunicorn's model) whose provider is made in the parent: the parent's export
# worker is still reading the OTLP types it needs, once per process, when the parent forks. The
# module those types come from is made slow to read, on the worker's thread only, so that the fork
# lands in that window every time (it does one run in four or so without help, with 4 children).
_FORK_DURING_FIRST_READ = textwrap.dedent(
    """
    import json, os, sys, threading, time, types
    import opentelemetry.trace.span as span_module
    if sys.argv[2] == "logs":
        import opentelemetry._logs as slow_module
        slow_name = "SeverityNumber"
    else:
        slow_module, slow_name = span_module, "TraceState"
    reading = threading.Event()

    class SlowToRead(types.ModuleType):
        def __getattribute__(self, name):
            if name == slow_name and threading.current_thread() is not threading.main_thread() and not reading.is_set():
                reading.set()
                time.sleep(1.0)  # without the GIL, as a read that imports or runs Python code can
            return super().__getattribute__(name)

    slow_module.__class__ = SlowToRead
    endpoint = sys.argv[1]
    if sys.argv[2] == "logs":
        from opentelemetry.sdk._logs import LoggerProvider
        from spanbatch import BatchLogRecordProcessor
        from spanbatch.exporter import OTLPLogExporter
        provider = LoggerProvider()
        processor = BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint), export_timeout_millis=3000)
        provider.add_log_record_processor(processor)
        logger = provider.get_logger("t")
        def end_one(name):
            logger.emit(body=name)
    else:
        from opentelemetry.sdk.trace import TracerProvider
        from spanbatch import BatchSpanProcessor
        from spanbatch.exporter import OTLPSpanExporter
        provider = TracerProvider()
        processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint), export_timeout_millis=3000)
        provider.add_span_processor(processor)
        tracer = provider.get_tracer("t")
        def end_one(name):
            tracer.start_span(name).end()
    end_one("parent")
    assert reading.wait(10), "the worker never read the OTLP types"
    pid = os.fork()
    if pid == 0:
        end_one("child")
        started = time.monotonic()
        flushed = processor.force_flush(3000)
        stats = processor.stats()
        print(json.dumps({"flushed": flushed, "seconds": time.monotonic() - started, "exported": stats.exported}))
        sys.stdout.flush()
        os._exit(0)
    os.waitpid(pid, 0)
    assert processor.force_flush(5000)
    processor.shutdown()
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("signal", ["spans", "logs"])
def test_child_forked_while_the_parent_worker_first_reads_otlp_types_exports(signal: str) -> None:
    with OTLPReceiver("http") as receiver:
        endpoint = receiver.endpoint if signal == "spans" else receiver.log_endpoint
        run = subprocess.run(
            [sys.executable, "-c", _FORK_DURING_FIRST_READ, endpoint, signal],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        child = json.loads(run.stdout.strip().splitlines()[-1])
        # Before: the child's worker waited for ever on a one-time initialisation its parent's worker
        # had begun, so its flush gave up after 3 s and its spans were never sent.
        assert child == {"flushed": True, "seconds": child["seconds"], "exported": 1}
        if signal == "spans":
            assert receiver.wait_for(lambda stats: stats.spans >= 2, timeout=10)
            assert receiver.span_names() == {"parent": 1, "child": 1}
        else:
            assert receiver.wait_for_log_records(2, timeout=10)
            assert receiver.log_bodies() == {"parent": 1, "child": 1}
