"""gevent: after ``monkey.patch_all()`` spans export, flush and exit as with the stock processor.

Monkey-patching must come before anything else is imported, so every case runs in a child process
that patches first, exports with the stock OTLP exporters to a real receiver, and prints a JSON report.
The child dumps its stacks and exits if it hangs, which fails the test with the place it hung.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

import pytest

pytest.importorskip("gevent")

from spanbatch.testing import OTLPReceiver

from tests.helpers import ReportedStats, balanced
from tests.helpers.receivers import serving

pytestmark = pytest.mark.timeout(120)

_HANG_SECONDS = 40

_PRELUDE = """
from gevent import monkey
import os
monkey.patch_all(select=os.environ.get("GEVENT_PATCHES") != "all-but-select")

import atexit, faulthandler, json, os, signal, sys, time
faulthandler.dump_traceback_later(float(sys.argv[3]), exit=True)

import gevent
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
import spanbatch

protocol, endpoint = sys.argv[1:3]

def otlp_exporter(timeout=10):
    if protocol == "http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        return OTLPSpanExporter(endpoint=endpoint, timeout=timeout)
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=timeout)

class SlowExporter(SpanExporter):
    # Takes a while per batch (a patched time.sleep), so that a flush lasts long enough to see
    # whether other greenlets run meanwhile.
    def __init__(self, inner, delay):
        self.inner, self.delay = inner, delay

    def export(self, spans):
        time.sleep(self.delay)
        return self.inner.export(spans)

    def shutdown(self):
        self.inner.shutdown()

def stats_of(processor):
    s = processor.stats()
    return [s.enqueued, s.exported, s.queued, s.in_flight, dict(s.dropped)]

report = {}
tracked = []  # the processor whose stats are reported at exit
exit_started = []

def print_report():
    if tracked:
        report["stats"] = stats_of(tracked[0])
    if exit_started:
        report["exit_seconds"] = time.monotonic() - exit_started[0]
    print(json.dumps(report), flush=True)

# Registered before any processor, so it runs last: after spanbatch's exit flush.
atexit.register(print_report)

def exit_soon():
    # Registered last, so it runs first: the moment the interpreter begins its exit.
    atexit.register(lambda: exit_started.append(time.monotonic()))

def runs_meanwhile(wait):
    # Whether a greenlet that is ready to run gets to run while ``wait()`` waits: it does only
    # if the wait lets the hub run.
    waiting = [True]
    seen = []
    greenlet = gevent.spawn(lambda: seen.append(waiting[0]))
    result = wait()
    waiting[0] = False
    greenlet.join()
    return result, seen == [True]

