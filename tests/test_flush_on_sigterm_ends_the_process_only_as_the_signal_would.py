"""``SPANBATCH_FLUSH_ON_SIGTERM`` under SIGTERM's default action: every lane is shut down, then the signal is sent
again and acts as it would have without spanbatch, no more and no less.

- PID 1 of a PID namespace (a container run without an init) is not ended by the default action: the application
  goes on, as without spanbatch, its lanes open, what was queued flushed beside it.
- A SIGTERM the main thread blocks (a critical section) ends the process once it is unblocked, by the signal.
- An application handler installed while spanbatch's shutdown runs on a thread of its own gets the signal once.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from spanbatch.testing import OTLPReceiver

from tests.helpers.apps import clean_env, started_app

pytestmark = pytest.mark.timeout(60)

# argv: the endpoint. Its spans wait for a flush (a minute's delay); "after" ones are ended once the test says so.
PID_1_APP = """
import os, sys
from opentelemetry.sdk.trace import TracerProvider
from spanbatch import BatchSpanProcessor
from spanbatch.exporter import OTLPSpanExporter

provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1]), schedule_delay_millis=60_000))
for _ in range(5):
    provider.get_tracer("app").start_span("before").end()
print(f"ready pid={os.getpid()}", flush=True)
sys.stdin.readline()
for _ in range(5):
    provider.get_tracer("app").start_span("after").end()
print("lived on", flush=True)
"""


@pytest.fixture
def pid_namespaces() -> None:
    """Skips unless this process may run a program in a PID namespace of its own (root, or user namespaces)."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        pytest.skip("needs unshare (Linux)")
    try:
        tried = subprocess.run(
            ["unshare", "--pid", "--fork", "true"], check=False, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"unshare --pid: {error}")
    if tried.returncode != 0:
        pytest.skip(f"unshare --pid is not permitted here: {tried.stderr.strip()}")


def _only_child(pid: int) -> int:
    """The one child of process ``pid`` (its id in this namespace)."""
    (child,) = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(child)


@pytest.mark.usefixtures("pid_namespaces")
def test_pid_1_of_a_pid_namespace_goes_on_as_without_spanbatch_its_spans_flushed() -> None:
    with OTLPReceiver("http") as rx:
        app = subprocess.Popen(
            [
                "unshare", "--pid", "--fork", "--kill-child",
                sys.executable, "-c", textwrap.dedent(PID_1_APP), rx.endpoint,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(SPANBATCH_FLUSH_ON_SIGTERM="true"),
        )  # fmt: skip
        try:
            assert app.stdout is not None
            assert app.stdin is not None
            assert app.stdout.readline().strip() == "ready pid=1"
            os.kill(_only_child(app.pid), signal.SIGTERM)
            # Flushed at the signal: nothing else sends them within the minute's delay.
            deadline = time.monotonic() + 20
            while rx.span_names() != {"before": 5} and time.monotonic() < deadline and app.poll() is None:
                time.sleep(0.05)
            if app.poll() is None:
                app.stdin.write("go on\n")
                app.stdin.flush()
            out, err = app.communicate(timeout=30)
        finally:
            if app.poll() is None:
                app.kill()
            app.wait()
        assert "lived on" in out, err
        assert app.returncode == 0, err
        assert rx.span_names() == {"before": 5, "after": 5}


# argv: the endpoint. The main thread blocks SIGTERM around a section it must finish; spanbatch's handler runs there
# all the same (another thread took the signal for Python), and puts the default action back.
BLOCKING_APP = """
import signal, sys, time
from opentelemetry.sdk.trace import TracerProvider
from spanbatch import BatchSpanProcessor
from spanbatch.exporter import OTLPSpanExporter

provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1]), schedule_delay_millis=60_000))
for _ in range(5):
    provider.get_tracer("app").start_span("before").end()
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
print("section begins", flush=True)
deadline = time.monotonic() + 20
while signal.getsignal(signal.SIGTERM) != signal.SIG_DFL and time.monotonic() < deadline:
    time.sleep(0.01)
print("section done", flush=True)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
print("lived on", flush=True)
"""


def test_a_sigterm_the_main_thread_blocks_ends_the_process_once_unblocked() -> None:
    with (
        OTLPReceiver("http") as rx,
        started_app(BLOCKING_APP, rx.endpoint, env=clean_env(SPANBATCH_FLUSH_ON_SIGTERM="true")) as app,
    ):
        assert app.stdout is not None
        assert app.stdout.readline().strip() == "section begins"
        app.send_signal(signal.SIGTERM)
        out, err = app.communicate(timeout=30)
        assert "section done" in out, err
        assert "lived on" not in out, err
        assert app.returncode == -signal.SIGTERM, err
        assert rx.span_names() == {"before": 5}


# argv: the endpoint. SIGTERM lands while the main thread holds a logging handler's lock, so spanbatch shuts down on
# a thread of its own; the main thread meanwhile installs the application's handler, which exits with 3.
HANDLER_MEANWHILE_APP = """
import logging, signal, sys, time
from opentelemetry.sdk.trace import TracerProvider
from spanbatch import BatchSpanProcessor
from spanbatch.exporter import OTLPSpanExporter

class Slow(logging.Handler):
    told = False

    def emit(self, record):
        if not Slow.told:
            Slow.told = True
            print("logging", flush=True)
        time.sleep(0.2)

logging.getLogger("app").addHandler(Slow())
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1]), schedule_delay_millis=60_000))
for _ in range(5):
    provider.get_tracer("app").start_span("before").end()
print("ready", flush=True)
deadline = time.monotonic() + 20
while signal.getsignal(signal.SIGTERM) != signal.SIG_DFL and time.monotonic() < deadline:
    logging.getLogger("app").warning("busy")

def handler(signum, frame):
    print("the application handled it", flush=True)
    sys.exit(3)

signal.signal(signal.SIGTERM, handler)
time.sleep(20)
print("lived on", flush=True)
"""


def test_an_application_handler_installed_while_the_shutdown_runs_gets_the_signal_once() -> None:
    with OTLPReceiver("http") as rx:
        rx.set_behaviour("status", status=503, retry_after=1, times=1)  # the shutdown takes a second
        with started_app(HANDLER_MEANWHILE_APP, rx.endpoint, env=clean_env(SPANBATCH_FLUSH_ON_SIGTERM="true")) as app:
            assert app.stdout is not None
            assert app.stdout.readline().strip() == "ready"
            assert app.stdout.readline().strip() == "logging"
            app.send_signal(signal.SIGTERM)
            out, err = app.communicate(timeout=30)
        assert out.splitlines().count("the application handled it") == 1, (out, err)
        assert "Exception ignored" not in err, err
        assert app.returncode == 3, err
        assert rx.span_names() == {"before": 5}
