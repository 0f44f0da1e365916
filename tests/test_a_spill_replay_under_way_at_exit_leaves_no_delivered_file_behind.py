"""A spill replay under way when the process exits ends with the file it is sending: one the backend took is not
left on disk for the next process to send again.

The replay thread is the exporter's. A processor nothing shuts down (its provider made with
``shutdown_on_exit=False``, or none) used to have its exporter shut down by spanbatch's last atexit hook, which
stopped the replay after the file in flight and waited for it. Since that hook leaves such exporters open, the replay
went on through the exit: the interpreter finalized with a request sent and its answer unread, the backend had it,
and the file stayed on disk (measured: the one request received, the one file left; 2 of 6 unslowed runs of 400
files left one so).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.apps import clean_env, run_app
from tests.helpers.receivers import serve_http
from tests.helpers.spill import spill_files

pytestmark = [pytest.mark.timeout(60), pytest.mark.skipif(os.name != "posix", reason="POSIX")]

APP = """
import sys, time
from pathlib import Path
from opentelemetry.sdk.trace import TracerProvider
import spanbatch
from spanbatch._spill import SpillStore
from spanbatch.exporter import OTLPSpanExporter
from spanbatch.exporter._spilling import backend_directory

endpoint, root = sys.argv[1], Path(sys.argv[2])
# A request an earlier process spilled: the exporter replays it as soon as it is made.
SpillStore(backend_directory(root, "http", endpoint), 1 << 20).write(b"stored request", 1)
provider = TracerProvider(shutdown_on_exit=False)  # never shut down: spanbatch's exit is all there is
provider.add_span_processor(spanbatch.BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, spill_dir=root)))
time.sleep(0.2)  # the replay's request is with the backend, which answers it ANSWER_AFTER s after it came
"""

ANSWER_AFTER = 0.6


def test_a_replay_under_way_at_exit_leaves_no_file_the_backend_took(tmp_path: Path) -> None:
    with serve_http() as collector:
        collector.delay = ANSWER_AFTER
        done = run_app(APP, collector.endpoint, str(tmp_path), env=clean_env(), timeout=30)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        replays = [request for request in collector.received if request.body == b"stored request"]
    assert len(replays) == 1, done.stderr  # sent once before the exit began
    # It was answered (and the file deleted) before the process ended, as at any exit that shut the exporter down.
    assert spill_files(tmp_path) == [], "a file the backend took is left for the next process to send again"
