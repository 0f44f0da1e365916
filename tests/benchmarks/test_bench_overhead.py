"""The application thread's share of a processor, and the whole process's CPU per delivered span.

Three groups, each row alternating with its own baseline in every round so that a loaded machine
moves both alike (the figures are minima over rounds):

- "processor overhead per rich span": a loop of start_span, 8 attributes, an event and end on the
  application thread, with no processor, or one of the contenders delivering to an exporter that
  only counts. ``overhead_us_per_span`` is the row's thread CPU per span less the same loop's with
  no processor, timed in the same rounds; the queued spans' garbage collections are the row's own.
- "end-to-end CPU per delivered span": the process's CPU from the first span to the end of the
  flush, with every span encoded to OTLP protobuf and nothing sent, against the floor "none+encoding":
  the same loop with no processor plus encoding as many spans, 512 to a batch, from a ready list.
- "on_end vs C-builtin floor": ``on_end`` over ended spans with an idle worker, against ``id`` called
  in the same loop; ``floor_ratio`` is the row's time over the floor's in the same rounds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor as StockBatchSpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from spanbatch._core import SpanEncoder
from spanbatch._encoding import encode_batch

from tests.benchmarks.contenders import CONTENDERS, FLUSH_MILLIS, counting_contender, fastotel_processor_class

RICH_SPANS = 5000
ROUNDS = 7
BATCH = 512


def end_rich_spans(tracer: Any, count: int) -> None:
    """``count`` spans as an instrumented LLM call makes them: 8 attributes and an event each."""
    for i in range(count):
        span = tracer.start_span("chat gpt-4o-mini")
        span.set_attributes(
            {
                "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.request.temperature": 0.2,
                "gen_ai.request.stream": False,
                "gen_ai.usage.input_tokens": 1200 + i,
                "gen_ai.usage.output_tokens": 300,
                "gen_ai.response.id": "chatcmpl-1",
                "session.id": "session-1",
            }
        )
        span.add_event("gen_ai.choice", {"gen_ai.response.finish_reason": "stop"})
        span.end()


def thread_cpu(run: Callable[[], None]) -> float:
    started = time.thread_time()
    run()
    return time.thread_time() - started


def process_cpu(run: Callable[[], None]) -> float:
    started = time.process_time()
    run()
    return time.process_time() - started


def bare_loop() -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    end_rich_spans(provider.get_tracer("bench"), RICH_SPANS)


# ---- processor overhead per rich span (application thread) ----


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ["none", *CONTENDERS])
def test_overhead_per_rich_span(benchmark: Any, request: pytest.FixtureRequest, name: str) -> None:
    benchmark.group = f"processor overhead per rich span x{RICH_SPANS} (application thread)"
    if name == "fastotel":
        fastotel_processor_class()  # skips before the benchmark starts if it is not installed
    bare: list[float] = []
    loaded: list[float] = []
    delivered: list[int] = []
    rounds: list[tuple[TracerProvider, Callable[[], int]]] = []

    def finish_round() -> None:
        """Flush and shut the last round's provider down (untimed), counting what it delivered."""
        provider, count = rounds[-1]
        provider.force_flush(FLUSH_MILLIS)
        provider.shutdown()
        delivered.append(count())

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        # pytest-benchmark has no per-round teardown: each round's setup finishes the round before.
        if rounds:
            finish_round()
        bare.append(thread_cpu(bare_loop))  # this round's baseline, untimed
        provider = TracerProvider(shutdown_on_exit=False)
        count: Callable[[], int] = lambda: RICH_SPANS  # noqa: E731
        if name != "none":
            contender = counting_contender(name, request)
            provider.add_span_processor(contender.processor)
            count = contender.delivered
        rounds.append((provider, count))
        return (provider,), {}

    def run(provider: TracerProvider) -> None:
        loaded.append(thread_cpu(lambda: end_rich_spans(provider.get_tracer("bench"), RICH_SPANS)))

    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    finish_round()
    produced = RICH_SPANS * ROUNDS
    benchmark.extra_info.update(
        spans_per_call=RICH_SPANS,
        produced=produced,
        exported=sum(delivered),
        dropped=produced - sum(delivered),
        cpu_us_per_span=min(loaded) / RICH_SPANS * 1e6,
        overhead_us_per_span=(min(loaded) - min(bare)) / RICH_SPANS * 1e6,
    )


# ---- end-to-end CPU per delivered span ----


class EncodeOnly(SpanExporter):
    """spanbatch's encoding as its OTLP exporters do it (read while the batch fills), sending nothing."""

    def __init__(self) -> None:
        self._encoder = SpanEncoder()
        self.count = 0

    @property
    def span_encoder(self) -> SpanEncoder:
        return self._encoder

    def export(self, spans: Any) -> SpanExportResult:
        encode_batch(self._encoder, spans)
        self.count += len(spans)
        return SpanExportResult.SUCCESS


