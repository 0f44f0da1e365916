"""``SPANBATCH_FLUSH_ON_SIGTERM``: a child forked while SIGTERM's shutdown runs in its parent is a process of its own.

The signal interrupts the main thread inside a logging handler, so every lane is shut down on a thread of its own
(it starts the exit deadline) while SIGTERM's default action is put back for the process to die of it once done.
A pre-fork server's master or a pool respawning a worker may fork meanwhile, from the main thread or another one.
The child must not inherit that dying: its own processor gets the whole ``SPANBATCH_EXIT_TIMEOUT_MS`` at its exit
(not what was left of the parent's, long past by then: its queued span was dropped, ``shutdown``), and a SIGTERM
sent to it flushes that processor before it dies of it (it used to die at once, its span lost). A child forked by
an atexit hook is exiting too: it stays so, with an exit deadline of its own.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

import pytest
from spanbatch import _exit

from tests.helpers import in_child
from tests.helpers.accounting import ReportedStats, balanced
from tests.helpers.apps import clean_env, started_app

pytestmark = [pytest.mark.timeout(60), pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork")]

EXIT_TIMEOUT_MILLIS = 1000
# Long enough for the test to see the child and signal it before the parent's shutdown gives up on its export.
EXIT_TIMEOUT_MILLIS_WHILE_THE_PARENT_WAITS = 10_000
# What a wait of the app may take at most (its parent's export, its child's end): the test fails well before.
APP_WAIT_SECONDS = 20


def stats_said(out: str) -> tuple[dict[str, ReportedStats], list[str]]:
    """The stats each process printed (``<who> stats <json>``), and the other lines of ``out`` in order."""
    stats, lines = {}, []
    for line in out.splitlines():
        who, said, *rest = line.split(maxsplit=2)
        if said == "stats":
            stats[who] = ReportedStats(*json.loads(rest[0]))
        else:
            lines.append(line)
    return stats, lines


# argv: where the child is forked from (main, thread), how it ends (exit: returns, past the parent's exit deadline;
# sigterm: told "ready", the test sends it SIGTERM). The parent waits for a child that is signalled, and says how it
# ended. Each process says what its exporter got; the child, at the end of its exit, its processor's stats.
APP = """
import atexit, json, logging, os, signal, sys, threading, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from spanbatch import BatchSpanProcessor

FORK_FROM, CHILD_ENDS_BY = sys.argv[1:]
EXIT_TIMEOUT = float(os.environ["SPANBATCH_EXIT_TIMEOUT_MS"]) / 1000
WAIT = {wait}
parent = os.getpid()
handler = logging.StreamHandler(sys.stderr)
logging.getLogger().addHandler(handler)
shutting_down, child_made = threading.Event(), threading.Event()

class Exporter(SpanExporter):
    def export(self, spans):
        if os.getpid() == parent:  # SIGTERM's shutdown: held until the child is made (and, if signalled, ended)
            shutting_down.set()
            child_made.wait(WAIT)
        print("parent" if os.getpid() == parent else "child", "exported", len(spans), flush=True)
        return SpanExportResult.SUCCESS

def processor_with_a_queued_span(name):
    processor = BatchSpanProcessor(Exporter(), schedule_delay_millis=60_000)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    provider.get_tracer("app").start_span(name).end()
    return processor

def report(who, processor):
    s = processor.stats()
    print(who, "stats", json.dumps([s.enqueued, s.exported, s.queued, s.in_flight, dict(s.dropped)]), flush=True)

def child():
    # A pre-fork server's worker: its own processor, made after the fork; the report runs after its provider's
    # shutdown at exit (atexit: last registered, first run).
    atexit.register(lambda: report("child", processor))
    processor = processor_with_a_queued_span("child")
    if CHILD_ENDS_BY == "exit":
        time.sleep(EXIT_TIMEOUT + 0.5)  # the parent's exit deadline has passed
    else:
        print("ready", os.getpid(), flush=True)
        # CPython 3.13.0, in a child forked from a thread: a signal that came while this thread was not asleep has
        # its handler run only at an explicit check for signals, not between bytecodes (loaded, 9 of 20 runs waited
        # out the whole sleep, in slices or not). pthread_sigmask makes that check.
        asleep_until = time.monotonic() + WAIT
        while time.monotonic() < asleep_until:
            time.sleep(0.05)
            signal.pthread_sigmask(signal.SIG_BLOCK, [])
        print("SIGTERM did not end the child", flush=True)
        os._exit(3)

def fork():
    pid = os.fork()
    if pid == 0:
        child()
    return pid

processor_with_a_queued_span("parent")
with handler.lock:  # as in the middle of handler.emit when the signal comes
    os.kill(parent, signal.SIGTERM)
shutting_down.wait(WAIT)
if FORK_FROM == "main":
    pid = fork()
else:
    forked = []
    forking = threading.Thread(target=lambda: forked.append(fork()))
    forking.start()
    forking.join(WAIT)
    pid = forked[0]
if pid != 0:  # the parent
    if CHILD_ENDS_BY == "sigterm":
        _, status = os.waitpid(pid, 0)  # the child ends itself within WAIT
        print("child exit", os.waitstatus_to_exitcode(status), flush=True)
    child_made.set()
    time.sleep(WAIT)
    print("SIGTERM did not end the parent", flush=True)
