"""``on_end`` skips its hand-over checks when no export thread waits for the GIL (its fast path); a
worker woken for a batch that does wait for it must still get it from ``on_end``, for an exporter
without a span encoder too (nothing is read ahead there), not only at the next forced switch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import spanbatch

from tests.helpers import CountingExporter, balanced, make_span

pytestmark = pytest.mark.alone  # a tight loop: the worker must be scheduled during it


@pytest.mark.timeout(60)
def test_a_tight_loop_of_on_end_hands_the_gil_to_a_woken_worker(shutdown_later: Callable[[Any], Any]) -> None:
    exporter = CountingExporter()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter))  # default settings: a batch per 512
    core = processor.lanes[0].core
    on_end, span, total = processor.on_end, make_span(), 50_000
    # A loop that never lets go of the GIL by itself: each woken worker asks for it from within.
    for _ in range(total):
        on_end(span)
    handoffs = core.gil_handoffs
    assert processor.force_flush(30_000)
    stats = processor.stats()
    assert handoffs > 0
    assert stats.enqueued == total
    assert exporter.count == stats.exported
    assert balanced(stats)
