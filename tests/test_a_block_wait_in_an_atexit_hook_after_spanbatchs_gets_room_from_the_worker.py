"""Under ``drop_policy="block"``, an item ended into a full queue in an atexit hook that runs after spanbatch's last
hook waits for room as anywhere else: the lane's worker goes on past that hook and makes it, so every item is
exported. (When that hook retired the worker instead, nothing made room: each wait was the whole block timeout, one
item after the other; measured: 36 items past a queue of 64 held the exit 3.6 s at the default 100 ms.)"""

from __future__ import annotations

import json
import os

import pytest

from tests.helpers import ReportedStats, balanced
from tests.helpers.apps import clean_env, run_app

pytestmark = [pytest.mark.timeout(60), pytest.mark.skipif(os.name != "posix", reason="POSIX")]

APP = """
import atexit, json
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

def late():  # registered before spanbatch is imported: runs after its last hook
    tracer = provider.get_tracer("app")
    for _ in range(LATE):
        tracer.start_span("late").end()
    provider.shutdown()
    s = processor.stats()
    print(json.dumps([s.enqueued, s.exported, s.queued, s.in_flight, dict(s.dropped)]), flush=True)

atexit.register(late)
import spanbatch

class Exporter(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS

provider = TracerProvider(shutdown_on_exit=False)
processor = spanbatch.BatchSpanProcessor(
    Exporter(), max_queue_size=QUEUE, max_export_batch_size=QUEUE, drop_policy="block", block_timeout_millis=60_000
)
provider.add_span_processor(processor)
provider.get_tracer("app").start_span("main").end()
"""

QUEUE, LATE = 4, 10


def test_items_ended_past_a_full_queue_after_spanbatchs_last_hook_wait_for_room_and_are_exported() -> None:
    app = APP.replace("QUEUE", str(QUEUE)).replace("LATE", str(LATE))
    # With no room made, the hook would end these items one block timeout (a minute) each: the run's timeout fails
    # the test first.
    done = run_app(app, env=clean_env(), timeout=30)
    assert done.returncode == 0, done.stderr
    stats = ReportedStats(*json.loads(done.stdout))
    assert balanced(stats), stats
    assert stats[:4] == (1 + LATE, 1 + LATE, 0, 0), stats
    assert stats.dropped_total == 0, stats
    assert "dropped" not in done.stderr, done.stderr
