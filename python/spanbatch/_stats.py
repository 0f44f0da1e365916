"""The immutable accounting snapshot returned by ``stats()``."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from spanbatch._core import BatchCore
from spanbatch._dataclass_repr import repr_of

if TYPE_CHECKING:
    from spanbatch._spill import SpillCounts


class DropCounts(Mapping[str, int]):
    """Spans dropped per reason: a read-only mapping that prints as the dict it holds.

    A ``MappingProxyType`` would be as read-only but prints as ``mappingproxy({...})`` inside every
    ``SpanStats`` the user prints.
    """

    __slots__ = ("_counts",)

    def __init__(self, counts: Mapping[str, int] | None = None) -> None:
        self._counts = dict(counts or {})  # a copy: the caller's dict cannot change it afterwards

    def __getitem__(self, reason: str) -> int:
        return self._counts[reason]

    def __iter__(self) -> Iterator[str]:
        return iter(self._counts)

    def __len__(self) -> int:
        return len(self._counts)

    def __repr__(self) -> str:
        return repr(self._counts)


@dataclass(frozen=True)
class SpanStats:
    """Where every span a processor received is, at one instant.

    ``enqueued == exported + spilled + queued + in_flight + dropped_total`` always holds.
    ``dropped`` maps each drop reason (``queue_full``, ``shutdown``, …: the README lists them,
    ``spanbatch._core.DROP_REASONS`` is their one table) to a count.
    ``batches`` counts the batches whose export ended (after any retries), ``export_errors`` those that
    ended in failure. ``retried`` counts export attempts repeated after a failure (see ``max_retries``); a batch
    that fails its last attempt counts under ``export_failed`` once.

    With an exporter's disk spill (``spill_dir``), ``spilled`` spans were stored on disk instead of
    being sent (or dropped); without one it stays 0.
    ``replayed`` spans (from this or an earlier process) reached the backend from disk later;
    ``spill_evicted`` spans were deleted from disk over its byte cap; ``spill_corrupt`` files were
    moved aside unread. Those three are the exporter's, not part of the sum.
    """

    enqueued: int = 0
    exported: int = 0
    queued: int = 0
    in_flight: int = 0
    batches: int = 0
    export_errors: int = 0
    dropped: Mapping[str, int] = field(default_factory=DropCounts)
    retried: int = 0
    spilled: int = 0
    replayed: int = 0
    spill_evicted: int = 0
    spill_corrupt: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.dropped, DropCounts):
            object.__setattr__(self, "dropped", DropCounts(self.dropped))  # frozen: the one way to set it

    @classmethod
    def of(cls, core: BatchCore, reasons: Collection[str] | None = None, disk: SpillCounts | None = None) -> SpanStats:
        """The core's counters, and the exporter's ``disk`` figures where it spills; with ``reasons``,
        ``dropped`` lists only those (and any other that counted a drop)."""
        s = core.stats()
        dropped = s.dropped if reasons is None else {r: n for r, n in s.dropped.items() if r in reasons or n}
        return cls(
            s.enqueued,
            s.exported,
            s.queued,
            s.in_flight,
            s.batches,
            s.export_errors,
            dropped,
            s.retried,
            s.spilled,
            *((0, 0, 0) if disk is None else (disk.replayed, disk.evicted, disk.corrupt)),
        )

    def __repr__(self) -> str:
        # The spill's figures only where a spill did something: most processors have none.
        spill = any(getattr(self, name) for name in _SPILL_FIELDS)
        return repr_of(self, [f.name for f in fields(self) if spill or f.name not in _SPILL_FIELDS])

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
            {r: self.dropped.get(r, 0) + other.dropped.get(r, 0) for r in reasons},
            self.retried + other.retried,
            self.spilled + other.spilled,
            self.replayed + other.replayed,
            self.spill_evicted + other.spill_evicted,
            self.spill_corrupt + other.spill_corrupt,
        )


_SPILL_FIELDS = ("spilled", "replayed", "spill_evicted", "spill_corrupt")
