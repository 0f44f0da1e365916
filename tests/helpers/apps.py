"""Applications run as child processes on this interpreter: a clean environment, pipes as text, and never left
running by a test that fails."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

# For an app that ends spans into a processor whose export hangs, to be interrupted by Ctrl-C: the processor, its
# exporter (``entered`` once exporting; its shutdowns counted) and SIGINT's default handler, which a suite started in
# the background would not give the child. The app imports ``signal``, ``threading``, ``time``, ``spanbatch`` and the
# SDK's ``SpanExporter`` and ``SpanExportResult`` before it.
INTERRUPTIBLE_APP_PROCESSOR = """
signal.signal(signal.SIGINT, signal.default_int_handler)  # as an interactive program has it

class HangingExporter(SpanExporter):
    def __init__(self):
        self.entered = threading.Event()
        self.shutdowns = 0

    def export(self, spans):
        self.entered.set()
        time.sleep(60)
        return SpanExportResult.SUCCESS

    def shutdown(self):
        self.shutdowns += 1

exporter = HangingExporter()
processor = spanbatch.BatchSpanProcessor(exporter, max_export_batch_size=1, schedule_delay_millis=60_000)
"""


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any ``OTEL_*`` or ``SPANBATCH_*`` variable, then ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SPANBATCH_"))}
    env.update(extra)
    return env


@contextmanager
def started_app(program: str, *args: str, env: Mapping[str, str]) -> Iterator[subprocess.Popen[str]]:
    """``program`` (dedented) running with ``args``, stdin, stdout and stderr piped; killed on the way out if it
    still runs."""
    app = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(program), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(env),
    )
    try:
        yield app
    finally:
        if app.poll() is None:
            app.kill()
        app.wait()


def run_app(program: str, *args: str, env: Mapping[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """``program`` (dedented) run to its end with ``args``, its output captured."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(program), *args],
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=timeout,
        check=False,
    )


def signalled_once_ready(app: subprocess.Popen[str], signum: int = signal.SIGTERM) -> float:
    """Waits for the app's "ready" line, then sends it ``signum``; returns when it was sent (``time.time()``)."""
    assert app.stdout is not None
    line = app.stdout.readline().strip()
    assert line == "ready", line
    sent_at = time.time()
    app.send_signal(signum)
    return sent_at


def go_on(app: subprocess.Popen[str]) -> None:
    """Lets an app waiting on its stdin go on."""
    assert app.stdin is not None
    app.stdin.write("go\n")
    app.stdin.flush()
