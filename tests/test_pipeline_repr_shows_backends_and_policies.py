"""A pipeline's ``repr`` and its log side's show the backends, the resolved export policies (as the README
promises of a processor's ``repr``) and the stats: a ``print(pipeline.logs)`` is no bare object address."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

pytestmark = pytest.mark.timeout(30)
Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


def test_both_sides_of_a_pipeline_show_backends_policies_and_stats(shutdown_later: Later) -> None:
    pipeline = shutdown_later(
        spanbatch.Pipeline(
            {"a": InMemorySpanExporter(), "b": InMemorySpanExporter()},
            log_exporters={"a": InMemoryLogRecordExporter()},
            max_retries=3,
        )
    )
    assert pipeline.logs is not None
    for side, name, backends in ((pipeline, "Pipeline", "a, b"), (pipeline.logs, "PipelineLogs", "a")):
        text = repr(side)
        assert text.startswith(f"{name}({backends}, ExportPolicies(")
        assert "max_retries=3" in text
        assert "stats=SpanStats(enqueued=0" in text