def end_spans(tracer, count, name, greenlets=4):
    def worker():
        for _ in range(count // greenlets):
            tracer.start_span(name).end()
            gevent.sleep(0)
    gevent.joinall([gevent.spawn(worker) for _ in range(greenlets)], raise_error=True)

provider = TracerProvider()  # shuts down at exit, as an application's does
tracer = provider.get_tracer("gevent")
"""


# stats()['dropped'] of a child that lost nothing.
NO_DROPS = {"queue_full": 0, "shutdown": 0, "export_failed": 0, "fork": 0, "unencodable": 0, "too_large": 0}


class Child:
    def __init__(self, completed: subprocess.CompletedProcess[str]) -> None:
        self.returncode = completed.returncode
        self.stderr = completed.stderr
        lines = completed.stdout.strip().splitlines()
        self.report: dict[str, object] = json.loads(lines[-1]) if lines else {}

    def assert_clean_exit(self) -> None:
        assert "Timeout" not in self.stderr, f"the child hung:\n{self.stderr}"
        assert "Traceback" not in self.stderr, self.stderr
        assert self.returncode == 0, self.stderr

    def stats(self) -> ReportedStats:
        stats = self.report["stats"]
        assert isinstance(stats, list)
        reported = ReportedStats(*stats)
        assert balanced(reported)
        return reported


def run_child(body: str, rx: OTLPReceiver | None, **env: str) -> Child:
    code = _PRELUDE + textwrap.dedent(body)
    endpoint = ("none", "none") if rx is None else (rx.protocol, rx.endpoint)
    completed = subprocess.run(
        [sys.executable, "-c", code, *endpoint, str(_HANG_SECONDS)],
        capture_output=True,
        text=True,
        timeout=_HANG_SECONDS + 30,
        check=False,
        env={**os.environ, **env},
    )
    return Child(completed)


def test_processor_exports_flushes_and_exits(receiver: OTLPReceiver) -> None:
    child = run_child(
        """
        processor = spanbatch.BatchSpanProcessor(SlowExporter(otlp_exporter(), 0.2), schedule_delay_millis=60_000)
        provider.add_span_processor(processor)
        end_spans(tracer, 100, "flushed")
        report["flushed"], report["flush_cooperative"] = runs_meanwhile(processor.force_flush)
        end_spans(tracer, 100, "at exit")
        tracked.append(processor)
        """,
        receiver,
    )
    child.assert_clean_exit()
    assert child.report["flushed"] is True
    assert child.report["flush_cooperative"] is True
    assert child.stats() == (200, 200, 0, 0, NO_DROPS)
    assert receiver.wait_for_spans(200)
    assert receiver.span_names() == {"flushed": 100, "at exit": 100}


def test_spanbatch_exporters_export_flush_and_exit(receiver: OTLPReceiver) -> None:
    # spanbatch's own exporters take their fast paths (encoding in Rust, sending without the GIL).
    child = run_child(
        """
        if protocol == "http":
            from spanbatch.exporter import OTLPSpanExporter
            exporter = OTLPSpanExporter(endpoint=endpoint, timeout=10)
        else:
            from spanbatch.exporter.grpc import OTLPSpanExporter
            exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=10)
        processor = spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=60_000)
        provider.add_span_processor(processor)
        end_spans(tracer, 1000, "flushed")
        report["flushed"] = processor.force_flush()
        end_spans(tracer, 1000, "at exit")
        tracked.append(processor)
        """,
        receiver,
    )
    child.assert_clean_exit()
    assert child.report["flushed"] is True
    assert child.stats() == (2000, 2000, 0, 0, NO_DROPS)
    assert receiver.wait_for_spans(2000)
    assert receiver.span_names() == {"flushed": 1000, "at exit": 1000}


def test_pipeline_session_exports_and_exits(receiver: OTLPReceiver) -> None:
    child = run_child(
        """
        backends = {"fast": otlp_exporter(), "slow": SlowExporter(otlp_exporter(), 0.2)}
        pipeline = spanbatch.install(provider, backends, schedule_delay_millis=60_000)

        session = pipeline.session()
        session.__enter__()
        end_spans(tracer, 100, "session")
        _, report["session_cooperative"] = runs_meanwhile(lambda: session.__exit__(None, None, None))
        report["exported_by_session_end"] = pipeline.stats().exported
        end_spans(tracer, 100, "at exit")
        tracked.append(pipeline)
        """,
        receiver,
    )
    child.assert_clean_exit()
    assert child.report["exported_by_session_end"] == 200
    assert child.report["session_cooperative"] is True
    assert child.stats() == (400, 400, 0, 0, NO_DROPS)
    assert receiver.wait_for_spans(400)
    assert receiver.span_names() == {"session": 200, "at exit": 200}


def test_exit_with_a_hung_backend_keeps_its_deadline(http_receiver: OTLPReceiver) -> None:
    http_receiver.set_behaviour("hang")
    child = run_child(
        """
        processor = spanbatch.BatchSpanProcessor(otlp_exporter(timeout=30), schedule_delay_millis=60_000)
        provider.add_span_processor(processor)
        end_spans(tracer, 100, "lost")
        processor.force_flush(1)
        tracked.append(processor)
        exit_soon()
        """,
        http_receiver,
        SPANBATCH_EXIT_TIMEOUT_MS="1000",
    )
    child.assert_clean_exit()
    enqueued, exported, _, _, _ = child.stats()
    assert (enqueued, exported) == (100, 0)
    exit_seconds = child.report["exit_seconds"]
    assert isinstance(exit_seconds, float)
    assert exit_seconds < 10, exit_seconds  # 1 s exit deadline, where the exporter would wait 30 s
    http_receiver.set_behaviour("ok")


def test_a_full_queue_behind_a_hung_backend_is_told_while_it_hangs(http_receiver: OTLPReceiver) -> None:
    # The teller is a real OS thread, as the worker is; the greenlets that end the spans go on meanwhile.
    http_receiver.set_behaviour("hang")
    child = run_child(
        """
        import logging
        told = []
        class Told(logging.Handler):
            def emit(self, record):
                told.append(record.getMessage())
        logging.getLogger().addHandler(Told())
        processor = spanbatch.BatchSpanProcessor(
            otlp_exporter(timeout=30), max_queue_size=4, max_export_batch_size=2, schedule_delay_millis=10
        )
        provider.add_span_processor(processor)
        end_spans(tracer, 20, "lost")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "Queue full, dropping Span." not in told:
            gevent.sleep(0.02)
        report["told"] = [line for line in told if "ueue full" in line]
        tracked.append(processor)
        exit_soon()
        """,
        http_receiver,
        SPANBATCH_EXIT_TIMEOUT_MS="1000",
    )
    child.assert_clean_exit()
    told = child.report["told"]
    assert isinstance(told, list)
    assert "Queue full, dropping Span." in told, told
    assert any(line.startswith("queue full — dropped") for line in told), told
    http_receiver.set_behaviour("ok")


def test_blocked_on_end_lets_other_greenlets_run(http_receiver: OTLPReceiver) -> None:
    # One span in flight (a slow export), one queued: the third waits for room.
    child = run_child(
        """
        processor = spanbatch.BatchSpanProcessor(
            SlowExporter(otlp_exporter(), 0.5), max_queue_size=1, max_export_batch_size=1,
            schedule_delay_millis=1, drop_policy="block", block_timeout_millis=10_000,
        )
        provider.add_span_processor(processor)
        tracer.start_span("in flight").end()
        while processor.stats().in_flight == 0:
            gevent.sleep(0.001)
        tracer.start_span("queued").end()
        _, report["block_cooperative"] = runs_meanwhile(lambda: tracer.start_span("blocked").end())
        report["flushed"] = processor.force_flush()
        tracked.append(processor)
        """,
        http_receiver,
    )
    child.assert_clean_exit()
    assert child.report["block_cooperative"] is True
    assert child.report["flushed"] is True
    assert child.stats() == (3, 3, 0, 0, NO_DROPS)


def test_ctrl_c_interrupts_force_flush_under_gevent(http_receiver: OTLPReceiver) -> None:
    http_receiver.set_behaviour("hang")
    child = run_child(
        """
        processor = spanbatch.BatchSpanProcessor(otlp_exporter(timeout=30), schedule_delay_millis=60_000)
        provider.add_span_processor(processor)
        tracer.start_span("hangs").end()
        processor.force_flush(1)
        # As an interactive program has it, even if this test was started in the background.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # A real OS thread sends the signal, whether or not the flush lets greenlets run.
        start_thread = monkey.get_original("_thread", "start_new_thread")
        sleep = monkey.get_original("time", "sleep")
        sent = []
        def interrupt():
            sleep(0.3)
            sent.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGINT)
        start_thread(interrupt, ())
        try:
            processor.force_flush(30_000)
            report["outcome"] = "returned"
        except KeyboardInterrupt:
            report["outcome"] = "KeyboardInterrupt"
        report["seconds"] = time.monotonic() - sent[0]
        tracked.append(processor)
        processor.shutdown(100)
        """,
        http_receiver,
    )
    http_receiver.set_behaviour("ok")
    assert child.report.get("outcome") == "KeyboardInterrupt", child.stderr
    seconds = child.report["seconds"]
    assert isinstance(seconds, float)
    assert seconds < 3.0, child.report
    child.stats()


def test_concurrent_exports_are_one_at_a_time_and_flush_and_exit(receiver: OTLPReceiver) -> None:
    # gevent's patched locks are not safe across OS threads, and gRPC's channel uses them: several
    # export threads lost spans or hung a flush. So under gevent a lane exports one batch at a time,
    # and says so.
    child = run_child(
        """
        processor = spanbatch.BatchSpanProcessor(
            SlowExporter(otlp_exporter(), 0.1), max_export_batch_size=10, schedule_delay_millis=60_000,
            max_concurrent_exports=3,
        )
        provider.add_span_processor(processor)
        end_spans(tracer, 100, "flushed")
        report["flushed"] = processor.force_flush(10_000)
        end_spans(tracer, 100, "at exit")
        tracked.append(processor)
        """,
        receiver,
    )
    child.assert_clean_exit()
    assert "max_concurrent_exports=3 is not used under gevent" in child.stderr
    assert child.report["flushed"] is True
    assert child.stats() == (200, 200, 0, 0, NO_DROPS)
    assert receiver.wait_for_spans(200)
    assert receiver.span_names() == {"flushed": 100, "at exit": 100}


def test_flush_on_sigterm_from_the_hub(http_receiver: OTLPReceiver) -> None:
    # A signal that comes while every greenlet waits runs its handler in the hub, which cannot
    # switch away: the flush on SIGTERM must still wait for the export there.
    child = run_child(
        """
        processor = spanbatch.BatchSpanProcessor(SlowExporter(otlp_exporter(), 0.2), schedule_delay_millis=60_000)
        provider.add_span_processor(processor)
        end_spans(tracer, 100, "flushed on SIGTERM")
        start_thread = monkey.get_original("_thread", "start_new_thread")
        sleep = monkey.get_original("time", "sleep")
        start_thread(lambda: (sleep(0.3), os.kill(os.getpid(), signal.SIGTERM)), ())
        gevent.sleep(30)
        """,
        http_receiver,
        SPANBATCH_FLUSH_ON_SIGTERM="true",
    )
    assert child.returncode == -15, child.stderr  # SIGTERM's own action, once flushed
    assert "Traceback" not in child.stderr, child.stderr
    assert http_receiver.wait_for_spans(100, timeout=5), http_receiver.stats()


class KeepAliveCounts:
    """What a keep-alive server saw: connections opened, requests answered."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = 0
        self.port = 0


