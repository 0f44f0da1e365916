"""Forked children export their own spans; the parent's queued spans are exported once, by the parent."""

from __future__ import annotations

import json
import multiprocessing
import os
import select
import signal
import time
from typing import Any, Callable

import pytest
import spanbatch

from tests.conftest import RecordingExporter, balanced, libc_fork, make_span

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork"),
    pytest.mark.timeout(60),
]
LONG = 60_000


def python_fork() -> int:
    return os.fork()


def in_child(fork: Callable[[], int], child: Callable[[], dict[str, Any]], timeout: float = 30) -> dict[str, Any]:
    """Runs ``child`` in a forked process and returns what it reported; kills it if it hangs."""
    read_end, write_end = os.pipe()
    pid = fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_end)
            os.write(write_end, json.dumps(child()).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    report = b""
    deadline = time.monotonic() + timeout
    with os.fdopen(read_end, "rb") as pipe:
        while time.monotonic() < deadline:
            if select.select([pipe], [], [], 0.1)[0]:
                chunk = os.read(pipe.fileno(), 65536)
                if not chunk:
                    break
                report += chunk
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"forked child {pid} did not finish within {timeout} s")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return dict(json.loads(report))


def child_report(processor: spanbatch.BatchSpanProcessor, exporter: RecordingExporter) -> dict[str, Any]:
    flushed = processor.force_flush(10_000)
    stats = processor.stats()
    return {
        "flushed": flushed,
        "names": exporter.names(),
        "stats": {"enqueued": stats.enqueued, "exported": stats.exported, **stats.dropped},
        "balanced": balanced(stats),
    }


@pytest.mark.parametrize("fork", [python_fork, libc_fork], ids=["os.fork", "libc-fork"])
def test_child_of_an_idle_parent_exports_all_its_spans(fork: Callable[[], int]) -> None:
    exporter = RecordingExporter()
    processor = spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG)
    processor.on_end(make_span("before-fork"))
    assert processor.force_flush(5000)

    def child() -> dict[str, Any]:
        for i in range(3):
            processor.on_end(make_span(f"child{i}"))
        return child_report(processor, exporter)

    report = in_child(fork, child)
    assert report["flushed"]
    assert report["balanced"]
    assert report["names"] == ["before-fork", "child0", "child1", "child2"]  # the first one was the parent's
    assert report["stats"]["exported"] == 3
    processor.shutdown()
    assert exporter.names() == ["before-fork"]


def test_os_fork_child_does_not_export_the_parents_queued_spans() -> None:
    exporter = RecordingExporter()
    processor = spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG)
    for i in range(5):
        processor.on_end(make_span(f"parent{i}"))

    def child() -> dict[str, Any]:
        processor.on_end(make_span("child"))
        return child_report(processor, exporter)

    report = in_child(python_fork, child)
    assert report["names"] == ["child"]
    assert report["stats"]["enqueued"] == 1
    assert report["balanced"]
    assert processor.force_flush(5000)
    assert exporter.names() == [f"parent{i}" for i in range(5)]
    processor.shutdown()


def test_libc_fork_with_a_busy_parent_counts_what_the_child_cannot_attribute() -> None:
    exporter = RecordingExporter()
    processor = spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG)
    for i in range(5):
        processor.on_end(make_span(f"parent{i}"))

    def child() -> dict[str, Any]:
        processor.on_end(make_span("mixed-in"))
        report = child_report(processor, exporter)  # notices the fork here
        processor.on_end(make_span("after"))
        return {"first": report, "second": child_report(processor, exporter)}

    report = in_child(libc_fork, child)
    first, second = report["first"], report["second"]
    # The inherited queue mixes 5 parent spans with the child's first one: none is exported twice.
    assert first["names"] == []
    assert first["balanced"]
    assert first["stats"]["fork"] == 6
    assert second["names"] == ["after"]
    assert second["balanced"]
    assert processor.force_flush(5000)
    assert exporter.names() == [f"parent{i}" for i in range(5)]
    processor.shutdown()


def test_libc_fork_is_noticed_at_the_first_span_of_an_idle_queue() -> None:
    exporter = RecordingExporter()
    processor = spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=50)

    def child() -> dict[str, Any]:
        processor.on_end(make_span("child"))
        # No flush: the timer of a worker restarted by the push itself must export it.
        exported = exporter.wait_for(1, timeout=10)
        return {"exported": exported, "names": exporter.names(), "pid_ok": processor.lanes[0].core.pid == os.getpid()}

    report = in_child(libc_fork, child)
    assert report == {"exported": True, "names": ["child"], "pid_ok": True}
    processor.shutdown()


def test_multiprocessing_fork_children_each_export_their_own() -> None:
    exporter = RecordingExporter()
    processor = spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG)
    processor.on_end(make_span("parent"))
    context = multiprocessing.get_context("fork")
    results = context.Queue()

    def work(n: int) -> None:
        for i in range(n):
            processor.on_end(make_span(f"child-{n}-{i}"))
        processor.force_flush(10_000)
        results.put(exporter.names())

    children = [context.Process(target=work, args=(n,)) for n in (1, 2, 3)]
    try:
        for c in children:
            c.start()
        names = sorted(tuple(results.get(timeout=30)) for _ in children)
        for c in children:
            c.join(10)
            assert c.exitcode == 0
    finally:
        for c in children:
            if c.is_alive():
                c.kill()
    assert names == [tuple(f"child-{n}-{i}" for i in range(n)) for n in (1, 2, 3)]
    processor.shutdown()
    assert exporter.names() == ["parent"]


def test_a_processor_shut_down_before_the_fork_stays_shut_down_in_the_child() -> None:
    exporter = RecordingExporter()
    processor = spanbatch.BatchSpanProcessor(exporter)
    processor.shutdown()

    def child() -> dict[str, Any]:
        processor.on_end(make_span())
        return {"flush": processor.force_flush(100), "dropped": processor.stats().dropped["shutdown"]}

    assert in_child(python_fork, child) == {"flush": False, "dropped": 1}
