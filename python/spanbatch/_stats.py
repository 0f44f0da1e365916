"""The immutable accounting snapshot returned by ``stats()``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from spanbatch._core import BatchCore


@dataclass(frozen=True)
class SpanStats:
    """Where every span a processor received is, at one instant.

    ``enqueued == exported + queued + in_flight + dropped_total`` always holds.
    ``dropped`` maps a reason (``queue_full``, ``shutdown``, ``export_failed``, ``fork``,
    ``unencodable``: the exporter's encoder left the span out of its request) to a count.
    ``retried`` counts export attempts repeated after a failure (see ``max_retries``); a batch
    that fails its last attempt counts under ``export_failed`` once.
    """

    enqueued: int = 0
    exported: int = 0
    queued: int = 0
    in_flight: int = 0
    batches: int = 0
    export_errors: int = 0
    dropped: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    retried: int = 0

    @classmethod
    def of(cls, core: BatchCore) -> SpanStats:
        enqueued, exported, queued, in_flight, batches, export_errors, dropped, retried = core.stats()
        return cls(enqueued, exported, queued, in_flight, batches, export_errors, MappingProxyType(dropped), retried)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def __add__(self, other: SpanStats) -> SpanStats:
        reasons = {**self.dropped, **other.dropped}
        return SpanStats(
            self.enqueued + other.enqueued,
            self.exported + other.exported,
            self.queued + other.queued,
            self.in_flight + other.in_flight,
            self.batches + other.batches,
            self.export_errors + other.export_errors,
            MappingProxyType({r: self.dropped.get(r, 0) + other.dropped.get(r, 0) for r in reasons}),
            self.retried + other.retried,
        )
