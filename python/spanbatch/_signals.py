"""The kinds of telemetry the engine batches, and what differs between them outside the Rust core."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.sdk.trace.export import SpanExportResult


@dataclass(frozen=True)
class Signal:
    """One kind of telemetry, as its exporters answer and the SDK's processor metrics name it.

    ``success`` and ``failure`` are what its exporters' ``export`` returns. ``item`` names the
    metrics (``otel.sdk.processor.<item>.*``, unit ``{<item>}``) and the processor in their
    descriptions; ``items`` counts them there; ``component_type`` is the ``otel.component.type``
    of a processor of this kind.
    """

    item: str
    items: str
    component_type: str
    success: object
    failure: object


SPANS = Signal("span", "spans", "batching_span_processor", SpanExportResult.SUCCESS, SpanExportResult.FAILURE)
