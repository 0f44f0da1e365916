"""Spill store helpers shared by the spill tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from spanbatch._spill import Sent, SpillStore
from spanbatch.testing import OTLPReceiver


def replayed(store: SpillStore) -> list[bytes]:
    """The payloads one replay pass of ``store`` hands to a backend that takes everything, in order."""
    got: list[bytes] = []

    def send(data: bytes) -> Sent:
        got.append(data)
        return Sent.DELIVERED

    store.replay(send)
    return got


def spilling_exporter(rx: OTLPReceiver, spill_dir: Path | None, **kwargs: Any) -> Any:
    """spanbatch's span exporter for ``rx``'s protocol, spilling to ``spill_dir`` (1 s timeout unless given)."""
    kwargs.setdefault("timeout", 1)
    if rx.protocol == "http":
        from spanbatch.exporter import OTLPSpanExporter  # noqa: PLC0415

        return OTLPSpanExporter(endpoint=rx.endpoint, spill_dir=spill_dir, **kwargs)
    from spanbatch.exporter.grpc import OTLPSpanExporter as GrpcExporter  # noqa: PLC0415

    return GrpcExporter(endpoint=rx.endpoint, insecure=True, spill_dir=spill_dir, **kwargs)


def spill_files(root: Path) -> list[Path]:
    return sorted(root.glob("*/*.spill"))


def on_disk(spill: Path, names: Callable[[bytes], Iterator[str]]) -> list[str]:
    """The names of what every request stored under ``spill`` holds, as ``names`` reads one request."""
    return [
        name
        for directory in {path.parent for path in spill_files(spill)}
        for payload in replayed(SpillStore(directory, 1 << 30))
        for name in names(payload)
    ]


def span_names(payload: bytes) -> Iterator[str]:
    for resource in ExportTraceServiceRequest.FromString(payload).resource_spans:
        for scope in resource.scope_spans:
            yield from (span.name for span in scope.spans)


def log_bodies(payload: bytes) -> Iterator[str]:
    for resource in ExportLogsServiceRequest.FromString(payload).resource_logs:
        for scope in resource.scope_logs:
            yield from (record.body.string_value for record in scope.log_records)
