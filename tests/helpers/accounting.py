"""The accounting invariant every processor keeps: one check for stats read here or reported by a child."""

from __future__ import annotations

from typing import NamedTuple, Protocol


class Accounted(Protocol):
    """What the invariant reads: ``spanbatch.SpanStats`` and ``ReportedStats`` both have it."""

    @property
    def enqueued(self) -> int: ...
    @property
    def exported(self) -> int: ...
    @property
    def queued(self) -> int: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def spilled(self) -> int: ...
    @property
    def dropped_total(self) -> int: ...


def balanced(stats: Accounted) -> bool:
    """Every span received is in exactly one state:
    ``enqueued == exported + spilled + queued + in_flight + dropped_total`` (``spilled``: spans an exporter
    stored on disk).

    Use it as ``assert balanced(stats)``: pytest then prints the stats when it fails.
    """
    return stats.enqueued == stats.exported + stats.spilled + stats.queued + stats.in_flight + stats.dropped_total


class ReportedStats(NamedTuple):
    """Stats a child process printed as ``[enqueued, exported, queued, in_flight, dropped]``.

    A tuple, so a test compares it with a literal: ``stats == (3, 3, 0, 0, NO_DROPS)``.
    """

    enqueued: int
    exported: int
    queued: int
    in_flight: int
    dropped: dict[str, int]

    @property
    def spilled(self) -> int:
        return 0  # a child's printed stats come from processors without a spill

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())
