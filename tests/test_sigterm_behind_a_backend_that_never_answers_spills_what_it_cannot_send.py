"""``SPANBATCH_FLUSH_ON_SIGTERM`` with a spill directory and a backend that takes the connection but never answers.

Under SIGTERM's default action spanbatch shuts every lane down within the exit limit, then the process dies of the
signal: an exit like the one at the end of the program (``tests/reliability/test_spill_at_exit_behind_a_backend_that_
never_answers.py``), and what cannot be sent within the limit goes to disk in the same way, not dropped.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from spanbatch.testing import OTLPReceiver

from tests.helpers.apps import clean_env, signalled_once_ready, started_app
from tests.helpers.spill import on_disk, span_names

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(os.name != "posix", reason="POSIX signals"),
]

SPANS = 1000  # two full batches: the first in flight to the backend, the rest queued behind it

# argv: the protocol, the endpoint, the spill directory. The exporter's own timeout (10 s) outlasts the exit limit.
APP = f"""
import sys
import spanbatch
from opentelemetry.sdk.trace import TracerProvider
protocol, endpoint, spill = sys.argv[1:]
if protocol == "http":
    from spanbatch.exporter import OTLPSpanExporter
    exporter = OTLPSpanExporter(endpoint=endpoint, spill_dir=spill)
else:
    from spanbatch.exporter.grpc import OTLPSpanExporter
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True, spill_dir=spill)
provider = TracerProvider()
provider.add_span_processor(spanbatch.BatchSpanProcessor(exporter))
tracer = provider.get_tracer("app")
for i in range({SPANS}):
    tracer.start_span(f"s{{i}}").end()
print("ready", flush=True)
sys.stdin.readline()  # until SIGTERM ends the process
"""


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_every_span_is_on_disk_when_sigterm_ends_the_process(protocol: str, tmp_path: Path) -> None:
    env = clean_env(SPANBATCH_FLUSH_ON_SIGTERM="true", SPANBATCH_EXIT_TIMEOUT_MS="1000")
    with OTLPReceiver(protocol) as rx:
        rx.set_behaviour("hang")
        with started_app(APP, protocol, rx.endpoint, str(tmp_path), env=env) as app:
            signalled_once_ready(app)
            _, err = app.communicate(timeout=30)
        rx.set_behaviour("ok")
    assert app.returncode == -signal.SIGTERM, err
    assert "dropped" not in err
    assert sorted(on_disk(tmp_path, span_names)) == sorted(f"s{i}" for i in range(SPANS)), err
