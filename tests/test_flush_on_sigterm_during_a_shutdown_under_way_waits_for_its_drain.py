"""``SPANBATCH_FLUSH_ON_SIGTERM``: a SIGTERM that lands while a shutdown is already under way (the provider's own, at
exit or asked by the application) waits for that shutdown's drain before the process dies of the signal (revP: the
handler, nested in the main thread's own shutdown wait, found every lane stopping already, waited for none and sent
the signal again at once: 0 of 300 spans delivered, rc -15 within 10 ms, nothing told). Stock dies at once here; the
flag promises that every lane is shut down first."""

from __future__ import annotations

import signal
import subprocess

import pytest
from spanbatch.testing import OTLPReceiver

from tests.helpers.apps import clean_env, started_app

pytestmark = pytest.mark.timeout(60)

# argv: the endpoint, when ("explicit": provider.shutdown() from the main thread; "exit": the provider's atexit hook).
# The exporter takes 150 ms a batch, so the 6 batches queued take about 1 s to drain; SIGTERM comes 0.2 s in.
APP = """
import os, signal, sys, threading, time
from opentelemetry.sdk.trace import TracerProvider
from spanbatch import BatchSpanProcessor
from spanbatch.exporter import OTLPSpanExporter

signal.signal(signal.SIGINT, signal.default_int_handler)

class Slow(OTLPSpanExporter):
    def export(self, spans):
        time.sleep(0.15)
        return super().export(spans)

provider = TracerProvider()
provider.add_span_processor(
    BatchSpanProcessor(Slow(endpoint=sys.argv[1]), max_export_batch_size=50, schedule_delay_millis=60_000)
)
for _ in range(300):
    provider.get_tracer("app").start_span("queued").end()
timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM))
timer.daemon = True  # not joined at exit: it lands in the atexit hooks' shutdown
timer.start()
print("shutting down", flush=True)
if sys.argv[2] == "explicit":
    provider.shutdown()
    time.sleep(5)  # the signal ends the process once the drain is done
"""


@pytest.mark.parametrize("when", ["explicit", "exit"])
def test_the_spans_of_the_shutdown_under_way_are_delivered_before_the_signal_ends_the_process(when: str) -> None:
    with OTLPReceiver("http") as rx:
        with started_app(APP, rx.endpoint, when, env=clean_env(SPANBATCH_FLUSH_ON_SIGTERM="true")) as app:
            try:
                out, err = app.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                app.kill()
                out, err = app.communicate()
        assert app.returncode == -signal.SIGTERM, (out, err)
        assert rx.stats().spans == 300, (out, err)


# 300 spans queued behind an exporter that never returns: a drain that cannot end. The apps below add when the
# signals come.
HUNG = """
import os, signal, threading, time
from opentelemetry.sdk.trace import TracerProvider
from spanbatch import BatchSpanProcessor

signal.signal(signal.SIGINT, signal.default_int_handler)

class Hung:
    def export(self, spans):
        time.sleep(60)
    def shutdown(self):
        pass
    def force_flush(self, timeout_millis=30000):
        return True

provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(Hung(), max_export_batch_size=50, schedule_delay_millis=60_000))
for _ in range(300):
    provider.get_tracer("app").start_span("queued").end()
"""
# SIGTERM during the application's own shutdown: it ends the process at the exit limit.
SIGTERM_IN_SHUTDOWN = """
threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
provider.shutdown()
"""
# SIGTERM during the provider's own shutdown at exit, then Ctrl-C during the wait.
SIGTERM_THEN_CTRL_C_AT_EXIT = """
for delay, signum in ((0.2, signal.SIGTERM), (0.8, signal.SIGINT)):
    timer = threading.Timer(delay, os.kill, (os.getpid(), signum))
    timer.daemon = True  # not joined at exit: both land in the atexit hooks' shutdown
    timer.start()
"""


def ended(program: str, **variables: str) -> tuple[int, str]:
    """``program`` run to its end with the flush on SIGTERM (and ``variables``): its return code and stderr."""
    with started_app(program, env=clean_env(SPANBATCH_FLUSH_ON_SIGTERM="true", **variables)) as app:
        try:
            _out, err = app.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            app.kill()
            _out, err = app.communicate()
    return app.returncode, err


def test_what_the_shutdown_under_way_still_holds_at_the_limit_is_told_before_the_process_dies() -> None:
    returncode, err = ended(HUNG + SIGTERM_IN_SHUTDOWN, SPANBATCH_EXIT_TIMEOUT_MS="1000")
    assert returncode == -signal.SIGTERM, err
    # 50 in the export that hangs, 250 queued behind it: both numbers told (revP: "dropped 0 spans" was all).
    assert "250 spans queued and 50 in flight" in err, err


def test_a_ctrl_c_during_that_wait_ends_it_and_the_process_still_dies_of_the_sigterm() -> None:
    # revQ: the KeyboardInterrupt left the handler before it sent SIGTERM again: rc 0, a clean exit for a supervisor
    # that asked the process to terminate (stock: -15).
    returncode, err = ended(HUNG + SIGTERM_THEN_CTRL_C_AT_EXIT)
    assert returncode == -signal.SIGTERM, err
