"""Forked children export their own spans; the parent's queued spans are exported once, by the parent."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from typing import Any

import pytest
import spanbatch

from tests.helpers import LONG, RecordingExporter, balanced, end_spans, in_child, libc_fork, make_span

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork"),
    pytest.mark.timeout(60),
]
Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


def child_report(processor: spanbatch.BatchSpanProcessor, exporter: RecordingExporter) -> dict[str, Any]:
    flushed = processor.force_flush(10_000)
    stats = processor.stats()
    return {
        "flushed": flushed,
        "names": exporter.names(),
        "stats": {"enqueued": stats.enqueued, "exported": stats.exported, **stats.dropped},
        "balanced": balanced(stats),
    }


@pytest.mark.parametrize(
    "fork",
    [os.fork, pytest.param(libc_fork, marks=pytest.mark.alone)],  # no other thread may want the GIL at a hookless fork
    ids=["os.fork", "libc-fork"],
)
def test_child_of_an_idle_parent_exports_all_its_spans(fork: Callable[[], int], shutdown_later: Later) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
    processor.on_end(make_span("before-fork"))
    assert processor.force_flush(5000)

    def child() -> dict[str, Any]:
        end_spans(processor, 3, "child", numbered=True)
        return child_report(processor, exporter)

    report = in_child(child, fork)
    assert report["flushed"]
    assert report["balanced"]
    assert report["names"] == ["before-fork", "child0", "child1", "child2"]  # the first one was the parent's
    assert report["stats"]["exported"] == 3
    processor.shutdown()
    assert exporter.names() == ["before-fork"]


def test_os_fork_child_does_not_export_the_parents_queued_spans(shutdown_later: Later) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
    end_spans(processor, 5, "parent", numbered=True)

    def child() -> dict[str, Any]:
        processor.on_end(make_span("child"))
        return child_report(processor, exporter)

    report = in_child(child)
    assert report["names"] == ["child"]
    assert report["stats"]["enqueued"] == 1
    assert report["balanced"]
    assert processor.force_flush(5000)
    assert exporter.names() == [f"parent{i}" for i in range(5)]
    processor.shutdown()


@pytest.mark.alone  # a fork without Python's hooks: no other thread may want the GIL then
def test_libc_fork_with_a_busy_parent_counts_what_the_child_cannot_attribute(shutdown_later: Later) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
    end_spans(processor, 5, "parent", numbered=True)

    def child() -> dict[str, Any]:
        processor.on_end(make_span("mixed-in"))
        report = child_report(processor, exporter)  # notices the fork here
        processor.on_end(make_span("after"))
        return {"first": report, "second": child_report(processor, exporter)}

    report = in_child(child, libc_fork)
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


@pytest.mark.alone  # a fork without Python's hooks: no other thread may want the GIL then
def test_libc_fork_is_noticed_at_the_first_span_of_an_idle_queue(shutdown_later: Later) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=50))

    def child() -> dict[str, Any]:
        processor.on_end(make_span("child"))
        # No flush: the timer of a worker restarted by the push itself must export it.
        exported = exporter.wait_for(1, timeout=10)
        return {"exported": exported, "names": exporter.names(), "pid_ok": processor.lanes[0].core.pid == os.getpid()}

    report = in_child(child, libc_fork)
    assert report == {"exported": True, "names": ["child"], "pid_ok": True}
    processor.shutdown()


def test_multiprocessing_fork_children_each_export_their_own(shutdown_later: Later) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
    processor.on_end(make_span("parent"))
    context = multiprocessing.get_context("fork")
    results = context.Queue()

    def work(n: int) -> None:
        end_spans(processor, n, f"child-{n}-", numbered=True)
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


def test_a_processor_shut_down_before_the_fork_stays_shut_down_in_the_child(shutdown_later: Later) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter))
    processor.shutdown()

    def child() -> dict[str, Any]:
        processor.on_end(make_span())
        return {"flush": processor.force_flush(100), "dropped": processor.stats().dropped["shutdown"]}

    assert in_child(child) == {"flush": False, "dropped": 1}
