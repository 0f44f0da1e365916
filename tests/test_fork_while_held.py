"""A child forked while another thread of its parent holds spanbatch state it then needs works all the same.

The spill cases run in a fresh interpreter (a subprocess with a timeout), where one read on the parent's thread
is made slow so that the fork lands, every time, while that thread holds the state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan
from spanbatch.testing import OTLPReceiver

from tests.helpers import RecordingExporter, balanced, in_child, libc_fork, make_span

pytestmark = [pytest.mark.timeout(120), pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")]

# A uWSGI-style master (it forks from C: Python's fork hooks never run) whose backend is down: its exporter
# spills to disk. A thread of its own holds spill state while it does I/O without the GIL: its replay thread
# holds its spiller's lock while it lists the directory ("scandir"); a thread that opens a spill file holds
# the lock of the files open ("open"). That I/O is made slow, on a thread other than the main one holding that
# state only, so that the fork lands in that window every time.
_FORK_WHILE_A_PARENT_THREAD_HOLDS = textwrap.dedent(
    """
    import ctypes, json, os, random, sys, threading, time, types
    from opentelemetry.sdk.trace import TracerProvider
    from spanbatch import BatchSpanProcessor, _spill
    from spanbatch.exporter import OTLPSpanExporter

    endpoint, spill_dir, slow_name = sys.argv[1], sys.argv[2], sys.argv[3]
    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=1, spill_dir=spill_dir)
    spiller = exporter._spiller
    holding = threading.Event()

    def holds():
        if threading.current_thread() is threading.main_thread():
            return False
        if slow_name == "scandir":
            return spiller._lock._is_owned()  # the OS's RLock: no gevent here
        return sys._getframe(2).f_code is _spill._open.__code__  # read in there, under the lock

    class SlowIO(types.ModuleType):
        def __getattribute__(self, name):
            if name == slow_name and not holding.is_set() and holds():
                holding.set()
                time.sleep(1.0)  # without the GIL, as I/O on a slow disk
            return super().__getattribute__(name)

    processor = BatchSpanProcessor(exporter, export_timeout_millis=3000)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    tracer.start_span("parent").end()
    assert processor.force_flush(10_000) and processor.stats().spilled == 1, processor.stats()
    os.__class__ = SlowIO
    assert holding.wait(20), "no thread of the parent did that I/O holding that state"
    pid = int(ctypes.PyDLL(None).fork())
    if pid == 0:
        os.__class__ = types.ModuleType
        random.seed()
        # The application starts a thread of its own first (a pool, say): it may get the stack, and the id, of
        # the parent's thread that held the lock; the worker then gets another.
        busy = threading.Thread(target=time.sleep, args=(5,), daemon=True)
        busy.start()
        tracer.start_span("child").end()
        started = time.monotonic()
        flushed = processor.force_flush(3000)
        stats = processor.stats()
        report = {"flushed": flushed, "spilled": stats.spilled, "in_flight": stats.in_flight,
                  "seconds": round(time.monotonic() - started, 2)}
        print(json.dumps(report))
        sys.stdout.flush()
        os._exit(0)
    os.waitpid(pid, 0)
    processor.shutdown()
    """
)


@pytest.mark.parametrize(
    "slow_name", ["scandir", "open"], ids=["replay-thread-holds-its-lock", "a-thread-holds-the-open-files-lock"]
)
@pytest.mark.alone  # a fork without Python's hooks: no other thread may want the GIL then
def test_libc_forked_child_of_a_spilling_parent_spills_while_a_parent_thread_holds_spill_state(
    tmp_path: Path, slow_name: str
) -> None:
    with OTLPReceiver("http") as receiver:
        receiver.set_behaviour("down")
        run = subprocess.run(
            [sys.executable, "-c", _FORK_WHILE_A_PARENT_THREAD_HOLDS, receiver.endpoint, str(tmp_path), slow_name],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    assert run.returncode == 0, run.stderr
    child = json.loads(run.stdout.strip().splitlines()[-1])
    # Before: the child's worker waited for ever, at its first spill, on the condition or lock the parent's thread
    # held at the fork: its span never settled (in flight), and its flush gave up.
    assert child == {"flushed": True, "spilled": 1, "in_flight": 0, "seconds": child["seconds"]}


class HangsInTheParent(RecordingExporter):
    """``export`` blocks in the process that made it until ``release`` is set (60 s at most); a child's returns."""

    def __init__(self) -> None:
        super().__init__()
        self.parent = os.getpid()
        self.release = threading.Event()
        self.entered = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        if os.getpid() == self.parent:
            self.entered.set()
            self.release.wait(60)
        return super().export(spans)


@pytest.mark.alone  # a fork without Python's hooks: no other thread may want the GIL then
def test_libc_forked_child_of_a_parent_whose_export_hangs_with_a_full_blocking_queue_does_not_wait_for_room(
    shutdown_later: Callable[[Any], Any],
) -> None:
    # A uWSGI-style master whose backend hangs: its worker is stuck in an export and its queue is full, so under
    # the ``block`` policy a span ended there waits for room. A child forked from C (no fork hooks) has a lane
    # of its own once it notices the fork, whose queue has room.
    exporter = HangsInTheParent()
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(
            exporter, max_queue_size=8, max_export_batch_size=4, drop_policy="block", block_timeout_millis=60_000
        )
    )
    for _ in range(4):
        processor.on_end(make_span("exporting"))
    assert exporter.entered.wait(10)
    for _ in range(8):
        processor.on_end(make_span("queued"))
    assert processor.stats().queued == 8

    def child() -> dict[str, Any]:
        processor.on_end(make_span("child"))
        flushed = processor.force_flush(10_000)
        stats = processor.stats()
        return {
            "flushed": flushed,
            "names": exporter.names(),
            "fork": stats.dropped["fork"],
            "balanced": balanced(stats),
        }

    try:
        # Before: the child's first span waited for room in the inherited queue, which no worker there drains,
        # for the whole block timeout (the child was killed after 10 s).
        report = in_child(child, libc_fork, timeout=10)
    finally:
        exporter.release.set()
    # The 8 parent spans it found queued are the parent's to export: the child counts them lost, all of them.
    assert report == {"flushed": True, "names": ["child"], "fork": 8, "balanced": True}
    assert processor.force_flush(10_000)
