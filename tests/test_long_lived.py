"""Resources over a long-lived process: what make → use → drop (or shut down) leaves behind, per cycle.

Apps and test suites build and drop providers, processors and exporters over and over; what one cycle
leaves must not pile up. The stock exporters are the floor: dropped, they are freed at once by
reference counting and leave no thread behind.
"""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import spanbatch
from spanbatch.testing import OTLPReceiver

from tests.helpers import end_spans, provider_with, wait_until
from tests.helpers.spill import spilling_exporter

pytestmark = pytest.mark.timeout(90)

REPLAY_THREAD = "spanbatch-spill-replay"


@contextmanager
def cyclic_gc_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def replay_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == REPLAY_THREAD]


def test_an_exporter_with_a_spill_directory_is_freed_without_the_cyclic_gc(
    receiver: OTLPReceiver, tmp_path: Path
) -> None:
    # The stock exporter (and spanbatch's without a spill) is freed as soon as the last reference goes; one that
    # waits for the cyclic GC keeps its connection pool or gRPC channel (when never shut down) until then.
    with cyclic_gc_off():
        exporter = spilling_exporter(receiver, tmp_path)
        processor = spanbatch.BatchSpanProcessor(exporter)
        end_spans(provider_with(processor), 10)
        assert processor.force_flush(10_000)
        processor.shutdown()
        assert receiver.wait_for_spans(10)
        gone = weakref.ref(exporter)
        del exporter, processor
        assert wait_until(lambda: gone() is None, 5), "the exporter is kept alive by a reference cycle"


def test_dropped_exporters_leave_no_replay_thread_behind_while_their_backend_is_down(
    receiver: OTLPReceiver, tmp_path: Path
) -> None:
    # A provider per test (or per request) with a backend that is down: each dropped exporter's replay thread
    # probed the backend for as long as it stayed down, holding the exporter, so they piled up one per cycle.
    receiver.set_behaviour("down")
    before = set(replay_threads())
    for _ in range(3):
        exporter = spilling_exporter(receiver, tmp_path)
        processor = spanbatch.BatchSpanProcessor(exporter)
        end_spans(provider_with(processor), 5)
        assert processor.force_flush(10_000)
        assert exporter.spill_counts().spilled == 5
        del exporter, processor  # dropped without shutdown, as a test or request that forgets to
    gc.collect()
    assert wait_until(lambda: not set(replay_threads()) - before, 10), (
        f"{len(set(replay_threads()) - before)} replay threads left"
    )


def test_an_exporter_dropped_while_its_backend_fails_is_freed_with_its_replay_thread_without_the_cyclic_gc(
    receiver: OTLPReceiver, tmp_path: Path
) -> None:
    # A failed export or replay probe must leave no reference cycle holding the exporter: dropped, it would live on
    # until the cyclic GC happened to run (a collection before that failure does not free it), its replay thread
    # probing the backend meanwhile. The backend answers every request "unavailable", so the probes can be counted.
    receiver.set_behaviour("status", status=503)
    before = set(replay_threads())
    with cyclic_gc_off():
        exporter = spilling_exporter(receiver, tmp_path)
        processor = spanbatch.BatchSpanProcessor(exporter)
        end_spans(provider_with(processor), 5)
        assert processor.force_flush(10_000)
        assert exporter.spill_counts().spilled == 5
        assert receiver.wait_for_requests(receiver.stats().requests + 1), "the replay thread never probed"
        gone = weakref.ref(exporter)
        del exporter, processor  # dropped without shutdown, as a test or request that forgets to
        assert wait_until(lambda: gone() is None, 10), "the exporter is kept alive by a reference cycle"
        assert wait_until(lambda: not set(replay_threads()) - before, 10), "its replay thread lives on"


def test_what_a_dropped_exporter_spilled_is_replayed_by_a_live_one_for_the_same_backend(
    receiver: OTLPReceiver, tmp_path: Path
) -> None:
    # A dropped exporter stops its replays; another exporter for that backend, made before the spill and exporting
    # fine once the backend is back, never spills, so only its own construction (or the next process) would have
    # looked at the directory: the dropped one's spans stayed on disk.
    receiver.set_behaviour("down")
    dropped = spanbatch.BatchSpanProcessor(spilling_exporter(receiver, tmp_path))
    live = spanbatch.BatchSpanProcessor(spilling_exporter(receiver, tmp_path))
    try:
        spilled = end_spans(provider_with(dropped), 5, "dropped")
        assert dropped.force_flush(20_000)
        assert dropped.span_exporter.spill_counts().spilled == 5
        del dropped  # without a shutdown, as a test or request that forgets to
        gc.collect()
        receiver.set_behaviour("ok")
        later = end_spans(provider_with(live), 3, "live")
        assert live.force_flush(20_000)
        assert receiver.wait_for_spans(8, timeout=30)
        assert receiver.span_ids() == spilled | later
    finally:
        live.shutdown()
