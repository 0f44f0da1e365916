"""A process frozen while its request waits for the answer (AWS Lambda between invocations, SIGSTOP, the cgroup
freezer) finds that answer waiting once it thaws: spanbatch's OTLP/HTTP exporter takes it, past its timeout or not.

Before (revA30, 3 of 3 runs): the read, woken by the thaw (a socket read under a timeout is not restarted after a
stop), found its deadline passed and told a timeout without looking at the socket, where the 200 had been waiting:
the batch, delivered, was counted ``export_failed`` and its spans told as dropped; with a spill directory it was
spilled and sent again (the backend got the first batch three times). The stock exporter counted it exported.
Now a wait whose time has passed looks once more without blocking before it gives up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from spanbatch.testing import OTLPReceiver

pytestmark = pytest.mark.timeout(60)

SPANS = 5
TIMEOUT_SECONDS = 1.0
FROZEN_SECONDS = 2.0  # past the exporter's timeout

CHILD = textwrap.dedent(
    """
    import sys
    from opentelemetry.sdk.trace import TracerProvider
    import spanbatch
    from spanbatch.exporter import {exporter}

    processor = spanbatch.BatchSpanProcessor({exporter}(endpoint=sys.argv[1], timeout={timeout}))
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("frozen")
    for i in range({spans}):
        tracer.start_span(f"span {{i}}").end()
    print("flushed in time:", processor.force_flush(100), flush=True)  # the request now waits for its answer
    sys.stdin.readline()  # frozen and thawed meanwhile
    print("flushed:", processor.force_flush(10_000), flush=True)
    stats = processor.stats()
    print(stats.exported, stats.dropped["export_failed"], stats.export_errors, flush=True)
    provider.shutdown()
    """
)


@pytest.mark.parametrize("signal_name", ["spans", "logs"])
def test_a_request_answered_while_the_process_was_frozen_is_counted_delivered(signal_name: str) -> None:
    with OTLPReceiver("http") as receiver:
        receiver.set_behaviour("hold")  # takes the request, answers once the behaviour changes
        script = CHILD.format(exporter="OTLPSpanExporter", timeout=TIMEOUT_SECONDS, spans=SPANS)
        endpoint = receiver.endpoint
        if signal_name == "logs":
            script = _as_logs(script)
            endpoint = receiver.log_endpoint
        child = subprocess.Popen(
            [sys.executable, "-c", script, endpoint],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        try:
            assert child.stdout is not None
            assert child.stdin is not None
            assert child.stdout.readline().strip() == "flushed in time: False"
            assert receiver.wait_for(lambda stats: stats.held == 1)
            os.kill(child.pid, signal.SIGSTOP)
            try:
                receiver.set_behaviour("ok")  # the answer comes while the child is frozen
                time.sleep(FROZEN_SECONDS)
            finally:
                os.kill(child.pid, signal.SIGCONT)
            out, _ = child.communicate("go\n", timeout=30)
        finally:
            child.kill()
        flushed, counts = out.strip().splitlines()
        assert flushed == "flushed: True"
        assert counts.split() == [str(SPANS), "0", "0"]  # exported, export_failed, export_errors
        stats = receiver.stats()
        delivered = stats.spans if signal_name == "spans" else stats.log_records
        assert delivered == SPANS
        assert stats.requests == 1  # sent once: never again


def _as_logs(script: str) -> str:
    """The child script, for log records through spanbatch's OTLP/HTTP log exporter."""
    return (
        script.replace("from opentelemetry.sdk.trace import TracerProvider", _LOGS_IMPORTS)
        .replace("OTLPSpanExporter", "OTLPLogExporter")
        .replace("spanbatch.BatchSpanProcessor", "spanbatch.BatchLogRecordProcessor")
        .replace("provider = TracerProvider()", "provider = LoggerProvider()")
        .replace("provider.add_span_processor", "provider.add_log_record_processor")
        .replace('tracer = provider.get_tracer("frozen")', 'logger = provider.get_logger("frozen")')
        .replace('tracer.start_span(f"span {i}").end()', 'logger.emit(LogRecord(body=f"record {i}"))')
    )


_LOGS_IMPORTS = "from opentelemetry._logs import LogRecord\nfrom opentelemetry.sdk._logs import LoggerProvider"
