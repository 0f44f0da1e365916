"""Spans waiting in the queue for a Python exporter are out of the garbage collector's sight: the
collections an application thread's allocations set off neither walk nor promote them. Each is tracked
again before the exporter, or anything else, gets it back, and the worker holds no exported batch while
it waits for the next.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tests.helpers import LONG, CountingExporter, HangingExporter, balanced, provider_with, wait_until

Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


def own_objects(span: ReadableSpan) -> list[object]:
    """The objects a rich SDK span holds alone, which the collector tracks: the span, its context and
    flags, its attributes, its events and theirs."""
    events = list(span._events)
    return [
        span,
        span._context,
        span._context.trace_flags,
        span._attributes,
        span._events,
        *events,
        *(event._attributes for event in events),
    ]


def tracked(span: ReadableSpan) -> list[bool]:
    return [gc.is_tracked(item) for item in own_objects(span)]


class Keep(SpanProcessor):
    """Keeps every ended span (as another processor of the application might)."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


class SeesTracking(SpanExporter):
    """Records, for every span it is handed, whether the collector tracks its own objects."""

    def __init__(self) -> None:
        self.seen: list[list[bool]] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.seen.extend(tracked(span) for span in spans)
        return SpanExportResult.SUCCESS


def end_rich_spans(provider: TracerProvider, count: int) -> None:
    tracer = provider.get_tracer("tests")
    for i in range(count):
        span = tracer.start_span("chat", attributes={"gen_ai.system": "openai", "n": i})
        span.add_event("gen_ai.choice", {"finish_reason": "stop"})
        span.end()


@pytest.mark.timeout(30)
def test_queued_spans_are_untracked_and_tracked_again_before_the_exporter_gets_them(shutdown_later: Later) -> None:
    keep, exporter = Keep(), SeesTracking()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
    provider = provider_with(keep, processor)
    end_rich_spans(provider, 3)
    assert [tracked(span) for span in keep.spans] == [[False] * 7] * 3
    assert processor.force_flush(10_000)
    assert exporter.seen == [[True] * 7] * 3
    assert [tracked(span) for span in keep.spans] == [[True] * 7] * 3
    assert balanced(processor.stats())


@pytest.mark.timeout(30)
def test_the_worker_holds_no_exported_span_while_it_waits_for_the_next(shutdown_later: Later) -> None:
    refs: list[weakref.ref[ReadableSpan]] = []

    class Watch(SpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            refs.append(weakref.ref(span))

    processor = shutdown_later(spanbatch.BatchSpanProcessor(CountingExporter(), schedule_delay_millis=LONG))
    provider = provider_with(Watch(), processor)
    end_rich_spans(provider, 5)
    assert processor.force_flush(10_000)
    # The worker now waits up to a minute for the next batch: the exported spans are gone already.
    assert wait_until(lambda: all(ref() is None for ref in refs), 5), [ref() is not None for ref in refs]


def hung_processor(shutdown_later: Later, **settings: Any) -> tuple[spanbatch.BatchSpanProcessor, Keep]:
    """A processor of batches of 1 whose worker hangs in its first export, and 4 rich spans to hand it; the
    first is in that export."""
    keep, exporter = Keep(), HangingExporter()
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(exporter, max_export_batch_size=1, schedule_delay_millis=LONG, **settings)
    )
    end_rich_spans(provider_with(keep), 4)
    processor.on_end(keep.spans[0])
    assert exporter.entered.wait(10)
    return processor, keep


@pytest.mark.timeout(30)
@pytest.mark.parametrize("policy", ["oldest", "newest"])
def test_a_span_the_full_queue_drops_is_tracked_again(shutdown_later: Later, policy: str) -> None:
    processor, keep = hung_processor(shutdown_later, max_queue_size=2, drop_policy=policy)
    for span in keep.spans[1:]:
        processor.on_end(span)
    dropped, queued = (keep.spans[1], keep.spans[2:]) if policy == "oldest" else (keep.spans[3], keep.spans[1:3])
    assert processor.stats().dropped["queue_full"] == 1
    assert tracked(dropped) == [True] * 7
    assert [tracked(span) for span in queued] == [[False] * 7] * 2
    processor._lanes[0].exporter.release.set()  # type: ignore[attr-defined]


@pytest.mark.timeout(30)
def test_a_span_that_waited_for_room_in_vain_is_tracked_again(shutdown_later: Later) -> None:
    processor, keep = hung_processor(shutdown_later, max_queue_size=1, drop_policy="block", block_timeout_millis=50)
    processor.on_end(keep.spans[1])
    processor.on_end(keep.spans[2])  # waits 50 ms for room the hung worker never makes
    assert processor.stats().dropped["queue_full"] == 1
    assert tracked(keep.spans[1]) == [False] * 7  # queued
    assert tracked(keep.spans[2]) == [True] * 7
    processor._lanes[0].exporter.release.set()  # type: ignore[attr-defined]


@pytest.mark.timeout(30)
def test_only_the_sdk_class_and_parts_no_one_else_holds_are_hidden(shutdown_later: Later) -> None:
    class Subclass(ReadableSpan):
        pass

    keep = Keep()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(SeesTracking(), schedule_delay_millis=LONG))
    end_rich_spans(provider_with(keep), 2)
    plain, shared = keep.spans
    # Held twice more: beyond the span and the span being ended, it could be in a cycle the span cannot see.
    held_elsewhere = twice = shared._attributes
    other = Subclass(name="other", context=plain.context, attributes={"a": 1})
    for span in (plain, shared, other):
        processor.on_end(span)
    assert tracked(plain) == [False] * 7
    assert gc.is_tracked(shared) is False
    assert gc.is_tracked(held_elsewhere) is gc.is_tracked(twice) is True
    assert gc.is_tracked(other) is True
    assert processor.force_flush(10_000)
    assert all(gc.is_tracked(item) for span in (plain, shared) for item in own_objects(span))


@pytest.mark.timeout(30)
def test_every_lane_of_a_pipeline_hands_its_exporter_tracked_spans(shutdown_later: Later) -> None:
    a, b, keep = SeesTracking(), SeesTracking(), Keep()
    pipeline = shutdown_later(spanbatch.Pipeline({"a": a, "b": b}, schedule_delay_millis=LONG))
    provider = provider_with(keep, pipeline)
    end_rich_spans(provider, 3)
    assert [tracked(span) for span in keep.spans] == [[False] * 7] * 3
    assert pipeline.force_flush(10_000)
    assert a.seen == b.seen == [[True] * 7] * 3


@pytest.mark.timeout(30)
def test_spans_left_queued_by_an_abandoned_lane_are_tracked_again(shutdown_later: Later) -> None:
    processor, keep = hung_processor(shutdown_later, export_timeout_millis=500)
    for span in keep.spans[1:]:
        processor.on_end(span)
    processor.shutdown()  # past its deadline the lane is abandoned: the 3 queued spans are dropped
    assert processor.stats().dropped["shutdown"] == 3
    assert [tracked(span) for span in keep.spans[1:]] == [[True] * 7] * 3
    processor._lanes[0].exporter.release.set()  # type: ignore[attr-defined]
