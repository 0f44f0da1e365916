"""An app whose signal handler forks (a pre-fork master starting a worker when told to) while its main thread waits in
``force_flush`` or ``shutdown`` for an export still out: the child goes on in that same wait. What each process
told of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tests.helpers.apps import clean_env, run_app

Threads = Literal["threading", "gevent"]  # what the export worker runs on: gevent's, once it has patched threading

APP = """
import sys

wait_in, seconds, threads = sys.argv[1:]
if threads == "gevent":  # the worker is then a real OS thread started with gevent's saved functions
    from gevent import monkey

    monkey.patch_all()
import os, signal, threading, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from spanbatch import BatchSpanProcessor

exporting = threading.Event()

class SlowExporter(SpanExporter):
    def export(self, spans):
        exporting.set()
        time.sleep(1.0)  # still out when the signal comes
        return SpanExportResult.SUCCESS

if wait_in == "force_flush":  # the flush starts the export
    processor = BatchSpanProcessor(SlowExporter(), schedule_delay_millis=60_000)
else:  # the shutdown waits for a worker already in its export
    processor = BatchSpanProcessor(
        SlowExporter(), schedule_delay_millis=1, export_timeout_millis=float(seconds) * 1000
    )
provider = TracerProvider()
provider.add_span_processor(processor)
forked = []
signal.signal(signal.SIGUSR1, lambda signum, frame: forked.append(os.fork()))
provider.get_tracer("app").start_span("before").end()
if wait_in == "shutdown":
    assert exporting.wait(10)
threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1)).start()
started = time.monotonic()
returned = processor.force_flush(float(seconds) * 1000) if wait_in == "force_flush" else processor.shutdown()
took = time.monotonic() - started
if forked == [0]:
    os.write(1, f"child {returned} {took:.3f}\\n".encode())
    os._exit(0)
os.waitpid(forked[0], 0)
print(f"parent {returned} {processor.stats().exported}", flush=True)
"""


@dataclass(frozen=True)
class Told:
    child: list[str]  # what the wait returned there, and the seconds it took
    parent: list[str]  # what the wait returned there, and the spans exported
    output: str  # the app's stdout and stderr, for an assertion's message


def forked_by_a_signal_handler_during(
    wait_in: Literal["force_flush", "shutdown"], seconds: float, threads: Threads = "threading"
) -> Told:
    """Runs the app: the main thread waits in ``wait_in`` (``seconds``: the flush's timeout, or the shutdown's
    deadline) when the handler forks."""
    done = run_app(APP, wait_in, str(seconds), threads, env=clean_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    told = {words[0]: words[1:] for words in map(str.split, done.stdout.splitlines())}
    return Told(told["child"], told["parent"], done.stdout + done.stderr)
