"""Where a rich span's cost on the application thread goes, as a plain script:
``python -m tests.benchmarks.overhead_breakdown``.

Issue 17 asks for at most 1 µs per rich span over no processor. This splits what the bench's "processor
overhead per rich span" row measures: the loop (start_span, 8 attributes, an event, end) with no processor,
with a Python processor that only holds its spans 512 at a time and lets go of them itself (no worker, no
exporter: what keeping one batch of live spans costs any processor), with spanbatch's and with the stock
processor delivering to an exporter that only counts. Each runs with the garbage collector on and off, so
that its collections (timed on this thread with ``gc.callbacks``) are told apart from the rest of holding the
spans (they land in memory that is not in the CPU's cache). Every configuration runs once in every round,
in one process, so a loaded machine moves all alike; each figure over "none" is taken within its round.
The workers run at default settings (no OTEL_BSP_* or SPANBATCH_* variables are read here).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import spanbatch
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor as StockBatchSpanProcessor

from tests.benchmarks.test_bench_overhead import end_rich_spans
from tests.helpers import CountingExporter

BATCH = 512


class HoldBatches(SpanProcessor):
    """Holds ended spans a batch at a time and lets go of a full batch on the ending thread."""

    def __init__(self) -> None:
        self._held: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self._held.append(span)
        if len(self._held) == BATCH:
            self._held = []


PROCESSORS: dict[str, Callable[[], SpanProcessor | None]] = {
    "none": lambda: None,
    "hold 512": HoldBatches,
    "spanbatch": lambda: spanbatch.BatchSpanProcessor(CountingExporter()),
    "stock": lambda: StockBatchSpanProcessor(CountingExporter()),
}


class CollectionTime:
    """The CPU time of the garbage collections run on this thread, from ``gc.callbacks``."""

    def __init__(self) -> None:
        self._thread = threading.get_ident()
        self._started = 0.0
        self.seconds = 0.0

    def __call__(self, phase: str, _info: dict[str, int]) -> None:
        if threading.get_ident() != self._thread:
            return  # a worker's collection: not the application thread's time
        if phase == "start":
            self._started = time.thread_time()
        else:
            self.seconds += time.thread_time() - self._started


@dataclass(frozen=True)
class Loop:
    """One timed loop's thread CPU and collections' CPU, in µs per span."""

    cpu_us: float
    collections_us: float


def timed_loop(processor: SpanProcessor | None, spans: int, *, collector_on: bool) -> Loop:
    provider = TracerProvider(shutdown_on_exit=False)
    if processor is not None:
        provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench")
    gc.collect()  # every loop starts from the same heap
    collections = CollectionTime()
    gc.callbacks.append(collections)
    if not collector_on:
        gc.disable()
    try:
        started = time.thread_time()
        end_rich_spans(tracer, spans)
        cpu = time.thread_time() - started
    finally:
        gc.enable()
        gc.callbacks.remove(collections)
    provider.shutdown()
    return Loop(cpu_us=cpu / spans * 1e6, collections_us=collections.seconds / spans * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    end_rich_spans(TracerProvider(shutdown_on_exit=False).get_tracer("warm-up"), args.spans)
    loops: dict[tuple[str, bool], list[Loop]] = {(name, on): [] for name in PROCESSORS for on in (True, False)}
    for round_ in range(args.rounds):
        # Every other round in reverse order, so that no configuration always comes first.
        order = list(loops) if round_ % 2 else list(loops)[::-1]
        for name, on in order:
            loops[name, on].append(timed_loop(PROCESSORS[name](), args.spans, collector_on=on))
    print(f"{args.spans} rich spans x {args.rounds} rounds; µs of application-thread CPU per span:")
    print(f"  {'processor':10} {'gc':3} {'loop min':>9} {'over none: min-min':>19} {'median of rounds':>17} {'gc':>6}")
    for (name, on), runs in loops.items():
        baseline: list[Loop] = loops["none", on]
        paired = [run.cpu_us - base.cpu_us for run, base in zip(runs, baseline, strict=True)]
        over_min = min(run.cpu_us for run in runs) - min(base.cpu_us for base in baseline)
        print(
            f"  {name:10} {'on' if on else 'off':3} {min(r.cpu_us for r in runs):9.2f} {over_min:+19.2f}"
            f" {statistics.median(paired):+17.2f} {statistics.median(r.collections_us for r in runs):6.2f}"
        )


if __name__ == "__main__":
    main()
