"""spanbatch's OTLP/gRPC exporters beside the stock ones, against a small gRPC server on 127.0.0.1.

The server answers each call as the test scripts it (an error code, or holding the call until the
client gives up) and records the bytes of every request, so the two exporters can be compared from
the backend's side as well as from the caller's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc.error_details_pb2 import RetryInfo  # type: ignore[import-untyped]
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as StockLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as StockExporter
from spanbatch.exporter import grpc as spanbatch_grpc

from tests.helpers.otlp_logs import corpus as log_corpus
from tests.helpers.otlp_spans import corpus, stock_bytes

pytestmark = pytest.mark.timeout(60)

Answer = Callable[[grpc.ServicerContext], None]


class ScriptedServer:
    """A gRPC server taking any method: answers the n-th call with ``script[n]`` (none left: success)."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.script: list[Answer] = []
        self.arrived = threading.Condition()
        self.release = threading.Event()  # ends every held call
        outer = self

        def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
            with outer.arrived:
                outer.requests.append(request)
                answer = outer.script.pop(0) if outer.script else None
                outer.arrived.notify_all()
            if answer is not None:
                answer(context)
            return b""  # an empty ExportTraceServiceResponse

        class Handler(grpc.GenericRpcHandler):
            def service(self, details: Any) -> grpc.RpcMethodHandler:
                return grpc.unary_unary_rpc_method_handler(unary)

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=[Handler()])
        self.endpoint = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"
        self._server.start()

    def wait_for_requests(self, count: int, timeout: float = 20.0) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.requests) >= count, timeout), self.requests

    def stop(self) -> None:
        self.release.set()
        self._server.stop(None).wait(5)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer()
    yield scripted
    scripted.stop()


def unavailable(context: grpc.ServicerContext) -> None:
    """UNAVAILABLE, to be retried after 1 ms (a RetryInfo): the stock retries give up within a second."""
    retry = RetryInfo()
    retry.retry_delay.FromMilliseconds(1)
    context.set_trailing_metadata((("google.rpc.retryinfo-bin", retry.SerializeToString()),))
    context.abort(grpc.StatusCode.UNAVAILABLE, "down")


def held(server: ScriptedServer) -> Answer:
    """Holds the call until the client cancels it or the test ends."""

    def answer(context: grpc.ServicerContext) -> None:
        while context.is_active() and not server.release.wait(0.05):
            pass

    return answer


def timed_shutdown(exporter: Any) -> float:
    started = time.monotonic()
    exporter.shutdown()
    return time.monotonic() - started


def test_stock_shutdown_cancels_an_export_in_flight_at_once(server: ScriptedServer) -> None:
    """The reference for the test below: the stock shutdown closes the channel, which ends the call."""
    server.script = [held(server)]
    exporter = StockExporter(endpoint=server.endpoint, insecure=True, timeout=30)
    exporting = threading.Thread(target=exporter.export, args=(corpus(),))
    exporting.start()
    server.wait_for_requests(1)
    assert timed_shutdown(exporter) < 2.0  # the held call lasts 30 s
    exporting.join(5)
    assert not exporting.is_alive()


def test_shutdown_with_a_spill_cancels_a_replay_in_flight_as_stock_cancels_an_export(
    server: ScriptedServer, tmp_path: Path
) -> None:
    """A replay of a spilled request against a backend that holds it is a call in flight like any other:
    the stock shutdown would end it at once by closing the channel. Before the fix spanbatch's shutdown
    first waited for the replay thread (up to 5 s, the replay's call lasting its whole 30 s timeout),
    and only then closed the channel."""
    server.script = [unavailable] * 6 + [held(server)]  # the stock retries give up; the replay is held
    exporter = spanbatch_grpc.OTLPSpanExporter(endpoint=server.endpoint, insecure=True, timeout=30, spill_dir=tmp_path)
    assert exporter.export(corpus()).name == "SUCCESS"  # spilled after the six attempts
    server.wait_for_requests(7)  # the stock retries, then the replay thread's probe, held
    assert timed_shutdown(exporter) < 2.0
    counts = exporter.spill_counts()
    assert counts is not None
    assert counts.replayed == 0  # cancelled, not delivered: the file stays for the next exporter
    assert len(list(tmp_path.glob("*/*.spill"))) == 1


