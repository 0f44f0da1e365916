"""``SPANBATCH_FLUSH_ON_SIGTERM`` and an application that handles SIGTERM itself (gunicorn's workers, celery's
warm shutdown: finish the request in hand, then exit) or ignores it. The spans queued when the signal comes
are sent at once; the spans of the drain that follows reach the backend too, as they would at exit without
spanbatch's handler, instead of being dropped (``shutdown``) by lanes shut down under the application's feet.
Under the default action (the process dies of it) every lane is still shut down first: see
``tests/reliability/test_pipeline_otlp.py::test_sigterm_flushes_every_backend_then_terminates``.
"""

from __future__ import annotations

import os

import pytest
from spanbatch.testing import OTLPReceiver

from tests.helpers.apps import clean_env, go_on, signalled_once_ready, started_app

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(os.name != "posix", reason="POSIX signals"),
]

# The application's own SIGTERM handling is in place before spanbatch's, as in a gunicorn worker (its
# handlers are set before the app is loaded). The schedule delay is long: only a flush sends "before".
APP = """
import os, signal, sys, time
from opentelemetry.sdk.trace import TracerProvider
from spanbatch import BatchSpanProcessor
from spanbatch.exporter import OTLPSpanExporter

told = []
if sys.argv[2] == "handler":
    signal.signal(signal.SIGTERM, lambda signum, frame: told.append(signum))
else:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1]), schedule_delay_millis=60_000)
provider = TracerProvider()
provider.add_span_processor(processor)
provider.get_tracer("app").start_span("before").end()
print("ready", flush=True)
sys.stdin.readline()  # the test has sent SIGTERM and seen what arrived
provider.get_tracer("app").start_span("drain").end()
provider.shutdown()
stats = processor.stats()
print(f"told={told} exported={stats.exported} shutdown_drops={stats.dropped['shutdown']}", flush=True)
"""


@pytest.mark.parametrize("previous", ["handler", "ignored"])
def test_spans_ended_after_sigterm_by_an_app_that_does_not_die_of_it_are_exported(previous: str) -> None:
    with OTLPReceiver("http") as rx:
        with started_app(APP, rx.endpoint, previous, env=clean_env(SPANBATCH_FLUSH_ON_SIGTERM="true")) as app:
            signalled_once_ready(app)
            # The handler runs when the main thread next runs Python: its readline is interrupted for it.
            assert rx.wait_for_spans(1, timeout=10), "SIGTERM did not flush the queued span"
            go_on(app)
            out, _ = app.communicate(timeout=30)
        assert app.returncode == 0
        told = "[15]" if previous == "handler" else "[]"
        assert out.strip() == f"told={told} exported=2 shutdown_drops=0"
        assert rx.span_names() == {"before": 1, "drain": 1}
