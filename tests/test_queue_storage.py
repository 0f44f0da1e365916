"""A lane's queue behaves the same in both its storages: the preallocated ring (up to 65,536 slots)
and the blocks allocated as spans come (larger queues)."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from spanbatch._core import BatchCore

from tests.helpers.spans import make_span

LONG = 600_000.0
RING_SLOTS = 1 << 16


def offered_spans(count: int) -> list[ReadableSpan]:
    """``count`` spans: the first and last four distinct, one span repeated in between (cheap to make)."""
    filler = make_span(span_id=99)
    return [make_span(span_id=i + 1) if i < 4 or i >= count - 4 else filler for i in range(count)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("capacity", [RING_SLOTS, RING_SLOTS + 1], ids=["ring", "blocks"])
@pytest.mark.parametrize(("policy", "kept"), [("oldest", "newest ones"), ("newest", "first ones")])
def test_a_full_queue_keeps_its_bound_and_counts_what_it_drops(capacity: int, policy: str, kept: str) -> None:
    core = BatchCore(capacity, LONG, capacity, drop_policy=policy)
    offered = offered_spans(capacity + 3)
    for span in offered:
        core.on_end(span)
    s = core.stats()
    assert core.queue_len() == capacity
    assert (s.enqueued, s.queued, s.dropped["queue_full"]) == (capacity + 3, capacity, 3)
    core.begin_shutdown()
    batch = (core.next_batches(1) or [[]])[0]
    expected = offered[3:] if kept == "newest ones" else offered[:capacity]
    assert list(map(id, batch)) == list(map(id, expected))
    core.finish_batch(batch, True)
    s = core.stats()
    assert s.enqueued == s.exported + s.queued + s.in_flight + sum(s.dropped.values())
