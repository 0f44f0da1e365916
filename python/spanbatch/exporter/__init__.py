"""spanbatch's OTLP span and log exporters: the stock transports with requests encoded in Rust.

``spanbatch.exporter.OTLPSpanExporter`` and ``spanbatch.exporter.OTLPLogExporter`` speak
OTLP/HTTP (protobuf) and need ``opentelemetry-exporter-otlp-proto-http`` (extra ``otlp-http``);
``spanbatch.exporter.grpc.OTLPSpanExporter`` and ``spanbatch.exporter.grpc.OTLPLogExporter``
speak OTLP/gRPC and need ``opentelemetry-exporter-otlp-proto-grpc`` (extra ``otlp-grpc``).
Each is imported on first use, so either works without the other's package installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spanbatch.exporter._http import OTLPSpanExporter
    from spanbatch.exporter._http_logs import OTLPLogExporter

__all__ = ["OTLPLogExporter", "OTLPSpanExporter"]


def __getattr__(name: str) -> Any:
    if name == "OTLPSpanExporter":
        from spanbatch.exporter._http import OTLPSpanExporter  # noqa: PLC0415

        return OTLPSpanExporter
    if name == "OTLPLogExporter":
        from spanbatch.exporter._http_logs import OTLPLogExporter  # noqa: PLC0415

        return OTLPLogExporter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
