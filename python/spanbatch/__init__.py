"""spanbatch: a drop-in OpenTelemetry BatchSpanProcessor with a Rust core."""

from __future__ import annotations

from spanbatch._config import BatchSettings
from spanbatch._stats import SpanStats
from spanbatch.pipeline import Pipeline, install
from spanbatch.processor import BatchSpanProcessor

__all__ = ["BatchSettings", "BatchSpanProcessor", "Pipeline", "SpanStats", "install"]
