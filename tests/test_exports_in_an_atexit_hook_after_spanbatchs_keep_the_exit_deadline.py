"""A provider's shutdown in an atexit hook that runs after spanbatch's last hook waits for the lane's worker within
what is left of ``SPANBATCH_EXIT_TIMEOUT_MS``, as any shutdown at exit: what is still queued at that deadline is
counted (``shutdown``) and told with its true count, and the export under way then counts as in flight."""

from __future__ import annotations

import json
import os
import re

import pytest

from tests.helpers import ReportedStats, balanced
from tests.helpers.apps import clean_env, run_app

pytestmark = [pytest.mark.timeout(90), pytest.mark.skipif(os.name != "posix", reason="POSIX")]

EXIT_LIMIT_SECONDS = 1.0
EXPORT_SECONDS = 0.25
LATE = 20  # 5 s of exports: several times the limit
SLACK_SECONDS = 2.0  # a loaded machine

APP = f"""
import atexit, json, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

class Slow(SpanExporter):
    exported = shutdowns = 0

    def export(self, spans):
        time.sleep({EXPORT_SECONDS})
        Slow.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self):
        Slow.shutdowns += 1

def report():  # registered first: runs last of all
    s = processor.stats()
    print(json.dumps({{"stats": [s.enqueued, s.exported, s.queued, s.in_flight, dict(s.dropped)],
                      "exported": Slow.exported, "shutdowns": Slow.shutdowns, "late_began": late_began,
                      "ended": time.monotonic()}}), flush=True)

atexit.register(report)

def on_exit():
    global late_began
    late_began = time.monotonic()
    tracer = provider.get_tracer("app")
    for i in range({LATE}):
        tracer.start_span("late").end()
    provider.shutdown()

atexit.register(on_exit)  # before spanbatch is imported: runs after spanbatch's last hook
import spanbatch

provider = TracerProvider(shutdown_on_exit=False)
processor = spanbatch.BatchSpanProcessor(Slow(), max_export_batch_size=1)
provider.add_span_processor(processor)
"""


def test_a_later_hooks_shutdown_exports_until_the_exit_deadline_and_tells_the_rest() -> None:
    env = clean_env(SPANBATCH_EXIT_TIMEOUT_MS=str(int(EXIT_LIMIT_SECONDS * 1000)))
    done = run_app(APP, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    stats = ReportedStats(*report["stats"])
    assert balanced(stats), report
    assert (stats.enqueued, stats.queued) == (LATE, 0), report
    assert stats.in_flight <= 1, report  # the export under way at the deadline, still sleeping
    # Some exported (the deadline began at spanbatch's last hook, which had nothing to wait for), not all.
    assert 0 < stats.exported == report["exported"] < LATE, report
    assert stats.dropped_total == stats.dropped["shutdown"] == LATE - stats.exported - stats.in_flight, report
    told = re.findall(r"shutdown deadline passed with the worker still busy .*; dropped (\d+) spans", done.stderr)
    assert told == [str(stats.dropped_total)], done.stderr
    assert report["shutdowns"] == 1, report
    # Not a speed: without the deadline the exports take LATE * EXPORT_SECONDS (5 s).
    assert report["ended"] - report["late_began"] < EXIT_LIMIT_SECONDS + EXPORT_SECONDS + SLACK_SECONDS, report
