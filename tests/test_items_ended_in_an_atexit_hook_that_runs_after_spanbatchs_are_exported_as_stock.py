"""Spans (and log records) ended in an application's atexit hook that runs after spanbatch's last hook (one
registered before spanbatch was imported) reach the backend when their provider is shut down after them, as with
the stock processors.

Two real orders where the provider's shutdown runs after that hook: a provider made with ``shutdown_on_exit=False``
that the application shuts down in its own hook, and a provider made (with its atexit hook) before the hook and
before spanbatch is imported (a framework sets the provider up; a plugin adds spanbatch's processor later).
spanbatch's last hook shut every lane down first, so these items were refused (counted ``shutdown``, the drop
warning telling of 1 where 5 were dropped): 10 of 15 received, in both orders. The stock processors: all 15.
"""

from __future__ import annotations

import json
import os

import pytest
from spanbatch.testing import OTLPReceiver

from tests.helpers import ReportedStats, balanced
from tests.helpers.apps import clean_env, run_app

pytestmark = [pytest.mark.timeout(90), pytest.mark.skipif(os.name != "posix", reason="POSIX")]

APP = """
import atexit, json, sys

kind, endpoint, order = sys.argv[1:4]

def report():  # registered first: runs last of all, after every shutdown
    s = processor.stats()
    print(json.dumps([s.enqueued, s.exported, s.queued, s.in_flight, dict(s.dropped)]), flush=True)

atexit.register(report)

if kind == "spans":
    from opentelemetry.sdk.trace import TracerProvider as Provider

    def end(name, count):
        tracer = provider.get_tracer("app")
        for i in range(count):
            tracer.start_span(name).end()
else:
    from opentelemetry._logs import LogRecord
    from opentelemetry.sdk._logs import LoggerProvider as Provider

    def end(name, count):
        logger = provider.get_logger("app")
        for i in range(count):
            logger.emit(LogRecord(body=name))

if order == "provider-first":
    provider = Provider()  # its atexit hook runs after the app's

def on_exit():
    end("at-exit", 5)
    if order == "app-shuts-down":
        provider.shutdown()

atexit.register(on_exit)  # before spanbatch is imported: runs after spanbatch's last hook
import spanbatch
from spanbatch.exporter import OTLPLogExporter, OTLPSpanExporter

if order == "app-shuts-down":
    provider = Provider(shutdown_on_exit=False)
if kind == "spans":
    processor = spanbatch.BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint))
    provider.add_span_processor(processor)
else:
    processor = spanbatch.BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint))
    provider.add_log_record_processor(processor)
end("main", 10)
"""


@pytest.mark.parametrize("order", ["app-shuts-down", "provider-first"])
@pytest.mark.parametrize("kind", ["spans", "logs"])
def test_items_ended_in_a_later_atexit_hook_are_exported(kind: str, order: str) -> None:
    with OTLPReceiver("http") as rx:
        endpoint = rx.endpoint if kind == "spans" else rx.log_endpoint
        done = run_app(APP, kind, endpoint, order, env=clean_env(), timeout=60)
        assert done.returncode == 0, done.stderr
        received = rx.span_names if kind == "spans" else rx.log_bodies
        assert rx.wait_for(lambda stats: stats.spans + stats.log_records >= 15, timeout=5), (received(), done.stderr)
        assert received() == {"main": 10, "at-exit": 5}, done.stderr
    stats = ReportedStats(*json.loads(done.stdout.strip().splitlines()[-1]))
    assert balanced(stats), stats
    assert (stats.enqueued, stats.exported, stats.queued, stats.in_flight, stats.dropped_total) == (15, 15, 0, 0, 0)
    assert "dropped" not in done.stderr, done.stderr
