"""What tests share: spans, exporters, the accounting check, threads, forks. Fixtures live in conftest.py.

``tests.helpers.receivers`` (in-process OTLP receivers) and ``tests.helpers.otlp_spans`` (span corpora
for the encoder) are imported on their own: they need the OTLP packages.
"""

from __future__ import annotations

import spanbatch
from opentelemetry.sdk.trace.export import BatchSpanProcessor as StockBatchSpanProcessor

from tests.helpers.accounting import ReportedStats, balanced
from tests.helpers.exporters import (
    CountingExporter,
    EncodingExporter,
    HangingEncodingExporter,
    HangingExporter,
    RaisingExporter,
    RecordingExporter,
    ScriptedExporter,
)
from tests.helpers.fork import collect_child, in_child, libc_fork, start_child
from tests.helpers.spans import end_spans, make_span, provider_with
from tests.helpers.threads import run_in_threads, wait_until

# The two processors behaviour shared with the stock one is checked against.
PROCESSORS = {"stock": StockBatchSpanProcessor, "spanbatch": spanbatch.BatchSpanProcessor}
LONG = 60_000  # a schedule delay no test waits for

__all__ = [
    "LONG",
    "PROCESSORS",
    "CountingExporter",
    "EncodingExporter",
    "HangingEncodingExporter",
    "HangingExporter",
    "RaisingExporter",
    "RecordingExporter",
    "ReportedStats",
    "ScriptedExporter",
    "balanced",
    "collect_child",
    "end_spans",
    "in_child",
    "libc_fork",
    "make_span",
    "provider_with",
    "run_in_threads",
    "start_child",
    "wait_until",
]
