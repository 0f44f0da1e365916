"""``on_end`` against a one-argument C builtin, as a plain script: ``python -m tests.benchmarks.on_end_floor``.

Issue 17's measure. Rich spans (8 attributes and an event, from ``end_rich_spans``) are ended beforehand by
the SDK's own ``TracerProvider``, the processor not added to it, so each loop times the call alone:
``f = id; for s in spans: f(s)`` against ``f = processor.on_end``, in one process, alternating in every
round (a loaded machine moves both alike). Rows: the bare loop (``pass``), ``id``, ``on_end`` on sampled
spans (the full push), ``on_end`` on spans recorded but not sampled (the sampled check alone); then the
same with one span over and over ("hot"), whose objects stay in the CPU's cache.

``id`` touches only the span's header; any sampled check reads the span's stored context first, then the
context and its flags, each in memory of its own. The row ``read _context`` is that first read alone, by a C
builtin (``operator.attrgetter``, no Python frame): what reading the span costs before any code of a processor.

The worker is idle: the queue takes every span of a round (no drops), the batch is as large, the
schedule delay a minute, and the exporter only counts. Before each sampled round the queue is flushed and
one span pushed, untimed, so the worker waits for its delay (no wake-up in the timed loop). 20,000 spans do
not fit in the CPU's cache, so what ran just before moves every row (``id`` by 2x): each timed loop comes
right after an untimed bare pass over the same spans, and the rows alternate their order. The garbage
collector is off while a loop runs. Medians over rounds, with min and max, in ns per call; ratios are
per round (row over that round's ``id``), then the median.
"""

from __future__ import annotations

import argparse
import gc
import operator
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import spanbatch
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from tests.benchmarks.test_bench_overhead import end_rich_spans
from tests.helpers import CountingExporter


class RecordOnly(Sampler):
    """Records every span without sampling it: the SDK still calls ``on_end``, which must pass it over."""

    def should_sample(  # noqa: PLR0917 -- the SDK's Sampler signature
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        return SamplingResult(Decision.RECORD_ONLY)

    def get_description(self) -> str:
        return "RecordOnly"


def ended_spans(count: int, sampler: Sampler | None = None) -> list[ReadableSpan]:
    kept: list[ReadableSpan] = []

    class Keep(SpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            kept.append(span)

    provider = TracerProvider(sampler=sampler, shutdown_on_exit=False)
    provider.add_span_processor(Keep())
    end_rich_spans(provider.get_tracer("bench"), count)
    return kept


def loop(f: Callable[[Any], object], spans: list[ReadableSpan]) -> float:
    """ns per call of ``f`` over ``spans``."""
    started = time.perf_counter_ns()
    for span in spans:
        f(span)
    return (time.perf_counter_ns() - started) / len(spans)


def bare(spans: list[ReadableSpan]) -> float:
    started = time.perf_counter_ns()
    for _ in spans:
        pass
    return (time.perf_counter_ns() - started) / len(spans)


def warm(spans: list[ReadableSpan]) -> bool:
    """An untimed pass first: every timed loop finds the span objects as recently touched (and the CPU awake)."""
    bare(spans)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--queue", type=int, default=1 << 16, help="max_queue_size (at least 2 * --spans + 1)")
    args = parser.parse_args()
    sampled = ended_spans(args.spans)
    unsampled = ended_spans(args.spans, RecordOnly())
    assert all(s.context.trace_flags.sampled for s in sampled)
    assert not any(s.context.trace_flags.sampled for s in unsampled)
    exporter = CountingExporter()
    # Room for a round's spans (rich, then hot) and the one before them: a ring, up to 65,536 (a larger
    # ``--queue`` takes the queue that allocates as it fills); a batch as large: the worker sleeps through.
    queue = max(args.queue, 2 * args.spans + 1)
    processor = spanbatch.BatchSpanProcessor(
        exporter, max_queue_size=queue, max_export_batch_size=queue, schedule_delay_millis=60_000
    )
    on_end = processor.on_end
    read_context = operator.attrgetter("_context")
    # The same span over and over: its objects stay in the cache, so these rows show the code's own cost.
    hot, hot_unsampled = [sampled[0]] * args.spans, [unsampled[0]] * args.spans
    runs: dict[str, Callable[[], float]] = {
        "loop": lambda: warm(sampled) and bare(sampled),
        "id": lambda: warm(sampled) and loop(id, sampled),
        "read _context": lambda: warm(sampled) and loop(read_context, sampled),
        "on_end sampled": lambda: warm(sampled) and loop(on_end, sampled),
        "id (unsampled)": lambda: warm(unsampled) and loop(id, unsampled),
        "on_end unsampled": lambda: warm(unsampled) and loop(on_end, unsampled),
        "id hot": lambda: loop(id, hot),
        "on_end sampled hot": lambda: loop(on_end, hot),
        "on_end unsampled hot": lambda: loop(on_end, hot_unsampled),
    }
    floors = {
        "read _context": "id",
        "on_end sampled": "id",
        "on_end unsampled": "id (unsampled)",
        "on_end sampled hot": "id hot",
        "on_end unsampled hot": "id hot",
    }
    rows: dict[str, list[float]] = {name: [] for name in runs}
    ratios: dict[str, list[float]] = {name: [] for name in floors}
    for round_ in range(args.rounds + 1):  # the first round warms up, unrecorded
        processor.force_flush()
        on_end(sampled[0])  # the worker now waits for its delay, not for a span
        time.sleep(0.05)
        gc.disable()
        try:
            # Every other round in reverse order, so that no row always comes first.
            order = list(runs) if round_ % 2 else list(runs)[::-1]
            times = {name: runs[name]() for name in order}
        finally:
            gc.enable()
        if round_ == 0:
            continue
        for name, ns in times.items():
            rows[name].append(ns)
        for name, floor in floors.items():
            ratios[name].append(times[name] / times[floor])
    processor.force_flush()
    stats = processor.stats()
    processor.shutdown()
    print(f"{args.spans} spans x {args.rounds} rounds, max_queue_size={queue}; ns per call and ratio to id:")
    print("median [min-max]")
    for name, values in rows.items():
        line = f"  {name:20} {statistics.median(values):6.1f} [{min(values):6.1f}-{max(values):6.1f}]"
        if name in ratios:
            r = ratios[name]
            line += f"   {statistics.median(r):.2f}x [{min(r):.2f}-{max(r):.2f}]"
        print(line)
    dropped = sum(stats.dropped.values())
    print(f"  enqueued={stats.enqueued} exported={exporter.count} dropped={dropped}")
    assert dropped == 0
    assert exporter.count == stats.enqueued == (2 * args.spans + 1) * (args.rounds + 1)


if __name__ == "__main__":
    main()
