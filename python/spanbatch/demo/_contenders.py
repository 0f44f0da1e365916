"""The two set-ups the demo compares: the stock processor and exporter, and spanbatch with its best exporter."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor as StockBatchSpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

from spanbatch.processor import BatchSpanProcessor

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Setup:
    """A processor ready for a TracerProvider, and how to read its drops by reason (None: it counts none)."""

    processor: SpanProcessor
    exporter_name: str
    dropped: Callable[[], Mapping[str, int]] | None


def _stock_exporter(endpoint: str) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

    return OTLPSpanExporter(endpoint=endpoint)


def best_exporter(endpoint: str) -> tuple[SpanExporter, str]:
    """spanbatch's Rust-encoding OTLP/HTTP exporter where this build has one, else the stock one."""
    try:
        # Looked up at run time: the module ships with the Rust OTLP exporter, and older builds lack it.
        module = importlib.import_module("spanbatch.exporter")
        exporter: SpanExporter = module.OTLPSpanExporter(endpoint=endpoint)
    except (ImportError, AttributeError):
        logger.debug("spanbatch.exporter is not available; using the stock OTLP/HTTP exporter", exc_info=True)
        return _stock_exporter(endpoint), "stock OTLP/HTTP exporter"
    return exporter, "spanbatch OTLP/HTTP exporter (Rust encoding)"


def stock(endpoint: str) -> Setup:
    # The stock processor counts no drops one could read (its "Queue full" warning is logged once), so the
    # table shows its losses as spans produced but never received.
    return Setup(StockBatchSpanProcessor(_stock_exporter(endpoint)), "stock OTLP/HTTP exporter", None)


def spanbatch(endpoint: str) -> Setup:
    exporter, name = best_exporter(endpoint)
    processor = BatchSpanProcessor(exporter)
    return Setup(processor, name, lambda: {k: v for k, v in processor.stats().dropped.items() if v})


CONTENDERS: dict[str, Callable[[str], Setup]] = {"stock": stock, "spanbatch": spanbatch}
