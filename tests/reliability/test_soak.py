"""A back end that keeps going down and coming back while threads end spans: the books still balance.

Delivery over a flapping connection is at least once at best (a request the receiver recorded may
still fail for the exporter), so the exact checks are: every received id was ended here, nothing the
processor counts as exported is missing, and nothing beyond exported + export_failed arrived.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from spanbatch import BatchSpanProcessor
from spanbatch.testing import OTLPReceiver

from tests.helpers import balanced, end_spans, provider_with, run_in_threads

Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture

# Down longer than the exporter's 1 s timeout, so some exports must fail.
DOWN_SECONDS = 1.5
UP_SECONDS = 0.5


def flap(rx: OTLPReceiver, stop: threading.Event, flaps: list[int]) -> None:
    while not stop.is_set() and flaps[0] < 1000:
        rx.set_behaviour("down")
        flaps[0] += 1
        stop.wait(DOWN_SECONDS)
        rx.set_behaviour("ok")
        stop.wait(UP_SECONDS)


def run_soak(shutdown_later: Later, protocol: str, seconds: float, threads: int, pause: float) -> None:
    """Each producer ends 50 spans, then sleeps ``pause`` seconds, for ``seconds`` seconds."""
    with OTLPReceiver(protocol) as rx:  # type: ignore[arg-type]
        processor = shutdown_later(
            BatchSpanProcessor(rx.span_exporter(timeout=1), max_queue_size=20_000, schedule_delay_millis=100)
        )
        provider = provider_with(processor)
        ids: list[set[bytes]] = [set() for _ in range(threads)]
        stop, flaps = threading.Event(), [0]

        def produce(index: int) -> None:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and len(ids[index]) < 10_000_000:
                ids[index] |= end_spans(provider, 50, f"soak-{index}")
                time.sleep(pause)

        flapper = threading.Thread(target=flap, args=(rx, stop, flaps))
        flapper.start()
        try:
            run_in_threads([functools.partial(produce, i) for i in range(threads)], timeout=seconds + 60)
        finally:
            stop.set()
            flapper.join(10)
        rx.set_behaviour("ok")
        assert processor.force_flush(30_000)
        stats = processor.stats()
        provider.shutdown()
        received = rx.span_ids()
        ended = set().union(*ids)
        print(f"\n{protocol}: {len(ended)} spans, {flaps[0]} outages, {stats}")

    assert flaps[0] >= 2
    assert stats.enqueued == len(ended)
    assert stats.queued == stats.in_flight == 0
    assert stats.dropped["export_failed"] > 0  # the outages really cost spans, and they were counted
    assert balanced(stats)
    assert received <= ended
    assert stats.exported <= len(received) <= stats.exported + stats.dropped["export_failed"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_flapping_backend_keeps_the_books(protocol: str, shutdown_later: Later) -> None:
    run_soak(shutdown_later, protocol, seconds=5.0, threads=4, pause=0.005)


# The same run for minutes, kept apart so that its own marks gate and bound it.
@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_flapping_backend_soak(protocol: str, shutdown_later: Later) -> None:
    run_soak(shutdown_later, protocol, seconds=60.0, threads=8, pause=0.02)
