"""On CPython 3.12, which starts no thread once exit has begun, each lane not shut down yet has a standby thread
waiting to call its exporter's shutdown at exit (``_standby_thread``); a lane shut down lets its thread go.

Found by review (revG30): the threads were kept for every lane still referenced, shut down or not, and never ended:
300 providers made, shut down and kept (a test suite, a provider per tenant) left 301 threads, and 301 still after
they were freed. On other versions there are none.
"""

from __future__ import annotations

import gc
import threading

import pytest
import spanbatch
from spanbatch import _standby_thread

from tests.helpers import RecordingExporter, end_spans, provider_with, wait_until

pytestmark = pytest.mark.timeout(60)


def standby_threads() -> int:
    return sum(thread.name == "spanbatch-standby" for thread in threading.enumerate())


def test_processors_shut_down_and_kept_leave_no_standby_thread_waiting() -> None:
    # What earlier tests of this process left: lanes nobody refers to are collected, and one shut down lets the
    # threads of those go (each lane made or shut down fits the threads to the lanes not shut down).
    gc.collect()
    spanbatch.BatchSpanProcessor(RecordingExporter()).shutdown()
    standby = _standby_thread._standbys.get()
    assert wait_until(lambda: standby_threads() == standby.kept)  # those told to end are gone
    before = standby.kept
    kept = []
    for _ in range(30):
        processor = spanbatch.BatchSpanProcessor(RecordingExporter())
        provider = provider_with(processor)
        end_spans(provider, 1)
        provider.shutdown()
        kept.append(provider)
    live = spanbatch.BatchSpanProcessor(RecordingExporter())
    expected = 1 if _standby_thread.NEEDED else 0  # the live one's
    assert wait_until(lambda: standby_threads() == before + expected), standby_threads()
    live.shutdown()
    del kept
    gc.collect()
    assert wait_until(lambda: standby_threads() == before), standby_threads()
