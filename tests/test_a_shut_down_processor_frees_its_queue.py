"""A processor shut down and drained, that its provider still holds, gives its queue's memory back (stock's deque
does): one global provider with a processor added per test must not grow by a queue per test. Its counts read as
before, and what it is handed afterwards is counted ``shutdown``."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

import pytest
import spanbatch
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

from tests.helpers import RecordingExporter, balanced, provider_with
from tests.helpers.logs import emit_events, logger_provider_with

SLOTS = 1 << 16  # the largest queue kept in a preallocated ring (16 B a slot)
PROCESSORS = 24


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.timeout(120)
def test_shut_down_processors_kept_alive_do_not_keep_their_queues() -> None:
    kept = []
    spanbatch.BatchSpanProcessor(RecordingExporter(), max_queue_size=SLOTS).shutdown()  # first-use costs
    gc.collect()
    before = rss_bytes()
    for _ in range(PROCESSORS):
        processor = spanbatch.BatchSpanProcessor(RecordingExporter(), max_queue_size=SLOTS)
        processor.shutdown()
        kept.append(processor)
    gc.collect()
    grown = rss_bytes() - before
    # Kept, the rings alone would be 1 MB each.
    assert grown < PROCESSORS * SLOTS * 16 / 8, f"{grown / PROCESSORS / 1024:.0f} KB per processor"


@pytest.mark.timeout(30)
def test_a_shut_down_processor_counts_as_before_once_its_queue_is_freed() -> None:
    exporter = RecordingExporter()
    processor = spanbatch.BatchSpanProcessor(exporter, max_queue_size=SLOTS, schedule_delay_millis=60_000)
    tracer = provider_with(processor).get_tracer("tests")
    for _ in range(10):
        tracer.start_span("kept").end()
    processor.shutdown()
    assert len(exporter.spans) == 10
    assert processor.lanes[0].core.max_queue_size == SLOTS
    for _ in range(3):
        tracer.start_span("late").end()
    stats = processor.stats()
    assert (stats.enqueued, stats.exported, stats.queued, stats.in_flight) == (13, 10, 0, 0)
    assert stats.dropped["shutdown"] == 3
    assert balanced(stats)
    assert processor.force_flush(1_000) is False
    processor.shutdown()  # again: nothing to do
    assert processor.stats() == stats


@pytest.mark.timeout(30)
def test_a_shut_down_log_processor_counts_as_before_once_its_queue_is_freed() -> None:
    exporter = InMemoryLogRecordExporter()
    processor = spanbatch.BatchLogRecordProcessor(exporter, max_queue_size=SLOTS, schedule_delay_millis=60_000)
    provider = logger_provider_with(processor)
    emit_events(provider, 4)
    processor.shutdown()
    emit_events(provider, 2)
    stats = processor.stats()
    assert (stats.enqueued, stats.exported, stats.dropped["shutdown"]) == (6, 4, 2)
    assert balanced(stats)
    assert len(exporter.get_finished_logs()) == 4


GEVENT_APP = """
from gevent import monkey

monkey.patch_all()
import gc
import os

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import spanbatch


def rss_bytes():
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


spanbatch.BatchSpanProcessor(InMemorySpanExporter(), max_queue_size=1 << 16).shutdown()
gc.collect()
before, kept = rss_bytes(), []
for _ in range(24):
    processor = spanbatch.BatchSpanProcessor(InMemorySpanExporter(), max_queue_size=1 << 16)
    processor.shutdown()
    kept.append(processor)
gc.collect()
print((rss_bytes() - before) // 24 // 1024)
"""


@pytest.mark.timeout(120)
def test_under_gevent_a_shut_down_processor_frees_its_queue_too() -> None:
    """The same under gevent, whose lane workers are ``OSThread``s: an ended one must let go of what it ran with
    (the ``LaneWork``, holding the old core), as ``threading.Thread`` does (found by review: 1023 KB per processor)."""
    pytest.importorskip("gevent")
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", GEVENT_APP], capture_output=True, text=True, timeout=100, check=True
    )
    kb_per_processor = int(out.stdout.split()[-1])
    assert kb_per_processor < 128, f"{kb_per_processor} KB per processor"
