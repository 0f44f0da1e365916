"""``SPANBATCH_FLUSH_ON_SIGTERM`` under SIGTERM's default action: every lane is shut down, then the process dies of
the signal. PID 1 of a PID namespace (a container run without an init) ignores the default action of a signal it
sends itself: it would go on, every lane shut down and its spans dropped. It exits instead, as a shell reports a
death by SIGTERM (128 + 15), once its spans are sent.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from spanbatch.testing import OTLPReceiver

from tests.helpers.apps import clean_env

pytestmark = pytest.mark.timeout(60)

# argv: the endpoint. spanbatch's handler, run by the main thread between two of its sleeps, puts the default action
# back before it sends the signal again: the main thread goes on past the loop only if the handler returned.
APP = """
import os, signal, sys, time
from opentelemetry.sdk.trace import TracerProvider
from spanbatch import BatchSpanProcessor
from spanbatch.exporter import OTLPSpanExporter

provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1]), schedule_delay_millis=60_000))
for _ in range(5):
    provider.get_tracer("app").start_span("before").end()
print(f"ready pid={os.getpid()}", flush=True)
while signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
    time.sleep(0.01)
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
def test_pid_1_of_a_pid_namespace_exits_with_the_status_of_a_death_by_sigterm_after_the_flush() -> None:
    with OTLPReceiver("http") as rx:
        app = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--kill-child", sys.executable, "-c", textwrap.dedent(APP), rx.endpoint],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(SPANBATCH_FLUSH_ON_SIGTERM="true"),
        )
        try:
            assert app.stdout is not None
            assert app.stdout.readline().strip() == "ready pid=1"
            os.kill(_only_child(app.pid), signal.SIGTERM)
            out, err = app.communicate(timeout=30)
        finally:
            if app.poll() is None:
                app.kill()
            app.wait()
        assert "lived on" not in out, err
        assert app.returncode == 128 + 15, err
        assert rx.span_names() == {"before": 5}
