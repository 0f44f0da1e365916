"""spanbatch's OTLP span exporters: the stock transports with requests encoded in Rust.

``spanbatch.exporter.OTLPSpanExporter`` speaks OTLP/HTTP (protobuf) and needs
``opentelemetry-exporter-otlp-proto-http``; ``spanbatch.exporter.grpc.OTLPSpanExporter``
speaks OTLP/gRPC and needs ``opentelemetry-exporter-otlp-proto-grpc``.
"""

from __future__ import annotations

from spanbatch.exporter._http import OTLPSpanExporter

__all__ = ["OTLPSpanExporter"]
