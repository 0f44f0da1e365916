"""Reading what a processor reported through OpenTelemetry metrics."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader


def metric_points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], int]]]:
    """Every data point the reader collects now: (attributes, value) pairs by metric name."""
    data = reader.get_metrics_data()
    found: dict[str, list[tuple[dict[str, Any], int]]] = {}
    for resource_metrics in data.resource_metrics if data else []:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                points = [(dict(p.attributes or {}), p.value) for p in metric.data.data_points]
                found.setdefault(metric.name, []).extend(points)
    return found
