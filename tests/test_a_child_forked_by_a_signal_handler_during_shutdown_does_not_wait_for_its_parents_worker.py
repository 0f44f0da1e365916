"""A signal handler that forks may run while the main thread waits in ``shutdown()`` for a worker still in its export
(spanbatch's waits run signal handlers, so that Ctrl-C works). The child goes on in that same wait, for a thread its
process does not have: it must end at once, as a join in a freshly forked child does, not wait out the shutdown's
whole deadline (it did: 20.0 s, the parent's worker done after 1 s; under gevent too), as the flush's and the HTTP
send's waits already end.
"""

from __future__ import annotations

import os

import pytest

from tests.helpers.apps import clean_env, run_app

pytestmark = [pytest.mark.timeout(90), pytest.mark.skipif(os.name != "posix", reason="POSIX signals and fork")]

SHUTDOWN_DEADLINE_SECONDS = 20.0

APP = """
import sys

if sys.argv[2] == "gevent":  # the worker is then a real OS thread started with gevent's saved functions
    from gevent import monkey

    monkey.patch_all()
import os, signal, threading, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from spanbatch import BatchSpanProcessor

exporting = threading.Event()

class SlowExporter(SpanExporter):
    def export(self, spans):
        exporting.set()
        time.sleep(1.0)  # still out when the signal comes
        return SpanExportResult.SUCCESS

processor = BatchSpanProcessor(
    SlowExporter(), schedule_delay_millis=1, export_timeout_millis=float(sys.argv[1]) * 1000
)
provider = TracerProvider()
provider.add_span_processor(processor)
forked = []
signal.signal(signal.SIGUSR1, lambda signum, frame: forked.append(os.fork()))
provider.get_tracer("app").start_span("before").end()
assert exporting.wait(10)
threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1)).start()
started = time.monotonic()
processor.shutdown()
took = time.monotonic() - started
if forked == [0]:
    os.write(1, f"child {took:.3f}\\n".encode())
    os._exit(0)
os.waitpid(forked[0], 0)
print(f"parent {processor.stats().exported}", flush=True)
"""


@pytest.mark.parametrize("threads", ["threading", "gevent"])
def test_the_childs_shutdown_ends_at_once_and_the_parent_exports_its_span(threads: str) -> None:
    if threads == "gevent":
        pytest.importorskip("gevent")
    done = run_app(APP, str(SHUTDOWN_DEADLINE_SECONDS), threads, env=clean_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    told = {words[0]: words[1:] for words in map(str.split, done.stdout.splitlines())}
    assert told["parent"] == ["1"], done.stdout
    # Not a speed: its whole deadline is what it waited before, for a thread it does not have.
    assert float(told["child"][0]) < SHUTDOWN_DEADLINE_SECONDS / 2, done.stdout + done.stderr
