"""``SPANBATCH_FLUSH_ON_SIGTERM`` and an application (or library) that installs its SIGTERM handler after
spanbatch's and chains to the handler it replaced, as handlers commonly do (``if callable(previous):
previous(signum, frame)``), then goes on with its own exit. Without spanbatch the previous handler is the
default action, which is not callable: the application is never killed from inside its own handler. spanbatch's
handler, called so, must not take the default action itself (it did: the process died of SIGTERM inside the
application's handler, which never went on to its own exit, nor its ``finally`` blocks and atexit hooks); it
flushes beside the application, whose exit then shuts the lanes down as usual.
"""

from __future__ import annotations

import os

import pytest
from spanbatch.testing import OTLPReceiver

from tests.helpers.apps import clean_env, signalled_once_ready, started_app

pytestmark = [pytest.mark.timeout(90), pytest.mark.skipif(os.name != "posix", reason="POSIX signals")]

APP = """
import atexit, signal, sys
from opentelemetry.sdk.trace import TracerProvider
from spanbatch import BatchSpanProcessor
from spanbatch.exporter import OTLPSpanExporter

processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1]), schedule_delay_millis=60_000)
provider = TracerProvider()
provider.add_span_processor(processor)
tracer = provider.get_tracer("app")
previous = signal.getsignal(signal.SIGTERM)

def on_sigterm(signum, frame):
    if callable(previous):
        previous(signum, frame)
    tracer.start_span("drain").end()
    sys.exit(0)

signal.signal(signal.SIGTERM, on_sigterm)
atexit.register(lambda: print("app's atexit hook ran", flush=True))
tracer.start_span("before").end()
try:
    print("ready", flush=True)  # inside: the signal may come before the readline
    sys.stdin.readline()  # interrupted by the signal
finally:
    print("app's finally ran", flush=True)
"""


def test_a_later_handler_that_chains_to_spanbatchs_goes_on_to_its_own_exit() -> None:
    with OTLPReceiver("http") as rx:
        with started_app(APP, rx.endpoint, env=clean_env(SPANBATCH_FLUSH_ON_SIGTERM="true")) as app:
            signalled_once_ready(app)
            out, err = app.communicate(timeout=30)
        assert (app.returncode, out.splitlines()) == (0, ["app's finally ran", "app's atexit hook ran"]), err
        assert rx.span_names() == {"before": 1, "drain": 1}
