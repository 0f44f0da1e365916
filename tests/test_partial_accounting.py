"""A batch cut in parts that fails after some were accepted: those count as exported, the rest as export_failed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import spanbatch
from spanbatch.testing import OTLPReceiver

from tests.helpers import balanced, provider_with

pytestmark = pytest.mark.timeout(60)

SPANS = 20


class Wrapping:
    """An exporter that declares nothing: spanbatch's processor hands it lists, which the inner one reads."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def export(self, batch: Any) -> Any:
        return self.inner.export(batch)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def exporter_for(rx: OTLPReceiver) -> Any:
    if rx.protocol == "http":
        from spanbatch.exporter import OTLPSpanExporter  # noqa: PLC0415

        return OTLPSpanExporter(endpoint=rx.endpoint, max_export_batch_bytes=3000, timeout=5)
    from spanbatch.exporter.grpc import OTLPSpanExporter as GrpcExporter  # noqa: PLC0415

    return GrpcExporter(endpoint=rx.endpoint, insecure=True, max_export_batch_bytes=3000, timeout=5)


@pytest.mark.parametrize("wrapped", [False, True], ids=["requests", "lists"])
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_the_parts_accepted_before_a_refusal_count_as_exported(
    protocol: str, wrapped: bool, shutdown_later: Callable[[Any], Any]
) -> None:
    with OTLPReceiver(protocol) as rx:
        exporter = exporter_for(rx)
        processor = shutdown_later(
            spanbatch.BatchSpanProcessor(
                Wrapping(exporter) if wrapped else exporter, max_export_batch_size=SPANS, schedule_delay_millis=60_000
            )
        )
        rx.set_behaviour("status", status=400, after=1)  # the first request taken, the next ones refused
        tracer = provider_with(processor).get_tracer("t")
        for i in range(SPANS):
            with tracer.start_as_current_span(f"s{i}") as span:
                span.set_attribute("pad", "x" * 200)
        assert processor.force_flush(30_000)
        stats = processor.stats()
        received = rx.stats().spans
    assert 0 < received < SPANS
    assert (stats.exported, stats.dropped["export_failed"]) == (received, SPANS - received)
    assert balanced(stats)