"""


@pytest.mark.parametrize(("fork_from", "child_ends_by"), [("main", "exit"), ("main", "sigterm"), ("thread", "sigterm")])
def test_the_childs_queued_span_is_exported(fork_from: str, child_ends_by: str) -> None:
    exit_timeout = EXIT_TIMEOUT_MILLIS if child_ends_by == "exit" else EXIT_TIMEOUT_MILLIS_WHILE_THE_PARENT_WAITS
    env = clean_env(SPANBATCH_FLUSH_ON_SIGTERM="true", SPANBATCH_EXIT_TIMEOUT_MS=str(exit_timeout))
    with started_app(APP.format(wait=APP_WAIT_SECONDS), fork_from, child_ends_by, env=env) as app:
        assert app.stdout is not None
        if child_ends_by == "sigterm":
            said = app.stdout.readline().split()
            assert said[:1] == ["ready"], said
            os.kill(int(said[1]), signal.SIGTERM)
        out, err = app.communicate(timeout=30)
    assert app.returncode == -signal.SIGTERM, (out, err)
    # The parent's exporter had the parent's span; the child's, at its exit or its SIGTERM, its own.
    stats, lines = stats_said(out)
    if child_ends_by == "exit":
        assert sorted(lines) == ["child exported 1", "parent exported 1"], err  # two processes, in no set order
        assert stats["child"][:4] == (1, 1, 0, 0), (stats, err)
        assert stats["child"].dropped_total == 0, (stats, err)
        assert balanced(stats["child"])
    else:  # exported, then dead of the signal as by SIGTERM's default action (no exit hook reports), then reaped
        assert lines == ["child exported 1", "child exit -15", "parent exported 1"], err


# No signal: an atexit hook forks once the first provider's shutdown has started the parent's exit deadline. The
# child runs the hooks after it, as its parent does: the provider registered before that hook is shut down in both.
APP_FORKING_AT_EXIT = """
import atexit, json, os, sys, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from spanbatch import BatchSpanProcessor

EXIT_TIMEOUT = float(os.environ["SPANBATCH_EXIT_TIMEOUT_MS"]) / 1000
parent = os.getpid()

def who():
    return "parent" if os.getpid() == parent else "child"

class Exporter(SpanExporter):
    def export(self, spans):
        print(who(), "exported", len(spans), flush=True)
        return SpanExportResult.SUCCESS

def provider():
    processor = BatchSpanProcessor(Exporter(), schedule_delay_millis=60_000)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    return provider, processor

def fork_at_exit():
    pid = os.fork()
    if pid == 0:  # exiting too: a span of its own through the provider shut down after this hook
        later.get_tracer("app").start_span("child").end()
        time.sleep(EXIT_TIMEOUT + 0.5)  # the parent's exit deadline has passed
        return
    _, status = os.waitpid(pid, 0)  # the child's exit is bounded
    print("child exit", os.waitstatus_to_exitcode(status), flush=True)

# atexit runs the last registered first: first's shutdown, the fork, later's shutdown, the report.
def report():
    s = later_processor.stats()
    print(who(), "stats", json.dumps([s.enqueued, s.exported, s.queued, s.in_flight, dict(s.dropped)]), flush=True)

atexit.register(report)
later, later_processor = provider()
atexit.register(fork_at_exit)
first, _ = provider()
first.get_tracer("app").start_span("parent").end()
"""


@pytest.mark.skipif(sys.version_info[:2] == (3, 12), reason="CPython 3.12 cannot fork once exit has begun")
def test_a_child_forked_at_exit_exports_its_span_within_an_exit_deadline_of_its_own() -> None:
    env = clean_env(SPANBATCH_EXIT_TIMEOUT_MS=str(EXIT_TIMEOUT_MILLIS))
    with started_app(APP_FORKING_AT_EXIT, env=env) as app:
        out, err = app.communicate(timeout=30)
    assert app.returncode == 0, (out, err)
    stats, lines = stats_said(out)
    assert lines == ["parent exported 1", "child exported 1", "child exit 0"], err
    # The provider shut down after the fork: in the child, the span ended there; in the parent, none.
    assert stats["child"][:4] == (1, 1, 0, 0), (stats, err)
    assert stats["parent"][:4] == (0, 0, 0, 0), (stats, err)
    for reported in stats.values():
        assert reported.dropped_total == 0, (stats, err)
        assert balanced(reported)


def test_a_child_forked_at_exit_bounds_its_flushes_by_its_own_exit_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # As in an atexit hook of a parent whose exit deadline has passed: the child runs the hooks after that one, its
    # main thread done. A flush there waits at most the child's exit limit (not the parent's deadline, long past;
    # nor the flush's own timeout alone, as while a main thread runs).
    monkeypatch.setenv("SPANBATCH_EXIT_TIMEOUT_MS", str(EXIT_TIMEOUT_MILLIS))
    monkeypatch.setattr(_exit, "_exiting", True)
    monkeypatch.setattr(_exit._runs_the_exit_hooks, "here", True, raising=False)  # this thread forks, as a hook would
    monkeypatch.setattr(_exit, "_exit_deadline", time.monotonic() - 1)

    def child() -> dict[str, Any]:
        now = time.monotonic()
        return {"exiting": _exit._exiting, "flush waits": round(_exit._within_exit_limit(now + 60) - now, 1)}

    assert in_child(child) == {"exiting": True, "flush waits": EXIT_TIMEOUT_MILLIS / 1000}