class StockEncodeOnly(SpanExporter):
    """The stock OTLP exporters' encoding (``encode_spans`` then serialize), sending nothing."""

    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        encode_spans(spans).SerializeToString()
        self.count += len(spans)
        return SpanExportResult.SUCCESS


def ready_spans(count: int) -> list[ReadableSpan]:
    kept: list[ReadableSpan] = []

    class Keep(SpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            kept.append(span)

    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(Keep())
    end_rich_spans(provider.get_tracer("bench"), count)
    return kept


def encode_like_a_batch_processor(spans: list[ReadableSpan], total: int) -> None:
    encoder = SpanEncoder()
    for _ in range(total // len(spans)):
        encoder.read(spans).to_bytes()


END_TO_END = ["none+encoding", "stock", "spanbatch", "fastotel"]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", END_TO_END)
def test_end_to_end_cpu_per_delivered_span(benchmark: Any, request: pytest.FixtureRequest, name: str) -> None:
    benchmark.group = f"end-to-end CPU per delivered span x{RICH_SPANS} (encoded, not sent)"
    if name == "fastotel":
        fastotel_processor_class()  # skips before the benchmark starts if it is not installed
    info = benchmark.extra_info
    cpu: list[float] = []
    delivered: list[int] = []
    batch = ready_spans(BATCH)

    def floor() -> None:
        bare_loop()
        encode_like_a_batch_processor(batch, RICH_SPANS)

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        if name == "none+encoding":
            return (None, None), {}
        provider = TracerProvider(shutdown_on_exit=False)
        if name == "fastotel":
            rx = request.getfixturevalue("receiver")
            rx.reset()
            info["exporter"] = "fastotel's own, to the loopback receiver (it always sends)"
            provider.add_span_processor(fastotel_processor_class()(endpoint=rx.endpoint))
            return (provider, lambda: rx.stats().spans), {}
        exporter: EncodeOnly | StockEncodeOnly
        if name == "spanbatch":
            exporter = EncodeOnly()
            provider.add_span_processor(spanbatch.BatchSpanProcessor(exporter))
        else:
            exporter = StockEncodeOnly()
            provider.add_span_processor(StockBatchSpanProcessor(exporter))
        return (provider, lambda: exporter.count), {}

    def run(provider: TracerProvider | None, count: Callable[[], int] | None) -> None:
        if provider is None:
            cpu.append(process_cpu(floor))
            delivered.append(RICH_SPANS)
            return

        def deliver() -> None:
            end_rich_spans(provider.get_tracer("bench"), RICH_SPANS)
            provider.force_flush(FLUSH_MILLIS)

        cpu.append(process_cpu(deliver))
        provider.shutdown()
        assert count is not None
        delivered.append(count())

    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    produced = RICH_SPANS * ROUNDS
    info.update(
        spans_per_call=RICH_SPANS,
        produced=produced,
        exported=sum(delivered),
        dropped=produced - sum(delivered),
        cpu_us_per_span=min(cpu) / RICH_SPANS * 1e6,
    )


# ---- on_end vs a one-argument C builtin ----

ON_END_SPANS = 20_000
IDLE = {"max_queue_size": 1 << 20, "max_export_batch_size": 1 << 20, "schedule_delay_millis": 60_000}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ["id() floor", "spanbatch", "stock"])
def test_on_end_against_a_c_builtin(benchmark: Any, request: pytest.FixtureRequest, name: str) -> None:
    benchmark.group = f"on_end vs C-builtin floor x{ON_END_SPANS} (idle worker)"
    spans = ready_spans(ON_END_SPANS)
    floors: list[float] = []
    costs: list[float] = []
    contender = None if name == "id() floor" else counting_contender(name, request, **IDLE)
    call: Callable[[Any], object] = id if contender is None else contender.processor.on_end

    def loop(f: Callable[[Any], object]) -> float:
        started = time.perf_counter()
        for span in spans:
            f(span)
        return time.perf_counter() - started

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        floors.append(loop(id))  # this round's floor, untimed
        return (), {}

    def run() -> None:
        costs.append(loop(call))

    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    info = benchmark.extra_info
    info.update(
        spans_per_call=ON_END_SPANS,
        floor_ratio=min(costs) / min(floors),
    )
    if contender is not None:
        produced = ON_END_SPANS * (ROUNDS + 1)
        contender.processor.force_flush(FLUSH_MILLIS)
        info.update(produced=produced, exported=contender.delivered())
        info["dropped"] = produced - info["exported"]
        contender.processor.shutdown()
