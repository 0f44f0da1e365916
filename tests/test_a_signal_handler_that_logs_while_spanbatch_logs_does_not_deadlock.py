"""A signal handler that logs one of spanbatch's lines, landing while the main thread logs one (``own_lines``
books the lines a root ``LoggingHandler`` hands back to log lanes), goes on: the registry of those lanes is taken
again by the same thread, and a lock that is not reentrant there would wait for itself for ever."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.helpers.apps import clean_env

pytestmark = pytest.mark.timeout(60)

# SIGUSR1 every 0.2 ms for about 2 s, from another process, while the main thread books lines over and over.
APP = """
import faulthandler, logging, os, signal, subprocess, sys, time
from opentelemetry.sdk._logs.export import ConsoleLogExporter
from spanbatch import BatchLogRecordProcessor
from spanbatch._own_lines import own_lines
from spanbatch._safe_log import logged

faulthandler.dump_traceback_later(20, exit=True)
processors = [BatchLogRecordProcessor(ConsoleLogExporter()) for _ in range(20)]
handled = 0

def handler(*_):
    global handled
    handled += 1
    logged(logging.getLogger("spanbatch").debug, "a line from a signal handler")

signal.signal(signal.SIGUSR1, handler)
storm = subprocess.Popen([sys.executable, "-c", (
    "import os, signal, time\\n"
    f"for _ in range(10000):\\n    os.kill({os.getpid()}, signal.SIGUSR1); time.sleep(0.0002)"
)])
deadline = time.monotonic() + 10
while storm.poll() is None and time.monotonic() < deadline:
    with own_lines():
        pass
storm.wait()
print(f"went on, {handled} signals handled", flush=True)
"""


def test_a_signal_handler_that_logs_while_spanbatch_logs_does_not_deadlock() -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(APP)],
        capture_output=True,
        text=True,
        timeout=50,
        env=clean_env(),
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "went on" in done.stdout
