"""Under gevent, a real OS thread's wait in spanbatch (a flush's) pauses with ``gevent.sleep``, called from native code.
Paused so when the interpreter finalizes, CPython ended it from in there, through spanbatch's frames: SIGSEGV or SIGABRT
(rc 139 or 134, every run on 3.10 to 3.13), where the stock processor's flush exits cleanly. Once spanbatch's last
atexit hook has run, such a thread waits without the GIL instead of pausing (and PyO3 hangs it if it takes the GIL back
while the interpreter finalizes)."""

from __future__ import annotations

import pytest

from tests.helpers.apps import clean_env, run_app

pytestmark = pytest.mark.timeout(120)

# Real daemon OS threads keep flushing a lane that spanbatch's last hook drains and leaves open (nobody shuts it down),
# whose export takes 20 ms: they wait for it by pausing, through the exit.
APP = """
from gevent import monkey

monkey.patch_all()
import spanbatch
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

blocking_sleep = monkey.get_original("time", "sleep")


class Slow(SpanExporter):
    def export(self, spans):
        blocking_sleep(0.02)
        return SpanExportResult.SUCCESS


provider = TracerProvider(shutdown_on_exit=False)
provider.add_span_processor(spanbatch.BatchSpanProcessor(Slow()))
tracer = provider.get_tracer("t")


def flush():
    while True:
        tracer.start_span("s").end()
        provider.force_flush(60_000)


for _ in range(4):
    monkey.get_original("_thread", "start_new_thread")(flush, ())
blocking_sleep(0.3)
"""


def test_a_real_thread_pausing_in_a_flush_under_gevent_at_exit_never_crashes_it() -> None:
    pytest.importorskip("gevent")
    for run in range(2):
        done = run_app(APP, env=clean_env(), timeout=60)
        assert done.returncode == 0, (run, done.returncode, done.stderr[-2000:])
