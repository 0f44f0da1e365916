"""End to end through real OTLP/HTTP to a loopback receiver (another process), at default settings.

Each round: a fresh provider and processor, one tight loop ending 20,000 spans, or 4 threads ending
10,000 spans, each with a few attributes and an event, then ``force_flush``; the round's time is the
time to deliver. The threads either run flat out or pace themselves (a burst of spans, then a sleep, as
an application that does other work would). The receiver counts what arrived, so a processor that drops
spans shows it in ``dropped`` whatever its speed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor as StockBatchSpanProcessor
from spanbatch import BatchSpanProcessor
from spanbatch.demo._contenders import best_exporter
from spanbatch.testing import OTLPReceiver

from tests.benchmarks.contenders import CONTENDERS, FLUSH_MILLIS, fastotel_processor_class

ROUNDS = 3


@dataclass(frozen=True)
class Load:
    threads: int
    spans_per_thread: int
    burst: int  # spans per burst, then a pause; bursts divide spans_per_thread
    pause: float = 0.0

    @property
    def spans(self) -> int:
        return self.threads * self.spans_per_thread


LOADS = {
    "1 thread, tight loop": Load(1, 20_000, 20_000),
    "4 threads flat out": Load(4, 2500, 2500),
    "4 threads, each 100 spans per 5 ms": Load(4, 2500, 100, 0.005),
    "4 threads, each 50 spans per 5 ms": Load(4, 2500, 50, 0.005),
}
JOIN_SECONDS = 120


# spanbatch with its best exporter, and with the stock one to tell the processor's share from the exporter's.
NAMES = [*CONTENDERS, "spanbatch+stock-exporter"]


def make_processor(name: str, endpoint: str, extra_info: dict[str, Any]) -> SpanProcessor:
    if name == "fastotel":
        extra_info["exporter"] = "fastotel (Rust OTLP/HTTP)"
        processor: SpanProcessor = fastotel_processor_class()(endpoint=endpoint)
        return processor
    if name == "spanbatch":
        exporter, extra_info["exporter"] = best_exporter(endpoint)
        return BatchSpanProcessor(exporter)
    extra_info["exporter"] = "stock OTLP/HTTP exporter"
    cls = StockBatchSpanProcessor if name == "stock" else BatchSpanProcessor
    return cls(OTLPSpanExporter(endpoint=endpoint))


def produce(provider: TracerProvider, load: Load) -> None:
    tracer = provider.get_tracer("bench")

    def work(index: int) -> None:
        for i in range(load.spans_per_thread):
            if i and load.pause and i % load.burst == 0:
                time.sleep(load.pause)
            span = tracer.start_span("chat gpt-4o-mini")
            span.set_attributes(
                {
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 1200 + i,
                    "gen_ai.usage.output_tokens": 300,
                    "session.id": f"session-{index}",
                }
            )
            span.add_event("gen_ai.choice", {"gen_ai.response.finish_reason": "stop"})
            span.end()

    workers = [threading.Thread(target=work, args=(i,)) for i in range(load.threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(JOIN_SECONDS)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scenario", list(LOADS))
def test_end_to_end_otlp_http(benchmark: Any, receiver: OTLPReceiver, name: str, scenario: str) -> None:
    load = LOADS[scenario]
    benchmark.group = f"end to end OTLP/HTTP x{load.spans}, {scenario}, default settings"
    info = benchmark.extra_info
    rounds: list[dict[str, Any]] = []

    def finish_round() -> None:
        """Shut the last round's processor down (untimed) and count what reached the receiver."""
        last = rounds[-1]
        last["provider"].shutdown()
        last["received"] = receiver.stats().spans
        if isinstance(last["processor"], BatchSpanProcessor):
            last["dropped"] = {r: n for r, n in last["processor"].stats().dropped.items() if n}

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        # pytest-benchmark has no per-round teardown: each round's setup finishes the round before.
        if rounds:
            finish_round()
        receiver.reset()
        processor = make_processor(name, receiver.endpoint, info)
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(processor)
        rounds.append({"processor": processor, "provider": provider, "cpu": 0.0})
        return (), {}

    def deliver() -> None:
        started = time.process_time()
        produce(rounds[-1]["provider"], load)
        rounds[-1]["provider"].force_flush(FLUSH_MILLIS)
        rounds[-1]["cpu"] = time.process_time() - started

    benchmark.pedantic(deliver, setup=setup, rounds=ROUNDS, iterations=1)
    finish_round()
    produced = load.spans * len(rounds)
    exported = sum(r["received"] for r in rounds)
    reasons: dict[str, int] = {}
    for r in rounds:
        for reason, count in r.get("dropped", {}).items():
            reasons[reason] = reasons.get(reason, 0) + count
    info.update(
        spans_per_call=load.spans,
        produced=produced,
        exported=exported,
        dropped=produced - exported,
        cpu_us_per_span=sum(r["cpu"] for r in rounds) / produced * 1e6,
    )
    if reasons:
        info["dropped_by_reason"] = reasons
