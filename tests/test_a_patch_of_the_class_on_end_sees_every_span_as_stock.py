"""A user's test (or an instrumentation) that patches the processor class's ``on_end`` after the processor
was made, as ``mock.patch.object(BatchSpanProcessor, "on_end", ...)`` does, sees every span the SDK ends
with the stock class. spanbatch binds its Rust push on each instance, which shadows a later class patch.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@pytest.mark.timeout(30)
def test_a_class_patch_made_after_the_processor_sees_the_span(
    processor_class: Any, request: pytest.FixtureRequest
) -> None:
    if processor_class.__module__.startswith("spanbatch"):
        reason = "the per-instance Rust push shadows a later class patch; needs a class-level descriptor (design)"
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
    exporter = InMemorySpanExporter()
    processor = processor_class(exporter)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    with mock.patch.object(processor_class, "on_end", autospec=True, side_effect=processor_class.on_end) as on_end:
        provider.get_tracer(__name__).start_span("patched").end()
    assert provider.force_flush(10_000)
    provider.shutdown()
    assert on_end.call_count == 1
    assert [span.name for span in exporter.get_finished_spans()] == ["patched"]
