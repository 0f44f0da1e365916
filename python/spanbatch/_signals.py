"""The kinds of telemetry the engine batches, and what differs between them outside the Rust core."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Signal:
    """One kind of telemetry, as the SDK's processor metrics name it.

    ``item`` names the metrics (``otel.sdk.processor.<item>.*``, unit ``{<item>}``) and the
    processor in their descriptions; ``items`` counts them there; ``component_type`` is the
    ``otel.component.type`` of a processor of this kind.
    """

    item: str
    items: str
    component_type: str


SPANS = Signal("span", "spans", "batching_span_processor")
