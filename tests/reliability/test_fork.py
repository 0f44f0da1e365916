"""Forks: a child exports its own spans, and the parent's queued spans are exported once, by the parent."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from spanbatch import BatchSpanProcessor, SpanStats
from spanbatch.testing import OTLPReceiver

from tests.helpers import (
    ScriptedExporter,
    balanced,
    collect_child,
    end_spans,
    libc_fork,
    provider_with,
    start_child,
)
from tests.helpers.fork import CHILD_TIMEOUT

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
]
Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture
# gRPC channels do not survive fork (grpcio's own limitation), so forks export over OTLP/HTTP.


def stats_dict(stats: SpanStats) -> dict[str, Any]:
    return {
        "enqueued": stats.enqueued,
        "exported": stats.exported,
        "queued": stats.queued,
        "in_flight": stats.in_flight,
        "dropped": dict(stats.dropped),
    }


def queued_parent(shutdown_later: Later, rx: OTLPReceiver, spans: int = 100) -> tuple[BatchSpanProcessor, Any]:
    """A processor holding ``spans`` queued spans named ``parent-before`` (long delay, below a batch)."""
    processor = shutdown_later(BatchSpanProcessor(rx.span_exporter(timeout=5), schedule_delay_millis=60_000))
    provider = provider_with(processor)
    end_spans(provider, spans, name="parent-before")
    assert processor.stats().queued == spans
    return processor, provider


def child_exports(processor: BatchSpanProcessor, provider: Any, name: str, count: int) -> Callable[[], dict[str, Any]]:
    def body() -> dict[str, Any]:
        end_spans(provider, count, name=name)
        flushed = processor.force_flush(10_000)
        return {"flushed": flushed, "stats": stats_dict(processor.stats())}

    return body


def finish_parent(processor: BatchSpanProcessor, provider: Any, rx: OTLPReceiver, expected_spans: int) -> SpanStats:
    end_spans(provider, 20, name="parent-after")
    assert processor.force_flush(10_000)
    stats = processor.stats()
    provider.shutdown()
    assert rx.wait_for_spans(expected_spans)
    assert rx.stats().duplicates == 0
    assert stats.enqueued == stats.exported == 120
    assert balanced(stats)
    return stats


def assert_child_clean(result: dict[str, Any], spans: int) -> None:
    assert result["flushed"] is True
    stats = result["stats"]
    assert stats["enqueued"] == stats["exported"] == spans
    assert sum(stats["dropped"].values()) == 0


def test_os_fork(http_receiver: OTLPReceiver, shutdown_later: Later) -> None:
    processor, provider = queued_parent(shutdown_later, http_receiver)
    result = collect_child(*start_child(child_exports(processor, provider, "child", 50)))
    finish_parent(processor, provider, http_receiver, 170)

    assert_child_clean(result, 50)
    assert http_receiver.span_names() == {"parent-before": 100, "child": 50, "parent-after": 20}


def test_multiprocessing_fork_start_method(http_receiver: OTLPReceiver, shutdown_later: Later) -> None:
    processor, provider = queued_parent(shutdown_later, http_receiver)
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    body = child_exports(processor, provider, "mp-child", 50)
    child = context.Process(target=lambda: send.send(body()))
    child.start()
    assert receive.poll(CHILD_TIMEOUT)
    result = receive.recv()
    child.join(CHILD_TIMEOUT)
    finish_parent(processor, provider, http_receiver, 170)

    assert child.exitcode == 0
    assert_child_clean(result, 50)
    assert http_receiver.span_names() == {"parent-before": 100, "mp-child": 50, "parent-after": 20}


def test_pre_fork_server(http_receiver: OTLPReceiver, shutdown_later: Later) -> None:
    workers = 4
    processor, provider = queued_parent(shutdown_later, http_receiver)
    children = [start_child(child_exports(processor, provider, f"worker-{i}", 200)) for i in range(workers)]
    results = [collect_child(pid, fd) for pid, fd in children]
    finish_parent(processor, provider, http_receiver, 120 + 200 * workers)

    for result in results:
        assert_child_clean(result, 200)
    expected = {"parent-before": 100, "parent-after": 20} | {f"worker-{i}": 200 for i in range(workers)}
    assert http_receiver.span_names() == expected


def test_child_starts_workers_while_the_parents_were_parked(shutdown_later: Later) -> None:
    # Regression: with parking_lot's condition variables the parked parent workers stayed in its
    # process-wide table; the child's new threads reused their stacks and the child segfaulted.
    parents = [shutdown_later(BatchSpanProcessor(ScriptedExporter())) for _ in range(4)]
    time.sleep(0.2)  # every parent worker is now parked, waiting for spans

    def body() -> dict[str, Any]:
        children = [BatchSpanProcessor(ScriptedExporter()) for _ in range(16)]
        return {"flushed": [p.force_flush(5_000) for p in children + parents]}

    results = [collect_child(*start_child(body)) for _ in range(5)]
    for processor in parents:
        processor.shutdown()

    assert results == [{"flushed": [True] * 20}] * 5


@pytest.mark.alone  # a fork without Python's hooks: no other thread may want the GIL then
def test_fork_bypassing_python_hooks_with_empty_queue(http_receiver: OTLPReceiver, shutdown_later: Later) -> None:
    processor = shutdown_later(BatchSpanProcessor(http_receiver.span_exporter(timeout=5), schedule_delay_millis=60_000))
    provider = provider_with(processor)
    result = collect_child(*start_child(child_exports(processor, provider, "child", 50), fork=libc_fork))
    end_spans(provider, 20, name="parent-after")
    assert processor.force_flush(10_000)
    provider.shutdown()

    assert_child_clean(result, 50)
    assert http_receiver.wait_for_spans(70)
    assert http_receiver.span_names() == {"child": 50, "parent-after": 20}
    assert http_receiver.stats().duplicates == 0


@pytest.mark.alone  # a fork without Python's hooks: no other thread may want the GIL then
def test_fork_bypassing_python_hooks_with_queued_spans_counts_what_it_cannot_attribute(
    http_receiver: OTLPReceiver,
    shutdown_later: Later,
) -> None:
    processor, provider = queued_parent(shutdown_later, http_receiver)

    def body() -> dict[str, Any]:
        end_spans(provider, 50, name="child")  # lands in the inherited queue: the fork is not noticed yet
        flushed = processor.force_flush(10_000)  # notices it: the 150 inherited spans are counted, not sent
        at_flush = stats_dict(processor.stats())
        end_spans(provider, 600, name="child-late")
        return {"flushed": flushed, "at_flush": at_flush, "late": processor.force_flush(10_000)}

    result = collect_child(*start_child(body, fork=libc_fork))
    finish_parent(processor, provider, http_receiver, 720)

    assert result["flushed"] is True
    assert result["late"] is True
    at_flush = result["at_flush"]
    assert at_flush["enqueued"] == 150
    assert at_flush["dropped"] == {
        "queue_full": 0,
        "shutdown": 0,
        "export_failed": 0,
        "fork": 150,
        "unencodable": 0,
        "too_large": 0,
    }
    assert http_receiver.span_names() == {"parent-before": 100, "parent-after": 20, "child-late": 600}


@pytest.mark.xfail(
    strict=True,
    reason="core limitation: without Python's fork hooks the child notices the fork only at a check point "
    "(an idle queue's first span, a wake-up, every 1024th span, a flush); spans it ended before that sit "
    "in the parent's queue among the parent's and are counted as dropped ('fork'), not exported",
)
@pytest.mark.alone  # a fork without Python's hooks: no other thread may want the GIL then
def test_fork_bypassing_python_hooks_with_queued_spans_exports_the_childs_spans(
    http_receiver: OTLPReceiver, shutdown_later: Later
) -> None:
    processor, provider = queued_parent(shutdown_later, http_receiver)
    result = collect_child(*start_child(child_exports(processor, provider, "child", 50), fork=libc_fork))
    finish_parent(processor, provider, http_receiver, 120)

    assert result["flushed"] is True
    assert http_receiver.span_names().get("child") == 50, result
