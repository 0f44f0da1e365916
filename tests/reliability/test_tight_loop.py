"""A tight loop of ``on_end`` where the worker must wait for a CPU, not only for the GIL."""

from __future__ import annotations

import os
from typing import Any

import pytest
from spanbatch import BatchSpanProcessor

from tests.helpers import CountingExporter, ReportedStats, balanced, in_child, make_span

pytestmark = pytest.mark.alone  # a tight loop: the worker must be scheduled during it

SPANS = 60_000


def end_in_a_tight_loop_on_one_cpu() -> dict[str, Any]:
    """In a forked child pinned to one CPU (the worker thread inherits it): default settings,
    a counting exporter, one finished span ended ``SPANS`` times as the ``on_end`` benchmark does."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    exporter = CountingExporter()
    processor = BatchSpanProcessor(exporter)
    on_end, span = processor.on_end, make_span()
    for _ in range(SPANS):
        on_end(span)
    flushed = processor.force_flush(30_000)
    stats = processor.stats()
    processor.shutdown()
    return {
        "flushed": flushed,
        "counted": exporter.count,
        "stats": [stats.enqueued, stats.exported, stats.queued, stats.in_flight, dict(stats.dropped)],
    }


@pytest.mark.timeout(60)
@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs os.sched_setaffinity (Linux)")
def test_a_tight_loop_at_default_settings_loses_nothing_on_one_cpu() -> None:
    # A worker woken for a full batch is runnable, but the loop keeps the only CPU until the
    # kernel preempts it (up to a scheduler tick: several ms, while 1,536 more spans fill the
    # queue in well under one). So does any busy machine where the loop's CPU is the one free.
    # The handoff must not wait for the worker to ask for the GIL: it yields to it first.
    report = in_child(end_in_a_tight_loop_on_one_cpu)
    stats = ReportedStats(*report["stats"])
    assert balanced(stats)
    assert stats.dropped_total == 0, stats
    assert report["flushed"] is True
    assert (stats.exported, report["counted"]) == (SPANS, SPANS)
