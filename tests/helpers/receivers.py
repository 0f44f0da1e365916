"""OTLP receivers inside the test process that keep every request as it was sent, for byte-level checks.

``spanbatch.testing.OTLPReceiver`` (another process, faults on demand) is for end-to-end tests; these
keep paths, headers, bodies and metadata, answer with scripted statuses, and can answer slowly.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


class _Decoded:
    """What every recorder can say about the spans it decoded."""

    def decoded(self) -> list[ExportTraceServiceRequest]:
        raise NotImplementedError

    def span_count(self) -> int:
        return sum(len(ss.spans) for r in self.decoded() for rs in r.resource_spans for ss in rs.scope_spans)

    def spans(self) -> dict[str, dict[str, str]]:
        """Each span's name and its string attributes."""
        return {
            span.name: {kv.key: kv.value.string_value for kv in span.attributes}
            for request in self.decoded()
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        }


@dataclass
class HttpRequest:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    def request(self) -> ExportTraceServiceRequest:
        data = self.body
        encoding = self.headers.get("content-encoding")
        if encoding == "gzip":
            data = gzip.decompress(data)
        elif encoding == "deflate":
            data = zlib.decompress(data)
        return ExportTraceServiceRequest.FromString(data)


class HttpRecorder(_Decoded):
    """Records every request; answers each after ``delay`` seconds with the next of ``statuses`` (then 200)."""

    def __init__(self) -> None:
        self.received: list[HttpRequest] = []
        self.statuses: list[int] = []
        self.delay = 0.0
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self.port = 0
        # Made to listen (see ``serve_http(down=True)``); once listening, a call does nothing.
        self.come_up: Callable[[], None] = lambda: None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/traces"

    def take(self, request: HttpRequest) -> int:
        with self.lock:
            self.received.append(request)
            return self.statuses.pop(0) if self.statuses else 200

    def decoded(self) -> list[ExportTraceServiceRequest]:
        with self.lock:
            received = list(self.received)
        return [r.request() for r in received]


class _Server:
    """``handler``'s threading HTTP server on 127.0.0.1: its port bound at once, refusing connections (a backend
    that is down) until ``listen()`` serves it on a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler, bind_and_activate=False)
        self._server.daemon_threads = True
        self._server.server_bind()
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    def listen(self) -> None:
        if self._thread is not None:
            return
        self._server.server_activate()
        # shutdown() waits out one poll interval: at the default 0.5 s, half a second per test that used it.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """``handler``'s threading HTTP server on 127.0.0.1, served on a daemon thread; yields its port."""
    server = _Server(handler)
    server.listen()
    try:
        yield server.port
    finally:
        server.close()


@contextmanager
def serve_http(*, down: bool = False, keep_alive: bool = False) -> Iterator[HttpRecorder]:
    """A recorder served on 127.0.0.1; ``down``: its port refuses connections until ``recorder.come_up()``;
    ``keep_alive``: HTTP/1.1, a connection kept for the next request (else HTTP/1.0, closed after each answer)."""
    recorder = HttpRecorder()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = recorder.take(HttpRequest(self.path, headers, body))
            if recorder.delay:
                recorder.closing.wait(recorder.delay)
            try:
                self.send_response(status)
                if status != 200:
                    self.send_header("Retry-After", "0")  # retry at once: keeps the test fast
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the client gave up on this request: as a collector would, carry on

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = _Server(Handler)
    recorder.port = server.port
    recorder.come_up = server.listen
    if not down:
        server.listen()
    try:
        yield recorder
    finally:
        recorder.closing.set()  # a delayed answer goes now: the server's shutdown waits for none
        server.close()


class GrpcRecorder(_Decoded):
    """Records every request and its metadata; fails the first ``failures`` calls with UNAVAILABLE."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.metadata: list[dict[str, str]] = []
        self.failures = 0
        self.lock = threading.Lock()
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def decoded(self) -> list[ExportTraceServiceRequest]:
        with self.lock:
            return list(self.requests)


@contextmanager
def serve_grpc() -> Iterator[GrpcRecorder]:
    recorder = GrpcRecorder()

    class Service(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
        def Export(self, request: ExportTraceServiceRequest, context: Any) -> ExportTraceServiceResponse:
            with recorder.lock:
                recorder.requests.append(request)
                recorder.metadata.append(dict(context.invocation_metadata()))
                fail = recorder.failures > 0
                recorder.failures -= fail
            if fail:
                retry = RetryInfo(retry_delay=Duration(seconds=0, nanos=1_000_000))
                context.set_trailing_metadata((("google.rpc.retryinfo-bin", retry.SerializeToString()),))
                context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
            return ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), server)
    recorder.port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield recorder
    finally:
        server.stop(None).wait(5)
