"""spanbatch's OTLP span and log exporters: the stock transports with requests encoded in Rust.

``spanbatch.exporter.OTLPSpanExporter`` and ``spanbatch.exporter.OTLPLogExporter`` speak
OTLP/HTTP (protobuf) and need ``opentelemetry-exporter-otlp-proto-http`` (extra ``otlp-http``);
``spanbatch.exporter.grpc.OTLPSpanExporter`` and ``spanbatch.exporter.grpc.OTLPLogExporter``
speak OTLP/gRPC and need ``opentelemetry-exporter-otlp-proto-grpc`` (extra ``otlp-grpc``).
Each is imported on first use, so either works without the other's package installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spanbatch._releases import require_release

if TYPE_CHECKING:
    from spanbatch.exporter._http import OTLPSpanExporter
    from spanbatch.exporter._http_logs import OTLPLogExporter

__all__ = ["OTLPLogExporter", "OTLPSpanExporter"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        # First: 1.45.0 and 1.45.1 have the stock hooks but default to a transport the Rust one does not take over
        # (and need no requests), and an older SDK lacks the log exporter's parts, which would fail to import
        # without saying what to install.
        require_release(
            "opentelemetry-exporter-otlp-proto-http",
            (1, 45, 2),
            f"spanbatch.exporter.{name}",
            "opentelemetry-exporter-otlp-proto-http>=1.45.2 (Python >= 3.10)",
            "otlp-http",
        )
    if name == "OTLPSpanExporter":
        from spanbatch.exporter._http import OTLPSpanExporter  # noqa: PLC0415

        return OTLPSpanExporter
    if name == "OTLPLogExporter":
        from spanbatch.exporter._http_logs import OTLPLogExporter  # noqa: PLC0415

        return OTLPLogExporter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
