"""Once the main thread has returned, the whole exit waits for spanbatch at most one ``SPANBATCH_EXIT_TIMEOUT_MS``.

The interpreter joins the non-daemon threads before it runs any atexit hook. A flush (or a shutdown) such a thread
asks for on a hanging backend is one wait, the providers' shutdowns at atexit another: they share the one exit
limit the README promises, instead of taking one limit each.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time

import pytest
from spanbatch.testing import OTLPReceiver

from tests.helpers import ReportedStats

# alone: a limit of a few seconds with a narrow margin, measured on the wall clock.
pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(os.name != "posix", reason="loopback receiver"),
    pytest.mark.alone,
]

EXIT_TIMEOUT_MILLIS = 3000
# Less than one more exit limit: a second wait on the hanging backend does not fit in it.
MARGIN_SECONDS = 2.5

# The report hook is registered before spanbatch is imported: atexit runs it last, after every shutdown.
APP = """
import atexit, json, sys, threading, time

def report():
    s = processor.stats()
    print(json.dumps([s.enqueued, s.exported, s.queued, s.in_flight, dict(s.dropped)]), flush=True)

atexit.register(report)

from opentelemetry.sdk.trace import TracerProvider
from spanbatch import BatchSpanProcessor
from spanbatch.exporter import OTLPSpanExporter

processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1]), schedule_delay_millis=60_000)
provider = TracerProvider()
provider.add_span_processor(processor)
tracer = provider.get_tracer("app")

def job():
    time.sleep(0.2)  # the main thread has returned: the interpreter waits for this thread
    tracer.start_span("late").end()
    getattr(processor, sys.argv[2])()

threading.Thread(target=job).start()
tracer.start_span("early").end()
print("main done at", repr(time.time()), flush=True)
"""


@pytest.mark.parametrize("call", ["force_flush", "shutdown"])
def test_a_non_daemon_thread_waiting_after_main_shares_the_exit_limit(call: str) -> None:
    with OTLPReceiver("http") as rx:
        rx.set_behaviour("hang")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SPANBATCH_"))}
        env["SPANBATCH_EXIT_TIMEOUT_MS"] = str(EXIT_TIMEOUT_MILLIS)
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(APP), rx.endpoint, call],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        exited_at = time.time()
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    main_done = re.search(r"^main done at (\S+)$", done.stdout, re.M)
    assert main_done, (done.stdout, done.stderr)
    seconds = exited_at - float(main_done.group(1))
    assert seconds < EXIT_TIMEOUT_MILLIS / 1000 + MARGIN_SECONDS, (seconds, done.stderr)
    # Both spans are accounted for: still in flight on the hanging backend, or dropped at the deadline.
    stats = ReportedStats(*json.loads(done.stdout.strip().splitlines()[-1]))
    assert stats.enqueued == 2
    assert stats.exported + stats.queued + stats.in_flight + sum(stats.dropped.values()) == 2, stats


# The thread works longer than the exit limit before it flushes: only spanbatch's waits use the limit.
WORKS_ON = """
import sys, threading, time
from opentelemetry.sdk.trace import TracerProvider
from spanbatch import BatchSpanProcessor
from spanbatch.exporter import OTLPSpanExporter

processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1]), schedule_delay_millis=60_000)
provider = TracerProvider()
provider.add_span_processor(processor)
tracer = provider.get_tracer("app")

def job():
    for _ in range(3):
        time.sleep(0.6)
        tracer.start_span("work").end()
        print("flushed", processor.force_flush(), flush=True)

threading.Thread(target=job).start()
"""


def test_a_thread_working_on_after_main_longer_than_the_limit_still_has_its_flushes_waited_for() -> None:
    with OTLPReceiver("http") as rx:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SPANBATCH_"))}
        env["SPANBATCH_EXIT_TIMEOUT_MS"] = "1000"
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(WORKS_ON), rx.endpoint],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["flushed", "True"] * 3, (done.stdout, done.stderr)
        assert rx.span_names() == {"work": 3}
