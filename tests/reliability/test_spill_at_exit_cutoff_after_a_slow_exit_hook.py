"""Exit with a spill directory and a backend that answers, after an application's own exit hook took a while.

The exit limit bounds spanbatch's waits, from the first shutdown on, not the application's own work (``_exit``): a
hook that runs before the provider's shuts nothing down, and leaves the exit its whole limit. The cut-off that ends a
spilling exporter's sends at exit must keep to that limit too: spans ended in such a hook go to a backend that
answers, not to disk for a next process that may never come.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from spanbatch.testing import OTLPReceiver

from tests.helpers.apps import clean_env, run_app
from tests.helpers.spill import spill_files

pytestmark = pytest.mark.timeout(60)

SPANS = 10
FULL_BATCH = 600  # over the default max_export_batch_size (512): the worker sends a batch at once, during the hook
EXIT_TIMEOUT_MILLIS = 1000  # short, for a short test: the hook below outlasts four fifths of it

# argv: the protocol, the endpoint, the spill directory, how many spans the hook ends.
APP = f"""
import atexit, json, sys, time
protocol, endpoint, spill, spans = sys.argv[1:]
from opentelemetry.sdk.trace import TracerProvider
from spanbatch import BatchSpanProcessor
if protocol == "http":
    from spanbatch.exporter import OTLPSpanExporter
    exporter = OTLPSpanExporter(endpoint=endpoint, spill_dir=spill)
else:
    from spanbatch.exporter.grpc import OTLPSpanExporter
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True, spill_dir=spill)
processor = BatchSpanProcessor(exporter)

def report():  # registered before the provider's hook, so it runs after it: the stats after shutdown
    s = processor.stats()
    print(json.dumps({{"exported": s.exported, "spilled": s.spilled}}), flush=True)

atexit.register(report)
provider = TracerProvider()
provider.add_span_processor(processor)
tracer = provider.get_tracer("app")

def closing_work():  # registered after the provider's hook, so it runs before it
    time.sleep(1.2 * {EXIT_TIMEOUT_MILLIS} / 1000)  # the application's own work at exit (closing its resources)
    for i in range(int(spans)):
        tracer.start_span(f"closing-{{i}}").end()
    time.sleep(0.5)  # more work: a full batch is sent meanwhile, before any shutdown

atexit.register(closing_work)
"""


# The full batch is sent by the worker before the provider's shutdown sets the exit deadline.
@pytest.mark.parametrize("spans", [SPANS, FULL_BATCH])
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_spans_ended_in_a_slow_exit_hook_reach_a_backend_that_answers(
    protocol: str, spans: int, tmp_path: Path
) -> None:
    with OTLPReceiver(protocol) as rx:
        env = clean_env(SPANBATCH_EXIT_TIMEOUT_MS=str(EXIT_TIMEOUT_MILLIS))
        app = run_app(APP, protocol, rx.endpoint, str(tmp_path), str(spans), env=env, timeout=30)
        assert app.returncode == 0, app.stderr
        report = json.loads(app.stdout.strip().splitlines()[-1])
        assert report == {"exported": spans, "spilled": 0}, app.stderr
        assert rx.span_names() == {f"closing-{i}": 1 for i in range(spans)}
    assert spill_files(tmp_path) == []


# The hook forks once its work is done: the child, exiting too, runs the provider's hook with an exit deadline of its
# own (``_exit``), and sends what it ended as its parent does. Both print their stats.
FORKING_APP = APP.replace(
    "atexit.register(closing_work)",
    f"""
def forking_work():
    time.sleep(1.2 * {EXIT_TIMEOUT_MILLIS} / 1000)
    child = os.fork()
    for i in range(int(spans)):
        tracer.start_span(f"{{'child' if child == 0 else 'parent'}}-{{i}}").end()
    if child:
        os.waitpid(child, 0)

atexit.register(forking_work)
""",
).replace("import atexit, json, sys, time", "import atexit, json, os, sys, time")


@pytest.mark.skipif(sys.version_info[:2] == (3, 12), reason="CPython 3.12 forks no child once exit has begun")
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_child_forked_by_a_slow_exit_hook_sends_to_a_backend_that_answers(protocol: str, tmp_path: Path) -> None:
    with OTLPReceiver(protocol) as rx:
        env = clean_env(SPANBATCH_EXIT_TIMEOUT_MS=str(EXIT_TIMEOUT_MILLIS))
        app = run_app(FORKING_APP, protocol, rx.endpoint, str(tmp_path), str(SPANS), env=env, timeout=30)
        assert app.returncode == 0, app.stderr
        reports = [json.loads(line) for line in app.stdout.strip().splitlines()]
        assert reports == [{"exported": SPANS, "spilled": 0}] * 2, app.stderr
        assert rx.span_names() == {f"{who}-{i}": 1 for who in ("child", "parent") for i in range(SPANS)}
    assert spill_files(tmp_path) == []
