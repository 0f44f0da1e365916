"""The queue's memory follows the spans actually queued, not ``max_queue_size``."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("psutil")

# A fresh process, so the figure is this processor's alone. A first, small processor pays for the
# imports and for whatever a lane allocates once; then the largest queue allowed is built.
CHILD = """
import gc, psutil
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanbatch import BatchSpanProcessor

me = psutil.Process()
BatchSpanProcessor(InMemorySpanExporter(), max_queue_size=2048).shutdown()
gc.collect()
before = me.memory_info().rss
processor = BatchSpanProcessor(InMemorySpanExporter(), max_queue_size=4_194_304)
print((me.memory_info().rss - before) / 2**20)
processor.shutdown()
"""

# A preallocated queue of 4,194,304 slots takes 64 MB; an empty one should take next to nothing.
BOUND_MB = 8.0


@pytest.mark.timeout(60)
def test_an_empty_queue_of_the_largest_size_takes_next_to_no_memory() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=45, check=False)
    assert done.returncode == 0, done.stderr
    growth_mb = float(done.stdout.split()[-1])
    assert growth_mb < BOUND_MB, f"constructing the processor took {growth_mb:.1f} MB"
