"""An async exporter that sends through ``asyncio.to_thread`` (or ``run_in_executor(None, ...)``) and whose send
hangs there must not hold the process's exit past ``SPANBATCH_EXIT_TIMEOUT_MS`` (README: exit is bounded whatever
the backends do). asyncio's own default executor is a ``ThreadPoolExecutor``: the interpreter joins its threads
(``concurrent.futures.thread._python_exit``) before any atexit hook, so one hung send kept the process from ever
exiting, spanbatch's bounded exit shutdown never reached. What the hung send held is counted, never lost unsaid.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import time
from typing import NamedTuple

import pytest

from tests.helpers import ReportedStats
from tests.helpers.apps import clean_env, run_app

pytestmark = pytest.mark.timeout(120)

EXIT_TIMEOUT_MILLIS = 1000
# Interpreter teardown after the exit hook, and a loaded machine, are timed too.
SLACK_SECONDS = 2.0
# Far more than the exit should take: past it the app is taken for hung, and killed.
HUNG_SECONDS = 15.0
SPANS = 3
HAS_GEVENT = importlib.util.find_spec("gevent") is not None

# The report hook is registered before spanbatch is imported: atexit runs it last, after every shutdown.
APP = """
import sys
if sys.argv[4] == "gevent":  # before anything else is imported
    from gevent import monkey
    monkey.patch_all()

import asyncio, atexit, json, threading, time

def report():
    s = processor.stats()
    print(json.dumps([s.enqueued, s.exported, s.queued, s.in_flight, dict(s.dropped)]), flush=True)

atexit.register(report)

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from spanbatch import BatchSpanProcessor

# A blocking send that never returns (a patched Event would find nothing left to wake it, and raise).
never_returns = threading.Event().wait if sys.argv[4] == "threads" else lambda: time.sleep(3600)

class SendsInAThread(SpanExporter):
    async def export(self, spans):
        await asyncio.to_thread(never_returns)
        return SpanExportResult.SUCCESS

timeout_millis, spans, flush_millis = (int(arg) for arg in sys.argv[1:4])
processor = BatchSpanProcessor(SendsInAThread(), schedule_delay_millis=60_000, export_timeout_millis=timeout_millis)
provider = TracerProvider()
provider.add_span_processor(processor)
tracer = provider.get_tracer("app")
for _ in range(spans):
    tracer.start_span("hangs").end()
print("flushed", processor.force_flush(flush_millis), flush=True)
print("main done at", repr(time.time()), flush=True)
"""


class Case(NamedTuple):
    """The app's export timeout and flush timeout; what its flush returns, the stats it reports at its very end
    (enqueued, exported, queued, in flight, the drop reasons counted), and the line that says what was lost."""

    timeout_millis: int
    flush_millis: int
    flushed: bool
    stats: tuple[int, int, int, int, dict[str, int]]
    said: str


CASES = {
    # Cancelled at its timeout before exit: the send's thread hangs on, nobody waiting for it.
    "cancelled-before-exit": Case(
        300,
        10_000,
        True,
        (SPANS, 0, 0, 0, {"export_failed": SPANS}),
        f"Export of {SPANS} spans timed out after 300 ms.",
    ),
    # Still in flight when the exit limit passes: counted as such, and said.
    "in-flight-at-exit": Case(
        60_000, 200, False, (SPANS, 0, 0, SPANS, {}), "shutdown deadline passed with the worker still busy"
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
# Under gevent's monkey-patching, asyncio's own pool held the exit for good even with no call hung (its threads were
# greenlets started from the worker's thread, whose hub never ran again).
@pytest.mark.parametrize(
    "threads",
    ["threads", pytest.param("gevent", marks=pytest.mark.skipif(not HAS_GEVENT, reason="needs gevent"))],
)
def test_the_exit_is_bounded_and_counts_what_the_hung_send_held(case: Case, threads: str) -> None:
    env = clean_env(SPANBATCH_EXIT_TIMEOUT_MS=str(EXIT_TIMEOUT_MILLIS))
    argv = (str(case.timeout_millis), str(SPANS), str(case.flush_millis), threads)
    try:
        done = run_app(APP, *argv, env=env, timeout=HUNG_SECONDS)
    except subprocess.TimeoutExpired as hung:
        pytest.fail(f"the app had not exited {HUNG_SECONDS:.0f} s after it started: {hung.stdout!r} {hung.stderr!r}")
    exited_at = time.time()
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert f"flushed {case.flushed}" in done.stdout.splitlines(), done.stdout
    main_done = re.search(r"^main done at (\S+)$", done.stdout, re.M)
    assert main_done, (done.stdout, done.stderr)
    seconds = exited_at - float(main_done.group(1))
    assert seconds < EXIT_TIMEOUT_MILLIS / 1000 + SLACK_SECONDS, (seconds, done.stderr)
    reported = ReportedStats(*json.loads(done.stdout.strip().splitlines()[-1]))
    nonzero = {reason: count for reason, count in reported.dropped.items() if count}
    assert (*reported[:4], nonzero) == case.stats, done.stderr
    assert case.said in done.stderr, done.stderr
