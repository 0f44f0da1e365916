"""Exit with a spill directory and a backend that takes the connection but never answers (a wedged collector).

The request in flight holds the exporter's whole timeout (10 s by default), past the 5 s exit limit. A spill directory
asks for durability: at exit, the send is cut short in time for it and the queue behind it to reach the disk within
the exit limit, at the default timeout as with one well under the limit (which times out on its own). A disk that
refuses them leaves them counted and told, within the limit too.
"""

from __future__ import annotations

import json
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from spanbatch._spill import SpillStore
from spanbatch.exporter._spilling import backend_directory
from spanbatch.exporter.grpc import _EXPORT_METHOD
from spanbatch.testing import OTLPReceiver

from tests.helpers.apps import clean_env, run_app
from tests.helpers.spill import log_bodies, on_disk, span_names, spill_files

pytestmark = pytest.mark.timeout(120)

SPANS = 2000
EXIT_TIMEOUT_SECONDS = 5  # SPANBATCH_EXIT_TIMEOUT_MS's default

# argv: the signal ("spans" or "logs"), the protocol, the endpoint, the spill directory, the exporter's timeout
# ("default": not given). Spans through spanbatch's span processor and exporters, or log records through its log ones.
APP = f"""
import atexit, json, sys, threading, time
signal, protocol, endpoint, spill, timeout = sys.argv[1:]
given = {{}} if timeout == "default" else {{"timeout": float(timeout)}}
import spanbatch
if protocol == "http":
    from spanbatch import exporter as exporters
    options = {{}}
else:
    from spanbatch.exporter import grpc as exporters
    options = {{"insecure": True}}
if signal == "spans":
    exporter = exporters.OTLPSpanExporter(endpoint=endpoint, spill_dir=spill, **options, **given)
    processor = spanbatch.BatchSpanProcessor(exporter)
else:
    exporter = exporters.OTLPLogExporter(endpoint=endpoint, spill_dir=spill, **options, **given)
    processor = spanbatch.BatchLogRecordProcessor(exporter)
exit_started = None

def report():  # registered before the provider's hook, so it runs after it: the stats after shutdown
    s = processor.stats()
    print(json.dumps({{"spilled": s.spilled, "queued": s.queued, "in_flight": s.in_flight,
                       "dropped": {{reason: n for reason, n in s.dropped.items() if n}},
                       "exit_seconds": time.monotonic() - exit_started}}), flush=True)

def mark_exit():
    global exit_started
    exit_started = time.monotonic()

atexit.register(report)
threading._register_atexit(mark_exit)
if signal == "spans":
    from opentelemetry.sdk.trace import TracerProvider
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("app")
    for i in range({SPANS}):
        tracer.start_span(f"s{{i}}").end()
else:
    from opentelemetry._logs import LogRecord
    from opentelemetry.sdk._logs import LoggerProvider
    provider = LoggerProvider()
    provider.add_log_record_processor(processor)
    logger = provider.get_logger("app")
    for i in range({SPANS}):
        logger.emit(LogRecord(body=f"r{{i}}"))
"""


def exit_behind_a_hung_backend(
    protocol: str, spill: Path, timeout: str, *, logs: bool = False, left_on_disk: bool = False
) -> tuple[CompletedProcess[str], Any]:
    """The app (with log records: ``logs``) run to its end against a receiver that never answers; its stats after
    its exit hooks. ``left_on_disk``: one request an earlier process stored, which the app replays from its start."""
    with OTLPReceiver(protocol) as rx:
        if left_on_disk:
            name = rx.endpoint if protocol == "http" else f"{rx.endpoint}{_EXPORT_METHOD}"
            SpillStore(backend_directory(spill, protocol, name), 1 << 30).write(earlier_request(), 1)
        rx.set_behaviour("hang")
        signal, endpoint = ("logs", rx.log_endpoint) if logs else ("spans", rx.endpoint)
        app = run_app(APP, signal, protocol, endpoint, str(spill), timeout, env=clean_env(), timeout=60)
        rx.set_behaviour("ok")
    assert app.returncode == 0, app.stderr
    return app, json.loads(app.stdout.strip().splitlines()[-1])


def earlier_request() -> bytes:
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add(name="earlier", trace_id=b"t" * 16, span_id=b"s" * 8)
    return request.SerializeToString()


@pytest.mark.parametrize("timeout", ["default", "2"])
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_every_span_is_on_disk_within_the_exit_limit(protocol: str, timeout: str, tmp_path: Path) -> None:
    app, report = exit_behind_a_hung_backend(protocol, tmp_path, timeout)
    assert (report["spilled"], report["queued"], report["in_flight"]) == (SPANS, 0, 0), app.stderr
    assert report["dropped"] == {}, app.stderr
    assert report["exit_seconds"] < EXIT_TIMEOUT_SECONDS, app.stderr
    assert sorted(on_disk(tmp_path, span_names)) == sorted(f"s{i}" for i in range(SPANS)), app.stderr


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_with_a_disk_that_refuses_them_every_span_is_counted_and_told_within_the_exit_limit(
    protocol: str, tmp_path: Path
) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.touch()
    app, report = exit_behind_a_hung_backend(protocol, not_a_directory, "default")
    assert (report["spilled"], report["queued"], report["in_flight"]) == (0, 0, 0), app.stderr
    assert report["dropped"] == {"export_failed": SPANS}, app.stderr
    assert report["exit_seconds"] < EXIT_TIMEOUT_SECONDS, app.stderr
    assert "Cannot write to the spill directory" in app.stderr
    assert f"export failed — dropped {SPANS} spans" in app.stderr


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_every_log_record_is_on_disk_within_the_exit_limit(protocol: str, tmp_path: Path) -> None:
    app, report = exit_behind_a_hung_backend(protocol, tmp_path, "default", logs=True)
    assert (report["spilled"], report["queued"], report["in_flight"]) == (SPANS, 0, 0), app.stderr
    assert report["dropped"] == {}, app.stderr
    assert report["exit_seconds"] < EXIT_TIMEOUT_SECONDS, app.stderr
    assert sorted(on_disk(tmp_path, log_bodies)) == sorted(f"r{i}" for i in range(SPANS)), app.stderr


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_replay_waiting_at_exit_is_cut_short_too(protocol: str, tmp_path: Path) -> None:
    # The replay of what an earlier process left waits for the backend from the app's start: its send is cut short at
    # the exit's cut-off too, so the exporter's shutdown, which waits for it, ends within the exit limit.
    app, report = exit_behind_a_hung_backend(protocol, tmp_path, "default", left_on_disk=True)
    assert (report["spilled"], report["queued"], report["in_flight"]) == (SPANS, 0, 0), app.stderr
    assert report["dropped"] == {}, app.stderr
    assert "exporter shutdown did not return by the deadline" not in app.stderr
    assert report["exit_seconds"] < EXIT_TIMEOUT_SECONDS, app.stderr
    assert len(spill_files(tmp_path)) > 1  # the earlier request stays, beside this process's
