"""Where spanbatch's end-to-end CPU per delivered span goes, as a plain script:
``python -m tests.benchmarks.end_to_end_breakdown``.

The end-to-end sibling of ``overhead_breakdown`` (which times the application thread alone). The bench's
"end-to-end CPU per delivered span" group times the whole process, the worker included, from the first span to
the end of ``force_flush``, each span encoded to OTLP protobuf and nothing sent, against "none+encoding": the
loop with no processor plus encoding as many spans from one ready list of 512 (the same objects again and again,
so in the CPU's cache). The rows here:

- ``none``: the loop alone; ``none+encoding``: the bench's floor;
- ``encode N``: no worker, a Python processor that holds the ended spans N at a time and reads each N into a
  request on the ending thread, serializing them every 512: the floor with the spans of this loop; ``encode 1``
  reads each span as it ends (plus a call and a request per span), ``encode 32`` as spanbatch's application
  threads do, ``encode 512`` whole batches (what holding a batch of live spans costs any processor);
- ``spanbatch``: the bench's row (``EncodeOnly``, whose class declares a ``SpanEncoder``: the threads that end
  spans read them 32 at a time, the worker hands each batch of 512 out and exports it);
- ``spanbatch list``: the same exporter's encoding with the spans handed over as lists (no ``span_encoder``):
  the worker encodes each batch when it exports it, the spans wait in the queue meanwhile.

Each row runs once in every round, in one process, every other round in reverse order, so a loaded machine moves
all alike. Per row, medians over rounds unless said: process CPU per span (least; median; each round's difference
from ``none+encoding``, median and range), the application thread's CPU (the rest is the worker's), the garbage
collections' CPU and count (per 10,000 spans, by generation, on any thread), GIL hand-overs, system CPU per span
and context switches per round. ``--only ROW`` runs one row (rounds as given), for
``valgrind --tool=callgrind`` (instructions, every thread; take the difference of two span counts to leave the
start-up out).
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import threading
import time
from dataclasses import dataclass, field

import spanbatch
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from spanbatch._core import SpanEncoder, SpanRequest

from tests.benchmarks.test_bench_overhead import (
    EncodeOnly,
    encode_like_a_batch_processor,
    end_rich_spans,
    ready_spans,
)

BATCH = 512
FLUSH_MILLIS = 30_000


class EncodeChunks(SpanProcessor):
    """Holds ended spans ``chunk`` at a time and reads each chunk into a request on the ending thread, serializing
    the requests once they hold 512 spans; no worker. With chunks of 32, what spanbatch's application threads do,
    without the worker and its thread; with 512, what a processor that encodes whole batches on this thread does."""

    def __init__(self, chunk: int) -> None:
        self._chunk = chunk
        self._held: list[ReadableSpan] = []
        self._requests: list[SpanRequest] = []
        self._read = 0
        self._encoder = SpanEncoder()

    def on_end(self, span: ReadableSpan) -> None:
        self._held.append(span)
        if len(self._held) == self._chunk:
            self._read_held()
            if self._read >= BATCH:
                self.force_flush()

    def _read_held(self) -> None:
        self._requests.append(self._encoder.read(self._held))
        self._read += len(self._held)
        self._held = []

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        if self._held:
            self._read_held()
        for request in self._requests:
            request.to_bytes()
        self._requests, self._read = [], 0
        return True


class EncodeLists(SpanExporter):
    """``EncodeOnly``'s encoding at export, of lists: its class declares no ``span_encoder``."""

    def __init__(self) -> None:
        self._encoder = SpanEncoder()

    def export(self, spans: object) -> SpanExportResult:
        self._encoder.read(spans).to_bytes()
        return SpanExportResult.SUCCESS


@dataclass
class Collections:
    """The garbage collections run on any thread, by generation, and their CPU on the thread that ran them."""

    counts: list[int] = field(default_factory=lambda: [0, 0, 0])
    seconds: float = 0.0
    _started: dict[int, float] = field(default_factory=dict)

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        thread = threading.get_ident()
        if phase == "start":
            self._started[thread] = time.thread_time()
        else:
            self.counts[info["generation"]] += 1
            self.seconds += time.thread_time() - self._started.pop(thread, time.thread_time())


