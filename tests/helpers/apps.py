"""Applications run as child processes on this interpreter: a clean environment, pipes as text, and never left
running by a test that fails."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


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
