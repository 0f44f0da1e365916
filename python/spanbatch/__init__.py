"""spanbatch: drop-in OpenTelemetry batch processors (spans, log records) with a Rust core."""

from __future__ import annotations

from spanbatch._config import BatchSettings
from spanbatch._stats import SpanStats
from spanbatch._stderr_lines import show_where_nothing_shows
from spanbatch.log_processor import BatchLogRecordProcessor
from spanbatch.pipeline import Pipeline, PipelineSpans, install
from spanbatch.processor import BatchSpanProcessor

# Before any line of ours: one no handler of the application's would show goes to stderr (see ``_stderr_lines``).
show_where_nothing_shows()

__all__ = [
    "BatchLogRecordProcessor",
    "BatchSettings",
    "BatchSpanProcessor",
    "Pipeline",
    "PipelineSpans",
    "SpanStats",
    "install",
]