@dataclass(frozen=True)
class Run:
    """One row's round: CPU in µs per span, collections per 10,000 spans, hand-overs."""

    process_us: float
    thread_us: float
    collections: tuple[float, float, float]
    collections_us: float
    handoffs: int
    system_us: float
    switches: int


def run_row(name: str, spans: int, batch: list[ReadableSpan]) -> Run:
    provider = TracerProvider(shutdown_on_exit=False)
    processor: spanbatch.BatchSpanProcessor | None = None
    if name == "spanbatch":
        processor = spanbatch.BatchSpanProcessor(EncodeOnly())
    elif name == "spanbatch list":
        processor = spanbatch.BatchSpanProcessor(EncodeLists())
    elif name.startswith("encode "):
        provider.add_span_processor(EncodeChunks(int(name.split()[1])))
    if processor is not None:
        provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench")
    gc.collect()  # every row starts from the same heap
    collections = Collections()
    gc.callbacks.append(collections)
    try:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        process, thread = time.process_time(), time.thread_time()
        end_rich_spans(tracer, spans)
        if name == "none+encoding":
            encode_like_a_batch_processor(batch, spans)
        provider.force_flush(FLUSH_MILLIS)
        process, thread = time.process_time() - process, time.thread_time() - thread
        after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        gc.callbacks.remove(collections)
    handoffs = 0
    if processor is not None:
        handoffs = processor.lanes[0].core.gil_handoffs
        stats = processor.stats()
        assert stats.exported == spans, stats
    provider.shutdown()
    per_span = 1e6 / spans
    return Run(
        process_us=process * per_span,
        thread_us=thread * per_span,
        collections=(
            collections.counts[0] * 1e4 / spans,
            collections.counts[1] * 1e4 / spans,
            collections.counts[2] * 1e4 / spans,
        ),
        collections_us=collections.seconds * per_span,
        handoffs=handoffs,
        system_us=(after.ru_stime - usage.ru_stime) * per_span,
        switches=after.ru_nvcsw + after.ru_nivcsw - usage.ru_nvcsw - usage.ru_nivcsw,
    )


ROWS = ["none", "none+encoding", "encode 1", "encode 32", "encode 512", "spanbatch", "spanbatch list"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--only", choices=ROWS, action="append", help="run only this row (repeatable)")
    args = parser.parse_args()
    rows = args.only or ROWS
    batch = ready_spans(BATCH)
    end_rich_spans(TracerProvider(shutdown_on_exit=False).get_tracer("warm-up"), args.spans)
    runs: dict[str, list[Run]] = {name: [] for name in rows}
    for round_ in range(args.rounds):
        order = rows if round_ % 2 else rows[::-1]
        for name in order:
            runs[name].append(run_row(name, args.spans, batch))
    print(f"{args.spans} rich spans x {args.rounds} rounds; µs of CPU per span (process, and application thread):")
    floor = runs.get("none+encoding")
    print(
        f"  {'row':15} {'min':>6} {'median':>7} {'-floor [range]':>22} {'thread':>7} {'gc µs':>6}"
        f" {'gc0/1/2 per 10k':>16} {'handoffs':>8} {'sys':>5} {'switches':>8}"
    )
    for name, row in runs.items():
        over = f"{'':22}"
        if floor is not None:
            paired = [r.process_us - f.process_us for r, f in zip(row, floor, strict=True)]
            over = f"{statistics.median(paired):+7.2f} [{min(paired):+6.2f},{max(paired):+6.2f}]"
        gcs = "/".join(f"{statistics.median(r.collections[g] for r in row):.1f}" for g in range(3))
        print(
            f"  {name:15} {min(r.process_us for r in row):6.2f} {statistics.median(r.process_us for r in row):7.2f}"
            f" {over} {statistics.median(r.thread_us for r in row):7.2f}"
            f" {statistics.median(r.collections_us for r in row):6.2f} {gcs:>16}"
            f" {statistics.median(r.handoffs for r in row):8.0f} {statistics.median(r.system_us for r in row):5.2f}"
            f" {statistics.median(r.switches for r in row):8.0f}"
        )


if __name__ == "__main__":
    main()