@pytest.mark.parametrize("compression", [grpc.Compression.Gzip.value, True])
def test_a_compression_given_as_an_int_builds_a_spilling_exporter_as_it_builds_the_stock_one(
    server: ScriptedServer, tmp_path: Path, compression: int
) -> None:
    """gRPC takes ``Compression``'s integer values (``Compression`` is an ``IntEnum``), and so the stock
    exporter does; with a spill directory spanbatch's raised AttributeError (``.name`` of an int)."""
    spans = corpus()
    stock = StockExporter(endpoint=server.endpoint, insecure=True, compression=compression)  # type: ignore[arg-type]
    assert stock.export(spans).name == "SUCCESS"
    stock.shutdown()
    exporter = spanbatch_grpc.OTLPSpanExporter(
        endpoint=server.endpoint,
        insecure=True,
        compression=compression,  # type: ignore[arg-type]
        spill_dir=tmp_path / "ints",
    )
    assert exporter.export(spans).name == "SUCCESS"
    exporter.shutdown()
    assert server.requests[0] == server.requests[1]
    # Keyed by the compression gRPC uses: the directory of the same exporter given the enum member.
    named = spanbatch_grpc.OTLPSpanExporter(
        endpoint=server.endpoint,
        insecure=True,
        compression=grpc.Compression(compression),
        spill_dir=tmp_path / "enum",
    )
    named.shutdown()
    assert exporter._spiller is not None
    assert named._spiller is not None
    assert exporter._spiller.store.directory.name == named._spiller.store.directory.name


def test_binary_metadata_builds_a_spilling_exporter_as_it_builds_the_stock_one(
    server: ScriptedServer, tmp_path: Path
) -> None:
    """gRPC sends a ``-bin`` header's bytes value as binary metadata, and the stock exporter passes it on;
    keying the spill directory by its headers, spanbatch's raised TypeError (bytes are not JSON)."""
    spans = corpus()
    stock = StockExporter(endpoint=server.endpoint, insecure=True, headers={"tenant-bin": b"\x00\x01"})
    assert stock.export(spans).name == "SUCCESS"
    stock.shutdown()
    exporters = [
        spanbatch_grpc.OTLPSpanExporter(
            endpoint=server.endpoint, insecure=True, headers={"tenant-bin": value}, spill_dir=tmp_path
        )
        for value in (b"\x00\x01", b"\x00\x02")
    ]
    assert exporters[0].export(spans).name == "SUCCESS"
    assert server.requests[0] == server.requests[1]
    directories = set()
    for exporter in exporters:
        exporter.shutdown()
        assert exporter._spiller is not None
        directories.add(exporter._spiller.store.directory)
    assert len(directories) == 2  # one tenant's requests are never replayed with the other's header


def slow(seconds: float) -> Answer:
    """Answers (success) after ``seconds``."""

    def answer(context: grpc.ServicerContext) -> None:
        time.sleep(seconds)

    return answer


def test_a_batch_sent_as_several_requests_keeps_to_one_timeout_as_the_stock_export_of_one(
    server: ScriptedServer,
) -> None:
    """The stock ``export`` sends one request within one deadline, ``timeout`` seconds from its start.
    A batch spanbatch cuts into parts must keep to that same deadline, not give each part a new one
    (which let four parts of a backend answering each in 0.7 s take 2.8 s of a 1.5 s timeout)."""
    timeout, answer_after = 1.5, 0.7
    server.script = [slow(answer_after)] * 4
    spans = corpus()
    exporter = spanbatch_grpc.OTLPSpanExporter(
        endpoint=server.endpoint,
        insecure=True,
        timeout=timeout,
        max_export_batch_bytes=max(len(stock_bytes([span])) for span in spans) + 64,
    )
    request = exporter.span_encoder.read(spans)
    assert request.parts >= 4  # the corpus's spans are cut into at least four requests
    started = time.monotonic()
    result = exporter.export(request)
    elapsed = time.monotonic() - started
    exporter.shutdown()
    assert result.name == "FAILURE"  # the later parts had no time left, as a request past its deadline
    assert elapsed < timeout + answer_after  # never a fresh deadline after one part
    assert len(server.requests) <= 3


def test_export_takes_the_stock_parameter_names_as_keywords(server: ScriptedServer) -> None:
    """``export(spans=...)`` (the stock span exporter's name) raised TypeError: spanbatch's was ``batch``."""
    spans, records = corpus(), log_corpus()
    for stock, ours, keywords in (
        (StockExporter, spanbatch_grpc.OTLPSpanExporter, {"spans": spans}),
        (StockLogExporter, spanbatch_grpc.OTLPLogExporter, {"batch": records}),
    ):
        for exporter_class in (stock, ours):
            exporter = exporter_class(endpoint=server.endpoint, insecure=True)
            assert exporter.export(**keywords).name == "SUCCESS"
            exporter.shutdown()
    assert len(server.requests) == 4
    assert server.requests[0] == server.requests[1]
    assert server.requests[2] == server.requests[3]
