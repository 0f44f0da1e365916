"""The test receiver itself: lazy imports, decoding, bounded close, and no orphan process."""

from __future__ import annotations

import gzip
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib

import psutil
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.trace import TracerProvider
from spanbatch.testing import OTLPReceiver, ReceiverError

pytestmark = pytest.mark.timeout(60)


def request_body(*span_ids: bytes) -> bytes:
    spans = [Span(trace_id=b"t" * 16, span_id=span_id, name="raw") for span_id in span_ids]
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])
    return request.SerializeToString()


def post(url: str, body: bytes, encoding: str | None = None) -> int:
    headers = {"Content-Type": "application/x-protobuf"}
    if encoding:
        headers["Content-Encoding"] = encoding
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=10) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code


def test_importing_spanbatch_needs_no_grpc_or_protobuf() -> None:
    code = (
        "import sys, spanbatch, spanbatch.testing\n"
        "heavy = [m for m in sys.modules\n"
        "         if m.split('.')[0] in ('grpc', 'google') or m.startswith('opentelemetry.proto')]\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_http_decodes_plain_gzip_and_deflate_and_counts_the_rest() -> None:
    with OTLPReceiver("http") as rx:
        assert post(rx.endpoint, request_body(b"a" * 8, b"b" * 8)) == 200
        assert post(rx.endpoint, gzip.compress(request_body(b"c" * 8)), "gzip") == 200
        assert post(rx.endpoint, zlib.compress(request_body(b"a" * 8)), "deflate") == 200
        assert post(rx.endpoint, b"\xff not protobuf", "gzip") == 400
        assert post(rx.endpoint.replace("/v1/traces", "/v1/metrics"), request_body(b"d" * 8)) == 404
        stats = rx.stats()
        names = rx.span_names()
        ids = rx.span_ids()
        rx.reset()
        after_reset = rx.stats()

    assert (stats.requests, stats.accepted, stats.malformed) == (5, 3, 2)
    assert (stats.spans, stats.unique_spans, stats.duplicates) == (4, 3, 1)
    assert stats.services == {"": 4}
    assert names == {"raw": 4}
    assert ids == {b"a" * 8, b"b" * 8, b"c" * 8}
    assert after_reset.requests == after_reset.spans == 0


def test_times_limits_a_fault_to_that_many_requests() -> None:
    with OTLPReceiver("http") as rx:
        rx.set_behaviour("status", status=429, retry_after=7, times=2)
        statuses = [post(rx.endpoint, request_body(bytes([i]) * 8)) for i in range(3)]
        stats = rx.stats()
    assert statuses == [429, 429, 200]
    assert (stats.rejected, stats.accepted, stats.spans) == (2, 1, 1)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_close_is_bounded_with_a_request_hanging(protocol: str) -> None:
    rx = OTLPReceiver(protocol)  # type: ignore[arg-type]
    rx.set_behaviour("hang")
    exporter = rx.span_exporter(timeout=30)
    span = TracerProvider(shutdown_on_exit=False).get_tracer("receiver").start_span("hung")
    span.end()
    caller = threading.Thread(target=exporter.export, args=([span],), daemon=True)
    caller.start()
    assert rx.wait_for_requests(1)
    started = time.monotonic()
    rx.close()
    elapsed = time.monotonic() - started
    assert elapsed < 3.0
    assert not psutil.pid_exists(rx.pid) or psutil.Process(rx.pid).status() == psutil.STATUS_ZOMBIE
    with pytest.raises(ReceiverError):
        rx.stats()


def test_receiver_process_ends_when_its_parent_is_killed() -> None:
    code = (
        "import sys, time\n"
        "from spanbatch.testing import OTLPReceiver\n"
        "rx = OTLPReceiver('grpc')\n"
        "print(rx.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        receiver_pid = int(parent.stdout.readline())
        assert psutil.pid_exists(receiver_pid)
        parent.kill()
        parent.wait(10)
        gone, alive = psutil.wait_procs([psutil.Process(receiver_pid)], timeout=10)
    finally:
        parent.kill()
        parent.wait(10)
    assert alive == []
    assert [process.pid for process in gone] == [receiver_pid]


def test_a_receiver_that_dies_while_starting_is_started_once_more(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_spawn = OTLPReceiver._spawn
    spawned: list[int] = []

    def dies_first(self: OTLPReceiver, port: int) -> None:
        real_spawn(self, port)
        spawned.append(self._process.pid)
        if len(spawned) == 1:
            self._process.kill()  # as a crash in the server library would

    monkeypatch.setattr(OTLPReceiver, "_spawn", dies_first)
    with OTLPReceiver("http") as rx:
        assert rx.pid == spawned[1]
        assert rx.stats().spans == 0
    assert "exited while starting (exit code -9); starting it again" in caplog.text


def test_a_receiver_that_keeps_dying_while_starting_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    real_spawn = OTLPReceiver._spawn

    def always_dies(self: OTLPReceiver, port: int) -> None:
        real_spawn(self, port)
        self._process.kill()

    monkeypatch.setattr(OTLPReceiver, "_spawn", always_dies)
    with pytest.raises(ReceiverError, match="exited while starting"):
        OTLPReceiver("http")


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_fixed_port_is_used_and_a_taken_one_is_reported(protocol: str) -> None:
    with OTLPReceiver(protocol) as first:  # type: ignore[arg-type]
        port = first.port
    with OTLPReceiver(protocol, port=port) as second:  # type: ignore[arg-type]
        assert second.port == port
        with pytest.raises(ReceiverError, match="failed to start"):
            OTLPReceiver(protocol, port=port)  # type: ignore[arg-type]


def test_unknown_protocol_and_behaviour_are_refused() -> None:
    with pytest.raises(ValueError, match="protocol"):
        OTLPReceiver("thrift")  # type: ignore[arg-type]
    with OTLPReceiver("http") as rx, pytest.raises(ValueError, match="behaviour"):
        rx.set_behaviour("explode")  # type: ignore[arg-type]
