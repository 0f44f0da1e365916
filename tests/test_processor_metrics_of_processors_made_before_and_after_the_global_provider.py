"""A processor made before the global meter provider is set and one made after it are both reported (the
second's lanes must not register on instruments whose callback the first's proxy already took). Found by review.
Run in a subprocess: the global provider is set once."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CHILD = r"""
import spanbatch
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from tests.helpers import PROCESSORS, RecordingExporter, end_spans
from tests.helpers.metrics import metric_points

cls = PROCESSORS["stock"] if KIND == "stock" else spanbatch.BatchSpanProcessor
before = cls(RecordingExporter(), max_queue_size=64, max_export_batch_size=8)
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
after = cls(RecordingExporter(), max_queue_size=32, max_export_batch_size=8)
end_spans(before, 2)
end_spans(after, 5)
assert before.force_flush(5000) and after.force_flush(5000)
got = {
    (name.rsplit(".", 1)[-1], attributes["otel.component.name"]): int(value)
    for name, points in metric_points(reader).items() if name.startswith("otel.sdk.processor.span.")
    for attributes, value in points
}
print(sorted(got.items()))
before.shutdown(); after.shutdown()
"""


@pytest.mark.parametrize("kind", ["stock", "spanbatch"])
@pytest.mark.timeout(60)
def test_a_processor_made_after_the_global_provider_is_set_is_counted(kind: str) -> None:
    env = {**os.environ, "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED": "true"}
    out = subprocess.run(
        [sys.executable, "-c", f"KIND={kind!r}\n" + CHILD],
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    print(out.stdout, out.stderr)
    assert out.returncode == 0, out.stderr
    assert "('processed', 'batching_span_processor/1'), 5)" in out.stdout
    assert "('processed', 'batching_span_processor/0'), 2)" in out.stdout
