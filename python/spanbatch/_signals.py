"""What differs between the kinds of telemetry the engine batches, outside the Rust core (each kind is declared
in its processor's module: ``SPANS`` in ``processor``, ``LOGS`` in ``log_processor``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricWords:
    """How the SDK's processor metrics of one signal describe themselves (units and descriptions)."""

    unit: str
    processed: str
    queue_size_unit: str
    queue_size: str
    queue_capacity: str


@dataclass(frozen=True)
class Signal:
    """One kind of telemetry, as its exporters answer and the SDK's processor metrics name it.

    ``successes`` and ``failures`` are what its exporters' ``export`` returns. ``item`` names the
    metrics (``otel.sdk.processor.<item>.*``), described by ``metric_words``; ``noun`` and ``items``
    (its plural) count them in spanbatch's own lines (``counted``); ``component_type`` is the
    ``otel.component.type`` of a processor of this kind; ``exporting`` is the word the stock
    processor's log lines use for them and ``result_type`` the name of their export result.
    ``drop_reasons`` are those its ``stats().dropped`` lists.
    """

    item: str
    noun: str
    items: str
    component_type: str
    successes: tuple[object, ...]
    failures: tuple[object, ...]
    exporting: str
    result_type: str
    metric_words: MetricWords
    drop_reasons: tuple[str, ...]

    def counted(self, count: int) -> str:
        """``count`` of these items in words: "1 span", "3 spans"."""
        return f"{count} {self.noun if count == 1 else self.items}"
