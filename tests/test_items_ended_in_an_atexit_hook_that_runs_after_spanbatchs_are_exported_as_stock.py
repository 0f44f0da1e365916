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
import signal
from typing import NamedTuple

import pytest
from spanbatch.testing import OTLPReceiver

from tests.helpers import ReportedStats, balanced
from tests.helpers.apps import clean_env, run_app

pytestmark = [pytest.mark.timeout(90), pytest.mark.skipif(os.name != "posix", reason="POSIX")]

APP = """
import atexit, json, os, signal, sys, threading

kind, endpoint, order, where = sys.argv[1:5]

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

# After spanbatch's last hook, daemon threads (started now: 3.12 starts none at exit) end items, or flush.
exit_began, ended, flush_now, flushed = threading.Event(), threading.Event(), threading.Event(), threading.Event()

def end_on_a_thread():
    exit_began.wait()
    end("at-exit", LATE)
    ended.set()

def flush_on_a_thread():
    flush_now.wait()
    print("flushed on another thread:", provider.force_flush(), flush=True)
    flushed.set()

threading.Thread(target=end_on_a_thread, daemon=True).start()
threading.Thread(target=flush_on_a_thread, daemon=True).start()

def on_exit():
    if where == "thread":
        exit_began.set()
        ended.wait(10)
    else:
        end("at-exit", LATE)
    if where == "flushed-elsewhere":
        flush_now.set()
        flushed.wait(2)
    if order == "app-shuts-down":
        provider.shutdown()
    elif order == "app-flushes":
        print("flushed:", provider.force_flush(), flush=True)
    elif order == "sigterm":
        os.kill(os.getpid(), signal.SIGTERM)  # SPANBATCH_FLUSH_ON_SIGTERM: every lane shut down, then the process dies

atexit.register(on_exit)  # before spanbatch is imported: runs after spanbatch's last hook
import spanbatch
from spanbatch.exporter import OTLPLogExporter, OTLPSpanExporter

class Told:  # says when it is shut down
    def shutdown(self):
        print("exporter shut down", flush=True)
        super().shutdown()

if order != "provider-first":
    provider = Provider(shutdown_on_exit=False)
if kind == "spans":
    processor = spanbatch.BatchSpanProcessor(type("Exporter", (Told, OTLPSpanExporter), {})(endpoint=endpoint))
    provider.add_span_processor(processor)
else:
    processor = spanbatch.BatchLogRecordProcessor(type("Exporter", (Told, OTLPLogExporter), {})(endpoint=endpoint))
    provider.add_log_record_processor(processor)
end("main", 10)
"""


LATE = 40  # more than a read-ahead chunk (32): a thread that ends them reads them ahead where it may


class Run(NamedTuple):
    received: dict[str, int]
    stats: ReportedStats
    printed: list[str]  # before the stats
    stderr: str


def run(kind: str, order: str, where: str, returncode: int = 0, **env: str) -> Run:
    with OTLPReceiver("http") as rx:
        endpoint = rx.endpoint if kind == "spans" else rx.log_endpoint
        app = APP.replace("LATE", str(LATE))
        done = run_app(app, kind, endpoint, order, where, env=clean_env(**env), timeout=60)
        assert done.returncode == returncode, done.stderr
        # Every export was answered before the app ended: what the receiver stored is all it will store.
        received = rx.span_names() if kind == "spans" else rx.log_bodies()
    printed = done.stdout.strip().splitlines()
    reported = printed.pop() if printed and printed[-1].startswith("[") else "[0, 0, 0, 0, {}]"  # none if killed
    return Run(received, ReportedStats(*json.loads(reported)), printed, done.stderr)


@pytest.mark.parametrize(
    ("kind", "order", "where"),
    [
        *((kind, order, "hook") for kind in ("spans", "logs") for order in ("app-shuts-down", "provider-first")),
        ("spans", "app-flushes", "hook"),
        # A flush on another thread meanwhile waits for the worker, which exports them.
        ("logs", "app-shuts-down", "flushed-elsewhere"),
        # Past spanbatch's exit gate other threads go on ending items, which the worker exports.
        ("spans", "app-shuts-down", "thread"),
        ("logs", "provider-first", "thread"),
    ],
)
def test_items_ended_in_a_later_atexit_hook_are_exported(kind: str, order: str, where: str) -> None:
    ran = run(kind, order, where)
    total = 10 + LATE
    assert ran.received == {"main": 10, "at-exit": LATE}, ran.stderr
    assert balanced(ran.stats), ran.stats
    assert ran.stats == (total, total, 0, 0, dict.fromkeys(ran.stats.dropped, 0)), ran.stderr
    assert "dropped" not in ran.stderr, ran.stderr
    # Shut down once by its provider; a provider nobody shuts down leaves it open, as the stock processor does.
    said = ["flushed: True"] if order == "app-flushes" else ["exporter shut down"]
    if where == "flushed-elsewhere":
        said.insert(0, "flushed on another thread: True")
    assert ran.printed == said, ran.printed


def test_spans_ended_in_a_later_atexit_hook_are_exported_by_the_shutdown_of_a_sigterm_there() -> None:
    ran = run("spans", "sigterm", "hook", -signal.SIGTERM, SPANBATCH_FLUSH_ON_SIGTERM="true")
    assert ran.received == {"main": 10, "at-exit": LATE}, ran.stderr
    assert ran.printed == ["exporter shut down"], ran.printed  # then the process died of the signal: no report
