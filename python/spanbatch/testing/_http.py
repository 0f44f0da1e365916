"""OTLP/HTTP trace and logs endpoint (protobuf POST ``/v1/traces``, ``/v1/logs``, gzip or deflate bodies) for the
receiver process."""

from __future__ import annotations

import gzip
import logging
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from spanbatch.testing._store import FaultPlan, SpanStore

logger = logging.getLogger(__name__)

TRACES_PATH = "/v1/traces"
LOGS_PATH = "/v1/logs"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # "down" then "ok" binds the same port again

    def __init__(self, port: int, store: SpanStore, faults: FaultPlan, max_bytes: int) -> None:
        self.store, self.faults, self.stopping = store, faults, threading.Event()
        self.max_bytes = max_bytes  # 0: no limit
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0 closes every connection after its response, so "down" leaves no live keep-alive socket.
    protocol_version = "HTTP/1.0"
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path not in (TRACES_PATH, LOGS_PATH):
            self.server.store.count_request("malformed")
            self._answer(404)
            return
        if 0 < self.server.max_bytes < len(body):
            # As a hosted backend does: the whole request refused, nothing recorded.
            self.server.store.count_request("rejected")
            self._answer(413)
            return
        fault, generation = self.server.faults.take()
        if fault.mode == "hang":
            self.server.store.count_request("hung")
            self.server.faults.hold(generation, self.server.stopping)
            self.close_connection = True
            return
        if fault.mode == "hold":  # a slow backend: the answer comes, once the behaviour changes
            self.server.faults.hold_answer(generation, self.server.stopping, self.server.store)
        if fault.mode == "status":
            self.server.store.count_request("rejected")
            retry_after = None if fault.retry_after is None else f"{fault.retry_after:g}"
            self._answer(fault.status, retry_after=retry_after)
            return
        try:
            kind = ExportLogsServiceRequest if self.path == LOGS_PATH else ExportTraceServiceRequest
            request = kind.FromString(_decompress(body, self.headers.get("Content-Encoding")))
        except Exception:  # a body we cannot read is the sender's bug: report it, keep serving
            logger.exception("Malformed OTLP/HTTP request")
            self.server.store.count_request("malformed")
            self._answer(400)
            return
        if isinstance(request, ExportLogsServiceRequest):
            self.server.store.record_logs(request)
            self._answer(200, ExportLogsServiceResponse().SerializeToString())
            return
        self.server.store.record(request)
        self._answer(200, ExportTraceServiceResponse().SerializeToString())

    def _answer(self, status: int, payload: bytes = b"", retry_after: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        logger.debug(format, *args)


def _decompress(body: bytes, encoding: str | None) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


class HTTPEndpoint:
    """A listening OTLP/HTTP server; ``stop`` closes the socket and releases hung requests."""

    def __init__(self, port: int, store: SpanStore, faults: FaultPlan, max_bytes: int = 0) -> None:
        self._server = _Server(port, store, faults, max_bytes)
        self.port: int = self._server.server_address[1]
        # A short poll interval keeps "down" and close() quick: shutdown() waits for one poll.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="otlp-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.faults.wake()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)
