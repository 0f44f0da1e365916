"""A provider's shutdown in an atexit hook that runs after spanbatch's last hook waits for the lane's worker to export
what was ended there: an export that never returns must not hold the exit past ``SPANBATCH_EXIT_TIMEOUT_MS``.

Measured at 2ce153b (the export then ran on the exiting thread) with an exporter that sleeps an hour: the exit never
ended (killed after 20 s); the stock processor's shutdown gives up after its 30 s; before (204ec42) the span was
refused and the exit over in 0.2 s."""

from __future__ import annotations

import os

import pytest

from tests.helpers.apps import clean_env, run_app

pytestmark = [pytest.mark.timeout(60), pytest.mark.skipif(os.name != "posix", reason="POSIX")]

APP = """
import atexit, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

def late():  # registered before spanbatch is imported: runs after its last hook
    provider.get_tracer("app").start_span("late").end()
    provider.shutdown()
    print("shut down", flush=True)

atexit.register(late)
import spanbatch

class Hanging(SpanExporter):  # a backend that never answers, behind a client without a timeout of its own
    def export(self, spans):
        time.sleep(3600)
        return SpanExportResult.SUCCESS

provider = TracerProvider(shutdown_on_exit=False)
provider.add_span_processor(spanbatch.BatchSpanProcessor(Hanging()))
"""


def test_a_later_hooks_shutdown_behind_a_hung_export_ends_the_exit_by_its_limit() -> None:
    # A 1 s limit; the run's 20 s timeout tells a hang from a slow machine.
    done = run_app(APP, env=clean_env(SPANBATCH_EXIT_TIMEOUT_MS="1000"), timeout=20)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "shut down\n", done.stderr
