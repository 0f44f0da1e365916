"""spanbatch's OTLP span exporters: the stock transports with requests encoded in Rust.

``spanbatch.exporter.OTLPSpanExporter`` speaks OTLP/HTTP (protobuf) and needs
``opentelemetry-exporter-otlp-proto-http`` (extra ``otlp-http``);
``spanbatch.exporter.grpc.OTLPSpanExporter`` speaks OTLP/gRPC and needs
``opentelemetry-exporter-otlp-proto-grpc`` (extra ``otlp-grpc``). Each is imported
on first use, so either works without the other's package installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spanbatch.exporter._http import OTLPSpanExporter

__all__ = ["OTLPSpanExporter"]


def __getattr__(name: str) -> Any:
    if name == "OTLPSpanExporter":
        from spanbatch.exporter._http import OTLPSpanExporter  # noqa: PLC0415

        return OTLPSpanExporter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
