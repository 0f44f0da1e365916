"""``SPANBATCH_FLUSH_ON_SIGTERM`` with processors made off the main thread (a framework's worker thread sets the
tracing up): only the main thread can install a signal handler, so the first processor made on it installs it. The
warning says so once, and stays true when a later processor does install it.
"""

from __future__ import annotations

import pytest

from tests.helpers.apps import clean_env, run_app

pytestmark = pytest.mark.timeout(60)

APP = """
import signal, threading
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
import spanbatch

def make():
    spanbatch.BatchSpanProcessor(ConsoleSpanExporter()).shutdown()

for _ in range(3):
    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
print("off the main thread:", signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, flush=True)
make()
print("installed from the main thread:", signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL, flush=True)
"""


def test_processors_made_off_the_main_thread_warn_once_and_truly() -> None:
    done = run_app(APP, env=clean_env(SPANBATCH_FLUSH_ON_SIGTERM="true"), timeout=45)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["off the main thread: True", "installed from the main thread: True"]
    told = [line for line in done.stderr.splitlines() if "SPANBATCH_FLUSH_ON_SIGTERM" in line]
    assert len(told) == 1, done.stderr
    assert "not installed" not in told[0], told  # it was, by the processor made on the main thread
    assert "main thread" in told[0], told
