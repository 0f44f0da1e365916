"""A signal handler that forks (a pre-fork master starting a worker when told to) may run while the main thread
waits in ``force_flush``: spanbatch's waits run signal handlers, so that Ctrl-C works. The child then goes on in
that same wait. What it waited for is its parent's to export: the child never exports the parent's spans, and its
own lane, made at the fork, holds nothing from before the call. So the child's flush ends at once, as a flush
called in a freshly forked child does (it waited out its whole timeout on the parent's core and returned False;
the stock child, which goes on with the export its parent had begun, returns True once that export returns).
"""

from __future__ import annotations

import os

import pytest

from tests.helpers.apps import clean_env, run_app

pytestmark = [pytest.mark.timeout(90), pytest.mark.skipif(os.name != "posix", reason="POSIX signals and fork")]

FLUSH_TIMEOUT_SECONDS = 20.0

APP = """
import os, signal, sys, threading, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from spanbatch import BatchSpanProcessor

class SlowExporter(SpanExporter):
    def export(self, spans):
        time.sleep(1.0)  # still out when the signal comes
        return SpanExportResult.SUCCESS

processor = BatchSpanProcessor(SlowExporter(), schedule_delay_millis=60_000)
provider = TracerProvider()
provider.add_span_processor(processor)
forked = []
signal.signal(signal.SIGUSR1, lambda signum, frame: forked.append(os.fork()))
provider.get_tracer("app").start_span("before").end()
threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1)).start()
started = time.monotonic()
flushed = processor.force_flush(float(sys.argv[1]) * 1000)
took = time.monotonic() - started
if forked == [0]:
    os.write(1, f"child {flushed} {took:.3f}\\n".encode())
    os._exit(0)
os.waitpid(forked[0], 0)
print(f"parent {flushed} {processor.stats().exported}", flush=True)
"""


def test_the_childs_flush_ends_at_once_and_the_parents_exports_its_span() -> None:
    done = run_app(APP, str(FLUSH_TIMEOUT_SECONDS), env=clean_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    told = {words[0]: words[1:] for words in map(str.split, done.stdout.splitlines())}
    assert told["parent"] == ["True", "1"], done.stdout
    flushed, seconds = told["child"]
    assert flushed == "True", done.stdout
    # Not a speed: its whole timeout is what it waited before, for spans it will never export.
    assert float(seconds) < FLUSH_TIMEOUT_SECONDS / 2, done.stdout
