"""Exit time with dead back ends: spans queued for OTLP/HTTP endpoints nobody listens on.

Every contender gets the same deadline (``export_timeout_millis=2000``). With one back end the
exporter keeps its default timeout (10 s, with retries on connection errors); with four, 2 s, to
keep the stock run short. One round each: the stock processor takes many seconds here, and that
wait is the point.
"""

from __future__ import annotations

from typing import Any

import pytest
import spanbatch
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor as StockBatchSpanProcessor
from spanbatch import BatchSpanProcessor

from tests.benchmarks.contenders import CONTENDERS, fastotel_processor_class
from tests.helpers.net import free_port

SPANS = 1000
DEADLINE_MILLIS = 2000


def dead_endpoint() -> str:
    """A loopback port that refuses connections."""
    return f"http://127.0.0.1:{free_port()}/v1/traces"


def make_processor(name: str, endpoint: str, **exporter_args: Any) -> SpanProcessor:
    if name == "fastotel":
        processor: SpanProcessor = fastotel_processor_class()(
            endpoint=endpoint, export_timeout_millis=DEADLINE_MILLIS, **exporter_args
        )
        return processor
    cls = StockBatchSpanProcessor if name == "stock" else BatchSpanProcessor
    return cls(OTLPSpanExporter(endpoint=endpoint, **exporter_args), export_timeout_millis=DEADLINE_MILLIS)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", CONTENDERS)
def test_shutdown_with_dead_backend(benchmark: Any, name: str) -> None:
    benchmark.group = f"shutdown, back end down, {SPANS} spans queued, deadline {DEADLINE_MILLIS} ms"
    state: dict[str, Any] = {}

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        processor = make_processor(name, dead_endpoint())
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(processor)
        tracer = provider.get_tracer("bench")
        for _ in range(SPANS):
            tracer.start_span("doomed").end()
        state.update(processor=processor, provider=provider)
        return (), {}

    def shut_down() -> None:
        # Looked up when called: setup makes the provider just before.
        state["provider"].shutdown()

    benchmark.pedantic(shut_down, setup=setup, rounds=1, iterations=1)
    benchmark.extra_info.update(produced=SPANS, exported=0, dropped=SPANS, deadline_ms=DEADLINE_MILLIS)
    processor = state["processor"]
    if isinstance(processor, BatchSpanProcessor):
        stats = processor.stats()
        benchmark.extra_info["dropped_by_reason"] = {r: n for r, n in stats.dropped.items() if n}
        # Whatever the exporter did not finish by the deadline is still counted, as in flight.
        benchmark.extra_info["in_flight_at_exit"] = stats.in_flight


BACKENDS = 4
EXPORTER_TIMEOUT_SECONDS = 2


# A deliberate twin of test_shutdown_with_dead_backend: spanbatch sets its back ends up as one pipeline here.
@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", CONTENDERS)
def test_shutdown_with_dead_backends(benchmark: Any, name: str) -> None:
    """N stock (or fastotel) processors one after the other, against one spanbatch pipeline of N lanes."""
    benchmark.group = f"shutdown, {BACKENDS} back ends down, {SPANS} spans queued each, deadline {DEADLINE_MILLIS} ms"
    state: dict[str, Any] = {}

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        provider = TracerProvider(shutdown_on_exit=False)
        if name == "spanbatch":
            exporters = {
                f"backend-{i}": OTLPSpanExporter(endpoint=dead_endpoint(), timeout=EXPORTER_TIMEOUT_SECONDS)
                for i in range(BACKENDS)
            }
            state["pipeline"] = spanbatch.install(provider, exporters, export_timeout_millis=DEADLINE_MILLIS)
        else:
            for _ in range(BACKENDS):
                provider.add_span_processor(make_processor(name, dead_endpoint(), timeout=EXPORTER_TIMEOUT_SECONDS))
        tracer = provider.get_tracer("bench")
        for _ in range(SPANS):
            tracer.start_span("doomed").end()
        state["provider"] = provider
        return (), {}

    def shut_down() -> None:
        state["provider"].shutdown()

    benchmark.pedantic(shut_down, setup=setup, rounds=1, iterations=1)
    produced = SPANS * BACKENDS
    benchmark.extra_info.update(produced=produced, exported=0, dropped=produced, deadline_ms=DEADLINE_MILLIS)
    if "pipeline" in state:
        stats = state["pipeline"].stats()
        benchmark.extra_info["dropped_by_reason"] = {r: n for r, n in stats.dropped.items() if n}
        benchmark.extra_info["in_flight_at_exit"] = stats.in_flight