@contextmanager
def serve_keep_alive() -> Iterator[KeepAliveCounts]:
    """An HTTP/1.1 server on 127.0.0.1 that keeps each connection open and answers each POST after 50 ms (long
    enough for a client's second request to wait for its first)."""
    counts = KeepAliveCounts()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with counts.lock:
                counts.connections += 1

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(0.05)
            with counts.lock:
                counts.requests += 1
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    with serving(Handler) as port:
        counts.port = port
        yield counts


def test_an_async_exporters_gathered_sends_share_one_keep_alive_connection() -> None:
    # An async exporter's blocking calls (asyncio.to_thread) ran on a pool of real OS threads, each with a hub of
    # its own, where a gevent socket waits only on the hub of the thread that made it: a keep-alive connection
    # shared by two gathered sends, or kept for the next export, broke there. They now run as greenlets on the
    # worker's own hub, as asyncio's pool runs them under gevent, and none is left for the exit to wait for.
    with serve_keep_alive() as server:
        child = run_child(
            """
            import asyncio
            import urllib3
            from opentelemetry.sdk.trace.export import SpanExportResult

            os_thread = monkey.get_original("_thread", "get_ident")  # whichever greenlet asks

            class SendsOnOneConnection(SpanExporter):
                # Each batch as two sends gathered through asyncio.to_thread, taking turns on one keep-alive
                # connection (a pool of one): the first send makes it, every later one reuses it. The pool is
                # made at the first export, on the thread that exports (a gevent queue, as a gevent socket,
                # belongs to the hub of the thread that made it), as a requests.Session makes its own.
                client = None
                os_threads = set()

                def send(self, part):
                    self.os_threads.add(os_thread())
                    return self.client.request("POST", "/" + part, body=b"spans", pool_timeout=5.0).status

                async def export(self, spans):
                    self.os_threads.add(os_thread())
                    if self.client is None:
                        self.client = urllib3.HTTPConnectionPool(
                            "127.0.0.1", int(os.environ["KEEP_ALIVE_PORT"]), maxsize=1, block=True, timeout=5.0,
                            retries=False,
                        )
                    statuses = await asyncio.gather(*(asyncio.to_thread(self.send, part) for part in "ab"))
                    report.setdefault("statuses", []).extend(statuses)
                    return SpanExportResult.SUCCESS

            exporter = SendsOnOneConnection()
            processor = spanbatch.BatchSpanProcessor(
                exporter, schedule_delay_millis=60_000, export_timeout_millis=10_000
            )
            provider.add_span_processor(processor)
            for _ in range(2):
                tracer.start_span("sent").end()
                report.setdefault("flushed", []).append(processor.force_flush(20_000))
            report["os_threads"] = len(exporter.os_threads)
            tracked.append(processor)
            report["main_done"] = time.time()
            """,
            None,
            KEEP_ALIVE_PORT=str(server.port),
        )
        exited_at = time.time()
        child.assert_clean_exit()
        assert child.report["flushed"] == [True, True]
        assert child.report["statuses"] == [200] * 4
        assert (server.connections, server.requests) == (1, 4)
    assert child.report["os_threads"] == 1  # the worker's: no OS thread of a pool of its own
    assert child.stats() == (2, 2, 0, 0, NO_DROPS)
    main_done = child.report["main_done"]
    assert isinstance(main_done, float)
    assert exited_at - main_done < 5.0


def test_an_async_exporters_blocking_call_runs_with_selectors_left_unpatched() -> None:
    # ``monkey.patch_all(select=False)`` leaves ``selectors`` as they were: the private loop waited in epoll, never
    # running its thread's hub, so the greenlet of its blocking call never started and every export timed out. The
    # loop waits with gevent's selector now.
    child = run_child(
        """
        import asyncio
        from opentelemetry.sdk.trace.export import SpanExportResult

        class Blocking(SpanExporter):
            async def export(self, spans):
                await asyncio.to_thread(len, spans)
                return SpanExportResult.SUCCESS

        processor = spanbatch.BatchSpanProcessor(Blocking(), schedule_delay_millis=60_000, export_timeout_millis=2_000)
        provider.add_span_processor(processor)
        tracer.start_span("sent").end()
        report["flushed"] = processor.force_flush(10_000)
        tracked.append(processor)
        """,
        None,
        GEVENT_PATCHES="all-but-select",
    )
    child.assert_clean_exit()
    assert child.report["flushed"] is True
    assert child.stats() == (1, 1, 0, 0, NO_DROPS)
