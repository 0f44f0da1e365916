"""``SPANBATCH_FLUSH_ON_SIGTERM`` and an application that handles SIGTERM itself: its handling comes first.

A server's graceful drain starts in its SIGTERM handler; a flush of a hanging backend must not hold it up by
the exit limit (the queued spans are flushed beside it). An application that ignores SIGTERM goes on at once
too. A handler installed from C (``signal.getsignal`` answers None: an embedding server's, say) cannot be
called from Python, so spanbatch leaves it in place rather than replace it with the default action.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from spanbatch.testing import OTLPReceiver

from tests.helpers.apps import clean_env, go_on, signalled_once_ready, started_app

pytestmark = [pytest.mark.timeout(90), pytest.mark.skipif(os.name != "posix", reason="POSIX signals")]

EXIT_TIMEOUT_MILLIS = 10_000
# Far less than the exit limit a flush of the hanging backend would take first.
MARGIN_SECONDS = 3.0

APP = """
import signal, sys, time
from opentelemetry.sdk.trace import TracerProvider
from spanbatch import BatchSpanProcessor
from spanbatch.exporter import OTLPSpanExporter

if sys.argv[2] == "handler":
    signal.signal(signal.SIGTERM, lambda signum, frame: print("handled at", repr(time.time()), flush=True))
else:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1]), schedule_delay_millis=60_000)
provider = TracerProvider()
provider.add_span_processor(processor)
provider.get_tracer("app").start_span("before").end()
print("ready", flush=True)
sys.stdin.readline()  # interrupted by the signal: the handlers run first
print("back at", repr(time.time()), flush=True)
sys.stdin.readline()
"""


@pytest.mark.parametrize("previous", ["handler", "ignored"])
def test_the_app_goes_on_at_once_while_a_hanging_backend_is_flushed(previous: str) -> None:
    with OTLPReceiver("http") as rx:
        rx.set_behaviour("hang")
        env = clean_env(SPANBATCH_FLUSH_ON_SIGTERM="true", SPANBATCH_EXIT_TIMEOUT_MS=str(EXIT_TIMEOUT_MILLIS))
        with started_app(APP, rx.endpoint, previous, env=env) as app:
            sent_at = signalled_once_ready(app)
            go_on(app)
            assert app.stdout is not None
            lines = [app.stdout.readline().split() for _ in range(2 if previous == "handler" else 1)]
    if previous == "handler":
        assert lines[0][:2] == ["handled", "at"], lines
        assert float(lines[0][2]) - sent_at < MARGIN_SECONDS, lines
    assert lines[-1][:2] == ["back", "at"], lines
    assert float(lines[-1][2]) - sent_at < MARGIN_SECONDS, lines


# Installed before the interpreter starts, as an embedding server's would be: Python sees it as None.
C_HANDLER = r"""
#include <signal.h>
#include <unistd.h>
static void on_term(int signum) {
    static const char told[] = "C handler ran\n";
    (void)signum;
    write(2, told, sizeof told - 1);
    _exit(7);
}
__attribute__((constructor)) static void install(void) { signal(SIGTERM, on_term); }
"""

C_APP = """
import signal, sys
from spanbatch import BatchSpanProcessor
from spanbatch.exporter import OTLPSpanExporter

print("previous", signal.getsignal(signal.SIGTERM), flush=True)
processors = [
    BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1]), schedule_delay_millis=60_000) for _ in range(3)
]
print("ready", flush=True)
sys.stdin.readline()
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="builds a C signal handler with gcc")
def test_a_handler_installed_from_c_still_handles_sigterm(tmp_path: Path) -> None:
    source = tmp_path / "on_term.c"
    source.write_text(C_HANDLER, encoding="utf-8")
    library = tmp_path / "on_term.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True, timeout=60)
    env = clean_env(SPANBATCH_FLUSH_ON_SIGTERM="true", SPANBATCH_EXIT_TIMEOUT_MS="1000", LD_PRELOAD=str(library))
    with started_app(C_APP, "http://127.0.0.1:9", env=env) as app:
        assert app.stdout is not None
        assert app.stdout.readline().strip() == "previous None"
        signalled_once_ready(app)
        _, err = app.communicate(timeout=30)
    assert app.returncode == 7, err  # the C handler's own exit, not the default action's
    assert "C handler ran" in err
    assert err.count("SPANBATCH_FLUSH_ON_SIGTERM") == 1, err  # told once why there is no flush on SIGTERM
