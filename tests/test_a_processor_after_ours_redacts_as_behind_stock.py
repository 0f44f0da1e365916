"""A processor added after the batch processor that redacts each span in its ``on_end`` (renaming it,
replacing its attributes) is in time behind the stock processor: the batch is exported later, so the
exporter sees the redacted span. spanbatch's must keep that: the ``on_end`` that queues a span must not
read it (into an exporter's request, or by handing the GIL to the worker) before the processors after
it have run.
"""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as StockOTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from spanbatch.exporter import OTLPSpanExporter
from spanbatch.testing import OTLPReceiver

SPANS = 3000


class Redactor(SpanProcessor):
    def on_end(self, span: ReadableSpan) -> None:
        span._name = "redacted"  # what redacting processors do: ReadableSpan has no setter
        span._attributes = {"redacted": True}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("exporter_class", [StockOTLPSpanExporter, OTLPSpanExporter], ids=["stock", "spanbatch"])
def test_the_exporter_sees_only_redacted_spans(
    processor_class: Any, exporter_class: Any, http_receiver: OTLPReceiver
) -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor_class(exporter_class(endpoint=http_receiver.endpoint), max_queue_size=SPANS))
    provider.add_span_processor(Redactor())
    tracer = provider.get_tracer(__name__)
    for _ in range(SPANS):
        with tracer.start_as_current_span("secret") as span:
            span.set_attribute("password", "hunter2")
    assert provider.force_flush(30_000)
    provider.shutdown()
    assert http_receiver.wait_for_spans(SPANS)
    assert http_receiver.span_names() == {"redacted": SPANS}
