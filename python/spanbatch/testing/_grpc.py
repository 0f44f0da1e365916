"""OTLP/gRPC TraceService and LogsService for the receiver process."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from google.rpc.error_details_pb2 import RetryInfo  # type: ignore[import-untyped]
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from spanbatch.testing._store import FaultPlan, SpanStore

# HTTP statuses a test asks for, as the gRPC codes an OTLP backend would send instead.
_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
_WORKERS = 16


class _Service:
    """What both services share: the store, and the faults to answer with."""

    def __init__(self, store: SpanStore, faults: FaultPlan, stopping: threading.Event) -> None:
        self._store, self._faults, self._stopping = store, faults, stopping

    def _fault(self, context: Any) -> None:
        """Answers the request with the planned fault (``context.abort`` raises), if there is one."""
        fault, generation = self._faults.take()
        if fault.mode == "hang":
            self._store.count_request("hung")
            self._faults.hold(generation, self._stopping)
            context.abort(grpc.StatusCode.UNAVAILABLE, "receiver stopped hanging")
        if fault.mode == "hold":  # a slow backend: the answer comes, once the behaviour changes
            self._faults.hold_answer(generation, self._stopping, self._store)
        if fault.mode == "status":
            self._store.count_request("rejected")
            if fault.retry_after is not None:
                info = RetryInfo()
                info.retry_delay.FromNanoseconds(int(fault.retry_after * 1e9))
                context.set_trailing_metadata((("google.rpc.retryinfo-bin", info.SerializeToString()),))
            context.abort(_CODES.get(fault.status, grpc.StatusCode.UNKNOWN), f"injected status {fault.status}")


class _TraceService(_Service, trace_service_pb2_grpc.TraceServiceServicer):
    def Export(self, request: ExportTraceServiceRequest, context: Any) -> ExportTraceServiceResponse:
        self._fault(context)
        self._store.record(request)
        return ExportTraceServiceResponse()


class _LogsService(_Service, logs_service_pb2_grpc.LogsServiceServicer):
    def Export(self, request: ExportLogsServiceRequest, context: Any) -> ExportLogsServiceResponse:
        self._fault(context)
        self._store.record_logs(request)
        return ExportLogsServiceResponse()


class GRPCEndpoint:
    """A listening OTLP/gRPC server; ``stop`` closes the port and releases hung requests."""

    def __init__(self, port: int, store: SpanStore, faults: FaultPlan, max_bytes: int = 0) -> None:
        self._faults = faults
        self._stopping = threading.Event()
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="otlp-grpc"),
            # gRPC shares ports by default; a second receiver on a taken port must fail, not split the traffic.
            options=[("grpc.so_reuseport", 0)]
            + ([("grpc.max_receive_message_length", max_bytes)] if max_bytes > 0 else []),
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _TraceService(store, faults, self._stopping), self._server
        )
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _LogsService(store, faults, self._stopping), self._server
        )
        self.port: int = self._server.add_insecure_port(f"127.0.0.1:{port}")
        if self.port == 0:
            raise OSError(f"cannot bind 127.0.0.1:{port}")
        self._server.start()

    def stop(self) -> None:
        self._stopping.set()
        self._faults.wake()
        self._server.stop(grace=None).wait(5.0)
