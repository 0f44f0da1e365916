"""A child forked from C (as uWSGI forks: none of Python's fork hooks run) that never ended a span exits cleanly,
leaving its parent's lane as it found it: what that lane holds is the parent's to send.

Found by review (revF30) on CPython 3.12, which starts no thread once exit has begun: such a child noticed the fork
only at exit, tried to give the lane a worker of its own there, and the provider's shutdown died of "can't create new
thread at interpreter shutdown" (a traceback, and the provider's other processors never shut down). Now a lane the
child cannot take over at exit is left alone.
"""

from __future__ import annotations

import pytest

from tests.helpers.apps import clean_env, run_app

pytestmark = [pytest.mark.timeout(60), pytest.mark.alone]  # no other thread may want the GIL at a hookless fork

APP = """
import ctypes, os, sys, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
import spanbatch

class Told(SpanExporter):
    def __init__(self, name):
        self.name = name

    def export(self, spans):
        return SpanExportResult.SUCCESS

    def shutdown(self):
        print(f"{'child' if os.getpid() != parent else 'parent'} shut {self.name} down", flush=True)

parent = os.getpid()
provider = TracerProvider()  # shut down by its atexit hook, in the child too
provider.add_span_processor(spanbatch.BatchSpanProcessor(Told("spanbatch")))
provider.add_span_processor(spanbatch.BatchSpanProcessor(Told("its neighbour")))
with provider.get_tracer("t").start_as_current_span("x"):
    pass
time.sleep(0.2)  # the workers back to their waits, which are detached
pid = int(ctypes.PyDLL(None).fork())
if pid == 0:
    sys.exit(0)  # no span ended here
_, status = os.waitpid(pid, 0)
print("child exit status", os.waitstatus_to_exitcode(status), flush=True)
"""


def test_a_child_forked_from_c_that_ended_no_span_exits_cleanly() -> None:
    done = run_app(APP, env=clean_env(SPANBATCH_EXIT_TIMEOUT_MS="2000"), timeout=50)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stdout.splitlines()
    assert "child exit status 0" in lines, lines
    assert lines.count("parent shut spanbatch down") == lines.count("parent shut its neighbour down") == 1, lines
