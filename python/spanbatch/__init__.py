"""spanbatch: drop-in OpenTelemetry batch processors (spans, log records) with a Rust core."""

from __future__ import annotations

from spanbatch._config import BatchSettings
from spanbatch._stats import SpanStats
from spanbatch.log_processor import BatchLogRecordProcessor
from spanbatch.pipeline import Pipeline, PipelineSpans, install
from spanbatch.processor import BatchSpanProcessor

__all__ = [
    "BatchLogRecordProcessor",
    "BatchSettings",
    "BatchSpanProcessor",
    "Pipeline",
    "PipelineSpans",
    "SpanStats",
    "install",
]
