"""A child forked while another thread of its parent holds spanbatch state it then needs works all the same.

Each case runs in a fresh interpreter (a subprocess with a timeout), where one read on the parent's thread is
made slow so that the fork lands, every time, while that thread holds the state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from spanbatch.testing import OTLPReceiver

pytestmark = [pytest.mark.timeout(120), pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")]

# A uWSGI-style master (it forks from C: Python's fork hooks never run) whose backend is down: its exporter
# spills to disk, and its replay thread looks for stored files (a directory listing, without the GIL) while it
# holds its spiller's condition. The listing is made slow, on that thread and under that condition only, so
# that the fork lands in that window every time.
_FORK_WHILE_THE_REPLAY_THREAD_LISTS = textwrap.dedent(
    """
    import ctypes, json, os, random, sys, threading, time, types
    from opentelemetry.sdk.trace import TracerProvider
    from spanbatch import BatchSpanProcessor
    from spanbatch.exporter import OTLPSpanExporter

    endpoint, spill_dir = sys.argv[1], sys.argv[2]
    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=1, spill_dir=spill_dir)
    spiller = exporter._spiller
    listing = threading.Event()

    class SlowToList(types.ModuleType):
        def __getattribute__(self, name):
            if name == "scandir" and not listing.is_set() and spiller._wake._is_owned():
                listing.set()
                time.sleep(1.0)  # without the GIL, as a listing of a slow disk
            return super().__getattribute__(name)

    processor = BatchSpanProcessor(exporter, export_timeout_millis=3000)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    tracer.start_span("parent").end()
    assert processor.force_flush(10_000) and processor.stats().spilled == 1, processor.stats()
    os.__class__ = SlowToList
    assert listing.wait(20), "the replay thread never listed the directory"
    pid = int(ctypes.PyDLL(None).fork())
    if pid == 0:
        os.__class__ = types.ModuleType
        random.seed()
        # The application starts a thread of its own first (a pool, say): it may get the stack, and the id, of
        # the parent's thread that held the condition; the worker then gets another.
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


def test_libc_forked_child_of_a_spilling_parent_spills_while_the_parent_replay_thread_lists(tmp_path: Path) -> None:
    with OTLPReceiver("http") as receiver:
        receiver.set_behaviour("down")
        run = subprocess.run(
            [sys.executable, "-c", _FORK_WHILE_THE_REPLAY_THREAD_LISTS, receiver.endpoint, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    assert run.returncode == 0, run.stderr
    child = json.loads(run.stdout.strip().splitlines()[-1])
    # Before: the child's worker waited for ever on the condition the parent's replay thread held at the fork,
    # its span never settled (in flight), and its flush gave up.
    assert child == {"flushed": True, "spilled": 1, "in_flight": 0, "seconds": child["seconds"]}
